//! A behaviour served to the community's members only: libp2p's relay
//! server, AutoNAT server and DCUtR are wrapped in [`MembersOnly`], which
//! gives a connection with anyone else a handler that speaks none of
//! their protocols. A stranger cannot reserve a slot on this node's relay,
//! open a circuit through it, ask it to dial addresses back or start a
//! hole punch: the protocols are not even offered to it, so the request
//! never reaches the inner behaviour and costs it no state.
//!
//! Whether a peer is a member is read from the [`Roster`] when its
//! connection is established (the peer id is known then, after the Noise
//! handshake). The event loop keeps the roster equal to the current
//! members' nodes as the community's documents say, so a member is
//! recognised on its first connection, before it has sent anything.
//!
//! The inner behaviour never hears of a stranger's connection (neither
//! its establishment nor its closing), so it never addresses one.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};

use either::Either;
use libp2p::PeerId;
use libp2p::core::transport::PortUse;
use libp2p::core::{Endpoint, Multiaddr};
use libp2p::swarm::{
    ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler, THandlerInEvent,
    THandlerOutEvent, ToSwarm, dummy,
};

/// The peers that are members of this node's community (shared between
/// the event loop, which writes it, and the wrapped behaviours).
#[derive(Debug, Clone, Default)]
pub struct Roster(Arc<RwLock<HashSet<PeerId>>>);

impl Roster {
    /// Whether `peer` is a current member's node.
    pub fn contains(&self, peer: &PeerId) -> bool {
        self.0.read().is_ok_and(|s| s.contains(peer))
    }

    /// Replaces the members; whether anything changed.
    pub fn replace(&self, members: HashSet<PeerId>) -> bool {
        let Ok(mut s) = self.0.write() else {
            return false;
        };
        if *s == members {
            return false;
        }
        *s = members;
        true
    }

    /// How many member nodes there are.
    pub fn len(&self) -> usize {
        self.0.read().map_or(0, |s| s.len())
    }

    /// Whether there are none (a node outside a community).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `inner`, for members' connections only.
#[allow(missing_debug_implementations)]
pub struct MembersOnly<B> {
    inner: B,
    roster: Roster,
    /// Connections given the empty handler: their events are not passed on.
    shut: HashSet<ConnectionId>,
}

impl<B> MembersOnly<B> {
    pub fn new(inner: B, roster: Roster) -> Self {
        Self {
            inner,
            roster,
            shut: HashSet::new(),
        }
    }

    pub fn inner(&self) -> &B {
        &self.inner
    }

    pub fn inner_mut(&mut self) -> &mut B {
        &mut self.inner
    }
}

impl<B: NetworkBehaviour> NetworkBehaviour for MembersOnly<B> {
    type ConnectionHandler = Either<THandler<B>, dummy::ConnectionHandler>;
    type ToSwarm = B::ToSwarm;

    fn handle_pending_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
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
        if !self.roster.contains(&peer) {
            self.shut.insert(connection_id);
            return Ok(Either::Right(dummy::ConnectionHandler));
        }
        self.inner
            .handle_established_inbound_connection(connection_id, peer, local_addr, remote_addr)
            .map(Either::Left)
    }

    fn handle_pending_outbound_connection(
        &mut self,
        connection_id: ConnectionId,
        maybe_peer: Option<PeerId>,
        addresses: &[Multiaddr],
        effective_role: Endpoint,
    ) -> Result<Vec<Multiaddr>, ConnectionDenied> {
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
        if !self.roster.contains(&peer) {
            self.shut.insert(connection_id);
            return Ok(Either::Right(dummy::ConnectionHandler));
        }
        self.inner
            .handle_established_outbound_connection(
                connection_id,
                peer,
                addr,
                role_override,
                port_use,
            )
            .map(Either::Left)
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        let hidden = match &event {
            FromSwarm::ConnectionEstablished(e) => self.shut.contains(&e.connection_id),
            FromSwarm::AddressChange(e) => self.shut.contains(&e.connection_id),
            FromSwarm::ConnectionClosed(e) => self.shut.remove(&e.connection_id),
            _ => false,
        };
        if !hidden {
            self.inner.on_swarm_event(event);
        }
    }

    fn on_connection_handler_event(
        &mut self,
        peer_id: PeerId,
        connection_id: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {
            Either::Left(e) => self
                .inner
                .on_connection_handler_event(peer_id, connection_id, e),
            Either::Right(never) => match never {},
        }
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        self.inner.poll(cx).map(|e| e.map_in(Either::Left))
    }
}
