//! How small value types are written into automerge documents.
//!
//! Enumerations and identifiers are stored as their printed form (a string),
//! so that a document read by a newer or older version, or dumped with
//! automerge's own tools, is self-explanatory. [`Prose`] is long text stored
//! as an automerge `Text` object, so concurrent edits merge by character, and
//! [`Timestamp`] is milliseconds since the Unix epoch.

use std::fmt;
use std::str::FromStr;

use autosurgeon::reconcile::TextReconciler;
use autosurgeon::{Hydrate, HydrateError, Reconcile, Reconciler};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

/// Implements `Reconcile`/`Hydrate` for a type through its `Display` and
/// `FromStr` impls.
macro_rules! string_codec {
    ($ty:ty, $expected:literal) => {
        impl autosurgeon::Reconcile for $ty {
            type Key<'a> = autosurgeon::reconcile::NoKey;

            fn reconcile<R: autosurgeon::Reconciler>(&self, mut r: R) -> Result<(), R::Error> {
                r.str(self.to_string())
            }
        }

        impl autosurgeon::Hydrate for $ty {
            fn hydrate_string(s: &'_ str) -> Result<Self, autosurgeon::HydrateError> {
                s.parse()
                    .map_err(|_| autosurgeon::HydrateError::unexpected($expected, s.to_string()))
            }
        }
    };
}
pub(crate) use string_codec;

string_codec!(crate::DocumentId, "a document id");
string_codec!(crate::OrgId, "an organisation id");

/// Long prose (a body, a problem statement) stored as automerge `Text`.
///
/// Reconciling diffs the new value against the text in the document, so an
/// edit touches only the characters that changed and merges with concurrent
/// edits instead of replacing them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Prose(pub String);

impl Prose {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.trim().is_empty()
    }
}

impl From<&str> for Prose {
    fn from(s: &str) -> Self {
        Self(s.to_string())
    }
}

impl fmt::Display for Prose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Reconcile for Prose {
    type Key<'a> = autosurgeon::reconcile::NoKey;

    fn reconcile<R: Reconciler>(&self, mut r: R) -> Result<(), R::Error> {
        let mut text = r.text()?;
        text.update(&self.0)
    }
}

impl Hydrate for Prose {
    fn hydrate_text<D: autosurgeon::ReadDoc>(
        doc: &D,
        obj: &automerge::ObjId,
    ) -> Result<Self, HydrateError> {
        Ok(Self(doc.text(obj)?))
    }

    fn hydrate_string(s: &'_ str) -> Result<Self, HydrateError> {
        Ok(Self(s.to_string()))
    }
}

/// A moment, in milliseconds since the Unix epoch; printed as RFC 3339.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn millis(self) -> i64 {
        self.0
    }

    fn datetime(self) -> Option<DateTime<Utc>> {
        DateTime::from_timestamp_millis(self.0)
    }

    /// `2026-11-21 23:30` (UTC), for tables.
    pub fn short(self) -> String {
        self.datetime().map_or_else(
            || self.0.to_string(),
            |d| d.format("%Y-%m-%d %H:%M").to_string(),
        )
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.datetime() {
            Some(d) => f.write_str(&d.to_rfc3339_opts(SecondsFormat::Millis, true)),
            None => write!(f, "{}", self.0),
        }
    }
}

impl FromStr for Timestamp {
    type Err = chrono::ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(DateTime::parse_from_rfc3339(s)?.timestamp_millis()))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse()
            .map_err(|e| serde::de::Error::custom(format!("{s:?} is not an RFC 3339 time: {e}")))
    }
}

impl Reconcile for Timestamp {
    type Key<'a> = autosurgeon::reconcile::NoKey;

    fn reconcile<R: Reconciler>(&self, mut r: R) -> Result<(), R::Error> {
        r.timestamp(self.0)
    }
}

impl Hydrate for Timestamp {
    fn hydrate_timestamp(t: i64) -> Result<Self, HydrateError> {
        Ok(Self(t))
    }

    fn hydrate_int(t: i64) -> Result<Self, HydrateError> {
        Ok(Self(t))
    }
}
