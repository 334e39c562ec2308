//! Similar work in the web app: `GET /api/similar` (JSON, behind the same
//! sign-in as every other `/api/` route), the "Similar work" panel on the
//! new-entry forms, and `similar.js`, which fills the panel as the person
//! types. The form works the same without the script.
//!
//! The query string describes a draft: `kind`, `title`, `summary`, `body`
//! (and `problem`, `aim`, `impact`, read as more text), `priority`,
//! `method`, `theme` (each repeatable, slug or label), `tag` (repeatable,
//! or comma-separated), `place`, `exclude` (an entry id left out), and
//! `limit` (1 to 50, default 5); or `id` alone for an entry held here. The
//! answer is an array of entries as `convene similar --json` prints them.

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use convene_model::{Kind, Vocabulary};
use maud::{Markup, html};
use serde_json::json;

use super::{AppState, Failure};
use crate::node::Node;
use crate::similar::{self, Draft, SimilarError};

/// Characters of draft text read at most (a query string is bounded by
/// the server's header limit too; this keeps one request's work small).
const MAX_TEXT: usize = 20_000;
/// Vocabulary values and tags read at most.
const MAX_VALUES: usize = 50;

pub(crate) fn routes() -> axum::Router<AppState> {
    axum::Router::new().route("/api/similar", get(api))
}

/// `similar.js`, served without sign-in like the other static files.
pub(crate) async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("similar.js"),
    )
        .into_response()
}

/// The kinds a draft may be: those whose forms show the panel.
pub(crate) fn matchable(kind: Kind) -> bool {
    similar::KINDS.contains(&kind.as_str())
}

/// The panel beside a new-entry form: filled by `similar.js`.
pub(crate) fn panel(kind: Kind) -> Markup {
    if !matchable(kind) {
        return html! {};
    }
    html! {
        section class="similar-work" id="similar-work" aria-labelledby="similar-work-heading"
            data-kind=(kind.as_str()) hidden {
            h2 id="similar-work-heading" { "Similar work" }
            p class="hint" {
                "Entries already in the community that look like the same work, so you can "
                "find the team already doing it. They appear as you type."
            }
            p class="similar-status" aria-live="polite" {}
            ol class="similar-list" {}
        }
        script src="/similar.js" defer {}
    }
}

/// The "Similar work" section of an entry's page: the entries close
/// enough to point out (as after a publish); nothing for other kinds, when
/// none is close, or if matching fails (the page does not depend on it).
pub(crate) async fn entry_section(state: &AppState, id: String) -> Markup {
    let found = state
        .run(move |node| {
            let id = node.resolve(&id)?;
            Ok(similar::similar_to(node, id, 5).ok())
        })
        .await;
    let found: Vec<similar::Similar> = match found {
        Ok(Some(found)) => found.into_iter().filter(|s| s.worth_showing()).collect(),
        _ => Vec::new(),
    };
    if found.is_empty() {
        return html! {};
    }
    html! {
        section class="similar-work" aria-labelledby="similar-work-heading" {
            h2 id="similar-work-heading" { "Similar work" }
            p class="hint" { "Entries in the community that look like the same work." }
            ol class="similar-list" {
                @for s in &found {
                    li {
                        a href=(format!("/e/{}", s.listed.id)) { (s.listed.title) }
                        span class="similar-owner" {
                            " (" (s.listed.kind.as_str())
                            @if let Some(owner) = &s.listed.owner_name { ", " (owner) }
                            ")"
                        }
                        p class="hint" {
                            (s.reasons.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))
                        }
                    }
                }
            }
        }
    }
}

/// A JSON error, as the rest of the API gives them.
fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

/// What the query string asked for.
#[derive(Debug, Default)]
struct Asked {
    id: Option<String>,
    exclude: Option<String>,
    limit: usize,
    title: String,
    text: Vec<String>,
    priorities: Vec<String>,
    methods: Vec<String>,
    themes: Vec<String>,
    tags: Vec<String>,
    place: String,
}

