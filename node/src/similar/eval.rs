//! Measuring similar work on a labelled set: a corpus of entries and, for
//! most of them, a draft of the same problem written differently, the way
//! another team would write it (`examples/similar/pairs.json` in the
//! repository).
//!
//! The corpus is published into a real node (SQLite, signed changes, the
//! normal publish path); each draft is then matched as a person's draft
//! would be, and the entries labelled relevant to it are looked for in the
//! results. The same run measures two baselines on the same node: BM25
//! over the draft's words alone (no vocabularies, no word shares), and the
//! search box as it is (every word of the draft's title must match).
//!
//! Figures, per draft then averaged: precision at 5 (relevant entries in
//! the first five, over five: with one relevant entry per draft it cannot
//! exceed 0.2, and the report gives that ceiling), hit rate at 5 (whether
//! a relevant entry is in the first five: recall at 5 when a draft has one
//! relevant entry), and mean reciprocal rank (1 / the rank of the first
//! relevant entry in the first 20, 0 if none).

use std::collections::{HashMap, HashSet};

use convene_model::{DocumentId, EntryInput, Kind};
use serde_json::Value;

use super::{Draft, Weights, find};
use crate::node::Node;

/// Results read per draft (for the reciprocal rank).
const DEPTH: usize = 20;

/// A labelled set that cannot be read or loaded.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("the labelled set is not valid: {0}")]
    Set(String),
    #[error("entry {key:?} of the labelled set: {error}")]
    Entry {
        key: String,
        error: crate::NodeError,
    },
    #[error(transparent)]
    Node(#[from] crate::NodeError),
    #[error(transparent)]
    Similar(#[from] super::SimilarError),
}

/// One ranker's figures over every draft.
#[derive(Debug, Clone, PartialEq)]
pub struct Figures {
    pub name: &'static str,
    pub drafts: usize,
    pub precision_at_5: f64,
    pub hit_rate_at_5: f64,
    pub mrr: f64,
    /// Mean time to match one draft, in milliseconds.
    pub millis: f64,
}

/// What one run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub corpus: usize,
    pub drafts: usize,
    /// The best precision at 5 possible with these labels.
    pub ceiling_at_5: f64,
    /// `similar` as shipped, then the baselines.
    pub rankers: Vec<Figures>,
}

impl Report {
    /// The figures of the ranker called `name`.
    pub fn figures(&self, name: &str) -> Option<&Figures> {
        self.rankers.iter().find(|f| f.name == name)
    }

    /// A plain-text table.
    pub fn table(&self) -> String {
        let mut s = format!(
            "{} entries, {} drafts; precision at 5 cannot exceed {:.3} with these labels\n",
            self.corpus, self.drafts, self.ceiling_at_5
        );
        s += &format!(
            "{:<38} {:>6} {:>6} {:>6} {:>9}\n",
            "ranker", "P@5", "hit@5", "MRR", "ms/draft"
        );
        for f in &self.rankers {
            s += &format!(
                "{:<38} {:>6.3} {:>6.3} {:>6.3} {:>9.2}\n",
                f.name, f.precision_at_5, f.hit_rate_at_5, f.mrr, f.millis
            );
        }
        s
    }
}

/// The ranker names in a report.
pub const SIMILAR: &str = "similar (BM25 + vocabularies)";
pub const BM25_WORDS: &str = "BM25 on the draft's words alone";
pub const SEARCH_TITLE: &str = "search box with the draft's title";
pub const SIMILAR_EARLY: &str = "similar, title and vocabularies only";
pub const BM25_WORDS_EARLY: &str = "BM25 on the title's words alone";

struct Item {
    key: String,
    kind: Kind,
    relevant: Vec<String>,
    input: EntryInput,
}

