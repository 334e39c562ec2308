//! Similar work: given a draft (or an entry already held), the entries this
//! node holds that look like the same work, each with why it matches.
//!
//! # How a draft is matched
//!
//! 1. **Words.** The draft's title, summary and body (the text the search
//!    index holds for an entry of its kind) and its free tags are cut into
//!    words; stop words, short words and repeats go. Each word's document
//!    frequency among the candidates (published learning, projects and
//!    ideas) is read from the `fts` table with one `MATCH` per word, so
//!    matching uses the index's own tokenizer (Porter stems: "delays"
//!    finds "delay"). Words no candidate holds are dropped; the 40 rarest
//!    are kept.
//! 2. **BM25.** Those words, OR-ed, are one FTS5 query ranked by `bm25`
//!    (title weighted 10, summary 4, body 1, tags 3, names 1), the best
//!    100 kept.
//! 3. **Vocabularies.** The draft's priorities, methods, quality themes,
//!    place and tags are looked up in the `terms` table; every candidate
//!    sharing one joins the pool.
//! 4. **Score** (0 to 1): 0.6 × its BM25 relevance over the best one's
//!    (times the best one's word share), 0.35 × the share of the draft's
//!    words (weighted by rarity, IDF; words no entry holds count too) it
//!    holds, 0.05 × the share of the draft's vocabulary values it shares,
//!    each weighted by field (a shared tag says more than a shared
//!    quality theme) and by rarity against a value held by one entry
//!    only (so sharing a broad priority alone is worth little). A part
//!    the draft has nothing for (no vocabulary chosen yet) is left out and
//!    the rest scaled up.
//!
//! The first part ranks by what FTS5 already does well; the two shares
//! keep the score absolute (the best of a weak field stays weak), so
//! [`SHOW_AT`] can decide whether a hint is worth showing after a publish.
//! The weights were chosen on the labelled set ([`eval`], figures in
//! `docs/similar.md`): there, words decide almost everything, and every
//! vocabulary weight above a tie-breaker's moved entries that merely
//! share a priority above the right one. So the vocabularies break ties
//! and give the reasons people read; a draft with no words yet (only
//! priorities and tags) is matched on them alone.

//! # What is never shown
//!
//! Only valid, published learning entries, projects and ideas: never
//! contacts (personal data), organisations, charters, join claims, drafts
//! (they have not been shared, not even with the rest of this node's
//! community), retracted entries, or the draft's own entry. A node holds
//! only what it may see, and everything it holds may be seen by its
//! organisation, so no further visibility check is needed here.
//!
//! `words` cuts a draft into the words worth matching (stop words, stems);
//! [`eval`] measures the ranking on a labelled set of pairs.

pub mod eval;
mod words;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use convene_model::{Body, DocumentId, Kind, Vocabularies};
use rusqlite::OptionalExtension;

use crate::node::Node;
use crate::store::{Listed, Store, StoreError};
use words::{quoted, words, words_of};

/// The kinds that are matched (as the `docs.kind` column spells them);
/// `idea` counts as soon as this version indexes ideas.
pub const KINDS: [&str; 3] = ["learning", "project", "idea"];

/// The score from which similar work is worth a hint after a publish
/// (with at least two distinctive words in common: one shared word is a
/// coincidence as often as not).
pub const SHOW_AT: f64 = 0.3;

/// Words kept for the BM25 query at most (the rarest).
const MAX_QUERY_WORDS: usize = 40;
/// Distinct words of a draft looked up at most (title first).
const MAX_WORDS: usize = 120;
/// Candidates read from the BM25 query.
const BM25_CANDIDATES: usize = 100;
/// How many shared words a reason names.
const WORDS_SHOWN: usize = 5;

/// Why a draft cannot be matched.
#[derive(Debug, thiserror::Error)]
pub enum SimilarError {
    #[error(
        "the draft has nothing to match: give a title, a summary or some priorities, methods or tags"
    )]
    Empty,
    #[error("similar work is found for learning entries, projects and ideas; {id} is a {kind}")]
    NotMatchable { id: DocumentId, kind: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Node(#[from] crate::NodeError),
}

impl From<rusqlite::Error> for SimilarError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Store(e.into())
    }
}

