//! An improvement project, with its measures, data points and PDSA cycles.

use autosurgeon::{Hydrate, Reconcile};
use serde::{Deserialize, Serialize};

use crate::attachment::Attachment;
use crate::check::Checker;
use crate::codec::Prose;
use crate::vocab::Vocabularies;

/// An improvement project run by one organisation with its partners.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Reconcile, Hydrate)]
#[serde(default, deny_unknown_fields)]
pub struct Project {
    #[autosurgeon(missing = "Default::default")]
    pub title: String,
    #[autosurgeon(missing = "Default::default")]
    pub summary: Prose,
    /// Why, for whom, what is wrong now.
    #[autosurgeon(missing = "Default::default")]
    pub problem: Prose,
    /// What, how much, by when: "10 per cent reduction in average length of stay in six months".
    #[autosurgeon(missing = "Default::default")]
    pub aim: String,
    /// Understanding the issue … embedding and spreading, closed (`stages`).
    #[autosurgeon(missing = "Default::default")]
    pub stage: Option<String>,
    /// Why a closed project closed.
    #[autosurgeon(missing = "Default::default")]
    pub closed_reason: String,
    /// Partner organisations (NHS, council, VCSE), by name or id.
    #[autosurgeon(missing = "Default::default")]
    pub partners: Vec<String>,
    #[autosurgeon(missing = "Default::default")]
    pub team: Vec<TeamMember>,
    #[autosurgeon(missing = "Default::default")]
    pub priorities: Vec<String>,
    #[autosurgeon(missing = "Default::default")]
    pub goals: Vec<String>,
    #[autosurgeon(missing = "Default::default")]
    pub themes: Vec<String>,
    #[autosurgeon(missing = "Default::default")]
    pub methods: Vec<String>,
    #[autosurgeon(missing = "Default::default")]
    pub level: Option<String>,
    #[autosurgeon(missing = "Default::default")]
    pub place: String,
    #[autosurgeon(missing = "Default::default")]
    pub tags: Vec<String>,
    #[autosurgeon(missing = "Default::default")]
    pub measures: Vec<Measure>,
    #[autosurgeon(missing = "Default::default")]
    pub pdsa: Vec<Pdsa>,
    /// How people with lived experience shaped the work.
    #[autosurgeon(missing = "Default::default")]
    pub lived_experience: Prose,
    #[autosurgeon(missing = "Default::default")]
    pub evidence: Prose,
    /// Ids of learning entries that came out of this project.
    #[autosurgeon(missing = "Default::default")]
    pub learning: Vec<String>,
    /// Files of the project (driver diagram, measures spreadsheet): see
    /// `attachment`.
    #[autosurgeon(missing = "Default::default")]
    pub attachments: Vec<Attachment>,
}

/// Someone on a project team.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Reconcile, Hydrate)]
#[serde(default, deny_unknown_fields)]
pub struct TeamMember {
    /// A name, or the id of a contact entry.
    #[autosurgeon(missing = "Default::default")]
    pub name: String,
    /// Lead, sponsor, coach, member, lived-experience partner (`team_roles`).
    #[autosurgeon(missing = "Default::default")]
    pub role: Option<String>,
}

/// One measure of a project (outcome, process or balancing).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Reconcile, Hydrate)]
#[serde(default, deny_unknown_fields)]
pub struct Measure {
    #[autosurgeon(missing = "Default::default")]
    pub name: String,
    #[autosurgeon(missing = "Default::default")]
    pub measure_type: Option<String>,
    #[autosurgeon(missing = "Default::default")]
    pub definition: String,
    #[autosurgeon(missing = "Default::default")]
    pub unit: String,
    #[autosurgeon(missing = "Default::default")]
    pub baseline: Option<f64>,
    #[autosurgeon(missing = "Default::default")]
    pub target: Option<f64>,
    /// Dated values, in any order; readers sort by date.
    #[autosurgeon(missing = "Default::default")]
    pub data: Vec<DataPoint>,
    /// Dated notes on the measure's timeline ("new triage rota started"),
    /// drawn on its chart; in any order, readers sort by date.
    #[autosurgeon(missing = "Default::default")]
    pub annotations: Vec<Annotation>,
    /// Which way is better: `higher`, `lower` or `neither`. It decides
    /// whether a special cause is coloured as improvement or concern, and
    /// whether the assurance icon can be shown (see `chart`). Unset reads
    /// as `neither`: the chart does not guess what the team wants.
    #[autosurgeon(missing = "Default::default")]
    pub improvement: Option<String>,
    /// How many points (from the start, and from each rebase) the centre
    /// line and limits are calculated from. Unset: 12 for a run chart's
    /// median, every point for an SPC chart (NHSRplotthedots's default).
    #[autosurgeon(missing = "Default::default")]
    pub baseline_points: Option<u32>,
    /// `run`, `xmr` or `p`, to override the chart chosen from the data.
    #[autosurgeon(missing = "Default::default")]
    pub chart: Option<String>,
    /// Dates the team marks as a change to the process: the centre line and
    /// limits are recalculated from the first value on or after each.
    #[autosurgeon(missing = "Default::default")]
    pub rebase: Vec<Rebase>,
}

