//! Who may use the web app: API clients holding the token, and browsers
//! holding a session.
//!
//! - The **API token** lives in `web-token` in the home (mode 0600), so only
//!   the account that runs the node can read it. API clients send it as
//!   `Authorization: Bearer TOKEN`. It is never put in a cookie.
//! - **Browsers sign in with a one-time link**: `convene open` stores the
//!   blake3 hash of a fresh random ticket (valid for two minutes, usable
//!   once) and opens `/login?ticket=…`, which swaps it for a **session**:
//!   256 random bits, of which the node's database keeps only the blake3
//!   hash, with when it was made and when it expires (24 hours later). The
//!   browser holds it in a cookie named for this web app's port
//!   (`convene_session_4041`), `HttpOnly`, `SameSite=Strict`, `Path=/`, no
//!   `Domain`, with a bounded `Max-Age`: cookies are scoped to the host and
//!   not the port, so two nodes on one computer must not share a name, and
//!   another service on 127.0.0.1 that receives the cookie gets a value
//!   that only opens this web app, for a day at most, until signed out.
//! - **Signing out**: the Sign out button ends the browser's own session;
//!   Sign out everywhere (the Community page) and `convene open
//!   --sign-out-all` end every session and every unused sign-in link.
//!   Tickets and sessions live in the database (the `meta` table), so the
//!   CLI and the daemon, separate processes, see the same ones.
//! - Every request must name this server in `Host` (against DNS
//!   rebinding), and a cookie-authenticated write must not come from
//!   another origin (against cross-site form posts). The JSON API takes
//!   only `application/json` bodies (see `api.rs`), which no other site can
//!   send without a CORS preflight that this server never grants. Every
//!   answer forbids framing, scripts from elsewhere and referrers to other
//!   sites (not `no-referrer`: Chromium then sends `Origin: null` with
//!   forms).
//! - A request that is not signed in is told only that.

use std::net::SocketAddr;
use std::path::Path;

use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::{AppState, WebError};
use crate::StoreError;
use crate::node::Node;

/// The token file inside a home.
pub const TOKEN_FILE: &str = "web-token";
/// How long a sign-in link works.
const TICKET_LIFETIME_MS: i64 = 120_000;
/// How long a browser session lasts (the cookie's `Max-Age` too).
pub const SESSION_LIFETIME_SECS: i64 = 24 * 60 * 60;
/// Sessions kept at most; signing in past this ends the oldest.
const MAX_SESSIONS: i64 = 64;
/// Sign-in links kept at most; a newer one ends the oldest.
const MAX_TICKETS: i64 = 16;
/// `meta` keys: the prefix, then the blake3 hash (hex) of the secret.
const TICKET_KEY: &str = "web.ticket.";
const SESSION_KEY: &str = "web.session.";

/// What a request without a valid token or session is told.
pub(crate) const NOT_SIGNED_IN: &str = "not signed in";

/// The session cookie's name for the web app on `port`.
pub fn cookie_name(port: u16) -> String {
    format!("convene_session_{port}")
}

