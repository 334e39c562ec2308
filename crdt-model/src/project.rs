//! An improvement project, with its measures, data points and PDSA cycles.

use autosurgeon::{Hydrate, Reconcile};
use serde::{Deserialize, Serialize};

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
    }

    /// The measure called `name` (case-insensitive).
    pub fn measure_mut(&mut self, name: &str) -> Option<&mut Measure> {
        let lower = name.trim().to_lowercase();
        self.measures
            .iter_mut()
            .find(|m| m.name.to_lowercase() == lower)
    }
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
