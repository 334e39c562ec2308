//! Bundles that carry attachment bytes (`convene export --with-files`).
//!
//! # Format (files container, version 1)
//!
//! ```text
//! "CONVENE-FILES\n"   magic, 14 bytes
//! version             1 byte: 1
//! bundle length       8 bytes, little-endian
//! bundle              a whole ordinary bundle (see the parent module)
//! count               4 bytes, little-endian: how many files follow
//! file × count        hash (32 bytes), size (8 bytes LE), size bytes
//! ```
//!
//! The signed changes travel in an unchanged ordinary bundle inside the
//! container, so the bundle format and its version stay as they were:
//! bundles without files are exactly what older releases write and read,
//! and every bundle made before files existed imports as before. Only a
//! bundle made with `--with-files` is a container; a release without
//! attachments refuses it as "not a Convene bundle" (export without
//! `--with-files` for such a node).
//!
//! # Importing
//!
//! The file is read in bounded memory, as a stream. Before anything is
//! applied, every file record is hashed and compared with its declared
//! hash, so a damaged or altered file refuses the whole bundle, as one bad
//! signature does. Then the inner bundle is imported as any bundle, and
//! then each file is stored (verified again as it is written, through the
//! file store's temp-and-rename) only if an entry held here after the
//! import refers to its hash and it is within this node's per-file limit:
//! a bundle cannot put on this node's disk bytes no entry it holds uses.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use convene_model::DocumentId;

use crate::attach::FileLimits;
use crate::blobs::BlobError;
use crate::bundle::BundleError;
use crate::error::NodeError;
use crate::node::Node;

const MAGIC: &[u8] = b"CONVENE-FILES\n";
const VERSION: u8 = 1;
/// Bytes before the inner bundle.
const PREFIX: u64 = 14 + 1 + 8;
/// Most files one container may declare.
pub const MAX_FILES: u32 = 1 << 20;

/// Where the parts of a bundle file are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Where the ordinary bundle starts and how long it is.
    pub bundle_offset: u64,
    pub bundle_len: u64,
    /// Whether files follow it (a container), or this is a plain bundle.
    pub with_files: bool,
}

impl Layout {
    /// Opens the inner bundle of `path` as a reader from its start.
    pub fn open_bundle(&self, path: &Path) -> std::io::Result<std::io::Take<std::fs::File>> {
        let mut f = std::fs::File::open(path)?;
        f.seek(SeekFrom::Start(self.bundle_offset))?;
        Ok(f.take(self.bundle_len))
    }
}

/// What [`Node::import_bundle_files`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilesImported {
    /// Files stored that were not here.
    pub stored: usize,
    /// Files already here.
    pub already: usize,
    /// Files left out: no entry here uses them, or over the size limit.
    pub skipped: usize,
}

fn unreadable(e: std::io::Error) -> NodeError {
    NodeError::Bundle(BundleError::Unreadable(e))
}

fn damaged(what: String) -> NodeError {
    NodeError::Bundle(BundleError::Undecodable(what))
}

/// Finds the parts of the bundle file at `path`: a container's inner
/// bundle, or the whole file for an ordinary bundle.
pub fn layout(path: &Path) -> Result<Layout, NodeError> {
    let mut f = std::fs::File::open(path).map_err(unreadable)?;
    let total = f.metadata().map_err(unreadable)?.len();
    let mut head = [0u8; PREFIX as usize];
    let mut have = 0;
    while have < head.len() {
        match f.read(&mut head[have..]).map_err(unreadable)? {
            0 => break,
            n => have += n,
        }
    }
    if have < MAGIC.len() || &head[..MAGIC.len()] != MAGIC {
        return Ok(Layout {
            bundle_offset: 0,
            bundle_len: total,
            with_files: false,
        });
    }
    if have < head.len() {
        return Err(NodeError::Bundle(BundleError::Truncated {
            have: total,
            want: PREFIX,
        }));
    }
    if head[14] != VERSION {
        return Err(damaged(format!(
            "its files are in version {} of the container; this Convene reads version {VERSION}: upgrade convene",
            head[14]
        )));
    }
    let len = u64::from_le_bytes(head[15..23].try_into().expect("8 bytes"));
    if PREFIX.saturating_add(len).saturating_add(4) > total {
        return Err(NodeError::Bundle(BundleError::Truncated {
            have: total,
            want: PREFIX.saturating_add(len).saturating_add(4),
        }));
    }
    Ok(Layout {
        bundle_offset: PREFIX,
        bundle_len: len,
        with_files: true,
    })
}

