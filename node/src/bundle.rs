//! Bundles: signed changes on a USB stick or in an email, for nodes that
//! rarely (or never) connect.
//!
//! # Format (version 1)
//!
//! ```text
//! "CONVENE-BUNDLE\n"  magic, 15 bytes
//! version             1 byte
//! length              8 bytes, little-endian: bytes of the compressed body
//! checksum            32 bytes: blake3 of the compressed body
//! body                deflate(postcard(Body))
//! ```
//!
//! The checksum catches truncation and corruption before anything is
//! read; every signature is then verified before anything is applied, and
//! a bundle with one bad signature is refused whole. What is left goes
//! through exactly the checks sync applies (permissions, membership,
//! tombstones), so importing a bundle is as safe as syncing, and importing
//! it twice changes nothing.

use std::collections::BTreeSet;
use std::io::{Read, Write};

use convene_model::{DocumentId, OrgId};
use serde::{Deserialize, Serialize};

use crate::error::NodeError;
use crate::node::{ApplyReport, Node, OnProgress, now};
use crate::sync::catalogue::Class;
use crate::sync::wire::{WireChange, WireTombstone};

const MAGIC: &[u8] = b"CONVENE-BUNDLE\n";
const VERSION: u8 = 1;
const HEADER: usize = 15 + 1 + 8 + 32;
/// Largest body a bundle may inflate to (a corrupt length cannot make a
/// node allocate more).
const MAX_BODY: u64 = 2 * 1024 * 1024 * 1024;

/// Why a bundle was refused.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("this is not a Convene bundle")]
    NotABundle,
    #[error("the bundle is version {0}; this Convene reads version {VERSION}: upgrade convene")]
    TooNew(u8),
    #[error("the bundle is truncated ({have} of {want} bytes): copy it again")]
    Truncated { have: usize, want: usize },
    #[error("the bundle is damaged (its checksum does not match): copy it again")]
    Damaged,
    #[error("the bundle's content cannot be read: {0}")]
    Undecodable(String),
    #[error("the bundle was altered: {0} of its signatures do not verify; nothing was imported")]
    Tampered(usize),
}

/// What a bundle carries.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Body {
    /// The exporting node's community, if any.
    pub community: Option<[u8; 16]>,
    /// When it was made (unix ms).
    pub created: i64,
    /// Node id of the exporter.
    pub exported_by: String,
    /// The organisation it was made for, if any.
    pub for_org: Option<String>,
    pub changes: Vec<WireChange>,
    pub tombstones: Vec<WireTombstone>,
}

/// What to leave out of an export.
#[derive(Debug, Clone, Default)]
pub enum Since {
    #[default]
    Everything,
    /// Changes this node stored at or after this time (unix ms).
    Time(i64),
    /// Changes not already in this earlier bundle.
    Bundle(BTreeSet<[u8; 32]>),
}

/// Encodes a body as bundle bytes.
pub fn encode(body: &Body) -> Vec<u8> {
    encode_with(body, &mut |_, _| {})
}

/// [`encode`], telling `on` how many bytes of the body are compressed.
pub fn encode_with(body: &Body, on: OnProgress<'_>) -> Vec<u8> {
    const STEP: usize = 1 << 20;
    let raw = postcard::to_stdvec(body).expect("bundles encode");
    let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    let total = raw.len() as u64;
    let mut done = 0;
    for chunk in raw.chunks(STEP) {
        z.write_all(chunk).expect("writing to memory");
        done += chunk.len() as u64;
        on(done, total);
    }
    let compressed = z.finish().expect("writing to memory");
    let mut out = Vec::with_capacity(HEADER + compressed.len());
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.extend_from_slice(&(compressed.len() as u64).to_le_bytes());
    out.extend_from_slice(blake3::hash(&compressed).as_bytes());
    out.extend_from_slice(&compressed);
    out
}

/// Reads bundle bytes, checking magic, version, length and checksum.
pub fn decode(bytes: &[u8]) -> Result<Body, BundleError> {
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        return Err(BundleError::NotABundle);
    }
    if bytes.len() < HEADER {
        return Err(BundleError::Truncated {
            have: bytes.len(),
            want: HEADER,
        });
    }
    let version = bytes[MAGIC.len()];
    if version != VERSION {
        return Err(BundleError::TooNew(version));
    }
    let len = u64::from_le_bytes(bytes[16..24].try_into().expect("8 bytes"));
    let want = HEADER as u64 + len;
    if (bytes.len() as u64) < want {
        return Err(BundleError::Truncated {
            have: bytes.len(),
            want: want as usize,
        });
    }
    if bytes.len() as u64 > want {
        return Err(BundleError::Damaged);
    }
    let compressed = &bytes[HEADER..];
    if blake3::hash(compressed).as_bytes() != &bytes[24..56] {
        return Err(BundleError::Damaged);
    }
    let mut raw = Vec::new();
    flate2::read::DeflateDecoder::new(compressed)
        .take(MAX_BODY)
        .read_to_end(&mut raw)
        .map_err(|e| BundleError::Undecodable(e.to_string()))?;
    let (body, rest) =
        postcard::take_from_bytes(&raw).map_err(|e| BundleError::Undecodable(e.to_string()))?;
    if !rest.is_empty() {
        return Err(BundleError::Undecodable(format!(
            "{} bytes after the end of the body",
            rest.len()
        )));
    }
    Ok(body)
}

