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
    /// Rows per page (at most 1,000).
    pub limit: Option<usize>,
    /// Rows to skip (the API's paging).
    pub offset: Option<usize>,
    /// The page to show, from 1 (the pages' paging; `offset` wins).
    pub page: Option<usize>,
}

/// One page of results and where it sits among all of them.
#[derive(Debug, Clone)]
pub(crate) struct Page {
    pub rows: Vec<Row>,
    /// How many entries match in all.
    pub total: usize,
    /// How many come before this page.
    pub offset: usize,
    /// The page size asked for.
    pub limit: usize,
}

impl Page {
    /// Whether entries come after this page.
    pub(crate) fn has_more(&self) -> bool {
        self.offset + self.rows.len() < self.total
    }
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
            offset: 0,
        })
    }

    /// The page size and offset asked for.
    pub(crate) fn window(&self) -> (usize, usize) {
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, 1000);
        let offset = self.offset.unwrap_or_else(|| {
            self.page
                .unwrap_or(1)
                .saturating_sub(1)
                .saturating_mul(limit)
        });
        (limit, offset)
    }

    /// Runs the query: a search when `q` is set (best match first), else a
    /// list (most recently updated first); one page of it, with the total.
    pub(crate) fn run(&self, node: &Node) -> Result<Page, Failure> {
        let (limit, offset) = self.window();
        let mut filter = self.filter(node)?;
        let page = |rows, total| Page {
            rows,
            total,
            offset,
            limit,
        };
        let Some(q) = set(&self.q) else {
            let total = node.count(&filter)?;
            filter.limit = Some(limit);
            filter.offset = offset;
            let rows = node
                .list(&filter)?
                .into_iter()
                .map(|listed| Row {
                    listed,
                    snippet: None,
                })
                .collect();
            return Ok(page(rows, total));
        };
        let no_words = || Failure::bad_request(format!("{q:?} has no words to search for"));
        let hit = |h: crate::store::Hit| Row {
            listed: h.listed,
            snippet: Some(h.snippet),
        };
        if !self.is_narrowed() {
            let (hits, total) = node.search_page(q, offset, limit)?.ok_or_else(no_words)?;
            return Ok(page(hits.into_iter().map(hit).collect(), total));
        }
        // Narrowed by other filters too: every hit, kept if the filter
        // lists it, then the page.
        let hits = node.search(q, usize::MAX)?.ok_or_else(no_words)?;
        let allowed: HashSet<_> = node.list(&filter)?.into_iter().map(|l| l.id).collect();
        let kept: Vec<Row> = hits
            .into_iter()
            .filter(|h| allowed.contains(&h.listed.id))
            .map(hit)
            .collect();
        let total = kept.len();
        Ok(page(
            kept.into_iter().skip(offset).take(limit).collect(),
            total,
        ))
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
