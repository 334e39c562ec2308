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

use std::collections::{BTreeMap, BTreeSet};

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

/// Who may see a document, as the catalogue needs it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Class {
    /// Every member.
    #[default]
    Community,
    /// Only the nodes of these organisations (the owner and those it
    /// listed). Empty: no peer (a document that is not a valid entry).
    Only(BTreeSet<String>),
    /// A draft: no peer at all, not even the owner organisation's other
    /// nodes. A draft never leaves the node it was written on; when it is
    /// published it moves to its visibility's class (its digest changes
    /// with the status, so peers fetch it then, earlier changes included).
    Draft,
}

impl Class {
    /// The class of an entry with this owner, stored visibility
    /// (`community`, `organisation`, or a comma-separated list of ids) and
    /// stored status (`draft`, `published`, `retracted`; '' for a document
    /// that is not a valid entry).
    pub fn of(owner: &str, visibility: &str, status: &str) -> Self {
        if status == "draft" {
            return Class::Draft;
        }
        match visibility {
            "community" => Class::Community,
            "" => Class::Only(BTreeSet::new()),
            "organisation" => Class::Only([owner.to_string()].into()),
            list => Class::Only(
                list.split(',')
                    .map(str::to_string)
                    .chain(std::iter::once(owner.to_string()))
                    .collect(),
            ),
        }
    }

    /// Whether a node of any of `orgs` may see it.
    pub fn visible_to(&self, orgs: &BTreeSet<String>) -> bool {
        match self {
            Class::Community => true,
            Class::Only(allowed) => !allowed.is_disjoint(orgs),
            Class::Draft => false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Item {
    digest: Digest,
    class: Class,
}

/// Every document this node holds, with its digest and visibility class.
///
/// The whole-set fingerprint is kept per class, so the fingerprint of
/// what one peer may see is the sum of a handful of class fingerprints,
/// still without touching the items.
#[derive(Debug, Clone, Default)]
pub struct Catalogue {
    items: BTreeMap<DocId, Item>,
    roots: BTreeMap<Class, Fingerprint>,
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

    /// Records a document's digest and class; returns whether either changed.
    pub fn insert(&mut self, doc: DocId, digest: Digest, class: Class) -> bool {
        let item = Item { digest, class };
        if self.items.get(&doc) == Some(&item) {
            return false;
        }
        self.remove(&doc);
        self.roots
            .entry(item.class.clone())
            .or_default()
            .add(&item.digest);
        self.items.insert(doc, item);
        true
    }

    /// Forgets a document (after erasure).
    pub fn remove(&mut self, doc: &DocId) -> bool {
        match self.items.remove(doc) {
            Some(old) => {
                if let Some(fp) = self.roots.get_mut(&old.class) {
                    fp.remove(&old.digest);
                    if fp.count == 0 {
                        self.roots.remove(&old.class);
                    }
                }
                true
            }
            None => false,
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&DocId, &Digest)> {
        self.items.iter().map(|(k, v)| (k, &v.digest))
    }

    /// The part of the catalogue a node of `orgs` may see.
    pub fn view_for(&self, orgs: BTreeSet<String>) -> PeerView<'_> {
        PeerView {
            catalogue: self,
            orgs: Some(orgs),
            nobody: false,
        }
    }

    /// Nothing at all (for a peer that is not a member).
    pub fn view_for_nobody(&self) -> PeerView<'_> {
        PeerView {
            catalogue: self,
            orgs: Some(BTreeSet::new()),
            nobody: true,
        }
    }

    /// Everything (for this node's own use and tests).
    pub fn everything(&self) -> PeerView<'_> {
        PeerView {
            catalogue: self,
            orgs: None,
            nobody: false,
        }
    }
}

/// A catalogue as one peer may see it.
#[derive(Debug, Clone)]
pub struct PeerView<'a> {
    catalogue: &'a Catalogue,
    /// The peer's organisations; `None` sees everything.
    orgs: Option<BTreeSet<String>>,
    /// Sees nothing, not even community entries.
    nobody: bool,
}

impl PeerView<'_> {
    fn visible(&self, class: &Class) -> bool {
        !self.nobody && self.orgs.as_ref().is_none_or(|orgs| class.visible_to(orgs))
    }
}

