//! Sync benchmark over real libp2p connections on loopback.
//!
//! ```text
//! cargo bench -p convene-node --bench sync -- [--entries N]… [--json]
//! cargo bench -p convene-node --bench sync -- --compare [--entries N]… [--json] [--samod-limit SECONDS]
//! ```
//!
//! `--compare` measures Convene against samod and against automerge alone
//! on the same corpus, each side in its own process (see `sync/compare.rs`);
//! without it:
//!
//! For each N (default 1,000 and 10,000) it builds N learning entries of
//! realistic size on one node and measures:
//! - `catch-up`: a fresh node dials it and syncs everything (time, bytes);
//! - `reconnect-unchanged`: the same node reconnects with nothing changed;
//! - `reconnect-10-changed`: it reconnects after 10 entries were edited;
//! - `propagate-line-10` / `propagate-mesh-10`: time for one publish (made
//!   through a second handle on the store, as a CLI command would) to reach
//!   every node of a 10-node line and of a 10-node full mesh.
//!
//! Bytes are the sync protocol's own bytes in both directions (frames
//! included; the libp2p handshakes are not). Round trips are request /
//! response pairs of the session.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use convene_model::{Body, DocumentId, EntryInput, Learning};
use convene_node::daemon::{self, Client, Config};
use convene_node::{InitOptions, Node, NodeId};

#[path = "sync/child.rs"]
mod child;
#[path = "sync/compare.rs"]
pub mod compare;
#[path = "sync/proxy.rs"]
mod proxy;

#[derive(Debug, Default)]
pub struct Args {
    pub entries: Vec<usize>,
    pub json: bool,
    pub compare: bool,
    /// Seconds each samod run may take before it is reported as timed out.
    pub samod_limit: u64,
    /// The live-propagation mesh: how many daemons, how many publishes.
    pub mesh_nodes: usize,
    /// `--mesh-only`: only the live-propagation mesh (for profiling it).
    pub mesh_only: bool,
    pub publishes: usize,
    /// Hidden: the part a child process of `--compare` plays.
    pub role: Option<String>,
    home: Option<PathBuf>,
    addr: Option<String>,
    ids: Option<PathBuf>,
}

/// The command line's arguments (cargo adds `--bench`, which is ignored).
pub fn args() -> Args {
    args_from(std::env::args().skip(1))
}

pub fn args_from(mut it: impl Iterator<Item = String>) -> Args {
    let mut a = Args {
        samod_limit: 120,
        mesh_nodes: 20,
        publishes: 200,
        ..Args::default()
    };
    while let Some(arg) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{arg} takes a value"));
        match arg.as_str() {
            "--entries" => a.entries.push(
                value()
                    .replace([',', '_'], "")
                    .parse()
                    .expect("--entries takes a number"),
            ),
            "--samod-limit" => {
                a.samod_limit = value().parse().expect("--samod-limit takes seconds")
            }
            "--mesh-nodes" => a.mesh_nodes = value().parse().expect("--mesh-nodes takes a number"),
            "--publishes" => a.publishes = value().parse().expect("--publishes takes a number"),
            "--mesh-only" => a.mesh_only = true,
            "--json" => a.json = true,
            "--compare" => a.compare = true,
            "--role" => a.role = Some(value()),
            "--home" => a.home = Some(value().into()),
            "--addr" => a.addr = Some(value()),
            "--ids" => a.ids = Some(value().into()),
            _ => {} // cargo passes --bench
        }
    }
    if a.entries.is_empty() {
        a.entries = if a.compare {
            vec![1_000, 10_000, 100_000]
        } else {
            vec![1_000, 10_000]
        };
    }
    a
}

const PLACES: [&str; 6] = [
    "Gateshead",
    "Newcastle",
    "Sunderland",
    "North Cumbria",
    "Durham",
    "Middlesbrough",
];
const TOPICS: [&str; 5] = [
    "NHS 111 online and call answering capacity",
    "Ambulance handover delays and peer visits",
    "Community calls and falls-related admissions",
    "Safe Transfer of Care improvement collaborative",
    "Family hubs for children waiting for mental health support",
];

