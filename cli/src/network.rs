//! Commands that use the network: `node start`, `sync --once`, and the
//! status views of a (possibly running) daemon.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use convene_model::{DocumentId, Timestamp};
use convene_node::daemon::{self, Config, DaemonLock, Multiaddr, Status, parse_addr};
use convene_node::sync::SessionStats;
use convene_node::{InitOptions, Node, NodeError};
use serde_json::json;

use crate::args::{PeersArgs, StartArgs, StatusArgs, SyncArgs};
use crate::output::short_id;

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn host_name() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "My organisation".into())
}

/// Opens the node, creating it on first use.
fn open_or_init(home: &Path, a: &StartArgs) -> Result<Node> {
    match Node::open(home) {
        Ok(node) => Ok(node),
        Err(NodeError::NotInitialised(_)) => {
            let org = a.org.clone().unwrap_or_else(host_name);
            let node = Node::init(
                home,
                &InitOptions {
                    org: org.clone(),
                    sector: a.sector.clone(),
                    place: None,
                },
            )?;
            eprintln!(
                "Created a new node for {org:?} in {} (organisation id {}); rename it with `convene edit {} --set name=…`",
                home.display(),
                node.org(),
                node.org()
            );
            Ok(node)
        }
        Err(e) => Err(e.into()),
    }
}

fn addrs(list: &[String]) -> Result<Vec<Multiaddr>> {
    list.iter()
        .map(|s| parse_addr(s).map_err(|e| anyhow!(e)))
        .collect()
}

pub fn start(out: &mut impl Write, home: &Path, a: StartArgs) -> Result<()> {
    let node = open_or_init(home, &a)?;
    let _lock = DaemonLock::acquire(home)?;
    let mut config = Config::load(home)?;
    if !a.listen.is_empty() {
        config.listen = addrs(&a.listen)?;
    }
    if a.no_listen {
        config.listen = Vec::new();
    }
    if !a.bootstrap.is_empty() {
        config.bootstrap = addrs(&a.bootstrap)?;
    }
    if a.no_mdns {
        config.mdns = false;
    }
    if let Some(web) = &a.web {
        config.web = Some(daemon::parse_web_addr(web).map_err(|e| anyhow!(e))?);
    }
    if a.no_web {
        config.web = None;
    }
    refuse_ports_in_use(&config.listen)?;
    let node_id = node.node_id();
    if config.web.is_none() {
        // Forget the address of a web app an earlier run served.
        node.store().set_meta(daemon::web::META_WEB, "")?;
    }
    let config_listen = config.listen.clone();
    let rt = runtime()?;
    rt.block_on(async {
        let shutdown = Shutdown::watch()?;
        let web_addr = config.web;
        let (client, handle) = daemon::spawn(node, config)?;
        let web = match web_addr {
            Some(addr) => Some(daemon::web::serve(home, addr, Some(client.clone())).await?),
            None => None,
        };
        writeln!(out, "node {node_id}")?;
        if config_listen.is_empty() {
            writeln!(
                out,
                "not listening: dialling out only, reached through members' relays"
            )?;
        }
        for addr in every_listen_addr(&client, &config_listen).await? {
            writeln!(out, "listening on {addr}")?;
        }
        if let Some(web) = &web {
            writeln!(
                out,
                "web app on {} (sign in with `convene open`; metrics on {}metrics)",
                web.url(),
                web.url()
            )?;
        }
        out.flush()?;
        shutdown.wait().await?;
        tracing::info!("shutting down");
        if let Some(web) = web {
            web.stop().await;
        }
        drop(client);
        handle.await.context("the event loop panicked")?;
        writeln!(out, "stopped")?;
        Ok::<_, anyhow::Error>(())
    })
}

/// The IP address of an `/ip4/…` or `/ip6/…` address.
fn ip_of(addr: &Multiaddr) -> Option<std::net::IpAddr> {
    let text = addr.to_string();
    let mut parts = text.split('/').skip(1);
    match (parts.next(), parts.next()) {
        (Some("ip4" | "ip6"), Some(ip)) => ip.parse().ok(),
        _ => None,
    }
}

/// The IP address and port of a `/ip4|ip6/…/tcp|udp/PORT` address, and
/// which of the two it is.
fn socket_of(addr: &Multiaddr) -> Option<(std::net::SocketAddr, &'static str)> {
    let text = addr.to_string();
    let parts: Vec<&str> = text.split('/').collect();
    let (proto, port) = parts.windows(2).find_map(|w| match w[0] {
        "tcp" => Some(("TCP", w[1].parse().ok()?)),
        "udp" => Some(("UDP", w[1].parse().ok()?)),
        _ => None,
    })?;
    Some((std::net::SocketAddr::new(ip_of(addr)?, port), proto))
}

