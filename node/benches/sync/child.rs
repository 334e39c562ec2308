//! The processes of `--compare`: the bench binary re-executes itself with a
//! hidden `--role` so that each side of a sync runs in its own process and
//! its peak memory can be read on its own.
//!
//! A child talks to the parent in lines: it prints `ready …` or `done …`
//! on stdout and takes commands (`rss`, `catch-up`, `reconnect`, `edit`)
//! on stdin; it exits when stdin closes. Peak memory is the child's own
//! `VmHWM` from `/proc/self/status` (the most resident memory it ever
//! had), read when the parent asks.

use std::collections::HashMap;
use std::io::BufRead;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use automerge::{Automerge, Change};
use convene_model::DocumentId;
use convene_node::Node;
use convene_node::SignedChange;

use super::{connect_and_sync, run};

/// The most resident memory this process has had, in bytes (0 where
/// `/proc` is missing).
pub fn peak_rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Runs `f` on every command line until stdin closes.
fn commands(mut f: impl FnMut(&str)) {
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        f(line.trim());
    }
}

/// Every stored change of a node, decoded, grouped by document, in the
/// order the store received them.
fn changes_by_doc(home: &Path) -> Vec<(DocumentId, Vec<Change>)> {
    let node = Node::open(home).expect("open");
    let mut order = Vec::new();
    let mut by_doc: HashMap<DocumentId, Vec<Change>> = HashMap::new();
    for c in node.store().all_changes().expect("changes") {
        let change = Change::try_from(c.bytes.as_slice()).expect("decodes");
        by_doc
            .entry(c.doc)
            .or_insert_with(|| {
                order.push(c.doc);
                Vec::new()
            })
            .push(change);
    }
    order
        .into_iter()
        .map(|d| {
            let changes = by_doc.remove(&d).unwrap_or_default();
            (d, changes)
        })
        .collect()
}

/// CPU time (user and system) this process has used, in seconds, at the
/// kernel's full resolution (not the 10 ms of `/proc/self/stat`).
pub fn cpu_seconds() -> f64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
}

/// `--role build`: a source node with `n` entries (for profiling a role
/// by hand).
pub fn build(home: &Path, n: usize) {
    super::compare::source(home, n);
}

/// `--role serve`: a Convene daemon on `home`, listening on loopback.
pub fn convene_serve(home: &Path) {
    let rt = runtime();
    let running = rt.block_on(run(home, true));
    println!("ready {}", running.addr.clone().unwrap());
    commands(|c| {
        if c == "rss" {
            println!("done {}", peak_rss());
        }
    });
    rt.block_on(running.stop());
}

/// `--role fetch`: a Convene daemon on `home` that dials `addr`, runs one
/// session and reports it (a new process per session, as after a restart):
/// `done <seconds> <bytes> <messages> <round trips> <peak rss> <cpu>`.
pub fn convene_fetch(home: &Path, addr: &str) {
    let rt = runtime();
    let (seconds, bytes, messages, round_trips, cpu) = rt.block_on(async {
        let b = run(home, false).await;
        let cpu = cpu_seconds();
        let (s, bytes, r) = connect_and_sync(&b, addr).await;
        let cpu = cpu_seconds() - cpu;
        let (sent, received) = b.client.messages().await.expect("messages");
        b.stop().await;
        (s, bytes, sent + received, r, cpu)
    });
    println!(
        "done {seconds} {bytes} {messages} {round_trips} {} {cpu}",
        peak_rss()
    );
}

/// Every stored change of the node at `home` (read before timing starts),
/// grouped by document in the order the node received them.
pub(super) fn stored_by_doc(home: &Path) -> Vec<Vec<SignedChange>> {
    let node = Node::open(home).expect("open");
    let changes = node.store().all_changes().expect("changes");
    drop(node);
    let mut index: HashMap<DocumentId, usize> = HashMap::new();
    let mut docs: Vec<Vec<SignedChange>> = Vec::new();
    for c in changes {
        let i = *index.entry(c.doc).or_insert_with(|| {
            docs.push(Vec::new());
            docs.len() - 1
        });
        docs[i].push(c);
    }
    docs
}

/// Decodes, verifies and applies one document's changes, as Convene must
/// for every change it receives.
pub(super) fn replay(changes: &[SignedChange]) -> Automerge {
    let mut doc = Automerge::new();
    for c in changes {
        let change = c.verify().expect("a valid signature");
        doc.apply_changes([change]).expect("applies");
    }
    doc
}

/// `f` over `items` on every core (contiguous slices, one thread each).
pub(super) fn on_every_core<T: Sync, U: Send>(items: &[T], f: impl Fn(&T) -> U + Sync) -> Vec<U> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(items.len().max(1));
    let size = items.len().div_ceil(threads).max(1);
    let f = &f;
    std::thread::scope(|s| {
        let parts: Vec<_> = items
            .chunks(size)
            .map(|c| s.spawn(move || c.iter().map(f).collect::<Vec<U>>()))
            .collect();
        parts
            .into_iter()
            .flat_map(|h| h.join().expect("a floor thread"))
            .collect()
    })
}

