//! Numbered schema migrations, run in order when a store is opened.
//!
//! `PRAGMA user_version` records how many have run. Each migration runs in
//! its own transaction, so a crash leaves the schema at a whole version. A
//! database from a newer Convene (higher version) is refused rather than
//! guessed at.

use rusqlite::Connection;

/// Migration `i` moves the schema from version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[
    // 1: changes, documents, search index.
    r#"
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    ) STRICT;

    -- Every change ever accepted, with the proof of who made it.
    CREATE TABLE changes (
        seq      INTEGER PRIMARY KEY,          -- arrival order
        doc      BLOB NOT NULL,                -- 16-byte document id
        hash     BLOB NOT NULL,                -- 32-byte automerge change hash
        bytes    BLOB NOT NULL,                -- the change as automerge encoded it
        signer   BLOB NOT NULL,                -- 32-byte Ed25519 public key
        sig      BLOB NOT NULL,                -- 64-byte signature over (doc, hash)
        received INTEGER NOT NULL,             -- unix ms when this node stored it
        UNIQUE (doc, hash)
    ) STRICT;
    CREATE INDEX changes_by_doc ON changes (doc, seq);

    -- One row per document: its heads and the columns lists filter on.
    CREATE TABLE docs (
        n          INTEGER PRIMARY KEY,        -- rowid, shared with the FTS table
        doc        BLOB NOT NULL UNIQUE,
        id         TEXT NOT NULL UNIQUE,       -- base58 of doc, for prefix lookups
        kind       TEXT NOT NULL,              -- '' while the document is invalid
        owner      TEXT NOT NULL,
        visibility TEXT NOT NULL,
        status     TEXT NOT NULL,
        title      TEXT NOT NULL,
        created    INTEGER NOT NULL,
        updated    INTEGER NOT NULL,
        heads      BLOB NOT NULL,              -- sorted 32-byte hashes, concatenated
        digest     BLOB NOT NULL,              -- blake3(doc ‖ heads)
        snapshot   BLOB NOT NULL,              -- automerge save() of the merged changes
        problem    TEXT                        -- why the document is not a valid entry
    ) STRICT;
    CREATE INDEX docs_by_kind ON docs (kind, updated);
    CREATE INDEX docs_by_owner ON docs (owner);

    -- Filterable vocabulary values and tags of each document.
    CREATE TABLE terms (
        field TEXT NOT NULL,
        value TEXT NOT NULL,
        n     INTEGER NOT NULL,
        PRIMARY KEY (field, value, n)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX terms_by_doc ON terms (n);

    CREATE VIRTUAL TABLE fts USING fts5(
        title, summary, body, tags, names,
        tokenize = 'porter unicode61 remove_diacritics 2'
    );

    -- Which organisation each node key belongs to (from organisation profiles).
    CREATE TABLE nodes (
        node TEXT PRIMARY KEY,                 -- PeerId
        org  TEXT NOT NULL
    ) STRICT;
    "#,
    // 2: what the daemon knows about peers, for `convene status` and `peers`.
    r#"
    CREATE TABLE peers (
        node        TEXT PRIMARY KEY,          -- PeerId
        address     TEXT,                      -- last address seen
        connected   INTEGER NOT NULL DEFAULT 0,
        last_seen   INTEGER,                   -- unix ms
        last_sync   INTEGER,                   -- unix ms of the last completed session
        changes_in  INTEGER NOT NULL DEFAULT 0,
        changes_out INTEGER NOT NULL DEFAULT 0,
        rejected    INTEGER NOT NULL DEFAULT 0
    ) STRICT;
    "#,
    // 3: trust: a node may belong to several organisations' profiles;
    // changes waiting for their dependencies or their owner's profile; the
    // audit log; erasure tombstones.
    r#"
    CREATE TABLE nodes_new (
        node TEXT NOT NULL,
        org  TEXT NOT NULL,
        PRIMARY KEY (node, org)
    ) STRICT, WITHOUT ROWID;
    INSERT INTO nodes_new SELECT node, org FROM nodes;
    DROP TABLE nodes;
    ALTER TABLE nodes_new RENAME TO nodes;
    CREATE INDEX nodes_by_org ON nodes (org);

    CREATE TABLE pending (
        doc      BLOB NOT NULL,
        hash     BLOB NOT NULL,
        bytes    BLOB NOT NULL,
        signer   BLOB NOT NULL,
        sig      BLOB NOT NULL,
        received INTEGER NOT NULL,
        PRIMARY KEY (doc, hash)
    ) STRICT;

    CREATE TABLE log (
        seq      INTEGER PRIMARY KEY,
        at       INTEGER NOT NULL,             -- unix ms
        event    TEXT NOT NULL,                -- rejected, erased, …
        security INTEGER NOT NULL,             -- 1 for security events
        doc      TEXT,                         -- entry id, if any
        signer   TEXT,                         -- node id of who signed what the event is about
        detail   TEXT NOT NULL
    ) STRICT;

    CREATE TABLE tombstones (
        doc    BLOB PRIMARY KEY,
        signer BLOB NOT NULL,                  -- 32-byte Ed25519 public key
        sig    BLOB NOT NULL,
        at     INTEGER NOT NULL,               -- unix ms, as signed
        reason TEXT NOT NULL
    ) STRICT;
    "#,
    // 4: tombstones get arrival order (so a running daemon notices them),
    // the class of the erased entry (so they go only where it went), and
    // whether their permission was checked; the search index removes the
    // words of deleted rows at once instead of at the next merge.
    r#"
    CREATE TABLE tombstones_new (
        n          INTEGER PRIMARY KEY,
        doc        BLOB NOT NULL UNIQUE,
        signer     BLOB NOT NULL,
        sig        BLOB NOT NULL,
        at         INTEGER NOT NULL,
        reason     TEXT NOT NULL,
        owner      TEXT NOT NULL DEFAULT '',
        visibility TEXT NOT NULL DEFAULT '',
        verified   INTEGER NOT NULL DEFAULT 0
    ) STRICT;
    INSERT INTO tombstones_new (doc, signer, sig, at, reason)
        SELECT doc, signer, sig, at, reason FROM tombstones;
    DROP TABLE tombstones;
    ALTER TABLE tombstones_new RENAME TO tombstones;
    INSERT INTO fts (fts, rank) VALUES ('secure-delete', 1);
    "#,
    // 5: a waiting change records what it waits for ('doc', 'org:<id>' or
    // 'node:<id>'; NULL for those kept before), so it is tried again when
    // that arrives rather than with every profile, charter or claim.
    r#"
    ALTER TABLE pending ADD COLUMN awaits TEXT;
    CREATE INDEX pending_by_awaits ON pending (awaits);
    "#,
    // 6: a waiting change records who sent it (a peer's node id, 'bundle'
    // or 'local'), so each sender has a bounded share of the waiting room;
    // waiting changes expire by arrival time.
    r#"
    ALTER TABLE pending ADD COLUMN sender TEXT NOT NULL DEFAULT '';
    CREATE INDEX pending_by_sender ON pending (sender);
    CREATE INDEX pending_by_received ON pending (received);
    "#,
    // 7: feed links (`convene feed new`): only the BLAKE3 hash of each
    // token, the feed it opens and the filter it is bound to.
    r#"
    CREATE TABLE feed_tokens (
        id        INTEGER PRIMARY KEY AUTOINCREMENT, -- what `feed list` shows; never reused
        hash      BLOB NOT NULL UNIQUE,        -- blake3 of the token
        label     TEXT NOT NULL,
        scope     TEXT NOT NULL CHECK (scope IN ('entries', 'events')),
        filter    TEXT NOT NULL,               -- the resolved filter as a query string
        created   INTEGER NOT NULL,            -- unix ms
        last_used INTEGER,                     -- unix ms, to the minute
        revoked   INTEGER                      -- unix ms
    ) STRICT;
    "#,
    // 8: reaching members: how each peer was last reached, and the signed
    // address records members share (`crate::net::addrs`), so that a node
    // whose bootstrap is down finds any member it has heard of.
    r#"
    ALTER TABLE peers ADD COLUMN reach TEXT;   -- direct, relayed, hole-punched
    CREATE TABLE addresses (
        node     TEXT PRIMARY KEY,             -- PeerId the record is signed by
        seq      INTEGER NOT NULL,             -- the record's own sequence number
        record   BLOB NOT NULL,                -- the signed envelope, as received
        received INTEGER NOT NULL              -- unix ms
    ) STRICT;
    "#,
    // 9: the files a learning entry or project uses are indexed as terms
    // ('file', hash), so the daemon reads only the entries that have files;
    // those stored before are indexed by `index::backfill_file_terms` when
    // the store is next opened (this key says it is owed until it is done).
    r#"
    INSERT OR REPLACE INTO meta (key, value) VALUES ('backfill.file_terms', '1');
    "#,
    // 10: a change's or tombstone's arrival number is never handed out
    // again. A running daemon finds what other processes stored by the
    // numbers above the last it looked at; an erasure deletes the erased
    // entry's changes, often the newest, and SQLite numbered the next
    // change after the highest left, so what was published next went
    // unnoticed (never announced or offered) until the daemon restarted;
    // likewise a tombstone after a dropped one (a refused erasure).
    // AUTOINCREMENT numbers after the highest ever used; the copied rows
    // keep theirs.
    r#"
    CREATE TABLE changes_new (
        seq      INTEGER PRIMARY KEY AUTOINCREMENT, -- arrival order, never reused
        doc      BLOB NOT NULL,
        hash     BLOB NOT NULL,
        bytes    BLOB NOT NULL,
        signer   BLOB NOT NULL,
        sig      BLOB NOT NULL,
        received INTEGER NOT NULL,
        UNIQUE (doc, hash)
    ) STRICT;
    INSERT INTO changes_new (seq, doc, hash, bytes, signer, sig, received)
        SELECT seq, doc, hash, bytes, signer, sig, received FROM changes ORDER BY seq;
    DROP TABLE changes;
    ALTER TABLE changes_new RENAME TO changes;
    CREATE INDEX changes_by_doc ON changes (doc, seq);
    CREATE TABLE tombstones_new (
        n          INTEGER PRIMARY KEY AUTOINCREMENT, -- arrival order, never reused
        doc        BLOB NOT NULL UNIQUE,
        signer     BLOB NOT NULL,
        sig        BLOB NOT NULL,
        at         INTEGER NOT NULL,
        reason     TEXT NOT NULL,
        owner      TEXT NOT NULL DEFAULT '',
        visibility TEXT NOT NULL DEFAULT '',
        verified   INTEGER NOT NULL DEFAULT 0
    ) STRICT;
    INSERT INTO tombstones_new (n, doc, signer, sig, at, reason, owner, visibility, verified)
        SELECT n, doc, signer, sig, at, reason, owner, visibility, verified FROM tombstones ORDER BY n;
    DROP TABLE tombstones;
    ALTER TABLE tombstones_new RENAME TO tombstones;
    "#,
];

