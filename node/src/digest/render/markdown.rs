//! The digest as Markdown: a heading, then one section per kind of news,
//! with the quoted text's Markdown punctuation escaped.

use std::fmt::Write;

use convene_model::DocumentId;

use super::{
    audience_line, contacts_line, entry_url, event_when, going, left_out_line, message_verb, name,
    owner, period_line, support, title_line,
};
use crate::digest::{Digest, Item, MessageItem};
/// Escapes Markdown punctuation so quoted text stays text.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(
            c,
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '!' | '|' | '~' | '&' | '#'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn md_link(title: &str, base: Option<&str>, id: DocumentId) -> String {
    match entry_url(base, id) {
        Some(url) => format!("**[{}]({url})**", esc(title)),
        None => format!("**{}** (`{id}`)", esc(title)),
    }
}

fn md_item(out: &mut String, it: &Item, base: Option<&str>) {
    let _ = write!(
        out,
        "- {} from {}",
        md_link(&it.title, base, it.id),
        esc(&owner(it))
    );
    if !it.summary.is_empty() {
        let _ = write!(out, ": {}", esc(&it.summary));
    }
    if !it.priorities.is_empty() {
        let _ = write!(out, " *({})*", esc(&it.priorities.join(", ")));
    }
    if it.restricted {
        out.push_str(" \\[not for everyone\\]");
    }
    out.push('\n');
}

fn md_section(out: &mut String, heading: &str, n: usize) {
    let _ = write!(out, "\n## {heading} ({n})\n\n");
}

fn md_message(out: &mut String, m: &MessageItem, base: Option<&str>, waiting: bool) {
    let when = if waiting {
        format!(" on {}", m.seen.short().get(..10).unwrap_or(""))
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "- {}{when} {} {}: “{}”",
        esc(&name(m.from_name.as_deref())),
        message_verb(m),
        md_link(&m.about_title, base, m.about),
        esc(&m.text)
    );
}

/// The digest as Markdown: a heading, then one section per kind of news.
pub fn markdown(d: &Digest, base: Option<&str>) -> String {
    let mut out = format!("# {}\n\n{}\n", esc(&title_line(d)), esc(&period_line(d)));
    if !d.priorities.is_empty() {
        let _ = writeln!(out, "Priorities: {}.", esc(&d.priorities.join(", ")));
    }
    if let Some(a) = audience_line(d) {
        let _ = writeln!(out, "\n**{}**", esc(&a));
    }
    if d.is_empty() {
        out.push_str("\nNothing new in this period.\n");
        return out;
    }
    if !d.learning.is_empty() {
        md_section(&mut out, "New learning", d.learning.len());
        for it in &d.learning {
            md_item(&mut out, it, base);
        }
    }
    if !d.new_projects.is_empty() {
        md_section(&mut out, "New projects", d.new_projects.len());
        for it in &d.new_projects {
            md_item(&mut out, it, base);
        }
    }
    if !d.updated_projects.is_empty() {
        md_section(&mut out, "Updated projects", d.updated_projects.len());
        for it in &d.updated_projects {
            md_item(&mut out, it, base);
        }
    }
    if !d.events.is_empty() {
        md_section(
            &mut out,
            &format!("Events in the next {} weeks", d.weeks_ahead),
            d.events.len(),
        );
        for e in &d.events {
            out.push_str("- ");
            if e.cancelled {
                out.push_str("**Cancelled:** ");
            }
            let _ = write!(
                out,
                "{}, {}",
                md_link(&e.item.title, base, e.item.id),
                esc(&event_when(e))
            );
            if !e.place.is_empty() {
                let _ = write!(out, ", {}", esc(&e.place));
            }
            if !e.link.is_empty() && !e.link.contains(['<', '>']) {
                let _ = write!(out, ", online: <{}>", e.link);
            }
            let _ = write!(out, ". Run by {}", esc(&owner(&e.item)));
            if !e.cancelled {
                let _ = write!(out, "; {}", going(e.going));
            }
            out.push('.');
            if e.new {
                out.push_str(" *New.*");
            }
            if e.item.restricted {
                out.push_str(" \\[not for everyone\\]");
            }
            out.push('\n');
        }
    }
    if !d.new_ideas.is_empty() {
        md_section(&mut out, "New ideas", d.new_ideas.len());
        for i in &d.new_ideas {
            let _ = writeln!(
                out,
                "- {} from {}: {}; {}.",
                md_link(&i.item.title, base, i.item.id),
                esc(&owner(&i.item)),
                esc(&i.item.summary),
                support(i)
            );
        }
    }
    if !d.top_ideas.is_empty() {
        md_section(&mut out, "Ideas with the most support", d.top_ideas.len());
        for (n, i) in d.top_ideas.iter().enumerate() {
            let _ = writeln!(
                out,
                "{}. {} from {}: {}.",
                n + 1,
                md_link(&i.item.title, base, i.item.id),
                esc(&owner(&i.item)),
                support(i)
            );
        }
    }
    if !d.conversations.is_empty() {
        md_section(
            &mut out,
            "Questions and replies on our entries",
            d.conversations.len(),
        );
        for m in &d.conversations {
            md_message(&mut out, m, base, false);
        }
    }
    if !d.waiting.is_empty() {
        md_section(
            &mut out,
            "Questions waiting for our answer",
            d.waiting.len(),
        );
        for m in &d.waiting {
            md_message(&mut out, m, base, true);
        }
    }
    if let Some(n) = d.new_contacts.filter(|n| *n > 0) {
        out.push_str("\n## Also\n\n");
        let _ = writeln!(out, "- {}", esc(&contacts_line(n)));
    }
    if let Some(line) = left_out_line(d) {
        let _ = write!(out, "\n*{}*\n", esc(&line));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_in_titles_stays_text() {
        let evil = "[click](javascript:alert(1)) <img src=x> **bold**";
        let escaped = esc(evil);
        assert!(!escaped.contains("[click]"));
        assert!(escaped.contains("\\[click\\]") && escaped.contains("\\<img"));
        assert!(escaped.contains("\\*\\*bold\\*\\*"));
    }
}
