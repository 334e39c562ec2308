//! `/api/…`: the JSON API the web app's pages stand on, for scripts and
//! other tools. Entries come in and go out in the shape `convene show
//! --json` prints; errors are `{"error": "one line"}` with a 4xx or 5xx
//! status. A request that sends anything (every method but GET and HEAD)
//! must say `Content-Type: application/json`, or it is refused with 415
//! before it is read: a page on another site can send `text/plain` or form
//! bodies without asking, but not JSON.
//!
//! | method | path | what |
//! |---|---|---|
//! | GET | `/api/status` | this node, entry counts, peers |
//! | GET | `/api/entries?q=&kind=&priority=&method=&sector=&place=&org=&all=&limit=&offset=` | list or search: one page (`limit`, default 200, from `offset`); the number of matches in all in `X-Total-Count` |
//! | POST | `/api/entries/{kind}` | publish (body: the entry's fields) |
//! | GET | `/api/entries/{id}?history=true` | one entry |
//! | PATCH | `/api/entries/{id}` | set fields (body: `{"field": value, …}`) |
//! | POST | `/api/entries/{id}/data` | add a value (`measure`, `date`, `value`, `note`, `denominator`) |
//! | GET | `/api/entries/{id}/chart?measure=` | the charts as data (served by `chart`) |
//! | POST | `/api/entries/{id}/retract` | retract |
//! | GET | `/api/members` | the community's members |
//! | GET | `/api/peers` | connected peers |

use axum::extract::{Path, Query, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use convene_model::{DataPoint, EntryInput, Kind};
use serde::Deserialize;
use serde_json::{Value, json};

use super::query::Browse;
use super::{AppState, Failure};
use crate::daemon::status::Status;
use crate::node::{Edit, Outcome, history_json};

/// A failure as JSON.
struct ApiError(Failure);

impl From<Failure> for ApiError {
    fn from(f: Failure) -> Self {
        Self(f)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0.status, Json(json!({ "error": self.0.message }))).into_response()
    }
}

type ApiResult = Result<Response, ApiError>;

fn ok(value: Value) -> ApiResult {
    Ok(Json(value).into_response())
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/status", get(status))
        .route("/api/entries", get(entries))
        .route("/api/entries/{id}", get(entry).patch(patch).post(publish))
        .route("/api/entries/{id}/data", post(data_point))
        .route("/api/entries/{id}/retract", post(retract))
        .route("/api/members", get(members))
        .route("/api/peers", get(peers))
        .route_layer(axum::middleware::from_fn(require_json))
}

/// Any address nothing else answers: under `/api/` a JSON 404 like every
/// other API error, elsewhere a plain one.
pub(crate) async fn not_found(uri: axum::http::Uri) -> Response {
    if uri.path().starts_with("/api/") {
        ApiError(Failure {
            status: StatusCode::NOT_FOUND,
            message: format!(
                "no API endpoint at {}: see /api/entries, /api/status, /api/members, /api/peers",
                uri.path()
            ),
        })
        .into_response()
    } else {
        super::pages::not_found_page(uri.path())
    }
}

/// Whether a `Content-Type` value is JSON (`application/json`, parameters
/// such as `; charset=utf-8` allowed).
fn is_json(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
}

/// Refuses (415) a request that may carry a body and does not declare JSON.
async fn require_json(req: Request, next: Next) -> Response {
    let reads_only = matches!(*req.method(), Method::GET | Method::HEAD);
    let json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(is_json);
    if !reads_only && !json {
        return ApiError(Failure {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            message: "send the body as JSON, with Content-Type: application/json".into(),
        })
        .into_response();
    }
    next.run(req).await
}

/// Reads a JSON body with a one-line error (axum's own rejection is text).
fn body(bytes: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError(Failure::bad_request(format!("the body is not JSON: {e}"))))
}

async fn status(State(state): State<AppState>) -> ApiResult {
    let s = state.run(|node| Ok(Status::read(node)?)).await?;
    ok(json!({
        "node": s.node_id,
        "organisation": s.org_id,
        "organisation_name": s.org_name,
        "running": s.running,
        "listen": s.listen,
        "counts": s.counts.iter().map(|(k, n)| (k.clone(), json!(n))).collect::<serde_json::Map<_, _>>(),
        "peers": s.peers.iter().map(|p| json!({
            "node": p.node,
            "address": p.address,
            "connected": p.connected,
            "last_sync": p.last_sync.map(|t| convene_model::Timestamp(t).to_string()),
            "changes_in": p.changes_in,
            "changes_out": p.changes_out,
            "rejected": p.rejected,
        })).collect::<Vec<_>>(),
    }))
}

/// A query string parsed as `T`, or a JSON error (axum's own rejection is
/// plain text).
struct ApiQuery<T>(T);

impl<T, S> axum::extract::FromRequestParts<S> for ApiQuery<T>
where
    T: serde::de::DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(q)) => Ok(Self(q)),
            Err(e) => Err(ApiError(Failure::bad_request(format!(
                "the query string is not valid: {}",
                e.body_text()
            )))),
        }
    }
}

