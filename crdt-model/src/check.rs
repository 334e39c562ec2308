//! Validation with precise messages.
//!
//! Checking an entry does two things in one pass: it *normalises* what a
//! person typed (a vocabulary label becomes its slug, whitespace is trimmed)
//! and it *validates* (required fields, known vocabulary values, dates,
//! lengths). Every problem names its field path (`measures[1].data[0].date`)
//! and says what is wrong; all problems are collected, not only the first.
//! The same check runs on publish and on every document received from a
//! peer, where normalisation is a no-op and any problem flags the document.

use std::fmt;

use chrono::NaiveDate;

use crate::vocab::Vocabulary;

/// One thing wrong with an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Path of the field, e.g. `title` or `measures[0].data[2].value`.
    pub field: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Every problem found in one entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Problems(pub Vec<Problem>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

/// Longest single-line field (titles, names), in characters.
pub const MAX_LINE: usize = 300;
/// Longest prose field, in characters (about 30 pages).
pub const MAX_PROSE: usize = 100_000;

/// Collects problems while walking an entry.
#[derive(Debug, Default)]
pub struct Checker {
    path: Vec<String>,
    problems: Vec<Problem>,
}

impl Checker {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn finish(self) -> Result<(), Problems> {
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(Problems(self.problems))
        }
    }

    fn path_of(&self, field: &str) -> String {
        let mut p = String::new();
        for part in &self.path {
            if !p.is_empty() && !part.starts_with('[') {
                p.push('.');
            }
            p.push_str(part);
        }
        if !field.is_empty() {
            if !p.is_empty() {
                p.push('.');
            }
            p.push_str(field);
        }
        p
    }

    pub fn problem(&mut self, field: &str, message: impl Into<String>) {
        let field = self.path_of(field);
        self.problems.push(Problem {
            field,
            message: message.into(),
        });
    }

    /// Runs `f` with `name[index]` prepended to every field path.
    pub fn each<T>(&mut self, name: &str, items: &mut [T], mut f: impl FnMut(&mut Self, &mut T)) {
        for (i, item) in items.iter_mut().enumerate() {
            self.path.push(name.to_string());
            self.path.push(format!("[{i}]"));
            f(self, item);
            self.path.pop();
            self.path.pop();
        }
    }

    /// A single-line text: trimmed, at most [`MAX_LINE`] characters, no
    /// line breaks; `required` refuses an empty value.
    pub fn line(&mut self, field: &str, value: &mut String, required: bool) {
        let trimmed = value.trim();
        if trimmed.len() != value.len() {
            *value = trimmed.to_string();
        }
        if required && value.is_empty() {
            self.problem(field, "is required");
        } else if value.chars().count() > MAX_LINE {
            self.problem(field, format!("is longer than {MAX_LINE} characters"));
        } else if value.contains(['\n', '\r']) {
            self.problem(field, "must be a single line");
        }
    }

    /// Long text: at most [`MAX_PROSE`] characters.
    pub fn prose(&mut self, field: &str, value: &str, required: bool) {
        if required && value.trim().is_empty() {
            self.problem(field, "is required");
        } else if value.chars().count() > MAX_PROSE {
            self.problem(field, format!("is longer than {MAX_PROSE} characters"));
        }
    }

    /// Free tags or names: each trimmed, non-empty, single-line; duplicates dropped.
    pub fn lines(&mut self, field: &str, values: &mut Vec<String>) {
        for (i, v) in values.iter_mut().enumerate() {
            self.line(&format!("{field}[{i}]"), v, true);
        }
        dedup(values);
    }

    /// A vocabulary value: a label or alias becomes its slug.
    pub fn term(&mut self, field: &str, vocab: &Vocabulary, value: &mut String) {
        match vocab.resolve(value) {
            Ok(t) => *value = t.slug.clone(),
            Err(e) => self.problem(field, e.to_string()),
        }
    }

    pub fn opt_term(&mut self, field: &str, vocab: &Vocabulary, value: &mut Option<String>) {
        if let Some(v) = value {
            if v.trim().is_empty() {
                *value = None;
            } else {
                self.term(field, vocab, v);
            }
        }
    }

    pub fn terms(&mut self, field: &str, vocab: &Vocabulary, values: &mut Vec<String>) {
        for v in values.iter_mut() {
            self.term(field, vocab, v);
        }
        dedup(values);
    }

    /// A calendar date, `YYYY-MM-DD`.
    pub fn date(&mut self, field: &str, value: &str) {
        if NaiveDate::parse_from_str(value, "%Y-%m-%d").is_err() {
            self.problem(
                field,
                format!("{value:?} is not a date (expected YYYY-MM-DD)"),
            );
        }
    }

    pub fn number(&mut self, field: &str, value: Option<f64>) {
        if value.is_some_and(|v| !v.is_finite()) {
            self.problem(field, "must be a finite number");
        }
    }
}

fn dedup(values: &mut Vec<String>) {
    let mut seen = std::collections::HashSet::new();
    values.retain(|v| seen.insert(v.clone()));
}