/// A change to the process that starts a new period on a measure's chart.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Reconcile, Hydrate)]
#[serde(default, deny_unknown_fields)]
pub struct Rebase {
    /// `YYYY-MM-DD`: the first value of the new period is the first on or
    /// after this date.
    #[autosurgeon(missing = "Default::default")]
    pub date: String,
    /// Why the process changed, drawn on the chart.
    #[autosurgeon(missing = "Default::default")]
    pub reason: String,
    /// The change idea of the project's PDSA cycle behind it, if any.
    #[autosurgeon(missing = "Default::default")]
    pub pdsa: String,
}

/// A dated note on a measure's timeline: what happened that may explain
/// the values around it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Reconcile, Hydrate)]
#[serde(default, deny_unknown_fields)]
pub struct Annotation {
    /// `YYYY-MM-DD`.
    #[autosurgeon(missing = "Default::default")]
    pub date: String,
    #[autosurgeon(missing = "Default::default")]
    pub text: String,
}

/// One dated value of a measure (aggregate figures only, never patient data).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Reconcile, Hydrate)]
#[serde(default, deny_unknown_fields)]
pub struct DataPoint {
    /// `YYYY-MM-DD`.
    #[autosurgeon(missing = "Default::default")]
    pub date: String,
    #[autosurgeon(missing = "Default::default")]
    pub value: f64,
    #[autosurgeon(missing = "Default::default")]
    pub note: String,
    /// For a proportion: how many there were (`value` is how many of them
    /// counted), e.g. 12 of 40 discharges before noon. A measure whose
    /// values have denominators is drawn as a p-chart.
    #[autosurgeon(missing = "Default::default")]
    pub denominator: Option<f64>,
}

/// One Plan-Do-Study-Act cycle.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Reconcile, Hydrate)]
#[serde(default, deny_unknown_fields)]
pub struct Pdsa {
    #[autosurgeon(missing = "Default::default")]
    pub change_idea: String,
    /// `YYYY-MM-DD`, when the cycle started.
    #[autosurgeon(missing = "Default::default")]
    pub started: Option<String>,
    #[autosurgeon(missing = "Default::default")]
    pub prediction: String,
    #[autosurgeon(missing = "Default::default")]
    pub plan: String,
    #[serde(rename = "do")]
    #[autosurgeon(rename = "do", missing = "Default::default")]
    pub did: String,
    #[autosurgeon(missing = "Default::default")]
    pub study: String,
    /// Adopt, adapt or abandon (`pdsa_acts`).
    #[autosurgeon(missing = "Default::default")]
    pub act: Option<String>,
}

impl Project {
    pub(crate) fn check(&mut self, v: &Vocabularies, c: &mut Checker) {
        c.line("title", &mut self.title, true);
        c.prose("summary", self.summary.as_str(), false);
        c.prose("problem", self.problem.as_str(), false);
        c.line("aim", &mut self.aim, false);
        c.opt_term("stage", &v.stages, &mut self.stage);
        c.line("closed_reason", &mut self.closed_reason, false);
        c.lines("partners", &mut self.partners);
        c.each("team", &mut self.team, |c, m| {
            c.line("name", &mut m.name, true);
            c.opt_term("role", &v.team_roles, &mut m.role);
        });
        c.terms("priorities", &v.priorities, &mut self.priorities);
        c.terms("goals", &v.goals, &mut self.goals);
        c.terms("themes", &v.themes, &mut self.themes);
        c.terms("methods", &v.methods, &mut self.methods);
        c.opt_term("level", &v.levels, &mut self.level);
        c.line("place", &mut self.place, false);
        c.lines("tags", &mut self.tags);
        let mut names = std::collections::HashSet::new();
        let ideas: Vec<String> = self.pdsa.iter().map(|p| p.change_idea.clone()).collect();
        c.each("measures", &mut self.measures, |c, m| {
            c.line("name", &mut m.name, true);
            if !m.name.is_empty() && !names.insert(m.name.to_lowercase()) {
                c.problem("name", format!("{:?} is used by another measure", m.name));
            }
            c.opt_term("measure_type", &v.measure_types, &mut m.measure_type);
            c.line("definition", &mut m.definition, false);
            c.line("unit", &mut m.unit, false);
            c.number("baseline", m.baseline);
            c.number("target", m.target);
            c.each("data", &mut m.data, |c, d| {
                c.date("date", &d.date);
                c.number("value", Some(d.value));
                c.line("note", &mut d.note, false);
            });
            c.each("annotations", &mut m.annotations, |c, a| {
                c.date("date", &a.date);
                c.line("text", &mut a.text, true);
            });
            check_chart_fields(c, m, &ideas);
        });
        c.each("pdsa", &mut self.pdsa, |c, p| {
            c.line("change_idea", &mut p.change_idea, true);
            if let Some(s) = &p.started {
                c.date("started", s);
            }
            c.opt_term("act", &v.pdsa_acts, &mut p.act);
        });
        c.prose("lived_experience", self.lived_experience.as_str(), false);
        c.prose("evidence", self.evidence.as_str(), false);
        c.lines("learning", &mut self.learning);
        crate::attachment::check(c, &mut self.attachments);
    }

