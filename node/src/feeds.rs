//! Feeds for people's own readers and calendars: an Atom feed of new and
//! updated entries ([`atom`]) and an iCalendar feed of events ([`ics`]),
//! and the capability tokens that let a feed reader fetch one without
//! signing in to the web app.
//!
//! # What goes into a feed
//!
//! A feed leaves this computer for a third party's reader (Outlook, Teams,
//! Google Calendar, a feed reader in someone's browser), so it carries
//! only what the whole community may see: published entries of the kinds
//! in [`FEED_KINDS`] whose visibility is `community`. Never drafts, never
//! entries shown to some organisations only, never retracted or erased
//! entries (a retracted *event* stays, marked cancelled, so calendars
//! remove it), and never contacts, organisation profiles, messages or
//! anything else that names people.
//!
//! # Tokens
//!
//! `convene feed new` makes a token: 256 random bits printed once in base58
//! inside the feed's address (`/feed.atom?…&token=…`). The `feed_tokens`
//! table keeps only its BLAKE3 hash, looked up by that hash, so a stolen
//! database opens no feed and comparing takes the same time whatever the
//! guess. A token is bound to one [`Scope`] (the entries feed or the
//! events feed) and to the [`FeedFilter`] it was made with, resolved to
//! slugs and ids once; it opens that feed with that filter and nothing
//! else. A request that holds a token and names a different filter is
//! refused, not narrowed or widened. `convene feed revoke` marks the row
//! revoked (it is kept, so `feed list` shows what was given out); a
//! revoked token and one never issued get the same answer.
//!
//! # Data flow
//!
//! The web app (`daemon::web::feeds`) takes the filter from the query (a
//! signed-in browser) or from [`authorise`] (a token), then calls
//! [`entries`] or [`ics::events`], which read the store's lists and load
//! each entry, and renders with [`atom::render`] or [`ics::render`].

pub mod atom;
pub mod ics;

use std::fmt;
use std::str::FromStr;

use convene_model::{Body, DocumentId, Entry, Kind};
use rusqlite::OptionalExtension;
use serde::Serialize;

use crate::NodeError;
use crate::node::Node;
use crate::store::{Filter, Listed, StoreError};

/// The kinds an entries feed may carry (by name, so a kind this version
/// does not know is never carried).
pub const FEED_KINDS: [&str; 4] = ["learning", "project", "event", "idea"];

/// The most entries an Atom feed carries (the most recently updated).
pub const ATOM_LIMIT: usize = 100;

/// The most events a calendar feed carries (those ending soonest after
/// [`EVENTS_SINCE_MS`] ago).
pub const ICS_LIMIT: usize = 1000;

/// How far back a calendar feed reaches: events that ended longer ago
/// than this are left out (a year).
pub const EVENTS_SINCE_MS: i64 = 366 * 24 * 60 * 60 * 1000;

/// How often `last_used` is written for one token, at most.
const LAST_USED_EVERY_MS: i64 = 60_000;

/// The longest label.
const MAX_LABEL: usize = 100;

/// Why a feed or a token cannot be had.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// Wrong, revoked or never issued: one answer for all three.
    #[error("this feed link is not valid: it was revoked, or it was never issued by this node")]
    BadToken,
    #[error("this feed link is for {0}, not for this feed")]
    WrongScope(Scope),
    #[error(
        "this feed link is bound to its own filter ({0}); make another with `convene feed new` for a different one"
    )]
    OtherFilter(String),
    #[error("no feed link has the id {0} (see `convene feed list`)")]
    UnknownId(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Node(#[from] NodeError),
}

impl From<StoreError> for FeedError {
    fn from(e: StoreError) -> Self {
        Self::Node(e.into())
    }
}

impl From<rusqlite::Error> for FeedError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Node(StoreError::from(e).into())
    }
}

