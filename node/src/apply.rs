//! Receiving changes. Everything that arrives from elsewhere (a peer, later a
//! bundle) goes through [`apply`], in one store transaction:
//!
//! 1. **Signature**: the change must verify (see [`crate::trust`]).
//! 2. **Permission**: its signer must be allowed to write the document. An
//!    organisation profile may be written only by the nodes it lists (its
//!    first change by a node it lists once applied); any other entry only by
//!    the nodes of its owner organisation and of the co-editor organisations
//!    the owner named. The owner and kind of an entry never change, and
//!    only the owner's nodes may change who the editors are.
//! 3. **Apply and store**: accepted changes are applied to the document and
//!    stored with their signatures; the indexes are refreshed.
//!
//! Tombstones (signed erasures) are taken first: one signed by a node of
//! the entry's owner erases the entry here; one for an entry this node does
//! not have is kept, unchecked and not passed on, and checked if the entry
//! ever arrives. An erased entry's changes are refused.
//!
//! A change that fails (1) or (2) is rejected, written to the audit log as a
//! security event, and never stored, so it is never relayed. A change that
//! cannot be judged yet (its dependencies, or the owner's profile, have not
//! arrived) waits in the `pending` table and is tried again with the next
//! batch.
//!
//! A new document's first state is worked out ahead, on every core
//! ([`parallel`]): where its first change only adds (see [`first_doc`]),
//! its operations are laid out in document order here and automerge loads
//! them (checking that the change read back out hashes to the signed
//! hash), which costs about half of applying them; any other first change
//! is applied. A first change is not decoded by automerge as it is
//! verified ([`Decoded::First`]: its signature and hash are checked, its
//! rows bounded): the load decodes its operations, so decoding them
//! before as well did that work twice; where it is not laid out, it is
//! decoded then, and refused if it does not decode. When such a first
//! change came alone, it is not loaded at all: its rules and rows are read
//! from the operations the layout decoded ([`first_doc::View`], which
//! answers autosurgeon's reads as automerge would, or says it cannot and
//! the layout is loaded), and the document is loaded only if more must be
//! applied on top of it ([`Scratch`]). When the first change
//! came alone, the document's snapshot
//! (its layout, stored uncompressed: no second encoding
//! and `DEFLATE`) and index rows ([`Derived`]) are worked out with it (on
//! the worker threads when it comes in a chunk of several; on the writer's
//! thread for a chunk of one), so that the writer's thread, which stores
//! one document at a time, only runs SQL for it. A document that arrives with
//! more changes than its first has its rows worked out from the state
//! stored, as before.

mod first_doc;
mod parallel;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use automerge::{Automerge, Change, ChangeHash};
use convene_model::{Charter, Claim, DocumentId, Header, Kind, OrgId, Organisation, RootOnce};

use crate::error::NodeError;
use crate::node::{ApplyReport, OnProgress, Rejection};
use crate::store::{Awaits, Derived, LogEntry, Store, StoredTombstone, Writer};
use crate::trust::membership::{self, ClaimFault, Membership};
use crate::trust::signature::Signed;
use crate::trust::{SignatureError, SignedChange, Tombstone, columns};

type Batch = Vec<(SignedChange, Decoded)>;

/// A verified change as the apply path holds it.
// Held inline, as the decoded change was before: a box would be one more
// allocation for every change received.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub(crate) enum Decoded {
    /// Decoded by automerge.
    Change(Change),
    /// A document's first change (no dependency, no actor but its author),
    /// its signature and hash checked but its operations not decoded: the
    /// document laid out from it ([`first_doc`]) is loaded by automerge,
    /// which decodes them all and checks that the change it reads back
    /// out hashes as signed, so decoding them first as well did that work
    /// twice (a tenth of the daemons' CPU in the mesh bench). Decoded where
    /// it must be applied instead ([`Decoded::change`]).
    First,
}

impl Decoded {
    /// `c` verified, given what [`SignedChange::shape`] read of it.
    fn verify(
        c: &SignedChange,
        shape: Result<Signed, SignatureError>,
    ) -> Result<Self, SignatureError> {
        if c.matching(shape)?.shape().first {
            Ok(Self::First)
        } else {
            c.decode().map(Self::Change)
        }
    }

    /// Whether it is a document's first change (it has no dependencies).
    fn is_first(&self) -> bool {
        match self {
            Self::Change(c) => c.deps().is_empty(),
            Self::First => true,
        }
    }

    /// The change, decoded by automerge; `signed` is the change it was
    /// verified as.
    pub(crate) fn change(self, signed: &SignedChange) -> Result<Change, SignatureError> {
        match self {
            Self::Change(c) => Ok(c),
            Self::First => signed.decode(),
        }
    }
}

/// Most documents whose first change is worked out ahead, on every core,
/// at once (a chunk; see [`chunk_size`]): enough to keep the cores busy,
/// few enough to bound the memory of the scratch documents held at once.
const AHEAD: usize = 64;

/// A new document with its first change applied, the rules read from it
/// and its rows should it be stored as it is (or why that failed): worked
/// out ahead, before the document is known to be new, and used only if it
/// is.
type FirstState = Result<(Scratch, Rules, Option<Derived>), String>;

/// A new document's first state.
#[derive(Debug)]
enum Scratch {
    /// Loaded or applied by automerge (boxed: a document is kilobytes
    /// before it holds anything, and costs far more than a box to make).
    Doc(Box<Automerge>),
    /// Read from its first change alone ([`first_doc::View`]): its saved
    /// form, loaded only if more must be applied on top of it.
    Read(Vec<u8>),
}

impl Scratch {
    /// The document, loaded if it was only read; the error if its saved
    /// form does not load as the one change it was read from.
    fn into_doc(self, root: ChangeHash) -> Result<Automerge, String> {
        match self {
            Self::Doc(doc) => Ok(*doc),
            Self::Read(saved) => {
                let doc = catch_quietly(|| Automerge::load(&saved))
                    .map_err(|_| "its first state does not load".to_string())?
                    .map_err(|e| format!("its first state does not load: {e}"))?;
                if doc.get_heads() == [root] {
                    Ok(doc)
                } else {
                    Err("its first state does not load as its first change".into())
                }
            }
        }
    }
}

/// A new document's first state, with its rules and, if `alone` (its
/// first change came alone, so it will be stored as this state if it is
/// accepted), its rows: worked out ahead on any core, so that the writer's
/// thread, which stores one document at a time, only runs SQL for it.
fn first_state(doc: DocumentId, signed: &SignedChange, root: &Decoded, alone: bool) -> FirstState {
    // The change's layout, if it has one: read through its view when it
    // came alone, else (or when the view cannot answer) loaded.
    let laid = if alone {
        match read_first(doc, signed) {
            Ok(read) => return Ok(read),
            Err(laid) => laid,
        }
    } else {
        None
    };
    let (scratch, saved) = match loaded_first(signed, laid) {
        Some((doc, saved)) => (doc, Some(saved)),
        None => {
            let root = root.clone().change(signed).map_err(|e| e.to_string())?;
            let mut scratch = Automerge::new();
            apply_received(&mut scratch, vec![root])?;
            (scratch, None)
        }
    };
    // The rules and the rows are both read from the root map: read it once.
    let root = RootOnce::new(&scratch);
    let rules = Rules::of_root(&root)?;
    let derived =
        alone.then(|| Derived::of_saved(&root, doc, saved.unwrap_or_else(|| scratch.save())));
    drop(root);
    Ok((Scratch::Doc(Box::new(scratch)), rules, derived))
}

/// A first state read without a load: the state, its rules and its rows.
type Read = (Scratch, Rules, Option<Derived>);

/// A new document's first state read from its first change alone, without
/// automerge loading it ([`first_doc::View`]): its rules and rows, and its
/// saved form to store. Where the change has no such reading, or the
/// reading needed what the view does not answer, or the rules do not read,
/// the document is loaded instead and judged as before: the error holds
/// the change's layout, if it has one, for [`loaded_first`] to load.
fn read_first(doc: DocumentId, root: &SignedChange) -> Result<Read, Option<Vec<u8>>> {
    catch_quietly(|| {
        let Some((saved, view)) = first_doc::laid_out(&root.bytes, root.hash, true) else {
            return Err(None);
        };
        let Some(view) = view else {
            return Err(Some(saved));
        };
        let Ok(rules) = Rules::of_root(&view) else {
            return Err(Some(saved));
        };
        let derived = Derived::of_saved(&view, doc, saved.clone());
        if view.unsure() {
            return Err(Some(saved));
        }
        Ok((Scratch::Read(saved), rules, Some(derived)))
    })
    .unwrap_or(Err(None))
}

/// A new document holding `root` alone, loaded from the layout
/// [`first_doc::saved_form`] works out from its bytes (`laid`, if it was
/// worked out already; automerge decodes every operation, and checks that
/// the change it reads back out hashes as the layout says, which must be
/// the hash `root` was signed as), with that layout (the document's saved
/// form, uncompressed); `None` where there is no such layout, or it does
/// not load, and the change is decoded and applied instead.
fn loaded_first(root: &SignedChange, laid: Option<Vec<u8>>) -> Option<(Automerge, Vec<u8>)> {
    let (doc, saved) = catch_quietly(|| {
        let saved = match laid {
            Some(saved) => saved,
            None => first_doc::saved_form(&root.bytes, root.hash)?,
        };
        Some((Automerge::load(&saved).ok()?, saved))
    })
    .ok()??;
    (doc.get_heads() == [ChangeHash(root.hash)]).then_some((doc, saved))
}

