//! A learning entry: what someone learned, for others to find and reuse.

use autosurgeon::{Hydrate, Reconcile};
use serde::{Deserialize, Serialize};

use crate::attachment::Attachment;
use crate::check::Checker;
use crate::codec::Prose;
use crate::vocab::Vocabularies;

/// The licence shared learning carries unless its author says otherwise.
pub const DEFAULT_LICENCE: &str = "OGL-UK-3.0";

/// Shared learning: a case study, a lesson, what didn't work, a toolkit …
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Reconcile, Hydrate)]
#[serde(default, deny_unknown_fields)]
pub struct Learning {
    #[autosurgeon(missing = "Default::default")]
    pub title: String,
    /// One or two sentences shown in lists and search results.
    #[autosurgeon(missing = "Default::default")]
    pub summary: Prose,
    /// The full story; merges character by character.
    #[autosurgeon(missing = "Default::default")]
    pub body: Prose,
    /// Case study, lesson learned, what didn't work … (`learning_types`).
    #[autosurgeon(missing = "Default::default")]
    pub learning_type: Option<String>,
    /// Worked, didn't work, mixed, too early (`outcomes`).
    #[autosurgeon(missing = "Default::default")]
    pub outcome: Option<String>,
    /// Where it happened: a ward, a practice, a community centre.
    #[autosurgeon(missing = "Default::default")]
    pub setting: String,
    /// Who it was for.
    #[autosurgeon(missing = "Default::default")]
    pub population: String,
    /// The place (e.g. Gateshead, North Cumbria).
    #[autosurgeon(missing = "Default::default")]
    pub place: String,
    /// System, place, neighbourhood, provider or team (`levels`).
    #[autosurgeon(missing = "Default::default")]
    pub level: Option<String>,
    /// Measured impact in words, e.g. "44 per cent reduction in call answering time".
    #[autosurgeon(missing = "Default::default")]
    pub impact: String,
    /// How we know: data, evaluation, references.
    #[autosurgeon(missing = "Default::default")]
    pub evidence: Prose,
    /// Where the learning came from (`sources`).
    #[autosurgeon(missing = "Default::default")]
    pub sources: Vec<String>,
    #[autosurgeon(missing = "Default::default")]
    pub priorities: Vec<String>,
    #[autosurgeon(missing = "Default::default")]
    pub goals: Vec<String>,
    #[autosurgeon(missing = "Default::default")]
    pub themes: Vec<String>,
    #[autosurgeon(missing = "Default::default")]
    pub methods: Vec<String>,
    /// Free tags.
    #[autosurgeon(missing = "Default::default")]
    pub tags: Vec<String>,
    /// Ids of related improvement projects.
    #[autosurgeon(missing = "Default::default")]
    pub projects: Vec<String>,
    /// Authors: contact ids or names.
    #[autosurgeon(missing = "Default::default")]
    pub authors: Vec<String>,
    /// Organisations involved, by name or id.
    #[autosurgeon(missing = "Default::default")]
    pub organisations: Vec<String>,
    #[autosurgeon(missing = "Default::default")]
    pub licence: String,
    /// Learning this was adapted from (ids or links).
    #[autosurgeon(missing = "Default::default")]
    pub adapted_from: Vec<String>,
    /// Places or organisations it has spread to.
    #[autosurgeon(missing = "Default::default")]
    pub spread_to: Vec<String>,
    /// Files behind the learning (report, slides, poster): described here,
    /// their bytes held by hash outside the document (`attachment`).
    #[autosurgeon(missing = "Default::default")]
    pub attachments: Vec<Attachment>,
}

impl Default for Learning {
    fn default() -> Self {
        Self {
            title: String::new(),
            summary: Prose::default(),
            body: Prose::default(),
            learning_type: None,
            outcome: None,
            setting: String::new(),
            population: String::new(),
            place: String::new(),
            level: None,
            impact: String::new(),
            evidence: Prose::default(),
            sources: Vec::new(),
            priorities: Vec::new(),
            goals: Vec::new(),
            themes: Vec::new(),
            methods: Vec::new(),
            tags: Vec::new(),
            projects: Vec::new(),
            authors: Vec::new(),
            organisations: Vec::new(),
            licence: DEFAULT_LICENCE.to_string(),
            adapted_from: Vec::new(),
            spread_to: Vec::new(),
            attachments: Vec::new(),
        }
    }
}

impl Learning {
    pub(crate) fn check(&mut self, v: &Vocabularies, c: &mut Checker) {
        c.line("title", &mut self.title, true);
        c.prose("summary", self.summary.as_str(), true);
        c.prose("body", self.body.as_str(), false);
        c.opt_term("learning_type", &v.learning_types, &mut self.learning_type);
        c.opt_term("outcome", &v.outcomes, &mut self.outcome);
        c.line("setting", &mut self.setting, false);
        c.line("population", &mut self.population, false);
        c.line("place", &mut self.place, false);
        c.opt_term("level", &v.levels, &mut self.level);
        c.line("impact", &mut self.impact, false);
        c.prose("evidence", self.evidence.as_str(), false);
        c.terms("sources", &v.sources, &mut self.sources);
        c.terms("priorities", &v.priorities, &mut self.priorities);
        c.terms("goals", &v.goals, &mut self.goals);
        c.terms("themes", &v.themes, &mut self.themes);
        c.terms("methods", &v.methods, &mut self.methods);
        c.lines("tags", &mut self.tags);
        c.lines("projects", &mut self.projects);
        c.lines("authors", &mut self.authors);
        c.lines("organisations", &mut self.organisations);
        c.line("licence", &mut self.licence, false);
        if self.licence.is_empty() {
            self.licence = DEFAULT_LICENCE.to_string();
        }
        c.lines("adapted_from", &mut self.adapted_from);
        c.lines("spread_to", &mut self.spread_to);
        crate::attachment::check(c, &mut self.attachments);
    }
}
