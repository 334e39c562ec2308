//! The node's libp2p behaviours and swarm.

use std::sync::Arc;
use std::time::Duration;

use libp2p::swarm::NetworkBehaviour;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::{Swarm, connection_limits, identify, mdns, noise, ping, request_response, tcp, yamux};

use super::codec::SyncCodec;
use super::files_codec::FilesCodec;
use super::gate::Gate;
use super::guard::{Caps, Guarded};
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
    /// Notices dead connections.
    pub ping: ping::Behaviour,
    /// Finds nodes on the local network; off with `--no-mdns`.
    pub mdns: Toggle<mdns::tokio::Behaviour>,
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
    use_mdns: bool,
    request_timeout: Duration,
) -> Result<Swarm<Behaviour>, Box<dyn std::error::Error + Send + Sync>> {
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
            Ok(Behaviour {
                limits: connection_limits::Behaviour::new(connection_limits()),
                sync: Guarded::new(sync, gate, Caps::default()),
                files,
                identify: identify::Behaviour::new(
                    identify::Config::new("/convene/1".into(), key.public())
                        .with_agent_version(format!("convene/{}", env!("CARGO_PKG_VERSION"))),
                ),
                ping: ping::Behaviour::default(),
                mdns: mdns.into(),
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
