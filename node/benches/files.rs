//! File-transfer benchmark: attachments over `/convene/files/1`, between
//! real daemons (libp2p: TCP, Noise, Yamux) on loopback, through the
//! daemon's own fetch path (the index of files entries use, the fetcher,
//! verification of every range, the partial file, the final check of the
//! whole file and its rename into the store).
//!
//! ```text
//! cargo bench -p convene-node --bench files -- [--size-mb N] [--files N] [--total-mb N] [--json]
//! ```
//!
//! Rows, every figure measured in the run:
//! - `one-file`: one file of `--size-mb` (default 100) from one source to
//!   a fresh fetching node; and the same at a tenth of the size (to show
//!   the fetching process's peak memory does not grow with the file);
//! - `many-files`: `--total-mb` (default 1,000) across `--files` (default
//!   200) files, held by 3 source nodes at once, fetched by a fourth;
//! - `floor-hash-1` / `floor-hash-all`: BLAKE3 of the same `--size-mb`
//!   file's bytes (already in memory) on one core, and on every core (the
//!   tree split into subtrees whose chaining values are merged, as `b3sum`
//!   does with rayon; the root is checked against `blake3::hash`);
//! - `floor-copy`: `std::fs::copy` of the file to a new file in the same
//!   folder, then `fsync`; `floor-read-write`: the same by 1 MiB reads and
//!   writes, then `fsync`;
//! - `floor-sealed-stream`: the cheapest secure transfer of the file
//!   between two ends on this machine (two threads, loopback TCP, records
//!   sealed with AES-256-GCM, the receiver hashing, writing and syncing);
//!   `floor-libp2p-stream`: the same through libp2p's TCP, Noise and Yamux
//!   (the transport members use) on one stream, nothing of Convene's.
//!   Both report `both_ends_cpu_seconds`, as the transfer rows do (the
//!   fetching process's CPU and the sources').
//!
//! The fetching node runs in its own process (the bench re-executes itself
//! with a hidden `--role fetch`), which reports its wall clock, CPU time
//! (`CLOCK_PROCESS_CPUTIME_ID`) and peak resident memory (`VmHWM`); the
//! sources run in the parent. Timing starts before the fetching daemon is
//! spawned (its entries are already synced, so what it does is fetch the
//! files) and ends when every file is in the store under its hash.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use convene_model::{Body, EntryInput, Learning};
use convene_node::blobs::BlobStore;
use convene_node::daemon::{self, Client, Config};
use convene_node::{FileLimits, InitOptions, Node};

const MB: u64 = 1_000_000;

#[derive(Debug, Clone)]
pub struct Args {
    /// The single file's size, MB (10^6 bytes).
    pub size_mb: u64,
    /// Files in the many-files row.
    pub files: usize,
    /// Their total, MB.
    pub total_mb: u64,
    pub json: bool,
    role: Option<String>,
    home: Option<PathBuf>,
    addrs: Vec<String>,
    hashes: Option<PathBuf>,
}

pub fn args() -> Args {
    args_from(std::env::args().skip(1))
}

pub fn args_from(mut it: impl Iterator<Item = String>) -> Args {
    let mut a = Args {
        size_mb: 100,
        files: 200,
        total_mb: 1_000,
        json: false,
        role: None,
        home: None,
        addrs: Vec::new(),
        hashes: None,
    };
    while let Some(arg) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{arg} takes a value"));
        match arg.as_str() {
            "--size-mb" => a.size_mb = value().parse().expect("--size-mb takes a number"),
            "--files" => a.files = value().parse().expect("--files takes a number"),
            "--total-mb" => a.total_mb = value().parse().expect("--total-mb takes a number"),
            "--json" => a.json = true,
            "--role" => a.role = Some(value()),
            "--home" => a.home = Some(value().into()),
            "--addr" => a.addrs.push(value()),
            "--hashes" => a.hashes = Some(value().into()),
            _ => {} // cargo passes --bench
        }
    }
    a
}

