//! Trust bookkeeping in the store: which nodes belong to an organisation,
//! changes waiting for what they depend on, and the audit log.

use convene_model::DocumentId;
use rusqlite::params;
use std::collections::BTreeSet;

use super::{Store, StoreError, Writer};
use crate::trust::SignedChange;

/// Most changes kept waiting (for dependencies or an owner's profile);
/// beyond this a peer cannot make a node store more unverified data.
pub const MAX_PENDING: i64 = 100_000;
/// Most bytes of changes kept waiting, all senders together.
pub const MAX_PENDING_BYTES: i64 = 256 * 1024 * 1024;
/// A change that waited this long (ms) without what it waits for
/// arriving is dropped; the next sync fetches it again if it still matters.
pub const PENDING_TTL_MS: i64 = 14 * 24 * 3600 * 1000;

/// How much may wait in `pending`: in all, and from one sender. A sender
/// (a peer, bundles, or local callers) can fill at most its share, so the
/// others still have room for their own out-of-order changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingLimits {
    pub changes: i64,
    pub bytes: i64,
    pub changes_per_sender: i64,
    pub bytes_per_sender: i64,
}

impl Default for PendingLimits {
    fn default() -> Self {
        Self {
            changes: MAX_PENDING,
            bytes: MAX_PENDING_BYTES,
            changes_per_sender: MAX_PENDING / 4,
            bytes_per_sender: MAX_PENDING_BYTES / 4,
        }
    }
}

/// What a waiting change waits for, kept with it so that it is tried
/// again when that arrives and not with every batch.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Awaits {
    /// Earlier changes of its own document: tried again when that
    /// document receives changes.
    Doc,
    /// The profile of the organisation that owns its document (or the
    /// community's word that the organisation is a member).
    Org(String),
    /// The join claim (or charter) that makes its signing node a member's.
    Node(String),
    /// Not recorded (kept before this was): tried again whenever a
    /// profile, charter or claim arrives.
    Unknown,
}

impl Awaits {
    fn column(&self) -> Option<String> {
        match self {
            Awaits::Doc => Some("doc".into()),
            Awaits::Org(org) => Some(format!("org:{org}")),
            Awaits::Node(node) => Some(format!("node:{node}")),
            Awaits::Unknown => None,
        }
    }

    fn from_column(column: Option<String>) -> Self {
        match column.as_deref() {
            Some("doc") => Awaits::Doc,
            Some(s) => match s.split_once(':') {
                Some(("org", org)) => Awaits::Org(org.into()),
                Some(("node", node)) => Awaits::Node(node.into()),
                _ => Awaits::Unknown,
            },
            None => Awaits::Unknown,
        }
    }
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub at: i64,
    /// `rejected`, `erased`, …
    pub event: String,
    pub security: bool,
    pub doc: Option<String>,
    /// Node id of whoever signed what the event is about.
    pub signer: Option<String>,
    pub detail: String,
}

fn docs_of_kind(conn: &rusqlite::Connection, kind: &str) -> Result<Vec<DocumentId>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT doc FROM docs WHERE kind = ?1")?;
    let rows = stmt.query_map([kind], |r| r.get::<_, Vec<u8>>(0))?;
    let mut out = Vec::new();
    for row in rows {
        if let Some(id) = DocumentId::from_slice(&row?) {
            out.push(id);
        }
    }
    Ok(out)
}

