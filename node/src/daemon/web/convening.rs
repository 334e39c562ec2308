//! The community's conversations, events and ideas in the web app.
//!
//! - An entry's page (learning, project, event, idea) gets a **Questions**
//!   section: the thread `Node::thread` reads (open questions first, each
//!   with its replies), a form to ask, and a reply form under each
//!   question. `POST /e/{id}/ask` asks about entry `id`; `POST
//!   /e/{id}/reply` replies to message `id`. Both redirect to the message's
//!   anchor (`/e/{about}#q-{message}`); a refused post comes back as the
//!   entry page with what was typed and the message beside the field.
//! - An event's page shows when (in its own time zone), where, its link
//!   (web addresses only), whether it is called off and who is going, with
//!   a "We're going" / "Not going" button; an idea's page shows its support
//!   and round with a "Support" / "Withdraw support" button. Both post to
//!   `POST /e/{id}/respond` (`answer=going|not-going|support|withdrawn`);
//!   what the node refuses (a closed round, the round's picks used, an
//!   event that is over) comes back on the page as one clear message.
//! - A message's own page says what it is about and links there.
//! - `/events` (upcoming soonest first, then past), `/ideas` (ranked by
//!   support; `?round=ID` ranks one round by its rules) and `/questions`
//!   (open questions, those on this organisation's entries first).
//!
//! Everything read here is a pure function of the documents held (see
//! `crate::convening`), so two synced nodes draw the same thread, the
//! same attendance and the same ranking. Writes go through the same
//! `Node` calls as the CLI. Every form is an ordinary same-origin POST,
//! which the sign-in layer (`auth.rs`) refuses without a session or from
//! another site.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use convene_model::event::{is_web_link, local_time};
use convene_model::message::MAX_MESSAGE;
use convene_model::{
    Answer, Body, DocumentId, Entry, Event, Idea, Kind, OrgId, Round, Status, Timestamp,
};
use maud::{Markup, html};
use serde::Deserialize;

use super::forms::{field_errors, is_refusal};
use super::pages::{entry_page_with, html_page};
use super::{AppState, Failure};
use crate::NodeError;
use crate::convening::{Attendance, Phase, Ranking, Thread, ThreadMessage};
use crate::node::Node;
use crate::store::Filter;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/e/{id}/ask", post(ask))
        .route("/e/{id}/reply", post(reply))
        .route("/e/{id}/respond", post(respond))
        .route("/events", get(events))
        .route("/ideas", get(ideas))
        .route("/questions", get(questions))
}

/// What a refused post on an entry's page left to show again.
#[derive(Debug, Clone, Default)]
pub(crate) enum Said {
    #[default]
    Nothing,
    /// The ask form: what was typed and why it was refused.
    Ask { text: String, error: String },
    /// The reply form under question `to`.
    Reply {
        to: DocumentId,
        text: String,
        error: String,
    },
    /// Going or support refused (a closed round, an event that is over).
    Answer { error: String },
}

/// Whether the generic field list of an entry's page leaves `field` out
/// because a section of this module shows it better (an event's times in
/// its zone, a message's links).
pub(crate) fn shown_apart(kind: Kind, field: &str) -> bool {
    match kind {
        Kind::Event => matches!(
            field,
            "starts"
                | "ends"
                | "time_zone"
                | "place"
                | "link"
                | "organiser"
                | "capacity"
                | "cancelled"
                | "places"
        ),
        Kind::Idea => field == "round",
        Kind::Message => matches!(field, "about" | "reply_to"),
        _ => false,
    }
}

/// An idea's standing.
#[derive(Debug, Clone)]
struct Support {
    /// Its place in the ranking it is counted in (1 = first).
    rank: usize,
    /// Names of the organisations whose support counts.
    names: Vec<String>,
    /// This organisation supports it now.
    mine: bool,
    /// Its round: id, title, phase, closing time and picks.
    round: Option<RoundView>,
}

#[derive(Debug, Clone)]
struct RoundView {
    id: DocumentId,
    title: String,
    phase: Phase,
    opens: Timestamp,
    closes: Timestamp,
    picks: Option<u64>,
}