/// One measured row. A field that does not apply is `None`, never zero.
#[derive(Debug, Clone)]
pub struct Row {
    pub scenario: String,
    pub files: usize,
    pub sources: Option<usize>,
    /// Content bytes moved (or hashed, or copied).
    pub bytes: u64,
    pub seconds: f64,
    pub cpu_seconds: Option<f64>,
    pub peak_rss: Option<u64>,
    /// What the sources sent: every range's content and proof as encoded
    /// (the protocol's payload, before libp2p's framing and encryption).
    pub sent_bytes: Option<u64>,
    /// Ratios over the floors (MB/s of this row over the floor's), and
    /// `sources_cpu_seconds`: the CPU time the parent process (the source
    /// daemons, while the fetching process ran) used.
    pub extra: Vec<(&'static str, f64)>,
}

impl Row {
    pub fn mb_per_s(&self) -> f64 {
        self.bytes as f64 / MB as f64 / self.seconds
    }

    pub fn json(&self) -> serde_json::Value {
        let mut v = serde_json::json!({
            "system": "convene",
            "scenario": self.scenario,
            "files": self.files,
            "bytes": self.bytes,
            "seconds": self.seconds,
            "mb_per_s": self.mb_per_s(),
        });
        let o = v.as_object_mut().unwrap();
        if let Some(s) = self.sources {
            o.insert("sources".into(), s.into());
        }
        if let Some(c) = self.cpu_seconds {
            o.insert("cpu_seconds".into(), c.into());
        }
        if let Some(r) = self.peak_rss {
            o.insert("peak_rss_bytes".into(), r.into());
        }
        if let Some(b) = self.sent_bytes {
            o.insert("sent_bytes".into(), b.into());
        }
        for (k, x) in &self.extra {
            o.insert((*k).into(), (*x).into());
        }
        v
    }
}

// ---------------------------------------------------------------------
// Content and nodes.

/// `len` bytes that do not repeat (xorshift64*), written as they are made.
struct Content {
    state: u64,
    left: u64,
}

impl Content {
    fn new(len: u64, seed: u64) -> Self {
        Self {
            state: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            left: len,
        }
    }
}

impl Read for Content {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = (buf.len() as u64).min(self.left) as usize / 8 * 8;
        let n = if n == 0 { self.left.min(8) as usize } else { n };
        for chunk in buf[..n].chunks_mut(8) {
            let mut x = self.state;
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            self.state = x;
            let v = x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        self.left -= n as u64;
        Ok(n)
    }
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

fn limits(auto_fetch: u64) -> FileLimits {
    FileLimits {
        max_file: u64::MAX,
        auto_fetch,
        quota_per_org: None,
    }
}

fn config(listen: bool, auto_fetch: u64) -> Config {
    Config {
        listen: if listen {
            vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()]
        } else {
            Vec::new()
        },
        bootstrap: Vec::new(),
        mdns: false,
        files: limits(auto_fetch),
        ..Config::default()
    }
}

struct Running {
    client: Client,
    handle: tokio::task::JoinHandle<()>,
    addr: String,
}

async fn run(home: &Path, auto_fetch: u64) -> Running {
    let node = Node::open(home).expect("open");
    let (client, handle) = daemon::spawn(node, config(true, auto_fetch)).expect("spawn");
    let addr = client.listen_addrs().await.expect("listen")[0].to_string();
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

    fn metric(&self, name: &str) -> u64 {
        self.client
            .metrics()
            .render()
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    }
}

/// A source node at `home` holding one learning entry per size, each with
/// one file of that size; returns the files' hashes.
fn source(home: &Path, sizes: &[u64]) -> Vec<String> {
    let mut node = init(home, "Source Trust");
    let store = node.blobs();
    let mut hashes = Vec::new();
    for (i, &size) in sizes.iter().enumerate() {
        let id = node
            .publish(EntryInput {
                body: Body::Learning(Learning {
                    title: format!("Evaluation report #{i}"),
                    summary: "The report behind this learning.".into(),
                    ..Learning::default()
                }),
                visibility: None,
                status: None,
            })
            .expect("publish");
        let stored = store
            .put(&mut Content::new(size, i as u64 + 1), u64::MAX, None)
            .expect("store the file");
        node.attach_stored(id, &stored, &format!("report-{i}.pdf"))
            .expect("attach");
        hashes.push(stored.hash);
    }
    hashes
}

/// The bytes of `hashes` copied from `from`'s store into `to`'s.
fn copy_files(from: &Path, to: &Path, hashes: &[String]) {
    let (from, to) = (BlobStore::new(from), BlobStore::new(to));
    for h in hashes {
        let mut f = std::fs::File::open(from.path(h).unwrap()).unwrap();
        let stored = to.put(&mut f, u64::MAX, Some(h)).expect("copy a file");
        assert_eq!(&stored.hash, h);
    }
}

/// Gives each node at `others` the entries of the node at `first` (one
/// sync session each, fetching no file).
async fn sync_entries(first: &Path, others: &[PathBuf]) {
    let a = run(first, 0).await;
    for home in others {
        let b = run(home, 0).await;
        let peer = b.client.dial(a.addr.parse().unwrap()).await.expect("dial");
        b.client.sync(peer).await.expect("sync");
        b.stop().await;
    }
    a.stop().await;
}

// ---------------------------------------------------------------------
// The fetching process.

/// The most resident memory this process has had, in bytes.
fn peak_rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// CPU time (user and system, all threads) this process has used.
fn cpu_seconds() -> f64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
}

