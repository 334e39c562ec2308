//! Signed changes.

use automerge::{Change, ChangeHash};
use convene_model::DocumentId;
use libp2p_identity::ed25519;

use super::columns::{self, Shape, ShapeError};
use super::{Identity, NodeId};

/// Domain separation: a Convene change signature can never be mistaken for
/// a signature over anything else made with the same key.
const CONTEXT: &[u8] = b"convene/change/v1\0";

/// How [`SignatureError::TooLarge`] reads.
const TOO_LARGE: &str = "change is larger than any honest change";

/// Why a change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("change bytes are not an automerge change: {0}")]
    Undecodable(String),
    #[error("change bytes are compressed (Convene signs, sends and stores changes uncompressed)")]
    Compressed,
    #[error("{}: {}", TOO_LARGE, .0)]
    TooLarge(String),
    /// Within the bounds of one change, but over what the changes
    /// received with it may declare together ([`columns::Budget`]).
    #[error("the changes received with it declare more operations than their size allows")]
    OverBudget,
    #[error("change hash does not match its bytes")]
    HashMismatch,
    #[error("signer is not an Ed25519 public key")]
    BadSigner,
    #[error("signature does not verify")]
    BadSignature,
}

/// One automerge change as stored and sent: never without its signature.
#[derive(Clone, PartialEq, Eq)]
pub struct SignedChange {
    pub doc: DocumentId,
    pub hash: [u8; 32],
    /// The change exactly as automerge encoded it.
    pub bytes: Vec<u8>,
    /// The signer's raw Ed25519 public key.
    pub signer: [u8; 32],
    pub signature: [u8; 64],
}

impl std::fmt::Debug for SignedChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedChange")
            .field("doc", &self.doc)
            .field("hash", &ChangeHash(self.hash))
            .field("len", &self.bytes.len())
            .field("signer", &NodeId::from_public_bytes(&self.signer))
            .finish()
    }
}

fn payload(doc: &DocumentId, hash: &[u8; 32]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(CONTEXT.len() + 16 + 32);
    msg.extend_from_slice(CONTEXT);
    msg.extend_from_slice(doc.as_bytes());
    msg.extend_from_slice(hash);
    msg
}

/// What a change's bytes declare ([`columns::read`]), made only once the
/// signature over the hash worked out from them holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed(Shape);

impl Signed {
    pub fn shape(&self) -> &Shape {
        &self.0
    }
}

impl SignedChange {
    /// Signs a change this node just made.
    pub fn sign(identity: &Identity, doc: DocumentId, change: &Change) -> Self {
        let hash = change.hash().0;
        Self {
            doc,
            hash,
            bytes: change.raw_bytes().to_vec(),
            signer: identity.public_bytes(),
            signature: identity.sign(&payload(&doc, &hash)),
        }
    }

    /// Signs `bytes` as they are, under `hash`: what a member could send
    /// with its own key, for tests that replay it (with the `testing`
    /// feature only).
    #[cfg(any(test, feature = "testing"))]
    pub fn sign_raw(identity: &Identity, doc: DocumentId, bytes: Vec<u8>, hash: [u8; 32]) -> Self {
        Self {
            doc,
            hash,
            bytes,
            signer: identity.public_bytes(),
            signature: identity.sign(&payload(&doc, &hash)),
        }
    }

    /// Checks the signature and that the bytes hash to the signed hash, and
    /// returns the decoded change.
    ///
    /// Nothing is decoded until the bytes have been read for what they
    /// declare ([`columns::read`]) and the signature has been checked
    /// against the hash worked out from them:
    /// - A compressed change is refused unread. It hashes the same as its
    ///   uncompressed form, so a member's valid signature covers it too;
    ///   and automerge inflates it whole, so a few kilobytes from a peer or
    ///   a bundle could ask for gigabytes of memory.
    /// - A change whose columns declare more rows than any honest change
    ///   has is refused unread: automerge would walk every row (and collect
    ///   every row's predecessors) before anything else is checked.
    /// - A change altered on the way, or signed by someone else, is refused
    ///   before automerge sees it.
    pub fn verify(&self) -> Result<Change, SignatureError> {
        self.verify_shaped(self.shape())
    }

