//! The node's libp2p behaviours and swarm.

use std::sync::Arc;
use std::time::Duration;

use libp2p::Transport;
use libp2p::core::muxing::StreamMuxerBox;
use libp2p::swarm::NetworkBehaviour;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::{
    Swarm, autonat, connection_limits, dcutr, identify, mdns, noise, relay, request_response, tcp,
    yamux,
};

use super::addrs::AddrsCodec;
use super::codec::SyncCodec;
use super::files_codec::FilesCodec;
use super::gate::Gate;
use super::guard::{Caps, Guarded};
use super::members_only::{MembersOnly, Roster};
use super::relayed::{Counted, RelayedBytes};
use crate::sync::wire::PROTOCOL;

/// Connections anyone may have with this node; members are exempt (the
/// event loop lists them as bypassed once it knows them).
pub fn connection_limits() -> connection_limits::ConnectionLimits {
    connection_limits::ConnectionLimits::default()
        .with_max_pending_incoming(Some(64))
        .with_max_established_incoming(Some(256))
        .with_max_established_per_peer(Some(4))
        .with_max_established(Some(512))
}

/// Everything a node speaks. (No `Debug`: libp2p behaviours do not have it.)
#[allow(missing_debug_implementations)]
#[derive(NetworkBehaviour)]
pub struct Behaviour {
    /// Caps on connections for everyone but members: asked first, so a
    /// connection over them is refused before anything else sees it.
    pub limits: connection_limits::Behaviour,
    /// `/convene/sync/2`, behind bans and the strangers' caps.
    pub sync: Guarded,
    /// `/convene/files/1`: attachment content in verified ranges. Banned
    /// peers never get this far (the guard refuses their connections), and
    /// the event loop answers only members who may see the file.
    pub files: request_response::Behaviour<FilesCodec>,
    /// Tells peers our listen addresses and protocols (and us theirs).
    pub identify: identify::Behaviour,
    /// Finds nodes on the local network; off with `--no-mdns`.
    pub mdns: Toggle<mdns::tokio::Behaviour>,
    /// `/convene/addrs/1`: members' signed address records
    /// ([`super::addrs`]); the event loop answers members only.
    pub addrs: request_response::Behaviour<AddrsCodec>,
    /// Circuit relay v2, served to members only and only by a node that
    /// listens (a member behind NAT reserves a slot here and is reached
    /// through it), within [`relay_config`]'s limits.
    pub relay: Toggle<MembersOnly<relay::Behaviour>>,
    /// Reserving slots on members' relays and dialling through them.
    pub relay_client: relay::client::Behaviour,
    /// Hole punching: upgrading a relayed connection with a member to a
    /// direct one where the NATs allow it.
    pub dcutr: MembersOnly<dcutr::Behaviour>,
    /// Whether this node can be dialled from outside (members probe each
    /// other's addresses; strangers may not ask for dial-backs).
    pub autonat: MembersOnly<autonat::Behaviour>,
}

/// The relay's limits. A relayed connection between two members carries
/// their sync (the circuit is their only path when hole punching fails),
/// so circuits are long and may carry much more than libp2p's default of
/// 128 KiB in two minutes; they are still bounded, in number (in all and
/// per peer), in time and in bytes, and only members get one at all.
pub fn relay_config() -> relay::Config {
    relay::Config {
        max_reservations: 256,
        max_reservations_per_peer: 2,
        reservation_duration: Duration::from_secs(3600),
        max_circuits: 64,
        max_circuits_per_peer: 8,
        max_circuit_duration: Duration::from_secs(3600),
        max_circuit_bytes: 256 * 1024 * 1024,
        ..relay::Config::default()
    }
}

/// What the swarm is built with, besides its key and codecs.
#[derive(Debug, Clone)]
pub struct Options {
    pub mdns: bool,
    pub request_timeout: Duration,
    /// Serve as a relay for members (a node that listens).
    pub serve_relay: bool,
    /// The current members' nodes, for the members-only behaviours.
    pub roster: Roster,
    /// AutoNAT's view of addresses: only global ones count (the default),
    /// or any (for a community on one private network, and tests).
    pub only_global_ips: bool,
    /// Where the bytes of relayed connections are counted.
    pub relayed_bytes: Arc<RelayedBytes>,
}

/// Inbound streams that may be choosing their protocol at once, per
/// connection (see [`build_swarm`]).
pub const MAX_NEGOTIATING_STREAMS: usize = 32;

/// Streams of `/convene/files/1` open at once, per connection: a member
/// fetching has at most [`crate::blobs::transfer::PER_PEER`] requests out;
/// anything past this is refused by libp2p before any codec reads it.
pub const FILES_STREAMS: usize = 8;

