//! What is marked on a chart's time axis: each rebase (with its reason
//! and PDSA cycle), each PDSA cycle's start, and each annotation on the
//! measure's timeline, in date order. Drawn as numbered markers, listed
//! beside the chart.

use serde::Serialize;

use super::Period;
use crate::project::{Measure, Pdsa};

/// Something to mark on the time axis.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Marker {
    pub date: String,
    pub kind: MarkerKind,
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MarkerKind {
    /// A PDSA cycle started.
    Pdsa,
    /// A rebase: a new period starts.
    Rebase,
    /// An annotation on the measure's timeline.
    Annotation,
}

/// The markers of one measure's chart.
pub fn markers(measure: &Measure, pdsa: &[Pdsa], periods: &[Period]) -> Vec<Marker> {
    let mut out = Vec::new();
    for p in periods.iter().skip(1) {
        let text = match (p.reason.is_empty(), p.pdsa.is_empty()) {
            (false, false) => format!("{} (PDSA: {})", p.reason, p.pdsa),
            (true, false) => format!("PDSA: {}", p.pdsa),
            _ => p.reason.clone(),
        };
        out.push(Marker {
            date: p.from.clone(),
            kind: MarkerKind::Rebase,
            text,
        });
    }
    for c in pdsa {
        if let Some(d) = c.started.as_deref().filter(|d| !d.is_empty()) {
            out.push(Marker {
                date: d.to_string(),
                kind: MarkerKind::Pdsa,
                text: c.change_idea.clone(),
            });
        }
    }
    for a in &measure.annotations {
        out.push(Marker {
            date: a.date.clone(),
            kind: MarkerKind::Annotation,
            text: a.text.clone(),
        });
    }
    out.sort_by(|a, b| a.date.cmp(&b.date));
    out
}
