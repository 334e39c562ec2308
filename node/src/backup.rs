//! Backups: a consistent copy of a node, its key and its database, taken
//! while it runs (SQLite's online backup API copies a snapshot without
//! stopping writers), and restoring one into an empty home.
//!
//! # Format (version 1)
//!
//! ```text
//! "CONVENE-BACKUP\n"  magic, 15 bytes
//! version             1 byte
//! key length          4 bytes LE, then the node key (libp2p protobuf encoding)
//! database length     8 bytes LE, then the SQLite database file
//! checksum            32 bytes: blake3 of everything before it
//! ```
//!
//! The file holds the node's private key: keep it as safe as the node.
//! It is written readable by its owner only (0600), whatever the umask,
//! and so is the snapshot of the database taken on the way.
//! A restored node is the same node (same key, same changes), so it
//! resumes syncing without duplicating anything.

use std::io::Write;
use std::path::Path;

use crate::error::NodeError;
use crate::node::{DB_FILE, KEY_FILE, Node, create_private_file};

const MAGIC: &[u8] = b"CONVENE-BACKUP\n";
const VERSION: u8 = 1;

/// Why a backup file was refused.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("this is not a Convene backup")]
    NotABackup,
    #[error("the backup is version {0}; this Convene reads version {VERSION}: upgrade convene")]
    TooNew(u8),
    #[error("the backup is damaged or incomplete (its checksum does not match)")]
    Damaged,
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
}

fn write_err(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::Write {
        path: path.display().to_string(),
        source,
    }
}

impl Node {
    /// Writes a consistent backup of this node to `file` (through a
    /// temporary file, so a failure never leaves half a backup behind).
    /// Returns its size in bytes.
    pub fn backup_to(&self, file: &Path) -> Result<u64, NodeError> {
        let snapshot = file.with_extension("db-partial");
        let _ = std::fs::remove_file(&snapshot);
        // Made private (and empty) before SQLite writes the snapshot into
        // it: SQLite would create it 0644, and it holds the whole database.
        create_private_file(&snapshot).map_err(write_err(&snapshot))?;
        self.store()
            .conn()
            .backup(
                rusqlite::MAIN_DB,
                &snapshot,
                None::<fn(rusqlite::backup::Progress)>,
            )
            .map_err(crate::store::StoreError::from)?;
        let db = std::fs::read(&snapshot).map_err(|source| BackupError::Read {
            path: snapshot.display().to_string(),
            source,
        });
        let _ = std::fs::remove_file(&snapshot);
        let db = db?;
        let key_path = self.home().join(KEY_FILE);
        let key = std::fs::read(&key_path).map_err(|source| BackupError::Read {
            path: key_path.display().to_string(),
            source,
        })?;
        let mut out = Vec::with_capacity(MAGIC.len() + 13 + key.len() + db.len() + 32);
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.extend_from_slice(&(key.len() as u32).to_le_bytes());
        out.extend_from_slice(&key);
        out.extend_from_slice(&(db.len() as u64).to_le_bytes());
        out.extend_from_slice(&db);
        let sum = blake3::hash(&out);
        out.extend_from_slice(sum.as_bytes());
        let partial = file.with_extension("partial");
        let mut f = create_private_file(&partial).map_err(write_err(&partial))?;
        f.write_all(&out).map_err(write_err(&partial))?;
        f.sync_all().map_err(write_err(&partial))?;
        std::fs::rename(&partial, file).map_err(write_err(file))?;
        Ok(out.len() as u64)
    }

    /// Restores a backup into `home`, which must not hold a node.
    pub fn restore(home: &Path, file: &Path) -> Result<Node, NodeError> {
        if home.join(KEY_FILE).exists() || home.join(DB_FILE).exists() {
            return Err(NodeError::AlreadyInitialised {
                path: home.to_path_buf(),
                node: "a node (restore only into an empty home)".into(),
            });
        }
        let bytes = std::fs::read(file).map_err(|source| BackupError::Read {
            path: file.display().to_string(),
            source,
        })?;
        let (key, db) = parse(&bytes)?;
        crate::node::create_home(home).map_err(|source| NodeError::CreateHome {
            path: home.to_path_buf(),
            source,
        })?;
        let restored = (|| {
            let key_path = home.join(KEY_FILE);
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            let mut f = options.open(&key_path).map_err(write_err(&key_path))?;
            f.write_all(key).map_err(write_err(&key_path))?;
            let db_path = home.join(DB_FILE);
            let mut f = create_private_file(&db_path).map_err(write_err(&db_path))?;
            f.write_all(db).map_err(write_err(&db_path))?;
            f.sync_all().map_err(write_err(&db_path))?;
            drop(f);
            Node::open(home)
        })();
        if restored.is_err() {
            for f in [KEY_FILE, DB_FILE, "convene.db-wal", "convene.db-shm"] {
                let _ = std::fs::remove_file(home.join(f));
            }
        }
        restored
    }
}

fn parse(bytes: &[u8]) -> Result<(&[u8], &[u8]), BackupError> {
    if bytes.len() < MAGIC.len() + 1 || &bytes[..MAGIC.len()] != MAGIC {
        return Err(BackupError::NotABackup);
    }
    let version = bytes[MAGIC.len()];
    if version != VERSION {
        return Err(BackupError::TooNew(version));
    }
    if bytes.len() < MAGIC.len() + 1 + 4 + 8 + 32 {
        return Err(BackupError::Damaged);
    }
    let (body, sum) = bytes.split_at(bytes.len() - 32);
    if blake3::hash(body).as_bytes() != sum {
        return Err(BackupError::Damaged);
    }
    let mut at = MAGIC.len() + 1;
    let key_len = u32::from_le_bytes(body[at..at + 4].try_into().expect("4 bytes")) as usize;
    at += 4;
    let key = body.get(at..at + key_len).ok_or(BackupError::Damaged)?;
    at += key_len;
    let db_len = body
        .get(at..at + 8)
        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")) as usize)
        .ok_or(BackupError::Damaged)?;
    at += 8;
    let db = body.get(at..at + db_len).ok_or(BackupError::Damaged)?;
    if at + db_len != body.len() {
        return Err(BackupError::Damaged);
    }
    Ok((key, db))
}
