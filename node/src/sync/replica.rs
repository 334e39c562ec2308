//! [`NodeReplica`]: the sync service's view of a real node.
//!
//! It keeps the [`Catalogue`] in memory, loaded once from the `docs` table
//! and then refreshed from the changes appended since (by this process or
//! any other, e.g. a CLI command while the daemon runs): `changes.seq`
//! only grows, so "what changed" is one indexed query.

use std::collections::{BTreeMap, BTreeSet};

use automerge::ChangeHash;
use convene_model::DocumentId;

use super::catalogue::{Catalogue, CatalogueView, Class};
use super::service::{Fetched, Replica, ReplicaError};
use super::wire::{Digest, DocId, Hash};
use crate::node::{ApplyReport, Node};
use crate::trust::Membership;
use crate::trust::membership::{self, check_claim};
use crate::trust::{NodeId, SignedChange, Tombstone};

/// The whole answer a node that is not admitted gets, whatever the reason:
/// a stranger learns nothing about the community, its invites or whether
/// it was once a member.
pub const NOT_ADMITTED: &str = "not admitted";

/// Most changes a join request may carry (its claims and its own profile).
const MAX_JOIN_REQUEST_CHANGES: usize = 16;
/// Most bytes of changes a join request may carry.
const MAX_JOIN_REQUEST_BYTES: usize = 64 * 1024;

/// Why a join was refused: quietly (nothing proved, nothing written), or
/// as a security event (the invite's secret was proved, then lied about).
#[derive(Debug)]
enum JoinRefusal {
    Quiet(String),
    /// The event it is logged as, and why.
    Security(&'static str, String),
}

/// A node as the sync service uses it.
#[derive(Debug)]
pub struct NodeReplica {
    node: Node,
    catalogue: Catalogue,
    /// Highest `changes.seq` folded into the catalogue.
    seen_seq: i64,
    /// The `changes.seq` window the last refresh folded in: its changes are
    /// the news [`Replica::fresh_changes`] pushes.
    fresh: (i64, i64),
    /// Highest tombstone position folded into the catalogue.
    seen_tombstone: i64,
    /// The community as of the last refresh (`None`: not in one, or its
    /// charter has not arrived; then every peer is admitted).
    membership: Option<Membership>,
    /// Peers that admitted this node and whose first full session has not
    /// ended (see [`Replica::vouch`]): served while the membership this
    /// node has does not know their node at all.
    vouched: BTreeSet<NodeId>,
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
            fresh: (0, 0),
            seen_tombstone: 0,
            membership: None,
            vouched: BTreeSet::new(),
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

    /// The last `changes.seq` the catalogue has folded in.
    pub fn catalogue_seq(&self) -> i64 {
        self.seen_seq
    }
}

impl Replica for NodeReplica {
    fn admit(&mut self, peer: &NodeId) -> Result<(), String> {
        self.refusal(peer).map_or(Ok(()), Err)
    }

    fn join(&mut self, peer: &NodeId, changes: Vec<SignedChange>) -> Result<String, String> {
        self.reload_membership();
        let Some(m) = self.membership.as_ref() else {
            tracing::info!(%peer, "refused a join: this node is not in a community");
            return Err(NOT_ADMITTED.into());
        };
        let name = m.name.clone();
        // Everything is checked before anything is written: a stranger
        // that has not proved it holds an invite's secret costs no disk.
        match self.check_join(peer, &changes) {
            Ok(()) => {}
            Err(JoinRefusal::Quiet(reason)) => {
                tracing::info!(%peer, %reason, "refused a join");
                return Err(NOT_ADMITTED.into());
            }
            Err(JoinRefusal::Security(event, reason)) => {
                tracing::warn!(%peer, %reason, event, "refused a join claim");
                self.log_security(event, peer, &reason);
                return Err(NOT_ADMITTED.into());
            }
        }
        self.node
            .apply_from(peer, changes, Vec::new())
            .map_err(|e| {
                tracing::error!(%peer, error = %e, "cannot store a join claim");
                NOT_ADMITTED.to_string()
            })?;
        self.reload_membership();
        let node = peer.to_string();
        if self
            .membership
            .as_ref()
            .is_some_and(|m| m.is_member_node(&node))
        {
            tracing::info!(%peer, "admitted a new member");
            Ok(name)
        } else {
            tracing::info!(%peer, "a join claim is stored but not admitted (a conflict, or no consent yet)");
            Err(NOT_ADMITTED.into())
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
        let changes = self.changes_for(id, have)?;
        // The catalogue may be a moment behind the store (another process
        // made the entry a draft since the last refresh): the stored status
        // decides, read after the changes, so a change that made the entry
        // a draft is never among those sent.
        let status = self.node.store().status(id).map_err(err)?;
        if status.as_deref() == Some("draft") {
            return Ok(None);
        }
        Ok(Some(Fetched::Changes(changes)))
    }

    fn apply(
        &mut self,
        from: &NodeId,
        changes: Vec<SignedChange>,
        erased: Vec<Tombstone>,
    ) -> Result<ApplyReport, ReplicaError> {
        self.node.apply_from(from, changes, erased).map_err(err)
    }

    fn fresh_changes(&mut self, doc: &DocId, budget: usize) -> Option<Vec<SignedChange>> {
        let (after, upto) = self.fresh;
        let doc = DocumentId::from_bytes(*doc);
        match self.node.store().changes_between(doc, after, upto, budget) {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read new changes to push");
                None
            }
        }
    }

