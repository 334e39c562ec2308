//! The sync service: every peer's sessions, requests and announcements, as a
//! sans-IO state machine.
//!
//! The runtime (the libp2p event loop, or a test's simulated network) feeds
//! [`Input`]s to [`Service::handle`] and carries out the [`Io`]s it queues:
//! send a request, answer one, disconnect a peer, report an event. The
//! service never touches a socket or a clock (times come in with each
//! input); it reads and writes the node's data through the [`Replica`]
//! trait, so the same code runs in the daemon, in `sync --once` and in a
//! deterministic in-process simulation.
//!
//! Two places decide what a peer may get, and the membership rules of a
//! community plug in there: [`Replica::admit`] when a peer asks anything,
//! and [`Replica::view`] / [`Replica::fetch`] for which documents and
//! changes it may see.

use std::collections::{BTreeMap, HashMap, VecDeque};

use super::catalogue::CatalogueView;
use super::limits::{Bucket, Limits, Verdict};
use super::reconcile;
use super::session::{Next, Session, SessionError, SessionProgress, SessionStats};
use super::wire::{
    self, CHANGES_BUDGET, Digest, DocHeads, DocId, Hash, MAX_ANNOUNCE, MAX_PUSH_CHANGES,
    MAX_SEEN_BY, PUSH_BUDGET, PeerTag, Request, Response, Violation, WireChange, WireTombstone,
};
use crate::node::ApplyReport;
use crate::trust::{NodeId, SignedChange, Tombstone};

/// A failure of the node's own data layer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ReplicaError(pub String);

/// The node's data as sync sees it.
pub trait Replica {
    /// Whether `peer` may sync with this node at all (`Err` gives the
    /// reason the peer is told).
    fn admit(&mut self, peer: &NodeId) -> Result<(), String>;
    /// The catalogue as `peer` may see it.
    fn view(&self, peer: &NodeId) -> Box<dyn CatalogueView + '_>;
    /// This node's heads of a document (empty if it has none).
    fn heads(&mut self, doc: &DocId) -> Result<Vec<Hash>, ReplicaError>;
    /// What a node with heads `have` lacks of `doc` (its changes, or its
    /// tombstone if it was erased), if `peer` may see the document; `None`
    /// if it may not or this node lacks it.
    fn fetch(
        &mut self,
        peer: &NodeId,
        doc: &DocId,
        have: &[Hash],
    ) -> Result<Option<Fetched>, ReplicaError>;
    /// Verifies and stores changes and tombstones received from `from`.
    fn apply(
        &mut self,
        from: &NodeId,
        changes: Vec<SignedChange>,
        erased: Vec<Tombstone>,
    ) -> Result<ApplyReport, ReplicaError>;
    /// Admits a newcomer that sent its join claim (and profile): `Ok` with
    /// the community's name if the claim holds, `Err` with the reason.
    fn join(&mut self, peer: &NodeId, changes: Vec<SignedChange>) -> Result<String, String>;
    /// Documents whose digest changed since the last call (local writes by
    /// any process, and applied changes), with their new digests.
    fn refresh(&mut self) -> Result<Vec<(DocId, Digest)>, ReplicaError>;
    /// The changes that made `doc` change in the last [`Replica::refresh`]
    /// (stored since the refresh before), if they hold at most `budget`
    /// bytes: pushed to peers with the announcement. `None` (too many, or
    /// none kept) means the peers are only told, and fetch.
    fn fresh_changes(&mut self, doc: &DocId, budget: usize) -> Option<Vec<SignedChange>> {
        let _ = (doc, budget);
        None
    }
    /// `peer` has just admitted this node (`true`), or this node's first
    /// full session with it has completed (`false`; a session that failed,
    /// e.g. one refused before the join was answered, does not count). A newcomer may not have the
    /// claim that makes its admitting member a member yet; until that first
    /// session brings it, the peer that admitted it is taken as a member.
    fn vouch(&mut self, peer: &NodeId, admitted_us: bool) {
        let _ = (peer, admitted_us);
    }
}

/// What a peer gets of one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    Changes(Vec<SignedChange>),
    Erased(Tombstone),
}

/// Identifies an inbound request until it is answered.
pub type ChannelId = u64;
/// Identifies an outbound request until its answer arrives.
pub type Token = u64;

