//! Keys and signatures: who made a change, and proof that they did.
//!
//! - [`keys`]: the node's Ed25519 key, which is also its libp2p identity.
//! - [`signature`]: a [`SignedChange`] is an automerge change plus its
//!   signer's public key and an Ed25519 signature over (document id, change
//!   hash). Verification recomputes the hash from the bytes, so neither the
//!   change nor the signature can be altered without detection.

pub mod keys;
pub mod signature;

pub use keys::{Identity, KeyError, NodeId};
pub use signature::{SignatureError, SignedChange};
