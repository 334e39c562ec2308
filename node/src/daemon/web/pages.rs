//! Server-rendered pages: the layout, browse and search, one entry with its
//! history and run charts, and the community (members and peers).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use convene_model::{Body, Entry, Kind, Timestamp, Vocabularies};
use maud::{DOCTYPE, Markup, html};
use serde_json::Value;

use super::files::{FilesView, UploadForm};
use super::forms::{self, vocab_for};
use super::query::{Browse, Page, Row};
use super::{AppState, Failure};
use crate::daemon::status::Status;
use crate::node::HistoryItem;

/// The page frame: skip link, navigation, sign-out button, main.
pub(crate) fn layout(title: &str, body: Markup) -> Markup {
    frame(title, body, true)
}

/// The frame; `signed_in` adds the navigation and the sign-out button.
fn frame(title: &str, body: Markup, signed_in: bool) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en-GB" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Convene" }
                link rel="stylesheet" href="/style.css";
            }
            body {
                a class="skip" href="#main" { "Skip to content" }
                header class="top" {
                    a class="brand" href="/" { "Convene" }
                    @if signed_in {
                        nav aria-label="Main" {
                            ul {
                                li { a href="/" { "Browse" } }
                                li { a href="/whats-new" { "What's new" } }
                                li { a href="/new/learning" { "Share learning" } }
                                li { a href="/new/project" { "New project" } }
                                li { a href="/new/contact" { "New contact" } }
                                li { a href="/events" { "Events" } }
                                li { a href="/ideas" { "Ideas" } }
                                li { a href="/questions" { "Questions" } }
                                li { a href="/who" { "Who's who" } }
                                li { a href="/community" { "Community" } }
                            }
                        }
                        form class="sign-out" method="post" action="/sign-out" {
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main id="main" tabindex="-1" { (body) }
            }
        }
    }
}

/// A page for a browser that is not signed in (or has just signed out):
/// `message`, and how to sign in. Nothing about the node.
pub(crate) fn signed_out_page(status: StatusCode, title: &str, message: &str) -> Response {
    let body = html! {
        h1 { (title) }
        p class=(if status.is_success() { "notice" } else { "error" }) role="status" { (message) }
        p {
            "To sign in, run " code { "convene open" }
            " on the computer this node runs on: it opens this web app with a sign-in link that works once."
        }
    };
    (
        status,
        [(axum::http::header::CACHE_CONTROL, "no-store")],
        Html(frame(title, body, false).into_string()),
    )
        .into_response()
}

/// The page for an address nothing answers (outside `/api/`): it may be
/// asked for signed in or not, so it has no navigation, only a way back.
pub(crate) fn not_found_page(path: &str) -> Response {
    let body = html! {
        h1 { "Page not found" }
        p class="error" role="status" { "There is no page at " code { (path) } "." }
        p { a href="/" { "Browse entries" } }
    };
    (
        StatusCode::NOT_FOUND,
        Html(frame("Page not found", body, false).into_string()),
    )
        .into_response()
}

pub(crate) fn html_page(title: &str, body: Markup) -> Response {
    Html(layout(title, body).into_string()).into_response()
}

pub(crate) fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    (
        status,
        Html(
            layout(
                title,
                html! {
                    h1 { (title) }
                    p class="error" role="alert" { (message) }
                    p { a href="/" { "Back to browsing" } }
                },
            )
            .into_string(),
        ),
    )
        .into_response()
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let title = match self.status {
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::FORBIDDEN => "Not allowed",
            s if s.is_client_error() => "Please check",
            _ => "Something went wrong",
        };
        error_page(self.status, title, &self.message)
    }
}

fn kind_label(kind: Kind) -> &'static str {
    match kind {
        Kind::Learning => "Learning",
        Kind::Project => "Project",
        Kind::Contact => "Contact",
        Kind::Organisation => "Organisation",
        Kind::Charter => "Community charter",
        Kind::Join => "Join claim",
        Kind::Message => "Message",
        Kind::Event => "Event",
        Kind::Idea => "Idea",
        Kind::Round => "Voting round",
        Kind::Response => "Response",
    }
}

