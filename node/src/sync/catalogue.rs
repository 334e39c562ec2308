//! The catalogue: the set of `(document id, digest)` pairs a node holds,
//! with fingerprints over id ranges for set reconciliation.
//!
//! Ranges are id *prefixes* counted in nibbles (the empty prefix is the
//! whole id space; each range splits into sixteen children). Ids are random,
//! so items spread evenly and a range's depth is about log16 of the
//! catalogue's size. A [`Fingerprint`] is the item count and the sum, modulo
//! 2^128, of the items' digests (the first 16 bytes): adding or removing an
//! item updates it in O(1), and sums, unlike XOR, do not cancel when the
//! same difference appears twice.
//!
//! The whole-set fingerprint is kept up to date on every insert, so two
//! nodes already in sync learn it from one comparison without touching the
//! items. Fingerprints of sub-ranges are summed from the in-memory sorted
//! map only when a range differs; the map holds 48 bytes per document (not
//! the documents), a few megabytes for 100,000 entries.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::wire::{Digest, DocId, Violation};

/// A range small enough (on either side) is listed item by item.
pub const LEAF: u64 = 32;
/// Most items one range result may list.
pub const MAX_ITEMS: usize = 1024;

/// A range of document ids: all ids starting with these nibbles.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Prefix(Vec<u8>);

impl Prefix {
    /// The whole id space.
    pub fn root() -> Self {
        Self(Vec::new())
    }

    /// Deepest prefix: every nibble of a 16-byte id.
    pub const MAX_DEPTH: usize = 32;

    pub fn depth(&self) -> usize {
        self.0.len()
    }

    pub fn check(&self) -> Result<(), Violation> {
        if self.0.len() > Self::MAX_DEPTH || self.0.iter().any(|n| *n > 15) {
            Err(Violation("malformed range prefix".into()))
        } else {
            Ok(())
        }
    }

    /// The sixteen sub-ranges.
    pub fn children(&self) -> Vec<Prefix> {
        (0..16u8)
            .map(|n| {
                let mut v = self.0.clone();
                v.push(n);
                Prefix(v)
            })
            .collect()
    }

    pub fn contains(&self, id: &DocId) -> bool {
        self.0.iter().enumerate().all(|(i, n)| nibble(id, i) == *n)
    }

    /// Lowest and highest id in the range (inclusive).
    fn bounds(&self) -> (DocId, DocId) {
        let mut lo = [0u8; 16];
        let mut hi = [0xffu8; 16];
        for (i, n) in self.0.iter().enumerate() {
            let byte = i / 2;
            if i.is_multiple_of(2) {
                lo[byte] = (lo[byte] & 0x0f) | (n << 4);
                hi[byte] = (hi[byte] & 0x0f) | (n << 4);
            } else {
                lo[byte] = (lo[byte] & 0xf0) | n;
                hi[byte] = (hi[byte] & 0xf0) | n;
            }
        }
        (lo, hi)
    }
}

fn nibble(id: &DocId, i: usize) -> u8 {
    let b = id[i / 2];
    if i.is_multiple_of(2) {
        b >> 4
    } else {
        b & 0x0f
    }
}

/// Count and sum of the digests in a range.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    pub count: u64,
    pub sum: u128,
}

fn head(d: &Digest) -> u128 {
    u128::from_le_bytes(d[..16].try_into().expect("16 bytes"))
}

impl Fingerprint {
    fn add(&mut self, d: &Digest) {
        self.count += 1;
        self.sum = self.sum.wrapping_add(head(d));
    }

    fn remove(&mut self, d: &Digest) {
        self.count -= 1;
        self.sum = self.sum.wrapping_sub(head(d));
    }
}

/// What reconciliation reads: the part of a catalogue one peer may see.
pub trait CatalogueView {
    fn fingerprint(&self, range: &Prefix) -> Fingerprint;
    /// The items in `range`, in id order.
    fn items(&self, range: &Prefix) -> Vec<(DocId, Digest)>;
    fn digest(&self, doc: &DocId) -> Option<Digest>;
}

/// Every document this node holds, with its digest.
#[derive(Debug, Clone, Default)]
pub struct Catalogue {
    items: BTreeMap<DocId, Digest>,
    root: Fingerprint,
}

impl Catalogue {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Records a document's digest; returns whether it changed.
    pub fn insert(&mut self, doc: DocId, digest: Digest) -> bool {
        match self.items.insert(doc, digest) {
            Some(old) if old == digest => false,
            Some(old) => {
                self.root.remove(&old);
                self.root.add(&digest);
                true
            }
            None => {
                self.root.add(&digest);
                true
            }
        }
    }

    /// Forgets a document (after erasure).
    pub fn remove(&mut self, doc: &DocId) -> bool {
        match self.items.remove(doc) {
            Some(old) => {
                self.root.remove(&old);
                true
            }
            None => false,
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&DocId, &Digest)> {
        self.items.iter()
    }
}

impl CatalogueView for Catalogue {
    fn fingerprint(&self, range: &Prefix) -> Fingerprint {
        if range.depth() == 0 {
            return self.root;
        }
        let (lo, hi) = range.bounds();
        let mut fp = Fingerprint::default();
        for (_, d) in self.items.range(lo..=hi) {
            fp.add(d);
        }
        fp
    }

    fn items(&self, range: &Prefix) -> Vec<(DocId, Digest)> {
        let (lo, hi) = range.bounds();
        self.items.range(lo..=hi).map(|(k, v)| (*k, *v)).collect()
    }

    fn digest(&self, doc: &DocId) -> Option<Digest> {
        self.items.get(doc).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(b: u8) -> DocId {
        let mut x = [0u8; 16];
        x[0] = b;
        x[15] = b.wrapping_mul(7);
        x
    }

    #[test]
    fn prefixes_cover_their_ids() {
        let p = Prefix(vec![0xa, 0x3]);
        let mut inside = [0u8; 16];
        inside[0] = 0xa3;
        assert!(p.contains(&inside));
        inside[0] = 0xa4;
        assert!(!p.contains(&inside));
        let (lo, hi) = p.bounds();
        assert_eq!(lo[0], 0xa3);
        assert_eq!(hi[0], 0xa3);
        assert_eq!((lo[1], hi[1]), (0, 0xff));
        let odd = Prefix(vec![0x5]);
        let (lo, hi) = odd.bounds();
        assert_eq!((lo[0], hi[0]), (0x50, 0x5f));
    }

    #[test]
    fn fingerprints_are_incremental_and_order_free() {
        let mut a = Catalogue::new();
        let mut b = Catalogue::new();
        for i in 0..50u8 {
            a.insert(id(i), [i; 32]);
        }
        for i in (0..50u8).rev() {
            b.insert(id(i), [i; 32]);
        }
        assert_eq!(
            a.fingerprint(&Prefix::root()),
            b.fingerprint(&Prefix::root())
        );
        b.insert(id(3), [99; 32]);
        assert_ne!(
            a.fingerprint(&Prefix::root()),
            b.fingerprint(&Prefix::root())
        );
        b.insert(id(3), [3; 32]);
        assert_eq!(
            a.fingerprint(&Prefix::root()),
            b.fingerprint(&Prefix::root())
        );
        // The root kept incrementally equals the sum over all children.
        let children: u64 = Prefix::root()
            .children()
            .iter()
            .map(|c| a.fingerprint(c).count)
            .sum();
        assert_eq!(children, 50);
        assert!(a.remove(&id(7)));
        assert_eq!(a.fingerprint(&Prefix::root()).count, 49);
    }
}
