//! One sync session, from the side that started it: reconcile, fetch what
//! differs, push what the peer lacks.
//!
//! The session is a plain state machine: [`Session::next_request`] says
//! what to send, [`Session::on_response`] takes the answer. Reconciliation
//! rounds and pushes go one at a time (each depends on the answer before);
//! fetches go [`PIPELINE`] at a time, so that the peer reads and sends the
//! next batch while this node verifies and stores the last one. Answers
//! are taken in the order their requests were sent, whatever order they
//! arrive in. Every step is bounded (rounds of reconciliation, documents
//! per request, bytes per push, requests in flight), so a hostile peer
//! cannot keep a session going forever.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::catalogue::{Fingerprint, Prefix};
use super::reconcile::{self, Diff};
use super::service::{Fetched, Replica, ReplicaError, Token};
use super::wire::{
    CHANGES_BUDGET, DocHeads, DocId, Hash, MAX_DOCS, MAX_RANGES, Request, Response, Violation,
    WireChange, WireTombstone,
};
use crate::trust::{NodeId, SignedChange};

/// Most reconciliation rounds before a session gives up (ids are random,
/// so real catalogues finish in about log16(n) + 1 rounds).
pub const MAX_ROUNDS: u32 = 12;

/// Most fetch requests in flight at once. Two keep both sides busy: the
/// peer answers the next batch while this node applies the one before
/// (one would leave this node idle for a round trip and the peer's read
/// at every batch; more would only hold more batches in memory).
pub const PIPELINE: usize = 2;

/// What a session wants done next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Send this request (under the token given to
    /// [`Session::next_request`]).
    Send(Request),
    /// Wait for an answer to a request in flight.
    Wait,
    /// The session is complete.
    Done,
}

/// How a session ended badly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("the peer refused to sync: {0}")]
    Refused(String),
    #[error(transparent)]
    Violation(#[from] Violation),
    #[error("local store: {0}")]
    Replica(String),
    #[error("request failed: {0}")]
    Failed(String),
}

impl From<ReplicaError> for SessionError {
    fn from(e: ReplicaError) -> Self {
        SessionError::Replica(e.0)
    }
}

/// What a session did, for `sync --once`, status and benchmarks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// A full session (reconciled the whole catalogue), not one that only
    /// fetched announced documents.
    pub full: bool,
    /// Round trips one after another: the longest chain of requests each
    /// sent only after the answer to the one before (overlapping fetches
    /// share their round trip).
    pub round_trips: u32,
    pub reconcile_rounds: u32,
    pub docs_differing: usize,
    /// Changes received and stored.
    pub received: usize,
    /// Changes received that this node already had.
    pub already_had: usize,
    /// Changes received and refused (bad signature, not allowed).
    pub rejected: usize,
    /// Times a received change was set aside because what judges it (its
    /// earlier changes, its owner's profile, its signer's join claim) had
    /// not arrived yet. A change set aside twice counts twice.
    pub waited: usize,
    /// Changes sent and stored by the peer.
    pub sent: usize,
    /// Documents whose state changed here.
    pub docs_changed: BTreeSet<DocId>,
    /// Documents this node sent changes of.
    pub docs_sent: BTreeSet<DocId>,
}

/// How far a session has got, for a progress bar: documents are the unit,
/// since how many changes a document holds is not known until it arrives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionProgress {
    /// Whether the catalogues have been compared; until then the number of
    /// documents to fetch is not known.
    pub reconciled: bool,
    /// Documents to fetch in all (so far: announcements can add more).
    pub docs_total: usize,
    /// Documents fetched.
    pub docs_done: usize,
    /// Changes received and stored.
    pub received: usize,
}

/// A request sent and not yet answered.
#[derive(Debug)]
struct Sent {
    token: Token,
    /// Round trips one after another up to and including this one: one
    /// more than the answers taken when it was sent.
    depth: u32,
    what: InFlight,
}

#[derive(Debug)]
enum InFlight {
    Reconcile(Vec<(Prefix, Fingerprint)>),
    Get(Vec<DocId>),
    Put,
}

/// A session with one peer.
#[derive(Debug)]
pub struct Session {
    peer: NodeId,
    pending_ranges: VecDeque<(Prefix, Fingerprint)>,
    diff: Diff,
    reconciled: bool,
    fetch: VecDeque<DocId>,
    /// Documents ever queued to fetch (for progress).
    fetch_total: usize,
    /// Documents to consider pushing, with the peer's heads when known.
    push: BTreeMap<DocId, Vec<Hash>>,
    /// Requests sent and not yet answered, in the order they were sent.
    in_flight: VecDeque<Sent>,
    /// Answers that arrived before the answer to an earlier request: taken
    /// when their turn comes (at most [`PIPELINE`] - 1 of them).
    early: BTreeMap<Token, Response>,
    stats: SessionStats,
    /// Documents the peer has just said it holds, at these digests (from
    /// the heads in its answers): the service takes them
    /// ([`Session::take_peer_holds`]) so that what this node fetched is not
    /// announced back to where it came from.
    peer_holds: Vec<(DocId, super::wire::Digest)>,
}

