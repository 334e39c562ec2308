//! Who's who: `/who?topic=…`, the organisations and people who know about
//! a topic with the evidence linked to its entries, and `/api/who?topic=`
//! (the same as JSON, `convene who --json`'s shape). The ranking is
//! `Node::who`'s (`crate::who`); this only draws it.

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::json;

use super::pages::html_page;
use super::{AppState, Failure};
use crate::who::{Reason, Who, WhoError};

/// How many organisations and people a page shows.
const PAGE_LIMIT: usize = 20;

/// The most an API caller may ask for.
const API_LIMIT: usize = 1000;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/who", get(page))
        .route("/api/who", get(api))
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub(crate) struct WhoQuery {
    pub topic: String,
    /// API only: at most this many of each (default 20, at most 1,000).
    pub limit: Option<String>,
}

impl From<WhoError> for Failure {
    fn from(e: WhoError) -> Self {
        match e {
            WhoError::Node(e) => e.into(),
            other => Failure::bad_request(other.to_string()),
        }
    }
}

async fn run(state: &AppState, topic: String, limit: usize) -> Result<Who, Failure> {
    state.run(move |node| Ok(node.who(&topic, limit)?)).await
}

async fn page(State(state): State<AppState>, Query(q): Query<WhoQuery>) -> Response {
    let asked = !q.topic.trim().is_empty();
    let (who, problem) = if asked {
        match run(&state, q.topic.clone(), PAGE_LIMIT).await {
            Ok(w) => (Some(w), None),
            Err(f) if f.status.is_client_error() => (None, Some(f.message)),
            Err(f) => return f.into_response(),
        }
    } else {
        (None, None)
    };
    let status = if problem.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let title = match &who {
        Some(w) => format!("Who knows about {}", w.topic),
        None => "Who's who".to_string(),
    };
    let body = html! {
        h1 { "Who's who" }
        p {
            "The organisations and people who know about a topic: from the learning they "
            "published, the projects they lead or are on, the events they ran, and the expertise "
            "and interests of people who agreed to be listed."
        }
        form class="filters" method="get" action="/who" role="search" {
            div class="field wide" {
                label for="f-topic" { "Topic" }
                p class="hint" id="f-topic-hint" {
                    "A priority, method, skill, place or a few words, e.g. discharge, QSIR, family hubs"
                }
                input id="f-topic" type="search" name="topic" value=(q.topic)
                    aria-describedby="f-topic-hint" required;
            }
            div class="actions" { button type="submit" { "Find" } }
        }
        @if let Some(p) = &problem {
            p class="error" role="alert" { (p) }
        }
        @if let Some(w) = &who { (results(w)) }
        @if !asked { (suggestions()) }
    };
    (status, html_page(&title, body)).into_response()
}

async fn api(State(state): State<AppState>, Query(q): Query<WhoQuery>) -> Response {
    let limit = match q.limit.as_deref().map(str::trim) {
        None | Some("") => PAGE_LIMIT,
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=API_LIMIT).contains(&n) => n,
            _ => {
                return error(Failure::bad_request(format!(
                    "limit {s:?} must be a whole number from 1 to {API_LIMIT}"
                )));
            }
        },
    };
    match run(&state, q.topic, limit).await {
        Ok(w) => Json(w.to_json()).into_response(),
        Err(f) => error(f),
    }
}

fn error(f: Failure) -> Response {
    (f.status, Json(json!({ "error": f.message }))).into_response()
}

fn results(w: &Who) -> Markup {
    let read_as: Vec<String> = w
        .terms
        .iter()
        .map(|t| format!("{} “{}”", t.field.replace('_', " "), t.label))
        .collect();
    html! {
        p role="status" {
            @if w.is_empty() {
                "No one found for “" (w.topic) "”."
            } @else {
                "Found from " (w.entries) " " (if w.entries == 1 { "entry" } else { "entries" })
                " about “" (w.topic) "”"
            }
            @if !read_as.is_empty() {
                " (read as " (read_as.join(", ")) ", and as words)"
            }
            "."
        }
        @if !w.is_empty() {
            section aria-labelledby="who-orgs" {
                h2 id="who-orgs" {
                    "Organisations " span class="count" { (count(w.organisations.len(), w.total_organisations)) }
                }
                @if w.organisations.is_empty() {
                    p { "None." }
                }
                ol class="entries who" {
                    @for o in &w.organisations {
                        li {
                            @match &o.id {
                                Some(id) => a class="title" href=(format!("/e/{id}")) { (o.name) },
                                None => span class="title" { (o.name) },
                            }
                            div class="meta" {
                                @if o.standing == Some("former member") { "former member · " }
                                "score " (o.score)
                            }
                            (reasons(&o.reasons))
                        }
                    }
                }
            }
            section aria-labelledby="who-people" {
                h2 id="who-people" {
                    "People " span class="count" { (count(w.people.len(), w.total_people)) }
                }
                p class="hint" {
                    "Only contacts who agreed to be listed, as far as they agreed. "
                    "Other team members count for their organisation, unnamed."
                }
                @if w.people.is_empty() {
                    p { "None." }
                }
                ol class="entries who" {
                    @for p in &w.people {
                        li {
                            a class="title" href=(format!("/e/{}", p.id)) { (p.name) }
                            @if !p.pronouns.is_empty() { " (" (p.pronouns) ")" }
                            div class="meta" {
                                @if !p.role.is_empty() { (p.role) " · " }
                                (p.organisation.name.as_deref().unwrap_or(&p.organisation.id))
                                " · score " (p.score)
                            }
                            @if !p.open_to.is_empty() || p.lived_experience_partner || p.email.is_some() {
                                p {
                                    @if !p.open_to.is_empty() {
                                        "Open to " (p.open_to.join(", ").to_lowercase()) ". "
                                    }
                                    @if p.lived_experience_partner { "Lived-experience partner. " }
                                    @if let Some(e) = &p.email {
                                        "Email: " a href=(format!("mailto:{e}")) { (e) }
                                    }
                                }
                            }
                            (reasons(&p.reasons))
                        }
                    }
                }
            }
        }
    }
}

/// Topics to start from: the community's priorities and skills.
fn suggestions() -> Markup {
    let vocab = convene_model::Vocabularies::default();
    let link = |slug: &str| {
        let mut url = form_urlencoded::Serializer::new(String::new());
        url.append_pair("topic", slug);
        format!("/who?{}", url.finish())
    };
    html! {
        section aria-labelledby="who-start" {
            h2 id="who-start" { "Or start from" }
            h3 { "A priority" }
            ul {
                @for t in &vocab.priorities.terms {
                    li { a href=(link(&t.slug)) { (t.label) } }
                }
            }
            h3 { "A skill" }
            ul class="tags" {
                @for t in &vocab.skills.terms {
                    li { a href=(link(&t.slug)) { (t.label) } }
                }
            }
        }
    }
}

/// "(3)", or "(20 of 34)" when the page left some out.
fn count(shown: usize, total: usize) -> String {
    if total > shown {
        format!("({shown} of {total})")
    } else {
        format!("({shown})")
    }
}

fn reasons(reasons: &[Reason]) -> Markup {
    html! {
        ul class="reasons" {
            @for r in reasons {
                li {
                    (r.text)
                    @if !r.entries.is_empty() {
                        ": "
                        @for (i, e) in r.entries.iter().enumerate() {
                            @if i > 0 { "; " }
                            a href=(format!("/e/{}", e.id)) { (e.title) }
                        }
                    }
                }
            }
        }
    }
}
