//! The local web app and its JSON API, served by the daemon on loopback.
//!
//! - `auth`: the API token (`web-token` in the home, for API clients
//!   only), one-time sign-in links (`convene open`) exchanged for browser
//!   sessions (a cookie named for the port, revocable: Sign out, Sign out
//!   everywhere, `convene open --sign-out-all`), and the Host/Origin
//!   checks that keep other sites and other local users out.
//! - `query`: browse filters shared by the pages and `/api/entries`.
//! - `pages`: server-rendered HTML (maud): browse and search, an entry
//!   with its history and run charts, the community.
//! - `forms`: the publish and edit forms, from one field list per kind;
//!   a form that fails shows every problem beside its field.
//! - `pdsa`: a project's PDSA cycles and its measures' annotations,
//!   added and edited from the entry page.
//! - `chart`: a measure's run chart, XmR or p-chart (analysed by
//!   `convene_model::chart`) drawn as accessible SVG with a table beside
//!   it, and its SVG, CSV and JSON downloads.
//! - `feeds`: `/feed.atom` and `/events.ics`, for a signed-in browser
//!   or for a feed link's own token (that feed, its filter, nothing else).
//! - `who`: who's who, `/who?topic=` and `/api/who?topic=`: the
//!   organisations and consenting people who know about a topic, with
//!   their evidence linked.
//! - `convening`: questions and replies on an entry's page, going to
//!   events and supporting ideas; `/events`, `/ideas`, `/questions`.
//! - `whatsnew`: `/whats-new`, what changed since this browser's last
//!   visit (kept in a cookie of its own), each thing linked.
//! - `api`: `/api/…`, JSON in and out (only `application/json` bodies).
//! - `files`: an entry's attachments: the Attachments section, uploads
//!   streamed into the file store, downloads that can never run in this
//!   origin.
//! - `similar`: `/api/similar` and the Similar work panel of the
//!   new-entry forms (`similar.js` fills it as the person types).
//!
//! Every handler runs the node's blocking calls on tokio's blocking pool
//! through `AppState::run`, against the web server's own [`Node`] (its
//! own SQLite connection). Writes go through the same `Node` calls as the
//! CLI, so they are validated, signed and stored the same way; the event
//! loop notices them on its next tick and announces them to peers.
//! `/metrics` (no token: counters only) renders the daemon's [`Metrics`].

mod api;
mod auth;
mod chart;
mod convening;
mod feeds;
mod files;
mod forms;
mod pages;
mod pdsa;
mod query;
mod similar;
mod whatsnew;
mod who;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::oneshot;

pub use auth::{
    SESSION_LIFETIME_SECS, TOKEN_FILE, cookie_name, issue_ticket, load_or_create_token,
    sign_out_all,
};
pub use chart::svg_document as chart_svg_document;

use super::event_loop::Client;
use super::metrics::Metrics;
use crate::node::Node;
use crate::{FileLimits, NodeError};

/// Where a running daemon records its web app's address (store meta).
pub const META_WEB: &str = "daemon.web";

/// Why the web app could not start.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error(
        "cannot serve the web app on {addr}: {source}; set web.listen in config.toml, or pass --web ADDR or --no-web"
    )]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Node(#[from] NodeError),
    #[error("cannot write the web token {path}: {source}")]
    Token {
        path: String,
        source: std::io::Error,
    },
}

struct Inner {
    node: Mutex<Node>,
    client: Option<Client>,
    metrics: Option<Arc<Metrics>>,
    /// The API token (`Authorization: Bearer`), never a cookie.
    token: String,
    /// The session cookie's name: `convene_session_PORT`.
    cookie: String,
    /// The node's home (its file store is `files/` in it).
    home: PathBuf,
    /// The per-file maximum from `config.toml` (`[files] max_file_mb`).
    limits: FileLimits,
    /// Uploads in flight by content hash: how many hold it, and whether
    /// one of them brought the bytes here (see `files::Pending`).
    uploads: Mutex<std::collections::HashMap<String, (usize, bool)>>,
}

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct AppState(Arc<Inner>);

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AppState")
    }
}

impl AppState {
    /// Runs `f` with the node on the blocking pool.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Node) -> Result<T, Failure> + Send + 'static,
    ) -> Result<T, Failure> {
        let inner = self.0.clone();
        tokio::task::spawn_blocking(move || {
            // A handler that panicked left no transaction open (rusqlite
            // rolls back on drop), so the node is still usable.
            let mut node = inner.node.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut node)
        })
        .await
        .map_err(|e| Failure::internal(e.to_string()))?
    }

    pub(crate) fn client(&self) -> Option<&Client> {
        self.0.client.as_ref()
    }
}

/// A failed request: a status and one readable line.
#[derive(Debug)]
pub(crate) struct Failure {
    pub status: StatusCode,
    pub message: String,
}

impl Failure {
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: message.into(),
        }
    }
}

