//! Keeps one document's derived rows (`docs`, `terms`, `fts`, `nodes`) in
//! step with its merged state, inside the writer's transaction.
//!
//! A document that does not read as a valid entry (a peer sent a change
//! that breaks it) keeps its changes and heads, so sync still works, but is
//! flagged with the problem and left out of lists and search. It is never a
//! crash.

use automerge::{Automerge, ChangeHash};
use autosurgeon::ReadDoc;
use convene_model::{
    Attachment, Body, DocumentId, Entry, Header, RootOnce, SearchText, Vocabularies,
};
use rusqlite::{Connection, params};

use super::StoreError;

/// The `terms` field under which an entry's files are indexed, by hash.
pub const FILE_TERM: &str = "file";

/// `meta` key set by schema migration 9: entries stored before it still
/// owe their [`FILE_TERM`] rows, written by [`backfill_file_terms`].
pub(super) const FILE_TERMS_OWED: &str = "backfill.file_terms";

fn files(attachments: &[Attachment]) -> impl Iterator<Item = (&'static str, String)> + '_ {
    attachments.iter().map(|a| (FILE_TERM, a.hash.clone()))
}

/// Writes the [`FILE_TERM`] rows of the learning entries and projects
/// stored before schema 9 (read once from their snapshots), in one write
/// transaction, if that is still owed: a crash before the commit leaves it
/// owed, and a second process opening the store at the same moment finds
/// it done.
pub(super) fn backfill_file_terms(conn: &mut Connection) -> Result<(), StoreError> {
    use rusqlite::OptionalExtension;
    let owed = |c: &Connection| -> Result<bool, rusqlite::Error> {
        Ok(c.query_row(
            "SELECT 1 FROM meta WHERE key = ?1",
            [FILE_TERMS_OWED],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
    };
    if !owed(conn)? {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    if owed(&tx)? {
        let count: i64 = tx.query_row(
            "SELECT count(*) FROM docs WHERE kind IN ('learning', 'project') AND length(snapshot) > 0",
            [],
            |r| r.get(0),
        )?;
        if count >= 1000 {
            tracing::info!(
                entries = count,
                "noting which entries have files (once, after an upgrade: about half a millisecond per entry)"
            );
        }
        // One snapshot in memory at a time, however many entries there
        // are (collecting them first held every snapshot at once).
        let mut select = tx.prepare(
            "SELECT n, doc, snapshot FROM docs
             WHERE kind IN ('learning', 'project') AND length(snapshot) > 0",
        )?;
        let mut insert =
            tx.prepare("INSERT OR IGNORE INTO terms (field, value, n) VALUES (?1, ?2, ?3)")?;
        let mut rows = select.query([])?;
        while let Some(row) = rows.next()? {
            let n: i64 = row.get(0)?;
            let doc: Vec<u8> = row.get(1)?;
            let doc = DocumentId::from_slice(&doc);
            let snapshot = row.get_ref(2)?.as_blob().map_err(rusqlite::Error::from)?;
            let state = Automerge::load(snapshot);
            let (Some(doc), Ok(state)) = (doc, state) else {
                continue;
            };
            let Ok(entry) = Entry::from_doc(doc, &state) else {
                continue;
            };
            for (field, hash) in files(entry.body.attachments()) {
                insert.execute(params![field, hash, n])?;
            }
        }
        drop(rows);
        drop(select);
        drop(insert);
        tx.execute("DELETE FROM meta WHERE key = ?1", [FILE_TERMS_OWED])?;
    }
    tx.commit()?;
    Ok(())
}

/// The outcome of indexing one document.
#[derive(Debug, Clone)]
pub struct Indexed {
    /// The entry, normalised, when the document is valid.
    pub entry: Option<Entry>,
    /// Why the document is not a valid entry.
    pub problem: Option<String>,
    /// blake3(doc ‖ sorted heads): what sync compares.
    pub digest: [u8; 32],
}

/// Sorted heads, concatenated, and their digest.
pub fn heads_and_digest(doc: DocumentId, mut heads: Vec<ChangeHash>) -> (Vec<u8>, [u8; 32]) {
    heads.sort();
    let mut bytes = Vec::with_capacity(heads.len() * 32);
    for h in &heads {
        bytes.extend_from_slice(&h.0);
    }
    let mut hasher = blake3::Hasher::new();
    hasher.update(doc.as_bytes());
    hasher.update(&bytes);
    (bytes, *hasher.finalize().as_bytes())
}

fn read_entry<D: ReadDoc>(
    doc: DocumentId,
    root: &D,
    vocab: &Vocabularies,
) -> Result<Entry, String> {
    let mut entry = Entry::from_root(doc, root).map_err(|e| e.to_string())?;
    entry.body.check(vocab).map_err(|e| e.to_string())?;
    Ok(entry)
}

/// The `(field, value)` pairs an entry is listed under ([`terms`]).
type Terms = Vec<(&'static str, String)>;

/// What a document's rows say, worked out from its state alone (no
/// database), so that it can be done on any thread before the writer
/// needs it: its heads, digest and snapshot, and the entry it reads as.
/// It names the document it was worked out for, so its rows can only be
/// written as that document's.
pub(crate) struct Derived {
    doc: DocumentId,
    heads: Vec<u8>,
    digest: [u8; 32],
    snapshot: Vec<u8>,
    /// The entry it reads as, with its index terms and search text; or
    /// why it is not one.
    parsed: Result<(Entry, Terms, SearchText), String>,
    /// kind, owner, visibility, status, title, created, updated.
    row: (&'static str, String, String, &'static str, String, i64, i64),
    problem: Option<String>,
}

impl std::fmt::Debug for Derived {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Derived")
            .field("digest", &self.digest)
            .field("snapshot", &self.snapshot.len())
            .finish()
    }
}

impl Derived {
    /// The document these rows are of.
    pub fn doc(&self) -> DocumentId {
        self.doc
    }

    /// Everything it would write but the snapshot, spelled out (for tests
    /// comparing two ways of working it out).
    #[cfg(test)]
    pub(crate) fn rows(&self) -> String {
        format!(
            "{:?} {:?} {:?} {:?} {:?} {:?}",
            self.doc, self.heads, self.digest, self.parsed, self.row, self.problem
        )
    }

    /// The snapshot it would write.
    #[cfg(test)]
    pub(crate) fn snapshot(&self) -> &[u8] {
        &self.snapshot
    }

    pub fn of(doc: DocumentId, state: &Automerge) -> Self {
        Self::of_saved(&RootOnce::new(state), doc, state.save())
    }

    /// [`Derived::of`] for a state read through `root` (a reader that
    /// answers the root map's keys without seeking them: a [`RootOnce`],
    /// or a new document's first state read from its first change, see
    /// [`crate::apply`]), whose saved form is `saved` (it must load as that
    /// state): it is the snapshot, not saved again. A new document's first
    /// state is such a form (its first change laid out, not compressed);
    /// storing that form as it is saves automerge's encoding and `DEFLATE`
    /// of the document (about 5% of a catch-up's CPU) for about 60% more
    /// snapshot bytes, until the document's next change saves it
    /// compressed.
    pub fn of_saved<D: ReadDoc>(root: &D, doc: DocumentId, saved: Vec<u8>) -> Self {
        let (heads, digest) = heads_and_digest(doc, root.get_heads());
        let snapshot = saved;
        // The charter's vocabularies replace the defaults once communities exist.
        let vocab = Vocabularies::standard();
        let parsed = read_entry(doc, root, vocab);
        // Read once, for a document that is not an entry this version
        // can show.
        let header = parsed
            .is_err()
            .then(|| autosurgeon::hydrate::<_, Header>(root).ok())
            .flatten();
        let row = match (&parsed, &header) {
            (Ok(e), _) => (
                e.meta.kind.as_str(),
                e.meta.owner.to_string(),
                e.meta.visibility.to_string(),
                e.meta.status.as_str(),
                e.body.title().to_string(),
                e.meta.created.millis(),
                e.meta.updated.millis(),
            ),
            // Not an entry this version can show (a kind or field a newer
            // Convene made, or a body that does not check here): it stays
            // out of every list (no kind), but what it says about its
            // owner, audience and status still decides who it is passed on
            // to, so a newer kind reaches the members that may see it
            // through nodes that cannot show it.
            (Err(_), Some(h)) => (
                "",
                h.owner.to_string(),
                h.visibility.to_string(),
                h.status.as_str(),
                String::new(),
                h.created.millis(),
                h.updated.millis(),
            ),
            (Err(_), None) => ("", String::new(), String::new(), "", String::new(), 0, 0),
        };
        let problem = parsed.as_ref().err().map(|e| match &header {
            Some(h) if h.known_kind().is_none() => format!(
                "a {:?}, a kind this version of Convene does not know (a newer one made it): kept and passed on, not shown",
                h.kind
            ),
            _ => e.clone(),
        });
        let parsed = parsed.map(|e| {
            let (terms, text) = (terms(&e.body), e.body.search_text(vocab));
            (e, terms, text)
        });
        Self {
            doc,
            heads,
            digest,
            snapshot,
            parsed,
            row,
            problem,
        }
    }
}

/// Writes the rows of the document `d` was worked out for, as it says.
pub(super) fn write(conn: &Connection, d: Derived) -> Result<Indexed, StoreError> {
    let Derived {
        doc,
        heads,
        digest,
        snapshot,
        parsed,
        row: (kind, owner, visibility, status, title, created, updated),
        problem,
    } = d;
    let id = doc.to_string();
    if let Some(p) = &problem {
        tracing::warn!(doc = %id, problem = %p, "document is not a valid entry; kept but not indexed");
    }
    let n: i64 = conn
        .prepare_cached(
            "INSERT INTO docs (doc, id, kind, owner, visibility, status, title, created, updated,
                               heads, digest, snapshot, problem)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
             ON CONFLICT (doc) DO UPDATE SET
                kind = excluded.kind, owner = excluded.owner, visibility = excluded.visibility,
                status = excluded.status, title = excluded.title, created = excluded.created,
                updated = excluded.updated, heads = excluded.heads, digest = excluded.digest,
                snapshot = excluded.snapshot, problem = excluded.problem
             RETURNING n",
        )?
        .query_row(
            params![
                doc.as_bytes().as_slice(),
                id,
                kind,
                owner,
                visibility,
                status,
                title,
                created,
                updated,
                heads,
                digest.as_slice(),
                snapshot,
                problem
            ],
            |r| r.get(0),
        )?;
    conn.prepare_cached("DELETE FROM terms WHERE n = ?1")?
        .execute([n])?;
    conn.prepare_cached("DELETE FROM fts WHERE rowid = ?1")?
        .execute([n])?;
    let entry = match parsed {
        Ok((e, terms, text)) => {
            let mut term = conn.prepare_cached(
                "INSERT OR IGNORE INTO terms (field, value, n) VALUES (?1, ?2, ?3)",
            )?;
            for (field, value) in terms {
                term.execute(params![field, value, n])?;
            }
            conn.prepare_cached(
                "INSERT INTO fts (rowid, title, summary, body, tags, names) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![n, text.title, text.summary, text.body, text.tags, text.names])?;
            if let Body::Organisation(o) = &e.body {
                conn.prepare_cached("DELETE FROM nodes WHERE org = ?1")?
                    .execute([&id])?;
                let mut node =
                    conn.prepare_cached("INSERT OR IGNORE INTO nodes (node, org) VALUES (?1, ?2)")?;
                for peer in &o.nodes {
                    node.execute([peer, &id])?;
                }
            }
            Some(e)
        }
        Err(_) => None,
    };
    Ok(Indexed {
        entry,
        problem,
        digest,
    })
}

/// The `(field, value)` pairs lists filter on, and the files an entry
/// uses (`file`, by hash), so that the daemon reads only the entries that
/// have files to learn which ([`FILE_TERM`]).
fn terms(body: &Body) -> Terms {
    let mut out = Terms::new();
    out.extend(body.tags().iter().map(|t| ("tag", t.to_lowercase())));
    out.extend(body.priorities().iter().map(|t| ("priority", t.clone())));
    out.extend(body.methods().iter().map(|t| ("method", t.clone())));
    out.extend(files(body.attachments()));
    if !body.place().is_empty() {
        out.push(("place", body.place().to_lowercase()));
    }
    match body {
        Body::Learning(l) => {
            out.extend(l.themes.iter().map(|t| ("theme", t.clone())));
            out.extend(l.goals.iter().map(|t| ("goal", t.clone())));
            out.extend(l.level.iter().map(|t| ("level", t.clone())));
        }
        Body::Project(p) => {
            out.extend(p.themes.iter().map(|t| ("theme", t.clone())));
            out.extend(p.goals.iter().map(|t| ("goal", t.clone())));
            out.extend(p.level.iter().map(|t| ("level", t.clone())));
            out.extend(p.stage.iter().map(|t| ("stage", t.clone())));
        }
        Body::Contact(c) => {
            out.extend(c.sector.iter().map(|t| ("sector", t.clone())));
            out.extend(c.expertise.iter().map(|t| ("skill", t.clone())));
        }
        Body::Organisation(o) => out.push(("sector", o.sector.clone())),
        // Links between documents: a thread's messages, the answers to an
        // event or idea, an idea's round (looked up by `terms`).
        Body::Message(m) => {
            out.push(("about", m.about.clone()));
            out.extend(m.reply_to.iter().map(|r| ("reply_to", r.clone())));
        }
        Body::Response(r) => {
            out.push(("to", r.to.clone()));
            out.push(("answer", r.answer.to_string()));
        }
        Body::Idea(i) => out.extend(i.round.iter().map(|r| ("round", r.clone()))),
        Body::Charter(_) | Body::Join(_) | Body::Event(_) | Body::Round(_) => {}
    }
    out
}
