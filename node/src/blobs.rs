//! Attachment bytes: a content-addressed folder beside the store.
//!
//! An entry's document describes its files ([`convene_model::Attachment`]:
//! name, size, media type, BLAKE3 hash); the bytes live here, under
//! `files/` in the home, one file per distinct content, named by its hash:
//! `files/ab/cdef…` (the first two hex digits are a folder, so no folder
//! holds more than a few thousand files). However many entries use a file,
//! its bytes are stored once.
//!
//! # Why a folder and not SQLite blobs
//!
//! - **Streaming**: a 200 MB report is hashed and written in 64 KiB pieces
//!   and read back the same way; an SQLite blob must be sized up front and
//!   passes through its page cache, and a large one sits in the WAL too.
//! - **No huge rows**: a 1 GB row bloats the database, its backups and
//!   every `VACUUM`, and holds the single writer lock while it is written,
//!   stalling sync and the web app for the whole copy.
//! - **Dedupe by name**: the hash *is* the path, so "is this content here
//!   already" is one `stat`, and a second entry using the same file costs
//!   nothing.
//! - **Erasure is unlink**: removing bytes is deleting one file; erasing a
//!   blob from SQLite needs a `secure_delete` scrub of freed pages.
//!
//! # Never half-written
//!
//! Content is streamed into a private temporary file inside `files/` (so
//! on the same file system), hashed as it is written, `fsync`ed, checked
//! against the expected hash when there is one, and only then renamed to
//! its hash path (and the folder `fsync`ed). A crash leaves at most a
//! `.tmp-*` file, which [`BlobStore::sweep_temp`] removes; a file under a
//! hash path always holds exactly that content, as written.
//!
//! # Damaged on disk
//!
//! A disk can still change a file afterwards. Every read that hands bytes
//! on checks them against the hash: a copy out, the web app's download and
//! an export read through [`BlobStore::open_checked`], which gives the
//! piece that completes a file only once the whole has matched; a range
//! served to a member is checked against the hash tree. A copy that fails
//! is moved aside to `.damaged-HASH` ([`BlobStore::discard_damaged`]),
//! where no lookup by hash finds it, so the file counts as not held and is
//! fetched again.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::node::{PRIVATE_FILE_MODE, create_private_dir};

pub mod transfer;
pub mod verified;

/// The folder in the home that holds attachment bytes.
pub const FILES_DIR: &str = "files";
/// The size of the pieces content is streamed in.
const PIECE: usize = 64 * 1024;
const TEMP_PREFIX: &str = ".tmp-";
/// The name a held copy found damaged is moved to, before its hash.
const DAMAGED_PREFIX: &str = ".damaged-";

/// A failure of the file store, phrased for the person at the command line.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("the file is larger than the {limit}-byte limit for one file")]
    TooLarge { limit: u64 },
    #[error("the content does not match its hash (expected {expected}, got {actual})")]
    HashMismatch { expected: String, actual: String },
    #[error("{0:?} is not a BLAKE3 hash (64 hex digits)")]
    BadHash(String),
    #[error("the bytes of file {0} are not held on this node")]
    Missing(String),
    /// Held bytes found not to match their hash (damaged on disk), moved
    /// aside to `aside` ([`BlobStore::discard_damaged`]); `None` if the
    /// copy there had already been replaced.
    #[error(
        "the copy of file {hash} held here is damaged on disk (its bytes no longer match their hash){}",
        aside_note(.aside)
    )]
    Damaged {
        hash: String,
        aside: Option<PathBuf>,
    },
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

fn aside_note(aside: &Option<PathBuf>) -> String {
    aside.as_ref().map_or(String::new(), |p| {
        format!(
            ": moved aside to {}, so that it is fetched again from a member",
            p.display()
        )
    })
}

/// Whether two opened files are the same file on disk.
fn same_file(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        a.dev() == b.dev() && a.ino() == b.ino()
    }
    #[cfg(not(unix))]
    {
        a.len() == b.len() && a.modified().ok() == b.modified().ok()
    }
}

/// Deletes `path` if it is there; whether it was.
fn remove_if_present(path: &Path) -> Result<bool, BlobError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io("delete", path)(e)),
    }
}

fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> BlobError + 'a {
    move |source| BlobError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// What [`BlobStore::put`] stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// BLAKE3 of the content, 64 lowercase hex digits.
    pub hash: String,
    pub size: u64,
    /// Whether the content was new here (false: it was already held, and
    /// the copy just written was dropped).
    pub new: bool,
}

/// The content-addressed folder of one home.
#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
}