/// Something that happened, for the runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Connected {
        peer: NodeId,
    },
    Disconnected {
        peer: NodeId,
    },
    /// Start a full session with a connected peer (after connecting, and
    /// from time to time to heal missed announcements).
    Sync {
        peer: NodeId,
    },
    Request {
        peer: NodeId,
        channel: ChannelId,
        request: Request,
    },
    Response {
        peer: NodeId,
        token: Token,
        response: Response,
    },
    /// An outbound request failed (timeout, connection closed, bad bytes).
    Failed {
        peer: NodeId,
        token: Token,
        error: String,
    },
    /// Time passed: look for local changes to announce.
    Tick,
    /// Ask a connected member to admit this node (its claim and profile).
    Join {
        peer: NodeId,
        changes: Vec<SignedChange>,
    },
}

/// What the service wants done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Io {
    Send {
        peer: NodeId,
        token: Token,
        request: Request,
    },
    Respond {
        channel: ChannelId,
        response: Response,
    },
    Disconnect {
        peer: NodeId,
        reason: String,
    },
    Event(Event),
}

/// What the service reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    SessionDone {
        peer: NodeId,
        stats: SessionStats,
    },
    SessionFailed {
        peer: NodeId,
        error: SessionError,
    },
    /// A peer pushed changes to this node.
    Received {
        peer: NodeId,
        applied: usize,
        rejected: usize,
    },
    /// A member admitted this node.
    Joined {
        peer: NodeId,
        community: String,
    },
    /// A member did not admit this node.
    JoinFailed {
        peer: NodeId,
        reason: String,
    },
    /// This node admitted a newcomer.
    Admitted {
        peer: NodeId,
    },
    /// A peer reconciled with this node (it started the session).
    Reconciled {
        peer: NodeId,
    },
    /// A peer was refused (not admitted).
    Refused {
        peer: NodeId,
        reason: String,
    },
    /// A peer went over its rate limit (its request was refused, or it was
    /// disconnected).
    Throttled {
        peer: NodeId,
        kind: &'static str,
    },
}

/// Counters per peer, for `convene status` and `convene peers`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerStats {
    pub connected: bool,
    /// When the last session with the peer completed (unix ms).
    pub last_sync: Option<i64>,
    pub changes_in: usize,
    pub changes_out: usize,
    pub rejected: usize,
    pub sessions: usize,
}

#[derive(Debug, Default)]
struct Peer {
    session: Option<Session>,
    /// Announced documents (with the announced digest) to fetch when the
    /// current session ends.
    queued: BTreeMap<DocId, Digest>,
    /// A full sync was asked for while a session ran.
    full_pending: bool,
    stats: PeerStats,
    /// Requests the peer may still make (kept across reconnections).
    requests: Bucket,
    /// Join attempts the peer may still make.
    joins: Bucket,
    /// Documents the peer is known to hold at a digest: it announced them,
    /// or this node announced them to it. A change is not announced to a
    /// peer that has it already (in a well-connected community most
    /// members hear of a new entry from several others). Bounded by two
    /// generations of [`MAX_KNOWN`]; forgetting only costs an extra
    /// announcement.
    known: Known,
}

/// Most documents remembered per peer as held by it, in each of
/// [`Known`]'s two generations.
const MAX_KNOWN: usize = 4096;

/// Documents a peer holds, at a digest: the latest [`MAX_KNOWN`] or more
/// learned. When the newer generation fills up, it becomes the older one
/// and the oldest is forgotten, so what was learned last is always kept
/// (clearing everything at once forgot what a catch-up had just fetched
/// and announced it back to where it came from).
#[derive(Debug, Default)]
struct Known {
    newer: HashMap<DocId, Digest>,
    older: HashMap<DocId, Digest>,
}

impl Known {
    fn insert(&mut self, doc: DocId, digest: Digest) {
        if self.newer.len() >= MAX_KNOWN {
            self.older = std::mem::take(&mut self.newer);
        }
        self.newer.insert(doc, digest);
    }

    fn get(&self, doc: &DocId) -> Option<&Digest> {
        self.newer.get(doc).or_else(|| self.older.get(doc))
    }

    fn clear(&mut self) {
        self.newer.clear();
        self.older.clear();
    }
}

impl Peer {
    fn knows(&mut self, doc: DocId, digest: Digest) {
        self.known.insert(doc, digest);
    }
}