/// A document's changes that this node does not store yet, and whether it
/// has the document at all.
type Fresh = (DocumentId, Batch, bool);

/// The next [`chunk_size`] documents of `round` with changes this node
/// does not store yet. What is stored already (the same change fetched from two
/// peers at once, or offered again) costs one indexed read, not an
/// automerge load or apply; `skipped` is called for each document that
/// needs nothing.
fn next_chunk(
    w: &Writer<'_>,
    round: &mut impl ExactSizeIterator<Item = (DocumentId, Batch)>,
    report: &mut ApplyReport,
    skipped: &mut dyn FnMut(),
) -> Result<Vec<Fresh>, NodeError> {
    let size = chunk_size(round.len());
    let mut chunk = Vec::new();
    while chunk.len() < size {
        let Some((doc, batch)) = round.next() else {
            break;
        };
        let mut new = Batch::new();
        for (signed, change) in batch {
            if w.has_change(doc, &signed.hash)? {
                report.already_had += 1;
            } else {
                new.push((signed, change));
            }
        }
        if new.is_empty() {
            skipped();
            continue;
        }
        let known = w.kind_of(doc)?.is_some();
        chunk.push((doc, new, known));
    }
    Ok(chunk)
}

/// Rounds of at most this many documents (a live update, a short
/// session) are worked out in one chunk, on every core at once.
const SMALL_ROUND: usize = 4;

/// How many documents the next chunk takes when `left` are left in the
/// round: [`AHEAD`], then half of what is left, down to [`SMALL_ROUND`].
/// The last chunk is stored on this core alone, with nothing left to work
/// out ahead on the others; halving keeps each chunk's first states
/// (worked out on every core) at least as long as storing the chunk
/// before, so the cores stay busy to the end and the last chunk is a few
/// documents, not a full one.
fn chunk_size(left: usize) -> usize {
    if left <= SMALL_ROUND {
        left
    } else {
        AHEAD.min(left.div_ceil(2))
    }
}

/// The chunk with each new document's first state, worked out on every
/// core (none for a document this node has).
fn with_first_states(chunk: Vec<Fresh>) -> (Vec<Fresh>, Vec<Option<FirstState>>) {
    let firsts = parallel::map(&chunk, |(doc, batch, known)| {
        if *known {
            None
        } else {
            only_root(batch).map(|(signed, root)| first_state(*doc, signed, root, batch.len() == 1))
        }
    });
    (chunk, firsts)
}

/// A chunk's first states: worked out already, or on another core.
enum Ahead<'scope> {
    Ready((Vec<Fresh>, Vec<Option<FirstState>>)),
    Working(std::thread::ScopedJoinHandle<'scope, (Vec<Fresh>, Vec<Option<FirstState>>)>),
}

/// The first change of a batch, if it holds exactly one.
fn only_root(batch: &Batch) -> Option<&(SignedChange, Decoded)> {
    let mut roots = batch.iter().filter(|(_, c)| c.is_first());
    match (roots.next(), roots.next()) {
        (Some(root), None) => Some(root),
        _ => None,
    }
}

/// Changes with their verdicts: decoded and verified, or why not.
pub(crate) type Verified = Vec<(SignedChange, Result<Decoded, SignatureError>)>;

/// Decodes and verifies changes received together, on every core.
///
/// What each change's bytes declare is read first, and the rows of all of
/// them are bounded together ([`columns::Budget`]): a change that would go
/// over is refused unread, so a message of many short changes that each
/// declare the most rows one change may costs no more than its bytes.
pub(crate) fn verify_all(changes: Vec<SignedChange>) -> Verified {
    let mut budget = columns::Budget::for_bytes(changes.iter().map(|c| c.bytes.len()).sum());
    verify_within(changes, &mut budget)
}

/// [`verify_all`] within `budget`, which is left with what they did not
/// take.
///
/// The budget is taken in order of what changes declare for each of their
/// bytes, least first: every change that declares no more than its bytes
/// allow is taken before any that declares more, so those (a peer's
/// parked changes, taken out of the store with honest ones) cannot crowd
/// it out. Changes whose signature fails declare nothing and take none.
pub(crate) fn verify_within(changes: Vec<SignedChange>, budget: &mut columns::Budget) -> Verified {
    let shapes = parallel::map(&changes, SignedChange::shape);
    let mut order: Vec<usize> = (0..changes.len()).collect();
    order.sort_by_key(|&i| match &shapes[i] {
        Ok(s) => {
            let s = s.shape();
            (u128::from(s.rows.max(s.strings)) << 32) / changes[i].bytes.len().max(1) as u128
        }
        Err(_) => 0,
    });
    let mut within = vec![true; changes.len()];
    for i in order {
        if let Ok(s) = &shapes[i] {
            within[i] = budget.take(s.shape());
        }
    }
    let checked: Vec<_> = changes
        .iter()
        .zip(shapes)
        .zip(within)
        .map(|((c, shape), within)| {
            if within {
                Ok((c, shape))
            } else {
                Err(SignatureError::OverBudget)
            }
        })
        .collect();
    let verdicts = parallel::map(&checked, |c| match c {
        Ok((c, shape)) => Decoded::verify(c, shape.clone()),
        Err(e) => Err(e.clone()),
    });
    changes.into_iter().zip(verdicts).collect()
}

/// Who may write a document, read from its state.
#[derive(Debug, Clone, PartialEq)]
struct Rules {
    /// The kind, if this version knows it: a kind made by a newer Convene
    /// is written by its owner and editors, as most kinds are.
    kind: Option<Kind>,
    /// The kind as the document names it.
    kind_name: String,
    owner: OrgId,
    visibility: String,
    editors: Vec<OrgId>,
    /// For an organisation profile: the nodes it lists.
    profile_nodes: BTreeSet<String>,
    /// For a charter: its content (its stewards write it).
    charter: Option<Charter>,
    /// For a join claim: the node that makes it.
    claim_node: Option<String>,
    /// For a join claim: the claim itself, checked against the charter.
    claim: Option<Claim>,
}

impl Rules {
    fn of(state: &Automerge) -> Result<Self, String> {
        Self::of_root(&RootOnce::new(state))
    }

    /// The rules of a document whose root map was read already: the header
    /// and a profile, charter or claim are all read from it.
    fn of_root<D: autosurgeon::ReadDoc>(state: &D) -> Result<Self, String> {
        let meta: Header = autosurgeon::hydrate(state).map_err(|e| e.to_string())?;
        let kind = meta.known_kind();
        let profile_nodes = if kind == Some(Kind::Organisation) {
            let org: Organisation = autosurgeon::hydrate(state).map_err(|e| e.to_string())?;
            org.nodes.into_iter().collect()
        } else {
            BTreeSet::new()
        };
        let charter = if kind == Some(Kind::Charter) {
            Some(autosurgeon::hydrate(state).map_err(|e| e.to_string())?)
        } else {
            None
        };
        let claim: Option<Claim> = if kind == Some(Kind::Join) {
            Some(autosurgeon::hydrate(state).map_err(|e| e.to_string())?)
        } else {
            None
        };
        let claim_node = claim.as_ref().map(|c| c.node.clone());
        Ok(Self {
            kind,
            kind_name: meta.kind,
            owner: meta.owner,
            visibility: meta.visibility.to_string(),
            editors: meta.editors,
            profile_nodes,
            charter,
            claim_node,
            claim,
        })
    }
}

fn signer(c: &SignedChange) -> String {
    c.signer_id()
        .map_or_else(|| "an unknown key".into(), |n| n.to_string())
}

fn reject(report: &mut ApplyReport, c: &SignedChange, reason: String) {
    tracing::warn!(doc = %c.doc, signer = %signer(c), %reason, "rejected a change");
    report.rejected.push(Rejection {
        doc: c.doc,
        hash: c.hash,
        signer: c.signer_id(),
        reason,
    });
}

/// Whether `node` may erase a document with these rules: a node of its
/// owner organisation, or for a contact a steward's node.
fn may_erase(w: &Writer<'_>, rules: &Rules, node: &str) -> Result<bool, NodeError> {
    Ok(match rules.kind {
        Some(Kind::Organisation) => rules.profile_nodes.contains(node),
        // Personal data: a steward may erase any contact, e.g. when the
        // person asks and their organisation has left.
        Some(Kind::Contact) => {
            w.is_node_of(node, &rules.owner.to_string())?
                || membership::load(w).is_some_and(|m| m.is_steward_node(node))
        }
        _ => w.is_node_of(node, &rules.owner.to_string())?,
    })
}

fn erase(
    w: &Writer<'_>,
    t: Tombstone,
    rules: &Rules,
    now: i64,
    report: &mut ApplyReport,
) -> Result<(), NodeError> {
    let doc = t.doc;
    let signer = t.signer_id().map(|s| s.to_string());
    let reason = t.reason.clone();
    w.erase_doc(doc)?;
    w.put_tombstone(&StoredTombstone {
        tombstone: t,
        owner: rules.owner.to_string(),
        visibility: rules.visibility.clone(),
        verified: true,
    })?;
    w.log(
        now,
        &LogEntry {
            at: now,
            event: "erased".into(),
            security: false,
            doc: Some(doc.to_string()),
            signer,
            detail: reason,
        },
    )?;
    report.erased.push(doc);
    Ok(())
}

