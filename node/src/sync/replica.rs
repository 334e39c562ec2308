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
use super::service::{Fetched, Replica, ReplicaError};
use super::wire::{Digest, DocId, Hash};
use crate::node::{ApplyReport, Node};
use crate::trust::Membership;
use crate::trust::{NodeId, SignedChange, Tombstone};

/// A node as the sync service uses it.
#[derive(Debug)]
pub struct NodeReplica {
    node: Node,
    catalogue: Catalogue,
    /// Highest `changes.seq` folded into the catalogue.
    seen_seq: i64,
    /// Highest tombstone position folded into the catalogue.
    seen_tombstone: i64,
    /// The community as of the last refresh (`None`: not in one, or its
    /// charter has not arrived; then every peer is admitted).
    membership: Option<Membership>,
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
            seen_tombstone: 0,
            membership: None,
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
    fn admit(&mut self, peer: &NodeId) -> Result<(), String> {
        self.refusal(peer).map_or(Ok(()), Err)
    }

    fn join(&mut self, peer: &NodeId, changes: Vec<SignedChange>) -> Result<String, String> {
        self.reload_membership();
        let Some(name) = self.membership.as_ref().map(|m| m.name.clone()) else {
            return Err("this node is not in a community".into());
        };
        // Only a newcomer's own claims and profile: nothing else is taken
        // from a node that is not a member yet.
        let node = peer.to_string();
        if changes
            .iter()
            .any(|c| c.signer_id().map(|s| s.to_string()) != Some(node.clone()))
        {
            return Err("a join request may only carry the newcomer's own changes".into());
        }
        // Check the invite against this node's clock before storing
        // anything (the claim's own time is the newcomer's to set).
        self.check_invite_fresh(&changes)?;
        self.node.apply(changes).map_err(|e| e.to_string())?;
        self.reload_membership();
        if self
            .membership
            .as_ref()
            .is_some_and(|m| m.is_member_node(&node))
        {
            tracing::info!(%peer, "admitted a new member");
            Ok(name)
        } else {
            Err("the invite is not valid here: it was used already, it expired, or the code is wrong".into())
        }
    }

    fn view(&self, peer: &NodeId) -> Box<dyn CatalogueView + '_> {
        // A node that is not a member sees nothing at all.
        if self.refusal(peer).is_some() {
            return Box::new(self.catalogue.view_for_nobody());
        }
        // A peer sees community entries and those shared with an
        // organisation whose profile lists it.
        let node = peer.to_string();
        let mut orgs = self.node.store().orgs_of_node(&node).unwrap_or_else(|e| {
            tracing::error!(error = %e, "cannot read a peer's organisations");
            Default::default()
        });
        // A member's other nodes are in the charter (or its claims), not
        // necessarily in its profile.
        if let Some(info) = self.membership.as_ref().and_then(|m| m.org_of(&node)) {
            orgs.insert(info.org.clone());
        }
        Box::new(self.catalogue.view_for(orgs))
    }

    fn heads(&mut self, doc: &DocId) -> Result<Vec<Hash>, ReplicaError> {
        self.node
            .store()
            .heads(DocumentId::from_bytes(*doc))
            .map_err(err)
    }

    fn fetch(
        &mut self,
        peer: &NodeId,
        doc: &DocId,
        have: &[Hash],
    ) -> Result<Option<Fetched>, ReplicaError> {
        // Never send a document (or reveal that it exists) to a peer that
        // may not see it.
        if self.view(peer).digest(doc).is_none() {
            return Ok(None);
        }
        let id = DocumentId::from_bytes(*doc);
        if let Some(t) = self.node.store().tombstone(id).map_err(err)?
            && t.verified
        {
            return Ok(Some(Fetched::Erased(t.tombstone)));
        }
        self.changes_for(id, have)
            .map(|c| Some(Fetched::Changes(c)))
    }

    fn apply(
        &mut self,
        _from: &NodeId,
        changes: Vec<SignedChange>,
        erased: Vec<Tombstone>,
    ) -> Result<ApplyReport, ReplicaError> {
        self.node
            .apply_with_tombstones(changes, erased)
            .map_err(err)
    }

    fn refresh(&mut self) -> Result<Vec<(DocId, Digest)>, ReplicaError> {
        let changed = self.refresh_catalogue()?;
        if !changed.is_empty() || self.membership.is_none() {
            self.reload_membership();
        }
        Ok(changed)
    }
}

