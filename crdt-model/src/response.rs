//! An organisation's answer to an event or an idea: "going", "support".
//!
//! A response is its own small document owned by the answering
//! organisation, one per organisation and thing answered, edited when the
//! organisation changes its mind. Only that organisation's nodes can write
//! it, so no one can answer in another's name, and answers given offline
//! on different nodes merge without conflict. Where an organisation has
//! more than one response to the same thing (two nodes answered before
//! they synced), the latest by its `at`, then by id, counts: the same
//! choice on every node.

use std::fmt;
use std::str::FromStr;

use autosurgeon::{Hydrate, Reconcile};
use serde::{Deserialize, Serialize};

use crate::check::Checker;
use crate::codec::Timestamp;
use crate::message::check_id;

/// What an organisation says.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Answer {
    /// Going to an event.
    #[default]
    Going,
    /// Not going (any more).
    NotGoing,
    /// Supports an idea.
    Support,
    /// Withdrew its support.
    Withdrawn,
}

impl Answer {
    pub fn as_str(self) -> &'static str {
        match self {
            Answer::Going => "going",
            Answer::NotGoing => "not-going",
            Answer::Support => "support",
            Answer::Withdrawn => "withdrawn",
        }
    }
}

impl fmt::Display for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Answer {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "going" => Ok(Answer::Going),
            "not-going" => Ok(Answer::NotGoing),
            "support" => Ok(Answer::Support),
            "withdrawn" => Ok(Answer::Withdrawn),
            _ => Err(format!(
                "unknown answer {s:?}: expected going, not-going, support or withdrawn"
            )),
        }
    }
}

crate::codec::string_codec!(Answer, "an answer");

/// An organisation's answer to one event or idea.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Reconcile, Hydrate)]
#[serde(default, deny_unknown_fields)]
pub struct Response {
    /// The event or idea answered (its id).
    #[autosurgeon(missing = "Default::default")]
    pub to: String,
    #[autosurgeon(missing = "Default::default")]
    pub answer: Answer,
    /// When the answer was given, by the answering node's clock.
    #[autosurgeon(missing = "Default::default")]
    pub at: Timestamp,
}

impl Response {
    pub(crate) fn check(&mut self, c: &mut Checker) {
        check_id(c, "to", &mut self.to, true);
        if self.at.millis() == 0 {
            c.problem("at", "is required");
        }
    }
}
