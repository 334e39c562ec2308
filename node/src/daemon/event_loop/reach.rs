//! Reaching members: the roster the members-only behaviours read, signed
//! address records ([`crate::net::addrs`]), dialling members this node
//! knows of until it has enough connections, reservations on members'
//! relays when this node cannot be dialled, closing the youngest inbound
//! member connections past `network.max_peers` (the rules are
//! [`crate::net::overlay`]'s, which the simulation at scale runs too), and
//! how each member is reached (`direct`, `relayed`, `hole-punched`).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use libp2p::core::ConnectedPoint;
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, InboundRequestId, ResponseChannel};
use libp2p::swarm::ConnectionId;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::{Multiaddr, PeerId, autonat, dcutr, identify, relay};

use super::{EventLoop, MAX_PEER_ROWS, now_ms};
use crate::net::Standing;
use crate::net::addrs::{
    self, AddrsRequest, AddrsResponse, MAX_PUSH, MAX_RECORDS, Record, Scope, dialable,
};
use crate::net::overlay::{self, Candidate, Degree, FRESH_MS, Link, STABLE_MS};
use crate::store::PeerUpdate;
use crate::trust::NodeId;

/// The hop protocol a relay serves (as identify reports it).
const HOP: &str = "/libp2p/circuit/relay/0.2.0/hop";
/// Relays a node that cannot be dialled keeps a reservation on.
pub(super) const RESERVATIONS: usize = 2;
/// How often a node's own record is signed again (its sequence number
/// grows, so members replace the one they hold), and members are asked
/// for theirs again.
const RECORD_REFRESH: Duration = Duration::from_secs(300);
/// How often the daemon looks for members to dial and relays to use.
const REACH_EVERY: Duration = Duration::from_secs(1);
/// A member's record is written to the store at most this often.
const SAVE_EVERY: Duration = Duration::from_secs(10);
/// Waits between dials of a member that could not be reached.
const DIAL_BACKOFF_MIN: Duration = Duration::from_secs(2);
const DIAL_BACKOFF_MAX: Duration = Duration::from_secs(300);
/// Where the daemon records whether it can be reached, for `status` and
/// `doctor`: JSON `{"nat": …, "listening": bool, "relays": [addr…]}`.
pub const META_REACH: &str = "reach";
/// Where the daemon records the number of the last address record it
/// signed, so that a record signed after a restart is numbered above it.
const META_RECORD_SEQ: &str = "addrs.seq";

/// How a member is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    Direct,
    Relayed,
    HolePunched,
}

impl Reach {
    pub fn as_str(self) -> &'static str {
        match self {
            Reach::Direct => "direct",
            Reach::Relayed => "relayed",
            Reach::HolePunched => "hole-punched",
        }
    }
}

/// Whether `addr` goes through a relay.
pub fn is_relayed(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| p == Protocol::P2pCircuit)
}

/// The reachability state the event loop keeps.
#[derive(Debug, Default)]
pub(super) struct ReachState {
    /// Every connection of every peer.
    pub conns: HashMap<PeerId, HashMap<ConnectionId, Conn>>,
    /// When each member's newest record arrived (this node's clock: a
    /// record heard lately means a member probably online).
    pub heard: HashMap<PeerId, Instant>,
    /// Members holding a reservation on this node's relay (never closed
    /// for the upper bound: they are reached through it).
    pub relay_clients: HashSet<PeerId>,
    /// Peers whose direct connection came from a hole punch.
    pub punched: HashSet<PeerId>,
    /// Members' verified records, by signer.
    pub records: HashMap<PeerId, Record>,
    /// This node's own record, and when it was signed.
    pub mine: Option<(Record, Instant)>,
    /// Records newly believed, to pass on to connected members.
    pub fresh: Vec<PeerId>,
    /// The member nodes in the audiences of restricted entries held here,
    /// with the store's state they were worked out at.
    pub audience: Option<((i64, i64), HashSet<PeerId>)>,
    /// When each member's record was last written to the store, and the
    /// records newer than what is written.
    pub saved_at: HashMap<PeerId, Instant>,
    pub unsaved: HashSet<PeerId>,
    /// Members dialled from their records: when to try next, and the wait
    /// after that.
    pub dials: HashMap<PeerId, (Instant, Duration)>,
    /// Connected members that serve as relays, with an address to reach
    /// them directly.
    pub relays: HashMap<PeerId, Multiaddr>,
    /// Reservations asked for or held: relay → listener.
    pub reservations: HashMap<PeerId, libp2p::core::transport::ListenerId>,
    /// When members were last asked for their records, and which of this
    /// node's own records (by `mine_at`) went with the request: kept while
    /// they are connected and for [`RECORD_REFRESH`] after, so a member
    /// that connects again soon is not asked again at once (unless this
    /// node's record changed since). A request that fails is forgotten.
    pub asked: HashMap<PeerId, (Instant, u64)>,
    /// Counts records as they are believed (and this node's own as it is
    /// signed), so that an answer carries only what arrived since the
    /// last answer sent to the same member, not every record again.
    pub clock: u64,
    /// When (by `clock`) each member's record held here arrived.
    pub arrived: HashMap<PeerId, u64>,
    /// When (by `clock`) this node's own record was signed, and the one
    /// last passed on to the members connected.
    pub mine_at: u64,
    pub mine_passed: u64,
    /// Up to when (by `clock`) each member was sent the records held
    /// here, in an answer that was sent.
    pub answered: HashMap<PeerId, u64>,
    /// Answers under way, and what `answered` becomes once each is sent.
    pub answering: HashMap<InboundRequestId, (PeerId, u64)>,
    pub last_look: Option<Instant>,
    /// AutoNAT's view: "public", "private" or "unknown".
    pub nat: &'static str,
    pub written: String,
}