/// Reads the file records after the inner bundle, calling `each` with
/// every file's hash, size and a reader of exactly its bytes (which `each`
/// must consume whole). Refuses a container that ends early or has bytes
/// after its last file.
fn each_file(
    path: &Path,
    layout: &Layout,
    mut each: impl FnMut(&str, u64, &mut dyn Read) -> Result<(), NodeError>,
) -> Result<(), NodeError> {
    let mut f = std::io::BufReader::new(std::fs::File::open(path).map_err(unreadable)?);
    f.seek(SeekFrom::Start(layout.bundle_offset + layout.bundle_len))
        .map_err(unreadable)?;
    let cut = |_| truncated();
    let mut count = [0u8; 4];
    f.read_exact(&mut count).map_err(cut)?;
    let count = u32::from_le_bytes(count);
    if count > MAX_FILES {
        return Err(damaged(format!("it declares {count} files")));
    }
    for _ in 0..count {
        let mut head = [0u8; 40];
        f.read_exact(&mut head).map_err(cut)?;
        let hash = hex(&head[..32]);
        let size = u64::from_le_bytes(head[32..].try_into().expect("8 bytes"));
        let mut body = (&mut f).take(size);
        each(&hash, size, &mut body)?;
        if body.limit() != 0 {
            return Err(truncated());
        }
    }
    let mut extra = [0u8; 1];
    if f.read(&mut extra).map_err(unreadable)? != 0 {
        return Err(damaged("there are bytes after its last file".into()));
    }
    Ok(())
}

fn truncated() -> NodeError {
    damaged("it is truncated (it ends before its last file): copy it again".into())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Hashes every file of a container and compares it with its declared
/// hash, in bounded memory; the first that differs refuses the bundle.
pub fn verify(path: &Path, layout: &Layout) -> Result<usize, NodeError> {
    if !layout.with_files {
        return Ok(0);
    }
    let mut n = 0;
    each_file(path, layout, |hash, size, body| {
        let mut hasher = blake3::Hasher::new();
        if std::io::copy(body, &mut hasher).map_err(unreadable)? != size {
            return Err(truncated());
        }
        let actual = hasher.finalize().to_hex().to_string();
        if actual != hash {
            return Err(NodeError::Files(BlobError::HashMismatch {
                expected: hash.to_string(),
                actual,
            }));
        }
        n += 1;
        Ok(())
    })?;
    Ok(n)
}

impl Node {
    /// Writes a container to `out`: the ordinary bundle `bundle` (as
    /// encoded), then the bytes of every file held here that an entry in
    /// `docs` refers to, each checked against its hash as it is copied (a
    /// copy damaged on disk fails the export and is moved aside, so the
    /// daemon fetches it again). Returns how many files it carries.
    pub fn write_bundle_with_files(
        &self,
        bundle: &[u8],
        docs: impl IntoIterator<Item = DocumentId>,
        out: &mut impl Write,
    ) -> Result<usize, NodeError> {
        let blobs = self.blobs();
        let mut hashes = std::collections::BTreeSet::new();
        for doc in docs {
            for h in self.hashes_of(doc) {
                if blobs.has(&h) {
                    hashes.insert(h);
                }
            }
        }
        let w = |e| {
            NodeError::Files(BlobError::Io {
                action: "write",
                path: "the bundle".into(),
                source: e,
            })
        };
        out.write_all(MAGIC).map_err(w)?;
        out.write_all(&[VERSION]).map_err(w)?;
        out.write_all(&(bundle.len() as u64).to_le_bytes())
            .map_err(w)?;
        out.write_all(bundle).map_err(w)?;
        out.write_all(&(hashes.len() as u32).to_le_bytes())
            .map_err(w)?;
        for h in &hashes {
            let mut f = blobs.open_checked(h)?;
            let size = f.size();
            let raw: Vec<u8> = (0..32)
                .map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).expect("a checked hash"))
                .collect();
            out.write_all(&raw).map_err(w)?;
            out.write_all(&size.to_le_bytes()).map_err(w)?;
            // Checked as it is copied: a copy damaged on disk is not
            // handed on (the importer would refuse the whole bundle).
            f.copy_to(out, |source| BlobError::Io {
                action: "write",
                path: "the bundle".into(),
                source,
            })?;
        }
        Ok(hashes.len())
    }

    /// Stores the files of a container whose bundle was just imported:
    /// each verified against its hash as it is written, and only if an
    /// entry held here refers to it and it is within `limits`.
    pub fn import_bundle_files(
        &self,
        path: &Path,
        layout: &Layout,
        limits: &FileLimits,
    ) -> Result<FilesImported, NodeError> {
        let mut done = FilesImported::default();
        if !layout.with_files {
            return Ok(done);
        }
        let used = self.referenced_hashes(None)?;
        let blobs = self.blobs();
        each_file(path, layout, |hash, size, body| {
            if blobs.has(hash) {
                done.already += 1;
                std::io::copy(body, &mut std::io::sink()).map_err(unreadable)?;
            } else if !used.contains(hash) || size > limits.max_file {
                done.skipped += 1;
                std::io::copy(body, &mut std::io::sink()).map_err(unreadable)?;
            } else {
                blobs.put(body, size, Some(hash))?;
                done.stored += 1;
            }
            Ok(())
        })?;
        Ok(done)
    }
}
