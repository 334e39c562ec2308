//! Keys and signatures: who made a change, and proof that they did.
//!
//! - [`keys`]: the node's Ed25519 key, which is also its libp2p identity.
//! - [`signature`]: a [`SignedChange`] is an automerge change plus its
//!   signer's public key and an Ed25519 signature over (document id, change
//!   hash). Verification recomputes the hash from the bytes, so neither the
//!   change nor the signature can be altered without detection.
//!
//!   Before anything is decoded, [`columns`] reads what the bytes declare
//!   (their hash, and the rows their columns claim) in time proportional
//!   to their length, and the signature is checked against that hash.
//! - [`tombstone`]: a signed order to erase an entry everywhere.
//! - [`membership`]: who belongs to the community, from the charter and
//!   newcomers' join claims.
//!
//! Document ids are self-certifying ([`org_id`], [`entry_id`]): a received
//! document's first change must match its id, so no member can make a
//! different document under an id that belongs to someone else.

pub mod columns;
pub mod keys;
pub mod membership;
pub mod signature;
pub mod tombstone;

pub use keys::{Identity, KeyError, NodeId};

use convene_model::DocumentId;

/// The id of the organisation whose first node has public key `key`.
pub fn org_id(key: &[u8; 32]) -> DocumentId {
    let mut h = blake3::Hasher::new();
    h.update(b"convene/organisation/v1\0");
    h.update(key);
    DocumentId::from_slice(&h.finalize().as_bytes()[..16]).expect("16 bytes")
}

/// The id of the entry whose first change has hash `hash`.
pub fn entry_id(hash: &[u8; 32]) -> DocumentId {
    DocumentId::from_slice(&hash[..16]).expect("16 bytes")
}
pub use membership::Membership;
pub use signature::{SignatureError, SignedChange};
pub use tombstone::Tombstone;
