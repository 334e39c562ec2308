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
//! - [`status`]: the daemon's lock and what `convene status` reads.
//!
//! Local writes by other processes (a CLI `publish` while the daemon runs)
//! reach the loop through the store: every tick, the sync service looks
//! for changes appended since it last looked and announces them.

pub mod config;
pub mod config_edit;
pub mod event_loop;
pub mod status;

pub use libp2p::Multiaddr;

pub use config::{CONFIG_FILE, Config, ConfigError, parse_addr};
pub use event_loop::{Client, DaemonError, PeerInfo, spawn};
pub use status::{DaemonLock, LOCK_FILE, LockError, Status, is_running};