/// Which feed a token opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// `/feed.atom`: new and updated entries.
    Entries,
    /// `/events.ics`: events.
    Events,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Entries => "entries",
            Scope::Events => "events",
        }
    }

    /// The web app's path of the feed.
    pub fn path(self) -> &'static str {
        match self {
            Scope::Entries => "/feed.atom",
            Scope::Events => "/events.ics",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.path())
    }
}

impl FromStr for Scope {
    type Err = FeedError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "entries" => Ok(Scope::Entries),
            "events" => Ok(Scope::Events),
            other => Err(FeedError::Invalid(format!(
                "unknown feed scope {other:?}: expected entries or events"
            ))),
        }
    }
}

/// What a feed is narrowed to, as the browse page takes it. Empty values
/// do not filter. [`FeedFilter::resolve`] turns what a person typed into
/// slugs and ids, so two spellings of one filter are one filter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FeedFilter {
    /// Full-text search words.
    pub q: String,
    pub kind: String,
    pub priority: String,
    pub method: String,
    pub sector: String,
    pub place: String,
    /// Owner organisation (its id once resolved).
    pub org: String,
}

/// The query parameters that are a filter (anything else in a feed's
/// address, such as a reader's cache-buster, is ignored).
pub const FILTER_KEYS: [&str; 7] = ["q", "kind", "priority", "method", "sector", "place", "org"];

fn set(s: &str) -> Option<&str> {
    Some(s.trim()).filter(|s| !s.is_empty())
}

impl FeedFilter {
    fn field_mut(&mut self, key: &str) -> Option<&mut String> {
        Some(match key {
            "q" => &mut self.q,
            "kind" => &mut self.kind,
            "priority" => &mut self.priority,
            "method" => &mut self.method,
            "sector" => &mut self.sector,
            "place" => &mut self.place,
            "org" => &mut self.org,
            _ => return None,
        })
    }

    fn fields(&self) -> [(&'static str, &str); 7] {
        [
            ("q", &self.q),
            ("kind", &self.kind),
            ("priority", &self.priority),
            ("method", &self.method),
            ("sector", &self.sector),
            ("place", &self.place),
            ("org", &self.org),
        ]
    }

    /// The filter in a query string (`a=b&c=d`): the filter keys only,
    /// each at most once; other keys are left for the caller. Returns
    /// whether any filter key was present.
    pub fn from_query(query: &str) -> Result<(Self, bool), FeedError> {
        let mut filter = Self::default();
        let mut seen: Vec<&str> = Vec::new();
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            let Some(k) = FILTER_KEYS.iter().find(|k| **k == key) else {
                continue;
            };
            if seen.contains(k) {
                return Err(FeedError::Invalid(format!("{k} is given twice")));
            }
            seen.push(k);
            if let Some(field) = filter.field_mut(k) {
                *field = value.into_owned();
            }
        }
        Ok((filter, !seen.is_empty()))
    }

    /// The filter as a query string, keys in a fixed order, empty values
    /// left out (`""` for no filter).
    pub fn to_query(&self) -> String {
        let mut out = form_urlencoded::Serializer::new(String::new());
        for (k, v) in self.fields() {
            if let Some(v) = set(v) {
                out.append_pair(k, v);
            }
        }
        out.finish()
    }

    /// A short description for people: `priority=discharge kind=learning`,
    /// or `everything`.
    pub fn describe(&self) -> String {
        let parts: Vec<String> = self
            .fields()
            .iter()
            .filter_map(|(k, v)| set(v).map(|v| format!("{k}={v}")))
            .collect();
        if parts.is_empty() {
            "everything".into()
        } else {
            parts.join(" ")
        }
    }

