//! Bundles: signed changes on a USB stick or in an email, for nodes that
//! rarely (or never) connect.
//!
//! # Format (version 2)
//!
//! ```text
//! "CONVENE-BUNDLE\n"  magic, 15 bytes
//! version             1 byte: 2
//! length              8 bytes, little-endian: bytes of the compressed body
//! checksum            32 bytes: blake3 of the compressed body
//! body                deflate(records)
//!
//! record              4 bytes, little-endian: length n; n bytes of postcard
//! records             Header { community, created, exported_by, for_org,
//!                              tombstones, changes }
//!                     `tombstones` × WireTombstone
//!                     `changes` × WireChange
//!                     and then the end of the deflate stream
//! ```
//!
//! # Bounded memory
//!
//! Anyone can make a bundle (the checksum has no key), so reading one must
//! cost little whatever it holds. A bundle is never inflated whole: the
//! body is read as a stream, one record at a time, and every record has a
//! cap before anything is allocated for it ([`MAX_HEADER_RECORD`],
//! [`MAX_TOMBSTONE_RECORD`], [`MAX_CHANGE_RECORD`]: a change that could
//! not travel in one sync message cannot travel in a bundle either). The
//! header declares how many records follow (at most [`MAX_TOMBSTONES`]
//! and [`MAX_CHANGES`]); exactly that many must come, and then the
//! stream must end: one byte more, inflated or compressed, refuses the
//! bundle. Nothing is sized from a declared count. So a bomb is refused
//! after inflating at most one record past its header, and what a valid
//! bundle costs is one batch, not the bundle.
//!
//! Importing reads the file three times, never holding more than a batch:
//! the checksum over the compressed bytes (truncation, corruption), then
//! every signature (one bad signature refuses the whole bundle before
//! anything is applied), then the changes again, applied in batches of at
//! most [`BATCH_CHANGES`] changes and [`BATCH_BYTES`] bytes through
//! exactly the checks sync applies (permissions, membership, tombstones),
//! so importing a bundle is as safe as syncing, and importing it twice
//! changes nothing. Tombstones come first, so an erased entry's changes
//! are refused rather than applied and then erased.
//!
//! # Files
//!
//! `export --with-files` wraps an unchanged bundle in a container that
//! also carries attachment bytes, each checked against its hash on import;
//! see [`files`].
//!
//! # Version 1
//!
//! Version 1 bodies were one postcard `Body`, which cannot be read in
//! pieces. They are still read, but inflated only up to [`MAX_V1_BODY`];
//! a larger one is refused before more is allocated, with a request to
//! export it again with this Convene.

pub mod files;
mod import;

pub use import::{Imported, Stage};

use std::collections::{BTreeSet, HashSet};
use std::io::{BufReader, Read, Take, Write};

use convene_model::{DocumentId, OrgId};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::NodeError;
use crate::node::{Node, OnProgress, now};
use crate::sync::catalogue::Class;
use crate::sync::wire::{WireChange, WireTombstone};

const MAGIC: &[u8] = b"CONVENE-BUNDLE\n";
/// The version this Convene writes.
const VERSION: u8 = 2;
const V1: u8 = 1;
const HEADER: usize = 15 + 1 + 8 + 32;
/// Largest header record.
pub const MAX_HEADER_RECORD: u32 = 4 * 1024;
/// Largest tombstone record (its reason is at most 1,000 bytes).
pub const MAX_TOMBSTONE_RECORD: u32 = 2 * 1024;
/// Largest change record: the largest sync message.
pub const MAX_CHANGE_RECORD: u32 = crate::sync::wire::MAX_MESSAGE_BYTES as u32;
/// Most changes a bundle may declare.
pub const MAX_CHANGES: u64 = 1 << 24;
/// Most tombstones a bundle may declare.
pub const MAX_TOMBSTONES: u64 = 1 << 20;
/// Most changes applied at once.
pub const BATCH_CHANGES: usize = 1024;
/// Most change bytes applied at once (one larger change is a batch alone).
pub const BATCH_BYTES: usize = 4 * 1024 * 1024;
/// Largest version-1 body read (inflated).
pub const MAX_V1_BODY: u64 = 32 * 1024 * 1024;

