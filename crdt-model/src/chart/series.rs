//! From a [`Measure`] to what the charts read: values in date order, the
//! chart to draw, and the periods its rebase dates make.
//!
//! A rebase date starts a new period at the first value on or after it
//! (NHSRplotthedots needs the exact date of a value; a team marking "the
//! new rota started on the 3rd" with weekly values should not have to look
//! that up). A date before the second value or after the last starts no
//! period and is reported in the notes.

use super::{ChartError, ChartKind, SPC_MIN_POINTS};
use crate::project::Measure;

/// One value, in date order.
#[derive(Debug, Clone, PartialEq)]
pub struct Value {
    pub date: String,
    /// The plotted value: a proportion when there is a denominator.
    pub y: f64,
    pub numerator: Option<f64>,
    pub denominator: Option<f64>,
    pub note: String,
}

/// Where a period starts and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Start {
    pub index: usize,
    pub reason: String,
    pub pdsa: String,
}

/// A measure's values ready to chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub kind: ChartKind,
    pub chosen: String,
    pub points: Vec<Value>,
    /// Period starts, the first always at 0.
    pub starts: Vec<Start>,
    /// `Measure::baseline_points`.
    pub baseline: Option<usize>,
    /// In the plotted unit.
    pub target: Option<f64>,
    pub notes: Vec<String>,
}

impl Series {
    pub fn of(m: &Measure) -> Result<Self, ChartError> {
        let mut data: Vec<_> = m.data.iter().filter(|d| d.value.is_finite()).collect();
        if data.is_empty() {
            return Err(ChartError::NoData(m.name.clone()));
        }
        // Stable: two values on one date keep the order they were recorded in.
        data.sort_by(|a, b| a.date.cmp(&b.date));
        let proportion = data.iter().all(|d| d.denominator.is_some_and(|n| n > 0.0));
        let n = data.len();
        let (kind, chosen) = match m.chart.as_deref() {
            Some("run") => (
                ChartKind::Run,
                "a run chart, as the measure asks".to_string(),
            ),
            Some("xmr") => (
                ChartKind::Xmr,
                "an XmR chart, as the measure asks".to_string(),
            ),
            Some("p") if proportion => (ChartKind::P, "a p-chart, as the measure asks".to_string()),
            Some("p") => return Err(ChartError::NoDenominators(m.name.clone())),
            _ if n < SPC_MIN_POINTS => (
                ChartKind::Run,
                format!(
                    "a run chart: {n} value{}, fewer than the {SPC_MIN_POINTS} an SPC chart needs",
                    if n == 1 { "" } else { "s" }
                ),
            ),
            _ if proportion => (
                ChartKind::P,
                format!("a p-chart: {n} values, each with a denominator"),
            ),
            _ => (ChartKind::Xmr, format!("an XmR chart: {n} values")),
        };
        let points: Vec<Value> = data
            .iter()
            .map(|d| match d.denominator {
                Some(den) if proportion => Value {
                    date: d.date.clone(),
                    y: d.value / den,
                    numerator: Some(d.value),
                    denominator: Some(den),
                    note: d.note.clone(),
                },
                _ => Value {
                    date: d.date.clone(),
                    y: d.value,
                    numerator: None,
                    denominator: None,
                    note: d.note.clone(),
                },
            })
            .collect();
        let mut notes = Vec::new();
        let starts = starts(m, &points, &mut notes);
        // A proportion's target may be written as a percentage (90) or a
        // proportion (0.9); the chart plots proportions.
        let target = m
            .target
            .filter(|t| t.is_finite())
            .map(|t| if proportion && t > 1.0 { t / 100.0 } else { t });
        Ok(Self {
            kind,
            chosen,
            points,
            starts,
            baseline: m.baseline_points.map(|b| b as usize),
            target,
            notes,
        })
    }

    /// The index range of each period.
    pub fn periods(&self) -> Vec<std::ops::Range<usize>> {
        let mut out = Vec::new();
        for (i, s) in self.starts.iter().enumerate() {
            let end = self
                .starts
                .get(i + 1)
                .map_or(self.points.len(), |next| next.index);
            out.push(s.index..end);
        }
        out
    }

    pub fn ys(&self) -> Vec<f64> {
        self.points.iter().map(|p| p.y).collect()
    }
}

fn starts(m: &Measure, points: &[Value], notes: &mut Vec<String>) -> Vec<Start> {
    let mut out = vec![Start {
        index: 0,
        reason: String::new(),
        pdsa: String::new(),
    }];
    let mut rebase: Vec<_> = m.rebase.iter().collect();
    rebase.sort_by(|a, b| a.date.cmp(&b.date));
    for r in rebase {
        let Some(index) = points.iter().position(|p| p.date >= r.date) else {
            notes.push(format!(
                "The rebase on {} starts no period: there are no values from then on.",
                r.date
            ));
            continue;
        };
        if index == 0 {
            notes.push(format!(
                "The rebase on {} is on or before the first value: it starts no new period.",
                r.date
            ));
            continue;
        }
        if out.last().is_some_and(|s| s.index == index) {
            notes.push(format!(
                "The rebase on {} starts no period: no value lies between it and the rebase before it.",
                r.date
            ));
            continue;
        }
        out.push(Start {
            index,
            reason: r.reason.clone(),
            pdsa: r.pdsa.clone(),
        });
    }
    out
}