/// The sync state machine of one node.
#[derive(Debug)]
pub struct Service<R> {
    replica: R,
    peers: BTreeMap<NodeId, Peer>,
    outbox: VecDeque<Io>,
    next_token: Token,
    now: i64,
    /// Join requests in flight: token → peer.
    joins: BTreeMap<Token, NodeId>,
    /// Announced documents a targeted session is fetching, and from whom.
    /// Another peer's announcement of the same document waits for that
    /// fetch instead of fetching it a second time (in a well-connected
    /// mesh every member that gets a new entry announces it to all the
    /// others, most of whom are still fetching it from its author).
    fetching: BTreeMap<DocId, NodeId>,
    /// What one peer may ask of this node.
    limits: Limits,
    /// Documents pushed here, with the nodes the pusher said have them (and
    /// the pusher): passing the news on skips those, and names them again.
    /// Taken by the next announcement; bounded by [`MAX_KNOWN`].
    relay_seen: HashMap<DocId, (Digest, Vec<PeerTag>)>,
}

impl<R: Replica> Service<R> {
    pub fn new(replica: R) -> Self {
        Self::with_limits(replica, Limits::default())
    }

    /// A service whose peers get these budgets instead of the defaults.
    pub fn with_limits(replica: R, limits: Limits) -> Self {
        Self {
            replica,
            peers: BTreeMap::new(),
            outbox: VecDeque::new(),
            next_token: 1,
            now: 0,
            joins: BTreeMap::new(),
            fetching: BTreeMap::new(),
            limits,
            relay_seen: HashMap::new(),
        }
    }

    pub fn replica(&self) -> &R {
        &self.replica
    }

    /// Whether a full session with `peer` is running: after a session
    /// fails, a full one asked for while it ran starts at once.
    pub fn in_full_session(&self, peer: &NodeId) -> bool {
        self.peers
            .get(peer)
            .and_then(|p| p.session.as_ref())
            .is_some_and(|s| s.is_full())
    }

    pub fn replica_mut(&mut self) -> &mut R {
        &mut self.replica
    }

    /// Counters for every peer seen since start.
    pub fn peers(&self) -> impl Iterator<Item = (&NodeId, &PeerStats)> {
        self.peers.iter().map(|(id, p)| (id, &p.stats))
    }

    /// How far the running session with `peer` has got, if one runs.
    pub fn progress(&self, peer: &NodeId) -> Option<SessionProgress> {
        Some(self.peers.get(peer)?.session.as_ref()?.progress())
    }

    /// Whether a session with `peer` is running.
    pub fn is_syncing(&self, peer: &NodeId) -> bool {
        self.peers.get(peer).is_some_and(|p| p.session.is_some())
    }

    /// The next thing to do, if any.
    pub fn next_io(&mut self) -> Option<Io> {
        self.outbox.pop_front()
    }

    /// Handles one input at time `now` (unix ms).
    pub fn handle(&mut self, now: i64, input: Input) {
        self.now = now;
        match input {
            Input::Connected { peer } => {
                self.peers.entry(peer).or_default().stats.connected = true;
            }
            Input::Disconnected { peer } => {
                if let Some(p) = self.peers.get_mut(&peer) {
                    p.stats.connected = false;
                    p.queued.clear();
                    p.known.clear();
                    p.full_pending = false;
                    if p.session.take().is_some() {
                        self.event(Event::SessionFailed {
                            peer,
                            error: SessionError::Failed("the connection closed".into()),
                        });
                    }
                }
                // A stranger (e.g. one that only asked to join) leaves
                // nothing behind: peer ids cost nothing to make.
                if self.replica.admit(&peer).is_err() {
                    self.peers.remove(&peer);
                }
                self.session_ended(peer);
            }
            Input::Join { peer, changes } => {
                let token = self.next_token;
                self.next_token += 1;
                self.joins.insert(token, peer);
                self.outbox.push_back(Io::Send {
                    peer,
                    token,
                    request: Request::Join {
                        changes: changes.iter().map(WireChange::from).collect(),
                    },
                });
            }
            Input::Sync { peer } => {
                // Only members are synced with.
                if let Err(reason) = self.replica.admit(&peer) {
                    tracing::debug!(%peer, %reason, "not starting a session");
                    self.event(Event::SessionFailed {
                        peer,
                        error: SessionError::Refused(format!(
                            "this node will not sync with it: {reason}"
                        )),
                    });
                    return;
                }
                // Start from the current catalogue (and tell everyone what
                // changed locally since the last look).
                self.announce_local_changes();
                let p = self.peers.entry(peer).or_default();
                if let Some(running) = &p.session {
                    // A full session under way (the one started on
                    // connecting) answers this too: what changes here is
                    // announced, what changes there the peer announces. Only
                    // after a partial one is a full one run again (a
                    // `sync --once` between members sent a second reconcile
                    // for nothing).
                    if !running.is_full() {
                        p.full_pending = true;
                    }
                } else {
                    let session = Session::full(peer, &self.replica);
                    self.start(peer, session);
                }
            }
            Input::Request {
                peer,
                channel,
                request,
            } => self.on_request(peer, channel, request),
            Input::Response {
                peer,
                token,
                response,
            } => self.on_response(peer, token, response),
            Input::Failed { peer, token, error } => {
                if self.joins.remove(&token).is_some() {
                    self.event(Event::JoinFailed {
                        peer,
                        reason: error,
                    });
                    return;
                }
                if let Some(p) = self.peers.get_mut(&peer)
                    && p.session.as_ref().is_some_and(|s| s.awaits(token))
                {
                    p.session = None;
                    self.event(Event::SessionFailed {
                        peer,
                        error: SessionError::Failed(error),
                    });
                    self.continue_queued(peer);
                }
            }
            Input::Tick => self.announce_local_changes(),
        }
    }

