//! The messages of `/convene/sync/2` and their limits.
//!
//! Every message is a request answered by exactly one response (libp2p
//! request-response). Messages are encoded with postcard, a compact,
//! versioned-by-protocol-name binary encoding: fixed-size ids and hashes
//! are raw bytes, lists are length-prefixed. Decoding never trusts a length:
//! a frame over [`MAX_MESSAGE_BYTES`] is refused before it is read, and the
//! per-message caps below are checked by [`Request::check`] before any work
//! is done.

use serde::{Deserialize, Serialize};

use super::catalogue::{Fingerprint, Prefix};

/// The protocol name; a new incompatible version gets a new name.
pub const PROTOCOL: &str = "/convene/sync/2";

/// Largest encoded message, either direction.
pub const MAX_MESSAGE_BYTES: usize = 8 * 1024 * 1024;
/// Most ranges one reconciliation request may compare.
pub const MAX_RANGES: usize = 64;
/// Most documents one change request may ask for.
pub const MAX_DOCS: usize = 512;
/// Most changes one push may carry.
pub const MAX_CHANGES: usize = 16_384;
/// Most documents one announcement may list.
pub const MAX_ANNOUNCE: usize = 1024;
/// Most changes a push (an announcement carrying its changes) may carry.
pub const MAX_PUSH_CHANGES: usize = 256;
/// Most bytes of changes a node pushes to one peer in one message; larger
/// news goes as a plain announcement and the peer fetches it.
pub const PUSH_BUDGET: usize = 64 * 1024;
/// Most nodes a push may name as already having its documents.
pub const MAX_SEEN_BY: usize = 64;
/// Most heads a document may list (concurrent branches).
pub const MAX_HEADS: usize = 64;
/// Size a responder aims to keep a batch of changes under; the rest of the
/// documents are reported as `truncated` and asked for again.
pub const CHANGES_BUDGET: usize = 4 * 1024 * 1024;

pub type DocId = [u8; 16];
pub type Hash = [u8; 32];
/// blake3(document id ‖ sorted heads): equal digests mean equal documents.
pub type Digest = [u8; 32];
/// A short name of a node in a push's `seen_by`: the first 8 bytes of
/// blake3 of its peer id (see [`peer_tag`]).
pub type PeerTag = [u8; 8];

/// The digest of a document at these heads (as the store computes it:
/// blake3 of the id and the sorted heads).
pub fn digest_of(doc: &DocId, heads: &[Hash]) -> Digest {
    let mut sorted = heads.to_vec();
    sorted.sort_unstable();
    let mut hasher = blake3::Hasher::new();
    hasher.update(doc);
    for h in &sorted {
        hasher.update(h);
    }
    *hasher.finalize().as_bytes()
}

/// The tag of a node, as pushes name it.
pub fn peer_tag(peer: &libp2p::PeerId) -> PeerTag {
    let hash = blake3::hash(&peer.to_bytes());
    let mut tag = [0; 8];
    tag.copy_from_slice(&hash.as_bytes()[..8]);
    tag
}

/// A change as sent: the automerge bytes with their signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireChange {
    pub doc: DocId,
    pub hash: Hash,
    pub signer: [u8; 32],
    /// 64 bytes (serde has no 64-byte arrays); checked on receipt.
    pub signature: Vec<u8>,
    pub bytes: Vec<u8>,
}

/// A signed erasure as sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireTombstone {
    pub doc: DocId,
    pub signer: [u8; 32],
    /// 64 bytes; checked on receipt.
    pub signature: Vec<u8>,
    pub at: i64,
    pub reason: String,
}

/// Longest reason a tombstone may give, in bytes.
pub const MAX_REASON: usize = 1000;

