//! Files on the entry page and in the API: the Attachments section,
//! uploads (a form with a file picker, plus drag and drop from
//! `files.js`), downloads.
//!
//! # Routes
//!
//! | method | path | what |
//! |---|---|---|
//! | POST | `/e/{id}/files` | upload (`multipart/form-data`: `file`, optional `name`) |
//! | GET | `/e/{id}/files/{name}` | download |
//! | POST | `/e/{id}/files/{name}/fetch` | ask the daemon for a file not held here (as `convene get` does, through the store's `files.wanted`) |
//! | GET | `/api/entries/{id}/files` | the entry's files as JSON, with whether each is held here |
//! | GET | `/api/entries/{id}/files/{name}` | download |
//! | POST | `/api/entries/{id}/files?name=NAME` | upload the body (`application/octet-stream`) |
//!
//! A file is addressed by its entry and its name, not by its hash: what
//! may be seen is decided per entry, so a download asks "this entry's file
//! called X", which is 404 once the entry is gone (erased) even when
//! another entry still uses the same bytes, and a hash alone never opens
//! anything. The name in the address also names the download in browsers
//! that ignore `Content-Disposition`.
//!
//! # Uploads
//!
//! The bytes stream straight into the file store (`BlobStore::put`, on
//! the blocking pool through a small channel): a 200 MB upload never sits
//! in memory. The entry is checked first (may this node's organisation add
//! files to it?), before a byte of the body is read; the content is stored
//! and hashed, then recorded in the entry in one signed change
//! (`Node::record_attachment`). Whatever fails (too large, empty, a bad or
//! taken name, the connection dropped half way) leaves no bytes and no
//! record: content stored for an upload is removed again unless the change
//! that records it was written (a [`Pending`] guard, which also covers a
//! request abandoned mid-way, and leaves alone bytes that another upload
//! of the same content, running at the same time, still needs). A form
//! that fails comes back as the entry page with one sentence beside the
//! field it concerns. (Two processes, `convene attach` and an upload, of
//! the same content at the same moment are not covered: one's refusal may
//! remove bytes the other is about to record.)
//!
//! A form's request body may be at most twice the per-file maximum plus
//! 1 MiB: a file somewhat over the limit is read to the end and thrown
//! away, so the browser gets the page saying so rather than a dropped
//! connection (`files.js` checks the size before sending anything at all).
//! A larger body is cut off at that bound, and one that declares a larger
//! `Content-Length` is refused before it is read. The API upload is
//! refused as soon as it passes the limit (API clients read a `413` that
//! arrives early; `curl` waits for it with `Expect: 100-continue`).
//!
//! Uploads through the page are protected like every other form: the
//! session cookie is `SameSite=Strict` and a cookie-authenticated write
//! whose `Origin` or `Sec-Fetch-Site` says another site is refused before
//! it reaches this module (see `auth`). The API upload requires
//! `Content-Type: application/octet-stream`, which no other site can send
//! without a CORS preflight this server never grants.
//!
//! # Downloads
//!
//! Never run in this web app's origin, whatever the file is:
//! `Content-Disposition: attachment` with the sanitised name (RFC 6266,
//! `filename*` per RFC 5987 for names beyond ASCII), `X-Content-Type-Options:
//! nosniff`, `Content-Security-Policy: sandbox` (a browser that renders it
//! anyway gives it a unique origin and no scripts), and a content type from
//! a short list of inert types (PDF, office documents, raster images,
//! plain text, CSV, zip…); anything else, HTML and SVG included, and any
//! type another node's document claims, goes out as
//! `application/octet-stream`. The bytes stream from disk in 64 KiB pieces
//! and are hashed on the way; the last piece is held back until the hash
//! matches, so a file damaged on disk is never delivered whole.

use std::io::Read;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use convene_model::attachment::sanitise_name;
use convene_model::{DocumentId, Kind};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;

use super::{AppState, Failure};
use crate::blobs::{BlobError, Stored};
use crate::daemon::files::META_FETCHING;
use crate::human_size;
use crate::{FileLimits, HeldAttachment, NodeError};

/// The pieces downloads are read in.
const PIECE: usize = 64 * 1024;
/// Request bytes allowed beyond twice the file limit (form fields, framing).
const HEADROOM: u64 = 1024 * 1024;
/// The most of a `name` form field that is read.
const MAX_NAME_FIELD: usize = 4096;
/// The content security policy of a download: no scripts, no plugins, a
/// unique origin, nothing loaded.
const DOWNLOAD_CSP: &str = "sandbox; default-src 'none'";

pub(crate) fn routes(limits: FileLimits) -> Router<AppState> {
    let body_limit = usize::try_from(limits.max_file.saturating_mul(2).saturating_add(HEADROOM))
        .unwrap_or(usize::MAX);
    Router::new()
        .route(
            "/e/{id}/files",
            axum::routing::post(upload_form).layer(DefaultBodyLimit::max(body_limit)),
        )
        .route("/e/{id}/files/{name}", get(download_page))
        .route(
            "/e/{id}/files/{name}/fetch",
            axum::routing::post(fetch_on_request),
        )
        .route("/api/entries/{id}/files", get(api_list).post(api_upload))
        .route("/api/entries/{id}/files/{name}", get(download_api))
}

