//! `convene demo`: a small community on this computer, to see Convene work
//! before installing it anywhere.
//!
//! Three organisations (an NHS trust, a council and a VCSE group, with
//! entries from the real examples in `examples/demo/community.json`) each
//! get a real node in its own home: their own key, SQLite file and libp2p
//! listener on loopback. The trust creates the community and invites the
//! other two, who join over the network exactly as `convene join` does;
//! each then publishes its entries through a second store connection, as
//! the CLI would while a daemon runs, and the daemons sync them. Every node
//! serves its web app.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use convene_model::{EntryInput, Kind};
use serde::Deserialize;

use crate::NodeError;
use crate::daemon::Status;
use crate::daemon::web::{WebServer, serve};
use crate::daemon::{self, Client, Config, DaemonError, DaemonLock, LockError, Multiaddr};
use crate::node::{InitOptions, Node};

const SAMPLE: &str = include_str!("../../examples/demo/community.json");

/// Why the demo could not start.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    Node(#[from] NodeError),
    #[error(transparent)]
    Daemon(#[from] DaemonError),
    #[error(transparent)]
    Web(#[from] crate::daemon::web::WebError),
    #[error("{0} is not empty; give the demo an empty or new folder")]
    NotEmpty(PathBuf),
    #[error("cannot create {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("the demo nodes did not all hold every entry within {0:?}")]
    NotConverged(Duration),
}

#[derive(Debug, Deserialize)]
struct Sample {
    community: String,
    organisations: Vec<SampleOrg>,
}

#[derive(Debug, Deserialize)]
struct SampleOrg {
    name: String,
    sector: String,
    place: String,
    entries: Vec<serde_json::Value>,
}

fn sample() -> Sample {
    serde_json::from_str(SAMPLE).expect("the demo's sample data is valid JSON")
}

/// One of the demo's nodes.
#[derive(Debug)]
pub struct DemoNode {
    /// The organisation's name.
    pub name: String,
    pub home: PathBuf,
    pub client: Client,
    handle: tokio::task::JoinHandle<()>,
    pub web: Option<WebServer>,
    /// Marks the home as run by a daemon (for `status`, `open`).
    _lock: DaemonLock,
}

/// What the demo reports while it starts.
#[derive(Debug, Clone)]
pub enum Progress {
    /// A node is up (name, listen address).
    Started(String, String),
    /// A node joined the community through the trust's node.
    Joined(String),
    /// A node published its sample entries (name, how many).
    Published(String, usize),
    /// How many entries each node holds now.
    Holding(Vec<(String, usize)>),
}

/// The running demo.
#[derive(Debug)]
pub struct Demo {
    pub community: String,
    pub nodes: Vec<DemoNode>,
    /// Entries each node should end up with.
    pub expected: usize,
}

fn loopback() -> Config {
    Config {
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().expect("valid address")],
        bootstrap: Vec::new(),
        mdns: false,
        web: None,
        ..Config::default()
    }
}

fn publish_all(home: &Path, entries: &[serde_json::Value]) -> Result<usize, NodeError> {
    let mut node = Node::open(home)?;
    let mut inputs = Vec::new();
    for e in entries {
        let kind: Kind = e["kind"]
            .as_str()
            .and_then(|k| k.parse().ok())
            .expect("sample entries name their kind");
        inputs.push(EntryInput::from_json(kind, e.clone())?);
    }
    Ok(node.publish_batch(inputs)?.len())
}

/// Entries of the kinds the sample publishes (learning, projects,
/// contacts, events, ideas) a home holds.
fn holding(home: &Path) -> Result<usize, NodeError> {
    let node = Node::open(home)?;
    Ok(Status::read(&node)?
        .counts
        .iter()
        .filter(|(k, _)| {
            matches!(
                k.as_str(),
                "learning" | "project" | "contact" | "event" | "idea"
            )
        })
        .map(|(_, n)| *n as usize)
        .sum())
}

fn web_addr(base: Option<SocketAddr>, i: usize) -> Option<SocketAddr> {
    base.map(|mut a| {
        if a.port() != 0 {
            a.set_port(a.port() + i as u16);
        }
        a
    })
}

