//! Printable identifiers.
//!
//! A [`DocumentId`] is 16 random bytes chosen by the node that creates an
//! entry, printed in base58 (22 characters, no look-alike letters) so that it
//! can be read aloud, pasted into a URL and shortened to a unique prefix.
//! An organisation is identified by the id of its profile document
//! ([`OrgId`]): the profile is created with the organisation's first node and
//! every later entry names it as owner.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a string is not an id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{0:?} is not a valid id: ids are base58 (letters and digits without 0, O, I and l)")]
    NotBase58(String),
    #[error("{0:?} is not a valid id: it must decode to 16 bytes")]
    WrongLength(String),
}

/// The identity of one entry (one automerge document).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DocumentId([u8; 16]);

impl DocumentId {
    pub const LEN: usize = 16;

    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }

    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// Whether `s` could be the start of a printed id (used to tell an id
    /// prefix from a name on the command line).
    pub fn is_prefix_syntax(s: &str) -> bool {
        !s.is_empty() && s.len() <= 24 && bs58::decode(s).into_vec().is_ok() && !s.contains(' ')
    }
}

impl fmt::Display for DocumentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&bs58::encode(self.0).into_string())
    }
}

impl fmt::Debug for DocumentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DocumentId({self})")
    }
}

impl FromStr for DocumentId {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = bs58::decode(s)
            .into_vec()
            .map_err(|_| IdError::NotBase58(s.to_string()))?;
        Self::from_slice(&bytes).ok_or_else(|| IdError::WrongLength(s.to_string()))
    }
}

impl Serialize for DocumentId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DocumentId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The identity of a member organisation: the id of its profile entry.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OrgId(pub DocumentId);

impl fmt::Display for OrgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Debug for OrgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OrgId({})", self.0)
    }
}

impl FromStr for OrgId {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(OrgId)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_text() {
        let id = DocumentId::from_bytes([7; 16]);
        let s = id.to_string();
        assert_eq!(s.parse::<DocumentId>().unwrap(), id);
        assert!(matches!(
            "0OIl".parse::<DocumentId>(),
            Err(IdError::NotBase58(_))
        ));
        assert!(matches!(
            "abc".parse::<DocumentId>(),
            Err(IdError::WrongLength(_))
        ));
    }
}