impl BlobStore {
    /// The store of the home `home` (nothing is created until a put).
    pub fn new(home: &Path) -> Self {
        Self {
            root: home.join(FILES_DIR),
        }
    }

    /// Where the bytes with `hash` live (whether or not they are held).
    pub fn path(&self, hash: &str) -> Result<PathBuf, BlobError> {
        if !convene_model::attachment::is_hash(hash) {
            return Err(BlobError::BadHash(hash.to_string()));
        }
        Ok(self.root.join(&hash[..2]).join(&hash[2..]))
    }

    /// Whether this node holds the bytes with `hash`.
    pub fn has(&self, hash: &str) -> bool {
        self.path(hash).is_ok_and(|p| p.is_file())
    }

    /// Streams `from` into the store: at most `limit` bytes (one more is a
    /// [`BlobError::TooLarge`]), and, when `expected` is given, exactly the
    /// content with that hash. Nothing is left behind on any error.
    pub fn put(
        &self,
        from: &mut dyn Read,
        limit: u64,
        expected: Option<&str>,
    ) -> Result<Stored, BlobError> {
        if let Some(e) = expected {
            self.path(e)?;
        }
        create_private_dir(&self.root).map_err(io("create", &self.root))?;
        let (temp_path, mut temp) = self.temp()?;
        // Removes the temporary file unless it was renamed into place.
        struct Guard<'a>(Option<&'a Path>);
        impl Drop for Guard<'_> {
            fn drop(&mut self) {
                if let Some(p) = self.0 {
                    let _ = std::fs::remove_file(p);
                }
            }
        }
        let mut guard = Guard(Some(&temp_path));
        let mut hasher = blake3::Hasher::new();
        let mut size: u64 = 0;
        let mut buf = vec![0u8; PIECE];
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(BlobError::Io {
                        action: "read",
                        path: PathBuf::from("the input"),
                        source,
                    });
                }
            };
            size += n as u64;
            if size > limit {
                return Err(BlobError::TooLarge { limit });
            }
            hasher.update(&buf[..n]);
            temp.write_all(&buf[..n]).map_err(io("write", &temp_path))?;
        }
        let hash = hasher.finalize().to_hex().to_string();
        if let Some(expected) = expected
            && expected != hash
        {
            return Err(BlobError::HashMismatch {
                expected: expected.to_string(),
                actual: hash,
            });
        }
        temp.sync_all().map_err(io("sync", &temp_path))?;
        drop(temp);
        let dest = self.path(&hash)?;
        if dest.is_file() {
            return Ok(Stored {
                hash,
                size,
                new: false,
            });
        }
        let dir = dest.parent().expect("a hash path has a folder");
        create_private_dir(dir).map_err(io("create", dir))?;
        std::fs::rename(&temp_path, &dest).map_err(io("move into place", &dest))?;
        guard.0 = None;
        sync_dir(dir);
        // The hash tree a member's fetch is answered from, made now while
        // the content is in the page cache, so the first fetch does not
        // hash the whole file on the transfer's path. It is a cache: if it
        // cannot be made here it is made when first asked for.
        if let Err(e) = self.outboard(&hash) {
            tracing::warn!(%hash, error = %e, "could not prepare the file's hash tree; it will be made when first fetched");
        }
        Ok(Stored {
            hash,
            size,
            new: true,
        })
    }

    /// Opens the bytes with `hash` for reading.
    pub fn open(&self, hash: &str) -> Result<File, BlobError> {
        let path = self.path(hash)?;
        File::open(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                BlobError::Missing(hash.to_string())
            } else {
                io("open", &path)(e)
            }
        })
    }

    /// Opens the bytes with `hash` to be handed on, checked as they are
    /// read ([`Checked`]): the one way held bytes leave the store whole.
    pub fn open_checked(&self, hash: &str) -> Result<Checked, BlobError> {
        let file = self.open(hash)?;
        let size = file
            .metadata()
            .map_err(io("read", &self.path(hash)?))?
            .len();
        // An empty copy has no last piece to withhold: checked here (the
        // empty file's hash is not that of any file that had content).
        if size == 0 && blake3::hash(&[]).to_hex().as_str() != hash {
            return Err(self.discard_damaged(hash, &file));
        }
        Ok(Checked {
            file,
            size,
            done: 0,
            hasher: blake3::Hasher::new(),
            hash: hash.to_string(),
            store: self.clone(),
        })
    }

    /// Deletes the bytes with `hash` (and its outboard, any partial
    /// download of it and any damaged copy moved aside); whether they were
    /// here.
    pub fn remove(&self, hash: &str) -> Result<bool, BlobError> {
        let path = self.path(hash)?;
        self.remove_partial(hash)?;
        remove_if_present(&self.outboard_path(hash)?)?;
        let held = match std::fs::remove_file(&path) {
            Ok(()) => {
                if let Some(dir) = path.parent() {
                    sync_dir(dir);
                    // An empty folder goes too (fails harmlessly if not empty).
                    let _ = std::fs::remove_dir(dir);
                }
                true
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => return Err(io("delete", &path)(e)),
        };
        // After the copy held: one found damaged while this runs is moved
        // aside before this, or finds nothing left to move.
        remove_if_present(&self.damaged_path(hash)?)?;
        Ok(held)
    }

    /// Where a held copy of `hash` found damaged is moved: in the store's
    /// folder, under a name no lookup by hash finds.
    fn damaged_path(&self, hash: &str) -> Result<PathBuf, BlobError> {
        self.path(hash)?;
        Ok(self.root.join(format!("{DAMAGED_PREFIX}{hash}")))
    }

    /// Moves the held bytes of `hash` aside (and drops their hash tree)
    /// once `checked`, the copy just read, has been found not to match it.
    /// Damaged on disk, they can be neither served nor handed out, and
    /// while they stayed the node would count the file as held and never
    /// fetch it again; moved aside, the file is fetched again from a member
    /// like any file not held (at once if within the automatic size, else
    /// on `convene get`), and the damaged copy stays for whoever wants to
    /// recover what they can (it may be the only copy anywhere) until no
    /// entry held here uses the file. Only the copy that was read is
    /// moved: if the hash path holds another file by now (fetched again
    /// meanwhile), it stays. Partial downloads are left alone. Gives the
    /// error to report.
    pub fn discard_damaged(&self, hash: &str, checked: &File) -> BlobError {
        let (path, aside) = match (self.path(hash), self.damaged_path(hash)) {
            (Ok(p), Ok(a)) => (p, a),
            (Err(e), _) | (_, Err(e)) => return e,
        };
        let unchanged = match (checked.metadata(), std::fs::metadata(&path)) {
            (Ok(read), Ok(now)) => same_file(&read, &now),
            _ => false,
        };
        // Moved here, or not: the path holds another copy by now, or
        // another check of the same copy (or an erasure) got there first.
        let moved = match unchanged.then(|| std::fs::rename(&path, &aside)) {
            Some(Ok(())) => Some(aside),
            Some(Err(source)) if source.kind() != std::io::ErrorKind::NotFound => {
                return BlobError::Io {
                    action: "move aside the damaged copy at",
                    path,
                    source,
                };
            }
            _ => None,
        };
        if let Some(aside) = &moved {
            if let Ok(tree) = self.outboard_path(hash) {
                let _ = remove_if_present(&tree);
            }
            // The folder stays, even if empty: a download of another file
            // finishing into it may have just made it.
            if let Some(dir) = path.parent() {
                sync_dir(dir);
            }
            tracing::warn!(
                %hash,
                aside = %aside.display(),
                "a file held here no longer matches its hash (damaged on disk): moved aside, to be fetched again from a member"
            );
        }
        BlobError::Damaged {
            hash: hash.to_string(),
            aside: moved,
        }
    }

    /// The damaged copies moved aside ([`BlobStore::discard_damaged`]):
    /// each one's hash and size.
    pub fn damaged_aside(&self) -> Vec<(String, u64)> {
        let Ok(entries) = std::fs::read_dir(&self.root) else {
            return Vec::new();
        };
        let mut out: Vec<(String, u64)> = entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let hash = name.strip_prefix(DAMAGED_PREFIX)?.to_string();
                Some((hash, e.metadata().map_or(0, |m| m.len())))
            })
            .collect();
        out.sort();
        out
    }

    /// Bytes of file content held (outboards and partial downloads not
    /// counted).
    pub fn held_bytes(&self) -> u64 {
        let Ok(dirs) = std::fs::read_dir(&self.root) else {
            return 0;
        };
        let mut total = 0;
        for dir in dirs.flatten() {
            if !dir.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            for f in std::fs::read_dir(dir.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                if f.file_name()
                    .to_string_lossy()
                    .ends_with(verified::OUTBOARD_SUFFIX)
                {
                    continue;
                }
                total += f.metadata().map_or(0, |m| m.len());
            }
        }
        total
    }

    /// Removes temporary files a crash left behind (partial downloads,
    /// `.part-*`, stay: they resume).
    pub fn sweep_temp(&self) -> Result<usize, BlobError> {
        let entries = match std::fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(io("read", &self.root)(e)),
        };
        let mut removed = 0;
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX)
                && std::fs::remove_file(entry.path()).is_ok()
            {
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Copies the bytes with `hash` to `dest` through a temporary file
    /// beside it, checking them against the hash on the way (a file
    /// damaged on disk is refused, not handed out). `dest` is replaced
    /// only if `overwrite`; otherwise an existing `dest` is an error.
    pub fn copy_out(&self, hash: &str, dest: &Path, overwrite: bool) -> Result<u64, BlobError> {
        let mut src = self.open_checked(hash)?;
        if !overwrite && dest.exists() {
            return Err(BlobError::Io {
                action: "write",
                path: dest.to_path_buf(),
                source: std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "it already exists (pass --force to replace it)",
                ),
            });
        }
        let dir = match dest.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let temp_path = dir.join(format!(".{name}.convene-{:016x}", rand::random::<u64>()));
        let mut temp = create_new_private(&temp_path)?;
        let result = (|| {
            let size = src.copy_to(&mut temp, |e| io("write", &temp_path)(e))?;
            temp.sync_all().map_err(io("sync", &temp_path))?;
            if !overwrite && dest.exists() {
                return Err(BlobError::Io {
                    action: "write",
                    path: dest.to_path_buf(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::AlreadyExists,
                        "it already exists (pass --force to replace it)",
                    ),
                });
            }
            std::fs::rename(&temp_path, dest).map_err(io("write", dest))?;
            Ok(size)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&temp_path);
        }
        result
    }

    fn temp(&self) -> Result<(PathBuf, File), BlobError> {
        let path = self
            .root
            .join(format!("{TEMP_PREFIX}{:016x}", rand::random::<u64>()));
        let file = create_new_private(&path)?;
        Ok((path, file))
    }
}

