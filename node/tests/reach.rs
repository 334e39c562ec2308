//! The relay, AutoNAT, hole punching and address records are for members
//! only: a member's key gets a reservation on a listening member's relay
//! and the records it holds; a stranger (any key it likes, from the same
//! machine) gets neither, and costs the relay no reservation. A member that
//! passes on a record whose signature does not hold is banned.

mod bare;
mod sim;

use std::time::{Duration, Instant};

use bare::loopback;
use convene_node::Node;
use convene_node::daemon::{self, Client};
use convene_node::net::addrs::{self, AddrsCodec, AddrsRequest, PROTOCOL};
use futures::StreamExt;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{Multiaddr, StreamProtocol, Swarm, noise, relay, request_response, tcp, yamux};
use sim::Net;

#[derive(NetworkBehaviour)]
struct Asker {
    relay: relay::client::Behaviour,
    addrs: request_response::Behaviour<AddrsCodec>,
}

fn asker(key: libp2p::identity::Keypair) -> Swarm<Asker> {
    libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .unwrap()
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .unwrap()
        .with_behaviour(|_, relay| Asker {
            relay,
            addrs: request_response::Behaviour::with_codec(
                AddrsCodec::default(),
                [(
                    StreamProtocol::new(PROTOCOL),
                    request_response::ProtocolSupport::Full,
                )],
                request_response::Config::default().with_request_timeout(Duration::from_secs(10)),
            ),
        })
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build()
}

/// Connects to `relay` with `key`, asks for a reservation on its relay and
/// for the address records it holds: (whether the reservation was
/// granted, how many records came back).
async fn try_relay(key: libp2p::identity::Keypair, relay: &Multiaddr) -> (bool, usize) {
    let mut swarm = asker(key);
    // Listening through the relay dials it.
    swarm
        .listen_on(relay.clone().with(Protocol::P2pCircuit))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let (mut reserved, mut records) = (None, None);
    while reserved.is_none() || records.is_none() {
        let event = tokio::time::timeout_at(deadline.into(), swarm.select_next_some())
            .await
            .expect("an answer in time");
        match event {
            SwarmEvent::ConnectionEstablished { peer_id, .. } => {
                swarm
                    .behaviour_mut()
                    .addrs
                    .send_request(&peer_id, AddrsRequest::default());
            }
            SwarmEvent::Behaviour(AskerEvent::Relay(
                relay::client::Event::ReservationReqAccepted { .. },
            )) => reserved = Some(true),
            SwarmEvent::ListenerClosed { reason, .. } => {
                eprintln!("listener closed: {reason:?}");
                reserved = Some(false)
            }
            SwarmEvent::Behaviour(AskerEvent::Addrs(request_response::Event::Message {
                message: request_response::Message::Response { response, .. },
                ..
            })) => records = Some(response.records.len()),
            SwarmEvent::Behaviour(AskerEvent::Addrs(
                request_response::Event::OutboundFailure { error, .. },
            )) => panic!("the records request failed: {error}"),
            _ => {}
        }
    }
    (reserved.unwrap(), records.unwrap())
}

/// What came of one records request from `key` to `node`.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// An answer, with its records.
    Answered(Vec<Vec<u8>>),
    /// The connection was refused or closed before an answer.
    Closed,
}