impl ReachState {
    /// The next value of `clock`.
    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    /// Keeps a member's record (checked already), stamped with when it
    /// arrived.
    fn hold(&mut self, r: Record) {
        let at = self.tick();
        self.arrived.insert(r.peer, at);
        self.records.insert(r.peer, r);
    }

    /// Whether `peer` was last asked with this node's current record.
    fn has_mine(&self, peer: &PeerId) -> bool {
        self.asked
            .get(peer)
            .is_some_and(|(_, sent)| *sent >= self.mine_at)
    }
}

/// One connection, as the connection policy sees it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Conn {
    pub relayed: bool,
    /// The peer dialled this node.
    pub inbound: bool,
    pub since: Instant,
}

impl EventLoop {
    /// Keeps the roster the members-only behaviours read equal to the
    /// community's current members' nodes; forgets the records of nodes
    /// that are no longer members.
    pub(super) fn refresh_roster(&mut self) {
        let Some(nodes) = self.service.replica().member_nodes() else {
            return;
        };
        let members: HashSet<PeerId> = nodes
            .into_iter()
            .filter_map(|n| n.parse::<NodeId>().ok())
            .map(|n| n.peer_id())
            .collect();
        if !self.roster.replace(members) {
            return;
        }
        // A member removed (and perhaps admitted again) starts afresh.
        let roster = &self.roster;
        self.reach.answered.retain(|p, _| roster.contains(p));
        self.reach.asked.retain(|p, _| roster.contains(p));
        let gone: Vec<PeerId> = self
            .reach
            .records
            .keys()
            .filter(|p| !self.roster.contains(p))
            .copied()
            .collect();
        let store = self.service.replica().node().store();
        for peer in gone {
            self.reach.records.remove(&peer);
            self.reach.arrived.remove(&peer);
            self.reach.unsaved.remove(&peer);
            self.reach.saved_at.remove(&peer);
            self.reach.heard.remove(&peer);
            self.reach.fresh.retain(|p| *p != peer);
            if let Err(e) = store.forget_address_record(&peer.to_string()) {
                tracing::warn!(error = %e, "cannot forget an address record");
            }
        }
    }