    /// Checks and normalises the filter for a feed of `scope`: labels and
    /// aliases become slugs, an organisation's name its id. Contacts and
    /// other kinds that never go into feeds are refused.
    pub fn resolve(&self, node: &Node, scope: Scope) -> Result<Self, FeedError> {
        let bad = |e: &dyn fmt::Display| FeedError::Invalid(e.to_string());
        let vocab = node.vocab();
        let mut out = Self::default();
        if let Some(q) = set(&self.q) {
            if node.search(q, 1)?.is_none() {
                return Err(FeedError::Invalid(format!(
                    "{q:?} has no words to search for"
                )));
            }
            out.q = q.split_whitespace().collect::<Vec<_>>().join(" ");
        }
        if let Some(k) = set(&self.kind) {
            let kind: Kind = k.parse().map_err(|e| bad(&e))?;
            let allowed = match scope {
                Scope::Entries => FEED_KINDS.contains(&kind.as_str()),
                Scope::Events => kind.as_str() == "event",
            };
            if !allowed {
                return Err(FeedError::Invalid(match scope {
                    Scope::Entries => format!(
                        "{kind} entries never go into feeds (feeds carry {}; contacts and profiles hold personal data)",
                        FEED_KINDS.join(", ")
                    ),
                    Scope::Events => format!("the events feed carries events only, not {kind}"),
                }));
            }
            out.kind = kind.as_str().into();
        }
        let term = |v: &convene_model::Vocabulary, s: &str| {
            v.resolve(s).map(|t| t.slug.clone()).map_err(|e| bad(&e))
        };
        if let Some(p) = set(&self.priority) {
            out.priority = term(&vocab.priorities, p)?;
        }
        if let Some(m) = set(&self.method) {
            out.method = term(&vocab.methods, m)?;
        }
        if let Some(s) = set(&self.sector) {
            out.sector = term(&vocab.sectors, s)?;
        }
        if let Some(p) = set(&self.place) {
            out.place = p.to_lowercase();
        }
        if let Some(o) = set(&self.org) {
            out.org = node.resolve_org(o)?.to_string();
        }
        Ok(out)
    }

    /// The store's filter for a resolved feed filter (search words aside).
    fn store_filter(&self, scope: Scope) -> Filter {
        let kind = match scope {
            Scope::Events => "event".parse().ok(),
            Scope::Entries => set(&self.kind).and_then(|k| k.parse().ok()),
        };
        let mut terms = Vec::new();
        for (field, value) in [
            ("priority", &self.priority),
            ("method", &self.method),
            ("sector", &self.sector),
            ("place", &self.place),
        ] {
            if let Some(v) = set(value) {
                terms.push((field.to_string(), v.to_string()));
            }
        }
        Filter {
            kind,
            owner: set(&self.org).map(str::to_string),
            terms,
            // Retracted events stay in the calendar, marked cancelled.
            include_retracted: scope == Scope::Events,
            limit: None,
            offset: 0,
        }
    }
}

/// One feed token as `feed list` shows it (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FeedToken {
    pub id: i64,
    pub label: String,
    pub scope: Scope,
    /// The filter it is bound to, resolved.
    pub filter: FeedFilter,
    /// Unix ms.
    pub created: i64,
    /// Unix ms of the last fetch with it (to the minute).
    pub last_used: Option<i64>,
    /// Unix ms when it was revoked.
    pub revoked: Option<i64>,
}

impl FeedToken {
    /// The token's feed address under `base` (`http://127.0.0.1:4041/`),
    /// with the token.
    pub fn url(&self, base: &str, secret: &str) -> String {
        let mut query = self.filter.to_query();
        if !query.is_empty() {
            query.push('&');
        }
        query.push_str("token=");
        query.push_str(secret);
        format!(
            "{}{}?{query}",
            base.trim_end_matches('/'),
            self.scope.path()
        )
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn hash(secret: &str) -> Vec<u8> {
    blake3::hash(secret.as_bytes()).as_bytes().to_vec()
}

const COLUMNS: &str = "id, label, scope, filter, created, last_used, revoked";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<FeedToken> {
    let scope: String = r.get(2)?;
    let filter: String = r.get(3)?;
    let conv = |i, e: String| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, e.into())
    };
    Ok(FeedToken {
        id: r.get(0)?,
        label: r.get(1)?,
        scope: scope
            .parse()
            .map_err(|e: FeedError| conv(2, e.to_string()))?,
        filter: FeedFilter::from_query(&filter)
            .map_err(|e| conv(3, e.to_string()))?
            .0,
        created: r.get(4)?,
        last_used: r.get(5)?,
        revoked: r.get(6)?,
    })
}

