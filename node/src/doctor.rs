//! `convene doctor`: checks an operator can run on a node's home, each
//! giving ok, warn or fail and a message that says what to do.
//!
//! The doctor never opens the home the way a command does ([`crate::Node::open`]
//! migrates and writes): it looks at the files, opens the database
//! read-only, and keeps going after a failure, so a broken home still gets
//! a full report. Every check is a function of what it reads; the clock
//! check's judgement ([`clock_verdict`]) is pure, with the time passed in.
//!
//! The clock is judged without any outside time source: a change received
//! from another node carries its author's clock (to the second), and no
//! change can have been made after it arrived here. A change stamped later
//! than its arrival therefore shows that this clock is behind or the
//! author's is ahead. A clock that runs ahead here shows only as this
//! node's own latest change being stamped in the future. Without changes
//! from others there is no reference, and the report says so.

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use libp2p::Multiaddr;
use libp2p::multiaddr::Protocol;
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use serde::Serialize;

use crate::daemon::{Config, is_running};
use crate::node::{DB_FILE, KEY_FILE};
use crate::store::schema::MIGRATIONS;
use crate::trust::{Identity, NodeId};

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    Warn,
    Fail,
}

/// One line of the report.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// Short name: `home`, `database`, `key`, …
    pub check: &'static str,
    pub status: Level,
    /// What was found and, unless all is well, what to do.
    pub message: String,
}

/// Every check, in the order they ran.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub home: PathBuf,
    pub checks: Vec<Check>,
}

impl Report {
    /// Whether no check failed (warnings allowed).
    pub fn ok(&self) -> bool {
        self.checks.iter().all(|c| c.status != Level::Fail)
    }

    fn push(&mut self, check: &'static str, status: Level, message: impl Into<String>) {
        self.checks.push(Check {
            check,
            status,
            message: message.into(),
        });
    }
}

/// What the doctor may take its time over.
#[derive(Debug, Clone)]
pub struct Options {
    /// How long to wait for each bootstrap peer's TCP connection.
    pub connect_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(3),
        }
    }
}

/// Free space below which the disk check fails, and below which it warns.
pub const DISK_FAIL_BYTES: u64 = 100 << 20;
pub const DISK_WARN_BYTES: u64 = 1 << 30;
/// Clock differences smaller than this are not reported (change times are
/// whole seconds, and a little drift is harmless).
pub const CLOCK_TOLERANCE_MS: i64 = 2 * 60 * 1000;

/// Runs every check on `home`.
pub fn run(home: &Path, opts: &Options) -> Report {
    let mut report = Report {
        home: home.to_path_buf(),
        checks: Vec::new(),
    };
    if !check_home(&mut report, home) {
        return report;
    }
    let identity = check_key(&mut report, home);
    let db = check_database(&mut report, home);
    match (&identity, &db) {
        (Some(id), Some(conn)) => check_key_matches(&mut report, id, conn),
        _ => report.push(
            "identity",
            Level::Warn,
            "not checked: needs a readable key and database",
        ),
    }
    match (&identity, &db) {
        (Some(id), Some(conn)) => check_clock(&mut report, id, conn),
        _ => report.push(
            "clock",
            Level::Warn,
            "not checked: needs a readable key and database",
        ),
    }
    drop(db);
    check_config_and_bootstrap(&mut report, home, opts);
    check_disk(&mut report, home);
    if is_running(home) {
        report.push("daemon", Level::Ok, "running (it holds daemon.lock)");
    } else {
        report.push(
            "daemon",
            Level::Warn,
            "not running: start it with `convene node start` (or `systemctl start convene`) so this node syncs",
        );
    }
    report
}

#[cfg(unix)]
fn mode(meta: &std::fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o777
}

#[cfg(not(unix))]
fn mode(_: &std::fs::Metadata) -> u32 {
    0o700
}

#[cfg(unix)]
fn writable(path: &Path) -> bool {
    rustix::fs::access(path, rustix::fs::Access::WRITE_OK).is_ok()
}

#[cfg(not(unix))]
fn writable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| !m.permissions().readonly())
}