/// Dials `node` with `key` and sends one records request carrying
/// `records`.
async fn pass_records(
    key: libp2p::identity::Keypair,
    node: &Multiaddr,
    records: Vec<Vec<u8>>,
) -> Outcome {
    let mut swarm = asker(key);
    swarm.dial(node.clone()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut request = Some(AddrsRequest { records });
    loop {
        let event = tokio::time::timeout_at(deadline.into(), swarm.select_next_some())
            .await
            .expect("an outcome in time");
        match event {
            SwarmEvent::ConnectionEstablished { peer_id, .. } => {
                if let Some(r) = request.take() {
                    swarm.behaviour_mut().addrs.send_request(&peer_id, r);
                }
            }
            SwarmEvent::Behaviour(AskerEvent::Addrs(request_response::Event::Message {
                message: request_response::Message::Response { response, .. },
                ..
            })) => return Outcome::Answered(response.records),
            SwarmEvent::Behaviour(AskerEvent::Addrs(
                request_response::Event::OutboundFailure { .. },
            ))
            | SwarmEvent::ConnectionClosed { .. }
            | SwarmEvent::OutgoingConnectionError { .. } => return Outcome::Closed,
            _ => {}
        }
    }
}

fn metric(client: &Client, name: &str) -> u64 {
    client
        .metrics()
        .render()
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Waits (with a deadline) until the daemon's metric `name` is `want`:
/// the daemon counts a reservation when its event loop takes the relay's
/// event, which may come just after the client has seen it accepted.
async fn metric_reaches(client: &Client, name: &str, want: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let now = metric(client, name);
        if now == want || Instant::now() >= deadline {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A steward's node and the key of a member's node (admitted, synced),
/// and the steward's home; the network keeps their homes.
fn steward_and_member() -> (Net, libp2p::identity::Keypair, std::path::PathBuf) {
    let mut net = Net::new();
    let a = net.add("Steward Trust");
    net.node_mut(a).create_community("Boost").unwrap();
    let b = net.add("Member Council");
    net.invite_and_admit(b, a);
    net.sync(b, a);
    let member_key = net.node(b).identity().libp2p_keypair();
    let home = net.node(a).home().to_path_buf();
    (net, member_key, home)
}

/// A steward's node running as a daemon on loopback, and the key of a
/// member's node (admitted, synced); the network keeps their homes.
async fn steward_daemon_and_member() -> (
    Net,
    libp2p::identity::Keypair,
    Client,
    tokio::task::JoinHandle<()>,
    Multiaddr,
) {
    let (net, member_key, home) = steward_and_member();
    let (client, handle) = daemon::spawn(Node::open(&home).unwrap(), loopback()).unwrap();
    let addr = client.listen_addrs().await.unwrap()[0].clone();
    (net, member_key, client, handle, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_members_get_a_relay_slot_or_learn_members_addresses() {
    let (_net, member_key, client, handle, addr) = steward_daemon_and_member().await;

    let (reserved, records) = try_relay(member_key, &addr).await;
    assert!(reserved, "a member was refused a slot on a member's relay");
    assert!(records >= 1, "a member learned no address record");
    assert_eq!(
        metric_reaches(&client, "convene_relay_reservations_total", 1).await,
        1
    );

    let stranger = libp2p::identity::Keypair::generate_ed25519();
    let (reserved, records) = try_relay(stranger, &addr).await;
    assert!(!reserved, "a stranger got a slot on the relay");
    assert_eq!(records, 0, "a stranger learned members' addresses");
    assert_eq!(metric(&client, "convene_relay_reservations_total"), 1);

    drop(client);
    handle.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_passing_on_a_forged_record_is_banned() {
    let (_net, member_key, client, handle, addr) = steward_daemon_and_member().await;

    // A genuine record of the member's own passes and is answered.
    let own = addrs::seal(
        &member_key,
        &["/ip4/127.0.0.1/tcp/9".parse().unwrap()],
        None,
    )
    .unwrap();
    let answer = pass_records(member_key.clone(), &addr, vec![own.bytes]).await;
    assert!(
        matches!(&answer, Outcome::Answered(r) if !r.is_empty()),
        "a member's genuine record was not taken: {answer:?}"
    );

    // A record of someone else's with one byte of its signature changed.
    let other = libp2p::identity::Keypair::generate_ed25519();
    let mut forged = addrs::seal(&other, &["/ip4/192.0.2.7/tcp/4040".parse().unwrap()], None)
        .unwrap()
        .bytes;
    let last = forged.len() - 1;
    forged[last] ^= 0x01;
    assert!(addrs::open(&forged).is_err(), "the forgery must not hold");
    assert_eq!(
        pass_records(member_key.clone(), &addr, vec![forged]).await,
        Outcome::Closed,
        "a member passing on a forged record got an answer"
    );
    // Banned: the next connection gets nothing either.
    assert_eq!(
        pass_records(member_key, &addr, Vec::new()).await,
        Outcome::Closed,
        "a banned member was answered again"
    );

    drop(client);
    handle.await.unwrap();
}

/// The number of the first address record a steward's daemon signs, when
/// its store says the last one it signed was numbered `stored`.
async fn first_record_number_after(stored: &str) -> u64 {
    let (_net, member_key, home) = steward_and_member();
    let steward = Node::open(&home)
        .unwrap()
        .identity()
        .libp2p_keypair()
        .public()
        .to_peer_id();
    Node::open(&home)
        .unwrap()
        .store()
        .set_meta("addrs.seq", stored)
        .unwrap();
    let (client, handle) = daemon::spawn(Node::open(&home).unwrap(), loopback()).unwrap();
    let addr = client.listen_addrs().await.unwrap()[0].clone();

    let own = addrs::seal(
        &member_key,
        &["/ip4/127.0.0.1/tcp/9".parse().unwrap()],
        None,
    )
    .unwrap();
    let Outcome::Answered(records) = pass_records(member_key, &addr, vec![own.bytes]).await else {
        panic!("a member was not answered");
    };
    let theirs = records
        .iter()
        .filter_map(|r| addrs::open(r).ok())
        .find(|r| r.peer == steward)
        .expect("the steward's own record in its answer");
    drop(client);
    handle.await.unwrap();
    theirs.seq
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A node's address record is numbered above the last one it signed,
/// across a restart too: members keep a record only if it is numbered
/// above the one they hold, so a record numbered by the clock alone after
/// the clock went back (or after records were numbered past it) would be
/// ignored until the clock caught up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_signed_after_a_restart_is_numbered_above_the_last_one() {
    // The last record signed before, numbered a day past the clock.
    let last = now_secs() + 86_400;
    let seq = first_record_number_after(&last.to_string()).await;
    assert!(seq > last, "numbered {seq} after a record numbered {last}");
}

/// A stored number no clock could give (damage, or a hand edit) is not
/// followed: records numbered after u64::MAX would all be u64::MAX, and
/// members would keep the first of them for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_stored_record_number_is_not_followed() {
    let seq = first_record_number_after(&u64::MAX.to_string()).await;
    assert!(seq.abs_diff(now_secs()) <= 60, "numbered {seq}");
    let seq = first_record_number_after("not a number").await;
    assert!(seq.abs_diff(now_secs()) <= 60, "numbered {seq}");
}
