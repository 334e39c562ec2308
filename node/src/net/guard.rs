//! The sync behaviour behind a guard: request-response for
//! `/convene/sync/2`, wrapped so that each connection's codec learns its
//! peer (see [`super::gate`]) and so that strangers are refused before
//! they cost anything:
//!
//! - a banned peer id is refused, inbound or outbound; a stranger from a
//!   banned address is refused (members are not: they may share it);
//! - each address may have [`Caps::pending_per_ip`] inbound handshakes in
//!   progress, and strangers [`Caps::strangers_per_ip`] established
//!   inbound connections per address and [`Caps::strangers`] in all.
//!
//! - while the node is short of memory ([`Guarded::set_shedding`]), no
//!   stranger is let in at all.
//!
//! Members (and peers this node dialled on purpose) are exempt from the
//! strangers' caps; the event loop says who they are with
//! [`Guarded::set_standing`]. Overall caps for everyone are libp2p's
//! connection-limits behaviour, next to this one in [`super::Behaviour`].

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use libp2p::core::transport::PortUse;
use libp2p::core::{Endpoint, Multiaddr};
use libp2p::multiaddr::Protocol;
use libp2p::request_response;
use libp2p::swarm::behaviour::ConnectionEstablished;
use libp2p::swarm::{
    ConnectionClosed, ConnectionDenied, ConnectionId, FromSwarm, ListenFailure, NetworkBehaviour,
    THandler, THandlerInEvent, THandlerOutEvent, ToSwarm,
};
use libp2p::{PeerId, core::ConnectedPoint};

use super::bans::Bans;
use super::codec::SyncCodec;
use super::gate::{Gate, Standing};

/// How many connections strangers may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// Inbound handshakes in progress from one address (anyone's).
    pub pending_per_ip: usize,
    /// Established inbound connections of strangers from one address.
    pub strangers_per_ip: usize,
    /// Established inbound connections of strangers in all.
    pub strangers: usize,
    /// Peers remembered as members between their connections.
    pub trusted: usize,
}

impl Default for Caps {
    fn default() -> Self {
        Self {
            pending_per_ip: 16,
            strangers_per_ip: 8,
            strangers: 64,
            trusted: 4096,
        }
    }
}

/// Why a connection was refused.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("this peer is banned for breaking the protocol")]
    BannedPeer,
    #[error("this address is banned for breaking the protocol")]
    BannedAddress,
    #[error("too many connections from this address")]
    PerAddress,
    #[error("too many connections from peers that are not members")]
    Strangers,
    #[error("the node is short of memory; only members are let in")]
    Shedding,
}

/// The IP address in a multiaddress, if it has one.
pub fn ip_of(addr: &Multiaddr) -> Option<IpAddr> {
    addr.iter().find_map(|p| match p {
        Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
        _ => None,
    })
}

/// Request-response for sync, behind bans and the strangers' caps.
#[allow(missing_debug_implementations)]
pub struct Guarded {
    inner: request_response::Behaviour<SyncCodec>,
    gate: Arc<Gate>,
    bans: Bans,
    caps: Caps,
    /// Peers classified as members (or dialled on purpose), so that their
    /// next connection is not counted as a stranger's.
    trusted: HashSet<PeerId>,
    /// Inbound handshakes in progress: connection → address.
    pending: HashMap<ConnectionId, IpAddr>,
    /// Strangers' inbound connections accepted by this behaviour and not
    /// yet established (another behaviour may still refuse them).
    accepting: HashMap<ConnectionId, (PeerId, Option<IpAddr>)>,
    /// Strangers' established inbound connections.
    strangers: HashMap<ConnectionId, (PeerId, Option<IpAddr>)>,
    /// The node is over its memory budget for strangers.
    shedding: bool,
}

impl Guarded {
    pub fn new(inner: request_response::Behaviour<SyncCodec>, gate: Arc<Gate>, caps: Caps) -> Self {
        Self {
            inner,
            gate,
            bans: Bans::default(),
            caps,
            trusted: HashSet::new(),
            pending: HashMap::new(),
            accepting: HashMap::new(),
            strangers: HashMap::new(),
            shedding: false,
        }
    }

    /// Refuses every stranger's connection while `shedding`.
    pub fn set_shedding(&mut self, shedding: bool) {
        self.shedding = shedding;
    }

    /// Records what the event loop decided about `peer`: its codecs read
    /// with that standing, and a member's connections stop counting as a
    /// stranger's.
    pub fn set_standing(&mut self, peer: PeerId, standing: Standing) {
        self.gate.set(peer, standing);
        match standing {
            Standing::Member => {
                if self.trusted.len() < self.caps.trusted {
                    self.trusted.insert(peer);
                }
                self.strangers.retain(|_, (p, _)| *p != peer);
            }
            Standing::Stranger => {
                self.trusted.remove(&peer);
            }
        }
    }

    /// Forgets the standing of a peer that has no connection left.
    pub fn forget(&mut self, peer: &PeerId) {
        self.gate.forget(peer);
    }

    /// Refuses `peer` for a while, and its address too when it is a
    /// stranger.
    pub fn ban(&mut self, peer: PeerId, ip: Option<IpAddr>) {
        let now = Instant::now();
        self.bans.ban_peer(peer, now);
        if !self.trusted.contains(&peer)
            && let Some(ip) = ip
        {
            self.bans.ban_ip(ip, now);
        }
    }

