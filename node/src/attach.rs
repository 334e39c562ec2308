//! [`Node`]'s attachment API: attach a file to an entry, list an entry's
//! files, write one out, and drop the bytes an erased entry leaves unused.
//!
//! The document records each file ([`Attachment`]); the bytes go to the
//! home's content-addressed [`BlobStore`]. Adding a file is an ordinary
//! edit of the document, so exactly the entry's owner and the co-editors
//! it named may do it, here and on every node that receives the change
//! (the permission check on received changes covers every field).

use std::collections::HashSet;
use std::path::Path;

use convene_model::attachment::{DEFAULT_MAX_FILE, sanitise_name};
use convene_model::{Attachment, Body, DocumentId, Entry, Kind, Status};

use crate::blobs::{BlobError, BlobStore, Stored};
use crate::store::Filter;
use crate::{Node, NodeError};

/// What this node accepts as file content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileLimits {
    /// The largest file, in bytes, this node attaches or stores.
    pub max_file: u64,
    /// Files up to this many bytes are fetched without being asked for.
    pub auto_fetch: u64,
    /// At most this many bytes of files used by one organisation's entries
    /// are fetched from peers (`None`: no quota).
    pub quota_per_org: Option<u64>,
}

/// Files up to 20 MB are fetched without being asked for, by default.
pub const DEFAULT_AUTO_FETCH: u64 = 20_000_000;

impl Default for FileLimits {
    fn default() -> Self {
        Self {
            max_file: DEFAULT_MAX_FILE,
            auto_fetch: DEFAULT_AUTO_FETCH,
            quota_per_org: None,
        }
    }
}

/// One of an entry's files, and whether this node holds its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldAttachment {
    pub attachment: Attachment,
    pub held: bool,
}

impl HeldAttachment {
    /// `files --json`'s shape.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "name": self.attachment.name,
            "size": self.attachment.size,
            "media_type": self.attachment.media_type,
            "hash": self.attachment.hash,
            "held": self.held,
        })
    }
}

/// A media type from a file name's extension; `application/octet-stream`
/// when unknown. Only informative: downloads are always served as bytes.
pub fn guess_media_type(name: &str) -> &'static str {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "pdf" => "application/pdf",
        "doc" => "application/msword",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "ppt" => "application/vnd.ms-powerpoint",
        "pptx" => "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "xls" => "application/vnd.ms-excel",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "odt" => "application/vnd.oasis.opendocument.text",
        "ods" => "application/vnd.oasis.opendocument.spreadsheet",
        "odp" => "application/vnd.oasis.opendocument.presentation",
        "csv" => "text/csv",
        "txt" | "md" => "text/plain",
        "html" | "htm" => "text/html",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "zip" => "application/zip",
        "json" => "application/json",
        "mp4" => "video/mp4",
        "mp3" => "audio/mpeg",
        _ => "application/octet-stream",
    }
}

impl Node {
    /// The home's file store.
    pub fn blobs(&self) -> BlobStore {
        BlobStore::new(self.home())
    }

    /// Attaches the file at `path` to entry `id` as `name` (default: the
    /// file's own name). Only a learning entry or a project, only by its
    /// owner or a co-editor, never a retracted one; at most
    /// `limits.max_file` bytes. The bytes are stored before the document
    /// changes; if the change is refused, bytes stored only for it are
    /// removed again, so a refusal leaves nothing behind.
    pub fn attach(
        &mut self,
        id: DocumentId,
        path: &Path,
        name: Option<&str>,
        limits: &FileLimits,
    ) -> Result<Attachment, NodeError> {
        let raw = match name {
            Some(n) => n.to_string(),
            None => path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        };
        // Refuse what the change would refuse before reading any byte.
        let name = self.check_attach(id, &raw)?;
        let mut file = std::fs::File::open(path).map_err(|source| BlobError::Io {
            action: "read",
            path: path.to_path_buf(),
            source,
        })?;
        if file.metadata().is_ok_and(|m| m.is_dir()) {
            return Err(BlobError::Io {
                action: "read",
                path: path.to_path_buf(),
                source: std::io::Error::other("it is a folder, not a file"),
            }
            .into());
        }
        let stored = self.blobs().put(&mut file, limits.max_file, None)?;
        self.attach_stored(id, &stored, &name)
    }

