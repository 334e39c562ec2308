//! Everything a Convene node does.
//!
//! # Layout
//!
//! - [`node`]: [`Node`], the API the CLI (and tests) call: init and open a
//!   home, publish, edit, retract, show, list, search, history.
//! - [`store`]: SQLite in WAL mode: signed changes, per-document heads and
//!   snapshots, the `docs`/`terms`/`fts` indexes, numbered migrations.
//! - [`trust`]: the node's Ed25519 [`Identity`] (also its libp2p PeerId) and
//!   [`SignedChange`]s: every change is stored and sent with a signature over
//!   (document id, change hash); [`trust::columns`] reads a change's bytes
//!   for its hash and what it declares (rows, string bytes, actors) before
//!   automerge decodes anything, and bounds changes received together;
//!   membership from the charter, join claims and the consent of
//!   organisations' profiles (`trust::membership`).
//! - [`sync`]: the sync protocol `/convene/sync/2` as a sans-IO state
//!   machine (catalogue, range reconciliation, sessions, the per-node
//!   service), testable without sockets.
//! - [`net`]: libp2p: transports (relayed connections included),
//!   behaviours, the sync, files and address-record codecs, the gate that
//!   keeps strangers small (frame and stream limits by standing, bans,
//!   per-address and total connection caps), the relay, AutoNAT and
//!   hole punching served to members only, and the sans-IO policy of
//!   which members to stay connected to (`net::overlay`, which the
//!   simulation at scale, `benches/spread`, runs too).
//! - [`daemon`]: tokio wiring: the event loop that drives the sync service
//!   from the swarm, its `Client`, `config.toml`, the status other
//!   processes read, Prometheus metrics, which files are served to whom
//!   and fetched (`daemon::files`), reaching members (address records,
//!   dialling members, relay reservations), and the local web app and
//!   JSON API (`daemon::web`).
//! - `apply`: receiving changes: what their bytes declare within the bound
//!   for changes received together, signature, decode, permission (who
//!   may write which document), apply (in causal slices of at most one
//!   change's rows; a new document's first change that only adds is laid
//!   out from its bytes as a saved document and loaded instead, decoded
//!   only by that load, or, when it came alone, read from those bytes
//!   without a load (`apply::first_doc::view`), and every new
//!   document's snapshot and index rows worked out with its first state,
//!   on the worker threads when several arrive together), store (the
//!   writer's thread only runs SQL for a document stored as its first
//!   change alone); what cannot be
//!   judged yet waits, in its sender's bounded share of the `pending`
//!   table, and is bounded again when taken out together.
//! - [`blobs`]: attachment bytes in a content-addressed folder beside the
//!   store (`files/ab/cdef…`), written whole or not at all, checked again
//!   whenever handed on (a copy damaged on disk is moved aside); `attach` is
//!   [`Node`]'s API over it (attach, list, save, drop what erasure left
//!   unused). [`blobs::verified`]: BLAKE3 verified streaming (`bao-tree`):
//!   each file's hash tree kept beside it, ranges encoded with their proof,
//!   resumable downloads that keep only the groups and tree nodes that
//!   verify, checked whole by their tree at the end;
//!   [`blobs::transfer`]: the `/convene/files/1` messages and the fetcher
//!   that spreads a download over the connected members (no sockets).
//! - [`backup`]: consistent online backups (key and database) and restore.
//! - [`bundle`]: offline export and import of signed changes (sneakernet),
//!   a stream of capped records read in bounded memory, checked exactly as
//!   sync checks them.
//! - [`demo`]: `convene demo`, three organisations' nodes syncing on
//!   loopback with sample entries, each serving its web app.
//! - [`community`]: the charter: creating a community, inviting, joining,
//!   confirming claims, removing members, naming stewards.
//! - [`convening`]: questions and replies, going to events, supporting
//!   ideas in stewards' rounds: written with the audience of the entry
//!   they answer (one response per organisation and thing, edited when it
//!   changes), read back as threads, attendance and rankings that are a
//!   pure function of the documents held (so the same on every node).
//! - [`similar`]: similar work: the held entries most like a draft (FTS5
//!   BM25 over its words plus shared priorities, methods, place and tags),
//!   each with why it matches; [`similar::eval`] measures it on a labelled
//!   set.
//! - [`tabular`]: spreadsheets in (every row checked before any is
//!   written) and out.
//! - [`digest`]: what's new in a period (what reached this node, events
//!   to come, questions and replies on this organisation's entries) for a
//!   newsletter or an email, as Markdown or plain text; never drafts,
//!   never contacts' names.
//! - [`doctor`]: `convene doctor`'s checks of a home (files, key,
//!   database integrity, config, bootstrap peers, clock, disk, daemon).
//! - [`feeds`]: the Atom feed of entries and the iCalendar feed of events
//!   for people's own readers and calendars (only what the whole
//!   community may see, never contacts), and the feed links' capability
//!   tokens, kept as hashes in `feed_tokens`.
//! - [`who`]: who's who: for a topic (a term or free text), the
//!   organisations and consenting contacts who know about it, ranked with
//!   their evidence (`Node::who`).
//! - [`error`]: [`NodeError`], one readable line per failure.
//!
//! # Data flow
//!
//! A command opens a [`Node`] on a home directory. A local write builds the
//! new [`convene_model::Entry`], validates it, and [`Node`] turns the
//! difference into one automerge change inside a store transaction: the
//! change is signed with the node key, appended to `changes`, and the
//! document's heads, snapshot and indexes are refreshed before commit.
//! Reads (lists, search) only touch the indexes; `show` loads one document
//! from its snapshot.
//!
//! When the node runs (`daemon::spawn`), the event loop feeds connection
//! events and messages to the [`sync::Service`], which reads and writes the
//! store through [`sync::NodeReplica`]: received changes go through
//! [`Node::apply`], which verifies every signature before storing; changes
//! appended by any other process (noticed within milliseconds through
//! SQLite's `data_version`) are announced to connected peers.
//! A peer that is not a member is held at the door: [`net`]'s gate reads
//! only small frames from it, the event loop answers everything but a join
//! with "not admitted", and a join's claim is checked against the charter
//! in memory before anything is written.

