//! A document sent whole: a peer that has none of a document, and asks for
//! one that holds a single change, may be sent the document's saved form
//! (automerge's document chunk) and that change's signature instead of the
//! change. Loading a saved document costs the receiver about a third of
//! applying its change to an empty one (automerge builds its columns at
//! once instead of inserting op by op), and the change is read back out of
//! it, so authorship and permission are checked exactly as for a change
//! sent on its own:
//!
//! 1. its columns, inflated, must fit a bound ([`check_size`]): automerge
//!    inflates compressed columns whole and without a bound, as it does
//!    compressed changes, so they are inflated once first, into nothing,
//!    counting;
//! 2. it must load with automerge's own check that the changes it holds
//!    hash to its heads, and hold exactly one change;
//! 3. that change (bytes re-encoded by automerge, hash computed from them)
//!    must carry the sender's signature from its author
//!    ([`SignedChange::verify_signature`]).
//!
//! Then the change goes through every check of [`crate::apply`] like any
//! other, with the loaded document as its first state.

use convene_model::DocumentId;

use super::SignedChange;

/// A document's saved form with the signature of its one change.
#[derive(Clone, PartialEq, Eq)]
pub struct SavedDoc {
    pub doc: DocumentId,
    /// automerge's document chunk, as the sender stored it (its columns
    /// compressed where that saves space).
    pub saved: Vec<u8>,
    pub signer: [u8; 32],
    pub signature: [u8; 64],
}

impl std::fmt::Debug for SavedDoc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SavedDoc")
            .field("doc", &self.doc)
            .field("len", &self.saved.len())
            .finish()
    }
}

impl SavedDoc {
    /// The signed change this saved document claims to hold, before it is
    /// read out: its bytes and hash are empty, so it can only name who sent
    /// what in a rejection.
    pub fn unread(&self) -> SignedChange {
        SignedChange {
            doc: self.doc,
            hash: [0; 32],
            bytes: Vec::new(),
            signer: self.signer,
            signature: self.signature,
        }
    }
}

/// Checks that a change read out of a saved document is stored as any
/// other: an uncompressed change chunk whose bytes hash to its hash
/// (automerge's change hash is SHA-256 over the chunk after its magic and
/// checksum, and the checksum is the hash's first four bytes).
pub fn check_bytes(c: &SignedChange) -> Result<(), String> {
    use sha2::Digest;
    let b = &c.bytes;
    let whole = b.len() > 9
        && b[..4] == MAGIC
        && b[4..8] == c.hash[..4]
        && b[8] == CHANGE_CHUNK
        && sha2::Sha256::digest(&b[8..]).as_slice() == c.hash;
    if whole {
        Ok(())
    } else {
        Err("its change does not hash to its hash".into())
    }
}

/// Most bytes one saved document's columns may hold once inflated (a
/// document of one change is about the size of its change, and a message
/// holds at most 8 MiB).
pub const MAX_INFLATED: u64 = 16 << 20;
/// Most bytes the saved documents of one answer may hold in all once
/// inflated (an honest answer holds at most about 4 MiB of them).
pub const MAX_INFLATED_PER_ANSWER: u64 = 64 << 20;

/// automerge's magic bytes, which open every chunk.
const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
/// The chunk types of a document and of an uncompressed change (after the
/// magic and 4 bytes of checksum).
const DOCUMENT_CHUNK: u8 = 0;
const CHANGE_CHUNK: u8 = 1;
/// The bit of a column's specification that says it is DEFLATE-compressed.
const DEFLATE: u64 = 0b1000;

