//! Browse filters, shared by the browse page and `GET /api/entries`.

use std::collections::HashSet;

use convene_model::Kind;
use serde::Deserialize;

use super::Failure;
use crate::node::Node;
use crate::store::{Filter, Listed};

/// What a person can filter by. Empty values do not filter.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub(crate) struct Browse {
    /// Full-text search.
    pub q: String,
    pub kind: String,
    pub priority: String,
    pub method: String,
    pub sector: String,
    pub place: String,
    /// Owner organisation: id or name.
    pub org: String,
    /// Include retracted entries.
    pub all: bool,
    pub limit: Option<usize>,
}

/// One result row.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub listed: Listed,
    /// Matching text with matched words in `[brackets]` (searches only).
    pub snippet: Option<String>,
}

const DEFAULT_LIMIT: usize = 200;

fn set(s: &str) -> Option<&str> {
    Some(s.trim()).filter(|s| !s.is_empty())
}

impl Browse {
    pub(crate) fn is_filtered(&self) -> bool {
        [
            &self.q,
            &self.kind,
            &self.priority,
            &self.method,
            &self.sector,
            &self.place,
            &self.org,
        ]
        .iter()
        .any(|s| set(s).is_some())
    }

    fn filter(&self, node: &Node) -> Result<Filter, Failure> {
        let vocab = node.vocab();
        let kind = set(&self.kind)
            .map(str::parse::<Kind>)
            .transpose()
            .map_err(|e| Failure::bad_request(e.to_string()))?;
        let mut terms = Vec::new();
        let term = |v: &convene_model::Vocabulary, s: &str| {
            v.resolve(s)
                .map(|t| t.slug.clone())
                .map_err(|e| Failure::bad_request(e.to_string()))
        };
        if let Some(p) = set(&self.priority) {
            terms.push(("priority".into(), term(&vocab.priorities, p)?));
        }
        if let Some(m) = set(&self.method) {
            terms.push(("method".into(), term(&vocab.methods, m)?));
        }
        if let Some(s) = set(&self.sector) {
            terms.push(("sector".into(), term(&vocab.sectors, s)?));
        }
        if let Some(p) = set(&self.place) {
            terms.push(("place".into(), p.to_lowercase()));
        }
        let owner = set(&self.org)
            .map(|o| node.resolve_org(o).map(|id| id.to_string()))
            .transpose()?;
        Ok(Filter {
            kind,
            owner,
            terms,
            include_retracted: self.all,
            limit: None,
        })
    }

    /// Runs the query: a search when `q` is set (best match first), else a
    /// list (most recently updated first).
    pub(crate) fn run(&self, node: &Node) -> Result<Vec<Row>, Failure> {
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT).min(1000);
        let mut filter = self.filter(node)?;
        let Some(q) = set(&self.q) else {
            filter.limit = Some(limit);
            return Ok(node
                .list(&filter)?
                .into_iter()
                .map(|listed| Row {
                    listed,
                    snippet: None,
                })
                .collect());
        };
        let hits = node
            .search(q, if self.is_narrowed() { 1000 } else { limit })?
            .ok_or_else(|| Failure::bad_request(format!("{q:?} has no words to search for")))?;
        let allowed: Option<HashSet<_>> = if self.is_narrowed() {
            Some(node.list(&filter)?.into_iter().map(|l| l.id).collect())
        } else {
            None
        };
        Ok(hits
            .into_iter()
            .filter(|h| allowed.as_ref().is_none_or(|a| a.contains(&h.listed.id)))
            .take(limit)
            .map(|h| Row {
                listed: h.listed,
                snippet: Some(h.snippet),
            })
            .collect())
    }

    /// Filters other than the search words.
    fn is_narrowed(&self) -> bool {
        Browse {
            q: String::new(),
            ..self.clone()
        }
        .is_filtered()
    }
}