    fn event(&mut self, e: Event) {
        self.outbox.push_back(Io::Event(e));
    }

    fn disconnect(&mut self, peer: NodeId, reason: String) {
        tracing::warn!(%peer, %reason, "disconnecting peer");
        if let Some(p) = self.peers.get_mut(&peer) {
            p.session = None;
            p.queued.clear();
        }
        self.outbox.push_back(Io::Disconnect { peer, reason });
        self.session_ended(peer);
    }

    fn start(&mut self, peer: NodeId, session: Session) {
        self.peers.entry(peer).or_default().session = Some(session);
        self.step(peer);
    }

    /// Sends the session's next requests (as many as it may have in
    /// flight), or ends it.
    fn step(&mut self, peer: NodeId) {
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        let Some(mut session) = p.session.take() else {
            return;
        };
        loop {
            let token = self.next_token;
            match session.next_request(&mut self.replica, token) {
                Ok(Next::Send(request)) => {
                    self.next_token += 1;
                    self.outbox.push_back(Io::Send {
                        peer,
                        token,
                        request,
                    });
                }
                Ok(Next::Wait) => {
                    if let Some(p) = self.peers.get_mut(&peer) {
                        p.session = Some(session);
                    }
                    return;
                }
                Ok(Next::Done) => return self.finish(peer, session),
                Err(error) => return self.fail(peer, error),
            }
        }
    }

    /// The session with `peer` is complete: count it and report it.
    fn finish(&mut self, peer: NodeId, session: Session) {
        let stats = session.into_stats();
        if let Some(p) = self.peers.get_mut(&peer) {
            p.stats.last_sync = Some(self.now);
            p.stats.sessions += 1;
            p.stats.changes_in += stats.received;
            p.stats.changes_out += stats.sent;
            p.stats.rejected += stats.rejected;
        }
        let changed = !stats.docs_changed.is_empty();
        if stats.full {
            self.replica.vouch(&peer, false);
        }
        self.event(Event::SessionDone { peer, stats });
        if changed {
            self.announce_local_changes();
        }
        self.session_ended(peer);
        self.continue_queued(peer);
    }

    fn fail(&mut self, peer: NodeId, error: SessionError) {
        tracing::warn!(%peer, %error, "sync session failed");
        let violation = matches!(error, SessionError::Violation(_));
        self.event(Event::SessionFailed {
            peer,
            error: error.clone(),
        });
        if violation {
            self.disconnect(peer, error.to_string());
        } else {
            self.session_ended(peer);
            self.continue_queued(peer);
        }
    }

    /// Queues for fetching from `peer` the documents of `items` (as it
    /// announced or pushed them) whose digest here still differs.
    fn fetch_differing(&mut self, peer: NodeId, items: Vec<(DocId, Digest)>) {
        let wanted: Vec<(DocId, Digest)> = {
            let view = self.replica.view(&peer);
            items
                .into_iter()
                .filter(|(doc, digest)| view.digest(doc) != Some(*digest))
                .collect()
        };
        if !wanted.is_empty() {
            let p = self.peers.entry(peer).or_default();
            p.queued.extend(wanted);
            self.continue_queued(peer);
        }
    }