fn reject_tombstone(
    w: &Writer<'_>,
    t: &Tombstone,
    reason: &str,
    now: i64,
) -> Result<(), NodeError> {
    tracing::warn!(doc = %t.doc, %reason, "rejected a tombstone");
    w.log(
        now,
        &LogEntry {
            at: now,
            event: "rejected-erasure".into(),
            security: true,
            doc: Some(t.doc.to_string()),
            signer: t.signer_id().map(|s| s.to_string()),
            detail: reason.to_string(),
        },
    )?;
    Ok(())
}

/// Takes one received tombstone.
fn apply_tombstone(
    w: &Writer<'_>,
    t: Tombstone,
    now: i64,
    report: &mut ApplyReport,
) -> Result<(), NodeError> {
    if let Err(e) = t.verify() {
        return reject_tombstone(w, &t, &e.to_string(), now);
    }
    if w.tombstone(t.doc)?.is_some_and(|old| old.verified) {
        return Ok(());
    }
    match w.load(t.doc)? {
        Some(state) => {
            let rules = Rules::of(&state).map_err(|e| NodeError::InvalidDocument {
                id: t.doc,
                problem: e,
            })?;
            let node = t.signer_id().map(|s| s.to_string()).unwrap_or_default();
            if may_erase(w, &rules, &node)? {
                erase(w, t, &rules, now, report)?;
            } else {
                reject_tombstone(w, &t, "its signer may not erase this entry", now)?;
            }
        }
        // Not here (yet): keep it, unchecked and not passed on, to check
        // against the entry if it ever arrives.
        None => w.put_tombstone(&StoredTombstone {
            tombstone: t,
            owner: String::new(),
            visibility: String::new(),
            verified: false,
        })?,
    }
    Ok(())
}

/// Verifies, checks and stores `incoming`; see the module docs.
/// `incoming` comes verified ([`verify_all`]): changes that failed are
/// rejected here.
pub(crate) fn apply(
    store: &mut Store,
    sender: &str,
    incoming: Verified,
    tombstones: Vec<Tombstone>,
    now: i64,
    on: OnProgress<'_>,
) -> Result<ApplyReport, NodeError> {
    let mut report = ApplyReport::default();
    let mut todo: BTreeMap<DocumentId, Batch> = BTreeMap::new();
    for (signed, verdict) in incoming {
        match verdict {
            Ok(change) => todo.entry(signed.doc).or_default().push((signed, change)),
            Err(e) => reject(&mut report, &signed, e.to_string()),
        }
    }
    store.write(|w| {
        w.receiving_from(sender, now)?;
        for t in tombstones {
            apply_tombstone(w, t, now, &mut report)?;
        }
        // Changes that waited for earlier changes of these documents get
        // another chance with this batch.
        let docs: Vec<DocumentId> = todo.keys().copied().collect();
        add_waiting(&mut todo, w.take_pending_for(&docs)?, &mut report);
        // Profiles, charters and claims authorise other changes, possibly
        // in the same batch: keep going while that lets changes in.
        let mut members = membership::load(&*w);
        // Documents whose waiting changes have been taken out to try.
        let mut taken: BTreeSet<DocumentId> = docs.into_iter().collect();
        // Progress counts the documents of the first round; later rounds
        // retry the few that waited for an authority in the same batch.
        let total = todo.len() as u64;
        let mut done = 0;
        let mut first_round = true;
        while !todo.is_empty() {
            let before = report.changed.len();
            let mut round: Vec<(DocumentId, Batch)> =
                std::mem::take(&mut todo).into_iter().collect();
            // Organisation profiles first (a profile's id is its signer's
            // organisation id): an entry met before its organisation's
            // profile would be set aside and taken out again.
            round.sort_by_key(|(doc, batch)| {
                !batch
                    .iter()
                    .any(|(s, _)| crate::trust::org_id(&s.signer) == *doc)
            });
            let mut round = round.into_iter();
            // The first states of the next chunk are worked out on the
            // other cores while this chunk goes through the checks and
            // into the store on this one.
            std::thread::scope(|scope| -> Result<(), NodeError> {
                let mut count = |done: &mut u64| {
                    if first_round {
                        *done += 1;
                        on(*done, total);
                    }
                };
                // A lone document (a live update, the last of a chunk
                // that could not be filled) is worked out here: a thread
                // costs more than it saves.
                let start = |chunk: Vec<Fresh>| match chunk.len() {
                    0 => None,
                    1 => Some(Ahead::Ready(with_first_states(chunk))),
                    _ => Some(Ahead::Working(
                        scope.spawn(move || with_first_states(chunk)),
                    )),
                };
                let mut ahead = start(next_chunk(w, &mut round, &mut report, &mut || {
                    count(&mut done)
                })?);
                while let Some(working) = ahead.take() {
                    // The next chunk is read from the store while this
                    // one's first states are still being worked out.
                    let following =
                        next_chunk(w, &mut round, &mut report, &mut || count(&mut done))?;
                    let (chunk, firsts) = match working {
                        Ahead::Ready(worked_out) => worked_out,
                        Ahead::Working(thread) => thread
                            .join()
                            .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                    };
                    ahead = start(following);
                    for ((doc, batch, _), first) in chunk.into_iter().zip(firsts) {
                        apply_doc(w, members.as_ref(), doc, batch, first, now, &mut report)?;
                        count(&mut done);
                    }
                }
                Ok(())
            })?;
            first_round = false;
            let changed = report.changed[before..].to_vec();
            // A document that changed in a retry may have later changes
            // waiting for it.
            let fresh: Vec<DocumentId> = changed
                .iter()
                .copied()
                .filter(|d| taken.insert(*d))
                .collect();
            add_waiting(&mut todo, w.take_pending_for(&fresh)?, &mut report);
            // A new profile, charter or claim: try the changes that waited
            // for what it brings, and only those.
            if changed.iter().any(|d| is_authority(w, *d)) {
                members = membership::load(&*w);
                let mut ready = Vec::new();
                for blocker in w.pending_blockers()? {
                    if resolved(w, members.as_ref(), &blocker)? {
                        ready.push(blocker);
                    }
                }
                add_waiting(&mut todo, w.take_pending_awaiting(&ready)?, &mut report);
            }
        }
        for r in &report.rejected {
            w.log(
                now,
                &LogEntry {
                    at: now,
                    event: "rejected".into(),
                    security: true,
                    doc: Some(r.doc.to_string()),
                    signer: r.signer.map(|s| s.to_string()),
                    detail: r.reason.clone(),
                },
            )?;
        }
        Ok::<_, NodeError>(())
    })?;
    Ok(report)
}

/// Whether a document decides who may write others: an organisation
/// profile, the charter, a join claim.
fn is_authority(w: &Writer<'_>, doc: DocumentId) -> bool {
    matches!(
        w.kind_of(doc).ok().flatten().as_deref(),
        Some("organisation" | "charter" | "join")
    )
}

/// Adds waiting changes (verified when they first arrived, verified again
/// as they come back from the store) to the documents to try. Changes
/// taken out together are bounded as changes received together are
/// ([`verify_all`]): a peer that parked many short changes, each declaring
/// the most rows one change may, cannot have them all applied at once
/// when what they wait for arrives. Those over the bound are refused (an
/// honest one is sent again by the next sync), and changes that declare no
/// more than their bytes allow are never crowded out by them.
fn add_waiting(
    todo: &mut BTreeMap<DocumentId, Batch>,
    old: Vec<SignedChange>,
    report: &mut ApplyReport,
) {
    for (old, verdict) in verify_all(old) {
        match verdict {
            Ok(change) => {
                let batch = todo.entry(old.doc).or_default();
                if !batch.iter().any(|(s, _)| s.hash == old.hash) {
                    batch.push((old, change));
                }
            }
            Err(e) => reject(report, &old, e.to_string()),
        }
    }
}

/// Whether what a waiting change waits for is here now. Consistent with
/// [`apply_doc`]: a change whose blocker is resolved does not wait for it
/// again, so retrying terminates.
fn resolved(
    w: &Writer<'_>,
    members: Option<&Membership>,
    awaits: &Awaits,
) -> Result<bool, NodeError> {
    Ok(match awaits {
        // Tried again when its own document changes.
        Awaits::Doc => false,
        Awaits::Org(org) => {
            w.knows_org(org)? || members.is_some_and(|m| m.members.contains_key(org))
        }
        // A member's node, or a former member's (then it is refused).
        Awaits::Node(node) => members.is_none_or(|m| m.org_of(node).is_some()),
        Awaits::Unknown => true,
    })
}

fn keep_waiting(
    w: &Writer<'_>,
    c: &SignedChange,
    awaits: &Awaits,
    now: i64,
    report: &mut ApplyReport,
) -> Result<(), NodeError> {
    if w.add_pending(c, awaits, now)? {
        report.waiting += 1;
        report.set_aside.push((c.doc, c.hash));
    } else {
        reject(report, c, "too many changes are waiting already".into());
    }
    Ok(())
}