impl Session {
    /// A full session: reconcile the whole catalogue first.
    pub fn full(peer: NodeId, replica: &dyn Replica) -> Self {
        let root = Prefix::root();
        let fp = replica.view(&peer).fingerprint(&root);
        let mut session = Self::new(peer, [(root, fp)].into(), false, Vec::new());
        session.stats.full = true;
        session
    }

    /// Whether this session reconciles the whole catalogue.
    pub fn is_full(&self) -> bool {
        self.stats.full
    }

    /// A targeted session for documents the peer announced.
    pub fn targeted(peer: NodeId, docs: impl IntoIterator<Item = DocId>) -> Self {
        Self::new(peer, VecDeque::new(), true, docs.into_iter().collect())
    }

    fn new(
        peer: NodeId,
        pending_ranges: VecDeque<(Prefix, Fingerprint)>,
        reconciled: bool,
        fetch: Vec<DocId>,
    ) -> Self {
        Self {
            peer,
            pending_ranges,
            diff: Diff::default(),
            reconciled,
            fetch_total: fetch.len(),
            fetch: fetch.into(),
            push: BTreeMap::new(),
            in_flight: VecDeque::new(),
            early: BTreeMap::new(),
            stats: SessionStats::default(),
            peer_holds: Vec::new(),
        }
    }

    /// What the peer said it holds since the last call.
    pub fn take_peer_holds(&mut self) -> Vec<(DocId, super::wire::Digest)> {
        std::mem::take(&mut self.peer_holds)
    }

    pub fn peer(&self) -> NodeId {
        self.peer
    }

    pub fn stats(&self) -> &SessionStats {
        &self.stats
    }

    pub fn into_stats(self) -> SessionStats {
        self.stats
    }

    /// Whether `token` names a request of this session still unanswered.
    pub fn awaits(&self, token: Token) -> bool {
        self.in_flight.iter().any(|s| s.token == token)
    }

    /// How far the session has got.
    pub fn progress(&self) -> SessionProgress {
        let in_flight: usize = self
            .in_flight
            .iter()
            .map(|s| match &s.what {
                InFlight::Get(docs) => docs.len(),
                _ => 0,
            })
            .sum();
        SessionProgress {
            reconciled: self.reconciled,
            docs_total: self.fetch_total,
            docs_done: self
                .fetch_total
                .saturating_sub(self.fetch.len() + in_flight),
            received: self.stats.received,
        }
    }

    /// What to do next; a request to send goes under `token`.
    pub fn next_request(
        &mut self,
        replica: &mut dyn Replica,
        token: Token,
    ) -> Result<Next, SessionError> {
        // Only fetches overlap; a reconciliation round or a push waits for
        // everything before it (a fetch's answer can add to both).
        let another_fetch = self.reconciled
            && !self.fetch.is_empty()
            && self
                .in_flight
                .iter()
                .all(|s| matches!(s.what, InFlight::Get(_)));
        let busy = match self.in_flight.len() {
            0 => false,
            n => n >= PIPELINE || !another_fetch,
        };
        if busy {
            return Ok(Next::Wait);
        }
        if !self.pending_ranges.is_empty() {
            if self.stats.reconcile_rounds >= MAX_ROUNDS {
                return Err(Violation(format!(
                    "reconciliation did not finish in {MAX_ROUNDS} rounds"
                ))
                .into());
            }
            let n = self.pending_ranges.len().min(MAX_RANGES);
            let ranges: Vec<_> = self.pending_ranges.drain(..n).collect();
            self.stats.reconcile_rounds += 1;
            self.sent(token, InFlight::Reconcile(ranges.clone()));
            return Ok(Next::Send(Request::Reconcile { ranges }));
        }
        if !self.reconciled {
            self.reconciled = true;
            self.stats.docs_differing = self.diff.fetch.len() + self.diff.push.len();
            let mut fetch: Vec<DocId> = std::mem::take(&mut self.diff.fetch).into_iter().collect();
            // The peer's own organisation profile first: entries of its
            // organisation that arrive before it wait, and are stored,
            // read back and decoded again (at 100,000 entries, most of
            // them at once).
            let profile = self
                .peer
                .public_bytes()
                .map(|key| *crate::trust::org_id(&key).as_bytes());
            if let Some(i) = fetch.iter().position(|d| Some(*d) == profile) {
                let first = fetch.remove(i);
                fetch.insert(0, first);
            }
            self.fetch_total += fetch.len();
            self.fetch.extend(fetch);
            for doc in std::mem::take(&mut self.diff.push) {
                self.push.insert(doc, Vec::new());
            }
        }
        if !self.fetch.is_empty() {
            let n = self.fetch.len().min(MAX_DOCS);
            let docs: Vec<DocId> = self.fetch.drain(..n).collect();
            let mut request = Vec::with_capacity(docs.len());
            for doc in &docs {
                request.push(DocHeads {
                    doc: *doc,
                    heads: replica.heads(doc)?,
                });
            }
            self.sent(token, InFlight::Get(docs));
            return Ok(Next::Send(Request::GetChanges { docs: request }));
        }
        let mut batch: Vec<WireChange> = Vec::new();
        let mut erased: Vec<WireTombstone> = Vec::new();
        let mut size = 0;
        while let Some((doc, theirs)) = self.push.pop_first() {
            let changes: Vec<SignedChange> = match replica.fetch(&self.peer, &doc, &theirs)? {
                Some(Fetched::Changes(c)) => c,
                Some(Fetched::Erased(t)) => {
                    if erased.len() < MAX_DOCS {
                        erased.push(WireTombstone::from(&t));
                    } else {
                        self.push.insert(doc, theirs);
                        break;
                    }
                    Vec::new()
                }
                None => Vec::new(),
            };
            let bytes: usize = changes.iter().map(|c| c.bytes.len() + 160).sum();
            if !batch.is_empty() && size + bytes > CHANGES_BUDGET {
                self.push.insert(doc, theirs);
                break;
            }
            size += bytes;
            if !changes.is_empty() {
                self.stats.docs_sent.insert(doc);
            }
            batch.extend(changes.iter().map(WireChange::from));
        }
        if batch.is_empty() && erased.is_empty() {
            return Ok(Next::Done);
        }
        self.sent(token, InFlight::Put);
        Ok(Next::Send(Request::PutChanges {
            changes: batch,
            erased,
        }))
    }

