//! The node's files: its key, its database (read-only, never migrated),
//! whether the two belong together, and whether the files holding
//! personal data are private to the node's user.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use super::{Level, Report, human_bytes, metadata_or_fail, mode, writable};
use crate::daemon::LOCK_FILE;
use crate::node::{DB_FILE, KEY_FILE, PRIVATE_FILE_MODE};
use crate::store::schema::MIGRATIONS;
use crate::trust::Identity;

pub(super) fn check_key(report: &mut Report, home: &Path) -> Option<Identity> {
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

pub(super) fn check_database(report: &mut Report, home: &Path) -> Option<Connection> {
    let path = home.join(DB_FILE);
    let shown = path.display();
    let meta = metadata_or_fail(
        report,
        "database",
        &path,
        "is missing: run `convene init` or `convene restore BACKUP`",
    )?;
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
pub(super) fn check_key_matches(report: &mut Report, identity: &Identity, conn: &Connection) {
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

/// The files in a home besides the key (checked with it) that must be
/// private: the database with its WAL and SHM, which hold every entry and
/// contact, and the daemon's lock. Missing ones are fine (the WAL and SHM
/// exist only while the database is open; the lock once a daemon ran).
pub(super) fn check_private_files(report: &mut Report, home: &Path) {
    let names = [
        DB_FILE.to_string(),
        format!("{DB_FILE}-wal"),
        format!("{DB_FILE}-shm"),
        LOCK_FILE.to_string(),
    ];
    let mut open = Vec::new();
    let mut present = Vec::new();
    for name in &names {
        let path = home.join(name);
        match std::fs::symlink_metadata(&path) {
            Ok(meta) => {
                let m = mode(&meta);
                if m & !PRIVATE_FILE_MODE != 0 {
                    open.push((format!("{name} (mode {m:o})"), path));
                } else {
                    present.push(name.as_str());
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                report.push(
                    "files",
                    Level::Fail,
                    format!("cannot read {}: {e}", path.display()),
                );
                return;
            }
        }
    }
    if open.is_empty() {
        report.push(
            "files",
            Level::Ok,
            format!("{} private to this user", present.join(", ")),
        );
    } else {
        let (found, paths): (Vec<String>, Vec<_>) = open.into_iter().unzip();
        let paths: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        report.push(
            "files",
            Level::Fail,
            format!(
                "{} open to other users, who could read every entry and contact: `chmod 600 {}`",
                found.join(", "),
                paths.join(" "),
            ),
        );
    }
}
