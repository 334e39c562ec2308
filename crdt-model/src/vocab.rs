//! Controlled vocabularies: the community's shared words for priorities,
//! methods, sectors and so on.
//!
//! Entries store a term's *slug* (`discharge-and-safe-transfers-of-care`),
//! never its label, so that a label can be reworded without touching any
//! document. People type either: [`Vocabulary::resolve`] accepts a slug, a
//! label (case-insensitively) or a known alias, and when nothing matches it
//! names the closest valid values.
//!
//! The defaults here come from the community's own documents (see DOMAIN.md).
//! They are editable: a [`Vocabularies`] value is plain data, so a community
//! charter can carry its own lists and hand them to validation.

use std::fmt;

use serde::{Deserialize, Serialize};

/// One term of a vocabulary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Term {
    /// Stable kebab-case key stored in documents and printed by `--json`.
    pub slug: String,
    /// What people read.
    pub label: String,
    /// Other spellings people use for the same thing (e.g. "PCN" for primary
    /// care), matched case-insensitively like labels.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
}

/// A named list of terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vocabulary {
    /// Plural human name used in error messages ("priorities").
    pub name: String,
    pub terms: Vec<Term>,
}

/// A value that is not in a vocabulary.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {vocabulary} value {value:?}{}", suggestion_text(.suggestions))]
pub struct UnknownTerm {
    pub vocabulary: String,
    pub value: String,
    /// The closest slugs, best first (at most three).
    pub suggestions: Vec<String>,
}

fn suggestion_text(suggestions: &[String]) -> String {
    if suggestions.is_empty() {
        String::new()
    } else {
        format!(" (did you mean {}?)", suggestions.join(", "))
    }
}

/// Turns a label into its kebab-case slug: lower case, apostrophes dropped,
/// every other run of non-alphanumerics becomes one `-`.
pub fn slugify(label: &str) -> String {
    let mut out = String::with_capacity(label.len());
    let mut dash = false;
    for c in label.chars() {
        if c == '\'' || c == '’' {
            continue;
        }
        if c.is_alphanumeric() {
            if dash && !out.is_empty() {
                out.push('-');
            }
            dash = false;
            out.extend(c.to_lowercase());
        } else {
            dash = true;
        }
    }
    out
}

impl Vocabulary {
    /// Builds a vocabulary whose slugs derive from the labels.
    pub fn from_labels(name: &str, labels: &[&str]) -> Self {
        Self {
            name: name.to_string(),
            terms: labels
                .iter()
                .map(|l| Term {
                    slug: slugify(l),
                    label: (*l).to_string(),
                    aliases: Vec::new(),
                })
                .collect(),
        }
    }

    /// Builds a vocabulary from explicit `(slug, label, aliases)` triples.
    pub fn from_terms(name: &str, terms: &[(&str, &str, &[&str])]) -> Self {
        Self {
            name: name.to_string(),
            terms: terms
                .iter()
                .map(|(slug, label, aliases)| Term {
                    slug: (*slug).to_string(),
                    label: (*label).to_string(),
                    aliases: aliases.iter().map(|a| (*a).to_string()).collect(),
                })
                .collect(),
        }
    }

    /// Finds the term a person meant: exact slug, or a label, alias or slug
    /// compared case-insensitively (with the input slugified too, so
    /// "Discharge and Safe Transfers of Care" and "discharge_and_safe…" work).
    pub fn resolve(&self, input: &str) -> Result<&Term, UnknownTerm> {
        let input = input.trim();
        if let Some(t) = self.terms.iter().find(|t| t.slug == input) {
            return Ok(t);
        }
        let lower = input.to_lowercase();
        let slug = slugify(input);
        let found = self.terms.iter().find(|t| {
            t.label.to_lowercase() == lower
                || t.slug == slug
                || t.aliases
                    .iter()
                    .any(|a| a.to_lowercase() == lower || slugify(a) == slug)
        });
        found.ok_or_else(|| UnknownTerm {
            vocabulary: self.name.clone(),
            value: input.to_string(),
            suggestions: self.suggest(&slug),
        })
    }