/// Why a bundle was refused.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("this is not a Convene bundle")]
    NotABundle,
    #[error(
        "the bundle is version {0}; this Convene reads versions 1 and {VERSION}: upgrade convene"
    )]
    TooNew(u8),
    #[error("the bundle is truncated ({have} of {want} bytes): copy it again")]
    Truncated { have: u64, want: u64 },
    #[error("the bundle is damaged (its checksum does not match): copy it again")]
    Damaged,
    #[error("the bundle's content cannot be read: {0}")]
    Undecodable(String),
    #[error(
        "the bundle is version 1 and inflates to more than {} MiB, more than this Convene reads of that version: export it again with this Convene (version 2 bundles have no such limit)",
        MAX_V1_BODY >> 20
    )]
    V1TooLarge,
    #[error("the bundle was altered: {0} of its signatures do not verify; nothing was imported")]
    Tampered(usize),
    #[error(
        "{0} of the bundle's changes declare more operations than the bundle's size allows; nothing was imported (a bundle made with --since that deletes much long text may not fit: export without --since)"
    )]
    Oversized(usize),
    #[error("the bundle cannot be read: {0}")]
    Unreadable(std::io::Error),
}

/// What a bundle carries, whole (for exports and tests; imports read
/// [`Reader`] items one at a time).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Body {
    /// The exporting node's community, if any.
    pub community: Option<[u8; 16]>,
    /// When it was made (unix ms).
    pub created: i64,
    /// Node id of the exporter.
    pub exported_by: String,
    /// The organisation it was made for, if any.
    pub for_org: Option<String>,
    pub changes: Vec<WireChange>,
    pub tombstones: Vec<WireTombstone>,
}

/// The first record of a version 2 body: who made it, and how many
/// records follow.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub community: Option<[u8; 16]>,
    pub created: i64,
    pub exported_by: String,
    pub for_org: Option<String>,
    /// Tombstone records that follow.
    pub tombstones: u64,
    /// Change records that follow the tombstones.
    pub changes: u64,
}

/// One record after the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Tombstone(WireTombstone),
    Change(WireChange),
}

/// What to leave out of an export.
#[derive(Debug, Clone, Default)]
pub enum Since {
    #[default]
    Everything,
    /// Changes this node stored at or after this time (unix ms).
    Time(i64),
    /// Changes not already in this earlier bundle.
    Bundle(BTreeSet<[u8; 32]>),
}

/// Encodes a body as bundle bytes (version 2).
pub fn encode(body: &Body) -> Vec<u8> {
    encode_with(body, &mut |_, _| {})
}

/// [`encode`], telling `on` how many of the body's records (tombstones
/// and changes) are compressed.
pub fn encode_with(body: &Body, on: OnProgress<'_>) -> Vec<u8> {
    let header = Header {
        community: body.community,
        created: body.created,
        exported_by: body.exported_by.clone(),
        for_org: body.for_org.clone(),
        tombstones: body.tombstones.len() as u64,
        changes: body.changes.len() as u64,
    };
    let items = (body.tombstones.iter().cloned().map(Item::Tombstone))
        .chain(body.changes.iter().cloned().map(Item::Change));
    encode_items(&header, items, on)
}

/// Encodes a header and the items it declares (tombstones first), one at
/// a time: the items need not all be in memory. Items that do not match
/// the header's counts make a bundle that readers refuse.
pub fn encode_items(
    header: &Header,
    items: impl IntoIterator<Item = Item>,
    on: OnProgress<'_>,
) -> Vec<u8> {
    fn record(z: &mut impl Write, value: &impl Serialize) {
        let bytes = postcard::to_stdvec(value).expect("bundles encode");
        z.write_all(&(bytes.len() as u32).to_le_bytes())
            .and_then(|()| z.write_all(&bytes))
            .expect("writing to memory");
    }
    let total = header.tombstones + header.changes;
    let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    record(&mut z, header);
    let mut done = 0;
    for item in items {
        match &item {
            Item::Tombstone(t) => record(&mut z, t),
            Item::Change(c) => record(&mut z, c),
        }
        done += 1;
        if done % 1024 == 0 {
            on(done, total);
        }
    }
    on(done, total);
    let compressed = z.finish().expect("writing to memory");
    wrap(VERSION, &compressed)
}