    /// What the bytes declare, read without decoding them, once the
    /// signature over the hash worked out from them holds: a change that
    /// was altered, or signed by someone else, declares nothing (and so
    /// uses up none of what changes received with it may declare).
    pub fn shape(&self) -> Result<Signed, SignatureError> {
        let shape = columns::read(&self.bytes).map_err(|e| match e {
            ShapeError::Compressed => SignatureError::Compressed,
            ShapeError::Malformed(_) => SignatureError::Undecodable(e.to_string()),
            ShapeError::TooManyRows
            | ShapeError::TooManyPredecessors
            | ShapeError::TooManyStringBytes
            | ShapeError::TooManyActors => SignatureError::TooLarge(e.to_string()),
        })?;
        if shape.hash != self.hash {
            return Err(SignatureError::HashMismatch);
        }
        let key = ed25519::PublicKey::try_from_bytes(&self.signer)
            .map_err(|_| SignatureError::BadSigner)?;
        if !key.verify(&payload(&self.doc, &self.hash), &self.signature) {
            return Err(SignatureError::BadSignature);
        }
        Ok(Signed(shape))
    }

    /// [`SignedChange::verify`] given what [`SignedChange::shape`] read of
    /// this change (or why it refused it): the bytes are decoded only now.
    pub(crate) fn verify_shaped(
        &self,
        shape: Result<Signed, SignatureError>,
    ) -> Result<Change, SignatureError> {
        self.matching(shape)?;
        self.decode()
    }

    /// What [`SignedChange::shape`] read of this change, if it read these
    /// bytes as having this change's hash.
    pub(crate) fn matching(
        &self,
        shape: Result<Signed, SignatureError>,
    ) -> Result<Signed, SignatureError> {
        let shape = shape?;
        if shape.0.hash != self.hash {
            return Err(SignatureError::HashMismatch);
        }
        Ok(shape)
    }

    /// automerge's decoding of this change, whose signature was checked
    /// already: its operations read, its hash worked out again.
    pub(crate) fn decode(&self) -> Result<Change, SignatureError> {
        let change = Change::try_from(self.bytes.as_slice())
            .map_err(|e| SignatureError::Undecodable(e.to_string()))?;
        // automerge worked the hash out again: it must agree.
        if change.hash().0 != self.hash {
            return Err(SignatureError::HashMismatch);
        }
        Ok(change)
    }

    pub fn signer_id(&self) -> Option<NodeId> {
        NodeId::from_public_bytes(&self.signer)
    }
}

#[cfg(test)]
mod tests {
    use automerge::transaction::Transactable;
    use automerge::{ActorId, Automerge, ROOT};

    use super::*;
    use crate::trust::columns::{CHUNK_TYPE_AT, COMPRESSED_CHANGE_CHUNK, forge};

    fn change() -> Change {
        let mut doc = Automerge::new().with_actor(ActorId::from([1u8; 16].as_slice()));
        let mut tx = doc.transaction();
        tx.put(ROOT, "title", "Ambulance handovers").unwrap();
        tx.commit();
        doc.get_last_local_change().unwrap()
    }

    #[test]
    fn a_signed_change_verifies() {
        let id = Identity::generate();
        let signed = SignedChange::sign(&id, DocumentId::from_bytes([4; 16]), &change());
        assert_eq!(signed.verify().unwrap().hash().0, signed.hash);
        assert_eq!(signed.signer_id(), Some(id.node_id()));
    }

    #[test]
    fn tampering_is_detected() {
        let id = Identity::generate();
        let good = SignedChange::sign(&id, DocumentId::from_bytes([4; 16]), &change());

        let mut sig = good.clone();
        sig.signature[10] ^= 1;
        assert_eq!(sig.verify().unwrap_err(), SignatureError::BadSignature);

        let mut doc = good.clone();
        doc.doc = DocumentId::from_bytes([5; 16]);
        assert_eq!(
            doc.verify().unwrap_err(),
            SignatureError::BadSignature,
            "moved to another document"
        );

        let mut signer = good.clone();
        signer.signer = Identity::generate().public_bytes();
        assert_eq!(
            signer.verify().unwrap_err(),
            SignatureError::BadSignature,
            "claimed by another key"
        );

        let mut bytes = good.clone();
        let last = bytes.bytes.len() - 1;
        bytes.bytes[last] ^= 0x20;
        assert!(bytes.verify().is_err(), "altered change bytes");

        let mut hash = good;
        hash.hash[0] ^= 1;
        assert!(hash.verify().is_err());
    }