fn apply_doc(
    w: &mut Writer<'_>,
    members: Option<&Membership>,
    doc: DocumentId,
    batch: Batch,
    first: Option<FirstState>,
    now: i64,
    report: &mut ApplyReport,
) -> Result<(), NodeError> {
    let existing = w.load(doc)?;
    let state = existing.clone().unwrap_or_else(Automerge::new);
    let (had, new): (Batch, Batch) = batch
        .into_iter()
        .partition(|(s, _)| state.get_change_meta_by_hash(&ChangeHash(s.hash)).is_some());
    report.already_had += had.len();
    if new.is_empty() {
        return Ok(());
    }

    // For a new document, its first change is applied once, here, and the
    // state kept if the change is accepted.
    let mut first_state_kept: Option<(Scratch, ChangeHash, Option<Derived>)> = None;
    let rules = match &existing {
        Some(s) => Rules::of(s),
        None => {
            let roots: Vec<&(SignedChange, Decoded)> =
                new.iter().filter(|(_, c)| c.is_first()).collect();
            match roots.as_slice() {
                [] => {
                    // The document's first change has not arrived yet.
                    return wait_for(w, &new, &Awaits::Doc, now, report);
                }
                [(signed, root)] => {
                    // Worked out ahead for the same root, or now.
                    let made =
                        first.unwrap_or_else(|| first_state(doc, signed, root, new.len() == 1));
                    made.and_then(|(scratch, rules, derived)| {
                        first_state_kept = Some((scratch, ChangeHash(signed.hash), derived));
                        let expected = if rules.kind == Some(Kind::Organisation) {
                            crate::trust::org_id(&signed.signer)
                        } else {
                            crate::trust::entry_id(&signed.hash)
                        };
                        if expected == doc {
                            Ok(rules)
                        } else {
                            Err("its id does not match its first change".into())
                        }
                    })
                }
                _ => Err("a document cannot have two first changes".into()),
            }
        }
    };
    let rules = match rules {
        Ok(r) => r,
        Err(e) => {
            for (signed, _) in &new {
                reject(report, signed, format!("not a Convene entry: {e}"));
            }
            return Ok(());
        }
    };
    // A join claim is kept and relayed only if it proves the invite's
    // secret and keeps to what the invite is for (a stranger's guess or an
    // edited code is never stored). Without the charter yet, it cannot be
    // judged and is taken as before; membership checks it again.
    if existing.is_none()
        && let Some(claim) = &rules.claim
        && let Some((community, charter)) = membership::charter(&*w)
    {
        let profiles = |org: &str| membership::profile_nodes(&*w, org);
        match membership::check_claim(community, &charter, claim, &profiles) {
            // Its organisation's consent may arrive later.
            Ok(_) | Err(ClaimFault::NoConsent { .. }) => {}
            // The charter here may be behind the one the invite is in: the
            // claim waits (in its sender's share) until a charter arrives.
            Err(ClaimFault::UnknownInvite) => {
                return wait_for(w, &new, &Awaits::Unknown, now, report);
            }
            Err(fault) => {
                for (signed, _) in &new {
                    reject(
                        report,
                        signed,
                        format!("a join claim that does not count: {fault}"),
                    );
                }
                return Ok(());
            }
        }
    }
    // An erased entry never comes back.
    if let Some(stored) = w.tombstone(doc)? {
        let node = stored
            .tombstone
            .signer_id()
            .map(|s| s.to_string())
            .unwrap_or_default();
        if stored.verified {
            report.refused_erased += new.len();
            return Ok(());
        }
        if rules.kind != Some(Kind::Organisation) && !w.knows_org(&rules.owner.to_string())? {
            return wait_for(w, &new, &Awaits::Org(rules.owner.to_string()), now, report);
        }
        if may_erase(w, &rules, &node)? {
            report.refused_erased += new.len();
            erase(w, stored.tombstone, &rules, now, report)?;
            return Ok(());
        }
        reject_tombstone(
            w,
            &stored.tombstone,
            "its signer may not erase this entry",
            now,
        )?;
        w.drop_tombstone(doc)?;
    }
    if rules.kind == Some(Kind::Organisation) && rules.owner.0 != doc {
        for (signed, _) in &new {
            reject(
                report,
                signed,
                "an organisation profile must own itself".into(),
            );
        }
        return Ok(());
    }
    let owner = rules.owner.to_string();
    let self_governed = matches!(
        rules.kind,
        Some(Kind::Organisation | Kind::Charter | Kind::Join)
    );
    if !self_governed
        && !w.knows_org(&owner)?
        && !members.is_some_and(|m| m.members.contains_key(&owner))
    {
        return wait_for(w, &new, &Awaits::Org(owner), now, report);
    }
    // The stewards of a charter: from the membership if it is this node's
    // community (claims can make stewards), else from the charter alone.
    let charter_authority = rules.charter.as_ref().map(|c| match members {
        Some(m) if m.community == doc => m.clone(),
        _ => Membership::compute(doc, c, &[], &|_| BTreeSet::new()),
    });
    let node_of = |w: &Writer<'_>, node: &str, org: &str| -> Result<bool, NodeError> {
        Ok(w.is_node_of(node, org)? || members.is_some_and(|m| m.is_node_of(node, org)))
    };
    let is_owner_node = |w: &Writer<'_>, node: &str| -> Result<bool, NodeError> {
        Ok(match rules.kind {
            Some(Kind::Organisation) => rules.profile_nodes.contains(node),
            Some(Kind::Charter) => charter_authority
                .as_ref()
                .is_some_and(|m| m.is_steward_node(node)),
            Some(Kind::Join) => rules.claim_node.as_deref() == Some(node),
            _ => node_of(w, node, &owner)?,
        })
    };
    let is_editor = |w: &Writer<'_>, node: &str, editors: &[OrgId]| -> Result<bool, NodeError> {
        for e in editors {
            if node_of(w, node, &e.to_string())? {
                return Ok(true);
            }
        }
        Ok(false)
    };
    enum Seat {
        Owner,
        Editor,
        Other,
        Held,
        Former,
    }
    // Each signer's node id, spelled out once (base58) for every check.
    let nodes: Vec<String> = new.iter().map(|(signed, _)| signer(signed)).collect();
    let mut seats = Vec::with_capacity(new.len());
    for node in &nodes {
        let node = node.as_str();
        // In a community, only current members' nodes write (charters and
        // join claims carry their own authority).
        if let Some(m) = members
            && !matches!(rules.kind, Some(Kind::Charter | Kind::Join))
        {
            if m.org_of(node).is_some_and(|o| o.removed.is_some()) {
                seats.push(Seat::Former);
                continue;
            }
            if !m.is_member_node(node) {
                // Perhaps its join claim has not arrived yet.
                seats.push(Seat::Held);
                continue;
            }
        }
        seats.push(if is_owner_node(w, node)? {
            Seat::Owner
        } else if is_editor(w, node, &rules.editors)? {
            Seat::Editor
        } else {
            Seat::Other
        });
    }
    // The owner's changes in this batch may name editors (a co-editor's
    // first edit travels with the change that made it one): the others
    // are judged by the editors after the owner's changes.
    let owners = seats.iter().any(|s| matches!(s, Seat::Owner));
    let others = seats
        .iter()
        .any(|s| matches!(s, Seat::Editor | Seat::Other));
    let owner_editors = if owners && others {
        // Only a document's first change can be read without a document,
        // and only when it came alone: not here.
        let (mut trial, skip) = match &first_state_kept {
            Some((Scratch::Doc(scratch), root, _)) => ((**scratch).clone(), Some(*root)),
            _ => (state.clone(), None),
        };
        let theirs: Result<Vec<Change>, String> = new
            .iter()
            .zip(&seats)
            .filter(|((s, _), seat)| {
                matches!(seat, Seat::Owner) && Some(ChangeHash(s.hash)) != skip
            })
            .map(|((s, c), _)| c.clone().change(s).map_err(|e| e.to_string()))
            .collect();
        match theirs
            .and_then(|theirs| apply_received(&mut trial, theirs))
            .and_then(|()| Rules::of(&trial))
        {
            Ok(after) => after.editors,
            Err(_) => rules.editors.clone(),
        }
    } else {
        rules.editors.clone()
    };
    let mut permitted: Batch = Vec::new();
    let mut held: Batch = Vec::new();
    let mut by_owner = true;
    for (((signed, change), seat), node) in new.into_iter().zip(seats).zip(nodes) {
        let allowed = match seat {
            Seat::Former => {
                reject(
                    report,
                    &signed,
                    format!("node {node} belongs to a former member of the community"),
                );
                continue;
            }
            Seat::Held => {
                held.push((signed, change));
                continue;
            }
            Seat::Owner | Seat::Editor => true,
            Seat::Other => is_editor(w, &node, &owner_editors)?,
        };
        if allowed {
            by_owner &= matches!(seat, Seat::Owner);
            permitted.push((signed, change));
        } else {
            reject(
                report,
                &signed,
                format!(
                    "node {node} may not change {} {doc}: it is not a node of its owner organisation {owner} or of an editor the owner named",
                    rules.kind_name
                ),
            );
        }
    }
    for (signed, _) in &held {
        keep_waiting(w, signed, &Awaits::Node(signer(signed)), now, report)?;
    }
    if permitted.is_empty() {
        return Ok(());
    }

    let kept = first_state_kept
        .filter(|(_, root, _)| permitted.iter().any(|(s, _)| ChangeHash(s.hash) == *root));
    let skip = kept.as_ref().map(|(_, root, _)| *root);
    let decoded: Result<Vec<Change>, SignatureError> = permitted
        .iter()
        .filter(|(s, _)| Some(ChangeHash(s.hash)) != skip)
        .map(|(s, c)| c.clone().change(s))
        .collect();
    // Only the first change, whose rules were just read: nothing to check,
    // and its first state, as it was worked out, is stored with its rows.
    if decoded.as_ref().is_ok_and(Vec::is_empty)
        && let Some((_, _, Some(derived))) = kept
    {
        let signed: Vec<SignedChange> = permitted.into_iter().map(|(s, _)| s).collect();
        report.applied += signed.len();
        w.put_derived(&signed, now, derived)?;
        report.changed.push(doc);
        return Ok(());
    }
    let only_first = decoded.as_ref().is_ok_and(Vec::is_empty);
    let applied = decoded.map_err(|e| e.to_string()).and_then(|decoded| {
        let mut next = match kept {
            Some((scratch, root, _)) => scratch.into_doc(root)?,
            None => state.clone(),
        };
        apply_received(&mut next, decoded)?;
        Ok(next)
    });
    let verdict = applied
        .map_err(|e| format!("cannot be applied: {e}"))
        .and_then(|next| {
            if only_first {
                return Ok(next);
            }
            match Rules::of(&next) {
                Err(e) => Err(format!("breaks the entry's metadata: {e}")),
                Ok(after) if after.kind_name != rules.kind_name || after.owner != rules.owner => {
                    Err("changes the kind or owner of an entry, which never change".into())
                }
                Ok(after) if after.editors != owner_editors && !by_owner => {
                    Err("changes who may edit an entry; only its owner organisation may".into())
                }
                Ok(_) => Ok(next),
            }
        });
    let next = match verdict {
        Ok(next) => next,
        Err(reason) => {
            for (signed, _) in &permitted {
                reject(report, signed, reason.clone());
            }
            return Ok(());
        }
    };
    let (applied, waiting): (Batch, Batch) = permitted
        .into_iter()
        .partition(|(s, _)| next.get_change_meta_by_hash(&ChangeHash(s.hash)).is_some());
    wait_for(w, &waiting, &Awaits::Doc, now, report)?;
    if !applied.is_empty() {
        let signed: Vec<SignedChange> = applied.into_iter().map(|(s, _)| s).collect();
        report.applied += signed.len();
        w.put(doc, &next, &signed, now)?;
        report.changed.push(doc);
    }
    Ok(())
}