/// `files.js`: drag and drop onto the drop zone, and the size check before
/// sending. The form works without it.
pub(crate) async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("files.js"),
    )
        .into_response()
}

/// What the upload form shows after a failed upload: what was typed, and
/// one sentence beside the field it concerns (or above the form, for a
/// refusal that concerns no field).
#[derive(Debug, Clone, Default)]
pub(crate) struct UploadForm {
    pub name: String,
    pub file_error: Option<String>,
    pub name_error: Option<String>,
    pub refusal: Option<String>,
}

impl UploadForm {
    fn has_message(&self) -> bool {
        self.file_error.is_some() || self.name_error.is_some() || self.refusal.is_some()
    }
}

/// A media type as people call it ("PDF", "Word document"); the type
/// itself when it has no common name.
fn type_label(media_type: &str) -> &str {
    match media_type {
        "application/pdf" => "PDF",
        "application/msword"
        | "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => {
            "Word document"
        }
        "application/vnd.ms-powerpoint"
        | "application/vnd.openxmlformats-officedocument.presentationml.presentation" => {
            "PowerPoint slides"
        }
        "application/vnd.ms-excel"
        | "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => {
            "Excel spreadsheet"
        }
        "application/vnd.oasis.opendocument.text" => "OpenDocument text",
        "application/vnd.oasis.opendocument.spreadsheet" => "OpenDocument spreadsheet",
        "application/vnd.oasis.opendocument.presentation" => "OpenDocument slides",
        "text/csv" => "CSV",
        "text/plain" => "Text",
        "text/html" => "Web page",
        "image/svg+xml" => "SVG image",
        "image/png" => "PNG image",
        "image/jpeg" => "JPEG image",
        "image/gif" => "GIF image",
        "image/webp" => "WebP image",
        "application/zip" => "Zip archive",
        "application/json" => "JSON",
        "video/mp4" => "MP4 video",
        "audio/mpeg" => "MP3 audio",
        "application/octet-stream" => "File",
        other => other,
    }
}

