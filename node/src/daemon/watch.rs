//! Noticing writes other processes make to the node's store (a CLI
//! `publish`, the web app, and the daemon's own connection), so that the
//! event loop announces them at once instead of at its next tick.
//!
//! What says a commit happened is SQLite's `data_version`, read on the
//! watcher's own read-only connection: it changes whenever another
//! connection commits. When to read it:
//!
//! - On Linux, when the kernel says a file of the store changed (inotify on
//!   the home folder, for the database and its write-ahead log). A writer
//!   appends its frames to the log and only then (after syncing it) marks
//!   the commit in the shared index, which raises no event; so after an
//!   event the watcher reads again every millisecond for 8 ms (a commit
//!   that syncs its log shows within a few), then at 2, 2, 4 … 32 ms,
//!   until it sees the commit. An idle node reads nothing.
//! - Elsewhere, or if inotify cannot be set up, every `period`.
//!
//! Either way the event loop's own tick still looks every 100 ms, so a
//! missed notification costs latency, never data.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::mpsc;

/// Re-reads after a file event, until the commit shows (milliseconds
/// between reads). Each read is one pragma on an open connection, a few
/// microseconds; reading every millisecond at first, not at 1, 2, 4 …,
/// took a 20-node mesh's first delivery from 22 to 18 ms after a publish.
const SETTLE: [u64; 14] = [1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 4, 8, 16, 32];

/// The store's commit counter as seen by `conn`.
struct Version {
    conn: rusqlite::Connection,
    last: Option<i64>,
}

impl Version {
    fn open(db: &Path) -> Option<Self> {
        use rusqlite::OpenFlags;
        let conn = rusqlite::Connection::open_with_flags(
            db,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .ok()?;
        let mut me = Self { conn, last: None };
        me.last = me.read();
        Some(me)
    }

    fn read(&self) -> Option<i64> {
        self.conn
            .prepare_cached("PRAGMA data_version")
            .and_then(|mut s| s.query_row([], |r| r.get(0)))
            .ok()
    }

    /// Whether a commit happened since the last look.
    fn changed(&mut self) -> bool {
        let now = self.read();
        if now != self.last {
            self.last = now;
            true
        } else {
            false
        }
    }
}

/// Wakes the event loop (through `wake`) soon after any connection to the
/// store at `db` commits. Ends when the loop has gone, or quietly if the
/// store cannot be opened (the loop's tick still looks).
pub(super) async fn watch_writes(db: PathBuf, period: Duration, wake: mpsc::Sender<()>) {
    let Some(mut version) = Version::open(&db) else {
        tracing::warn!("cannot watch the store for other processes' writes");
        return;
    };
    #[cfg(target_os = "linux")]
    match inotify::Watch::new(&db) {
        Ok(watch) => return on_events(watch, &mut version, &wake).await,
        Err(e) => {
            tracing::debug!(error = %e, "no file events; looking for writes every {period:?}")
        }
    }
    let mut every = tokio::time::interval(period);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        if wake.is_closed() {
            return;
        }
        if version.changed() {
            // Full means a wake-up is pending already.
            let _ = wake.try_send(());
        }
    }
}

#[cfg(target_os = "linux")]
async fn on_events(mut watch: inotify::Watch, version: &mut Version, wake: &mpsc::Sender<()>) {
    loop {
        tokio::select! {
            ready = watch.wait() => if let Err(e) = ready {
                tracing::warn!(error = %e, "file events stopped; the event loop's tick still looks");
                return;
            },
            () = wake.closed() => return,
        }
        // The commit may not show yet (see the module docs).
        for delay in SETTLE {
            if version.changed() {
                let _ = wake.try_send(());
                break;
            }
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
    }
}

#[cfg(target_os = "linux")]
mod inotify {
    use std::ffi::OsString;
    use std::io;
    use std::os::fd::OwnedFd;
    use std::os::unix::ffi::OsStrExt;
    use std::path::Path;

    use rustix::fs::inotify::{self, CreateFlags, WatchFlags};
    use tokio::io::unix::AsyncFd;

    /// An inotify watch on the folder of a database, reporting changes to
    /// the database's own files (`store.db`, `store.db-wal`) only.
    pub(super) struct Watch {
        fd: AsyncFd<OwnedFd>,
        name: OsString,
        buf: Vec<std::mem::MaybeUninit<u8>>,
    }

    impl Watch {
        pub(super) fn new(db: &Path) -> io::Result<Self> {
            let dir = db.parent().unwrap_or(Path::new("."));
            let name = db.file_name().unwrap_or_default().to_os_string();
            let fd = inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK)?;
            inotify::add_watch(&fd, dir, WatchFlags::MODIFY | WatchFlags::CLOSE_WRITE)?;
            // `new` is deprecated because a registered descriptor could be
            // closed by its owner while tokio still polls it; here the
            // `AsyncFd` owns it, so it is closed only when deregistered.
            #[allow(deprecated)]
            let fd = AsyncFd::new(fd)?;
            Ok(Self {
                fd,
                name,
                buf: vec![std::mem::MaybeUninit::uninit(); 4096],
            })
        }

        /// Waits until one of the database's files changed.
        pub(super) async fn wait(&mut self) -> io::Result<()> {
            loop {
                let mut guard = self.fd.readable().await?;
                let mut ours = false;
                let mut reader = inotify::Reader::new(guard.get_inner(), &mut self.buf);
                loop {
                    match reader.next() {
                        Ok(event) => {
                            ours |= event
                                .file_name()
                                .is_some_and(|f| f.to_bytes().starts_with(self.name.as_bytes()));
                        }
                        Err(rustix::io::Errno::AGAIN) => break,
                        Err(e) => return Err(e.into()),
                    }
                }
                guard.clear_ready();
                if ours {
                    return Ok(());
                }
            }
        }
    }
}
