//! The event loop: owns the libp2p `Swarm` and the sync [`Service`], and
//! turns swarm events into service inputs and service outputs into swarm
//! calls. The rest of the program holds a cloneable [`Client`]; the loop
//! ends when every client is dropped.
//!
//! It also decides each connected peer's standing ([`Standing`]): a member
//! of the community, or a peer this node dialled on purpose, is trusted
//! with large frames and many streams; anyone else is a stranger, with
//! small frames, few streams and few connections (see [`crate::net`]),
//! request budgets per address as well as per peer id, and no record on
//! disk. A peer that breaks the protocol is banned for a while, and a
//! stranger's address with it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::core::ConnectedPoint;
use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};
use libp2p::swarm::SwarmEvent;
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::{Multiaddr, PeerId, Swarm, mdns};
use tokio::sync::{mpsc, oneshot};

use super::config::Config;
use super::files::{FileIndex, META_FETCHING, META_WANTED};
use super::metrics::Metrics;
use crate::net::Options;
use crate::net::addrs::AddrsCodec;
use crate::net::members_only::Roster;
use crate::net::relayed::RelayedBytes;
use reach::ReachState;

mod reach;
use crate::blobs::BlobStore;
use crate::blobs::transfer::{Fetcher, FileRequest, FileResponse, Step};
use crate::net::guard::ip_of;
use crate::net::{
    Behaviour, BehaviourEvent, FilesCodec, Gate, Inbound, Standing, SyncCodec, build_swarm,
};
use crate::node::Node;
use crate::store::PeerUpdate;
use crate::sync::limits::{AddressBudgets, AddressLimits, Verdict};
use crate::sync::wire::{Request, Response};
use crate::sync::{
    ChannelId, Event, Input, Io, NodeReplica, Replica, Service, SessionError, SessionProgress,
    SessionStats, Token,
};
use crate::trust::{NodeId, SignedChange};
pub use reach::{META_REACH, Reach, is_relayed};

/// Why the daemon could not start or a command failed.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("cannot set up networking: {0}")]
    Transport(String),
    #[error("cannot listen on {addr}: {reason}")]
    Listen { addr: Multiaddr, reason: String },
    #[error("cannot reach {addr}: {reason}")]
    Unreachable { addr: Multiaddr, reason: String },
    #[error("sync with {peer} failed: {error}")]
    Sync { peer: NodeId, error: SessionError },
    #[error("the daemon has stopped")]
    Stopped,
    #[error("cannot read the node's store: {0}")]
    Store(String),
    #[error("{peer} did not admit this node: {reason}")]
    NotAdmitted { peer: NodeId, reason: String },
}

/// A connected peer, as the daemon sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    pub node: NodeId,
    pub address: Option<Multiaddr>,
}

enum Command {
    ListenAddrs(oneshot::Sender<Vec<Multiaddr>>),
    Dial(Multiaddr, oneshot::Sender<Result<NodeId, DaemonError>>),
    Sync(NodeId, oneshot::Sender<Result<SessionStats, DaemonError>>),
    Peers(oneshot::Sender<Vec<PeerInfo>>),
    Bytes(oneshot::Sender<(u64, u64)>),
    Messages(oneshot::Sender<(u64, u64)>),
    Progress(NodeId, oneshot::Sender<Option<SessionProgress>>),
    Join(
        NodeId,
        Vec<SignedChange>,
        oneshot::Sender<Result<String, DaemonError>>,
    ),
}

/// A handle on a running event loop.
#[derive(Debug, Clone)]
pub struct Client {
    tx: mpsc::Sender<Command>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Command::ListenAddrs(_) => "ListenAddrs",
            Command::Dial(..) => "Dial",
            Command::Sync(..) => "Sync",
            Command::Peers(_) => "Peers",
            Command::Bytes(_) => "Bytes",
            Command::Messages(_) => "Messages",
            Command::Progress(..) => "Progress",
            Command::Join(..) => "Join",
        })
    }
}

impl Client {
    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, DaemonError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(make(tx))
            .await
            .map_err(|_| DaemonError::Stopped)?;
        rx.await.map_err(|_| DaemonError::Stopped)
    }

    /// The addresses the node listens on, once it listens on at least one.
    pub async fn listen_addrs(&self) -> Result<Vec<Multiaddr>, DaemonError> {
        self.ask(Command::ListenAddrs).await
    }

    /// Connects to a peer; returns its node id.
    pub async fn dial(&self, addr: Multiaddr) -> Result<NodeId, DaemonError> {
        self.ask(|tx| Command::Dial(addr, tx)).await?
    }

    /// Runs (or joins) a full sync session with a connected peer and waits
    /// for it to finish.
    pub async fn sync(&self, peer: NodeId) -> Result<SessionStats, DaemonError> {
        self.ask(|tx| Command::Sync(peer, tx)).await?
    }

    pub async fn peers(&self) -> Result<Vec<PeerInfo>, DaemonError> {
        self.ask(Command::Peers).await
    }

    /// Asks a connected member to admit this node; returns the community's
    /// name.
    pub async fn join(
        &self,
        peer: NodeId,
        changes: Vec<SignedChange>,
    ) -> Result<String, DaemonError> {
        self.ask(|tx| Command::Join(peer, changes, tx)).await?
    }

    /// The daemon's counters (what `/metrics` serves).
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// How far the running session with `peer` has got (`None` when no
    /// session runs), for progress bars.
    pub async fn progress(&self, peer: NodeId) -> Result<Option<SessionProgress>, DaemonError> {
        self.ask(|tx| Command::Progress(peer, tx)).await
    }

    /// Sync bytes (sent, received) since start.
    pub async fn bytes(&self) -> Result<(u64, u64), DaemonError> {
        self.ask(Command::Bytes).await
    }

    /// Sync messages (sent, received) since start: requests and responses.
    pub async fn messages(&self) -> Result<(u64, u64), DaemonError> {
        self.ask(Command::Messages).await
    }
}

/// A bootstrap peer: dialled at start and again, with exponential backoff,
/// whenever the connection is lost.
#[derive(Debug)]
struct Bootstrap {
    addr: Multiaddr,
    peer: Option<PeerId>,
    dialing: Option<libp2p::swarm::ConnectionId>,
    connected: bool,
    backoff: Duration,
    next_attempt: Instant,
}

const BACKOFF_MIN: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(60);
const COMMAND_QUEUE: usize = 64;
/// Peers remembered as dialled on purpose (by `dial` or as bootstrap).
const MAX_DIALLED: usize = 1024;
/// Peers kept in the store's peers table at most.
const MAX_PEER_ROWS: usize = 1024;
/// How long a stranger may stay connected without being admitted (a
/// newcomer's join takes a moment; a stranger holding a connection slot
/// for longer is let go).
const STRANGER_GRACE: Duration = Duration::from_secs(120);
/// What a stranger is told, whatever it asked (other than to join).
const NOT_ADMITTED: &str = "not admitted";
/// File requests one peer may have this node working on at once; more
/// are answered `Busy`.
const SERVE_PER_PEER: usize = 8;
/// File requests this node works on at once in all (each holds up to
/// 1 MiB and its proof until sent): 32 MiB at most, however many members
/// ask.
const SERVE_TOTAL: usize = 32;
/// Ticks between looks for files to fetch when nothing prompted one.
const FILES_EVERY: u64 = 10;
/// Ticks after which peers that lacked a file are asked again.
const FILES_RETRY: u64 = 50;
/// Ticks after which a failed download is tried again.
const FILES_FAILED_RETRY: u64 = 300;
/// Downloads started without being asked for, at most at once (the rest
/// wait their turn; each holds a sparse partial file).
const AUTO_DOWNLOADS: usize = 8;

