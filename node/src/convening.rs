//! Convening: questions and replies on entries, going to events, and
//! supporting ideas in the stewards' voting rounds.
//!
//! Everything here is an ordinary signed entry owned by the organisation
//! that wrote it (a [`Message`] or a [`Response`]), so the trust rules are
//! the ones every entry has: only the author's organisation can write or
//! retract it, and receivers check that on every change. What this module
//! adds is how those documents are *written* (their audience is the
//! audience of the entry they are about, worked out here, and an
//! organisation keeps one response per thing, edited when it changes its
//! mind) and how they are *read together*: a thread, who is going, how
//! ideas rank. Every reading is a pure function of the documents held, so
//! two nodes that hold the same documents show the same thread, the same
//! attendance and the same ranking.
//!
//! Times that a sender declares (a response's `at`) decide only order
//! among one organisation's own answers and who got a place first; they
//! never decide authority. A round's result after it closes is what the
//! steward's [`convene_model::Seal`] recorded, not what voters' clocks
//! claim.

use std::collections::{BTreeMap, BTreeSet};

use convene_model::{
    Answer, Body, DocumentId, Entry, Event, Idea, Kind, Message, OrgId, Prose, Response, Round,
    Seal, SealedVote, Status, Timestamp, Visibility,
};

use crate::error::NodeError;
use crate::node::{Node, create_in, may_edit, now};
use crate::store::Filter;

/// One message in a thread, with the replies under it (questions only).
#[derive(Debug, Clone, PartialEq)]
pub struct ThreadMessage {
    pub id: DocumentId,
    pub owner: OrgId,
    pub owner_name: Option<String>,
    pub created: Timestamp,
    pub text: String,
    /// The replies to this question, oldest first (replies to replies
    /// included, in the order they were written).
    pub replies: Vec<ThreadMessage>,
}

impl ThreadMessage {
    /// A question is open until an organisation other than the asker's
    /// replies.
    pub fn is_open(&self) -> bool {
        !self.replies.iter().any(|r| r.owner != self.owner)
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id.to_string(),
            "owner": self.owner.to_string(),
            "owner_name": self.owner_name,
            "created": self.created.to_string(),
            "text": self.text,
            "open": self.is_open(),
            "replies": self.replies.iter().map(ThreadMessage::to_json).collect::<Vec<_>>(),
        })
    }
}

/// The conversation about one entry: its questions, open ones first.
#[derive(Debug, Clone, PartialEq)]
pub struct Thread {
    pub about: DocumentId,
    pub questions: Vec<ThreadMessage>,
}

impl Thread {
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "about": self.about.to_string(),
            "questions": self.questions.iter().map(ThreadMessage::to_json).collect::<Vec<_>>(),
        })
    }
}

/// A question still waiting for an answer.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenQuestion {
    pub question: DocumentId,
    pub about: DocumentId,
    pub about_title: String,
    /// Whether the entry asked about is this node's organisation's.
    pub on_ours: bool,
    pub asked_by: Option<String>,
    pub asked: Timestamp,
    pub text: String,
}

/// An organisation going to an event.
#[derive(Debug, Clone, PartialEq)]
pub struct Attendee {
    pub org: String,
    pub name: Option<String>,
    pub at: Timestamp,
    /// Given a place by the organiser's node (always, for an event with
    /// no limit).
    pub confirmed: bool,
    /// Not given a place because the places are taken; neither this nor
    /// `confirmed` means the organiser's node has not heard the answer yet.
    pub waiting: bool,
}

/// Who is going to an event.
#[derive(Debug, Clone, PartialEq)]
pub struct Attendance {
    pub event: DocumentId,
    pub capacity: Option<u64>,
    pub going: Vec<Attendee>,
}

impl Attendance {
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "event": self.event.to_string(),
            "capacity": self.capacity,
            "going": self.going.iter().map(|a| serde_json::json!({
                "org": a.org,
                "name": a.name,
                "at": a.at.to_string(),
                "confirmed": a.confirmed,
                "waiting": a.waiting,
            })).collect::<Vec<_>>(),
        })
    }
}

/// Where a round is at a given moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    NotOpen,
    Open,
    /// Past its close, waiting for the steward's seal: the count shown is
    /// provisional.
    Closed,
    Sealed,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::NotOpen => "not open yet",
            Phase::Open => "open",
            Phase::Closed => "closed (provisional until a steward seals it)",
            Phase::Sealed => "sealed",
        }
    }
}

