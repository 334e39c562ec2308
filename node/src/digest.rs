//! What's new: a digest of what reached this node in a period, for a
//! newsletter or an email (`convene digest`) and for the web app's
//! "What's new since your last visit" page.
//!
//! # What "new" means
//!
//! An entry is new in a period when its first change *reached this node*
//! in the period (`changes.received`, this node's own clock), not when its
//! author's clock says it was written: a VCSE group's laptop that syncs
//! once a week still gets its learning into the next digest, and no sender
//! can keep an entry at the top by claiming a time in the future. Two
//! limits keep that honest: an entry written (by its author's clock) more
//! than [`LATE_MS`] before the period began is history, not news (so a
//! node that has just joined does not list the whole community), and an
//! entry first seen before the period but changed in it is *updated*, not
//! new (projects only: learning is rarely edited in a way worth a line).
//!
//! # What a digest never holds
//!
//! A digest is made to leave the node by email, so by default it holds
//! only what the whole community may see ([`Audience::Community`]);
//! [`Audience::Here`] (the web page a signed-in member of this
//! organisation reads, or `--include-restricted` for an email that stays
//! inside it) adds what is shown to some organisations only. Never drafts,
//! retracted or erased entries, and never a contact: contacts are personal
//! data, so at most their number is given. An event's `organiser` is
//! free text that may name a person, so an event is given with its owner
//! organisation instead; project teams are never listed.
//!
//! # Layout
//!
//! [`period`] reads `--since`; this file gathers a [`Digest`] from the
//! store; [`render`] writes it as Markdown or as plain text (72 columns),
//! in a stable order.

pub mod period;
pub mod render;

use std::collections::{BTreeMap, BTreeSet};

use convene_model::{Answer, Body, DocumentId, Entry, Kind, OrgId, Status, Timestamp, Visibility};

use crate::error::NodeError;
use crate::node::Node;
use crate::store::{Filter, StoreError};

pub use period::{PeriodError, parse_since};

/// How long before a period an entry may have been written and still be
/// news when it reaches this node in the period (31 days).
pub const LATE_MS: i64 = 31 * 24 * 3_600_000;

/// How far ahead a digest looks for events unless told otherwise.
pub const DEFAULT_WEEKS_AHEAD: u32 = 4;

/// The most ideas listed under "most support".
pub const TOP_IDEAS: usize = 5;

/// The longest summary or message line a digest quotes, in characters.
pub const QUOTE_CHARS: usize = 240;

/// Who a digest may be shown to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Audience {
    /// Anyone in the community (the default: a digest leaves the node).
    #[default]
    Community,
    /// This organisation's own people: everything this node may show.
    Here,
}

/// A part of a digest (`--kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Section {
    Learning,
    Projects,
    Events,
    Ideas,
    /// Questions and replies on this organisation's entries, answers to
    /// its questions, and its questions still waiting.
    Conversations,
    /// The number of new contacts (never who).
    Contacts,
}

impl Section {
    pub const ALL: [Section; 6] = [
        Section::Learning,
        Section::Projects,
        Section::Events,
        Section::Ideas,
        Section::Conversations,
        Section::Contacts,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Section::Learning => "learning",
            Section::Projects => "project",
            Section::Events => "event",
            Section::Ideas => "idea",
            Section::Conversations => "question",
            Section::Contacts => "contact",
        }
    }
}

impl std::str::FromStr for Section {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_lowercase().as_str() {
            "learning" => Ok(Section::Learning),
            "project" | "projects" => Ok(Section::Projects),
            "event" | "events" => Ok(Section::Events),
            "idea" | "ideas" => Ok(Section::Ideas),
            "question" | "questions" | "reply" | "replies" | "message" | "messages" => {
                Ok(Section::Conversations)
            }
            "contact" | "contacts" => Ok(Section::Contacts),
            _ => Err(DigestError::Invalid(format!(
                "unknown kind {s:?}: a digest has learning, project, event, idea, question and contact"
            ))),
        }
    }
}

/// Why a digest cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum DigestError {
    #[error(transparent)]
    Since(#[from] PeriodError),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Node(#[from] NodeError),
}

impl From<StoreError> for DigestError {
    fn from(e: StoreError) -> Self {
        Self::Node(e.into())
    }
}

impl From<rusqlite::Error> for DigestError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Node(StoreError::from(e).into())
    }
}