/// Reads what automerge reads before it inflates anything (the chunk
/// header, then the document's actors, heads and the two lists of column
/// specifications, in automerge's layout: `storage/document.rs`), and
/// inflates each compressed column into nothing, counting, until the
/// columns hold more than `limit` bytes in all. The columns' size, or why
/// the document is refused: automerge would inflate them whole, so only a
/// saved form whose size is known to be bounded is given to it.
pub fn check_size(bytes: &[u8], limit: u64) -> Result<u64, String> {
    let mut r = Reader(bytes);
    if r.take(4)? != MAGIC {
        return Err("not an automerge chunk".into());
    }
    r.take(4)?; // checksum, checked by automerge
    if r.take(1)?[0] != DOCUMENT_CHUNK {
        return Err("not an automerge document".into());
    }
    let len = r.leb()?;
    if len != r.0.len() as u64 {
        return Err("a document chunk of the wrong length".into());
    }
    for _ in 0..r.leb()? {
        let actor = r.leb()?;
        r.take(actor)?;
    }
    let heads = r.leb()?;
    r.take(heads.saturating_mul(32))?;
    // The change columns' data comes first, then the op columns'.
    let mut columns = Vec::new();
    for _list in ["change", "op"] {
        for _ in 0..r.leb()? {
            let spec = r.leb()?;
            columns.push((spec & DEFLATE != 0, r.leb()?));
        }
    }
    let mut size = 0u64;
    for (deflated, len) in columns {
        let data = r.take(len)?;
        size += if deflated {
            use std::io::Read;
            let left = limit.saturating_sub(size);
            let mut inflated = flate2::bufread::DeflateDecoder::new(data).take(left + 1);
            std::io::copy(&mut inflated, &mut std::io::sink())
                .map_err(|_| "a column that does not inflate".to_string())?
        } else {
            len
        };
        if size > limit {
            return Err(format!(
                "a saved document of more than {limit} bytes once inflated"
            ));
        }
    }
    Ok(size)
}

/// What is left to read.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: u64) -> Result<&'a [u8], String> {
        let n = usize::try_from(n).map_err(|_| "a length past the end".to_string())?;
        if n > self.0.len() {
            return Err("a saved document cut short".into());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    /// An unsigned LEB128 number of at most 64 bits.
    fn leb(&mut self) -> Result<u64, String> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.take(1)?[0];
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("a number too large".into())
    }
}

#[cfg(test)]
mod tests {
    use automerge::transaction::Transactable;
    use automerge::{Automerge, ROOT};

    use super::*;

    fn doc() -> Automerge {
        let mut doc = Automerge::new();
        let mut tx = doc.transaction();
        tx.put(ROOT, "title", "Ambulance handovers").unwrap();
        tx.put(ROOT, "summary", "a".repeat(4096)).unwrap();
        tx.commit();
        doc
    }

    #[test]
    fn a_document_is_measured_inflated_and_refused_over_the_limit() {
        let doc = doc();
        let plain = doc.save_nocompress();
        let compressed = doc.save();
        assert!(compressed.len() < plain.len() / 2);
        let size = check_size(&plain, 1 << 20).unwrap();
        assert_eq!(check_size(&compressed, 1 << 20), Ok(size));
        assert!(size > 4096);
        assert!(check_size(&compressed, size - 1).is_err());
        assert!(check_size(&plain, size - 1).is_err());
        // The bomb: 64 MiB of one letter in about 64 KiB.
        let mut big = Automerge::new();
        let mut tx = big.transaction();
        tx.put(ROOT, "summary", "a".repeat(64 << 20)).unwrap();
        tx.commit();
        let bomb = big.save();
        assert!(bomb.len() < 1 << 20, "{}", bomb.len());
        assert!(
            check_size(&bomb, 16 << 20)
                .unwrap_err()
                .contains("inflated")
        );
    }

    #[test]
    fn a_change_read_out_of_a_document_hashes_to_its_hash() {
        let loaded = Automerge::load(&doc().save_nocompress()).unwrap();
        let change = loaded.get_changes(&[]).pop().unwrap();
        let mut signed = SignedChange {
            doc: DocumentId::from_bytes([4; 16]),
            hash: change.hash().0,
            bytes: change.raw_bytes().to_vec(),
            signer: [0; 32],
            signature: [0; 64],
        };
        assert_eq!(check_bytes(&signed), Ok(()));
        let last = signed.bytes.len() - 1;
        signed.bytes[last] ^= 1;
        assert!(check_bytes(&signed).is_err());
    }

    #[test]
    fn anything_else_or_anything_cut_short_is_refused() {
        let saved = doc().save();
        for cut in 0..saved.len() {
            assert!(check_size(&saved[..cut], 1 << 20).is_err(), "cut at {cut}");
        }
        let change = doc().get_last_local_change().unwrap();
        assert!(check_size(change.raw_bytes(), 1 << 20).is_err());
        assert!(check_size(&[0x85, 0x6f, 0x4a, 0x83, 0, 0, 0, 0, 0, 0xff], 1 << 20).is_err());
    }
}
