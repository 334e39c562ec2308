//! Spreadsheets in and out: CSV rows to entries (checked row by row before
//! anything is written) and entries to CSV rows.
//!
//! Columns are matched by header to the field names `show --json` uses
//! (case and spaces do not matter: "Learning type" is `learning_type`).
//! A list field takes several values separated by `;`, a yes/no field
//! takes yes/no/true/false/1/0. Contacts also take `email`, `phone`,
//! `consent` (yes to record that the person agreed) and `consent_by`.

use std::io::{Read, Write};

use convene_model::{Body, Consent, Entry, EntryInput, Kind, Vocabularies};
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
const CONTACT_EXTRAS: [&str; 4] = ["email", "phone", "consent", "consent_by"];
/// Metadata columns any kind takes.
const META: [&str; 2] = ["visibility", "status"];

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

/// Reads every row of a CSV of `kind` and checks it; returns the entries
/// only if every row is valid, otherwise every problem found.
pub fn read_rows(
    kind: Kind,
    input: impl Read,
    vocab: &Vocabularies,
) -> Result<Vec<EntryInput>, CsvError> {
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
    for h in &headers {
        if !template.contains_key(h) && !extras.contains(&h.as_str()) && !META.contains(&h.as_str())
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
        for (h, raw) in headers.iter().zip(record.iter()) {
            let raw = raw.trim();
            if extras.contains(&h.as_str()) || META.contains(&h.as_str()) {
                extra.insert(h.as_str(), raw.to_string());
                continue;
            }
            let value = match template.get(h) {
                Some(Value::Array(_)) => Value::Array(
                    raw.split(';')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(|s| Value::String(s.to_string()))
                        .collect(),
                ),
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
            match extra.get("consent").map(|s| yes(s)) {
                Some(Some(true)) => {
                    c.consent = Some(Consent {
                        given_by: extra
                            .get("consent_by")
                            .filter(|s| !s.is_empty())
                            .cloned()
                            .unwrap_or_else(|| c.name.clone()),
                        scope: input.visibility.clone().unwrap_or_default(),
                        ..Consent::default()
                    })
                }
                Some(None) => problem("consent", "must be yes or no".into()),
                _ => {}
            }
        }
        match input.body.check(vocab) {
            Ok(()) => inputs.push(input),
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

/// Writes entries of one kind as CSV with one column per field (lists
/// joined with `; `, vocabulary values as slugs).
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
            .collect();
        writer.write_record(&row)?;
    }
    writer.flush()?;
    Ok(())
}

/// One entry as a Markdown page: front matter with the metadata (values
/// written as JSON, which is also valid YAML), then the text.
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
                    "body" | "problem" | "evidence" | "lived_experience"
                )
            {
                out += &format!("{k}: {v}\n");
            }
        }
    }
    out += "---\n\n";
    out += &format!("# {}\n\n", entry.body.title());
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
            out += text.trim();
            out += "\n\n";
        }
    }
    if let Body::Project(p) = &entry.body {
        for m in &p.measures {
            out += &format!(
                "## {}\n\n| date | value | note |\n| --- | ---: | --- |\n",
                m.name
            );
            let mut data = m.data.clone();
            data.sort_by(|a, b| a.date.cmp(&b.date));
            for d in data {
                out += &format!(
                    "| {} | {} | {} |\n",
                    d.date,
                    d.value,
                    d.note.replace('|', "\\|")
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