/// Reads the home's web token, creating it (0600) on first use.
pub fn load_or_create_token(home: &Path) -> Result<String, WebError> {
    let path = home.join(TOKEN_FILE);
    let err = |source| WebError::Token {
        path: path.display().to_string(),
        source,
    };
    match std::fs::read_to_string(&path) {
        Ok(t) if !t.trim().is_empty() => return Ok(t.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(err(e)),
    }
    let token = bs58::encode(rand::random::<[u8; 32]>()).into_string();
    let tmp = home.join(format!("{TOKEN_FILE}.tmp"));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp).map_err(err)?;
    std::io::Write::write_all(&mut file, format!("{token}\n").as_bytes()).map_err(err)?;
    file.sync_all().map_err(err)?;
    std::fs::rename(&tmp, &path).map_err(err)?;
    Ok(token)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A fresh 256-bit secret, and the `meta` key that stores its hash.
fn fresh_secret(prefix: &str) -> (String, String) {
    let secret = bs58::encode(rand::random::<[u8; 32]>()).into_string();
    let key = key_for(prefix, &secret);
    (secret, key)
}

fn key_for(prefix: &str, secret: &str) -> String {
    format!("{prefix}{}", blake3::hash(secret.as_bytes()).to_hex())
}

/// Removes the expired rows under `prefix` (values start with the expiry,
/// unix ms), then all but the `keep` latest to expire.
fn prune(node: &Node, prefix: &str, keep: i64) -> Result<(), StoreError> {
    let conn = node.store().conn();
    let like = format!("{prefix}%");
    conn.execute(
        "DELETE FROM meta WHERE key LIKE ?1 AND CAST(value AS INTEGER) <= ?2",
        rusqlite::params![like, now_ms()],
    )?;
    conn.execute(
        "DELETE FROM meta WHERE key LIKE ?1 AND key NOT IN (
            SELECT key FROM meta WHERE key LIKE ?1
            ORDER BY CAST(value AS INTEGER) DESC LIMIT ?2)",
        rusqlite::params![like, keep],
    )?;
    Ok(())
}

/// The expiry (unix ms) stored under `key`, if the row exists.
fn expiry(node: &Node, key: &str) -> Result<Option<(String, i64)>, StoreError> {
    let Some(value) = node.store().meta(key)? else {
        return Ok(None);
    };
    let expires = value
        .split_whitespace()
        .next()
        .and_then(|e| e.parse::<i64>().ok())
        .unwrap_or(0);
    Ok(Some((value, expires)))
}

/// Makes a one-time sign-in ticket for the web app of the node: it works
/// once, within two minutes. Returns the ticket.
pub fn issue_ticket(node: &Node) -> Result<String, StoreError> {
    prune(node, TICKET_KEY, MAX_TICKETS - 1)?;
    let (ticket, key) = fresh_secret(TICKET_KEY);
    node.store()
        .set_meta(&key, &(now_ms() + TICKET_LIFETIME_MS).to_string())?;
    Ok(ticket)
}

/// Uses up `ticket`: whether it was valid. Two requests with one ticket
/// cannot both succeed (the row is deleted by the one that matched it).
fn redeem_ticket(node: &Node, ticket: &str) -> Result<bool, StoreError> {
    let key = key_for(TICKET_KEY, ticket);
    let Some((value, expires)) = expiry(node, &key)? else {
        return Ok(false);
    };
    let taken = node.store().take_meta(&key, &value)?;
    Ok(taken && expires > now_ms())
}

/// Starts a browser session; returns its secret (the cookie's value).
fn create_session(node: &Node) -> Result<String, StoreError> {
    prune(node, SESSION_KEY, MAX_SESSIONS - 1)?;
    let (session, key) = fresh_secret(SESSION_KEY);
    let now = now_ms();
    let expires = now + SESSION_LIFETIME_SECS * 1000;
    node.store().set_meta(&key, &format!("{expires} {now}"))?;
    Ok(session)
}

fn session_valid(node: &Node, session: &str) -> Result<bool, StoreError> {
    Ok(expiry(node, &key_for(SESSION_KEY, session))?.is_some_and(|(_, e)| e > now_ms()))
}

fn end_session(node: &Node, session: &str) -> Result<(), StoreError> {
    node.store().conn().execute(
        "DELETE FROM meta WHERE key = ?1",
        [key_for(SESSION_KEY, session)],
    )?;
    Ok(())
}