    /// Whether this node may add a file called `raw` (sanitised first) to
    /// entry `id`: a learning entry or project, not retracted, owned or
    /// co-edited by this node's organisation, without a file of that name.
    /// Returns the sanitised name. For callers that check before reading
    /// the bytes (the CLI, a web upload); [`Node::attach_stored`] checks
    /// again when it writes.
    pub fn check_attach(&self, id: DocumentId, raw: &str) -> Result<String, NodeError> {
        let current = self.get(id)?;
        check_attachable(self.org(), &current).map_err(|e| self.with_owner_name(e))?;
        let name = sanitise_name(raw);
        if name.is_empty() {
            return Err(NodeError::BadFileName(raw.to_string()));
        }
        if current.body.attachments().iter().any(|a| a.name == name) {
            return Err(NodeError::DuplicateFile { id, name });
        }
        Ok(name)
    }

    /// Records content already in the file store (`stored`, from
    /// [`BlobStore::put`]) as the file `name` (sanitised here) of entry
    /// `id`, in one signed change. If the change is refused, bytes that
    /// were stored only for it (`stored.new`, and no entry uses them) are
    /// removed again, so a refusal leaves nothing behind.
    pub fn attach_stored(
        &mut self,
        id: DocumentId,
        stored: &Stored,
        name: &str,
    ) -> Result<Attachment, NodeError> {
        let result = self
            .record_attachment(id, stored, name)
            .map_err(|e| self.with_owner_name(e));
        if result.is_err() && stored.new {
            self.drop_unused_files(std::slice::from_ref(&stored.hash))?;
        }
        result
    }

    /// Records `stored` as file `raw` (sanitised) of entry `id`, removing
    /// nothing if that is refused (the caller decides what happens to the
    /// bytes; see [`Node::attach_stored`]).
    pub(crate) fn record_attachment(
        &mut self,
        id: DocumentId,
        stored: &Stored,
        raw: &str,
    ) -> Result<Attachment, NodeError> {
        let name = sanitise_name(raw);
        if name.is_empty() {
            return Err(NodeError::BadFileName(raw.to_string()));
        }
        let attachment = Attachment {
            name: name.clone(),
            size: stored.size,
            media_type: guess_media_type(&name).to_string(),
            hash: stored.hash.clone(),
        };
        let vocab = self.vocab().clone();
        let org = self.org();
        let added = attachment.clone();
        // The history says which file: "attach deck.pptx".
        let message = format!("attach {name}");
        self.commit(id, &message, move |current| {
            let current = current.ok_or_else(|| NodeError::UnknownId(id.to_string()))?;
            check_attachable(org, &current)?;
            let mut next = current.clone();
            let list = match &mut next.body {
                Body::Learning(l) => &mut l.attachments,
                Body::Project(p) => &mut p.attachments,
                _ => return Err(NodeError::NoFiles(current.meta.kind)),
            };
            if list.iter().any(|a| a.name == added.name) {
                return Err(NodeError::DuplicateFile {
                    id,
                    name: added.name.clone(),
                });
            }
            list.push(added);
            next.body.check(&vocab)?;
            next.meta.updated = crate::node::now();
            Ok(Some(next))
        })?;
        Ok(attachment)
    }

    /// Entry `id`'s files, each with whether this node holds its bytes.
    pub fn attachments(&self, id: DocumentId) -> Result<Vec<HeldAttachment>, NodeError> {
        let entry = self.get(id)?;
        let blobs = self.blobs();
        Ok(entry
            .body
            .attachments()
            .iter()
            .map(|a| HeldAttachment {
                held: blobs.has(&a.hash),
                attachment: a.clone(),
            })
            .collect())
    }