/// What is matched: the words and vocabulary values of a draft or entry.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Draft {
    pub title: String,
    /// Summary, body and the other prose the index holds for the kind.
    pub text: String,
    /// Free tags.
    pub tags: Vec<String>,
    /// Priority slugs.
    pub priorities: Vec<String>,
    /// Method slugs.
    pub methods: Vec<String>,
    /// Quality theme slugs.
    pub themes: Vec<String>,
    pub place: String,
    /// The entry this draft is (left out of its own results).
    pub exclude: Option<DocumentId>,
}

impl Draft {
    /// The draft a body describes (validate it first, so vocabulary values
    /// are slugs).
    pub fn from_body(body: &Body, vocab: &Vocabularies) -> Self {
        let text = body.search_text(vocab);
        let themes = match body {
            Body::Learning(l) => l.themes.clone(),
            Body::Project(p) => p.themes.clone(),
            _ => Vec::new(),
        };
        Self {
            title: text.title,
            text: [text.summary, text.body].join("\n"),
            tags: body.tags().to_vec(),
            priorities: body.priorities().to_vec(),
            methods: body.methods().to_vec(),
            themes,
            place: body.place().to_string(),
            exclude: None,
        }
    }

    /// The draft of an entry this node holds, read from its index rows.
    pub fn of_entry(store: &Store, id: DocumentId) -> Result<Self, SimilarError> {
        let conn = store.conn();
        let row: Option<(i64, String)> = conn
            .prepare_cached("SELECT n, kind FROM docs WHERE doc = ?1")?
            .query_row([id.as_bytes().as_slice()], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let Some((n, kind)) = row else {
            return Err(crate::NodeError::UnknownId(id.to_string()).into());
        };
        if !KINDS.contains(&kind.as_str()) {
            let kind = if kind.is_empty() {
                "document that is not a valid entry".to_string()
            } else {
                kind
            };
            return Err(SimilarError::NotMatchable { id, kind });
        }
        let (title, summary, body): (String, String, String) = conn
            .prepare_cached("SELECT title, summary, body FROM fts WHERE rowid = ?1")?
            .query_row([n], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?
            .unwrap_or_default();
        let mut draft = Self {
            title,
            text: [summary, body].join("\n"),
            exclude: Some(id),
            ..Self::default()
        };
        let mut stmt = conn.prepare_cached("SELECT field, value FROM terms WHERE n = ?1")?;
        let rows = stmt.query_map([n], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?;
        for row in rows {
            let (field, value) = row?;
            match field.as_str() {
                "tag" => draft.tags.push(value),
                "priority" => draft.priorities.push(value),
                "method" => draft.methods.push(value),
                "theme" => draft.themes.push(value),
                "place" => draft.place = value,
                _ => {}
            }
        }
        // The index keeps places lowercased; the text has them as typed.
        draft.place = as_typed(&draft.text, &draft.place);
        Ok(draft)
    }

    /// Whether there is nothing to match on.
    pub fn is_empty(&self) -> bool {
        words(&self.title, &self.text, &self.tags).is_empty()
            && self.priorities.is_empty()
            && self.methods.is_empty()
            && self.themes.is_empty()
            && self.tags.iter().all(|t| t.trim().is_empty())
            && self.place.trim().is_empty()
    }

    /// `(field, value)` as the `terms` table holds them, with the weight a
    /// shared value of that field carries.
    fn terms(&self) -> Vec<(&'static str, String, f64)> {
        let mut out: Vec<(&'static str, String, f64)> = Vec::new();
        let mut push = |field, value: String, weight| {
            if !value.is_empty() && !out.iter().any(|(f, v, _)| *f == field && *v == value) {
                out.push((field, value, weight));
            }
        };
        for t in &self.tags {
            push("tag", t.trim().to_lowercase(), 1.5);
        }
        for p in &self.priorities {
            push("priority", p.clone(), 1.0);
        }
        for m in &self.methods {
            push("method", m.clone(), 1.0);
        }
        for t in &self.themes {
            push("theme", t.clone(), 0.5);
        }
        push("place", self.place.trim().to_lowercase(), 1.0);
        out
    }
}

/// Why an entry matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// A shared priority (its label).
    Priority(String),
    Method(String),
    Theme(String),
    Place(String),
    Tag(String),
    /// Distinctive words both hold, rarest first.
    Words(Vec<String>),
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Priority(p) => write!(f, "shares priority {p}"),
            Reason::Method(m) => write!(f, "same method: {m}"),
            Reason::Theme(t) => write!(f, "same quality theme: {t}"),
            Reason::Place(p) => write!(f, "same place: {p}"),
            Reason::Tag(t) => write!(f, "same tag: {t}"),
            Reason::Words(w) => write!(f, "words in common: {}", w.join(", ")),
        }
    }
}

/// One similar entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Similar {
    pub listed: Listed,
    /// 0 to 1; see the module docs.
    pub score: f64,
    /// The share of the draft's distinctive words (weighted by rarity)
    /// the entry holds, 0 to 1.
    pub word_share: f64,
    pub reasons: Vec<Reason>,
}