fn parse(query: &str) -> Result<Asked, String> {
    let mut a = Asked {
        limit: 5,
        ..Asked::default()
    };
    let mut chars = 0usize;
    let mut values = 0usize;
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        let value = value.trim().to_string();
        chars += value.chars().count();
        if chars > MAX_TEXT {
            return Err(format!(
                "the draft is too long to match (at most {MAX_TEXT} characters)"
            ));
        }
        let mut many = |list: &mut Vec<String>, v: String| {
            values += 1;
            if !v.is_empty() {
                list.push(v);
            }
        };
        match key.as_ref() {
            "kind" => {
                if !value.is_empty() {
                    let kind: Kind = value.parse().map_err(|e| format!("{e}"))?;
                    if !matchable(kind) {
                        return Err(format!(
                            "similar work is found for learning, projects and ideas, not a {kind}"
                        ));
                    }
                }
            }
            "id" => a.id = Some(value).filter(|v| !v.is_empty()),
            "exclude" => a.exclude = Some(value).filter(|v| !v.is_empty()),
            "limit" => {
                a.limit = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=50).contains(n))
                    .ok_or_else(|| format!("limit must be a number from 1 to 50, not {value:?}"))?;
            }
            "title" => a.title = value,
            "summary" | "body" | "problem" | "aim" | "impact" => many(&mut a.text, value),
            "priority" | "priorities" => many(&mut a.priorities, value),
            "method" | "methods" => many(&mut a.methods, value),
            "theme" | "themes" => many(&mut a.themes, value),
            "tag" | "tags" => {
                for t in value.split(',') {
                    many(&mut a.tags, t.trim().to_string());
                }
            }
            "place" => a.place = value,
            other => return Err(format!("unknown parameter {other:?}")),
        }
        if values > MAX_VALUES {
            return Err(format!(
                "too many priorities, methods, themes and tags (at most {MAX_VALUES})"
            ));
        }
    }
    if a.id.is_some()
        && (!a.title.is_empty()
            || !a.text.is_empty()
            || !a.priorities.is_empty()
            || !a.methods.is_empty()
            || !a.tags.is_empty())
    {
        return Err("give either id or a draft, not both".into());
    }
    Ok(a)
}

/// Vocabulary values as slugs, or the vocabulary's one-line error.
fn slugs(v: &Vocabulary, values: &[String]) -> Result<Vec<String>, String> {
    values
        .iter()
        .map(|p| {
            v.resolve(p)
                .map(|t| t.slug.clone())
                .map_err(|e| e.to_string())
        })
        .collect()
}

fn find(node: &Node, a: Asked) -> Result<Vec<similar::Similar>, Failure> {
    let bad = |m: String| Failure::bad_request(m);
    if let Some(id) = &a.id {
        let id = node.resolve(id)?;
        return similar::similar_to(node, id, a.limit).map_err(failure);
    }
    let vocab = node.vocab();
    let exclude = a.exclude.as_deref().map(|e| node.resolve(e)).transpose()?;
    let draft = Draft {
        title: a.title,
        text: a.text.join("\n"),
        tags: a.tags,
        priorities: slugs(&vocab.priorities, &a.priorities).map_err(bad)?,
        methods: slugs(&vocab.methods, &a.methods).map_err(bad)?,
        themes: slugs(&vocab.themes, &a.themes).map_err(bad)?,
        place: a.place,
        exclude,
    };
    similar::similar(node, &draft, a.limit).map_err(failure)
}

fn failure(e: SimilarError) -> Failure {
    match e {
        SimilarError::Node(e) => e.into(),
        SimilarError::Store(e) => e.into(),
        e @ (SimilarError::Empty | SimilarError::NotMatchable { .. }) => {
            Failure::bad_request(e.to_string())
        }
    }
}

async fn api(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let asked = match parse(query.as_deref().unwrap_or_default()) {
        Ok(a) => a,
        Err(m) => return error(StatusCode::BAD_REQUEST, m),
    };
    match state.run(move |node| find(node, asked)).await {
        Ok(found) => Json(
            found
                .iter()
                .map(similar::Similar::to_json)
                .collect::<Vec<_>>(),
        )
        .into_response(),
        Err(f) => error(f.status, f.message),
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn a_query_string_describes_a_draft() {
        let a = parse(
            "kind=project&title=Handover&summary=crews&priority=a&priority=b&tag=x,%20y&limit=3",
        )
        .unwrap();
        assert_eq!(a.title, "Handover");
        assert_eq!(a.text, ["crews"]);
        assert_eq!(a.priorities, ["a", "b"]);
        assert_eq!(a.tags, ["x", "y"]);
        assert_eq!(a.limit, 3);
    }

    #[test]
    fn bad_queries_say_what_is_wrong() {
        assert!(
            parse("kind=contact&title=x")
                .unwrap_err()
                .contains("not a contact")
        );
        assert!(parse("limit=0&title=x").unwrap_err().contains("limit"));
        assert!(parse("colour=red").unwrap_err().contains("colour"));
        assert!(parse("id=abc&title=x").unwrap_err().contains("not both"));
        let long = format!("title={}", "a".repeat(20_001));
        assert!(parse(&long).unwrap_err().contains("too long"));
    }
}
