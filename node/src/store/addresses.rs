//! The signed address records of members ([`crate::net::addrs`]), kept so
//! that a node that restarts while its bootstrap is down can still reach
//! any member it has heard of. Only records of current members are kept
//! (the daemon checks before it writes), one per node, the newest by the
//! record's own sequence number, and the table is bounded
//! ([`Store::prune_address_records`]). Beside them, the audiences of
//! restricted entries ([`Store::restricted_audiences`]): the members a
//! node must reach directly, because no one else may carry those entries.

use rusqlite::params;

use super::{Store, StoreError};

impl Store {
    /// Keeps `record` (signed by `node`, sequence number `seq`) unless one
    /// with a sequence number as high is already kept; whether it was.
    pub fn put_address_record(
        &self,
        node: &str,
        seq: u64,
        record: &[u8],
        now: i64,
    ) -> Result<bool, StoreError> {
        // SQLite's integers are signed: a sequence number past i64 is kept
        // as the largest (a node's own numbers only order its own records).
        let seq = i64::try_from(seq).unwrap_or(i64::MAX);
        let n = self
            .conn()
            .prepare_cached(
                "INSERT INTO addresses (node, seq, record, received) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (node) DO UPDATE SET seq = excluded.seq, record = excluded.record,
                received = excluded.received
             WHERE excluded.seq > addresses.seq",
            )?
            .execute(params![node, seq, record, now])?;
        Ok(n == 1)
    }

    /// Every kept record, most recently received first: `(node, record)`.
    pub fn address_records(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let mut stmt = self
            .conn()
            .prepare_cached("SELECT node, record FROM addresses ORDER BY received DESC")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Forgets `node`'s record (it is no longer a member).
    pub fn forget_address_record(&self, node: &str) -> Result<(), StoreError> {
        self.conn()
            .execute("DELETE FROM addresses WHERE node = ?1", [node])?;
        Ok(())
    }

    /// Keeps the `keep` most recently received records; how many went.
    pub fn prune_address_records(&self, keep: usize) -> Result<usize, StoreError> {
        let n = self.conn().execute(
            "DELETE FROM addresses WHERE node NOT IN (
                SELECT node FROM addresses ORDER BY received DESC LIMIT ?1)",
            [keep as i64],
        )?;
        Ok(n)
    }

    /// Who published entries here are for, when not the whole community:
    /// distinct `(owner organisation, visibility)` of every published
    /// document visible to some organisations only (drafts never travel).
    pub fn restricted_audiences(&self) -> Result<Vec<(String, String)>, StoreError> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT DISTINCT owner, visibility FROM docs
             WHERE visibility != 'community' AND status != 'draft' AND owner != ''",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