/// `--role fetch`: a daemon on `home` that fetches every file its entries
/// use from the sources at `addrs`; prints `done <seconds> <cpu> <rss>`
/// once every hash in `hashes` is in its store.
fn fetch(home: &Path, addrs: &[String], hashes: &Path) {
    let hashes: Vec<String> = std::fs::read_to_string(hashes)
        .expect("hashes")
        .lines()
        .map(String::from)
        .collect();
    let store = BlobStore::new(home);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (seconds, cpu) = rt.block_on(async {
        let node = Node::open(home).expect("open");
        let cpu = cpu_seconds();
        let start = Instant::now();
        let (client, handle) = daemon::spawn(node, config(false, u64::MAX)).expect("spawn");
        for a in addrs {
            client
                .dial(a.parse().unwrap())
                .await
                .expect("dial a source");
        }
        // Downloads start in the order of their hashes: look at the first
        // not yet seen held (one `stat` per look, so the looking costs the
        // process it measures next to nothing).
        let mut left = hashes.clone();
        left.sort();
        left.reverse();
        let deadline = start + Duration::from_secs(600);
        while let Some(h) = left.last() {
            if store.has(h) {
                left.pop();
                continue;
            }
            assert!(
                Instant::now() < deadline,
                "the files did not arrive in time"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let seconds = start.elapsed().as_secs_f64();
        let cpu = cpu_seconds() - cpu;
        drop(client);
        let _ = handle.await;
        (seconds, cpu)
    });
    println!("done {seconds} {cpu} {}", peak_rss());
}

// ---------------------------------------------------------------------
// Scenarios.

/// `sources` nodes hold files of `sizes`; a fresh node fetches them all.
fn transfer(
    rt: &tokio::runtime::Runtime,
    base: &Path,
    scenario: &str,
    sources: usize,
    sizes: &[u64],
) -> Row {
    let dir = tempfile::tempdir_in(base).unwrap();
    let homes: Vec<PathBuf> = (0..=sources)
        .map(|i| dir.path().join(format!("node-{i}")))
        .collect();
    let hashes = source(&homes[0], sizes);
    for (i, h) in homes.iter().enumerate().skip(1) {
        drop(init(h, &format!("Member {i}")));
    }
    rt.block_on(sync_entries(&homes[0], &homes[1..]));
    for h in &homes[1..sources] {
        copy_files(&homes[0], h, &hashes);
    }
    let fetcher = &homes[sources];
    let list = dir.path().join("hashes");
    std::fs::write(&list, hashes.join("\n")).unwrap();

    let running: Vec<Running> = rt.block_on(async {
        let mut r = Vec::new();
        for h in &homes[..sources] {
            r.push(run(h, 0).await);
        }
        r
    });
    settle();
    let parent_cpu = cpu_seconds();
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--role", "fetch", "--home"])
        .arg(fetcher)
        .arg("--hashes")
        .arg(&list);
    for r in &running {
        cmd.args(["--addr", &r.addr]);
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the fetching process");
    let mut line = String::new();
    for l in BufReader::new(child.stdout.take().unwrap()).lines() {
        let l = l.unwrap();
        if l.starts_with("done ") {
            line = l;
        }
    }
    assert!(
        child.wait().unwrap().success(),
        "the fetching process failed"
    );
    let sources_cpu = cpu_seconds() - parent_cpu;
    let f: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap())
        .collect();
    assert_eq!(f.len(), 3, "the fetching process said {line:?}");
    let sent: u64 = running
        .iter()
        .map(|r| r.metric("convene_files_sent_bytes_total"))
        .sum();
    rt.block_on(async {
        for r in running {
            r.stop().await;
        }
    });
    // Every file whole under its hash (moved there only after its check).
    let fetched = BlobStore::new(fetcher);
    let bytes: u64 = hashes
        .iter()
        .map(|h| std::fs::metadata(fetched.path(h).unwrap()).unwrap().len())
        .sum();
    assert_eq!(bytes, sizes.iter().sum::<u64>());
    Row {
        scenario: scenario.into(),
        files: sizes.len(),
        sources: Some(sources),
        bytes,
        seconds: f[0],
        cpu_seconds: Some(f[1]),
        peak_rss: Some(f[2] as u64),
        sent_bytes: Some(sent),
        extra: vec![
            ("sources_cpu_seconds", sources_cpu),
            ("both_ends_cpu_seconds", f[1] + sources_cpu),
        ],
    }
}

/// BLAKE3 of `data` with its tree split into `pieces` subtrees hashed on
/// `threads` threads, their chaining values merged as the tree says.
fn hash_parallel(data: &[u8], threads: usize) -> blake3::Hash {
    use blake3::hazmat::{HasherExt, Mode, left_subtree_len, merge_subtrees_non_root};
    // The subtrees: split while a piece is larger than an eighth per thread.
    let target = (data.len() / (threads * 8)).max(64 * 1024) as u64;
    #[derive(Debug)]
    enum Tree {
        Leaf(usize),
        Node(Box<Tree>, Box<Tree>),
    }
    fn split(off: u64, len: u64, target: u64, leaves: &mut Vec<(u64, u64)>) -> Tree {
        if len <= target || len <= 1024 {
            leaves.push((off, len));
            return Tree::Leaf(leaves.len() - 1);
        }
        let left = left_subtree_len(len);
        let l = split(off, left, target, leaves);
        let r = split(off + left, len - left, target, leaves);
        Tree::Node(Box::new(l), Box::new(r))
    }
    let mut leaves = Vec::new();
    let tree = split(0, data.len() as u64, target, &mut leaves);
    let Tree::Node(left, right) = tree else {
        return blake3::hash(data);
    };
    let next = std::sync::atomic::AtomicUsize::new(0);
    let cvs: Vec<std::sync::Mutex<[u8; 32]>> = leaves
        .iter()
        .map(|_| std::sync::Mutex::new([0; 32]))
        .collect();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(&(off, len)) = leaves.get(i) else {
                        return;
                    };
                    let mut h = blake3::Hasher::new();
                    h.set_input_offset(off);
                    h.update(&data[off as usize..(off + len) as usize]);
                    *cvs[i].lock().unwrap() = h.finalize_non_root();
                }
            });
        }
    });
    fn cv(t: &Tree, cvs: &[std::sync::Mutex<[u8; 32]>]) -> [u8; 32] {
        match t {
            Tree::Leaf(i) => *cvs[*i].lock().unwrap(),
            Tree::Node(l, r) => merge_subtrees_non_root(&cv(l, cvs), &cv(r, cvs), Mode::Hash),
        }
    }
    blake3::hazmat::merge_subtrees_root(&cv(&left, &cvs), &cv(&right, &cvs), Mode::Hash)
}

