//! A discrete-event simulation of a community: every node runs the real
//! sync state machine ([`Service`]) over an in-memory replica
//! ([`SimReplica`]), and the connection policy the daemon runs
//! ([`Degree`]); the network between them is simulated (latency per node,
//! relayed connections through a server, nodes that come and go).
//!
//! What is modelled, and what is not:
//!
//! - **Nodes.** One node per organisation. A share are servers: always
//!   online, dialable. The rest are laptops behind NAT: online a random
//!   window of each simulated hour, reachable only through a relay slot on
//!   a server they are connected to (as `node start --no-listen`), with no
//!   hole punching (the worst case: every laptop-to-laptop connection is
//!   relayed, one more hop of latency).
//! - **Latency.** Each node has an access latency drawn once (5 to 40 ms);
//!   a message between two nodes takes the sum of theirs, plus twice the
//!   relay's for a relayed connection. A connection takes two round trips
//!   to open; a dial to a laptop that is offline fails after one round
//!   trip to its relay. Bandwidth and CPU time are not modelled (messages
//!   are small; every one is still encoded and decoded as on the wire).
//! - **Address records.** A node knows every member's record (as after
//!   records have spread); which are *fresh* (heard from within
//!   [`FRESH_MS`]) it knows as of the last moment it was connected. A
//!   laptop's new record (on its first connection after coming online)
//!   reaches every online node at once, and clears their dial backoff for
//!   it, as a new record does in the daemon.
//! - **Sync.** Exactly the daemon's: a full session when a connection
//!   opens and every `resync_ms`, both run by the side that dialled;
//!   pushes and announcements to every connected peer on news.
//!
//! Policies: `bounded` (the daemon's [`Degree`]) and `mesh` (every node
//! dials every member it can reach: the announce-to-all mesh Convene had
//! before the bound, the comparison the issue asks for).

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::rc::Rc;
use std::time::Instant;

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ROOT};
use convene_model::DocumentId;
use convene_node::net::overlay::{Candidate, Degree, FRESH_MS, Link, STABLE_MS, spread};
use convene_node::sync::catalogue::Class;
use convene_node::sync::wire::{self, DocId, Hash, Request, Response};
use convene_node::sync::{Event, Input, Io, Service};
use convene_node::{Identity, NodeId, SignedChange};

use super::replica::{Entries, Shared, SimReplica};

/// A small, seeded generator (splitmix64): every run of a seed is the same.
#[derive(Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn word(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.word() % n
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.word() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    Bounded(Degree),
    Mesh,
}

impl Policy {
    pub fn name(&self) -> &'static str {
        match self {
            Policy::Bounded(_) => "bounded",
            Policy::Mesh => "mesh",
        }
    }

    fn degree(&self) -> Degree {
        match self {
            Policy::Bounded(d) => *d,
            Policy::Mesh => Degree {
                min: usize::MAX,
                max: usize::MAX,
            },
        }
    }
}

#[derive(Debug, Clone)]
pub struct Params {
    pub nodes: usize,
    /// Share of nodes that are always-online servers.
    pub servers: f64,
    /// Share of each simulated hour a laptop is online.
    pub online: f64,
    /// How long entries are published for (ms).
    pub duration_ms: i64,
    /// How long the run goes on after that (ms), so that nodes offline
    /// meanwhile come back and catch up (an hour: every laptop's window).
    pub tail_ms: i64,
    /// One publish every this many ms, by a random online node.
    pub publish_every_ms: i64,
    /// Share of new entries visible to a few organisations only.
    pub restricted: f64,
    /// Share of publishes that edit one of the author's earlier entries.
    pub edits: f64,
    /// Full session with every connected peer this often (the daemon's
    /// `resync`).
    pub resync_ms: i64,
    pub policy: Policy,
    pub seed: u64,
}

impl Params {
    pub fn new(nodes: usize, policy: Policy) -> Self {
        Self {
            nodes,
            servers: 0.05,
            online: 0.10,
            duration_ms: HOUR,
            tail_ms: HOUR,
            publish_every_ms: 10_000,
            restricted: 0.3,
            edits: 0.3,
            resync_ms: 60_000,
            policy,
            seed: 1,
        }
    }
}