/// `name` as one path segment: everything but unreserved characters
/// percent-encoded.
fn path_segment(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Where the page downloads entry `id`'s file `name`.
pub(crate) fn download_href(id: &str, name: &str) -> String {
    format!("/e/{id}/files/{}", path_segment(name))
}

/// The Attachments section of a learning entry's or project's page.
/// `may_change`: the upload form is shown (the server checks again).
/// What the Attachments section shows: the entry's files, the daemon's
/// downloads, the limit.
#[derive(Debug)]
pub(crate) struct FilesView {
    files: Vec<HeldAttachment>,
    /// The daemon's `files.fetching` report (by hash).
    fetching: serde_json::Value,
    /// The daemon runs here, so a file can be fetched on request.
    can_fetch: bool,
    limits: FileLimits,
}

impl FilesView {
    pub(crate) fn load(
        node: &crate::Node,
        id: DocumentId,
        limits: FileLimits,
        can_fetch: bool,
    ) -> Result<Self, NodeError> {
        let files = node.attachments(id)?;
        let fetching = if files.iter().all(|f| f.held) {
            serde_json::Value::Null
        } else {
            node.store()
                .meta(META_FETCHING)?
                .and_then(|s| serde_json::from_str(&s).ok())
                .unwrap_or_default()
        };
        Ok(Self {
            files,
            fetching,
            can_fetch,
            limits,
        })
    }
}

/// Where a file not held here stands, from the daemon's report; whether it
/// may be asked for.
fn not_held(id: &str, a: &convene_model::Attachment, view: &FilesView) -> Markup {
    let report = &view.fetching[&a.hash];
    let state = report["state"].as_str().unwrap_or("");
    let done = report["done"].as_u64().unwrap_or(0);
    html! {
        @match state {
            "fetching" => {
                "Fetching: " (human_size(done)) " of " (human_size(a.size))
            }
            "checking" => { "Fetched; checking it" }
            "no source" => {
                "Not yet on this node: no connected member has it yet"
                @if done > 0 { " (" (human_size(done)) " of " (human_size(a.size)) " so far)" }
            }
            "" => {
                "Not yet on this node"
                @if view.can_fetch {
                    form class="fetch" method="post" action=(format!("{}/fetch", download_href(id, &a.name))) {
                        button type="submit" class="secondary" { "Fetch" span class="visually-hidden" { " " (a.name) } }
                    }
                }
            }
            other => {
                "Not yet on this node ("
                (other.strip_prefix("refused: ").or(other.strip_prefix("failed: ")).unwrap_or(other))
                ")"
            }
        }
    }
}

pub(crate) fn section(
    id: &str,
    kind: Kind,
    view: &FilesView,
    may_change: bool,
    upload: &UploadForm,
) -> Markup {
    let files = &view.files;
    let limits = view.limits;
    let takes_files = matches!(kind, Kind::Learning | Kind::Project);
    if !takes_files && !upload.has_message() {
        return html! {};
    }
    html! {
        section id="files" aria-labelledby="files-h" {
            h2 id="files-h" { "Attachments" }
            @if let Some(r) = &upload.refusal {
                p class="error" role="alert" { (r) }
            }
            @if takes_files {
                @if files.is_empty() {
                    p { "No files yet." }
                } @else {
                    div class="table-scroll" {
                        table class="files" {
                            thead { tr {
                                th scope="col" { "Name" }
                                th scope="col" { "Size" }
                                th scope="col" class="wide-only" { "Type" }
                                th scope="col" class="wide-only" { "Hash" }
                                th scope="col" { "On this node" }
                            } }
                            tbody {
                                @for f in files {
                                    @let a = &f.attachment;
                                    tr {
                                        td {
                                            @if f.held {
                                                a href=(download_href(id, &a.name)) download=(a.name) { (a.name) }
                                            } @else {
                                                (a.name)
                                            }
                                        }
                                        td class="size" { (human_size(a.size)) }
                                        td class="wide-only" title=(a.media_type) { (type_label(&a.media_type)) }
                                        td class="wide-only hash" { code title=(a.hash) { (a.hash.get(..12).unwrap_or(&a.hash)) "…" } }
                                        td {
                                            @if f.held { "Yes" } @else { (not_held(id, a, view)) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                @if may_change {
                    (upload_markup(id, limits, upload))
                }
            }
        }
    }
}

fn upload_markup(id: &str, limits: FileLimits, upload: &UploadForm) -> Markup {
    let max = human_size(limits.max_file);
    let file_described = if upload.file_error.is_some() {
        "f-file-hint f-file-error"
    } else {
        "f-file-hint"
    };
    html! {
        form class="upload" id="upload" method="post" action=(format!("/e/{id}/files"))
            enctype="multipart/form-data" data-max=(limits.max_file) data-max-text=(max) {
            fieldset {
                legend { "Add a file" }
                div class="field drop-zone" {
                    label for="f-file" { "File" }
                    p class="hint" id="f-file-hint" {
                        "A report, slides, a poster or a spreadsheet, up to " (max) "."
                        span class="drop-hint" hidden { " Drop a file here, or choose one." }
                    }
                    p class="field-error" id="f-file-error" hidden[upload.file_error.is_none()] {
                        @if let Some(e) = &upload.file_error {
                            span class="visually-hidden" { "Error: " } (e)
                        }
                    }
                    input id="f-file" type="file" name="file" required
                        aria-describedby=(file_described)
                        aria-invalid=[upload.file_error.as_ref().map(|_| "true")];
                }
                div class="field" {
                    label for="f-file-name" { "Name (optional)" }
                    p class="hint" id="f-file-name-hint" { "What it is shown and downloaded as; the file's own name if left empty." }
                    @if let Some(e) = &upload.name_error {
                        p class="field-error" id="f-file-name-error" {
                            span class="visually-hidden" { "Error: " } (e)
                        }
                    }
                    input id="f-file-name" type="text" name="name" value=(upload.name)
                        aria-describedby=(if upload.name_error.is_some() { "f-file-name-hint f-file-name-error" } else { "f-file-name-hint" })
                        aria-invalid=[upload.name_error.as_ref().map(|_| "true")];
                }
                div class="actions" {
                    button type="submit" { "Upload" }
                    span class="upload-status" role="status" {}
                }
            }
        }
        script src="/files.js" defer {}
    }
}

/// Content stored for an upload. Every upload holding content counts in
/// [`AppState`]'s uploads in flight; when the last upload holding a hash
/// lets go (recorded in an entry or not), the bytes are removed if one of
/// them brought them here (`new`) and no entry uses them. So a refused or
/// abandoned upload leaves nothing behind, and two uploads of the same
/// content at once never remove the bytes the other one recorded.
struct Pending {
    stored: Stored,
    state: Option<AppState>,
}

impl Pending {
    fn new(state: AppState, stored: Stored) -> Self {
        state.hold_upload(&stored.hash, stored.new);
        Self {
            stored,
            state: Some(state),
        }
    }

    /// Lets go of the content and waits for any removal.
    async fn release(mut self) {
        let Some(state) = self.state.take() else {
            return;
        };
        if state.release_upload(&self.stored.hash) {
            let hash = self.stored.hash.clone();
            let _ = state
                .run(move |node| {
                    remove_unused(node, hash);
                    Ok(())
                })
                .await;
        }
    }
}

fn remove_unused(node: &crate::Node, hash: String) {
    if let Err(e) = node.drop_unused_files(&[hash]) {
        tracing::warn!(error = %e, "cannot remove the bytes of an abandoned upload");
    }
}

impl Drop for Pending {
    /// An upload abandoned mid-way (the request dropped): the same as
    /// [`Pending::release`], on the blocking pool.
    fn drop(&mut self) {
        let Some(state) = self.state.take() else {
            return;
        };
        if !state.release_upload(&self.stored.hash) {
            return;
        }
        let hash = self.stored.hash.clone();
        let clean = move || {
            let node = state.0.node.lock().unwrap_or_else(|p| p.into_inner());
            remove_unused(&node, hash);
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn_blocking(clean);
            }
            Err(_) => clean(),
        }
    }
}

impl AppState {
    /// Counts an upload holding the content `hash` (`new`: it brought the
    /// bytes here).
    fn hold_upload(&self, hash: &str, new: bool) {
        let mut uploads = self.0.uploads.lock().unwrap_or_else(|p| p.into_inner());
        let held = uploads.entry(hash.to_string()).or_insert((0, false));
        held.0 += 1;
        held.1 |= new;
    }

    /// One upload of `hash` lets go; whether it was the last and the bytes
    /// came with the uploads (so they go unless an entry uses them).
    fn release_upload(&self, hash: &str) -> bool {
        let mut uploads = self.0.uploads.lock().unwrap_or_else(|p| p.into_inner());
        let Some(held) = uploads.get_mut(hash) else {
            return false;
        };
        held.0 -= 1;
        if held.0 > 0 {
            return false;
        }
        let brought = held.1;
        uploads.remove(hash);
        brought
    }
}

/// One message from the request to the file store.
enum Piece {
    Data(Bytes),
    End,
}

/// The request's bytes as a blocking reader for [`crate::blobs::BlobStore::put`].
/// The channel closing without [`Piece::End`] (the request failed or was
/// abandoned) is an error, never the end of the file.
struct PieceReader {
    rx: mpsc::Receiver<Piece>,
    current: Bytes,
    ended: bool,
}

impl Read for PieceReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if !self.current.is_empty() {
                let n = buf.len().min(self.current.len());
                buf[..n].copy_from_slice(&self.current.split_to(n));
                return Ok(n);
            }
            if self.ended {
                return Ok(0);
            }
            match self.rx.blocking_recv() {
                Some(Piece::Data(b)) => self.current = b,
                Some(Piece::End) => self.ended = true,
                None => {
                    return Err(std::io::Error::other(
                        "the upload stopped before the end of the file",
                    ));
                }
            }
        }
    }
}

/// Content on its way into the file store.
struct Upload {
    tx: mpsc::Sender<Piece>,
    task: tokio::task::JoinHandle<Result<Pending, BlobError>>,
}

impl Upload {
    fn start(state: &AppState, limit: u64) -> Self {
        let (tx, rx) = mpsc::channel(4);
        let blobs = crate::blobs::BlobStore::new(&state.0.home);
        let owner = state.clone();
        let task = tokio::task::spawn_blocking(move || {
            let mut reader = PieceReader {
                rx,
                current: Bytes::new(),
                ended: false,
            };
            let stored = blobs.put(&mut reader, limit, None)?;
            Ok(Pending::new(owner, stored))
        });
        Self { tx, task }
    }

    /// Passes on a piece; false once the store has stopped taking them
    /// (too large, or a write failed): [`Upload::finish`] says why.
    async fn send(&self, bytes: Bytes) -> bool {
        self.tx.send(Piece::Data(bytes)).await.is_ok()
    }

    /// Marks the end of the content and waits for it to be stored.
    async fn finish(self) -> Result<Pending, BlobError> {
        let Self { tx, task } = self;
        let _ = tx.send(Piece::End).await;
        drop(tx);
        task.await.map_err(|e| BlobError::Io {
            action: "store",
            path: "the upload".into(),
            source: std::io::Error::other(e.to_string()),
        })?
    }

    /// Gives up: the store sees an unfinished upload and keeps nothing.
    async fn abort(self) {
        let Self { tx, task } = self;
        drop(tx);
        if let Ok(Ok(p)) = task.await {
            p.release().await;
        }
    }
}

/// Why an upload failed, and where the form shows it.
enum Refused {
    /// Beside the file input.
    File(StatusCode, String),
    /// Beside the name input.
    Name(StatusCode, String),
    /// Above the form (or on its own page): not allowed, not an entry that
    /// takes files, gone.
    Entry(StatusCode, String),
    Internal(String),
}

impl Refused {
    fn status(&self) -> StatusCode {
        match self {
            Self::File(s, _) | Self::Name(s, _) | Self::Entry(s, _) => *s,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn message(&self) -> &str {
        match self {
            Self::File(_, m) | Self::Name(_, m) | Self::Entry(_, m) | Self::Internal(m) => m,
        }
    }
}

fn too_large(limit: u64) -> Refused {
    Refused::File(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "The file is larger than {}, the most this node accepts for one file.",
            human_size(limit)
        ),
    )
}

fn from_blob(e: BlobError, limit: u64) -> Refused {
    match e {
        BlobError::TooLarge { .. } => too_large(limit),
        // The request's bytes stopped coming (put reads them as its input).
        BlobError::Io { action: "read", .. } => Refused::File(
            StatusCode::BAD_REQUEST,
            "The upload stopped before the whole file arrived; please try again.".into(),
        ),
        other => Refused::Internal(format!("The file could not be stored: {other}.")),
    }
}

/// A node's refusal, phrased for the upload form.
fn from_node(e: NodeError) -> Refused {
    match e {
        NodeError::BadFileName(raw) => Refused::Name(
            StatusCode::BAD_REQUEST,
            if raw.trim().is_empty() {
                "The file has no name; give it one in the Name field.".into()
            } else {
                format!("{raw:?} is not a usable file name; give the file another name.")
            },
        ),
        NodeError::DuplicateFile { name, .. } => Refused::Name(
            StatusCode::CONFLICT,
            format!("This entry already has a file named {name:?}; give this one another name."),
        ),
        NodeError::NotOwner { .. } => Refused::Entry(
            StatusCode::FORBIDDEN,
            "Only the entry's own organisation, or an editor it named, can add files to it.".into(),
        ),
        NodeError::NoFiles(kind) => Refused::Entry(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("A {kind} cannot have files: only learning entries and projects can."),
        ),
        NodeError::Retracted(_) => Refused::Entry(
            StatusCode::CONFLICT,
            "This entry is retracted; files can no longer be added to it.".into(),
        ),
        NodeError::UnknownId(_) | NodeError::Erased(_) => {
            Refused::Entry(StatusCode::NOT_FOUND, "There is no such entry here.".into())
        }
        NodeError::Files(b) => from_blob(b, 0),
        other => {
            let status = Failure::from(other).status;
            Refused::Internal(format!("The file could not be added ({status})."))
        }
    }
}

/// Checks that entry `id` takes files from this node before any byte is
/// read; its resolved id.
async fn check_entry(state: &AppState, id: String) -> Result<DocumentId, Refused> {
    let checked = state
        .run(move |node| {
            let resolved = node.resolve(&id)?;
            let entry = node.get(resolved)?;
            Ok(crate::attach::check_attachable(node.org(), &entry).map(|()| resolved))
        })
        .await;
    match checked {
        Ok(Ok(id)) => Ok(id),
        Ok(Err(e)) => Err(from_node(e)),
        Err(f) if f.status == StatusCode::NOT_FOUND || f.status.is_client_error() => Err(
            Refused::Entry(StatusCode::NOT_FOUND, "There is no such entry here.".into()),
        ),
        Err(f) => Err(Refused::Internal(f.message)),
    }
}

/// Records stored content as file `name` of entry `id` (the content is
/// removed again if that is refused).
async fn record(
    state: &AppState,
    id: DocumentId,
    pending: Pending,
    name: String,
) -> Result<convene_model::Attachment, Refused> {
    if pending.stored.size == 0 {
        pending.release().await;
        return Err(Refused::File(
            StatusCode::BAD_REQUEST,
            "The file is empty (0 bytes); choose the file again.".into(),
        ));
    }
    let stored = pending.stored.clone();
    let result = state
        .run(move |node| Ok(node.record_attachment(id, &stored, &name)))
        .await;
    // Recorded or not: if not, and no other upload holds the same content,
    // its bytes go now.
    pending.release().await;
    match result {
        Ok(Ok(a)) => Ok(a),
        Ok(Err(e)) => Err(from_node(e)),
        Err(f) => Err(Refused::Internal(f.message)),
    }
}

/// Reads the rest of a refused upload (within the body limit) and throws it
/// away, so the browser, still sending, gets the answer.
async fn drain(multipart: &mut Multipart) {
    loop {
        match multipart.next_field().await {
            Ok(Some(mut f)) => while let Ok(Some(_)) = f.chunk().await {},
            _ => return,
        }
    }
}

fn declared_length(req: &Request) -> Option<u64> {
    req.headers()
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// `POST /e/{id}/files`: the upload form.
async fn upload_form(
    State(state): State<AppState>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    let limits = state.0.limits;
    let mut typed = UploadForm::default();
    let result = receive_form(&state, id.clone(), req, limits, &mut typed).await;
    match result {
        Ok(resolved) => Redirect::to(&format!("/e/{resolved}#files")).into_response(),
        Err(refused) => {
            let status = refused.status();
            match refused {
                Refused::File(_, m) => typed.file_error = Some(m),
                Refused::Name(_, m) => typed.name_error = Some(m),
                Refused::Entry(StatusCode::NOT_FOUND, m) => {
                    return super::pages::error_page(StatusCode::NOT_FOUND, "Not found", &m);
                }
                Refused::Entry(_, m) => typed.refusal = Some(m),
                Refused::Internal(m) => {
                    tracing::warn!(error = %m, "an upload failed");
                    typed.refusal = Some(m);
                }
            }
            match super::pages::entry_page(&state, id, status, typed).await {
                Ok(r) => r,
                Err(f) => f.into_response(),
            }
        }
    }
}

async fn receive_form(
    state: &AppState,
    id: String,
    req: Request,
    limits: FileLimits,
    typed: &mut UploadForm,
) -> Result<DocumentId, Refused> {
    let id = check_entry(state, id).await?;
    let bound = limits.max_file.saturating_mul(2).saturating_add(HEADROOM);
    if declared_length(&req).is_some_and(|n| n > bound) {
        return Err(too_large(limits.max_file));
    }
    let mut multipart = Multipart::from_request(req, state).await.map_err(|e| {
        Refused::File(
            StatusCode::BAD_REQUEST,
            format!(
                "The form did not arrive as a file upload ({}).",
                e.body_text()
            ),
        )
    })?;
    let mut stored: Option<(Pending, String)> = None;
    let mut failure: Option<Refused> = None;
    loop {
        let mut field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                failure = Some(if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    too_large(limits.max_file)
                } else {
                    Refused::File(
                        StatusCode::BAD_REQUEST,
                        "The upload stopped before the whole file arrived; please try again."
                            .into(),
                    )
                });
                break;
            }
        };
        match field.name() {
            Some("name") => {
                let mut raw = Vec::new();
                while let Ok(Some(chunk)) = field.chunk().await {
                    let room = MAX_NAME_FIELD.saturating_sub(raw.len());
                    raw.extend_from_slice(&chunk[..chunk.len().min(room)]);
                }
                typed.name = String::from_utf8_lossy(&raw).trim().to_string();
            }
            Some("file") if stored.is_some() => {
                failure = Some(Refused::File(
                    StatusCode::BAD_REQUEST,
                    "Upload one file at a time.".into(),
                ));
                break;
            }
            Some("file") => {
                let own_name = field.file_name().unwrap_or_default().to_string();
                let upload = Upload::start(state, limits.max_file);
                let mut complete = true;
                let mut took_all = true;
                loop {
                    match field.chunk().await {
                        Ok(Some(chunk)) => {
                            if !upload.send(chunk).await {
                                took_all = false;
                                break;
                            }
                        }
                        Ok(None) => break,
                        Err(e) => {
                            complete = false;
                            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                                failure = Some(too_large(limits.max_file));
                            }
                            break;
                        }
                    }
                }
                if !complete {
                    upload.abort().await;
                    failure.get_or_insert(Refused::File(
                        StatusCode::BAD_REQUEST,
                        "The upload stopped before the whole file arrived; please try again."
                            .into(),
                    ));
                    break;
                }
                if !took_all {
                    // Too large (or the disk refused): say so once the
                    // browser has finished sending.
                    while let Ok(Some(_)) = field.chunk().await {}
                }
                match upload.finish().await {
                    Ok(p) => {
                        if own_name.is_empty() && p.stored.size == 0 {
                            p.release().await;
                            failure = Some(Refused::File(
                                StatusCode::BAD_REQUEST,
                                "Choose a file to upload.".into(),
                            ));
                            break;
                        }
                        stored = Some((p, own_name));
                    }
                    Err(e) => {
                        failure = Some(from_blob(e, limits.max_file));
                        break;
                    }
                }
            }
            _ => while let Ok(Some(_)) = field.chunk().await {},
        }
    }
    if let Some(f) = failure {
        if let Some((p, _)) = stored {
            p.release().await;
        }
        drain(&mut multipart).await;
        return Err(f);
    }
    let Some((pending, own_name)) = stored else {
        return Err(Refused::File(
            StatusCode::BAD_REQUEST,
            "Choose a file to upload.".into(),
        ));
    };
    let name = if typed.name.is_empty() {
        own_name
    } else {
        typed.name.clone()
    };
    record(state, id, pending, name).await?;
    Ok(id)
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct UploadQuery {
    name: String,
}

fn api_error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "error": message }))).into_response()
}