    fn vouch(&mut self, peer: &NodeId, admitted_us: bool) {
        if admitted_us {
            self.vouched.insert(*peer);
        } else {
            self.vouched.remove(peer);
        }
    }

    fn refresh(&mut self) -> Result<Vec<(DocId, Digest)>, ReplicaError> {
        let (changed, erasures) = self.refresh_catalogue()?;
        // The community is computed from its charter, join claims and
        // organisation profiles (dozens of documents loaded and claims
        // checked): only a change to one of those (or an erasure, or a
        // document of no kind yet) calls for computing it again.
        let store = self.node.store();
        let shapes_membership = |doc: &DocId| match store.kind_of(DocumentId::from_bytes(*doc)) {
            Ok(Some(kind)) => matches!(kind.as_str(), "charter" | "join" | "organisation" | ""),
            _ => true,
        };
        // An organiser's node gives out its events' places as answers
        // arrive (its own write is picked up by the next refresh).
        let answers: Vec<DocumentId> = changed
            .iter()
            .map(|(d, _)| DocumentId::from_bytes(*d))
            .filter(|d| matches!(store.kind_of(*d), Ok(Some(k)) if k == "response"))
            .collect();
        if self.membership.is_none()
            || erasures
            || changed.iter().any(|(d, _)| shapes_membership(d))
        {
            self.reload_membership();
        }
        if !answers.is_empty()
            && let Err(e) = self.node.allocate_places_for(&answers)
        {
            tracing::warn!(error = %e, "cannot give out event places");
        }
        Ok(changed)
    }
}

impl NodeReplica {
    /// The nodes of the community's current (not removed) members, as of
    /// the last refresh; `None` outside a community.
    pub fn member_nodes(&self) -> Option<Vec<&str>> {
        let m = self.membership.as_ref()?;
        Some(
            m.members
                .values()
                .filter(|i| i.removed.is_none())
                .flat_map(|i| i.nodes.iter().map(String::as_str))
                .collect(),
        )
    }

    /// The nodes of `org` if it is a current member.
    pub fn nodes_of(&self, org: &str) -> Vec<&str> {
        self.membership
            .as_ref()
            .and_then(|m| m.members.get(org))
            .filter(|i| i.removed.is_none())
            .map(|i| i.nodes.iter().map(String::as_str).collect())
            .unwrap_or_default()
    }