/// A document and the heads one side has of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocHeads {
    pub doc: DocId,
    pub heads: Vec<Hash>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Compare these ranges of the catalogue the responder shows the
    /// requester; each comes with the requester's fingerprint of it.
    Reconcile { ranges: Vec<(Prefix, Fingerprint)> },
    /// Send the changes of these documents that a node with these heads
    /// lacks, and your own heads of them.
    GetChanges { docs: Vec<DocHeads> },
    /// Verify and store these changes, and take these erasures.
    PutChanges {
        changes: Vec<WireChange>,
        erased: Vec<WireTombstone>,
    },
    /// These documents changed here (live propagation).
    Announce { items: Vec<(DocId, Digest)> },
    /// Admit me: my join claim and my organisation's profile (the only
    /// request a node that is not yet a member may make).
    Join { changes: Vec<WireChange> },
    /// These documents changed here, and here are the changes that changed
    /// them (live propagation of small news without a fetch). `seen_by`
    /// names the nodes the sender knows have them or are being sent them:
    /// the receiver does not pass the news on to those. A peer that still
    /// lacks something afterwards (its digest differs) fetches as after an
    /// announcement.
    Push {
        items: Vec<(DocId, Digest)>,
        changes: Vec<WireChange>,
        seen_by: Vec<PeerTag>,
    },
}

/// Most changes a join request may carry.
pub const MAX_JOIN_CHANGES: usize = 256;

/// What the responder found for one requested range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RangeResult {
    /// Same fingerprint: nothing differs here.
    Same,
    /// The responder's items in the range, all of them.
    Items(Vec<(DocId, Digest)>),
    /// Too many to list: fingerprints of the range's sixteen sub-ranges.
    Split(Vec<(Prefix, Fingerprint)>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// One result per requested range, in order.
    Reconcile {
        results: Vec<RangeResult>,
    },
    Changes {
        changes: Vec<WireChange>,
        /// The responder's heads of every document it sent changes for.
        heads: Vec<DocHeads>,
        /// Documents the responder does not have (or will not show).
        unknown: Vec<DocId>,
        /// Documents left out to keep the message small: ask again.
        truncated: Vec<DocId>,
        /// Tombstones of asked-for documents that were erased.
        erased: Vec<WireTombstone>,
    },
    Applied {
        applied: u32,
        already_had: u32,
        rejected: u32,
    },
    Ack,
    /// The requester is now a member of this community.
    Joined {
        community: String,
    },
    /// The responder will not sync with the requester.
    Refused {
        reason: String,
    },
}

/// A message that breaks the protocol's limits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("protocol violation: {0}")]
pub struct Violation(pub String);

fn cap(what: &str, n: usize, max: usize) -> Result<(), Violation> {
    if n > max {
        Err(Violation(format!(
            "{n} {what} in one message (at most {max})"
        )))
    } else {
        Ok(())
    }
}

impl Request {
    /// Checks the per-message caps.
    pub fn check(&self) -> Result<(), Violation> {
        match self {
            Request::Reconcile { ranges } => {
                cap("ranges", ranges.len(), MAX_RANGES)?;
                ranges.iter().try_for_each(|(p, _)| p.check())
            }
            Request::GetChanges { docs } => {
                cap("documents", docs.len(), MAX_DOCS)?;
                docs.iter()
                    .try_for_each(|d| cap("heads", d.heads.len(), MAX_HEADS))
            }
            Request::PutChanges { changes, erased } => {
                cap("changes", changes.len(), MAX_CHANGES)?;
                cap("erasures", erased.len(), MAX_DOCS)?;
                erased
                    .iter()
                    .try_for_each(|t| cap("bytes of reason", t.reason.len(), MAX_REASON))
            }
            Request::Announce { items } => cap("announced documents", items.len(), MAX_ANNOUNCE),
            Request::Join { changes } => cap("changes", changes.len(), MAX_JOIN_CHANGES),
            Request::Push {
                items,
                changes,
                seen_by,
            } => {
                cap("pushed documents", items.len(), MAX_ANNOUNCE)?;
                cap("pushed changes", changes.len(), MAX_PUSH_CHANGES)?;
                cap("nodes seen by", seen_by.len(), MAX_SEEN_BY)
            }
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Request::Reconcile { .. } => "reconcile",
            Request::GetChanges { .. } => "get-changes",
            Request::PutChanges { .. } => "put-changes",
            Request::Announce { .. } => "announce",
            Request::Join { .. } => "join",
            Request::Push { .. } => "push",
        }
    }
}