/// Waits until everything written so far is on the disk, so that each
/// row starts with no other row's writing still to do (the page cache's
/// write-back of a gigabyte written just before slowed a floor measured
/// after it by up to ten times).
fn settle() {
    rustix::fs::sync();
}

/// A floor that moves the file between two ends in this process: its
/// CPU time is both ends', as `both_ends_cpu_seconds` is on the
/// transfers' rows (the fetching process's and the sources').
fn transfer_floor_row(scenario: &str, bytes: u64, work: impl FnOnce()) -> Row {
    let cpu = cpu_seconds();
    let mut row = floor_row(scenario, bytes, work);
    row.extra
        .push(("both_ends_cpu_seconds", cpu_seconds() - cpu));
    row
}

fn floor_row(scenario: &str, bytes: u64, work: impl FnOnce()) -> Row {
    settle();
    let start = Instant::now();
    work();
    Row {
        scenario: scenario.into(),
        files: 1,
        sources: None,
        bytes,
        seconds: start.elapsed().as_secs_f64(),
        cpu_seconds: None,
        peak_rss: None,
        sent_bytes: None,
        extra: Vec::new(),
    }
}

/// The floors on one file of `size` bytes, in a folder of `base`.
fn floors(rt: &tokio::runtime::Runtime, base: &Path, size: u64) -> Vec<Row> {
    let dir = tempfile::tempdir_in(base).unwrap();
    let src = dir.path().join("file");
    {
        let mut f = std::fs::File::create(&src).unwrap();
        std::io::copy(&mut Content::new(size, 1), &mut f).unwrap();
        f.sync_all().unwrap();
    }
    let data = std::fs::read(&src).unwrap();
    let expected = blake3::hash(&data);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut rows = Vec::new();
    let mut got = blake3::Hash::from_bytes([0; 32]);
    rows.push(floor_row("floor-hash-1", size, || {
        let mut h = blake3::Hasher::new();
        h.update(&data);
        got = h.finalize();
    }));
    assert_eq!(got, expected);
    let mut r = floor_row("floor-hash-all", size, || {
        got = hash_parallel(&data, threads);
    });
    assert_eq!(got, expected, "the merged tree's root is BLAKE3's");
    r.extra.push(("threads", threads as f64));
    rows.push(r);
    drop(data);
    let dst = dir.path().join("copy");
    rows.push(floor_row("floor-copy", size, || {
        std::fs::copy(&src, &dst).unwrap();
        std::fs::File::open(&dst).unwrap().sync_all().unwrap();
    }));
    std::fs::remove_file(&dst).unwrap();
    rows.push(floor_row("floor-read-write", size, || {
        let mut from = std::fs::File::open(&src).unwrap();
        let mut to = std::fs::File::create(&dst).unwrap();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = from.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            to.write_all(&buf[..n]).unwrap();
        }
        to.sync_all().unwrap();
    }));
    std::fs::remove_file(&dst).unwrap();
    rows.push(transfer_floor_row("floor-sealed-stream", size, || {
        sealed_stream(&src, &dst, expected)
    }));
    std::fs::remove_file(&dst).unwrap();
    rows.push(transfer_floor_row("floor-libp2p-stream", size, || {
        libp2p_stream(rt, &src, &dst, expected)
    }));
    rows
}