/// The heads of a document a floor made, which it then lets go: holding
/// every document in memory is no part of the work (Convene stores each
/// and lets it go too), and letting go is part of its cost.
pub(super) fn heads(doc: Automerge) -> Vec<automerge::ChangeHash> {
    doc.get_heads()
}

/// Times `work` (wall clock and this process's CPU), checks it made every
/// document (each one's heads), and prints `done <seconds> <bytes> <peak
/// rss> <cpu>`.
fn report_floor(bytes: usize, work: impl FnOnce() -> Vec<Vec<automerge::ChangeHash>>) {
    let cpu = cpu_seconds();
    let start = Instant::now();
    let out = work();
    let seconds = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu;
    assert!(out.iter().all(|h| !h.is_empty()));
    println!("done {seconds} {bytes} {} {cpu}", peak_rss());
}

/// `--role floor`: automerge alone, in one process on one core: every
/// change of the source node is decoded, its signature verified and applied
/// to its document, which is then let go ([`heads`]). Reading the rows from
/// SQLite is not timed. `done <seconds> <bytes> <peak rss> <cpu>`, where
/// bytes are the changes' bytes (what any system must be sent).
pub fn floor(home: &Path) {
    let docs = stored_by_doc(home);
    let bytes: usize = docs.iter().flatten().map(|c| c.bytes.len()).sum();
    report_floor(bytes, || docs.iter().map(|d| heads(replay(d))).collect());
}

/// `--role floor-parallel`: the same work as `floor`, the documents spread
/// over every core.
pub fn floor_parallel(home: &Path) {
    let docs = stored_by_doc(home);
    let bytes: usize = docs.iter().flatten().map(|c| c.bytes.len()).sum();
    report_floor(bytes, || on_every_core(&docs, |d| heads(replay(d))));
}

/// `--role floor-load`: what a system that ships whole documents instead
/// of signed changes would do: load each source document's saved form
/// (the source node's own snapshot), on every core. No signature or
/// permission is checked. Bytes are the saved forms' bytes.
pub fn floor_load(home: &Path) {
    let db = Node::open(home).expect("open").store().path().to_path_buf();
    let conn = rusqlite::Connection::open(db).expect("open the source's database");
    let saved: Vec<Vec<u8>> = conn
        .prepare("SELECT snapshot FROM docs WHERE length(snapshot) > 0")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    drop(conn);
    let bytes: usize = saved.iter().map(Vec::len).sum();
    report_floor(bytes, || {
        on_every_core(&saved, |s| heads(Automerge::load(s).expect("loads")))
    });
}

/// `--role samod-serve`: a samod repo (in-memory storage) holding the
/// documents of the Convene node at `home`, built from the same change
/// bytes, listening on loopback TCP; writes the document ids to `ids`.
pub fn samod_serve(home: &Path, ids: &Path) {
    use futures::StreamExt;
    let docs = changes_by_doc(home);
    let rt = runtime();
    rt.block_on(async {
        let repo = samod::Repo::build_tokio().load().await;
        let handles: Vec<samod::DocHandle> = futures::stream::iter(docs)
            .map(|(_, changes)| {
                let repo = repo.clone();
                async move {
                    let mut doc = Automerge::new();
                    doc.apply_changes(changes).expect("applies");
                    repo.create(doc).await.expect("repo running")
                }
            })
            .buffered(64)
            .collect()
            .await;
        let list: Vec<String> = handles
            .iter()
            .map(|h| h.document_id().to_string())
            .collect();
        std::fs::write(ids, list.join("\n")).expect("write ids");

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = repo
            .make_acceptor(format!("tcp://{addr}").parse().unwrap())
            .unwrap();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                if acceptor.accept_tokio_io(stream).is_err() {
                    break;
                }
            }
        });
        println!("ready {addr}");
        let handles = Arc::new(handles);
        tokio::task::spawn_blocking(move || {
            commands(|c| match c {
                "rss" => println!("done {}", peak_rss()),
                "edit" => {
                    let mut bytes = 0;
                    for h in handles.iter().take(10) {
                        h.with_document(|d| {
                            use automerge::transaction::Transactable;
                            d.transact(|tx| tx.put(automerge::ROOT, "impact", EDITED_IMPACT))
                                .expect("edit");
                            bytes += d.get_last_local_change().map_or(0, |c| c.raw_bytes().len());
                        });
                    }
                    println!("done {bytes}");
                }
                _ => {}
            });
        })
        .await
        .unwrap();
        repo.stop().await;
    });
}

/// Counts the sync messages a samod repo generates and receives, and
/// their bytes (the protocol's own bytes, as Convene's codec counts its
/// frames).
#[derive(Debug, Default, Clone)]
struct Messages {
    count: Arc<AtomicU64>,
    bytes: Arc<AtomicU64>,
}

impl samod::RepoObserver for Messages {
    fn observe(&self, event: &samod::RepoEvent) {
        if let samod::RepoEvent::SyncMessageReceived { bytes, .. }
        | samod::RepoEvent::SyncMessageGenerated { bytes, .. } = event
        {
            self.count.fetch_add(1, Ordering::Relaxed);
            self.bytes.fetch_add(*bytes as u64, Ordering::Relaxed);
        }
    }
}

