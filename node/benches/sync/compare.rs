//! `--compare`: Convene against samod and against the floor, on one corpus.
//!
//! For each N the parent builds one source node (N learning entries) and
//! then, each side in its own process (see `child`):
//! - Convene: a serving daemon and a fresh fetching daemon over libp2p on
//!   loopback: catch-up, reconnect with nothing changed, reconnect after 10
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

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use convene_node::{Edit, Node, NodeId};

use crate::{Args, Running, corpus, has, init, run, wait_until};

/// One measured (or timed-out) run.
#[derive(Debug, Clone)]
pub struct Row {
    pub system: &'static str,
    pub scenario: &'static str,
    pub entries: usize,
    pub seconds: f64,
    pub bytes: u64,
    /// Session round trips (Convene) or sync messages (samod).
    pub round_trips: u64,
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
            bytes: 0,
            round_trips: 0,
            peak_rss: None,
            peer_peak_rss: None,
            cpu_seconds: None,
            timed_out: false,
            extra: Vec::new(),
        }
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

/// `done <seconds> <bytes> <round trips> <peak rss> <cpu seconds>` as a row.
fn measured(system: &'static str, scenario: &'static str, n: usize, words: &[String]) -> Row {
    let mut row = Row::new(system, scenario, n);
    row.seconds = words[0].parse().unwrap();
    row.bytes = words[1].parse().unwrap();
    row.round_trips = words[2].parse().unwrap();
    row.peak_rss = Some(words[3].parse().unwrap());
    row.cpu_seconds = Some(words[4].parse().unwrap());
    row
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 temporary path")
}

