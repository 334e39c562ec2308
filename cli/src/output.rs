//! Presentation: tables and entry pages for people (vocabulary labels), and
//! JSON for programs (vocabulary slugs, stable field names).

use std::io::Write;

use anyhow::Result;
use comfy_table::{ContentArrangement, Table, presets};
use convene_model::{Timestamp, Vocabularies, Vocabulary};
use convene_node::{HistoryItem, Hit, Listed};
use serde_json::{Value, json};

/// Characters of an id shown in tables (any unique prefix is accepted back).
const SHORT_ID: usize = 10;

pub fn short_id(id: &str) -> &str {
    &id[..id.len().min(SHORT_ID)]
}

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_style(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.iter().copied());
    t
}

fn owner_label(l: &Listed) -> String {
    l.owner_name
        .clone()
        .unwrap_or_else(|| short_id(&l.owner).to_string())
}

pub fn print_list(out: &mut impl Write, rows: &[Listed]) -> Result<()> {
    if rows.is_empty() {
        writeln!(out, "No entries.")?;
        return Ok(());
    }
    let mut t = table(&["ID", "KIND", "TITLE", "OWNER", "UPDATED"]);
    for l in rows {
        let mut title = l.title.clone();
        if l.status != "published" {
            title = format!("{title} ({})", l.status);
        }
        t.add_row(vec![
            short_id(&l.id.to_string()).to_string(),
            l.kind.to_string(),
            title,
            owner_label(l),
            Timestamp(l.updated).short(),
        ]);
    }
    write_table(out, &t)
}

/// `2505` → `2,505`.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// "showing 21–40 of 2,505; next page: --page 3" when a page holds less than
/// everything; `None` when it holds all there is.
pub fn showing(offset: usize, shown: usize, total: usize, limit: usize) -> Option<String> {
    if offset == 0 && shown == total {
        return None;
    }
    let range = if shown == 0 {
        "nothing".to_string()
    } else {
        format!("{}–{}", thousands(offset + 1), thousands(offset + shown))
    };
    let more = if offset + shown < total && shown > 0 {
        format!(
            "; more with --page {} (or --offset {})",
            offset / limit.max(1) + 2,
            offset + shown
        )
    } else {
        String::new()
    };
    Some(format!("showing {range} of {}{more}", thousands(total)))
}

pub fn print_hits(out: &mut impl Write, hits: &[Hit]) -> Result<()> {
    if hits.is_empty() {
        writeln!(out, "Nothing found.")?;
        return Ok(());
    }
    for h in hits {
        let l = &h.listed;
        writeln!(
            out,
            "{}  {:<12} {}  ({})",
            short_id(&l.id.to_string()),
            l.kind.as_str(),
            l.title,
            owner_label(l)
        )?;
        writeln!(out, "    {}", h.snippet.replace('\n', " "))?;
    }
    Ok(())
}

pub fn print_history(out: &mut impl Write, items: &[HistoryItem]) -> Result<()> {
    writeln!(out, "\nHistory")?;
    let mut t = table(&["TIME", "CHANGE", "SIGNED BY NODE", "ORGANISATION", "WHAT"]);
    for h in items {
        t.add_row(vec![
            h.time.short(),
            h.hash[..12].to_string(),
            h.signer.map_or_else(|| "?".into(), |s| s.to_string()),
            h.signer_org.as_ref().map_or_else(
                || "unknown".into(),
                |(id, name)| name.clone().unwrap_or_else(|| short_id(id).to_string()),
            ),
            h.message.clone().unwrap_or_default(),
        ]);
    }
    write_table(out, &t)
}

/// The vocabulary behind a field, for showing labels instead of slugs.
fn vocabulary_of<'a>(
    v: &'a Vocabularies,
    parent: Option<&str>,
    field: &str,
) -> Option<&'a Vocabulary> {
    Some(match (parent, field) {
        (_, "priorities") => &v.priorities,
        (_, "goals") => &v.goals,
        (_, "themes") => &v.themes,
        (_, "methods") => &v.methods,
        (_, "sources") => &v.sources,
        (_, "learning_type") => &v.learning_types,
        (_, "outcome") => &v.outcomes,
        (_, "level") => &v.levels,
        (_, "stage") => &v.stages,
        (_, "sector") => &v.sectors,
        (_, "expertise") => &v.skills,
        (_, "open_to") => &v.open_to,
        (_, "measure_type") => &v.measure_types,
        (Some("team"), "role") => &v.team_roles,
        (_, "act") => &v.pdsa_acts,
        (_, "channel") => &v.channels,
        _ => return None,
    })
}

fn heading(field: &str) -> String {
    let words = field.replace('_', " ");
    let mut c = words.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => words,
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null | Value::Bool(false) => true,
        Value::String(s) => s.trim().is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.values().all(is_empty),
        Value::Number(_) | Value::Bool(true) => false,
    }
}

fn scalar(v: &Value, vocab: Option<&Vocabulary>) -> String {
    match v {
        Value::String(s) => vocab.map_or_else(|| s.clone(), |voc| voc.label(s).to_string()),
        Value::Bool(true) => "yes".into(),
        other => other.to_string(),
    }
}

