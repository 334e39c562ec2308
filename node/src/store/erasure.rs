//! Erasure in the store: deleting every trace of a document, and the
//! tombstones that keep it out.
//!
//! `secure_delete` (set at open) makes SQLite overwrite freed pages, the
//! search index is told to drop deleted rows' words at once, and
//! [`Store::scrub`] checkpoints the write-ahead log and truncates it, so
//! the erased text is gone from the database and its WAL file, not only
//! unlinked.

use convene_model::DocumentId;
use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError, Writer, blob};
use crate::trust::Tombstone;

/// A tombstone as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTombstone {
    pub tombstone: Tombstone,
    /// Owner and visibility of the erased entry (empty until checked).
    pub owner: String,
    pub visibility: String,
    /// Whether its signer was checked against the entry's owner.
    pub verified: bool,
}

fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredTombstone> {
    let doc: Vec<u8> = r.get(0)?;
    Ok(StoredTombstone {
        tombstone: Tombstone {
            doc: DocumentId::from_slice(&doc).unwrap_or(DocumentId::from_bytes([0; 16])),
            signer: blob::<32>(r, 1)?,
            signature: blob::<64>(r, 2)?,
            at: r.get(3)?,
            reason: r.get(4)?,
        },
        owner: r.get(5)?,
        visibility: r.get(6)?,
        verified: r.get(7)?,
    })
}

const COLUMNS: &str = "doc, signer, sig, at, reason, owner, visibility, verified";

fn tombstone(
    conn: &rusqlite::Connection,
    doc: DocumentId,
) -> Result<Option<StoredTombstone>, StoreError> {
    Ok(conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM tombstones WHERE doc = ?1"))?
        .query_row([doc.as_bytes().as_slice()], read)
        .optional()?)
}

impl Writer<'_> {
    pub fn tombstone(&self, doc: DocumentId) -> Result<Option<StoredTombstone>, StoreError> {
        tombstone(&self.tx, doc)
    }

    /// Records (or replaces) the tombstone of a document, with an arrival
    /// number never handed out before (the table's AUTOINCREMENT; a
    /// replaced row is deleted and inserted anew), so a running daemon,
    /// which looks for tombstones above the last number it saw, notices it
    /// even after a tombstone was dropped.
    pub fn put_tombstone(&self, t: &StoredTombstone) -> Result<(), StoreError> {
        self.tx.execute(
            "INSERT OR REPLACE INTO tombstones
                (doc, signer, sig, at, reason, owner, visibility, verified)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                t.tombstone.doc.as_bytes().as_slice(),
                t.tombstone.signer.as_slice(),
                t.tombstone.signature.as_slice(),
                t.tombstone.at,
                t.tombstone.reason,
                t.owner,
                t.visibility,
                t.verified
            ],
        )?;
        Ok(())
    }

    pub fn drop_tombstone(&self, doc: DocumentId) -> Result<(), StoreError> {
        self.tx.execute(
            "DELETE FROM tombstones WHERE doc = ?1",
            [doc.as_bytes().as_slice()],
        )?;
        Ok(())
    }

    /// Deletes every stored trace of a document: changes, waiting changes,
    /// its row, filter terms and search words.
    pub fn erase_doc(&self, doc: DocumentId) -> Result<(), StoreError> {
        let key = doc.as_bytes().as_slice();
        let n: Option<i64> = self
            .tx
            .query_row("SELECT n FROM docs WHERE doc = ?1", [key], |r| r.get(0))
            .optional()?;
        if let Some(n) = n {
            self.tx.execute("DELETE FROM fts WHERE rowid = ?1", [n])?;
            self.tx.execute("DELETE FROM terms WHERE n = ?1", [n])?;
        }
        self.tx.execute("DELETE FROM docs WHERE doc = ?1", [key])?;
        self.tx
            .execute("DELETE FROM changes WHERE doc = ?1", [key])?;
        self.tx
            .execute("DELETE FROM pending WHERE doc = ?1", [key])?;
        self.tx
            .execute("DELETE FROM nodes WHERE org = ?1", [doc.to_string()])?;
        Ok(())
    }
}

impl Store {
    pub fn tombstone(&self, doc: DocumentId) -> Result<Option<StoredTombstone>, StoreError> {
        tombstone(self.conn(), doc)
    }

    /// Checked tombstones stored after position `n`, and the highest
    /// position now stored.
    pub fn tombstones_since(&self, n: i64) -> Result<(Vec<StoredTombstone>, i64), StoreError> {
        let max: i64 = self
            .conn()
            .prepare_cached("SELECT coalesce(max(n), 0) FROM tombstones")?
            .query_row([], |r| r.get(0))?;
        if max <= n {
            return Ok((Vec::new(), max));
        }
        let mut stmt = self.conn().prepare_cached(&format!(
            "SELECT {COLUMNS} FROM tombstones WHERE n > ?1 AND verified ORDER BY n"
        ))?;
        let rows = stmt.query_map([n], read)?;
        Ok((rows.collect::<Result<_, _>>()?, max))
    }

    /// Removes erased bytes from the files: merges the search index and
    /// checkpoints and truncates the write-ahead log. Another connection
    /// (a running daemon) can hold the log open for a moment, so this
    /// retries briefly; it reports whether the log was emptied.
    pub fn scrub(&self) -> Result<bool, StoreError> {
        self.conn()
            .execute("INSERT INTO fts (fts) VALUES ('optimize')", [])?;
        for _ in 0..50 {
            let (busy, _, _): (i64, i64, i64) =
                self.conn()
                    .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                    })?;
            if busy == 0 {
                return Ok(true);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use convene_model::DocumentId;

    use super::StoredTombstone;
    use crate::store::Store;
    use crate::trust::{Identity, Tombstone};

    /// A running daemon looks for tombstones numbered above the last it
    /// saw. One stored after the newest was dropped (an erasure refused
    /// once its entry arrived), or one replacing another, must be numbered
    /// above every number handed out before, through the writer's own
    /// statements.
    #[test]
    fn a_tombstone_stored_after_one_was_dropped_is_numbered_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::create(&dir.path().join("convene.db")).unwrap();
        let id = Identity::generate();
        let put = |store: &mut Store, doc: u8, verified: bool| {
            let doc = DocumentId::from_bytes([doc; 16]);
            store
                .write(|w| {
                    w.put_tombstone(&StoredTombstone {
                        tombstone: Tombstone::sign(&id, doc, 0, "withdrawn"),
                        owner: String::new(),
                        visibility: String::new(),
                        verified,
                    })
                })
                .unwrap();
        };
        put(&mut store, 1, true);
        put(&mut store, 2, false);
        let (_, seen) = store.tombstones_since(0).unwrap();
        store
            .write(|w| w.drop_tombstone(DocumentId::from_bytes([2; 16])))
            .unwrap();
        // Replaced after the newest was dropped.
        put(&mut store, 1, true);
        let (fresh, seen) = store.tombstones_since(seen).unwrap();
        assert_eq!(
            fresh.len(),
            1,
            "the replaced tombstone took a number already seen"
        );
        assert_eq!(fresh[0].tombstone.doc, DocumentId::from_bytes([1; 16]));
        store
            .write(|w| w.drop_tombstone(DocumentId::from_bytes([1; 16])))
            .unwrap();
        // A new one after the newest was dropped.
        put(&mut store, 3, true);
        let (fresh, _) = store.tombstones_since(seen).unwrap();
        assert_eq!(
            fresh.len(),
            1,
            "the new tombstone took a number already seen"
        );
        assert_eq!(fresh[0].tombstone.doc, DocumentId::from_bytes([3; 16]));
    }
}
