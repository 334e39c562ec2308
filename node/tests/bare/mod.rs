//! A bare libp2p peer for the hostile-peer tests: TCP, Noise and Yamux
//! with a fresh identity, speaking `/convene/sync/2` with whatever codec a
//! test gives it (garbage, half-sent frames, or the real one), and nothing
//! else of a Convene node; and the loopback config the victims run with.

#![allow(dead_code)]

use std::time::Duration;

use convene_node::daemon::Config;
use libp2p::{StreamProtocol, noise, request_response, tcp, yamux};

/// A daemon's config for tests: an ephemeral loopback port, no bootstrap
/// peers, no mDNS.
pub fn loopback() -> Config {
    Config {
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
        bootstrap: Vec::new(),
        mdns: false,
        ..Config::default()
    }
}

/// A bare peer speaking `/convene/sync/2` with `codec`, its requests and
/// connections kept as `config` and `idle` say.
pub fn peer_speaking<C>(
    codec: C,
    config: request_response::Config,
    idle: Duration,
) -> libp2p::Swarm<request_response::Behaviour<C>>
where
    C: request_response::Codec<Protocol = StreamProtocol> + Clone + Send + 'static,
{
    libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .unwrap()
        .with_behaviour(|_| {
            request_response::Behaviour::with_codec(
                codec,
                [(
                    StreamProtocol::new("/convene/sync/2"),
                    request_response::ProtocolSupport::Full,
                )],
                config,
            )
        })
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(idle))
        .build()
}
