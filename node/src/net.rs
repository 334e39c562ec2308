//! libp2p: the transport stack, the behaviours and the sync protocol's
//! codec. Nothing here decides *what* to sync; that is [`crate::sync`].
//!
//! - [`codec`]: length-prefixed postcard frames for `/convene/sync/2`, with
//!   a size cap checked before reading and byte counters.
//! - [`behaviour`]: TCP + Noise + Yamux, QUIC and relayed connections;
//!   connection limits, identify, mDNS (optional), request-response
//!   for sync, files and address records, relay server and client, DCUtR
//!   and AutoNAT, built into one `Swarm`.
//! - [`files_codec`]: the frames of `/convene/files/1` (attachment
//!   content, [`crate::blobs::transfer`]), with their own small request
//!   cap for everyone.
//! - [`framed`]: the generic frame codec of the small protocols;
//!   [`spare`]: large frames' buffers (file answers), kept for reuse.
//! - [`addrs`]: `/convene/addrs/1`, members' signed address records.
//! - [`members_only`]: the relay server, AutoNAT and hole punching
//!   (DCUtR), served to members only; [`relayed`]: the bytes of relayed
//!   connections, counted.
//! - [`overlay`]: which members a node keeps connections to (between
//!   `network.min_peers` and `network.max_peers`), a sans-IO policy the
//!   daemon and the simulation at scale share.
//! - [`gate`]: each connected peer's standing (member or stranger), which
//!   sets how large a frame and how many streams its codec reads.
//! - [`guard`]: the sync behaviour behind bans and per-address caps on
//!   strangers' connections; [`bans`]: the time-limited, bounded ban list.
//!
//! What a stranger can make the node hold is bounded by these layers
//! together: a few connections per address and a few dozen in all, a few
//! streams per connection, a small frame per stream, read as it arrives.

pub mod addrs;
pub mod bans;
pub mod behaviour;
pub mod codec;
pub mod files_codec;
pub mod framed;
pub mod gate;
pub mod guard;
pub mod members_only;
pub mod overlay;
pub mod relayed;
pub mod spare;

pub use behaviour::{Behaviour, BehaviourEvent, Options, build_swarm};
pub use codec::{Counters, Inbound, SyncCodec};
pub use files_codec::FilesCodec;
pub use gate::{Gate, Standing};
