//! libp2p: the transport stack, the behaviours and the sync protocol's
//! codec. Nothing here decides *what* to sync; that is [`crate::sync`].
//!
//! - [`codec`]: length-prefixed postcard frames for `/convene/sync/2`, with
//!   a size cap checked before reading and byte counters.
//! - [`behaviour`]: TCP + Noise + Yamux and QUIC; connection limits,
//!   identify, ping, mDNS (optional) and request-response for sync, built
//!   into one `Swarm`.
//! - [`files_codec`]: the frames of `/convene/files/1` (attachment
//!   content, [`crate::blobs::transfer`]), with their own small request
//!   cap for everyone.
//! - [`gate`]: each connected peer's standing (member or stranger), which
//!   sets how large a frame and how many streams its codec reads.
//! - [`guard`]: the sync behaviour behind bans and per-address caps on
//!   strangers' connections; [`bans`]: the time-limited, bounded ban list.
//!
//! What a stranger can make the node hold is bounded by these layers
//! together: a few connections per address and a few dozen in all, a few
//! streams per connection, a small frame per stream, read as it arrives.

pub mod bans;
pub mod behaviour;
pub mod codec;
pub mod files_codec;
pub mod gate;
pub mod guard;

pub use behaviour::{Behaviour, BehaviourEvent, build_swarm};
pub use codec::{Counters, Inbound, SyncCodec};
pub use files_codec::FilesCodec;
pub use gate::{Gate, Standing};