/// What to put in a digest.
#[derive(Debug, Clone)]
pub struct DigestOptions {
    pub since: Timestamp,
    /// The end of the period (now).
    pub until: Timestamp,
    /// Priorities as typed (labels, slugs or aliases); an entry matches
    /// when it has any of them. Empty: no filter.
    pub priorities: Vec<String>,
    /// The sections wanted; empty: all.
    pub sections: Vec<Section>,
    pub audience: Audience,
    /// How many weeks ahead upcoming events are looked for.
    pub weeks_ahead: u32,
}

impl DigestOptions {
    /// Everything, for the community, from `since` until `until`.
    pub fn new(since: Timestamp, until: Timestamp) -> Self {
        Self {
            since,
            until,
            priorities: Vec::new(),
            sections: Vec::new(),
            audience: Audience::Community,
            weeks_ahead: DEFAULT_WEEKS_AHEAD,
        }
    }

    fn wants(&self, s: Section) -> bool {
        self.sections.is_empty() || self.sections.contains(&s)
    }
}

/// One entry in a digest.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub id: DocumentId,
    pub kind: Kind,
    pub title: String,
    /// The start of its summary, at most [`QUOTE_CHARS`] characters.
    pub summary: String,
    pub owner: OrgId,
    pub owner_name: Option<String>,
    /// When it reached this node (first change, or latest for an update).
    pub seen: Timestamp,
    /// Its priorities' labels.
    pub priorities: Vec<String>,
    /// Shown to some organisations only (never in a community digest).
    pub restricted: bool,
}

/// An event still to come.
#[derive(Debug, Clone, PartialEq)]
pub struct EventItem {
    pub item: Item,
    pub starts: Timestamp,
    pub ends: Timestamp,
    /// `2027-01-14 09:30` in the event's own zone.
    pub starts_local: String,
    pub ends_local: String,
    pub time_zone: String,
    pub place: String,
    /// Where to join online (a web address, checked when written).
    pub link: String,
    pub cancelled: bool,
    /// How many organisations say they are going.
    pub going: usize,
    /// Whether it reached this node in the period.
    pub new: bool,
}

/// An idea with its support.
#[derive(Debug, Clone, PartialEq)]
pub struct IdeaItem {
    pub item: Item,
    /// Organisations supporting it now.
    pub support: usize,
    /// Of those, the ones whose support reached this node in the period.
    pub new_support: usize,
}

/// A question or reply.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageItem {
    pub id: DocumentId,
    pub question: bool,
    pub from: OrgId,
    pub from_name: Option<String>,
    /// The entry the conversation is about.
    pub about: DocumentId,
    pub about_title: String,
    /// The first line of the message, at most [`QUOTE_CHARS`] characters.
    pub text: String,
    pub seen: Timestamp,
    /// Answers a question this organisation asked (on someone else's entry).
    pub answers_us: bool,
}

/// What changed in a period, ready to render.
#[derive(Debug, Clone, PartialEq)]
pub struct Digest {
    pub since: Timestamp,
    pub until: Timestamp,
    /// This node's organisation, whose entries "ours" means.
    pub org_name: Option<String>,
    pub community: Option<String>,
    pub audience: Audience,
    /// The priorities filtered on, by label.
    pub priorities: Vec<String>,
    pub sections: Vec<Section>,
    pub weeks_ahead: u32,
    pub learning: Vec<Item>,
    pub new_projects: Vec<Item>,
    pub updated_projects: Vec<Item>,
    pub events: Vec<EventItem>,
    pub new_ideas: Vec<IdeaItem>,
    /// The ideas with the most support, when any has some.
    pub top_ideas: Vec<IdeaItem>,
    /// New questions and replies on this organisation's entries, and
    /// answers to its questions, oldest first.
    pub conversations: Vec<MessageItem>,
    /// Questions on this organisation's entries no one has answered,
    /// longest waiting first.
    pub waiting: Vec<MessageItem>,
    /// New contacts in the period (only their number; `None` when the
    /// section is not wanted or a priority filter is on).
    pub new_contacts: Option<usize>,
}

impl Digest {
    /// Whether nothing at all happened.
    pub fn is_empty(&self) -> bool {
        self.learning.is_empty()
            && self.new_projects.is_empty()
            && self.updated_projects.is_empty()
            && self.events.is_empty()
            && self.new_ideas.is_empty()
            && self.top_ideas.is_empty()
            && self.conversations.is_empty()
            && self.waiting.is_empty()
            && self.new_contacts.unwrap_or(0) == 0
    }

    /// How many things are new (what a "3 new" badge counts).
    pub fn count_new(&self) -> usize {
        self.learning.len()
            + self.new_projects.len()
            + self.updated_projects.len()
            + self.events.iter().filter(|e| e.new).count()
            + self.new_ideas.len()
            + self.conversations.len()
    }
}