/// Signs every browser out of the node's web app: ends every session and
/// voids every unused sign-in link. Returns how many sessions it ended.
pub fn sign_out_all(node: &Node) -> Result<usize, StoreError> {
    let conn = node.store().conn();
    let tx = conn.unchecked_transaction()?;
    let sessions = tx.execute(
        "DELETE FROM meta WHERE key LIKE ?1 AND CAST(value AS INTEGER) > ?2",
        rusqlite::params![format!("{SESSION_KEY}%"), now_ms()],
    )?;
    tx.execute(
        "DELETE FROM meta WHERE key LIKE ?1",
        [format!("{SESSION_KEY}%")],
    )?;
    // `web.ticket` without a dot: the single ticket of earlier versions.
    tx.execute("DELETE FROM meta WHERE key LIKE 'web.ticket%'", [])?;
    tx.commit()?;
    Ok(sessions)
}

/// The `Host` values that name this server.
#[derive(Debug, Clone)]
pub(crate) struct Hosts(Vec<String>);

impl Hosts {
    pub(crate) fn new(addr: SocketAddr) -> Self {
        let port = addr.port();
        Self(vec![
            addr.to_string(),
            format!("localhost:{port}"),
            format!("127.0.0.1:{port}"),
            format!("[::1]:{port}"),
        ])
    }

    fn allows(&self, host: &str) -> bool {
        self.0.iter().any(|h| h.eq_ignore_ascii_case(host))
    }
}

pub(crate) async fn check_host(State(hosts): State<Hosts>, req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if !hosts.allows(host) {
        return (
            StatusCode::MISDIRECTED_REQUEST,
            "this is a Convene node's local web app; open it by its loopback address\n",
        )
            .into_response();
    }
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    // A handler may set a stricter policy of its own (a download's
    // `sandbox`); every other answer gets this one.
    headers
        .entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(header::HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ));
    for (name, value) in [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        headers.insert(name, header::HeaderValue::from_static(value));
    }
    response
}

/// The values of the cookies named `name` (a browser sends one; a few at
/// most are looked at).
fn cookie_values<'a>(headers: &'a HeaderMap, name: &'a str) -> impl Iterator<Item = &'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .filter(move |(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
        .take(4)
}

fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

fn same(a: &str, b: &str) -> bool {
    // blake3::Hash compares in constant time.
    blake3::hash(a.as_bytes()) == blake3::hash(b.as_bytes())
}

/// Whether a request comes from elsewhere: an `Origin` that is not this
/// server (`null` included), or a browser's `Sec-Fetch-Site` that is
/// neither `same-origin` nor `none` (`same-site` is another port on this
/// computer: cookies do not tell ports apart, so `SameSite` lets them
/// through).
fn from_elsewhere(headers: &HeaderMap, hosts: &Hosts) -> bool {
    let foreign = headers
        .get(header::ORIGIN)
        .map(|o| o.to_str().unwrap_or(""))
        .is_some_and(|o| {
            o.strip_prefix("http://")
                .is_none_or(|host| !hosts.allows(host))
        });
    let cross_site = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v != "same-origin" && v != "none");
    foreign || cross_site
}

fn refused_from_elsewhere() -> Response {
    super::pages::error_page(
        StatusCode::FORBIDDEN,
        "Refused",
        "this form was sent from another site",
    )
}

/// The answer to a request that is neither signed in nor holds the token.
fn not_signed_in(api: bool) -> Response {
    if api {
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            axum::Json(serde_json::json!({ "error": NOT_SIGNED_IN })),
        )
            .into_response()
    } else {
        super::pages::signed_out_page(
            StatusCode::UNAUTHORIZED,
            "Not signed in",
            "This browser is not signed in.",
        )
    }
}

