//! Read-side queries: id prefixes, filtered lists and full-text search.

use convene_model::{DocumentId, Kind};
use rusqlite::types::Value;

use super::{DocDigest, Store, StoreError};

/// What an id prefix matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolve {
    One(DocumentId),
    None,
    /// Several ids start with the prefix (the first few are given).
    Many(Vec<String>),
}

/// Which entries a list shows. Empty fields do not filter.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub kind: Option<Kind>,
    /// Owner organisation id.
    pub owner: Option<String>,
    /// `(field, value)` pairs that must all be present, e.g. `("tag", "flow")`.
    /// `sector` also matches entries whose owner organisation is in it.
    pub terms: Vec<(String, String)>,
    /// Show retracted entries too.
    pub include_retracted: bool,
    pub limit: Option<usize>,
    /// Rows to skip before the first one returned (paging).
    pub offset: usize,
}

/// One row of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub id: DocumentId,
    pub kind: Kind,
    pub title: String,
    pub owner: String,
    /// The owner's name, when its profile is here.
    pub owner_name: Option<String>,
    pub visibility: String,
    pub status: String,
    pub created: i64,
    pub updated: i64,
}

/// One search result.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub listed: Listed,
    /// Matching text with the matched words in `[brackets]`.
    pub snippet: String,
    /// bm25 score: lower is better.
    pub rank: f64,
}

impl Listed {
    /// The row as `list --json` and `/api/entries` give it.
    pub fn to_json(&self) -> serde_json::Value {
        use convene_model::Timestamp;
        serde_json::json!({
            "id": self.id.to_string(),
            "kind": self.kind.as_str(),
            "title": self.title,
            "owner": self.owner,
            "owner_name": self.owner_name,
            "visibility": self.visibility,
            "status": self.status,
            "created": Timestamp(self.created).to_string(),
            "updated": Timestamp(self.updated).to_string(),
        })
    }
}

impl Hit {
    /// The row with its snippet and rank, as `search --json` gives it.
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = self.listed.to_json();
        v["snippet"] = serde_json::Value::String(self.snippet.clone());
        v["rank"] = serde_json::json!(self.rank);
        v
    }
}

const LISTED_COLUMNS: &str =
    "d.doc, d.kind, d.title, d.owner, o.title, d.visibility, d.status, d.created, d.updated";

fn listed(r: &rusqlite::Row<'_>) -> rusqlite::Result<Listed> {
    let doc: Vec<u8> = r.get(0)?;
    let kind: String = r.get(1)?;
    let conv = |i, e: String| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, e.into())
    };
    Ok(Listed {
        id: DocumentId::from_slice(&doc).ok_or_else(|| conv(0, "bad document id".into()))?,
        kind: kind
            .parse()
            .map_err(|e: convene_model::entry::UnknownKind| conv(1, e.to_string()))?,
        title: r.get(2)?,
        owner: r.get(3)?,
        owner_name: r.get(4)?,
        visibility: r.get(5)?,
        status: r.get(6)?,
        created: r.get(7)?,
        updated: r.get(8)?,
    })
}

/// Turns what a person typed into an FTS5 query: every word must match
/// (as a quoted string, so punctuation is never FTS syntax), and a word
/// ending in `*` matches as a prefix.
pub fn fts_query(input: &str) -> Option<String> {
    let words: Vec<String> = input
        .split_whitespace()
        .filter_map(|w| {
            let (word, prefix) = match w.strip_suffix('*') {
                Some(stem) => (stem, true),
                None => (w, false),
            };
            let word: String = word
                .chars()
                .filter(|c| c.is_alphanumeric() || *c == '-' || *c == '\'' || *c == '’')
                .collect();
            if word.is_empty() {
                return None;
            }
            let quoted = format!("\"{}\"", word.replace('"', "\"\""));
            Some(if prefix { quoted + "*" } else { quoted })
        })
        .collect();
    (!words.is_empty()).then(|| words.join(" "))
}

