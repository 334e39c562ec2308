//! `--compare`: Convene against samod and against the floor, on one corpus.
//!
//! For each N the parent builds one source node (N learning entries) and
//! then, each side in its own process (see `child`):
//! - Convene: a serving daemon and a fresh fetching daemon over libp2p on
//!   loopback, members of one community (the fetching node joined before
//!   the source published): catch-up, reconnect with nothing changed, reconnect after 10
//!   entries were edited (each session a new fetching process, as after a
//!   restart); peak RSS of both processes;
//! - samod: a repo holding the same documents (the same change bytes) and a
//!   fresh repo that dials it over samod's TCP transport and `find`s every
//!   document id, then reconnects twice (nothing changed; 10 changed); each
//!   run has a time limit and one that hits it is reported as such;
//! - the floor: automerge alone decoding, verifying the signature of and
//!   applying every change of the same corpus in one process.
//!
//! Then a 20-node Convene mesh: the latency of one publish reaching every
//! node, repeated, median and p99.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use convene_model::DocumentId;
use convene_node::daemon::Multiaddr;
use convene_node::{Edit, Node, NodeId, SignedChange};
use libp2p::multiaddr::Protocol;

use super::child::EDITED_IMPACT;
use super::proxy::Proxy;
use super::{Args, Running, corpus, has, init, run, wait_every, wait_until};

/// One measured (or timed-out) run. A field is `None` where it does not
/// apply to the system (a floor has no wire, samod's sync messages do not
/// wait for answers), never a made-up zero.
#[derive(Debug, Clone)]
pub struct Row {
    pub system: &'static str,
    pub scenario: &'static str,
    pub entries: usize,
    pub seconds: f64,
    /// The protocol's own bytes, both ways: Convene's sync frames, samod's
    /// sync messages; for a floor, the bytes it works from (the changes, or
    /// the saved documents).
    pub bytes: Option<u64>,
    /// Every TCP payload byte both ways through the counting proxy,
    /// handshakes included.
    pub wire_bytes: Option<u64>,
    /// Messages both ways: Convene's requests and responses, samod's sync
    /// messages.
    pub messages: Option<u64>,
    /// Requests that waited for their answer, one after another (Convene's
    /// session).
    pub round_trips: Option<u64>,
    /// Before a "10 changed" run: the bytes of the changes made.
    pub changes_bytes: Option<u64>,
    pub peak_rss: Option<u64>,
    /// The serving side's peak RSS, where there is one.
    pub peer_peak_rss: Option<u64>,
    /// CPU time (user + system) of the measuring process during the run.
    pub cpu_seconds: Option<f64>,
    pub timed_out: bool,
    /// Extra fields (latency percentiles).
    pub extra: Vec<(&'static str, f64)>,
}

impl Row {
    fn new(system: &'static str, scenario: &'static str, entries: usize) -> Self {
        Self {
            system,
            scenario,
            entries,
            seconds: 0.0,
            bytes: None,
            wire_bytes: None,
            messages: None,
            round_trips: None,
            changes_bytes: None,
            peak_rss: None,
            peer_peak_rss: None,
            cpu_seconds: None,
            timed_out: false,
            extra: Vec::new(),
        }
    }

    /// The extra field `name` (a latency percentile), if the row has it.
    pub fn extra(&self, name: &str) -> Option<f64> {
        self.extra.iter().find(|(k, _)| *k == name).map(|(_, x)| *x)
    }

    /// The row as one JSON object.
    pub fn json(&self) -> serde_json::Value {
        let mut v = serde_json::json!({
            "system": self.system,
            "scenario": self.scenario,
            "entries": self.entries,
            "seconds": self.seconds,
        });
        let mut put = |k: &str, x: Option<u64>| {
            if let Some(x) = x {
                v[k] = x.into();
            }
        };
        put("bytes", self.bytes);
        put("wire_bytes", self.wire_bytes);
        put("messages", self.messages);
        put("round_trips", self.round_trips);
        put("changes_bytes", self.changes_bytes);
        put("peak_rss_bytes", self.peak_rss);
        put("peer_peak_rss_bytes", self.peer_peak_rss);
        if let Some(c) = self.cpu_seconds {
            v["cpu_seconds"] = c.into();
        }
        if self.timed_out {
            v["timed_out"] = true.into();
        }
        for (k, x) in &self.extra {
            v[*k] = (*x).into();
        }
        v
    }
}

/// A child process of this bench and the lines it prints.
struct Child {
    process: std::process::Child,
    lines: mpsc::Receiver<String>,
}

impl Child {
    fn spawn(args: &[&str]) -> Self {
        let mut process = Command::new(std::env::current_exe().unwrap())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("re-run the bench binary");
        let out = BufReader::new(process.stdout.take().unwrap());
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self { process, lines }
    }