/// Checks a label: one line, printable, not too long.
fn check_label(label: &str) -> Result<String, FeedError> {
    let label = label.trim();
    if label.chars().any(char::is_control) {
        return Err(FeedError::Invalid(
            "a feed label is one line of text, without control characters".into(),
        ));
    }
    if label.chars().count() > MAX_LABEL {
        return Err(FeedError::Invalid(format!(
            "a feed label is at most {MAX_LABEL} characters"
        )));
    }
    Ok(label.to_string())
}

/// Makes a feed token for `scope` bound to `filter` (resolved first).
/// Returns the stored row and the token, which is shown this once.
pub fn create(
    node: &Node,
    label: &str,
    scope: Scope,
    filter: &FeedFilter,
) -> Result<(FeedToken, String), FeedError> {
    let filter = filter.resolve(node, scope)?;
    let mut label = check_label(label)?;
    if label.is_empty() {
        label = format!("{} {}", scope.as_str(), filter.describe());
    }
    let secret = bs58::encode(rand::random::<[u8; 32]>()).into_string();
    let created = now_ms();
    let conn = node.store().conn();
    conn.execute(
        "INSERT INTO feed_tokens (hash, label, scope, filter, created) VALUES (?1, ?2, ?3, ?4, ?5)",
        rusqlite::params![
            hash(&secret),
            label,
            scope.as_str(),
            filter.to_query(),
            created
        ],
    )?;
    let token = FeedToken {
        id: conn.last_insert_rowid(),
        label,
        scope,
        filter,
        created,
        last_used: None,
        revoked: None,
    };
    Ok((token, secret))
}

