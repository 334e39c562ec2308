//! BLAKE3 verified streaming for file transfer: the hash tree (outboard)
//! kept beside a blob, ranges encoded with their proofs, and resumable
//! partial downloads that keep only what verified.
//!
//! # Why `bao-tree`
//!
//! `bao-tree` (n0-computer, the engine of `iroh-blobs`) encodes and checks
//! arbitrary *ranges* of a BLAKE3 tree with *chunk groups*: the outboard
//! stores one hash pair per 16 KiB group instead of per 1 KiB chunk (a
//! 200 MB file's tree is 800 KB, not 13 MB), and a range request is
//! answered with just the parents on the path to it. It depends on the
//! `blake3` the workspace already uses, and its root is exactly
//! `blake3::hash` of the content, the hash an entry records. The older
//! `bao` crate (oconnor) has slices too, but only at 1 KiB granularity,
//! with a 16× larger outboard and its own size-prefixed format.
//!
//! # Receiving
//!
//! A download lives in the store's folder as `.part-HASH` (the bytes, at
//! their offsets), `.part-HASH.obao` (its hash tree, as it arrives) and
//! `.part-HASH.ok` (one bit per 16 KiB group that has verified). Each
//! response is checked item by item against the root hash with the size
//! the *entry* declares (never the sender's): every parent (pair of
//! hashes) that verifies is written to the tree, every group that
//! verifies to the bytes, and the first item that does not ends the
//! response: the rest of it is dropped. Every [`CHECKPOINT`] bytes (and on
//! the daemon's tick) the bytes and the tree are synced and only then the
//! record saved, on a thread of its own while the transfer goes on (and on
//! drop, before the download lets go), so the record never claims bytes a
//! crash could lose. A dropped connection or a killed daemon resumes from
//! the record. When every group is in, the tree is checked whole (every
//! pair hashes to the one above it, up to the root: a few KB per 100 MB,
//! not the file hashed again, as `iroh-blobs` does), and the bytes and the
//! tree are renamed to the hash path; every group was checked against that
//! tree as it arrived, and the store checks a file again whenever it hands
//! it out ([`BlobStore::copy_out`]) or serves it ([`BlobStore::encode_range`]).
//! A file stored from this node's own disk (attached, uploaded, imported)
//! gets its outboard when it is stored ([`BlobStore::put`]); one missing
//! for any other reason is made when first asked for.

use std::fs::File;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use bao_tree::io::outboard::PreOrderOutboard;
use bao_tree::io::sync::{
    DecodeResponseIter, ReadAt, Size, WriteAt, encode_ranges_validated, outboard,
    valid_outboard_ranges,
};
use bao_tree::io::{BaoContentItem, DecodeError, EncodeError};
use bao_tree::{BaoTree, BlockSize, ChunkNum, ChunkRanges};

use super::{BlobError, BlobStore, create_new_private, remove_if_present, sync_dir};
use crate::node::create_private_dir;

/// Chunk groups of 2^4 BLAKE3 chunks: 16 KiB, the unit that is verified,
/// recorded and resumed.
pub const BLOCK: BlockSize = BlockSize::from_chunk_log(4);
/// Bytes in one chunk group.
pub const GROUP: u64 = 16 * 1024;
/// What an outboard beside a blob is called: `files/ab/cdef….obao`.
pub const OUTBOARD_SUFFIX: &str = ".obao";
/// A partial download's prefix in `files/`.
pub const PART_PREFIX: &str = ".part-";
const RECORD_SUFFIX: &str = ".ok";

/// The tree of a file of `size` bytes.
pub fn tree(size: u64) -> BaoTree {
    BaoTree::new(size, BLOCK)
}

fn root_of(hash: &str) -> Result<blake3::Hash, BlobError> {
    blake3::Hash::from_hex(hash).map_err(|_| BlobError::BadHash(hash.to_string()))
}

/// The chunk ranges covering bytes `range` (group-aligned by the caller).
fn chunks(range: &Range<u64>) -> ChunkRanges {
    ChunkRanges::from(ChunkNum(range.start / 1024)..ChunkNum(range.end.div_ceil(1024)))
}

/// A file read and written at offsets.
#[derive(Debug)]
pub struct Positioned(pub File);

impl ReadAt for Positioned {
    fn read_at(&self, pos: u64, buf: &mut [u8]) -> io::Result<usize> {
        #[cfg(unix)]
        {
            std::os::unix::fs::FileExt::read_at(&self.0, buf, pos)
        }
        #[cfg(windows)]
        {
            std::os::windows::fs::FileExt::seek_read(&self.0, buf, pos)
        }
    }
}