/// N learning entries of about 1.5 KB each, from the community's examples.
fn corpus(n: usize) -> Vec<EntryInput> {
    (0..n)
        .map(|i| {
            let topic = TOPICS[i % TOPICS.len()];
            let place = PLACES[i % PLACES.len()];
            EntryInput {
                body: Body::Learning(Learning {
                    title: format!("{topic} ({place}, #{i})"),
                    summary: format!("What {place} learned about {topic}.")
                        .as_str()
                        .into(),
                    body: format!(
                        "{topic}. Teams in {place} tested changes over several PDSA cycles, \
                         measured the effect each month and shared what worked and what didn't. "
                    )
                    .repeat(6)
                    .as_str()
                    .into(),
                    impact: "44 per cent reduction in call answering time".into(),
                    place: place.into(),
                    priorities: vec!["discharge-and-safe-transfers-of-care".into()],
                    methods: vec!["model-for-improvement".into()],
                    tags: vec!["urgent care".into(), format!("cohort-{}", i % 20)],
                    ..Learning::default()
                }),
                visibility: None,
                status: None,
            }
        })
        .collect()
}

fn init(home: &Path, org: &str) -> Node {
    Node::init(
        home,
        &InitOptions {
            org: org.into(),
            sector: "nhs-trust".into(),
            place: None,
        },
    )
    .expect("init")
}

fn config(listen: bool) -> Config {
    Config {
        listen: if listen {
            vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()]
        } else {
            Vec::new()
        },
        bootstrap: Vec::new(),
        mdns: false,
        ..Config::default()
    }
}

struct Running {
    client: Client,
    handle: tokio::task::JoinHandle<()>,
    addr: Option<String>,
}

async fn run(home: &Path, listen: bool) -> Running {
    let node = Node::open(home).expect("open");
    let (client, handle) = daemon::spawn(node, config(listen)).expect("spawn");
    let addr = if listen {
        Some(client.listen_addrs().await.expect("listen")[0].to_string())
    } else {
        None
    };
    Running {
        client,
        handle,
        addr,
    }
}

impl Running {
    async fn stop(self) {
        drop(self.client);
        let _ = self.handle.await;
    }
}

struct Row {
    scenario: &'static str,
    entries: usize,
    seconds: f64,
    bytes: u64,
    round_trips: u32,
}

async fn connect_and_sync(b: &Running, addr: &str) -> (f64, u64, u32) {
    let start = Instant::now();
    let peer = b.client.dial(addr.parse().unwrap()).await.expect("dial");
    let stats = b.client.sync(peer).await.expect("sync");
    let seconds = start.elapsed().as_secs_f64();
    let (sent, received) = b.client.bytes().await.expect("bytes");
    (seconds, sent + received, stats.round_trips)
}

async fn pair(n: usize, rows: &mut Vec<Row>) {
    let a_dir = tempfile::tempdir().unwrap();
    let b_dir = tempfile::tempdir().unwrap();
    let ids = compare::source(a_dir.path(), n);
    drop(init(b_dir.path(), "New Group"));
    let a = run(a_dir.path(), true).await;
    let addr = a.addr.clone().unwrap();

    let b = run(b_dir.path(), false).await;
    let (seconds, bytes, round_trips) = connect_and_sync(&b, &addr).await;
    b.stop().await;
    let have = Node::open(b_dir.path()).unwrap().store().counts().unwrap();
    let learning = have
        .iter()
        .find(|(k, _)| k == "learning")
        .map_or(0, |(_, c)| *c);
    assert_eq!(learning as usize, n, "the fresh node has every entry");
    rows.push(Row {
        scenario: "catch-up",
        entries: n,
        seconds,
        bytes,
        round_trips,
    });

    let b = run(b_dir.path(), false).await;
    let (seconds, bytes, round_trips) = connect_and_sync(&b, &addr).await;
    b.stop().await;
    rows.push(Row {
        scenario: "reconnect-unchanged",
        entries: n,
        seconds,
        bytes,
        round_trips,
    });

    compare::edit_ten(a_dir.path(), &ids);
    let b = run(b_dir.path(), false).await;
    let (seconds, bytes, round_trips) = connect_and_sync(&b, &addr).await;
    b.stop().await;
    rows.push(Row {
        scenario: "reconnect-10-changed",
        entries: n,
        seconds,
        bytes,
        round_trips,
    });
    a.stop().await;
}

