//! Importing a bundle in bounded memory: checksum, then every signature,
//! then the changes in batches (see the module docs of [`super`]).

use std::io::Read;

use crate::error::NodeError;
use crate::node::{ApplyReport, Node, OnProgress};
use crate::sync::wire::{WireChange, WireTombstone};
use crate::trust::columns::Budget;
use crate::trust::signature::SignatureError;
use crate::trust::{SignedChange, Tombstone};

use super::{BATCH_BYTES, BATCH_CHANGES, Body, BundleError, Header, Item, Reader};

/// Rejections listed in a report (all are counted, and all are in the
/// audit log).
pub const MAX_LISTED_REJECTIONS: usize = 1000;

/// What importing a bundle did.
#[derive(Debug, Clone, Default)]
pub struct Imported {
    pub header: Header,
    /// The reports of every batch, summed; `rejected` lists at most
    /// `MAX_LISTED_REJECTIONS` (1,000).
    pub report: ApplyReport,
    /// Changes rejected in all.
    pub rejected: usize,
}

/// Where an import is, for progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Checking the checksum.
    Checking,
    /// Verifying signatures: records read of those declared.
    Verifying,
    /// Applying: changes applied of those declared.
    Applying,
}

/// A source of items: a reader, or a body already in memory.
trait Items {
    fn next_item(&mut self) -> Result<Option<Item>, BundleError>;
}

impl<R: Read> Items for Reader<R> {
    fn next_item(&mut self) -> Result<Option<Item>, BundleError> {
        Reader::next_item(self)
    }
}

struct BodyItems<'a> {
    tombstones: std::slice::Iter<'a, WireTombstone>,
    changes: std::slice::Iter<'a, WireChange>,
}

impl Items for BodyItems<'_> {
    fn next_item(&mut self) -> Result<Option<Item>, BundleError> {
        Ok(self
            .tombstones
            .next()
            .cloned()
            .map(Item::Tombstone)
            .or_else(|| self.changes.next().cloned().map(Item::Change)))
    }
}

/// Changes and tombstones read but not yet verified or applied.
#[derive(Default)]
struct Batch {
    changes: Vec<SignedChange>,
    bytes: usize,
    tombstones: Vec<Tombstone>,
    /// Records that do not even convert (a signature of the wrong length).
    malformed: usize,
}

impl Batch {
    fn add(&mut self, item: Item) {
        match item {
            Item::Tombstone(t) => match Tombstone::try_from(t) {
                Ok(t) => self.tombstones.push(t),
                Err(_) => self.malformed += 1,
            },
            Item::Change(c) => match SignedChange::try_from(c) {
                Ok(c) => {
                    self.bytes += c.bytes.len();
                    self.changes.push(c);
                }
                Err(_) => self.malformed += 1,
            },
        }
    }

    fn full(&self) -> bool {
        self.changes.len() >= super::BATCH_CHANGES
            || self.bytes >= BATCH_BYTES
            || self.tombstones.len() >= BATCH_CHANGES
    }

    fn len(&self) -> usize {
        self.changes.len() + self.tombstones.len() + self.malformed
    }
}

/// The budget of a bundle's batches, verified one after another
/// ([`crate::apply::verify_within`]): each batch may declare what its own
/// bytes allow, as any changes received together, and also what the
/// batches before it left unused, up to what a full batch may. A history
/// read whole keeps its deletions within what its insertions' bytes
/// allowed, however the batches cut it (a long text written early and
/// cleared much later: the clearing batch's few bytes declare a row for
/// every character deleted); the rows of the whole bundle stay within
/// what its bytes allow, and one batch's within what a full batch's may.
struct Allowance(Budget);

impl Allowance {
    fn new() -> Self {
        Self(Budget::none())
    }

    fn verify(&mut self, changes: Vec<SignedChange>) -> crate::apply::Verified {
        let bytes: usize = changes.iter().map(|c| c.bytes.len()).sum();
        let mut budget = Budget::for_bytes(bytes);
        budget.add(&self.0);
        budget.cap(&Budget::for_bytes(bytes.max(BATCH_BYTES)));
        let verified = crate::apply::verify_within(changes, &mut budget);
        self.0 = budget;
        verified
    }
}

impl Node {
    /// Imports a bundle already in memory: every signature is verified
    /// first (one bad one refuses the whole bundle), then the changes and
    /// tombstones go through the same checks as sync, in batches.
    pub fn import_bundle(&mut self, body: Body) -> Result<ApplyReport, NodeError> {
        self.import_bundle_with(body, &mut |_, _| {})
    }

    /// [`Node::import_bundle`], telling `on` how many of the bundle's
    /// changes are done.
    pub fn import_bundle_with(
        &mut self,
        body: Body,
        on: OnProgress<'_>,
    ) -> Result<ApplyReport, NodeError> {
        let items = || {
            Ok(BodyItems {
                tombstones: body.tombstones.iter(),
                changes: body.changes.iter(),
            })
        };
        let total = body.changes.len() as u64;
        let mut on_stage = |stage, done, total| {
            if stage == Stage::Applying {
                on(done, total)
            }
        };
        Ok(self
            .import_items(
                items,
                total + body.tombstones.len() as u64,
                total,
                &mut on_stage,
            )?
            .report)
    }

