//! What the daemon records about peers, so that other processes
//! (`convene status`, `convene peers`) can show it.
//!
//! Only peers that proved membership (or that this node dialled on
//! purpose) are recorded: a stranger's peer id costs it nothing to make,
//! so it must cost this node nothing on disk. The table is bounded too
//! (the daemon keeps it to a number with [`Store::prune_peers`]): the
//! peers seen longest ago make room.

use rusqlite::params;

use super::{Store, StoreError};

/// One peer as recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerRecord {
    pub node: String,
    pub address: Option<String>,
    pub connected: bool,
    pub last_seen: Option<i64>,
    pub last_sync: Option<i64>,
    pub changes_in: i64,
    pub changes_out: i64,
    pub rejected: i64,
    /// How it was last reached: `direct`, `relayed` or `hole-punched`.
    pub reach: Option<String>,
}

/// A change to a peer's record.
#[derive(Debug, Clone, Default)]
pub struct PeerUpdate<'a> {
    pub address: Option<&'a str>,
    pub connected: Option<bool>,
    pub synced: bool,
    pub changes_in: i64,
    pub changes_out: i64,
    pub rejected: i64,
    pub reach: Option<&'a str>,
}

impl Store {
    /// Records what happened with a peer at `now` (unix ms).
    pub fn update_peer(&self, node: &str, now: i64, u: &PeerUpdate<'_>) -> Result<(), StoreError> {
        self.conn().prepare_cached(
            "INSERT INTO peers (node, address, connected, last_seen, last_sync, changes_in, changes_out, rejected, reach)
             VALUES (?1, ?2, coalesce(?3, 0), ?4, CASE WHEN ?5 THEN ?4 END, ?6, ?7, ?8, ?9)
             ON CONFLICT (node) DO UPDATE SET
                address = coalesce(excluded.address, address),
                reach = coalesce(excluded.reach, reach),
                connected = coalesce(?3, connected),
                last_seen = excluded.last_seen,
                last_sync = CASE WHEN ?5 THEN excluded.last_seen ELSE last_sync END,
                changes_in = changes_in + excluded.changes_in,
                changes_out = changes_out + excluded.changes_out,
                rejected = rejected + excluded.rejected",
        )?.execute(
            params![
                node,
                u.address,
                u.connected,
                now,
                u.synced,
                u.changes_in,
                u.changes_out,
                u.rejected,
                u.reach
            ],
        )?;
        Ok(())
    }

    /// Records what happened with several peers at `now`, in one commit.
    pub fn update_peers(
        &self,
        now: i64,
        updates: &[(String, PeerUpdate<'_>)],
    ) -> Result<(), StoreError> {
        let tx = self.conn().unchecked_transaction()?;
        for (node, u) in updates {
            self.update_peer(node, now, u)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Marks every peer disconnected (the daemon is stopping or starting).
    pub fn disconnect_all_peers(&self) -> Result<(), StoreError> {
        self.conn().execute("UPDATE peers SET connected = 0", [])?;
        Ok(())
    }

    /// Removes a peer's record.
    pub fn forget_peer(&self, node: &str) -> Result<(), StoreError> {
        self.conn()
            .execute("DELETE FROM peers WHERE node = ?1", [node])?;
        Ok(())
    }

    /// Keeps the `keep` most recently seen peers (and every connected one);
    /// returns how many records were removed.
    pub fn prune_peers(&self, keep: usize) -> Result<usize, StoreError> {
        let n = self.conn().execute(
            "DELETE FROM peers WHERE connected = 0 AND node NOT IN (
                SELECT node FROM peers ORDER BY connected DESC, last_seen DESC LIMIT ?1)",
            [keep as i64],
        )?;
        Ok(n)
    }

    /// Every peer ever recorded, most recently seen first.
    pub fn peers(&self) -> Result<Vec<PeerRecord>, StoreError> {
        let mut stmt = self.conn().prepare(
            "SELECT node, address, connected, last_seen, last_sync, changes_in, changes_out, rejected, reach
             FROM peers ORDER BY last_seen DESC",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(PeerRecord {
                node: r.get(0)?,
                address: r.get(1)?,
                connected: r.get(2)?,
                last_seen: r.get(3)?,
                last_sync: r.get(4)?,
                changes_in: r.get(5)?,
                changes_out: r.get(6)?,
                rejected: r.get(7)?,
                reach: r.get(8)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [key, value],
        )?;
        Ok(())
    }

    /// Clears `key` if it still holds `value`; whether it did. One use of a
    /// one-time value, safe against two processes taking it at once.
    pub fn take_meta(&self, key: &str, value: &str) -> Result<bool, StoreError> {
        let n = self.conn().execute(
            "DELETE FROM meta WHERE key = ?1 AND value = ?2",
            [key, value],
        )?;
        Ok(n == 1)
    }
}