    /// The label for a stored slug; unknown slugs (from a newer vocabulary)
    /// are shown as they are.
    pub fn label<'a>(&'a self, slug: &'a str) -> &'a str {
        self.terms
            .iter()
            .find(|t| t.slug == slug)
            .map_or(slug, |t| t.label.as_str())
    }

    /// Whether a stored slug belongs to this vocabulary.
    pub fn contains(&self, slug: &str) -> bool {
        self.terms.iter().any(|t| t.slug == slug)
    }

    fn suggest(&self, slug: &str) -> Vec<String> {
        let mut scored: Vec<(f64, &str)> = self
            .terms
            .iter()
            .map(|t| {
                let mut score = strsim::jaro_winkler(slug, &t.slug);
                // A typed fragment of a long slug ("discharge") is a strong hint.
                if !slug.is_empty() && t.slug.contains(slug) {
                    score = score.max(0.9);
                }
                for a in &t.aliases {
                    score = score.max(strsim::jaro_winkler(slug, &slugify(a)));
                }
                (score, t.slug.as_str())
            })
            .filter(|(s, _)| *s >= 0.7)
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        scored
            .into_iter()
            .take(3)
            .map(|(_, s)| s.to_string())
            .collect()
    }
}

impl fmt::Display for Vocabulary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for t in &self.terms {
            writeln!(f, "{:<50} {}", t.slug, t.label)?;
        }
        Ok(())
    }
}

/// Every vocabulary an entry may refer to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vocabularies {
    pub priorities: Vocabulary,
    pub goals: Vocabulary,
    pub themes: Vocabulary,
    pub sectors: Vocabulary,
    pub levels: Vocabulary,
    pub stages: Vocabulary,
    pub methods: Vocabulary,
    pub skills: Vocabulary,
    pub learning_types: Vocabulary,
    pub outcomes: Vocabulary,
    pub sources: Vocabulary,
    pub measure_types: Vocabulary,
    pub team_roles: Vocabulary,
    pub pdsa_acts: Vocabulary,
    pub open_to: Vocabulary,
    pub channels: Vocabulary,
}

impl Vocabularies {
    /// The default vocabularies, built once (each build slugifies every
    /// label): what indexing each received entry checks against.
    pub fn standard() -> &'static Vocabularies {
        static STANDARD: std::sync::LazyLock<Vocabularies> =
            std::sync::LazyLock::new(Vocabularies::default);
        &STANDARD
    }
}

