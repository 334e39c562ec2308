//! libp2p: the transport stack, the behaviours and the sync protocol's
//! codec. Nothing here decides *what* to sync; that is [`crate::sync`].
//!
//! - [`codec`]: length-prefixed postcard frames for `/convene/sync/1`, with
//!   a size cap checked before reading and byte counters.
//! - [`behaviour`]: TCP + Noise + Yamux and QUIC; identify, ping, mDNS
//!   (optional) and request-response for sync, built into one `Swarm`.

pub mod behaviour;
pub mod codec;

pub use behaviour::{Behaviour, BehaviourEvent, build_swarm};
pub use codec::{Counters, Inbound, SyncCodec};