    fn continue_queued(&mut self, peer: NodeId) {
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        if p.session.is_some() || !p.stats.connected {
            return;
        }
        if std::mem::take(&mut p.full_pending) {
            p.queued.clear();
            let session = Session::full(peer, &self.replica);
            self.start(peer, session);
        } else if !p.queued.is_empty() {
            // Skip what an earlier session already brought here, and leave
            // queued what another peer's session is fetching now.
            let queued = std::mem::take(&mut p.queued);
            let mut docs = Vec::new();
            {
                let view = self.replica.view(&peer);
                for (doc, digest) in queued {
                    if view.digest(&doc) == Some(digest) {
                        continue;
                    }
                    if self.fetching.get(&doc).is_some_and(|from| *from != peer) {
                        p.queued.insert(doc, digest);
                    } else {
                        docs.push(doc);
                    }
                }
            }
            if !docs.is_empty() {
                for doc in &docs {
                    self.fetching.insert(*doc, peer);
                }
                self.start(peer, Session::targeted(peer, docs));
            }
        }
    }

    /// This node was just admitted through `peer`: a full session with it
    /// follows (the charter first), after any session still running. One
    /// begun before the admission (on connecting, as a stranger) is
    /// refused or began without the community's state; its end must not
    /// be the end of the catch-up, and while it runs a `sync` asked now
    /// would otherwise be answered by it (its refusal reaching a command
    /// that asked after the admission).
    fn catch_up_after_joining(&mut self, peer: NodeId) {
        self.announce_local_changes();
        self.peers.entry(peer).or_default().full_pending = true;
        self.continue_queued(peer);
    }

    /// `peer`'s session ended (done, failed or cut off): what it was
    /// fetching is no longer in flight, so announcements of the same
    /// documents by other peers go ahead if they are still needed.
    fn session_ended(&mut self, peer: NodeId) {
        let before = self.fetching.len();
        self.fetching.retain(|_, from| *from != peer);
        if self.fetching.len() == before {
            return;
        }
        let waiting: Vec<NodeId> = self
            .peers
            .iter()
            .filter(|(id, p)| **id != peer && p.session.is_none() && !p.queued.is_empty())
            .map(|(id, _)| *id)
            .collect();
        for other in waiting {
            self.continue_queued(other);
        }
    }

    fn on_response(&mut self, peer: NodeId, token: Token, response: Response) {
        if self.joins.remove(&token).is_some() {
            let event = match response {
                Response::Joined { community } => {
                    self.replica.vouch(&peer, true);
                    self.event(Event::Joined { peer, community });
                    self.catch_up_after_joining(peer);
                    return;
                }
                Response::Refused { reason } => Event::JoinFailed { peer, reason },
                other => Event::JoinFailed {
                    peer,
                    reason: format!("unexpected answer {other:?}"),
                },
            };
            self.event(event);
            return;
        }
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        let Some(mut session) = p.session.take() else {
            return;
        };
        if !session.awaits(token) {
            p.session = Some(session);
            return;
        }
        if let Err(v) = response.check() {
            self.fail(peer, v.into());
            return;
        }
        match session.on_response(token, response, &mut self.replica) {
            Ok(()) => {
                if let Some(p) = self.peers.get_mut(&peer) {
                    for (doc, digest) in session.take_peer_holds() {
                        p.knows(doc, digest);
                    }
                    p.session = Some(session);
                }
                self.step(peer);
            }
            Err(e) => self.fail(peer, e),
        }
    }