/// A bundle of `version` whose inflated body is whatever `write` writes,
/// with a correct length and checksum. For tests and fuzz seeds of
/// hostile bundles: the checksum has no key, so anyone can do this.
#[doc(hidden)]
pub fn craft(
    version: u8,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> std::io::Result<Vec<u8>> {
    let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    write(&mut z)?;
    Ok(wrap(version, &z.finish()?))
}

/// The outer header and the compressed body.
fn wrap(version: u8, compressed: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + compressed.len());
    out.extend_from_slice(MAGIC);
    out.push(version);
    out.extend_from_slice(&(compressed.len() as u64).to_le_bytes());
    out.extend_from_slice(blake3::hash(compressed).as_bytes());
    out.extend_from_slice(compressed);
    out
}

/// Reads bundle bytes whole, checking magic, version, length, checksum
/// and every limit. For bytes already in memory (tests, fuzzing); files
/// are imported with [`Node::import_bundle_from`], which holds one batch.
pub fn decode(bytes: &[u8]) -> Result<Body, BundleError> {
    check(bytes)?;
    let mut reader = Reader::open(bytes)?;
    let h = reader.header().clone();
    let mut body = Body {
        community: h.community,
        created: h.created,
        exported_by: h.exported_by,
        for_org: h.for_org,
        changes: Vec::new(),
        tombstones: Vec::new(),
    };
    while let Some(item) = reader.next_item()? {
        match item {
            Item::Tombstone(t) => body.tombstones.push(t),
            Item::Change(c) => body.changes.push(c),
        }
    }
    Ok(body)
}

/// Reads the fixed header: magic, version, body length, checksum.
fn read_fixed(input: &mut impl Read) -> Result<(u8, u64, [u8; 32]), BundleError> {
    let mut fixed = [0u8; HEADER];
    let n = read_full(input, &mut fixed).map_err(BundleError::Unreadable)?;
    if n < MAGIC.len() || &fixed[..MAGIC.len()] != MAGIC {
        return Err(BundleError::NotABundle);
    }
    if n < HEADER {
        return Err(BundleError::Truncated {
            have: n as u64,
            want: HEADER as u64,
        });
    }
    let version = fixed[MAGIC.len()];
    match version {
        V1 | VERSION => {}
        0 => return Err(BundleError::NotABundle),
        v => return Err(BundleError::TooNew(v)),
    }
    let len = u64::from_le_bytes(fixed[16..24].try_into().expect("8 bytes"));
    let checksum = fixed[24..56].try_into().expect("32 bytes");
    Ok((version, len, checksum))
}

/// Reads until `buf` is full or the input ends; returns how much was read.
fn read_full(input: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match input.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Checks a bundle's outer header, length and checksum, reading the
/// compressed body once in small pieces (nothing is inflated).
pub fn check(mut input: impl Read) -> Result<(), BundleError> {
    let (_, len, checksum) = read_fixed(&mut input)?;
    let mut hashing = Hashing::new(&mut input);
    let got = std::io::copy(&mut (&mut hashing).take(len), &mut std::io::sink())
        .map_err(BundleError::Unreadable)?;
    if got < len {
        return Err(BundleError::Truncated {
            have: HEADER as u64 + got,
            want: HEADER as u64 + len,
        });
    }
    let hash = hashing.hasher.finalize();
    if read_full(&mut input, &mut [0u8; 1]).map_err(BundleError::Unreadable)? > 0 {
        return Err(BundleError::Damaged);
    }
    if hash.as_bytes() != &checksum {
        return Err(BundleError::Damaged);
    }
    Ok(())
}

/// A reader that hashes what passes through it.
struct Hashing<R> {
    inner: R,
    hasher: blake3::Hasher,
}

impl<R> Hashing<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: blake3::Hasher::new(),
        }
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

type Inflate<R> = flate2::bufread::DeflateDecoder<BufReader<Take<Hashing<R>>>>;

