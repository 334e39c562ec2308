//! Who may use the web app: whoever holds the token.
//!
//! - The token lives in `web-token` in the home (mode 0600), so only the
//!   account that runs the node can read it. API clients send it as
//!   `Authorization: Bearer TOKEN`.
//! - Browsers sign in with a one-time ticket: `convene open` stores the
//!   hash of a fresh ticket (valid for two minutes) and opens
//!   `/login?ticket=…`, which swaps it for an `HttpOnly`, `SameSite=Strict`
//!   cookie. The token itself never appears on a command line or in a URL.
//! - Every request must name this server in `Host` (against DNS
//!   rebinding), and a cookie-authenticated write must not come from
//!   another origin (against cross-site form posts). Every answer forbids
//!   framing, scripts from elsewhere and referrers to other sites (not
//!   `no-referrer`: Chromium then sends `Origin: null` with forms).

use std::net::SocketAddr;
use std::path::Path;

use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::{AppState, Failure, WebError};
use crate::node::Node;

/// The token file inside a home.
pub const TOKEN_FILE: &str = "web-token";
const COOKIE: &str = "convene_session";
const META_TICKET: &str = "web.ticket";
const TICKET_LIFETIME_MS: i64 = 120_000;

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

/// Makes a one-time sign-in ticket for the web app of the node (valid two
/// minutes; a newer ticket replaces it). Returns the ticket.
pub fn issue_ticket(node: &Node) -> Result<String, crate::StoreError> {
    let ticket = bs58::encode(rand::random::<[u8; 24]>()).into_string();
    let expires = now_ms() + TICKET_LIFETIME_MS;
    node.store().set_meta(
        META_TICKET,
        &format!("{} {expires}", blake3::hash(ticket.as_bytes()).to_hex()),
    )?;
    Ok(ticket)
}

fn take_ticket(node: &Node, ticket: &str) -> Result<bool, crate::StoreError> {
    let Some(stored) = node.store().meta(META_TICKET)? else {
        return Ok(false);
    };
    let Some((hash, expires)) = stored.split_once(' ') else {
        return Ok(false);
    };
    let Ok(expected) = blake3::Hash::from_hex(hash) else {
        return Ok(false);
    };
    // blake3::Hash compares in constant time.
    if blake3::hash(ticket.as_bytes()) != expected
        || expires.parse::<i64>().map_or(true, |e| e < now_ms())
    {
        return Ok(false);
    }
    node.store().take_meta(META_TICKET, &stored)
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
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        headers.insert(name, header::HeaderValue::from_static(value));
    }
    response
}

fn cookie_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v)
}

fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

fn same(a: &str, b: &str) -> bool {
    blake3::hash(a.as_bytes()) == blake3::hash(b.as_bytes())
}

pub(crate) async fn require_token(
    State((state, hosts)): State<(AppState, Hosts)>,
    req: Request,
    next: Next,
) -> Response {
    let token = &state.0.token;
    let headers = req.headers();
    let by_bearer = bearer_token(headers).is_some_and(|t| same(t, token));
    let by_cookie = !by_bearer && cookie_token(headers).is_some_and(|t| same(t, token));
    let api = req.uri().path().starts_with("/api/");
    if !by_bearer && !by_cookie {
        let message = "sign in with `convene open` (or send the token in the home's web-token file as `Authorization: Bearer TOKEN`)";
        return if api {
            (
                StatusCode::UNAUTHORIZED,
                axum::Json(serde_json::json!({ "error": message })),
            )
                .into_response()
        } else {
            super::pages::error_page(StatusCode::UNAUTHORIZED, "Sign in", message)
        };
    }
    if by_cookie && !matches!(*req.method(), Method::GET | Method::HEAD) {
        let foreign = headers
            .get(header::ORIGIN)
            .and_then(|o| o.to_str().ok())
            .is_some_and(|o| {
                o.strip_prefix("http://")
                    .is_none_or(|host| !hosts.allows(host))
            });
        let cross_site = headers
            .get("sec-fetch-site")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v == "cross-site");
        if foreign || cross_site {
            return super::pages::error_page(
                StatusCode::FORBIDDEN,
                "Refused",
                "this form was sent from another site",
            );
        }
    }
    next.run(req).await
}

#[derive(Debug, Deserialize)]
pub(crate) struct LoginQuery {
    ticket: String,
}

pub(crate) async fn login(State(state): State<AppState>, Query(q): Query<LoginQuery>) -> Response {
    let ticket = q.ticket;
    let ok = state
        .run(move |node| take_ticket(node, &ticket).map_err(Failure::from))
        .await;
    match ok {
        Ok(true) => {
            let cookie = format!(
                "{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict",
                state.0.token
            );
            ([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response()
        }
        Ok(false) => super::pages::error_page(
            StatusCode::UNAUTHORIZED,
            "Sign-in link expired",
            "this sign-in link was used already or is more than two minutes old; run `convene open` again",
        ),
        Err(f) => super::pages::error_page(f.status, "Error", &f.message),
    }
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

    #[test]
    fn hosts_are_this_server_only() {
        let hosts = Hosts::new("127.0.0.1:4041".parse().unwrap());
        assert!(hosts.allows("127.0.0.1:4041"));
        assert!(hosts.allows("localhost:4041"));
        assert!(!hosts.allows("evil.example:4041"));
        assert!(!hosts.allows("127.0.0.1:80"));
    }
}