impl From<NodeError> for Failure {
    fn from(e: NodeError) -> Self {
        let status = match &e {
            NodeError::UnknownId(_) | NodeError::Erased(_) => StatusCode::NOT_FOUND,
            NodeError::NotOwner { .. } | NodeError::NotSteward | NodeError::NotInCommunity => {
                StatusCode::FORBIDDEN
            }
            NodeError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            NodeError::Store(_)
            | NodeError::Key(_)
            | NodeError::Backup(_)
            | NodeError::Doc(_)
            | NodeError::NotInitialised(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        };
        Self {
            status,
            message: e.to_string(),
        }
    }
}

impl From<crate::StoreError> for Failure {
    fn from(e: crate::StoreError) -> Self {
        NodeError::from(e).into()
    }
}

/// A running web app.
#[derive(Debug)]
pub struct WebServer {
    /// Where it listens (the real port when the config asked for port 0).
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    handle: tokio::task::JoinHandle<()>,
}

impl WebServer {
    /// The address to open in a browser.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Stops accepting requests, lets running ones finish, and waits.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.handle).await;
    }
}

/// Serves the web app of the node in `home` on `addr` (loopback). `client`
/// (the running event loop) gives the peers page and `/metrics`.
pub async fn serve(
    home: &Path,
    addr: SocketAddr,
    client: Option<Client>,
) -> Result<WebServer, WebError> {
    let node = Node::open(home)?;
    let token = load_or_create_token(home)?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| WebError::Bind { addr, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| WebError::Bind { addr, source })?;
    node.store()
        .set_meta(META_WEB, &format!("http://{addr}/"))
        .map_err(NodeError::from)?;
    let metrics = client.as_ref().map(Client::metrics);
    // The daemon has read config.toml already (and refused a bad one).
    let limits = match super::config::Config::load(home) {
        Ok(c) => c.files,
        Err(e) => {
            tracing::warn!(error = %e, "the web app uses the default file limits");
            FileLimits::default()
        }
    };
    let state = AppState(Arc::new(Inner {
        node: Mutex::new(node),
        client,
        metrics,
        token,
        cookie: auth::cookie_name(addr.port()),
        home: home.to_path_buf(),
        limits,
        uploads: Mutex::default(),
    }));
    let app = router(state.clone(), addr);
    let (tx, rx) = oneshot::channel::<()>();
    let handle = tokio::spawn(async move {
        let server = axum::serve(listener, app).with_graceful_shutdown(async {
            let _ = rx.await;
        });
        if let Err(e) = server.await {
            tracing::warn!(error = %e, "the web app stopped");
        }
        // `convene open` and `status` must not send anyone to a dead port.
        let cleared = state
            .run(|node| Ok(node.store().set_meta(META_WEB, "")?))
            .await;
        if let Err(e) = cleared {
            tracing::warn!(error = %e.message, "cannot record that the web app stopped");
        }
    });
    tracing::info!(url = %format!("http://{addr}/"), "web app listening");
    Ok(WebServer {
        addr,
        shutdown: Some(tx),
        handle,
    })
}

fn router(state: AppState, addr: SocketAddr) -> Router {
    let protected = Router::new()
        .route("/", get(pages::browse))
        .route("/e/{id}", get(pages::entry))
        .route(
            "/e/{id}/edit",
            get(forms::edit_page).post(forms::edit_submit),
        )
        .route("/e/{id}/data", post(forms::add_data_point))
        .route("/e/{id}/measures", post(forms::add_measure))
        .route("/e/{id}/pdsa", post(pdsa::add_pdsa))
        .route(
            "/e/{id}/pdsa/{n}",
            get(pdsa::edit_page).post(pdsa::edit_pdsa),
        )
        .route("/e/{id}/annotations/{m}", post(pdsa::add_annotation))
        .route(
            "/e/{id}/annotations/{m}/{n}",
            get(pdsa::annotation_page).post(pdsa::edit_annotation),
        )
        .route("/new/{kind}", get(forms::new_page).post(forms::new_submit))
        .route("/community", get(pages::community))
        .route("/sign-out-everywhere", post(auth::sign_out_everywhere))
        .merge(api::routes())
        .merge(chart::routes())
        .merge(who::routes())
        .merge(whatsnew::routes())
        .merge(convening::routes())
        .merge(files::routes(state.0.limits))
        .merge(similar::routes())
        .layer(axum::middleware::from_fn_with_state(
            (state.clone(), auth::Hosts::new(addr)),
            auth::require_sign_in,
        ));
    let sign_out = Router::new()
        .route("/sign-out", post(auth::sign_out))
        .with_state((state.clone(), auth::Hosts::new(addr)));
    Router::new()
        .route("/login", get(auth::login))
        .route("/signed-out", get(auth::signed_out_page))
        .route("/style.css", get(style))
        .route("/files.js", get(files::script))
        .route("/similar.js", get(similar::script))
        .route("/metrics", get(metrics))
        .merge(feeds::routes(state.clone(), auth::Hosts::new(addr)))
        .merge(protected)
        .merge(sign_out)
        .fallback(api::not_found)
        .layer(axum::middleware::from_fn_with_state(
            auth::Hosts::new(addr),
            auth::check_host,
        ))
        .with_state(state)
}

async fn style() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("web/style.css"),
    )
        .into_response()
}

async fn metrics(axum::extract::State(state): axum::extract::State<AppState>) -> Response {
    match &state.0.metrics {
        Some(m) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            m.render(),
        )
            .into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "the node's networking is not running\n",
        )
            .into_response(),
    }
}
