//! The sync protocol `/convene/sync/2` as a sans-IO state machine: no
//! sockets, no clock, no async. The libp2p event loop (`daemon`) and tests
//! drive it the same way.
//!
//! # Layout
//!
//! - [`wire`]: the messages, their encoding (postcard) and limits.
//! - [`catalogue`]: the `(document id, digest)` set with range fingerprints.
//! - [`reconcile`]: range-based set reconciliation over the catalogue.
//! - [`session`]: one session from the side that starts it: reconcile,
//!   fetch what differs, push what the peer lacks.
//! - [`limits`]: what one peer may ask of this node (token buckets).
//! - [`service`]: all peers: sessions, answering requests, announcing local
//!   changes, the [`Replica`] trait through which it reads and writes data.
//! - [`replica`]: [`NodeReplica`], the `Replica` over a real [`crate::Node`].
//!
//! # Data flow
//!
//! When two nodes connect, the dialler starts a full session: one
//! `Reconcile` round trip settles it if their catalogues agree; otherwise
//! reconciliation narrows down the differing documents, `GetChanges` fetches
//! what the peer has (with its heads), and `PutChanges` sends what the peer
//! lacks. Every received change is verified before it is stored. After any
//! local or received change, the node `Announce`s the new digests to every
//! connected peer; a peer whose digest differs fetches the document — which
//! is also how changes are relayed along a line of nodes.

pub mod catalogue;
pub mod limits;
pub mod reconcile;
pub mod replica;
pub mod service;
pub mod session;
pub mod wire;

pub use catalogue::{Catalogue, CatalogueView};
pub use limits::Limits;
pub use replica::NodeReplica;
pub use service::{
    ChannelId, Event, Fetched, Input, Io, PeerStats, Replica, ReplicaError, Service, Token,
};
pub use session::{SessionError, SessionProgress, SessionStats};
