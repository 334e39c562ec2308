//! Load: five daemons on loopback, fully connected, each publishing ten
//! entries a second while they sync. Every node must hold every entry
//! within five seconds of the last publish, and memory must stay flat.
//!
//! The normal suite publishes for five seconds; the full form publishes for
//! sixty:
//!
//! ```text
//! CONVENE_LONG=1 cargo test -p convene-node --release --test load -- --nocapture
//! ```
//!
//! The nodes run in this process (one tokio runtime). "Flat" is judged on
//! what the nodes hold on the heap, counted exactly by a counting global
//! allocator: the resident set is printed, not judged, because it moves with
//! things no node holds (code paged in, the allocator keeping freed memory
//! in its per-thread arenas): measured here, a 60 s run held 2.2 MiB of heap
//! at the start and 7.9 MiB at the end while the resident set went from
//! 37 MiB to 60 MiB, and heaptrack found nothing left unfreed at exit.

use std::time::{Duration, Instant};

use convene_model::{Body, EntryInput, Learning};
use convene_node::daemon::{self, Config};
use convene_node::{InitOptions, Node};
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};

#[global_allocator]
static ALLOC: &StatsAlloc<std::alloc::System> = &INSTRUMENTED_SYSTEM;

const NODES: usize = 5;
const PER_SECOND: u64 = 10;
/// How long after the last publish every node must hold every entry.
const CONVERGE: Duration = Duration::from_secs(5);
/// How much more heap the nodes may hold at the end than after the first
/// second, KiB: what is in flight at either moment, plus
/// [`PER_ENTRY_KIB`] for each entry the nodes came to hold meanwhile.
/// Measured (debug build, 2 cores): 0.3 to 0.6 MiB of growth in the 5 s
/// form, 5.7 MiB in the 60 s form (about 0.4 KiB per entry held: each
/// node's catalogue, and what it remembers each peer holds, bounded per
/// peer). A leak of 16 KiB per served request grew it by 13 MiB in the
/// 5 s form, against a bound of 3 MiB.
const GROWTH_BASE_KIB: i64 = 2 * 1024;
/// Heap allowed for each entry a node holds (its catalogue row, what each
/// peer is known to hold): about 0.4 KiB measured.
const PER_ENTRY_KIB: i64 = 1;

/// Bytes on the Rust heap now (allocated less freed), KiB.
fn heap_kib() -> i64 {
    let s = ALLOC.stats();
    (s.bytes_allocated as i64 - s.bytes_deallocated as i64) / 1024
}

fn long() -> bool {
    std::env::var_os("CONVENE_LONG").is_some_and(|v| v != "0")
}

/// Resident set size of this process, in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn learning_count(node: &Node) -> i64 {
    node.store()
        .counts()
        .unwrap()
        .into_iter()
        .find(|(k, _)| k == "learning")
        .map_or(0, |(_, n)| n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_nodes_publishing_ten_entries_a_second_converge_and_memory_stays_flat() {
    let seconds: u64 = if long() { 60 } else { 5 };
    let dirs: Vec<tempfile::TempDir> = (0..NODES).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut clients = Vec::new();
    let mut addrs = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        let node = Node::init(
            dir.path(),
            &InitOptions {
                org: format!("Member {i}"),
                sector: "council".into(),
                place: None,
            },
        )
        .unwrap();
        let config = Config {
            listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
            bootstrap: Vec::new(),
            mdns: false,
            ..Config::default()
        };
        let (client, _handle) = daemon::spawn(node, config).unwrap();
        addrs.push(client.listen_addrs().await.unwrap()[0].clone());
        clients.push(client);
    }
    // Fully connected: each node dials the ones before it.
    for i in 0..NODES {
        for addr in &addrs[..i] {
            clients[i].dial(addr.clone()).await.unwrap();
        }
    }

    // Writers (as CLI commands would be) publish on a fixed schedule.
    let mut writers: Vec<Node> = dirs.iter().map(|d| Node::open(d.path()).unwrap()).collect();
    let readers: Vec<Node> = dirs.iter().map(|d| Node::open(d.path()).unwrap()).collect();
    let total = seconds * PER_SECOND;
    let mut ticker = tokio::time::interval(Duration::from_millis(1000 / PER_SECOND));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    // (second, resident set KiB, heap KiB)
    let mut samples: Vec<(u64, u64, i64)> = Vec::new();
    for n in 0..total {
        ticker.tick().await;
        for (i, w) in writers.iter_mut().enumerate() {
            w.publish(EntryInput {
                body: Body::Learning(Learning {
                    title: format!("Lesson {n} from member {i}"),
                    summary: "What the load test taught us.".into(),
                    ..Learning::default()
                }),
                visibility: None,
                status: None,
            })
            .unwrap();
        }
        if n % PER_SECOND == 0 {
            samples.push((n / PER_SECOND, rss_kib(), heap_kib()));
        }
    }
    let published = started.elapsed();
    let last_publish = Instant::now();
    let want = (total * NODES as u64) as i64;
    loop {
        let counts: Vec<i64> = readers.iter().map(learning_count).collect();
        if counts.iter().all(|c| *c == want) {
            break;
        }
        assert!(
            last_publish.elapsed() < CONVERGE,
            "not converged {CONVERGE:?} after the last publish: {counts:?} of {want}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let converged = last_publish.elapsed();
    samples.push((seconds, rss_kib(), heap_kib()));
    eprintln!(
        "{NODES} nodes, {total} entries each in {published:.1?}; converged {converged:.2?} after the last; (s, RSS KiB, heap KiB): {samples:?}"
    );
    // Flat: from the end of the first second (start-up done) to the end,
    // the heap grows by what is in flight plus a bounded amount per entry
    // the nodes came to hold, however long the run.
    let (_, _, warm) = samples[1];
    let (_, _, end) = *samples.last().unwrap();
    let held_since = (want - PER_SECOND as i64 * NODES as i64) * NODES as i64;
    let bound = GROWTH_BASE_KIB + PER_ENTRY_KIB * held_since;
    assert!(
        end - warm < bound,
        "the nodes' heap grew from {warm} KiB to {end} KiB (bound {bound} KiB for {held_since} entries held since): {samples:?}"
    );
    drop(clients);
}