/// A message's place: the entry it is about and the message it answers.
#[derive(Debug, Clone)]
struct MessageView {
    about: Option<(DocumentId, String)>,
    reply_to: Option<DocumentId>,
}

/// What this module adds to an entry's page.
#[derive(Debug, Clone)]
pub(crate) struct EntryTalk {
    id: DocumentId,
    published: bool,
    me: String,
    thread: Option<Thread>,
    event: Option<(Event, Attendance)>,
    idea: Option<Support>,
    message: Option<MessageView>,
    said: Said,
}

impl EntryTalk {
    /// Reads what the page of `entry` shows of conversations, going and
    /// support; `said` is what a refused post left.
    pub(crate) fn load(node: &Node, entry: &Entry, said: Said) -> Result<Self, NodeError> {
        let id = entry.id;
        let thread = if matches!(
            entry.meta.kind,
            Kind::Learning | Kind::Project | Kind::Event | Kind::Idea
        ) {
            Some(node.thread(id)?)
        } else {
            None
        };
        let event = match &entry.body {
            Body::Event(e) => Some((e.clone(), node.attendance(id)?)),
            _ => None,
        };
        let idea = match &entry.body {
            Body::Idea(i) => Some(support(node, id, i)?),
            _ => None,
        };
        let message = match &entry.body {
            Body::Message(m) => {
                let about = m
                    .about
                    .parse::<DocumentId>()
                    .ok()
                    .map(|a| (a, node.get(a).map(|e| e.body.title().to_string())));
                Some(MessageView {
                    about: about.map(|(a, t)| (a, t.unwrap_or_else(|_| a.to_string()))),
                    reply_to: m.reply_to.as_deref().and_then(|r| r.parse().ok()),
                })
            }
            _ => None,
        };
        Ok(Self {
            id,
            published: entry.meta.status == Status::Published,
            me: node.org().to_string(),
            thread,
            event,
            idea,
            message,
            said,
        })
    }

    /// The part above the entry's fields: an event's when, where and who
    /// is going; an idea's support; what a message is about.
    pub(crate) fn top(&self) -> Markup {
        html! {
            @if let Some((e, a)) = &self.event { (self.event_panel(e, a)) }
            @if let Some(s) = &self.idea { (self.idea_panel(s)) }
            @if let Some(m) = &self.message { (message_panel(self.id, m)) }
        }
    }

    fn answer_error(&self) -> Markup {
        html! {
            @if let Said::Answer { error } = &self.said {
                p class="error" role="alert" id="answer-error" { (error) }
            }
        }
    }

    fn event_panel(&self, e: &Event, a: &Attendance) -> Markup {
        let going_mine = a.going.iter().find(|g| g.org == self.me);
        let upcoming = e.is_upcoming(now());
        html! {
            section class="event-panel" aria-labelledby="event-when" {
                h2 id="event-when" class="visually-hidden" { "When and where" }
                @if e.cancelled {
                    p class="error" role="status" { strong { "Cancelled." } " This event has been called off." }
                } @else if !upcoming {
                    p class="notice" { "This event is over." }
                }
                dl class="meta-list" {
                    dt { "When" } dd { (when(e)) }
                    @if !e.place.is_empty() { dt { "Where" } dd { (e.place) } }
                    @if !e.link.is_empty() {
                        dt { "Link" } dd {
                            @if is_web_link(&e.link) {
                                a href=(e.link.trim()) rel="noopener noreferrer" { (e.link) }
                            } @else {
                                (e.link)
                            }
                        }
                    }
                    @if !e.organiser.is_empty() { dt { "Organiser" } dd { (e.organiser) } }
                    dt { "Places" } dd {
                        (a.going.iter().filter(|g| g.confirmed).count()) " going"
                        @if let Some(c) = a.capacity { " of " (c) " places" } @else { " (no limit)" }
                        @let waiting = a.going.iter().filter(|g| !g.confirmed).count();
                        @if waiting > 0 { ", " (waiting) " on the waiting list" }
                    }
                }
                h3 id="going" { "Who is going" }
                @if a.going.is_empty() {
                    p { "No organisation has said it is going yet." }
                } @else {
                    ul class="going" {
                        @for g in &a.going {
                            li {
                                (g.name.as_deref().unwrap_or(&g.org))
                                @if !g.confirmed { " " span class="badge waiting" { "waiting list" } }
                                @if g.org == self.me { " " span class="badge" { "us" } }
                            }
                        }
                    }
                }
                (self.answer_error())
                @if self.published && !e.cancelled && upcoming {
                    form method="post" action=(format!("/e/{}/respond", self.id)) class="answer" {
                        @match going_mine {
                            Some(g) => {
                                p {
                                    @if g.confirmed { "Your organisation is going." }
                                    @else { "Your organisation is on the waiting list." }
                                }
                                input type="hidden" name="answer" value="not-going";
                                button type="submit" class="secondary" { "Not going" }
                            }
                            None => {
                                input type="hidden" name="answer" value="going";
                                button type="submit" { "We're going" }
                            }
                        }
                    }
                } @else if going_mine.is_some() && self.published {
                    form method="post" action=(format!("/e/{}/respond", self.id)) class="answer" {
                        input type="hidden" name="answer" value="not-going";
                        button type="submit" class="secondary" { "Not going" }
                    }
                }
            }
        }
    }