    fn send(&mut self, command: &str) {
        let stdin = self.process.stdin.as_mut().unwrap();
        writeln!(stdin, "{command}").unwrap();
        stdin.flush().unwrap();
    }

    /// The words after `prefix` of the next line that starts with it, or
    /// `None` if none came within `limit`.
    fn wait(&mut self, prefix: &str, limit: Duration) -> Option<Vec<String>> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.lines.recv_timeout(left).ok()?;
            if let Some(rest) = line.strip_prefix(prefix) {
                return Some(rest.split_whitespace().map(str::to_string).collect());
            }
        }
    }

    fn expect(&mut self, prefix: &str) -> Vec<String> {
        self.wait(prefix, Duration::from_secs(24 * 3600))
            .unwrap_or_else(|| panic!("a child process ended early (waiting for {prefix:?})"))
    }

    fn rss(&mut self) -> u64 {
        self.send("rss");
        self.expect("done ")[0].parse().unwrap()
    }

    /// Closes its stdin and waits for it to exit.
    fn finish(mut self) {
        drop(self.process.stdin.take());
        let _ = self.process.wait();
    }

    /// Ends it now (it ran out of time).
    fn kill(mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

fn num<T: std::str::FromStr>(w: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    w.parse().expect("a number from a child process")
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 temporary path")
}

/// Builds the source node (made here, or already made at `home`);
/// returns the ids of its entries.
pub fn source(home: &Path, n: usize) -> Vec<convene_model::DocumentId> {
    let start = Instant::now();
    let mut node = match Node::open(home) {
        Ok(node) => node,
        Err(_) => init(home, "Source Trust"),
    };
    let mut ids = Vec::new();
    for chunk in corpus(n).chunks(1000) {
        ids.extend(node.publish_batch(chunk.to_vec()).expect("publish"));
    }
    eprintln!(
        "built {n} entries in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    ids
}

/// Edits the first ten entries, as the reconnect-after-changes runs need;
/// returns the bytes of the signed changes made.
pub fn edit_ten(home: &Path, ids: &[convene_model::DocumentId]) -> u64 {
    let mut editor = Node::open(home).unwrap();
    let mut bytes = 0;
    for id in ids.iter().take(10) {
        editor
            .edit(
                *id,
                Edit::Set(vec![("impact".into(), EDITED_IMPACT.into())]),
            )
            .unwrap();
        let changes = editor.store().changes(*id).unwrap();
        bytes += changes.last().map_or(0, |c| c.change.bytes.len() as u64);
    }
    bytes
}

/// `addr` with its TCP port replaced by `port` (to dial through the proxy).
fn via_port(addr: &Multiaddr, port: u16) -> Multiaddr {
    addr.iter()
        .map(|p| match p {
            Protocol::Tcp(_) => Protocol::Tcp(port),
            other => other,
        })
        .collect()
}

fn tcp_target(addr: &Multiaddr) -> std::net::SocketAddr {
    let mut ip = None;
    let mut port = None;
    for p in addr.iter() {
        match p {
            Protocol::Ip4(a) => ip = Some(std::net::IpAddr::V4(a)),
            Protocol::Tcp(t) => port = Some(t),
            _ => {}
        }
    }
    (
        ip.expect("an IPv4 listen address"),
        port.expect("a TCP port"),
    )
        .into()
}

/// How long a finished session's connection may take to close.
const CLOSE_LIMIT: Duration = Duration::from_secs(60);

/// A serving Convene daemon on the source home, behind a counting proxy.
struct Server {
    child: Child,
    proxy: Proxy,
    /// The daemon's address with the proxy's port.
    addr: String,
}

impl Server {
    fn start(home: &Path) -> Self {
        let mut child = Child::spawn(&["--role", "serve", "--home", path(home)]);
        let listen: Multiaddr = child.expect("ready ")[0].parse().unwrap();
        let proxy = Proxy::start(tcp_target(&listen));
        let addr = via_port(&listen, proxy.addr.port()).to_string();
        Self { child, proxy, addr }
    }

    /// One session of a fresh fetching process on `home`, measured.
    fn fetch(&self, home: &Path, scenario: &'static str, n: usize) -> Row {
        let before = self.proxy.seen();
        let accepted = self.proxy.accepted();
        let mut c = Child::spawn(&[
            "--role",
            "fetch",
            "--home",
            path(home),
            "--addr",
            &self.addr,
        ]);
        let w = c.expect("done ");
        c.finish();
        self.proxy.wait_closed(CLOSE_LIMIT);
        assert_eq!(
            self.proxy.accepted(),
            accepted + 1,
            "one connection per session, all through the proxy"
        );
        let mut row = Row::new("convene", scenario, n);
        row.seconds = num(&w[0]);
        row.bytes = Some(num(&w[1]));
        row.messages = Some(num(&w[2]));
        row.round_trips = Some(num(&w[3]));
        row.peak_rss = Some(num(&w[4]));
        row.cpu_seconds = Some(num(&w[5]));
        row.wire_bytes = Some(self.proxy.seen().since(before).total());
        row
    }
}

fn count_learning(home: &Path) -> usize {
    let have = Node::open(home).unwrap().store().counts().unwrap();
    have.iter()
        .find(|(k, _)| k == "learning")
        .map_or(0, |(_, c)| *c as usize)
}

/// The two Convene nodes as members of one community, as a deployed node
/// and a member catching up from it are (members also swap address records
/// when they connect, which the reconnect rows then count): the source
/// founds it and invites, and the fetching node joins over loopback through
/// the source's daemon, run for that alone, before the source publishes
/// anything (so nothing of the corpus is fetched before the catch-up).
fn community(source_home: &Path, fetch_home: &Path) {
    let code = {
        let mut founder = init(source_home, "Source Trust");
        founder.create_community("Bench").expect("community");
        founder
            .invite(24 * 3600 * 1000, false, None, Vec::new())
            .expect("invite")
    };
    let changes = {
        let mut newcomer = init(fetch_home, "New Group");
        newcomer.accept_invite(&code).expect("accept the invite");
        newcomer.join_changes().expect("join changes")
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let s = super::run(source_home, true).await;
        let f = super::run(fetch_home, false).await;
        let peer = f
            .client
            .dial(s.addr.clone().unwrap().parse().unwrap())
            .await
            .expect("dial");
        f.client.join(peer, changes).await.expect("join");
        // The charter and the members' documents, so that every measured
        // session starts from the same state (not a race with the stop).
        f.client.sync(peer).await.expect("sync after joining");
        f.stop().await;
        s.stop().await;
    });
}

/// Convene, the floors and samod on one source of `n` entries. The floors
/// and samod work from the source as Convene's catch-up saw it (before the
/// edits of the "10 changed" run).
fn systems(n: usize, limit: Duration, rows: &mut Vec<Row>) {
    let a_dir = tempfile::tempdir().unwrap();
    let b_dir = tempfile::tempdir().unwrap();
    let (source_home, fetch_home) = (a_dir.path(), b_dir.path());
    community(source_home, fetch_home);
    let ids = source(source_home, n);

    let mut server = Server::start(source_home);
    let mut catch_up = server.fetch(fetch_home, "catch-up", n);
    catch_up.peer_peak_rss = Some(server.child.rss());
    assert_eq!(
        count_learning(fetch_home),
        n,
        "the fresh node has every entry"
    );
    rows.push(catch_up);
    rows.push(server.fetch(fetch_home, "reconnect-unchanged", n));
    server.child.finish();

    for system in ["floor", "floor-parallel", "floor-load"] {
        let mut c = Child::spawn(&["--role", system, "--home", path(source_home)]);
        let w = c.expect("done ");
        c.finish();
        let mut row = Row::new(system, "catch-up", n);
        row.seconds = num(&w[0]);
        row.bytes = Some(num(&w[1]));
        row.peak_rss = Some(num(&w[2]));
        row.cpu_seconds = Some(num(&w[3]));
        rows.push(row);
    }

    if n <= 10_000 {
        samod(source_home, n, limit, rows);
    }

    let changed = edit_ten(source_home, &ids);
    let server = Server::start(source_home);
    let mut row = server.fetch(fetch_home, "reconnect-10-changed", n);
    row.changes_bytes = Some(changed);
    rows.push(row);
    server.child.finish();
    let fetched = Node::open(fetch_home).unwrap();
    for id in ids.iter().take(10) {
        let impact = match fetched.get(*id).expect("the entry").body {
            convene_model::Body::Learning(l) => l.impact,
            other => panic!("not a learning entry: {other:?}"),
        };
        assert_eq!(impact, EDITED_IMPACT, "the edit arrived");
    }
}

/// samod over the same documents: catch-up, then a reconnect with nothing
/// changed, then one after 10 documents were edited while disconnected.
fn samod(home: &Path, n: usize, limit: Duration, rows: &mut Vec<Row>) {
    let dir = tempfile::tempdir().unwrap();
    let ids = dir.path().join("ids");
    let mut server = Child::spawn(&[
        "--role",
        "samod-serve",
        "--home",
        path(home),
        "--ids",
        path(&ids),
    ]);
    let target: std::net::SocketAddr = server.expect("ready ")[0].parse().unwrap();
    let proxy = Proxy::start(target);
    let mut fetch = Child::spawn(&[
        "--role",
        "samod-fetch",
        "--addr",
        &proxy.addr.to_string(),
        "--ids",
        path(&ids),
    ]);
    for scenario in ["catch-up", "reconnect-unchanged", "reconnect-10-changed"] {
        let mut changes_bytes = None;
        if scenario != "catch-up" {
            // Disconnect first, then edit, so the changes can only travel
            // over the new connection.
            fetch.send("disconnect");
            fetch.expect("done ");
            proxy.wait_closed(CLOSE_LIMIT);
            if scenario == "reconnect-10-changed" {
                server.send("edit");
                changes_bytes = Some(num(&server.expect("done ")[0]));
            }
        }
        let before = proxy.seen();
        fetch.send(match scenario {
            "catch-up" => "catch-up",
            "reconnect-unchanged" => "reconnect 0",
            _ => "reconnect 10",
        });
        match fetch.wait("done ", limit) {
            Some(w) => {
                // samod keeps the connection open: count until it is quiet.
                proxy.wait_quiet(Duration::from_millis(300));
                let mut row = Row::new("samod", scenario, n);
                row.seconds = num(&w[0]);
                row.bytes = Some(num(&w[1]));
                row.messages = Some(num(&w[2]));
                row.peak_rss = Some(num(&w[3]));
                row.cpu_seconds = Some(num(&w[4]));
                row.wire_bytes = Some(proxy.seen().since(before).total());
                row.changes_bytes = changes_bytes;
                if scenario == "catch-up" {
                    row.peer_peak_rss = Some(server.rss());
                }
                rows.push(row);
            }
            None => {
                let mut row = Row::new("samod", scenario, n);
                row.seconds = limit.as_secs_f64();
                row.timed_out = true;
                row.peer_peak_rss = Some(server.rss());
                rows.push(row);
                fetch.kill();
                server.finish();
                return;
            }
        }
    }
    fetch.finish();
    server.finish();
}

/// The `q` quantile of sorted `times` by the nearest-rank method (so the
/// p99 of 200 samples is the 198th, not the largest).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let rank = (sorted.len() as f64 * q).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Publish-to-everyone latency in a full mesh of `nodes` daemons (one
/// process): `publishes` entries, one at a time, each made through a second
/// handle on the first node's store (as a CLI command would) and timed
/// until every node has it.
async fn mesh(nodes: usize, publishes: usize) -> (Row, Row) {
    let dirs: Vec<tempfile::TempDir> = (0..nodes).map(|_| tempfile::tempdir().unwrap()).collect();
    for (i, d) in dirs.iter().enumerate() {
        drop(init(d.path(), &format!("Member {i}")));
    }
    let mut running: Vec<Running> = Vec::new();
    for d in &dirs {
        running.push(run(d.path(), true).await);
    }
    for i in 1..nodes {
        for j in 0..i {
            let addr = running[j].addr.clone().unwrap();
            let peer: NodeId = running[i]
                .client
                .dial(addr.parse().unwrap())
                .await
                .expect("dial");
            running[i].client.sync(peer).await.expect("sync");
        }
    }
    let readers: Vec<Node> = dirs.iter().map(|d| Node::open(d.path()).unwrap()).collect();
    wait_until(|| readers.iter().all(|r| super::count_orgs(r) == nodes)).await;

    let mut writer = Node::open(dirs[0].path()).unwrap();
    let mut times = Vec::new();
    let mut messages_before = 0;
    for r in &running {
        messages_before += r.client.messages().await.expect("messages").0;
    }
    let cpu = super::child::cpu_seconds();
    let mut ids = Vec::new();
    for e in corpus(publishes) {
        let start = Instant::now();
        let id = writer.publish(e).expect("publish");
        ids.push(id);
        // Each node is looked at every millisecond (tokio's timer's step)
        // until it has the entry, then no more; its store is read only
        // when SQLite's `data_version` says something was committed since
        // the last look, so that looking takes little of the two cores the
        // nodes share.
        let mut waiting: Vec<(&Node, Option<i64>)> = readers.iter().map(|r| (r, None)).collect();
        wait_every(Duration::from_millis(1), || {
            waiting.retain_mut(|(r, seen)| {
                let version = r.store().data_version().ok();
                if version.is_some() && version == *seen {
                    return true;
                }
                *seen = version;
                !has(r, id)
            });
            waiting.is_empty()
        })
        .await;
        times.push(start.elapsed().as_secs_f64());
    }
    let cpu = super::child::cpu_seconds() - cpu;
    let mut messages = 0;
    for r in &running {
        messages += r.client.messages().await.expect("messages").0;
    }
    for r in running {
        r.stop().await;
    }
    let mut row = latencies("convene", nodes, times);
    // All the nodes' CPU time (and the bench's looking) while publishing.
    row.cpu_seconds = Some(cpu);
    // Every sync message sent by any node while publishing (each is
    // received once, so this is half of what was sent and received).
    row.messages = Some(messages - messages_before);
    drop(writer);
    drop(readers);
    let floor = mesh_floor(dirs[0].path(), &ids, nodes - 1);
    (row, floor)
}

/// A `publish-mesh` row of `system` from each publish's time.
fn latencies(system: &'static str, nodes: usize, mut times: Vec<f64>) -> Row {
    times.sort_by(f64::total_cmp);
    let mut row = Row::new(system, "publish-mesh", times.len());
    row.seconds = quantile(&times, 0.5);
    row.extra = vec![
        ("nodes", nodes as f64),
        ("median_seconds", quantile(&times, 0.5)),
        ("p90_seconds", quantile(&times, 0.9)),
        ("p99_seconds", quantile(&times, 0.99)),
        ("max_seconds", quantile(&times, 1.0)),
    ];
    row
}

/// The mesh's floor: what any system must do for a publish to reach
/// `receivers` nodes that share this machine's cores. Each published
/// entry's signed changes (read back from the publishing node's store) are
/// decoded, their signatures verified and applied to a new document once
/// per receiver, the receivers spread over every core, with no network, no
/// storage and no looking; timed per publish like the mesh.
fn mesh_floor(home: &Path, ids: &[DocumentId], receivers: usize) -> Row {
    let by_doc: HashMap<DocumentId, Vec<SignedChange>> = super::child::stored_by_doc(home)
        .into_iter()
        .filter_map(|changes| Some((changes.first()?.doc, changes)))
        .collect();
    let cpu = super::child::cpu_seconds();
    let mut times = Vec::new();
    for id in ids {
        let changes = &by_doc[id];
        let copies = vec![changes.as_slice(); receivers];
        let start = Instant::now();
        let heads =
            super::child::on_every_core(&copies, |c| super::child::heads(super::child::replay(c)));
        times.push(start.elapsed().as_secs_f64());
        assert_eq!(heads.len(), receivers);
        assert!(heads.iter().all(|h| !h.is_empty()));
    }
    let cpu = super::child::cpu_seconds() - cpu;
    let mut row = latencies("floor-parallel", receivers + 1, times);
    row.cpu_seconds = Some(cpu);
    row
}

fn find<'a>(rows: &'a [Row], system: &str, scenario: &str, n: usize) -> Option<&'a Row> {
    rows.iter()
        .find(|r| r.system == system && r.scenario == scenario && r.entries == n)
}