/// A file request answered off the event loop (reading and proving a
/// range is disk work).
struct Served {
    peer: PeerId,
    channel: ResponseChannel<FileResponse>,
    response: FileResponse,
}

struct EventLoop {
    swarm: Swarm<Behaviour>,
    service: Service<NodeReplica>,
    codec: SyncCodec,
    commands: mpsc::Receiver<Command>,
    config: Config,
    /// Inbound requests waiting for the service's answer.
    channels: HashMap<ChannelId, ResponseChannel<Response>>,
    next_channel: ChannelId,
    /// Outbound requests: libp2p id → (peer, service token).
    outbound: HashMap<OutboundRequestId, (NodeId, Token)>,
    /// What each listener listens on (with this node's `/p2p/` suffix).
    listening: Vec<(libp2p::core::transport::ListenerId, Multiaddr)>,
    /// The addresses of `listening`, each once, in the order they came.
    listen_addrs: Vec<Multiaddr>,
    listen_waiters: Vec<oneshot::Sender<Vec<Multiaddr>>>,
    dials: HashMap<
        libp2p::swarm::ConnectionId,
        (Multiaddr, oneshot::Sender<Result<NodeId, DaemonError>>),
    >,
    sync_waiters: BTreeMap<NodeId, Vec<oneshot::Sender<Result<SessionStats, DaemonError>>>>,
    join_waiters: BTreeMap<NodeId, Vec<oneshot::Sender<Result<String, DaemonError>>>>,
    addresses: HashMap<PeerId, Multiaddr>,
    bootstrap: Vec<Bootstrap>,
    metrics: Arc<Metrics>,
    /// When the running session with each peer sent its first request.
    session_started: HashMap<NodeId, Instant>,
    /// Connected peers' standings (the codecs read them from the gate).
    standing: HashMap<PeerId, Standing>,
    /// When each connected stranger connected.
    strangers_since: HashMap<PeerId, Instant>,
    /// Resident memory is over `config.stranger_memory`: strangers are let
    /// go and refused.
    shedding: bool,
    /// Peers this node dialled on purpose: trusted like members (a node
    /// that is not in a community yet trusts the member it joins through).
    dialled: HashSet<PeerId>,
    /// Strangers' request budgets per remote address.
    address_budgets: AddressBudgets<IpAddr>,
    /// Attachment downloads in progress.
    fetcher: Fetcher,
    /// Outbound file requests: libp2p id → the fetcher's token.
    file_requests: HashMap<OutboundRequestId, u64>,
    /// Which entries use which files.
    file_index: FileIndex,
    /// Something may have brought entries (and so files to fetch).
    files_dirty: bool,
    /// The store's `data_version` on this loop's connection when another
    /// process's write was last acted on (see `on_written`).
    seen_version: Option<i64>,
    /// Changes each member pushed (applied, rejected) since the last tick,
    /// not yet in its record.
    received: HashMap<NodeId, (i64, i64)>,
    files_ticks: u64,
    /// Downloads given up, by hash (why), until they are tried again.
    files_failed: HashMap<String, String>,
    /// File requests being answered, per peer.
    serving: HashMap<PeerId, usize>,
    served_tx: mpsc::UnboundedSender<Served>,
    served_rx: mpsc::UnboundedReceiver<Served>,
    /// Downloads whose every group verified, being checked whole and moved
    /// into the store off the loop.
    finishing: HashSet<String>,
    /// The hashes the entries held here use, with the state of the store
    /// they were read at (the last change's sequence number and the last
    /// tombstone's): read again only when either moved, not for every
    /// download that ends.
    referenced: Option<((i64, i64), HashSet<String>)>,
    finished_tx: mpsc::UnboundedSender<(String, Result<(), String>)>,
    finished_rx: mpsc::UnboundedReceiver<(String, Result<(), String>)>,
    /// What was last written under `META_FETCHING`, and its downloads and
    /// their states.
    fetching_written: String,
    fetching_shape: String,
    /// The current members' nodes, read by the members-only behaviours.
    roster: Roster,
    /// Connections, address records, relays (see `reach`).
    reach: ReachState,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Starts the networking of `node` on the current tokio runtime.
pub fn spawn(
    mut node: Node,
    config: Config,
) -> Result<(Client, tokio::task::JoinHandle<()>), DaemonError> {
    let gate = Arc::new(Gate::default());
    let codec = SyncCodec::guarded(gate.clone());
    let files_codec = FilesCodec::default();
    let roster = Roster::default();
    let relayed_bytes = Arc::new(RelayedBytes::default());
    let mut swarm = build_swarm(
        node.identity().libp2p_keypair(),
        gate,
        codec.clone(),
        files_codec.clone(),
        AddrsCodec::default(),
        Options {
            mdns: config.mdns,
            request_timeout: config.request_timeout,
            serve_relay: config.relay && !config.listen.is_empty(),
            roster: roster.clone(),
            only_global_ips: !config.private_addresses,
            relayed_bytes: relayed_bytes.clone(),
        },
    )
    .map_err(|e| DaemonError::Transport(e.to_string()))?;
    for addr in &config.listen {
        swarm
            .listen_on(addr.clone())
            .map_err(|e| DaemonError::Listen {
                addr: addr.clone(),
                reason: innermost(&e),
            })?;
    }
    node.store()
        .disconnect_all_peers()
        .map_err(|e| DaemonError::Store(e.to_string()))?;
    node.store()
        .relax_durability()
        .map_err(|e| DaemonError::Store(e.to_string()))?;
    node.store_mut()
        .checkpoint_in_background()
        .map_err(|e| DaemonError::Store(e.to_string()))?;
    let mut replica = NodeReplica::new(node).map_err(|e| DaemonError::Store(e.to_string()))?;
    forget_strangers(&mut replica);
    let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
    let (served_tx, served_rx) = mpsc::unbounded_channel();
    let (finished_tx, finished_rx) = mpsc::unbounded_channel();
    if let Err(e) = BlobStore::new(replica.node().home()).sweep_temp() {
        tracing::warn!(error = %e, "cannot remove temporary files");
    }
    let metrics = Arc::new(Metrics::new(codec.counters.clone(), relayed_bytes));
    let now = Instant::now();
    let bootstrap = config
        .bootstrap
        .iter()
        .map(|addr| Bootstrap {
            addr: addr.clone(),
            peer: None,
            dialing: None,
            connected: false,
            backoff: BACKOFF_MIN,
            next_attempt: now,
        })
        .collect();
    let mut event_loop = EventLoop {
        swarm,
        service: Service::new(replica),
        codec,
        commands: rx,
        config,
        channels: HashMap::new(),
        next_channel: 1,
        outbound: HashMap::new(),
        listening: Vec::new(),
        listen_addrs: Vec::new(),
        listen_waiters: Vec::new(),
        dials: HashMap::new(),
        sync_waiters: BTreeMap::new(),
        join_waiters: BTreeMap::new(),
        addresses: HashMap::new(),
        bootstrap,
        metrics: metrics.clone(),
        session_started: HashMap::new(),
        standing: HashMap::new(),
        strangers_since: HashMap::new(),
        shedding: false,
        dialled: HashSet::new(),
        address_budgets: AddressBudgets::new(AddressLimits::default()),
        fetcher: Fetcher::new(),
        file_requests: HashMap::new(),
        file_index: FileIndex::default(),
        files_dirty: true,
        seen_version: None,
        received: HashMap::new(),
        files_ticks: 0,
        files_failed: HashMap::new(),
        serving: HashMap::new(),
        served_tx,
        served_rx,
        finishing: HashSet::new(),
        referenced: None,
        finished_tx,
        finished_rx,
        fetching_written: String::new(),
        fetching_shape: String::new(),
        roster,
        reach: ReachState::default(),
    };
    event_loop.refresh_roster();
    event_loop.load_records();
    let handle = tokio::spawn(event_loop.run());
    Ok((Client { tx, metrics }, handle))
}

/// Runs `f`, which may keep this thread busy for a while, without holding
/// up the tasks queued behind it: on a multi-threaded runtime another
/// worker takes them over (a task woken by this one waits in a slot other
/// workers cannot take from). Elsewhere (tests' single-threaded runtimes)
/// `f` just runs.
fn off_the_worker<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

impl EventLoop {
    async fn run(mut self) {
        let mut tick = tokio::time::interval(self.config.tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut resync = tokio::time::interval_at(
            tokio::time::Instant::now() + self.config.resync,
            self.config.resync,
        );
        resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Another process's writes wake the loop only when there are some:
        // a watcher task with its own read-only connection does the
        // frequent looking (see `watch_writes`).
        let (wake, mut written) = mpsc::channel::<()>(1);
        tokio::spawn(super::watch::watch_writes(
            self.service.replica().node().store().path().to_path_buf(),
            self.config.local_writes,
            wake,
        ));
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm(event),
                command = self.commands.recv() => match command {
                    Some(c) => self.on_command(c),
                    None => break,
                },
                Some(()) = written.recv() => self.on_written(),
                Some(served) = self.served_rx.recv() => self.on_served(served),
                Some((hash, result)) = self.finished_rx.recv() => self.on_finished(hash, result),
                _ = tick.tick() => {
                    self.input(Input::Tick);
                    self.record_received();
                    self.dial_bootstrap();
                    self.reclassify();
                    self.watch_memory();
                    self.let_strangers_go();
                    self.files_tick();
                    self.reach_tick();
                    crate::net::spare::release_if_idle();
                }
                _ = resync.tick() => {
                    // One session per pair: the side that dialled runs it
                    // (a session both fetches and sends what differs), as
                    // on connecting.
                    let peers: Vec<NodeId> = self
                        .service
                        .peers()
                        .filter(|(p, s)| s.connected && self.dialled_by_us(&p.peer_id()))
                        .map(|(p, _)| *p)
                        .collect();
                    for peer in peers {
                        self.input(Input::Sync { peer });
                    }
                }
            }
        }
        self.record_received();
        if let Err(e) = self.service.replica().node().store().disconnect_all_peers() {
            tracing::warn!(error = %e, "cannot record peers as disconnected");
        }
        tracing::info!("event loop stopped");
    }

