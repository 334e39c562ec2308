//! The Convene data model: what a learning and improvement community shares.
//!
//! This crate is pure (no I/O, no clock, no randomness: callers pass ids and
//! times in) so that the node, the CLI and tests agree on one definition.
//!
//! # Layout
//!
//! - [`id`]: printable [`DocumentId`]s and [`OrgId`]s (base58).
//! - [`vocab`]: the shipped vocabularies (priorities, methods, sectors …)
//!   and resolving what a person typed (slug, label or alias) to a slug.
//! - [`entry`]: [`Entry`] = [`Meta`] (kind, owner, visibility, times,
//!   status) + [`Body`], one of [`Learning`], [`Project`], [`Contact`],
//!   [`Organisation`] (one module each), and the community's [`Charter`]
//!   and newcomers' join [`Claim`]s (`charter`). Reading and writing an entry from
//!   and to an automerge document goes through `autosurgeon`.
//! - Convening, one model file per kind: [`message`] (a question on an
//!   entry or a reply, its own document owned by its author), [`event`]
//!   (times as instants with their IANA zone), [`idea`] (ideas and the
//!   stewards' voting [`Round`]s, settled by a [`Seal`]) and [`response`]
//!   (an organisation's own "going" or "support", one document per
//!   organisation and thing answered, so answers merge without conflict).
//! - [`attachment`]: files on learning entries and projects, described in
//!   the document (name, size, media type, BLAKE3 hash); the bytes live in
//!   the node's content-addressed file store.
//! - `read`: a document's root map read once ([`RootOnce`]) for a whole
//!   entry's hydration, or the node's permission checks (autosurgeon asks
//!   for each field by key).
//! - [`codec`]: how small values (enums, ids, long [`Prose`], [`Timestamp`])
//!   are stored in documents.
//! - [`textdiff`]: how a long text is rewritten in its document when an
//!   entry is written: a diff whose cost is bounded however different the
//!   new text is.
//! - [`check`]: normalising and validating an entry with precise,
//!   field-by-field [`Problems`].
//! - [`chart`]: a project measure's run chart, XmR or p-chart as data
//!   (centre, limits, each point's special-cause flags, the *Making Data
//!   Count* icons, a sentence of findings, CSV), for the web app and the
//!   CLI alike.
//!
//! # Data flow
//!
//! Input (command-line flags, a TOML/JSON file shaped like `show --json`,
//! or a `--set FIELD=VALUE`) becomes a [`Body`] via [`EntryInput`] or
//! [`Body::set_field`]; [`Body::check`] turns labels into slugs and reports
//! every problem; the node then writes it into a document with
//! [`Entry::write`]. A document received from a peer is read back with
//! [`Entry::from_doc`] and checked the same way.

pub mod attachment;
pub mod chart;
pub mod charter;
pub mod check;
pub mod codec;
pub mod contact;
pub mod entry;
pub mod event;
pub mod id;
pub mod idea;
pub mod learning;
pub mod message;
pub mod organisation;
pub mod project;
mod read;
pub mod response;
pub mod textdiff;
pub mod visibility;
pub mod vocab;

pub use attachment::Attachment;
pub use charter::{Charter, Claim, Invite, Member};
pub use check::{Problem, Problems};
pub use codec::{Prose, Timestamp};
pub use contact::{Channel, Consent, Contact};
pub use entry::{
    Body, DocError, Entry, EntryInput, Header, InputError, Kind, Meta, SCHEMA, SearchText, Status,
};
pub use event::Event;
pub use id::{DocumentId, IdError, OrgId};
pub use idea::{Idea, Round, Seal, SealedVote};
pub use learning::Learning;
pub use message::Message;
pub use organisation::Organisation;
pub use project::{Annotation, DataPoint, Measure, Pdsa, Project, Rebase, TeamMember};
pub use read::RootOnce;
pub use response::{Answer, Response};
pub use visibility::{Visibility, VisibilityError};
pub use vocab::{Term, UnknownTerm, Vocabularies, Vocabulary};