/// Builds the source node; returns the ids of its entries.
pub fn source(home: &Path, n: usize) -> Vec<convene_model::DocumentId> {
    let start = Instant::now();
    let mut node = init(home, "Source Trust");
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

/// Edits the first ten entries, as the reconnect-after-changes runs need.
pub fn edit_ten(home: &Path, ids: &[convene_model::DocumentId]) {
    let mut editor = Node::open(home).unwrap();
    for id in ids.iter().take(10) {
        editor
            .edit(
                *id,
                Edit::Set(vec![(
                    "impact".into(),
                    "64 per cent fewer minutes lost".into(),
                )]),
            )
            .unwrap();
    }
}

fn convene(n: usize, limit: Duration, rows: &mut Vec<Row>) {
    let a_dir = tempfile::tempdir().unwrap();
    let b_dir = tempfile::tempdir().unwrap();
    let ids = source(a_dir.path(), n);
    drop(init(b_dir.path(), "New Group"));

    let mut server = Child::spawn(&["--role", "serve", "--home", path(a_dir.path())]);
    let addr = server.expect("ready ")[0].clone();
    let fetch = |scenario: &'static str| -> Row {
        let mut c = Child::spawn(&[
            "--role",
            "fetch",
            "--home",
            path(b_dir.path()),
            "--addr",
            &addr,
        ]);
        let words = c.expect("done ");
        c.finish();
        measured("convene", scenario, n, &words)
    };
    let mut catch_up = fetch("catch-up");
    catch_up.peer_peak_rss = Some(server.rss());
    let have = Node::open(b_dir.path()).unwrap().store().counts().unwrap();
    let learning = have
        .iter()
        .find(|(k, _)| k == "learning")
        .map_or(0, |(_, c)| *c);
    assert_eq!(learning as usize, n, "the fresh node has every entry");
    rows.push(catch_up);
    rows.push(fetch("reconnect-unchanged"));
    edit_ten(a_dir.path(), &ids);
    rows.push(fetch("reconnect-10-changed"));
    server.finish();

    let mut floor = Child::spawn(&["--role", "floor", "--home", path(a_dir.path())]);
    let words = floor.expect("done ");
    floor.finish();
    rows.push(measured("floor", "catch-up", n, &words));

    if n <= 10_000 {
        samod(a_dir.path(), n, limit, rows);
    }
}

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
    let addr = server.expect("ready ")[0].clone();
    let mut fetch = Child::spawn(&[
        "--role",
        "samod-fetch",
        "--addr",
        &addr,
        "--ids",
        path(&ids),
    ]);
    for (scenario, before) in [
        ("catch-up", None),
        ("reconnect-unchanged", None),
        ("reconnect-10-changed", Some("edit")),
    ] {
        if let Some(cmd) = before {
            server.send(cmd);
            server.expect("done ");
        }
        fetch.send(if scenario == "catch-up" {
            "catch-up"
        } else {
            "reconnect"
        });
        match fetch.wait("done ", limit) {
            Some(words) => {
                let mut row = measured("samod", scenario, n, &words);
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

/// Publish-to-everyone latency in a full mesh of `nodes` daemons (one
/// process): `publishes` entries, one at a time, each made through a second
/// handle on the first node's store (as a CLI command would) and timed
/// until every node has it.
async fn mesh(nodes: usize, publishes: usize) -> Row {
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
    wait_until(|| readers.iter().all(|r| crate::count_orgs(r) == nodes)).await;

    let mut writer = Node::open(dirs[0].path()).unwrap();
    let mut times = Vec::new();
    let entries = corpus(publishes);
    for e in entries {
        let start = Instant::now();
        let id = writer.publish(e).expect("publish");
        wait_until(|| readers.iter().all(|r| has(r, id))).await;
        times.push(start.elapsed().as_secs_f64());
    }
    for r in running {
        r.stop().await;
    }
    times.sort_by(f64::total_cmp);
    let pick = |q: f64| times[((times.len() as f64 * q).ceil() as usize).clamp(1, times.len()) - 1];
    let mut row = Row::new("convene", "publish-mesh-20", publishes);
    row.seconds = pick(0.5);
    row.extra = vec![("median_seconds", pick(0.5)), ("p99_seconds", pick(0.99))];
    row
}

fn find<'a>(rows: &'a [Row], system: &str, scenario: &str, n: usize) -> Option<&'a Row> {
    rows.iter()
        .find(|r| r.system == system && r.scenario == scenario && r.entries == n)
}

/// Convene's time over another system's, for each N (`≥` when the other
/// timed out: Convene is at least that much faster).
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
        if let Some(f) = find(rows, "floor", "catch-up", n) {
            v["convene_over_floor"] = (c.seconds / f.seconds).into();
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

fn mb(b: Option<u64>) -> String {
    b.map_or("–".into(), |b| format!("{:.1}", b as f64 / 1e6))
}

pub fn main(args: &Args) {
    let mut rows = Vec::new();
    for &n in &args.entries {
        convene(n, Duration::from_secs(args.samod_limit), &mut rows);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rows.push(rt.block_on(mesh(20, 50)));
    let ratios = ratios(&rows, &args.entries);
    if args.json {
        for r in &rows {
            let mut v = serde_json::json!({
                "system": r.system,
                "scenario": r.scenario,
                "entries": r.entries,
                "seconds": r.seconds,
                "bytes": r.bytes,
                "round_trips": r.round_trips,
            });
            if let Some(p) = r.peak_rss {
                v["peak_rss_bytes"] = p.into();
            }
            if let Some(p) = r.peer_peak_rss {
                v["peer_peak_rss_bytes"] = p.into();
            }
            if let Some(c) = r.cpu_seconds {
                v["cpu_seconds"] = c.into();
            }
            if r.timed_out {
                v["timed_out"] = true.into();
            }
            for (k, x) in &r.extra {
                v[*k] = (*x).into();
            }
            println!("{v}");
        }
        for v in ratios {
            println!("{v}");
        }
        return;
    }
    println!(
        "{:<8} {:<22} {:>8} {:>10} {:>8} {:>12} {:>8} {:>9} {:>9}",
        "system", "scenario", "entries", "seconds", "cpu s", "bytes", "msgs", "rss MB", "peer MB"
    );
    for r in &rows {
        let seconds = if r.timed_out {
            format!(">{:.0}", r.seconds)
        } else {
            format!("{:.3}", r.seconds)
        };
        println!(
            "{:<8} {:<22} {:>8} {:>10} {:>8} {:>12} {:>8} {:>9} {:>9}",
            r.system,
            r.scenario,
            r.entries,
            seconds,
            r.cpu_seconds.map_or("–".into(), |c| format!("{c:.2}")),
            r.bytes,
            r.round_trips,
            mb(r.peak_rss),
            mb(r.peer_peak_rss)
        );
        for (k, x) in &r.extra {
            println!("{:>40} {:.3}", k, x);
        }
    }
    println!();
    for v in ratios {
        println!("{v}");
    }
}