/// What one run measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    pub policy: &'static str,
    pub nodes: usize,
    pub publishes: usize,
    /// Mean number of nodes online while publishing.
    pub online_mean: f64,
    /// Every sync message (requests and answers), per online node, per
    /// publish, while publishing.
    pub messages_per_node_per_publish: f64,
    /// Those that carry news (push and announce, and their answers).
    pub news_messages_per_node_per_publish: f64,
    /// Every encoded sync byte, per online node, per publish.
    pub bytes_per_node_per_publish: f64,
    /// Most messages one node sent for one publish's news (push and
    /// announce requests), over all publishes and nodes.
    pub max_news_sent_by_one_node: usize,
    /// Time until an online node that may see a publish has it (ms), over
    /// every (publish, node online for 5 s after it) pair.
    pub delay_p50_ms: i64,
    pub delay_p99_ms: i64,
    /// Pairs (publish, online node) still without it after 5 s.
    pub late: usize,
    pub pairs: usize,
    /// Time from coming online until a node that was offline at the
    /// publish has it (ms).
    pub catch_up_p50_ms: i64,
    pub catch_up_p99_ms: i64,
    /// (publish, node) pairs never delivered by the end of the run,
    /// although the node was online after the publish: entries for the
    /// whole community (which servers hold, so none should be), and
    /// restricted ones (which travel only while a node of their audience
    /// that holds them is online at the same time as the node).
    pub never: usize,
    pub never_restricted: usize,
    /// Of those, the pairs where the node was online for at least 10 s
    /// together with a node of the audience that held the entry (a
    /// chance the protocol missed; the rest had none).
    pub never_restricted_missed: usize,
    /// Restricted entries held by a node outside their audience.
    pub leaks: usize,
    /// Changes pushed to a node that may not see them.
    pub refused_unseen: usize,
    /// Member connections per online node (mean, most at once).
    pub degree_mean: f64,
    pub degree_max: usize,
    /// Connections opened, and closed for the upper bound, per online
    /// node per hour, while publishing.
    pub opened_per_node_hour: f64,
    pub trimmed_per_node_hour: f64,
    /// Requests refused or peers dropped by the per-peer rate limits.
    pub throttled: usize,
    pub wall_s: f64,
}

pub const HOUR: i64 = 3_600_000;
/// A laptop's record is issued again this often while it is online.
const RECORD_REFRESH: i64 = 300_000;
const LOOK_MS: i64 = 1_000;
const DIAL_BACKOFF_MIN: i64 = 2_000;
const DIAL_BACKOFF_MAX: i64 = 300_000;
/// The deadline the issue sets for news to reach online nodes.
pub const DEADLINE_MS: i64 = 5_000;
/// Relay slots a laptop keeps (the daemon's `RESERVATIONS`).
const RESERVATIONS: usize = 2;

#[derive(Debug)]
enum Ev {
    Online(usize),
    Offline(usize),
    Look(usize, u64),
    Resync(usize, u64),
    Publish,
    Dialled {
        from: usize,
        to: usize,
        epoch: u64,
        ok: bool,
    },
    Deliver {
        conn: u64,
        from: usize,
        to: usize,
        msg: Msg,
    },
}

#[derive(Debug)]
enum Msg {
    Request { token: u64, bytes: Vec<u8> },
    Response { token: u64, bytes: Vec<u8> },
}

#[derive(Debug)]
struct Scheduled {
    at: i64,
    seq: u64,
    ev: Ev,
}

impl PartialEq for Scheduled {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        Reverse((self.at, self.seq)).cmp(&Reverse((o.at, o.seq)))
    }
}

#[derive(Debug)]
struct Conn {
    id: u64,
    dialer: usize,
    since: i64,
    latency: i64,
}

#[derive(Debug)]
struct SimNode {
    service: Service<SimReplica>,
    identity: Identity,
    server: bool,
    access_ms: i64,
    online: bool,
    epoch: u64,
    peers: HashSet<usize>,
    dialing: HashSet<usize>,
    backoff: HashMap<usize, (i64, i64)>,
    /// Records known as of this time (the last moment it was connected).
    known_at: i64,
    came_online: i64,
    /// Online windows (start, end).
    windows: Vec<(i64, i64)>,
    own: Vec<(DocId, AutoCommit)>,
    /// Other nodes in this node's own order.
    order: Vec<(u64, usize)>,
}

