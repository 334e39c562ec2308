//! Gathering a [`Digest`]: which documents reached this node in the
//! period (one pass over `changes`), which of them a digest may show, and
//! the sections built from them.

use std::collections::{BTreeMap, BTreeSet};

use convene_model::{Answer, Body, DocumentId, Entry, Kind, OrgId, Status, Timestamp, Visibility};

use super::{
    Audience, Digest, DigestError, DigestOptions, EventItem, IdeaItem, Item, LATE_MS, MessageItem,
    QUOTE_CHARS, Section, TOP_IDEAS, clip,
};
use crate::node::Node;
use crate::store::Filter;

/// When a document's changes reached this node.
#[derive(Debug, Clone)]
struct Arrival {
    first: i64,
    last: i64,
    /// The document's kind as the store indexed it.
    kind: String,
}

/// The section a document of `kind` feeds, if any.
fn section_of(kind: &str) -> Option<Section> {
    Some(match kind {
        "learning" => Section::Learning,
        "project" => Section::Projects,
        "event" => Section::Events,
        "idea" | "response" => Section::Ideas,
        "message" => Section::Conversations,
        "contact" => Section::Contacts,
        _ => return None,
    })
}

/// Keeps the first `n` of `list`; how many it dropped.
fn cut<T>(list: &mut Vec<T>, n: usize) -> usize {
    let dropped = list.len().saturating_sub(n);
    list.truncate(n);
    dropped
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
            left_out: 0,
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
        // Organisation names, each read once (a profile is a document).
        let names: std::cell::RefCell<BTreeMap<OrgId, Option<String>>> = Default::default();
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
                owner_name: names
                    .borrow_mut()
                    .entry(e.meta.owner)
                    .or_insert_with(|| self.org_name(&e.meta.owner))
                    .clone(),
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
            // Only what a wanted section reads is loaded (events are read
            // from the list of events below; responses by `fresh_support`).
            let wanted = section_of(&a.kind).is_some_and(|s| opts.wants(s));
            if !wanted || matches!(a.kind.as_str(), "event" | "response") {
                continue;
            }
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
        if let Some(n) = opts.limit {
            d.left_out = cut(&mut d.learning, n)
                + cut(&mut d.new_projects, n)
                + cut(&mut d.updated_projects, n)
                + cut(&mut d.events, n)
                + cut(&mut d.new_ideas, n)
                + cut(&mut d.conversations, n)
                + cut(&mut d.waiting, n);
        }
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
            // The entry talked about must be one this digest may show too:
            // a message's visibility is what its sender wrote, and one
            // claiming "community" about an entry shown to a few must not
            // carry that entry's title out.
            if !shown(&target) || !on_topic(&target) {
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
            if !shown(&question)
                || !shown(&target)
                || !on_topic(&target)
                || question.meta.owner == me
            {
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
        for (id, a) in arrivals {
            if a.kind != "response" {
                continue;
            }
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
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })?;
        let mut out = BTreeMap::new();
        for row in rows {
            let (doc, kind, first, last) = row?;
            if let Some(id) = DocumentId::from_slice(&doc) {
                out.insert(id, Arrival { first, last, kind });
            }
        }
        Ok(out)
    }
}
