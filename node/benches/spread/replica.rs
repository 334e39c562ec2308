//! An in-memory [`Replica`] for the simulation: what a node holds is a
//! chain of signed changes per document, checked as a real node checks
//! them (the automerge change decodes, its hash and Ed25519 signature hold,
//! its signer is the entry's author, the document is one this node may
//! see), without SQLite, so that a thousand nodes fit in one process.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::rc::Rc;

use convene_model::DocumentId;
use convene_node::ApplyReport;
use convene_node::NodeId;
use convene_node::SignedChange;
use convene_node::sync::catalogue::Class;
use convene_node::sync::wire::{Digest, DocId, Hash, digest_of};
use convene_node::sync::{Catalogue, CatalogueView, Fetched, Replica, ReplicaError};
use convene_node::trust::Tombstone;

/// Who wrote each entry and who may see it: what a real node reads from
/// the entry itself, shared here by every node of the simulation.
#[derive(Debug, Default)]
pub struct Entries {
    pub author: HashMap<DocId, [u8; 32]>,
    pub class: HashMap<DocId, Class>,
}

pub type Shared = Rc<RefCell<Entries>>;

#[derive(Debug, Default)]
struct Chain {
    changes: Vec<SignedChange>,
    hashes: HashSet<Hash>,
}

#[derive(Debug)]
pub struct SimReplica {
    org: String,
    /// Every member node's organisation.
    orgs: Rc<HashMap<NodeId, String>>,
    entries: Shared,
    docs: HashMap<DocId, Chain>,
    /// Changes whose predecessor has not arrived.
    waiting: HashMap<DocId, Vec<SignedChange>>,
    catalogue: Catalogue,
    /// Documents changed since the last refresh.
    changed: BTreeSet<DocId>,
    /// Changes stored since the last refresh, and those of the refresh
    /// before (pushed with the announcement).
    stored: HashMap<DocId, Vec<SignedChange>>,
    fresh: HashMap<DocId, Vec<SignedChange>>,
    /// Changes stored since the simulation last looked (for its clocks).
    pub arrived: Vec<Hash>,
    /// Changes refused because this node may not see their entry.
    pub refused_unseen: usize,
}

impl SimReplica {
    pub fn new(org: String, orgs: Rc<HashMap<NodeId, String>>, entries: Shared) -> Self {
        Self {
            org,
            orgs,
            entries,
            docs: HashMap::new(),
            waiting: HashMap::new(),
            catalogue: Catalogue::new(),
            changed: BTreeSet::new(),
            stored: HashMap::new(),
            fresh: HashMap::new(),
            arrived: Vec::new(),
            refused_unseen: 0,
        }
    }

    pub fn org(&self) -> &str {
        &self.org
    }

    pub fn holds(&self, doc: &DocId) -> bool {
        self.docs.contains_key(doc)
    }

    pub fn docs(&self) -> impl Iterator<Item = &DocId> {
        self.docs.keys()
    }

    /// The organisations in the audience of restricted entries held here.
    pub fn audiences(&self) -> BTreeSet<String> {
        let entries = self.entries.borrow();
        let mut out = BTreeSet::new();
        for doc in self.docs.keys() {
            if let Some(Class::Only(orgs)) = entries.class.get(doc) {
                out.extend(orgs.iter().cloned());
            }
        }
        out
    }

    /// A change written on this node by its author.
    pub fn write(&mut self, change: SignedChange) {
        let doc = *change.doc.as_bytes();
        self.append(doc, change);
    }

    fn class(&self, doc: &DocId) -> Class {
        self.entries
            .borrow()
            .class
            .get(doc)
            .cloned()
            .unwrap_or(Class::Only(BTreeSet::new()))
    }

    fn may_see(&self, org: &str, doc: &DocId) -> bool {
        self.class(doc).visible_to(&[org.to_string()].into())
    }

    fn append(&mut self, doc: DocId, change: SignedChange) {
        let chain = self.docs.entry(doc).or_default();
        chain.hashes.insert(change.hash);
        self.arrived.push(change.hash);
        self.stored.entry(doc).or_default().push(change.clone());
        chain.changes.push(change);
        let heads = [chain.changes.last().expect("just pushed").hash];
        let class = self.class(&doc);
        self.catalogue.insert(doc, digest_of(&doc, &heads), class);
        self.changed.insert(doc);
    }

    /// Stores `change` if it extends the chain; `false` if its predecessor
    /// is missing.
    fn extend(&mut self, doc: DocId, change: SignedChange, deps: &[automerge::ChangeHash]) -> bool {
        let head = self
            .docs
            .get(&doc)
            .and_then(|c| c.changes.last())
            .map(|c| c.hash);
        let fits = match head {
            None => deps.is_empty(),
            Some(h) => deps.len() == 1 && deps[0].0 == h,
        };
        if fits {
            self.append(doc, change);
        }
        fits
    }
}

