//! The node's error type: what went wrong, phrased for the person at the
//! command line (the CLI prints it as one line).

use std::path::PathBuf;

use convene_model::{DocumentId, InputError, Problems};

use crate::store::StoreError;
use crate::trust::KeyError;

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("no Convene node in {0}: run `convene init --org NAME --sector SECTOR` first")]
    NotInitialised(PathBuf),
    #[error("{path} already holds a Convene node ({node}); nothing was changed")]
    AlreadyInitialised { path: PathBuf, node: String },
    #[error("cannot create the home directory {path}: {source}")]
    CreateHome {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no entry has an id starting with {0:?}")]
    UnknownId(String),
    #[error("{prefix:?} is ambiguous: it starts {} ids ({}…); type more of the id", .matches.len(), .matches.join(", "))]
    AmbiguousId {
        prefix: String,
        matches: Vec<String>,
    },
    #[error("no organisation is called {0:?} (see `convene list organisation`)")]
    UnknownOrg(String),
    #[error(
        "entry {id} belongs to {owner}; only its owner organisation (or an editor it named) can change it"
    )]
    NotOwner { id: DocumentId, owner: String },
    #[error(
        "this node is not in a community yet: create one with `convene community create NAME` or join one with `convene join CODE`"
    )]
    NotInCommunity,
    #[error("this node is already in the community {0:?}")]
    AlreadyInCommunity(String),
    #[error(
        "only a steward of the community can do that (this node's organisation is not a steward)"
    )]
    NotSteward,
    #[error("{0:?} is not a member of the community")]
    NotAMember(String),
    #[error("this invite code is not valid: {0}")]
    BadInvite(String),
    #[error("entry {0} was erased")]
    Erased(DocumentId),
    #[error("entry {0} is retracted; it can no longer be edited")]
    Retracted(DocumentId),
    #[error("entry {id} is stored but is not a valid entry: {problem}")]
    InvalidDocument { id: DocumentId, problem: String },
    #[error("project {id} has no measure called {measure:?} (its measures: {known})")]
    UnknownMeasure {
        id: DocumentId,
        measure: String,
        known: String,
    },
    #[error("entry {} of the batch: {error}", .index + 1)]
    InBatch { index: usize, error: Box<NodeError> },
    #[error("a {0} cannot be published this way{hint}", hint = publish_hint(*.0))]
    NotPublishable(convene_model::Kind),
    /// A question, reply, answer or vote that cannot be made (the message
    /// says why and what to do instead).
    #[error("{0}")]
    Convening(String),

    #[error("{0:?} is not a usable file name")]
    BadFileName(String),
    #[error("a {0} cannot have files (only learning entries and projects)")]
    NoFiles(convene_model::Kind),
    #[error("entry {id} already has a file named {name:?}; pass another name with --name")]
    DuplicateFile { id: DocumentId, name: String },
    #[error("entry {id} has no file named {name:?} (its files: {known})")]
    UnknownFile {
        id: DocumentId,
        name: String,
        known: String,
    },
    #[error(transparent)]
    Files(#[from] crate::blobs::BlobError),
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(transparent)]
    Invalid(#[from] Problems),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Bundle(#[from] crate::bundle::BundleError),
    #[error(transparent)]
    Backup(#[from] crate::backup::BackupError),
    #[error(transparent)]
    Csv(#[from] crate::tabular::CsvError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot change the document: {0}")]
    Doc(Box<convene_model::DocError>),
}

impl From<convene_model::DocError> for NodeError {
    fn from(e: convene_model::DocError) -> Self {
        NodeError::Doc(Box::new(e))
    }
}

fn publish_hint(kind: convene_model::Kind) -> &'static str {
    match kind {
        convene_model::Kind::Message => ": use `convene ask ID` or `convene reply ID`",
        convene_model::Kind::Response => ": use `convene attend ID` or `convene vote ID`",
        _ => "",
    }
}
