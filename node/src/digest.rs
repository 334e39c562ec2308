//! What's new: a digest of what reached this node in a period, for a
//! newsletter or an email (`convene digest`) and for the web app's
//! "What's new since your last visit" page.
//!
//! # What "new" means
//!
//! An entry is new in a period when its first change *reached this node*
//! in the period (`changes.received`, this node's own clock), not when its
//! author's clock says it was written: a VCSE group's laptop that syncs
//! once a week still gets its learning into the next digest, and no sender
//! can keep an entry at the top by claiming a time in the future. Two
//! limits keep that honest: an entry written (by its author's clock) more
//! than [`LATE_MS`] before the period began is history, not news (so a
//! node that has just joined does not list the whole community), and an
//! entry first seen before the period but changed in it is *updated*, not
//! new (projects only: learning is rarely edited in a way worth a line).
//!
//! # What a digest never holds
//!
//! A digest is made to leave the node by email, so by default it holds
//! only what the whole community may see ([`Audience::Community`]);
//! [`Audience::Here`] (the web page a signed-in member of this
//! organisation reads, or `--include-restricted` for an email that stays
//! inside it) adds what is shown to some organisations only. Never drafts,
//! retracted or erased entries, and never a contact: contacts are personal
//! data, so at most their number is given. An event's `organiser` is
//! free text that may name a person, so an event is given with its owner
//! organisation instead; project teams are never listed.
//!
//! # Layout
//!
//! [`period`] reads `--since`; this file holds the options and the
//! digest's parts; `gather` builds a [`Digest`] from the store
//! (`Node::digest`); [`render`] writes it as Markdown or as plain text
//! (72 columns), in a stable order.

mod gather;
mod json;
pub mod period;
pub mod render;

use convene_model::{DocumentId, Kind, OrgId, Timestamp};

use crate::error::NodeError;
use crate::store::StoreError;

pub use period::{PeriodError, parse_since};

/// How long before a period an entry may have been written and still be
/// news when it reaches this node in the period (31 days).
pub const LATE_MS: i64 = 31 * 24 * 3_600_000;

/// How far ahead a digest looks for events unless told otherwise.
pub const DEFAULT_WEEKS_AHEAD: u32 = 4;

/// The most ideas listed under "most support".
pub const TOP_IDEAS: usize = 5;

/// The longest summary or message line a digest quotes, in characters.
pub const QUOTE_CHARS: usize = 240;

/// Who a digest may be shown to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Audience {
    /// Anyone in the community (the default: a digest leaves the node).
    #[default]
    Community,
    /// This organisation's own people: everything this node may show.
    Here,
}

/// A part of a digest (`--kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Section {
    Learning,
    Projects,
    Events,
    Ideas,
    /// Questions and replies on this organisation's entries, answers to
    /// its questions, and its questions still waiting.
    Conversations,
    /// The number of new contacts (never who).
    Contacts,
}

impl Section {
    pub const ALL: [Section; 6] = [
        Section::Learning,
        Section::Projects,
        Section::Events,
        Section::Ideas,
        Section::Conversations,
        Section::Contacts,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Section::Learning => "learning",
            Section::Projects => "project",
            Section::Events => "event",
            Section::Ideas => "idea",
            Section::Conversations => "question",
            Section::Contacts => "contact",
        }
    }
}

impl std::str::FromStr for Section {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_lowercase().as_str() {
            "learning" => Ok(Section::Learning),
            "project" | "projects" => Ok(Section::Projects),
            "event" | "events" => Ok(Section::Events),
            "idea" | "ideas" => Ok(Section::Ideas),
            "question" | "questions" | "reply" | "replies" | "message" | "messages" => {
                Ok(Section::Conversations)
            }
            "contact" | "contacts" => Ok(Section::Contacts),
            _ => Err(DigestError::Invalid(format!(
                "unknown kind {s:?}: a digest has learning, project, event, idea, question and contact"
            ))),
        }
    }
}

/// Why a digest cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum DigestError {
    #[error(transparent)]
    Since(#[from] PeriodError),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Node(#[from] NodeError),
}

impl From<StoreError> for DigestError {
    fn from(e: StoreError) -> Self {
        Self::Node(e.into())
    }
}

impl From<rusqlite::Error> for DigestError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Node(StoreError::from(e).into())
    }
}

/// What to put in a digest.
#[derive(Debug, Clone)]
pub struct DigestOptions {
    pub since: Timestamp,
    /// The end of the period (now).
    pub until: Timestamp,
    /// Priorities as typed (labels, slugs or aliases); an entry matches
    /// when it has any of them. Empty: no filter.
    pub priorities: Vec<String>,
    /// The sections wanted; empty: all.
    pub sections: Vec<Section>,
    pub audience: Audience,
    /// How many weeks ahead upcoming events are looked for.
    pub weeks_ahead: u32,
    /// At most this many things per section (the first in its order);
    /// `None`: all.
    pub limit: Option<usize>,
}