impl Writer<'_> {
    /// Whether this change of `doc` is stored (one indexed read).
    pub fn has_change(&self, doc: DocumentId, hash: &[u8; 32]) -> Result<bool, StoreError> {
        use rusqlite::OptionalExtension;
        Ok(self
            .tx
            .prepare_cached("SELECT 1 FROM changes WHERE doc = ?1 AND hash = ?2")?
            .query_row(
                rusqlite::params![doc.as_bytes().as_slice(), hash.as_slice()],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// The kind column of a document's row ('' while it is not valid).
    pub fn kind_of(&self, doc: DocumentId) -> Result<Option<String>, StoreError> {
        use rusqlite::OptionalExtension;
        Ok(self
            .tx
            .prepare_cached("SELECT kind FROM docs WHERE doc = ?1")?
            .query_row([doc.as_bytes().as_slice()], |r| r.get(0))
            .optional()?)
    }

    pub fn docs_of_kind(&self, kind: &str) -> Result<Vec<DocumentId>, StoreError> {
        docs_of_kind(&self.tx, kind)
    }

    pub fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        use rusqlite::OptionalExtension;
        Ok(self
            .tx
            .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
            .query_row([key], |r| r.get(0))
            .optional()?)
    }

    /// Whether `node` is listed in organisation `org`'s profile.
    pub fn is_node_of(&self, node: &str, org: &str) -> Result<bool, StoreError> {
        Ok(self
            .tx
            .prepare_cached("SELECT 1 FROM nodes WHERE node = ?1 AND org = ?2")?
            .exists([node, org])?)
    }

    /// Whether this node has organisation `org`'s profile (with its nodes).
    pub fn knows_org(&self, org: &str) -> Result<bool, StoreError> {
        Ok(self
            .tx
            .prepare_cached("SELECT 1 FROM nodes WHERE org = ?1 LIMIT 1")?
            .exists([org])?)
    }

    /// Names who sends the changes this transaction receives (a peer's
    /// node id, `bundle` or `local`): changes kept waiting are counted
    /// against that sender's share. Drops waiting changes past their time.
    pub fn receiving_from(&self, sender: &str, now: i64) -> Result<(), StoreError> {
        *self.sender.borrow_mut() = sender.to_string();
        let expired = self
            .tx
            .prepare_cached("DELETE FROM pending WHERE received < ?1")?
            .execute([now - PENDING_TTL_MS])?;
        self.forget_pending_usage(expired > 0);
        Ok(())
    }

    /// Drops the cached usage of the waiting room (all of it if `all`).
    fn forget_pending_usage(&self, all: bool) {
        self.sender_usage.set(None);
        if all {
            self.pending.set(None);
        }
    }

    /// Keeps a verified change that cannot be applied yet, with what it
    /// waits for and who sent it. `false` if the waiting room, or the
    /// sender's share of it, is full (by count or by bytes).
    pub fn add_pending(
        &self,
        c: &SignedChange,
        awaits: &Awaits,
        now: i64,
    ) -> Result<bool, StoreError> {
        let (count, bytes) = match self.pending.get() {
            Some(n) => n,
            None => self.tx.query_row(
                "SELECT count(*), CAST(total(length(bytes)) AS INTEGER) FROM pending",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?,
        };
        self.pending.set(Some((count, bytes)));
        let sender = self.sender.borrow().clone();
        let (own_count, own_bytes) = match self.sender_usage.get() {
            Some(n) => n,
            None => self.tx.query_row(
                "SELECT count(*), CAST(total(length(bytes)) AS INTEGER) FROM pending WHERE sender = ?1",
                [&sender],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?,
        };
        self.sender_usage.set(Some((own_count, own_bytes)));
        let size = c.bytes.len() as i64;
        let l = self.limits;
        if count >= l.changes
            || bytes + size > l.bytes
            || own_count >= l.changes_per_sender
            || own_bytes + size > l.bytes_per_sender
        {
            return Ok(false);
        }
        let added = self
            .tx
            .prepare_cached(
                "INSERT OR IGNORE INTO pending (doc, hash, bytes, signer, sig, received, awaits, sender)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                c.doc.as_bytes().as_slice(),
                c.hash.as_slice(),
                c.bytes,
                c.signer.as_slice(),
                c.signature.as_slice(),
                now,
                awaits.column(),
                sender
            ])? as i64;
        self.pending
            .set(Some((count + added, bytes + added * size)));
        self.sender_usage
            .set(Some((own_count + added, own_bytes + added * size)));
        Ok(true)
    }

    /// What the waiting changes wait for, other than their own documents'
    /// earlier changes: one entry per organisation or node awaited.
    pub fn pending_blockers(&self) -> Result<Vec<Awaits>, StoreError> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT DISTINCT awaits FROM pending WHERE awaits IS NULL OR awaits <> 'doc'",
        )?;
        let rows = stmt.query_map([], |r| r.get::<_, Option<String>>(0))?;
        let mut out = Vec::new();
        for row in rows {
            out.push(Awaits::from_column(row?));
        }
        Ok(out)
    }

    /// Takes the waiting changes that wait for any of `blockers`, oldest
    /// first.
    pub fn take_pending_awaiting(
        &self,
        blockers: &[Awaits],
    ) -> Result<Vec<SignedChange>, StoreError> {
        let mut out = Vec::new();
        for blocker in blockers {
            let column = blocker.column();
            let rows: Vec<SignedChange> = self
                .tx
                .prepare_cached(
                    "SELECT doc, hash, bytes, signer, sig FROM pending
                     WHERE awaits IS ?1 ORDER BY received",
                )?
                .query_map([&column], super::signed_change)?
                .filter_map(Result::transpose)
                .collect::<Result<_, _>>()?;
            let n = self
                .tx
                .prepare_cached("DELETE FROM pending WHERE awaits IS ?1")?
                .execute([&column])?;
            self.forget_pending_usage(n > 0);
            out.extend(rows);
        }
        Ok(out)
    }

    /// Takes the waiting changes of these documents.
    pub fn take_pending_for(&self, docs: &[DocumentId]) -> Result<Vec<SignedChange>, StoreError> {
        let mut out = Vec::new();
        let mut select = self
            .tx
            .prepare_cached("SELECT doc, hash, bytes, signer, sig FROM pending WHERE doc = ?1")?;
        let mut delete = self
            .tx
            .prepare_cached("DELETE FROM pending WHERE doc = ?1")?;
        for doc in docs {
            let key = doc.as_bytes().as_slice();
            let rows: Vec<SignedChange> = select
                .query_map([key], super::signed_change)?
                .filter_map(Result::transpose)
                .collect::<Result<_, _>>()?;
            if !rows.is_empty() {
                let n = delete.execute([key])?;
                self.forget_pending_usage(n > 0);
                out.extend(rows);
            }
        }
        Ok(out)
    }

    /// Appends to the audit log.
    pub fn log(&self, at: i64, entry: &LogEntry) -> Result<(), StoreError> {
        self.tx
            .prepare_cached(
                "INSERT INTO log (at, event, security, doc, signer, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                at,
                entry.event,
                entry.security,
                entry.doc,
                entry.signer,
                entry.detail
            ])?;
        Ok(())
    }
}