/// One idea's place in a ranking.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranked {
    pub idea: DocumentId,
    pub title: String,
    pub owner_name: Option<String>,
    pub created: Timestamp,
    /// The organisations whose support counts, by id.
    pub supporters: Vec<String>,
}

/// Ideas in order of support.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranking {
    /// The round ranked, with its title and phase; `None` for all ideas.
    pub round: Option<(DocumentId, String, Phase)>,
    pub ideas: Vec<Ranked>,
}

impl Ranking {
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "round": self.round.as_ref().map(|(id, title, phase)| serde_json::json!({
                "id": id.to_string(), "title": title, "phase": phase.as_str(),
            })),
            "ideas": self.ideas.iter().enumerate().map(|(i, r)| serde_json::json!({
                "rank": i + 1,
                "id": r.idea.to_string(),
                "title": r.title,
                "owner_name": r.owner_name,
                "support": r.supporters.len(),
                "supporters": r.supporters,
            })).collect::<Vec<_>>(),
        })
    }
}

fn refused(message: impl Into<String>) -> NodeError {
    NodeError::Convening(message.into())
}

impl Node {
    /// Asks a question about an entry (a learning entry, project, event or
    /// idea this node holds and may see).
    pub fn ask(&mut self, about: DocumentId, text: &str) -> Result<DocumentId, NodeError> {
        let target = self.get(about)?;
        if !matches!(
            target.meta.kind,
            Kind::Learning | Kind::Project | Kind::Event | Kind::Idea
        ) {
            return Err(refused(format!(
                "{about} is a {}: questions are asked about learning, projects, events and ideas",
                target.meta.kind
            )));
        }
        self.write_message(&target, None, text)
    }

    /// Replies to a question or to another reply.
    pub fn reply(&mut self, to: DocumentId, text: &str) -> Result<DocumentId, NodeError> {
        let parent = self.get(to)?;
        let Body::Message(m) = &parent.body else {
            return Err(refused(format!(
                "{to} is a {}, not a question or reply: to ask about it, use `convene ask {to}`",
                parent.meta.kind
            )));
        };
        if parent.meta.status == Status::Retracted {
            return Err(NodeError::Retracted(to));
        }
        let about: DocumentId = m
            .about
            .parse()
            .map_err(|_| refused(format!("{to} names no entry it is about")))?;
        let target = self.get(about).map_err(|e| match e {
            NodeError::UnknownId(_) => refused(format!(
                "the entry {about} this conversation is about is not on this node (yet)"
            )),
            other => other,
        })?;
        self.write_message(&target, Some(to), text)
    }

    fn write_message(
        &mut self,
        target: &Entry,
        reply_to: Option<DocumentId>,
        text: &str,
    ) -> Result<DocumentId, NodeError> {
        let visibility = self.open_to_answers(target)?;
        let mut body = Body::Message(Message {
            about: target.id.to_string(),
            reply_to: reply_to.map(|r| r.to_string()),
            text: Prose(text.trim().to_string()),
        });
        body.check(self.vocab())?;
        self.create(body, visibility)
    }

    /// The audience of a message or response about `target`: everyone who
    /// may see the target (so a reply never reaches anyone the entry does
    /// not), refusing drafts and retracted entries.
    fn open_to_answers(&self, target: &Entry) -> Result<Visibility, NodeError> {
        match target.meta.status {
            Status::Draft => {
                return Err(refused(format!(
                    "{} is a draft: publish it before others can answer it",
                    target.id
                )));
            }
            Status::Retracted => return Err(NodeError::Retracted(target.id)),
            Status::Published => {}
        }
        Ok(audience(target, self.org()))
    }

    fn create(&mut self, body: Body, visibility: Visibility) -> Result<DocumentId, NodeError> {
        let entry = self.new_entry(body, visibility, Status::Published);
        let identity = self.identity().clone();
        self.store_mut()
            .write(|w| create_in(w, &identity, None, entry))
    }

