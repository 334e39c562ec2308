//! Tombstones: a signed order to erase an entry everywhere.
//!
//! A tombstone names the document, when and why, and is signed by a node
//! of the entry's owner organisation. Every node that accepts one deletes
//! the entry's changes, index and search rows (overwriting the freed bytes)
//! and refuses the entry if it ever arrives again.

use convene_model::DocumentId;
use libp2p_identity::ed25519;

use super::{Identity, NodeId, SignatureError};

const CONTEXT: &[u8] = b"convene/tombstone/v1\0";

/// A signed erasure of one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tombstone {
    pub doc: DocumentId,
    pub signer: [u8; 32],
    pub signature: [u8; 64],
    /// When it was made (unix ms, the signer's clock).
    pub at: i64,
    /// Why, in a few words ("withdrawn at the person's request"); never
    /// the erased content itself.
    pub reason: String,
}

fn payload(doc: &DocumentId, at: i64, reason: &str) -> Vec<u8> {
    let mut msg = Vec::with_capacity(CONTEXT.len() + 16 + 8 + reason.len());
    msg.extend_from_slice(CONTEXT);
    msg.extend_from_slice(doc.as_bytes());
    msg.extend_from_slice(&at.to_le_bytes());
    msg.extend_from_slice(reason.as_bytes());
    msg
}

impl Tombstone {
    pub fn sign(identity: &Identity, doc: DocumentId, at: i64, reason: &str) -> Self {
        Self {
            doc,
            signer: identity.public_bytes(),
            signature: identity.sign(&payload(&doc, at, reason)),
            at,
            reason: reason.to_string(),
        }
    }

    pub fn verify(&self) -> Result<(), SignatureError> {
        let key = ed25519::PublicKey::try_from_bytes(&self.signer)
            .map_err(|_| SignatureError::BadSigner)?;
        if key.verify(&payload(&self.doc, self.at, &self.reason), &self.signature) {
            Ok(())
        } else {
            Err(SignatureError::BadSignature)
        }
    }

    pub fn signer_id(&self) -> Option<NodeId> {
        NodeId::from_public_bytes(&self.signer)
    }

    /// What the catalogue compares in place of the document's heads.
    pub fn digest(&self) -> [u8; 32] {
        let mut h = blake3::Hasher::new();
        h.update(CONTEXT);
        h.update(self.doc.as_bytes());
        h.update(&self.signature);
        *h.finalize().as_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tombstones_verify_and_tampering_is_detected() {
        let id = Identity::generate();
        let t = Tombstone::sign(
            &id,
            DocumentId::from_bytes([1; 16]),
            5,
            "at the person's request",
        );
        t.verify().unwrap();
        let mut other = t.clone();
        other.doc = DocumentId::from_bytes([2; 16]);
        assert!(other.verify().is_err());
        let mut later = t;
        later.reason = "something else".into();
        assert!(later.verify().is_err());
    }
}