/// A held file read from start to end and hashed on the way
/// ([`BlobStore::open_checked`]). The piece that completes the file is
/// given only once the whole file has matched its hash; if it does not,
/// that read fails with [`BlobError::Damaged`] and the copy is moved aside
/// ([`BlobStore::discard_damaged`]), so a reader that passes each piece on
/// as it comes never hands on the whole of a damaged file, and the node
/// fetches it again. The size is the file's when it was opened: a copy
/// that ends before it is a failed read (nothing is moved), and bytes
/// beyond it are not read.
#[derive(Debug)]
pub struct Checked {
    file: File,
    size: u64,
    done: u64,
    hasher: blake3::Hasher,
    hash: String,
    store: BlobStore,
}

impl Checked {
    /// The file's size, in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Reads the next piece into `buf` and gives it (empty at the end),
    /// checking the whole file against its hash before the last piece.
    pub fn next_piece<'b>(&mut self, buf: &'b mut [u8]) -> Result<&'b [u8], BlobError> {
        let left = self.size - self.done;
        if left == 0 {
            return Ok(&[]);
        }
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = loop {
            match self.file.read(&mut buf[..want]) {
                Ok(0) => {
                    return Err(BlobError::Io {
                        action: "read",
                        path: self.store.path(&self.hash)?,
                        source: std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            "the file ended before the size it had when it was opened",
                        ),
                    });
                }
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io("read", &self.store.path(&self.hash)?)(e)),
            }
        };
        self.hasher.update(&buf[..n]);
        self.done += n as u64;
        if self.done == self.size && self.hasher.finalize().to_hex().as_str() != self.hash {
            return Err(self.store.discard_damaged(&self.hash, &self.file));
        }
        Ok(&buf[..n])
    }

    /// Copies the whole file to `out` (whose write failures `on_write`
    /// phrases), checked: on a mismatch `out` has had all but the last
    /// piece. Gives the bytes copied.
    pub fn copy_to(
        &mut self,
        out: &mut impl Write,
        on_write: impl Fn(std::io::Error) -> BlobError,
    ) -> Result<u64, BlobError> {
        let mut buf = vec![0u8; PIECE];
        loop {
            let piece = self.next_piece(&mut buf)?;
            if piece.is_empty() {
                return Ok(self.done);
            }
            out.write_all(piece).map_err(&on_write)?;
        }
    }
}

/// Creates a new file readable by its owner only; never opens an existing one.
fn create_new_private(path: &Path) -> Result<File, BlobError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(PRIVATE_FILE_MODE);
    }
    options.open(path).map_err(io("create", path))
}

/// Makes a rename in `dir` durable (best effort: not every platform can
/// open a folder).
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}