fn items(set: &Value, list: &str) -> Result<Vec<Item>, EvalError> {
    let bad = |m: String| EvalError::Set(m);
    let array = set
        .get(list)
        .and_then(Value::as_array)
        .ok_or_else(|| bad(format!("no {list:?} array")))?;
    let mut out = Vec::new();
    for (i, v) in array.iter().enumerate() {
        let mut fields = v
            .as_object()
            .ok_or_else(|| bad(format!("{list}[{i}] is not an object")))?
            .clone();
        let key = match fields.remove("key") {
            Some(Value::String(k)) => k,
            _ => return Err(bad(format!("{list}[{i}] has no \"key\""))),
        };
        let relevant = match fields.remove("relevant") {
            None => Vec::new(),
            Some(Value::Array(a)) => a
                .iter()
                .map(|k| k.as_str().map(str::to_string))
                .collect::<Option<_>>()
                .ok_or_else(|| bad(format!("{key}: \"relevant\" must list keys")))?,
            Some(_) => return Err(bad(format!("{key}: \"relevant\" must be an array"))),
        };
        let kind: Kind = fields
            .get("kind")
            .and_then(Value::as_str)
            .and_then(|k| k.parse().ok())
            .ok_or_else(|| bad(format!("{key}: no valid \"kind\"")))?;
        let input =
            EntryInput::from_json(kind, Value::Object(fields)).map_err(|e| EvalError::Entry {
                key: key.clone(),
                error: e.into(),
            })?;
        out.push(Item {
            key,
            kind,
            relevant,
            input,
        });
    }
    Ok(out)
}

/// Publishes the set's corpus into `node`, matches every draft with each
/// ranker, and reports the figures.
pub fn run(node: &mut Node, set_json: &str) -> Result<Report, EvalError> {
    run_with(node, set_json, Weights::FULL)
}

/// [`run`] with other weights for `similar` (to try a change).
pub fn run_with(node: &mut Node, set_json: &str, full: Weights) -> Result<Report, EvalError> {
    let set: Value =
        serde_json::from_str(set_json).map_err(|e| EvalError::Set(format!("not JSON: {e}")))?;
    let corpus = items(&set, "corpus")?;
    let drafts = items(&set, "drafts")?;
    let keys: Vec<String> = corpus.iter().map(|c| c.key.clone()).collect();
    let mut seen = HashSet::new();
    if let Some(dup) = keys.iter().find(|k| !seen.insert(*k)) {
        return Err(EvalError::Set(format!("the key {dup:?} is used twice")));
    }
    let ids = node.publish_batch(corpus.into_iter().map(|c| c.input).collect())?;
    let id_of: HashMap<&str, DocumentId> = keys.iter().map(String::as_str).zip(ids).collect();

    let mut labelled = Vec::new();
    for d in drafts {
        if d.relevant.is_empty() {
            return Err(EvalError::Set(format!(
                "draft {:?} lists no relevant entry",
                d.key
            )));
        }
        let relevant: HashSet<DocumentId> = d
            .relevant
            .iter()
            .map(|k| {
                id_of.get(k.as_str()).copied().ok_or_else(|| {
                    EvalError::Set(format!("draft {:?}: no corpus entry {k:?}", d.key))
                })
            })
            .collect::<Result<_, _>>()?;
        let mut body = d.input.body;
        body.check(node.vocab()).map_err(|e| EvalError::Entry {
            key: d.key.clone(),
            error: crate::NodeError::Invalid(e),
        })?;
        debug_assert_eq!(body.kind(), d.kind);
        labelled.push((Draft::from_body(&body, node.vocab()), relevant));
    }
    let n = labelled.len().max(1) as f64;
    let ceiling = labelled
        .iter()
        .map(|(_, r)| r.len().min(5) as f64 / 5.0)
        .sum::<f64>()
        / n;

    let mut rankers = Vec::new();
    // The whole draft, then what a form holds once the title is typed
    // and the vocabularies ticked (no summary or story yet).
    let early: Vec<(Draft, HashSet<DocumentId>)> = labelled
        .iter()
        .map(|(d, r)| {
            let d = Draft {
                text: String::new(),
                ..d.clone()
            };
            (d, r.clone())
        })
        .collect();
    for (name, weights, drafts) in [
        (SIMILAR, full, &labelled),
        (BM25_WORDS, Weights::BM25_ONLY, &labelled),
        (SIMILAR_EARLY, full, &early),
        (BM25_WORDS_EARLY, Weights::BM25_ONLY, &early),
    ] {
        let mut ranked = Vec::new();
        let started = std::time::Instant::now();
        for (draft, relevant) in drafts {
            let found = match find(node.store(), node.vocab(), draft, DEPTH, weights) {
                Ok(found) => found,
                // A title of stop words alone: nothing found.
                Err(super::SimilarError::Empty) => Vec::new(),
                Err(e) => return Err(e.into()),
            };
            ranked.push((found.iter().map(|s| s.listed.id).collect(), relevant));
        }
        rankers.push(figures(name, &ranked, started.elapsed()));
    }
    let mut ranked = Vec::new();
    let started = std::time::Instant::now();
    for (draft, relevant) in &labelled {
        let hits = node.search(&draft.title, DEPTH)?.unwrap_or_default();
        ranked.push((hits.iter().map(|h| h.listed.id).collect(), relevant));
    }
    rankers.push(figures(SEARCH_TITLE, &ranked, started.elapsed()));
    Ok(Report {
        corpus: keys.len(),
        drafts: labelled.len(),
        ceiling_at_5: ceiling,
        rankers,
    })
}

