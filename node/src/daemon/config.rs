//! `config.toml` in the home: the daemon's defaults, which flags override.
//!
//! ```toml
//! # Addresses to listen on (TCP and QUIC).
//! listen = ["/ip4/0.0.0.0/tcp/4040", "/ip4/0.0.0.0/udp/4040/quic-v1"]
//! # Members to dial at start, and again whenever the connection drops.
//! bootstrap = ["/dns4/convene.example-trust.nhs.uk/tcp/4040/p2p/12D3KooW…"]
//! # Find other nodes on the local network.
//! mdns = true
//!
//! [web]
//! # The local web app and /metrics; loopback only. Port 0 picks a free one.
//! listen = "127.0.0.1:4041"
//! # Set to false to run without the web app.
//! enabled = true
//!
//! [files]
//! # The largest attachment, in MB (millions of bytes), this node stores.
//! max_file_mb = 200
//! # Attachments up to this size are fetched from members without asking;
//! # larger ones when someone asks (`convene get`). 0: only on demand.
//! auto_fetch_mb = 20
//! # At most this many MB of files used by one organisation's entries are
//! # fetched from peers. 0: no quota.
//! quota_mb_per_org = 0
//!
//! [network]
//! # Members this node dials, from the address records members share,
//! # until it is connected to this many (bootstrap and mDNS peers count).
//! min_peers = 8
//! # Past this many member connections, the youngest that members opened
//! # (not those in a restricted entry's audience, nor relay clients) are
//! # closed: every connection carries every announcement, so this bounds
//! # the traffic as the community grows.
//! max_peers = 32
//! # Serve as a relay for members that cannot be dialled (behind NAT, or
//! # started with --no-listen); only a node that listens does.
//! relay = true
//! # A community on one private network: let AutoNAT count private and
//! # loopback addresses as reachable, and dial them from members' address
//! # records. Off, only global ones count, and a member's private address
//! # is dialled only where this node's own listening, bootstrap or
//! # connected addresses are in the same scope.
//! private_addresses = false
//! ```

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use libp2p::Multiaddr;
use serde::{Deserialize, Serialize};

/// The file name inside a home.
pub const CONFIG_FILE: &str = "config.toml";

/// The default port for TCP and QUIC.
pub const DEFAULT_PORT: u16 = 4040;

/// A problem with `config.toml`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not valid: {message}")]
    Invalid { path: String, message: String },
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct File {
    listen: Option<Vec<String>>,
    bootstrap: Option<Vec<String>>,
    mdns: Option<bool>,
    web: Option<WebFile>,
    files: Option<FilesFile>,
    network: Option<NetworkFile>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct NetworkFile {
    min_peers: Option<usize>,
    max_peers: Option<usize>,
    relay: Option<bool>,
    private_addresses: Option<bool>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct FilesFile {
    max_file_mb: Option<u64>,
    auto_fetch_mb: Option<u64>,
    quota_mb_per_org: Option<u64>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct WebFile {
    listen: Option<String>,
    enabled: Option<bool>,
}

/// The default port of the local web app.
pub const DEFAULT_WEB_PORT: u16 = 4041;

/// How the daemon runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub listen: Vec<Multiaddr>,
    pub bootstrap: Vec<Multiaddr>,
    pub mdns: bool,
    /// Where the local web app listens (always a loopback address); `None`
    /// runs without it.
    pub web: Option<SocketAddr>,
    /// How often the daemon's housekeeping runs (bootstrap dials, peers'
    /// standing, the memory guard) and local writes are looked for in full.
    pub tick: Duration,
    /// How often the store is checked for writes by other processes (a CLI
    /// command, the web app) where file events are not available (on Linux
    /// a file event triggers the check instead): one read of SQLite's
    /// `data_version` on a watcher's own connection, which wakes the event
    /// loop only after a commit. This is what keeps a publish made through
    /// the CLI at the network's speed.
    pub local_writes: Duration,
    /// How often every connected peer is fully reconciled again, to heal
    /// announcements lost to a dropped connection.
    pub resync: Duration,
    /// How long a sync request may wait for its answer; a peer that never
    /// answers fails the session after this long.
    pub request_timeout: Duration,
    /// While the daemon's resident memory is over this many bytes, peers
    /// that are not members are disconnected and refused (members are
    /// not): whatever gets past the per-connection limits, strangers
    /// cannot take the node past this.
    pub stranger_memory: u64,
    /// What this node accepts as attachment content (`[files]`).
    pub files: crate::FileLimits,
    /// Members dialled from their address records until this many are
    /// connected (`network.min_peers`).
    pub min_peers: usize,
    /// Inbound member connections past this many are closed
    /// (`network.max_peers`).
    pub max_peers: usize,
    /// Serve as a relay for members when listening (`network.relay`).
    pub relay: bool,
    /// AutoNAT counts private and loopback addresses, and members' are
    /// dialled from their records (`network.private_addresses`).
    pub private_addresses: bool,
}

/// The most members `network.min_peers` may ask for.
pub const MAX_MIN_PEERS: usize = 256;
/// The most member connections `network.max_peers` may allow.
pub const MAX_MAX_PEERS: usize = 1024;

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: vec![
                format!("/ip4/0.0.0.0/tcp/{DEFAULT_PORT}")
                    .parse()
                    .expect("valid address"),
                format!("/ip4/0.0.0.0/udp/{DEFAULT_PORT}/quic-v1")
                    .parse()
                    .expect("valid address"),
            ],
            bootstrap: Vec::new(),
            mdns: true,
            web: Some(SocketAddr::from(([127, 0, 0, 1], DEFAULT_WEB_PORT))),
            tick: Duration::from_millis(100),
            local_writes: Duration::from_millis(10),
            resync: Duration::from_secs(60),
            request_timeout: crate::net::behaviour::REQUEST_TIMEOUT,
            stranger_memory: 512 * 1024 * 1024,
            files: crate::FileLimits::default(),
            min_peers: crate::net::overlay::Degree::default().min,
            max_peers: crate::net::overlay::Degree::default().max,
            relay: true,
            private_addresses: false,
        }
    }
}