/// Metadata shown in the header, not among the fields.
const HEADER_KEYS: [&str; 10] = [
    "id",
    "kind",
    "schema",
    "owner",
    "owner_name",
    "visibility",
    "editors",
    "created",
    "updated",
    "status",
];

/// A readable page for one entry (`entry` as `Entry::to_json` gives it).
pub fn print_entry(
    out: &mut impl Write,
    entry: &Value,
    owner_name: Option<&str>,
    vocab: &Vocabularies,
) -> Result<()> {
    let get = |k: &str| entry.get(k).and_then(Value::as_str).unwrap_or_default();
    let title = ["title", "name"]
        .iter()
        .map(|k| get(k))
        .find(|s| !s.is_empty())
        .unwrap_or("(untitled)");
    writeln!(out, "{title}")?;
    writeln!(
        out,
        "{} · {} · owned by {}",
        get("kind"),
        get("status"),
        owner_name.unwrap_or(get("owner"))
    )?;
    writeln!(out, "id {}  ·  visible to {}", get("id"), get("visibility"))?;
    writeln!(
        out,
        "created {}  ·  updated {}",
        get("created"),
        get("updated")
    )?;
    writeln!(out)?;
    if let Value::Object(map) = entry {
        for (key, value) in map {
            if HEADER_KEYS.contains(&key.as_str())
                || key == "title"
                || key == "name"
                || is_empty(value)
            {
                continue;
            }
            print_field(out, 0, None, key, value, vocab)?;
        }
    }
    Ok(())
}

fn print_field(
    out: &mut impl Write,
    indent: usize,
    parent: Option<&str>,
    key: &str,
    value: &Value,
    vocab: &Vocabularies,
) -> Result<()> {
    let pad = "  ".repeat(indent);
    let voc = vocabulary_of(vocab, parent, key);
    match value {
        Value::Array(items) if key == "data" => {
            writeln!(out, "{pad}Data:")?;
            let mut points: Vec<&Value> = items.iter().collect();
            points.sort_by_key(|p| {
                p.get("date")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            });
            for p in points {
                let note = p.get("note").and_then(Value::as_str).unwrap_or_default();
                writeln!(
                    out,
                    "{pad}  {}  {}{}",
                    p.get("date").and_then(Value::as_str).unwrap_or("?"),
                    p.get("value").map_or_else(String::new, |v| v.to_string()),
                    if note.is_empty() {
                        String::new()
                    } else {
                        format!("  ({note})")
                    }
                )?;
            }
        }
        Value::Array(items) if items.iter().all(|i| !i.is_object()) => {
            let parts: Vec<String> = items.iter().map(|i| scalar(i, voc)).collect();
            writeln!(out, "{pad}{}: {}", heading(key), parts.join("; "))?;
        }
        Value::Array(items) => {
            writeln!(out, "{pad}{}:", heading(key))?;
            for item in items {
                let Value::Object(fields) = item else {
                    continue;
                };
                let mut first = true;
                for (k, v) in fields {
                    if is_empty(v) {
                        continue;
                    }
                    if first {
                        write!(out, "{pad}- ")?;
                        print_field(out, 0, Some(key), k, v, vocab)?;
                        first = false;
                    } else {
                        print_field(out, indent + 1, Some(key), k, v, vocab)?;
                    }
                }
            }
        }
        Value::Object(fields) => {
            writeln!(out, "{pad}{}:", heading(key))?;
            for (k, v) in fields {
                if !is_empty(v) {
                    print_field(out, indent + 1, Some(key), k, v, vocab)?;
                }
            }
        }
        Value::String(s) if s.contains('\n') => {
            writeln!(out, "{pad}{}:", heading(key))?;
            for line in s.lines() {
                writeln!(out, "{pad}  {line}")?;
            }
        }
        other => writeln!(out, "{pad}{}: {}", heading(key), scalar(other, voc))?,
    }
    Ok(())
}

pub fn print_vocabulary(out: &mut impl Write, v: &Vocabulary) -> Result<()> {
    let mut t = table(&["SLUG", "LABEL"]);
    for term in &v.terms {
        t.add_row(vec![term.slug.clone(), term.label.clone()]);
    }
    write_table(out, &t)
}

/// Writes a table without the padding comfy-table leaves at line ends.
fn write_table(out: &mut impl Write, t: &Table) -> Result<()> {
    for line in t.lines() {
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

pub fn log_json(e: &convene_node::store::LogEntry) -> Value {
    json!({
        "at": Timestamp(e.at).to_string(),
        "event": e.event,
        "security": e.security,
        "entry": e.doc,
        "signer": e.signer,
        "detail": e.detail,
    })
}

pub fn print_log(out: &mut impl Write, entries: &[convene_node::store::LogEntry]) -> Result<()> {
    if entries.is_empty() {
        writeln!(out, "Nothing has happened yet.")?;
        return Ok(());
    }
    for e in entries {
        writeln!(
            out,
            "{}  {}{}  entry {}  signed by {}",
            Timestamp(e.at).short(),
            e.event,
            if e.security { " (security)" } else { "" },
            e.doc.as_deref().map_or("-", short_id),
            e.signer.as_deref().unwrap_or("-"),
        )?;
        writeln!(out, "    {}", e.detail)?;
    }
    Ok(())
}
