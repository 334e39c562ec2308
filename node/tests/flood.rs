//! Strangers that try to fill a daemon's memory or store (issue 13, item
//! 4), over real libp2p connections on loopback.
//!
//! The memory tests run the victim daemon in a child process (this test
//! binary again, running only [`victim_daemon`]) so that its memory can be
//! read on its own from `/proc/<pid>/status`: the peak resident set
//! (`VmHWM`) after the attack against the resident set before it. The
//! attackers are bare libp2p peers (TCP, Noise, Yamux) in this process that
//! open many `/convene/sync/2` streams, announce a large frame on each and
//! send most of it, never the end.
//!
//! The other tests run the victim in this process: a stranger is not
//! written to the peers table, a stranger that breaks the protocol is
//! banned with its address, and strangers get few connections per address.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use convene_node::daemon::{self, Client, Config};
use convene_node::net::SyncCodec;
use convene_node::sync::wire::{Request, Response};
use convene_node::{InitOptions, Node};
use futures::{AsyncRead, AsyncWrite, AsyncWriteExt, StreamExt};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, StreamProtocol, request_response};

mod bare;

use bare::loopback;

const VICTIM_HOME: &str = "CONVENE_FLOOD_VICTIM_HOME";

/// A node that has created a community: every other peer is a stranger.
fn community_node(home: &std::path::Path) {
    let mut node = Node::init(
        home,
        &InitOptions {
            org: "Victim".into(),
            sector: "council".into(),
            place: None,
        },
    )
    .unwrap();
    node.create_community("Flood test").unwrap();
}

/// Not a test on its own: the victim daemon of the memory tests, run by
/// them in a child process. It prints its address and runs until its
/// standard input closes.
#[test]
#[ignore = "run by the flood tests as a child process"]
fn victim_daemon() {
    let Ok(home) = std::env::var(VICTIM_HOME) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let home = std::path::PathBuf::from(home);
        let (client, _handle) = daemon::spawn(Node::open(&home).unwrap(), loopback()).unwrap();
        let addr = client.listen_addrs().await.unwrap()[0].clone();
        println!("LISTEN {addr}");
        tokio::task::spawn_blocking(|| {
            let mut line = String::new();
            let _ = std::io::stdin().read_line(&mut line);
        })
        .await
        .unwrap();
    });
}

/// The victim daemon in a child process; killed when dropped.
struct Victim {
    child: Child,
    addr: Multiaddr,
    _home: tempfile::TempDir,
}

impl Victim {
    fn start() -> Self {
        let home = tempfile::tempdir().unwrap();
        community_node(home.path());
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["victim_daemon", "--exact", "--ignored", "--nocapture"])
            .env(VICTIM_HOME, home.path())
            .env("RUST_LOG", "off")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if let Some(addr) = line.strip_prefix("LISTEN ") {
                    let _ = tx.send(addr.parse::<Multiaddr>().unwrap());
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the victim daemon starts");
        Self {
            child,
            addr,
            _home: home,
        }
    }

    /// A line of `/proc/<pid>/status`, in KiB.
    fn status_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in the victim's status"))
    }

    /// Resident memory now, MiB.
    fn rss_mib(&self) -> f64 {
        self.status_kib("VmRSS:") as f64 / 1024.0
    }

    /// Peak resident memory so far, MiB.
    fn peak_mib(&self) -> f64 {
        self.status_kib("VmHWM:") as f64 / 1024.0
    }
}

impl Drop for Victim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Announces a frame of `declared` bytes on a stream, sends `body` bytes
/// of it and holds the stream open without sending the rest.
#[derive(Clone)]
struct HalfFrame {
    declared: u32,
    body: usize,
    /// Bytes the victim took (written into the stream), all streams.
    sent: Arc<AtomicU64>,
    /// Streams whose whole body was written.
    written: Arc<AtomicUsize>,
}

impl request_response::Codec for HalfFrame {
    type Protocol = StreamProtocol;
    type Request = ();
    type Response = ();