/// Every feed token made on this node, oldest first, revoked ones too.
pub fn list(node: &Node) -> Result<Vec<FeedToken>, FeedError> {
    let conn = node.store().conn();
    let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM feed_tokens ORDER BY id"))?;
    let rows = stmt.query_map([], row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Revokes the token with `id` (as `feed list` shows it). Returns it, and
/// whether it was revoked already.
pub fn revoke(node: &Node, id: &str) -> Result<(FeedToken, bool), FeedError> {
    let unknown = || FeedError::UnknownId(id.to_string());
    let n: i64 = id.trim().parse().map_err(|_| unknown())?;
    let conn = node.store().conn();
    let get = |conn: &rusqlite::Connection| {
        conn.query_row(
            &format!("SELECT {COLUMNS} FROM feed_tokens WHERE id = ?1"),
            [n],
            row,
        )
        .optional()
    };
    let before = get(conn)?.ok_or_else(unknown)?;
    if before.revoked.is_some() {
        return Ok((before, true));
    }
    conn.execute(
        "UPDATE feed_tokens SET revoked = ?1 WHERE id = ?2 AND revoked IS NULL",
        rusqlite::params![now_ms(), n],
    )?;
    let after = get(conn)?.ok_or_else(unknown)?;
    Ok((after, false))
}

/// The live token `secret` opens, if it opens `scope`: looked up by its
/// hash; a revoked or unknown one is [`FeedError::BadToken`]. Records
/// when it was used (at most once a minute).
pub fn authorise(node: &Node, secret: &str, scope: Scope) -> Result<FeedToken, FeedError> {
    let conn = node.store().conn();
    let token = conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM feed_tokens WHERE hash = ?1 AND revoked IS NULL"),
            [hash(secret.trim())],
            row,
        )
        .optional()?
        .ok_or(FeedError::BadToken)?;
    if token.scope != scope {
        return Err(FeedError::WrongScope(token.scope));
    }
    let now = now_ms();
    conn.execute(
        "UPDATE feed_tokens SET last_used = ?1
         WHERE id = ?2 AND (last_used IS NULL OR last_used <= ?1 - ?3)",
        rusqlite::params![now, token.id, LAST_USED_EVERY_MS],
    )?;
    Ok(token)
}

/// One entry as a feed shows it.
#[derive(Debug, Clone)]
pub struct Item {
    pub listed: Listed,
    pub entry: Entry,
}

impl Item {
    /// The entry's summary as plain text.
    pub fn summary(&self, node: &Node) -> String {
        match &self.entry.body {
            Body::Learning(l) => l.summary.as_str().to_string(),
            Body::Project(p) => p.summary.as_str().to_string(),
            Body::Event(e) => e.summary.as_str().to_string(),
            Body::Idea(i) => i.summary.as_str().to_string(),
            other => other.search_text(node.vocab()).summary,
        }
    }
}

/// Whether a listed row may go into a feed at all.
fn shareable(l: &Listed, scope: Scope) -> bool {
    let kind_ok = match scope {
        Scope::Entries => FEED_KINDS.contains(&l.kind.as_str()) && l.status == "published",
        Scope::Events => {
            l.kind.as_str() == "event" && (l.status == "published" || l.status == "retracted")
        }
    };
    kind_ok && l.visibility == "community"
}

/// The rows `filter` selects for `scope`, most recently updated first,
/// `keep`ing those the closure likes, at most `limit`.
pub(crate) fn select(
    node: &Node,
    scope: Scope,
    filter: &FeedFilter,
    limit: usize,
    mut keep: impl FnMut(&Listed, &Entry) -> bool,
) -> Result<Vec<Item>, FeedError> {
    let words: Option<std::collections::HashSet<DocumentId>> = match set(&filter.q) {
        Some(q) => Some(
            node.search(q, usize::MAX)?
                .unwrap_or_default()
                .into_iter()
                .map(|h| h.listed.id)
                .collect(),
        ),
        None => None,
    };
    let mut store_filter = filter.store_filter(scope);
    const BATCH: usize = 500;
    store_filter.limit = Some(BATCH);
    let mut out = Vec::new();
    loop {
        let rows = node.list(&store_filter)?;
        let n = rows.len();
        for listed in rows {
            if !shareable(&listed, scope) || words.as_ref().is_some_and(|w| !w.contains(&listed.id))
            {
                continue;
            }
            // A document that does not read as an entry stays out.
            let Ok(entry) = node.get(listed.id) else {
                continue;
            };
            if !keep(&listed, &entry) {
                continue;
            }
            out.push(Item { listed, entry });
            if out.len() >= limit {
                return Ok(out);
            }
        }
        if n < BATCH {
            return Ok(out);
        }
        store_filter.offset += BATCH;
    }
}

/// The entries of an Atom feed: published, community-wide entries of the
/// feed kinds matching `filter` (resolved), most recently updated first.
pub fn entries(node: &Node, filter: &FeedFilter) -> Result<Vec<Item>, FeedError> {
    select(node, Scope::Entries, filter, ATOM_LIMIT, |_, _| true)
}

/// A stable id for the feed of `scope` with `filter` on this node.
pub fn feed_id(node: &Node, scope: Scope, filter: &FeedFilter) -> String {
    let digest = blake3::hash(format!("{}?{}", scope.as_str(), filter.to_query()).as_bytes());
    format!(
        "urn:convene:feed:{}:{}",
        node.node_id(),
        &digest.to_hex()[..16]
    )
}

/// Text safe for XML 1.0 and iCalendar: control characters other than
/// tab and newline are dropped, and CR LF or a lone CR becomes LF.
pub fn clean(s: &str) -> String {
    let s = s.replace("\r\n", "\n").replace('\r', "\n");
    s.chars()
        .filter(|c| {
            (!c.is_control() || *c == '\n' || *c == '\t') && !matches!(c, '\u{FFFE}' | '\u{FFFF}')
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node() -> (tempfile::TempDir, Node) {
        let dir = tempfile::tempdir().unwrap();
        let node = Node::init(
            dir.path(),
            &crate::InitOptions {
                org: "Gateshead Council".into(),
                sector: "council".into(),
                place: None,
            },
        )
        .unwrap();
        (dir, node)
    }

    #[test]
    fn a_token_opens_its_own_feed_until_revoked() {
        let (_dir, node) = node();
        let filter = FeedFilter {
            priority: "Discharge and safe transfers of care".into(),
            ..FeedFilter::default()
        };
        let (token, secret) = create(&node, "", Scope::Entries, &filter).unwrap();
        assert!(secret.len() >= 43, "256 bits");
        assert_eq!(
            token.filter.priority,
            "discharge-and-safe-transfers-of-care"
        );
        assert_eq!(
            token.label,
            "entries priority=discharge-and-safe-transfers-of-care"
        );
        // Only the hash is stored.
        let stored: i64 = node
            .store()
            .conn()
            .query_row(
                "SELECT count(*) FROM feed_tokens WHERE instr(CAST(hash AS TEXT), ?1) > 0 OR instr(filter, ?1) > 0 OR instr(label, ?1) > 0",
                [&secret],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(stored, 0);

        let found = authorise(&node, &secret, Scope::Entries).unwrap();
        assert_eq!(found.id, token.id);
        assert!(list(&node).unwrap()[0].last_used.is_some());
        assert!(matches!(
            authorise(&node, &secret, Scope::Events),
            Err(FeedError::WrongScope(Scope::Entries))
        ));
        assert!(matches!(
            authorise(&node, "not-a-token", Scope::Entries),
            Err(FeedError::BadToken)
        ));
        let (revoked, already) = revoke(&node, &token.id.to_string()).unwrap();
        assert!(!already && revoked.revoked.is_some());
        assert!(revoke(&node, &token.id.to_string()).unwrap().1);
        assert!(matches!(
            authorise(&node, &secret, Scope::Entries),
            Err(FeedError::BadToken)
        ));
        assert!(matches!(revoke(&node, "99"), Err(FeedError::UnknownId(_))));
        assert!(matches!(revoke(&node, "x"), Err(FeedError::UnknownId(_))));
    }

    #[test]
    fn filters_are_checked_and_contacts_refused() {
        let (_dir, node) = node();
        let contact = FeedFilter {
            kind: "contact".into(),
            ..FeedFilter::default()
        };
        let e = create(&node, "", Scope::Entries, &contact).unwrap_err();
        assert!(e.to_string().contains("never go into feeds"), "{e}");
        let unknown = FeedFilter {
            priority: "no such priority".into(),
            ..FeedFilter::default()
        };
        assert!(create(&node, "", Scope::Entries, &unknown).is_err());
        assert!(create(&node, "a\nb", Scope::Entries, &FeedFilter::default()).is_err());
        assert!(list(&node).unwrap().is_empty(), "nothing written");
    }

    #[test]
    fn queries_round_trip_and_refuse_repeats() {
        let f = FeedFilter {
            q: "falls & trips".into(),
            priority: "discharge".into(),
            ..FeedFilter::default()
        };
        let q = f.to_query();
        assert_eq!(q, "q=falls+%26+trips&priority=discharge");
        let (back, any) = FeedFilter::from_query(&format!("{q}&token=x&_=1")).unwrap();
        assert!(any);
        assert_eq!(back, f);
        assert!(FeedFilter::from_query("kind=a&kind=b").is_err());
        assert!(!FeedFilter::from_query("token=x").unwrap().1);
    }

    #[test]
    fn clean_text_has_no_control_characters() {
        assert_eq!(clean("a\r\nb\rc\u{0}d\u{1b}e\tf"), "a\nb\ncde\tf");
    }
}