impl DigestOptions {
    /// Everything, for the community, from `since` until `until`.
    pub fn new(since: Timestamp, until: Timestamp) -> Self {
        Self {
            since,
            until,
            priorities: Vec::new(),
            sections: Vec::new(),
            audience: Audience::Community,
            weeks_ahead: DEFAULT_WEEKS_AHEAD,
            limit: None,
        }
    }

    fn wants(&self, s: Section) -> bool {
        self.sections.is_empty() || self.sections.contains(&s)
    }
}

/// One entry in a digest.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub id: DocumentId,
    pub kind: Kind,
    pub title: String,
    /// The start of its summary, at most [`QUOTE_CHARS`] characters.
    pub summary: String,
    pub owner: OrgId,
    pub owner_name: Option<String>,
    /// When it reached this node (first change, or latest for an update).
    pub seen: Timestamp,
    /// Its priorities' labels.
    pub priorities: Vec<String>,
    /// Shown to some organisations only (never in a community digest).
    pub restricted: bool,
}

/// An event still to come.
#[derive(Debug, Clone, PartialEq)]
pub struct EventItem {
    pub item: Item,
    pub starts: Timestamp,
    pub ends: Timestamp,
    /// `2027-01-14 09:30` in the event's own zone.
    pub starts_local: String,
    pub ends_local: String,
    pub time_zone: String,
    pub place: String,
    /// Where to join online (a web address, checked when written).
    pub link: String,
    pub cancelled: bool,
    /// How many organisations say they are going.
    pub going: usize,
    /// Whether it reached this node in the period.
    pub new: bool,
}

/// An idea with its support.
#[derive(Debug, Clone, PartialEq)]
pub struct IdeaItem {
    pub item: Item,
    /// Organisations supporting it now.
    pub support: usize,
    /// Of those, the ones whose support reached this node in the period.
    pub new_support: usize,
}

/// A question or reply.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageItem {
    pub id: DocumentId,
    pub question: bool,
    pub from: OrgId,
    pub from_name: Option<String>,
    /// The entry the conversation is about.
    pub about: DocumentId,
    pub about_title: String,
    /// The first line of the message, at most [`QUOTE_CHARS`] characters.
    pub text: String,
    pub seen: Timestamp,
    /// Answers a question this organisation asked (on someone else's entry).
    pub answers_us: bool,
}

/// What changed in a period, ready to render.
#[derive(Debug, Clone, PartialEq)]
pub struct Digest {
    pub since: Timestamp,
    pub until: Timestamp,
    /// This node's organisation, whose entries "ours" means.
    pub org_name: Option<String>,
    pub community: Option<String>,
    pub audience: Audience,
    /// The priorities filtered on, by label.
    pub priorities: Vec<String>,
    pub sections: Vec<Section>,
    pub weeks_ahead: u32,
    pub learning: Vec<Item>,
    pub new_projects: Vec<Item>,
    pub updated_projects: Vec<Item>,
    pub events: Vec<EventItem>,
    pub new_ideas: Vec<IdeaItem>,
    /// The ideas with the most support, when any has some.
    pub top_ideas: Vec<IdeaItem>,
    /// New questions and replies on this organisation's entries, and
    /// answers to its questions, oldest first.
    pub conversations: Vec<MessageItem>,
    /// Questions on this organisation's entries no one has answered,
    /// longest waiting first.
    pub waiting: Vec<MessageItem>,
    /// New contacts in the period (only their number; `None` when the
    /// section is not wanted or a priority filter is on).
    pub new_contacts: Option<usize>,
    /// How many things the per-section limit left out, in all.
    pub left_out: usize,
}

impl Digest {
    /// Whether nothing at all happened.
    pub fn is_empty(&self) -> bool {
        self.learning.is_empty()
            && self.new_projects.is_empty()
            && self.updated_projects.is_empty()
            && self.events.is_empty()
            && self.new_ideas.is_empty()
            && self.top_ideas.is_empty()
            && self.conversations.is_empty()
            && self.waiting.is_empty()
            && self.new_contacts.unwrap_or(0) == 0
    }

    /// How many things are new (what a "3 new" badge counts).
    pub fn count_new(&self) -> usize {
        self.learning.len()
            + self.new_projects.len()
            + self.updated_projects.len()
            + self.events.iter().filter(|e| e.new).count()
            + self.new_ideas.len()
            + self.conversations.len()
    }
}

/// Collapses whitespace, drops control characters, and cuts at a word
/// boundary to at most `max` characters (with `…`).
pub fn clip(text: &str, max: usize) -> String {
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let words: Vec<&str> = clean.split_whitespace().collect();
    let mut out = String::new();
    for w in words {
        let extra = usize::from(!out.is_empty()) + w.chars().count();
        if out.chars().count() + extra > max {
            if out.is_empty() {
                out = w.chars().take(max.saturating_sub(1)).collect();
            }
            out.push('…');
            return out;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(w);
    }
    out
}
