//! Spreadsheets in and out: CSV rows to entries (checked row by row before
//! anything is written) and entries to CSV rows; and entries as Markdown
//! pages for a website.
//!
//! Columns are matched by header to the field names `show --json` uses
//! (case and spaces do not matter: "Learning type" is `learning_type`).
//! A list field takes several values separated by `;` (or the JSON that
//! `export-csv` writes for lists of records), a yes/no field takes
//! yes/no/true/false/1/0. Contacts also take `email`, `phone`, `consent`
//! (yes to record that the person agreed, or the record `export-csv`
//! wrote), `consent_by` and `consent_public` (yes if they also agreed to
//! be published on a website). The columns a node assigns itself (`kind`,
//! `schema`, `owner`, `editors`, `created`, `updated`) are ignored. `id`
//! is read: [`import`] updates the entry a row's id names, if it is on this
//! node (and this node may change it), so a file written by `export-csv`,
//! edited in a spreadsheet and imported again changes those entries; on a
//! node that does not have them, the rows are published as new entries.
//!
//! # Exports are inert
//!
//! Both exports end up in programs that run what they are given, so what
//! members wrote is made inert on the way out:
//!
//! - **CSV**: a cell a spreadsheet would take as a formula (starting with
//!   `=`, `+`, `-`, `@`, tab or carriage return: OWASP's list for CSV
//!   injection) is written with a leading apostrophe, which spreadsheets
//!   read as "this is text" and do not show. So that import gives back
//!   exactly what was exported, [`read_rows`] takes that apostrophe off
//!   again: one leading apostrophe is removed from a cell whose remaining
//!   text starts with apostrophes and then one of those characters, which
//!   is precisely the set of cells [`write_rows`] prefixes (a cell that
//!   really starts with `'=` is exported as `''=` and comes back as `'=`).
//!   A hand-made file whose cell starts `'+44` is read as `+44`, which is
//!   what a spreadsheet shows for it too.
//! - **Markdown**: text is HTML-escaped (`&`, `<`, `>`, and `"` in front
//!   matter), so a page shows a member's `<script>` instead of running it;
//!   Markdown link and image brackets are escaped too, since a link may
//!   carry `javascript:`: pages show them as text, and bare `https://`
//!   addresses are still linked by sites that autolink. Front matter
//!   values are escaped the same way, so templates should print them
//!   without escaping them again. Contacts are left out by the caller
//!   unless asked for, and [`publishable_contact`] keeps only those whose
//!   consent covers publication.

use std::borrow::Cow;
use std::io::{Read, Write};

use convene_model::{Body, Consent, DocumentId, Entry, EntryInput, Kind, Visibility, Vocabularies};

use crate::NodeError;
use crate::node::{Edit, Node, Outcome};
use crate::store::Filter;
use serde_json::{Map, Value};

/// One thing wrong with one row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowProblem {
    /// The line in the file (the header is line 1).
    pub line: usize,
    pub column: String,
    pub reason: String,
}

/// Why a spreadsheet was not imported.
#[derive(Debug, thiserror::Error)]
pub enum CsvError {
    #[error("the CSV file cannot be read: {0}")]
    Unreadable(String),
    #[error("unknown column {column:?} for a {kind} (columns: {known})")]
    UnknownColumn {
        column: String,
        kind: Kind,
        known: String,
    },
    #[error("the file has no rows")]
    Empty,
    #[error("{} rows have problems; nothing was imported", .0.iter().map(|p| p.line).collect::<std::collections::BTreeSet<_>>().len())]
    Rows(Vec<RowProblem>),
}

/// Extra columns a contact takes besides its fields.
const CONTACT_EXTRAS: [&str; 5] = ["email", "phone", "consent", "consent_by", "consent_public"];
/// Metadata columns any kind takes.
const META: [&str; 2] = ["visibility", "status"];
/// Columns `export-csv` writes that the importing node assigns itself.
const ASSIGNED: [&str; 7] = [
    "id", "kind", "schema", "owner", "editors", "created", "updated",
];

/// First characters that make a spreadsheet read a cell as a formula
/// (OWASP, "CSV Injection").
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// A cell as written to CSV: with a leading apostrophe if a spreadsheet
/// would otherwise run it as a formula (see the module docs).
pub fn neutralise_cell(cell: &str) -> Cow<'_, str> {
    if cell.trim_start_matches('\'').starts_with(FORMULA_STARTS) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

/// A cell as read from CSV: the apostrophe [`neutralise_cell`] added, taken
/// off again.
pub fn restore_cell(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if rest.trim_start_matches('\'').starts_with(FORMULA_STARTS) => rest,
        _ => cell,
    }
}