/// Parses the web app's address, which must be on loopback: the app is for
/// the people at this computer, behind a token.
pub fn parse_web_addr(s: &str) -> Result<SocketAddr, String> {
    let addr: SocketAddr = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not an address and port; e.g. 127.0.0.1:4041"))?;
    if !addr.ip().is_loopback() {
        return Err(format!(
            "the web app listens on loopback only (127.0.0.1 or [::1]), not {addr}; put a reverse proxy with its own sign-in in front to share it"
        ));
    }
    Ok(addr)
}

/// Parses a multiaddress, with a message that names the bad one.
pub fn parse_addr(s: &str) -> Result<Multiaddr, String> {
    s.trim()
        .parse()
        .map_err(|e| format!("{s:?} is not a multiaddress ({e}); e.g. /ip4/192.0.2.10/tcp/4040"))
}

impl Config {
    /// Reads `config.toml` from `home` (defaults where it is missing).
    pub fn load(home: &Path) -> Result<Self, ConfigError> {
        let path = home.join(CONFIG_FILE);
        let shown = path.display().to_string();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(source) => {
                return Err(ConfigError::Read {
                    path: shown,
                    source,
                });
            }
        };
        Self::parse(&text, &shown)
    }

    /// Parses the text of a `config.toml` (`shown` names it in errors):
    /// the one loader that `node start`, `config set` and the doctor use.
    pub fn parse(text: &str, shown: &str) -> Result<Self, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: shown.to_string(),
            message,
        };
        let file: File = toml::from_str(text).map_err(|e| invalid(e.message().to_string()))?;
        let mut config = Self::default();
        if let Some(listen) = file.listen {
            config.listen = listen
                .iter()
                .map(|s| parse_addr(s))
                .collect::<Result<_, _>>()
                .map_err(invalid)?;
        }
        if let Some(bootstrap) = file.bootstrap {
            config.bootstrap = bootstrap
                .iter()
                .map(|s| parse_addr(s))
                .collect::<Result<_, _>>()
                .map_err(invalid)?;
        }
        if let Some(mdns) = file.mdns {
            config.mdns = mdns;
        }
        if let Some(web) = file.web {
            if let Some(listen) = web.listen {
                config.web = Some(parse_web_addr(&listen).map_err(invalid)?);
            }
            if web.enabled == Some(false) {
                config.web = None;
            }
        }
        let files = file.files.unwrap_or_default();
        if let Some(mb) = files.auto_fetch_mb {
            config.files.auto_fetch = mb.saturating_mul(1_000_000);
        }
        if let Some(mb) = files.quota_mb_per_org {
            config.files.quota_per_org = (mb > 0).then(|| mb.saturating_mul(1_000_000));
        }
        if let Some(mb) = files.max_file_mb {
            if mb == 0 || mb > convene_model::attachment::MAX_FILE_CEILING / 1_000_000 {
                return Err(invalid(format!(
                    "files.max_file_mb = {mb}: must be between 1 and {}",
                    convene_model::attachment::MAX_FILE_CEILING / 1_000_000
                )));
            }
            config.files.max_file = mb * 1_000_000;
        }
        let network = file.network.unwrap_or_default();
        if let Some(n) = network.min_peers {
            if n > MAX_MIN_PEERS {
                return Err(invalid(format!(
                    "network.min_peers = {n}: must be at most {MAX_MIN_PEERS}"
                )));
            }
            config.min_peers = n;
        }
        match network.max_peers {
            Some(n) if n < config.min_peers || n > MAX_MAX_PEERS => {
                return Err(invalid(format!(
                    "network.max_peers = {n}: must be between network.min_peers ({}) and {MAX_MAX_PEERS}",
                    config.min_peers
                )));
            }
            Some(n) => config.max_peers = n,
            // A larger min_peers without a max: room for it.
            None => config.max_peers = config.max_peers.max(config.min_peers),
        }
        if let Some(relay) = network.relay {
            config.relay = relay;
        }
        if let Some(private) = network.private_addresses {
            config.private_addresses = private;
        }
        Ok(config)
    }

    /// The file's keys with this configuration's values, as TOML: what
    /// `convene config show` prints, and the keys `config set` knows. A
    /// key the loader accepts belongs here too.
    pub fn to_toml(&self) -> String {
        let strings = |v: &[Multiaddr]| Some(v.iter().map(ToString::to_string).collect());
        let file = File {
            listen: strings(&self.listen),
            bootstrap: strings(&self.bootstrap),
            mdns: Some(self.mdns),
            web: Some(WebFile {
                listen: Some(
                    self.web
                        .unwrap_or(SocketAddr::from(([127, 0, 0, 1], DEFAULT_WEB_PORT)))
                        .to_string(),
                ),
                enabled: Some(self.web.is_some()),
            }),
            files: Some(FilesFile {
                max_file_mb: Some(self.files.max_file / 1_000_000),
                auto_fetch_mb: Some(self.files.auto_fetch / 1_000_000),
                quota_mb_per_org: Some(self.files.quota_per_org.map_or(0, |q| q / 1_000_000)),
            }),
            network: Some(NetworkFile {
                min_peers: Some(self.min_peers),
                max_peers: Some(self.max_peers),
                relay: Some(self.relay),
                private_addresses: Some(self.private_addresses),
            }),
        };
        toml::to_string(&file).expect("the config serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_overrides_defaults_and_bad_values_are_named() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Config::load(dir.path()).unwrap(), Config::default());
        std::fs::write(
            dir.path().join(CONFIG_FILE),
            "listen = [\"/ip4/127.0.0.1/tcp/5000\"]\nmdns = false\n",
        )
        .unwrap();
        let c = Config::load(dir.path()).unwrap();
        assert_eq!(c.listen.len(), 1);
        assert!(!c.mdns);
        std::fs::write(
            dir.path().join(CONFIG_FILE),
            "bootstrap = [\"not an address\"]\n",
        )
        .unwrap();
        let err = Config::load(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("\"not an address\" is not a multiaddress"),
            "{err}"
        );
        std::fs::write(
            dir.path().join(CONFIG_FILE),
            "[web]\nlisten = \"0.0.0.0:8080\"\n",
        )
        .unwrap();
        let err = Config::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("loopback only"), "{err}");
        std::fs::write(
            dir.path().join(CONFIG_FILE),
            "[web]\nlisten = \"127.0.0.1:0\"\n",
        )
        .unwrap();
        let c = Config::load(dir.path()).unwrap();
        assert_eq!(c.web, Some("127.0.0.1:0".parse().unwrap()));
        std::fs::write(dir.path().join(CONFIG_FILE), "[web]\nenabled = false\n").unwrap();
        assert_eq!(Config::load(dir.path()).unwrap().web, None);
        std::fs::write(dir.path().join(CONFIG_FILE), "listn = []\n").unwrap();
        let err = Config::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("unknown field"), "{err}");
    }

    #[test]
    fn the_connection_bounds_are_checked_against_each_other() {
        let parse = |text: &str| Config::parse(text, "config.toml");
        let c = parse("[network]\nmin_peers = 4\nmax_peers = 12\n").unwrap();
        assert_eq!((c.min_peers, c.max_peers), (4, 12));
        // A larger min_peers alone raises the maximum with it.
        let c = parse("[network]\nmin_peers = 40\n").unwrap();
        assert_eq!((c.min_peers, c.max_peers), (40, 40));
        let err = parse("[network]\nmin_peers = 10\nmax_peers = 9\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("network.max_peers = 9: must be between"),
            "{err}"
        );
        let err = parse("[network]\nmax_peers = 5000\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("network.max_peers = 5000"), "{err}");
    }
}