impl Replica for SimReplica {
    fn admit(&mut self, peer: &NodeId) -> Result<(), String> {
        if self.orgs.contains_key(peer) {
            Ok(())
        } else {
            Err("not admitted".into())
        }
    }

    fn view(&self, peer: &NodeId) -> Box<dyn CatalogueView + '_> {
        match self.orgs.get(peer) {
            Some(org) => Box::new(self.catalogue.view_for([org.clone()].into())),
            None => Box::new(self.catalogue.view_for_nobody()),
        }
    }

    fn heads(&mut self, doc: &DocId) -> Result<Vec<Hash>, ReplicaError> {
        Ok(self
            .docs
            .get(doc)
            .and_then(|c| c.changes.last())
            .map(|c| vec![c.hash])
            .unwrap_or_default())
    }

    fn fetch(
        &mut self,
        peer: &NodeId,
        doc: &DocId,
        have: &[Hash],
    ) -> Result<Option<Fetched>, ReplicaError> {
        let Some(org) = self.orgs.get(peer) else {
            return Ok(None);
        };
        if !self.may_see(org, doc) {
            return Ok(None);
        }
        let Some(chain) = self.docs.get(doc) else {
            return Ok(None);
        };
        let from = chain
            .changes
            .iter()
            .rposition(|c| have.contains(&c.hash))
            .map_or(0, |i| i + 1);
        Ok(Some(Fetched::Changes(chain.changes[from..].to_vec())))
    }

    fn apply(
        &mut self,
        _from: &NodeId,
        changes: Vec<SignedChange>,
        _erased: Vec<Tombstone>,
    ) -> Result<ApplyReport, ReplicaError> {
        let mut report = ApplyReport::default();
        let mut touched = BTreeSet::new();
        for change in changes {
            let doc = *change.doc.as_bytes();
            if self
                .docs
                .get(&doc)
                .is_some_and(|c| c.hashes.contains(&change.hash))
            {
                report.already_had += 1;
                continue;
            }
            if !self.may_see(&self.org.clone(), &doc) {
                self.refused_unseen += 1;
                report.rejected.push(rejection(&change, "not visible here"));
                continue;
            }
            let decoded = match change.verify() {
                Ok(c) => c,
                Err(e) => {
                    report.rejected.push(rejection(&change, &e.to_string()));
                    continue;
                }
            };
            if self.entries.borrow().author.get(&doc) != Some(&change.signer) {
                report.rejected.push(rejection(&change, "not its author"));
                continue;
            }
            let deps = decoded.deps().to_vec();
            if self.extend(doc, change.clone(), &deps) {
                report.applied += 1;
                touched.insert(doc);
                self.retry_waiting(doc, &mut report);
            } else {
                report.waiting += 1;
                self.waiting.entry(doc).or_default().push(change);
            }
        }
        report.changed = touched.into_iter().map(DocumentId::from_bytes).collect();
        Ok(report)
    }

    fn join(&mut self, _peer: &NodeId, _changes: Vec<SignedChange>) -> Result<String, String> {
        Err("every node of the simulation is a member from the start".into())
    }

    fn refresh(&mut self) -> Result<Vec<(DocId, Digest)>, ReplicaError> {
        self.fresh = std::mem::take(&mut self.stored);
        let changed = std::mem::take(&mut self.changed);
        let view = self.catalogue.everything();
        Ok(changed
            .into_iter()
            .filter_map(|doc| view.digest(&doc).map(|d| (doc, d)))
            .collect())
    }

    fn fresh_changes(&mut self, doc: &DocId, budget: usize) -> Option<Vec<SignedChange>> {
        let changes = self.fresh.get(doc)?;
        let size: usize = changes.iter().map(|c| c.bytes.len()).sum();
        (size <= budget).then(|| changes.clone())
    }
}

impl SimReplica {
    fn retry_waiting(&mut self, doc: DocId, report: &mut ApplyReport) {
        loop {
            let Some(waiting) = self.waiting.get_mut(&doc) else {
                return;
            };
            let head = self
                .docs
                .get(&doc)
                .and_then(|c| c.changes.last())
                .map(|c| c.hash);
            let Some(i) = waiting.iter().position(|c| {
                c.verify()
                    .is_ok_and(|d| d.deps().len() == 1 && Some(d.deps()[0].0) == head)
            }) else {
                return;
            };
            let change = waiting.swap_remove(i);
            if waiting.is_empty() {
                self.waiting.remove(&doc);
            }
            self.append(doc, change);
            report.applied += 1;
        }
    }
}

fn rejection(change: &SignedChange, reason: &str) -> convene_node::Rejection {
    convene_node::Rejection {
        doc: change.doc,
        hash: change.hash,
        signer: change.signer_id(),
        reason: reason.to_string(),
    }
}