/// Refuses to start when a port to listen on is taken. libp2p sets
/// `SO_REUSEPORT` on its TCP listening sockets, so a second node of the
/// same user could bind a running node's port without an error and take
/// half its connections; a plain bind (no `SO_REUSEPORT`) fails on such a
/// port, and on any port another program holds, and is closed again at
/// once. QUIC's UDP port is checked the same way, for a clear message.
fn refuse_ports_in_use(listen: &[Multiaddr]) -> Result<()> {
    for addr in listen {
        let Some((socket, proto)) = socket_of(addr).filter(|(s, _)| s.port() != 0) else {
            continue;
        };
        let bound = if proto == "TCP" {
            std::net::TcpListener::bind(socket).map(drop)
        } else {
            std::net::UdpSocket::bind(socket).map(drop)
        };
        if let Err(e) = bound {
            let why = if e.kind() == std::io::ErrorKind::AddrInUse {
                format!(
                    "{proto} port {} is already in use, by another Convene node or another program; stop it, or choose another port with --listen or `convene config set listen`",
                    socket.port()
                )
            } else {
                e.to_string()
            };
            bail!("cannot listen on {addr}: {why}");
        }
    }
    Ok(())
}

/// Every address the node listens on, non-loopback first. An unspecified
/// address (`0.0.0.0`, `::`) becomes one address per interface as libp2p
/// reports them, one event each, so this waits until no new one has come
/// for a moment (at most two seconds) instead of printing the first.
async fn every_listen_addr(
    client: &daemon::Client,
    configured: &[Multiaddr],
) -> Result<Vec<Multiaddr>> {
    let mut addrs = client.listen_addrs().await?;
    let unspecified = configured
        .iter()
        .any(|a| ip_of(a).is_some_and(|ip| ip.is_unspecified()));
    if unspecified {
        let until = tokio::time::Instant::now() + Duration::from_secs(2);
        let mut quiet = 0;
        while quiet < 3 && tokio::time::Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let now = client.listen_addrs().await?;
            if now.len() == addrs.len() {
                quiet += 1;
            } else {
                quiet = 0;
            }
            addrs = now;
        }
    }
    addrs.sort_by_key(|a| ip_of(a).is_some_and(|ip| ip.is_loopback()));
    Ok(addrs)
}

/// Ctrl-C and SIGTERM, watched from the moment this is made: one that
/// arrives while the node is still starting (a service manager stopping
/// it at once) stops it as gracefully as a later one, instead of killing
/// it by the signal's default action.
pub(crate) struct Shutdown {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Shutdown {
    /// Starts watching (inside the runtime).
    pub(crate) fn watch() -> Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Self {
                interrupt: signal(SignalKind::interrupt()).context("cannot watch for Ctrl-C")?,
                terminate: signal(SignalKind::terminate()).context("cannot watch for SIGTERM")?,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    /// Waits for Ctrl-C or SIGTERM (also one that came before this call).
    pub(crate) async fn wait(mut self) -> Result<()> {
        #[cfg(unix)]
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
        #[cfg(not(unix))]
        tokio::signal::ctrl_c()
            .await
            .context("cannot watch for Ctrl-C")?;
        let _ = &mut self;
        Ok(())
    }
}

pub fn sync_once(out: &mut impl Write, home: &Path, a: SyncArgs) -> Result<()> {
    let peer_addr = parse_addr(&a.peer).map_err(|e| anyhow!(e))?;
    let node = Node::open(home)?;
    let _lock = DaemonLock::acquire(home)?;
    let config = Config {
        listen: Vec::new(),
        bootstrap: Vec::new(),
        mdns: false,
        ..Config::default()
    };
    let rt = runtime()?;
    let deadline = Duration::from_secs(a.timeout);
    let spinner = crate::progress::spinner(format!("connecting to {peer_addr}"));
    let (stats, bytes) = rt.block_on(async {
        let (client, handle) = daemon::spawn(node, config)?;
        let work = async {
            let peer = client.dial(peer_addr.clone()).await?;
            crate::progress::say(&spinner, format!("comparing catalogues with {peer}"));
            let stats = sync_showing_progress(&client, peer, &spinner).await?;
            let bytes = client.bytes().await?;
            Ok::<_, anyhow::Error>((peer, stats, bytes))
        };
        let result = tokio::time::timeout(deadline, work).await;
        crate::progress::done(&spinner);
        let result = result.map_err(|_| {
            anyhow!(
                "sync with {peer_addr} did not finish within {} seconds",
                a.timeout
            )
        })?;
        drop(client);
        let _ = handle.await;
        let (peer, stats, bytes) = result?;
        Ok::<_, anyhow::Error>(((peer, stats), bytes))
    })?;
    let node = Node::open(home)?;
    report_sync(out, &node, &stats.0.to_string(), &stats.1, bytes, a.json)
}

/// Syncs with `peer`, turning `spinner` (if there is one) into a bar of
/// the entries caught up so far: the session's own counts, every 200 ms.
pub(crate) async fn sync_showing_progress(
    client: &daemon::Client,
    peer: convene_node::NodeId,
    spinner: &Option<indicatif::ProgressBar>,
) -> Result<SessionStats> {
    let sync = client.sync(peer);
    tokio::pin!(sync);
    if spinner.is_none() {
        return Ok(sync.await?);
    }
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            r = &mut sync => return Ok(r?),
            _ = tick.tick() => {
                if let Ok(Some(p)) = client.progress(peer).await
                    && p.reconciled
                    && p.docs_total > 0
                {
                    crate::progress::bar(
                        spinner,
                        &format!("catching up ({} changes)", p.received),
                        p.docs_done as u64,
                        p.docs_total as u64,
                        "entries",
                    );
                }
            }
        }
    }
}