/// The cheapest secure transfer there is between two parties on this
/// machine: the file read by one thread, sealed with AES-256-GCM (ring's,
/// which uses the CPU's AES instructions) in records of Noise's largest
/// plaintext, sent over a loopback TCP connection, opened by another
/// thread, hashed with BLAKE3 (checked against the file's hash at the
/// end), written and synced. No handshake (the key is shared in memory),
/// no multiplexing, no proof: each of those only adds.
fn sealed_stream(src: &Path, dst: &Path, expected: blake3::Hash) {
    use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
    const RECORD: usize = 65_535 - 16;
    let mut key = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut key).unwrap();
    let key = || LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key).unwrap());
    let nonce = |n: u64| {
        let mut b = [0u8; 12];
        b[4..].copy_from_slice(&n.to_le_bytes());
        Nonce::assume_unique_for_key(b)
    };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::scope(|s| {
        s.spawn(|| {
            let sealing = key();
            let mut out = std::net::TcpStream::connect(addr).unwrap();
            out.set_nodelay(true).unwrap();
            let mut from = std::fs::File::open(src).unwrap();
            let mut buf = vec![0u8; 4 + RECORD + 16];
            for n in 0u64.. {
                let got = from.read(&mut buf[4..4 + RECORD]).unwrap();
                if got == 0 {
                    break;
                }
                let tag = sealing
                    .seal_in_place_separate_tag(nonce(n), Aad::empty(), &mut buf[4..4 + got])
                    .unwrap();
                buf[4 + got..4 + got + 16].copy_from_slice(tag.as_ref());
                buf[..4].copy_from_slice(&(got as u32 + 16).to_le_bytes());
                out.write_all(&buf[..4 + got + 16]).unwrap();
            }
        });
        let opening = key();
        let (mut input, _) = listener.accept().unwrap();
        let mut to = std::fs::File::create(dst).unwrap();
        let mut hasher = blake3::Hasher::new();
        let mut buf = vec![0u8; RECORD + 16];
        for n in 0u64.. {
            let mut len = [0u8; 4];
            match input.read_exact(&mut len) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
                Err(e) => panic!("{e}"),
            }
            let len = u32::from_le_bytes(len) as usize;
            input.read_exact(&mut buf[..len]).unwrap();
            let plain = opening
                .open_in_place(nonce(n), Aad::empty(), &mut buf[..len])
                .unwrap();
            hasher.update(plain);
            to.write_all(plain).unwrap();
        }
        to.sync_all().unwrap();
        assert_eq!(hasher.finalize(), expected, "the sealed stream's content");
    });
}