fn normalise(header: &str) -> String {
    header.trim().to_lowercase().replace([' ', '-'], "_")
}

fn yes(s: &str) -> Option<bool> {
    match s.trim().to_lowercase().as_str() {
        "yes" | "y" | "true" | "1" => Some(true),
        "no" | "n" | "false" | "0" | "" => Some(false),
        _ => None,
    }
}

/// A cell holding a JSON list of records, as export-csv writes them.
fn records(raw: &str) -> Option<Value> {
    if !raw.starts_with('[') {
        return None;
    }
    match serde_json::from_str::<Value>(raw).ok()? {
        Value::Array(items) if items.iter().all(Value::is_object) && !items.is_empty() => {
            Some(Value::Array(items))
        }
        _ => None,
    }
}

/// One valid row of a CSV.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvRow {
    /// The line in the file (the header is line 1).
    pub line: usize,
    /// The row's `id` cell, when it has one: the entry it updates.
    pub id: Option<String>,
    pub input: EntryInput,
}

/// Reads every row of a CSV of `kind` and checks it; returns the entries
/// only if every row is valid, otherwise every problem found.
pub fn read_rows(
    kind: Kind,
    input: impl Read,
    vocab: &Vocabularies,
) -> Result<Vec<EntryInput>, CsvError> {
    Ok(read_rows_with_ids(kind, input, vocab)?
        .into_iter()
        .map(|r| r.input)
        .collect())
}

/// [`read_rows`], keeping each row's line and `id` cell.
pub fn read_rows_with_ids(
    kind: Kind,
    input: impl Read,
    vocab: &Vocabularies,
) -> Result<Vec<CsvRow>, CsvError> {
    let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(input);
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| CsvError::Unreadable(e.to_string()))?
        .iter()
        .map(normalise)
        .collect();
    let template = match serde_json::to_value(Body::empty(kind)) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    let extras: &[&str] = if kind == Kind::Contact {
        &CONTACT_EXTRAS
    } else {
        &[]
    };
    let assigned = |h: &str| ASSIGNED.contains(&h) && !template.contains_key(h);
    for h in &headers {
        if !template.contains_key(h)
            && !extras.contains(&h.as_str())
            && !META.contains(&h.as_str())
            && !assigned(h)
        {
            let mut known: Vec<&str> = template.keys().map(String::as_str).collect();
            known.extend(extras);
            known.extend(META);
            return Err(CsvError::UnknownColumn {
                column: h.clone(),
                kind,
                known: known.join(", "),
            });
        }
    }
    let mut inputs = Vec::new();
    let mut problems = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let record = record.map_err(|e| CsvError::Unreadable(format!("line {line}: {e}")))?;
        let mut problem = |column: &str, reason: String| {
            problems.push(RowProblem {
                line,
                column: column.to_string(),
                reason,
            })
        };
        let mut object = Map::new();
        let mut extra = std::collections::BTreeMap::new();
        let mut id = None;
        for (h, raw) in headers.iter().zip(record.iter()) {
            let raw = restore_cell(raw.trim());
            if h == "id" && assigned(h) && !raw.is_empty() {
                id = Some(raw.to_string());
            }
            if assigned(h) {
                if h == "kind" && !raw.is_empty() && raw != kind.to_string() {
                    problem(h, format!("this row is a {raw}, not a {kind}"));
                }
                continue;
            }
            if extras.contains(&h.as_str()) || META.contains(&h.as_str()) {
                extra.insert(h.as_str(), raw.to_string());
                continue;
            }
            let value = match template.get(h) {
                // Lists of records (a project's measures, a contact's
                // channels) are written by export-csv as JSON; anything
                // else is a list of words (a tag may start with `[`).
                Some(Value::Array(_)) => records(raw).unwrap_or_else(|| {
                    Value::Array(
                        raw.split(';')
                            .map(str::trim)
                            .filter(|s| !s.is_empty())
                            .map(|s| Value::String(s.to_string()))
                            .collect(),
                    )
                }),
                Some(Value::Bool(_)) => match yes(raw) {
                    Some(b) => Value::Bool(b),
                    None => {
                        problem(h, format!("{raw:?} is not yes or no"));
                        continue;
                    }
                },
                Some(Value::Null) if raw.is_empty() => Value::Null,
                _ => Value::String(raw.to_string()),
            };
            object.insert(h.clone(), value);
        }
        if let Some(v) = extra.get("visibility").filter(|v| !v.is_empty()) {
            object.insert("visibility".into(), Value::String(v.clone()));
        }
        if let Some(v) = extra.get("status").filter(|v| !v.is_empty()) {
            object.insert("status".into(), Value::String(v.clone()));
        }
        let mut input = match EntryInput::from_json(kind, Value::Object(object)) {
            Ok(i) => i,
            Err(e) => {
                problem("", e.to_string());
                continue;
            }
        };
        if let Body::Contact(c) = &mut input.body {
            for channel in ["email", "phone"] {
                if let Some(v) = extra.get(channel).filter(|v| !v.is_empty()) {
                    c.channels.push(convene_model::Channel {
                        channel: channel.into(),
                        value: v.clone(),
                        visibility: None,
                    });
                }
            }
            let public = match extra.get("consent_public").map(|s| yes(s)) {
                Some(Some(b)) => Some(b),
                Some(None) => {
                    problem("consent_public", "must be yes or no".into());
                    None
                }
                None => None,
            };
            let consent = extra.get("consent").map(String::as_str).unwrap_or("");
            if consent.starts_with('{') {
                // The record as export-csv wrote it.
                match serde_json::from_str::<Consent>(consent) {
                    Ok(mut record) => {
                        if let Some(p) = public {
                            record.public = p;
                        }
                        c.consent = Some(record);
                    }
                    Err(e) => problem("consent", format!("is not a consent record: {e}")),
                }
            } else {
                match yes(consent) {
                    Some(true) => {
                        c.consent = Some(Consent {
                            given_by: extra
                                .get("consent_by")
                                .filter(|s| !s.is_empty())
                                .cloned()
                                .unwrap_or_else(|| c.name.clone()),
                            scope: input.visibility.clone().unwrap_or_default(),
                            public: public.unwrap_or(false),
                            ..Consent::default()
                        })
                    }
                    Some(false) => {}
                    None => problem("consent", "must be yes or no".into()),
                }
            }
        }
        match input.body.check(vocab) {
            Ok(()) => inputs.push(CsvRow { line, id, input }),
            Err(found) => {
                for p in found.0 {
                    let column = p.field.split(['.', '[']).next().unwrap_or_default();
                    let column = match column {
                        "channels" => "email",
                        other => other,
                    };
                    problem(column, p.message);
                }
            }
        }
    }
    if !problems.is_empty() {
        return Err(CsvError::Rows(problems));
    }
    if inputs.is_empty() {
        return Err(CsvError::Empty);
    }
    Ok(inputs)
}

