//! A deterministic in-process network for the sync state machine: real
//! nodes (SQLite stores in temporary directories, real signatures), no
//! sockets, every message encoded and decoded as on the wire. Optional
//! faults (loss, duplication, reordering) come from a seeded generator, so
//! every run of a seed is the same.

#![allow(dead_code)]

use std::collections::{BTreeSet, HashMap, VecDeque};

use convene_model::{Body, DocumentId, EntryInput, Learning};
use convene_node::sync::wire::{self, Request, Response};
use convene_node::sync::{Event, Input, Io, NodeReplica, Service};
use convene_node::{InitOptions, Node, NodeId};

/// Message faults, decided by a seeded xorshift generator.
pub struct Faults {
    state: u64,
    /// Chance (per mille) that a message is lost (its requester sees a
    /// failed request, as a timeout would give it).
    pub loss: u64,
    /// Chance (per mille) that a request is delivered twice.
    pub duplicate: u64,
    /// Chance (per mille) that a message is put at the back of the queue.
    pub reorder: u64,
}

impl Faults {
    pub fn new(seed: u64, loss: u64, duplicate: u64, reorder: u64) -> Self {
        Self {
            state: seed.max(1),
            loss,
            duplicate,
            reorder,
        }
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.state = x;
        x
    }

    fn roll(&mut self, per_mille: u64) -> bool {
        self.next() % 1000 < per_mille
    }
}

/// A temporary home for a node: in memory where there is a tmpfs (what
/// the simulation tests is sync, not the disk, and waiting for `fsync`
/// would take most of its time), else in the temporary directory.
pub fn home() -> tempfile::TempDir {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(dir) = tempfile::tempdir_in(shm)
    {
        return dir;
    }
    tempfile::tempdir().unwrap()
}

pub struct SimNode {
    pub service: Service<NodeReplica>,
    pub _dir: tempfile::TempDir,
}

pub enum Msg {
    Request {
        from: usize,
        to: usize,
        token: u64,
        bytes: Vec<u8>,
    },
    Response {
        from: usize,
        to: usize,
        token: u64,
        bytes: Vec<u8>,
    },
}

impl Msg {
    /// (sender, receiver)
    pub fn ends(&self) -> (usize, usize) {
        match self {
            Msg::Request { from, to, .. } | Msg::Response { from, to, .. } => (*from, *to),
        }
    }

    /// The node waiting for this message's exchange to end, and its token.
    pub fn requester(&self) -> (usize, u64) {
        match self {
            Msg::Request { from, token, .. } => (*from, *token),
            Msg::Response { to, token, .. } => (*to, *token),
        }
    }

    pub fn is_request(&self) -> bool {
        matches!(self, Msg::Request { .. })
    }
}

/// A network of nodes with explicit links.
pub struct Net {
    pub nodes: Vec<SimNode>,
    pub ids: Vec<NodeId>,
    pub links: BTreeSet<(usize, usize)>,
    /// (dialler, other end) of every link.
    pub dialled: BTreeSet<(usize, usize)>,
    pub queue: VecDeque<Msg>,
    /// (responder, channel) → (requester, token)
    pub channels: HashMap<(usize, u64), (usize, u64)>,
    pub next_channel: u64,
    pub bytes: usize,
    pub messages: usize,
    pub events: Vec<(usize, Event)>,
    pub disconnects: Vec<(usize, NodeId, String)>,
    pub now: i64,
    /// Message faults, when the test wants them.
    pub faults: Option<Faults>,
}

impl Net {
    pub fn new() -> Self {
        Self {
            nodes: Vec::new(),
            ids: Vec::new(),
            links: BTreeSet::new(),
            dialled: BTreeSet::new(),
            queue: VecDeque::new(),
            channels: HashMap::new(),
            next_channel: 1,
            bytes: 0,
            messages: 0,
            events: Vec::new(),
            disconnects: Vec::new(),
            now: 1_700_000_000_000,
            faults: None,
        }
    }

    pub fn add(&mut self, org: &str) -> usize {
        let dir = home();
        let node = Node::init(
            dir.path(),
            &InitOptions {
                org: org.into(),
                sector: "vcse".into(),
                place: None,
            },
        )
        .unwrap();
        self.push(node, dir)
    }

    pub fn add_joining(&mut self, of: usize) -> usize {
        let dir = home();
        let org = self.node(of).org();
        let node = Node::init_joining(dir.path(), org).unwrap();
        self.push(node, dir)
    }

    pub fn push(&mut self, node: Node, dir: tempfile::TempDir) -> usize {
        self.ids.push(node.node_id());
        self.nodes.push(SimNode {
            service: Service::new(NodeReplica::new(node).unwrap()),
            _dir: dir,
        });
        self.nodes.len() - 1
    }