/// The total number of matches rides in `X-Total-Count`, so the body stays
/// the array it always was; the page is `limit` rows from `offset`.
async fn entries(State(state): State<AppState>, ApiQuery(q): ApiQuery<Browse>) -> ApiResult {
    let page = state.run(move |node| q.run(node)).await?;
    let total = page.total;
    let body = Value::Array(
        page.rows
            .into_iter()
            .map(|r| {
                let mut v = r.listed.to_json();
                if let Some(s) = r.snippet {
                    v["snippet"] = Value::String(s);
                }
                v
            })
            .collect(),
    );
    Ok(([("x-total-count", total.to_string())], Json(body)).into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct EntryQuery {
    history: bool,
}

async fn entry(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<EntryQuery>,
) -> ApiResult {
    let v = state
        .run(move |node| {
            let id = node.resolve(&id)?;
            let entry = node.get(id)?;
            let mut json = entry.to_json();
            json["owner_name"] = json!(node.org_name(&entry.meta.owner));
            json["owner_standing"] = json!(node.org_standing(&entry.meta.owner));
            if q.history {
                json["history"] = history_json(&node.history(id)?);
            }
            Ok(json)
        })
        .await?;
    ok(v)
}

/// `POST /api/entries/{kind}`: the path segment is a kind here.
async fn publish(
    State(state): State<AppState>,
    Path(kind): Path<String>,
    bytes: axum::body::Bytes,
) -> ApiResult {
    let kind: Kind = kind
        .parse()
        .map_err(|e: convene_model::entry::UnknownKind| {
            ApiError(Failure::bad_request(format!(
                "{e}; publish with POST /api/entries/learning, /project or /contact"
            )))
        })?;
    let value = body(&bytes)?;
    let id = state
        .run(move |node| {
            let mut input = EntryInput::from_json(kind, value).map_err(crate::NodeError::from)?;
            if let Some(v) = &input.visibility {
                input.visibility = Some(node.parse_visibility(&v.to_string())?);
            }
            Ok(node.publish(input)?)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(json!({ "id": id.to_string() }))).into_response())
}

async fn patch(
    State(state): State<AppState>,
    Path(id): Path<String>,
    bytes: axum::body::Bytes,
) -> ApiResult {
    let Value::Object(fields) = body(&bytes)? else {
        return Err(ApiError(Failure::bad_request(
            "expected an object of fields to set, e.g. {\"title\": \"…\"}",
        )));
    };
    if fields.is_empty() {
        return Err(ApiError(Failure::bad_request("no fields to set")));
    }
    let set: Vec<(String, String)> = fields
        .into_iter()
        .map(|(k, v)| {
            let raw = match v {
                Value::String(s) => s,
                other => other.to_string(),
            };
            (k, raw)
        })
        .collect();
    let (id, outcome) = state
        .run(move |node| {
            let id = node.resolve(&id)?;
            Ok((id, node.edit(id, Edit::Set(set))?))
        })
        .await?;
    ok(json!({ "id": id.to_string(), "changed": outcome == Outcome::Changed }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewPoint {
    measure: String,
    date: String,
    value: f64,
    #[serde(default)]
    note: String,
    /// For a proportion: how many there were.
    #[serde(default)]
    denominator: Option<f64>,
}

async fn data_point(
    State(state): State<AppState>,
    Path(id): Path<String>,
    bytes: axum::body::Bytes,
) -> ApiResult {
    let p: NewPoint = serde_json::from_value(body(&bytes)?).map_err(|e| {
        ApiError(Failure::bad_request(format!(
            "expected {{\"measure\", \"date\", \"value\", \"note\"}}: {e}"
        )))
    })?;
    let id = state
        .run(move |node| {
            let id = node.resolve(&id)?;
            node.edit(
                id,
                Edit::AddDataPoint {
                    measure: p.measure,
                    point: DataPoint {
                        date: p.date,
                        value: p.value,
                        note: p.note,
                        denominator: p.denominator,
                    },
                },
            )?;
            Ok(id)
        })
        .await?;
    ok(json!({ "id": id.to_string() }))
}

async fn retract(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult {
    let (id, outcome) = state
        .run(move |node| {
            let id = node.resolve(&id)?;
            Ok((id, node.retract(id)?))
        })
        .await?;
    ok(json!({ "id": id.to_string(), "changed": outcome == Outcome::Changed }))
}

async fn members(State(state): State<AppState>) -> ApiResult {
    let m = state.run(|node| Ok(node.membership())).await?;
    let Some(m) = m else {
        return ok(json!({ "community": null, "members": [] }));
    };
    ok(json!({
        "community": m.community.to_string(),
        "name": m.name,
        "members": m.members.values().map(|i| json!({
            "organisation": i.org,
            "name": i.name,
            "steward": i.steward,
            "joined": i.joined.to_string(),
            "removed": i.removed.map(|t| t.to_string()),
            "nodes": i.nodes,
        })).collect::<Vec<_>>(),
    }))
}

async fn peers(State(state): State<AppState>) -> ApiResult {
    let Some(client) = state.client() else {
        return Err(ApiError(Failure {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: "the node's networking is not running".into(),
        }));
    };
    let peers = client
        .peers()
        .await
        .map_err(|e| ApiError(Failure::internal(e.to_string())))?;
    ok(Value::Array(
        peers
            .into_iter()
            .map(|p| {
                json!({
                    "node": p.node.to_string(),
                    "address": p.address.map(|a| a.to_string()),
                })
            })
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::is_json;

    #[test]
    fn only_json_is_json() {
        assert!(is_json("application/json"));
        assert!(is_json("Application/JSON; charset=utf-8"));
        assert!(!is_json("text/plain"));
        assert!(!is_json("text/plain; a=application/json"));
        assert!(!is_json("application/x-www-form-urlencoded"));
        assert!(!is_json("multipart/form-data; boundary=x"));
        assert!(!is_json("application/jsonp"));
        assert!(!is_json(""));
    }
}