impl Similar {
    /// Whether it is close enough to point out unasked (after a publish).
    pub fn worth_showing(&self) -> bool {
        let words = self.reasons.iter().find_map(|r| match r {
            Reason::Words(w) => Some(w.len()),
            _ => None,
        });
        self.score >= SHOW_AT && words.unwrap_or(0) >= 2
    }

    /// As `similar --json` and `/api/similar` give it.
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = self.listed.to_json();
        // Three decimals, and never -0 (an empty sum of floats is -0.0).
        let round = |x: f64| (x * 1000.0).round() / 1000.0 + 0.0;
        v["score"] = serde_json::json!(round(self.score));
        v["word_share"] = serde_json::json!(round(self.word_share));
        v["reasons"] = serde_json::json!(
            self.reasons
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
        );
        let words = self.reasons.iter().find_map(|r| match r {
            Reason::Words(w) => Some(w.clone()),
            _ => None,
        });
        v["words"] = serde_json::json!(words.unwrap_or_default());
        v
    }
}

/// The entries most like `draft`, best first, at most `limit`.
pub fn similar(node: &Node, draft: &Draft, limit: usize) -> Result<Vec<Similar>, SimilarError> {
    find(node.store(), node.vocab(), draft, limit, Weights::FULL)
}

/// The entries most like the held entry `id` (which is left out).
pub fn similar_to(node: &Node, id: DocumentId, limit: usize) -> Result<Vec<Similar>, SimilarError> {
    let draft = Draft::of_entry(node.store(), id)?;
    similar(node, &draft, limit)
}

/// How much each part counts (the evaluation compares variants).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weights {
    pub bm25: f64,
    pub words: f64,
    pub vocab: f64,
}

impl Weights {
    /// What `similar` uses.
    pub const FULL: Self = Self {
        bm25: 0.6,
        words: 0.35,
        vocab: 0.05,
    };
    /// BM25 over the draft's words alone: the baseline.
    pub const BM25_ONLY: Self = Self {
        bm25: 1.0,
        words: 0.0,
        vocab: 0.0,
    };
}

/// A candidate's sums while scoring.
#[derive(Debug, Default)]
struct Candidate {
    bm25: f64,
    words: Vec<usize>,
    terms: Vec<usize>,
}