impl Response {
    pub fn check(&self) -> Result<(), Violation> {
        match self {
            Response::Reconcile { results } => {
                cap("range results", results.len(), MAX_RANGES)?;
                for r in results {
                    match r {
                        RangeResult::Split(children) => {
                            cap("sub-ranges", children.len(), 16)?;
                            children.iter().try_for_each(|(p, _)| p.check())?;
                        }
                        RangeResult::Items(items) => {
                            cap("items", items.len(), super::catalogue::MAX_ITEMS)?
                        }
                        RangeResult::Same => {}
                    }
                }
                Ok(())
            }
            Response::Changes {
                changes,
                heads,
                unknown,
                truncated,
                erased,
            } => {
                cap("changes", changes.len(), MAX_CHANGES)?;
                cap("erasures", erased.len(), MAX_DOCS)?;
                erased
                    .iter()
                    .try_for_each(|t| cap("bytes of reason", t.reason.len(), MAX_REASON))?;
                cap(
                    "documents",
                    heads.len() + unknown.len() + truncated.len(),
                    3 * MAX_DOCS,
                )?;
                heads
                    .iter()
                    .try_for_each(|d| cap("heads", d.heads.len(), MAX_HEADS))
            }
            _ => Ok(()),
        }
    }
}

/// Encodes a message (postcard).
pub fn encode<T: Serialize>(msg: &T) -> Vec<u8> {
    postcard::to_stdvec(msg).expect("sync messages always encode")
}

/// Decodes a message; any malformed input is an error, never a panic.
/// The message must fill the bytes exactly: trailing bytes (which postcard
/// alone would ignore) are refused, so one frame has one meaning.
pub fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, Violation> {
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(Violation(format!("message of {} bytes", bytes.len())));
    }
    let (msg, rest) = postcard::take_from_bytes(bytes)
        .map_err(|e| Violation(format!("undecodable message: {e}")))?;
    if !rest.is_empty() {
        return Err(Violation(format!(
            "{} bytes after the end of the message",
            rest.len()
        )));
    }
    Ok(msg)
}

impl From<&crate::trust::SignedChange> for WireChange {
    fn from(c: &crate::trust::SignedChange) -> Self {
        Self {
            doc: *c.doc.as_bytes(),
            hash: c.hash,
            signer: c.signer,
            signature: c.signature.to_vec(),
            bytes: c.bytes.clone(),
        }
    }
}

impl TryFrom<WireChange> for crate::trust::SignedChange {
    type Error = Violation;

    fn try_from(w: WireChange) -> Result<Self, Self::Error> {
        let signature = signature64(w.signature)?;
        Ok(Self {
            doc: convene_model::DocumentId::from_bytes(w.doc),
            hash: w.hash,
            bytes: w.bytes,
            signer: w.signer,
            signature,
        })
    }
}

impl From<&crate::trust::Tombstone> for WireTombstone {
    fn from(t: &crate::trust::Tombstone) -> Self {
        Self {
            doc: *t.doc.as_bytes(),
            signer: t.signer,
            signature: t.signature.to_vec(),
            at: t.at,
            reason: t.reason.clone(),
        }
    }
}

impl TryFrom<WireTombstone> for crate::trust::Tombstone {
    type Error = Violation;

    fn try_from(w: WireTombstone) -> Result<Self, Self::Error> {
        let signature = signature64(w.signature)?;
        Ok(Self {
            doc: convene_model::DocumentId::from_bytes(w.doc),
            signer: w.signer,
            signature,
            at: w.at,
            reason: w.reason,
        })
    }
}

fn signature64(bytes: Vec<u8>) -> Result<[u8; 64], Violation> {
    bytes
        .try_into()
        .map_err(|_| Violation("a signature is not 64 bytes".into()))
}

/// Received changes and tombstones as the node's own types (a signature
/// of the wrong length is a protocol violation; whether it verifies is
/// checked later, when they are applied).
pub fn into_signed(
    changes: Vec<WireChange>,
    erased: Vec<WireTombstone>,
) -> Result<
    (
        Vec<crate::trust::SignedChange>,
        Vec<crate::trust::Tombstone>,
    ),
    Violation,
> {
    let changes = changes
        .into_iter()
        .map(TryFrom::try_from)
        .collect::<Result<_, _>>()?;
    let erased = erased
        .into_iter()
        .map(TryFrom::try_from)
        .collect::<Result<_, _>>()?;
    Ok((changes, erased))
}
