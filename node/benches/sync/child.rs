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

use crate::{connect_and_sync, run};

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

/// CPU time (user and system) this process has used, in seconds.
pub fn cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // Fields after the command name (which may hold spaces).
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            let ticks = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
            Some(ticks / 100.0)
        })
        .unwrap_or(0.0)
}

/// `--role build`: a source node with `n` entries (for profiling a role
/// by hand).
pub fn build(home: &Path, n: usize) {
    crate::compare::source(home, n);
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
/// session and reports it (a new process per session, as after a restart).
pub fn convene_fetch(home: &Path, addr: &str) {
    let rt = runtime();
    let (seconds, bytes, round_trips, cpu) = rt.block_on(async {
        let b = run(home, false).await;
        let cpu = cpu_seconds();
        let (s, b_, r) = connect_and_sync(&b, addr).await;
        let cpu = cpu_seconds() - cpu;
        b.stop().await;
        (s, b_, r, cpu)
    });
    println!("done {seconds} {bytes} {round_trips} {} {cpu}", peak_rss());
}

/// `--role floor`: automerge alone, in one process: every change of the
/// source node is decoded, its signature verified and applied to its
/// document, all documents kept in memory. Reading the rows from SQLite is
/// not timed.
pub fn floor(home: &Path) {
    let node = Node::open(home).expect("open");
    let changes = node.store().all_changes().expect("changes");
    drop(node);
    let cpu = cpu_seconds();
    let start = Instant::now();
    let mut docs: HashMap<DocumentId, Automerge> = HashMap::new();
    for c in &changes {
        let change = c.verify().expect("a valid signature");
        docs.entry(c.doc)
            .or_default()
            .apply_changes([change])
            .expect("applies");
    }
    let seconds = start.elapsed().as_secs_f64();
    assert!(docs.values().all(|d| !d.get_heads().is_empty()));
    let cpu = cpu_seconds() - cpu;
    println!("done {seconds} 0 0 {} {cpu}", peak_rss());
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
                    for h in handles.iter().take(10) {
                        h.with_document(|d| {
                            use automerge::transaction::Transactable;
                            d.transact(|tx| {
                                tx.put(automerge::ROOT, "impact", "64 per cent fewer minutes lost")
                            })
                            .expect("edit");
                        });
                    }
                    println!("done edited");
                }
                _ => {}
            });
        })
        .await
        .unwrap();
        repo.stop().await;
    });
}

/// Counts the sync messages a samod repo generates and receives.
#[derive(Debug, Default, Clone)]
struct Messages(Arc<AtomicU64>);

impl samod::RepoObserver for Messages {
    fn observe(&self, event: &samod::RepoEvent) {
        if matches!(
            event,
            samod::RepoEvent::SyncMessageReceived { .. }
                | samod::RepoEvent::SyncMessageGenerated { .. }
        ) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A TCP stream that counts the bytes through it.
struct Counted {
    inner: tokio::net::TcpStream,
    bytes: Arc<AtomicU64>,
}

impl tokio::io::AsyncRead for Counted {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        self.bytes.fetch_add(n as u64, Ordering::Relaxed);
        r
    }
}

impl tokio::io::AsyncWrite for Counted {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let r = std::pin::Pin::new(&mut self.inner).poll_write(cx, buf);
        if let std::task::Poll::Ready(Ok(n)) = r {
            self.bytes.fetch_add(n as u64, Ordering::Relaxed);
        }
        r
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

struct CountingDialer {
    addr: String,
    bytes: Arc<AtomicU64>,
}

impl samod::Dialer for CountingDialer {
    type Error = std::convert::Infallible;

    fn url(&self) -> samod::Url {
        format!("tcp://{}", self.addr).parse().unwrap()
    }

    fn connect(
        &self,
    ) -> futures::future::BoxFuture<'static, Result<samod::Transport, samod::DialError<Self::Error>>>
    {
        let addr = self.addr.clone();
        let bytes = self.bytes.clone();
        Box::pin(async move {
            let inner = tokio::net::TcpStream::connect(addr)
                .await
                .map_err(samod::DialError::transient)?;
            Ok(samod::Transport::from_tokio_io(Counted { inner, bytes }))
        })
    }
}

/// Waits until no byte has moved for a while, so counts include the tail
/// of the exchange.
async fn quiet(bytes: &AtomicU64) {
    let mut last = bytes.load(Ordering::Relaxed);
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = bytes.load(Ordering::Relaxed);
        if now == last {
            return;
        }
        last = now;
    }
}

/// `--role samod-fetch`: a fresh samod repo (in-memory storage) that dials
/// `addr` and `find`s every id in `ids` (`catch-up`), then closes the
/// connection and dials again, waiting until every document is in sync
/// both ways (`reconnect`). Times stop when the last document is done;
/// bytes (both directions, on the wire) and sync messages are counted
/// until the connection is quiet.
pub fn samod_fetch(addr: &str, ids: &Path) {
    let ids: Vec<samod::DocumentId> = std::fs::read_to_string(ids)
        .expect("ids")
        .lines()
        .map(|l| l.parse().expect("a document id"))
        .collect();
    let rt = runtime();
    let messages = Messages::default();
    let bytes = Arc::new(AtomicU64::new(0));
    let repo = rt.block_on(async {
        samod::Repo::build_tokio()
            .with_observer(messages.clone())
            .load()
            .await
    });
    let dial = |repo: &samod::Repo| {
        repo.dial(
            samod::BackoffConfig::default(),
            Arc::new(CountingDialer {
                addr: addr.to_string(),
                bytes: bytes.clone(),
            }),
        )
        .unwrap()
    };
    let counts = || {
        (
            bytes.load(Ordering::Relaxed),
            messages.0.load(Ordering::Relaxed),
        )
    };
    let report = |seconds: f64, since: (u64, u64), cpu: f64| {
        let cpu = cpu_seconds() - cpu;
        rt.block_on(quiet(&bytes));
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
    commands(|c| match c {
        "catch-up" => {
            let since = counts();
            let cpu = cpu_seconds();
            let seconds = rt.block_on(async {
                let start = Instant::now();
                let d = dial(&repo);
                d.established().await.expect("connected");
                dialer = Some(d);
                let found =
                    futures::future::join_all(ids.iter().map(|id| repo.find(id.clone()))).await;
                handles = found
                    .into_iter()
                    .map(|f| f.expect("repo running").expect("found"))
                    .collect();
                start.elapsed().as_secs_f64()
            });
            report(seconds, since, cpu);
        }
        "reconnect" => {
            if let Some(d) = dialer.take() {
                d.close();
            }
            rt.block_on(quiet(&bytes));
            let since = counts();
            let cpu = cpu_seconds();
            let seconds = rt.block_on(async {
                let start = Instant::now();
                let d = dial(&repo);
                d.established().await.expect("connected");
                let conn = d.connection_id().expect("a connection");
                futures::future::join_all(handles.iter().map(|h| async move {
                    h.we_have_their_changes(conn).await;
                    h.they_have_our_changes(conn).await;
                }))
                .await;
                dialer = Some(d);
                start.elapsed().as_secs_f64()
            });
            report(seconds, since, cpu);
        }
        "rss" => println!("done {}", peak_rss()),
        _ => {}
    });
    rt.block_on(repo.stop());
}