    /// The conversation about an entry: questions with their replies,
    /// open questions first, then newest first. Retracted messages are
    /// left out.
    pub fn thread(&self, about: DocumentId) -> Result<Thread, NodeError> {
        let mut messages = BTreeMap::new();
        for id in self.linked(Kind::Message, "about", about, None)? {
            let Ok(e) = self.get(id) else { continue };
            if let Body::Message(m) = &e.body
                && m.about == about.to_string()
            {
                messages.insert(id, (e.meta.clone(), m.clone()));
            }
        }
        // Each reply goes under the question its chain of replies starts
        // from; a reply whose question is not here goes nowhere.
        let root_of = |mut id: DocumentId| -> Option<DocumentId> {
            for _ in 0..messages.len() + 1 {
                let (_, m) = messages.get(&id)?;
                match &m.reply_to {
                    None => return Some(id),
                    Some(parent) => id = parent.parse().ok()?,
                }
            }
            None
        };
        let one = |id: DocumentId| -> ThreadMessage {
            let (meta, m) = &messages[&id];
            ThreadMessage {
                id,
                owner: meta.owner,
                owner_name: self.org_name(&meta.owner),
                created: meta.created,
                text: m.text.as_str().to_string(),
                replies: Vec::new(),
            }
        };
        let mut questions: BTreeMap<DocumentId, ThreadMessage> = messages
            .iter()
            .filter(|(_, (_, m))| m.is_question())
            .map(|(id, _)| (*id, one(*id)))
            .collect();
        for (id, (_, m)) in &messages {
            if m.is_question() {
                continue;
            }
            if let Some(root) = root_of(*id)
                && let Some(q) = questions.get_mut(&root)
            {
                q.replies.push(one(*id));
            }
        }
        let mut questions: Vec<ThreadMessage> = questions.into_values().collect();
        for q in &mut questions {
            q.replies.sort_by_key(|r| (r.created, r.id));
        }
        questions.sort_by(|a, b| {
            b.is_open()
                .cmp(&a.is_open())
                .then(b.created.cmp(&a.created))
                .then(a.id.cmp(&b.id))
        });
        Ok(Thread { about, questions })
    }

    /// Questions nobody outside the asker's organisation has answered yet:
    /// those on this organisation's entries first, then newest first.
    pub fn open_questions(&self) -> Result<Vec<OpenQuestion>, NodeError> {
        let listed = self.list(&Filter {
            kind: Some(Kind::Message),
            ..Filter::default()
        })?;
        let mut abouts = BTreeSet::new();
        for l in &listed {
            if let Ok(Entry {
                body: Body::Message(m),
                ..
            }) = self.get(l.id)
                && let Ok(about) = m.about.parse::<DocumentId>()
            {
                abouts.insert(about);
            }
        }
        let mut out = Vec::new();
        for about in abouts {
            let Ok(target) = self.get(about) else {
                continue;
            };
            if target.meta.status == Status::Retracted {
                continue;
            }
            for q in self.thread(about)?.questions {
                if q.is_open() {
                    out.push(OpenQuestion {
                        question: q.id,
                        about,
                        about_title: target.body.title().to_string(),
                        on_ours: target.meta.owner == self.org(),
                        asked_by: q.owner_name.clone(),
                        asked: q.created,
                        text: q.text.clone(),
                    });
                }
            }
        }
        out.sort_by(|a, b| {
            b.on_ours
                .cmp(&a.on_ours)
                .then(b.asked.cmp(&a.asked))
                .then(a.question.cmp(&b.question))
        });
        Ok(out)
    }