/// Returns whether the home exists, so the other checks make sense.
fn check_home(report: &mut Report, home: &Path) -> bool {
    let shown = home.display();
    let meta = match std::fs::metadata(home) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            report.push(
                "home",
                Level::Fail,
                format!("{shown} does not exist: run `convene init --org NAME --sector SECTOR`, or pass the right --home / CONVENE_HOME"),
            );
            return false;
        }
        Err(e) => {
            report.push("home", Level::Fail, format!("cannot read {shown}: {e}"));
            return false;
        }
    };
    if !meta.is_dir() {
        report.push(
            "home",
            Level::Fail,
            format!("{shown} is not a directory: point --home / CONVENE_HOME at the node's folder"),
        );
        return false;
    }
    if !writable(home) {
        report.push(
            "home",
            Level::Fail,
            format!("{shown} is not writable by this user: the node writes its database, lock and config there (check the owner: chown or run as the node's user)"),
        );
    } else if mode(&meta) & 0o077 != 0 {
        report.push(
            "home",
            Level::Warn,
            format!(
                "{shown} is open to other users (mode {:o}): `chmod 700 {shown}`",
                mode(&meta)
            ),
        );
    } else {
        report.push("home", Level::Ok, format!("{shown}"));
    }
    true
}

fn check_key(report: &mut Report, home: &Path) -> Option<Identity> {
    let path = home.join(KEY_FILE);
    let shown = path.display();
    let meta = match std::fs::metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let hint = if home.join(DB_FILE).exists() {
                "the database is here but its key is not: restore the key (`convene restore BACKUP` into an empty home), or the node cannot sign or sync"
            } else {
                "no node here: run `convene init --org NAME --sector SECTOR` or `convene restore BACKUP`"
            };
            report.push("key", Level::Fail, format!("{shown} is missing: {hint}"));
            return None;
        }
        Err(e) => {
            report.push("key", Level::Fail, format!("cannot read {shown}: {e}"));
            return None;
        }
    };
    let identity = match Identity::load(&path) {
        Ok(i) => i,
        Err(e) => {
            report.push(
                "key",
                Level::Fail,
                format!("{e}: restore it from a backup (`convene restore`)"),
            );
            return None;
        }
    };
    let m = mode(&meta);
    if m & 0o077 != 0 {
        report.push(
            "key",
            Level::Fail,
            format!("{shown} is readable by other users (mode {m:o}): `chmod 600 {shown}`, and consider the key exposed"),
        );
    } else {
        report.push(
            "key",
            Level::Ok,
            format!("node {} (mode {m:o})", identity.node_id()),
        );
    }
    Some(identity)
}