fn figures(
    name: &'static str,
    ranked: &[(Vec<DocumentId>, &HashSet<DocumentId>)],
    took: std::time::Duration,
) -> Figures {
    let n = ranked.len().max(1) as f64;
    let (mut p5, mut hit5, mut rr) = (0.0, 0.0, 0.0);
    for (ids, relevant) in ranked {
        let in_five = ids
            .iter()
            .take(5)
            .filter(|id| relevant.contains(id))
            .count();
        p5 += in_five as f64 / 5.0;
        if in_five > 0 {
            hit5 += 1.0;
        }
        if let Some(rank) = ids.iter().position(|id| relevant.contains(id)) {
            rr += 1.0 / (rank + 1) as f64;
        }
    }
    Figures {
        name,
        drafts: ranked.len(),
        precision_at_5: p5 / n,
        hit_rate_at_5: hit5 / n,
        mrr: rr / n,
        millis: took.as_secs_f64() * 1000.0 / n,
    }
}

/// Publishes `n` filler entries made by mixing the corpus's titles,
/// summaries, stories and vocabularies (entry `i` takes its title from one
/// corpus entry, its summary from a second and its story from a third), so
/// the time to match can be measured at scale. They share words with the
/// relevant entries on purpose, so the quality figures of a padded run
/// measure robustness to near misses, not the labelled set alone.
pub fn pad(node: &mut Node, set_json: &str, n: usize) -> Result<(), EvalError> {
    let set: Value =
        serde_json::from_str(set_json).map_err(|e| EvalError::Set(format!("not JSON: {e}")))?;
    let corpus = set
        .get("corpus")
        .and_then(Value::as_array)
        .filter(|c| !c.is_empty())
        .ok_or_else(|| EvalError::Set("no \"corpus\" array".into()))?;
    let text = |v: &Value, field: &str| {
        v.get(field)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let mut batch = Vec::new();
    for i in 0..n {
        let a = &corpus[i % corpus.len()];
        let b = &corpus[(i * 7 + 3) % corpus.len()];
        let c = &corpus[(i * 13 + 5) % corpus.len()];
        let story = [text(c, "body"), text(c, "problem")].join(" ");
        let fields = serde_json::json!({
            "title": format!("{} ({})", text(a, "title"), i + 1),
            "summary": text(b, "summary"),
            "body": story,
            "priorities": a.get("priorities").cloned().unwrap_or_else(|| Value::Array(Vec::new())),
            "methods": b.get("methods").cloned().unwrap_or_else(|| Value::Array(Vec::new())),
            "tags": c.get("tags").cloned().unwrap_or_else(|| Value::Array(Vec::new())),
            "place": text(b, "place"),
        });
        batch.push(EntryInput::from_json(Kind::Learning, fields).map_err(|e| {
            EvalError::Entry {
                key: format!("filler {}", i + 1),
                error: e.into(),
            }
        })?);
        if batch.len() == 500 || i + 1 == n {
            node.publish_batch(std::mem::take(&mut batch))?;
        }
    }
    Ok(())
}
