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

use super::{Audience, Digest, DigestError, EventItem, IdeaItem, Item, MessageItem, clip};

/// How a digest is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Format {
    Markdown,
    /// Plain text wrapped at [`WIDTH`] columns.
    #[default]
    Text,
}

impl std::str::FromStr for Format {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_lowercase().as_str() {
            "markdown" | "md" => Ok(Format::Markdown),
            "text" | "txt" | "plain" => Ok(Format::Text),
            other => Err(DigestError::Invalid(format!(
                "unknown format {other:?}: expected markdown or text"
            ))),
        }
    }
}

/// The column plain text is wrapped at.
pub const WIDTH: usize = 72;

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
    }
}

fn entry_url(base: Option<&str>, id: DocumentId) -> Option<String> {
    base.map(|b| format!("{b}/e/{id}"))
}

fn title_line(d: &Digest) -> String {
    match &d.community {
        Some(c) => format!("What's new in {}", clip(c, 120)),
        None => "What's new".to_string(),
    }
}

fn period_line(d: &Digest) -> String {
    let from = match &d.org_name {
        Some(o) => format!("From {}'s node, ", clip(o, 120)),
        None => "From this node, ".to_string(),
    };
    format!("{from}{} to {} UTC.", d.since.short(), d.until.short())
}

fn audience_line(d: &Digest) -> Option<String> {
    let org = d.org_name.as_deref().unwrap_or("this organisation");
    match d.audience {
        Audience::Community => None,
        Audience::Here => Some(format!(
            "Includes entries shown to some organisations only: keep it inside {}.",
            clip(org, 120)
        )),
    }
}

fn owner(it: &Item) -> String {
    clip(it.owner_name.as_deref().unwrap_or("an organisation"), 120)
}

fn name(org: Option<&str>) -> String {
    clip(org.unwrap_or("An organisation"), 120)
}

fn event_when(e: &EventItem) -> String {
    let same_day = e.starts_local.get(..10) == e.ends_local.get(..10);
    let ends = if same_day {
        e.ends_local.get(11..).unwrap_or(&e.ends_local)
    } else {
        &e.ends_local
    };
    format!("{} to {} ({})", e.starts_local, ends, e.time_zone)
}

fn going(n: usize) -> String {
    match n {
        0 => "no organisation has said it is going yet".into(),
        1 => "1 organisation going".into(),
        n => format!("{n} organisations going"),
    }
}

fn support(i: &IdeaItem) -> String {
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

fn message_verb(m: &MessageItem) -> &'static str {
    if m.answers_us {
        "answered our question on"
    } else if m.question {
        "asked about"
    } else {
        "replied on"
    }
}

fn contacts_line(n: usize) -> String {
    let who = if n == 1 {
        "1 new contact".to_string()
    } else {
        format!("{n} new contacts")
    };
    format!("{who} in the directory (digests never name people: see them in Convene).")
}

// ---------------------------------------------------------------- Markdown

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
    out
}

// -------------------------------------------------------------- Plain text

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

    #[test]
    fn markdown_in_titles_stays_text() {
        let evil = "[click](javascript:alert(1)) <img src=x> **bold**";
        let escaped = esc(evil);
        assert!(!escaped.contains("[click]"));
        assert!(escaped.contains("\\[click\\]") && escaped.contains("\\<img"));
        assert!(escaped.contains("\\*\\*bold\\*\\*"));
    }

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
