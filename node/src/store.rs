//! The node's SQLite store: signed changes, document heads, and the indexes
//! lists and search read.
//!
//! # Layout
//!
//! - [`schema`]: numbered migrations.
//! - `index`: derives the `docs`, `terms`, `fts` and `nodes` rows of one
//!   document from its merged automerge state.
//! - `query`: id prefixes, filtered lists, full-text search.
//! - `peers`, `addresses`: what the daemon records about members it met
//!   and their signed address records.
//!
//! # Data flow
//!
//! Every write goes through [`Store::write`], one `BEGIN IMMEDIATE`
//! transaction: the writer loads the document's merged state *inside* the
//! transaction, adds its changes, and [`Writer::put`] appends them to
//! `changes` and refreshes the document's row and indexes before commit.
//! Because writers are serialised by SQLite and each one starts from what is
//! committed, two processes (the daemon and a CLI command) writing the same
//! document never lose each other's changes, and a crash leaves either all
//! of a write or none of it. The store never holds every document in memory:
//! a document is loaded from its snapshot on demand. The daemon's connection
//! hands the copying of the write-ahead log into the database to a thread
//! with its own connection ([`Store::checkpoint_in_background`]), so its
//! commits do not wait for the disk.

pub mod schema;

mod addresses;
mod audit;
mod erasure;
mod index;
mod peers;
mod query;

use std::ffi::c_int;
use std::path::{Path, PathBuf};
use std::time::Duration;

use automerge::Automerge;
use convene_model::DocumentId;
use rusqlite::hooks::Wal;
use rusqlite::wal::CheckpointMode;
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, TransactionBehavior, params};

pub use audit::{Awaits, LogEntry, MAX_PENDING, PendingLimits};
pub use erasure::StoredTombstone;
pub(crate) use index::Derived;
pub use index::Indexed;
pub use peers::{PeerRecord, PeerUpdate};
pub use query::{Filter, Hit, Listed, Resolve};

use crate::trust::SignedChange;

/// A storage failure, phrased for the person who has to fix it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("there is no database file at {0}")]
    Missing(PathBuf),
    #[error("cannot create the database {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the database {0} is read-only: convene needs to write to it (check its permissions)")]
    ReadOnly(PathBuf),
    #[error("the database {path} is corrupt or not a Convene database ({detail})")]
    Corrupt { path: PathBuf, detail: String },
    #[error(
        "the database was written by a newer Convene (schema version {found}; this version knows up to {supported}): upgrade convene"
    )]
    TooNew { found: usize, supported: usize },
    #[error("the database stayed locked by another process for too long; try again")]
    Busy,
    #[error("stored document {id} cannot be loaded: {detail}")]
    BadDocument { id: DocumentId, detail: String },
    #[error("database error: {0}")]
    Sqlite(rusqlite::Error),
    #[error("cannot start a thread for the database: {0}")]
    Thread(std::io::Error),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Busy,
            _ => StoreError::Sqlite(e),
        }
    }
}

/// A change as stored, for history and for sending to peers.
#[derive(Debug, Clone)]
pub struct StoredChange {
    pub change: SignedChange,
    /// When this node stored it (unix ms).
    pub received: i64,
}

/// A document, the digest of its heads, and who may see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocDigest {
    pub doc: DocumentId,
    pub digest: [u8; 32],
    /// Owner organisation id ('' while the document is not a valid entry).
    pub owner: String,
    /// `community`, `organisation` or a comma-separated list of ids.
    pub visibility: String,
}

/// WAL pages (4 KiB each) after which a commit asks for a checkpoint:
/// SQLite's own default.
const CHECKPOINT_PAGES: c_int = 1000;

/// WAL pages after which a commit checkpoints itself rather than wait for
/// the background checkpointer (see [`Store::checkpoint_in_background`]).
const CHECKPOINT_BEHIND: c_int = 16 * CHECKPOINT_PAGES;

/// How long a writer waits for another process's transaction to finish.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// One open connection to a node's database.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// How much may wait in `pending` (see [`PendingLimits`]).
    pending_limits: PendingLimits,
    /// The community as last computed from this store.
    membership: crate::trust::membership::MembershipCache,
}