    /// Checks a join request against the charter before anything is
    /// stored: it carries only the newcomer's claims (each a valid claim
    /// by that node on an unexpired invite, by this node's clock) and its
    /// own new organisation's profile, within a small budget.
    fn check_join(&self, peer: &NodeId, changes: &[SignedChange]) -> Result<(), JoinRefusal> {
        use JoinRefusal::{Quiet, Security};
        use convene_model::{Body, Entry};
        let node = peer.to_string();
        if changes.len() > MAX_JOIN_REQUEST_CHANGES {
            return Err(Quiet(format!("{} changes", changes.len())));
        }
        let bytes: usize = changes.iter().map(|c| c.bytes.len()).sum();
        if bytes > MAX_JOIN_REQUEST_BYTES {
            return Err(Quiet(format!("{bytes} bytes of changes")));
        }
        if changes
            .iter()
            .any(|c| c.signer_id().map(|s| s.to_string()) != Some(node.clone()))
        {
            return Err(Quiet("a change signed by another node".into()));
        }
        let Some((community, charter)) = membership::charter(self.node.store()) else {
            return Err(Quiet(
                "this node does not have the community's charter".into(),
            ));
        };
        let own_org = peer
            .public_bytes()
            .map(|k| crate::trust::org_id(&k))
            .ok_or_else(|| Quiet("the node id holds no Ed25519 key".into()))?;
        // Each document the request carries, from its changes alone.
        let mut docs: BTreeMap<convene_model::DocumentId, Vec<automerge::Change>> = BTreeMap::new();
        // A stranger's few kilobytes may declare little more than a row
        // for each of their bytes: what checking them costs is bounded by
        // what was sent.
        let mut budget = crate::trust::columns::Budget::for_join(bytes);
        for (c, verdict) in crate::apply::verify_within(changes.to_vec(), &mut budget) {
            let change = verdict
                .and_then(|d| d.change(&c))
                .map_err(|e| Quiet(format!("a change that does not verify: {e}")))?;
            docs.entry(c.doc).or_default().push(change);
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let profiles = |org: &str| membership::profile_nodes(self.node.store(), org);
        let known = self.membership.as_ref();
        let mut claims = 0;
        for (id, doc_changes) in docs {
            let mut doc = automerge::Automerge::new();
            crate::apply::apply_received(&mut doc, doc_changes)
                .map_err(|e| Quiet(format!("a change that cannot be applied: {e}")))?;
            match Entry::from_doc(id, &doc) {
                Ok(Entry {
                    body: Body::Join(claim),
                    ..
                }) => {
                    if claim.node != node {
                        return Err(Quiet("a claim for another node".into()));
                    }
                    let invite =
                        check_claim(community, &charter, &claim, &profiles).map_err(|fault| {
                            let reason = format!("invite {}: {fault}", claim.invite);
                            match fault.security_event() {
                                Some(event) => Security(event, reason),
                                None => Quiet(reason),
                            }
                        })?;
                    if invite.expires.millis() < now && invite.confirmed.as_ref() != Some(&node) {
                        return Err(Quiet(format!("invite {} expired", claim.invite)));
                    }
                    // An invite already contested by two nodes takes no
                    // more claims: what a steward must decide stays small.
                    if known
                        .and_then(|m| m.conflicts.get(&claim.invite))
                        .is_some_and(|nodes| !nodes.contains(&node))
                    {
                        return Err(Quiet(format!(
                            "invite {} is already contested",
                            claim.invite
                        )));
                    }
                    claims += 1;
                }
                Ok(Entry {
                    body: Body::Organisation(_),
                    ..
                }) if id == own_org => {}
                _ => {
                    return Err(Quiet(format!(
                        "document {id} is neither its claim nor its own organisation's profile"
                    )));
                }
            }
        }
        if claims == 0 {
            return Err(Quiet("the join request carries no claim".into()));
        }
        Ok(())
    }

    /// Writes a security event about `peer` to the log.
    fn log_security(&mut self, event: &str, peer: &NodeId, detail: &str) {
        let at = crate::node::now().millis();
        let entry = crate::store::LogEntry {
            at,
            event: event.into(),
            security: true,
            doc: None,
            signer: Some(peer.to_string()),
            detail: detail.to_string(),
        };
        if let Err(e) = self.node.store_mut().log_now(&entry) {
            tracing::warn!(error = %e, "cannot log a security event");
        }
    }

    /// Reloads the community and logs what changed in it.
    fn reload_membership(&mut self) {
        let mut next = self.node.membership();
        // A steward's node confirms every uncontested claim it sees, so
        // that a later claim on the same invite is void everywhere.
        if let Some(m) = &next
            && !m.unconfirmed.is_empty()
            && m.is_steward_node(&self.node.node_id().to_string())
        {
            let claims: Vec<(String, String)> = m.unconfirmed.clone().into_iter().collect();
            match self.node.confirm_claims(&claims) {
                Ok(()) => next = self.node.membership(),
                Err(e) => tracing::warn!(error = %e, "cannot confirm join claims"),
            }
        }
        if let (Some(before), Some(after)) = (&self.membership, &next)
            && before != after
            && let Err(e) = self.node.log_membership_changes(before, after)
        {
            tracing::warn!(error = %e, "cannot log community changes");
        }
        self.membership = next;
    }

    /// Why `peer` is not served, if it is not (`None` outside a
    /// community). A refusal tells the peer only that it is not admitted:
    /// not the community's name, nor whether it was once a member.
    fn refusal(&self, peer: &NodeId) -> Option<String> {
        let m = self.membership.as_ref()?;
        let node = peer.to_string();
        if m.is_member_node(&node) || (self.vouched.contains(peer) && m.org_of(&node).is_none()) {
            None
        } else {
            Some(NOT_ADMITTED.into())
        }
    }

    /// Folds what was stored since the last look into the catalogue: the
    /// documents whose digest changed, and whether any were erased.
    fn refresh_catalogue(&mut self) -> Result<(Vec<(DocId, Digest)>, bool), ReplicaError> {
        let store = self.node.store();
        let (rows, max) = store.catalogue_since(self.seen_seq).map_err(err)?;
        let (tombstones, max_tomb) = store.tombstones_since(self.seen_tombstone).map_err(err)?;
        let erasures = !tombstones.is_empty();
        self.fresh = (self.seen_seq, self.seen_seq.max(max));
        self.seen_seq = self.seen_seq.max(max);
        self.seen_tombstone = self.seen_tombstone.max(max_tomb);
        let mut changed = Vec::new();
        for (row, status) in rows {
            // A draft (by status) is in no peer's view: never announced,
            // offered in reconciliation or fetched. Published, it moves to
            // its visibility's class here.
            let class = Class::of(&row.owner, &row.visibility, &status);
            if self
                .catalogue
                .insert(*row.doc.as_bytes(), row.digest, class)
            {
                changed.push((*row.doc.as_bytes(), row.digest));
            }
        }
        // An erased document stays in the catalogue as its tombstone, so
        // peers that still have it learn to erase it.
        // A tombstone carries no content and must reach the peers that
        // still hold the entry (one published, then made a draft again,
        // then erased): it keeps its visibility's class.
        for t in tombstones {
            let class = Class::of(&t.owner, &t.visibility, "");
            let digest = t.tombstone.digest();
            if self
                .catalogue
                .insert(*t.tombstone.doc.as_bytes(), digest, class)
            {
                changed.push((*t.tombstone.doc.as_bytes(), digest));
            }
        }
        Ok((changed, erasures))
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