    fn on_request(&mut self, peer: NodeId, channel: ChannelId, request: Request) {
        if let Err(v) = request.check() {
            self.disconnect(peer, v.to_string());
            return;
        }
        if !self.within_limits(peer, channel, &request) {
            return;
        }
        if let Request::Join { changes } = request {
            let response = match wire::into_signed(changes, Vec::new()) {
                Err(v) => {
                    self.disconnect(peer, v.to_string());
                    return;
                }
                Ok((signed, _)) => match self.replica.join(&peer, signed) {
                    Ok(community) => {
                        self.event(Event::Admitted { peer });
                        self.announce_local_changes();
                        Response::Joined { community }
                    }
                    Err(reason) => Response::Refused { reason },
                },
            };
            self.outbox.push_back(Io::Respond { channel, response });
            return;
        }
        if let Err(reason) = self.replica.admit(&peer) {
            self.event(Event::Refused {
                peer,
                reason: reason.clone(),
            });
            self.outbox.push_back(Io::Respond {
                channel,
                response: Response::Refused { reason },
            });
            return;
        }
        let response = match self.answer(peer, request) {
            Ok(r) => r,
            Err(Answer::Violation(v)) => {
                self.disconnect(peer, v.to_string());
                return;
            }
            Err(Answer::Local(e)) => {
                tracing::error!(%peer, error = %e, "cannot answer a sync request");
                Response::Refused {
                    reason: "the node could not read its store; try again later".into(),
                }
            }
        };
        self.outbox.push_back(Io::Respond { channel, response });
    }

    /// Takes the request from the peer's budget; answers or disconnects
    /// it (and says so) if it is over.
    fn within_limits(&mut self, peer: NodeId, channel: ChannelId, request: &Request) -> bool {
        let (now, l) = (self.now, self.limits);
        let p = self.peers.entry(peer).or_default();
        let mut verdict = p.requests.take(now, l.burst, l.per_second);
        if verdict == Verdict::Allow && matches!(request, Request::Join { .. }) {
            verdict = p.joins.take(now, l.join_burst, l.joins_per_second);
        }
        match verdict {
            Verdict::Allow => true,
            Verdict::Refuse => {
                tracing::warn!(%peer, kind = request.kind(), "refusing a request over the peer's rate limit");
                self.event(Event::Throttled {
                    peer,
                    kind: request.kind(),
                });
                self.outbox.push_back(Io::Respond {
                    channel,
                    response: Response::Refused {
                        reason: format!("too many {} requests; slow down", request.kind()),
                    },
                });
                false
            }
            Verdict::Disconnect => {
                self.event(Event::Throttled {
                    peer,
                    kind: request.kind(),
                });
                self.disconnect(
                    peer,
                    format!(
                        "kept sending {} requests while refused for flooding",
                        request.kind()
                    ),
                );
                false
            }
        }
    }

    fn answer(&mut self, peer: NodeId, request: Request) -> Result<Response, Answer> {
        if matches!(request, Request::Reconcile { .. }) {
            self.announce_local_changes();
            self.event(Event::Reconciled { peer });
        }
        Ok(match request {
            Request::Reconcile { ranges } => Response::Reconcile {
                results: reconcile::respond(&*self.replica.view(&peer), &ranges),
            },
            Request::GetChanges { docs } => {
                let mut changes: Vec<WireChange> = Vec::new();
                let mut heads = Vec::new();
                let mut unknown = Vec::new();
                let mut truncated = Vec::new();
                let mut erased = Vec::new();
                let mut size = 0usize;
                for DocHeads { doc, heads: have } in docs {
                    if !truncated.is_empty() {
                        truncated.push(doc);
                        continue;
                    }
                    match self.replica.fetch(&peer, &doc, &have)? {
                        None => unknown.push(doc),
                        Some(Fetched::Erased(t)) => erased.push(WireTombstone::from(&t)),
                        Some(Fetched::Changes(found)) => {
                            let bytes: usize = found.iter().map(|c| c.bytes.len() + 160).sum();
                            if !changes.is_empty() && size + bytes > CHANGES_BUDGET {
                                truncated.push(doc);
                                continue;
                            }
                            size += bytes;
                            changes.extend(found.iter().map(WireChange::from));
                            heads.push(DocHeads {
                                doc,
                                heads: self.replica.heads(&doc)?,
                            });
                        }
                    }
                }
                Response::Changes {
                    changes,
                    heads,
                    unknown,
                    truncated,
                    erased,
                }
            }
            Request::PutChanges { changes, erased } => {
                let (signed, erased) =
                    wire::into_signed(changes, erased).map_err(Answer::Violation)?;
                let report = self.replica.apply(&peer, signed, erased)?;
                if let Some(p) = self.peers.get_mut(&peer) {
                    p.stats.changes_in += report.applied;
                    p.stats.rejected += report.rejected.len();
                }
                self.event(Event::Received {
                    peer,
                    applied: report.applied,
                    rejected: report.rejected.len(),
                });
                if !report.changed.is_empty() || !report.erased.is_empty() {
                    self.announce_local_changes();
                }
                Response::Applied {
                    applied: report.applied as u32,
                    already_had: report.already_had as u32,
                    rejected: report.rejected.len() as u32,
                }
            }
            Request::Join { .. } => {
                return Err(Answer::Violation(Violation(
                    "a join request out of place".into(),
                )));
            }
            Request::Push {
                items,
                changes,
                seen_by,
            } => self.on_push(peer, items, changes, seen_by)?,
            Request::Announce { items } => {
                let p = self.peers.entry(peer).or_default();
                for (doc, digest) in &items {
                    p.knows(*doc, *digest);
                }
                self.fetch_differing(peer, items);
                Response::Ack
            }
        })
    }