    /// Reads the records kept in the store (checking each again: the file
    /// is input like any other).
    pub(super) fn load_records(&mut self) {
        let store = self.service.replica().node().store();
        let rows = match store.address_records() {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read address records");
                return;
            }
        };
        for (node, bytes) in rows {
            match addrs::open(&bytes) {
                Ok(r) if r.peer.to_string() == node => self.reach.hold(r),
                _ => tracing::warn!(%node, "ignoring a damaged address record"),
            }
        }
    }

    /// This node's current addresses: what it listens on (relayed
    /// addresses included) and what peers confirmed as external.
    fn my_addresses(&self) -> Vec<Multiaddr> {
        let mut out: Vec<Multiaddr> = Vec::new();
        for a in self
            .listen_addrs
            .iter()
            .chain(self.swarm.external_addresses())
        {
            if crate::net::guard::ip_of(a).is_some_and(|ip| ip.is_unspecified()) {
                continue;
            }
            if !out.contains(a) {
                out.push(a.clone());
            }
        }
        // Direct addresses first: a record keeps the first few.
        out.sort_by_key(is_relayed);
        out
    }

    /// Signs this node's record again when its addresses changed or it is
    /// getting old (`mine_at` says when it last was).
    fn refresh_my_record(&mut self) {
        let addresses = self.my_addresses();
        // Nothing to dial (a `sync --once`, a node behind NAT before its
        // first relay slot): no record, which would only replace a
        // dialable one of this node's (its daemon's) at every member.
        if addresses.is_empty() {
            return;
        }
        let fresh = self.reach.mine.as_ref().is_some_and(|(r, at)| {
            r.addresses == addresses[..addresses.len().min(addrs::MAX_ADDRESSES)]
                && at.elapsed() < RECORD_REFRESH
        });
        if fresh {
            return;
        }
        let key = self.service.replica().node().identity().libp2p_keypair();
        let store = self.service.replica().node().store();
        let after = match &self.reach.mine {
            Some((r, _)) => Some(r.seq),
            // The first record since the daemon started: above the last
            // one it signed before (which may have been numbered past the
            // clock, or the clock may have gone back since).
            None => store
                .meta(META_RECORD_SEQ)
                .ok()
                .flatten()
                .and_then(|s| s.parse::<u64>().ok())
                // No clock gives such a number (and members keep at most
                // i64::MAX): a damaged value, which no member was sent.
                .filter(|seq| *seq < i64::MAX as u64),
        };
        if let Some(r) = addrs::seal(&key, &addresses, after) {
            if let Err(e) = store.set_meta(META_RECORD_SEQ, &r.seq.to_string()) {
                tracing::warn!(error = %e, "cannot record the address record's number");
            }
            tracing::debug!(seq = r.seq, addresses = ?r.addresses, "signed this node's address record");
            self.reach.mine = Some((r, Instant::now()));
            self.reach.mine_at = self.reach.tick();
        }
    }

    /// Whether `peer` was asked for its records within [`RECORD_REFRESH`],
    /// with this node's current record (it is asked when it connects only
    /// if not: a member reconnecting soon after costs no records both
    /// ways, and a new address of this node's still goes to it at once).
    pub(super) fn asked_lately(&mut self, peer: &PeerId) -> bool {
        self.refresh_my_record();
        self.reach.has_mine(peer) && self.reach.asked[peer].0.elapsed() <= RECORD_REFRESH
    }

    /// Asks a member for the records it holds, sending ours and `pass`
    /// (records of others to pass on).
    pub(super) fn ask_records(&mut self, peer: PeerId) {
        self.ask_records_passing(peer, &[]);
    }

    fn ask_records_passing(&mut self, peer: PeerId, pass: &[Vec<u8>]) {
        if !self.roster.contains(&peer) {
            return;
        }
        self.refresh_my_record();
        let mut records: Vec<Vec<u8>> = self
            .reach
            .mine
            .as_ref()
            .map(|(r, _)| r.bytes.clone())
            .into_iter()
            .collect();
        records.extend(pass.iter().take(MAX_PUSH).cloned());
        self.reach
            .asked
            .insert(peer, (Instant::now(), self.reach.mine_at));
        self.swarm
            .behaviour_mut()
            .addrs
            .send_request(&peer, AddrsRequest { records });
    }

    /// Passes records newly believed (and this node's own, when it
    /// changed) on to every connected member, [`MAX_PUSH`] at a time.
    fn pass_on(&mut self, mine_changed: bool) {
        if self.reach.fresh.is_empty() && !mine_changed {
            return;
        }
        let take = self.reach.fresh.len().min(MAX_PUSH);
        let batch: Vec<PeerId> = self.reach.fresh.drain(..take).collect();
        let members: Vec<PeerId> = self
            .standing
            .iter()
            .filter(|(p, s)| **s == Standing::Member && self.roster.contains(p))
            .map(|(p, _)| *p)
            .collect();
        for peer in members {
            let pass: Vec<Vec<u8>> = batch
                .iter()
                .filter(|p| **p != peer)
                .filter_map(|p| self.reach.records.get(p))
                .map(|r| r.bytes.clone())
                .collect();
            // Nothing new for this member (only its own record was, and it
            // has this node's): no request, which its answer would cost.
            if pass.is_empty() && (!mine_changed || self.reach.has_mine(&peer)) {
                continue;
            }
            self.ask_records_passing(peer, &pass);
        }
    }

    /// Believes a record if it is signed by a current member (not this
    /// node) and newer than the one held; keeps it in the store and queues
    /// it to be passed on.
    fn accept_record(&mut self, r: Record) {
        if r.peer == *self.swarm.local_peer_id() || !self.roster.contains(&r.peer) {
            return;
        }
        if self
            .reach
            .records
            .get(&r.peer)
            .is_some_and(|old| old.seq >= r.seq)
        {
            return;
        }
        if !self.reach.records.contains_key(&r.peer) && self.reach.records.len() >= MAX_PEER_ROWS {
            return;
        }
        if !self.reach.fresh.contains(&r.peer) {
            self.reach.fresh.push(r.peer);
        }
        // New addresses are worth a try at once.
        self.reach.dials.remove(&r.peer);
        self.reach.heard.insert(r.peer, Instant::now());
        tracing::debug!(peer = %r.peer, seq = r.seq, addresses = ?r.addresses, "a member's address record");
        let peer = r.peer;
        self.reach.hold(r);
        // Written at most once per member every `SAVE_EVERY` (a member
        // that re-signs its record in a loop costs memory it already has,
        // not a disk write each time); the rest at a later tick.
        if self
            .reach
            .saved_at
            .get(&peer)
            .is_none_or(|at| at.elapsed() >= SAVE_EVERY)
        {
            self.save_record(peer);
        } else {
            self.reach.unsaved.insert(peer);
        }
    }

    fn save_record(&mut self, peer: PeerId) {
        self.reach.unsaved.remove(&peer);
        let Some(r) = self.reach.records.get(&peer) else {
            return;
        };
        let store = self.service.replica().node().store();
        if let Err(e) = store.put_address_record(&peer.to_string(), r.seq, &r.bytes, now_ms()) {
            tracing::warn!(error = %e, "cannot keep an address record");
        }
        if self.reach.saved_at.insert(peer, Instant::now()).is_none() {
            let _ = store.prune_address_records(MAX_PEER_ROWS);
        }
    }

    /// Writes records held back by [`SAVE_EVERY`] once their time came.
    fn save_due_records(&mut self) {
        let due: Vec<PeerId> = self
            .reach
            .unsaved
            .iter()
            .filter(|p| {
                self.reach
                    .saved_at
                    .get(p)
                    .is_none_or(|at| at.elapsed() >= SAVE_EVERY)
            })
            .copied()
            .collect();
        for peer in due {
            self.save_record(peer);
        }
    }

    pub(super) fn on_addrs(&mut self, event: request_response::Event<AddrsRequest, AddrsResponse>) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request_id,
                    request,
                    channel,
                } => self.answer_records(peer, request_id, request, channel),
                request_response::Message::Response { response, .. } => {
                    if !self.roster.contains(&peer) {
                        return;
                    }
                    self.take_records(peer, &response.records, MAX_RECORDS);
                }
            },
            request_response::Event::OutboundFailure { peer, error, .. } => {
                // Not answered: asked again when it next connects.
                self.reach.asked.remove(&peer);
                if let request_response::OutboundFailure::Io(e) = &error
                    && e.kind() == std::io::ErrorKind::InvalidData
                {
                    tracing::warn!(%peer, error = %e, "peer sent an undecodable address answer; banning it");
                    self.ban(peer);
                }
            }
            request_response::Event::ResponseSent {
                peer, request_id, ..
            } => {
                if let Some((to, upto)) = self.reach.answering.remove(&request_id)
                    && to == peer
                {
                    let at = self.reach.answered.entry(peer).or_default();
                    *at = (*at).max(upto);
                }
            }
            request_response::Event::InboundFailure { request_id, .. } => {
                self.reach.answering.remove(&request_id);
            }
        }
    }

    /// Opens and believes up to `limit` records a member sent; a record
    /// that does not hold bans the member (members pass on only records
    /// they checked). Whether the member is still in good standing.
    fn take_records(&mut self, peer: PeerId, records: &[Vec<u8>], limit: usize) -> bool {
        for bytes in records.iter().take(limit) {
            match addrs::open(bytes) {
                Ok(r) => self.accept_record(r),
                Err(e) => {
                    tracing::warn!(%peer, error = %e, "a member passed on a record that does not hold; banning it");
                    self.ban(peer);
                    return false;
                }
            }
        }
        true
    }

    /// Answers a member with this node's record and those it holds that
    /// arrived since the last answer this node sent it (all of them the
    /// first time, or after a restart); anyone else with nothing.
    fn answer_records(
        &mut self,
        peer: PeerId,
        request_id: InboundRequestId,
        request: AddrsRequest,
        channel: ResponseChannel<AddrsResponse>,
    ) {
        let member =
            self.roster.contains(&peer) && self.standing.get(&peer) == Some(&Standing::Member);
        let mut records = Vec::new();
        if member {
            if !self.take_records(peer, &request.records, MAX_PUSH + 1) {
                return;
            }
            self.refresh_my_record();
            let since = self.reach.answered.get(&peer).copied().unwrap_or(0);
            if let Some((r, _)) = &self.reach.mine
                && self.reach.mine_at > since
            {
                records.push(r.bytes.clone());
            }
            let arrived = &self.reach.arrived;
            let mut news: Vec<(u64, &Record)> = self
                .reach
                .records
                .values()
                .filter(|r| r.peer != peer)
                .map(|r| (arrived.get(&r.peer).copied().unwrap_or(u64::MAX), r))
                .filter(|(at, _)| *at > since)
                .collect();
            // Oldest first: what is left out for room goes in the next
            // answer, which starts where this one stopped.
            news.sort_unstable_by_key(|(at, _)| *at);
            let room = MAX_RECORDS - 1;
            let upto = if news.len() > room {
                news[room - 1].0.min(self.reach.clock)
            } else {
                self.reach.clock
            };
            self.reach.answering.insert(request_id, (peer, upto));
            records.extend(news.iter().take(room).map(|(_, r)| r.bytes.clone()));
        }
        let _ = self
            .swarm
            .behaviour_mut()
            .addrs
            .send_response(channel, AddrsResponse { records });
    }

    /// Notes a new connection and how it goes.
    pub(super) fn connection_opened(
        &mut self,
        peer: PeerId,
        id: ConnectionId,
        endpoint: &ConnectedPoint,
    ) {
        let relayed = match endpoint {
            ConnectedPoint::Dialer { address, .. } => is_relayed(address),
            ConnectedPoint::Listener { local_addr, .. } => is_relayed(local_addr),
        };
        let conn = Conn {
            relayed,
            inbound: !endpoint.is_dialer(),
            since: Instant::now(),
        };
        self.reach.conns.entry(peer).or_default().insert(id, conn);
    }

    /// Notes a closed connection; returns whether it was stable (lasted
    /// [`STABLE_MS`]). Only a stable connection resets its member's dial
    /// backoff: one closed sooner (e.g. by a member past its `max_peers`,
    /// which would close it again) is dialled again after a wait that
    /// doubles each time.
    pub(super) fn connection_closed(&mut self, peer: PeerId, id: ConnectionId) -> bool {
        let mut stable = false;
        if let Some(c) = self.reach.conns.get_mut(&peer) {
            stable = c
                .remove(&id)
                .is_some_and(|c| c.since.elapsed() >= Duration::from_millis(STABLE_MS as u64));
            if c.is_empty() {
                self.reach.conns.remove(&peer);
                self.reach.punched.remove(&peer);
                self.reach.relays.remove(&peer);
                self.reach.relay_clients.remove(&peer);
                if stable {
                    self.reach.dials.remove(&peer);
                }
                return stable;
            }
        }
        self.record_reach(peer);
        stable
    }

    /// Whether this node dialled one of its connections to `peer`.
    pub(super) fn dialled_by_us(&self, peer: &PeerId) -> bool {
        self.reach
            .conns
            .get(peer)
            .is_some_and(|c| c.values().any(|c| !c.inbound))
    }

    /// How `peer` is reached now, if it is connected.
    pub(super) fn reach_of(&self, peer: &PeerId) -> Option<Reach> {
        let conns = self.reach.conns.get(peer)?;
        if conns.values().any(|c| !c.relayed) {
            Some(if self.reach.punched.contains(peer) {
                Reach::HolePunched
            } else {
                Reach::Direct
            })
        } else if conns.is_empty() {
            None
        } else {
            Some(Reach::Relayed)
        }
    }

    /// Records how a member is reached (once it is classified).
    pub(super) fn record_reach(&mut self, peer: PeerId) {
        if let Some(reach) = self.reach_of(&peer) {
            self.record_peer(
                &NodeId::from(peer),
                PeerUpdate {
                    reach: Some(reach.as_str()),
                    ..PeerUpdate::default()
                },
            );
        }
    }

    pub(super) fn on_identify(&mut self, event: identify::Event) {
        let identify::Event::Received { peer_id, info, .. } = event else {
            return;
        };
        if !self.roster.contains(&peer_id) {
            return;
        }
        let serves = info.protocols.iter().any(|p| p.as_ref() == HOP);
        let direct = info
            .listen_addrs
            .iter()
            .find(|a| {
                !is_relayed(a) && !crate::net::guard::ip_of(a).is_some_and(|ip| ip.is_unspecified())
            })
            .cloned();
        match (serves, direct) {
            (true, Some(addr)) => {
                self.reach.relays.insert(peer_id, addr);
            }
            _ => {
                self.reach.relays.remove(&peer_id);
            }
        }
    }

    /// Whether this node can be dialled: it listens on something other
    /// than relays.
    fn listens(&self) -> bool {
        !self.config.listen.is_empty()
    }

    /// Runs every [`REACH_EVERY`]: relay reservations, dials of members
    /// from their records, fresh records, the reach summary for `doctor`.
    pub(super) fn reach_tick(&mut self) {
        let now = Instant::now();
        if self
            .reach
            .last_look
            .is_some_and(|t| now.duration_since(t) < REACH_EVERY)
        {
            return;
        }
        self.reach.last_look = Some(now);
        self.refresh_roster();
        if !self.listens() {
            self.reserve_relays();
        }
        self.dial_members(now);
        self.close_surplus();
        self.refresh_my_record();
        // Signed again here or anywhere else (asking, answering, a member
        // connecting) since it was last passed on.
        let mine_changed = self.reach.mine_at > self.reach.mine_passed;
        self.pass_on(mine_changed);
        self.reach.mine_passed = self.reach.mine_at;
        self.save_due_records();
        // A member that went away is not asked again if it comes back
        // within RECORD_REFRESH (its record comes with its own request).
        let conns = &self.reach.conns;
        self.reach.asked.retain(|p, (at, _)| {
            conns.contains_key(p) || now.duration_since(*at) <= RECORD_REFRESH
        });
        let stale: Vec<PeerId> = self
            .reach
            .asked
            .iter()
            .filter(|(p, (at, _))| {
                conns.contains_key(p) && now.duration_since(*at) > RECORD_REFRESH
            })
            .map(|(p, _)| *p)
            .collect();
        // Members not asked yet (one that joined while connected is in
        // the roster only now).
        let unasked = self
            .standing
            .iter()
            .filter(|(p, s)| {
                **s == Standing::Member
                    && self.roster.contains(p)
                    && !self.reach.asked.contains_key(p)
            })
            .map(|(p, _)| *p);
        let ask: Vec<PeerId> = stale.into_iter().chain(unasked).collect();
        for peer in ask {
            self.ask_records(peer);
        }
        self.write_reach();
    }

    /// Keeps reservations on up to [`RESERVATIONS`] connected members'
    /// relays.
    fn reserve_relays(&mut self) {
        self.reach
            .reservations
            .retain(|relay, _| self.reach.conns.contains_key(relay));
        if self.reach.reservations.len() >= RESERVATIONS {
            return;
        }
        let candidates: Vec<(PeerId, Multiaddr)> = self
            .reach
            .relays
            .iter()
            .filter(|(p, _)| !self.reach.reservations.contains_key(p))
            .map(|(p, a)| (*p, a.clone()))
            .collect();
        for (relay, addr) in candidates {
            if self.reach.reservations.len() >= RESERVATIONS {
                break;
            }
            let base = strip_p2p(&addr);
            let circuit = base.with(Protocol::P2p(relay)).with(Protocol::P2pCircuit);
            match self.swarm.listen_on(circuit.clone()) {
                Ok(id) => {
                    tracing::info!(%relay, %circuit, "reserving a slot on a member's relay");
                    self.reach.reservations.insert(relay, id);
                }
                Err(e) => tracing::warn!(%relay, error = %e, "cannot listen through a relay"),
            }
        }
    }

    /// A listener closed: if it was a relay reservation, another is made at
    /// the next look.
    pub(super) fn listener_closed(&mut self, id: libp2p::core::transport::ListenerId) {
        self.reach.reservations.retain(|_, l| *l != id);
    }

    /// The member nodes (not this one) in the audience of any restricted
    /// entry held here: an entry only some organisations may see travels
    /// only between their nodes, so those nodes must be reached directly
    /// (or through a relay), whoever else this node is connected to.
    /// Worked out again only when a change or a tombstone was stored.
    fn audience(&mut self) -> HashSet<PeerId> {
        let store = self.service.replica().node().store();
        let state = match (
            store.catalogue_since(i64::MAX),
            store.tombstones_since(i64::MAX),
        ) {
            (Ok((_, changes)), Ok((_, tombstones))) => Some((changes, tombstones)),
            _ => None,
        };
        if let (Some(state), Some((at, peers))) = (state, &self.reach.audience)
            && *at == state
        {
            return peers.clone();
        }
        let rows = match store.restricted_audiences() {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the audiences of restricted entries");
                return HashSet::new();
            }
        };
        let mut orgs: HashSet<String> = HashSet::new();
        for (owner, visibility) in rows {
            if visibility != "organisation" {
                orgs.extend(visibility.split(',').map(str::to_string));
            }
            orgs.insert(owner);
        }
        let me = *self.swarm.local_peer_id();
        let replica = self.service.replica();
        let peers: HashSet<PeerId> = orgs
            .iter()
            .flat_map(|org| replica.nodes_of(org))
            .filter_map(|n| n.parse::<NodeId>().ok())
            .map(|n| n.peer_id())
            .filter(|p| *p != me)
            .collect();
        if let Some(state) = state {
            self.reach.audience = Some((state, peers.clone()));
        }
        peers
    }

    /// The bounds on member connections (`network.min_peers`,
    /// `network.max_peers`).
    fn degree(&self) -> Degree {
        Degree {
            min: self.config.min_peers,
            max: self.config.max_peers,
        }
    }

    /// Members connected now.
    pub(super) fn members_connected(&self) -> usize {
        self.standing
            .iter()
            .filter(|(p, s)| **s == Standing::Member && self.roster.contains(p))
            .count()
    }

    /// The address scopes this node uses itself: global always; loopback,
    /// private and link-local ones only as its configured listening and
    /// bootstrap addresses and its connections' addresses show (not the
    /// interfaces a `0.0.0.0` listener expands to: nearly every server has
    /// a private one), or all with `network.private_addresses`.
    fn scopes_in_use(&self) -> HashSet<Scope> {
        if self.config.private_addresses {
            return [
                Scope::Global,
                Scope::Private,
                Scope::Loopback,
                Scope::LinkLocal,
            ]
            .into();
        }
        let mut scopes: HashSet<Scope> = self
            .config
            .listen
            .iter()
            .chain(&self.config.bootstrap)
            .chain(self.addresses.values())
            .map(addrs::scope)
            .collect();
        scopes.insert(Scope::Global);
        scopes
    }

    /// Dials members from their records as [`Degree::dials`] orders them:
    /// every member node in the audience of a restricted entry held here,
    /// relays while this node (not listening) wants reservations, then
    /// others (heard from lately first) until `min_peers` members are
    /// connected; each at most once per its backoff.
    fn dial_members(&mut self, now: Instant) {
        let connected = self.members_connected();
        let audience = self.audience();
        let relays = if self.listens() {
            0
        } else {
            RESERVATIONS.saturating_sub(self.reach.reservations.len())
        };
        let me = *self.swarm.local_peer_id();
        let mine = me.to_bytes();
        // A member may name any address in its own record: only those in
        // scopes this node uses count, and a member with none is no
        // candidate.
        let scopes = self.scopes_in_use();
        let mut addresses: HashMap<PeerId, Vec<Multiaddr>> = HashMap::new();
        let mut candidates: Vec<Candidate<PeerId>> = Vec::new();
        for r in self.reach.records.values() {
            if r.peer == me
                || self.swarm.is_connected(&r.peer)
                || self
                    .reach
                    .dials
                    .get(&r.peer)
                    .is_some_and(|(next, _)| *next > now)
            {
                continue;
            }
            let usable: Vec<Multiaddr> = r
                .addresses
                .iter()
                .filter(|a| dialable(a, &scopes))
                .cloned()
                .collect();
            if usable.is_empty() {
                continue;
            }
            candidates.push(Candidate {
                peer: r.peer,
                needed: audience.contains(&r.peer),
                fresh: self.reach.heard.get(&r.peer).is_some_and(|at| {
                    now.duration_since(*at) <= Duration::from_millis(FRESH_MS as u64)
                }),
                relay: usable.iter().any(|a| !is_relayed(a)),
                order: overlay::spread(&mine, &r.peer.to_bytes()),
            });
            addresses.insert(r.peer, usable);
        }
        for peer in self.degree().dials(connected, relays, candidates) {
            let Some(addresses) = addresses.remove(&peer) else {
                continue;
            };
            let backoff = self
                .reach
                .dials
                .get(&peer)
                .map_or(DIAL_BACKOFF_MIN, |(_, b)| (*b * 2).min(DIAL_BACKOFF_MAX));
            self.reach.dials.insert(peer, (now + backoff, backoff));
            let opts = DialOpts::peer_id(peer)
                .addresses(addresses)
                .condition(PeerCondition::DisconnectedAndNotDialing)
                .build();
            if self.swarm.dial(opts).is_ok() {
                tracing::debug!(%peer, "dialling a member from its address record");
            }
        }
    }

    /// Closes the youngest inbound member connections past `max_peers`
    /// ([`Degree::surplus`]), sparing members in a restricted entry's
    /// audience and those reached through this node's relay.
    fn close_surplus(&mut self) {
        let now = Instant::now();
        let audience = self.audience();
        let links: Vec<Link<PeerId>> = self
            .reach
            .conns
            .iter()
            .filter(|(p, _)| {
                self.standing.get(p) == Some(&Standing::Member) && self.roster.contains(p)
            })
            .filter_map(|(peer, conns)| {
                let oldest = conns.values().map(|c| c.since).min()?;
                Some(Link {
                    peer: *peer,
                    inbound: conns.values().all(|c| c.inbound),
                    needed: audience.contains(peer) || self.reach.relay_clients.contains(peer),
                    // Ages on a clock that ends now.
                    since: -(now.duration_since(oldest).as_millis() as i64),
                })
            })
            .collect();
        for peer in self.degree().surplus(0, &links) {
            tracing::info!(%peer, max_peers = self.config.max_peers, "closing a member's connection past network.max_peers");
            self.metrics.closed_for_bound.inc();
            let _ = self.swarm.disconnect_peer_id(peer);
        }
    }

    pub(super) fn on_dcutr(&mut self, event: dcutr::Event) {
        self.metrics.holepunch_attempts.inc();
        match event.result {
            Ok(_) => {
                tracing::info!(peer = %event.remote_peer_id, "hole punch succeeded: connected directly");
                self.metrics.holepunch_successes.inc();
                self.reach.punched.insert(event.remote_peer_id);
                self.record_reach(event.remote_peer_id);
            }
            Err(e) => {
                tracing::debug!(peer = %event.remote_peer_id, error = %e, "hole punch failed; staying relayed");
            }
        }
    }

    pub(super) fn on_relay(&mut self, event: relay::Event) {
        match event {
            relay::Event::ReservationReqAccepted { src_peer_id, .. } => {
                tracing::debug!(peer = %src_peer_id, "a member reserved a slot on this relay");
                self.reach.relay_clients.insert(src_peer_id);
                self.metrics.relay_reservations.inc();
            }
            relay::Event::ReservationTimedOut { src_peer_id } => {
                self.reach.relay_clients.remove(&src_peer_id);
            }
            relay::Event::CircuitReqAccepted {
                src_peer_id,
                dst_peer_id,
            } => {
                tracing::debug!(src = %src_peer_id, dst = %dst_peer_id, "relaying between members");
                self.metrics.relay_circuits.inc();
            }
            relay::Event::CircuitReqDenied {
                src_peer_id,
                dst_peer_id,
                status,
            } => {
                tracing::debug!(src = %src_peer_id, dst = %dst_peer_id, ?status, "refused a circuit");
            }
            _ => {}
        }
    }

    pub(super) fn on_autonat(&mut self, event: autonat::Event) {
        if let autonat::Event::StatusChanged { new, .. } = event {
            self.reach.nat = match new {
                autonat::NatStatus::Public(_) => "public",
                autonat::NatStatus::Private => "private",
                autonat::NatStatus::Unknown => "unknown",
            };
            tracing::info!(nat = self.reach.nat, "reachability from outside changed");
        }
    }

    /// Records whether this node can be reached and through which relays,
    /// when that changes.
    fn write_reach(&mut self) {
        let relays: Vec<String> = self
            .listen_addrs
            .iter()
            .filter(|a| is_relayed(a))
            .map(ToString::to_string)
            .collect();
        let nat = if self.reach.nat.is_empty() {
            "unknown"
        } else {
            self.reach.nat
        };
        let text = serde_json::json!({
            "nat": nat,
            "listening": self.listens(),
            "relays": relays,
            "records": self.reach.records.len(),
            "members_connected": self.members_connected(),
            "min_peers": self.config.min_peers,
            "max_peers": self.config.max_peers,
        })
        .to_string();
        if text == self.reach.written {
            return;
        }
        let store = self.service.replica().node().store();
        match store.set_meta(META_REACH, &text) {
            Ok(()) => self.reach.written = text,
            Err(e) => tracing::warn!(error = %e, "cannot record reachability"),
        }
    }
}

/// `addr` without a trailing `/p2p/…`.
fn strip_p2p(addr: &Multiaddr) -> Multiaddr {
    addr.iter()
        .filter(|p| !matches!(p, Protocol::P2p(_)))
        .collect()
}
