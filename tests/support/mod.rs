//! Helpers shared by the workspace's integration tests: a temporary home
//! and the real `convene` binary run in it.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

/// A temporary `CONVENE_HOME`, removed when dropped.
pub struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temporary directory"),
        }
    }

    /// A home initialised for an NHS trust.
    pub fn initialised() -> Self {
        let home = Self::new();
        home.convene(&[
            "init",
            "--org",
            "Gateshead Health NHS Foundation Trust",
            "--sector",
            "nhs-trust",
            "--place",
            "Gateshead",
        ])
        .assert()
        .success();
        home
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `convene --home HOME ARGS…`, ready to run.
    pub fn convene(&self, args: &[&str]) -> Command {
        let mut cmd = Command::cargo_bin("convene").expect("the convene binary is built");
        cmd.env_remove("CONVENE_HOME")
            .env_remove("RUST_LOG")
            .arg("--home")
            .arg(self.path())
            .args(args);
        cmd
    }

    /// `convene --home HOME ARGS…` run with the given umask (through
    /// `sh`, so the test process's own umask is left alone).
    pub fn convene_with_umask(&self, umask: u32, args: &[&str]) -> Command {
        let mut cmd = Command::new("sh");
        cmd.env_remove("CONVENE_HOME")
            .env_remove("RUST_LOG")
            .arg("-c")
            .arg(format!("umask {umask:03o} && exec \"$0\" \"$@\""))
            .arg(assert_cmd::cargo::cargo_bin("convene"))
            .arg("--home")
            .arg(self.path())
            .args(args);
        cmd
    }

    /// Runs a command that must succeed and returns its stdout.
    pub fn stdout(&self, args: &[&str]) -> String {
        let out = self.convene(args).output().expect("convene runs");
        assert!(
            out.status.success(),
            "convene {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 output")
    }

    pub fn json(&self, args: &[&str]) -> Value {
        let out = self.stdout(args);
        serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("{args:?}: not one JSON document ({e}): {out}"))
    }

    pub fn json_lines(&self, args: &[&str]) -> Vec<Value> {
        self.stdout(args)
            .lines()
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("{args:?}: bad JSON line ({e}): {l}"))
            })
            .collect()
    }

    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.path().join(name);
        std::fs::write(&path, contents).expect("write test file");
        path
    }

    /// The database file's bytes (every command closes its connection,
    /// which checkpoints the WAL into the file).
    pub fn db_bytes(&self) -> Vec<u8> {
        std::fs::read(self.path().join("convene.db")).expect("database file")
    }

    pub fn db_bytes_after_checkpoint(&self) -> Vec<u8> {
        assert!(
            !self.path().join("convene.db-wal").exists()
                || std::fs::metadata(self.path().join("convene.db-wal"))
                    .unwrap()
                    .len()
                    == 0,
            "the WAL is checkpointed when the last connection closes"
        );
        self.db_bytes()
    }
}

/// The permission bits of a file or folder.
#[cfg(unix)]
pub fn mode_of(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Waits until `check` returns `Some`, or panics with `what` after `limit`.
pub fn wait_for<T>(
    limit: std::time::Duration,
    what: &str,
    mut check: impl FnMut() -> Option<T>,
) -> T {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
}

/// `convene node start` running in a home, stopped (SIGTERM) when dropped.
pub struct Daemon {
    child: std::process::Child,
    /// The first address it listens on, with its /p2p/ suffix.
    pub addr: String,
    pub node_id: String,
    /// The web app's base address (`http://127.0.0.1:PORT/`).
    pub web: String,
}

impl Daemon {
    /// Starts a daemon on an ephemeral loopback port, optionally dialling
    /// `bootstrap` peers, and waits until it listens.
    pub fn start(home: &Home, bootstrap: &[&str]) -> Self {
        Self::start_on(home, "/ip4/127.0.0.1/tcp/0", bootstrap)
    }

    pub fn start_on(home: &Home, listen: &str, bootstrap: &[&str]) -> Self {
        Self::start_with(home, &["--listen", listen], bootstrap)
    }

    /// Starts a daemon that listens on nothing (`--no-listen`, as behind
    /// NAT); its `addr` is empty.
    pub fn start_dial_only(home: &Home, bootstrap: &[&str]) -> Self {
        Self::start_with(home, &["--no-listen"], bootstrap)
    }

    fn start_with(home: &Home, listen: &[&str], bootstrap: &[&str]) -> Self {
        use std::io::BufRead;
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_convene"));
        cmd.env_remove("CONVENE_HOME")
            .env("RUST_LOG", "convene_node=debug")
            .arg("--home")
            .arg(home.path())
            .args(["node", "start", "--no-mdns"])
            .args(listen)
            .args(["--web", "127.0.0.1:0"]);
        for b in bootstrap {
            cmd.args(["--bootstrap", b]);
        }
        let log = std::fs::File::create(home.path().join("daemon.log")).expect("log file");
        let mut child = cmd
            .stdout(std::process::Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start the daemon");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let mut node_id = String::new();
        let mut addr = None;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = rx.recv_timeout(left).unwrap_or_else(|_| {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the daemon did not start listening: {}",
                    std::fs::read_to_string(home.path().join("daemon.log")).unwrap_or_default()
                )
            });
            if let Some(id) = line.strip_prefix("node ") {
                node_id = id.trim().to_string();
            }
            if let Some(a) = line.strip_prefix("listening on ") {
                addr.get_or_insert_with(|| a.trim().to_string());
            }
            if let Some(rest) = line.strip_prefix("web app on ") {
                return Self {
                    child,
                    addr: addr.unwrap_or_default(),
                    node_id,
                    web: rest
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_string(),
                };
            }
        }
    }

    /// Stops the daemon as Ctrl-C would and waits for it to exit.
    pub fn stop(mut self) -> std::process::ExitStatus {
        self.terminate()
    }

    fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            if std::time::Instant::now() > deadline {
                let _ = self.child.kill();
                return self.child.wait().expect("wait");
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Kills the daemon without warning (SIGKILL).
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.terminate();
        }
    }
}