/// What [`import`] did, or (with `dry_run`) would do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// New entries.
    pub published: Vec<DocumentId>,
    /// Entries a row with their id changed.
    pub updated: Vec<DocumentId>,
    /// Entries a row with their id left as they were.
    pub unchanged: usize,
    /// Rows without an id that are already here, field for field (the
    /// same file imported again): `(line, the entry)`. Nothing is written.
    pub skipped: Vec<(usize, DocumentId)>,
    /// Likely duplicates that were published all the same, one line each.
    pub warnings: Vec<String>,
}

/// Imports checked rows: a row whose `id` names an entry here updates it
/// (if this node's organisation owns or co-edits it; otherwise the import
/// is refused before anything is written); any other row is published,
/// unless an entry of this kind with the same title and the same fields is
/// already here (the same file imported twice), and a row with only the
/// title in common is published with a warning. An id that is not on this
/// node (a file from another community's node) is published as a new
/// entry. New entries go in one transaction, as [`Node::publish_batch`].
pub fn import(
    node: &mut Node,
    kind: Kind,
    rows: Vec<CsvRow>,
    dry_run: bool,
    on: crate::node::OnProgress<'_>,
) -> Result<ImportReport, NodeError> {
    let mut report = ImportReport::default();
    let mut problems = Vec::new();
    let mut updates = Vec::new();
    let mut new = Vec::new();
    for row in rows {
        let here = row
            .id
            .as_deref()
            .and_then(|id| id.parse::<DocumentId>().ok())
            .and_then(|id| node.get(id).ok());
        match here {
            Some(entry) if entry.meta.kind != kind => problems.push(RowProblem {
                line: row.line,
                column: "id".into(),
                reason: format!("{} is a {}, not a {kind}", entry.id, entry.meta.kind),
            }),
            // Another organisation's entry, exported with the rest: fine
            // as long as the row leaves it as it is.
            Some(entry) if !node.may_change(&entry) && same(&entry, &row.input) => {
                report.unchanged += 1;
            }
            Some(entry) if !node.may_change(&entry) => problems.push(RowProblem {
                line: row.line,
                column: "id".into(),
                reason: format!(
                    "{} belongs to {}; only its owner organisation (or an editor it named) can change it",
                    entry.id,
                    node.org_name(&entry.meta.owner)
                        .unwrap_or_else(|| entry.meta.owner.to_string())
                ),
            }),
            Some(entry) => updates.push((row.line, entry, row.input)),
            None => new.push(row),
        }
    }
    if !problems.is_empty() {
        return Err(CsvError::Rows(problems).into());
    }
    // Entries of this kind by title, to find rows that are already here.
    let mut by_title: std::collections::HashMap<String, Vec<DocumentId>> =
        std::collections::HashMap::new();
    for l in node.list(&Filter {
        kind: Some(kind),
        include_retracted: true,
        ..Filter::default()
    })? {
        by_title
            .entry(l.title.trim().to_lowercase())
            .or_default()
            .push(l.id);
    }
    let mut in_file: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut publish = Vec::new();
    for row in new {
        let title = row.input.body.title().trim().to_lowercase();
        let same_title = by_title.get(&title).cloned().unwrap_or_default();
        let identical = same_title.iter().find_map(|id| {
            let e = node.get(*id).ok()?;
            same(&e, &row.input).then_some(*id)
        });
        if let Some(id) = identical {
            report.skipped.push((row.line, id));
            continue;
        }
        if let Some(first) = same_title.first() {
            report.warnings.push(format!(
                "line {}: {:?} may duplicate the {kind} {first} with the same title; published as a new entry (give the row that id to update it instead)",
                row.line,
                row.input.body.title()
            ));
        }
        if let Some(earlier) = in_file.insert(title, row.line) {
            report.warnings.push(format!(
                "line {}: {:?} has the same title as line {earlier}; both are published",
                row.line,
                row.input.body.title()
            ));
        }
        publish.push(row.input);
    }
    if dry_run {
        report.unchanged += updates.len();
        return Ok(report);
    }
    for (_, entry, input) in updates {
        match node.edit(entry.id, Edit::Replace(Box::new(input)))? {
            Outcome::Changed => report.updated.push(entry.id),
            Outcome::Unchanged => report.unchanged += 1,
        }
    }
    if !publish.is_empty() {
        report.published = node.publish_batch_with(publish, on)?;
    }
    Ok(report)
}