fn check_database(report: &mut Report, home: &Path) -> Option<Connection> {
    let path = home.join(DB_FILE);
    let shown = path.display();
    let meta = match std::fs::metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            report.push(
                "database",
                Level::Fail,
                format!("{shown} is missing: run `convene init` or `convene restore BACKUP`"),
            );
            return None;
        }
        Err(e) => {
            report.push("database", Level::Fail, format!("cannot read {shown}: {e}"));
            return None;
        }
    };
    let corrupt = |report: &mut Report, detail: String| {
        report.push(
            "database",
            Level::Fail,
            format!("{shown} is damaged ({detail}): stop the node and `convene restore BACKUP` into an empty home"),
        )
    };
    // Read-only and without migrating: the doctor changes nothing.
    let opened = Connection::open_with_flags(
        &path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .and_then(|c| {
        c.busy_timeout(Duration::from_secs(10))?;
        Ok(c)
    });
    let conn = match opened {
        Ok(c) => c,
        Err(e) => {
            corrupt(report, e.to_string());
            return None;
        }
    };
    let problems = conn.prepare("PRAGMA integrity_check(5)").and_then(|mut s| {
        s.query_map([], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()
    });
    match problems {
        Ok(p) if p == ["ok"] => {}
        Ok(p) => {
            corrupt(report, format!("integrity check: {}", p.join("; ")));
            return None;
        }
        Err(e) => {
            corrupt(report, e.to_string());
            return None;
        }
    }
    let version: i64 = match conn.pragma_query_value(None, "user_version", |r| r.get(0)) {
        Ok(v) => v,
        Err(e) => {
            corrupt(report, e.to_string());
            return None;
        }
    };
    let known = MIGRATIONS.len() as i64;
    let size = meta.len();
    if version > known {
        report.push(
            "database",
            Level::Fail,
            format!("schema version {version} is newer than this convene knows ({known}): upgrade convene"),
        );
    } else if meta.permissions().readonly() || !writable(&path) {
        report.push(
            "database",
            Level::Fail,
            format!("{shown} is read-only: the node must write to it (`chmod u+w {shown}`, or check its owner)"),
        );
    } else if version < known {
        report.push(
            "database",
            Level::Warn,
            format!("integrity ok, schema version {version} of {known}: the next command migrates it (take a `convene backup` first)"),
        );
    } else {
        report.push(
            "database",
            Level::Ok,
            format!(
                "integrity ok, schema version {version}, {}",
                human_bytes(size)
            ),
        );
    }
    Some(conn)
}

/// Whether the store's organisation lists this key as one of its nodes.
fn check_key_matches(report: &mut Report, identity: &Identity, conn: &Connection) {
    let node = identity.node_id().to_string();
    let found = (|| {
        let org: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key = 'org'", [], |r| r.get(0))
            .optional()?;
        let listed: Option<String> = conn
            .query_row("SELECT org FROM nodes WHERE node = ?1", [&node], |r| {
                r.get(0)
            })
            .optional()?;
        let profile_here: bool = match &org {
            Some(o) => conn.query_row(
                "SELECT EXISTS(SELECT 1 FROM docs WHERE id = ?1)",
                [o],
                |r| r.get(0),
            )?,
            None => false,
        };
        Ok::<_, rusqlite::Error>((org, listed, profile_here))
    })();
    match found {
        Err(e) => report.push("identity", Level::Fail, format!("cannot read the store: {e}")),
        Ok((None, _, _)) => report.push(
            "identity",
            Level::Fail,
            "the database names no organisation: it is not a finished node; `convene restore BACKUP` into an empty home",
        ),
        Ok((Some(org), Some(listed), _)) if listed == org => report.push(
            "identity",
            Level::Ok,
            format!("the key is node {node} of organisation {org}"),
        ),
        Ok((Some(org), Some(listed), _)) => report.push(
            "identity",
            Level::Fail,
            format!("the key (node {node}) belongs to organisation {listed}, but this database is organisation {org}'s: the key and database come from different nodes; restore both from one backup"),
        ),
        Ok((Some(org), None, true)) => report.push(
            "identity",
            Level::Fail,
            format!("organisation {org}'s profile here does not list this key (node {node}): the key was replaced or comes from another node; restore the right node.key from a backup"),
        ),
        Ok((Some(org), None, false)) => report.push(
            "identity",
            Level::Warn,
            format!("organisation {org}'s profile has not arrived yet, so the key (node {node}) cannot be matched: let the node sync (`convene node start`)"),
        ),
    }
}

/// A change received from another node: its author's time and when it
/// arrived here (both unix ms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub signer: String,
    pub made: i64,
    pub arrived: i64,
}

/// Judges the clock from this node's newest own change time and recent
/// changes from others (see the module docs).
pub fn clock_verdict(now: i64, own_latest: Option<i64>, received: &[Received]) -> (Level, String) {
    if let Some(own) = own_latest
        && own - now > CLOCK_TOLERANCE_MS
    {
        return (
            Level::Warn,
            format!(
                "this machine's clock is {} behind the time of this node's own latest change: it went back; check time sync (`timedatectl status`)",
                human_ms(own - now)
            ),
        );
    }
    if received.is_empty() {
        return (
            Level::Warn,
            "no reference to compare with: no changes from other nodes yet; make sure the machine syncs its time (`timedatectl status`)".into(),
        );
    }
    let worst = received
        .iter()
        .max_by_key(|r| r.made - r.arrived)
        .expect("not empty");
    let ahead = worst.made - worst.arrived;
    let nodes: std::collections::BTreeSet<&str> =
        received.iter().map(|r| r.signer.as_str()).collect();
    if ahead > CLOCK_TOLERANCE_MS {
        return (
            Level::Warn,
            format!(
                "a change from node {} is stamped {} after it arrived here: this clock is behind or that node's is ahead; check time sync on both (`timedatectl status`)",
                worst.signer,
                human_ms(ahead)
            ),
        );
    }
    (
        Level::Ok,
        format!(
            "no skew seen in {} recent change{} from {} other node{} (this check sees a clock behind theirs, not one ahead)",
            received.len(),
            if received.len() == 1 { "" } else { "s" },
            nodes.len(),
            if nodes.len() == 1 { "" } else { "s" }
        ),
    )
}