impl Node {
    /// Makes a bundle of the signed changes and tombstones that `for_org`
    /// may see (everything shared with the whole community if `None`).
    pub fn export_bundle(&self, for_org: Option<OrgId>, since: &Since) -> Result<Body, NodeError> {
        let store = self.store();
        // For an organisation: what it may see; without one: only what the
        // whole community may see.
        let orgs: Option<BTreeSet<String>> = for_org.map(|o| [o.to_string()].into());
        // Drafts never leave this node, whoever the bundle is for.
        let drafts = store.drafts()?;
        let visible = |owner: &str, visibility: &str, status: &str| {
            let class = Class::of(owner, visibility, status);
            match &orgs {
                Some(orgs) => class.visible_to(orgs),
                None => class == Class::Community,
            }
        };
        let classes = store.doc_classes()?;
        let mut changes = Vec::new();
        for (stored, received) in store.all_changes_received()? {
            let Some((owner, visibility)) = classes.get(&stored.doc) else {
                continue;
            };
            let status = if drafts.contains(&stored.doc) {
                "draft"
            } else {
                ""
            };
            if !visible(owner, visibility, status) {
                continue;
            }
            let keep = match since {
                Since::Everything => true,
                Since::Time(t) => received >= *t,
                Since::Bundle(seen) => !seen.contains(&stored.hash),
            };
            if keep {
                changes.push(WireChange::from(&stored));
            }
        }
        let (tombstones, _) = store.tombstones_since(0)?;
        let tombstones = tombstones
            .iter()
            .filter(|t| visible(&t.owner, &t.visibility, ""))
            .map(|t| WireTombstone::from(&t.tombstone))
            .collect();
        Ok(Body {
            community: self.membership().map(|m| *m.community.as_bytes()),
            created: now().millis(),
            exported_by: self.node_id().to_string(),
            for_org: for_org.map(|o| o.to_string()),
            changes,
            tombstones,
        })
    }

    /// Imports a bundle: every signature is verified first (one bad one
    /// refuses the whole bundle), then the changes and tombstones go
    /// through the same checks as sync.
    pub fn import_bundle(&mut self, body: Body) -> Result<ApplyReport, NodeError> {
        self.import_bundle_with(body, &mut |_, _| {})
    }

    /// [`Node::import_bundle`], telling `on` how many of the bundle's
    /// documents are done.
    pub fn import_bundle_with(
        &mut self,
        body: Body,
        on: OnProgress<'_>,
    ) -> Result<ApplyReport, NodeError> {
        let (changes, tombstones) = crate::sync::wire::into_signed(body.changes, body.tombstones)
            .map_err(|_| BundleError::Tampered(1))?;
        // Verified once: the verdicts go on to the checks.
        let changes = crate::apply::verify_all(changes);
        let bad = changes.iter().filter(|(_, v)| v.is_err()).count()
            + tombstones.iter().filter(|t| t.verify().is_err()).count();
        if bad > 0 {
            return Err(BundleError::Tampered(bad).into());
        }
        self.apply_verified(changes, tombstones, on)
    }
}

/// The change hashes a bundle holds (for `--since BUNDLE`).
pub fn hashes(body: &Body) -> BTreeSet<[u8; 32]> {
    body.changes.iter().map(|c| c.hash).collect()
}

/// The ids of the documents a bundle touches.
pub fn documents(body: &Body) -> BTreeSet<DocumentId> {
    body.changes
        .iter()
        .map(|c| DocumentId::from_bytes(c.doc))
        .chain(
            body.tombstones
                .iter()
                .map(|t| DocumentId::from_bytes(t.doc)),
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body() -> Body {
        Body {
            community: None,
            created: 1,
            exported_by: "a node".into(),
            for_org: None,
            changes: Vec::new(),
            tombstones: Vec::new(),
        }
    }

    /// A bundle whose compressed body is `raw`, with a correct header.
    fn wrap(raw: &[u8]) -> Vec<u8> {
        let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(raw).unwrap();
        let compressed = z.finish().unwrap();
        let mut out = MAGIC.to_vec();
        out.push(VERSION);
        out.extend_from_slice(&(compressed.len() as u64).to_le_bytes());
        out.extend_from_slice(blake3::hash(&compressed).as_bytes());
        out.extend_from_slice(&compressed);
        out
    }

    #[test]
    fn bytes_after_the_body_are_refused() {
        let raw = postcard::to_stdvec(&body()).unwrap();
        assert_eq!(decode(&wrap(&raw)).unwrap(), body());
        let mut longer = raw.clone();
        longer.extend_from_slice(b"smuggled");
        let err = decode(&wrap(&longer)).unwrap_err().to_string();
        assert!(err.contains("8 bytes after the end"), "{err}");
    }

    #[test]
    fn encoding_reports_progress_up_to_the_whole_body() {
        let mut calls = Vec::new();
        let bytes = encode_with(&body(), &mut |done, total| calls.push((done, total)));
        let raw = postcard::to_stdvec(&body()).unwrap().len() as u64;
        assert_eq!(calls.last(), Some(&(raw, raw)));
        assert_eq!(decode(&bytes).unwrap(), body());
    }
}
