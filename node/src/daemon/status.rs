//! What `convene status` and `convene peers` show, read from the home so
//! that it works from another process while the daemon runs (and says so
//! when it does not).
//!
//! A running daemon holds an exclusive lock on `daemon.lock` in the home;
//! that lock, not a pid file, tells whether it runs, so a daemon killed
//! with SIGKILL never leaves a stale "running" behind.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::Path;

use crate::node::Node;
use crate::store::{PeerRecord, StoreError};

/// `meta` key holding the daemon's listen addresses (a JSON list).
pub const META_LISTEN: &str = "daemon.listen";
/// The lock file a running daemon holds.
pub const LOCK_FILE: &str = "daemon.lock";

/// Held for as long as a daemon (or `sync --once`) uses the home's key on
/// the network.
#[derive(Debug)]
pub struct DaemonLock {
    _file: File,
}

/// Another process already runs the node.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "a Convene daemon is already running on {0}; stop it first (it syncs by itself while it runs)"
    )]
    Running(String),
    #[error("cannot open the lock file in {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// Opens (creating) the lock file, readable by its owner only whatever
/// the umask; a lock file left open to others by an older version is
/// tightened.
fn open_lock(home: &Path) -> Result<File, LockError> {
    let err = |source| LockError::Io {
        path: home.display().to_string(),
        source,
    };
    let path = home.join(LOCK_FILE);
    let mut options = OpenOptions::new();
    options.create(true).truncate(false).write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(crate::node::PRIVATE_FILE_MODE);
    }
    let file = options.open(&path).map_err(err)?;
    if let Err(e) = crate::node::make_private(&path) {
        tracing::warn!(path = %path.display(), "cannot make the lock file private: {e}");
    }
    Ok(file)
}

impl DaemonLock {
    pub fn acquire(home: &Path) -> Result<Self, LockError> {
        let file = open_lock(home)?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file }),
            Err(TryLockError::WouldBlock) => Err(LockError::Running(home.display().to_string())),
            Err(TryLockError::Error(source)) => Err(LockError::Io {
                path: home.display().to_string(),
                source,
            }),
        }
    }
}

/// Whether a daemon runs on `home` right now.
pub fn is_running(home: &Path) -> bool {
    let Ok(file) = File::open(home.join(LOCK_FILE)) else {
        return false;
    };
    matches!(file.try_lock_shared(), Err(TryLockError::WouldBlock))
}

/// A snapshot of a node for `convene status`.
#[derive(Debug, Clone)]
pub struct Status {
    pub node_id: String,
    pub org_id: String,
    pub org_name: Option<String>,
    pub running: bool,
    /// Listen addresses while the daemon runs.
    pub listen: Vec<String>,
    /// The web app's address while the daemon serves it.
    pub web: Option<String>,
    pub peers: Vec<PeerRecord>,
    /// Valid entries per kind.
    pub counts: Vec<(String, i64)>,
    /// Bytes of attachment content held.
    pub files_held: u64,
    /// The daemon's downloads while it runs: hash, bytes verified, bytes
    /// in all, state (`fetching`, `no source`, `failed: …`, `refused: …`).
    pub fetching: Vec<Fetching>,
}

/// One of the daemon's downloads, as `status` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetching {
    pub hash: String,
    pub done: u64,
    pub total: u64,
    pub state: String,
}

impl Status {
    pub fn read(node: &Node) -> Result<Self, StoreError> {
        let running = is_running(node.home());
        let store = node.store();
        let listen = if running {
            store
                .meta(META_LISTEN)?
                .and_then(|s| serde_json::from_str(&s).ok())
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        let web = if running {
            store.meta(super::web::META_WEB)?.filter(|u| !u.is_empty())
        } else {
            None
        };
        let mut peers = store.peers()?;
        if !running {
            for p in &mut peers {
                p.connected = false;
            }
        }
        let fetching = if running {
            let report: serde_json::Value = store
                .meta(super::files::META_FETCHING)?
                .and_then(|s| serde_json::from_str(&s).ok())
                .unwrap_or_default();
            report
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(hash, v)| Fetching {
                            hash: hash.clone(),
                            done: v["done"].as_u64().unwrap_or(0),
                            total: v["total"].as_u64().unwrap_or(0),
                            state: v["state"].as_str().unwrap_or("").to_string(),
                        })
                        .collect()
                })
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        Ok(Self {
            files_held: node.blobs().held_bytes(),
            fetching,
            node_id: node.node_id().to_string(),
            org_id: node.org().to_string(),
            org_name: node.org_name(&node.org()),
            running,
            listen,
            web,
            peers,
            counts: store.counts()?,
        })
    }
}