    /// The attack: a change that inflates to 64 MiB, sent as the few
    /// kilobytes of its DEFLATE-compressed form with the signature its
    /// author made for the uncompressed one (both hash the same).
    #[test]
    fn a_compressed_change_is_refused_before_it_is_inflated() {
        let id = Identity::generate();
        let mut doc = Automerge::new().with_actor(ActorId::from([1u8; 16].as_slice()));
        let mut tx = doc.transaction();
        tx.put(ROOT, "summary", "a".repeat(64 << 20)).unwrap();
        tx.commit();
        let mut change = doc.get_last_local_change().unwrap();
        let honest = SignedChange::sign(&id, DocumentId::from_bytes([4; 16]), &change);
        let compressed = change.bytes().into_owned();
        assert_eq!(compressed[CHUNK_TYPE_AT], COMPRESSED_CHANGE_CHUNK);
        assert!(compressed.len() < 1 << 20, "{} bytes", compressed.len());
        assert_eq!(
            Change::try_from(compressed.as_slice()).unwrap().hash().0,
            honest.hash,
            "automerge itself would take it as the signed change"
        );
        let bomb = SignedChange {
            bytes: compressed,
            ..honest
        };
        assert_eq!(bomb.verify().unwrap_err(), SignatureError::Compressed);

        // Nor is any other kind of chunk parsed: a saved document's
        // columns may be compressed too.
        let saved = SignedChange {
            bytes: doc.save(),
            ..bomb
        };
        assert!(matches!(
            saved.verify().unwrap_err(),
            SignatureError::Undecodable(_)
        ));
    }

    /// Runs `f` on another thread and gives its result, or fails the test
    /// if it takes longer than `secs` (the thread is left to finish).
    fn within<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        rx.recv_timeout(std::time::Duration::from_secs(secs))
            .expect("still decoding: the change was not refused unread")
    }

    /// A member signs, with its own key, 70 bytes of change whose columns
    /// declare 2^36 operations: automerge's decoder walks every one (about
    /// 100 minutes on one core) before anything else is checked.
    #[test]
    fn a_change_declaring_years_of_rows_is_refused_before_it_is_decoded() {
        let id = Identity::generate();
        let (bytes, hash) = forge::nulls(1 << 36, 0);
        let bomb = SignedChange::sign_raw(&id, DocumentId::from_bytes([4; 16]), bytes, hash);
        assert!(matches!(
            within(10, move || bomb.verify()),
            Err(SignatureError::TooLarge(_))
        ));
        // The same shape at an honest size is an ordinary change.
        let (bytes, hash) = forge::nulls(1000, 0);
        let fine = SignedChange::sign_raw(&id, DocumentId::from_bytes([4; 16]), bytes, hash);
        assert_eq!(fine.verify().unwrap().len(), 1000);
    }

    /// One operation listing 2^29 predecessors: automerge would walk half
    /// a billion of them before anything else is checked.
    #[test]
    fn an_operation_with_billions_of_predecessors_is_refused_before_it_is_decoded() {
        let id = Identity::generate();
        let (bytes, hash) = forge::nulls(1, 1 << 29);
        let bomb = SignedChange::sign_raw(&id, DocumentId::from_bytes([4; 16]), bytes, hash);
        assert!(matches!(
            within(10, move || bomb.verify()),
            Err(SignatureError::TooLarge(_))
        ));
    }

    /// The signature is checked against the hash read from the bytes before
    /// automerge sees them: a forger's bytes are never decoded.
    #[test]
    fn the_signature_is_checked_before_the_bytes_are_decoded() {
        let id = Identity::generate();
        // Rows automerge cannot decode (no key for any operation).
        let (bytes, hash) = forge::change(&[(forge::ACTION, forge::run(3, &[1]))]);
        let honest = SignedChange::sign_raw(&id, DocumentId::from_bytes([4; 16]), bytes, hash);
        assert!(matches!(
            honest.verify(),
            Err(SignatureError::Undecodable(_))
        ));
        let mut forged = honest.clone();
        forged.signature[3] ^= 1;
        assert_eq!(forged.verify().unwrap_err(), SignatureError::BadSignature);
        let mut altered = honest;
        altered.hash[0] ^= 1;
        assert_eq!(altered.verify().unwrap_err(), SignatureError::HashMismatch);
    }
}
