//! The daemon's event loop over real libp2p connections on loopback, in one
//! process: catch-up and live propagation through the `Client` API, and
//! hostile peers that speak `/convene/sync/2`: with garbage, with an
//! oversized frame, never answering, or flooding requests.

use std::time::{Duration, Instant};

use convene_model::{Body, DocumentId, EntryInput, Learning};
use convene_node::daemon::{self, Client, Config};
use convene_node::net::{Inbound, SyncCodec};
use convene_node::sync::wire::{Request, Response};
use convene_node::{InitOptions, Node};
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, StreamExt};
mod bare;

use bare::{loopback, peer_speaking};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, StreamProtocol, request_response};

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

    let mut attacker = peer_speaking(
        Garbage,
        request_response::Config::default(),
        Duration::from_secs(60),
    );
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

/// A libp2p peer that speaks `/convene/sync/2` with the node's own codec,
/// for tests that play a misbehaving member.
fn raw_peer() -> libp2p::Swarm<request_response::Behaviour<SyncCodec>> {
    peer_speaking(
        SyncCodec::default(),
        // Its own requests wait (almost) forever.
        request_response::Config::default()
            .with_request_timeout(Duration::from_secs(600))
            .with_max_concurrent_streams(1024),
        Duration::from_secs(600),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_never_answers_times_out_is_disconnected_and_others_are_still_served() {
    let v_dir = tempfile::tempdir().unwrap();
    let h_dir = tempfile::tempdir().unwrap();
    init(v_dir.path(), "Victim")
        .publish(entry("Still served"))
        .unwrap();
    drop(init(h_dir.path(), "Honest"));
    let config = Config {
        request_timeout: Duration::from_secs(1),
        ..loopback()
    };
    let (victim, _h) = daemon::spawn(Node::open(v_dir.path()).unwrap(), config).unwrap();
    let addr = victim.listen_addrs().await.unwrap()[0].clone();

    // The silent peer connects, takes every request and never answers
    // (it holds the response channels, so the streams stay open).
    let mut silent = raw_peer();
    silent.dial(addr.clone()).unwrap();
    let (connected_tx, connected_rx) = tokio::sync::oneshot::channel();
    let (closed_tx, closed_rx) = tokio::sync::oneshot::channel();
    let silent_task = tokio::spawn(async move {
        let mut connected_tx = Some(connected_tx);
        let mut closed_tx = Some(closed_tx);
        let mut held = Vec::new();
        loop {
            match silent.select_next_some().await {
                SwarmEvent::ConnectionEstablished { peer_id, .. } => {
                    if let Some(tx) = connected_tx.take() {
                        let _ = tx.send((*silent.local_peer_id(), peer_id));
                    }
                }
                SwarmEvent::ConnectionClosed { .. } => {
                    if let Some(tx) = closed_tx.take() {
                        let _ = tx.send(());
                    }
                }
                SwarmEvent::Behaviour(request_response::Event::Message {
                    message: request_response::Message::Request { channel, .. },
                    ..
                }) => held.push(channel),
                _ => {}
            }
        }
    });
    let (silent_id, _) = tokio::time::timeout(Duration::from_secs(20), connected_rx)
        .await
        .expect("the silent peer connects")
        .unwrap();
    let silent_node = convene_node::NodeId::from(silent_id);

    let (honest, _) = start(h_dir.path()).await;
    let started = Instant::now();
    let (stuck, served) = tokio::join!(victim.sync(silent_node), async {
        let peer = honest.dial(addr).await.unwrap();
        honest.sync(peer).await
    });
    let stuck = tokio::time::timeout(Duration::from_secs(20), async { stuck })
        .await
        .unwrap();
    match stuck {
        Err(daemon::DaemonError::Sync { error, .. }) => {
            assert!(error.to_string().contains("Timeout"), "{error}")
        }
        other => panic!("the session with the silent peer should time out: {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(15));
    assert_eq!(served.unwrap().received, 2, "an entry and a profile");
    // The node still answers its client.
    assert!(!victim.peers().await.unwrap().is_empty());
    // And it closed the connection that stopped answering (a dead one
    // would otherwise stay open for the idle timeout, a day).
    tokio::time::timeout(Duration::from_secs(10), closed_rx)
        .await
        .expect("the victim closes the silent peer's connection")
        .unwrap();
    silent_task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_floods_requests_is_refused_then_disconnected() {
    let dir = tempfile::tempdir().unwrap();
    drop(init(dir.path(), "Victim"));
    let (_victim, addr) = start(dir.path()).await;
    let mut flooder = raw_peer();
    flooder.dial(addr).unwrap();
    let announce = || Inbound::Request(Request::Announce { items: Vec::new() });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let (mut sent, mut acked, mut refused) = (0usize, 0usize, 0usize);
    let mut victim = None;
    loop {
        let event = tokio::time::timeout_at(deadline, flooder.select_next_some())
            .await
            .unwrap_or_else(|_| {
                panic!("not disconnected: {sent} sent, {acked} acked, {refused} refused")
            });
        let more = match event {
            SwarmEvent::ConnectionEstablished { peer_id, .. } if victim.is_none() => {
                victim = Some(peer_id);
                200
            }
            SwarmEvent::Behaviour(request_response::Event::Message {
                message: request_response::Message::Response { response, .. },
                ..
            }) => {
                match response {
                    Response::Ack => acked += 1,
                    Response::Refused { reason } if reason.contains("too many") => refused += 1,
                    other => panic!("unexpected answer {other:?}"),
                }
                1
            }
            SwarmEvent::Behaviour(request_response::Event::OutboundFailure { .. }) => 1,
            SwarmEvent::ConnectionClosed { .. } if victim.is_some() => break,
            _ => 0,
        };
        if let Some(peer) = victim {
            for _ in 0..more {
                flooder.behaviour_mut().send_request(&peer, announce());
                sent += 1;
            }
        }
    }
    assert!(acked >= 256, "the burst is served: {acked}");
    assert!(refused > 0, "then requests are refused");
    assert!(
        sent < 20_000,
        "disconnected quickly: {sent} sent, {acked} acked, {refused} refused"
    );
}