impl Store {
    /// Ids of the documents of one kind.
    pub fn docs_of_kind(&self, kind: &str) -> Result<Vec<DocumentId>, StoreError> {
        docs_of_kind(self.conn(), kind)
    }

    /// The documents whose current state uses a file (any learning entry
    /// or project with an attachment): one range read of the index.
    pub fn docs_with_files(&self) -> Result<BTreeSet<DocumentId>, StoreError> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT DISTINCT d.doc FROM terms t JOIN docs d ON d.n = t.n WHERE t.field = ?1",
        )?;
        let rows = stmt.query_map([super::index::FILE_TERM], |r| r.get::<_, Vec<u8>>(0))?;
        let mut out = BTreeSet::new();
        for row in rows {
            if let Some(id) = DocumentId::from_slice(&row?) {
                out.insert(id);
            }
        }
        Ok(out)
    }

    /// The audit log, oldest first; only security events if asked.
    pub fn log(&self, security_only: bool) -> Result<Vec<LogEntry>, StoreError> {
        let mut stmt = self.conn().prepare(
            "SELECT at, event, security, doc, signer, detail FROM log
             WHERE security OR NOT ?1 ORDER BY seq",
        )?;
        let rows = stmt.query_map([security_only], |r| {
            Ok(LogEntry {
                at: r.get(0)?,
                event: r.get(1)?,
                security: r.get(2)?,
                doc: r.get(3)?,
                signer: r.get(4)?,
                detail: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Appends to the audit log outside any other write.
    pub fn log_now(&mut self, entry: &LogEntry) -> Result<(), StoreError> {
        self.write(|w| w.log(entry.at, entry))
    }

    /// How many of `changes` (document, change hash) still wait.
    pub fn still_pending(&self, changes: &[(DocumentId, [u8; 32])]) -> Result<usize, StoreError> {
        let mut stmt = self
            .conn()
            .prepare_cached("SELECT 1 FROM pending WHERE doc = ?1 AND hash = ?2")?;
        let mut n = 0;
        for (doc, hash) in changes {
            if stmt.exists(params![doc.as_bytes().as_slice(), hash.as_slice()])? {
                n += 1;
            }
        }
        Ok(n)
    }

    /// How many changes are waiting.
    pub fn pending_count(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn()
            .query_row("SELECT count(*) FROM pending", [], |r| r.get(0))?)
    }
}