    /// Imports a bundle read from what `open` opens (a file, each time from
    /// its start), holding at most one batch of it in memory: `open` is
    /// called three times, to check the checksum, to verify every
    /// signature, and to apply.
    pub fn import_bundle_from<R: Read>(
        &mut self,
        mut open: impl FnMut() -> std::io::Result<R>,
        on: &mut dyn FnMut(Stage, u64, u64),
    ) -> Result<Imported, NodeError> {
        on(Stage::Checking, 0, 0);
        super::check(open().map_err(BundleError::Unreadable)?)?;
        let header = Reader::open(open().map_err(BundleError::Unreadable)?)?
            .header()
            .clone();
        let records = header.tombstones + header.changes;
        let mut imported = self.import_items(
            || Reader::open(open().map_err(BundleError::Unreadable)?),
            records,
            header.changes,
            on,
        )?;
        imported.header = header;
        Ok(imported)
    }

    fn import_items<I: Items>(
        &mut self,
        mut open: impl FnMut() -> Result<I, BundleError>,
        records: u64,
        changes: u64,
        on: &mut dyn FnMut(Stage, u64, u64),
    ) -> Result<Imported, NodeError> {
        // Pass 1: every signature, one batch at a time; nothing applied.
        let mut items = open()?;
        let mut bad = 0;
        let mut oversized = 0;
        let mut read = 0u64;
        let mut batch = Batch::default();
        let mut allowance = Allowance::new();
        let mut verify = |batch: Batch| {
            // Every change decoded whole, a document's first too (the
            // apply path leaves those to the load of the document laid out
            // from them): one that does not decode refuses the bundle.
            let verdicts: Vec<_> = allowance
                .verify(batch.changes)
                .into_iter()
                .map(|(s, v)| {
                    let v = v.and_then(|d| d.change(&s));
                    (s, v)
                })
                .collect();
            let too_large = |e: &SignatureError| {
                matches!(e, SignatureError::TooLarge(_) | SignatureError::OverBudget)
            };
            oversized += verdicts
                .iter()
                .filter(|(_, v)| v.as_ref().is_err_and(too_large))
                .count();
            batch.malformed
                + verdicts.iter().filter(|(_, v)| v.is_err()).count()
                + batch
                    .tombstones
                    .iter()
                    .filter(|t| t.verify().is_err())
                    .count()
        };
        on(Stage::Verifying, 0, records);
        while let Some(item) = items.next_item()? {
            batch.add(item);
            if batch.full() {
                read += batch.len() as u64;
                bad += verify(std::mem::take(&mut batch));
                on(Stage::Verifying, read, records);
            }
        }
        bad += verify(batch);
        on(Stage::Verifying, records, records);
        drop(items);
        if oversized > 0 && oversized == bad {
            return Err(BundleError::Oversized(oversized).into());
        }
        if bad > 0 {
            return Err(BundleError::Tampered(bad).into());
        }

        // Pass 2: apply, batch by batch (tombstones come first).
        let mut items = open()?;
        let mut imported = Imported::default();
        let mut done = 0u64;
        let mut batch = Batch::default();
        // The same batches as in pass 1, so the same allowance for each.
        let mut allowance = Allowance::new();
        loop {
            let next = items.next_item()?;
            let end = next.is_none();
            if let Some(item) = next {
                batch.add(item);
            }
            if !(end || batch.full()) {
                continue;
            }
            let batch = std::mem::take(&mut batch);
            let n = batch.changes.len() as u64;
            let verified = allowance.verify(batch.changes);
            // Verified in pass 1: a failure now means the file changed.
            if batch.malformed > 0
                || verified.iter().any(|(_, v)| v.is_err())
                || batch.tombstones.iter().any(|t| t.verify().is_err())
            {
                return Err(BundleError::Damaged.into());
            }
            if n > 0 || !batch.tombstones.is_empty() {
                let report = self.apply_verified(verified, batch.tombstones, &mut |d, total| {
                    on(Stage::Applying, done + n * d / total.max(1), changes)
                })?;
                merge(&mut imported, report);
            }
            done += n;
            if end {
                break;
            }
        }
        // A change set aside in one batch may be applied in a later one
        // (its organisation's profile came after it, in a bundle from an
        // older version): what waits is what of this bundle is still set
        // aside now (not what the clock says arrived since the start).
        let set_aside = &mut imported.report.set_aside;
        set_aside.sort_unstable();
        set_aside.dedup();
        imported.report.waiting = self.store().still_pending(set_aside)?;
        let changed = &mut imported.report.changed;
        changed.sort();
        changed.dedup();
        Ok(imported)
    }
}

fn merge(into: &mut Imported, r: ApplyReport) {
    let sum = &mut into.report;
    sum.applied += r.applied;
    sum.already_had += r.already_had;
    sum.waiting += r.waiting;
    sum.set_aside.extend(r.set_aside);
    sum.refused_erased += r.refused_erased;
    into.rejected += r.rejected.len();
    let room = MAX_LISTED_REJECTIONS.saturating_sub(sum.rejected.len());
    sum.rejected.extend(r.rejected.into_iter().take(room));
    sum.changed.extend(r.changed);
    sum.erased.extend(r.erased);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trust::Identity;
    use crate::trust::columns::forge;

    /// A bundle maker who saves up the allowance with many batches that
    /// declare nothing (tombstones only, say), then sends a batch of a
    /// few bytes declaring the most rows changes may: the batch gets no
    /// more than a full batch may declare, however much was saved.
    #[test]
    fn what_batches_save_up_is_capped_at_what_a_full_batch_may_declare() {
        let id = Identity::generate();
        let changes = forge::widest(&id, 16);
        let mut allowance = Allowance::new();
        for _ in 0..64 {
            assert!(allowance.verify(Vec::new()).is_empty());
        }
        let over = allowance
            .verify(changes)
            .into_iter()
            .filter(|(_, v)| matches!(v, Err(SignatureError::OverBudget)))
            .count();
        // A full batch may declare MAX_ROWS plus 2 for each of its 4 MiB:
        // nine of these; the 64 empty batches saved up room for 64.
        assert_eq!(over, 16 - 9);
    }
}