    /// The watcher saw a commit: another process's (a CLI `publish`, the
    /// web app) or this loop's own (changes a peer pushed, a peer's
    /// record). Its own it has acted on already; SQLite's `data_version`
    /// on this loop's connection moves only for other connections'
    /// commits, so a wake-up for its own costs one pragma, not a look at
    /// the catalogue and the files (every node of a mesh woke once more
    /// for every push it applied). What the loop writes and looks at only
    /// at the next refresh (a steward's confirmations, an event's places)
    /// is picked up at the next tick.
    fn on_written(&mut self) {
        let version = self.service.replica().node().store().data_version().ok();
        if version.is_some() && version == self.seen_version {
            return;
        }
        self.seen_version = version;
        self.input(Input::Tick);
        self.files_dirty = true;
    }

    /// Writes the changes members pushed since the last tick to their
    /// records, all in one commit (not one commit per push).
    fn record_received(&mut self) {
        if self.received.is_empty() {
            return;
        }
        let now = now_ms();
        let updates: Vec<(String, PeerUpdate<'_>)> = std::mem::take(&mut self.received)
            .into_iter()
            .map(|(peer, (applied, rejected))| {
                (
                    peer.to_string(),
                    PeerUpdate {
                        changes_in: applied,
                        rejected,
                        ..PeerUpdate::default()
                    },
                )
            })
            .collect();
        let store = self.service.replica().node().store();
        if let Err(e) = store.update_peers(now, &updates) {
            tracing::warn!(error = %e, "cannot record peer status");
        }
    }

    fn input(&mut self, input: Input) {
        self.service.handle(now_ms(), input);
        while let Some(io) = self.service.next_io() {
            self.on_io(io);
        }
    }

    /// Records a member's (or a dialled peer's) status; strangers are not
    /// written down.
    fn record_peer(&self, peer: &NodeId, update: PeerUpdate<'_>) {
        if self.standing.get(&peer.peer_id()) != Some(&Standing::Member) {
            return;
        }
        let store = self.service.replica().node().store();
        if let Err(e) = store.update_peer(&peer.to_string(), now_ms(), &update) {
            tracing::warn!(error = %e, "cannot record peer status");
        }
    }

    fn on_io(&mut self, io: Io) {
        match io {
            Io::Send {
                peer,
                token,
                request,
            } => {
                tracing::debug!(%peer, kind = request.kind(), "sending");
                self.session_started
                    .entry(peer)
                    .or_insert_with(Instant::now);
                let id = self
                    .swarm
                    .behaviour_mut()
                    .sync
                    .send_request(&peer.peer_id(), Inbound::Request(request));
                self.outbound.insert(id, (peer, token));
            }
            Io::Respond { channel, response } => {
                if let Response::Changes { changes, .. } = &response {
                    self.metrics.changes_out.inc_by(changes.len() as u64);
                }
                if let Some(ch) = self.channels.remove(&channel)
                    && self
                        .swarm
                        .behaviour_mut()
                        .sync
                        .send_response(ch, response)
                        .is_err()
                {
                    tracing::debug!("the peer left before our answer");
                }
            }
            Io::Disconnect { peer, reason } => {
                tracing::warn!(%peer, %reason, "banning a misbehaving peer");
                self.ban(peer.peer_id());
            }
            Io::Event(event) => self.on_event(event),
        }
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::SessionDone { peer, stats } => {
                self.files_dirty |= stats.received > 0;
                tracing::info!(
                    %peer,
                    received = stats.received,
                    sent = stats.sent,
                    rejected = stats.rejected,
                    waited = stats.waited,
                    round_trips = stats.round_trips,
                    "sync session complete"
                );
                self.metrics.changes_in.inc_by(stats.received as u64);
                self.metrics.rejected.inc_by(stats.rejected as u64);
                let took = self.session_started.remove(&peer).map(|t| t.elapsed());
                self.metrics.session_done(took, true);
                self.record_peer(
                    &peer,
                    PeerUpdate {
                        synced: true,
                        changes_in: stats.received as i64,
                        changes_out: stats.sent as i64,
                        rejected: stats.rejected as i64,
                        ..PeerUpdate::default()
                    },
                );
                if stats.full
                    && let Some(waiters) = self.sync_waiters.remove(&peer)
                {
                    for w in waiters {
                        let _ = w.send(Ok(stats.clone()));
                    }
                }
            }
            Event::SessionFailed { peer, error } => {
                tracing::warn!(%peer, %error, "sync session failed");
                let took = self.session_started.remove(&peer).map(|t| t.elapsed());
                self.metrics.session_done(took, false);
                // A full session asked for while this one ran has started
                // in its place (a `sync` right after a join, while the
                // session begun on connecting is being refused): those
                // waiting get that session's outcome, not this one's.
                if self.service.in_full_session(&peer) {
                    return;
                }
                if let Some(waiters) = self.sync_waiters.remove(&peer) {
                    for w in waiters {
                        let _ = w.send(Err(DaemonError::Sync {
                            peer,
                            error: error.clone(),
                        }));
                    }
                }
            }
            Event::Received {
                peer,
                applied,
                rejected,
            } => {
                if rejected > 0 {
                    tracing::warn!(%peer, rejected, "rejected changes from peer");
                }
                self.files_dirty |= applied > 0;
                // Changes pushed to us (the peer's sessions).
                self.metrics.changes_in.inc_by(applied as u64);
                self.metrics.rejected.inc_by(rejected as u64);
                // Written at the next tick, with every other push since.
                if self.standing.get(&peer.peer_id()) == Some(&Standing::Member) {
                    let counts = self.received.entry(peer).or_default();
                    counts.0 += applied as i64;
                    counts.1 += rejected as i64;
                }
            }
            Event::Joined { peer, community } => {
                tracing::info!(%peer, %community, "admitted to the community");
                for w in self.join_waiters.remove(&peer).unwrap_or_default() {
                    let _ = w.send(Ok(community.clone()));
                }
                // The service catches up with the peer now, charter first
                // (after the session begun on connecting, as a stranger).
            }
            Event::JoinFailed { peer, reason } => {
                for w in self.join_waiters.remove(&peer).unwrap_or_default() {
                    let _ = w.send(Err(DaemonError::NotAdmitted {
                        peer,
                        reason: reason.clone(),
                    }));
                }
            }
            Event::Admitted { peer } => {
                tracing::info!(%peer, "admitted a new member");
                self.classify(peer.peer_id());
            }
            Event::Reconciled { peer } => self.record_peer(
                &peer,
                PeerUpdate {
                    synced: true,
                    ..PeerUpdate::default()
                },
            ),
            Event::Refused { peer, reason } => {
                tracing::warn!(%peer, %reason, "refused a peer");
            }
            // Logged by the service.
            Event::Throttled { .. } => {}
        }
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::ListenAddrs(tx) => {
                // A node that listens on nothing (`--no-listen`) is
                // answered at once; others once their first address is up.
                if self.listen_addrs.is_empty() && !self.config.listen.is_empty() {
                    self.listen_waiters.push(tx);
                } else {
                    let _ = tx.send(self.listen_addrs.clone());
                }
            }
            Command::Dial(addr, tx) => {
                let opts = DialOpts::from(addr.clone());
                let id = opts.connection_id();
                match self.swarm.dial(opts) {
                    Ok(()) => {
                        self.dials.insert(id, (addr, tx));
                    }
                    Err(e) => {
                        let _ = tx.send(Err(DaemonError::Unreachable {
                            addr,
                            reason: e.to_string(),
                        }));
                    }
                }
            }
            Command::Sync(peer, tx) => {
                if !self.swarm.is_connected(&peer.peer_id()) {
                    let _ = tx.send(Err(DaemonError::Sync {
                        peer,
                        error: SessionError::Failed("not connected".into()),
                    }));
                    return;
                }
                self.sync_waiters.entry(peer).or_default().push(tx);
                // If a partial session is running (one that only fetches
                // announced documents), the service runs a full one after
                // it; a full one running already answers this.
                self.input(Input::Sync { peer });
            }
            Command::Peers(tx) => {
                let peers = self
                    .swarm
                    .connected_peers()
                    .map(|p| PeerInfo {
                        node: NodeId::from(*p),
                        address: self.addresses.get(p).cloned(),
                    })
                    .collect();
                let _ = tx.send(peers);
            }
            Command::Join(peer, changes, tx) => {
                self.join_waiters.entry(peer).or_default().push(tx);
                self.input(Input::Join { peer, changes });
            }
            Command::Progress(peer, tx) => {
                let _ = tx.send(self.service.progress(&peer));
            }
            Command::Bytes(tx) => {
                let _ = tx.send((self.codec.counters.sent(), self.codec.counters.received()));
            }
            Command::Messages(tx) => {
                let _ = tx.send(self.codec.counters.messages());
            }
        }
    }

    /// Dials bootstrap peers that are not connected, while fewer than
    /// `network.min_peers` members are (a node that has found enough of
    /// the community does not come back to the same few addresses).
    fn dial_bootstrap(&mut self) {
        let now = Instant::now();
        if self.members_connected() >= self.config.min_peers {
            return;
        }
        for b in &mut self.bootstrap {
            if b.connected || b.dialing.is_some() || now < b.next_attempt {
                continue;
            }
            let opts = DialOpts::from(b.addr.clone());
            b.dialing = Some(opts.connection_id());
            tracing::debug!(addr = %b.addr, "dialling bootstrap peer");
            if let Err(e) = self.swarm.dial(opts) {
                tracing::debug!(addr = %b.addr, error = %e, "bootstrap dial failed");
                b.dialing = None;
                b.next_attempt = now + b.backoff;
                b.backoff = (b.backoff * 2).min(BACKOFF_MAX);
            }
        }
    }

    fn on_swarm(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::NewListenAddr {
                listener_id,
                address,
            } => {
                let full = self.with_my_id(address);
                tracing::info!(address = %full, "listening");
                // A node that listens is there to be dialled: what it
                // listens on is what its relay tells members behind NAT
                // to advertise (AutoNAT confirms or withdraws it).
                if !is_relayed(&full) && !self.config.listen.is_empty() {
                    self.swarm.add_external_address(full.clone());
                }
                // A relay slot renewed reports its addresses again.
                if !self.listening.contains(&(listener_id, full.clone())) {
                    self.listening.push((listener_id, full));
                }
                self.listening_changed();
                for w in self.listen_waiters.drain(..) {
                    let _ = w.send(self.listen_addrs.clone());
                }
            }
            SwarmEvent::ExpiredListenAddr {
                listener_id,
                address,
            } => {
                let full = self.with_my_id(address);
                self.listening
                    .retain(|(l, a)| !(*l == listener_id && *a == full));
                self.listening_changed();
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                num_established,
                ..
            } => {
                let peer = NodeId::from(peer_id);
                let addr = match &endpoint {
                    ConnectedPoint::Dialer { address, .. } => address.clone(),
                    ConnectedPoint::Listener { send_back_addr, .. } => send_back_addr.clone(),
                };
                self.addresses.insert(peer_id, addr.clone());
                self.connection_opened(peer_id, connection_id, &endpoint);
                let mut on_purpose = false;
                if let Some((_, tx)) = self.dials.remove(&connection_id) {
                    on_purpose = true;
                    let _ = tx.send(Ok(peer));
                }
                for b in &mut self.bootstrap {
                    if b.dialing == Some(connection_id) {
                        on_purpose = true;
                        b.dialing = None;
                        b.connected = true;
                        b.peer = Some(peer_id);
                    }
                }
                if on_purpose && self.dialled.len() < MAX_DIALLED {
                    self.dialled.insert(peer_id);
                }
                if num_established.get() == 1 {
                    tracing::info!(%peer, %addr, "connected");
                    self.metrics.peers.inc();
                }
                // Every connection's codec waits for this.
                let known = self.standing.contains_key(&peer_id);
                let standing = self.classify(peer_id);
                if !known && standing == Standing::Stranger {
                    tracing::debug!(%peer, %addr, "a peer that is not a member connected");
                }
                // The side that dialled starts the session, so a pair of
                // nodes runs one session per connection, not two.
                if num_established.get() == 1
                    && standing == Standing::Member
                    && endpoint.is_dialer()
                {
                    self.input(Input::Sync { peer });
                }
                if standing == Standing::Member {
                    self.record_reach(peer_id);
                }
                if num_established.get() == 1
                    && standing == Standing::Member
                    && !self.asked_lately(&peer_id)
                {
                    self.ask_records(peer_id);
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                connection_id,
                num_established,
                ..
            } if num_established > 0 => {
                self.connection_closed(peer_id, connection_id);
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                connection_id,
                ..
            } => {
                let stable = self.connection_closed(peer_id, connection_id);
                let peer = NodeId::from(peer_id);
                tracing::info!(%peer, "disconnected");
                self.metrics.peers.dec();
                self.session_started.remove(&peer);
                self.record_peer(
                    &peer,
                    PeerUpdate {
                        connected: Some(false),
                        ..PeerUpdate::default()
                    },
                );
                self.input(Input::Disconnected { peer });
                self.fetcher.disconnected(&peer);
                self.serving.remove(&peer_id);
                self.standing.remove(&peer_id);
                self.strangers_since.remove(&peer_id);
                self.addresses.remove(&peer_id);
                self.swarm.behaviour_mut().sync.forget(&peer_id);
                let now = Instant::now();
                // As for members dialled from records: only a connection
                // that lasted resets the backoff (a bootstrap peer past
                // its `max_peers` closes new ones soon after they open).
                for b in &mut self.bootstrap {
                    if b.peer == Some(peer_id) && b.connected {
                        b.connected = false;
                        b.backoff = if stable {
                            BACKOFF_MIN
                        } else {
                            (b.backoff * 2).min(BACKOFF_MAX)
                        };
                        b.next_attempt = now + b.backoff;
                    }
                }
            }
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                error,
                ..
            } => {
                if let Some((addr, tx)) = self.dials.remove(&connection_id) {
                    let _ = tx.send(Err(DaemonError::Unreachable {
                        addr,
                        reason: dial_reason(&error),
                    }));
                }
                let now = Instant::now();
                for b in &mut self.bootstrap {
                    if b.dialing == Some(connection_id) {
                        tracing::debug!(addr = %b.addr, %error, "bootstrap peer unreachable");
                        b.dialing = None;
                        b.next_attempt = now + b.backoff;
                        b.backoff = (b.backoff * 2).min(BACKOFF_MAX);
                    }
                }
            }
            SwarmEvent::ListenerClosed { listener_id, .. } => {
                // A closed listener's addresses are reported only here
                // (no `ExpiredListenAddr` for them): a relay's circuit
                // address when the connection to the relay ends.
                self.listening.retain(|(l, _)| *l != listener_id);
                self.listening_changed();
                self.listener_closed(listener_id);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Sync(event)) => self.on_sync(event),
            SwarmEvent::Behaviour(BehaviourEvent::Addrs(event)) => self.on_addrs(event),
            SwarmEvent::Behaviour(BehaviourEvent::Identify(event)) => self.on_identify(event),
            SwarmEvent::Behaviour(BehaviourEvent::Dcutr(event)) => self.on_dcutr(event),
            SwarmEvent::Behaviour(BehaviourEvent::Relay(event)) => self.on_relay(event),
            SwarmEvent::Behaviour(BehaviourEvent::Autonat(event)) => self.on_autonat(event),
            SwarmEvent::Behaviour(BehaviourEvent::Files(event)) => self.on_files(event),
            SwarmEvent::Behaviour(BehaviourEvent::Mdns(mdns::Event::Discovered(found))) => {
                for (peer_id, addr) in found {
                    if !self.swarm.is_connected(&peer_id) {
                        tracing::debug!(%peer_id, %addr, "found a node on the local network");
                        let _ = self.swarm.dial(addr);
                    }
                }
            }
            _ => {}
        }
    }

    fn on_sync(&mut self, event: request_response::Event<Inbound, Response>) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request: Inbound::Invalid(why),
                    ..
                } => {
                    tracing::warn!(%peer, %why, "peer sent an invalid request; banning it");
                    self.ban(peer);
                }
                request_response::Message::Request {
                    request: Inbound::Request(request),
                    channel,
                    ..
                } => {
                    // Membership may have changed since the peer was last
                    // classified (a tick ago at most): look again before
                    // taking it for a stranger.
                    if self.standing.get(&peer) == Some(&Standing::Stranger) {
                        self.classify(peer);
                    }
                    let Some(channel) = self.within_address_budget(peer, &request, channel) else {
                        return;
                    };
                    // A stranger may ask to join, nothing else: it is
                    // answered here and costs the sync service nothing.
                    if self.standing.get(&peer) != Some(&Standing::Member)
                        && !matches!(request, Request::Join { .. })
                    {
                        let _ = self.swarm.behaviour_mut().sync.send_response(
                            channel,
                            Response::Refused {
                                reason: NOT_ADMITTED.into(),
                            },
                        );
                        return;
                    }
                    let id = self.next_channel;
                    self.next_channel += 1;
                    self.channels.insert(id, channel);
                    self.input(Input::Request {
                        peer: NodeId::from(peer),
                        channel: id,
                        request,
                    });
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    if let Some((peer, token)) = self.outbound.remove(&request_id) {
                        // An answer can carry a batch that takes a few
                        // hundred milliseconds to apply. Meanwhile the
                        // connection must go on sending the next request
                        // (the session keeps two in flight), so this
                        // worker's queued tasks move to another thread.
                        off_the_worker(|| {
                            self.input(Input::Response {
                                peer,
                                token,
                                response,
                            })
                        });
                    }
                }
            },
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                if let request_response::OutboundFailure::Io(e) = &error
                    && e.kind() == std::io::ErrorKind::InvalidData
                {
                    tracing::warn!(%peer, error = %e, "peer sent undecodable data; banning it");
                    self.ban(peer);
                }
                // A peer that does not answer within the request timeout
                // is gone or hung: its connection is closed, as a dead one
                // would otherwise stay open (a laptop that dropped off its
                // network without closing it) and count as connected for
                // a day. It is dialled again as any member is.
                if matches!(error, request_response::OutboundFailure::Timeout) {
                    tracing::info!(%peer, "no answer within the request timeout; closing the connection");
                    let _ = self.swarm.disconnect_peer_id(peer);
                }
                if let Some((node, token)) = self.outbound.remove(&request_id) {
                    self.input(Input::Failed {
                        peer: node,
                        token,
                        error: error.to_string(),
                    });
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                if let request_response::InboundFailure::Io(e) = &error
                    && e.kind() == std::io::ErrorKind::InvalidData
                {
                    tracing::warn!(%peer, error = %e, "peer sent undecodable data; banning it");
                    self.ban(peer);
                } else {
                    tracing::debug!(%peer, %error, "inbound sync request failed");
                }
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    /// Works out `peer`'s standing and tells the swarm; a stranger that
    /// turns out to be a member is recorded and given to the sync service
    /// as connected.
    fn classify(&mut self, peer: PeerId) -> Standing {
        let node = NodeId::from(peer);
        // (A node outside a community admits anyone, as before: it holds
        // nothing a community protects.)
        let standing =
            if self.dialled.contains(&peer) || self.service.replica_mut().admit(&node).is_ok() {
                Standing::Member
            } else {
                Standing::Stranger
            };
        let before = self.standing.insert(peer, standing);
        if before == Some(standing) {
            return standing;
        }
        match standing {
            Standing::Stranger => {
                self.strangers_since
                    .entry(peer)
                    .or_insert_with(Instant::now);
            }
            Standing::Member => {
                self.strangers_since.remove(&peer);
            }
        }
        let behaviour = self.swarm.behaviour_mut();
        behaviour.sync.set_standing(peer, standing);
        match standing {
            Standing::Member => behaviour.limits.bypass_peer_id(&peer),
            Standing::Stranger => behaviour.limits.remove_peer_id(&peer),
        }
        if standing == Standing::Member {
            let addr = self.addresses.get(&peer).map(ToString::to_string);
            self.record_peer(
                &node,
                PeerUpdate {
                    address: addr.as_deref(),
                    connected: Some(true),
                    ..PeerUpdate::default()
                },
            );
            let store = self.service.replica().node().store();
            if let Err(e) = store.prune_peers(MAX_PEER_ROWS) {
                tracing::warn!(error = %e, "cannot prune the peers table");
            }
            self.input(Input::Connected { peer: node });
            self.fetcher.connected(node);
            // Downloads waiting for a source ask it now, not at the next tick.
            self.send_file_requests();
        } else {
            self.fetcher.disconnected(&node);
        }
        standing
    }

    /// Classifies every connected peer again: membership changes with what
    /// sync brings.
    fn reclassify(&mut self) {
        let peers: Vec<PeerId> = self.standing.keys().copied().collect();
        for peer in peers {
            self.classify(peer);
        }
    }

    /// Sheds strangers while resident memory is over the budget for them.
    fn watch_memory(&mut self) {
        let Some(resident) = resident_bytes() else {
            return;
        };
        let over = resident > self.config.stranger_memory;
        if over != self.shedding {
            self.shedding = over;
            self.swarm.behaviour_mut().sync.set_shedding(over);
            if over {
                tracing::warn!(
                    resident,
                    budget = self.config.stranger_memory,
                    "short of memory: letting go of peers that are not members and refusing them"
                );
            } else {
                tracing::info!(resident, "memory back under budget: strangers let in again");
            }
        }
        if over {
            let strangers: Vec<PeerId> = self.strangers_since.drain().map(|(p, _)| p).collect();
            for peer in strangers {
                let _ = self.swarm.disconnect_peer_id(peer);
            }
        }
    }

    /// Disconnects strangers that have stayed past [`STRANGER_GRACE`]
    /// without being admitted.
    fn let_strangers_go(&mut self) {
        let now = Instant::now();
        let overstayed: Vec<PeerId> = self
            .strangers_since
            .iter()
            .filter(|(_, since)| now.duration_since(**since) > STRANGER_GRACE)
            .map(|(p, _)| *p)
            .collect();
        for peer in overstayed {
            tracing::debug!(%peer, "a stranger stayed too long without joining; disconnecting");
            self.strangers_since.remove(&peer);
            let _ = self.swarm.disconnect_peer_id(peer);
        }
    }

    /// Disconnects `peer` and refuses it for a while (a stranger's address
    /// too).
    fn ban(&mut self, peer: PeerId) {
        let ip = self.addresses.get(&peer).and_then(ip_of);
        self.swarm.behaviour_mut().sync.ban(peer, ip);
        let _ = self.swarm.disconnect_peer_id(peer);
    }

    /// Takes a stranger's request from its address's budget: passes the
    /// channel on when within it, answers or bans when over.
    fn within_address_budget(
        &mut self,
        peer: PeerId,
        request: &Request,
        channel: ResponseChannel<Response>,
    ) -> Option<ResponseChannel<Response>> {
        if self.standing.get(&peer) == Some(&Standing::Member) {
            return Some(channel);
        }
        let Some(ip) = self.addresses.get(&peer).and_then(ip_of) else {
            return Some(channel);
        };
        let join = matches!(request, Request::Join { .. });
        match self.address_budgets.take(&ip, now_ms(), join) {
            Verdict::Allow => Some(channel),
            Verdict::Refuse => {
                tracing::debug!(%peer, %ip, "refusing a request over the address's budget");
                let _ = self.swarm.behaviour_mut().sync.send_response(
                    channel,
                    Response::Refused {
                        reason: "too many requests; slow down".into(),
                    },
                );
                None
            }
            Verdict::Disconnect => {
                tracing::warn!(%peer, %ip, "strangers at this address keep flooding; banning");
                self.ban(peer);
                None
            }
        }
    }

    fn blobs(&self) -> BlobStore {
        self.service.replica().node().blobs()
    }

    /// The files' housekeeping, every tick: what to fetch, requests to send,
    /// progress to report.
    fn files_tick(&mut self) {
        self.files_ticks += 1;
        if self.files_ticks.is_multiple_of(FILES_RETRY) {
            self.fetcher.retry();
        }
        if self.files_ticks.is_multiple_of(5) {
            self.fetcher.checkpoint();
        }
        if self.files_ticks.is_multiple_of(FILES_FAILED_RETRY) {
            self.files_failed.clear();
        }
        let wanted = self.wanted_by_cli();
        let asked = wanted
            .iter()
            .any(|h| !self.fetcher.is_fetching(h) && !self.files_failed.contains_key(h));
        if self.files_dirty || asked || self.files_ticks.is_multiple_of(FILES_EVERY) {
            // Not up to date yet (a large catch-up): more at the next tick.
            self.files_dirty = !self.file_index.refresh(self.service.replica());
            self.want_files(&wanted);
        }
        let steps = self.fetcher.finish_ready();
        self.on_steps(steps);
        self.send_file_requests();
        if self.files_ticks.is_multiple_of(FILES_EVERY) {
            self.metrics
                .files_held_bytes
                .set(self.blobs().held_bytes() as i64);
        }
        self.report_fetching();
    }

    /// The hashes `convene get` asked for (see [`META_WANTED`]).
    fn wanted_by_cli(&self) -> Vec<String> {
        self.service
            .replica()
            .node()
            .store()
            .meta(META_WANTED)
            .ok()
            .flatten()
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default()
    }

    /// Starts downloads: every file an entry held here uses that is not
    /// here, up to the automatic size, and those asked for; stops those no
    /// entry uses any more (erased).
    fn want_files(&mut self, wanted: &[String]) {
        let files = self.file_index.files();
        let blobs = self.blobs();
        for p in self.fetcher.progress() {
            if !files.contains_key(&p.hash) {
                self.fetcher.cancel(&p.hash);
                let _ = blobs.remove_partial(&p.hash);
            }
        }
        for hash in wanted {
            if !files.contains_key(hash) && !blobs.has(hash) {
                self.files_failed
                    .insert(hash.clone(), "refused: no entry held here uses it".into());
            }
        }
        let limits = self.config.files;
        for (hash, size) in files {
            if blobs.has(&hash)
                || self.fetcher.is_fetching(&hash)
                || self.finishing.contains(&hash)
                || self.files_failed.contains_key(&hash)
            {
                continue;
            }
            let on_demand = wanted.contains(&hash);
            if !on_demand
                && (size > limits.auto_fetch || self.fetcher.automatic() >= AUTO_DOWNLOADS)
            {
                continue;
            }
            if size > limits.max_file {
                self.files_failed.insert(
                    hash,
                    format!(
                        "refused: {size} bytes is over this node's {}-byte limit for one file (files.max_file_mb)",
                        limits.max_file
                    ),
                );
                continue;
            }
            if let Some(quota) = limits.quota_per_org {
                let owners = self
                    .file_index
                    .declared(&hash)
                    .map(|(_, o)| o)
                    .unwrap_or_default();
                if let Some(org) = owners
                    .iter()
                    .find(|o| self.file_index.held_for(&blobs, o) + size > quota)
                {
                    self.files_failed.insert(
                        hash,
                        format!(
                            "refused: it would take the files of {org}'s entries over this node's quota of {quota} bytes (files.quota_mb_per_org)"
                        ),
                    );
                    continue;
                }
            }
            match blobs.partial(&hash, size) {
                Ok(partial) => {
                    tracing::info!(%hash, size, on_demand, "fetching a file");
                    self.fetcher.add(partial, on_demand);
                }
                Err(e) => {
                    tracing::warn!(%hash, error = %e, "cannot start a download");
                    self.files_failed.insert(hash, format!("failed: {e}"));
                }
            }
        }
    }

    fn send_file_requests(&mut self) {
        for out in self.fetcher.requests() {
            let id = self
                .swarm
                .behaviour_mut()
                .files
                .send_request(&out.peer.peer_id(), out.request);
            self.file_requests.insert(id, out.token);
        }
    }

    fn on_steps(&mut self, steps: Vec<Step>) {
        for step in steps {
            match step {
                Step::Progress { bytes, .. } => {
                    self.metrics.files_received_bytes.inc_by(bytes);
                }
                Step::Complete { partial } => {
                    let hash = partial.hash().to_string();
                    self.finishing.insert(hash.clone());
                    let tx = self.finished_tx.clone();
                    tokio::task::spawn_blocking(move || {
                        let result = partial.finish().map_err(|e| e.to_string());
                        let _ = tx.send((hash, result));
                    });
                }
                Step::Failed { hash, reason } => {
                    tracing::warn!(%hash, %reason, "a download failed");
                    self.files_failed.insert(hash, format!("failed: {reason}"));
                }
                Step::Violation { peer, hash, reason } => {
                    tracing::warn!(%peer, %hash, %reason, "peer sent file content that does not verify; banning it");
                    self.metrics.files_violations.inc();
                    self.ban(peer.peer_id());
                }
            }
        }
    }

    /// Writes the downloads' progress under [`META_FETCHING`] when it
    /// changed, and the bytes still to come to `/metrics`.
    fn report_fetching(&mut self) {
        let mut map = serde_json::Map::new();
        let mut remaining = 0;
        for p in self.fetcher.progress() {
            remaining += p.total - p.done;
            map.insert(
                p.hash.clone(),
                serde_json::json!({
                    "done": p.done,
                    "total": p.total,
                    "sources": p.sources,
                    "state": if p.stalled { "no source" } else { "fetching" },
                }),
            );
        }
        for (hash, why) in &self.files_failed {
            map.insert(hash.clone(), serde_json::json!({ "state": why }));
        }
        for hash in &self.finishing {
            map.insert(hash.clone(), serde_json::json!({ "state": "checking" }));
        }
        self.metrics.files_fetching_bytes.set(remaining as i64);
        // Progress is written a few times a second at most (each write
        // wakes every reader of the store); a download that starts, ends or
        // changes state at once.
        let shape: String = map
            .iter()
            .map(|(h, v)| format!("{h}:{} ", v["state"]))
            .collect();
        let text = serde_json::Value::Object(map).to_string();
        let now = shape != self.fetching_shape || self.files_ticks.is_multiple_of(3);
        if text != self.fetching_written && now {
            self.fetching_shape = shape;
            let store = self.service.replica().node().store();
            if let Err(e) = store.set_meta(META_FETCHING, &text) {
                tracing::warn!(error = %e, "cannot record download progress");
            }
            self.fetching_written = text;
        }
    }

    fn on_files(&mut self, event: request_response::Event<FileRequest, FileResponse>) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => self.serve_file(peer, request, channel),
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    if let Some(token) = self.file_requests.remove(&request_id) {
                        let steps = self.fetcher.response(token, response);
                        self.on_steps(steps);
                        self.send_file_requests();
                    }
                }
            },
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                let token = self.file_requests.remove(&request_id);
                if let request_response::OutboundFailure::Io(e) = &error
                    && e.kind() == std::io::ErrorKind::InvalidData
                {
                    tracing::warn!(%peer, error = %e, "peer sent an undecodable file answer; banning it");
                    self.metrics.files_violations.inc();
                    self.ban(peer);
                }
                if let Some(token) = token {
                    let lacks = matches!(
                        error,
                        request_response::OutboundFailure::UnsupportedProtocols
                    );
                    self.fetcher.failed(token, lacks);
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, %error, "inbound file request failed");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    /// Answers a file request: the range with its proof for a member that
    /// may see an entry using the file; `NotHeld` for everything else (a
    /// stranger, a file it may not see, a hash nothing uses, a malformed
    /// range), so the answer tells nothing. The disk work runs off the loop.
    fn serve_file(
        &mut self,
        peer: PeerId,
        request: FileRequest,
        channel: ResponseChannel<FileResponse>,
    ) {
        if self.standing.get(&peer) == Some(&Standing::Stranger) {
            self.classify(peer);
        }
        let node = NodeId::from(peer);
        let hash = request.hash_hex();
        // A stranger's asking counts against its address's budget, as its
        // sync requests do (and gets nothing either way).
        if self.standing.get(&peer) != Some(&Standing::Member)
            && let Some(ip) = self.addresses.get(&peer).and_then(ip_of)
            && self.address_budgets.take(&ip, now_ms(), false) == Verdict::Disconnect
        {
            tracing::warn!(%peer, %ip, "strangers at this address keep asking for files; banning");
            self.ban(peer);
            return;
        }
        // Entries may have arrived since the index was last brought up to
        // date (it is, at the next tick): look now rather than answer
        // `NotHeld` for a file this node holds.
        if self.files_dirty && self.standing.get(&peer) == Some(&Standing::Member) {
            self.file_index.refresh(self.service.replica());
        }
        let busy = self.serving.get(&peer).copied().unwrap_or(0) >= SERVE_PER_PEER
            || self.serving.values().sum::<usize>() >= SERVE_TOTAL;
        let allowed = self.standing.get(&peer) == Some(&Standing::Member)
            && request.is_well_formed()
            && self
                .file_index
                .may_serve(self.service.replica_mut(), &node, &hash);
        if !allowed || busy {
            let response = if allowed {
                FileResponse::Busy
            } else {
                FileResponse::NotHeld
            };
            let _ = self
                .swarm
                .behaviour_mut()
                .files
                .send_response(channel, response);
            return;
        }
        *self.serving.entry(peer).or_default() += 1;
        let blobs = self.blobs();
        let tx = self.served_tx.clone();
        tokio::task::spawn_blocking(move || {
            let response = match blobs.encode_range(&hash, request.start..request.end) {
                Ok(Some((size, encoded))) => FileResponse::Range {
                    size,
                    encoded: encoded.into(),
                },
                Ok(None) => FileResponse::NotHeld,
                Err(e) => {
                    tracing::warn!(%hash, error = %e, "cannot read a file to serve it");
                    FileResponse::NotHeld
                }
            };
            let _ = tx.send(Served {
                peer,
                channel,
                response,
            });
        });
    }

    /// A download checked whole (or not) off the loop.
    fn on_finished(&mut self, hash: String, result: Result<(), String>) {
        self.finishing.remove(&hash);
        // The entry that used it may have been erased while it was being
        // checked: then the bytes go at once.
        if result.is_ok() && self.used_by_no_entry(&hash) {
            tracing::info!(%hash, "a fetched file no entry uses any more; removing it");
            if let Err(e) = self.blobs().remove(&hash) {
                tracing::warn!(%hash, error = %e, "cannot remove an unused file");
            }
            return;
        }
        match result {
            Ok(()) => {
                tracing::info!(%hash, "file fetched and verified");
                self.metrics.files_fetched.inc();
                self.files_failed.remove(&hash);
            }
            Err(reason) => {
                tracing::warn!(%hash, %reason, "a download failed its final check");
                self.files_failed.insert(hash, format!("failed: {reason}"));
            }
        }
        // The next download may start at once.
        self.files_dirty = true;
    }

    /// Whether no entry held here uses `hash` (false when the store cannot
    /// tell). Reading every entry is done again only when a change or a
    /// tombstone was stored since the last time: a node fetching hundreds
    /// of files used to read every entry once per file.
    fn used_by_no_entry(&mut self, hash: &str) -> bool {
        let node = self.service.replica().node();
        let store = node.store();
        let state = match (
            store.catalogue_since(i64::MAX),
            store.tombstones_since(i64::MAX),
        ) {
            (Ok((_, changes)), Ok((_, tombstones))) => Some((changes, tombstones)),
            _ => None,
        };
        if let (Some(state), Some((at, used))) = (state, &self.referenced)
            && *at == state
        {
            return !used.contains(hash);
        }
        match node.referenced_hashes(None) {
            Ok(used) => {
                let unused = !used.contains(hash);
                self.referenced = state.map(|s| (s, used));
                unused
            }
            Err(_) => false,
        }
    }

    fn on_served(&mut self, served: Served) {
        if let Some(n) = self.serving.get_mut(&served.peer) {
            *n = n.saturating_sub(1);
        }
        if let FileResponse::Range { encoded, .. } = &served.response {
            self.metrics.files_sent_bytes.inc_by(encoded.len() as u64);
        }
        let _ = self
            .swarm
            .behaviour_mut()
            .files
            .send_response(served.channel, served.response);
    }

    /// `address` ending in this node's `/p2p/` id, as it is told to others.
    fn with_my_id(&self, address: Multiaddr) -> Multiaddr {
        address
            .clone()
            .with_p2p(*self.swarm.local_peer_id())
            .unwrap_or(address)
    }

    /// Makes what this node says it listens on (in `status`, in the
    /// address record members are given, and as the external addresses
    /// it confirmed) what its listeners listen on now: an address leaves
    /// only when no listener has it any more (a relay slot renewed by a
    /// new listener before the old one closed keeps its address).
    fn listening_changed(&mut self) {
        let mut now: Vec<Multiaddr> = Vec::new();
        for (_, a) in &self.listening {
            if !now.contains(a) {
                now.push(a.clone());
            }
        }
        if now == self.listen_addrs {
            return;
        }
        for gone in self.listen_addrs.iter().filter(|a| !now.contains(a)) {
            tracing::info!(address = %gone, "no longer listening");
            if self.swarm.external_addresses().any(|x| x == gone) {
                self.swarm.remove_external_address(gone);
            }
        }
        self.listen_addrs = now;
        self.save_listen_addrs();
    }

    fn save_listen_addrs(&self) {
        let addrs: Vec<String> = self.listen_addrs.iter().map(ToString::to_string).collect();
        let store = self.service.replica().node().store();
        if let Err(e) = store.set_meta(
            super::status::META_LISTEN,
            &serde_json::to_string(&addrs).expect("strings serialise"),
        ) {
            tracing::warn!(error = %e, "cannot record listen addresses");
        }
    }
}