//! # Example
//!
//! ```
//! use convene_model::{Body, EntryInput, Learning};
//! use convene_node::{InitOptions, Node};
//!
//! let home = tempfile::tempdir()?;
//! let mut node = Node::init(
//!     home.path(),
//!     &InitOptions { org: "Gateshead Council".into(), sector: "council".into(), place: None },
//! )?;
//! let id = node.publish(EntryInput {
//!     body: Body::Learning(Learning {
//!         title: "Community calls".into(),
//!         summary: "A 6 per cent fall in falls-related admissions.".into(),
//!         ..Learning::default()
//!     }),
//!     visibility: None,
//!     status: None,
//! })?;
//! let hits = node.search("falls", 10)?.expect("a searchable query");
//! assert_eq!(hits[0].listed.id, id);
//! // Every stored change carries a signature that verifies.
//! for stored in node.store().changes(id)? {
//!     stored.change.verify()?;
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod apply;
mod attach;
pub mod backup;
pub mod blobs;
pub mod bundle;
pub mod community;
pub mod convening;
pub mod daemon;
pub mod demo;
pub mod digest;
pub mod doctor;
pub mod error;
pub mod feeds;
pub mod net;
pub mod node;
pub mod similar;
pub mod store;
pub mod sync;
pub mod tabular;
pub mod trust;
pub mod who;

pub use attach::{FileLimits, HeldAttachment, guess_media_type, human_size};
pub use error::NodeError;
pub use node::{
    ApplyReport, DB_FILE, Edit, HistoryItem, InitOptions, KEY_FILE, Node, OnProgress, Outcome,
    Rejection,
};
pub use store::{Filter, Hit, Listed, Store, StoreError};
pub use trust::{Identity, NodeId, SignedChange};