/// Sets a document's new changes aside until `awaits` arrives.
fn wait_for(
    w: &Writer<'_>,
    new: &Batch,
    awaits: &Awaits,
    now: i64,
    report: &mut ApplyReport,
) -> Result<(), NodeError> {
    for (signed, _) in new {
        keep_waiting(w, signed, awaits, now, report)?;
    }
    Ok(())
}

/// Applies received changes to a document. A change can decode and hash
/// correctly and still trip an assertion inside automerge (fuzzing bundle
/// import found a signed change with an actor index out of range that
/// panics in `apply_changes`); that panic is caught here and becomes an
/// error, so one hostile change is rejected instead of stopping the node.
/// After an error the document may be half-changed: callers discard it.
///
/// automerge collects every operation of the changes it is given before
/// applying them (about 400 bytes each), so they are given to it in
/// slices of at most [`columns::MAX_ROWS`] operations, each change after
/// those it depends on: what applying costs in memory beyond the document
/// is bounded by one change's worth, however many arrived. (Given in the
/// order received, changes sent newest first would wait in automerge's
/// queue, slice after slice, and be applied all at once with the last.)
pub(crate) fn apply_received(doc: &mut Automerge, changes: Vec<Change>) -> Result<(), String> {
    apply_in_slices(doc, changes, columns::MAX_ROWS)
}

fn apply_in_slices(doc: &mut Automerge, changes: Vec<Change>, most: u64) -> Result<(), String> {
    let mut slice = Vec::new();
    let mut ops = 0;
    // In one slice, automerge puts them in order itself.
    let total: u64 = changes.iter().map(|c| c.len() as u64).sum();
    let changes = if total > most {
        causal_order(changes)
    } else {
        changes
    };
    let mut changes = changes.into_iter().peekable();
    while let Some(change) = changes.next() {
        ops += change.len() as u64;
        slice.push(change);
        let full = changes
            .peek()
            .is_none_or(|next| ops + next.len() as u64 > most);
        if full {
            match catch_quietly(|| doc.apply_changes(std::mem::take(&mut slice))) {
                Ok(result) => result.map_err(|e| e.to_string())?,
                Err(_) => return Err("a malformed change (automerge cannot apply it)".into()),
            }
            ops = 0;
        }
    }
    Ok(())
}

/// `changes` with each after those of its dependencies given with it (in
/// the order given where that allows).
fn causal_order(changes: Vec<Change>) -> Vec<Change> {
    let index: HashMap<ChangeHash, usize> = changes
        .iter()
        .enumerate()
        .map(|(i, c)| (c.hash(), i))
        .collect();
    let mut waits_for = vec![0usize; changes.len()];
    let mut dependents = vec![Vec::new(); changes.len()];
    for (i, c) in changes.iter().enumerate() {
        for dep in c.deps() {
            if let Some(&j) = index.get(dep).filter(|&&j| j != i) {
                waits_for[i] += 1;
                dependents[j].push(i);
            }
        }
    }
    let mut ready: std::collections::VecDeque<usize> =
        (0..changes.len()).filter(|&i| waits_for[i] == 0).collect();
    let mut order = Vec::with_capacity(changes.len());
    while let Some(i) = ready.pop_front() {
        order.push(i);
        for &k in &dependents[i] {
            waits_for[k] -= 1;
            if waits_for[k] == 0 {
                ready.push_back(k);
            }
        }
    }
    let mut slots: Vec<Option<Change>> = changes.into_iter().map(Some).collect();
    let mut ordered: Vec<Change> = order.into_iter().filter_map(|i| slots[i].take()).collect();
    // (Every change is placed: hashes cannot form a cycle.)
    ordered.extend(slots.into_iter().flatten());
    ordered
}