#[derive(Debug)]
struct Publish {
    at: i64,
    doc: DocId,
    author: usize,
    class: Class,
}

#[derive(Debug)]
pub struct Sim {
    p: Params,
    degree: Degree,
    nodes: Vec<SimNode>,
    ids: Vec<NodeId>,
    index: HashMap<NodeId, usize>,
    entries: Shared,
    queue: BinaryHeap<Scheduled>,
    seq: u64,
    now: i64,
    rng: Rng,
    conns: HashMap<(usize, usize), Conn>,
    next_conn: u64,
    /// (responder, channel) → (requester, token, connection)
    channels: HashMap<(usize, u64), (usize, u64, u64)>,
    next_channel: u64,
    /// (requester, token) → (responder, connection)
    pending: HashMap<(usize, u64), (usize, u64)>,
    publishes: Vec<Publish>,
    by_hash: HashMap<Hash, usize>,
    /// (publish, node) → when it arrived.
    arrivals: HashMap<(usize, usize), i64>,
    /// Per publish: news requests sent by each node.
    news_by: HashMap<(usize, usize), usize>,
    current_publish: Option<usize>,
    messages: u64,
    news_messages: u64,
    bytes: u64,
    opened: u64,
    trimmed: u64,
    throttled: usize,
    online_samples: (f64, u64),
    degree_samples: (f64, u64, usize),
}