/// The same bytes through the transport Convene must use between members
/// (libp2p over TCP: Noise, as libp2p's specification fixes it with
/// ChaCha20-Poly1305, and Yamux), with nothing of Convene's own: one
/// connection, one stream, the file written into it in 1 MiB pieces by
/// one side, read, hashed with BLAKE3 (checked at the end), written and
/// synced by the other. What any protocol over this transport pays before
/// it does anything.
fn libp2p_stream(rt: &tokio::runtime::Runtime, src: &Path, dst: &Path, expected: blake3::Hash) {
    use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
    use libp2p::core::muxing::{StreamMuxerBox, StreamMuxerExt};
    use libp2p::core::transport::{DialOpts, ListenerId, PortUse, TransportEvent};
    use libp2p::core::{Endpoint, Transport, upgrade::Version};
    fn transport() -> libp2p::core::transport::Boxed<(libp2p::PeerId, StreamMuxerBox)> {
        let key = libp2p_identity::Keypair::generate_ed25519();
        libp2p::tcp::tokio::Transport::new(libp2p::tcp::Config::default().nodelay(true))
            .upgrade(Version::V1Lazy)
            .authenticate(libp2p::noise::Config::new(&key).unwrap())
            .multiplex(libp2p::yamux::Config::default())
            .map(|(p, m), _| (p, StreamMuxerBox::new(m)))
            .boxed()
    }
    /// Drives a connection (Yamux writes and reads its frames only while
    /// it is polled) until it closes.
    async fn drive(mut muxer: StreamMuxerBox) {
        while futures::future::poll_fn(|cx| muxer.poll_unpin(cx))
            .await
            .is_ok()
        {}
    }
    rt.block_on(async {
        let mut listener = transport();
        listener
            .listen_on(ListenerId::next(), "/ip4/127.0.0.1/tcp/0".parse().unwrap())
            .unwrap();
        let addr = loop {
            if let TransportEvent::NewAddress { listen_addr, .. } =
                listener.select_next_some().await
            {
                break listen_addr;
            }
        };
        let src = src.to_path_buf();
        let sender = tokio::spawn(async move {
            let opts = DialOpts {
                role: Endpoint::Dialer,
                port_use: PortUse::New,
            };
            let (_, mut muxer) = transport().dial(addr, opts).unwrap().await.unwrap();
            let mut stream = futures::future::poll_fn(|cx| muxer.poll_outbound_unpin(cx))
                .await
                .unwrap();
            let driving = tokio::spawn(drive(muxer));
            let mut from = std::fs::File::open(src).unwrap();
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = from.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                stream.write_all(&buf[..n]).await.unwrap();
            }
            stream.close().await.unwrap();
            // Its connection is driven until the receiver has it all.
            driving.abort_handle()
        });
        let upgrade = loop {
            if let TransportEvent::Incoming { upgrade, .. } = listener.select_next_some().await {
                break upgrade;
            }
        };
        let (_, mut muxer) = upgrade.await.unwrap();
        let mut stream = futures::future::poll_fn(|cx| muxer.poll_inbound_unpin(cx))
            .await
            .unwrap();
        let driving = tokio::spawn(drive(muxer));
        let mut to = std::fs::File::create(dst).unwrap();
        let mut hasher = blake3::Hasher::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = stream.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            to.write_all(&buf[..n]).unwrap();
        }
        to.sync_all().unwrap();
        assert_eq!(hasher.finalize(), expected, "the libp2p stream's content");
        sender.await.unwrap().abort();
        driving.abort();
    });
}