/// Reads a bundle one record at a time, in bounded memory (see the module
/// docs). [`Reader::next_item`] gives the tombstones, then the changes,
/// then `None` once the end of the body, its length and its checksum have
/// been checked.
#[derive(Debug)]
pub struct Reader<R: Read> {
    header: Header,
    source: Source<R>,
    /// Records still to come, as declared.
    tombstones_left: u64,
    changes_left: u64,
    /// Scratch space for one record, reused.
    buf: Vec<u8>,
}

enum Source<R: Read> {
    V2 {
        /// Boxed: the inflater's state is large beside the V1 iterators.
        inflate: Box<Inflate<R>>,
        len: u64,
        checksum: [u8; 32],
        finished: bool,
    },
    /// A version 1 body, decoded (it is at most [`MAX_V1_BODY`]).
    V1 {
        tombstones: std::vec::IntoIter<WireTombstone>,
        changes: std::vec::IntoIter<WireChange>,
    },
}

impl<R: Read> std::fmt::Debug for Source<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Source::V2 { .. } => "V2",
            Source::V1 { .. } => "V1",
        })
    }
}

fn undecodable(e: impl std::fmt::Display) -> BundleError {
    BundleError::Undecodable(e.to_string())
}

impl<R: Read> Reader<R> {
    /// Reads the outer header and the body's header record. The checksum
    /// is checked at the end (see [`check`] to check it first).
    pub fn open(mut input: R) -> Result<Self, BundleError> {
        let (version, len, checksum) = read_fixed(&mut input)?;
        let body = Hashing::new(input).take(len);
        let mut inflate =
            flate2::bufread::DeflateDecoder::new(BufReader::with_capacity(64 * 1024, body));
        if version == V1 {
            return Self::open_v1(inflate, len, checksum);
        }
        let mut buf = Vec::new();
        let header: Header = record(&mut inflate, &mut buf, MAX_HEADER_RECORD, "header")?;
        if header.tombstones > MAX_TOMBSTONES || header.changes > MAX_CHANGES {
            return Err(BundleError::Undecodable(format!(
                "it declares {} erasures and {} changes (at most {MAX_TOMBSTONES} and {MAX_CHANGES})",
                header.tombstones, header.changes
            )));
        }
        Ok(Self {
            tombstones_left: header.tombstones,
            changes_left: header.changes,
            header,
            source: Source::V2 {
                inflate: Box::new(inflate),
                len,
                checksum,
                finished: false,
            },
            buf,
        })
    }