/// `POST /api/entries/{id}/files?name=NAME`: the body is the file.
async fn api_upload(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<UploadQuery>,
    req: Request,
) -> Response {
    let octets = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/octet-stream"));
    if !octets {
        return api_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the file as the body, with Content-Type: application/octet-stream",
        );
    }
    let limits = state.0.limits;
    match receive_raw(&state, id, q.name, req, limits).await {
        Ok((id, a)) => (
            StatusCode::CREATED,
            axum::Json(json!({
                "id": id.to_string(),
                "name": a.name,
                "size": a.size,
                "media_type": a.media_type,
                "hash": a.hash,
            })),
        )
            .into_response(),
        Err(r) => api_error(r.status(), r.message()),
    }
}

async fn receive_raw(
    state: &AppState,
    id: String,
    name: String,
    req: Request,
    limits: FileLimits,
) -> Result<(DocumentId, convene_model::Attachment), Refused> {
    let id = check_entry(state, id).await?;
    if name.trim().is_empty() {
        return Err(Refused::Name(
            StatusCode::BAD_REQUEST,
            "Name the file: POST /api/entries/ID/files?name=NAME.".into(),
        ));
    }
    let checked = name.clone();
    let named = state
        .run(move |node| Ok(node.check_attach(id, &checked)))
        .await
        .map_err(|f| Refused::Internal(f.message))?;
    named.map_err(from_node)?;
    if declared_length(&req).is_some_and(|n| n > limits.max_file) {
        return Err(too_large(limits.max_file));
    }
    let mut body = req.into_body().into_data_stream();
    let upload = Upload::start(state, limits.max_file);
    use futures::StreamExt;
    loop {
        match body.next().await {
            Some(Ok(chunk)) => {
                if !upload.send(chunk).await {
                    break;
                }
            }
            Some(Err(_)) => {
                upload.abort().await;
                return Err(Refused::File(
                    StatusCode::BAD_REQUEST,
                    "The upload stopped before the whole file arrived.".into(),
                ));
            }
            None => break,
        }
    }
    let pending = upload
        .finish()
        .await
        .map_err(|e| from_blob(e, limits.max_file))?;
    let a = record(state, id, pending, name).await?;
    Ok((id, a))
}