/// Lets through requests with the API token (`Authorization: Bearer`) or a
/// live session cookie; a cookie-authenticated write must come from this
/// server's own pages.
pub(crate) async fn require_sign_in(
    State((state, hosts)): State<(AppState, Hosts)>,
    req: Request,
    next: Next,
) -> Response {
    let headers = req.headers();
    let api = req.uri().path().starts_with("/api/");
    let by_bearer = bearer_token(headers).is_some_and(|t| same(t, &state.0.token));
    if !by_bearer {
        let sessions: Vec<String> = cookie_values(headers, &state.0.cookie)
            .map(str::to_string)
            .collect();
        let signed_in = if sessions.is_empty() {
            Ok(false)
        } else {
            state
                .run(move |node| {
                    for s in &sessions {
                        if session_valid(node, s)? {
                            return Ok(true);
                        }
                    }
                    Ok(false)
                })
                .await
        };
        match signed_in {
            Ok(true) => {}
            Ok(false) => return not_signed_in(api),
            Err(f) => return f.into_response(),
        }
        if !matches!(*req.method(), Method::GET | Method::HEAD) && from_elsewhere(headers, &hosts) {
            return refused_from_elsewhere();
        }
    }
    let mut response = next.run(req).await;
    // What a signed-in request sees stays out of caches (the Back button
    // after signing out on a shared computer).
    response
        .headers_mut()
        .entry(header::CACHE_CONTROL)
        .or_insert(header::HeaderValue::from_static("no-store"));
    response
}

#[derive(Debug, Deserialize)]
pub(crate) struct LoginQuery {
    #[serde(default)]
    ticket: String,
}

fn session_cookie(state: &AppState, value: &str, max_age: i64) -> String {
    format!(
        "{}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}",
        state.0.cookie
    )
}

/// `GET /login?ticket=…`: swaps a one-time ticket for a session cookie.
pub(crate) async fn login(State(state): State<AppState>, Query(q): Query<LoginQuery>) -> Response {
    let ticket = q.ticket;
    let session = state
        .run(move |node| {
            if ticket.is_empty() || !redeem_ticket(node, &ticket)? {
                return Ok(None);
            }
            Ok(Some(create_session(node)?))
        })
        .await;
    match session {
        Ok(Some(session)) => (
            [(
                header::SET_COOKIE,
                session_cookie(&state, &session, SESSION_LIFETIME_SECS),
            )],
            Redirect::to("/"),
        )
            .into_response(),
        Ok(None) => super::pages::signed_out_page(
            StatusCode::UNAUTHORIZED,
            "Sign-in link expired",
            "This sign-in link was used already or is more than two minutes old.",
        ),
        Err(f) => f.into_response(),
    }
}

