//! `convene doctor`: checks an operator can run on a node's home, each
//! giving ok, warn or fail and a message that says what to do.
//!
//! The doctor never opens the home the way a command does ([`crate::Node::open`]
//! migrates and writes): it looks at the files, opens the database
//! read-only, and keeps going after a failure, so a broken home still gets
//! a full report. Every check is a function of what it reads; the clock
//! check's judgement ([`clock_verdict`]) is pure, with the time passed in.
//!
//! Layout: the report types, the order of checks ([`run`]), the home and
//! disk checks here; `store` (key, database, whether they belong
//! together, whether the files holding personal data are private),
//! `clock`, `reach` (whether members can reach the node, and through which
//! relay) and `bootstrap` (config and peers) beside it.
//!
//! The clock is judged without any outside time source: a change received
//! from another node carries its author's clock (to the second), and no
//! change can have been made after it arrived here. A change stamped later
//! than its arrival therefore shows that this clock is behind or the
//! author's is ahead. A clock that runs ahead here shows only as this
//! node's own latest change being stamped in the future. Without changes
//! from others there is no reference, and the report says so.

mod bootstrap;
mod clock;
mod reach;
mod store;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::daemon::is_running;

pub use clock::{CLOCK_TOLERANCE_MS, Received, clock_verdict};

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

    pub(crate) fn push(&mut self, check: &'static str, status: Level, message: impl Into<String>) {
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

/// Runs every check on `home`.
pub fn run(home: &Path, opts: &Options) -> Report {
    let mut report = Report {
        home: home.to_path_buf(),
        checks: Vec::new(),
    };
    if !check_home(&mut report, home) {
        return report;
    }
    let identity = store::check_key(&mut report, home);
    let db = store::check_database(&mut report, home);
    store::check_private_files(&mut report, home);
    match (&identity, &db) {
        (Some(id), Some(conn)) => store::check_key_matches(&mut report, id, conn),
        _ => report.push(
            "identity",
            Level::Warn,
            "not checked: needs a readable key and database",
        ),
    }
    match (&identity, &db) {
        (Some(id), Some(conn)) => clock::check_clock(&mut report, id, conn),
        _ => report.push(
            "clock",
            Level::Warn,
            "not checked: needs a readable key and database",
        ),
    }
    let running = is_running(home);
    if let Some(conn) = &db {
        reach::check_reach(&mut report, conn, running);
    }
    drop(db);
    bootstrap::check_config_and_bootstrap(&mut report, home, opts);
    check_disk(&mut report, home);
    check_damaged_files(&mut report, home);
    if running {
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

/// Attachment copies found damaged on disk and moved aside: said only if
/// there are any (each was, or will be, fetched again from a member; the
/// copy aside is for recovering what one can, and takes space).
fn check_damaged_files(report: &mut Report, home: &Path) {
    let aside = crate::blobs::BlobStore::new(home).damaged_aside();
    if aside.is_empty() {
        return;
    }
    let bytes: u64 = aside.iter().map(|(_, b)| b).sum();
    report.push(
        "attachments",
        Level::Warn,
        format!(
            "{} attachment {} found damaged on disk and moved aside ({}, in {}): each is fetched again from a member; delete them once you have recovered what you need (or let erasing the entry do it)",
            aside.len(),
            if aside.len() == 1 { "copy" } else { "copies" },
            crate::human_size(bytes),
            home.join(crate::blobs::FILES_DIR).join(".damaged-*").display()
        ),
    );
}

#[cfg(unix)]
pub(crate) fn mode(meta: &std::fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o777
}

#[cfg(not(unix))]
pub(crate) fn mode(_: &std::fs::Metadata) -> u32 {
    0o700
}

#[cfg(unix)]
pub(crate) fn writable(path: &Path) -> bool {
    rustix::fs::access(path, rustix::fs::Access::WRITE_OK).is_ok()
}

#[cfg(not(unix))]
pub(crate) fn writable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| !m.permissions().readonly())
}

/// The metadata of `path`, or a failed `check` saying it is missing
/// (followed by `missing`, the advice) or cannot be read.
fn metadata_or_fail(
    report: &mut Report,
    check: &'static str,
    path: &Path,
    missing: &str,
) -> Option<std::fs::Metadata> {
    let shown = path.display();
    match std::fs::metadata(path) {
        Ok(m) => Some(m),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            report.push(check, Level::Fail, format!("{shown} {missing}"));
            None
        }
        Err(e) => {
            report.push(check, Level::Fail, format!("cannot read {shown}: {e}"));
            None
        }
    }
}

/// Returns whether the home exists, so the other checks make sense.
fn check_home(report: &mut Report, home: &Path) -> bool {
    let shown = home.display();
    let Some(meta) = metadata_or_fail(
        report,
        "home",
        home,
        "does not exist: run `convene init --org NAME --sector SECTOR`, or pass the right --home / CONVENE_HOME",
    ) else {
        return false;
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

pub(crate) fn human_bytes(n: u64) -> String {
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

pub(crate) fn human_ms(ms: i64) -> String {
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

        std::fs::remove_file(home.join(crate::KEY_FILE)).unwrap();
        let report = run(home, &Options::default());
        assert!(!report.ok());
        let key = report.checks.iter().find(|c| c.check == "key").unwrap();
        assert_eq!(key.status, Level::Fail);
        assert!(key.message.contains("missing"), "{key:?}");
    }
}