impl NodeReplica {
    /// Refuses a join whose claimed invite is unknown here or has expired
    /// by this node's clock.
    fn check_invite_fresh(&self, changes: &[SignedChange]) -> Result<(), String> {
        use convene_model::{Body, Entry};
        let charter = match self
            .membership
            .as_ref()
            .and_then(|m| self.node.get(m.community).ok())
        {
            Some(Entry {
                body: Body::Charter(c),
                ..
            }) => c,
            _ => return Err("this node does not have the community's charter".into()),
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        for c in changes {
            let Ok(change) = c.verify() else {
                return Err("a change in the join request does not verify".into());
            };
            let mut doc = automerge::Automerge::new();
            if crate::apply::apply_received(&mut doc, vec![change]).is_err() {
                continue;
            }
            if let Ok(Entry {
                body: Body::Join(claim),
                ..
            }) = Entry::from_doc(c.doc, &doc)
            {
                return match charter.invites.get(&claim.invite) {
                    None => {
                        Err("the invite is not valid here: this community never issued it".into())
                    }
                    Some(invite) if invite.expires.millis() < now => {
                        Err(format!("the invite expired on {}", invite.expires.short()))
                    }
                    Some(_) => Ok(()),
                };
            }
        }
        Err("the join request carries no claim".into())
    }

    /// Reloads the community and logs what changed in it.
    fn reload_membership(&mut self) {
        let next = self.node.membership();
        if let (Some(before), Some(after)) = (&self.membership, &next)
            && before != after
            && let Err(e) = self.node.log_membership_changes(before, after)
        {
            tracing::warn!(error = %e, "cannot log community changes");
        }
        self.membership = next;
    }

    /// Why `peer` is not served, if it is not (`None` outside a community).
    fn refusal(&self, peer: &NodeId) -> Option<String> {
        let m = self.membership.as_ref()?;
        let node = peer.to_string();
        if m.is_member_node(&node) {
            None
        } else if m.org_of(&node).is_some() {
            Some(format!(
                "your organisation is no longer a member of the community {:?}",
                m.name
            ))
        } else {
            Some(format!(
                "you are not a member of the community {:?}",
                m.name
            ))
        }
    }

    fn refresh_catalogue(&mut self) -> Result<Vec<(DocId, Digest)>, ReplicaError> {
        let store = self.node.store();
        let (rows, max) = store.digests_since(self.seen_seq).map_err(err)?;
        let (tombstones, max_tomb) = store.tombstones_since(self.seen_tombstone).map_err(err)?;
        self.seen_seq = self.seen_seq.max(max);
        self.seen_tombstone = self.seen_tombstone.max(max_tomb);
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
        // An erased document stays in the catalogue as its tombstone, so
        // peers that still have it learn to erase it.
        for t in tombstones {
            let class = Class::of(&t.owner, &t.visibility);
            let digest = t.tombstone.digest();
            if self
                .catalogue
                .insert(*t.tombstone.doc.as_bytes(), digest, class)
            {
                changed.push((*t.tombstone.doc.as_bytes(), digest));
            }
        }
        Ok(changed)
    }

    /// The stored changes of `id` that a node with heads `have` lacks.
    fn changes_for(
        &self,
        id: DocumentId,
        have: &[Hash],
    ) -> Result<Vec<SignedChange>, ReplicaError> {
        // A peer that has all of this node's heads has every change: the
        // common case after a fetch, answered without loading the document.
        if !have.is_empty() {
            let ours = self.node.store().heads(id).map_err(err)?;
            if ours.iter().all(|h| have.contains(h)) {
                return Ok(Vec::new());
            }
        }
        let stored = self.node.store().changes(id).map_err(err)?;
        let all = stored.into_iter().map(|s| s.change);
        if have.is_empty() {
            return Ok(all.collect());
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
            return Ok(all.collect());
        }
        // Metadata only: the bytes come from the store, with signatures.
        let missing: BTreeSet<Hash> = state
            .get_changes_meta(&known)
            .iter()
            .map(|c| c.hash.0)
            .collect();
        Ok(all.filter(|c| missing.contains(&c.hash)).collect())
    }
}
