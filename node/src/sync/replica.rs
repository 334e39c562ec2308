//! [`NodeReplica`]: the sync service's view of a real node.
//!
//! It keeps the [`Catalogue`] in memory, loaded once from the `docs` table
//! and then refreshed from the changes appended since (by this process or
//! any other, e.g. a CLI command while the daemon runs): `changes.seq`
//! only grows, so "what changed" is one indexed query.

use std::collections::BTreeSet;

use automerge::ChangeHash;
use convene_model::DocumentId;

use super::catalogue::{Catalogue, CatalogueView, Class};
use super::service::{Replica, ReplicaError};
use super::wire::{Digest, DocId, Hash};
use crate::node::{ApplyReport, Node};
use crate::trust::{NodeId, SignedChange};

/// A node as the sync service uses it.
#[derive(Debug)]
pub struct NodeReplica {
    node: Node,
    catalogue: Catalogue,
    /// Highest `changes.seq` folded into the catalogue.
    seen_seq: i64,
}

fn err(e: impl std::fmt::Display) -> ReplicaError {
    ReplicaError(e.to_string())
}

impl NodeReplica {
    pub fn new(node: Node) -> Result<Self, ReplicaError> {
        let mut me = Self {
            node,
            catalogue: Catalogue::new(),
            seen_seq: 0,
        };
        me.refresh()?;
        Ok(me)
    }

    pub fn node(&self) -> &Node {
        &self.node
    }

    pub fn node_mut(&mut self) -> &mut Node {
        &mut self.node
    }

    pub fn catalogue(&self) -> &Catalogue {
        &self.catalogue
    }
}

impl Replica for NodeReplica {
    fn admit(&mut self, _peer: &NodeId) -> Result<(), String> {
        // Until communities have charters, every Convene peer is admitted.
        Ok(())
    }

    fn view(&self, peer: &NodeId) -> Box<dyn CatalogueView + '_> {
        // A peer sees community entries and those shared with an
        // organisation whose profile lists it.
        let orgs = self
            .node
            .store()
            .orgs_of_node(&peer.to_string())
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "cannot read a peer's organisations");
                Default::default()
            });
        Box::new(self.catalogue.view_for(orgs))
    }

    fn heads(&mut self, doc: &DocId) -> Result<Vec<Hash>, ReplicaError> {
        self.node
            .store()
            .heads(DocumentId::from_bytes(*doc))
            .map_err(err)
    }

    fn changes_for(
        &mut self,
        peer: &NodeId,
        doc: &DocId,
        have: &[Hash],
    ) -> Result<Option<Vec<SignedChange>>, ReplicaError> {
        // Never send a document (or reveal that it exists) to a peer that
        // may not see it.
        if self.view(peer).digest(doc).is_none() {
            return Ok(None);
        }
        let id = DocumentId::from_bytes(*doc);
        let stored = self.node.store().changes(id).map_err(err)?;
        let all = stored.into_iter().map(|s| s.change);
        if have.is_empty() {
            return Ok(Some(all.collect()));
        }
        let state = self
            .node
            .store()
            .load(id)
            .map_err(err)?
            .ok_or_else(|| ReplicaError(format!("document {id} vanished")))?;
        let known: Vec<ChangeHash> = have
            .iter()
            .map(|h| ChangeHash(*h))
            .filter(|h| state.get_change_meta_by_hash(h).is_some())
            .collect();
        if known.is_empty() {
            return Ok(Some(all.collect()));
        }
        // Metadata only: the bytes come from the store, with signatures.
        let missing: BTreeSet<Hash> = state
            .get_changes_meta(&known)
            .iter()
            .map(|c| c.hash.0)
            .collect();
        Ok(Some(all.filter(|c| missing.contains(&c.hash)).collect()))
    }

    fn apply(
        &mut self,
        _from: &NodeId,
        changes: Vec<SignedChange>,
    ) -> Result<ApplyReport, ReplicaError> {
        self.node.apply(changes).map_err(err)
    }

    fn refresh(&mut self) -> Result<Vec<(DocId, Digest)>, ReplicaError> {
        let (rows, max) = self
            .node
            .store()
            .digests_since(self.seen_seq)
            .map_err(err)?;
        self.seen_seq = self.seen_seq.max(max);
        let mut changed = Vec::new();
        for row in rows {
            let class = Class::of(&row.owner, &row.visibility);
            if self
                .catalogue
                .insert(*row.doc.as_bytes(), row.digest, class)
            {
                changed.push((*row.doc.as_bytes(), row.digest));
            }
        }
        Ok(changed)
    }
}