/// Whether importing `input` would leave `entry` as it is.
fn same(entry: &Entry, input: &EntryInput) -> bool {
    entry.body == input.body
        && input
            .visibility
            .as_ref()
            .is_none_or(|v| *v == entry.meta.visibility)
}

/// Writes entries of one kind as CSV with one column per field (lists
/// joined with `; `, vocabulary values as slugs, records as JSON), every
/// cell made inert for spreadsheets ([`neutralise_cell`]).
pub fn write_rows(entries: &[Entry], output: impl Write) -> Result<(), csv::Error> {
    let mut writer = csv::Writer::from_writer(output);
    let mut header: Vec<String> = Vec::new();
    for e in entries {
        let Value::Object(map) = e.to_json() else {
            continue;
        };
        if header.is_empty() {
            header = map.keys().cloned().collect();
            writer.write_record(&header)?;
        }
        let row: Vec<String> = header
            .iter()
            .map(|k| match map.get(k) {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(s)) => s.clone(),
                Some(Value::Array(items)) if items.iter().all(Value::is_string) => items
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join("; "),
                Some(other) => other.to_string(),
            })
            .map(|cell| neutralise_cell(&cell).into_owned())
            .collect();
        writer.write_record(&row)?;
    }
    writer.flush()?;
    Ok(())
}

/// Text as HTML shows it literally: `&`, `<`, `>` and `"` as entities.
pub fn escape_html(text: &str) -> String {
    escape(text, |ch| (ch == '"').then_some("&quot;"))
}

/// Member text for a Markdown page: HTML escaped, and the backslash and
/// brackets escaped so it can form neither raw HTML nor links and images
/// (a link may carry `javascript:`). Emphasis, lists and headings work.
pub fn escape_markdown(text: &str) -> String {
    escape(text, |ch| match ch {
        '\\' => Some("\\\\"),
        '[' => Some("\\["),
        ']' => Some("\\]"),
        _ => None,
    })
}

/// `text` with `&`, `<` and `>` as entities, and what `extra` says for
/// other characters.
fn escape(text: &str, extra: impl Fn(char) -> Option<&'static str>) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match (ch, extra(ch)) {
            ('&', _) => out.push_str("&amp;"),
            ('<', _) => out.push_str("&lt;"),
            ('>', _) => out.push_str("&gt;"),
            (_, Some(s)) => out.push_str(s),
            (other, None) => out.push(other),
        }
    }
    out
}