fn titles(node: &Node, docs: &std::collections::BTreeSet<[u8; 16]>) -> Vec<serde_json::Value> {
    docs.iter()
        .map(|d| {
            let id = DocumentId::from_bytes(*d);
            match node.get(id) {
                Ok(e) => json!({"id": id.to_string(), "kind": e.meta.kind.as_str(), "title": e.body.title()}),
                Err(_) => json!({"id": id.to_string(), "kind": null, "title": null}),
            }
        })
        .collect()
}

fn report_sync(
    out: &mut impl Write,
    node: &Node,
    peer: &str,
    stats: &SessionStats,
    (sent_bytes, received_bytes): (u64, u64),
    json_out: bool,
) -> Result<()> {
    let received = titles(node, &stats.docs_changed);
    let sent = titles(node, &stats.docs_sent);
    if json_out {
        let v = json!({
            "peer": peer,
            "changes_received": stats.received,
            "changes_sent": stats.sent,
            "changes_rejected": stats.rejected,
            "round_trips": stats.round_trips,
            "bytes_sent": sent_bytes,
            "bytes_received": received_bytes,
            "received": received,
            "sent": sent,
        });
        serde_json::to_writer(&mut *out, &v)?;
        writeln!(out)?;
        return Ok(());
    }
    let who = match peer_org_name(node, peer) {
        Some(name) => format!("{name} ({})", short_id(peer)),
        None => peer.to_string(),
    };
    writeln!(
        out,
        "Synced with {who}: received {} changes to {} entries{}, sent {} changes to {} entries{} ({} round trips, {} bytes out, {} bytes in)",
        stats.received,
        received.len(),
        by_kind(&received),
        stats.sent,
        sent.len(),
        by_kind(&sent),
        stats.round_trips,
        sent_bytes,
        received_bytes
    )?;
    if stats.rejected > 0 {
        writeln!(
            out,
            "Rejected {} changes that failed verification",
            stats.rejected
        )?;
    }
    // A few entries by name; a catch-up of hundreds is summed up above,
    // not listed line by line.
    for (label, list) in [("received", &received), ("sent", &sent)] {
        for e in list.iter().take(LISTED) {
            writeln!(
                out,
                "  {label:<8} {}  {:<12} {}",
                short_id(e["id"].as_str().unwrap_or_default()),
                e["kind"].as_str().unwrap_or("?"),
                e["title"].as_str().unwrap_or("")
            )?;
        }
        if list.len() > LISTED {
            writeln!(
                out,
                "  … and {} more {label} (`convene list` shows them; --json lists every one)",
                list.len() - LISTED
            )?;
        }
    }
    Ok(())
}

/// How many entries a sync report lists by name in each direction.
const LISTED: usize = 10;

/// " (480 learning, 20 project)" for a list of entries, or "".
fn by_kind(entries: &[serde_json::Value]) -> String {
    let mut counts = std::collections::BTreeMap::new();
    for e in entries {
        *counts
            .entry(e["kind"].as_str().unwrap_or("unknown"))
            .or_insert(0) += 1;
    }
    if counts.len() < 2 {
        return String::new();
    }
    let parts: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
    format!(" ({})", parts.join(", "))
}

/// The name of the member organisation a node belongs to, if known.
fn peer_org_name(node: &Node, peer: &str) -> Option<String> {
    node.membership()?
        .members
        .values()
        .find(|m| m.nodes.contains(peer))
        .map(|m| m.name.clone())
}