/// `GET /api/entries/{id}/files`: `convene files --json`'s records, each
/// with where to download it.
async fn api_list(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let listed = state
        .run(move |node| {
            let id = node.resolve(&id)?;
            Ok((id, node.attachments(id)?))
        })
        .await;
    match listed {
        Ok((id, files)) => axum::Json(json!(
            files
                .iter()
                .map(|f| {
                    let mut v = f.to_json();
                    v["href"] = json!(format!(
                        "/api/entries/{id}/files/{}",
                        path_segment(&f.attachment.name)
                    ));
                    v
                })
                .collect::<Vec<_>>()
        ))
        .into_response(),
        Err(f) => api_error(f.status, &f.message),
    }
}

/// The type a download is served as: the file's own only if it is on a
/// short list of types browsers do not run; anything else, and anything a
/// document claims that is not on the list, is opaque bytes.
pub(crate) fn served_type(media_type: &str) -> &'static str {
    let t = media_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    const INERT: &[&str] = &[
        "application/pdf",
        "application/msword",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.ms-powerpoint",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "application/vnd.ms-excel",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.oasis.opendocument.text",
        "application/vnd.oasis.opendocument.spreadsheet",
        "application/vnd.oasis.opendocument.presentation",
        "application/zip",
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "audio/mpeg",
        "video/mp4",
    ];
    match t.as_str() {
        "text/plain" => "text/plain; charset=utf-8",
        "text/csv" => "text/csv; charset=utf-8",
        other => INERT
            .iter()
            .find(|i| **i == other)
            .copied()
            .unwrap_or("application/octet-stream"),
    }
}