impl Store {
    /// Finds the one document whose printed id starts with `prefix`.
    pub fn resolve(&self, prefix: &str) -> Result<Resolve, StoreError> {
        if !DocumentId::is_prefix_syntax(prefix) {
            return Ok(Resolve::None);
        }
        let mut stmt = self.conn().prepare_cached(
            "SELECT doc, id FROM docs WHERE id GLOB ?1 || '*' ORDER BY id LIMIT 5",
        )?;
        let rows: Vec<(Vec<u8>, String)> = stmt
            .query_map([prefix], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        Ok(match rows.as_slice() {
            [] => Resolve::None,
            [(doc, _)] => DocumentId::from_slice(doc).map_or(Resolve::None, Resolve::One),
            many => Resolve::Many(many.iter().map(|(_, id)| id.clone()).collect()),
        })
    }

    /// Valid entries matching `filter`, most recently updated first.
    pub fn list(&self, filter: &Filter) -> Result<Vec<Listed>, StoreError> {
        let (mut sql, args) = Self::filtered(filter, LISTED_COLUMNS);
        sql += " ORDER BY d.updated DESC, d.id";
        if let Some(limit) = filter.limit {
            sql += &format!(" LIMIT {limit}");
        }
        if filter.offset > 0 {
            if filter.limit.is_none() {
                sql += " LIMIT -1";
            }
            sql += &format!(" OFFSET {}", filter.offset);
        }
        let mut stmt = self.conn().prepare(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(args), listed)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// How many entries match `filter`, whatever its limit and offset.
    pub fn count(&self, filter: &Filter) -> Result<usize, StoreError> {
        let (sql, args) = Self::filtered(filter, "count(*)");
        let n: i64 = self
            .conn()
            .prepare(&sql)?
            .query_row(rusqlite::params_from_iter(args), |r| r.get(0))?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    /// The `SELECT columns … WHERE …` of `filter`, without order or limit.
    fn filtered(filter: &Filter, columns: &str) -> (String, Vec<Value>) {
        let mut sql = format!(
            "SELECT {columns} FROM docs d LEFT JOIN docs o ON o.id = d.owner AND o.kind = 'organisation'
             WHERE d.kind != ''"
        );
        let mut args: Vec<Value> = Vec::new();
        if let Some(kind) = filter.kind {
            args.push(Value::Text(kind.as_str().into()));
            sql += &format!(" AND d.kind = ?{}", args.len());
        } else {
            // Join claims and answers (going, support) are bookkeeping, and
            // questions and replies are read in their entry's thread: none
            // is something people browse (`list message` still lists them).
            sql += " AND d.kind NOT IN ('join', 'response', 'message')";
        }
        if let Some(owner) = &filter.owner {
            args.push(Value::Text(owner.clone()));
            sql += &format!(" AND d.owner = ?{}", args.len());
        }
        if !filter.include_retracted {
            sql += " AND d.status != 'retracted'";
        }
        for (field, value) in &filter.terms {
            args.push(Value::Text(field.clone()));
            args.push(Value::Text(value.clone()));
            let (f, v) = (args.len() - 1, args.len());
            sql +=
                &format!(" AND (d.n IN (SELECT n FROM terms WHERE field = ?{f} AND value = ?{v})");
            // An entry's sector is its owner's: learning and projects say
            // nothing of it themselves.
            if field == "sector" {
                sql += &format!(
                    " OR o.n IN (SELECT n FROM terms WHERE field = ?{f} AND value = ?{v})"
                );
            }
            sql += ")";
        }
        (sql, args)
    }

    /// Documents with changes stored after `seq`, with their current
    /// digests and stored status (`draft`, `published`, `retracted`; ''
    /// while it is not a valid entry), and the highest `seq` now stored.
    /// Digest and status are read in the same statement, so a document's class in the
    /// sync catalogue never pairs one state's digest with another's status.
    pub fn catalogue_since(&self, seq: i64) -> Result<(Vec<(DocDigest, String)>, i64), StoreError> {
        let max: i64 = self
            .conn()
            .prepare_cached("SELECT coalesce(max(seq), 0) FROM changes")?
            .query_row([], |r| r.get(0))?;
        self.catalogue_between(seq, max)
    }

    /// As [`Store::catalogue_since`], for the changes stored after `seq`
    /// and up to `max`; returns `max`.
    pub fn catalogue_between(
        &self,
        seq: i64,
        max: i64,
    ) -> Result<(Vec<(DocDigest, String)>, i64), StoreError> {
        if max <= seq {
            return Ok((Vec::new(), max));
        }
        let mut stmt = self.conn().prepare_cached(
            "SELECT doc, digest, owner, visibility, status FROM docs WHERE doc IN
                (SELECT DISTINCT doc FROM changes WHERE seq > ?1 AND seq <= ?2)",
        )?;
        let rows = stmt.query_map([seq, max], |r| {
            let doc: Vec<u8> = r.get(0)?;
            let digest: Vec<u8> = r.get(1)?;
            Ok((doc, digest, r.get(2)?, r.get(3)?, r.get(4)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (doc, digest, owner, visibility, status) = row?;
            if let (Some(doc), Ok(digest)) = (DocumentId::from_slice(&doc), digest.try_into()) {
                let row = DocDigest {
                    doc,
                    digest,
                    owner,
                    visibility,
                };
                out.push((row, status));
            }
        }
        Ok((out, max))
    }

    /// A document's stored status (`None` if the node lacks it).
    pub fn status(&self, doc: DocumentId) -> Result<Option<String>, StoreError> {
        use rusqlite::OptionalExtension;
        Ok(self
            .conn()
            .prepare_cached("SELECT status FROM docs WHERE doc = ?1")?
            .query_row([doc.as_bytes().as_slice()], |r| r.get(0))
            .optional()?)
    }

    /// The documents that are drafts here (they never leave this node).
    pub fn drafts(&self) -> Result<std::collections::HashSet<DocumentId>, StoreError> {
        let mut stmt = self
            .conn()
            .prepare_cached("SELECT doc FROM docs WHERE status = 'draft'")?;
        let rows = stmt.query_map([], |r| r.get::<_, Vec<u8>>(0))?;
        let mut out = std::collections::HashSet::new();
        for doc in rows {
            out.extend(DocumentId::from_slice(&doc?));
        }
        Ok(out)
    }

    /// Full-text search over titles, summaries, bodies, tags and names,
    /// best match first. `None` when the query has no searchable word.
    pub fn search(&self, query: &str, limit: usize) -> Result<Option<Vec<Hit>>, StoreError> {
        self.search_from(query, 0, limit)
    }

    /// One page of a search: `limit` hits after the first `offset`.
    pub fn search_from(
        &self,
        query: &str,
        offset: usize,
        limit: usize,
    ) -> Result<Option<Vec<Hit>>, StoreError> {
        let Some(fts) = fts_query(query) else {
            return Ok(None);
        };
        let sql = format!(
            "SELECT {LISTED_COLUMNS}, snippet(fts, -1, '[', ']', '…', 12),
                    bm25(fts, 10.0, 4.0, 1.0, 3.0, 3.0) AS rank
             FROM fts JOIN docs d ON d.n = fts.rowid
             LEFT JOIN docs o ON o.id = d.owner AND o.kind = 'organisation'
             WHERE fts MATCH ?1 AND d.status != 'retracted'
             ORDER BY rank LIMIT ?2 OFFSET ?3"
        );
        let limit = i64::try_from(limit).unwrap_or(-1);
        let offset = i64::try_from(offset).unwrap_or(i64::MAX);
        let mut stmt = self.conn().prepare_cached(&sql)?;
        let rows = stmt.query_map(rusqlite::params![fts, limit, offset], |r| {
            Ok(Hit {
                listed: listed(r)?,
                snippet: r.get(9)?,
                rank: r.get(10)?,
            })
        })?;
        Ok(Some(rows.collect::<Result<_, _>>()?))
    }

    /// How many entries a search finds in all; `None` when the query has
    /// no searchable word.
    pub fn search_count(&self, query: &str) -> Result<Option<usize>, StoreError> {
        let Some(fts) = fts_query(query) else {
            return Ok(None);
        };
        let n: i64 = self
            .conn()
            .prepare_cached(
                "SELECT count(*) FROM fts JOIN docs d ON d.n = fts.rowid
             WHERE fts MATCH ?1 AND d.status != 'retracted'",
            )?
            .query_row([fts], |r| r.get(0))?;
        Ok(Some(usize::try_from(n).unwrap_or(0)))
    }
}

#[cfg(test)]
mod tests {
    use super::fts_query;

    #[test]
    fn queries_are_quoted_words() {
        assert_eq!(
            fts_query("call answering").unwrap(),
            "\"call\" \"answering\""
        );
        assert_eq!(fts_query("disch*").unwrap(), "\"disch\"*");
        assert_eq!(fts_query("NOT (x) \"a").unwrap(), "\"NOT\" \"x\" \"a\"");
        assert_eq!(fts_query(" ()* "), None);
    }
}