    async fn read_request<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        _: &mut T,
    ) -> std::io::Result<()> {
        Ok(())
    }

    async fn read_response<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        _: &mut T,
    ) -> std::io::Result<()> {
        Ok(())
    }

    async fn write_request<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        _: (),
    ) -> std::io::Result<()> {
        io.write_all(&self.declared.to_be_bytes()).await?;
        io.flush().await?;
        let chunk = vec![0x55u8; 16 * 1024];
        let mut left = self.body;
        while left > 0 {
            let n = left.min(chunk.len());
            io.write_all(&chunk[..n]).await?;
            io.flush().await?;
            self.sent.fetch_add(n as u64, Ordering::Relaxed);
            left -= n;
        }
        self.written.fetch_add(1, Ordering::SeqCst);
        // Never the rest.
        futures::future::pending::<()>().await;
        Ok(())
    }

    async fn write_response<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        _: &mut T,
        _: (),
    ) -> std::io::Result<()> {
        Ok(())
    }
}

/// A bare peer for the floods: requests that never time out, and as many
/// streams at once as it likes.
fn peer_speaking<C>(codec: C) -> libp2p::Swarm<request_response::Behaviour<C>>
where
    C: request_response::Codec<Protocol = StreamProtocol> + Clone + Send + 'static,
{
    bare::peer_speaking(
        codec,
        request_response::Config::default()
            .with_request_timeout(Duration::from_secs(600))
            .with_max_concurrent_streams(4096),
        Duration::from_secs(600),
    )
}

/// What a flood did.
#[derive(Debug, Default)]
struct Flood {
    /// Connections the victim accepted.
    connected: AtomicUsize,
    /// Of those, how many it closed.
    closed: AtomicUsize,
    /// Streams that failed (refused, reset or cut with their connection).
    failed: AtomicUsize,
}

