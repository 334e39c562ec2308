//! What's new since your last visit: `/whats-new`, linked from the
//! navigation. New learning, projects and ideas, questions and replies on
//! this organisation's entries, questions still waiting for its answer,
//! and the events of the next weeks, each linked to its page. What goes in
//! is `Node::digest`'s (`crate::digest`) for this organisation's own
//! people ([`Audience::Here`]): the browser is signed in to this node.
//!
//! # The last visit
//!
//! Each browser keeps the time it last saw this page in a cookie of its
//! own, named for the port like the session (`convene_seen_4041`:
//! cookies are scoped to the host, not the port), `HttpOnly`,
//! `SameSite=Strict`, `Path=/`. The page shows what reached this node
//! since then and sets the cookie to now, so the next visit shows only
//! what came after. The cookie is the browser's to send, so it is read as
//! untrusted input: a value that is not a time, or a time in the future,
//! counts as no visit (the last [`FIRST_VISIT_DAYS`] days are shown), and
//! a visit longer ago than [`MAX_DAYS`] days counts as that long ago, so
//! no cookie can make the page gather years of history. `?since=7d` (or
//! `24h`, `2w`, a date) shows another period and leaves the cookie alone.

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use convene_model::Timestamp;
use maud::{Markup, html};
use serde::Deserialize;

use super::pages::{error_page, layout};
use super::{AppState, Failure};
use crate::digest::{
    Audience, Digest, DigestError, DigestOptions, EventItem, Item, MessageItem, parse_since,
};

/// The period shown to a browser with no (valid) last visit.
pub const FIRST_VISIT_DAYS: i64 = 7;

/// The longest period the page covers, whatever the cookie says.
pub const MAX_DAYS: i64 = 90;

/// The most things a section of the page lists.
pub const PAGE_LIMIT: usize = 30;

const DAY_MS: i64 = 24 * 3_600_000;

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/whats-new", get(page))
}

/// The last-visit cookie's name for the web app whose session cookie is
/// `session` (`convene_session_4041` → `convene_seen_4041`).
fn seen_cookie(session: &str) -> String {
    match session.strip_prefix("convene_session_") {
        Some(port) => format!("convene_seen_{port}"),
        None => format!("{session}_seen"),
    }
}

/// The last visit a request's cookies claim, if any is believable at
/// `now`: the latest value named `name` that is a time not after `now`.
fn last_visit(headers: &HeaderMap, name: &str, now: i64) -> Option<i64> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .filter(|(k, _)| *k == name)
        .take(4)
        .filter_map(|(_, v)| {
            let v = v.trim();
            // Digits only: no sign, no spaces, no 0x; at most 15 of them.
            (!v.is_empty() && v.len() <= 15 && v.bytes().all(|b| b.is_ascii_digit()))
                .then(|| v.parse::<i64>().ok())
                .flatten()
        })
        .filter(|t| *t > 0 && *t <= now)
        .max()
}