impl Default for Vocabularies {
    fn default() -> Self {
        Self {
            priorities: Vocabulary::from_labels(
                "priority",
                &[
                    "Children and young people's mental health",
                    "Discharge and safe transfers of care",
                    "Working with communities to shift the balance from treatment to prevention",
                    "Building a learning and improvement infrastructure",
                    "Strengthening the social care workforce",
                    "Workforce retention and wellbeing",
                    "Collaborative leadership",
                ],
            ),
            goals: Vocabulary::from_labels(
                "ICS goal",
                &[
                    "Longer and healthier lives",
                    "Fairer outcomes for all",
                    "Better health and care services",
                    "Giving children and young people the best start in life",
                ],
            ),
            themes: Vocabulary::from_labels(
                "quality theme",
                &[
                    "Culture and climate",
                    "Positive experiences",
                    "Patient safety",
                    "Clinical and multi-professional leadership",
                    "Clinical effectiveness",
                ],
            ),
            sectors: Vocabulary::from_terms(
                "sector",
                &[
                    ("icb", "ICB", &["integrated care board"]),
                    ("nhs-trust", "NHS trust", &["trust", "foundation trust"]),
                    (
                        "primary-care",
                        "Primary care",
                        &["practice", "GP practice", "PCN", "GP federation"],
                    ),
                    (
                        "council",
                        "Council",
                        &["local authority", "county council", "unitary", "district"],
                    ),
                    ("public-health", "Public health", &[]),
                    ("social-care", "Social care", &[]),
                    (
                        "vcse",
                        "VCSE",
                        &[
                            "voluntary",
                            "charity",
                            "community interest company",
                            "CIC",
                            "social enterprise",
                            "community group",
                        ],
                    ),
                    ("hospice", "Hospice", &[]),
                    (
                        "university-research",
                        "University / research",
                        &["university", "research", "AHSN", "ARC"],
                    ),
                    ("healthwatch", "Healthwatch", &[]),
                    ("police", "Police", &[]),
                    ("housing", "Housing", &[]),
                    ("education", "Education", &["school", "college"]),
                    ("other", "Other", &[]),
                ],
            ),
            levels: Vocabulary::from_labels(
                "level",
                &["System", "Place", "Neighbourhood", "Provider", "Team"],
            ),
            stages: Vocabulary::from_labels(
                "stage",
                &[
                    "Understanding the issue",
                    "Designing changes",
                    "Testing and implementing",
                    "Embedding and spreading",
                    "Closed",
                ],
            ),
            methods: Vocabulary::from_terms(
                "method",
                &[
                    (
                        "model-for-improvement",
                        "Model for Improvement / PDSA",
                        &["PDSA", "MFI"],
                    ),
                    ("lean", "Lean", &[]),
                    ("six-sigma", "Six Sigma", &[]),
                    ("qsir", "QSIR", &[]),
                    ("engineering-better-care", "Engineering Better Care", &[]),
                    (
                        "vital-signs",
                        "Vital Signs / Flow Coaching Academy",
                        &["flow coaching academy", "FCA"],
                    ),
                    ("virginia-mason", "Virginia Mason", &[]),
                    (
                        "breakthrough-series",
                        "Breakthrough Series Collaborative",
                        &["BTS"],
                    ),
                    (
                        "rapid-improvement-events",
                        "Rapid improvement events",
                        &["RIE"],
                    ),
                    ("driver-diagrams", "Driver diagrams", &["driver diagram"]),
                    ("process-mapping", "Process mapping", &[]),
                    (
                        "co-production",
                        "Co-production / co-design",
                        &["co-design", "coproduction"],
                    ),
                    ("theory-of-change", "Theory of change", &[]),
                    ("demand-and-capacity", "Demand and capacity planning", &[]),
                    (
                        "population-health-management",
                        "Population health management",
                        &["PHM"],
                    ),
                    (
                        "asset-based-community-development",
                        "Asset-based community development",
                        &["ABCD"],
                    ),
                    ("peer-review", "Peer review", &["peer visits"]),
                    (
                        "psirf",
                        "PSIRF",
                        &["patient safety incident response framework"],
                    ),
                    ("human-factors", "Human factors", &[]),
                    ("positive-deviance", "Positive deviance", &[]),
                    ("social-prescribing", "Social prescribing", &[]),
                ],
            ),
            skills: Vocabulary::from_labels(
                "skill",
                &[
                    "Quality improvement",
                    "Service design",
                    "Data and measurement",
                    "Strategic planning",
                    "Change management",
                    "Clinical leadership",
                    "Lived experience",
                    "Facilitation",
                    "Evaluation",
                    "Community engagement",
                ],
            ),
            learning_types: Vocabulary::from_terms(
                "learning type",
                &[
                    ("case-study", "Case study", &[]),
                    ("lesson-learned", "Lesson learned", &["lesson"]),
                    ("what-didnt-work", "What didn't work", &["failure"]),
                    ("resource", "Resource / toolkit", &["toolkit"]),
                    ("event-write-up", "Event write-up", &["event"]),
                    ("testimony", "Testimony", &["story"]),
                ],
            ),
            outcomes: Vocabulary::from_terms(
                "outcome",
                &[
                    ("worked", "Worked", &[]),
                    ("didnt-work", "Didn't work", &[]),
                    ("mixed", "Mixed", &[]),
                    ("too-early", "Too early to tell", &["too early"]),
                ],
            ),
            sources: Vocabulary::from_terms(
                "source of learning",
                &[
                    (
                        "patient-feedback",
                        "Patient and public feedback and complaints",
                        &["complaints", "feedback"],
                    ),
                    ("thematic-review", "Thematic reviews of data", &[]),
                    (
                        "patient-safety-events",
                        "Patient safety events, audits, reports and inquests",
                        &["audit", "inquest"],
                    ),
                    ("safeguarding-review", "Safeguarding reviews", &[]),
                    (
                        "national-learning",
                        "Wider national learning",
                        &["national"],
                    ),
                    ("improvement-work", "Improvement work", &["project"]),
                ],
            ),
            measure_types: Vocabulary::from_labels(
                "measure type",
                &["Outcome", "Process", "Balancing"],
            ),
            team_roles: Vocabulary::from_terms(
                "team role",
                &[
                    ("lead", "Lead", &[]),
                    ("sponsor", "Sponsor", &[]),
                    ("coach", "Coach", &[]),
                    ("member", "Member", &[]),
                    (
                        "lived-experience-partner",
                        "Lived-experience partner",
                        &["lived experience"],
                    ),
                ],
            ),
            pdsa_acts: Vocabulary::from_labels("PDSA decision", &["Adopt", "Adapt", "Abandon"]),
            open_to: Vocabulary::from_labels(
                "open-to",
                &["Mentoring", "Collaboration", "Peer visits", "Coffee"],
            ),
            channels: Vocabulary::from_terms(
                "contact channel",
                &[
                    ("email", "Email", &[]),
                    ("phone", "Phone", &["telephone", "mobile"]),
                    (
                        "social",
                        "Social media",
                        &["twitter", "x", "linkedin", "mastodon"],
                    ),
                    ("website", "Website", &["web"]),
                ],
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_accept_labels_case_insensitively() {
        let v = Vocabularies::default();
        let t = v
            .priorities
            .resolve("Discharge and Safe Transfers of CARE")
            .unwrap();
        assert_eq!(t.slug, "discharge-and-safe-transfers-of-care");
        assert_eq!(
            v.priorities
                .resolve("children-and-young-peoples-mental-health")
                .unwrap()
                .label,
            "Children and young people's mental health"
        );
        assert_eq!(v.sectors.resolve("nhs-trust").unwrap().label, "NHS trust");
        assert_eq!(v.sectors.resolve("vcse").unwrap().slug, "vcse");
        assert_eq!(v.sectors.resolve("Charity").unwrap().slug, "vcse");
        assert_eq!(v.sectors.resolve("council").unwrap().slug, "council");
    }

    #[test]
    fn unknown_values_suggest_the_closest() {
        let v = Vocabularies::default();
        let err = v.priorities.resolve("discharge").unwrap_err();
        assert_eq!(err.suggestions[0], "discharge-and-safe-transfers-of-care");
        let msg = err.to_string();
        assert!(
            msg.contains("unknown priority value \"discharge\""),
            "{msg}"
        );
        assert!(
            msg.contains("did you mean discharge-and-safe-transfers-of-care"),
            "{msg}"
        );
        let err = v.sectors.resolve("nhs-trst").unwrap_err();
        assert_eq!(err.suggestions[0], "nhs-trust");
        assert!(
            v.sectors
                .resolve("zzzzzz")
                .unwrap_err()
                .suggestions
                .is_empty()
        );
    }

    #[test]
    fn slugify_is_kebab_case() {
        assert_eq!(
            slugify("Children and young people's mental health"),
            "children-and-young-peoples-mental-health"
        );
        assert_eq!(
            slugify("  Co-production / co-design "),
            "co-production-co-design"
        );
    }
}