/// Brings `conn` up to the latest schema. Returns the version found.
pub fn migrate(conn: &mut Connection) -> Result<usize, super::StoreError> {
    let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if found as usize > MIGRATIONS.len() {
        return Err(super::StoreError::TooNew {
            found: found as usize,
            supported: MIGRATIONS.len(),
        });
    }
    // Re-read the version inside each write transaction: another process
    // may be migrating the same file at the same moment.
    loop {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let at: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
        let Some(sql) = MIGRATIONS.get(at as usize) else {
            break;
        };
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", at + 1)?;
        tx.commit()?;
        tracing::debug!(version = at + 1, "schema migrated");
    }
    Ok(found as usize)
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::{MIGRATIONS, migrate};

    fn add_change(conn: &Connection, doc: u8, hash: u8) -> i64 {
        conn.execute(
            "INSERT INTO changes (doc, hash, bytes, signer, sig, received)
             VALUES (?1, ?2, x'00', x'00', x'00', 0)",
            [vec![doc; 16], vec![hash; 32]],
        )
        .unwrap();
        conn.last_insert_rowid()
    }

    /// A store made before version 10 keeps every change with its
    /// arrival number, and from then on a number is never handed out
    /// again, even after the newest changes are erased.
    #[test]
    fn changes_keep_their_numbers_and_are_never_numbered_again() {
        let mut conn = Connection::open_in_memory().unwrap();
        let tx = conn.transaction().unwrap();
        for sql in &MIGRATIONS[..9] {
            tx.execute_batch(sql).unwrap();
        }
        tx.pragma_update(None, "user_version", 9).unwrap();
        tx.commit().unwrap();
        for i in 1..=3 {
            add_change(&conn, 1, i);
        }
        // Before: the highest number is handed out again once deleted.
        conn.execute("DELETE FROM changes WHERE seq = 3", [])
            .unwrap();
        assert_eq!(add_change(&conn, 2, 1), 3);

        assert_eq!(migrate(&mut conn).unwrap(), 9);
        let kept: Vec<(i64, Vec<u8>)> = conn
            .prepare("SELECT seq, hash FROM changes ORDER BY seq")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            kept,
            vec![(1, vec![1; 32]), (2, vec![2; 32]), (3, vec![1; 32])]
        );
        conn.execute("DELETE FROM changes WHERE seq = 3", [])
            .unwrap();
        assert_eq!(add_change(&conn, 3, 1), 4, "a deleted number came back");
        conn.execute("DELETE FROM changes WHERE doc = ?1", [vec![3u8; 16]])
            .unwrap();
        assert_eq!(add_change(&conn, 4, 1), 5);
    }

    /// Tombstones are numbered the same way: one stored after the newest
    /// was dropped (an erasure refused once its entry arrived) is numbered
    /// after it.
    #[test]
    fn tombstones_are_never_numbered_again() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        let put = |doc: u8| -> i64 {
            conn.execute(
                "INSERT OR REPLACE INTO tombstones (doc, signer, sig, at, reason)
                 VALUES (?1, x'00', x'00', 0, '')",
                [vec![doc; 16]],
            )
            .unwrap();
            conn.query_row(
                "SELECT n FROM tombstones WHERE doc = ?1",
                [vec![doc; 16]],
                |r| r.get(0),
            )
            .unwrap()
        };
        assert_eq!(put(1), 1);
        assert_eq!(put(2), 2);
        conn.execute("DELETE FROM tombstones WHERE doc = ?1", [vec![2u8; 16]])
            .unwrap();
        assert_eq!(put(3), 3, "a dropped tombstone's number came back");
        assert_eq!(put(1), 4, "a replaced tombstone keeps an old number");
    }
}