    fn idea_panel(&self, s: &Support) -> Markup {
        let count = s.names.len();
        html! {
            section class="idea-panel" aria-labelledby="support" {
                h2 id="support" { "Support" }
                p class="support-count" {
                    strong { (count) } " organisation" @if count != 1 { "s" } " support"
                    @if count == 1 { "s" } " this idea"
                    @if count > 0 { " · ranked " (s.rank) }
                    @if let Some(r) = &s.round { " in " a href=(format!("/ideas?round={}", r.id)) { (r.title) } }
                }
                @if let Some(r) = &s.round {
                    p class="meta" { (round_line(r)) }
                }
                @if !s.names.is_empty() {
                    ul class="tags" { @for n in &s.names { li { (n) } } }
                }
                (self.answer_error())
                @if self.published {
                    form method="post" action=(format!("/e/{}/respond", self.id)) class="answer" {
                        @if s.mine {
                            p { "Your organisation supports this idea." }
                            input type="hidden" name="answer" value="withdrawn";
                            button type="submit" class="secondary" { "Withdraw support" }
                        } @else {
                            input type="hidden" name="answer" value="support";
                            button type="submit" { "Support" }
                        }
                    }
                }
            }
        }
    }

    /// The Questions section (learning, projects, events, ideas).
    pub(crate) fn questions(&self) -> Markup {
        let Some(thread) = &self.thread else {
            return html! {};
        };
        let open = thread.questions.iter().filter(|q| q.is_open()).count();
        let (ask_text, ask_error) = match &self.said {
            Said::Ask { text, error } => (text.as_str(), Some(error.as_str())),
            _ => ("", None),
        };
        html! {
            section class="questions" aria-labelledby="questions" {
                h2 id="questions" {
                    "Questions "
                    span class="count" {
                        "(" (thread.questions.len())
                        @if open > 0 { ", " (open) " open" }
                        ")"
                    }
                }
                @if thread.questions.is_empty() {
                    p { "No questions yet." }
                } @else {
                    ol class="thread" {
                        @for q in &thread.questions { (self.question(q)) }
                    }
                }
                @if self.published {
                    form method="post" action=(format!("/e/{}/ask", self.id)) class="ask" id="ask" novalidate[ask_error.is_some()] {
                        (text_field("ask-text", "Ask a question", "Members of the community who can see this entry can answer.", ask_text, ask_error, 4))
                        div class="actions" { button type="submit" { "Ask" } }
                    }
                } @else {
                    p class="hint" { "Questions can be asked once the entry is published." }
                }
            }
        }
    }