    /// Takes the peer's answer to the request sent under `token`: at once
    /// if it answers the oldest request in flight (then any answers that
    /// arrived early and are next in turn), otherwise when its turn comes.
    pub fn on_response(
        &mut self,
        token: Token,
        response: Response,
        replica: &mut dyn Replica,
    ) -> Result<(), SessionError> {
        if !self.awaits(token) || self.early.contains_key(&token) {
            return Err(Violation("a response nobody asked for".into()).into());
        }
        self.early.insert(token, response);
        while let Some(oldest) = self.in_flight.front()
            && let Some(response) = self.early.remove(&oldest.token)
        {
            let sent = self.in_flight.pop_front().expect("front exists");
            self.stats.round_trips = self.stats.round_trips.max(sent.depth);
            self.take(sent.what, response, replica)?;
        }
        Ok(())
    }

    fn sent(&mut self, token: Token, what: InFlight) {
        self.in_flight.push_back(Sent {
            token,
            depth: self.stats.round_trips + 1,
            what,
        });
    }

    fn take(
        &mut self,
        in_flight: InFlight,
        response: Response,
        replica: &mut dyn Replica,
    ) -> Result<(), SessionError> {
        match (in_flight, response) {
            (_, Response::Refused { reason }) => Err(SessionError::Refused(reason)),
            (InFlight::Reconcile(sent), Response::Reconcile { results }) => {
                let view = replica.view(&self.peer);
                let next = reconcile::absorb(&*view, &sent, results, &mut self.diff)?;
                self.pending_ranges.extend(next);
                Ok(())
            }
            (
                InFlight::Get(asked),
                Response::Changes {
                    changes,
                    heads,
                    unknown: _,
                    truncated,
                    erased,
                },
            ) => {
                let asked_set: BTreeSet<DocId> = asked.iter().copied().collect();
                if truncated.len() == asked.len() && changes.is_empty() && erased.is_empty() {
                    return Err(Violation("a change response that carried nothing".into()).into());
                }
                if truncated
                    .iter()
                    .chain(heads.iter().map(|h| &h.doc))
                    .any(|d| !asked_set.contains(d))
                    || changes.iter().any(|c| !asked_set.contains(&c.doc))
                    || erased.iter().any(|t| !asked_set.contains(&t.doc))
                {
                    return Err(Violation("changes for documents nobody asked for".into()).into());
                }
                for doc in truncated.into_iter().rev() {
                    self.fetch.push_front(doc);
                }
                let (signed, erased) = super::wire::into_signed(changes, erased)?;
                if !signed.is_empty() || !erased.is_empty() {
                    let report = replica.apply(&self.peer, signed, erased)?;
                    self.stats
                        .docs_changed
                        .extend(report.erased.iter().map(|d| *d.as_bytes()));
                    self.stats.received += report.applied;
                    self.stats.already_had += report.already_had;
                    self.stats.rejected += report.rejected.len();
                    self.stats.waited += report.waiting;
                    self.stats
                        .docs_changed
                        .extend(report.changed.iter().map(|d| *d.as_bytes()));
                }
                // The peer may lack some of this node's changes to the same
                // documents (concurrent edits): offer them.
                for h in heads {
                    self.peer_holds
                        .push((h.doc, super::wire::digest_of(&h.doc, &h.heads)));
                    self.push.insert(h.doc, h.heads);
                }
                Ok(())
            }
            (InFlight::Put, Response::Applied { applied, .. }) => {
                self.stats.sent += applied as usize;
                Ok(())
            }
            (_, other) => Err(Violation(format!("unexpected response {other:?}")).into()),
        }
    }
}
