//! Ideas, and the rounds in which member organisations vote for them.
//!
//! An [`Idea`] is owned by the organisation that put it forward. Support is
//! never written into the idea: each organisation says it supports an idea
//! with a [`crate::Response`] of its own (one per organisation and idea,
//! changeable), so votes cast offline on different nodes merge without
//! conflict and no one can vote in another's name.
//!
//! A [`Round`] is set by the community's stewards (like the summit's "top
//! five"): it opens and closes at given times and may limit how many ideas
//! each organisation supports. Since a vote's time is only what its
//! sender's clock said, a closed round is settled by a steward's
//! [`Seal`]: the votes the steward's node held at the close, counted the
//! same way on every node once the seal has synced.

use autosurgeon::{Hydrate, Reconcile};
use serde::{Deserialize, Serialize};

use crate::check::Checker;
use crate::codec::{Prose, Timestamp};
use crate::message::check_id;
use crate::vocab::Vocabularies;

/// An idea put to the community.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Reconcile, Hydrate)]
#[serde(default, deny_unknown_fields)]
pub struct Idea {
    #[autosurgeon(missing = "Default::default")]
    pub title: String,
    #[autosurgeon(missing = "Default::default")]
    pub summary: Prose,
    /// The problem it answers.
    #[autosurgeon(missing = "Default::default")]
    pub problem: Prose,
    #[autosurgeon(missing = "Default::default")]
    pub priorities: Vec<String>,
    #[autosurgeon(missing = "Default::default")]
    pub tags: Vec<String>,
    /// The round it is put forward in (a round's id), if any.
    #[autosurgeon(missing = "Default::default")]
    pub round: Option<String>,
}

impl Idea {
    pub(crate) fn check(&mut self, v: &Vocabularies, c: &mut Checker) {
        c.line("title", &mut self.title, true);
        c.prose("summary", self.summary.as_str(), true);
        c.prose("problem", self.problem.as_str(), false);
        c.terms("priorities", &v.priorities, &mut self.priorities);
        c.lines("tags", &mut self.tags);
        if let Some(r) = &mut self.round {
            if r.trim().is_empty() {
                self.round = None;
            } else {
                check_id(c, "round", r, true);
            }
        }
    }
}

/// A time-boxed vote on ideas, set by a steward.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Reconcile, Hydrate)]
#[serde(default, deny_unknown_fields)]
pub struct Round {
    #[autosurgeon(missing = "Default::default")]
    pub title: String,
    #[autosurgeon(missing = "Default::default")]
    pub summary: Prose,
    #[autosurgeon(missing = "Default::default")]
    pub opens: Timestamp,
    #[autosurgeon(missing = "Default::default")]
    pub closes: Timestamp,
    /// How many ideas each organisation may support in the round (five at
    /// the summit); `None` for no limit.
    #[autosurgeon(missing = "Default::default")]
    pub picks: Option<u64>,
    /// The result, fixed by a steward after the close.
    #[autosurgeon(missing = "Default::default")]
    pub seal: Option<Seal>,
}

/// The votes a steward's node counted when it closed a round.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Reconcile, Hydrate)]
#[serde(default, deny_unknown_fields)]
pub struct Seal {
    #[autosurgeon(missing = "Default::default")]
    pub at: Timestamp,
    #[autosurgeon(missing = "Default::default")]
    pub votes: Vec<SealedVote>,
}

/// One organisation's support for one idea, as counted at the close.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, Reconcile, Hydrate)]
#[serde(default, deny_unknown_fields)]
pub struct SealedVote {
    #[autosurgeon(missing = "Default::default")]
    pub org: String,
    #[autosurgeon(missing = "Default::default")]
    pub idea: String,
}

impl Round {
    /// Whether votes are taken at `now`.
    pub fn is_open(&self, now: Timestamp) -> bool {
        self.seal.is_none()
            && self.opens.millis() <= now.millis()
            && now.millis() < self.closes.millis()
    }

    pub(crate) fn check(&mut self, c: &mut Checker) {
        c.line("title", &mut self.title, true);
        c.prose("summary", self.summary.as_str(), false);
        if self.opens.millis() == 0 {
            c.problem("opens", "is required");
        }
        if self.closes.millis() <= self.opens.millis() {
            c.problem("closes", "must be after the opening");
        }
        if self.picks == Some(0) {
            c.problem("picks", "must be at least 1 (leave it out for no limit)");
        }
        if let Some(seal) = &mut self.seal {
            c.each("seal.votes", &mut seal.votes, |c, v| {
                check_id(c, "idea", &mut v.idea, true);
                if v.org.parse::<crate::OrgId>().is_err() {
                    c.problem("org", format!("{:?} is not an organisation id", v.org));
                }
            });
        }
    }
}
