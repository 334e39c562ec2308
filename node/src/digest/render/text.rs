//! The digest as plain text wrapped at [`WIDTH`] columns, for any email.

use std::fmt::Write;

use convene_model::DocumentId;

use super::{
    audience_line, contacts_line, entry_url, event_when, going, left_out_line, message_verb, name,
    owner, period_line, support, title_line,
};
use crate::digest::{Digest, Item, MessageItem};

/// The column plain text is wrapped at.
pub const WIDTH: usize = 72;
/// `text` wrapped at [`WIDTH`] columns, the first line after `first`, the
/// others after `rest` (a word longer than a line gets a line of its own).
pub fn wrap(text: &str, first: &str, rest: &str) -> String {
    let mut out = String::new();
    let mut line = first.to_string();
    let mut empty = true;
    for word in text.split_whitespace() {
        let len = line.chars().count();
        if !empty && len + 1 + word.chars().count() > WIDTH {
            out.push_str(line.trim_end());
            out.push('\n');
            line = rest.to_string();
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(word);
        empty = false;
    }
    out.push_str(line.trim_end());
    out.push('\n');
    out
}

fn text_heading(out: &mut String, heading: &str, n: usize) {
    let h = format!("{heading} ({n})");
    let _ = write!(out, "\n{h}\n{}\n", "-".repeat(h.chars().count().min(WIDTH)));
}

fn where_to_read(base: Option<&str>, id: DocumentId) -> String {
    entry_url(base, id).unwrap_or_else(|| format!("id {id}"))
}

fn text_item(out: &mut String, it: &Item, base: Option<&str>) {
    out.push('\n');
    out.push_str(&wrap(&it.title, "* ", "  "));
    if !it.summary.is_empty() {
        out.push_str(&wrap(&it.summary, "  ", "  "));
    }
    let mut about = format!("From {}.", owner(it));
    if !it.priorities.is_empty() {
        let _ = write!(about, " Priorities: {}.", it.priorities.join(", "));
    }
    if it.restricted {
        about.push_str(" Not for everyone.");
    }
    out.push_str(&wrap(&about, "  ", "  "));
    out.push_str(&wrap(&where_to_read(base, it.id), "  ", "  "));
}

fn text_message(out: &mut String, m: &MessageItem, base: Option<&str>, waiting: bool) {
    let when = if waiting {
        format!(" on {}", m.seen.short().get(..10).unwrap_or(""))
    } else {
        String::new()
    };
    out.push('\n');
    let head = format!(
        "{}{when} {} \"{}\":",
        name(m.from_name.as_deref()),
        message_verb(m),
        m.about_title
    );
    out.push_str(&wrap(&head, "* ", "  "));
    out.push_str(&wrap(&format!("\"{}\"", m.text), "  ", "  "));
    out.push_str(&wrap(&where_to_read(base, m.about), "  ", "  "));
}

/// The digest as plain text wrapped at 72 columns.
pub fn text(d: &Digest, base: Option<&str>) -> String {
    let title = title_line(d);
    let mut out = format!(
        "{title}\n{}\n",
        "=".repeat(title.chars().count().min(WIDTH))
    );
    out.push_str(&wrap(&period_line(d), "", ""));
    if !d.priorities.is_empty() {
        out.push_str(&wrap(
            &format!("Priorities: {}.", d.priorities.join(", ")),
            "",
            "",
        ));
    }
    if let Some(a) = audience_line(d) {
        out.push_str(&wrap(&a, "", ""));
    }
    if d.is_empty() {
        out.push_str("\nNothing new in this period.\n");
        return out;
    }
    for (heading, items) in [
        ("New learning", &d.learning),
        ("New projects", &d.new_projects),
        ("Updated projects", &d.updated_projects),
    ] {
        if !items.is_empty() {
            text_heading(&mut out, heading, items.len());
            for it in items {
                text_item(&mut out, it, base);
            }
        }
    }
    if !d.events.is_empty() {
        text_heading(
            &mut out,
            &format!("Events in the next {} weeks", d.weeks_ahead),
            d.events.len(),
        );
        for e in &d.events {
            out.push('\n');
            let title = if e.cancelled {
                format!("CANCELLED: {}", e.item.title)
            } else {
                e.item.title.clone()
            };
            out.push_str(&wrap(&title, "* ", "  "));
            let mut when = event_when(e);
            if !e.place.is_empty() {
                let _ = write!(when, ", {}", e.place);
            }
            out.push_str(&wrap(&when, "  ", "  "));
            if !e.link.is_empty() {
                out.push_str(&wrap(&format!("Online: {}", e.link), "  ", "  "));
            }
            let mut about = format!("Run by {}", owner(&e.item));
            if !e.cancelled {
                let _ = write!(about, "; {}", going(e.going));
            }
            about.push('.');
            if e.new {
                about.push_str(" New.");
            }
            if e.item.restricted {
                about.push_str(" Not for everyone.");
            }
            out.push_str(&wrap(&about, "  ", "  "));
            out.push_str(&wrap(&where_to_read(base, e.item.id), "  ", "  "));
        }
    }
    if !d.new_ideas.is_empty() {
        text_heading(&mut out, "New ideas", d.new_ideas.len());
        for i in &d.new_ideas {
            text_item(&mut out, &i.item, base);
            out.push_str(&wrap(&format!("{}.", capitalise(&support(i))), "  ", "  "));
        }
    }
    if !d.top_ideas.is_empty() {
        text_heading(&mut out, "Ideas with the most support", d.top_ideas.len());
        for (n, i) in d.top_ideas.iter().enumerate() {
            out.push('\n');
            let line = format!("{}. {}: {}.", n + 1, i.item.title, support(i));
            out.push_str(&wrap(&line, "", "   "));
            out.push_str(&wrap(&where_to_read(base, i.item.id), "   ", "   "));
        }
    }
    if !d.conversations.is_empty() {
        text_heading(
            &mut out,
            "Questions and replies on our entries",
            d.conversations.len(),
        );
        for m in &d.conversations {
            text_message(&mut out, m, base, false);
        }
    }
    if !d.waiting.is_empty() {
        text_heading(
            &mut out,
            "Questions waiting for our answer",
            d.waiting.len(),
        );
        for m in &d.waiting {
            text_message(&mut out, m, base, true);
        }
    }
    if let Some(n) = d.new_contacts.filter(|n| *n > 0) {
        out.push_str("\nAlso\n----\n");
        out.push_str(&wrap(&contacts_line(n), "* ", "  "));
    }
    if let Some(line) = left_out_line(d) {
        out.push('\n');
        out.push_str(&wrap(&line, "", ""));
    }
    out
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_wraps_at_72_columns_with_hanging_indents() {
        let long = "word ".repeat(40);
        let out = wrap(&long, "* ", "  ");
        for line in out.lines() {
            assert!(line.chars().count() <= WIDTH, "{line:?}");
        }
        assert!(out.starts_with("* word"));
        assert!(out.lines().skip(1).all(|l| l.starts_with("  word")));
        // A word longer than a line is not cut.
        let url = format!("https://example.org/{}", "x".repeat(80));
        assert!(wrap(&url, "  ", "  ").contains(&url));
    }
}