    fn question(&self, q: &ThreadMessage) -> Markup {
        let (text, error) = match &self.said {
            Said::Reply { to, text, error } if *to == q.id => (text.as_str(), Some(error.as_str())),
            _ => ("", None),
        };
        let field = format!("reply-{}", q.id);
        html! {
            li class=(if q.is_open() { "question open" } else { "question" }) id=(format!("q-{}", q.id)) {
                (message(q, Some(q.is_open())))
                @if !q.replies.is_empty() {
                    ol class="replies" aria-label="Replies" {
                        @for r in &q.replies {
                            li class="reply" id=(format!("q-{}", r.id)) { (message(r, None)) }
                        }
                    }
                }
                @if self.published {
                    details class="reply-box" open[error.is_some()] {
                        summary { "Reply" }
                        form method="post" action=(format!("/e/{}/reply", q.id)) class="reply-form" novalidate[error.is_some()] {
                            (text_field(&field, "Your reply", "", text, error, 3))
                            div class="actions" { button type="submit" { "Send reply" } }
                        }
                    }
                }
            }
        }
    }
}

/// One message: who, when, the text.
fn message(m: &ThreadMessage, open: Option<bool>) -> Markup {
    html! {
        p class="message-meta" {
            strong { (m.owner_name.as_deref().unwrap_or("An unknown organisation")) }
            " · "
            time datetime=(m.created.to_string()) { (m.created.short()) " UTC" }
            @match open {
                Some(true) => { " · " span class="badge open" { "open" } }
                Some(false) => { " · " span class="badge answered" { "answered" } }
                None => {}
            }
            " · " a href=(format!("/e/{}", m.id)) aria-label="Link to this message" { "link" }
        }
        div class="message-text" {
            @for para in m.text.split("\n\n") { p { (para) } }
        }
    }
}

/// A labelled textarea with its error beside it.
fn text_field(
    id: &str,
    label: &str,
    hint: &str,
    text: &str,
    error: Option<&str>,
    rows: u8,
) -> Markup {
    let errors: Vec<&str> = error.into_iter().collect();
    let described = [
        (!hint.is_empty()).then(|| format!("{id}-hint")),
        error.map(|_| format!("{id}-error")),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" ");
    html! {
        div class=(if error.is_some() { "field invalid" } else { "field" }) {
            label for=(id) { (label) }
            @if !hint.is_empty() { p class="hint" id=(format!("{id}-hint")) { (hint) } }
            (field_errors(id, &errors))
            // After a refused post the page opens at the field that needs
            // attention, not at the top of the entry.
            textarea id=(id) name="text" rows=(rows) required maxlength=(MAX_MESSAGE)
                autofocus[error.is_some()]
                aria-invalid=[error.map(|_| "true")]
                aria-describedby=[(!described.is_empty()).then_some(described)] { (text) }
        }
    }
}

fn message_panel(id: DocumentId, m: &MessageView) -> Markup {
    html! {
        section class="message-about" aria-label="Conversation" {
            @if let Some((about, title)) = &m.about {
                p {
                    @if m.reply_to.is_some() { "A reply in the conversation about " } @else { "A question about " }
                    a href=(format!("/e/{about}")) { (title) }
                    ". "
                    a href=(format!("/e/{about}#q-{id}")) { "See it in the conversation" }
                }
            }
            @if let Some(r) = m.reply_to {
                p { "In reply to " a href=(format!("/e/{r}")) { "this message" } "." }
            }
        }
    }
}

fn now() -> Timestamp {
    Timestamp(chrono::Utc::now().timestamp_millis())
}

/// `2027-03-04 09:30 to 12:00 (Europe/London)`; a second date when it
/// ends on another day.
fn when(e: &Event) -> String {
    let start = local_time(e.starts, &e.time_zone);
    let end = local_time(e.ends, &e.time_zone);
    let end = match (start.split_once(' '), end.split_once(' ')) {
        (Some((d1, _)), Some((d2, t2))) if d1 == d2 => t2.to_string(),
        _ => end,
    };
    format!("{start} to {end} ({})", e.time_zone)
}

fn round_line(r: &RoundView) -> String {
    let zone = convene_model::event::DEFAULT_TIME_ZONE;
    let mut s = format!("Voting {}", r.phase.as_str());
    match r.phase {
        Phase::NotOpen => s.push_str(&format!(": opens {}", local_time(r.opens, zone))),
        Phase::Open => s.push_str(&format!(": closes {}", local_time(r.closes, zone))),
        Phase::Closed | Phase::Sealed => {
            s.push_str(&format!("; closed {}", local_time(r.closes, zone)));
        }
    }
    s.push_str(&format!(" ({zone} time)"));
    if let Some(p) = r.picks {
        s.push_str(&format!(
            " · each organisation may support {p} idea{}",
            if p == 1 { "" } else { "s" }
        ));
    }
    s
}