    fn open_v1(mut inflate: Inflate<R>, len: u64, checksum: [u8; 32]) -> Result<Self, BundleError> {
        let mut raw = Vec::new();
        (&mut inflate)
            .take(MAX_V1_BODY)
            .read_to_end(&mut raw)
            .map_err(undecodable)?;
        if raw.len() as u64 == MAX_V1_BODY
            && read_full(&mut inflate, &mut [0u8; 1]).map_err(undecodable)? > 0
        {
            return Err(BundleError::V1TooLarge);
        }
        finish(inflate, len, checksum)?;
        let (body, rest): (Body, _) = postcard::take_from_bytes(&raw).map_err(undecodable)?;
        if !rest.is_empty() {
            return Err(BundleError::Undecodable(format!(
                "{} bytes after the end of the body",
                rest.len()
            )));
        }
        drop(raw);
        let header = Header {
            community: body.community,
            created: body.created,
            exported_by: body.exported_by,
            for_org: body.for_org,
            tombstones: body.tombstones.len() as u64,
            changes: body.changes.len() as u64,
        };
        Ok(Self {
            tombstones_left: header.tombstones,
            changes_left: header.changes,
            header,
            source: Source::V1 {
                tombstones: body.tombstones.into_iter(),
                changes: body.changes.into_iter(),
            },
            buf: Vec::new(),
        })
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The next tombstone or change; `None` after the last, once the body
    /// has been checked to end there and its checksum to match.
    pub fn next_item(&mut self) -> Result<Option<Item>, BundleError> {
        match &mut self.source {
            Source::V1 {
                tombstones,
                changes,
            } => Ok(tombstones
                .next()
                .map(Item::Tombstone)
                .or_else(|| changes.next().map(Item::Change))),
            Source::V2 {
                inflate,
                len,
                checksum,
                finished,
            } => {
                if self.tombstones_left > 0 {
                    self.tombstones_left -= 1;
                    let t = record(inflate, &mut self.buf, MAX_TOMBSTONE_RECORD, "erasure")?;
                    return Ok(Some(Item::Tombstone(t)));
                }
                if self.changes_left > 0 {
                    self.changes_left -= 1;
                    let c = change_record(inflate, &mut self.buf)?;
                    return Ok(Some(Item::Change(c)));
                }
                if !*finished {
                    // One byte more, inflated, is one too many.
                    if read_full(inflate, &mut [0u8; 1]).map_err(undecodable)? > 0 {
                        return Err(BundleError::Undecodable(
                            "bytes after the last declared record".into(),
                        ));
                    }
                    finish_ref(inflate, *len, *checksum)?;
                    *finished = true;
                    self.buf = Vec::new();
                }
                Ok(None)
            }
        }
    }
}

/// Reads one length-prefixed record of at most `cap` bytes into `buf`.
fn read_record(
    input: &mut impl Read,
    buf: &mut Vec<u8>,
    cap: u32,
    what: &str,
) -> Result<(), BundleError> {
    let mut prefix = [0u8; 4];
    if read_full(input, &mut prefix).map_err(undecodable)? < 4 {
        return Err(BundleError::Undecodable(format!(
            "the body ends where a record ({what}) should begin"
        )));
    }
    let n = u32::from_le_bytes(prefix);
    if n > cap {
        return Err(BundleError::Undecodable(format!(
            "a record ({what}) of {n} bytes; at most {cap} are allowed"
        )));
    }
    buf.clear();
    buf.resize(n as usize, 0);
    if read_full(input, buf).map_err(undecodable)? < n as usize {
        return Err(BundleError::Undecodable(format!(
            "the body ends inside a record ({what})"
        )));
    }
    Ok(())
}

/// Reads one record and decodes it with postcard, to its last byte.
fn record<T: DeserializeOwned>(
    input: &mut impl Read,
    buf: &mut Vec<u8>,
    cap: u32,
    what: &str,
) -> Result<T, BundleError> {
    read_record(input, buf, cap, what)?;
    let (value, rest) = postcard::take_from_bytes(buf).map_err(undecodable)?;
    if !rest.is_empty() {
        return Err(BundleError::Undecodable(format!(
            "{} bytes after the end of a record ({what})",
            rest.len()
        )));
    }
    Ok(value)
}

/// Reads one change record. The bytes are postcard's encoding of a
/// [`WireChange`] (what [`encode_items`] writes), read here directly:
/// serde would take its byte vectors one element at a time.
fn change_record(input: &mut impl Read, buf: &mut Vec<u8>) -> Result<WireChange, BundleError> {
    read_record(input, buf, MAX_CHANGE_RECORD, "change")?;
    let short = || BundleError::Undecodable("a change record ends early".into());
    let mut rest: &[u8] = buf;
    let mut fixed = |n: usize| -> Result<&[u8], BundleError> {
        let (head, tail) = rest.split_at_checked(n).ok_or_else(short)?;
        rest = tail;
        Ok(head)
    };
    let doc = fixed(16)?.try_into().expect("16 bytes");
    let hash = fixed(32)?.try_into().expect("32 bytes");
    let signer = fixed(32)?.try_into().expect("32 bytes");
    let vec = |rest: &mut &[u8]| -> Result<Vec<u8>, BundleError> {
        // A LEB128 length, as postcard writes a usize.
        let mut n: u64 = 0;
        for i in 0..10 {
            let (&b, tail) = rest.split_first().ok_or_else(short)?;
            *rest = tail;
            n |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                let (v, tail) = rest.split_at_checked(n as usize).ok_or_else(short)?;
                *rest = tail;
                return Ok(v.to_vec());
            }
        }
        Err(BundleError::Undecodable(
            "a malformed length in a change record".into(),
        ))
    };
    let signature = vec(&mut rest)?;
    let bytes = vec(&mut rest)?;
    if !rest.is_empty() {
        return Err(BundleError::Undecodable(format!(
            "{} bytes after the end of a record (change)",
            rest.len()
        )));
    }
    Ok(WireChange {
        doc,
        hash,
        signer,
        signature,
        bytes,
    })
}

