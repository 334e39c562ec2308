//! The evidence gathered for one result, reason by reason, and the
//! sentences people read ("published 2 learning entries on it").

use std::collections::BTreeMap;

use super::{EntryRef, Reason};
use crate::store::Listed;

/// Evidence gathered for one result, keyed by reason.
#[derive(Debug, Default)]
pub(super) struct Evidence {
    pub(super) reasons: BTreeMap<String, Acc>,
}

#[derive(Debug, Default)]
pub(super) struct Acc {
    weight: f64,
    entries: Vec<EntryRef>,
    /// Unnamed people counted (team members without consent).
    people: usize,
    /// A fixed sentence (for reasons without entries).
    text: Option<String>,
}

impl Evidence {
    pub(super) fn add(&mut self, key: &str, weight: f64, entry: Option<&Listed>) {
        let acc = self.reasons.entry(key.to_string()).or_default();
        if let Some(e) = entry {
            if acc.entries.iter().any(|r| r.id == e.id.to_string()) {
                return;
            }
            acc.entries.push(EntryRef {
                id: e.id.to_string(),
                kind: e.kind.as_str().to_string(),
                title: e.title.clone(),
            });
        }
        acc.weight += weight;
    }

    pub(super) fn fixed(&mut self, key: &str, weight: f64, text: String) {
        let acc = self.reasons.entry(key.to_string()).or_default();
        if acc.text.is_none() {
            acc.weight += weight;
            acc.text = Some(text);
        }
    }

    pub(super) fn unnamed(&mut self, weight: f64, entry: &Listed) {
        let acc = self.reasons.entry("unnamed-team".to_string()).or_default();
        acc.people += 1;
        acc.weight += weight;
        if !acc.entries.iter().any(|r| r.id == entry.id.to_string()) {
            acc.entries.push(EntryRef {
                id: entry.id.to_string(),
                kind: entry.kind.as_str().to_string(),
                title: entry.title.clone(),
            });
        }
    }

    pub(super) fn score(&self) -> f64 {
        round(self.reasons.values().map(|a| a.weight).sum())
    }

    /// The reasons, heaviest first, with their sentences.
    pub(super) fn reasons(self) -> Vec<Reason> {
        let mut out: Vec<Reason> = self
            .reasons
            .into_iter()
            .map(|(kind, acc)| Reason {
                text: acc
                    .text
                    .clone()
                    .unwrap_or_else(|| sentence(&kind, acc.entries.len(), acc.people)),
                kind,
                weight: round(acc.weight),
                entries: acc.entries,
            })
            .collect();
        out.sort_by(|a, b| b.weight.total_cmp(&a.weight).then(a.kind.cmp(&b.kind)));
        out
    }
}

pub(super) fn round(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// The sentence for a reason that cites `n` entries.
fn sentence(kind: &str, n: usize, people: usize) -> String {
    let projects = || plural(n, "project", "projects");
    match kind {
        "published" => format!(
            "published {} on it",
            plural(n, "learning entry", "learning entries")
        ),
        "named-in" => format!(
            "named in {} on it",
            plural(n, "learning entry", "learning entries")
        ),
        "leads" => format!("leads {} on it", projects()),
        "co-edits" => format!("co-edits {} on it", projects()),
        "partner" => format!("partner on {} on it", projects()),
        "people-on-team" => format!("its people are on the team of {} on it", projects()),
        "unnamed-team" => format!(
            "{} on the team of {} on it (people are named only with their consent)",
            plural(people, "person", "people"),
            projects()
        ),
        "ran" => format!("ran {} on it", plural(n, "event", "events")),
        "runs" => format!(
            "runs {} on it",
            plural(n, "upcoming event", "upcoming events")
        ),
        "organiser" => format!("organiser of {} on it", plural(n, "event", "events")),
        "author" => format!(
            "wrote {} on it",
            plural(n, "learning entry", "learning entries")
        ),
        "lead" => format!("lead of {} on it", projects()),
        other => match other.strip_prefix("team:") {
            Some(role) => format!("{role} on the team of {} on it", projects()),
            None => format!("{other}: {}", plural(n, "entry", "entries")),
        },
    }
}