impl Home {
    /// A home initialised for an organisation of the given name and sector.
    pub fn for_org(org: &str, sector: &str) -> Self {
        let home = Self::new();
        home.convene(&["init", "--org", org, "--sector", sector])
            .assert()
            .success();
        home
    }

    /// Joins a community with an invite code, or fails the test with why.
    pub fn join(&self, code: &str) {
        let out = self.convene(&["join", code.trim()]).output().unwrap();
        assert!(
            out.status.success(),
            "join failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// One `sync --once` with `peer`, or fails the test with why.
    pub fn sync_with(&self, peer: &str) {
        let out = self
            .convene(&["sync", "--once", "--peer", peer])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "sync failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Ids of the entries `list --all --json` shows.
    pub fn ids(&self) -> std::collections::BTreeSet<String> {
        self.json_lines(&["list", "--all", "--json"])
            .iter()
            .map(|v| v["id"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// Publishes a learning entry; returns its id.
    pub fn publish(&self, title: &str) -> String {
        self.stdout(&[
            "publish",
            "learning",
            "--title",
            title,
            "--summary",
            "What we learned.",
        ])
        .trim()
        .to_string()
    }
}

/// `convene demo` running in a kept folder, interrupted (SIGINT) when
/// dropped.
pub struct DemoRun {
    child: std::process::Child,
    pub dir: tempfile::TempDir,
    /// Each node's web app base address, trust first.
    pub webs: Vec<String>,
    /// Each node's home.
    pub homes: Vec<PathBuf>,
    /// Each node's one-time sign-in address.
    pub sign_ins: Vec<String>,
}

impl DemoRun {
    /// Starts the demo and waits until it serves its web apps.
    pub fn start() -> Self {
        use std::io::BufRead;
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_convene"))
            .args(["demo", "--no-open", "--web", "127.0.0.1:0", "--dir"])
            .arg(dir.path().join("demo"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start the demo");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                let _ = tx.send(line);
            }
        });
        let (mut webs, mut homes, mut sign_ins) = (Vec::new(), Vec::new(), Vec::new());
        loop {
            let line = rx
                .recv_timeout(std::time::Duration::from_secs(90))
                .expect("the demo starts within 90 seconds");
            let line = line.trim();
            if let Some(url) = line.strip_prefix("web app:") {
                webs.push(url.trim().to_string());
            }
            if let Some(url) = line.strip_prefix("sign in:") {
                sign_ins.push(url.trim().to_string());
            }
            if let Some(cmd) = line.strip_prefix("CLI:") {
                let home = cmd
                    .split_whitespace()
                    .nth(2)
                    .expect("convene --home DIR list");
                homes.push(PathBuf::from(home));
            }
            if line.contains("Press Ctrl-C") {
                break;
            }
        }
        assert_eq!(webs.len(), 3, "three web apps");
        Self {
            child,
            dir,
            webs,
            homes,
            sign_ins,
        }
    }

    /// Interrupts the demo as Ctrl-C would; its exit status.
    pub fn interrupt(&mut self) -> std::process::ExitStatus {
        let _ = std::process::Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        wait_for(
            std::time::Duration::from_secs(30),
            "the demo to stop",
            || self.child.try_wait().expect("wait"),
        )
    }
}

impl Drop for DemoRun {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.interrupt();
        }
    }
}

/// The port of a web app's base address (`http://127.0.0.1:PORT/`).
pub fn port_of(base: &str) -> u16 {
    base.trim_end_matches('/')
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("http://127.0.0.1:PORT/")
}

/// An HTTP client as the web tests use it: an answer's status is data, not
/// an error; redirects are not followed (a test looks at them); nothing
/// hangs longer than a minute (the largest upload tests need that).
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(std::time::Duration::from_secs(60)))
        .build()
        .into()
}

/// Signs in with a one-time link as a browser does; the session cookie
/// (`name=value`) it sets.
pub fn sign_in_at(url: &str) -> String {
    let r = agent().get(url).call().unwrap();
    assert_eq!(r.status().as_u16(), 303, "the link signs in");
    r.headers()
        .get("set-cookie")
        .expect("a session cookie")
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string()
}

/// Signs in to the web app of the daemon running in `home` (its
/// `convene open --print` link); the session cookie.
pub fn sign_in(home: &Home) -> String {
    sign_in_at(home.stdout(&["open", "--print"]).trim())
}
