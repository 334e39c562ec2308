//! `GET /feed.atom` (Atom, new and updated entries) and `GET /events.ics`
//! (iCalendar, events): what `crate::feeds` selects and renders.
//!
//! Two ways in, decided by whether the address holds a `token` parameter:
//!
//! - **No token**: the request must be signed in like any page (a session
//!   cookie or the API token, through [`auth::require_sign_in`]), and the
//!   filter comes from the query, as on the browse page (`?priority=…`).
//! - **A token** (`?token=…`, made by `convene feed new`): no session is
//!   looked at; the token must be live and made for this feed, and the
//!   filter is the one it is bound to. Filter parameters in the address
//!   are allowed only if they say the same filter (the address `feed new`
//!   prints names it, for people to read); any other filter is refused
//!   with 403, never served, so a token cannot be stretched to other
//!   entries. Other parameters (a reader's cache-buster) are ignored. A
//!   wrong, revoked or never-issued token gets one answer: 403 and the
//!   same line.
//!
//! Either way the `Host` check of the whole app applies first, answers
//! are `no-store`, and failures are one plain-text line.

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use convene_model::Timestamp;

use super::auth::{self, Hosts};
use super::{AppState, Failure};
use crate::feeds::{self, FeedError, FeedFilter, Scope};
use crate::node::Node;

pub(crate) fn routes(state: AppState, hosts: Hosts) -> Router<AppState> {
    Router::new()
        .route("/feed.atom", get(atom))
        .route("/events.ics", get(ics))
        .layer(axum::middleware::from_fn_with_state((state, hosts), gate))
}

/// The token in a query, if it has a `token` parameter (even empty).
fn token_of(query: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
}

/// A request with a token goes on to be checked by its handler; any other
/// must be signed in.
async fn gate(State(s): State<(AppState, Hosts)>, req: Request, next: Next) -> Response {
    if token_of(req.uri().query().unwrap_or("")).is_some() {
        next.run(req).await
    } else {
        auth::require_sign_in(State(s), req, next).await
    }
}

fn failure(e: FeedError) -> Failure {
    let status = match e {
        FeedError::Node(e) => return e.into(),
        FeedError::BadToken | FeedError::WrongScope(_) | FeedError::OtherFilter(_) => {
            StatusCode::FORBIDDEN
        }
        FeedError::UnknownId(_) => StatusCode::NOT_FOUND,
        FeedError::Invalid(_) => StatusCode::BAD_REQUEST,
    };
    Failure {
        status,
        message: e.to_string(),
    }
}

/// The filter a request may have: the token's, or the query's.
fn filter_for(node: &Node, query: &str, scope: Scope) -> Result<FeedFilter, FeedError> {
    let asked = FeedFilter::from_query(query);
    match token_of(query) {
        Some(secret) => {
            let token = feeds::authorise(node, &secret, scope)?;
            let (asked, any) =
                asked.map_err(|_| FeedError::OtherFilter(token.filter.describe()))?;
            if any && asked.resolve(node, scope).ok().as_ref() != Some(&token.filter) {
                return Err(FeedError::OtherFilter(token.filter.describe()));
            }
            Ok(token.filter)
        }
        None => asked?.0.resolve(node, scope),
    }
}

/// `http://HOST/` as this request named the server (`check_host` let
/// only this server's own names through).
fn base(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}/")
}

fn answer(result: Result<String, Failure>, content_type: &'static str) -> Response {
    match result {
        Ok(body) => (
            [
                (header::CONTENT_TYPE, content_type),
                (header::CACHE_CONTROL, "no-store"),
            ],
            body,
        )
            .into_response(),
        Err(f) => (
            f.status,
            [
                (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            format!("{}\n", f.message.replace(['\r', '\n'], " ")),
        )
            .into_response(),
    }
}

/// `GET /feed.atom`.
async fn atom(State(state): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    let query = uri.query().unwrap_or("").to_string();
    let base = base(&headers);
    let result = state
        .run(move |node| {
            let filter = filter_for(node, &query, Scope::Entries).map_err(failure)?;
            let items = feeds::entries(node, &filter).map_err(failure)?;
            feeds::atom::render(node, &base, &filter, &items).map_err(failure)
        })
        .await;
    answer(result, feeds::atom::CONTENT_TYPE)
}

/// `GET /events.ics`.
async fn ics(State(state): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    let query = uri.query().unwrap_or("").to_string();
    let base = base(&headers);
    let now = Timestamp(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64),
    );
    let result = state
        .run(move |node| {
            let filter = filter_for(node, &query, Scope::Events).map_err(failure)?;
            let items = feeds::ics::events(node, &filter, now).map_err(failure)?;
            feeds::ics::render(node, &base, &filter, &items).map_err(failure)
        })
        .await;
    answer(result, feeds::ics::CONTENT_TYPE)
}