/// Every row the arguments ask for (what the smoke test checks).
pub fn measure(args: &Args) -> Vec<Row> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let base = std::env::temp_dir();
    let size = args.size_mb * MB;
    let mut rows = floors(&rt, &base, size);
    let mut one = transfer(&rt, &base, "one-file", 1, &[size]);
    let tenth = transfer(&rt, &base, "one-file-tenth", 1, &[size / 10]);
    let per = args.total_mb * MB / args.files.max(1) as u64;
    let many = transfer(&rt, &base, "many-files", 3, &vec![per; args.files]);
    let speed = |s: &str| {
        rows.iter()
            .find(|r| r.scenario == s)
            .map(Row::mb_per_s)
            .expect("a floor row")
    };
    for (k, floor) in [
        ("over_floor_hash_1", "floor-hash-1"),
        ("over_floor_hash_all", "floor-hash-all"),
        ("over_floor_copy", "floor-copy"),
        ("over_floor_read_write", "floor-read-write"),
        ("over_floor_sealed_stream", "floor-sealed-stream"),
        ("over_floor_libp2p_stream", "floor-libp2p-stream"),
    ] {
        one.extra.push((k, one.mb_per_s() / speed(floor)));
    }
    one.extra.push((
        "peak_rss_over_tenth",
        one.peak_rss.unwrap() as f64 / tenth.peak_rss.unwrap() as f64,
    ));
    rows.splice(0..0, [one, tenth, many]);
    rows
}

fn main() {
    dispatch(args());
}

pub fn dispatch(args: Args) {
    if let Some(role) = &args.role {
        match role.as_str() {
            "fetch" => fetch(
                args.home.as_deref().expect("--home"),
                &args.addrs,
                args.hashes.as_deref().expect("--hashes"),
            ),
            other => panic!("unknown role {other}"),
        }
        return;
    }
    let rows = measure(&args);
    if args.json {
        for r in &rows {
            println!("{}", r.json());
        }
        return;
    }
    println!(
        "{:<18} {:>6} {:>7} {:>12} {:>9} {:>8} {:>7} {:>8} {:>12}",
        "scenario", "files", "sources", "bytes", "seconds", "MB/s", "CPU s", "RSS MB", "sent bytes"
    );
    let opt = |x: Option<String>| x.unwrap_or_else(|| "–".into());
    for r in &rows {
        println!(
            "{:<18} {:>6} {:>7} {:>12} {:>9.3} {:>8.1} {:>7} {:>8} {:>12}",
            r.scenario,
            r.files,
            opt(r.sources.map(|s| s.to_string())),
            r.bytes,
            r.seconds,
            r.mb_per_s(),
            opt(r.cpu_seconds.map(|c| format!("{c:.2}"))),
            opt(r.peak_rss.map(|b| format!("{:.0}", b as f64 / 1e6))),
            opt(r.sent_bytes.map(|b| b.to_string())),
        );
        for (k, x) in &r.extra {
            println!("    {k}: {x:.3}");
        }
    }
}