/// Catch-up ratios for each N: Convene's wall clock over each floor's and
/// over samod's, and its CPU time over the serial floor's; whether the
/// targets hold (wall at most 1.25 times the best floor that verifies every
/// change, CPU at most 1.5 times the serial floor's).
fn ratios(rows: &[Row], entries: &[usize]) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for &n in entries {
        let Some(c) = find(rows, "convene", "catch-up", n) else {
            continue;
        };
        let mut v = serde_json::json!({
            "system": "ratio",
            "scenario": "catch-up",
            "entries": n,
        });
        let floor = find(rows, "floor", "catch-up", n);
        let parallel = find(rows, "floor-parallel", "catch-up", n);
        if let (Some(f), Some(p)) = (floor, parallel) {
            let best = if p.seconds < f.seconds { p } else { f };
            let wall = c.seconds / best.seconds;
            v["best_floor"] = best.system.into();
            v["convene_over_best_floor"] = wall.into();
            v["convene_over_floor"] = (c.seconds / f.seconds).into();
            v["convene_over_floor_parallel"] = (c.seconds / p.seconds).into();
            v["wall_target_met"] = (wall <= 1.25).into();
            if let (Some(cc), Some(fc)) = (c.cpu_seconds, f.cpu_seconds) {
                v["convene_cpu_over_floor_cpu"] = (cc / fc).into();
                v["cpu_target_met"] = (cc / fc <= 1.5).into();
            }
        }
        if let Some(l) = find(rows, "floor-load", "catch-up", n) {
            v["convene_over_floor_load"] = (c.seconds / l.seconds).into();
        }
        if let Some(s) = find(rows, "samod", "catch-up", n) {
            v["convene_over_samod"] = (c.seconds / s.seconds).into();
            if s.timed_out {
                v["samod_timed_out"] = true.into();
            }
        }
        if let Some(first) = entries
            .first()
            .and_then(|&m| find(rows, "convene", "catch-up", m))
        {
            v["per_entry_over_first"] =
                ((c.seconds / n as f64) / (first.seconds / first.entries as f64)).into();
        }
        out.push(v);
    }
    out
}