    /// Tells every connected peer about documents that changed here: with
    /// the changes themselves when they are small (a push: the peer need
    /// not ask), otherwise as an announcement it fetches after. Each peer
    /// hears only of what it may see (not even the ids of the rest), and
    /// not of what it is known to have; a push names every node this one
    /// is sending it to (and those its pusher named), so that in a
    /// well-connected community the receivers do not pass it on to each
    /// other.
    fn announce_local_changes(&mut self) {
        let changed = match self.replica.refresh() {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "cannot read local changes");
                return;
            }
        };
        if changed.is_empty() {
            return;
        }
        let peers: Vec<NodeId> = self
            .peers
            .iter()
            .filter(|(_, p)| p.stats.connected)
            .map(|(id, _)| *id)
            .collect();
        // Who hears of what, and so who will have each document.
        let mut news: Vec<(NodeId, Vec<(DocId, Digest)>)> = Vec::new();
        let mut seen: HashMap<DocId, Vec<PeerTag>> = HashMap::new();
        for peer in peers {
            let visible: Vec<(DocId, Digest)> = {
                let known = self.peers.get(&peer).map(|p| &p.known);
                let news: Vec<&(DocId, Digest)> = changed
                    .iter()
                    .filter(|(doc, digest)| known.and_then(|k| k.get(doc)) != Some(digest))
                    .collect();
                // A peer that has it all (it pushed it, or was named by
                // the pusher) needs no view worked out: in a full mesh
                // that is every peer of a node passing news on.
                if news.is_empty() {
                    continue;
                }
                let view = self.replica.view(&peer);
                news.into_iter()
                    .filter(|(doc, _)| view.digest(doc).is_some())
                    .copied()
                    .collect()
            };
            if visible.is_empty() {
                continue;
            }
            if let Some(p) = self.peers.get_mut(&peer) {
                for (doc, digest) in &visible {
                    p.knows(*doc, *digest);
                }
            }
            let tag = wire::peer_tag(&peer.peer_id());
            for (doc, _) in &visible {
                seen.entry(*doc).or_default().push(tag);
            }
            news.push((peer, visible));
        }
        // Those the pusher of a document named have it too.
        for (doc, digest) in &changed {
            if let Some((pushed, tags)) = self.relay_seen.remove(doc)
                && pushed == *digest
            {
                seen.entry(*doc).or_default().extend(tags);
            }
        }
        let mut fresh: HashMap<DocId, Option<Vec<WireChange>>> = HashMap::new();
        for (peer, visible) in news {
            let own = wire::peer_tag(&peer.peer_id());
            let (mut pushed, mut changes, mut told) = (Vec::new(), Vec::new(), Vec::new());
            let mut size = 0;
            for (doc, digest) in visible {
                let found = fresh
                    .entry(doc)
                    .or_insert_with(|| {
                        self.replica
                            .fresh_changes(&doc, PUSH_BUDGET)
                            .filter(|c| !c.is_empty())
                            .map(|c| c.iter().map(WireChange::from).collect())
                    })
                    .as_ref();
                match found {
                    Some(c)
                        if size + c.iter().map(|c| c.bytes.len()).sum::<usize>() <= PUSH_BUDGET
                            && changes.len() + c.len() <= MAX_PUSH_CHANGES
                            && pushed.len() < MAX_ANNOUNCE =>
                    {
                        size += c.iter().map(|c| c.bytes.len()).sum::<usize>();
                        changes.extend(c.iter().cloned());
                        pushed.push((doc, digest));
                    }
                    _ => told.push((doc, digest)),
                }
            }
            if !pushed.is_empty() {
                let mut seen_by: Vec<PeerTag> = Vec::new();
                for (doc, _) in &pushed {
                    for tag in seen.get(doc).into_iter().flatten() {
                        if *tag != own && !seen_by.contains(tag) && seen_by.len() < MAX_SEEN_BY {
                            seen_by.push(*tag);
                        }
                    }
                }
                let token = self.next_token;
                self.next_token += 1;
                self.outbox.push_back(Io::Send {
                    peer,
                    token,
                    request: Request::Push {
                        items: pushed,
                        changes,
                        seen_by,
                    },
                });
            }
            for chunk in told.chunks(MAX_ANNOUNCE) {
                let token = self.next_token;
                self.next_token += 1;
                self.outbox.push_back(Io::Send {
                    peer,
                    token,
                    request: Request::Announce {
                        items: chunk.to_vec(),
                    },
                });
            }
        }
    }

    /// A peer pushed news: remember who has it, store the changes (every
    /// one verified, as any received change), fetch what is still missing
    /// (its digest differs, e.g. the push lacked earlier changes this node
    /// never had), and pass it on to peers that have not been sent it.
    fn on_push(
        &mut self,
        peer: NodeId,
        items: Vec<(DocId, Digest)>,
        changes: Vec<WireChange>,
        seen_by: Vec<PeerTag>,
    ) -> Result<Response, Answer> {
        // A lying pusher can only make this node skip passing the news to
        // a peer, which then gets it at its next full session.
        let named: Vec<NodeId> = self
            .peers
            .iter()
            .filter(|(id, p)| p.stats.connected && seen_by.contains(&wire::peer_tag(&id.peer_id())))
            .map(|(id, _)| *id)
            .collect();
        for node in named.iter().chain([&peer]) {
            let p = self.peers.entry(*node).or_default();
            for (doc, digest) in &items {
                p.knows(*doc, *digest);
            }
        }
        if self.relay_seen.len() >= MAX_KNOWN {
            self.relay_seen.clear();
        }
        let mut tags = seen_by;
        tags.push(wire::peer_tag(&peer.peer_id()));
        for (doc, digest) in &items {
            self.relay_seen.insert(*doc, (*digest, tags.clone()));
        }
        let mut report = ApplyReport::default();
        if !changes.is_empty() {
            let (signed, _) = wire::into_signed(changes, Vec::new()).map_err(Answer::Violation)?;
            report = self.replica.apply(&peer, signed, Vec::new())?;
            if let Some(p) = self.peers.get_mut(&peer) {
                p.stats.changes_in += report.applied;
                p.stats.rejected += report.rejected.len();
            }
            self.event(Event::Received {
                peer,
                applied: report.applied,
                rejected: report.rejected.len(),
            });
        }
        if !report.changed.is_empty() {
            self.announce_local_changes();
        }
        self.fetch_differing(peer, items);
        Ok(Response::Applied {
            applied: report.applied as u32,
            already_had: report.already_had as u32,
            rejected: report.rejected.len() as u32,
        })
    }
}