async fn propagate(mesh: bool, rows: &mut Vec<Row>) {
    const NODES: usize = 10;
    let dirs: Vec<tempfile::TempDir> = (0..NODES).map(|_| tempfile::tempdir().unwrap()).collect();
    for (i, d) in dirs.iter().enumerate() {
        drop(init(d.path(), &format!("Member {i}")));
    }
    let mut running: Vec<Running> = Vec::new();
    for d in &dirs {
        running.push(run(d.path(), true).await);
    }
    for i in 1..NODES {
        let targets: Vec<usize> = if mesh { (0..i).collect() } else { vec![i - 1] };
        for j in targets {
            let addr = running[j].addr.clone().unwrap();
            let peer: NodeId = running[i]
                .client
                .dial(addr.parse().unwrap())
                .await
                .expect("dial");
            running[i].client.sync(peer).await.expect("sync");
        }
    }
    // Let every node settle (profiles relayed) before timing.
    let readers: Vec<Node> = dirs.iter().map(|d| Node::open(d.path()).unwrap()).collect();
    let total = NODES;
    wait_until(|| readers.iter().all(|r| count_orgs(r) == total)).await;

    let mut writer = Node::open(dirs[0].path()).unwrap();
    let start = Instant::now();
    let id = writer.publish(corpus(1).pop().unwrap()).expect("publish");
    wait_until(|| readers.iter().all(|r| has(r, id))).await;
    let seconds = start.elapsed().as_secs_f64();
    let mut bytes = 0;
    for r in &running {
        let (s, _) = r.client.bytes().await.unwrap();
        bytes += s;
    }
    for r in running {
        r.stop().await;
    }
    rows.push(Row {
        scenario: if mesh {
            "propagate-mesh-10"
        } else {
            "propagate-line-10"
        },
        entries: 1,
        seconds,
        bytes,
        round_trips: 0,
    });
}

fn count_orgs(n: &Node) -> usize {
    n.store()
        .counts()
        .unwrap()
        .iter()
        .find(|(k, _)| k == "organisation")
        .map_or(0, |(_, c)| *c as usize)
}

/// Whether the node has the document (one indexed read: the bench's
/// looking must cost the nodes it measures next to nothing).
fn has(n: &Node, id: DocumentId) -> bool {
    n.store().heads(id).is_ok_and(|h| !h.is_empty())
}

async fn wait_until(check: impl FnMut() -> bool) {
    wait_every(Duration::from_millis(2), check).await;
}

/// Runs `check` every `step` until it holds (at most 120 s).
async fn wait_every(step: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !check() {
        assert!(Instant::now() < deadline, "benchmark step timed out");
        tokio::time::sleep(step).await;
    }
}

fn main() {
    dispatch(args());
}

/// Runs what `args` ask for: a child's role, `--compare`, or the plain bench.
pub fn dispatch(args: Args) {
    if let Some(role) = &args.role {
        let home = || args.home.as_deref().expect("--home");
        let ids = || args.ids.as_deref().expect("--ids");
        let addr = || args.addr.as_deref().expect("--addr");
        match role.as_str() {
            "serve" => child::convene_serve(home()),
            "fetch" => child::convene_fetch(home(), addr()),
            "floor" => child::floor(home()),
            "floor-parallel" => child::floor_parallel(home()),
            "floor-load" => child::floor_load(home()),
            "build" => child::build(home(), args.entries[0]),
            "samod-serve" => child::samod_serve(home(), ids()),
            "samod-fetch" => child::samod_fetch(addr(), ids()),
            other => panic!("unknown role {other}"),
        }
        return;
    }
    if args.compare {
        compare::main(&args);
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut rows = Vec::new();
    rt.block_on(async {
        for &n in &args.entries {
            pair(n, &mut rows).await;
        }
        propagate(false, &mut rows).await;
        propagate(true, &mut rows).await;
    });
    if args.json {
        for r in &rows {
            println!(
                "{}",
                serde_json::json!({
                    "system": "convene",
                    "scenario": r.scenario,
                    "entries": r.entries,
                    "seconds": r.seconds,
                    "bytes": r.bytes,
                    "round_trips": r.round_trips,
                })
            );
        }
    } else {
        println!(
            "{:<22} {:>8} {:>10} {:>12} {:>12}",
            "scenario", "entries", "seconds", "bytes", "round trips"
        );
        for r in &rows {
            println!(
                "{:<22} {:>8} {:>10.3} {:>12} {:>12}",
                r.scenario, r.entries, r.seconds, r.bytes, r.round_trips
            );
        }
    }
}