/// This process's resident memory (bytes), where the system tells it.
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// Removes the records of peers that are not members (a stranger's peer id
/// has no place on disk; older versions wrote every one down).
fn forget_strangers(replica: &mut NodeReplica) {
    // A peer id no one has: a node that admits it is not in a community.
    if replica.admit(&NodeId::from(PeerId::random())).is_ok() {
        return;
    }
    let peers = match replica.node().store().peers() {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the peers table");
            return;
        }
    };
    let strangers: Vec<String> = peers
        .into_iter()
        .filter(|p| {
            p.node
                .parse::<PeerId>()
                .map_or(true, |id| replica.admit(&NodeId::from(id)).is_err())
        })
        .map(|p| p.node)
        .collect();
    let store = replica.node().store();
    for node in &strangers {
        if let Err(e) = store.forget_peer(node) {
            tracing::warn!(error = %e, "cannot forget a stranger's record");
        }
    }
    if let Err(e) = store.prune_peers(MAX_PEER_ROWS) {
        tracing::warn!(error = %e, "cannot prune the peers table");
    }
}

/// Why a dial failed, in a few words: for a transport failure, the
/// innermost cause of each address's error (`Connection refused (os error
/// 111)`), not libp2p's wrapping of every address and error around it.
fn dial_reason(error: &libp2p::swarm::DialError) -> String {
    use libp2p::swarm::DialError;
    let DialError::Transport(tried) = error else {
        return one_line(&error.to_string());
    };
    let mut reasons: Vec<String> = Vec::new();
    for (_, e) in tried {
        let reason = innermost(e);
        if !reasons.contains(&reason) {
            reasons.push(reason);
        }
    }
    if reasons.is_empty() {
        one_line(&error.to_string())
    } else {
        reasons.join("; ")
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The innermost cause of `error` that says something, on one line.
/// libp2p's transport errors write nothing themselves for a failure of
/// the system (`TransportError::Other`): what happened is in their source
/// (`Address already in use (os error 98)`).
fn innermost(error: &dyn std::error::Error) -> String {
    let mut said = error.to_string();
    let mut inner = error;
    while let Some(source) = inner.source() {
        inner = source;
        let text = source.to_string();
        if !text.trim().is_empty() {
            said = text;
        }
    }
    one_line(&said)
}

#[cfg(test)]
mod tests {
    use libp2p::core::transport::TransportError;

    /// A port another process took between the CLI's check and the
    /// daemon's listening: the error names the cause, not an empty line
    /// after "cannot listen on ADDR:" (libp2p's error for it writes
    /// nothing itself).
    #[test]
    fn a_failure_to_listen_says_why() {
        let error = TransportError::Other(std::io::Error::from(std::io::ErrorKind::AddrInUse));
        assert_eq!(error.to_string(), "", "libp2p now says something itself");
        let listen = super::DaemonError::Listen {
            addr: "/ip4/0.0.0.0/udp/4040/quic-v1".parse().unwrap(),
            reason: super::innermost(&error),
        };
        assert_eq!(
            listen.to_string(),
            "cannot listen on /ip4/0.0.0.0/udp/4040/quic-v1: address in use"
        );
    }
}