thread_local! {
    /// Set while this thread runs code whose panics are caught and handled.
    static CAUGHT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f`, catching a panic. A caught panic is logged as one warning
/// instead of the default hook's message and backtrace on stderr (which
/// would read as a crash); panics anywhere else still reach the hook that
/// was installed before.
fn catch_quietly<T>(f: impl FnOnce() -> T) -> std::thread::Result<T> {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if CAUGHT.with(std::cell::Cell::get) {
                tracing::warn!("a received change made automerge panic ({info}); it is rejected");
            } else {
                previous(info);
            }
        }));
    });
    let was = CAUGHT.with(|c| c.replace(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    CAUGHT.with(|c| c.set(was));
    result
}

#[cfg(test)]
mod tests {
    use convene_model::DocumentId;

    use super::*;
    use crate::trust::Identity;
    use crate::trust::columns::{MAX_ROWS, forge};

    /// The first changes Convene writes, each the start of its own
    /// document: an organisation's profile, a learning entry, a project and
    /// a contact, their long texts included. The node is returned with
    /// them so its signed changes stay at hand.
    fn first_changes_convene_writes() -> (tempfile::TempDir, crate::Node, Vec<SignedChange>) {
        use convene_model::{Body, Contact, EntryInput, Learning, Project};
        let home = tempfile::tempdir().unwrap();
        let mut node = crate::Node::init(
            home.path(),
            &crate::InitOptions {
                org: "Gateshead Council".into(),
                sector: "council".into(),
                place: Some("Gateshead".into()),
            },
        )
        .unwrap();
        let long = "Peer visits cut ambulance handover delays. ".repeat(200);
        for body in [
            Body::Learning(Learning {
                title: "Community calls".into(),
                summary: long.as_str().into(),
                tags: vec!["discharge".into(), "peer-visits".into()],
                ..Learning::default()
            }),
            Body::Project(Project {
                title: "Safe Transfer of Care".into(),
                aim: "Fewer delayed discharges 🇬🇧 by March".into(),
                ..Project::default()
            }),
            Body::Contact(Contact {
                name: "Ayesha Khan".into(),
                role: "Improvement lead".into(),
                consent: Some(convene_model::Consent {
                    given_by: "Ayesha Khan".into(),
                    ..Default::default()
                }),
                ..Contact::default()
            }),
        ] {
            node.publish(EntryInput {
                body,
                visibility: None,
                status: None,
            })
            .unwrap();
        }
        let firsts: Vec<SignedChange> = node
            .store()
            .all_changes()
            .unwrap()
            .into_iter()
            .filter(|c| {
                Change::try_from(c.bytes.as_slice())
                    .unwrap()
                    .deps()
                    .is_empty()
            })
            .collect();
        assert_eq!(firsts.len(), 4, "the profile and three entries");
        (home, node, firsts)
    }

    /// A new document's first state is the same document whether it was
    /// loaded from its laid-out form or applied: the first changes Convene
    /// writes are all loaded, and each saves exactly as automerge's apply
    /// of it does.
    #[test]
    fn first_changes_convene_writes_are_loaded_as_the_documents_applied() {
        let (_home, _node, firsts) = first_changes_convene_writes();
        for signed in &firsts {
            let c = Change::try_from(signed.bytes.as_slice()).unwrap();
            let (loaded, saved) = loaded_first(signed, None).expect("laid out and loaded");
            let mut applied = Automerge::new();
            applied.apply_changes([c.clone()]).unwrap();
            assert_eq!(loaded.save_nocompress(), applied.save_nocompress());
            assert_eq!(
                saved,
                applied.save_nocompress(),
                "laid out as automerge saves"
            );
            // Received as a first change, left to the load to decode, or
            // decoded already.
            for root in [Decoded::First, Decoded::Change(c.clone())] {
                let (state, _, _) = first_state(signed.doc, signed, &root, true).unwrap();
                // Alone, it is read from the change, not loaded.
                assert!(matches!(state, Scratch::Read(_)), "read without a document");
                let state = state.into_doc(ChangeHash(signed.hash)).unwrap();
                assert_eq!(state.save_nocompress(), applied.save_nocompress());
                // With more to apply on top, it is loaded.
                let (state, _, _) = first_state(signed.doc, signed, &root, false).unwrap();
                assert!(matches!(state, Scratch::Doc(_)), "loaded");
                let state = state.into_doc(ChangeHash(signed.hash)).unwrap();
                assert_eq!(state.save_nocompress(), applied.save_nocompress());
            }
        }
    }

    /// Everything the store keeps of one document, its row number aside:
    /// the row (heads, digest, parsed fields), the document its snapshot
    /// loads as (compressed or not), its index terms, its search text and,
    /// for a profile, its nodes.
    fn stored_rows(store: &Store, doc: DocumentId) -> Vec<String> {
        let conn = store.conn();
        let id = doc.to_string();
        let mut rows = Vec::new();
        let mut read = |sql: &str, key: &dyn rusqlite::ToSql| {
            let mut stmt = conn.prepare(sql).unwrap();
            let width = stmt.column_count();
            let mut found = stmt.query([key]).unwrap();
            while let Some(r) = found.next().unwrap() {
                let cells: Vec<String> = (0..width)
                    .map(|i| match r.get_ref(i).unwrap() {
                        rusqlite::types::ValueRef::Text(t) => String::from_utf8_lossy(t).into(),
                        rusqlite::types::ValueRef::Blob(b) => {
                            format!("{} bytes, {}", b.len(), blake3::hash(b))
                        }
                        other => format!("{other:?}"),
                    })
                    .collect();
                let table = sql
                    .split("FROM ")
                    .nth(1)
                    .and_then(|t| t.split_whitespace().next());
                rows.push(format!("{}: {}", table.unwrap_or(sql), cells.join(" | ")));
            }
        };
        let key = doc.as_bytes().to_vec();
        read(
            "SELECT id, kind, owner, visibility, status, title, created, updated,
                    heads, digest, problem FROM docs WHERE doc = ?1",
            &key,
        );
        read(
            "SELECT field, value FROM terms JOIN docs USING (n) WHERE doc = ?1
             ORDER BY field, value",
            &key,
        );
        read(
            "SELECT title, summary, body, tags, names FROM fts
             WHERE rowid = (SELECT n FROM docs WHERE doc = ?1)",
            &key,
        );
        read("SELECT node FROM nodes WHERE org = ?1 ORDER BY node", &id);
        if let Some(state) = store.load(doc).unwrap() {
            let saved = state.save_nocompress();
            rows.push(format!("snapshot: {}", blake3::hash(&saved)));
        }
        rows
    }

    /// A new document stored with the rows worked out with its first state
    /// (on the worker threads, [`Writer::put_derived`]) is stored as one
    /// stored from its applied state ([`Writer::put`]): the same row, index
    /// terms, search text and nodes, and a snapshot of the same document
    /// (laid out, not compressed: larger, and loaded as the same).
    #[test]
    fn rows_worked_out_with_a_first_state_are_the_rows_stored_from_it() {
        let (_home, _node, firsts) = first_changes_convene_writes();
        let dir = tempfile::tempdir().unwrap();
        let mut ahead = Store::create(&dir.path().join("ahead.db")).unwrap();
        let mut applied = Store::create(&dir.path().join("applied.db")).unwrap();
        let mut tables = BTreeSet::new();
        for signed in &firsts {
            let c = Change::try_from(signed.bytes.as_slice()).unwrap();
            let (_, _, derived) = first_state(signed.doc, signed, &Decoded::First, true).unwrap();
            let derived = derived.expect("worked out for a first change alone");
            ahead
                .write(|w| w.put_derived(std::slice::from_ref(signed), 5, derived))
                .unwrap();
            let mut state = Automerge::new();
            state.apply_changes([c]).unwrap();
            applied
                .write(|w| w.put(signed.doc, &state, std::slice::from_ref(signed), 5))
                .unwrap();
            let rows = stored_rows(&ahead, signed.doc);
            assert_eq!(rows, stored_rows(&applied, signed.doc));
            tables.extend(rows.iter().map(|r| r[..r.find(':').unwrap()].to_string()));
        }
        // Every kind of row was compared, not only the documents' own.
        assert_eq!(
            tables.into_iter().collect::<Vec<_>>(),
            ["docs", "fts", "nodes", "snapshot", "terms"]
        );
    }

    /// A member's first change whose operations do not decode (its bytes
    /// pass every check made before they are read: the signature, the
    /// hash, the rows they declare) is left to the load of its document
    /// when verified, and refused as it is applied: nothing stored, nothing
    /// set aside to wait.
    #[test]
    fn a_first_change_that_does_not_decode_is_refused_as_it_is_applied() {
        let (_home, mut node, _) = first_changes_convene_writes();
        let id = Identity::generate();
        // Operations with no key: automerge refuses them as it decodes.
        let (bytes, hash) = forge::change(&[(forge::ACTION, forge::run(3, &[1]))]);
        let doc = crate::trust::entry_id(&hash);
        let bad = SignedChange::sign_raw(&id, doc, bytes, hash);
        assert!(
            matches!(verify_all(vec![bad.clone()])[0].1, Ok(Decoded::First)),
            "left to the load"
        );
        let report = node
            .apply_from(&id.node_id(), vec![bad], Vec::new())
            .unwrap();
        assert_eq!((report.applied, report.waiting), (0, 0), "{report:?}");
        assert_eq!(report.rejected.len(), 1, "{report:?}");
        assert!(
            report.rejected[0]
                .reason
                .contains("not an automerge change"),
            "{report:?}"
        );
        assert!(node.get(doc).is_err(), "stored");
    }

    /// First changes whose bytes were altered (a few bytes set to anything,
    /// the checksum made right again, signed by the sender's own key):
    /// whenever such bytes load as a document laid out from them, automerge
    /// decodes the same bytes as a change, with the same hash, and applying
    /// it gives that same document. What the verifier no longer decodes for
    /// a first change is decoded by the load, with nothing let in that
    /// decoding would refuse.
    #[test]
    fn altered_first_changes_load_only_as_the_documents_their_bytes_decode_to() {
        use automerge::transaction::{CommitOptions, Transactable};
        use automerge::{ObjType, ROOT};
        let mut doc = Automerge::new();
        let mut tx = doc.transaction();
        tx.put(ROOT, "kind", "learning").unwrap();
        tx.put(ROOT, "rating", 4_i64).unwrap();
        let text = tx.put_object(ROOT, "summary", ObjType::Text).unwrap();
        tx.splice_text(&text, 0, 0, "Handovers in 15 minutes")
            .unwrap();
        let list = tx.put_object(ROOT, "tags", ObjType::List).unwrap();
        tx.insert(&list, 0, "flow").unwrap();
        let map = tx.insert_object(&list, 1, ObjType::Map).unwrap();
        tx.put(&map, "x", 1.5_f64).unwrap();
        tx.commit_with(CommitOptions::default().with_message("first").with_time(7));
        let original = doc.get_last_local_change().unwrap().raw_bytes().to_vec();
        let id = Identity::generate();
        let doc_id = DocumentId::from_bytes([9; 16]);
        assert!(
            loaded_first(
                &SignedChange::sign_raw(
                    &id,
                    doc_id,
                    original.clone(),
                    columns::read(&original).unwrap().hash
                ),
                None
            )
            .is_some(),
            "the unaltered change is laid out"
        );
        each_altered(&original, &id, doc_id, |signed| {
            if let Some((loaded, saved)) = loaded_first(&signed, None) {
                let applied = as_automerge_applies_it(&signed)?;
                proptest::prop_assert_eq!(loaded.save_nocompress(), applied.save_nocompress());
                proptest::prop_assert_eq!(saved, applied.save_nocompress());
            }
            Ok(())
        });
    }

    /// The document `signed` gives when automerge decodes it (which it
    /// must, to the hash it was signed as) and applies it (which must
    /// succeed) to an empty document.
    fn as_automerge_applies_it(
        signed: &SignedChange,
    ) -> Result<Automerge, proptest::test_runner::TestCaseError> {
        let bytes = &signed.bytes;
        let change = Change::try_from(bytes.as_slice());
        proptest::prop_assert!(change.is_ok(), "taken, not decoded: {bytes:?}");
        let change = change.unwrap();
        proptest::prop_assert_eq!(change.hash().0, signed.hash);
        let mut applied = Automerge::new();
        proptest::prop_assert!(apply_received(&mut applied, vec![change]).is_ok());
        Ok(applied)
    }

    /// `check` run on 10,000 alterations (or `ALTERED_CASES`, for a longer
    /// run) of the change `original`: one to
    /// three bytes changed anywhere, the checksum made right again, signed
    /// by `id` as a change of `doc` (those whose columns do not read, and
    /// would be refused before anything else, left out).
    fn each_altered(
        original: &[u8],
        id: &Identity,
        doc: DocumentId,
        check: impl Fn(SignedChange) -> Result<(), proptest::test_runner::TestCaseError>,
    ) {
        let mut runner = proptest::test_runner::TestRunner::new(proptest::test_runner::Config {
            cases: std::env::var("ALTERED_CASES")
                .ok()
                .and_then(|c| c.parse().ok())
                .unwrap_or(10_000),
            ..Default::default()
        });
        let edits =
            proptest::collection::vec((0..original.len(), proptest::prelude::any::<u8>()), 1..4);
        runner
            .run(&edits, |edits| {
                let mut bytes = original.to_vec();
                for (at, b) in edits {
                    bytes[at] = b;
                }
                forge::fix_checksum(&mut bytes);
                let Ok(shape) = columns::read(&bytes) else {
                    return Ok(());
                };
                check(SignedChange::sign_raw(id, doc, bytes, shape.hash))
            })
            .unwrap();
    }

    /// A first change read without a document ([`first_doc::View`]) is
    /// judged and indexed exactly as automerge's reading of its bytes would
    /// have it, however its bytes are altered (here a Convene project's first
    /// change with values of every type the view reads, one to three bytes
    /// changed anywhere, the checksum made right again and signed by the
    /// sender): whatever the view reads is a change automerge decodes, with
    /// the same hash, and applying it gives the document stored, the same
    /// rules and the same rows. Everything the view does not read is left
    /// to automerge, as before.
    #[test]
    fn altered_first_changes_read_without_a_document_read_as_automerge_reads_them() {
        use automerge::transaction::Transactable;
        use automerge::{AutoCommit, ObjType, ROOT, ScalarValue};
        let (_home, _node, firsts) = first_changes_convene_writes();
        let project = firsts.iter().find_map(|s| {
            let c = Change::try_from(s.bytes.as_slice()).ok()?;
            let mut d = Automerge::new();
            d.apply_changes([c]).ok()?;
            let e = convene_model::Entry::from_doc(s.doc, &d).ok()?;
            (e.meta.kind == Kind::Project).then_some(e)
        });
        let entry = project.expect("a project");
        let mut doc = AutoCommit::new();
        entry.write(&mut doc).unwrap();
        // Values of every other type a view reads, beside the entry's own.
        let extra: [(&str, ScalarValue); 6] = [
            ("x_uint", ScalarValue::Uint(300)),
            ("x_float", ScalarValue::F64(2.5)),
            ("x_bool", ScalarValue::Boolean(true)),
            ("x_null", ScalarValue::Null),
            ("x_time", ScalarValue::Timestamp(-5)),
            ("x_bytes", ScalarValue::Bytes(vec![1, 2, 3])),
        ];
        for (k, v) in extra {
            doc.put(ROOT, k, v).unwrap();
        }
        // And objects in objects: a map holding a text and a list, the
        // list holding a map.
        let map = doc.put_object(ROOT, "x_map", ObjType::Map).unwrap();
        let text = doc.put_object(&map, "t", ObjType::Text).unwrap();
        doc.splice_text(&text, 0, 0, "héllo 🇬🇧").unwrap();
        let list = doc.put_object(&map, "l", ObjType::List).unwrap();
        doc.insert(&list, 0, 7_i64).unwrap();
        doc.insert(&list, 1, "a").unwrap();
        let inner = doc.insert_object(&list, 2, ObjType::Map).unwrap();
        doc.put(&inner, "k", true).unwrap();
        doc.commit();
        let original = doc.get_last_local_change().unwrap().raw_bytes().to_vec();
        let id = Identity::generate();
        let doc_id = DocumentId::from_bytes([9; 16]);
        let hash = columns::read(&original).unwrap().hash;
        let unaltered = SignedChange::sign_raw(&id, doc_id, original.clone(), hash);
        assert!(
            matches!(read_first(doc_id, &unaltered), Ok((Scratch::Read(_), ..))),
            "the unaltered change is read without a document"
        );
        each_altered(&original, &id, doc_id, |signed| {
            let Ok((scratch, rules, derived)) = read_first(doc_id, &signed) else {
                return Ok(());
            };
            let applied = as_automerge_applies_it(&signed)?;
            let Scratch::Read(saved) = scratch else {
                return Err(proptest::test_runner::TestCaseError::fail("not read"));
            };
            proptest::prop_assert_eq!(&saved, &applied.save_nocompress());
            proptest::prop_assert_eq!(Ok(rules), Rules::of(&applied));
            let derived = derived.expect("rows worked out");
            proptest::prop_assert_eq!(derived.snapshot(), saved.as_slice());
            proptest::prop_assert_eq!(derived.rows(), Derived::of(doc_id, &applied).rows());
            Ok(())
        });
    }

    /// A first change laid out but not read through its view (a counter:
    /// the view leaves counters to automerge) is loaded from the layout
    /// the reading worked out, not laid out a second time, and gives the
    /// document automerge's apply gives.
    #[test]
    fn a_first_change_the_view_cannot_read_is_loaded_from_its_layout() {
        use automerge::transaction::Transactable;
        use automerge::{ROOT, ScalarValue};
        let mut doc = Automerge::new();
        let mut tx = doc.transaction();
        tx.put(ROOT, "kind", "learning").unwrap();
        tx.put(ROOT, "views", ScalarValue::counter(3)).unwrap();
        tx.commit();
        let bytes = doc.get_last_local_change().unwrap().raw_bytes().to_vec();
        let hash = columns::read(&bytes).unwrap().hash;
        let signed = SignedChange::sign_raw(
            &Identity::generate(),
            DocumentId::from_bytes([4; 16]),
            bytes,
            hash,
        );
        let Err(Some(laid)) = read_first(signed.doc, &signed) else {
            panic!("not read, but laid out");
        };
        assert_eq!(
            Some(&laid),
            first_doc::saved_form(&signed.bytes, hash).as_ref()
        );
        let (loaded, saved) = loaded_first(&signed, Some(laid)).expect("loaded");
        assert_eq!(saved, doc.save_nocompress());
        assert_eq!(loaded.save_nocompress(), doc.save_nocompress());
        // Not a valid entry, so its rules do not read and it is refused;
        // the same as when it is loaded from its own layout.
        assert!(first_state(signed.doc, &signed, &Decoded::First, true).is_err());
    }

    /// A first change numbered other than 1 (its actor's first change must
    /// be, or automerge neither applies nor loads it) is not read without
    /// a document: it goes to automerge, which refuses it, so nothing is
    /// stored that would not load. (A random test found the reading taking
    /// one before the number was checked.)
    #[test]
    fn a_first_change_numbered_other_than_one_is_refused_not_read() {
        let (_home, _node, firsts) = first_changes_convene_writes();
        let original = &firsts[1];
        assert!(read_first(original.doc, original).is_ok());
        let mut bytes = original.bytes.clone();
        // Magic, checksum, chunk type, length, no dependencies, the actor:
        // then its sequence number.
        let mut at = 9;
        while bytes[at] & 0x80 != 0 {
            at += 1;
        }
        at += 1;
        assert_eq!(bytes[at], 0, "no dependencies");
        let actor_len = usize::from(bytes[at + 1]);
        let seq = at + 2 + actor_len;
        assert_eq!(bytes[seq], 1);
        bytes[seq] = 2;
        forge::fix_checksum(&mut bytes);
        let shape = columns::read(&bytes).unwrap();
        let id = Identity::generate();
        let signed = SignedChange::sign_raw(&id, original.doc, bytes, shape.hash);
        assert!(read_first(signed.doc, &signed).is_err(), "not read");
        let made = first_state(signed.doc, &signed, &Decoded::First, true);
        assert!(made.is_err(), "refused by automerge");
    }

    /// A stored document whose snapshot does not load (damaged, or a
    /// first state read from its change that automerge would not read back)
    /// is rebuilt from its stored changes, if they give the heads stored
    /// with it; if not, loading it says so instead of giving something
    /// else.
    #[test]
    fn a_snapshot_that_does_not_load_is_rebuilt_from_the_documents_changes() {
        let (_home, _node, firsts) = first_changes_convene_writes();
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::create(&dir.path().join("convene.db")).unwrap();
        for signed in &firsts {
            let (_, _, derived) = first_state(signed.doc, signed, &Decoded::First, true).unwrap();
            store
                .write(|w| w.put_derived(std::slice::from_ref(signed), 5, derived.unwrap()))
                .unwrap();
        }
        let one = &firsts[1];
        let before = store.load(one.doc).unwrap().unwrap().save_nocompress();
        let key = one.doc.as_bytes().to_vec();
        let conn = store.conn();
        conn.execute(
            "UPDATE docs SET snapshot = x'856f4a83' WHERE doc = ?1",
            [&key],
        )
        .unwrap();
        let rebuilt = store
            .load(one.doc)
            .unwrap()
            .expect("rebuilt from its changes");
        assert_eq!(rebuilt.save_nocompress(), before);
        // Without its changes, it cannot be rebuilt: an error, not a guess.
        conn.execute("DELETE FROM changes WHERE doc = ?1", [&key])
            .unwrap();
        let err = store.load(one.doc).unwrap_err();
        assert!(
            matches!(err, crate::store::StoreError::BadDocument { .. }),
            "{err}"
        );
        // The others are untouched.
        assert!(store.load(firsts[2].doc).unwrap().is_some());
    }

    /// Rows worked out for one document are never written with another
    /// document's changes: the store refuses, and stores nothing.
    #[test]
    fn rows_are_written_only_with_their_own_documents_changes() {
        let (_home, _node, firsts) = first_changes_convene_writes();
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::create(&dir.path().join("convene.db")).unwrap();
        let (one, other) = (&firsts[0], &firsts[1]);
        let derived = first_state(one.doc, one, &Decoded::First, true)
            .unwrap()
            .2
            .unwrap();
        let err = store
            .write(|w| w.put_derived(std::slice::from_ref(other), 5, derived))
            .unwrap_err();
        assert!(err.to_string().contains("stored with its rows"), "{err}");
        assert!(stored_rows(&store, one.doc).is_empty());
        assert!(stored_rows(&store, other.doc).is_empty());
        assert!(store.all_changes().unwrap().is_empty());
    }

    #[test]
    fn a_round_ends_in_chunks_that_halve_down_to_a_few_documents() {
        let chunks = |mut left: usize| {
            let mut sizes = Vec::new();
            while left > 0 {
                let size = chunk_size(left);
                sizes.push(size);
                left -= size;
            }
            sizes
        };
        let sizes = chunks(512);
        assert_eq!(sizes.iter().sum::<usize>(), 512);
        assert!(sizes.iter().all(|&s| (1..=AHEAD).contains(&s)));
        assert!(sizes.windows(2).all(|w| w[0] <= 2 * w[1]), "{sizes:?}");
        assert!(sizes.last().is_some_and(|&s| s <= SMALL_ROUND), "{sizes:?}");
        let full = sizes.iter().take_while(|&&s| s == AHEAD).count();
        assert_eq!(full, (512 - 2 * AHEAD) / AHEAD + 1, "{sizes:?}");
        for n in 1..=SMALL_ROUND {
            assert_eq!(chunks(n), vec![n]);
        }
    }

    /// How a change over the bound of changes received together is
    /// refused, as the rejection log says it.
    fn over_budget() -> String {
        SignatureError::OverBudget.to_string()
    }

    /// Waiting changes taken out together are bounded as changes received
    /// together are. A peer that parked changes using up that bound must
    /// not make honest changes taken out of the store with them fail it.
    #[test]
    fn waiting_changes_a_peer_parked_cannot_crowd_out_honest_ones() {
        use automerge::transaction::Transactable;
        let id = Identity::generate();
        let mut doc = Automerge::new();
        let mut tx = doc.transaction();
        tx.put(automerge::ROOT, "title", "Ambulance handovers")
            .unwrap();
        tx.commit();
        let honest = SignedChange::sign(
            &id,
            DocumentId::from_bytes([1; 16]),
            &doc.get_last_local_change().unwrap(),
        );
        let parked = |rows: u64| {
            let (bytes, hash) = forge::change(&[(forge::ACTION, forge::run(rows, &[1]))]);
            SignedChange::sign_raw(&id, DocumentId::from_bytes([2; 16]), bytes, hash)
        };
        // Together the two parked changes declare the whole bound: the
        // first its fixed allowance, the second the allowance for all three
        // changes' bytes (its size is the same whatever the count in this
        // range). Taken in the order given, they would leave the honest
        // change nothing.
        let first = parked(MAX_ROWS);
        let size = first.bytes.len() + parked(1000).bytes.len() + honest.bytes.len();
        let second = parked(columns::ROWS_PER_BYTE * size as u64);
        assert_eq!(
            first.bytes.len() + second.bytes.len() + honest.bytes.len(),
            size
        );
        let mut todo = BTreeMap::new();
        let mut report = ApplyReport::default();
        let first_hash = first.hash;
        add_waiting(&mut todo, vec![first, second, honest.clone()], &mut report);
        assert!(
            todo.get(&honest.doc)
                .is_some_and(|b| b.iter().any(|(s, _)| s.hash == honest.hash)),
            "the honest waiting change is tried"
        );
        let tried = |hash| todo.values().any(|b| b.iter().any(|(s, _)| s.hash == hash));
        // The first declares the most for each of its bytes: it is the one
        // over the bound, taken last.
        let over: Vec<_> = report
            .rejected
            .iter()
            .filter(|r| r.reason == over_budget())
            .map(|r| r.hash)
            .collect();
        assert_eq!(over, vec![first_hash], "{report:?}");
        assert!(!tried(first_hash));
    }

    /// A member parks fifty changes of 80 bytes, each declaring the most
    /// rows one change may, on a first change it keeps back; then sends
    /// it. Taken out together, they may declare no more than changes
    /// received together: one is tried, the rest refused unread (given to
    /// automerge together, they would have asked for 20 GB).
    #[test]
    fn waiting_changes_taken_out_together_are_bounded_as_if_received_together() {
        let id = Identity::generate();
        let parked: Vec<SignedChange> = (0..50u8)
            .map(|i| {
                let (bytes, hash) = forge::change(&[
                    (forge::ACTION, forge::run(MAX_ROWS, &[1])),
                    (forge::VALUE_META, forge::run(1, &[i])),
                ]);
                SignedChange::sign_raw(&id, DocumentId::from_bytes([3; 16]), bytes, hash)
            })
            .collect();
        assert!(parked.iter().all(|c| c.bytes.len() < 80));
        let mut todo = BTreeMap::new();
        let mut report = ApplyReport::default();
        add_waiting(&mut todo, parked, &mut report);
        // (The one within the bound has operations with no key: automerge
        // refuses it as it decodes.)
        let over = |r: &&crate::node::Rejection| r.reason == over_budget();
        assert_eq!(
            report.rejected.iter().filter(over).count(),
            49,
            "{report:?}"
        );
    }

    /// A change whose signature fails declares nothing: changes a relay
    /// forged cannot use up what the genuine ones received with them may
    /// declare.
    #[test]
    fn forged_changes_take_nothing_from_the_bound() {
        let id = Identity::generate();
        let (bytes, hash) = forge::change(&[(forge::ACTION, forge::run(MAX_ROWS, &[1]))]);
        let genuine = SignedChange::sign_raw(&id, DocumentId::from_bytes([4; 16]), bytes, hash);
        let mut forged = genuine.clone();
        forged.doc = DocumentId::from_bytes([5; 16]);
        let verdicts: Vec<String> = verify_all(vec![forged, genuine])
            .into_iter()
            .map(|(s, v)| v.and_then(|d| d.change(&s)).unwrap_err().to_string())
            .collect();
        assert!(verdicts[0].contains("signature"), "{verdicts:?}");
        // (Within the bound, it is refused only as automerge decodes it.)
        assert!(!verdicts[1].contains(&over_budget()), "{verdicts:?}");
    }

    /// Changes sent newest first are put in causal order before they are
    /// sliced: otherwise every slice would wait in automerge's queue and
    /// all be applied at once with the last.
    #[test]
    fn changes_received_newest_first_are_applied_oldest_first() {
        use automerge::transaction::Transactable;
        let mut source = Automerge::new();
        for i in 0..20 {
            let mut tx = source.transaction();
            tx.put(automerge::ROOT, "step", i).unwrap();
            tx.commit();
        }
        let oldest_first = source.get_changes(&[]);
        let mut given = oldest_first.clone();
        given.reverse();
        given.swap(3, 11);
        let hashes = |cs: &[Change]| cs.iter().map(Change::hash).collect::<Vec<_>>();
        assert_eq!(hashes(&causal_order(given)), hashes(&oldest_first));
    }

    /// Changes are given to automerge a slice at a time, in any order
    /// received, and end as if given together.
    #[test]
    fn changes_applied_in_slices_end_as_applied_together() {
        use automerge::transaction::Transactable;
        let mut source = Automerge::new();
        for i in 0..12 {
            let mut tx = source.transaction();
            for k in 0..6 {
                tx.put(automerge::ROOT, format!("field {k}"), i).unwrap();
            }
            tx.commit();
        }
        let mut changes = source.get_changes(&[]);
        changes.reverse();
        let mut sliced = Automerge::new();
        apply_in_slices(&mut sliced, changes.clone(), 10).unwrap();
        let mut whole = Automerge::new();
        whole.apply_changes(changes).unwrap();
        assert_eq!(sliced.get_heads(), source.get_heads());
        assert_eq!(sliced.save(), whole.save());
    }

    /// A stranger's join request may declare little more than a row for
    /// each of its bytes: 65,536 null values in 60 bytes are taken from a
    /// member's message, not from a stranger.
    #[test]
    fn a_join_request_declares_little_more_than_its_bytes() {
        let id = Identity::generate();
        let (bytes, hash) = forge::nulls(65_536, 0);
        let change = SignedChange::sign_raw(&id, DocumentId::from_bytes([1; 16]), bytes, hash);
        let size = change.bytes.len();
        let verdict = |mut budget| {
            verify_within(vec![change.clone()], &mut budget)
                .remove(0)
                .1
                .and_then(|d| d.change(&change))
        };
        assert_eq!(
            verdict(columns::Budget::for_bytes(size)).unwrap().len(),
            65_536
        );
        assert!(
            verdict(columns::Budget::for_join(size)).unwrap_err() == SignatureError::OverBudget
        );
    }

    /// Eight changes of 60 bytes, each declaring the most rows one change
    /// may: decoded one after another, a message of them (or of 100,000)
    /// would cost as many rows each. Together they may declare only what
    /// one change may and what their bytes allow, and the rest are refused
    /// unread.
    #[test]
    fn changes_received_together_declare_no_more_rows_than_their_bytes_allow() {
        let id = Identity::generate();
        // Their operations have no key, so automerge gives up on the
        // first row of those it decodes: the test stays quick.
        let changes = forge::widest(&id, 8);
        let verdicts: Vec<String> = verify_all(changes)
            .into_iter()
            .map(|(s, v)| v.and_then(|d| d.change(&s)).unwrap_err().to_string())
            .collect();
        let over = &over_budget();
        // The first takes the allowance any message has; the others are
        // beyond what their 480 bytes allow.
        assert!(!verdicts[0].contains(over), "{verdicts:?}");
        assert!(
            verdicts[1..].iter().all(|v| v.contains(over)),
            "{verdicts:?}"
        );
    }
}