/// Every string inside a JSON value HTML-escaped (front matter values).
fn escape_json(v: &Value) -> Value {
    match v {
        Value::String(s) => Value::String(escape_html(s)),
        Value::Array(items) => Value::Array(items.iter().map(escape_json).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), escape_json(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// A contact as it may appear on a website, or `None` if it may not: it
/// must be published, visible to the whole community, and its consent must
/// cover publication ([`Consent::covers_publication`]). Only the channels
/// visible to the whole community are kept. Other entries are returned as
/// they are.
pub fn publishable_contact(entry: &Entry) -> Option<Entry> {
    let Body::Contact(c) = &entry.body else {
        return Some(entry.clone());
    };
    let allowed = entry.meta.status == convene_model::Status::Published
        && entry.meta.visibility == Visibility::Community
        && c.consent.as_ref().is_some_and(Consent::covers_publication);
    if !allowed {
        return None;
    }
    let mut published = entry.clone();
    if let Body::Contact(c) = &mut published.body {
        c.channels
            .retain(|ch| matches!(ch.visibility, None | Some(Visibility::Community)));
    }
    Some(published)
}

/// One entry as a Markdown page: front matter with the metadata (values
/// written as JSON, which is also valid YAML), then the text. Everything
/// taken from the entry is escaped (see the module docs); a contact's
/// consent record is not written (it is bookkeeping, not something to
/// publish).
pub fn markdown(entry: &Entry) -> String {
    let json = entry.to_json();
    let mut out = String::from("---\n");
    if let Value::Object(map) = &json {
        for (k, v) in map {
            let empty = matches!(v, Value::Null)
                || v.as_str() == Some("")
                || v.as_array().is_some_and(Vec::is_empty);
            if !empty
                && !matches!(
                    k.as_str(),
                    "body" | "problem" | "evidence" | "lived_experience" | "consent"
                )
            {
                out += &format!("{k}: {}\n", escape_json(v));
            }
        }
    }
    out += "---\n\n";
    out += &format!("# {}\n\n", escape_markdown(entry.body.title()));
    for section in [
        "summary",
        "problem",
        "aim",
        "body",
        "evidence",
        "lived_experience",
    ] {
        if let Some(text) = json
            .get(section)
            .and_then(Value::as_str)
            .filter(|t| !t.trim().is_empty())
        {
            if section != "summary" && section != "body" {
                let heading = section.replace('_', " ");
                let mut c = heading.chars();
                let heading: String = c
                    .next()
                    .map(|f| f.to_uppercase().chain(c).collect())
                    .unwrap_or_default();
                out += &format!("## {heading}\n\n");
            }
            out += &escape_markdown(text.trim());
            out += "\n\n";
        }
    }
    if let Body::Project(p) = &entry.body {
        for m in &p.measures {
            out += &format!(
                "## {}\n\n| date | value | note |\n| --- | ---: | --- |\n",
                escape_markdown(&m.name)
            );
            let mut data = m.data.clone();
            data.sort_by(|a, b| a.date.cmp(&b.date));
            for d in data {
                out += &format!(
                    "| {} | {} | {} |\n",
                    escape_markdown(&d.date).replace('|', "\\|"),
                    d.value,
                    escape_markdown(&d.note).replace('|', "\\|")
                );
            }
            out += "\n";
        }
    }
    out
}

/// A file name for an entry's page: kind, a slug of its title, its id.
pub fn markdown_name(entry: &Entry) -> String {
    let slug: String = convene_model::vocab::slugify(entry.body.title())
        .chars()
        .take(60)
        .collect();
    format!(
        "{}-{}-{}.md",
        entry.meta.kind,
        slug,
        &entry.id.to_string()[..10]
    )
}

#[cfg(test)]
mod tests {
    use super::{neutralise_cell, restore_cell};

    #[test]
    fn formula_cells_get_an_apostrophe_that_import_takes_off() {
        for (cell, written) in [
            ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"),
            ("+1", "'+1"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\t=1", "'\t=1"),
            ("\r=1", "'\r=1"),
            ("'=1", "''=1"),
            ("''+1", "'''+1"),
            ("plain", "plain"),
            ("'quoted'", "'quoted'"),
            ("", ""),
            ("'", "'"),
            ("a=1", "a=1"),
        ] {
            assert_eq!(neutralise_cell(cell), written, "{cell:?}");
            assert_eq!(restore_cell(written), cell, "{written:?}");
        }
    }
}