/// Dials one TCP address (the bench's counting proxy).
struct Dialer {
    addr: String,
}

impl samod::Dialer for Dialer {
    type Error = std::convert::Infallible;

    fn url(&self) -> samod::Url {
        format!("tcp://{}", self.addr).parse().unwrap()
    }

    fn connect(
        &self,
    ) -> futures::future::BoxFuture<'static, Result<samod::Transport, samod::DialError<Self::Error>>>
    {
        let addr = self.addr.clone();
        Box::pin(async move {
            let inner = tokio::net::TcpStream::connect(addr)
                .await
                .map_err(samod::DialError::transient)?;
            let _ = inner.set_nodelay(true);
            Ok(samod::Transport::from_tokio_io(inner))
        })
    }
}

/// Whether the first `k` documents hold the source's edit.
fn edited(handles: &[samod::DocHandle], k: usize) -> bool {
    handles.iter().take(k).all(|h| {
        h.with_document(|d| {
            use automerge::ReadDoc;
            matches!(
                d.get(automerge::ROOT, "impact"),
                Ok(Some((automerge::Value::Scalar(s), _)))
                    if s.as_str() == Some(EDITED_IMPACT)
            )
        })
    })
}

/// What `edit` puts in each edited document (and Convene's bench the same).
pub const EDITED_IMPACT: &str = "64 per cent fewer minutes lost";

/// `--role samod-fetch`: a fresh samod repo (in-memory storage) that dials
/// `addr` (the counting proxy) and `find`s every id in `ids` (`catch-up`);
/// `disconnect` closes the connection; `reconnect K` dials again and waits
/// until every document is in sync both ways and the first K documents
/// hold the source's edit. Each reports `done <seconds> <sync message
/// bytes> <sync messages> <peak rss> <cpu>` when its documents are there;
/// the parent reads the wire bytes off the proxy.
pub fn samod_fetch(addr: &str, ids: &Path) {
    let ids: Vec<samod::DocumentId> = std::fs::read_to_string(ids)
        .expect("ids")
        .lines()
        .map(|l| l.parse().expect("a document id"))
        .collect();
    let rt = runtime();
    let messages = Messages::default();
    let repo = rt.block_on(async {
        samod::Repo::build_tokio()
            .with_observer(messages.clone())
            .load()
            .await
    });
    // Dials the proxy and waits until the connection is up.
    let connect = |repo: &samod::Repo| {
        let d = repo
            .dial(
                samod::BackoffConfig::default(),
                Arc::new(Dialer {
                    addr: addr.to_string(),
                }),
            )
            .unwrap();
        async move {
            d.established().await.expect("connected");
            d
        }
    };
    let counts = || {
        (
            messages.bytes.load(Ordering::Relaxed),
            messages.count.load(Ordering::Relaxed),
        )
    };
    // `done <seconds> <sync message bytes> <sync messages> <peak rss> <cpu>`
    // for a run that started at `since` counts and `cpu` seconds.
    let report = |seconds: f64, (since, cpu): ((u64, u64), f64)| {
        let cpu = cpu_seconds() - cpu;
        let (b, m) = counts();
        println!(
            "done {seconds} {} {} {} {cpu}",
            b - since.0,
            m - since.1,
            peak_rss()
        );
    };
    let mut handles: Vec<samod::DocHandle> = Vec::new();
    let mut dialer: Option<samod::DialerHandle<std::convert::Infallible>> = None;
    commands(|c| {
        let mut words = c.split_whitespace();
        match words.next() {
            Some("catch-up") => {
                let since = (counts(), cpu_seconds());
                let seconds = rt.block_on(async {
                    let start = Instant::now();
                    dialer = Some(connect(&repo).await);
                    let found =
                        futures::future::join_all(ids.iter().map(|id| repo.find(id.clone()))).await;
                    handles = found
                        .into_iter()
                        .map(|f| f.expect("repo running").expect("found"))
                        .collect();
                    start.elapsed().as_secs_f64()
                });
                report(seconds, since);
            }
            Some("disconnect") => {
                if let Some(d) = dialer.take() {
                    d.close();
                }
                println!("done disconnected");
            }
            Some("reconnect") => {
                let k: usize = words.next().map_or(0, |w| w.parse().expect("a count"));
                let since = (counts(), cpu_seconds());
                let seconds = rt.block_on(async {
                    let start = Instant::now();
                    let d = connect(&repo).await;
                    let conn = d.connection_id().expect("a connection");
                    futures::future::join_all(handles.iter().map(|h| async move {
                        h.we_have_their_changes(conn).await;
                        h.they_have_our_changes(conn).await;
                    }))
                    .await;
                    while !edited(&handles, k) {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    dialer = Some(d);
                    start.elapsed().as_secs_f64()
                });
                report(seconds, since);
            }
            Some("rss") => println!("done {}", peak_rss()),
            _ => {}
        }
    });
    rt.block_on(repo.stop());
}