/// What membership is computed from, as one digest: the community's id and
/// every charter, join claim and organisation profile with its heads'
/// digest (a few dozen rows, read through the `docs_by_kind` index).
fn authority_digest(conn: &Connection, community_key: &str) -> Result<[u8; 32], StoreError> {
    let mut hash = blake3::Hasher::new();
    let community: Option<String> = conn
        .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
        .query_row([community_key], |r| r.get(0))
        .optional()?;
    hash.update(community.unwrap_or_default().as_bytes());
    let mut stmt = conn.prepare_cached(
        "SELECT kind, doc, digest FROM docs
         WHERE kind IN ('charter', 'join', 'organisation') ORDER BY kind, doc",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let kind: String = r.get(0)?;
        let doc: Vec<u8> = r.get(1)?;
        let digest: Vec<u8> = r.get(2)?;
        hash.update(kind.as_bytes());
        hash.update(&doc);
        hash.update(&digest);
    }
    Ok(*hash.finalize().as_bytes())
}

impl Store {
    /// Creates a new database file; fails if one exists.
    ///
    /// The file is made (empty, which SQLite takes as a new database)
    /// readable by its owner only before SQLite opens it: SQLite gives the
    /// WAL and SHM files it creates later the database file's mode.
    pub fn create(path: &Path) -> Result<Self, StoreError> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(crate::node::PRIVATE_FILE_MODE);
        }
        options.open(path).map_err(|source| StoreError::Create {
            path: path.to_path_buf(),
            source,
        })?;
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        Self::open_with(path, flags)
    }

    /// Opens an existing database, migrating it to the current schema.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let meta = std::fs::metadata(path).map_err(|_| StoreError::Missing(path.to_path_buf()))?;
        // Checked by hand because root ignores file permissions, and a
        // read-only file must never be half-written.
        if meta.permissions().readonly() {
            return Err(StoreError::ReadOnly(path.to_path_buf()));
        }
        // Homes made before the database was created private: tighten it
        // and its WAL/SHM (which SQLite creates with the database's mode).
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        let mut shm = path.as_os_str().to_owned();
        shm.push("-shm");
        for file in [path, Path::new(&wal), Path::new(&shm)] {
            if let Err(e) = crate::node::make_private(file) {
                tracing::warn!(path = %file.display(), "cannot make the database private: {e}");
            }
        }
        Self::open_with(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
    }

    fn open_with(path: &Path, flags: OpenFlags) -> Result<Self, StoreError> {
        let at_open = |e: rusqlite::Error| classify(path, e);
        let mut conn = Connection::open_with_flags(path, flags).map_err(at_open)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(at_open)?;
        if conn.is_readonly(rusqlite::MAIN_DB).map_err(at_open)? {
            return Err(StoreError::ReadOnly(path.to_path_buf()));
        }
        // WAL lets the daemon and CLI commands read and write side by side;
        // FULL makes each commit durable before it is reported; secure_delete
        // overwrites freed pages so erased text does not linger in the file.
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .map_err(at_open)?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(%mode, "could not switch the database to WAL mode");
        }
        for (pragma, value) in [
            ("synchronous", "FULL"),
            ("secure_delete", "ON"),
            ("foreign_keys", "ON"),
        ] {
            conn.pragma_update(None, pragma, value).map_err(at_open)?;
        }
        schema::migrate(&mut conn).map_err(|e| match e {
            StoreError::Sqlite(e) => classify(path, e),
            other => other,
        })?;
        index::backfill_file_terms(&mut conn).map_err(|e| match e {
            StoreError::Sqlite(e) => classify(path, e),
            other => other,
        })?;
        // The apply path runs a dozen statements per document: keep them
        // all prepared (rusqlite keeps 16 by default).
        conn.set_prepared_statement_cache_capacity(128);
        Ok(Self {
            conn,
            path: path.to_path_buf(),
            pending_limits: PendingLimits::default(),
            membership: Default::default(),
        })
    }

    /// Changes how much may wait in `pending` (tests use small limits).
    pub fn set_pending_limits(&mut self, limits: PendingLimits) {
        self.pending_limits = limits;
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    /// SQLite's `PRAGMA integrity_check`: `"ok"`, or what is damaged
    /// (crash-safety tests and fuzzing check it after every kill).
    pub fn integrity_check(&self) -> Result<String, StoreError> {
        let rows: Vec<String> = self
            .conn
            .prepare("PRAGMA integrity_check")?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        Ok(rows.join("\n"))
    }

    /// Commits on this connection no longer wait for the disk (SQLite's
    /// `synchronous = NORMAL` instead of `FULL`). In WAL mode a power cut
    /// may then lose this connection's last transactions, never corrupt
    /// the file; a crash of the process loses nothing. The daemon's
    /// connection takes this: what it writes are changes received from
    /// peers (fetched again at the next session if lost), peer records
    /// and a steward's confirmations (made again at its next look). A
    /// user's own writes (CLI commands, the web app) go through their own
    /// connections, which keep `FULL`.
    pub fn relax_durability(&self) -> Result<(), StoreError> {
        self.conn.pragma_update(None, "synchronous", "NORMAL")?;
        Ok(())
    }

    /// Hands this connection's WAL checkpoints to a thread of their own.
    ///
    /// SQLite copies the write-ahead log back into the database (and waits
    /// for the disk) from inside a commit, once the log holds about 4 MB:
    /// during a catch-up, every batch's commit stopped the daemon's loop
    /// for that. Here the commit only nudges a thread that checkpoints on
    /// its own connection while the loop goes on (SQLite lets a checkpoint
    /// run beside a writer). If that thread ever falls
    /// `CHECKPOINT_BEHIND` pages behind, the commit checkpoints itself,
    /// as before, so the log stays bounded. The thread ends with the store.
    pub fn checkpoint_in_background(&mut self) -> Result<(), StoreError> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // Until it has read the database, a connection does not know it is
        // in WAL mode, and a checkpoint on it does nothing.
        let _: String = conn.pragma_query_value(None, "journal_mode", |r| r.get(0))?;
        let (nudge, nudged) = std::sync::mpsc::sync_channel::<()>(1);
        std::thread::Builder::new()
            .name("convene-checkpoint".into())
            .spawn(move || {
                while nudged.recv().is_ok() {
                    if let Err(e) =
                        conn.wal_checkpoint_v2(Some(rusqlite::MAIN_DB), CheckpointMode::PASSIVE)
                    {
                        tracing::warn!(error = %e, "cannot checkpoint the write-ahead log");
                    }
                }
            })
            .map_err(StoreError::Thread)?;
        self.conn
            .wal_hook(Some(move |wal: &mut Wal, pages: c_int| {
                if pages >= CHECKPOINT_BEHIND {
                    wal.checkpoint_v2(CheckpointMode::PASSIVE)?;
                } else if pages >= CHECKPOINT_PAGES {
                    // Full means a checkpoint is already asked for.
                    let _ = nudge.try_send(());
                }
                Ok(())
            }))?;
        Ok(())
    }

    /// See [`authority_digest`].
    pub(crate) fn authority_digest(&self, community_key: &str) -> Result<[u8; 32], StoreError> {
        authority_digest(&self.conn, community_key)
    }

    pub(crate) fn membership_cache(&self) -> &crate::trust::membership::MembershipCache {
        &self.membership
    }

    /// SQLite's `data_version`: changes when another connection commits.
    pub fn data_version(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .prepare_cached("PRAGMA data_version")?
            .query_row([], |r| r.get(0))?)
    }

    pub fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
            .query_row([key], |r| r.get(0))
            .optional()?)
    }

    /// Runs `f` in one write transaction; commits if it returns `Ok`.
    pub fn write<T, E: From<StoreError>>(
        &mut self,
        f: impl FnOnce(&mut Writer<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StoreError::from)?;
        let mut writer = Writer {
            tx,
            pending: std::cell::Cell::new(None),
            sender: std::cell::RefCell::new(String::new()),
            limits: self.pending_limits,
            sender_usage: std::cell::Cell::new(None),
            membership: &self.membership,
        };
        let out = f(&mut writer)?;
        writer.tx.commit().map_err(StoreError::from)?;
        Ok(out)
    }

    /// The merged state of a document, if the node has it.
    pub fn load(&self, doc: DocumentId) -> Result<Option<Automerge>, StoreError> {
        load(&self.conn, doc)
    }

    /// Every stored change with when this node stored it, in arrival order.
    pub fn all_changes_received(&self) -> Result<Vec<(SignedChange, i64)>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT doc, hash, bytes, signer, sig, received FROM changes ORDER BY seq",
        )?;
        let rows = stmt.query_map([], |r| Ok((signed_change(r)?, r.get::<_, i64>(5)?)))?;
        let mut out = Vec::new();
        for row in rows {
            if let (Some(c), received) = row? {
                out.push((c, received));
            }
        }
        Ok(out)
    }

    /// Owner and visibility of every document, for filtering exports.
    pub fn doc_classes(
        &self,
    ) -> Result<std::collections::HashMap<DocumentId, (String, String)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT doc, owner, visibility FROM docs")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        let mut out = std::collections::HashMap::new();
        for row in rows {
            let (doc, owner, visibility) = row?;
            if let Some(id) = DocumentId::from_slice(&doc) {
                out.insert(id, (owner, visibility));
            }
        }
        Ok(out)
    }

    /// Every stored change of every document, in arrival order.
    pub fn all_changes(&self) -> Result<Vec<SignedChange>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT doc, hash, bytes, signer, sig FROM changes ORDER BY seq")?;
        let rows = stmt.query_map([], signed_change)?;
        Ok(rows
            .filter_map(Result::transpose)
            .collect::<Result<_, _>>()?)
    }

    /// Every stored change of a document, in arrival order.
    pub fn changes(&self, doc: DocumentId) -> Result<Vec<StoredChange>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT hash, bytes, signer, sig, received FROM changes WHERE doc = ?1 ORDER BY seq",
        )?;
        let rows = stmt.query_map([doc.as_bytes().as_slice()], |r| {
            Ok(StoredChange {
                change: SignedChange {
                    doc,
                    hash: blob(r, 0)?,
                    bytes: r.get(1)?,
                    signer: blob(r, 2)?,
                    signature: blob(r, 3)?,
                },
                received: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The changes of `doc` stored after position `after` and up to `upto`
    /// (`changes.seq`), in order, unless they hold more than `budget`
    /// bytes (`None`): the news a node pushes to its peers.
    pub fn changes_between(
        &self,
        doc: DocumentId,
        after: i64,
        upto: i64,
        budget: usize,
    ) -> Result<Option<Vec<SignedChange>>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT hash, bytes, signer, sig FROM changes
             WHERE doc = ?1 AND seq > ?2 AND seq <= ?3 ORDER BY seq",
        )?;
        let mut rows = stmt.query((doc.as_bytes().as_slice(), after, upto))?;
        let mut out = Vec::new();
        let mut size = 0;
        while let Some(r) = rows.next()? {
            let change = SignedChange {
                doc,
                hash: blob(r, 0)?,
                bytes: r.get(1)?,
                signer: blob(r, 2)?,
                signature: blob(r, 3)?,
            };
            size += change.bytes.len();
            if size > budget {
                return Ok(None);
            }
            out.push(change);
        }
        Ok(Some(out))
    }

    /// A document's kind as stored (`""` while it is invalid), if the node
    /// has it.
    pub fn kind_of(&self, doc: DocumentId) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT kind FROM docs WHERE doc = ?1")?
            .query_row([doc.as_bytes().as_slice()], |r| r.get(0))
            .optional()?)
    }

    /// A document's heads, as stored (empty if the node lacks it).
    pub fn heads(&self, doc: DocumentId) -> Result<Vec<[u8; 32]>, StoreError> {
        let heads: Option<Vec<u8>> = self
            .conn
            .prepare_cached("SELECT heads FROM docs WHERE doc = ?1")?
            .query_row([doc.as_bytes().as_slice()], |r| r.get(0))
            .optional()?;
        Ok(heads
            .unwrap_or_default()
            .chunks_exact(32)
            .map(|c| c.try_into().expect("32-byte chunks"))
            .collect())
    }

    /// Every organisation whose profile lists `node`.
    pub fn orgs_of_node(
        &self,
        node: &str,
    ) -> Result<std::collections::BTreeSet<String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT org FROM nodes WHERE node = ?1")?;
        let rows = stmt.query_map([node], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The organisation a node key belongs to, per the organisation profiles.
    pub fn org_of_node(&self, node: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT org FROM nodes WHERE node = ?1 LIMIT 1",
                [node],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// How many valid entries of each kind the node holds.
    pub fn counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT kind, count(*) FROM docs WHERE kind != '' GROUP BY kind ORDER BY kind",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// Maps errors seen while opening to messages about the file.
fn classify(path: &Path, e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => StoreError::Corrupt {
            path: path.to_path_buf(),
            detail: e.to_string(),
        },
        Some(ErrorCode::ReadOnly) => StoreError::ReadOnly(path.to_path_buf()),
        Some(ErrorCode::CannotOpen) => StoreError::Missing(path.to_path_buf()),
        _ => StoreError::from(e),
    }
}

fn blob<const N: usize>(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<[u8; N]> {
    let v: Vec<u8> = r.get(i)?;
    v.try_into().map_err(|v: Vec<u8>| {
        rusqlite::Error::FromSqlConversionFailure(
            i,
            rusqlite::types::Type::Blob,
            format!("expected {N} bytes, found {}", v.len()).into(),
        )
    })
}

/// A `(doc, hash, bytes, signer, sig)` row as a change (`None` for a row
/// whose document id is malformed).
pub(crate) fn signed_change(r: &rusqlite::Row<'_>) -> rusqlite::Result<Option<SignedChange>> {
    let doc: Vec<u8> = r.get(0)?;
    let Some(doc) = DocumentId::from_slice(&doc) else {
        return Ok(None);
    };
    Ok(Some(SignedChange {
        doc,
        hash: blob(r, 1)?,
        bytes: r.get(2)?,
        signer: blob(r, 3)?,
        signature: blob(r, 4)?,
    }))
}

/// A stored document, loaded from its snapshot; should the snapshot not
/// load (damaged on disk, or a first state laid out from its change that
/// automerge does not read back), the document is rebuilt from its stored
/// changes instead, if they give the heads stored with it.
fn load(conn: &Connection, doc: DocumentId) -> Result<Option<Automerge>, StoreError> {
    let row: Option<(Vec<u8>, Vec<u8>)> = conn
        .prepare_cached("SELECT snapshot, heads FROM docs WHERE doc = ?1")?
        .query_row([doc.as_bytes().as_slice()], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((snapshot, heads)) = row else {
        return Ok(None);
    };
    let error = match Automerge::load(&snapshot) {
        Ok(state) => return Ok(Some(state)),
        Err(e) => e.to_string(),
    };
    let rebuilt = rebuild(conn, doc)?;
    match rebuilt {
        Some(state) if index::heads_and_digest(doc, state.get_heads()).0 == heads => {
            tracing::warn!(doc = %doc, %error, "a document's snapshot does not load: rebuilt from its changes");
            Ok(Some(state))
        }
        _ => Err(StoreError::BadDocument {
            id: doc,
            detail: error,
        }),
    }
}

/// A document applied afresh from its stored changes, in the order they
/// arrived; `None` if they do not decode or apply.
fn rebuild(conn: &Connection, doc: DocumentId) -> Result<Option<Automerge>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT bytes FROM changes WHERE doc = ?1 ORDER BY seq")?;
    let mut changes = Vec::new();
    for bytes in stmt.query_map([doc.as_bytes().as_slice()], |r| r.get::<_, Vec<u8>>(0))? {
        match automerge::Change::try_from(bytes?.as_slice()) {
            Ok(c) => changes.push(c),
            Err(_) => return Ok(None),
        }
    }
    let mut state = Automerge::new();
    Ok(crate::apply::apply_received(&mut state, changes)
        .ok()
        .map(|()| state))
}

/// The write half of a transaction opened by [`Store::write`].
#[derive(Debug)]
pub struct Writer<'a> {
    tx: rusqlite::Transaction<'a>,
    /// Rows and bytes in `pending`, once counted (kept to avoid a count
    /// per insert).
    pending: std::cell::Cell<Option<(i64, i64)>>,
    /// Who sends what this transaction receives (see
    /// [`Writer::receiving_from`]).
    sender: std::cell::RefCell<String>,
    /// Rows and bytes in `pending` from that sender, once counted.
    sender_usage: std::cell::Cell<Option<(i64, i64)>>,
    limits: PendingLimits,
    membership: &'a crate::trust::membership::MembershipCache,
}

impl Writer<'_> {
    /// See [`authority_digest`].
    pub(crate) fn authority_digest(&self, community_key: &str) -> Result<[u8; 32], StoreError> {
        authority_digest(&self.tx, community_key)
    }

    pub(crate) fn membership_cache(&self) -> &crate::trust::membership::MembershipCache {
        self.membership
    }

    /// The committed merged state of a document, read inside this transaction.
    pub fn load(&self, doc: DocumentId) -> Result<Option<Automerge>, StoreError> {
        load(&self.tx, doc)
    }

    pub fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.tx.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [key, value],
        )?;
        Ok(())
    }

    /// Records `new` (already verified, already applied to `state`) and
    /// refreshes the document's row and indexes from `state`. Changes the
    /// store already has are skipped.
    pub fn put(
        &self,
        doc: DocumentId,
        state: &Automerge,
        new: &[SignedChange],
        now_ms: i64,
    ) -> Result<Indexed, StoreError> {
        self.put_derived(new, now_ms, index::Derived::of(doc, state))
    }

    /// [`Writer::put`] with the document's rows worked out already, from
    /// its new state (on another thread): `derived` must be of its
    /// document's state as stored, and `new` that document's changes.
    pub(crate) fn put_derived(
        &self,
        new: &[SignedChange],
        now_ms: i64,
        derived: index::Derived,
    ) -> Result<Indexed, StoreError> {
        let doc = derived.doc();
        let mut insert = self.tx.prepare_cached(
            "INSERT OR IGNORE INTO changes (doc, hash, bytes, signer, sig, received)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for c in new {
            if c.doc != doc {
                return Err(StoreError::BadDocument {
                    id: doc,
                    detail: format!("a change of {} stored with its rows", c.doc),
                });
            }
            insert.execute(params![
                doc.as_bytes().as_slice(),
                c.hash.as_slice(),
                c.bytes,
                c.signer.as_slice(),
                c.signature.as_slice(),
                now_ms
            ])?;
        }
        index::write(&self.tx, derived)
    }
}

#[cfg(test)]
mod tests {
    use super::Store;
    use std::time::{Duration, Instant};

    #[test]
    fn the_checkpoint_thread_copies_the_log_into_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("convene.db");
        let mut store = Store::create(&path).unwrap();
        store.relax_durability().unwrap();
        store.checkpoint_in_background().unwrap();
        let before = std::fs::metadata(&path).unwrap().len();
        store
            .conn
            .execute_batch("CREATE TABLE filler (b BLOB)")
            .unwrap();
        // 6 MB in four commits: past the 1,000 pages that ask for a
        // checkpoint, well short of the pages at which a commit would
        // checkpoint itself.
        for _ in 0..4 {
            store
                .conn
                .execute("INSERT INTO filler VALUES (randomblob(1500000))", [])
                .unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let now = std::fs::metadata(&path).unwrap().len();
            if now >= before + 6_000_000 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the database file grew only from {before} to {now} bytes"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        let total: i64 = store
            .conn
            .query_row("SELECT sum(length(b)) FROM filler", [], |r| r.get(0))
            .unwrap();
        assert_eq!(total, 6_000_000);
    }
}