/// When a document's changes reached this node.
#[derive(Debug, Clone, Copy)]
struct Arrival {
    first: i64,
    last: i64,
}

/// Collapses whitespace, drops control characters, and cuts at a word
/// boundary to at most `max` characters (with `…`).
pub fn clip(text: &str, max: usize) -> String {
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let words: Vec<&str> = clean.split_whitespace().collect();
    let mut out = String::new();
    for w in words {
        let extra = usize::from(!out.is_empty()) + w.chars().count();
        if out.chars().count() + extra > max {
            if out.is_empty() {
                out = w.chars().take(max.saturating_sub(1)).collect();
            }
            out.push('…');
            return out;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(w);
    }
    out
}

fn first_paragraph(text: &str) -> &str {
    text.trim().split("\n\n").next().unwrap_or("")
}

impl Node {
    /// The digest of what reached this node between `opts.since` and
    /// `opts.until`, and the events of the weeks after `opts.until`.
    pub fn digest(&self, opts: &DigestOptions) -> Result<Digest, DigestError> {
        if opts.since > opts.until {
            return Err(DigestError::Invalid(
                "the period starts after it ends".into(),
            ));
        }
        let vocab = self.vocab();
        let mut wanted_priorities = BTreeSet::new();
        let mut priority_labels = Vec::new();
        for p in &opts.priorities {
            let term = vocab
                .priorities
                .resolve(p)
                .map_err(|e| DigestError::Invalid(e.to_string()))?;
            if wanted_priorities.insert(term.slug.clone()) {
                priority_labels.push(term.label.clone());
            }
        }
        let me = self.org();
        let mut d = Digest {
            since: opts.since,
            until: opts.until,
            org_name: self.org_name(&me),
            community: self.membership().map(|m| m.name),
            audience: opts.audience,
            priorities: priority_labels,
            sections: opts.sections.clone(),
            weeks_ahead: opts.weeks_ahead,
            learning: Vec::new(),
            new_projects: Vec::new(),
            updated_projects: Vec::new(),
            events: Vec::new(),
            new_ideas: Vec::new(),
            top_ideas: Vec::new(),
            conversations: Vec::new(),
            waiting: Vec::new(),
            new_contacts: None,
        };
        let shown = |e: &Entry| {
            e.meta.status == Status::Published
                && (opts.audience == Audience::Here || e.meta.visibility == Visibility::Community)
        };
        let on_topic = |e: &Entry| {
            wanted_priorities.is_empty()
                || e.body
                    .priorities()
                    .iter()
                    .any(|p| wanted_priorities.contains(p))
        };
        let arrivals = self.arrivals(opts.since, opts.until)?;
        let is_new = |e: &Entry, a: &Arrival| {
            a.first >= opts.since.millis()
                && e.meta.created.millis() >= opts.since.millis() - LATE_MS
        };
        let item = |e: &Entry, seen: i64| -> Item {
            let summary = match &e.body {
                Body::Learning(l) => first_paragraph(l.summary.as_str()).to_string(),
                Body::Project(p) => first_paragraph(p.summary.as_str()).to_string(),
                Body::Event(ev) => first_paragraph(ev.summary.as_str()).to_string(),
                Body::Idea(i) => first_paragraph(i.summary.as_str()).to_string(),
                _ => String::new(),
            };
            Item {
                id: e.id,
                kind: e.meta.kind,
                title: clip(e.body.title(), QUOTE_CHARS),
                summary: clip(&summary, QUOTE_CHARS),
                owner: e.meta.owner,
                owner_name: self.org_name(&e.meta.owner),
                seen: Timestamp(seen),
                priorities: e
                    .body
                    .priorities()
                    .iter()
                    .map(|p| vocab.priorities.label(p).to_string())
                    .collect(),
                restricted: e.meta.visibility != Visibility::Community,
            }
        };

        let mut new_contacts = 0;
        let mut new_messages = Vec::new();
        let mut new_ideas = Vec::new();
        for (id, a) in &arrivals {
            let Ok(e) = self.get(*id) else { continue };
            if !shown(&e) {
                continue;
            }
            let new = is_new(&e, a);
            match e.meta.kind {
                Kind::Learning if new && on_topic(&e) && opts.wants(Section::Learning) => {
                    d.learning.push(item(&e, a.first));
                }
                Kind::Project if on_topic(&e) && opts.wants(Section::Projects) => {
                    if new {
                        d.new_projects.push(item(&e, a.first));
                    } else if a.first < opts.since.millis() {
                        d.updated_projects.push(item(&e, a.last));
                    }
                }
                Kind::Idea if new && on_topic(&e) && opts.wants(Section::Ideas) => {
                    new_ideas.push(item(&e, a.first));
                }
                Kind::Message if new && opts.wants(Section::Conversations) => {
                    new_messages.push((e, a.first));
                }
                Kind::Contact if new => new_contacts += 1,
                _ => {}
            }
        }
        if opts.wants(Section::Contacts) && wanted_priorities.is_empty() {
            d.new_contacts = Some(new_contacts);
        }

        if opts.wants(Section::Events) {
            let horizon = opts
                .until
                .millis()
                .saturating_add(i64::from(opts.weeks_ahead) * 7 * 24 * 3_600_000);
            for l in self.list(&Filter {
                kind: Some(Kind::Event),
                ..Filter::default()
            })? {
                let Ok(e) = self.get(l.id) else { continue };
                let Body::Event(ev) = &e.body else { continue };
                if !shown(&e)
                    || !on_topic(&e)
                    || ev.ends.millis() < opts.until.millis()
                    || ev.starts.millis() > horizon
                {
                    continue;
                }
                let arrival = arrivals.get(&e.id);
                let going = self.attendance(e.id).map_or(0, |a| a.going.len());
                d.events.push(EventItem {
                    item: item(&e, arrival.map_or(0, |a| a.first)),
                    starts: ev.starts,
                    ends: ev.ends,
                    starts_local: convene_model::event::local_time(ev.starts, &ev.time_zone),
                    ends_local: convene_model::event::local_time(ev.ends, &ev.time_zone),
                    time_zone: ev.time_zone.clone(),
                    place: clip(&ev.place, QUOTE_CHARS),
                    link: if convene_model::event::is_web_link(&ev.link) {
                        ev.link.trim().to_string()
                    } else {
                        String::new()
                    },
                    cancelled: ev.cancelled,
                    going,
                    new: arrival.is_some_and(|a| is_new(&e, a)),
                });
            }
            d.events
                .sort_by(|a, b| a.starts.cmp(&b.starts).then(a.item.id.cmp(&b.item.id)));
        }

        if opts.wants(Section::Ideas) {
            let ranking = self.rank_ideas(None)?;
            let support: BTreeMap<DocumentId, BTreeSet<String>> = ranking
                .ideas
                .iter()
                .map(|r| (r.idea, r.supporters.iter().cloned().collect()))
                .collect();
            let fresh = self.fresh_support(&arrivals, &support)?;
            let with_support = |it: Item| {
                let support_now = support.get(&it.id).map_or(0, BTreeSet::len);
                let new_support = fresh.get(&it.id).copied().unwrap_or(0);
                IdeaItem {
                    item: it,
                    support: support_now,
                    new_support,
                }
            };
            let mut ideas: Vec<IdeaItem> = new_ideas.into_iter().map(with_support).collect();
            ideas.sort_by(|a, b| {
                b.support
                    .cmp(&a.support)
                    .then(a.item.seen.cmp(&b.item.seen))
                    .then(a.item.id.cmp(&b.item.id))
            });
            d.new_ideas = ideas;
            for r in ranking.ideas.iter().filter(|r| !r.supporters.is_empty()) {
                if d.top_ideas.len() == TOP_IDEAS {
                    break;
                }
                let Ok(e) = self.get(r.idea) else { continue };
                if !shown(&e) || !on_topic(&e) {
                    continue;
                }
                let seen = arrivals.get(&e.id).map_or(0, |a| a.first);
                d.top_ideas.push(with_support(item(&e, seen)));
            }
        }

        if opts.wants(Section::Conversations) {
            self.conversations(&mut d, new_messages, &shown, &on_topic)?;
        }

        d.learning
            .sort_by(|a, b| b.seen.cmp(&a.seen).then(a.id.cmp(&b.id)));
        d.new_projects
            .sort_by(|a, b| b.seen.cmp(&a.seen).then(a.id.cmp(&b.id)));
        d.updated_projects
            .sort_by(|a, b| b.seen.cmp(&a.seen).then(a.id.cmp(&b.id)));
        Ok(d)
    }

    /// Questions and replies: new ones on our entries (and answers to our
    /// questions), then our entries' questions no one has answered yet.
    fn conversations(
        &self,
        d: &mut Digest,
        new_messages: Vec<(Entry, i64)>,
        shown: &dyn Fn(&Entry) -> bool,
        on_topic: &dyn Fn(&Entry) -> bool,
    ) -> Result<(), DigestError> {
        let me = self.org();
        let mut abouts: BTreeMap<DocumentId, Option<Entry>> = BTreeMap::new();
        let mut about = |id: DocumentId| -> Option<Entry> {
            abouts
                .entry(id)
                .or_insert_with(|| self.get(id).ok())
                .clone()
        };
        for (e, seen) in new_messages {
            let Body::Message(m) = &e.body else { continue };
            if e.meta.owner == me {
                continue;
            }
            let Ok(about_id) = m.about.parse::<DocumentId>() else {
                continue;
            };
            let Some(target) = about(about_id) else {
                continue;
            };
            if target.meta.status != Status::Published || !on_topic(&target) {
                continue;
            }
            let on_ours = target.meta.owner == me;
            let answers_us = !on_ours
                && m.reply_to
                    .as_deref()
                    .and_then(|r| r.parse::<DocumentId>().ok())
                    .and_then(|r| self.get(r).ok())
                    .is_some_and(|parent| parent.meta.owner == me);
            if !on_ours && !answers_us {
                continue;
            }
            d.conversations.push(MessageItem {
                id: e.id,
                question: m.is_question(),
                from: e.meta.owner,
                from_name: self.org_name(&e.meta.owner),
                about: about_id,
                about_title: clip(target.body.title(), QUOTE_CHARS),
                text: clip(m.headline(), QUOTE_CHARS),
                seen: Timestamp(seen),
                answers_us,
            });
        }
        d.conversations
            .sort_by(|a, b| a.seen.cmp(&b.seen).then(a.id.cmp(&b.id)));
        for q in self.open_questions()? {
            if !q.on_ours {
                continue;
            }
            let (Ok(question), Some(target)) = (self.get(q.question), about(q.about)) else {
                continue;
            };
            if !shown(&question) || !on_topic(&target) || question.meta.owner == me {
                continue;
            }
            d.waiting.push(MessageItem {
                id: q.question,
                question: true,
                from: question.meta.owner,
                from_name: q.asked_by.clone(),
                about: q.about,
                about_title: clip(&q.about_title, QUOTE_CHARS),
                text: clip(q.text.lines().next().unwrap_or("").trim(), QUOTE_CHARS),
                seen: q.asked,
                answers_us: false,
            });
        }
        d.waiting
            .sort_by(|a, b| a.seen.cmp(&b.seen).then(a.id.cmp(&b.id)));
        Ok(())
    }

    /// For each idea, how many of its current supporters' responses
    /// reached this node in the period.
    fn fresh_support(
        &self,
        arrivals: &BTreeMap<DocumentId, Arrival>,
        support: &BTreeMap<DocumentId, BTreeSet<String>>,
    ) -> Result<BTreeMap<DocumentId, usize>, DigestError> {
        let mut fresh: BTreeMap<DocumentId, BTreeSet<OrgId>> = BTreeMap::new();
        for id in arrivals.keys() {
            let Ok(Entry {
                meta,
                body: Body::Response(r),
                ..
            }) = self.get(*id)
            else {
                continue;
            };
            if meta.status != Status::Published || r.answer != Answer::Support {
                continue;
            }
            let Ok(idea) = r.to.parse::<DocumentId>() else {
                continue;
            };
            if support
                .get(&idea)
                .is_some_and(|s| s.contains(&meta.owner.to_string()))
            {
                fresh.entry(idea).or_default().insert(meta.owner);
            }
        }
        Ok(fresh.into_iter().map(|(k, v)| (k, v.len())).collect())
    }

    /// Documents of the kinds a digest reads with a change that reached
    /// this node in `[since, until]`, with their first and last arrival.
    /// (One pass over `changes`, which has no index on `received`: a few
    /// milliseconds for tens of thousands of changes.)
    fn arrivals(
        &self,
        since: Timestamp,
        until: Timestamp,
    ) -> Result<BTreeMap<DocumentId, Arrival>, DigestError> {
        let conn = self.store().conn();
        let mut stmt = conn.prepare_cached(
            "SELECT d.doc, d.kind,
                    (SELECT min(f.received) FROM changes f WHERE f.doc = d.doc),
                    r.last
             FROM (SELECT doc, max(received) AS last FROM changes
                   WHERE received >= ?1 AND received <= ?2 GROUP BY doc) r
             JOIN docs d ON d.doc = r.doc
             WHERE d.kind IN ('learning', 'project', 'event', 'idea', 'message', 'contact', 'response')
               AND d.status = 'published'",
        )?;
        let rows = stmt.query_map([since.millis(), until.millis()], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })?;
        let mut out = BTreeMap::new();
        for row in rows {
            let (doc, first, last) = row?;
            if let Some(id) = DocumentId::from_slice(&doc) {
                out.insert(id, Arrival { first, last });
            }
        }
        Ok(out)
    }
}