    pub fn is_banned(&self, peer: &PeerId) -> bool {
        self.bans.peer_banned(peer, Instant::now())
    }

    /// Strangers' established inbound connections.
    pub fn strangers(&self) -> usize {
        self.strangers.len()
    }

    fn strangers_from(&self, ip: IpAddr) -> usize {
        self.strangers
            .values()
            .chain(self.accepting.values())
            .filter(|(_, i)| *i == Some(ip))
            .count()
    }
}

impl std::ops::Deref for Guarded {
    type Target = request_response::Behaviour<SyncCodec>;
    fn deref(&self) -> &Self::Target {
        &self.inner
    }
}

impl std::ops::DerefMut for Guarded {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.inner
    }
}

type Inner = request_response::Behaviour<SyncCodec>;

impl NetworkBehaviour for Guarded {
    type ConnectionHandler = <Inner as NetworkBehaviour>::ConnectionHandler;
    type ToSwarm = <Inner as NetworkBehaviour>::ToSwarm;

    fn handle_pending_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        if let Some(ip) = ip_of(remote_addr) {
            let in_progress = self.pending.values().filter(|i| **i == ip).count();
            if in_progress >= self.caps.pending_per_ip {
                return Err(ConnectionDenied::new(Refused::PerAddress));
            }
            self.pending.insert(connection_id, ip);
        }
        self.inner
            .handle_pending_inbound_connection(connection_id, local_addr, remote_addr)
    }

    fn handle_established_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        peer: PeerId,
        local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.pending.remove(&connection_id);
        let now = Instant::now();
        if self.bans.peer_banned(&peer, now) {
            return Err(ConnectionDenied::new(Refused::BannedPeer));
        }
        if !self.trusted.contains(&peer) {
            if self.shedding {
                return Err(ConnectionDenied::new(Refused::Shedding));
            }
            let ip = ip_of(remote_addr);
            if let Some(ip) = ip {
                if self.bans.ip_banned(&ip, now) {
                    return Err(ConnectionDenied::new(Refused::BannedAddress));
                }
                if self.strangers_from(ip) >= self.caps.strangers_per_ip {
                    return Err(ConnectionDenied::new(Refused::PerAddress));
                }
            }
            if self.strangers.len() + self.accepting.len() >= self.caps.strangers {
                return Err(ConnectionDenied::new(Refused::Strangers));
            }
            self.accepting.insert(connection_id, (peer, ip));
        }
        self.gate.set_next(peer);
        self.inner.handle_established_inbound_connection(
            connection_id,
            peer,
            local_addr,
            remote_addr,
        )
    }

    fn handle_pending_outbound_connection(
        &mut self,
        connection_id: ConnectionId,
        maybe_peer: Option<PeerId>,
        addresses: &[Multiaddr],
        effective_role: Endpoint,
    ) -> Result<Vec<Multiaddr>, ConnectionDenied> {
        if let Some(peer) = maybe_peer
            && self.bans.peer_banned(&peer, Instant::now())
        {
            return Err(ConnectionDenied::new(Refused::BannedPeer));
        }
        self.inner.handle_pending_outbound_connection(
            connection_id,
            maybe_peer,
            addresses,
            effective_role,
        )
    }

    fn handle_established_outbound_connection(
        &mut self,
        connection_id: ConnectionId,
        peer: PeerId,
        addr: &Multiaddr,
        role_override: Endpoint,
        port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        if self.bans.peer_banned(&peer, Instant::now()) {
            return Err(ConnectionDenied::new(Refused::BannedPeer));
        }
        self.gate.set_next(peer);
        self.inner.handle_established_outbound_connection(
            connection_id,
            peer,
            addr,
            role_override,
            port_use,
        )
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        match &event {
            FromSwarm::ConnectionEstablished(ConnectionEstablished {
                connection_id,
                endpoint: ConnectedPoint::Listener { .. },
                ..
            }) => {
                if let Some(c) = self.accepting.remove(connection_id) {
                    self.strangers.insert(*connection_id, c);
                }
            }
            FromSwarm::ConnectionClosed(ConnectionClosed { connection_id, .. }) => {
                self.strangers.remove(connection_id);
            }
            FromSwarm::ListenFailure(ListenFailure { connection_id, .. }) => {
                self.pending.remove(connection_id);
                self.accepting.remove(connection_id);
            }
            _ => {}
        }
        self.inner.on_swarm_event(event);
    }

    fn on_connection_handler_event(
        &mut self,
        peer_id: PeerId,
        connection_id: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        self.inner
            .on_connection_handler_event(peer_id, connection_id, event);
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        self.inner.poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ip_of_tcp_and_quic_addresses() {
        let tcp: Multiaddr = "/ip4/192.0.2.7/tcp/4040".parse().unwrap();
        let quic: Multiaddr = "/ip6/::1/udp/4040/quic-v1".parse().unwrap();
        let dns: Multiaddr = "/dns4/example.org/tcp/4040".parse().unwrap();
        assert_eq!(ip_of(&tcp), Some([192, 0, 2, 7].into()));
        assert_eq!(ip_of(&quic), Some(std::net::Ipv6Addr::LOCALHOST.into()));
        assert_eq!(ip_of(&dns), None);
    }
}
