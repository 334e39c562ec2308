//! Range-based set reconciliation (after Meyer, "Range-Based Set
//! Reconciliation", arXiv 2212.13567).
//!
//! The initiator sends ranges with its fingerprints; the responder answers
//! each with [`RangeResult::Same`], its items (small ranges), or the
//! fingerprints of the sixteen sub-ranges (large ones). The initiator
//! compares and either learns the exact difference or asks about the
//! sub-ranges that still differ. Two catalogues already in sync finish
//! after the first comparison of the whole-set fingerprint: one round trip,
//! a few dozen bytes, whatever their size.

use std::collections::{BTreeMap, BTreeSet};

use super::catalogue::{CatalogueView, Fingerprint, LEAF, MAX_ITEMS, Prefix};
use super::wire::{DocId, RangeResult, Violation};

/// Answers one reconciliation request.
pub fn respond(view: &dyn CatalogueView, ranges: &[(Prefix, Fingerprint)]) -> Vec<RangeResult> {
    ranges
        .iter()
        .map(|(range, theirs)| {
            let mine = view.fingerprint(range);
            if mine == *theirs {
                RangeResult::Same
            } else if mine.count <= LEAF
                || range.depth() == Prefix::MAX_DEPTH
                || (theirs.count <= LEAF && mine.count as usize <= MAX_ITEMS)
            {
                RangeResult::Items(view.items(range))
            } else {
                RangeResult::Split(
                    range
                        .children()
                        .into_iter()
                        .map(|c| {
                            let fp = view.fingerprint(&c);
                            (c, fp)
                        })
                        .collect(),
                )
            }
        })
        .collect()
}

/// What reconciliation found: documents to fetch from the peer and
/// documents the peer lacks or has in another state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diff {
    /// The peer has these in a state this node does not (missing here, or
    /// a different digest).
    pub fetch: BTreeSet<DocId>,
    /// This node has these and the peer does not have them at all.
    pub push: BTreeSet<DocId>,
}

/// Takes the responder's answers to `sent` into `diff`; returns the
/// sub-ranges still to compare.
pub fn absorb(
    view: &dyn CatalogueView,
    sent: &[(Prefix, Fingerprint)],
    results: Vec<RangeResult>,
    diff: &mut Diff,
) -> Result<Vec<(Prefix, Fingerprint)>, Violation> {
    if results.len() != sent.len() {
        return Err(Violation(format!(
            "{} range results for {} ranges",
            results.len(),
            sent.len()
        )));
    }
    let mut next = Vec::new();
    for ((range, _), result) in sent.iter().zip(results) {
        match result {
            RangeResult::Same => {}
            RangeResult::Items(theirs) => {
                let theirs: BTreeMap<DocId, _> = theirs.into_iter().collect();
                if theirs.keys().any(|id| !range.contains(id)) {
                    return Err(Violation("an item outside its range".into()));
                }
                let mine: BTreeMap<DocId, _> = view.items(range).into_iter().collect();
                for (id, digest) in &theirs {
                    if mine.get(id) != Some(digest) {
                        diff.fetch.insert(*id);
                    }
                }
                for id in mine.keys() {
                    if !theirs.contains_key(id) {
                        diff.push.insert(*id);
                    }
                }
            }
            RangeResult::Split(children) => {
                if children.iter().map(|(c, _)| c).ne(range.children().iter()) {
                    return Err(Violation("sub-ranges that do not split the range".into()));
                }
                for (child, theirs) in children {
                    let mine = view.fingerprint(&child);
                    if mine == theirs {
                        continue;
                    }
                    if theirs.count == 0 {
                        diff.push
                            .extend(view.items(&child).into_iter().map(|(id, _)| id));
                    } else {
                        next.push((child, mine));
                    }
                }
            }
        }
    }
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::catalogue::{Catalogue, Class};

    fn id(n: u32) -> DocId {
        let h = blake3::hash(&n.to_le_bytes());
        h.as_bytes()[..16].try_into().unwrap()
    }

    /// Runs reconciliation to the end; returns (diff, round trips, bytes).
    fn reconcile(a: &Catalogue, b: &Catalogue) -> (Diff, usize, usize) {
        let (a, b) = (&a.everything(), &b.everything());
        let mut diff = Diff::default();
        let mut pending = vec![(Prefix::root(), a.fingerprint(&Prefix::root()))];
        let (mut rounds, mut bytes) = (0, 0);
        while !pending.is_empty() {
            let batch: Vec<_> = pending
                .drain(..pending.len().min(crate::sync::wire::MAX_RANGES))
                .collect();
            let req = crate::sync::wire::Request::Reconcile {
                ranges: batch.clone(),
            };
            let results = respond(b, &batch);
            let resp = crate::sync::wire::Response::Reconcile {
                results: results.clone(),
            };
            bytes += crate::sync::wire::encode(&req).len() + crate::sync::wire::encode(&resp).len();
            rounds += 1;
            pending.extend(absorb(a, &batch, results, &mut diff).unwrap());
        }
        (diff, rounds, bytes)
    }

    #[test]
    fn catalogues_in_sync_need_one_small_round_trip() {
        for n in [0u32, 10, 1000, 20_000] {
            let mut a = Catalogue::new();
            for i in 0..n {
                a.insert(id(i), [i as u8; 32], Class::Community);
            }
            let b = a.clone();
            let (diff, rounds, bytes) = reconcile(&a, &b);
            assert_eq!(diff, Diff::default());
            assert_eq!(rounds, 1);
            assert!(bytes < 100, "{bytes} bytes for {n} entries");
        }
    }

    #[test]
    fn differences_are_found_exactly() {
        let mut a = Catalogue::new();
        let mut b = Catalogue::new();
        for i in 0..5000 {
            a.insert(
                id(i),
                *blake3::hash(&i.to_be_bytes()).as_bytes(),
                Class::Community,
            );
            b.insert(
                id(i),
                *blake3::hash(&i.to_be_bytes()).as_bytes(),
                Class::Community,
            );
        }
        a.insert(id(9001), [1; 32], Class::Community); // only a
        b.insert(id(9002), [2; 32], Class::Community); // only b
        b.insert(id(17), [3; 32], Class::Community); // changed on b
        let (diff, rounds, _) = reconcile(&a, &b);
        assert_eq!(diff.fetch, [id(9002), id(17)].into_iter().collect());
        assert_eq!(diff.push, [id(9001)].into_iter().collect());
        assert!(rounds <= 4, "{rounds} rounds");
    }

    #[test]
    fn an_empty_node_learns_everything() {
        let mut b = Catalogue::new();
        for i in 0..3000 {
            b.insert(id(i), [7; 32], Class::Community);
        }
        let (diff, _, _) = reconcile(&Catalogue::new(), &b);
        assert_eq!(diff.fetch.len(), 3000);
        let (diff, _, _) = reconcile(&b, &Catalogue::new());
        assert_eq!(diff.push.len(), 3000);
    }
}