    /// This organisation's answer to an event (`going`, `not-going`) or an
    /// idea (`support`, `withdrawn`): one response document per
    /// organisation and thing, edited when the answer changes.
    pub fn respond(&mut self, to: DocumentId, answer: Answer) -> Result<DocumentId, NodeError> {
        let target = self.get(to)?;
        match (&target.body, answer) {
            (Body::Event(e), Answer::Going | Answer::NotGoing) => {
                if e.cancelled && answer == Answer::Going {
                    return Err(refused(format!("event {to} is cancelled")));
                }
                if !e.is_upcoming(now()) && answer == Answer::Going {
                    return Err(refused(format!("event {to} is over")));
                }
            }
            (Body::Idea(i), Answer::Support | Answer::Withdrawn) => {
                if let Some(round) = self.round_of(i)? {
                    let (rid, r) = &round;
                    let at = now();
                    if !r.is_open(at) {
                        let when = if at.millis() < r.opens.millis() {
                            format!("it opens {}", r.opens.short())
                        } else {
                            format!("it closed {}", r.closes.short())
                        };
                        return Err(refused(format!(
                            "voting in round {rid} ({}) is not open: {when}",
                            r.title
                        )));
                    }
                    if answer == Answer::Support
                        && let Some(picks) = r.picks
                    {
                        let mine = self.supported_in_round(*rid, to)?;
                        if mine.len() as u64 >= picks {
                            return Err(refused(format!(
                                "your organisation already supports {} ideas in round {:?}, its limit: withdraw one first (`convene vote ID --withdraw`)",
                                mine.len(),
                                r.title
                            )));
                        }
                    }
                }
            }
            (Body::Event(_), _) => {
                return Err(refused(
                    "an event takes going or not-going (`convene attend ID [--not-going]`)",
                ));
            }
            (Body::Idea(_), _) => {
                return Err(refused(
                    "an idea takes support or withdrawn (`convene vote ID [--withdraw]`)",
                ));
            }
            _ => {
                return Err(refused(format!(
                    "{to} is a {}: organisations answer events and ideas only",
                    target.meta.kind
                )));
            }
        }
        let visibility = self.open_to_answers(&target)?;
        let body = Body::Response(Response {
            to: to.to_string(),
            answer,
            at: now(),
        });
        let id = match self.my_response(to)? {
            None => self.create(body, visibility)?,
            Some(id) => {
                let org = self.org();
                self.commit(id, "answer", |current| {
                    let current = current.ok_or_else(|| NodeError::UnknownId(id.to_string()))?;
                    may_edit(org, &current)?;
                    let mut next = current.clone();
                    next.body = body;
                    next.meta.status = Status::Published;
                    next.meta.visibility = visibility;
                    next.meta.updated = now();
                    Ok(Some(next))
                })?;
                id
            }
        };
        if target.meta.kind == Kind::Event {
            self.allocate_places(to)?;
        }
        Ok(id)
    }

    /// This organisation's latest response to `to`, if it has answered.
    fn my_response(&self, to: DocumentId) -> Result<Option<DocumentId>, NodeError> {
        let me = self.org();
        Ok(self
            .responses(to)?
            .into_iter()
            .filter(|(owner, _, _)| *owner == me)
            .max_by_key(|(_, r, id)| (r.at, *id))
            .map(|(_, _, id)| id))
    }

    /// Every held, unretracted response to `to`, with its owner.
    fn responses(&self, to: DocumentId) -> Result<Vec<(OrgId, Response, DocumentId)>, NodeError> {
        let mut out = Vec::new();
        for id in self.linked(Kind::Response, "to", to, None)? {
            if let Ok(Entry {
                meta,
                body: Body::Response(r),
                ..
            }) = self.get(id)
                && r.to == to.to_string()
            {
                out.push((meta.owner, r, id));
            }
        }
        Ok(out)
    }

    /// Each organisation's current answer to `to`: its latest response by
    /// `at`, then by id (the same choice on every node). An organisation
    /// removed from the community no longer answers: its votes and places
    /// stop counting once the removal has synced.
    /// `removed` is [`Node::removed_orgs`], read once by the caller (the
    /// community is worked out from many documents).
    fn current_answers(
        &self,
        to: DocumentId,
        removed: &BTreeSet<String>,
    ) -> Result<BTreeMap<OrgId, Response>, NodeError> {
        let mut latest: BTreeMap<OrgId, (Timestamp, DocumentId, Response)> = BTreeMap::new();
        for (owner, r, id) in self.responses(to)? {
            if removed.contains(&owner.to_string()) {
                continue;
            }
            let newer = latest
                .get(&owner)
                .is_none_or(|(at, prev, _)| (r.at, id) > (*at, *prev));
            if newer {
                latest.insert(owner, (r.at, id, r));
            }
        }
        Ok(latest.into_iter().map(|(o, (_, _, r))| (o, r)).collect())
    }