/// The ranking, with its weights open for the evaluation.
pub fn find(
    store: &Store,
    vocab: &Vocabularies,
    draft: &Draft,
    limit: usize,
    weights: Weights,
) -> Result<Vec<Similar>, SimilarError> {
    if draft.is_empty() {
        return Err(SimilarError::Empty);
    }
    let conn = store.conn();
    let exclude = draft.exclude.map(|d| d.as_bytes().to_vec());
    // Every matchable entry, by its index row number.
    let pool: HashSet<i64> = {
        let mut stmt = conn.prepare_cached(
            "SELECT n FROM docs WHERE kind IN ('learning', 'project', 'idea')
             AND status = 'published' AND problem IS NULL AND doc IS NOT ?1",
        )?;
        let rows = stmt.query_map([exclude.as_deref()], |r| r.get(0))?;
        rows.collect::<Result<_, _>>()?
    };
    if pool.is_empty() {
        return Ok(Vec::new());
    }
    let n_docs = pool.len() as f64;
    let idf = |df: usize| {
        let df = df as f64;
        (1.0 + (n_docs - df + 0.5) / (df + 0.5)).ln()
    };
    let mut candidates: HashMap<i64, Candidate> = HashMap::new();

    // Words: which candidates hold each, and how rare it is.
    let mut words: Vec<(String, f64)> = Vec::new();
    let unheld_weight;
    {
        let mut stmt = conn.prepare_cached("SELECT rowid FROM fts WHERE fts MATCH ?1")?;
        let mut held: Vec<(String, Vec<i64>)> = Vec::new();
        let mut unheld = 0usize;
        for w in words_of(draft).into_iter().take(MAX_WORDS) {
            let rows = stmt.query_map([quoted(&w)], |r| r.get::<_, i64>(0))?;
            let mut ns = Vec::new();
            for n in rows {
                let n = n?;
                if pool.contains(&n) {
                    ns.push(n);
                }
            }
            if ns.is_empty() {
                unheld += 1;
            } else {
                held.push((w, ns));
            }
        }
        held.sort_by(|a, b| a.1.len().cmp(&b.1.len()).then_with(|| a.0.cmp(&b.0)));
        held.truncate(MAX_QUERY_WORDS);
        for (i, (w, ns)) in held.iter().enumerate() {
            for n in ns {
                candidates.entry(*n).or_default().words.push(i);
            }
            words.push((w.clone(), idf(ns.len())));
        }
        // Words no entry holds count against every entry's share (as if
        // each were held by one entry; no more of them than held words,
        // so a long story full of names does not drown the rest).
        unheld_weight = unheld.min(held.len().max(3)) as f64 * idf(1);
    }
    if !words.is_empty() && weights.bm25 > 0.0 {
        let query = words
            .iter()
            .map(|(w, _)| quoted(w))
            .collect::<Vec<_>>()
            .join(" OR ");
        let mut stmt = conn.prepare_cached(
            "SELECT fts.rowid, bm25(fts, 10.0, 4.0, 1.0, 3.0, 1.0) AS rank
             FROM fts JOIN docs d ON d.n = fts.rowid
             WHERE fts MATCH ?1 AND d.kind IN ('learning', 'project', 'idea')
               AND d.status = 'published' AND d.problem IS NULL AND d.doc IS NOT ?2
             ORDER BY rank LIMIT ?3",
        )?;
        let rows = stmt.query_map(
            rusqlite::params![query, exclude.as_deref(), BM25_CANDIDATES as i64],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, f64>(1)?)),
        )?;
        for row in rows {
            let (n, rank) = row?;
            candidates.entry(n).or_default().bm25 = -rank;
        }
    }

    // Vocabulary values: which candidates share each.
    let draft_terms = draft.terms();
    // (field, value, weight × rarity as a share of the rarest possible).
    let mut terms: Vec<(&'static str, String, f64)> = Vec::new();
    let mut terms_most = 0.0;
    {
        let mut stmt =
            conn.prepare_cached("SELECT n FROM terms WHERE field = ?1 AND value = ?2")?;
        for (field, value, weight) in draft_terms {
            let rows = stmt.query_map([field, value.as_str()], |r| r.get::<_, i64>(0))?;
            let mut ns = Vec::new();
            for n in rows {
                let n = n?;
                if pool.contains(&n) {
                    ns.push(n);
                }
            }
            if ns.is_empty() {
                continue;
            }
            let i = terms.len();
            terms.push((field, value, weight * idf(ns.len()) / idf(1)));
            terms_most += weight;
            for n in ns {
                candidates.entry(n).or_default().terms.push(i);
            }
        }
    }

    let words_total: f64 = words.iter().map(|(_, w)| w).sum::<f64>() + unheld_weight;
    let share = |c: &Candidate| {
        if words_total > 0.0 {
            c.words.iter().map(|&i| words[i].1).sum::<f64>() / words_total
        } else {
            0.0
        }
    };
    // BM25 relevance over the best one's, scaled by the best one's word
    // share: the order is BM25's, the size says how good the best is.
    let (best_bm25, best_share) = candidates
        .values()
        .max_by(|a, b| a.bm25.total_cmp(&b.bm25))
        .map_or((0.0, 0.0), |c| (c.bm25, share(c)));
    // Against what the draft's values would weigh if each were held by
    // one entry only: sharing a broad priority alone is worth little.
    let terms_total = terms_most;
    // A part the draft gives nothing for does not count.
    let parts = [
        (weights.bm25, best_bm25 > 0.0),
        (weights.words, !words.is_empty()),
        (weights.vocab, terms_total > 0.0),
    ];
    let total_weight: f64 = parts.iter().filter(|(_, has)| *has).map(|(w, _)| w).sum();
    if total_weight <= 0.0 {
        return Ok(Vec::new());
    }
    let mut scored: Vec<(i64, f64)> = candidates
        .iter()
        .map(|(n, c)| {
            let mut s = 0.0;
            if best_bm25 > 0.0 {
                s += weights.bm25 * best_share * c.bm25 / best_bm25;
            }
            s += weights.words * share(c);
            if terms_total > 0.0 {
                s += weights.vocab * c.terms.iter().map(|&i| terms[i].2).sum::<f64>() / terms_total;
            }
            (*n, s / total_weight)
        })
        .filter(|(_, s)| *s > 0.0)
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    scored.truncate(limit);

    let mut out = Vec::with_capacity(scored.len());
    for (n, score) in scored {
        let Some(listed) = listed_by_n(store, n)? else {
            continue;
        };
        let c = &candidates[&n];
        let mut reasons = Vec::new();
        let mut by_field: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for &i in &c.terms {
            by_field
                .entry(terms[i].0)
                .or_default()
                .push(terms[i].1.as_str());
        }
        for (field, values) in by_field {
            for v in values {
                reasons.push(match field {
                    "priority" => Reason::Priority(vocab.priorities.label(v).to_string()),
                    "method" => Reason::Method(vocab.methods.label(v).to_string()),
                    "theme" => Reason::Theme(vocab.themes.label(v).to_string()),
                    "place" => Reason::Place(original_case(&draft.place, v)),
                    _ => Reason::Tag(v.to_string()),
                });
            }
        }
        reasons.sort_by_key(|r| match r {
            Reason::Priority(_) => 0,
            Reason::Method(_) => 1,
            Reason::Place(_) => 2,
            Reason::Tag(_) => 3,
            Reason::Theme(_) => 4,
            Reason::Words(_) => 5,
        });
        let mut shared: Vec<&(String, f64)> = c.words.iter().map(|&i| &words[i]).collect();
        shared.sort_by(|a, b| b.1.total_cmp(&a.1));
        // The place has its own reason.
        let place = draft.place.to_lowercase();
        let shown: Vec<String> = shared
            .iter()
            .filter(|(w, _)| !place.split(|c: char| !c.is_alphanumeric()).any(|p| p == w))
            .take(WORDS_SHOWN)
            .map(|(w, _)| w.clone())
            .collect();
        if !shown.is_empty() {
            reasons.push(Reason::Words(shown));
        }
        let word_share = share(c);
        out.push(Similar {
            listed,
            score,
            word_share,
            reasons,
        });
    }
    Ok(out)
}