fn finish<R: Read>(
    mut inflate: Inflate<R>,
    len: u64,
    checksum: [u8; 32],
) -> Result<(), BundleError> {
    finish_ref(&mut inflate, len, checksum)
}

/// After the end of the deflate stream: no compressed bytes may follow
/// within the declared length, the length must be all there, nothing may
/// follow it, and the checksum must match.
fn finish_ref<R: Read>(
    inflate: &mut Inflate<R>,
    len: u64,
    checksum: [u8; 32],
) -> Result<(), BundleError> {
    use std::io::BufRead;
    let buffered = inflate.get_mut();
    let mut left = buffered.buffer().len() as u64;
    buffered.consume(left as usize);
    let take = buffered.get_mut();
    left += std::io::copy(take, &mut std::io::sink()).map_err(BundleError::Unreadable)?;
    if take.limit() > 0 {
        return Err(BundleError::Truncated {
            have: HEADER as u64 + len - take.limit(),
            want: HEADER as u64 + len,
        });
    }
    let hashing = take.get_mut();
    if read_full(&mut hashing.inner, &mut [0u8; 1]).map_err(BundleError::Unreadable)? > 0 {
        return Err(BundleError::Damaged);
    }
    if hashing.hasher.finalize().as_bytes() != &checksum {
        return Err(BundleError::Damaged);
    }
    if left > 0 {
        return Err(BundleError::Undecodable(format!(
            "{left} compressed bytes after the end of the body"
        )));
    }
    Ok(())
}

/// The change hashes of a bundle read from `input` (for `--since
/// BUNDLE`), in bounded memory besides the hashes themselves.
pub fn read_hashes<R: Read>(
    mut open: impl FnMut() -> std::io::Result<R>,
) -> Result<BTreeSet<[u8; 32]>, BundleError> {
    check(open().map_err(BundleError::Unreadable)?)?;
    let mut reader = Reader::open(open().map_err(BundleError::Unreadable)?)?;
    let mut out = BTreeSet::new();
    while let Some(item) = reader.next_item()? {
        if let Item::Change(c) = item {
            out.insert(c.hash);
        }
    }
    Ok(out)
}

impl Node {
    /// Makes a bundle of the signed changes and tombstones that `for_org`
    /// may see (everything shared with the whole community if `None`).
    pub fn export_bundle(&self, for_org: Option<OrgId>, since: &Since) -> Result<Body, NodeError> {
        let store = self.store();
        // For an organisation: what it may see; without one: only what the
        // whole community may see.
        let orgs: Option<BTreeSet<String>> = for_org.map(|o| [o.to_string()].into());
        // Drafts never leave this node, whoever the bundle is for.
        let drafts = store.drafts()?;
        let visible = |owner: &str, visibility: &str, status: &str| {
            let class = Class::of(owner, visibility, status);
            match &orgs {
                Some(orgs) => class.visible_to(orgs),
                None => class == Class::Community,
            }
        };
        let classes = store.doc_classes()?;
        // Profiles, charters and join claims decide whether every other
        // change may be applied: they go first, as a sync session fetches
        // them first, so an import applies entries as it meets them instead
        // of setting them aside (and, for a large bundle, into the waiting
        // room's per-sender limit) until the profile turns up.
        let mut authority = HashSet::new();
        for kind in ["charter", "join", "organisation"] {
            authority.extend(store.docs_of_kind(kind)?);
        }
        let mut first = Vec::new();
        let mut changes = Vec::new();
        for (stored, received) in store.all_changes_received()? {
            let Some((owner, visibility)) = classes.get(&stored.doc) else {
                continue;
            };
            let status = if drafts.contains(&stored.doc) {
                "draft"
            } else {
                ""
            };
            if !visible(owner, visibility, status) {
                continue;
            }
            let keep = match since {
                Since::Everything => true,
                Since::Time(t) => received >= *t,
                Since::Bundle(seen) => !seen.contains(&stored.hash),
            };
            if keep {
                let to = if authority.contains(&stored.doc) {
                    &mut first
                } else {
                    &mut changes
                };
                to.push(WireChange::from(&stored));
            }
        }
        first.append(&mut changes);
        let changes = first;
        let (tombstones, _) = store.tombstones_since(0)?;
        let tombstones = tombstones
            .iter()
            .filter(|t| visible(&t.owner, &t.visibility, ""))
            .map(|t| WireTombstone::from(&t.tombstone))
            .collect();
        Ok(Body {
            community: self.membership().map(|m| *m.community.as_bytes()),
            created: now().millis(),
            exported_by: self.node_id().to_string(),
            for_org: for_org.map(|o| o.to_string()),
            changes,
            tombstones,
        })
    }
}