    /// The organisations removed from the community (ids).
    fn removed_orgs(&self) -> BTreeSet<String> {
        self.membership()
            .map(|m| {
                m.members
                    .values()
                    .filter(|i| i.removed.is_some())
                    .map(|i| i.org.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Who is going to an event: those the organiser gave a place first
    /// (in that order), then the others by when they answered.
    pub fn attendance(&self, event: DocumentId) -> Result<Attendance, NodeError> {
        let e = self.event(event)?;
        let going = self.going(event, &self.removed_orgs())?;
        let placed: Vec<&String> = e
            .places
            .iter()
            .filter(|p| going.iter().any(|(_, o)| o.to_string() == **p))
            .collect();
        let full = e.capacity.is_some_and(|c| placed.len() as u64 >= c);
        let mut out = Vec::new();
        for p in &placed {
            if let Some((at, org)) = going.iter().find(|(_, o)| o.to_string() == **p) {
                out.push(Attendee {
                    org: org.to_string(),
                    name: self.org_name(org),
                    at: *at,
                    confirmed: true,
                    waiting: false,
                });
            }
        }
        for (at, org) in &going {
            if placed.contains(&&org.to_string()) {
                continue;
            }
            out.push(Attendee {
                org: org.to_string(),
                name: self.org_name(org),
                at: *at,
                confirmed: e.capacity.is_none(),
                waiting: full,
            });
        }
        Ok(Attendance {
            event,
            capacity: e.capacity,
            going: out,
        })
    }

    /// The organisations going to `event`, by when they answered.
    fn going(
        &self,
        event: DocumentId,
        removed: &BTreeSet<String>,
    ) -> Result<Vec<(Timestamp, OrgId)>, NodeError> {
        let mut going: Vec<(Timestamp, OrgId)> = self
            .current_answers(event, removed)?
            .into_iter()
            .filter(|(_, r)| r.answer == Answer::Going)
            .map(|(org, r)| (r.at, org))
            .collect();
        going.sort();
        Ok(going)
    }

    /// On the organiser's node: gives the event's free places to the
    /// organisations going that have none, in the order this node holds
    /// their answers (kept places stay; a place given up frees it).
    /// Returns whether the places changed. Does nothing for an event this
    /// organisation does not own or one without a limit.
    pub fn allocate_places(&mut self, event: DocumentId) -> Result<bool, NodeError> {
        let entry = self.get(event)?;
        let Body::Event(e) = &entry.body else {
            return Ok(false);
        };
        let Some(capacity) = e.capacity else {
            return Ok(false);
        };
        if entry.meta.owner != self.org() || entry.meta.status != Status::Published {
            return Ok(false);
        }
        let going = self.going(event, &self.removed_orgs())?;
        let is_going = |p: &String| going.iter().any(|(_, o)| o.to_string() == *p);
        let mut places: Vec<String> = e.places.iter().filter(|p| is_going(p)).cloned().collect();
        for (_, org) in &going {
            if places.len() as u64 >= capacity {
                break;
            }
            let org = org.to_string();
            if !places.contains(&org) {
                places.push(org);
            }
        }
        if places == e.places {
            return Ok(false);
        }
        self.commit(event, "places", |current| {
            let current = current.ok_or_else(|| NodeError::UnknownId(event.to_string()))?;
            let mut next = current.clone();
            if let Body::Event(e) = &mut next.body {
                e.places = places;
            }
            next.meta.updated = now();
            Ok(Some(next))
        })?;
        Ok(true)
    }

    /// After answers arrive: the organiser's node gives out the places of
    /// its events that the `changed` responses are about.
    pub fn allocate_places_for(&mut self, changed: &[DocumentId]) -> Result<(), NodeError> {
        let mut events = BTreeSet::new();
        for id in changed {
            if let Ok(Entry {
                body: Body::Response(r),
                ..
            }) = self.get(*id)
                && let Ok(to) = r.to.parse::<DocumentId>()
            {
                events.insert(to);
            }
        }
        for event in events {
            match self.allocate_places(event) {
                Ok(_) | Err(NodeError::UnknownId(_) | NodeError::Erased(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn event(&self, id: DocumentId) -> Result<Event, NodeError> {
        match self.get(id)? {
            Entry {
                body: Body::Event(e),
                ..
            } => Ok(e),
            other => Err(refused(format!(
                "{id} is a {}, not an event",
                other.meta.kind
            ))),
        }
    }

    /// The round an idea is put forward in, if it names one this node
    /// holds and a steward set.
    fn round_of(&self, idea: &Idea) -> Result<Option<(DocumentId, Round)>, NodeError> {
        let Some(rid) = idea.round.as_deref().and_then(|r| r.parse().ok()) else {
            return Ok(None);
        };
        Ok(self.valid_round(rid)?.map(|r| (rid, r)))
    }

    /// A round, if this node holds it, it is not retracted, and its owner
    /// is a steward of the community (any organisation outside one).
    fn valid_round(&self, rid: DocumentId) -> Result<Option<Round>, NodeError> {
        match self.get(rid) {
            Ok(Entry {
                meta,
                body: Body::Round(r),
                ..
            }) if meta.status == Status::Published && self.is_steward(&meta.owner) => Ok(Some(r)),
            Ok(_) | Err(NodeError::UnknownId(_) | NodeError::Erased(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Whether `org` may set voting rounds: a steward of the community,
    /// or any organisation when this node is in no community.
    pub fn is_steward(&self, org: &OrgId) -> bool {
        match self.membership() {
            None => true,
            Some(m) => m
                .members
                .get(&org.to_string())
                .is_some_and(|i| i.steward && i.removed.is_none()),
        }
    }

    /// The ideas of round `rid` (other than `except`) this organisation
    /// supports now.
    fn supported_in_round(
        &self,
        rid: DocumentId,
        except: DocumentId,
    ) -> Result<Vec<DocumentId>, NodeError> {
        let me = self.org();
        let removed = self.removed_orgs();
        let mut out = Vec::new();
        for idea in self.linked(Kind::Idea, "round", rid, None)? {
            if idea == except {
                continue;
            }
            if self
                .current_answers(idea, &removed)?
                .get(&me)
                .is_some_and(|r| r.answer == Answer::Support)
            {
                out.push(idea);
            }
        }
        Ok(out)
    }

    /// Ideas ranked by how many organisations support them: all ideas, or
    /// those of one round (counted by the round's rules: votes inside its
    /// times, at most `picks` per organisation, and after a steward's seal
    /// exactly the sealed votes). Ties go to the older idea.
    pub fn rank_ideas(&self, round: Option<DocumentId>) -> Result<Ranking, NodeError> {
        let at = now();
        let removed = self.removed_orgs();
        let (ideas, header, counted) = match round {
            None => {
                let ideas = self
                    .list(&Filter {
                        kind: Some(Kind::Idea),
                        ..Filter::default()
                    })?
                    .into_iter()
                    .map(|l| l.id)
                    .collect::<Vec<_>>();
                let mut counted = BTreeMap::new();
                for idea in &ideas {
                    counted.insert(*idea, self.supporters(*idea, &removed)?);
                }
                (ideas, None, counted)
            }
            Some(rid) => {
                let r = self.valid_round(rid)?.ok_or_else(|| {
                    refused(format!(
                        "{rid} is not a voting round set by a steward on this node"
                    ))
                })?;
                let ideas = self.round_ideas(rid)?;
                let phase = if r.seal.is_some() {
                    Phase::Sealed
                } else if at.millis() < r.opens.millis() {
                    Phase::NotOpen
                } else if at.millis() < r.closes.millis() {
                    Phase::Open
                } else {
                    Phase::Closed
                };
                let counted = match &r.seal {
                    Some(seal) => {
                        let mut counted: BTreeMap<DocumentId, Vec<String>> = BTreeMap::new();
                        for v in &seal.votes {
                            if let Ok(idea) = v.idea.parse::<DocumentId>()
                                && ideas.contains(&idea)
                            {
                                counted.entry(idea).or_default().push(v.org.clone());
                            }
                        }
                        counted
                    }
                    None => self.round_votes(&r, &ideas, &removed)?,
                };
                (ideas, Some((rid, r.title.clone(), phase)), counted)
            }
        };
        let mut ranked = Vec::new();
        for idea in ideas {
            let Ok(e) = self.get(idea) else { continue };
            if e.meta.status != Status::Published {
                continue;
            }
            let mut supporters = counted.get(&idea).cloned().unwrap_or_default();
            supporters.sort();
            supporters.dedup();
            ranked.push(Ranked {
                idea,
                title: e.body.title().to_string(),
                owner_name: self.org_name(&e.meta.owner),
                created: e.meta.created,
                supporters,
            });
        }
        ranked.sort_by(|a, b| {
            b.supporters
                .len()
                .cmp(&a.supporters.len())
                .then(a.created.cmp(&b.created))
                .then(a.idea.cmp(&b.idea))
        });
        Ok(Ranking {
            round: header,
            ideas: ranked,
        })
    }

    /// The organisations whose current answer to `idea` is support.
    fn supporters(
        &self,
        idea: DocumentId,
        removed: &BTreeSet<String>,
    ) -> Result<Vec<String>, NodeError> {
        Ok(self
            .current_answers(idea, removed)?
            .into_iter()
            .filter(|(_, r)| r.answer == Answer::Support)
            .map(|(o, _)| o.to_string())
            .collect())
    }

    /// The published ideas put forward in round `rid`.
    fn round_ideas(&self, rid: DocumentId) -> Result<Vec<DocumentId>, NodeError> {
        self.linked(Kind::Idea, "round", rid, None)
    }

    /// The votes a round counts before it is sealed: each organisation's
    /// current support given between the opening and the close, at most
    /// `picks` of them per organisation (its earliest).
    fn round_votes(
        &self,
        r: &Round,
        ideas: &[DocumentId],
        removed: &BTreeSet<String>,
    ) -> Result<BTreeMap<DocumentId, Vec<String>>, NodeError> {
        let mut by_org: BTreeMap<OrgId, Vec<(Timestamp, DocumentId)>> = BTreeMap::new();
        for idea in ideas {
            for (org, resp) in self.current_answers(*idea, removed)? {
                if resp.answer == Answer::Support
                    && resp.at.millis() >= r.opens.millis()
                    && resp.at.millis() < r.closes.millis()
                {
                    by_org.entry(org).or_default().push((resp.at, *idea));
                }
            }
        }
        let mut counted: BTreeMap<DocumentId, Vec<String>> = BTreeMap::new();
        for (org, mut votes) in by_org {
            votes.sort();
            let keep = r.picks.map_or(votes.len(), |p| p as usize);
            for (_, idea) in votes.into_iter().take(keep) {
                counted.entry(idea).or_default().push(org.to_string());
            }
        }
        Ok(counted)
    }

    /// Seals a round after its close: records the votes this node holds
    /// as the result every node will show. Only the steward organisation
    /// that set the round can (it owns the round's document).
    pub fn seal_round(&mut self, rid: DocumentId) -> Result<usize, NodeError> {
        let entry = self.get(rid)?;
        let Body::Round(r) = &entry.body else {
            return Err(refused(format!(
                "{rid} is a {}, not a voting round",
                entry.meta.kind
            )));
        };
        may_edit(self.org(), &entry).map_err(|e| self.with_owner_name(e))?;
        if r.seal.is_some() {
            return Err(refused(format!("round {rid} is sealed already")));
        }
        if now().millis() < r.closes.millis() {
            return Err(refused(format!(
                "round {rid} closes {}: it can be sealed after that",
                r.closes.short()
            )));
        }
        let ideas = self.round_ideas(rid)?;
        let counted = self.round_votes(r, &ideas, &self.removed_orgs())?;
        let votes: Vec<SealedVote> = counted
            .into_iter()
            .flat_map(|(idea, orgs)| {
                orgs.into_iter().map(move |org| SealedVote {
                    org,
                    idea: idea.to_string(),
                })
            })
            .collect();
        let n = votes.len();
        let seal = Seal { at: now(), votes };
        self.commit(rid, "seal", |current| {
            let current = current.ok_or_else(|| NodeError::UnknownId(rid.to_string()))?;
            let mut next = current.clone();
            if let Body::Round(r) = &mut next.body {
                r.seal = Some(seal);
            }
            next.meta.updated = now();
            Ok(Some(next))
        })?;
        Ok(n)
    }

    /// Published documents of `kind` whose `field` term names `target`
    /// (optionally owned by `owner`).
    fn linked(
        &self,
        kind: Kind,
        field: &str,
        target: DocumentId,
        owner: Option<OrgId>,
    ) -> Result<Vec<DocumentId>, NodeError> {
        Ok(self
            .list(&Filter {
                kind: Some(kind),
                owner: owner.map(|o| o.to_string()),
                terms: vec![(field.to_string(), target.to_string())],
                ..Filter::default()
            })?
            .into_iter()
            .filter(|l| l.status == "published")
            .map(|l| l.id)
            .collect())
    }
}

/// Who may read answers to `target`, written by `me`: everyone who may see
/// the target. The answer's owner is `me`, so the list names the others.
pub fn audience(target: &Entry, me: OrgId) -> Visibility {
    let others: Vec<OrgId> = match &target.meta.visibility {
        Visibility::Community => return Visibility::Community,
        Visibility::Organisation => vec![target.meta.owner],
        Visibility::Orgs(list) => list
            .iter()
            .copied()
            .chain(std::iter::once(target.meta.owner))
            .collect(),
    };
    let mut others: Vec<OrgId> = others.into_iter().filter(|o| *o != me).collect();
    others.sort();
    others.dedup();
    if others.is_empty() {
        Visibility::Organisation
    } else {
        Visibility::Orgs(others)
    }
}