/// How long a sync request may wait for its answer (the default).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A swarm for `keypair`, with TCP (Noise, Yamux) and QUIC; `gate` holds
/// the standings the event loop gives peers.
pub fn build_swarm(
    keypair: libp2p::identity::Keypair,
    gate: Arc<Gate>,
    codec: SyncCodec,
    files: FilesCodec,
    addrs: AddrsCodec,
    options: Options,
) -> Result<Swarm<Behaviour>, Box<dyn std::error::Error + Send + Sync>> {
    let Options {
        mdns: use_mdns,
        request_timeout,
        serve_relay,
        roster,
        only_global_ips,
        relayed_bytes,
    } = options;
    let (relay_transport, relay_client) = relay::client::new(keypair.public().to_peer_id());
    let swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )?
        // What one QUIC connection may make this node buffer: 4 MiB, not
        // the 15 MB default (a stranger's connections are few, but each
        // counts); a member's 8 MiB answer still streams through it.
        .with_quic_config(|mut c| {
            c.max_connection_data = 4 * 1024 * 1024;
            c.max_stream_data = 2 * 1024 * 1024;
            c
        })
        // Relayed connections: libp2p's relay client transport, its raw
        // stream counted (see `super::relayed`) before Noise and Yamux.
        .with_other_transport(|key| {
            let counted = relayed_bytes.clone();
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(
                relay_transport
                    .map(move |conn, _| Counted::new(conn, counted.clone()))
                    .upgrade(libp2p::core::upgrade::Version::V1Lazy)
                    .authenticate(noise::Config::new(key)?)
                    .multiplex(yamux::Config::default())
                    .map(|(p, c), _| (p, StreamMuxerBox::new(c))),
            )
        })?
        .with_behaviour(|key| {
            let peer_id = key.public().to_peer_id();
            let mdns = if use_mdns {
                Some(mdns::tokio::Behaviour::new(
                    mdns::Config::default(),
                    peer_id,
                )?)
            } else {
                None
            };
            let sync = request_response::Behaviour::with_codec(
                codec,
                [(
                    libp2p::StreamProtocol::new(PROTOCOL),
                    request_response::ProtocolSupport::Full,
                )],
                request_response::Config::default()
                    .with_request_timeout(request_timeout)
                    .with_max_concurrent_streams(256),
            );
            let files = request_response::Behaviour::with_codec(
                files,
                [(
                    libp2p::StreamProtocol::new(crate::blobs::transfer::PROTOCOL),
                    request_response::ProtocolSupport::Full,
                )],
                request_response::Config::default()
                    .with_request_timeout(request_timeout)
                    .with_max_concurrent_streams(FILES_STREAMS),
            );
            let addrs = request_response::Behaviour::with_codec(
                addrs,
                [(
                    libp2p::StreamProtocol::new(super::addrs::PROTOCOL),
                    request_response::ProtocolSupport::Full,
                )],
                request_response::Config::default()
                    .with_request_timeout(request_timeout)
                    .with_max_concurrent_streams(4),
            );
            let relay = serve_relay.then(|| {
                let mut r = relay::Behaviour::new(peer_id, relay_config());
                // Offered whether or not AutoNAT has confirmed an external
                // address: a node that listens is there to be dialled.
                r.set_status(Some(relay::Status::Enable));
                MembersOnly::new(r, roster.clone())
            });
            let autonat = autonat::Behaviour::new(
                peer_id,
                autonat::Config {
                    only_global_ips,
                    boot_delay: Duration::from_secs(2),
                    ..autonat::Config::default()
                },
            );
            Ok(Behaviour {
                limits: connection_limits::Behaviour::new(connection_limits()),
                sync: Guarded::new(sync, gate, Caps::default()),
                files,
                identify: identify::Behaviour::new(
                    identify::Config::new("/convene/1".into(), key.public())
                        .with_agent_version(format!("convene/{}", env!("CARGO_PKG_VERSION"))),
                ),
                mdns: mdns.into(),
                addrs,
                relay: relay.into(),
                relay_client,
                dcutr: MembersOnly::new(dcutr::Behaviour::new(peer_id), roster.clone()),
                autonat: MembersOnly::new(autonat, roster),
            })
        })?
        // Members stay connected so that changes propagate at once; the
        // periodic re-sync keeps the connection in use.
        // Inbound streams still choosing their protocol are buffered by
        // yamux (up to 256 KiB each) before any codec sees them: at most 32
        // per connection (libp2p's default is 128), so a peer that opens
        // streams and never names a protocol holds at most 8 MiB a
        // connection. Honest streams negotiate in one round trip.
        .with_swarm_config(|c| {
            c.with_idle_connection_timeout(Duration::from_secs(24 * 3600))
                .with_max_negotiating_inbound_streams(MAX_NEGOTIATING_STREAMS)
        })
        .build();
    Ok(swarm)
}