    pub fn node(&self, i: usize) -> &Node {
        self.nodes[i].service.replica().node()
    }

    pub fn node_mut(&mut self, i: usize) -> &mut Node {
        self.nodes[i].service.replica_mut().node_mut()
    }

    pub fn index(&self, id: &NodeId) -> usize {
        self.ids.iter().position(|x| x == id).unwrap()
    }

    pub fn input(&mut self, i: usize, input: Input) {
        // Each step takes a little time, as on a network (the per-peer
        // rate limits see a plausible clock).
        self.now += 10;
        self.nodes[i].service.handle(self.now, input);
        self.drain(i);
    }

    /// Connects two nodes; the first dials, so it starts a session.
    pub fn connect(&mut self, a: usize, b: usize) {
        self.links.insert((a.min(b), a.max(b)));
        self.dialled.insert((a, b));
        let (ida, idb) = (self.ids[a], self.ids[b]);
        self.input(a, Input::Connected { peer: idb });
        self.input(b, Input::Connected { peer: ida });
        self.input(a, Input::Sync { peer: idb });
    }

    /// Closes the connection between two nodes, as libp2p does: what was
    /// on its way over it is gone, each side hears that the peer left, and
    /// each request still unanswered on it fails.
    pub fn disconnect(&mut self, a: usize, b: usize) {
        self.links.remove(&(a.min(b), a.max(b)));
        self.dialled.remove(&(a, b));
        self.dialled.remove(&(b, a));
        let (ida, idb) = (self.ids[a], self.ids[b]);
        let mut unanswered = Vec::new();
        self.queue.retain(|msg| {
            let (from, to) = msg.ends();
            if (from, to) != (a, b) && (from, to) != (b, a) {
                return true;
            }
            unanswered.push(msg.requester());
            false
        });
        self.input(a, Input::Disconnected { peer: idb });
        self.input(b, Input::Disconnected { peer: ida });
        for (requester, token) in unanswered {
            let peer = if requester == a { idb } else { ida };
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

    /// Links two nodes without starting a session (a newcomer must join
    /// first).
    pub fn link(&mut self, a: usize, b: usize) {
        self.links.insert((a.min(b), a.max(b)));
        self.dialled.insert((a, b));
        self.input(a, Input::Connected { peer: self.ids[b] });
        self.input(b, Input::Connected { peer: self.ids[a] });
    }

    /// `newcomer` sends its join claim (and profile) to `via`: the
    /// community's name, or the refusal.
    pub fn join(&mut self, newcomer: usize, via: usize) -> Result<String, String> {
        let changes = self.node(newcomer).join_changes().unwrap();
        let peer = self.ids[via];
        self.events.clear();
        self.input(newcomer, Input::Join { peer, changes });
        self.run();
        for (i, e) in &self.events {
            if *i != newcomer {
                continue;
            }
            match e {
                Event::Joined { community, .. } => return Ok(community.clone()),
                Event::JoinFailed { reason, .. } => return Err(reason.clone()),
                _ => {}
            }
        }
        Err("no answer".into())
    }

    /// `a` starts a full sync with `b`; the network runs until quiet.
    pub fn sync(&mut self, a: usize, b: usize) {
        self.input(a, Input::Sync { peer: self.ids[b] });
        self.run();
    }

    /// Joins `newcomer` through `via` (which must admit it) and syncs it.
    pub fn admit(&mut self, newcomer: usize, via: usize) {
        self.link(newcomer, via);
        let name = self.join(newcomer, via).expect("admitted");
        assert!(!name.is_empty());
        self.input(
            newcomer,
            Input::Sync {
                peer: self.ids[via],
            },
        );
        self.run();
    }

    /// The steward invites `newcomer` (a new organisation), which accepts
    /// and joins through it.
    pub fn invite_and_admit(&mut self, newcomer: usize, steward: usize) {
        let code = self
            .node_mut(steward)
            .invite(3_600_000, false, None, vec![])
            .unwrap();
        self.node_mut(newcomer).accept_invite(&code).unwrap();
        self.admit(newcomer, steward);
    }

    pub fn linked(&self, a: usize, b: usize) -> bool {
        self.links.contains(&(a.min(b), a.max(b)))
    }

    pub fn drain(&mut self, i: usize) {
        while let Some(io) = self.nodes[i].service.next_io() {
            match io {
                Io::Send {
                    peer,
                    token,
                    request,
                } => {
                    let to = self.index(&peer);
                    self.queue.push_back(Msg::Request {
                        from: i,
                        to,
                        token,
                        bytes: wire::encode(&request),
                    });
                }
                Io::Respond { channel, response } => {
                    let (to, token) = self.channels.remove(&(i, channel)).unwrap();
                    self.queue.push_back(Msg::Response {
                        from: i,
                        to,
                        token,
                        bytes: wire::encode(&response),
                    });
                }
                Io::Disconnect { peer, reason } => {
                    self.disconnects.push((i, peer, reason));
                    let j = self.index(&peer);
                    self.disconnect(i, j);
                }
                Io::Event(e) => self.events.push((i, e)),
            }
        }
    }

    /// Applies the configured faults to one message: `None` when it is
    /// lost or put back at the end of the queue.
    fn inject_faults(&mut self, msg: Msg) -> Option<Msg> {
        let Some(faults) = self.faults.as_mut() else {
            return Some(msg);
        };
        let (lose, again, later) = (
            faults.roll(faults.loss),
            faults.roll(faults.duplicate),
            faults.roll(faults.reorder),
        );
        if later {
            self.queue.push_back(msg);
            return None;
        }
        if lose {
            self.lose(msg);
            return None;
        }
        if again
            && let Msg::Request {
                from,
                to,
                token,
                bytes,
            } = &msg
        {
            self.queue.push_back(Msg::Request {
                from: *from,
                to: *to,
                token: *token,
                bytes: bytes.clone(),
            });
        }
        Some(msg)
    }

    /// Delivers messages until nothing is left to deliver.
    pub fn run(&mut self) {
        self.run_watching(|_| {});
    }

    /// [`Net::run`], showing `watch` the network after every message.
    #[allow(dead_code)] // not every test binary watches
    pub fn run_watching(&mut self, mut watch: impl FnMut(&Net)) {
        let mut steps = 0;
        loop {
            while !self.queue.is_empty() {
                steps += 1;
                assert!(steps < 100_000, "the network never went quiet");
                if self.deliver_one() {
                    watch(self);
                }
            }
            // Let every node notice local writes (as the daemon's timer does).
            for i in 0..self.nodes.len() {
                self.input(i, Input::Tick);
            }
            if self.queue.is_empty() {
                break;
            }
        }
    }

    /// Loses a message: its requester's request fails, as a timeout would
    /// make it.
    pub fn lose(&mut self, msg: Msg) {
        let (requester, token) = msg.requester();
        let (from, to) = msg.ends();
        let responder = if requester == from { to } else { from };
        let peer = self.ids[responder];
        self.input(
            requester,
            Input::Failed {
                peer,
                token,
                error: "lost".into(),
            },
        );
    }

    /// Loses the next message in the queue (if any); `Some(true)` if it
    /// was a request, `Some(false)` an answer.
    pub fn drop_next(&mut self) -> Option<bool> {
        let msg = self.queue.pop_front()?;
        let request = msg.is_request();
        self.lose(msg);
        Some(request)
    }

    /// Takes the next message off the queue and (faults permitting)
    /// delivers it; whatever the receiver sends back joins the queue.
    /// `false` if nothing was delivered.
    /// Counts a message of `len` bytes from `from` to `to`, if they are
    /// linked (a message on a cut link is gone).
    fn carry(&mut self, from: usize, to: usize, len: usize) -> bool {
        if !self.linked(from, to) {
            return false;
        }
        self.bytes += len;
        self.messages += 1;
        true
    }

    pub fn deliver_one(&mut self) -> bool {
        let Some(msg) = self.queue.pop_front() else {
            return false;
        };
        let Some(msg) = self.inject_faults(msg) else {
            return false;
        };
        match msg {
            Msg::Request {
                from,
                to,
                token,
                bytes,
            } => {
                if !self.carry(from, to, bytes.len()) {
                    return false;
                }
                let request: Request = wire::decode(&bytes).unwrap();
                let channel = self.next_channel;
                self.next_channel += 1;
                self.channels.insert((to, channel), (from, token));
                let peer = self.ids[from];
                self.input(
                    to,
                    Input::Request {
                        peer,
                        channel,
                        request,
                    },
                );
            }
            Msg::Response {
                from,
                to,
                token,
                bytes,
            } => {
                if !self.carry(from, to, bytes.len()) {
                    return false;
                }
                let response: Response = wire::decode(&bytes).unwrap();
                let peer = self.ids[from];
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
        true
    }

    pub fn publish(&mut self, i: usize, title: &str) -> DocumentId {
        self.node_mut(i)
            .publish(EntryInput {
                body: Body::Learning(Learning {
                    title: title.into(),
                    summary: format!("What {title} taught us.").as_str().into(),
                    ..Learning::default()
                }),
                visibility: None,
                status: None,
            })
            .unwrap()
    }

    pub fn catalogue(&self, i: usize) -> Vec<([u8; 16], [u8; 32])> {
        self.nodes[i]
            .service
            .replica()
            .catalogue()
            .iter()
            .map(|(a, b)| (*a, *b))
            .collect()
    }

    pub fn reset_counters(&mut self) {
        self.bytes = 0;
        self.messages = 0;
        self.events.clear();
    }
}