fn round_view(node: &Node, rid: DocumentId, phase: Phase, title: &str) -> RoundView {
    let r = match node.get(rid) {
        Ok(Entry {
            body: Body::Round(r),
            ..
        }) => r,
        _ => Round::default(),
    };
    RoundView {
        id: rid,
        title: title.to_string(),
        phase,
        opens: r.opens,
        closes: r.closes,
        picks: r.picks,
    }
}

/// An idea's support: counted by its round's rules when it is in a round
/// a steward set, else every organisation's current support.
fn support(node: &Node, id: DocumentId, idea: &Idea) -> Result<Support, NodeError> {
    let round = idea.round.as_deref().and_then(|r| r.parse().ok());
    let ranking = match round {
        Some(rid) => match node.rank_ideas(Some(rid)) {
            Ok(r) => r,
            Err(NodeError::Convening(_)) => node.rank_ideas(None)?,
            Err(e) => return Err(e),
        },
        None => node.rank_ideas(None)?,
    };
    let me = node.org().to_string();
    // Whether this organisation supports it now, counted or not (a vote
    // given after a round closed still shows as given).
    let mine = match &ranking.round {
        None => ranking
            .ideas
            .iter()
            .any(|r| r.idea == id && r.supporters.contains(&me)),
        Some(_) => node
            .rank_ideas(None)?
            .ideas
            .iter()
            .any(|r| r.idea == id && r.supporters.contains(&me)),
    };
    let (rank, supporters) = ranking
        .ideas
        .iter()
        .enumerate()
        .find(|(_, r)| r.idea == id)
        .map(|(i, r)| (i + 1, r.supporters.clone()))
        .unwrap_or((0, Vec::new()));
    Ok(Support {
        rank,
        names: names(node, &supporters),
        mine,
        round: ranking
            .round
            .as_ref()
            .map(|(rid, title, phase)| round_view(node, *rid, *phase, title)),
    })
}

fn names(node: &Node, orgs: &[String]) -> Vec<String> {
    orgs.iter()
        .map(|o| {
            o.parse::<OrgId>()
                .ok()
                .and_then(|id| node.org_name(&id))
                .unwrap_or_else(|| o.clone())
        })
        .collect()
}

/// The `text` field of a form body, with Windows line ends made plain.
fn sent_text(body: &[u8]) -> (String, String) {
    let mut text = String::new();
    let mut answer = String::new();
    for (k, v) in form_urlencoded::parse(body) {
        match k.as_ref() {
            "text" => text = v.replace("\r\n", "\n"),
            "answer" => answer = v.into_owned(),
            _ => {}
        }
    }
    (text, answer)
}

/// Why a message cannot be sent as typed, before asking the node.
fn text_problem(text: &str, what: &str) -> Option<String> {
    let n = text.trim().chars().count();
    if n == 0 {
        Some(format!("Write your {what} before sending it."))
    } else if n > MAX_MESSAGE {
        Some(format!(
            "Your {what} is {n} characters long; the most is {MAX_MESSAGE}. Shorten it, or share a longer piece as learning."
        ))
    } else {
        None
    }
}

/// What a refused write says beside the field.
fn written_problem(e: NodeError) -> String {
    match e {
        NodeError::Invalid(p) => {
            p.0.iter()
                .map(|p| format!("The {} {}", p.field, p.message))
                .collect::<Vec<_>>()
                .join("; ")
        }
        NodeError::Convening(m) => m,
        other => other.to_string(),
    }
}