fn when(ms: Option<i64>) -> String {
    ms.map_or_else(|| "never".into(), |m| Timestamp(m).short())
}

pub fn status(out: &mut impl Write, home: &Path, a: StatusArgs) -> Result<()> {
    let node = Node::open(home)?;
    let s = Status::read(&node)?;
    if a.json {
        let v = json!({
            "node_id": s.node_id,
            "organisation": s.org_id,
            "organisation_name": s.org_name,
            "running": s.running,
            "listen": s.listen,
            "web": s.web,
            "connected_peers": s.peers.iter().filter(|p| p.connected).map(|p| p.node.clone()).collect::<Vec<_>>(),
            "entries": s.counts.iter().map(|(k, n)| (k.clone(), json!(n))).collect::<serde_json::Map<_, _>>(),
            "peers": s.peers.iter().map(peer_json).collect::<Vec<_>>(),
            "files": {
                "held_bytes": s.files_held,
                "fetching": s.fetching.iter().map(|f| json!({
                    "hash": f.hash,
                    "done": f.done,
                    "total": f.total,
                    "state": f.state,
                })).collect::<Vec<_>>(),
            },
        });
        serde_json::to_writer(&mut *out, &v)?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(out, "node          {}", s.node_id)?;
    writeln!(
        out,
        "organisation  {} ({})",
        s.org_name.as_deref().unwrap_or("(profile not here yet)"),
        s.org_id
    )?;
    if s.running {
        writeln!(out, "daemon        running")?;
        for addr in &s.listen {
            writeln!(out, "listening on  {addr}")?;
        }
        if let Some(web) = &s.web {
            writeln!(out, "web app       {web} (sign in with `convene open`)")?;
        }
    } else {
        writeln!(
            out,
            "daemon        not running (start it with `convene node start`)"
        )?;
    }
    let entries: Vec<String> = s.counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
    writeln!(
        out,
        "entries       {}",
        if entries.is_empty() {
            "none".into()
        } else {
            entries.join(", ")
        }
    )?;
    let active: Vec<_> = s.fetching.iter().filter(|f| f.total > 0).collect();
    let (done, total): (u64, u64) = active
        .iter()
        .fold((0, 0), |(d, t), f| (d + f.done, t + f.total));
    writeln!(
        out,
        "files         {} held{}",
        mb(s.files_held),
        if active.is_empty() {
            String::new()
        } else {
            format!(
                "; fetching {} ({} of {})",
                active.len(),
                mb(done),
                mb(total)
            )
        }
    )?;
    let connected = s.peers.iter().filter(|p| p.connected).count();
    writeln!(
        out,
        "peers         {connected} connected, {} known",
        s.peers.len()
    )?;
    for p in &s.peers {
        writeln!(
            out,
            "  {} {}  last sync {}",
            if p.connected { "*" } else { " " },
            p.node,
            when(p.last_sync)
        )?;
    }
    Ok(())
}

/// Bytes in MB (millions), one decimal.
fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1_000_000.0)
}

/// How a peer is reached: as recorded while connected, `unreachable` when
/// not connected now.
fn reached(p: &convene_node::store::PeerRecord) -> &str {
    if p.connected {
        p.reach.as_deref().unwrap_or("direct")
    } else {
        "unreachable"
    }
}

fn peer_json(p: &convene_node::store::PeerRecord) -> serde_json::Value {
    json!({
        "node": p.node,
        "address": p.address,
        "connected": p.connected,
        "reached": reached(p),
        "last_seen": p.last_seen.map(|m| Timestamp(m).to_string()),
        "last_sync": p.last_sync.map(|m| Timestamp(m).to_string()),
        "changes_in": p.changes_in,
        "changes_out": p.changes_out,
        "rejected": p.rejected,
    })
}

pub fn peers(out: &mut impl Write, home: &Path, a: PeersArgs) -> Result<()> {
    let node = Node::open(home)?;
    let s = Status::read(&node)?;
    if a.json {
        for p in &s.peers {
            serde_json::to_writer(&mut *out, &peer_json(p))?;
            writeln!(out)?;
        }
        return Ok(());
    }
    if s.peers.is_empty() {
        writeln!(out, "No peers yet.")?;
        return Ok(());
    }
    for p in &s.peers {
        writeln!(
            out,
            "{:<12} {}  {}  last seen {}  last sync {}  in {} out {} rejected {}",
            reached(p),
            p.node,
            p.address.as_deref().unwrap_or("-"),
            when(p.last_seen),
            when(p.last_sync),
            p.changes_in,
            p.changes_out,
            p.rejected
        )?;
    }
    Ok(())
}