impl Sim {
    pub fn new(p: Params) -> Self {
        let mut rng = Rng::new(p.seed);
        let identities: Vec<Identity> = (0..p.nodes).map(|_| Identity::generate()).collect();
        let ids: Vec<NodeId> = identities.iter().map(Identity::node_id).collect();
        let orgs: Rc<HashMap<NodeId, String>> = Rc::new(
            ids.iter()
                .enumerate()
                .map(|(i, id)| (*id, format!("org-{i}")))
                .collect(),
        );
        let entries: Shared = Rc::new(RefCell::new(Entries::default()));
        let servers = ((p.nodes as f64 * p.servers).round() as usize).max(1);
        let end = p.duration_ms + p.tail_ms;
        let window = (p.online * HOUR as f64) as i64;
        let mut nodes = Vec::new();
        for (i, identity) in identities.into_iter().enumerate() {
            let server = i < servers;
            let windows = if server {
                vec![(0, i64::MAX)]
            } else {
                (0..=end / HOUR)
                    .map(|h| {
                        let start = h * HOUR + rng.below((HOUR - window) as u64) as i64;
                        (start, start + window)
                    })
                    .collect()
            };
            let me = ids[i].peer_id().to_bytes();
            let mut order: Vec<(u64, usize)> = ids
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(j, id)| (spread(&me, &id.peer_id().to_bytes()), j))
                .collect();
            order.sort_unstable();
            nodes.push(SimNode {
                service: Service::new(SimReplica::new(
                    format!("org-{i}"),
                    orgs.clone(),
                    entries.clone(),
                )),
                identity,
                server,
                access_ms: 5 + rng.below(36) as i64,
                online: false,
                epoch: 0,
                peers: HashSet::new(),
                dialing: HashSet::new(),
                backoff: HashMap::new(),
                known_at: 0,
                came_online: 0,
                windows,
                own: Vec::new(),
                order,
            });
        }
        let index = ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
        let degree = p.policy.degree();
        let mut sim = Self {
            p,
            degree,
            nodes,
            ids,
            index,
            entries,
            queue: BinaryHeap::new(),
            seq: 0,
            now: 0,
            rng,
            conns: HashMap::new(),
            next_conn: 1,
            channels: HashMap::new(),
            next_channel: 1,
            pending: HashMap::new(),
            publishes: Vec::new(),
            by_hash: HashMap::new(),
            arrivals: HashMap::new(),
            news_by: HashMap::new(),
            current_publish: None,
            messages: 0,
            news_messages: 0,
            bytes: 0,
            opened: 0,
            trimmed: 0,
            throttled: 0,
            online_samples: (0.0, 0),
            degree_samples: (0.0, 0, 0),
        };
        for i in 0..sim.nodes.len() {
            let windows = sim.nodes[i].windows.clone();
            for (start, stop) in windows {
                sim.at(start, Ev::Online(i));
                if stop < i64::MAX {
                    sim.at(stop, Ev::Offline(i));
                }
            }
        }
        sim.at(sim.p.publish_every_ms / 2, Ev::Publish);
        sim
    }

    fn at(&mut self, at: i64, ev: Ev) {
        self.seq += 1;
        self.queue.push(Scheduled {
            at,
            seq: self.seq,
            ev,
        });
    }

    /// Runs to the end and reports.
    pub fn run(mut self) -> Report {
        let started = Instant::now();
        let end = self.p.duration_ms + self.p.tail_ms;
        let mut sample_at = 0;
        let mut counted = None;
        while let Some(s) = self.queue.pop() {
            if s.at > end {
                break;
            }
            if s.at >= sample_at {
                self.sample();
                sample_at = s.at + 10_000;
            }
            if s.at > self.p.duration_ms && counted.is_none() {
                counted = Some(self.counters());
            }
            self.now = s.at;
            self.on(s.ev);
        }
        let counted = counted.unwrap_or_else(|| self.counters());
        self.report(counted, started.elapsed().as_secs_f64())
    }

    /// Messages, news messages, bytes, connections opened and trimmed.
    fn counters(&self) -> [u64; 5] {
        [
            self.messages,
            self.news_messages,
            self.bytes,
            self.opened,
            self.trimmed,
        ]
    }

    fn sample(&mut self) {
        if self.now > self.p.duration_ms {
            return;
        }
        let online: Vec<usize> = (0..self.nodes.len())
            .filter(|i| self.nodes[*i].online)
            .collect();
        self.online_samples.0 += online.len() as f64;
        self.online_samples.1 += 1;
        for i in online {
            let d = self.nodes[i].peers.len();
            self.degree_samples.0 += d as f64;
            self.degree_samples.1 += 1;
            self.degree_samples.2 = self.degree_samples.2.max(d);
        }
    }

    fn on(&mut self, ev: Ev) {
        match ev {
            Ev::Online(i) => {
                let n = &mut self.nodes[i];
                n.online = true;
                n.epoch += 1;
                n.came_online = self.now;
                n.backoff.clear();
                let epoch = n.epoch;
                self.at(self.now, Ev::Look(i, epoch));
                let first = self.now + self.p.resync_ms;
                self.at(first, Ev::Resync(i, epoch));
            }
            Ev::Offline(i) => {
                let peers: Vec<usize> = self.nodes[i].peers.iter().copied().collect();
                for j in peers {
                    self.close(i, j, false);
                }
                let n = &mut self.nodes[i];
                n.online = false;
                n.epoch += 1;
                n.dialing.clear();
            }
            Ev::Look(i, epoch) => {
                if self.nodes[i].epoch != epoch {
                    return;
                }
                self.look(i);
                self.at(self.now + LOOK_MS, Ev::Look(i, epoch));
            }
            Ev::Resync(i, epoch) => {
                if self.nodes[i].epoch != epoch {
                    return;
                }
                // As the daemon: the side that dialled runs the session.
                let peers: Vec<usize> = self.nodes[i]
                    .peers
                    .iter()
                    .copied()
                    .filter(|j| self.conns[&(i.min(*j), i.max(*j))].dialer == i)
                    .collect();
                for j in peers {
                    let peer = self.ids[j];
                    self.input(i, Input::Sync { peer });
                }
                self.at(self.now + self.p.resync_ms, Ev::Resync(i, epoch));
            }
            Ev::Publish => {
                if self.now <= self.p.duration_ms {
                    self.publish();
                    self.at(self.now + self.p.publish_every_ms, Ev::Publish);
                }
            }
            Ev::Dialled {
                from,
                to,
                epoch,
                ok,
            } => {
                self.nodes[from].dialing.remove(&to);
                if self.nodes[from].epoch != epoch {
                    return;
                }
                if ok && self.nodes[to].online && !self.nodes[from].peers.contains(&to) {
                    self.open(from, to);
                }
            }
            Ev::Deliver {
                conn,
                from,
                to,
                msg,
            } => {
                let key = (from.min(to), from.max(to));
                if self.conns.get(&key).is_none_or(|c| c.id != conn) {
                    return; // the connection closed; its requests failed then
                }
                let peer = self.ids[from];
                match msg {
                    Msg::Request { token, bytes } => {
                        let request: Request = wire::decode(&bytes).expect("decodes");
                        let channel = self.next_channel;
                        self.next_channel += 1;
                        self.channels.insert((to, channel), (from, token, conn));
                        self.input(
                            to,
                            Input::Request {
                                peer,
                                channel,
                                request,
                            },
                        );
                    }
                    Msg::Response { token, bytes } => {
                        let response: Response = wire::decode(&bytes).expect("decodes");
                        self.pending.remove(&(to, token));
                        self.input(
                            to,
                            Input::Response {
                                peer,
                                token,
                                response,
                            },
                        );
                    }
                }
            }
        }
    }

    /// The time of the newest address record of `j` issued by `v`.
    fn record_time(&self, j: usize, v: i64) -> Option<i64> {
        let n = &self.nodes[j];
        if n.server {
            return Some(v);
        }
        let idx = n.windows.partition_point(|(s, _)| *s <= v);
        let (s, e) = *n.windows.get(idx.checked_sub(1)?)?;
        Some(if v < e {
            s + (v - s) / RECORD_REFRESH * RECORD_REFRESH
        } else {
            s + (e - s - 1) / RECORD_REFRESH * RECORD_REFRESH
        })
    }

    /// One look of node `i`'s connection policy (the daemon's reach tick).
    fn look(&mut self, i: usize) {
        let n = &self.nodes[i];
        let knows = if n.peers.is_empty() {
            n.known_at
        } else {
            self.now
        };
        let audience = n.service.replica().audiences();
        let relays = if n.server {
            0
        } else {
            RESERVATIONS.saturating_sub(n.peers.iter().filter(|j| self.nodes[**j].server).count())
        };
        let needed = |j: usize| audience.contains(&format!("org-{j}"));
        let connected = n.peers.len();
        let unconnected_needed = audience
            .iter()
            .filter_map(|o| o.strip_prefix("org-")?.parse::<usize>().ok())
            .any(|j| j != i && !n.peers.contains(&j));
        if connected >= self.degree.min && !unconnected_needed && relays == 0 {
            // Nothing to dial: look for surplus only.
        } else {
            let candidates: Vec<Candidate<usize>> = n
                .order
                .iter()
                .filter(|(_, j)| !n.peers.contains(j) && !n.dialing.contains(j))
                .filter(|(_, j)| n.backoff.get(j).is_none_or(|(next, _)| *next <= self.now))
                .map(|(order, j)| Candidate {
                    peer: *j,
                    needed: needed(*j),
                    fresh: self
                        .record_time(*j, knows)
                        .is_some_and(|t| self.now - t <= FRESH_MS),
                    relay: self.nodes[*j].server,
                    order: *order,
                })
                .collect();
            for j in self.degree.dials(connected, relays, candidates) {
                self.dial(i, j);
            }
        }
        let links: Vec<Link<usize>> = self.nodes[i]
            .peers
            .iter()
            .map(|j| {
                let c = &self.conns[&(i.min(*j), i.max(*j))];
                Link {
                    peer: *j,
                    inbound: c.dialer != i,
                    needed: needed(*j),
                    since: c.since,
                }
            })
            .collect();
        for j in self.degree.surplus(self.now, &links) {
            self.trimmed += 1;
            self.close(i, j, true);
        }
    }

    fn dial(&mut self, i: usize, j: usize) {
        // As the daemon: each dial doubles the wait before the next one;
        // only a connection that lasted resets it.
        let b = self.nodes[i]
            .backoff
            .get(&j)
            .map_or(DIAL_BACKOFF_MIN, |(_, b)| (*b * 2).min(DIAL_BACKOFF_MAX));
        self.nodes[i].backoff.insert(j, (self.now + b, b));
        let epoch = self.nodes[i].epoch;
        self.nodes[i].dialing.insert(j);
        let target = &self.nodes[j];
        // A laptop is reachable through its relay slot only.
        let reachable =
            target.online && (target.server || target.peers.iter().any(|r| self.nodes[*r].server));
        let rtt = 2 * self.link_latency(i, j);
        let at = if reachable {
            self.now + 2 * rtt
        } else {
            self.now + rtt
        };
        self.at(
            at,
            Ev::Dialled {
                from: i,
                to: j,
                epoch,
                ok: reachable,
            },
        );
    }

    /// One-way latency between two nodes: through a server's relay when
    /// neither is a server.
    fn link_latency(&self, i: usize, j: usize) -> i64 {
        let (a, b) = (&self.nodes[i], &self.nodes[j]);
        let base = a.access_ms + b.access_ms;
        if a.server || b.server {
            base
        } else {
            let relay = b
                .peers
                .iter()
                .find(|r| self.nodes[**r].server)
                .map_or(20, |r| self.nodes[*r].access_ms);
            base + 2 * relay
        }
    }

    fn open(&mut self, a: usize, b: usize) {
        let id = self.next_conn;
        self.next_conn += 1;
        let latency = self.link_latency(a, b);
        self.conns.insert(
            (a.min(b), a.max(b)),
            Conn {
                id,
                dialer: a,
                since: self.now,
                latency,
            },
        );
        self.opened += 1;
        // A laptop's first connection after coming online (its first relay
        // slot) gives it new relayed addresses: its new record spreads,
        // and a node that receives a member's new record may dial it at
        // once (the daemon drops that member's dial backoff).
        for x in [a, b] {
            if !self.nodes[x].server && self.nodes[x].peers.is_empty() {
                for n in self.nodes.iter_mut().filter(|n| n.online) {
                    n.backoff.remove(&x);
                }
            }
        }
        for (x, y) in [(a, b), (b, a)] {
            self.nodes[x].peers.insert(y);
            self.nodes[x].known_at = self.now;
            let peer = self.ids[y];
            self.input(x, Input::Connected { peer });
        }
        let peer = self.ids[b];
        self.input(a, Input::Sync { peer });
    }

    fn close(&mut self, a: usize, b: usize, _trim: bool) {
        let Some(conn) = self.conns.remove(&(a.min(b), a.max(b))) else {
            return;
        };
        let stable = self.now - conn.since >= STABLE_MS;
        for (x, y) in [(a, b), (b, a)] {
            if stable {
                self.nodes[x].backoff.remove(&y);
            }
            self.nodes[x].peers.remove(&y);
            if self.nodes[x].peers.is_empty() {
                self.nodes[x].known_at = self.now;
            }
        }
        let failed: Vec<(usize, u64)> = self
            .pending
            .iter()
            .filter(|(_, (_, c))| *c == conn.id)
            .map(|(k, _)| *k)
            .collect();
        self.channels.retain(|_, (_, _, c)| *c != conn.id);
        for (x, y) in [(a, b), (b, a)] {
            let peer = self.ids[y];
            self.input(x, Input::Disconnected { peer });
        }
        for (requester, token) in failed {
            self.pending.remove(&(requester, token));
            let peer = self.ids[if requester == a { b } else { a }];
            self.input(
                requester,
                Input::Failed {
                    peer,
                    token,
                    error: "the connection closed".into(),
                },
            );
        }
    }

    fn publish(&mut self) {
        let online: Vec<usize> = (0..self.nodes.len())
            .filter(|i| self.nodes[*i].online)
            .collect();
        if online.is_empty() {
            return;
        }
        let author = online[self.rng.below(online.len() as u64) as usize];
        let edit = !self.nodes[author].own.is_empty() && self.rng.chance(self.p.edits);
        let (doc, change) = if edit {
            let k = self.rng.below(self.nodes[author].own.len() as u64) as usize;
            let n = self.publishes.len();
            let (doc, am) = &mut self.nodes[author].own[k];
            am.put(ROOT, "text", format!("edit {n}")).expect("put");
            (*doc, am.get_last_local_change().expect("a change"))
        } else {
            let mut bytes = [0u8; 16];
            bytes[..8].copy_from_slice(&self.rng.word().to_le_bytes());
            bytes[8..].copy_from_slice(&(self.publishes.len() as u64).to_le_bytes());
            let class = if self.rng.chance(self.p.restricted) {
                let mut orgs: std::collections::BTreeSet<String> = [format!("org-{author}")].into();
                for _ in 0..1 + self.rng.below(3) {
                    orgs.insert(format!("org-{}", self.rng.below(self.p.nodes as u64)));
                }
                Class::Only(orgs)
            } else {
                Class::Community
            };
            {
                let mut e = self.entries.borrow_mut();
                e.author
                    .insert(bytes, self.nodes[author].identity.public_bytes());
                e.class.insert(bytes, class);
            }
            let mut am = AutoCommit::new();
            am.put(ROOT, "title", format!("entry {}", self.publishes.len()))
                .expect("put");
            am.put(ROOT, "text", "what we learned ".repeat(20))
                .expect("put");
            let change = am.get_last_local_change().expect("a change");
            self.nodes[author].own.push((bytes, am));
            (bytes, change)
        };
        let signed = SignedChange::sign(
            &self.nodes[author].identity,
            DocumentId::from_bytes(doc),
            &change,
        );
        let class = self.entries.borrow().class[&doc].clone();
        let p = self.publishes.len();
        self.by_hash.insert(signed.hash, p);
        self.publishes.push(Publish {
            at: self.now,
            doc,
            author,
            class,
        });
        self.nodes[author].service.replica_mut().write(signed);
        self.current_publish = Some(p);
        self.input(author, Input::Tick);
    }

    fn input(&mut self, i: usize, input: Input) {
        self.nodes[i].service.handle(self.now, input);
        self.drain(i);
    }

    fn drain(&mut self, i: usize) {
        let arrived = std::mem::take(&mut self.nodes[i].service.replica_mut().arrived);
        for h in arrived {
            if let Some(p) = self.by_hash.get(&h) {
                self.arrivals.entry((*p, i)).or_insert(self.now);
            }
        }
        while let Some(io) = self.nodes[i].service.next_io() {
            match io {
                Io::Send {
                    peer,
                    token,
                    request,
                } => {
                    let j = self.index[&peer];
                    let key = (i.min(j), i.max(j));
                    let Some(conn) = self.conns.get(&key) else {
                        self.nodes[i].service.handle(
                            self.now,
                            Input::Failed {
                                peer,
                                token,
                                error: "not connected".into(),
                            },
                        );
                        continue;
                    };
                    let (id, latency) = (conn.id, conn.latency);
                    if matches!(request, Request::Push { .. } | Request::Announce { .. }) {
                        self.news_messages += 2;
                        if let Some(p) = self.current_publish {
                            *self.news_by.entry((p, i)).or_default() += 1;
                        }
                    }
                    let bytes = wire::encode(&request);
                    self.count(bytes.len());
                    self.pending.insert((i, token), (j, id));
                    self.at(
                        self.now + latency,
                        Ev::Deliver {
                            conn: id,
                            from: i,
                            to: j,
                            msg: Msg::Request { token, bytes },
                        },
                    );
                }
                Io::Respond { channel, response } => {
                    let Some((to, token, conn)) = self.channels.remove(&(i, channel)) else {
                        continue;
                    };
                    let latency = self.conns[&(i.min(to), i.max(to))].latency;
                    let bytes = wire::encode(&response);
                    self.count(bytes.len());
                    self.at(
                        self.now + latency,
                        Ev::Deliver {
                            conn,
                            from: i,
                            to,
                            msg: Msg::Response { token, bytes },
                        },
                    );
                }
                Io::Disconnect { peer, .. } => {
                    let j = self.index[&peer];
                    self.close(i, j, false);
                }
                Io::Event(Event::Throttled { .. }) => self.throttled += 1,
                Io::Event(_) => {}
            }
        }
    }

    fn count(&mut self, bytes: usize) {
        self.messages += 1;
        self.bytes += bytes as u64;
    }

    fn online_at(&self, i: usize, t: i64) -> bool {
        self.nodes[i].windows.iter().any(|(s, e)| *s <= t && t < *e)
    }

    /// The start of `i`'s first online window that begins after `t`.
    fn next_online(&self, i: usize, t: i64) -> Option<i64> {
        self.nodes[i]
            .windows
            .iter()
            .map(|(s, _)| *s)
            .find(|s| *s > t)
    }

    fn report(&self, counted: [u64; 5], wall_s: f64) -> Report {
        let publishes = self.publishes.len().max(1);
        let online_mean = self.online_samples.0 / self.online_samples.1.max(1) as f64;
        let per = |x: u64| x as f64 / publishes as f64 / online_mean.max(1.0);
        let mut delays = Vec::new();
        let mut catch_up = Vec::new();
        let (mut late, mut never, mut never_restricted, mut leaks) = (0, 0, 0, 0);
        let mut never_restricted_missed = 0;
        let end = self.p.duration_ms + self.p.tail_ms;
        for (p, publish) in self.publishes.iter().enumerate() {
            for j in 0..self.nodes.len() {
                let sees = publish.class.visible_to(&[format!("org-{j}")].into());
                let held = self.nodes[j].service.replica().holds(&publish.doc);
                if !sees {
                    leaks += usize::from(held && j != publish.author);
                    continue;
                }
                if j == publish.author {
                    continue;
                }
                let arrived = self.arrivals.get(&(p, j)).copied();
                if self.online_at(j, publish.at) && self.online_at(j, publish.at + DEADLINE_MS) {
                    let d = arrived.map_or(i64::MAX, |a| a - publish.at);
                    late += usize::from(d > DEADLINE_MS);
                    delays.push(d);
                } else if let Some(back) = self.next_online(j, publish.at)
                    && back + DEADLINE_MS < end
                {
                    match arrived {
                        Some(a) => catch_up.push((a - back).max(0)),
                        None if publish.class == Class::Community => {
                            never += 1;
                            catch_up.push(i64::MAX);
                        }
                        None => {
                            never_restricted += 1;
                            if self.had_a_chance(p, j) {
                                never_restricted_missed += 1;
                            }
                        }
                    }
                }
            }
        }
        let refused_unseen = self
            .nodes
            .iter()
            .map(|n| n.service.replica().refused_unseen)
            .sum();
        let hours = self.p.duration_ms as f64 / HOUR as f64;
        Report {
            policy: self.p.policy.name(),
            nodes: self.p.nodes,
            publishes: self.publishes.len(),
            online_mean,
            messages_per_node_per_publish: per(counted[0]),
            news_messages_per_node_per_publish: per(counted[1]),
            bytes_per_node_per_publish: per(counted[2]),
            max_news_sent_by_one_node: self.news_by.values().copied().max().unwrap_or(0),
            delay_p50_ms: percentile(&mut delays, 50.0),
            delay_p99_ms: percentile(&mut delays, 99.0),
            late,
            pairs: delays.len(),
            catch_up_p50_ms: percentile(&mut catch_up, 50.0),
            catch_up_p99_ms: percentile(&mut catch_up, 99.0),
            never,
            never_restricted,
            never_restricted_missed,
            leaks,
            refused_unseen,
            degree_mean: self.degree_samples.0 / self.degree_samples.1.max(1) as f64,
            degree_max: self.degree_samples.2,
            opened_per_node_hour: counted[3] as f64 / online_mean.max(1.0) / hours,
            trimmed_per_node_hour: counted[4] as f64 / online_mean.max(1.0) / hours,
            throttled: self.throttled,
            wall_s,
        }
    }
}

impl Sim {
    /// Whether node `j` was online for at least 10 s together with a node
    /// that held publish `p` by then.
    fn had_a_chance(&self, p: usize, j: usize) -> bool {
        let publish = &self.publishes[p];
        let end = self.p.duration_ms + self.p.tail_ms;
        let holders = (0..self.nodes.len()).filter_map(|h| {
            if h == publish.author {
                Some((h, publish.at))
            } else {
                self.arrivals.get(&(p, h)).map(|a| (h, *a))
            }
        });
        for (h, since) in holders {
            for (hs, he) in &self.nodes[h].windows {
                for (js, je) in &self.nodes[j].windows {
                    let from = (*hs).max(*js).max(since);
                    let to = (*he).min(*je).min(end);
                    if to - from >= 10_000 {
                        return true;
                    }
                }
            }
        }
        false
    }
}

/// The nearest-rank percentile (`i64::MAX`: never).
fn percentile(v: &mut [i64], q: f64) -> i64 {
    if v.is_empty() {
        return 0;
    }
    v.sort_unstable();
    let rank = ((q / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}