/// Ends this browser's session (if it has one) and forgets its cookie.
fn signed_out(state: &AppState) -> Response {
    (
        [
            (header::SET_COOKIE, session_cookie(state, "", 0)),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        Redirect::to("/signed-out"),
    )
        .into_response()
}

/// `POST /sign-out`: ends the session this browser holds. Needs no sign-in
/// (it can only end the session the request names), but must come from
/// this server's own page.
pub(crate) async fn sign_out(
    State((state, hosts)): State<(AppState, Hosts)>,
    headers: HeaderMap,
) -> Response {
    if from_elsewhere(&headers, &hosts) {
        return refused_from_elsewhere();
    }
    let sessions: Vec<String> = cookie_values(&headers, &state.0.cookie)
        .map(str::to_string)
        .collect();
    let ended = state
        .run(move |node| {
            for s in &sessions {
                end_session(node, s)?;
            }
            Ok(())
        })
        .await;
    match ended {
        Ok(()) => signed_out(&state),
        Err(f) => f.into_response(),
    }
}

/// `POST /sign-out-everywhere` (signed in): ends every session.
pub(crate) async fn sign_out_everywhere(State(state): State<AppState>) -> Response {
    match state.run(|node| Ok(sign_out_all(node)?)).await {
        Ok(_) => signed_out(&state),
        Err(f) => f.into_response(),
    }
}

/// `GET /signed-out`: where signing out leads.
pub(crate) async fn signed_out_page() -> Response {
    super::pages::signed_out_page(
        StatusCode::OK,
        "Signed out",
        "This browser is signed out of this node's web app.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_private_and_stable() {
        let home = tempfile::tempdir().unwrap();
        let a = load_or_create_token(home.path()).unwrap();
        let b = load_or_create_token(home.path()).unwrap();
        assert_eq!(a, b);
        assert!(a.len() >= 40);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(home.path().join(TOKEN_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    fn node() -> (tempfile::TempDir, Node) {
        let dir = tempfile::tempdir().unwrap();
        let node = Node::init(
            dir.path(),
            &crate::InitOptions {
                org: "Gateshead Council".into(),
                sector: "council".into(),
                place: None,
            },
        )
        .unwrap();
        (dir, node)
    }

    /// Rewrites the expiry of the row that stores `secret`'s hash.
    fn expire(node: &Node, prefix: &str, secret: &str) {
        node.store()
            .set_meta(&key_for(prefix, secret), &(now_ms() - 1).to_string())
            .unwrap();
    }

    #[test]
    fn a_ticket_works_once_and_not_after_it_expires() {
        let (_dir, node) = node();
        let ticket = issue_ticket(&node).unwrap();
        assert!(ticket.len() >= 43, "256 bits");
        assert!(!redeem_ticket(&node, "not-a-ticket").unwrap());
        assert!(redeem_ticket(&node, &ticket).unwrap());
        assert!(!redeem_ticket(&node, &ticket).unwrap(), "used once");
        let late = issue_ticket(&node).unwrap();
        expire(&node, TICKET_KEY, &late);
        assert!(!redeem_ticket(&node, &late).unwrap(), "expired");
        // Only hashes are stored.
        let stored = node.store().meta(&key_for(TICKET_KEY, &ticket)).unwrap();
        assert!(stored.is_none());
    }

    #[test]
    fn sessions_expire_end_and_are_bounded() {
        let (_dir, node) = node();
        let a = create_session(&node).unwrap();
        let b = create_session(&node).unwrap();
        assert_ne!(a, b);
        assert!(session_valid(&node, &a).unwrap() && session_valid(&node, &b).unwrap());
        end_session(&node, &a).unwrap();
        assert!(!session_valid(&node, &a).unwrap(), "signed out");
        assert!(session_valid(&node, &b).unwrap(), "the other stays");
        expire(&node, SESSION_KEY, &b);
        assert!(!session_valid(&node, &b).unwrap(), "expired");

        let all: Vec<String> = (0..MAX_SESSIONS + 5)
            .map(|_| create_session(&node).unwrap())
            .collect();
        let live = all
            .iter()
            .filter(|s| session_valid(&node, s).unwrap())
            .count();
        assert_eq!(live as i64, MAX_SESSIONS, "the oldest are ended");
        assert!(session_valid(&node, all.last().unwrap()).unwrap());

        let ticket = issue_ticket(&node).unwrap();
        assert_eq!(sign_out_all(&node).unwrap() as i64, MAX_SESSIONS);
        assert!(all.iter().all(|s| !session_valid(&node, s).unwrap()));
        assert!(
            !redeem_ticket(&node, &ticket).unwrap(),
            "links are void too"
        );
        assert_eq!(sign_out_all(&node).unwrap(), 0);
    }

    #[test]
    fn cookies_are_read_by_name_only() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            "convene_session=a; convene_session_4041=b; convene_session_40410=c"
                .parse()
                .unwrap(),
        );
        let found: Vec<&str> = cookie_values(&headers, "convene_session_4041").collect();
        assert_eq!(found, ["b"]);
        assert_eq!(cookie_name(4041), "convene_session_4041");
    }

    #[test]
    fn hosts_are_this_server_only() {
        let hosts = Hosts::new("127.0.0.1:4041".parse().unwrap());
        assert!(hosts.allows("127.0.0.1:4041"));
        assert!(hosts.allows("localhost:4041"));
        assert!(!hosts.allows("evil.example:4041"));
        assert!(!hosts.allows("127.0.0.1:80"));
    }
}