/// `learning_type` → `Learning type`.
pub(crate) fn humanise(field: &str) -> String {
    let s = field.replace('_', " ");
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

fn select(name: &str, label: &str, current: &str, options: &[(String, String)]) -> Markup {
    html! {
        div class="field" {
            label for=(format!("f-{name}")) { (label) }
            select id=(format!("f-{name}")) name=(name) {
                option value="" { "Any" }
                @for (value, text) in options {
                    option value=(value) selected[value == current] { (text) }
                }
            }
        }
    }
}

fn terms(v: &convene_model::Vocabulary) -> Vec<(String, String)> {
    v.terms
        .iter()
        .map(|t| (t.slug.clone(), t.label.clone()))
        .collect()
}

pub(crate) async fn browse(
    State(state): State<AppState>,
    Query(q): Query<Browse>,
) -> Result<Response, Failure> {
    let query = q.clone();
    let (rows, orgs) = state
        .run(move |node| {
            let rows = query.run(node);
            let orgs = node.list(&crate::store::Filter {
                kind: Some(Kind::Organisation),
                ..Default::default()
            })?;
            Ok((rows, orgs))
        })
        .await?;
    let vocab = Vocabularies::default();
    let kinds: Vec<(String, String)> = [
        Kind::Learning,
        Kind::Project,
        Kind::Contact,
        Kind::Organisation,
    ]
    .iter()
    .map(|k| (k.as_str().to_string(), kind_label(*k).to_string()))
    .collect();
    let org_options: Vec<(String, String)> = orgs
        .iter()
        .map(|o| (o.id.to_string(), o.title.clone()))
        .collect();
    let (page, problem) = match rows {
        Ok(p) => (p, None),
        Err(f) if f.status.is_client_error() => {
            let (limit, offset) = q.window();
            (
                Page {
                    rows: Vec::new(),
                    total: 0,
                    offset,
                    limit,
                },
                Some(f.message),
            )
        }
        Err(f) => return Err(f),
    };
    let heading = if q.is_filtered() {
        "Results"
    } else {
        "Latest entries"
    };
    Ok(html_page(
        "Browse",
        html! {
            h1 { "Learning and improvement" }
            form class="filters" method="get" action="/" role="search" {
                div class="field wide" {
                    label for="f-q" { "Search" }
                    input id="f-q" type="search" name="q" value=(q.q) placeholder="e.g. discharge, falls, loneliness";
                }
                (select("kind", "Kind", &q.kind, &kinds))
                (select("priority", "Priority", &q.priority, &terms(&vocab.priorities)))
                (select("method", "Method", &q.method, &terms(&vocab.methods)))
                (select("sector", "Sector", &q.sector, &terms(&vocab.sectors)))
                div class="field" {
                    label for="f-place" { "Place" }
                    input id="f-place" type="text" name="place" value=(q.place);
                }
                (select("org", "Organisation", &q.org, &org_options))
                div class="actions" {
                    button type="submit" { "Show" }
                    @if q.is_filtered() { " " a href="/" { "Clear" } }
                }
            }
            @if let Some(p) = problem {
                p class="error" role="alert" { (p) }
            }
            h2 {
                (heading) " " span class="count" {
                    "(" (thousands(page.total)) ")"
                    @if page.offset > 0 || page.has_more() {
                        " · showing " (thousands(page.offset + 1)) "–" (thousands(page.offset + page.rows.len()))
                    }
                }
            }
            (list(&page.rows))
            (pager(&q, &page))
        },
    ))
}

/// `2505` → `2,505`.
pub(crate) fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The browse address of another page of the same query.
fn page_href(q: &Browse, page: usize) -> String {
    let mut url = form_urlencoded::Serializer::new(String::new());
    for (k, v) in [
        ("q", &q.q),
        ("kind", &q.kind),
        ("priority", &q.priority),
        ("method", &q.method),
        ("sector", &q.sector),
        ("place", &q.place),
        ("org", &q.org),
    ] {
        if !v.trim().is_empty() {
            url.append_pair(k, v);
        }
    }
    if q.all {
        url.append_pair("all", "true");
    }
    if let Some(l) = q.limit {
        url.append_pair("limit", &l.to_string());
    }
    url.append_pair("page", &page.to_string());
    format!("/?{}", url.finish())
}

/// "Showing 201–400 of 2,505" with previous and next links.
fn pager(q: &Browse, page: &Page) -> Markup {
    if page.rows.is_empty() || (page.offset == 0 && !page.has_more()) {
        return html! {};
    }
    let number = page.offset / page.limit + 1;
    let pages = page.total.div_ceil(page.limit);
    html! {
        nav class="pager" aria-label="Pages" {
            p {
                "Showing " (thousands(page.offset + 1)) "–" (thousands(page.offset + page.rows.len()))
                " of " (thousands(page.total))
            }
            ul {
                @if number > 1 {
                    li { a rel="prev" href=(page_href(q, number - 1)) { "← Previous" } }
                }
                li { "Page " (number) " of " (pages) }
                @if page.has_more() {
                    li { a rel="next" href=(page_href(q, number + 1)) { "Next →" } }
                }
            }
        }
    }
}

fn list(rows: &[Row]) -> Markup {
    html! {
        @if rows.is_empty() {
            p { "Nothing here yet. " a href="/new/learning" { "Share some learning" } "." }
        } @else {
            ol class="entries" {
                @for r in rows {
                    li {
                        a class="title" href=(format!("/e/{}", r.listed.id)) { (r.listed.title) }
                        div class="meta" {
                            span class=(format!("kind kind-{}", r.listed.kind.as_str())) { (kind_label(r.listed.kind)) }
                            " · " (r.listed.owner_name.as_deref().unwrap_or("unknown organisation"))
                            " · updated " (Timestamp(r.listed.updated).short())
                            @if r.listed.status == "retracted" { " · " strong { "retracted" } }
                        }
                        @if let Some(s) = &r.snippet {
                            p class="snippet" { (snippet(s)) }
                        }
                    }
                }
            }
        }
    }
}

/// A search snippet with its `[matched]` words marked.
fn snippet(s: &str) -> Markup {
    let mut parts = Vec::new();
    let mut rest = s;
    while let Some(open) = rest.find('[') {
        let Some(close) = rest[open..].find(']') else {
            break;
        };
        parts.push((false, &rest[..open]));
        parts.push((true, &rest[open + 1..open + close]));
        rest = &rest[open + close + 1..];
    }
    parts.push((false, rest));
    html! {
        @for (hit, text) in parts {
            @if hit { mark { (text) } } @else { (text) }
        }
    }
}

struct EntryView {
    entry: Entry,
    owner_name: Option<String>,
    standing: Option<&'static str>,
    history: Vec<HistoryItem>,
    org_names: Vec<(String, String)>,
    /// This node's organisation owns the entry or co-edits it: only then
    /// are edit buttons and forms shown (the server checks again).
    may_change: bool,
    /// Its files, each with whether this node holds the bytes.
    files: FilesView,
    /// The upload form as a failed upload left it.
    upload: UploadForm,
    /// Questions, going and support (`convening`).
    talk: super::convening::EntryTalk,
}

pub(crate) async fn entry(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, Failure> {
    entry_page(&state, id, StatusCode::OK, UploadForm::default()).await
}

/// Entry `id`'s page with `status`; `upload` is what the upload form shows
/// (after a failed upload: what was typed and what went wrong).
pub(crate) async fn entry_page(
    state: &AppState,
    id: String,
    status: StatusCode,
    upload: UploadForm,
) -> Result<Response, Failure> {
    entry_page_full(state, id, status, upload, super::convening::Said::Nothing).await
}

/// Entry `id`'s page with `status`, its question, reply or answer forms
/// as a refused post left them (`said`).
pub(crate) async fn entry_page_with(
    state: &AppState,
    id: String,
    status: StatusCode,
    said: super::convening::Said,
) -> Result<Response, Failure> {
    entry_page_full(state, id, status, UploadForm::default(), said).await
}

async fn entry_page_full(
    state: &AppState,
    id: String,
    status: StatusCode,
    upload: UploadForm,
    said: super::convening::Said,
) -> Result<Response, Failure> {
    let limits = state.0.limits;
    let can_fetch = state.client().is_some();
    let similar = super::similar::entry_section(state, id.clone()).await;
    let view = state
        .run(move |node| {
            let id = node.resolve(&id)?;
            let entry = node.get(id)?;
            let org_names = node
                .list(&crate::store::Filter {
                    kind: Some(Kind::Organisation),
                    ..Default::default()
                })?
                .into_iter()
                .map(|o| (o.id.to_string(), o.title))
                .collect();
            Ok(EntryView {
                // A retracted entry can no longer be edited by anyone.
                may_change: node.may_change(&entry)
                    && entry.meta.status != convene_model::Status::Retracted,
                owner_name: node.org_name(&entry.meta.owner),
                standing: node.org_standing(&entry.meta.owner),
                history: node.history(id)?,
                files: FilesView::load(node, id, limits, can_fetch)?,
                talk: super::convening::EntryTalk::load(node, &entry, said)?,
                entry,
                org_names,
                upload,
            })
        })
        .await?;
    let page = html! { (render_entry(&view)) (similar) };
    let page = html_page(view.entry.body.title(), page);
    Ok((status, page).into_response())
}

fn render_entry(v: &EntryView) -> Markup {
    let e = &v.entry;
    let vocab = Vocabularies::default();
    let json = e.body.to_value();
    let id = e.id.to_string();
    let visibility = match e.meta.visibility.to_string().as_str() {
        "community" => "Everyone in the community".to_string(),
        "organisation" => "Our organisation only".to_string(),
        other => other
            .split(',')
            .map(|o| {
                v.org_names
                    .iter()
                    .find(|(id, _)| id == o)
                    .map_or(o.to_string(), |(_, n)| n.clone())
            })
            .collect::<Vec<_>>()
            .join(", "),
    };
    let editable = matches!(e.meta.kind, Kind::Learning | Kind::Project | Kind::Contact);
    html! {
        p class="breadcrumb" { a href="/" { "Browse" } " › " (kind_label(e.meta.kind)) }
        h1 { (e.body.title()) }
        dl class="meta-list" {
            dt { "Kind" } dd { (kind_label(e.meta.kind)) }
            dt { "Organisation" } dd {
                (v.owner_name.as_deref().unwrap_or(&e.meta.owner.to_string()))
                @if v.standing == Some("former member") { " (former member)" }
            }
            dt { "Visible to" } dd { (visibility) }
            dt { "Status" } dd { (e.meta.status.to_string()) }
            dt { "Published" } dd { (e.meta.created.short()) " UTC" }
            dt { "Updated" } dd { (e.meta.updated.short()) " UTC" }
            dt { "Id" } dd { code { (id) } }
        }
        @if editable && v.may_change {
            p { a class="button" href=(format!("/e/{id}/edit")) { "Edit" } }
        }
        (v.talk.top())
        @if let Value::Object(fields) = &json {
            dl class="fields" {
                @for (field, value) in fields.iter() {
                    @if !matches!(field.as_str(), "title" | "measures" | "pdsa" | "attachments") && !super::convening::shown_apart(e.meta.kind, field) && !is_empty(value) {
                        dt { (humanise(field)) }
                        dd { (render_value(field, value, &vocab)) }
                    }
                }
            }
        }
        (super::files::section(&id, e.meta.kind, &v.files, v.may_change, &v.upload))
        @if let Body::Project(p) = &e.body {
            section aria-labelledby="measures" {
                h2 id="measures" { "Measures" }
                @if p.measures.is_empty() {
                    p { "No measures yet." }
                }
                @for (i, m) in p.measures.iter().enumerate() {
                    (measure(&id, i, m, &p.pdsa, &vocab, v.may_change))
                }
                @if v.may_change {
                    (forms::measure_form(&id, &vocab))
                }
            }
            (super::pdsa::section(&id, p, v.may_change))
        }
        (v.talk.questions())
        section aria-labelledby="history" {
            h2 id="history" { "History" }
            ol class="history" {
                @for h in v.history.iter().rev() {
                    li {
                        time datetime=(h.time.to_string()) { (h.time.short()) " UTC" }
                        " · "
                        (h.signer_org.as_ref().and_then(|(_, n)| n.clone()).unwrap_or_else(|| "unknown organisation".into()))
                        @if let Some(m) = &h.message { " · " (m) }
                    }
                }
            }
        }
    }
}

fn measure(
    id: &str,
    i: usize,
    m: &convene_model::Measure,
    pdsa: &[convene_model::Pdsa],
    vocab: &Vocabularies,
    may_change: bool,
) -> Markup {
    let chart_id = format!("m{i}");
    let facts: Vec<String> = [
        m.measure_type
            .as_deref()
            .map(|t| format!("{} measure", vocab.measure_types.label(t))),
        (!m.unit.is_empty()).then(|| format!("unit: {}", m.unit)),
        m.baseline.map(|b| format!("baseline {b}")),
        m.target.map(|t| format!("target {t}")),
    ]
    .into_iter()
    .flatten()
    .collect();
    html! {
        section class="measure" aria-labelledby=(format!("{chart_id}-h")) {
            h3 id=(format!("{chart_id}-h")) { (m.name) }
            @if !facts.is_empty() { p class="meta" { (facts.join(" · ")) } }
            @if !m.definition.is_empty() { p { (m.definition) } }
            (super::chart::figure(id, i, m, pdsa))
            @if may_change { (super::chart::settings_form(id, i, m, pdsa)) }
            (super::pdsa::annotations(id, i, m, may_change))
            @if may_change {
                (forms::data_point_form(id, i, &m.name))
            }
        }
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::Bool(b) => !b,
        Value::Number(_) => false,
    }
}

fn render_value(field: &str, value: &Value, vocab: &Vocabularies) -> Markup {
    match value {
        Value::String(s) => match vocab_for(vocab, field) {
            Some(v) => html! { (v.label(s)) },
            None if s.contains('\n') => html! {
                @for para in s.split("\n\n") { p { (para) } }
            },
            None if s.starts_with("https://") && !s.contains(char::is_whitespace) => {
                html! { a href=(s) rel="noopener noreferrer" { (s) } }
            }
            None => html! { (s) },
        },
        Value::Array(items) if items.iter().all(Value::is_string) => {
            let labels: Vec<&str> = items
                .iter()
                .filter_map(Value::as_str)
                .map(|s| vocab_for(vocab, field).map_or(s, |v| v.label(s)))
                .collect();
            html! { ul class="tags" { @for l in labels { li { (l) } } } }
        }
        Value::Array(items) => html! {
            ol class="nested" {
                @for item in items { li { (render_value(field, item, vocab)) } }
            }
        },
        Value::Object(map) => html! {
            dl class="nested" {
                @for (k, v) in map {
                    @if !is_empty(v) {
                        dt { (humanise(k)) }
                        dd { (render_value(k, v, vocab)) }
                    }
                }
            }
        },
        Value::Bool(b) => html! { (if *b { "Yes" } else { "No" }) },
        Value::Number(n) => html! { (n.to_string()) },
        Value::Null => html! {},
    }
}

pub(crate) async fn community(State(state): State<AppState>) -> Result<Response, Failure> {
    let (membership, status) = state
        .run(|node| Ok((node.membership(), Status::read(node)?)))
        .await?;
    let live: Option<Vec<String>> = match state.client() {
        Some(c) => c
            .peers()
            .await
            .ok()
            .map(|p| p.into_iter().map(|p| p.node.to_string()).collect()),
        None => None,
    };
    let connected = |node: &str, recorded: bool| {
        live.as_ref()
            .map_or(recorded, |l| l.iter().any(|p| p == node))
    };
    Ok(html_page(
        "Community",
        html! {
            @match &membership {
                Some(m) => {
                    h1 { (m.name) }
                    h2 { "Members" }
                    table {
                        thead { tr {
                            th scope="col" { "Organisation" }
                            th scope="col" { "Role" }
                            th scope="col" { "Joined" }
                            th scope="col" { "Nodes" }
                        } }
                        tbody {
                            @for info in m.members.values() {
                                tr {
                                    td { (info.name) }
                                    td {
                                        @if info.removed.is_some() { "former member" }
                                        @else if info.steward { "steward" }
                                        @else { "member" }
                                    }
                                    td { (info.joined.short()) }
                                    td { (info.nodes.len()) }
                                }
                            }
                        }
                    }
                }
                None => {
                    h1 { "Community" }
                    p { "This node is not in a community yet. Create one with "
                        code { "convene community create NAME" } " or join one with "
                        code { "convene join CODE" } "." }
                }
            }
            h2 { "This node" }
            dl class="meta-list" {
                dt { "Organisation" } dd { (status.org_name.as_deref().unwrap_or(&status.org_id)) }
                dt { "Node id" } dd { code { (status.node_id) } }
                dt { "Entries" } dd {
                    @for (i, (kind, n)) in status.counts.iter().enumerate() {
                        @if i > 0 { ", " }
                        (n) " " (kind)
                    }
                }
            }
            h2 { "Peers" }
            @if status.peers.is_empty() {
                p { "No other node has been seen yet." }
            } @else {
                table {
                    thead { tr {
                        th scope="col" { "Node" }
                        th scope="col" { "Connected" }
                        th scope="col" { "Last sync" }
                        th scope="col" { "Changes in / out" }
                        th scope="col" { "Rejected" }
                    } }
                    tbody {
                        @for p in &status.peers {
                            tr {
                                td { code title=(p.node) { (p.node.get(..16).unwrap_or(&p.node)) "…" } }
                                td { (if connected(&p.node, p.connected) { "yes" } else { "no" }) }
                                td { (p.last_sync.map(|t| Timestamp(t).short()).unwrap_or_else(|| "never".into())) }
                                td { (p.changes_in) " / " (p.changes_out) }
                                td { (p.rejected) }
                            }
                        }
                    }
                }
            }
            h2 { "Web app sign-in" }
            p {
                "Each browser signed in with " code { "convene open" }
                " stays signed in for a day, or until it signs out. "
                "If a browser you no longer use may still be signed in, sign every browser out; "
                "then run " code { "convene open" } " to sign in again here."
            }
            form class="sign-out-everywhere" method="post" action="/sign-out-everywhere" {
                button type="submit" class="secondary" { "Sign out everywhere" }
            }
        },
    ))
}