/// The mesh against its floor and the targets (median at most 25 ms, p99
/// at most 100 ms).
fn mesh_ratio(mesh: &Row, floor: &Row) -> serde_json::Value {
    let get = |r: &Row, k: &str| r.extra(k).unwrap_or(f64::NAN);
    let (median, p99) = (get(mesh, "median_seconds"), get(mesh, "p99_seconds"));
    serde_json::json!({
        "system": "ratio",
        "scenario": "publish-mesh",
        "publishes": mesh.entries,
        "convene_median_over_floor_median": median / get(floor, "median_seconds"),
        "convene_p99_over_floor_p99": p99 / get(floor, "p99_seconds"),
        "convene_cpu_over_floor_cpu": mesh.cpu_seconds.unwrap_or(f64::NAN)
            / floor.cpu_seconds.unwrap_or(f64::NAN),
        "median_target_met": median <= 0.025,
        "p99_target_met": p99 <= 0.100,
    })
}

fn mb(b: Option<u64>) -> String {
    b.map_or("–".into(), |b| format!("{:.1}", b as f64 / 1e6))
}

fn or_dash(x: Option<u64>) -> String {
    x.map_or("–".into(), |x| x.to_string())
}

/// Every row and the ratio rows of one `--compare` run.
pub fn measure(args: &Args) -> (Vec<Row>, Vec<serde_json::Value>) {
    let mut rows = Vec::new();
    let limit = Duration::from_secs(args.samod_limit);
    for &n in &args.entries {
        if !args.mesh_only {
            systems(n, limit, &mut rows);
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (mesh, floor) = rt.block_on(mesh(args.mesh_nodes, args.publishes));
    let mut ratios = ratios(&rows, &args.entries);
    ratios.push(mesh_ratio(&mesh, &floor));
    rows.push(mesh);
    rows.push(floor);
    (rows, ratios)
}

pub fn main(args: &Args) {
    let (rows, ratios) = measure(args);
    if args.json {
        for r in &rows {
            println!("{}", r.json());
        }
        for v in ratios {
            println!("{v}");
        }
        return;
    }
    println!(
        "{:<15} {:<21} {:>7} {:>9} {:>7} {:>11} {:>11} {:>7} {:>5} {:>7} {:>7}",
        "system",
        "scenario",
        "entries",
        "seconds",
        "cpu s",
        "bytes",
        "wire bytes",
        "msgs",
        "rtts",
        "rss MB",
        "peer MB"
    );
    for r in &rows {
        let seconds = if r.timed_out {
            format!(">{:.0}", r.seconds)
        } else {
            format!("{:.3}", r.seconds)
        };
        println!(
            "{:<15} {:<21} {:>7} {:>9} {:>7} {:>11} {:>11} {:>7} {:>5} {:>7} {:>7}",
            r.system,
            r.scenario,
            r.entries,
            seconds,
            r.cpu_seconds.map_or("–".into(), |c| format!("{c:.2}")),
            or_dash(r.bytes),
            or_dash(r.wire_bytes),
            or_dash(r.messages),
            or_dash(r.round_trips),
            mb(r.peak_rss),
            mb(r.peer_peak_rss)
        );
        for (k, x) in &r.extra {
            println!("{:>40} {:.4}", k, x);
        }
    }
    println!();
    for v in ratios {
        println!("{v}");
    }
}
