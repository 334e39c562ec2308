//! A [`Digest`] as Markdown (for a newsletter, or an email client that
//! reads Markdown) or as plain text wrapped at 72 columns (for any email).
//!
//! Everything quoted from entries is someone else's text: Markdown
//! punctuation in it is escaped, so a title can never become a link, an
//! image or HTML in the reader's mail client, and control characters were
//! dropped when the digest was gathered ([`super::clip`]), so none reach a
//! terminal. Entries link to their page on this node's web app when a base
//! address is given (`--base-url`), and are named by id otherwise.

use std::fmt::Write;

use convene_model::DocumentId;

mod markdown;
mod text;

pub use markdown::markdown;
pub use text::{WIDTH, text, wrap};

use super::{Audience, Digest, DigestError, EventItem, IdeaItem, Item, MessageItem, clip};

/// How a digest is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Format {
    Markdown,
    /// Plain text wrapped at [`WIDTH`] columns.
    #[default]
    Text,
    /// One JSON object ([`Digest::to_json`]).
    Json,
}

impl std::str::FromStr for Format {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_lowercase().as_str() {
            "markdown" | "md" => Ok(Format::Markdown),
            "text" | "txt" | "plain" => Ok(Format::Text),
            "json" => Ok(Format::Json),
            other => Err(DigestError::Invalid(format!(
                "unknown format {other:?}: expected markdown, text or json"
            ))),
        }
    }
}

/// Checks a base address for links (`https://convene.example.org`) and
/// returns it without a trailing slash.
pub fn base_url(text: &str) -> Result<String, DigestError> {
    let t = text.trim().trim_end_matches('/');
    let ok =
        convene_model::event::is_web_link(t) && !t.contains(['<', '>', '"', '(', ')', '?', '#']);
    if ok {
        Ok(t.to_string())
    } else {
        Err(DigestError::Invalid(format!(
            "{text:?} is not a web address to link entries to (expected https://… or http://…)"
        )))
    }
}

/// Renders `d` in `format`, linking entries under `base` if given.
pub fn render(d: &Digest, format: Format, base: Option<&str>) -> String {
    match format {
        Format::Markdown => markdown(d, base),
        Format::Text => text(d, base),
        Format::Json => {
            let mut s = serde_json::to_string_pretty(&d.to_json()).unwrap_or_default();
            s.push('\n');
            s
        }
    }
}

pub(super) fn entry_url(base: Option<&str>, id: DocumentId) -> Option<String> {
    base.map(|b| format!("{b}/e/{id}"))
}

pub(super) fn title_line(d: &Digest) -> String {
    match &d.community {
        Some(c) => format!("What's new in {}", clip(c, 120)),
        None => "What's new".to_string(),
    }
}

pub(super) fn period_line(d: &Digest) -> String {
    let from = match &d.org_name {
        Some(o) => format!("From {}'s node, ", clip(o, 120)),
        None => "From this node, ".to_string(),
    };
    format!("{from}{} to {} UTC.", d.since.short(), d.until.short())
}

pub(super) fn audience_line(d: &Digest) -> Option<String> {
    let org = d.org_name.as_deref().unwrap_or("this organisation");
    match d.audience {
        Audience::Community => None,
        Audience::Here => Some(format!(
            "Includes entries shown to some organisations only: keep it inside {}.",
            clip(org, 120)
        )),
    }
}

pub(super) fn owner(it: &Item) -> String {
    clip(it.owner_name.as_deref().unwrap_or("an organisation"), 120)
}

pub(super) fn name(org: Option<&str>) -> String {
    clip(org.unwrap_or("An organisation"), 120)
}

pub(super) fn event_when(e: &EventItem) -> String {
    let same_day = e.starts_local.get(..10) == e.ends_local.get(..10);
    let ends = if same_day {
        e.ends_local.get(11..).unwrap_or(&e.ends_local)
    } else {
        &e.ends_local
    };
    format!("{} to {} ({})", e.starts_local, ends, e.time_zone)
}

pub(super) fn going(n: usize) -> String {
    match n {
        0 => "no organisation has said it is going yet".into(),
        1 => "1 organisation going".into(),
        n => format!("{n} organisations going"),
    }
}

pub(super) fn support(i: &IdeaItem) -> String {
    let mut s = match i.support {
        0 => "no support yet".to_string(),
        1 => "supported by 1 organisation".to_string(),
        n => format!("supported by {n} organisations"),
    };
    if i.new_support > 0 {
        let _ = write!(s, " ({} new in this period)", i.new_support);
    }
    s
}

pub(super) fn message_verb(m: &MessageItem) -> &'static str {
    if m.answers_us {
        "answered our question on"
    } else if m.question {
        "asked about"
    } else {
        "replied on"
    }
}

/// What the per-section limit left out, if anything.
pub(super) fn left_out_line(d: &Digest) -> Option<String> {
    match d.left_out {
        0 => None,
        1 => Some("1 more thing is left out of this digest: see it in Convene.".into()),
        n => Some(format!(
            "{n} more things are left out of this digest: see them in Convene."
        )),
    }
}

pub(super) fn contacts_line(n: usize) -> String {
    let who = if n == 1 {
        "1 new contact".to_string()
    } else {
        format!("{n} new contacts")
    };
    format!("{who} in the directory (digests never name people: see them in Convene).")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_addresses_are_web_addresses() {
        assert_eq!(
            base_url("https://convene.example.org/").unwrap(),
            "https://convene.example.org"
        );
        for bad in [
            "javascript:alert(1)",
            "convene.example.org",
            "https://a b",
            "https://x/(y)",
        ] {
            assert!(base_url(bad).is_err(), "{bad}");
        }
    }
}