fn check_clock(report: &mut Report, identity: &Identity, conn: &Connection) {
    let own = identity.public_bytes();
    let time_of = |bytes: &[u8]| {
        automerge::Change::try_from(bytes)
            .ok()
            .map(|c| c.timestamp() * 1000)
    };
    let read = (|| {
        let own_latest = conn
            .query_row(
                "SELECT bytes FROM changes WHERE signer = ?1 ORDER BY seq DESC LIMIT 1",
                [&own[..]],
                |r| r.get::<_, Vec<u8>>(0),
            )
            .optional()?
            .and_then(|b| time_of(&b));
        let mut stmt = conn.prepare(
            "SELECT bytes, signer, received FROM changes WHERE signer != ?1 ORDER BY seq DESC LIMIT 500",
        )?;
        let rows = stmt
            .query_map([&own[..]], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let received: Vec<Received> = rows
            .into_iter()
            .filter_map(|(bytes, signer, arrived)| {
                Some(Received {
                    signer: NodeId::from_public_bytes(&signer)?.to_string(),
                    // Change times are whole seconds: allow for the cut.
                    made: time_of(&bytes)?,
                    arrived: arrived + 999,
                })
            })
            .collect();
        Ok::<_, rusqlite::Error>((own_latest, received))
    })();
    match read {
        Ok((own_latest, received)) => {
            let (level, message) = clock_verdict(now_ms(), own_latest, &received);
            report.push("clock", level, message);
        }
        Err(e) => report.push("clock", Level::Warn, format!("cannot read changes: {e}")),
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn check_config_and_bootstrap(report: &mut Report, home: &Path, opts: &Options) {
    let config = match Config::load(home) {
        Ok(c) => c,
        Err(e) => {
            report.push(
                "config",
                Level::Fail,
                format!("{e}: fix it (`convene config set KEY VALUE` checks as it writes)"),
            );
            return;
        }
    };
    let file = home.join(crate::daemon::CONFIG_FILE);
    report.push(
        "config",
        Level::Ok,
        if file.exists() {
            format!("{} is valid", file.display())
        } else {
            "no config.toml: the defaults apply (`convene config show`)".into()
        },
    );
    if config.bootstrap.is_empty() {
        report.push(
            "bootstrap",
            Level::Ok,
            "no bootstrap peers configured (fine on a LAN with mDNS; otherwise `convene config set bootstrap MULTIADDR`)",
        );
        return;
    }
    // All at once, so many unreachable peers cost one timeout, not many.
    let probes: Vec<_> = config
        .bootstrap
        .iter()
        .cloned()
        .map(|addr| {
            let timeout = opts.connect_timeout;
            std::thread::spawn(move || {
                let verdict = probe(&addr, timeout);
                (addr, verdict)
            })
        })
        .collect();
    for p in probes {
        let Ok((addr, (level, message))) = p.join() else {
            continue;
        };
        report.push("bootstrap", level, format!("{addr}: {message}"));
    }
}

/// Tries a TCP connection to a bootstrap address.
fn probe(addr: &Multiaddr, timeout: Duration) -> (Level, String) {
    let mut host = None;
    let mut port = None;
    let mut udp = false;
    for p in addr.iter() {
        match p {
            Protocol::Ip4(ip) => host = Some(ip.to_string()),
            Protocol::Ip6(ip) => host = Some(ip.to_string()),
            Protocol::Dns(h) | Protocol::Dns4(h) | Protocol::Dns6(h) => host = Some(h.to_string()),
            Protocol::Tcp(p) => port = Some(p),
            Protocol::Udp(_) => udp = true,
            _ => {}
        }
    }
    let (Some(host), Some(port)) = (host, port) else {
        return if udp {
            (
                Level::Ok,
                "not probed: a UDP (QUIC) address cannot be tested with a TCP connection".into(),
            )
        } else {
            (
                Level::Warn,
                "not probed: no host and TCP port in the address".into(),
            )
        };
    };
    let addrs: Vec<SocketAddr> = match (host.as_str(), port).to_socket_addrs() {
        Ok(a) => a.collect(),
        Err(e) => {
            return (
                Level::Warn,
                format!("cannot resolve {host}: {e}; check the name and this machine's DNS"),
            );
        }
    };
    let started = Instant::now();
    let mut last = None;
    for a in &addrs {
        match TcpStream::connect_timeout(a, timeout) {
            Ok(_) => {
                return (
                    Level::Ok,
                    format!("reachable ({} ms)", started.elapsed().as_millis()),
                );
            }
            Err(e) => last = Some(e),
        }
    }
    (
        Level::Warn,
        format!(
            "unreachable ({}): check that the peer runs and that firewalls allow TCP port {port}",
            last.map_or_else(|| "no address".into(), |e| e.to_string())
        ),
    )
}

#[cfg(unix)]
fn free_bytes(path: &Path) -> std::io::Result<u64> {
    let s = rustix::fs::statvfs(path)?;
    Ok(s.f_bavail.saturating_mul(s.f_frsize))
}

#[cfg(not(unix))]
fn free_bytes(_: &Path) -> std::io::Result<u64> {
    Err(std::io::Error::other("not measured on this platform"))
}

fn check_disk(report: &mut Report, home: &Path) {
    match free_bytes(home) {
        Ok(free) if free < DISK_FAIL_BYTES => report.push(
            "disk",
            Level::Fail,
            format!(
                "only {} free on the home's filesystem: the database cannot grow; free space now",
                human_bytes(free)
            ),
        ),
        Ok(free) if free < DISK_WARN_BYTES => report.push(
            "disk",
            Level::Warn,
            format!(
                "{} free on the home's filesystem: free some space before it runs out",
                human_bytes(free)
            ),
        ),
        Ok(free) => report.push(
            "disk",
            Level::Ok,
            format!("{} free on the home's filesystem", human_bytes(free)),
        ),
        Err(e) => report.push(
            "disk",
            Level::Warn,
            format!("cannot measure free space: {e}"),
        ),
    }
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} bytes")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

fn human_ms(ms: i64) -> String {
    let s = ms / 1000;
    match s {
        ..120 => format!("{s} s"),
        120..7200 => format!("{} min", s / 60),
        7200..172_800 => format!("{} h", s / 3600),
        _ => format!("{} days", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn got(signer: &str, made: i64, arrived: i64) -> Received {
        Received {
            signer: signer.into(),
            made,
            arrived,
        }
    }

    #[test]
    fn the_clock_is_judged_only_against_what_is_known() {
        let now = 1_800_000_000_000;
        let (level, msg) = clock_verdict(now, None, &[]);
        assert_eq!(level, Level::Warn);
        assert!(msg.contains("no reference"), "{msg}");

        // Changes made before they arrived, however long before: fine.
        let fine = [
            got("A", now - 86_400_000, now - 1000),
            got("B", now - 5000, now - 4000),
        ];
        let (level, msg) = clock_verdict(now, Some(now - 10), &fine);
        assert_eq!(level, Level::Ok, "{msg}");
        assert!(msg.contains("2 recent changes from 2 other nodes"), "{msg}");

        // One stamped ten minutes after it arrived.
        let skewed = [got("A", now, now - 600_000)];
        let (level, msg) = clock_verdict(now, None, &skewed);
        assert_eq!(level, Level::Warn);
        assert!(msg.contains("node A") && msg.contains("10 min"), "{msg}");

        // Our own last change is in our future: the clock went back.
        let (level, msg) = clock_verdict(now, Some(now + 3 * 3_600_000), &fine);
        assert_eq!(level, Level::Warn);
        assert!(msg.contains("went back"), "{msg}");
    }

    #[test]
    fn a_healthy_home_passes_and_a_missing_key_fails() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path();
        crate::Node::init(
            home,
            &crate::InitOptions {
                org: "Gateshead Council".into(),
                sector: "council".into(),
                place: None,
            },
        )
        .unwrap();
        let report = run(home, &Options::default());
        assert!(report.ok(), "{report:#?}");
        let identity = report
            .checks
            .iter()
            .find(|c| c.check == "identity")
            .unwrap();
        assert_eq!(identity.status, Level::Ok, "{identity:?}");

        std::fs::remove_file(home.join(KEY_FILE)).unwrap();
        let report = run(home, &Options::default());
        assert!(!report.ok());
        let key = report.checks.iter().find(|c| c.check == "key").unwrap();
        assert_eq!(key.status, Level::Fail);
        assert!(key.message.contains("missing"), "{key:?}");
    }

    #[test]
    fn bootstrap_peers_are_probed() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let up: Multiaddr = format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap();
        assert_eq!(probe(&up, Duration::from_secs(2)).0, Level::Ok);
        drop(listener);
        assert_eq!(probe(&up, Duration::from_secs(2)).0, Level::Warn);
        let quic: Multiaddr = "/ip4/127.0.0.1/udp/4040/quic-v1".parse().unwrap();
        assert_eq!(probe(&quic, Duration::from_secs(2)).0, Level::Ok);
    }
}