impl WriteAt for Positioned {
    fn write_at(&mut self, pos: u64, buf: &[u8]) -> io::Result<usize> {
        #[cfg(unix)]
        {
            std::os::unix::fs::FileExt::write_at(&self.0, buf, pos)
        }
        #[cfg(windows)]
        {
            std::os::windows::fs::FileExt::seek_write(&self.0, buf, pos)
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Size for Positioned {
    fn size(&self) -> io::Result<Option<u64>> {
        Ok(Some(self.0.metadata()?.len()))
    }
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> BlobError + 'a {
    move |source| BlobError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// Computes the outboard of `data` (`size` bytes) into `into`; returns
/// whether its root is `root`.
fn write_outboard(data: &File, size: u64, root: blake3::Hash, into: File) -> io::Result<bool> {
    let mut ob = PreOrderOutboard {
        root,
        tree: tree(size),
        data: Positioned(into),
    };
    let reader = io::BufReader::with_capacity(256 * 1024, data);
    let actual = outboard(reader, ob.tree, &mut ob)?;
    ob.data.0.sync_all()?;
    Ok(actual == root)
}

impl BlobStore {
    /// Where the outboard of `hash` is kept.
    pub fn outboard_path(&self, hash: &str) -> Result<PathBuf, BlobError> {
        let mut p = self.path(hash)?.into_os_string();
        p.push(OUTBOARD_SUFFIX);
        Ok(PathBuf::from(p))
    }

    /// A partial download's bytes, record and hash tree.
    fn part_paths(&self, hash: &str) -> Result<[PathBuf; 3], BlobError> {
        self.path(hash)?;
        let part = format!("{PART_PREFIX}{hash}");
        Ok([
            self.root.join(&part),
            self.root.join(format!("{part}{RECORD_SUFFIX}")),
            self.root.join(format!("{part}{OUTBOARD_SUFFIX}")),
        ])
    }

    /// Removes a partial download of `hash`, if any; whether there was one.
    pub fn remove_partial(&self, hash: &str) -> Result<bool, BlobError> {
        let mut any = false;
        for p in &self.part_paths(hash)? {
            any |= remove_if_present(p)?;
        }
        Ok(any)
    }

    /// The size of the blob `hash` and its outboard, computing and caching
    /// the outboard on first use. `None` when the blob is not held, or its
    /// content no longer matches its hash (then it is not served, and is
    /// moved aside: [`BlobStore::discard_damaged`]).
    pub fn outboard(
        &self,
        hash: &str,
    ) -> Result<Option<(File, PreOrderOutboard<Positioned>)>, BlobError> {
        let root = root_of(hash)?;
        let data = match self.open(hash) {
            Ok(f) => f,
            Err(BlobError::Missing(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let path = self.path(hash)?;
        let size = data.metadata().map_err(io_err("read", &path))?.len();
        let ob_path = self.outboard_path(hash)?;
        let expected_len = tree(size).outboard_size();
        let ob_file = match File::open(&ob_path) {
            Ok(f) if f.metadata().is_ok_and(|m| m.len() == expected_len) => f,
            _ => {
                let (temp_path, temp) = self.temp()?;
                let ok = write_outboard(&data, size, root, temp);
                let ok = match ok {
                    Ok(ok) => ok,
                    Err(e) => {
                        let _ = std::fs::remove_file(&temp_path);
                        return Err(io_err("hash", &path)(e));
                    }
                };
                if !ok {
                    let _ = std::fs::remove_file(&temp_path);
                    self.discard_damaged(hash, &data);
                    return Ok(None);
                }
                // Opened before it is moved into place: another request
                // that finds the file damaged may remove the tree at its
                // path again at any moment, and this one is read through
                // its own handle whatever happens to the path.
                let made = File::open(&temp_path).map_err(io_err("open", &temp_path));
                let moved = made.and_then(|f| {
                    std::fs::rename(&temp_path, &ob_path)
                        .map_err(io_err("move into place", &ob_path))?;
                    Ok(f)
                });
                if moved.is_err() {
                    let _ = std::fs::remove_file(&temp_path);
                }
                moved?
            }
        };
        Ok(Some((
            data,
            PreOrderOutboard {
                root,
                tree: tree(size),
                data: Positioned(ob_file),
            },
        )))
    }

    /// Encodes bytes `range` of blob `hash` with the proof that they belong
    /// to it: `(size, encoded)`, or `None` when not held (or damaged).
    /// Every group is checked against the outboard on the way out.
    pub fn encode_range(
        &self,
        hash: &str,
        range: Range<u64>,
    ) -> Result<Option<(u64, Vec<u8>)>, BlobError> {
        match self.encode_range_once(hash, range.clone())? {
            Encoded::Done(answer) => Ok(answer),
            // The file or its tree was damaged on disk. The tree is only a
            // cache: it is made again from the file, and if the file no
            // longer matches its hash that moves it aside (`outboard`).
            Encoded::Damaged => {
                remove_if_present(&self.outboard_path(hash)?)?;
                match self.encode_range_once(hash, range)? {
                    Encoded::Done(answer) => Ok(answer),
                    Encoded::Damaged => Ok(None),
                }
            }
        }
    }

    fn encode_range_once(&self, hash: &str, range: Range<u64>) -> Result<Encoded, BlobError> {
        let Some((data, ob)) = self.outboard(hash)? else {
            return Ok(Encoded::Done(None));
        };
        let size = ob.tree.size();
        if range.start >= size.max(1) || range.end <= range.start {
            return Ok(Encoded::Done(None));
        }
        // Room for the proof too (a 1 MiB range's own tree is 4 KiB, the
        // path above it a few hundred bytes): never grown on the way.
        let mut out = crate::net::spare::take((range.end - range.start) as usize + 64 * 1024);
        match encode_ranges_validated(Positioned(data), &ob, &chunks(&range), &mut out) {
            Ok(()) => Ok(Encoded::Done(Some((size, out)))),
            // The content or the tree does not match: damage on disk.
            Err(
                e @ (EncodeError::ParentHashMismatch(_)
                | EncodeError::LeafHashMismatch(_)
                | EncodeError::SizeMismatch),
            ) => {
                tracing::warn!(%hash, error = %e, "a stored file failed its check while being served");
                Ok(Encoded::Damaged)
            }
            // A read that failed says nothing about the bytes: not served
            // this time, nothing moved or made again.
            Err(e) => {
                tracing::error!(%hash, error = %e, "a stored file could not be read to be served");
                Ok(Encoded::Done(None))
            }
        }
    }
}

/// One try at encoding a range: its answer, or the file or its tree found
/// damaged.
enum Encoded {
    Done(Option<(u64, Vec<u8>)>),
    Damaged,
}

impl BlobStore {
    /// Opens (or starts) the partial download of `hash`, `size` bytes as
    /// the entry declares.
    pub fn partial(&self, hash: &str, size: u64) -> Result<Partial, BlobError> {
        let root = root_of(hash)?;
        create_private_dir(&self.root).map_err(io_err("create", &self.root))?;
        let [data_path, record_path, tree_path] = self.part_paths(hash)?;
        let groups = size.div_ceil(GROUP);
        let record_len = groups.div_ceil(8).max(1) as usize;
        let tree_len = tree(size).outboard_size();
        let mut verified = std::fs::read(&record_path).unwrap_or_default();
        let open = |path: &Path, len: u64| {
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(path)
                .ok()
                .filter(|f| f.metadata().is_ok_and(|m| m.len() == len))
        };
        // A record is only as good as the bytes and the tree beside it (a
        // download begun by a version that kept no tree starts over).
        let (data, tree_file) = match (open(&data_path, size), open(&tree_path, tree_len)) {
            (Some(data), Some(t)) if verified.len() == record_len => (data, t),
            _ => {
                // The old record goes first: were this cut short, a record
                // left beside emptied files would claim groups they lack.
                remove_if_present(&record_path)?;
                verified = vec![0; record_len];
                let make = |path: &Path, len: u64| {
                    let _ = std::fs::remove_file(path);
                    let f = create_new_private(path)?;
                    f.set_len(len).map_err(io_err("create", path))?;
                    Ok::<_, BlobError>(f)
                };
                (make(&data_path, size)?, make(&tree_path, tree_len)?)
            }
        };
        write_record(&record_path, &verified).map_err(io_err("write", &record_path))?;
        Ok(Partial {
            store: self.clone(),
            hash: hash.to_string(),
            root,
            size,
            data: Positioned(data),
            data_path,
            tree: Positioned(tree_file),
            tree_path,
            record: Arc::new(Mutex::new(Record {
                path: record_path,
                closed: false,
                written: 0,
            })),
            syncing: Arc::new(AtomicBool::new(false)),
            failed: Arc::new(OnceLock::new()),
            taken: 0,
            verified,
            groups,
            unsynced: 0,
        })
    }
}

/// Why a response was not taken whole.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// The sender broke the protocol: a proof or a chunk that does not
    /// verify against the root hash, or a response cut short.
    #[error("{0}")]
    Violation(String),
    /// Writing here failed (the sender is not to blame).
    #[error(transparent)]
    Local(#[from] BlobError),
}

/// A download in progress, resumable from its record.
#[derive(Debug)]
pub struct Partial {
    store: BlobStore,
    hash: String,
    root: blake3::Hash,
    size: u64,
    data: Positioned,
    data_path: PathBuf,
    /// The file's hash tree (a pre-order outboard), filled in by the
    /// parents that verify.
    tree: Positioned,
    tree_path: PathBuf,
    /// Where the record is saved, shared with a checkpoint running on a
    /// thread of its own: holding the lock is what lets a record be written.
    record: Arc<Mutex<Record>>,
    /// A checkpoint is running on its own thread.
    syncing: Arc<AtomicBool>,
    /// Why a checkpoint on its own thread failed: the download fails with
    /// it at its next step (a sync error is reported once, to whichever
    /// handle asks first, so `finish`'s own sync would not see it again).
    failed: Arc<OnceLock<Failed>>,
    /// Snapshots of the bits taken so far, for [`Record::written`].
    taken: u64,
    /// One bit per group: verified and written.
    verified: Vec<u8>,
    groups: u64,
    /// Bytes verified and written since the last snapshot of the bits.
    unsynced: u64,
}

/// A download's record file, and whether it may still be written: once the
/// download is finished or dropped, a checkpoint still under way on its
/// own thread writes nothing (it would bring back a record the download
/// removed).
#[derive(Debug)]
struct Record {
    path: PathBuf,
    closed: bool,
    /// The snapshot whose bits the record holds: an older one (a thread
    /// that waited for the lock) never overwrites it.
    written: u64,
}

/// What failed on a checkpoint's thread (an `io::Error` cannot be cloned,
/// and the download reports it at every step after).
#[derive(Debug)]
struct Failed {
    action: &'static str,
    path: PathBuf,
    kind: io::ErrorKind,
    message: String,
}

impl Record {
    /// Syncs `files` (the bytes and the tree, at their paths), then saves
    /// snapshot `seq`'s `bits`, unless the record is closed or holds a
    /// later snapshot already.
    fn save(&mut self, files: [(&File, &Path); 2], bits: &[u8], seq: u64) -> Result<(), Failed> {
        if self.closed || seq <= self.written {
            return Ok(());
        }
        for (file, path) in files {
            file.sync_data().map_err(Failed::at("sync", path))?;
        }
        write_record(&self.path, bits).map_err(Failed::at("write", &self.path))?;
        self.written = seq;
        Ok(())
    }
}

impl Failed {
    fn at<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> Self + 'a {
        move |e| Self {
            action,
            path: path.to_path_buf(),
            kind: e.kind(),
            message: e.to_string(),
        }
    }
}

impl From<&Failed> for BlobError {
    fn from(f: &Failed) -> Self {
        BlobError::Io {
            action: f.action,
            path: f.path.clone(),
            source: io::Error::new(f.kind, f.message.clone()),
        }
    }
}

/// Clears a download's "checkpoint running" flag however its thread ends.
struct Done(Arc<AtomicBool>);

impl Drop for Done {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// Verified bytes after which a download's data is synced and its record
/// saved, on a thread of its own so the transfer goes on meanwhile (and at
/// least every half second, by the daemon, and when it is dropped): a
/// crash loses at most this much verified work, and what arrived while
/// the last checkpoint was still syncing.
pub const CHECKPOINT: u64 = 4 * 1024 * 1024;

/// Saves a record: the bits of the groups verified and written.
fn write_record(path: &Path, bits: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(crate::node::PRIVATE_FILE_MODE);
    }
    options.open(path)?.write_all(bits)
}

/// Parents (pairs of hashes) to write to a tree file, in runs of
/// neighbouring positions.
#[derive(Default)]
struct Parents {
    runs: Vec<(u64, Vec<u8>)>,
}

impl Parents {
    fn push(&mut self, at: u64, pair: &(blake3::Hash, blake3::Hash)) {
        match self.runs.last_mut() {
            Some((start, bytes)) if *start + bytes.len() as u64 == at => {}
            _ => self.runs.push((at, Vec::with_capacity(64 * 64))),
        }
        let (_, bytes) = self.runs.last_mut().expect("a run was just made");
        bytes.extend_from_slice(pair.0.as_bytes());
        bytes.extend_from_slice(pair.1.as_bytes());
    }

    fn write(self, to: &mut Positioned) -> io::Result<()> {
        for (at, bytes) in self.runs {
            to.write_all_at(at, &bytes)?;
        }
        Ok(())
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        if let Err(e) = self.checkpoint() {
            tracing::warn!(hash = %self.hash, error = %e, "cannot save a download's progress");
        }
        self.close();
    }
}

impl Partial {
    pub fn hash(&self) -> &str {
        &self.hash
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    fn has(&self, g: u64) -> bool {
        self.verified[(g / 8) as usize] & (1 << (g % 8)) != 0
    }

    fn set(&mut self, g: u64) {
        self.verified[(g / 8) as usize] |= 1 << (g % 8);
    }

    /// Bytes verified so far.
    pub fn verified_bytes(&self) -> u64 {
        (0..self.groups)
            .filter(|g| self.has(*g))
            .map(|g| GROUP.min(self.size.saturating_sub(g * GROUP)))
            .sum()
    }

    pub fn is_complete(&self) -> bool {
        (0..self.groups).all(|g| self.has(g))
    }

    /// The byte ranges still missing, aligned to groups, each within one
    /// `max`-byte unit of the file (so a range asked again after a fault
    /// never overlaps its neighbours in flight).
    pub fn missing(&self, max: u64) -> Vec<Range<u64>> {
        let per = (max / GROUP).max(1);
        let mut out = Vec::new();
        let mut g = 0;
        while g < self.groups {
            if self.has(g) {
                g += 1;
                continue;
            }
            let start = g;
            g += 1;
            while g < self.groups && !self.has(g) && !g.is_multiple_of(per) {
                g += 1;
            }
            out.push(start * GROUP..(g * GROUP).min(self.size));
        }
        out
    }

    /// A checkpoint on its own thread failed: the download cannot go on.
    fn failure(&self) -> Result<(), BlobError> {
        match self.failed.get() {
            Some(f) => Err(f.into()),
            None => Ok(()),
        }
    }

    /// Makes the bytes verified so far durable, then records them (so the
    /// record never claims bytes a crash could lose). Waits for a
    /// checkpoint running on its own thread; a record is never replaced by
    /// an older snapshot.
    pub fn checkpoint(&mut self) -> Result<(), BlobError> {
        self.failure()?;
        let mut record = self.record.lock().unwrap_or_else(|e| e.into_inner());
        if self.unsynced == 0 && record.written >= self.taken {
            return Ok(());
        }
        self.taken += 1;
        let files = [
            (&self.data.0, self.data_path.as_path()),
            (&self.tree.0, self.tree_path.as_path()),
        ];
        record
            .save(files, &self.verified, self.taken)
            .map_err(|f| BlobError::from(&f))?;
        self.unsynced = 0;
        Ok(())
    }

    /// [`Partial::checkpoint`] on a thread of its own: the bits verified
    /// now are saved once the data written so far is synced, while more
    /// arrives. One at a time: while one runs, the next waits for the next
    /// response (or the daemon's tick).
    pub fn checkpoint_in_background(&mut self) -> Result<(), BlobError> {
        self.failure()?;
        if self.unsynced == 0 || self.syncing.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let done = Done(Arc::clone(&self.syncing));
        let (Ok(data), Ok(tree)) = (self.data.0.try_clone(), self.tree.0.try_clone()) else {
            // No second handle (out of file descriptors): here and now.
            drop(done);
            return self.checkpoint();
        };
        self.taken += 1;
        let seq = self.taken;
        let bits = self.verified.clone();
        let record = Arc::clone(&self.record);
        let failed = Arc::clone(&self.failed);
        let (data_path, tree_path) = (self.data_path.clone(), self.tree_path.clone());
        let unsynced = std::mem::take(&mut self.unsynced);
        let run = move || {
            let _done = done;
            let mut record = record.lock().unwrap_or_else(|e| e.into_inner());
            let files = [(&data, data_path.as_path()), (&tree, tree_path.as_path())];
            if let Err(f) = record.save(files, &bits, seq) {
                tracing::warn!(error = %BlobError::from(&f), "cannot save a download's progress");
                let _ = failed.set(f);
            }
        };
        if std::thread::Builder::new()
            .name("convene-part-sync".into())
            .spawn(run)
            .is_err()
        {
            // No thread to be had: here and now (the closure, and the flag
            // with it, went with the refusal).
            self.unsynced = unsynced;
            return self.checkpoint();
        }
        Ok(())
    }

    /// No record is written after this (by a checkpoint still running on
    /// its own thread either); returns the record's path.
    fn close(&self) -> PathBuf {
        let mut record = self.record.lock().unwrap_or_else(|e| e.into_inner());
        record.closed = true;
        record.path.clone()
    }

    /// Takes a response to a request for `range`: writes every group that
    /// verifies, stops at the first that does not. Returns the bytes newly
    /// verified, or why the response was refused (after keeping what
    /// verified before the fault).
    pub fn apply(&mut self, range: &Range<u64>, encoded: &[u8]) -> Result<u64, (u64, Refused)> {
        if let Err(e) = self.failure() {
            return Err((0, Refused::Local(e)));
        }
        let ranges = chunks(range);
        let shape = tree(self.size);
        let iter = DecodeResponseIter::new(self.root, shape, encoded, &ranges);
        let mut fault = None;
        // Parents that verified, gathered into runs of neighbours in the
        // tree's file (a range's parents are mostly one run): a write each.
        let mut parents = Parents::default();
        // Groups that verified and were written: marked once the tree
        // above them is written too.
        let mut groups = Vec::new();
        for item in iter {
            match item {
                Ok(BaoContentItem::Parent(p)) => {
                    if let Some(i) = shape.pre_order_offset(p.node) {
                        parents.push(i * 64, &p.pair);
                    }
                }
                Ok(BaoContentItem::Leaf(leaf)) => {
                    if let Err(e) = self.data.write_all_at(leaf.offset, &leaf.data) {
                        fault = Some(Refused::Local(io_err("write", &self.data_path)(e)));
                        break;
                    }
                    // Only a whole group counts (a range asked for a
                    // download of another size can end inside one here:
                    // its bytes are right, the rest of the group unseen).
                    let whole = GROUP.min(self.size.saturating_sub(leaf.offset));
                    if leaf.offset.is_multiple_of(GROUP) && leaf.data.len() as u64 == whole {
                        groups.push((leaf.offset / GROUP, whole));
                    }
                }
                Err(e) => {
                    fault = Some(match e {
                        DecodeError::Io(e) => {
                            Refused::Violation(format!("unreadable response: {e}"))
                        }
                        DecodeError::LeafNotFound(_) | DecodeError::ParentNotFound(_) => {
                            Refused::Violation("a response cut short".into())
                        }
                        e => Refused::Violation(format!(
                            "content that does not match its hash ({e})"
                        )),
                    });
                    break;
                }
            }
        }
        // The groups verified here count only once the tree above them is
        // written (and a checkpoint syncs both before recording them).
        if let Err(e) = parents.write(&mut self.tree) {
            return Err((0, Refused::Local(io_err("write", &self.tree_path)(e))));
        }
        let mut added = 0;
        for (g, len) in groups {
            if !self.has(g) {
                self.set(g);
                added += len;
            }
        }
        self.unsynced += added;
        if self.unsynced >= CHECKPOINT
            && let Err(e) = self.checkpoint_in_background()
        {
            return Err((added, Refused::Local(e)));
        }
        match fault {
            None => Ok(added),
            Some(f) => Err((added, f)),
        }
    }

    /// Checks the download's hash tree whole (every pair hashes to the one
    /// above it, up to the root; every group was checked against it as it
    /// arrived) and moves the bytes and the tree into the store. A tree
    /// that does not hold (a disk that lost writes) removes the download,
    /// to start over.
    pub fn finish(mut self) -> Result<(), BlobError> {
        // Nothing more to record: the download is moved or removed below.
        self.unsynced = 0;
        let record_path = self.close();
        self.failure()?;
        for (file, path) in [
            (&self.data.0, &self.data_path),
            (&self.tree.0, &self.tree_path),
        ] {
            file.sync_all().map_err(io_err("sync", path))?;
        }
        let dest = self.store.path(&self.hash)?;
        let ob_dest = self.store.outboard_path(&self.hash)?;
        let fail = |e: BlobError| {
            let _ = self.store.remove_partial(&self.hash);
            Err(e)
        };
        match self.tree_holds() {
            Ok(true) => {}
            Ok(false) => {
                return fail(BlobError::HashMismatch {
                    expected: self.hash.clone(),
                    actual: "(a download whose hash tree changed on disk)".into(),
                });
            }
            Err(e) => return fail(io_err("read", &self.tree_path)(e)),
        }
        let dir = dest.parent().expect("a hash path has a folder");
        if let Err(e) = create_private_dir(dir) {
            return fail(io_err("create", dir)(e));
        }
        if let Err(e) = std::fs::rename(&self.tree_path, &ob_dest) {
            return fail(io_err("move into place", &ob_dest)(e));
        }
        if let Err(e) = std::fs::rename(&self.data_path, &dest) {
            let _ = std::fs::remove_file(&ob_dest);
            return fail(io_err("move into place", &dest)(e));
        }
        let _ = std::fs::remove_file(&record_path);
        sync_dir(dir);
        Ok(())
    }

    /// Whether every pair in the tree file hashes to the one above it, up
    /// to the root (one BLAKE3 compression per 16 KiB of the file). A file
    /// of one group or none has no tree: its bytes are hashed (at most
    /// 16 KiB), so an empty download of a hash that is not the empty
    /// file's never passes.
    fn tree_holds(&self) -> io::Result<bool> {
        if self.size <= GROUP {
            let bytes = std::fs::read(&self.data_path)?;
            return Ok(bytes.len() as u64 == self.size && blake3::hash(&bytes) == self.root);
        }
        let ob = PreOrderOutboard {
            root: self.root,
            tree: tree(self.size),
            data: Positioned(File::open(&self.tree_path)?),
        };
        let whole = ChunkRanges::from(..ChunkNum(self.size.div_ceil(1024)));
        let mut end = ChunkNum(0);
        for valid in valid_outboard_ranges(ob, &whole) {
            let valid = valid?;
            if valid.start != end {
                return Ok(false);
            }
            end = valid.end;
        }
        Ok(end.0 >= self.size.div_ceil(1024))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    const MIB: u64 = 1024 * 1024;

    /// A store holding a file a little over three checkpoints long, an
    /// empty store to fetch it into, the file, its hash, and the fetching
    /// side's record path.
    fn setup() -> (
        [tempfile::TempDir; 2],
        BlobStore,
        BlobStore,
        Vec<u8>,
        String,
        PathBuf,
    ) {
        let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
        let (a, b) = (
            BlobStore::new(dirs[0].path()),
            BlobStore::new(dirs[1].path()),
        );
        let mut bytes = Vec::new();
        let mut i = 0u64;
        while bytes.len() < 3 * CHECKPOINT as usize + 12_345 {
            bytes.extend_from_slice(blake3::hash(&i.to_le_bytes()).as_bytes());
            i += 1;
        }
        bytes.truncate(3 * CHECKPOINT as usize + 12_345);
        let hash = a.put(&mut &bytes[..], u64::MAX, None).unwrap().hash;
        let [_, record, _] = b.part_paths(&hash).unwrap();
        (dirs, a, b, bytes, hash, record)
    }

    fn take(
        a: &BlobStore,
        hash: &str,
        partial: &mut Partial,
        range: Range<u64>,
    ) -> Result<u64, (u64, Refused)> {
        let (_, encoded) = a.encode_range(hash, range.clone()).unwrap().unwrap();
        partial.apply(&range, &encoded)
    }

    /// Every range still missing, from `a`.
    fn take_rest(a: &BlobStore, hash: &str, partial: &mut Partial) {
        for range in partial.missing(MIB) {
            take(a, hash, partial, range).unwrap();
        }
    }

    /// Groups the record file on disk says are verified.
    fn recorded(path: &Path) -> u32 {
        std::fs::read(path)
            .unwrap_or_default()
            .iter()
            .map(|b| b.count_ones())
            .sum()
    }

    #[test]
    fn progress_is_recorded_while_the_download_goes_on_and_no_record_outlives_it() {
        let (_dirs, a, b, bytes, hash, record_path) = setup();
        let size = bytes.len() as u64;
        let mut partial = b.partial(&hash, size).unwrap();
        // One checkpoint's worth, and one range more: the record is saved
        // by its own thread, without the download waiting for it.
        for start in (0..CHECKPOINT + MIB).step_by(MIB as usize) {
            take(&a, &hash, &mut partial, start..start + MIB).unwrap();
        }
        let at_checkpoint = (CHECKPOINT / GROUP) as u32;
        let deadline = Instant::now() + Duration::from_secs(30);
        while recorded(&record_path) < at_checkpoint {
            assert!(
                Instant::now() < deadline,
                "the checkpoint was never recorded"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        // The bits it saved are those that had verified when it began.
        assert_eq!(recorded(&record_path), at_checkpoint);

        take_rest(&a, &hash, &mut partial);
        assert!(partial.is_complete());
        partial.finish().unwrap();
        assert!(b.has(&hash));
        assert!(
            !record_path.exists(),
            "a finished download leaves no record"
        );
        assert_eq!(std::fs::read(b.path(&hash).unwrap()).unwrap(), bytes);
    }

    /// The tree a download writes from the parents it verified.
    fn tree_of(b: &BlobStore, hash: &str) -> Vec<u8> {
        std::fs::read(b.outboard_path(hash).unwrap()).unwrap()
    }

    #[test]
    fn a_fetched_file_keeps_the_tree_it_verified_without_hashing_the_file_again() {
        let (_dirs, a, b, bytes, hash, _) = setup();
        let size = bytes.len() as u64;
        let mut partial = b.partial(&hash, size).unwrap();
        // Ranges out of order, as several sources answer them.
        let mut ranges = partial.missing(MIB);
        ranges.reverse();
        ranges.swap(0, 2);
        for range in ranges {
            take(&a, &hash, &mut partial, range).unwrap();
        }
        partial.finish().unwrap();
        assert_eq!(std::fs::read(b.path(&hash).unwrap()).unwrap(), bytes);
        // The same tree the source computed from the whole file ...
        assert_eq!(tree_of(&b, &hash), tree_of(&a, &hash));
        // ... and this node serves from it: a third node verifies it.
        let c_dir = tempfile::tempdir().unwrap();
        let c = BlobStore::new(c_dir.path());
        let mut third = c.partial(&hash, size).unwrap();
        take_rest(&b, &hash, &mut third);
        third.finish().unwrap();
        assert_eq!(std::fs::read(c.path(&hash).unwrap()).unwrap(), bytes);
    }

    #[test]
    fn a_resumed_download_keeps_its_tree_and_one_without_a_tree_starts_over() {
        let (_dirs, a, b, bytes, hash, _) = setup();
        let size = bytes.len() as u64;
        let mut partial = b.partial(&hash, size).unwrap();
        for start in (0..2 * MIB).step_by(MIB as usize) {
            take(&a, &hash, &mut partial, start..start + MIB).unwrap();
        }
        drop(partial);
        // The daemon restarts: the rest comes in another session, and the
        // parents the first one wrote are still there at the end.
        let mut partial = b.partial(&hash, size).unwrap();
        assert_eq!(partial.verified_bytes(), 2 * MIB);
        take_rest(&a, &hash, &mut partial);
        partial.finish().unwrap();
        assert_eq!(tree_of(&b, &hash), tree_of(&a, &hash));

        // A download left by a version that kept no tree beside it: its
        // record cannot be trusted to have one, so it starts over.
        std::fs::remove_file(b.path(&hash).unwrap()).unwrap();
        std::fs::remove_file(b.outboard_path(&hash).unwrap()).unwrap();
        let mut partial = b.partial(&hash, size).unwrap();
        take(&a, &hash, &mut partial, 0..MIB).unwrap();
        drop(partial);
        let [_, _, tree_path] = b.part_paths(&hash).unwrap();
        std::fs::remove_file(&tree_path).unwrap();
        let partial = b.partial(&hash, size).unwrap();
        assert_eq!(partial.verified_bytes(), 0);
    }

    /// Flips one byte of the file at `path`, at `at`.
    fn flip(path: &Path, at: u64) {
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .unwrap();
        let mut byte = [0u8];
        std::os::unix::fs::FileExt::read_exact_at(&f, &mut byte, at).unwrap();
        std::os::unix::fs::FileExt::write_all_at(&f, &[byte[0] ^ 1], at).unwrap();
    }

    #[test]
    fn a_file_damaged_on_disk_is_not_served_and_is_let_go() {
        let (_dirs, a, _, _, hash, _) = setup();
        flip(&a.path(&hash).unwrap(), 2 * MIB + 5);
        // The range holding the damage is refused, and the copy moved
        // aside: no longer counted as held, it is fetched again from a member.
        assert!(a.encode_range(&hash, 2 * MIB..3 * MIB).unwrap().is_none());
        assert!(!a.has(&hash));
        assert!(!a.outboard_path(&hash).unwrap().exists());
        assert!(a.damaged_path(&hash).unwrap().is_file(), "kept aside");
        assert!(a.encode_range(&hash, 0..MIB).unwrap().is_none());
        // Erasing the entry takes the damaged copy too.
        assert!(!a.remove(&hash).unwrap());
        assert!(!a.damaged_path(&hash).unwrap().exists());
    }

    #[test]
    fn requests_that_find_a_damaged_tree_at_once_are_all_served() {
        let (_dirs, a, _, bytes, hash, _) = setup();
        let tree = a.outboard_path(&hash).unwrap();
        let ranges: Vec<Range<u64>> = (0..bytes.len() as u64)
            .step_by(MIB as usize)
            .map(|s| s..(s + MIB).min(bytes.len() as u64))
            .collect();
        for round in 0..20 {
            // The tree damaged everywhere (a stale or scribbled cache):
            // every request finds it so and makes it again, at once.
            let len = std::fs::metadata(&tree).unwrap().len();
            std::fs::write(&tree, vec![round as u8; len as usize]).unwrap();
            std::thread::scope(|s| {
                for r in &ranges {
                    let (a, hash) = (&a, &hash);
                    s.spawn(move || {
                        assert!(
                            a.encode_range(hash, r.clone()).unwrap().is_some(),
                            "a held file answered as not held"
                        );
                    });
                }
            });
            assert!(a.has(&hash), "a sound file was moved aside");
        }
    }

    #[test]
    fn only_the_copy_found_damaged_is_moved_aside() {
        let (_dirs, a, _, bytes, hash, _) = setup();
        let path = a.path(&hash).unwrap();
        // Read while damaged; by the time it is found out, a sound copy
        // has taken its place (fetched again meanwhile): that one stays.
        flip(&path, 5);
        let read = File::open(&path).unwrap();
        let sound = a.root.join("sound");
        std::fs::write(&sound, &bytes).unwrap();
        std::fs::rename(&sound, &path).unwrap();
        let err = a.discard_damaged(&hash, &read);
        assert!(
            matches!(err, BlobError::Damaged { aside: None, .. }),
            "{err}"
        );
        assert!(a.has(&hash));
        assert!(!a.damaged_path(&hash).unwrap().exists());
        assert!(a.encode_range(&hash, 0..MIB).unwrap().is_some());
    }

    #[test]
    fn a_hash_tree_damaged_on_disk_is_made_again_from_the_file() {
        let (_dirs, a, b, bytes, hash, _) = setup();
        let tree = a.outboard_path(&hash).unwrap();
        let len = std::fs::metadata(&tree).unwrap().len();
        flip(&tree, len / 2);
        // The file itself is sound: it is still held and served, from a
        // tree made again, and what is served verifies.
        let mut partial = b.partial(&hash, bytes.len() as u64).unwrap();
        take_rest(&a, &hash, &mut partial);
        assert!(a.has(&hash));
        partial.finish().unwrap();
        assert_eq!(std::fs::read(b.path(&hash).unwrap()).unwrap(), bytes);
    }

    #[test]
    fn a_tree_damaged_on_disk_is_caught_before_the_file_is_stored() {
        let (_dirs, a, b, bytes, hash, _) = setup();
        let size = bytes.len() as u64;
        let mut partial = b.partial(&hash, size).unwrap();
        take_rest(&a, &hash, &mut partial);
        // A parent deep in the tree lost on disk (zeros where it was).
        let [_, _, tree_path] = b.part_paths(&hash).unwrap();
        let damaged = std::fs::OpenOptions::new()
            .write(true)
            .open(&tree_path)
            .unwrap();
        std::os::unix::fs::FileExt::write_all_at(&damaged, &[0; 64], 64 * 40).unwrap();
        drop(damaged);
        assert!(matches!(
            partial.finish(),
            Err(BlobError::HashMismatch { .. })
        ));
        assert!(
            !b.has(&hash),
            "a download whose tree does not hold is not stored"
        );
        assert!(
            b.part_paths(&hash).unwrap().iter().all(|p| !p.exists()),
            "it starts over"
        );
    }

    /// Two stores, and a file of `size` bytes held by the first.
    fn pair(
        size: u64,
    ) -> (
        [tempfile::TempDir; 2],
        BlobStore,
        BlobStore,
        Vec<u8>,
        String,
    ) {
        let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
        let (a, b) = (
            BlobStore::new(dirs[0].path()),
            BlobStore::new(dirs[1].path()),
        );
        let bytes: Vec<u8> = (0..size).map(|i| (i * 7 % 251 + 1) as u8).collect();
        let hash = a.put(&mut &bytes[..], u64::MAX, None).unwrap().hash;
        (dirs, a, b, bytes, hash)
    }

    #[test]
    fn a_range_asked_for_another_size_never_marks_a_group_it_did_not_fill() {
        let size = 200 * 1024;
        let (_dirs, a, b, bytes, hash) = pair(size);
        let mut partial = b.partial(&hash, size).unwrap();
        // An answer to a range asked for an earlier download of the same
        // hash that an entry declared 100 KiB long: it ends inside a group
        // of this one. Its bytes verify, but the group is not all there.
        let stale = 96 * 1024..100 * 1024;
        take(&a, &hash, &mut partial, stale).unwrap();
        assert_eq!(partial.verified_bytes(), 0);
        take_rest(&a, &hash, &mut partial);
        partial.finish().unwrap();
        assert_eq!(std::fs::read(b.path(&hash).unwrap()).unwrap(), bytes);
    }

    #[test]
    fn a_download_of_one_group_or_none_is_checked_against_its_hash() {
        // An entry that says a file of someone else's hash is empty: an
        // empty download needs no request and must not pass for it.
        let (_dirs, _a, b, _bytes, hash) = pair(5000);
        let empty = b.partial(&hash, 0).unwrap();
        assert!(empty.is_complete());
        assert!(matches!(
            empty.finish(),
            Err(BlobError::HashMismatch { .. })
        ));
        assert!(!b.has(&hash));
        // The empty file's own hash, and a one-group file, do pass.
        let nothing = blake3::hash(b"").to_hex().to_string();
        b.partial(&nothing, 0).unwrap().finish().unwrap();
        assert!(b.has(&nothing));
        let (_dirs, a, b, bytes, hash) = pair(5000);
        let mut partial = b.partial(&hash, 5000).unwrap();
        take(&a, &hash, &mut partial, 0..5000).unwrap();
        partial.finish().unwrap();
        assert_eq!(std::fs::read(b.path(&hash).unwrap()).unwrap(), bytes);
    }

    #[test]
    fn starting_a_download_over_lets_its_old_record_go_first() {
        let (_dirs, a, b, _bytes, hash, record_path) = setup();
        let size = 3 * CHECKPOINT + 12_345;
        let mut partial = b.partial(&hash, size).unwrap();
        take(&a, &hash, &mut partial, 0..MIB).unwrap();
        drop(partial);
        assert!(recorded(&record_path) > 0);
        // Its tree is gone, so it starts over; and starting over fails part
        // way (the tree cannot be made). What is left must claim nothing:
        // a record of groups beside emptied bytes would pass them off.
        let [_, _, tree_path] = b.part_paths(&hash).unwrap();
        std::fs::remove_file(&tree_path).unwrap();
        std::fs::create_dir(&tree_path).unwrap();
        assert!(b.partial(&hash, size).is_err());
        assert_eq!(recorded(&record_path), 0);
    }

    #[test]
    fn a_download_dropped_while_its_checkpoint_runs_keeps_everything_it_verified() {
        let (_dirs, a, b, bytes, hash, _) = setup();
        let size = bytes.len() as u64;
        for _ in 0..5 {
            b.remove_partial(&hash).unwrap();
            let mut partial = b.partial(&hash, size).unwrap();
            // Crossing the checkpoint starts one on its own thread; the
            // download is dropped at once, before it can have finished.
            for start in (0..CHECKPOINT + 2 * MIB).step_by(MIB as usize) {
                take(&a, &hash, &mut partial, start..start + MIB).unwrap();
            }
            drop(partial);
            // A restart resumes from every group that verified: the
            // thread's older snapshot never replaced the drop's record.
            let partial = b.partial(&hash, size).unwrap();
            assert_eq!(partial.verified_bytes(), CHECKPOINT + 2 * MIB);
            drop(partial);
            // Removed (an erasure): nothing comes back.
            b.remove_partial(&hash).unwrap();
            assert!(b.part_paths(&hash).unwrap().iter().all(|p| !p.exists()));
        }
    }

    #[test]
    fn a_checkpoint_that_fails_on_its_own_thread_fails_the_download() {
        let (_dirs, a, b, bytes, hash, record_path) = setup();
        let size = bytes.len() as u64;
        let mut partial = b.partial(&hash, size).unwrap();
        // The record cannot be written (a folder in its place).
        std::fs::remove_file(&record_path).unwrap();
        std::fs::create_dir(&record_path).unwrap();
        let mut refused = None;
        for start in (0..size).step_by(MIB as usize) {
            match take(&a, &hash, &mut partial, start..(start + MIB).min(size)) {
                Ok(_) => {}
                Err((_, why)) => {
                    refused = Some(why);
                    break;
                }
            }
        }
        match refused {
            // Seen while the download went on ...
            Some(why) => assert!(matches!(why, Refused::Local(_)), "{why}"),
            // ... or, if the thread was slower than the last answer, when
            // it is finished: never moved into the store.
            None => assert!(partial.finish().is_err()),
        }
        assert!(
            !b.has(&hash),
            "a download whose progress failed to save is not held"
        );
    }
}