/// The list row of the entry at index row `n`.
fn listed_by_n(store: &Store, n: i64) -> Result<Option<Listed>, SimilarError> {
    let row = store
        .conn()
        .prepare_cached(
            "SELECT d.doc, d.kind, d.title, d.owner, o.title, d.visibility, d.status,
                    d.created, d.updated
             FROM docs d LEFT JOIN docs o ON o.id = d.owner AND o.kind = 'organisation'
             WHERE d.n = ?1",
        )?
        .query_row([n], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, String>(1)?,
                Listed {
                    id: DocumentId::from_bytes([0; 16]),
                    kind: Kind::Learning,
                    title: r.get(2)?,
                    owner: r.get(3)?,
                    owner_name: r.get(4)?,
                    visibility: r.get(5)?,
                    status: r.get(6)?,
                    created: r.get(7)?,
                    updated: r.get(8)?,
                },
            ))
        })
        .optional()?;
    let Some((doc, kind, mut listed)) = row else {
        return Ok(None);
    };
    // A kind this version cannot name is left out rather than guessed.
    let (Some(id), Ok(kind)) = (DocumentId::from_slice(&doc), kind.parse::<Kind>()) else {
        return Ok(None);
    };
    listed.id = id;
    listed.kind = kind;
    Ok(Some(listed))
}

/// `lower` as `text` spells it, when `text` holds it (else as it is).
fn as_typed(text: &str, lower: &str) -> String {
    if lower.is_empty() || !text.is_ascii() || !lower.is_ascii() {
        return lower.to_string();
    }
    match text.to_ascii_lowercase().rfind(lower) {
        Some(at) => text[at..at + lower.len()].to_string(),
        None => lower.to_string(),
    }
}

/// `value` (lowercased) as the draft spelled it, if it did.
fn original_case(typed: &str, value: &str) -> String {
    if typed.trim().to_lowercase() == value {
        typed.trim().to_string()
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_read_as_sentences() {
        assert_eq!(
            Reason::Priority("Discharge and safe transfers of care".into()).to_string(),
            "shares priority Discharge and safe transfers of care"
        );
        assert_eq!(
            Reason::Words(vec!["handover".into(), "ambulance".into()]).to_string(),
            "words in common: handover, ambulance"
        );
        assert_eq!(
            Reason::Method("Model for Improvement / PDSA".into()).to_string(),
            "same method: Model for Improvement / PDSA"
        );
    }
}