impl Demo {
    /// Builds the community in `dir` (empty or new) and waits, up to
    /// `deadline`, until every node holds every entry. `web`: the first
    /// node's web app address; the others take the next ports.
    pub async fn start(
        dir: &Path,
        web: Option<SocketAddr>,
        deadline: Duration,
        mut progress: impl FnMut(Progress),
    ) -> Result<Self, DemoError> {
        std::fs::create_dir_all(dir).map_err(|source| DemoError::Create {
            path: dir.to_path_buf(),
            source,
        })?;
        if std::fs::read_dir(dir)
            .map_err(|source| DemoError::Create {
                path: dir.to_path_buf(),
                source,
            })?
            .next()
            .is_some()
        {
            return Err(DemoError::NotEmpty(dir.to_path_buf()));
        }
        let sample = sample();
        let mut homes = Vec::new();
        for org in &sample.organisations {
            let home = dir.join(convene_model::vocab::slugify(&org.name));
            Node::init(
                &home,
                &InitOptions {
                    org: org.name.clone(),
                    sector: org.sector.clone(),
                    place: Some(org.place.clone()),
                },
            )?;
            homes.push(home);
        }
        // The trust founds the community and invites the others.
        let mut invites = Vec::new();
        {
            let mut founder = Node::open(&homes[0])?;
            founder.create_community(&sample.community)?;
            for _ in 1..homes.len() {
                invites.push(founder.invite(24 * 3600 * 1000, false, None, Vec::new())?);
            }
        }
        let mut nodes = Vec::new();
        let lock = DaemonLock::acquire(&homes[0])?;
        let (client, handle) = daemon::spawn(Node::open(&homes[0])?, loopback())?;
        let founder_addr: Multiaddr = client
            .listen_addrs()
            .await?
            .into_iter()
            .next()
            .expect("listening on one address");
        progress(Progress::Started(
            sample.organisations[0].name.clone(),
            founder_addr.to_string(),
        ));
        nodes.push(DemoNode {
            name: sample.organisations[0].name.clone(),
            home: homes[0].clone(),
            client,
            handle,
            web: None,
            _lock: lock,
        });
        for (i, code) in invites.iter().enumerate() {
            let i = i + 1;
            let name = sample.organisations[i].name.clone();
            let changes = {
                let mut node = Node::open(&homes[i])?;
                node.accept_invite(code)?;
                node.join_changes()?
            };
            let config = Config {
                bootstrap: vec![founder_addr.clone()],
                ..loopback()
            };
            let lock = DaemonLock::acquire(&homes[i])?;
            let (client, handle) = daemon::spawn(Node::open(&homes[i])?, config)?;
            let addr = client.listen_addrs().await?;
            progress(Progress::Started(
                name.clone(),
                addr.first().map(ToString::to_string).unwrap_or_default(),
            ));
            let peer = client.dial(founder_addr.clone()).await?;
            client.join(peer, changes).await?;
            progress(Progress::Joined(name.clone()));
            nodes.push(DemoNode {
                name,
                home: homes[i].clone(),
                client,
                handle,
                web: None,
                _lock: lock,
            });
        }
        // Publish while the daemons run, as the CLI would.
        let mut expected = 0;
        for (org, home) in sample.organisations.iter().zip(&homes) {
            let n = publish_all(home, &org.entries)?;
            expected += n;
            progress(Progress::Published(org.name.clone(), n));
        }
        let start = Instant::now();
        let mut last = Vec::new();
        loop {
            let now: Vec<(String, usize)> = nodes
                .iter()
                .map(|n| Ok((n.name.clone(), holding(&n.home)?)))
                .collect::<Result<_, NodeError>>()?;
            if now != last {
                progress(Progress::Holding(now.clone()));
            }
            if now.iter().all(|(_, n)| *n == expected) {
                break;
            }
            if start.elapsed() > deadline {
                return Err(DemoError::NotConverged(deadline));
            }
            last = now;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for (i, n) in nodes.iter_mut().enumerate() {
            if let Some(addr) = web_addr(web, i) {
                n.web = Some(serve(&n.home, addr, Some(n.client.clone())).await?);
            }
        }
        Ok(Self {
            community: sample.community,
            nodes,
            expected,
        })
    }

    /// Stops every web app and daemon and waits for them.
    pub async fn stop(self) {
        for n in self.nodes {
            if let Some(web) = n.web {
                web.stop().await;
            }
            drop(n.client);
            let _ = n.handle.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_entries_are_valid() {
        let home = tempfile::tempdir().unwrap();
        let mut node = Node::init(
            home.path(),
            &InitOptions {
                org: "Test".into(),
                sector: "other".into(),
                place: None,
            },
        )
        .unwrap();
        let sample = sample();
        assert_eq!(sample.organisations.len(), 3);
        for org in &sample.organisations {
            node.vocab().sectors.resolve(&org.sector).unwrap();
            for e in &org.entries {
                let kind: Kind = e["kind"].as_str().unwrap().parse().unwrap();
                let input = EntryInput::from_json(kind, e.clone()).unwrap();
                node.publish(input).unwrap();
            }
        }
    }
}