async fn ask(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, Failure> {
    let (text, _) = sent_text(&body);
    let typed = text.clone();
    let outcome = state
        .run(move |node| {
            let about = node.resolve(&id)?;
            if let Some(problem) = text_problem(&text, "question") {
                return Ok((about, Err(problem)));
            }
            match node.ask(about, &text) {
                Ok(q) => Ok((about, Ok(q))),
                Err(e) if is_refusal(&e) => Err(e.into()),
                Err(e) => Ok((about, Err(written_problem(e)))),
            }
        })
        .await?;
    match outcome {
        (about, Ok(q)) => Ok(Redirect::to(&format!("/e/{about}#q-{q}")).into_response()),
        (about, Err(error)) => {
            let said = Said::Ask { text: typed, error };
            entry_page_with(
                &state,
                about.to_string(),
                StatusCode::UNPROCESSABLE_ENTITY,
                said,
            )
            .await
        }
    }
}

async fn reply(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, Failure> {
    let (text, _) = sent_text(&body);
    let typed = text.clone();
    let outcome = state
        .run(move |node| {
            let to = node.resolve(&id)?;
            let Body::Message(m) = node.get(to)?.body else {
                return Err(Failure::bad_request(format!(
                    "{to} is not a question or a reply: ask about it instead"
                )));
            };
            let about: DocumentId = m
                .about
                .parse()
                .map_err(|_| Failure::bad_request(format!("{to} names no entry it is about")))?;
            if let Some(problem) = text_problem(&text, "reply") {
                return Ok((about, to, Err(problem)));
            }
            match node.reply(to, &text) {
                Ok(r) => Ok((about, to, Ok(r))),
                Err(e) if is_refusal(&e) => Err(e.into()),
                Err(e) => Ok((about, to, Err(written_problem(e)))),
            }
        })
        .await?;
    match outcome {
        (about, _, Ok(r)) => Ok(Redirect::to(&format!("/e/{about}#q-{r}")).into_response()),
        (about, to, Err(error)) => {
            // The form stood under a question; a reply to a reply is
            // shown again under that reply's question.
            let question = state
                .run(move |node| Ok(question_of(node, about, to)))
                .await?;
            let said = Said::Reply {
                to: question,
                text: typed,
                error,
            };
            entry_page_with(
                &state,
                about.to_string(),
                StatusCode::UNPROCESSABLE_ENTITY,
                said,
            )
            .await
        }
    }
}

/// The question whose thread message `to` is in (itself for a question).
fn question_of(node: &Node, about: DocumentId, to: DocumentId) -> DocumentId {
    node.thread(about)
        .ok()
        .and_then(|t| {
            t.questions
                .into_iter()
                .find(|q| q.id == to || q.replies.iter().any(|r| r.id == to))
                .map(|q| q.id)
        })
        .unwrap_or(to)
}

async fn respond(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, Failure> {
    let (_, answer) = sent_text(&body);
    let answer: Answer = answer.parse().map_err(Failure::bad_request)?;
    let outcome = state
        .run(move |node| {
            let to = node.resolve(&id)?;
            match node.respond(to, answer) {
                Ok(_) => Ok((to, Ok(()))),
                Err(e) if is_refusal(&e) => Err(e.into()),
                Err(e @ NodeError::Convening(_)) => Ok((to, Err(e.to_string()))),
                Err(e) => Err(e.into()),
            }
        })
        .await?;
    let anchor = match answer {
        Answer::Going | Answer::NotGoing => "going",
        Answer::Support | Answer::Withdrawn => "support",
    };
    match outcome {
        (to, Ok(())) => Ok(Redirect::to(&format!("/e/{to}#{anchor}")).into_response()),
        (to, Err(error)) => {
            entry_page_with(
                &state,
                to.to_string(),
                StatusCode::CONFLICT,
                Said::Answer { error },
            )
            .await
        }
    }
}

/// One row of `/events`.
struct EventRow {
    id: DocumentId,
    event: Event,
    owner_name: Option<String>,
    going: usize,
    mine: bool,
}

async fn events(State(state): State<AppState>) -> Result<Response, Failure> {
    let rows = state
        .run(|node| {
            let me = node.org().to_string();
            let mut rows = Vec::new();
            for l in node.list(&Filter {
                kind: Some(Kind::Event),
                ..Filter::default()
            })? {
                if l.status != "published" {
                    continue;
                }
                let Ok(Entry {
                    body: Body::Event(e),
                    meta,
                    ..
                }) = node.get(l.id)
                else {
                    continue;
                };
                let a = node.attendance(l.id)?;
                rows.push(EventRow {
                    id: l.id,
                    owner_name: node.org_name(&meta.owner),
                    going: a.going.iter().filter(|g| g.confirmed).count(),
                    mine: a.going.iter().any(|g| g.org == me),
                    event: e,
                });
            }
            Ok(rows)
        })
        .await?;
    let at = now();
    let (mut upcoming, mut past): (Vec<EventRow>, Vec<EventRow>) =
        rows.into_iter().partition(|r| r.event.is_upcoming(at));
    upcoming.sort_by_key(|r| (r.event.starts, r.id));
    past.sort_by_key(|r| (std::cmp::Reverse(r.event.starts), r.id));
    Ok(html_page(
        "Events",
        html! {
            h1 { "Events" }
            p { a class="button" href="/new/event" { "New event" } }
            p {
                "In your calendar: "
                a href="/events.ics" download="convene-events.ics" { "download these events (.ics)" }
                ". For Outlook or Google Calendar to keep following them, make a feed link with "
                code { "convene feed new --events" }
                " (it opens the calendar feed and nothing else, and can be revoked)."
            }
            h2 { "Coming up " span class="count" { "(" (upcoming.len()) ")" } }
            @if upcoming.is_empty() {
                p { "No events to come." }
            } @else {
                (event_list(&upcoming))
            }
            @if !past.is_empty() {
                h2 { "Past events " span class="count" { "(" (past.len()) ")" } }
                (event_list(&past))
            }
        },
    ))
}

fn event_list(rows: &[EventRow]) -> Markup {
    html! {
        ol class="entries events" {
            @for r in rows {
                li {
                    a class="title" href=(format!("/e/{}", r.id)) { (r.event.title) }
                    @if r.event.cancelled { " " span class="badge cancelled" { "cancelled" } }
                    div class="meta" {
                        time datetime=(r.event.starts.to_string()) { (when(&r.event)) }
                        @if !r.event.place.is_empty() { " · " (r.event.place) }
                        @else if !r.event.link.is_empty() { " · online" }
                    }
                    div class="meta" {
                        "Organised by "
                        (if r.event.organiser.is_empty() {
                            r.owner_name.as_deref().unwrap_or("an unknown organisation")
                        } else {
                            r.event.organiser.as_str()
                        })
                        " · " (r.going) " going"
                        @if let Some(c) = r.event.capacity { " of " (c) " places" }
                        @if r.mine { " · " strong { "you are going" } }
                    }
                }
            }
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct IdeasQuery {
    round: String,
}

/// A round as the ideas page lists it.
struct RoundRow {
    id: DocumentId,
    title: String,
}

async fn ideas(
    State(state): State<AppState>,
    Query(q): Query<IdeasQuery>,
) -> Result<Response, Failure> {
    let asked = q.round.trim().to_string();
    let (ranking, rounds, round) = state
        .run(move |node| {
            let round = if asked.is_empty() {
                None
            } else {
                Some(node.resolve(&asked)?)
            };
            let ranking: Ranking = node.rank_ideas(round)?;
            let round = ranking
                .round
                .as_ref()
                .map(|(rid, title, phase)| round_view(node, *rid, *phase, title));
            Ok((ranking, rounds_held(node)?, round))
        })
        .await?;
    let rows: Vec<(DocumentId, String)> = rounds.iter().map(|r| (r.id, r.title.clone())).collect();
    let title = match &round {
        Some(r) => format!("Ideas: {}", r.title),
        None => "Ideas".to_string(),
    };
    Ok(html_page(
        &title,
        html! {
            h1 { (title) }
            p { a class="button" href="/new/idea" { "Put forward an idea" } }
            @if !rows.is_empty() {
                nav aria-label="Voting rounds" class="rounds" {
                    p {
                        "Voting rounds: "
                        @if round.is_some() { a href="/ideas" { "all ideas" } } @else { strong { "all ideas" } }
                        @for (id, t) in &rows {
                            " · "
                            @if round.as_ref().is_some_and(|r| r.id == *id) { strong { (t) } }
                            @else { a href=(format!("/ideas?round={id}")) { (t) } }
                        }
                    }
                }
            }
            @if let Some(r) = &round {
                p class="notice" { (round_line(r)) }
                @if r.phase == Phase::Closed {
                    p class="hint" { "The count below is provisional until a steward seals the round." }
                }
            } @else {
                p class="hint" { "Every idea, ranked by how many organisations support it; ties go to the older idea." }
            }
            @if ranking.ideas.is_empty() {
                p { "No ideas yet." }
            } @else {
                div class="table-scroll" { table class="ranking" id="ranking" {
                    thead { tr {
                        th scope="col" { "Rank" }
                        th scope="col" { "Idea" }
                        th scope="col" { "Put forward by" }
                        th scope="col" { "Support" }
                    } }
                    tbody {
                        @for (i, r) in ranking.ideas.iter().enumerate() {
                            tr {
                                td { (i + 1) }
                                td { a href=(format!("/e/{}", r.idea)) { (r.title) } }
                                td { (r.owner_name.as_deref().unwrap_or("an unknown organisation")) }
                                td { (r.supporters.len()) }
                            }
                        }
                    }
                } }
            }
        },
    ))
}

/// The published voting rounds a steward set, newest first.
fn rounds_held(node: &Node) -> Result<Vec<RoundRow>, NodeError> {
    let mut out = Vec::new();
    for l in node.list(&Filter {
        kind: Some(Kind::Round),
        ..Filter::default()
    })? {
        if l.status != "published" {
            continue;
        }
        if let Ok(owner) = l.owner.parse::<OrgId>()
            && node.is_steward(&owner)
        {
            out.push((
                l.created,
                RoundRow {
                    id: l.id,
                    title: l.title,
                },
            ));
        }
    }
    out.sort_by_key(|(created, r)| (std::cmp::Reverse(*created), r.id));
    Ok(out.into_iter().map(|(_, r)| r).collect())
}

/// The rounds an idea may be put forward in, as `(id, title)` for a
/// select.
pub(crate) fn round_options(node: &Node) -> Result<Vec<(String, String)>, NodeError> {
    Ok(rounds_held(node)?
        .into_iter()
        .map(|r| (r.id.to_string(), r.title))
        .collect())
}

async fn questions(State(state): State<AppState>) -> Result<Response, Failure> {
    let open = state.run(|node| Ok(node.open_questions()?)).await?;
    let (ours, others): (Vec<_>, Vec<_>) = open.into_iter().partition(|q| q.on_ours);
    let list = |qs: &[crate::convening::OpenQuestion]| {
        html! {
            ol class="entries questions-list" {
                @for q in qs {
                    li {
                        a class="title" href=(format!("/e/{}#q-{}", q.about, q.question)) {
                            (q.text.lines().next().unwrap_or(""))
                        }
                        div class="meta" {
                            "On " a href=(format!("/e/{}", q.about)) { (q.about_title) }
                            " · asked by " (q.asked_by.as_deref().unwrap_or("an unknown organisation"))
                            " · " (q.asked.short()) " UTC"
                        }
                    }
                }
            }
        }
    };
    Ok(html_page(
        "Open questions",
        html! {
            h1 { "Open questions" }
            p class="hint" { "Questions no organisation other than the asker's has answered yet." }
            h2 id="on-ours" { "Open questions on your entries " span class="count" { "(" (ours.len()) ")" } }
            @if ours.is_empty() {
                p { "None: every question on your organisation's entries has an answer." }
            } @else {
                (list(&ours))
            }
            h2 { "Other open questions " span class="count" { "(" (others.len()) ")" } }
            @if others.is_empty() { p { "None." } } @else { (list(&others)) }
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_checked_before_the_node_is_asked() {
        assert!(text_problem("  \n ", "question").unwrap().contains("Write"));
        assert!(
            text_problem(&"a".repeat(MAX_MESSAGE + 1), "reply")
                .unwrap()
                .contains("the most is")
        );
        assert!(text_problem("How did you recruit?", "question").is_none());
    }

    #[test]
    fn an_event_on_one_day_names_its_date_once() {
        let e = Event {
            starts: convene_model::event::parse_local("2027-07-01 09:30", "Europe/London").unwrap(),
            ends: convene_model::event::parse_local("2027-07-01 12:00", "Europe/London").unwrap(),
            ..Event::default()
        };
        assert_eq!(when(&e), "2027-07-01 09:30 to 12:00 (Europe/London)");
    }
}
