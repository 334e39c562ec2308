//! The daemon's event loop over real libp2p connections on loopback, in one
//! process: catch-up and live propagation through the `Client` API, and a
//! hostile peer that speaks `/convene/sync/1` with garbage.

use std::time::{Duration, Instant};

use convene_model::{Body, DocumentId, EntryInput, Learning};
use convene_node::daemon::{self, Client, Config};
use convene_node::{InitOptions, Node};
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, StreamExt};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, StreamProtocol, noise, request_response, tcp, yamux};

fn init(home: &std::path::Path, org: &str) -> Node {
    Node::init(
        home,
        &InitOptions {
            org: org.into(),
            sector: "council".into(),
            place: None,
        },
    )
    .unwrap()
}

fn loopback() -> Config {
    Config {
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
        bootstrap: Vec::new(),
        mdns: false,
        ..Config::default()
    }
}

fn entry(title: &str) -> EntryInput {
    EntryInput {
        body: Body::Learning(Learning {
            title: title.into(),
            summary: "Summary.".into(),
            ..Learning::default()
        }),
        visibility: None,
        status: None,
    }
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn start(home: &std::path::Path) -> (Client, Multiaddr) {
    let (client, _handle) = daemon::spawn(Node::open(home).unwrap(), loopback()).unwrap();
    let addr = client.listen_addrs().await.unwrap()[0].clone();
    (client, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catch_up_then_live_changes_through_the_client() {
    let a_dir = tempfile::tempdir().unwrap();
    let b_dir = tempfile::tempdir().unwrap();
    let mut a_node = init(a_dir.path(), "A");
    let ids = a_node
        .publish_batch((0..40).map(|i| entry(&format!("Lesson {i}"))).collect())
        .unwrap();
    drop(a_node);
    drop(init(b_dir.path(), "B"));
    let (a, a_addr) = start(a_dir.path()).await;
    let (b, _) = start(b_dir.path()).await;

    let peer = b.dial(a_addr).await.unwrap();
    let stats = b.sync(peer).await.unwrap();
    assert_eq!(stats.received, 41, "40 entries and A's profile");
    assert_eq!(stats.sent, 1, "B's profile");
    let reader = Node::open(b_dir.path()).unwrap();
    assert!(ids.iter().all(|id| reader.get(*id).is_ok()));

    // A write by another process on A's store reaches B by itself.
    let mut writer = Node::open(a_dir.path()).unwrap();
    let live: DocumentId = writer.publish(entry("Published while running")).unwrap();
    eventually("the live entry on B", || reader.get(live).is_ok()).await;
    assert_eq!(a.peers().await.unwrap().len(), 1);
    let (sent, received) = b.bytes().await.unwrap();
    assert!(sent > 0 && received > 0);
}

/// A codec that sends bytes that are not a Convene message.
#[derive(Clone, Default)]
struct Garbage;

impl request_response::Codec for Garbage {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        _: &mut T,
    ) -> std::io::Result<Vec<u8>> {
        Ok(Vec::new())
    }

    async fn read_response<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> std::io::Result<Vec<u8>> {
        // Keep the stream open until the victim gives up on it.
        let mut buf = Vec::new();
        io.read_to_end(&mut buf).await?;
        Ok(buf)
    }

    async fn write_request<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Vec<u8>,
    ) -> std::io::Result<()> {
        // The test gives the whole frame, length prefix included.
        io.write_all(&req).await?;
        io.close().await
    }

    async fn write_response<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        _: &mut T,
        _: Vec<u8>,
    ) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_sends_garbage_is_disconnected() {
    // A frame of seven bytes that are not a message.
    sends_and_is_disconnected(vec![0, 0, 0, 7, 0xde, 0xad, 0xbe, 0xef, 0xff, 0xff, 0xff]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_announces_an_oversized_message_is_disconnected() {
    // A length of 4 GiB: refused before anything more is read.
    sends_and_is_disconnected(vec![0xff, 0xff, 0xff, 0xff, 1, 2, 3]).await;
}

async fn sends_and_is_disconnected(frame: Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    drop(init(dir.path(), "Victim"));
    let (_victim, addr) = start(dir.path()).await;

    let mut attacker = libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .unwrap()
        .with_behaviour(|_| {
            request_response::Behaviour::with_codec(
                Garbage,
                [(
                    StreamProtocol::new("/convene/sync/1"),
                    request_response::ProtocolSupport::Full,
                )],
                request_response::Config::default(),
            )
        })
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build();
    attacker.dial(addr).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut sent = false;
    loop {
        let event = tokio::time::timeout_at(deadline, attacker.select_next_some())
            .await
            .expect("the victim should close the connection");
        match event {
            SwarmEvent::ConnectionEstablished { peer_id, .. } if !sent => {
                attacker
                    .behaviour_mut()
                    .send_request(&peer_id, frame.clone());
                sent = true;
            }
            SwarmEvent::ConnectionClosed { .. } if sent => break,
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_sync_over_quic_too() {
    let a_dir = tempfile::tempdir().unwrap();
    let b_dir = tempfile::tempdir().unwrap();
    let id = init(a_dir.path(), "A").publish(entry("Over QUIC")).unwrap();
    drop(init(b_dir.path(), "B"));
    let quic = Config {
        listen: vec!["/ip4/127.0.0.1/udp/0/quic-v1".parse().unwrap()],
        ..loopback()
    };
    let (a, _h) = daemon::spawn(Node::open(a_dir.path()).unwrap(), quic).unwrap();
    let addr = a.listen_addrs().await.unwrap()[0].clone();
    assert!(addr.to_string().contains("/quic-v1"), "{addr}");
    let (b, _) = start(b_dir.path()).await;
    let peer = b.dial(addr).await.unwrap();
    let stats = b.sync(peer).await.unwrap();
    assert_eq!(stats.received, 2);
    assert!(Node::open(b_dir.path()).unwrap().get(id).is_ok());
}