/// `peers` attackers (each a fresh peer id) connect to `addr` and each
/// opens `streams` streams of half-sent frames. Returns when every stream
/// has been written in full or has failed, or the victim has closed every
/// connection (or after `deadline`), with the bytes the victim took.
async fn flood(
    addr: &Multiaddr,
    peers: usize,
    streams: usize,
    declared: u32,
    body: usize,
    deadline: Duration,
) -> (u64, Arc<Flood>) {
    let sent = Arc::new(AtomicU64::new(0));
    let written = Arc::new(AtomicUsize::new(0));
    let flood = Arc::new(Flood::default());
    let mut tasks = Vec::new();
    for _ in 0..peers {
        let mut swarm = peer_speaking(HalfFrame {
            declared,
            body,
            sent: sent.clone(),
            written: written.clone(),
        });
        swarm.dial(addr.clone()).unwrap();
        let flood = flood.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                match swarm.select_next_some().await {
                    SwarmEvent::ConnectionEstablished { peer_id, .. } => {
                        flood.connected.fetch_add(1, Ordering::SeqCst);
                        for _ in 0..streams {
                            swarm.behaviour_mut().send_request(&peer_id, ());
                        }
                    }
                    SwarmEvent::Behaviour(request_response::Event::OutboundFailure { .. }) => {
                        flood.failed.fetch_add(1, Ordering::SeqCst);
                    }
                    SwarmEvent::ConnectionClosed { .. } => {
                        flood.closed.fetch_add(1, Ordering::SeqCst);
                        return;
                    }
                    SwarmEvent::OutgoingConnectionError { .. } => return,
                    _ => {}
                }
            }
        }));
    }
    let end = Instant::now() + deadline;
    loop {
        let resolved = written.load(Ordering::SeqCst) + flood.failed.load(Ordering::SeqCst);
        let done = tasks.iter().all(|t| t.is_finished());
        if resolved >= peers * streams || done || Instant::now() > end {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for t in &tasks {
        t.abort();
    }
    (sent.load(Ordering::Relaxed), flood)
}

/// The victim's peak memory may grow by at most this much under the
/// floods below (MiB). Before the limits, the first flood took it up by
/// the whole of what was sent (3 × 64 streams × 2 MiB = 384 MiB).
const GROWTH_BOUND_MIB: f64 = 64.0;

/// The same for many streams of frames under a stranger's frame limit:
/// before the limits, 8 strangers × 256 streams × 60 KiB took it up by
/// about 70 MiB; with them, a few MiB.
const SMALL_FRAMES_BOUND_MIB: f64 = 32.0;

/// What a flood of half-sent frames did to a fresh victim daemon.
struct Attack {
    /// Bytes the attackers sent, and would have sent had every stream
    /// been read.
    sent: u64,
    total: u64,
    /// The victim's peak resident memory over what it held before, MiB.
    growth: f64,
}

/// `peers` strangers, `streams` streams each, each stream announcing a
/// frame of `frame` bytes and sending all of it but the last byte, against
/// a victim daemon in its own process.
async fn half_sent_frames(peers: usize, streams: usize, frame: usize) -> Attack {
    let victim = Victim::start();
    let before = victim.rss_mib();
    let total = (peers * streams * (frame - 1)) as u64;
    let started = Instant::now();
    let (sent, flood) = flood(
        &victim.addr,
        peers,
        streams,
        frame as u32,
        frame - 1,
        Duration::from_secs(20),
    )
    .await;
    let peak = victim.peak_mib();
    let growth = peak - before;
    eprintln!(
        "victim: {before:.1} MiB before, peak {peak:.1} MiB (+{growth:.1}); it took {:.1} MiB of {:.1} MiB sent on {} connections ({} closed by it; {} of {} streams refused) in {:?}",
        sent as f64 / 1048576.0,
        total as f64 / 1048576.0,
        flood.connected.load(Ordering::SeqCst),
        flood.closed.load(Ordering::SeqCst),
        flood.failed.load(Ordering::SeqCst),
        peers * streams,
        started.elapsed()
    );
    Attack {
        sent,
        total,
        growth,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_large_frames_from_strangers_do_not_fill_memory() {
    // Three strangers, 64 streams each, each stream announcing 2 MiB.
    let Attack {
        sent,
        total,
        growth,
    } = half_sent_frames(3, 64, 2 * 1024 * 1024).await;
    assert!(
        growth < GROWTH_BOUND_MIB,
        "the victim's memory grew by {growth:.1} MiB (bound {GROWTH_BOUND_MIB} MiB)"
    );
    assert!(sent < total / 4, "the victim took {sent} of {total} bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_streams_of_small_half_sent_frames_from_strangers_do_not_fill_memory() {
    // Eight strangers (one address's worth), 256 streams each, each
    // stream announcing 60 KiB (under a stranger's frame limit): 120 MiB
    // if every stream were read.
    let Attack { growth, .. } = half_sent_frames(8, 256, 60 * 1024).await;
    assert!(
        growth < SMALL_FRAMES_BOUND_MIB,
        "the victim's memory grew by {growth:.1} MiB (bound {SMALL_FRAMES_BOUND_MIB} MiB)"
    );
}

async fn start_in_process(home: &std::path::Path) -> (Client, Multiaddr) {
    let (client, _handle) = daemon::spawn(Node::open(home).unwrap(), loopback()).unwrap();
    let addr = client.listen_addrs().await.unwrap()[0].clone();
    (client, addr)
}

/// A stranger with a fresh peer id connects, sends one request and keeps
/// its connection open until `hold` is dropped: `Ok` with the answer, or
/// `Err` when the victim refused the connection or closed it first.
async fn ask_as_stranger(
    addr: &Multiaddr,
    request: Request,
    hold: tokio::sync::oneshot::Receiver<()>,
) -> Result<Response, String> {
    let mut swarm = peer_speaking(SyncCodec::default());
    swarm.dial(addr.clone()).unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let mut tx = Some(tx);
        let mut answer = |r: Result<Response, String>| {
            if let Some(tx) = tx.take() {
                let _ = tx.send(r);
            }
        };
        let mut hold = hold;
        let mut request = Some(request);
        loop {
            tokio::select! {
                _ = &mut hold => return,
                event = swarm.select_next_some() => match event {
                    SwarmEvent::ConnectionEstablished { peer_id, .. } => {
                        if let Some(r) = request.take() {
                            swarm
                                .behaviour_mut()
                                .send_request(&peer_id, convene_node::net::Inbound::Request(r));
                        }
                    }
                    SwarmEvent::Behaviour(request_response::Event::Message {
                        message: request_response::Message::Response { response, .. },
                        ..
                    }) => answer(Ok(response)),
                    SwarmEvent::Behaviour(request_response::Event::OutboundFailure {
                        error, ..
                    }) => answer(Err(error.to_string())),
                    SwarmEvent::ConnectionClosed { cause, .. } => {
                        answer(Err(format!("closed: {cause:?}")))
                    }
                    SwarmEvent::OutgoingConnectionError { error, .. } => {
                        answer(Err(error.to_string()))
                    }
                    _ => {}
                },
            }
        }
    });
    let r = tokio::time::timeout(Duration::from_secs(20), rx)
        .await
        .expect("an answer or a refusal in time")
        .unwrap();
    // Keep the connection (and the task) until the caller lets go.
    drop(task);
    r
}

fn announce() -> Request {
    Request::Announce { items: Vec::new() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_costs_nothing_on_disk() {
    let home = tempfile::tempdir().unwrap();
    community_node(home.path());
    let (_victim, addr) = start_in_process(home.path()).await;
    for _ in 0..5 {
        let (_hold, hold) = tokio::sync::oneshot::channel();
        let answer = ask_as_stranger(&addr, announce(), hold).await;
        assert!(
            matches!(answer, Ok(Response::Refused { .. })),
            "a stranger is refused: {answer:?}"
        );
    }
    let peers = Node::open(home.path()).unwrap().store().peers().unwrap();
    assert!(peers.is_empty(), "strangers were recorded: {peers:?}");
}

/// Warnings (and errors) logged in this process, captured for the tests
/// that check why the victim did something (its own log says).
mod warnings {
    use std::fmt::Write;
    use std::sync::{Mutex, OnceLock};

    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Level, Metadata, Subscriber};

    static LINES: OnceLock<Mutex<Vec<String>>> = OnceLock::new();

    struct Capture;

    struct Line(String);

    impl Visit for Line {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            let _ = write!(self.0, " {}={:?}", field.name(), value);
        }
    }

    impl Subscriber for Capture {
        fn enabled(&self, metadata: &Metadata<'_>) -> bool {
            *metadata.level() <= Level::WARN
        }
        fn new_span(&self, _: &Attributes<'_>) -> Id {
            Id::from_u64(1)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, event: &Event<'_>) {
            let mut line = Line(String::new());
            event.record(&mut line);
            LINES.get().unwrap().lock().unwrap().push(line.0);
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }

    /// Starts capturing (once per process).
    pub fn capture() {
        LINES.get_or_init(|| Mutex::new(Vec::new()));
        static START: std::sync::Once = std::sync::Once::new();
        START.call_once(|| tracing::subscriber::set_global_default(Capture).unwrap());
    }

    /// The lines logged so far that contain every one of `words`.
    pub fn with(words: &[&str]) -> Vec<String> {
        let lines = LINES.get().unwrap().lock().unwrap();
        lines
            .iter()
            .filter(|l| words.iter().all(|w| l.contains(w)))
            .cloned()
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_that_breaks_the_protocol_is_banned_with_its_address() {
    warnings::capture();
    let home = tempfile::tempdir().unwrap();
    community_node(home.path());
    let (_victim, addr) = start_in_process(home.path()).await;
    // Before: a stranger is answered (refused, but answered).
    let (_hold, hold) = tokio::sync::oneshot::channel();
    let answer = ask_as_stranger(&addr, announce(), hold).await;
    assert!(matches!(answer, Ok(Response::Refused { .. })), "{answer:?}");

    // A member, admitted before the attack (from the same address).
    let member_home = tempfile::tempdir().unwrap();
    let code = Node::open(home.path())
        .unwrap()
        .invite(3_600_000, false, None, Vec::new())
        .unwrap();
    let mut newcomer = Node::init(
        member_home.path(),
        &InitOptions {
            org: "Member".into(),
            sector: "vcse".into(),
            place: None,
        },
    )
    .unwrap();
    newcomer.accept_invite(&code).unwrap();
    let changes = newcomer.join_changes().unwrap();
    drop(newcomer);
    let (member, _) = start_in_process(member_home.path()).await;
    let peer = member.dial(addr.clone()).await.unwrap();
    member.join(peer, changes).await.unwrap();
    member.sync(peer).await.unwrap();

    // A frame over any limit: the victim drops the connection, and its log
    // says it banned the peer for what it sent.
    let mut breaker = peer_speaking(HalfFrame {
        declared: u32::MAX,
        body: 0,
        sent: Arc::default(),
        written: Arc::default(),
    });
    let breaker_id: PeerId = *breaker.local_peer_id();
    let breaker_field = format!("peer={breaker_id}");
    breaker.dial(addr.clone()).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        match tokio::time::timeout_at(deadline, breaker.select_next_some())
            .await
            .expect("the victim drops the peer that broke the protocol")
        {
            SwarmEvent::ConnectionEstablished { peer_id, .. } => {
                breaker.behaviour_mut().send_request(&peer_id, ());
            }
            SwarmEvent::ConnectionClosed { .. } => break,
            _ => {}
        }
    }
    let bans = loop {
        let bans = warnings::with(&["banning", &breaker_field]);
        if !bans.is_empty() {
            break bans;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the connection closed, but the victim logged no ban of {breaker_id}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(
        bans.iter().any(|l| l.contains("4294967295 bytes is over")),
        "banned for another reason than its frame: {bans:?}"
    );
    eprintln!("the victim's log: {bans:?}");

    // It cannot come straight back, even sending nothing: the ban, not a
    // new offence, turns it away (a stranger that sends nothing is
    // otherwise let stay for minutes).
    breaker.dial(addr.clone()).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let again = loop {
        match tokio::time::timeout_at(deadline, breaker.select_next_some()).await {
            Err(_) => break "kept",
            Ok(
                SwarmEvent::ConnectionClosed { .. } | SwarmEvent::OutgoingConnectionError { .. },
            ) => {
                break "refused";
            }
            Ok(_) => {}
        }
    };
    assert_eq!(again, "refused", "{breaker_id} came back");
    assert_eq!(
        warnings::with(&["banning", &breaker_field]).len(),
        bans.len(),
        "refused for a new offence, not for the ban"
    );
    // Nor may a new peer id from the banned address come in.
    let (_hold, hold) = tokio::sync::oneshot::channel();
    let answer = ask_as_stranger(&addr, announce(), hold).await;
    assert!(
        answer.is_err(),
        "a new peer id from the banned address was served: {answer:?}"
    );
    // The victim still serves: the member (on the same address) syncs.
    let peer = member
        .dial(addr.clone())
        .await
        .expect("the victim still accepts the member");
    let id = Node::open(member_home.path())
        .unwrap()
        .publish(entry("After the ban"))
        .unwrap();
    member.sync(peer).await.expect("the member still syncs");
    assert!(Node::open(home.path()).unwrap().get(id).is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_get_few_connections_per_address() {
    let home = tempfile::tempdir().unwrap();
    community_node(home.path());
    let (_victim, addr) = start_in_process(home.path()).await;
    let mut holds = Vec::new();
    let mut served = 0;
    let mut turned_away = 0;
    for _ in 0..12 {
        let (keep, hold) = tokio::sync::oneshot::channel();
        holds.push(keep);
        match ask_as_stranger(&addr, announce(), hold).await {
            Ok(_) => served += 1,
            Err(_) => turned_away += 1,
        }
    }
    assert_eq!(
        (served, turned_away),
        (8, 4),
        "eight strangers' connections per address"
    );
    // Letting go of one makes room for another.
    drop(holds.remove(0));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (keep, hold) = tokio::sync::oneshot::channel();
        if ask_as_stranger(&addr, announce(), hold).await.is_ok() {
            holds.push(keep);
            break;
        }
        assert!(Instant::now() < deadline, "no room made");
    }
}

fn entry(title: &str) -> convene_model::EntryInput {
    convene_model::EntryInput {
        body: convene_model::Body::Learning(convene_model::Learning {
            title: title.into(),
            // Enough text that the newcomer's changes do not fit in one
            // stranger's frame.
            summary: "What we learned, at some length. "
                .repeat(20)
                .as_str()
                .into(),
            ..convene_model::Learning::default()
        }),
        visibility: None,
        status: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newcomer_joins_as_a_stranger_then_syncs_as_a_member() {
    let steward_home = tempfile::tempdir().unwrap();
    let newcomer_home = tempfile::tempdir().unwrap();
    community_node(steward_home.path());
    let code = Node::open(steward_home.path())
        .unwrap()
        .invite(3_600_000, false, None, Vec::new())
        .unwrap();
    let mut newcomer = Node::init(
        newcomer_home.path(),
        &InitOptions {
            org: "Newcomer".into(),
            sector: "vcse".into(),
            place: None,
        },
    )
    .unwrap();
    let ids = newcomer
        .publish_batch((0..200).map(|i| entry(&format!("Lesson {i}"))).collect())
        .unwrap();
    newcomer.accept_invite(&code).unwrap();
    let changes = newcomer.join_changes().unwrap();
    drop(newcomer);

    let (_steward, addr) = start_in_process(steward_home.path()).await;
    let (client, _) = start_in_process(newcomer_home.path()).await;
    let peer = client.dial(addr).await.unwrap();
    let name = client.join(peer, changes).await.unwrap();
    assert_eq!(name, "Flood test");
    // Its changes go to the steward in frames larger than a stranger may
    // send: it is a member now.
    let stats = client.sync(peer).await.unwrap();
    assert!(stats.sent >= 200, "{stats:?}");
    let steward = Node::open(steward_home.path()).unwrap();
    assert!(ids.iter().all(|id| steward.get(*id).is_ok()));
    let peers = steward.store().peers().unwrap();
    assert_eq!(peers.len(), 1, "the new member is recorded: {peers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_are_let_go_and_refused_while_memory_is_short() {
    let home = tempfile::tempdir().unwrap();
    community_node(home.path());
    let (_hold, hold) = tokio::sync::oneshot::channel();
    // A budget for strangers that the daemon is always over.
    let config = Config {
        stranger_memory: 1,
        ..loopback()
    };
    let (victim, _handle) = daemon::spawn(Node::open(home.path()).unwrap(), config).unwrap();
    let addr = victim.listen_addrs().await.unwrap()[0].clone();
    // The first tick finds the node over budget; a stranger is refused
    // from then on (one that came first is let go).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_hold, hold) = tokio::sync::oneshot::channel();
        if ask_as_stranger(&addr, announce(), hold).await.is_err() {
            break;
        }
        assert!(Instant::now() < deadline, "strangers still let in");
    }
    let answer = ask_as_stranger(&addr, announce(), hold).await;
    assert!(answer.is_err(), "a stranger was served: {answer:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_attempts_from_fresh_peer_ids_share_their_addresss_budget() {
    let home = tempfile::tempdir().unwrap();
    community_node(home.path());
    let (_victim, addr) = start_in_process(home.path()).await;
    // Each attempt from a new peer id (they cost nothing to make), all
    // from one address.
    let mut answers = Vec::new();
    for _ in 0..24 {
        let (_hold, hold) = tokio::sync::oneshot::channel();
        let answer = ask_as_stranger(
            &addr,
            Request::Join {
                changes: Vec::new(),
            },
            hold,
        )
        .await;
        answers.push(match answer {
            Ok(Response::Refused { reason }) if reason.contains("too many") => "slow down",
            Ok(_) => "considered",
            Err(_) => "turned away",
        });
    }
    let considered = answers.iter().filter(|a| **a == "considered").count();
    assert!(
        considered <= 8,
        "only the address's burst of joins is considered: {answers:?}"
    );
    assert_eq!(
        answers.last(),
        Some(&"turned away"),
        "an address that keeps trying is banned: {answers:?}"
    );
}
