//! The running node: tokio wiring around the libp2p swarm and the sync
//! service.
//!
//! - [`config`]: `config.toml` (listen addresses, bootstrap peers, mDNS).
//! - [`config_edit`]: `convene config show | set | unset` (edits checked
//!   by the same loader, written atomically, comments kept).
//! - [`event_loop`]: the loop that owns the `Swarm` and the sync
//!   [`crate::sync::Service`], and the cloneable [`Client`] the rest of the
//!   program uses (`spawn` returns both). The loop ends when every client
//!   is dropped.
//! - [`files`]: attachments on the network: the index of which entries
//!   use which files, who may be sent a file (the rule sync uses), and
//!   which files are fetched without asking (`[files] auto_fetch_mb`).
//! - [`status`]: the daemon's lock and what `convene status` reads.
//! - [`metrics`]: the counters the event loop keeps, in Prometheus form.
//! - [`web`]: the local web app, its JSON API and `/metrics`, on
//!   loopback behind a token; it has its own store connection.
//!
//! - `watch`: how local writes by other processes (a CLI `publish` while
//!   the daemon runs) reach the loop: on a file event for the store (or
//!   every 10 ms where there are none) a watcher task reads SQLite's
//!   `data_version` on its own connection (it changes when another
//!   connection commits) and, when it changed, wakes the loop; the loop
//!   reads `data_version` on its own connection, which does not move for
//!   its own commits, so a wake-up for those costs nothing more, and for
//!   another process's its sync service looks for changes appended since
//!   it last looked and pushes or announces them; the 100 ms housekeeping
//!   tick looks too.

pub mod config;
pub mod config_edit;
pub mod event_loop;
pub mod files;
pub mod metrics;
pub mod status;
mod watch;
pub mod web;

pub use libp2p::Multiaddr;

pub use config::{CONFIG_FILE, Config, ConfigError, parse_addr, parse_web_addr};
pub use event_loop::{Client, DaemonError, META_REACH, PeerInfo, Reach, is_relayed, spawn};
pub use metrics::Metrics;
pub use status::{DaemonLock, LOCK_FILE, LockError, Status, is_running};
