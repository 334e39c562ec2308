//! Every chart of a project, or the one a caller names: what `convene
//! chart` and `/api/entries/{id}/chart` return, in one shape.

use serde::Serialize;

use super::{Analysis, ChartError, analyse};
use crate::project::Project;

/// A measure left out, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Skipped {
    pub measure: String,
    pub reason: String,
}

/// The charts of a project's measures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProjectCharts {
    pub charts: Vec<Analysis>,
    /// Measures with nothing to chart (no values yet).
    pub skipped: Vec<Skipped>,
}

/// Charts every measure of `p` with values, or only `measure` (by name,
/// case-insensitively), which must then exist and have values.
pub fn analyse_project(p: &Project, measure: Option<&str>) -> Result<ProjectCharts, ChartError> {
    if let Some(name) = measure {
        let m = p.measure(name).ok_or_else(|| ChartError::UnknownMeasure {
            name: name.to_string(),
            known: p.measures.iter().map(|m| m.name.clone()).collect(),
        })?;
        return Ok(ProjectCharts {
            charts: vec![analyse(m, &p.pdsa)?],
            skipped: Vec::new(),
        });
    }
    if p.measures.is_empty() {
        return Err(ChartError::NoMeasures);
    }
    let mut out = ProjectCharts {
        charts: Vec::new(),
        skipped: Vec::new(),
    };
    for m in &p.measures {
        match analyse(m, &p.pdsa) {
            Ok(a) => out.charts.push(a),
            Err(e) => out.skipped.push(Skipped {
                measure: m.name.clone(),
                reason: e.to_string(),
            }),
        }
    }
    Ok(out)
}
