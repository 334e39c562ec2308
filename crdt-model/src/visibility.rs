//! Who may see an entry.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::OrgId;

/// Who may see an entry (and, for contacts, each contact channel).
///
/// Printed and stored as `community`, `organisation`, or a comma-separated
/// list of organisation ids; the owner's own nodes can always see it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub enum Visibility {
    /// Every member of the community.
    #[default]
    Community,
    /// Only the owner organisation's own nodes.
    Organisation,
    /// The owner and the listed organisations.
    Orgs(Vec<OrgId>),
}

/// A visibility that is neither keyword nor a list of organisation ids.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid visibility {0:?}: expected community, organisation, or a comma-separated list of organisation ids"
)]
pub struct VisibilityError(pub String);

impl fmt::Display for Visibility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Visibility::Community => f.write_str("community"),
            Visibility::Organisation => f.write_str("organisation"),
            Visibility::Orgs(orgs) => {
                let ids: Vec<String> = orgs.iter().map(ToString::to_string).collect();
                f.write_str(&ids.join(","))
            }
        }
    }
}

impl FromStr for Visibility {
    type Err = VisibilityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_lowercase().as_str() {
            "community" | "" => Ok(Visibility::Community),
            "organisation" | "organization" | "org" => Ok(Visibility::Organisation),
            _ => {
                let orgs: Result<Vec<OrgId>, _> =
                    s.split(',').map(|p| p.trim().parse::<OrgId>()).collect();
                match orgs {
                    Ok(mut orgs) if !orgs.is_empty() => {
                        orgs.sort();
                        orgs.dedup();
                        Ok(Visibility::Orgs(orgs))
                    }
                    _ => Err(VisibilityError(s.to_string())),
                }
            }
        }
    }
}

impl Serialize for Visibility {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Visibility {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

crate::codec::string_codec!(Visibility, "a visibility");