    /// The file called `name` on entry `id`.
    pub fn attachment(&self, id: DocumentId, name: &str) -> Result<Attachment, NodeError> {
        let entry = self.get(id)?;
        let list = entry.body.attachments();
        list.iter()
            .find(|a| a.name == name)
            .or_else(|| {
                let clean = sanitise_name(name);
                list.iter().find(|a| a.name == clean)
            })
            .cloned()
            .ok_or_else(|| NodeError::UnknownFile {
                id,
                name: name.to_string(),
                known: if list.is_empty() {
                    "none".into()
                } else {
                    list.iter()
                        .map(|a| a.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            })
    }

    /// Writes entry `id`'s file `name` to `dest` (checked against its hash
    /// on the way, through a temporary file beside `dest`). An existing
    /// `dest` is replaced only if `overwrite`.
    pub fn save_attachment(
        &self,
        id: DocumentId,
        name: &str,
        dest: &Path,
        overwrite: bool,
    ) -> Result<Attachment, NodeError> {
        let attachment = self.attachment(id, name)?;
        self.blobs().copy_out(&attachment.hash, dest, overwrite)?;
        Ok(attachment)
    }

    /// The hashes of every file an entry this node holds refers to, leaving
    /// out entry `except`. Reads every learning entry and project (drafts
    /// and retracted ones too): erasure is rare, and this needs no index
    /// that could drift from the documents.
    pub(crate) fn referenced_hashes(
        &self,
        except: Option<DocumentId>,
    ) -> Result<HashSet<String>, NodeError> {
        let mut out = HashSet::new();
        for kind in [Kind::Learning, Kind::Project] {
            let filter = Filter {
                kind: Some(kind),
                include_retracted: true,
                ..Filter::default()
            };
            for listed in self.list(&filter)? {
                if Some(listed.id) == except {
                    continue;
                }
                if let Ok(entry) = self.get(listed.id) {
                    out.extend(entry.body.attachments().iter().map(|a| a.hash.clone()));
                }
            }
        }
        Ok(out)
    }

    /// The hashes entry `id` refers to, read before it is erased (empty if
    /// it is not here or not readable).
    pub(crate) fn hashes_of(&self, id: DocumentId) -> Vec<String> {
        self.get(id)
            .map(|e| {
                e.body
                    .attachments()
                    .iter()
                    .map(|a| a.hash.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Deletes the bytes of `hashes` that no entry still held here uses;
    /// returns how many files were deleted.
    pub(crate) fn drop_unused_files(&self, hashes: &[String]) -> Result<usize, NodeError> {
        if hashes.is_empty() {
            return Ok(0);
        }
        let used = self.referenced_hashes(None)?;
        let blobs = self.blobs();
        let mut removed = 0;
        for h in hashes {
            if !used.contains(h) && blobs.remove(h)? {
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// A size for people: bytes below 1 kB, then kB, MB, GB (powers of 1000,
/// as `convene files` prints them).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["kB", "MB", "GB", "TB"];
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64;
    let mut unit = "B";
    for u in UNITS {
        if v < 1000.0 {
            break;
        }
        v /= 1000.0;
        unit = u;
    }
    format!("{v:.1} {unit}")
}

/// Whether this node's organisation `org` may add a file to `entry`.
pub(crate) fn check_attachable(org: convene_model::OrgId, entry: &Entry) -> Result<(), NodeError> {
    if !matches!(entry.meta.kind, Kind::Learning | Kind::Project) {
        return Err(NodeError::NoFiles(entry.meta.kind));
    }
    crate::node::may_edit(org, entry)?;
    if entry.meta.status == Status::Retracted {
        return Err(NodeError::Retracted(entry.id));
    }
    Ok(())
}