impl CatalogueView for PeerView<'_> {
    fn fingerprint(&self, range: &Prefix) -> Fingerprint {
        let mut fp = Fingerprint::default();
        if range.depth() == 0 {
            for (class, root) in &self.catalogue.roots {
                if self.visible(class) {
                    fp.count += root.count;
                    fp.sum = fp.sum.wrapping_add(root.sum);
                }
            }
            return fp;
        }
        let (lo, hi) = range.bounds();
        for (_, item) in self.catalogue.items.range(lo..=hi) {
            if self.visible(&item.class) {
                fp.add(&item.digest);
            }
        }
        fp
    }

    fn items(&self, range: &Prefix) -> Vec<(DocId, Digest)> {
        let (lo, hi) = range.bounds();
        self.catalogue
            .items
            .range(lo..=hi)
            .filter(|(_, item)| self.visible(&item.class))
            .map(|(k, item)| (*k, item.digest))
            .collect()
    }

    fn digest(&self, doc: &DocId) -> Option<Digest> {
        self.catalogue
            .items
            .get(doc)
            .filter(|item| self.visible(&item.class))
            .map(|item| item.digest)
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
            a.insert(id(i), [i; 32], Class::Community);
        }
        for i in (0..50u8).rev() {
            b.insert(id(i), [i; 32], Class::Community);
        }
        let root = |c: &Catalogue| c.everything().fingerprint(&Prefix::root());
        assert_eq!(root(&a), root(&b));
        b.insert(id(3), [99; 32], Class::Community);
        assert_ne!(root(&a), root(&b));
        b.insert(id(3), [3; 32], Class::Community);
        assert_eq!(root(&a), root(&b));
        // The root kept incrementally equals the sum over all children.
        let children: u64 = Prefix::root()
            .children()
            .iter()
            .map(|c| a.everything().fingerprint(c).count)
            .sum();
        assert_eq!(children, 50);
        assert!(a.remove(&id(7)));
        assert_eq!(root(&a).count, 49);
    }

    #[test]
    fn a_peer_sees_only_what_its_organisations_may() {
        let mut c = Catalogue::new();
        c.insert(id(1), [1; 32], Class::of("A", "community", "published"));
        c.insert(id(2), [2; 32], Class::of("A", "organisation", "published"));
        c.insert(id(3), [3; 32], Class::of("A", "B,C", "retracted"));
        c.insert(id(4), [4; 32], Class::of("", "", ""));
        c.insert(id(5), [5; 32], Class::of("A", "community", "draft"));
        let count = |orgs: &[&str]| {
            let view = c.view_for(orgs.iter().map(|s| s.to_string()).collect());
            let root = view.fingerprint(&Prefix::root()).count;
            let listed = view.items(&Prefix::root()).len() as u64;
            assert_eq!(root, listed, "the class sums agree with the items");
            root
        };
        assert_eq!(count(&[]), 1);
        assert_eq!(count(&["A"]), 3);
        assert_eq!(count(&["B"]), 2);
        assert_eq!(count(&["D"]), 1);
        assert!(
            c.view_for(["B".to_string()].into())
                .digest(&id(2))
                .is_none()
        );
        assert!(
            c.view_for(["A".to_string()].into())
                .digest(&id(5))
                .is_none()
        );
        assert_eq!(c.everything().fingerprint(&Prefix::root()).count, 5);
    }

    /// A draft is published, then made a draft again: each time it moves
    /// between the class sums, which stay equal to the items.
    #[test]
    fn a_status_change_moves_a_document_between_classes() {
        let mut c = Catalogue::new();
        c.insert(id(1), [1; 32], Class::of("A", "community", "published"));
        c.insert(id(2), [2; 32], Class::of("A", "community", "draft"));
        let peer = |c: &Catalogue| {
            let view = c.view_for(["B".to_string()].into());
            let root = view.fingerprint(&Prefix::root());
            let items = view.items(&Prefix::root());
            assert_eq!(root.count, items.len() as u64, "the class sums agree");
            let mut sum = Fingerprint::default();
            items.iter().for_each(|(_, d)| sum.add(d));
            assert_eq!(root, sum);
            (root.count, view.digest(&id(2)))
        };
        assert_eq!(peer(&c), (1, None));
        assert!(c.insert(id(2), [3; 32], Class::of("A", "community", "published")));
        assert_eq!(peer(&c), (2, Some([3; 32])));
        assert!(c.insert(id(2), [4; 32], Class::of("A", "community", "draft")));
        assert_eq!(peer(&c), (1, None));
        // Even with the same digest, a class change is a change.
        assert!(c.insert(id(2), [4; 32], Class::of("A", "community", "published")));
        assert_eq!(peer(&c), (2, Some([4; 32])));
        assert_eq!(c.roots.len(), 1, "no empty class sums are kept");
    }
}
