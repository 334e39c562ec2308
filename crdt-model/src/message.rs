//! A message: a question asked about an entry, or a reply to one.
//!
//! Each message is its own document, owned by its author's organisation
//! (only that organisation's nodes may edit or retract it, as for any
//! entry), so a conversation never needs anyone to edit someone else's
//! document. It names the entry the conversation is about (`about`) and,
//! for a reply, the message it answers (`reply_to`). Its visibility is the
//! entry's audience, worked out when it is written (see the node's
//! `convening` module).

use autosurgeon::{Hydrate, Reconcile};
use serde::{Deserialize, Serialize};

use crate::DocumentId;
use crate::check::Checker;
use crate::codec::Prose;

/// Longest message, in characters: a conversation, not a report.
pub const MAX_MESSAGE: usize = 10_000;

/// A question on an entry, or a reply in its thread.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Reconcile, Hydrate)]
#[serde(default, deny_unknown_fields)]
pub struct Message {
    /// The entry the conversation is about (a document id).
    #[autosurgeon(missing = "Default::default")]
    pub about: String,
    /// The message this one answers; `None` for a question on the entry.
    #[autosurgeon(missing = "Default::default")]
    pub reply_to: Option<String>,
    #[autosurgeon(missing = "Default::default")]
    pub text: Prose,
}

impl Message {
    /// Whether this starts a thread (a question) rather than answering one.
    pub fn is_question(&self) -> bool {
        self.reply_to.is_none()
    }

    /// The first line of the text: how lists name a message.
    pub fn headline(&self) -> &str {
        self.text.as_str().lines().next().unwrap_or("").trim()
    }

    pub(crate) fn check(&mut self, c: &mut Checker) {
        check_id(c, "about", &mut self.about, true);
        if let Some(r) = &mut self.reply_to {
            if r.trim().is_empty() {
                self.reply_to = None;
            } else {
                check_id(c, "reply_to", r, true);
            }
        }
        if self.text.is_empty() {
            c.problem("text", "is required");
        } else if self.text.as_str().chars().count() > MAX_MESSAGE {
            c.problem("text", format!("is longer than {MAX_MESSAGE} characters"));
        }
    }
}

/// A field holding another entry's id: trimmed and well formed.
pub(crate) fn check_id(c: &mut Checker, field: &str, value: &mut String, required: bool) {
    let trimmed = value.trim();
    if trimmed.len() != value.len() {
        *value = trimmed.to_string();
    }
    if value.is_empty() {
        if required {
            c.problem(field, "is required");
        }
    } else if value.parse::<DocumentId>().is_err() {
        c.problem(field, format!("{value:?} is not an entry id"));
    }
}