    /// The measure called `name` (case-insensitive).
    pub fn measure(&self, name: &str) -> Option<&Measure> {
        let lower = name.trim().to_lowercase();
        self.measures
            .iter()
            .find(|m| m.name.to_lowercase() == lower)
    }

    /// The measure called `name` (case-insensitive), to change it.
    pub fn measure_mut(&mut self, name: &str) -> Option<&mut Measure> {
        let lower = name.trim().to_lowercase();
        self.measures
            .iter_mut()
            .find(|m| m.name.to_lowercase() == lower)
    }
}

/// Accepted spellings of `Measure::improvement`, and the word each becomes.
const DIRECTIONS: &[(&str, &str)] = &[
    ("higher", "higher"),
    ("higher is better", "higher"),
    ("increase", "higher"),
    ("up", "higher"),
    ("lower", "lower"),
    ("lower is better", "lower"),
    ("decrease", "lower"),
    ("down", "lower"),
    ("neither", "neither"),
    ("neutral", "neither"),
    ("none", "neither"),
];

/// Accepted spellings of `Measure::chart`, and the word each becomes.
const CHARTS: &[(&str, &str)] = &[
    ("run", "run"),
    ("run chart", "run"),
    ("xmr", "xmr"),
    ("i", "xmr"),
    ("i-mr", "xmr"),
    ("individuals", "xmr"),
    ("spc", "xmr"),
    ("p", "p"),
    ("p-chart", "p"),
    ("proportion", "p"),
];

/// Normalises `value` to the word it stands for in `words`.
fn one_of(c: &mut Checker, field: &str, words: &[(&str, &str)], value: &mut Option<String>) {
    let Some(v) = value else { return };
    let wanted = v.trim().to_lowercase().replace('_', " ");
    if wanted.is_empty() {
        *value = None;
        return;
    }
    match words.iter().find(|(w, _)| *w == wanted) {
        Some((_, to)) => *v = (*to).to_string(),
        None => {
            let mut options: Vec<&str> = words.iter().map(|(_, to)| *to).collect();
            options.dedup();
            c.problem(field, format!("{v:?} is not one of {}", options.join(", ")));
        }
    }
}

/// What the charts read: direction, chart type, baseline, denominators and
/// rebase dates (`chart`).
fn check_chart_fields(c: &mut Checker, m: &mut Measure, ideas: &[String]) {
    one_of(c, "improvement", DIRECTIONS, &mut m.improvement);
    one_of(c, "chart", CHARTS, &mut m.chart);
    if m.baseline_points.is_some_and(|n| n < 2) {
        c.problem("baseline_points", "must be at least 2");
    }
    let with = m.data.iter().filter(|d| d.denominator.is_some()).count();
    let proportion = with > 0;
    c.each("data", &mut m.data, |c, d| match d.denominator {
        Some(n) if !n.is_finite() || n <= 0.0 => {
            c.problem("denominator", "must be a number above 0");
        }
        Some(n) if d.value < 0.0 || d.value > n => {
            c.problem(
                "value",
                format!("must be between 0 and the denominator ({n}): how many of them counted"),
            );
        }
        Some(_) => {}
        None if proportion => c.problem(
            "denominator",
            "is required: the measure's other values have one (it is a proportion)",
        ),
        None => {}
    });
    if m.chart.as_deref() == Some("p") && !proportion && !m.data.is_empty() {
        c.problem("chart", "a p-chart needs a denominator on every value");
    }
    c.each("rebase", &mut m.rebase, |c, r| {
        c.date("date", &r.date);
        c.line("reason", &mut r.reason, false);
        c.line("pdsa", &mut r.pdsa, false);
        if !r.pdsa.is_empty() {
            let lower = r.pdsa.to_lowercase();
            match ideas.iter().find(|i| i.trim().to_lowercase() == lower) {
                Some(idea) => r.pdsa = idea.trim().to_string(),
                None => c.problem(
                    "pdsa",
                    format!(
                        "{:?} is not the change idea of one of the project's PDSA cycles",
                        r.pdsa
                    ),
                ),
            }
        }
        if r.reason.is_empty() && r.pdsa.is_empty() {
            c.problem(
                "reason",
                "say why the process changed (a reason, or the PDSA cycle)",
            );
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotations_need_a_date_and_text() {
        let mut p = Project {
            title: "Flow".into(),
            measures: vec![Measure {
                name: "Length of stay".into(),
                annotations: vec![Annotation {
                    date: "2026-13-01".into(),
                    text: " ".into(),
                }],
                ..Measure::default()
            }],
            ..Project::default()
        };
        let mut c = Checker::new();
        p.check(&Vocabularies::default(), &mut c);
        let fields: Vec<String> = c
            .finish()
            .unwrap_err()
            .0
            .into_iter()
            .map(|p| p.field)
            .collect();
        assert_eq!(
            fields,
            [
                "measures[0].annotations[0].date",
                "measures[0].annotations[0].text"
            ]
        );
    }
}