/// `Content-Disposition` for a download named `name` (sanitised again):
/// an ASCII `filename` for old clients, the exact name in `filename*`.
pub(crate) fn content_disposition(name: &str) -> String {
    let mut clean = sanitise_name(name);
    if clean.is_empty() {
        clean = "file".into();
    }
    let fallback: String = clean
        .chars()
        .map(|c| {
            if c == ' ' || (c.is_ascii_graphic() && !matches!(c, '"' | '\\' | '%')) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::new();
    for b in clean.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

/// `POST /e/{id}/files/{name}/fetch`: asks the daemon for a file whose
/// bytes are not here (one too large to be fetched by itself), the way
/// `convene get` does: its hash goes on the store's `files.wanted` list,
/// and the page shows the daemon's progress.
async fn fetch_on_request(
    State(state): State<AppState>,
    Path((id, name)): Path<(String, String)>,
) -> Response {
    let asked = state
        .run(move |node| {
            let Ok((id, a)) = node
                .resolve(&id)
                .and_then(|id| Ok((id, node.attachment(id, &name)?)))
            else {
                return Ok(None);
            };
            let blobs = node.blobs();
            if !blobs.has(&a.hash) {
                crate::daemon::files::set_wanted(node, &a.hash, true)?;
            }
            Ok(Some(id))
        })
        .await;
    match asked {
        Ok(Some(id)) => Redirect::to(&format!("/e/{id}#files")).into_response(),
        Ok(None) => super::pages::error_page(StatusCode::NOT_FOUND, "Not found", NO_SUCH_FILE),
        Err(f) => f.into_response(),
    }
}

async fn download_page(
    State(state): State<AppState>,
    Path((id, name)): Path<(String, String)>,
) -> Response {
    download(state, id, name, false).await
}

async fn download_api(
    State(state): State<AppState>,
    Path((id, name)): Path<(String, String)>,
) -> Response {
    download(state, id, name, true).await
}

const NO_SUCH_FILE: &str = "There is no file by that name on an entry here.";

async fn download(state: AppState, id: String, name: String, api: bool) -> Response {
    let found = state
        .run(move |node| {
            let attachment = node
                .resolve(&id)
                .and_then(|id| node.attachment(id, &name))
                .map_err(|_| Failure {
                    status: StatusCode::NOT_FOUND,
                    message: NO_SUCH_FILE.into(),
                })?;
            let file = match node.blobs().open_checked(&attachment.hash) {
                Ok(f) => f,
                Err(BlobError::Missing(_)) => {
                    return Err(Failure {
                        status: StatusCode::NOT_FOUND,
                        message: format!(
                            "The bytes of {:?} are not yet on this node.",
                            attachment.name
                        ),
                    });
                }
                Err(e) => return Err(NodeError::from(e).into()),
            };
            let len = file.size();
            Ok((attachment, file, len))
        })
        .await;
    let (attachment, file, len) = match found {
        Ok(f) => f,
        Err(f) if api => return api_error(f.status, &f.message),
        Err(f) if f.status == StatusCode::NOT_FOUND => {
            return super::pages::error_page(StatusCode::NOT_FOUND, "Not found", &f.message);
        }
        Err(f) => return f.into_response(),
    };
    let mut response = Response::new(stream_checked(file));
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(served_type(&attachment.media_type)),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if let Ok(v) = HeaderValue::from_str(&content_disposition(&attachment.name)) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(DOWNLOAD_CSP),
    );
    h.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("same-origin"),
    );
    response
}

/// The file as a response body, read on the blocking pool in 64 KiB pieces
/// (a few in flight at most) and checked on the way ([`Checked`]): the
/// last piece comes only once the whole file has matched its hash;
/// otherwise the body ends in an error, the connection is cut, and the
/// client, which was promised `Content-Length` bytes, knows the download
/// failed (the damaged copy is moved aside, to be fetched again from a
/// member).
///
/// [`Checked`]: crate::blobs::Checked
fn stream_checked(mut file: crate::blobs::Checked) -> Body {
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::task::spawn_blocking(move || {
        let mut buf = vec![0u8; PIECE];
        loop {
            let piece = match file.next_piece(&mut buf) {
                Ok([]) => return,
                Ok(piece) => Ok(Bytes::copy_from_slice(piece)),
                Err(e) => Err(std::io::Error::other(e.to_string())),
            };
            let failed = piece.is_err();
            if tx.blocking_send(piece).is_err() || failed {
                return;
            }
        }
    });
    Body::from_stream(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_inert_types_are_served_as_themselves() {
        assert_eq!(served_type("application/pdf"), "application/pdf");
        assert_eq!(served_type("IMAGE/PNG"), "image/png");
        assert_eq!(served_type("text/plain"), "text/plain; charset=utf-8");
        for risky in [
            "text/html",
            "image/svg+xml",
            "application/xhtml+xml",
            "text/xml",
            "application/xml",
            "text/javascript",
            "application/javascript",
            "application/json",
            "text/html; charset=utf-8",
            "multipart/x-mixed-replace",
            "",
            "nonsense",
        ] {
            assert_eq!(served_type(risky), "application/octet-stream", "{risky}");
        }
    }

    #[test]
    fn download_names_are_safe_header_values() {
        assert_eq!(
            content_disposition("report.pdf"),
            "attachment; filename=\"report.pdf\"; filename*=UTF-8''report.pdf"
        );
        assert_eq!(
            content_disposition("../../etc/passwd"),
            "attachment; filename=\"passwd\"; filename*=UTF-8''passwd"
        );
        let d = content_disposition("Évaluation \"final\"; a\r\nSet-Cookie: x=1.pdf");
        assert!(HeaderValue::from_str(&d).is_ok(), "{d}");
        assert!(!d.contains('\r') && !d.contains('\n'), "{d}");
        assert!(
            d.starts_with("attachment; filename=\"_valuation _final_; a__Set-Cookie_ x=1.pdf\""),
            "{d}"
        );
        assert!(
            d.ends_with(
                "filename*=UTF-8''%C3%89valuation%20_final_%3B%20a__Set-Cookie_%20x%3D1.pdf"
            ),
            "{d}"
        );
        assert_eq!(
            content_disposition(".."),
            "attachment; filename=\"file\"; filename*=UTF-8''file"
        );
    }

    #[test]
    fn sizes_read_like_the_cli() {
        assert_eq!(human_size(999), "999 B");
        assert_eq!(human_size(300_000), "300.0 kB");
        assert_eq!(human_size(200_000_000), "200.0 MB");
    }

    #[test]
    fn names_in_addresses_are_one_segment() {
        assert_eq!(
            download_href("abc", "deck copy/1.pptx"),
            "/e/abc/files/deck%20copy%2F1.pptx"
        );
        assert_eq!(download_href("abc", "é.pdf"), "/e/abc/files/%C3%A9.pdf");
    }
}