enum Answer {
    Violation(Violation),
    Local(ReplicaError),
}

impl From<ReplicaError> for Answer {
    fn from(e: ReplicaError) -> Self {
        Answer::Local(e)
    }
}

#[cfg(test)]
mod tests {
    use super::{Known, MAX_KNOWN};

    fn doc(i: usize) -> [u8; 16] {
        let mut d = [0; 16];
        d[..8].copy_from_slice(&(i as u64).to_le_bytes());
        d
    }

    #[test]
    fn a_peer_is_always_known_to_hold_what_it_was_last_seen_to_hold() {
        let mut known = Known::default();
        // A catch-up of more documents than one generation holds.
        let n = 2 * MAX_KNOWN + 100;
        for i in 0..n {
            known.insert(doc(i), [i as u8; 32]);
        }
        for i in n - MAX_KNOWN..n {
            assert_eq!(known.get(&doc(i)), Some(&[i as u8; 32]), "document {i}");
        }
        // Memory stays bounded: the oldest are forgotten.
        assert!(known.newer.len() + known.older.len() <= 2 * MAX_KNOWN);
        assert_eq!(known.get(&doc(0)), None);
        // A later digest of the same document wins.
        known.insert(doc(n - 1), [7; 32]);
        assert_eq!(known.get(&doc(n - 1)), Some(&[7; 32]));
    }
}