/// Where the period starts: the last visit, capped at [`MAX_DAYS`] ago;
/// the last [`FIRST_VISIT_DAYS`] days when there was none. The second
/// value is whether a last visit was known.
fn period_start(last: Option<i64>, now: i64) -> (i64, bool) {
    match last {
        Some(t) => (t.max(now - MAX_DAYS * DAY_MS), true),
        None => (now - FIRST_VISIT_DAYS * DAY_MS, false),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct NewQuery {
    /// Another period (`7d`, `24h`, `2w`, a date); the cookie is kept.
    since: String,
}

impl From<DigestError> for Failure {
    fn from(e: DigestError) -> Self {
        match e {
            DigestError::Node(e) => e.into(),
            other => Failure::bad_request(other.to_string()),
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

async fn page(
    State(state): State<AppState>,
    Query(q): Query<NewQuery>,
    headers: HeaderMap,
) -> Response {
    let now = now_ms();
    let name = seen_cookie(&state.0.cookie);
    let asked = q.since.trim().to_string();
    let (since, known, remember) = if asked.is_empty() {
        let (since, known) = period_start(last_visit(&headers, &name, now), now);
        (Timestamp(since), known, true)
    } else {
        match parse_since(&asked, Timestamp(now)) {
            Ok(t) => (t.max(Timestamp(now - MAX_DAYS * DAY_MS)), true, false),
            Err(e) => {
                return error_page(
                    StatusCode::BAD_REQUEST,
                    "Please check",
                    &format!("since: {e}"),
                );
            }
        }
    };
    let digest = state
        .run(move |node| {
            let mut opts = DigestOptions::new(since, Timestamp(now));
            opts.audience = Audience::Here;
            opts.limit = Some(PAGE_LIMIT);
            Ok(node.digest(&opts)?)
        })
        .await;
    let digest = match digest {
        Ok(d) => d,
        Err(f) => return f.into_response(),
    };
    let heading = if !asked.is_empty() {
        format!("What's new since {} UTC", since.short())
    } else if known {
        format!("What's new since your last visit ({} UTC)", since.short())
    } else {
        format!("What's new in the last {FIRST_VISIT_DAYS} days")
    };
    let body = render(&heading, &digest);
    let mut response = Html(layout("What's new", body).into_string()).into_response();
    if remember {
        let cookie = format!(
            "{name}={now}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
            MAX_DAYS * 24 * 60 * 60
        );
        if let Ok(v) = header::HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    response
}

fn entry_link(it: &Item) -> Markup {
    html! { a href=(format!("/e/{}", it.id)) { (it.title) } }
}

fn items(heading: &str, list: &[Item]) -> Markup {
    html! {
        @if !list.is_empty() {
            section class="whats-new" {
                h2 { (heading) " " span class="count" { "(" (list.len()) ")" } }
                ul {
                    @for it in list {
                        li {
                            (entry_link(it))
                            " from " (it.owner_name.as_deref().unwrap_or("an organisation"))
                            @if !it.summary.is_empty() { ": " (it.summary) }
                            @if it.restricted { " " span class="tag" { "not for everyone" } }
                        }
                    }
                }
            }
        }
    }
}

fn messages(heading: &str, list: &[MessageItem], waiting: bool) -> Markup {
    html! {
        @if !list.is_empty() {
            section class="whats-new" {
                h2 { (heading) " " span class="count" { "(" (list.len()) ")" } }
                ul {
                    @for m in list {
                        li {
                            (m.from_name.as_deref().unwrap_or("An organisation"))
                            @if waiting { " asked on " (m.seen.short().get(..10).unwrap_or("")) " about " }
                            @else if m.answers_us { " answered our question on " }
                            @else if m.question { " asked about " }
                            @else { " replied on " }
                            a href=(format!("/e/{}", m.about)) { (m.about_title) }
                            ": “" (m.text) "”"
                        }
                    }
                }
            }
        }
    }
}

fn events(list: &[EventItem], weeks: u32) -> Markup {
    html! {
        @if !list.is_empty() {
            section class="whats-new" {
                h2 { "Events in the next " (weeks) " weeks " span class="count" { "(" (list.len()) ")" } }
                ul {
                    @for e in list {
                        li {
                            @if e.cancelled { strong { "Cancelled: " } }
                            (entry_link(&e.item))
                            ", " (e.starts_local) " (" (e.time_zone) ")"
                            @if !e.place.is_empty() { ", " (e.place) }
                            @if !e.cancelled { ", " (e.going) " going" }
                            @if e.new { " " span class="tag" { "new" } }
                        }
                    }
                }
            }
        }
    }
}

fn render(heading: &str, d: &Digest) -> Markup {
    html! {
        h1 { (heading) }
        p class="meta" {
            "Other periods: "
            a href="/whats-new?since=24h" { "last day" } " · "
            a href="/whats-new?since=7d" { "last week" } " · "
            a href="/whats-new?since=30d" { "last 30 days" }
            ". For a newsletter or an email, run " code { "convene digest" } "."
        }
        @if d.is_empty() {
            p class="notice" role="status" { "Nothing new since then." }
        }
        (messages("Questions and replies on our entries", &d.conversations, false))
        (messages("Questions waiting for our answer", &d.waiting, true))
        (items("New learning", &d.learning))
        (items("New projects", &d.new_projects))
        (items("Updated projects", &d.updated_projects))
        (events(&d.events, d.weeks_ahead))
        @if !d.new_ideas.is_empty() {
            section class="whats-new" {
                h2 { "New ideas " span class="count" { "(" (d.new_ideas.len()) ")" } }
                ul {
                    @for i in &d.new_ideas {
                        li { (entry_link(&i.item)) ", supported by " (i.support) }
                    }
                }
            }
        }
        @if let Some(n) = d.new_contacts.filter(|n| *n > 0) {
            p { (n) " new contacts in the directory." }
        }
        @if d.left_out > 0 {
            p class="meta" {
                (d.left_out) " more not listed here (each section shows its first "
                (PAGE_LIMIT) "): " a href="/" { "browse" } " to see everything."
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(cookie: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, cookie.parse().unwrap());
        h
    }

    #[test]
    fn the_last_visit_is_believed_only_when_it_is_a_past_time() {
        let now = 1_796_000_000_000;
        let name = seen_cookie("convene_session_4041");
        assert_eq!(name, "convene_seen_4041");
        let at = |c: &str| last_visit(&headers(c), &name, now);
        assert_eq!(
            at("convene_seen_4041=1795000000000"),
            Some(1_795_000_000_000)
        );
        // Another port's cookie, the future, nonsense: no visit.
        assert_eq!(at("convene_seen_4042=1795000000000"), None);
        assert_eq!(at("convene_seen_4041=1797000000000"), None);
        for bad in [
            "abc",
            "-5",
            "0",
            "1e12",
            " ",
            "99999999999999999999",
            "0x10",
        ] {
            assert_eq!(at(&format!("convene_seen_4041={bad}")), None, "{bad}");
        }
        // Of several, the latest believable one.
        assert_eq!(
            at("convene_seen_4041=1797000000000; convene_seen_4041=1794000000000"),
            Some(1_794_000_000_000)
        );
        // A visit long ago is capped; none shows the last week.
        assert_eq!(period_start(Some(1), now), (now - MAX_DAYS * DAY_MS, true));
        assert_eq!(
            period_start(None, now),
            (now - FIRST_VISIT_DAYS * DAY_MS, false)
        );
    }
}