/// The change hashes a bundle holds (for `--since BUNDLE`).
pub fn hashes(body: &Body) -> BTreeSet<[u8; 32]> {
    body.changes.iter().map(|c| c.hash).collect()
}

/// The ids of the documents a bundle touches.
pub fn documents(body: &Body) -> BTreeSet<DocumentId> {
    body.changes
        .iter()
        .map(|c| DocumentId::from_bytes(c.doc))
        .chain(
            body.tombstones
                .iter()
                .map(|t| DocumentId::from_bytes(t.doc)),
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body() -> Body {
        Body {
            community: None,
            created: 1,
            exported_by: "a node".into(),
            for_org: None,
            changes: Vec::new(),
            tombstones: Vec::new(),
        }
    }

    fn change(i: u8, size: usize) -> WireChange {
        WireChange {
            doc: [i; 16],
            hash: [i; 32],
            signer: [i; 32],
            signature: vec![i; 64],
            bytes: vec![i; size],
        }
    }

    /// A bundle whose inflated body is `raw`, with a correct header.
    fn wrap_raw(version: u8, raw: &[u8]) -> Vec<u8> {
        let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(raw).unwrap();
        wrap(version, &z.finish().unwrap())
    }

    /// Length-prefixed records.
    fn records(header: &Header, items: &[&[u8]]) -> Vec<u8> {
        let mut raw = Vec::new();
        let h = postcard::to_stdvec(header).unwrap();
        raw.extend_from_slice(&(h.len() as u32).to_le_bytes());
        raw.extend_from_slice(&h);
        for i in items {
            raw.extend_from_slice(&(i.len() as u32).to_le_bytes());
            raw.extend_from_slice(i);
        }
        raw
    }

    fn err(bytes: &[u8]) -> String {
        decode(bytes).unwrap_err().to_string()
    }

    #[test]
    fn a_body_round_trips_and_every_limit_holds() {
        let mut b = body();
        b.changes = (0..5).map(|i| change(i, 100)).collect();
        let bytes = encode(&b);
        assert_eq!(bytes[15], VERSION);
        assert_eq!(decode(&bytes).unwrap(), b);

        let header = |changes| Header {
            changes,
            ..Header::default()
        };
        let one = postcard::to_stdvec(&change(1, 10)).unwrap();
        // Fewer records than declared, more, and bytes after the last.
        assert!(err(&wrap_raw(2, &records(&header(2), &[&one]))).contains("should begin"));
        assert!(err(&wrap_raw(2, &records(&header(0), &[&one]))).contains("after the last"));
        let mut longer = records(&header(1), &[&one]);
        longer.push(0);
        assert!(err(&wrap_raw(2, &longer)).contains("after the last"));
        // A record over its cap is refused before it is read.
        let mut raw = records(&header(1), &[]);
        raw.extend_from_slice(&(MAX_CHANGE_RECORD + 1).to_le_bytes());
        assert!(err(&wrap_raw(2, &raw)).contains("at most"));
        // Counts over the caps.
        assert!(err(&wrap_raw(2, &records(&header(MAX_CHANGES + 1), &[]))).contains("declares"));
        // A record with bytes after its value.
        let mut padded = one.clone();
        padded.extend_from_slice(b"smuggled");
        assert!(err(&wrap_raw(2, &records(&header(1), &[&padded]))).contains("8 bytes after"));
        // Compressed bytes after the end of the deflate stream.
        let good = wrap_raw(2, &records(&header(1), &[&one]));
        let mut compressed = good[HEADER..].to_vec();
        compressed.extend_from_slice(b"junk");
        assert!(err(&wrap(2, &compressed)).contains("compressed bytes after"));
        // Unknown versions.
        let mut newer = good.clone();
        newer[15] = 3;
        assert!(matches!(decode(&newer), Err(BundleError::TooNew(3))));
    }

    #[test]
    fn change_records_read_as_postcard_wrote_them() {
        for size in [0, 1, 127, 128, 300, 16_384, 70_000] {
            let mut c = change(3, size);
            c.signature = vec![9; size % 200];
            let raw = postcard::to_stdvec(&c).unwrap();
            let mut framed = (raw.len() as u32).to_le_bytes().to_vec();
            framed.extend_from_slice(&raw);
            assert_eq!(change_record(&mut &framed[..], &mut Vec::new()).unwrap(), c);
            // Cut anywhere, it is refused.
            let cut = raw.len() / 2;
            let mut framed = (cut as u32).to_le_bytes().to_vec();
            framed.extend_from_slice(&raw[..cut]);
            assert!(change_record(&mut &framed[..], &mut Vec::new()).is_err());
        }
    }

    #[test]
    fn a_bomb_is_refused_after_one_record() {
        // 1 GiB of zeros behind a valid header, with a valid checksum: the
        // reader stops at the first record that is not what it declares.
        let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        let h = postcard::to_stdvec(&Header {
            changes: 1,
            ..Header::default()
        })
        .unwrap();
        z.write_all(&(h.len() as u32).to_le_bytes()).unwrap();
        z.write_all(&h).unwrap();
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..1024 {
            z.write_all(&zeros).unwrap();
        }
        let bytes = wrap(VERSION, &z.finish().unwrap());
        assert!(bytes.len() < 2 << 20, "{} bytes", bytes.len());
        let started = std::time::Instant::now();
        assert!(matches!(decode(&bytes), Err(BundleError::Undecodable(_))));
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
    }

    #[test]
    fn version_1_is_read_up_to_its_cap() {
        let mut b = body();
        b.changes = vec![change(7, 50)];
        let v1 = wrap_raw(V1, &postcard::to_stdvec(&b).unwrap());
        assert_eq!(decode(&v1).unwrap(), b);
        let mut longer = postcard::to_stdvec(&b).unwrap();
        longer.extend_from_slice(b"smuggled");
        assert!(err(&wrap_raw(V1, &longer)).contains("8 bytes after the end"));
        let big = vec![0u8; MAX_V1_BODY as usize + 1];
        assert!(matches!(
            decode(&wrap_raw(V1, &big)),
            Err(BundleError::V1TooLarge)
        ));
    }

    #[test]
    fn damage_and_truncation_are_found_before_anything_is_inflated() {
        let mut b = body();
        b.changes = (0..50).map(|i| change(i, 300)).collect();
        let bytes = encode(&b);
        let mut flipped = bytes.clone();
        let middle = flipped.len() / 2;
        flipped[middle] ^= 1;
        assert!(matches!(decode(&flipped), Err(BundleError::Damaged)));
        assert!(matches!(
            decode(&bytes[..bytes.len() - 3]),
            Err(BundleError::Truncated { .. })
        ));
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(decode(&longer), Err(BundleError::Damaged)));
        assert!(matches!(decode(b"CONVENE"), Err(BundleError::NotABundle)));
    }

    #[test]
    fn encoding_reports_progress_up_to_every_record() {
        let mut b = body();
        b.changes = (0..3).map(|i| change(i, 10)).collect();
        let mut calls = Vec::new();
        let bytes = encode_with(&b, &mut |done, total| calls.push((done, total)));
        assert_eq!(calls.last(), Some(&(3, 3)));
        assert_eq!(decode(&bytes).unwrap(), b);
    }
}
