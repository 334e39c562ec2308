//! What a change's bytes declare, read without decoding its operations.
//!
//! automerge stores a change's operations in columns, most of them
//! run-length encoded: a few bytes can declare a run of 2^60 rows, and
//! automerge's decoder walks every row before anything is checked (and
//! collects each row's list of predecessors into a vector). So a change a
//! few bytes long could keep a core busy for years, or ask for terabytes.
//! An honest change can also be short and long at once: deleting a text
//! of 300,000 characters is one operation per character in 131 bytes.
//!
//! [`read`] walks the chunk's header and every column's runs, each in time
//! proportional to its bytes, and gives the change's hash (worked out as
//! automerge does, so the signature can be checked before any decoding)
//! and the most rows any column declares. It refuses a change whose
//! columns declare more than [`MAX_ROWS`] rows, an operation with more
//! than [`MAX_PREDECESSORS`] predecessors, or string columns (map keys,
//! mark names) that spell out more than [`MAX_STRING_BYTES`] once every
//! run is repeated (automerge copies a key for each operation when it
//! applies a change), or a header naming more than [`MAX_ACTORS`] other
//! actors (each counts as a row). [`Budget`] bounds the rows and string bytes of all
//! the changes received together, so many short changes cost no more than
//! their bytes would honestly cost.
//!
//! The format is automerge's binary change chunk: magic, checksum, chunk
//! type, the length of the data, then dependencies, actor, sequence
//! number, start op, time, message, other actors, the column list (each a
//! specification and a length) and the columns' bytes.

use sha2::{Digest, Sha256};

/// The most rows a change's columns may declare: 1,048,576, about 0.1 s
/// of automerge's decoding on one core, and 0.6 s and 400 MB to apply.
/// The largest honest change is about 800,000: rewriting all four long
/// texts of a project (at most 100,000 characters each) in one change,
/// every character deleted and inserted.
pub const MAX_ROWS: u64 = 1 << 20;

/// The most predecessors one operation may list (an operation lists the
/// values it replaces: one, or a few made concurrently).
pub const MAX_PREDECESSORS: u64 = 4096;

/// The most actors a change may name besides its own (the authors of the
/// values its operations replace: a handful in an honest change). Each
/// costs one byte to list and automerge tens to hold.
pub const MAX_ACTORS: u64 = 4096;

/// The most bytes a change's string columns may spell out: 16 MiB. An
/// honest change's keys are field names, a few bytes for each operation
/// that names one.
pub const MAX_STRING_BYTES: u64 = 16 << 20;

/// Rows allowed to changes received together, beyond [`ROWS_PER_BYTE`]
/// for each of their bytes: as many as one change may declare.
pub const BATCH_ROWS: u64 = MAX_ROWS;

/// Rows allowed for each byte of changes received together. An honest
/// change that adds content has a row for at most each byte or so (a
/// character of text is one operation and its byte); only deletions are
/// shorter, and those are bounded by what they delete. Applying costs
/// memory for every operation, so this also bounds what a message can ask
/// of a node's memory by its size.
pub const ROWS_PER_BYTE: u64 = 2;

/// Rows allowed to a stranger's join request beyond one for each of its
/// bytes: its changes are new documents (its claims and its profile),
/// whose every operation adds a value, and a few edits.
pub const JOIN_ROWS: u64 = 16 * 1024;

const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
/// The chunk type of a change stored uncompressed.
const CHANGE_CHUNK: u8 = 1;
/// The chunk type of a DEFLATE-compressed change, which automerge inflates
/// whole and without a bound while decoding (as it does a document's or a
/// bundle's compressed columns: those chunk types are refused too).
pub(crate) const COMPRESSED_CHANGE_CHUNK: u8 = 2;
/// Where a chunk's type is: after 4 bytes of magic and 4 of checksum.
#[cfg(test)]
pub(crate) const CHUNK_TYPE_AT: usize = 8;
/// Bits of a column specification: its type, and whether it is deflated.
const TYPE_MASK: u32 = 0b0111;
const DEFLATE: u32 = 0b1000;

/// Column types.
const GROUP: u32 = 0;
const ACTOR: u32 = 1;
const INTEGER: u32 = 2;
const DELTA: u32 = 3;
const BOOLEAN: u32 = 4;
const STRING: u32 = 5;
const VALUE_META: u32 = 6;
const VALUE: u32 = 7;

/// What a change's bytes declare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// The change's hash, as automerge works it out.
    pub hash: [u8; 32],
    /// The most rows any of its columns declares, and one for each other
    /// actor it names.
    pub rows: u64,
    /// The bytes its string columns spell out, every run repeated.
    pub strings: u64,
    /// Whether it names no dependencies and no actor but its own: a
    /// document's first change, as its author made it.
    pub first: bool,
}

/// Why a change's bytes were refused unread.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShapeError {
    #[error("not an automerge change: {0}")]
    Malformed(&'static str),
    #[error("a compressed change")]
    Compressed,
    #[error("its columns declare more than {MAX_ROWS} rows")]
    TooManyRows,
    #[error("an operation lists more than {MAX_PREDECESSORS} predecessors")]
    TooManyPredecessors,
    #[error("its string columns spell out more than {MAX_STRING_BYTES} bytes")]
    TooManyStringBytes,
    #[error("it names more than {MAX_ACTORS} other actors")]
    TooManyActors,
}

/// Reads the header and columns of an uncompressed change chunk.
pub fn read(bytes: &[u8]) -> Result<Shape, ShapeError> {
    let mut r = Reader { bytes, at: 0 };
    if r.take(4)? != MAGIC {
        return Err(ShapeError::Malformed("no magic bytes"));
    }
    let checksum = r.take(4)?;
    match r.take(1)? {
        [CHANGE_CHUNK] => {}
        [COMPRESSED_CHANGE_CHUNK] => return Err(ShapeError::Compressed),
        _ => return Err(ShapeError::Malformed("not an automerge change chunk")),
    }
    let len = r.uleb()?;
    let data = r.take(to_usize(len)?)?;
    if r.at != bytes.len() {
        return Err(ShapeError::Malformed("bytes after the chunk"));
    }
    let mut hasher = Sha256::new();
    hasher.update([CHANGE_CHUNK]);
    hasher.update(uleb_bytes(len));
    hasher.update(data);
    let hash: [u8; 32] = hasher.finalize().into();
    // automerge checks the checksum when it loads a document, not when it
    // decodes a change: bytes a relay altered there would be stored and
    // later refuse to load.
    if checksum != &hash[..4] {
        return Err(ShapeError::Malformed("a checksum that does not match"));
    }
    let (rows, strings, first) = columns(data)?;
    Ok(Shape {
        hash,
        rows,
        strings,
        first,
    })
}

/// The most rows any column of a change chunk's `data` declares, the
/// bytes its string columns spell out, and whether it names no dependency
/// and no other actor.
fn columns(data: &[u8]) -> Result<(u64, u64, bool), ShapeError> {
    let mut r = Reader { bytes: data, at: 0 };
    let deps = r.uleb()?;
    for _ in 0..deps {
        r.take(32)?;
    }
    r.length_prefixed()?; // actor
    r.uleb()?; // sequence number
    r.uleb()?; // start op
    r.sleb()?; // time
    r.length_prefixed()?; // message
    let others = r.uleb()?;
    if others > MAX_ACTORS {
        return Err(ShapeError::TooManyActors);
    }
    for _ in 0..others {
        r.length_prefixed()?;
    }
    let columns = r.uleb()?;
    let mut specs = Vec::new();
    for _ in 0..columns {
        // Each column takes at least two bytes to list: a count past what
        // is left is refused by the read that runs out.
        let spec = u32::try_from(r.uleb()?)
            .map_err(|_| ShapeError::Malformed("a column specification out of range"))?;
        let len = to_usize(r.uleb()?)?;
        specs.push((spec, len));
    }
    let mut most = 0;
    let mut strings = 0;
    for (spec, len) in specs {
        let column = r.take(len)?;
        if spec & DEFLATE != 0 {
            return Err(ShapeError::Malformed("a compressed column"));
        }
        let (rows, spelt) = column_rows(spec & TYPE_MASK, column)?;
        most = most.max(rows);
        strings = add_bytes(strings, spelt)?;
    }
    // An actor named is held as a row's worth of memory is.
    let most = most + others;
    Ok((most, strings, deps == 0 && others == 0))
}

fn add_bytes(total: u64, more: u64) -> Result<u64, ShapeError> {
    Some(total.saturating_add(more))
        .filter(|t| *t <= MAX_STRING_BYTES)
        .ok_or(ShapeError::TooManyStringBytes)
}

/// The rows one column declares, and the bytes it spells out if it is a
/// string column.
fn column_rows(kind: u32, column: &[u8]) -> Result<(u64, u64), ShapeError> {
    let mut r = Reader {
        bytes: column,
        at: 0,
    };
    let mut rows: u64 = 0;
    let mut spelt: u64 = 0;
    let mut add = |n: u64, len: u64| -> Result<(), ShapeError> {
        rows = rows.saturating_add(n);
        if rows > MAX_ROWS {
            return Err(ShapeError::TooManyRows);
        }
        spelt = add_bytes(spelt, n.saturating_mul(len))?;
        Ok(())
    };
    match kind {
        VALUE => {}
        BOOLEAN => {
            while !r.done() {
                add(r.uleb()?, 0)?;
            }
        }
        GROUP | ACTOR | INTEGER | DELTA | STRING | VALUE_META => {
            while !r.done() {
                let count = r.sleb()?;
                if count > 0 {
                    let len = r.value(kind)?;
                    add(count as u64, len)?;
                } else if count < 0 {
                    // A literal run: every value is there in the bytes.
                    for _ in 0..count.unsigned_abs() {
                        let len = r.value(kind)?;
                        add(1, len)?;
                    }
                } else {
                    add(r.uleb()?, 0)?;
                }
            }
        }
        _ => unreachable!("three bits"),
    }
    Ok((rows, spelt))
}

/// Rows and string bytes allowed to changes received together, taken
/// change by change.
#[derive(Debug)]
pub struct Budget {
    rows: u64,
    strings: u64,
}

impl Budget {
    /// The budget for changes of `bytes` bytes in all.
    pub fn for_bytes(bytes: usize) -> Self {
        let per_byte = ROWS_PER_BYTE.saturating_mul(bytes as u64);
        Self {
            rows: BATCH_ROWS.saturating_add(per_byte),
            strings: MAX_STRING_BYTES.saturating_add(per_byte),
        }
    }

    /// The budget for a stranger's join request of `bytes` bytes of
    /// changes: what it costs to check is bounded by what it sent.
    pub fn for_join(bytes: usize) -> Self {
        Self {
            rows: JOIN_ROWS.saturating_add(bytes as u64),
            strings: JOIN_ROWS.saturating_add(bytes as u64),
        }
    }

    /// Nothing at all.
    pub fn none() -> Self {
        Self {
            rows: 0,
            strings: 0,
        }
    }

    /// Adds what `other` has left.
    pub fn add(&mut self, other: &Budget) {
        self.rows = self.rows.saturating_add(other.rows);
        self.strings = self.strings.saturating_add(other.strings);
    }

    /// Keeps at most what `max` allows.
    pub fn cap(&mut self, max: &Budget) {
        self.rows = self.rows.min(max.rows);
        self.strings = self.strings.min(max.strings);
    }

    /// Takes what a change declares from what is left, or says there is
    /// not enough (and takes nothing).
    pub fn take(&mut self, shape: &Shape) -> bool {
        match (
            self.rows.checked_sub(shape.rows),
            self.strings.checked_sub(shape.strings),
        ) {
            (Some(rows), Some(strings)) => {
                self.rows = rows;
                self.strings = strings;
                true
            }
            _ => false,
        }
    }
}

/// LEB128, as automerge writes every number in a change chunk: the one
/// reader and writer of it for everything here that reads or lays out
/// change chunks (this module's [`read`], `apply::first_doc` and its view,
/// `forge`).
pub(crate) mod leb {
    /// Why a number did not read.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Fault {
        CutShort,
        /// More than 64 bits (or a tenth byte that goes on).
        TooLarge,
    }

    /// The unsigned number at the start of `bytes`, and how many bytes it
    /// took.
    pub fn read_u(bytes: &[u8]) -> Result<(u64, usize), Fault> {
        let mut value: u64 = 0;
        for (i, shift) in (0..64).step_by(7).enumerate() {
            let b = *bytes.get(i).ok_or(Fault::CutShort)?;
            let part = u64::from(b & 0x7f);
            if shift == 63 && part > 1 {
                return Err(Fault::TooLarge);
            }
            value |= part << shift;
            if b & 0x80 == 0 {
                return Ok((value, i + 1));
            }
        }
        Err(Fault::TooLarge)
    }

    /// The signed number at the start of `bytes`, and how many bytes it
    /// took.
    pub fn read_i(bytes: &[u8]) -> Result<(i64, usize), Fault> {
        let mut value: i64 = 0;
        let mut shift = 0;
        for (i, &b) in bytes.iter().enumerate() {
            if shift == 63 && b != 0 && b != 0x7f {
                return Err(Fault::TooLarge);
            }
            value |= i64::from(b & 0x7f) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                if shift < 64 && b & 0x40 != 0 {
                    value |= -1 << shift;
                }
                return Ok((value, i + 1));
            }
            if shift >= 64 {
                return Err(Fault::TooLarge);
            }
        }
        Err(Fault::CutShort)
    }

    /// Appends `v` in its shortest form.
    pub fn write_u(out: &mut Vec<u8>, mut v: u64) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }

    /// Appends `v` in its shortest form.
    pub fn write_i(out: &mut Vec<u8>, mut v: i64) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if (v == 0 && b & 0x40 == 0) || (v == -1 && b & 0x40 != 0) {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn done(&self) -> bool {
        self.at >= self.bytes.len()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ShapeError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len())
            .ok_or(ShapeError::Malformed("cut short"))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn uleb(&mut self) -> Result<u64, ShapeError> {
        let (v, n) = leb::read_u(&self.bytes[self.at..]).map_err(fault)?;
        self.at += n;
        Ok(v)
    }

    fn sleb(&mut self) -> Result<i64, ShapeError> {
        let (v, n) = leb::read_i(&self.bytes[self.at..]).map_err(fault)?;
        self.at += n;
        Ok(v)
    }

    fn length_prefixed(&mut self) -> Result<&'a [u8], ShapeError> {
        let len = to_usize(self.uleb()?)?;
        self.take(len)
    }

    /// Skips one value of a run-length encoded column of type `kind`, and
    /// gives its length if it is a string.
    fn value(&mut self, kind: u32) -> Result<u64, ShapeError> {
        match kind {
            DELTA => {
                self.sleb()?;
            }
            STRING => return Ok(self.length_prefixed()?.len() as u64),
            GROUP => {
                if self.uleb()? > MAX_PREDECESSORS {
                    return Err(ShapeError::TooManyPredecessors);
                }
            }
            _ => {
                self.uleb()?;
            }
        }
        Ok(0)
    }
}

fn to_usize(n: u64) -> Result<usize, ShapeError> {
    usize::try_from(n).map_err(|_| ShapeError::Malformed("a length out of range"))
}

fn fault(f: leb::Fault) -> ShapeError {
    ShapeError::Malformed(match f {
        leb::Fault::CutShort => "cut short",
        leb::Fault::TooLarge => "a number too large",
    })
}

fn uleb_bytes(n: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(10);
    leb::write_u(&mut out, n);
    out
}

/// Change chunks written by hand, for tests that replay what a hostile
/// peer could send (with the `testing` feature only).
#[cfg(any(test, feature = "testing"))]
pub mod forge {
    use sha2::{Digest, Sha256};

    use super::{CHANGE_CHUNK, MAGIC, uleb_bytes};

    /// Column specifications of a change's operations (id << 4 | type).
    pub const KEY_STRING: u32 = 0x15;
    pub const INSERT: u32 = 0x34;
    pub const ACTION: u32 = 0x42;
    pub const VALUE_META: u32 = 0x56;
    pub const PRED_GROUP: u32 = 0x70;
    pub const PRED_ACTOR: u32 = 0x71;
    pub const PRED_COUNTER: u32 = 0x73;

    pub fn sleb(n: i64) -> Vec<u8> {
        let mut out = Vec::new();
        super::leb::write_i(&mut out, n);
        out
    }

    pub fn uleb(n: u64) -> Vec<u8> {
        uleb_bytes(n)
    }

    /// A run of `n` copies of the encoded `value`.
    pub fn run(n: u64, value: &[u8]) -> Vec<u8> {
        let mut out = sleb(n as i64);
        out.extend_from_slice(value);
        out
    }

    /// A change chunk by actor `[7; 16]`, sequence number 1, with
    /// `columns` (specification, bytes) in that order, and a valid
    /// checksum. Returns the bytes and their hash.
    pub fn change(columns: &[(u32, Vec<u8>)]) -> (Vec<u8>, [u8; 32]) {
        change_naming(0, columns)
    }

    /// `count` changes, each declaring the most rows one change may (a run
    /// of [`super::MAX_ROWS`] actions in a few bytes), signed by `id` for
    /// documents `[0; 16]`, `[1; 16]` …: what a peer bent on using up the
    /// bound on rows would send.
    pub fn widest(id: &crate::trust::Identity, count: u8) -> Vec<crate::trust::SignedChange> {
        let (bytes, hash) = change(&[(ACTION, run(super::MAX_ROWS, &[1]))]);
        (0..count)
            .map(|i| {
                crate::trust::SignedChange::sign_raw(
                    id,
                    convene_model::DocumentId::from_bytes([i; 16]),
                    bytes.clone(),
                    hash,
                )
            })
            .collect()
    }

    /// [`change`], naming `others` other actors (each empty).
    pub fn change_naming(others: u64, columns: &[(u32, Vec<u8>)]) -> (Vec<u8>, [u8; 32]) {
        let mut data = uleb(0); // no dependencies
        data.extend(uleb(16));
        data.extend([7u8; 16]);
        data.extend(uleb(1)); // sequence number
        data.extend(uleb(1)); // start op
        data.extend(sleb(0)); // time
        data.extend(uleb(0)); // message
        data.extend(uleb(others));
        for _ in 0..others {
            data.extend(uleb(0));
        }
        data.extend(uleb(columns.len() as u64));
        for (spec, bytes) in columns {
            data.extend(uleb(u64::from(*spec)));
            data.extend(uleb(bytes.len() as u64));
        }
        for (_, bytes) in columns {
            data.extend(bytes);
        }
        let mut h = Sha256::new();
        h.update([CHANGE_CHUNK]);
        h.update(uleb(data.len() as u64));
        h.update(&data);
        let hash: [u8; 32] = h.finalize().into();
        let mut out = MAGIC.to_vec();
        out.extend(&hash[..4]);
        out.push(CHANGE_CHUNK);
        out.extend(uleb(data.len() as u64));
        out.extend(data);
        (out, hash)
    }

    /// Sets the checksum of a change chunk right (what a fuzzer's
    /// mutations leave stale), so its bytes are judged on the rest.
    pub fn fix_checksum(bytes: &mut [u8]) {
        let mut r = super::Reader { bytes, at: 9 };
        let (Some(&kind), Ok(len)) = (bytes.get(8), r.uleb()) else {
            return;
        };
        let Some(data) = usize::try_from(len)
            .ok()
            .and_then(|len| bytes.get(r.at..r.at.checked_add(len)?))
        else {
            return;
        };
        let mut h = Sha256::new();
        h.update([kind]);
        h.update(uleb(len));
        h.update(data);
        let hash: [u8; 32] = h.finalize().into();
        bytes[4..8].copy_from_slice(&hash[..4]);
    }

    /// `n` operations setting key "k" of the root map to null, each
    /// replacing `preds` earlier values (`n` and `preds` cost a few bytes
    /// each, whatever their size).
    pub fn nulls(n: u64, preds: u64) -> (Vec<u8>, [u8; 32]) {
        let mut columns = vec![
            (KEY_STRING, run(n, &[1, b'k'])),
            (INSERT, uleb(n)),
            (ACTION, run(n, &[1])),
            (VALUE_META, run(n, &[0])),
            (PRED_GROUP, run(n, &uleb(preds))),
        ];
        if preds > 0 {
            columns.push((PRED_ACTOR, run(n * preds, &[0])));
            columns.push((PRED_COUNTER, run(n * preds, &[1])));
        }
        change(&columns)
    }
}

#[cfg(test)]
mod tests {
    use automerge::transaction::Transactable;
    use automerge::{ActorId, Automerge, Change, ObjType, ROOT, ScalarValue};

    use super::*;

    /// Every change of `doc`, as automerge made them.
    fn changes(doc: &Automerge) -> Vec<Change> {
        doc.get_changes(&[])
    }

    fn doc(actor: u8) -> Automerge {
        Automerge::new().with_actor(ActorId::from([actor; 16].as_slice()))
    }

    #[test]
    fn honest_changes_read_as_automerge_decodes_them() {
        let mut a = doc(1);
        let mut tx = a.transaction();
        tx.put(ROOT, "title", "Ambulance handovers").unwrap();
        tx.put(ROOT, "year", 2026).unwrap();
        tx.put(ROOT, "open", true).unwrap();
        tx.put(ROOT, "nothing", ScalarValue::Null).unwrap();
        tx.put(ROOT, "bytes", ScalarValue::Bytes(vec![1, 2, 3]))
            .unwrap();
        tx.put(ROOT, "count", ScalarValue::counter(1)).unwrap();
        let tags = tx.put_object(ROOT, "tags", ObjType::List).unwrap();
        for (i, t) in ["flow", "discharge", "frailty"].iter().enumerate() {
            tx.insert(&tags, i, *t).unwrap();
        }
        let text = tx.put_object(ROOT, "body", ObjType::Text).unwrap();
        tx.splice_text(&text, 0, 0, &"handover ".repeat(600))
            .unwrap();
        let nested = tx.put_object(ROOT, "contact", ObjType::Map).unwrap();
        tx.put(&nested, "name", "Ward 7").unwrap();
        tx.commit();
        let mut tx = a.transaction();
        tx.splice_text(&text, 100, 4000, "short").unwrap();
        tx.delete(&tags, 1).unwrap();
        tx.increment(ROOT, "count", 5).unwrap();
        tx.delete(ROOT, "nothing").unwrap();
        tx.commit();
        // Two organisations set the title at once; a third change
        // replaces both values (an operation with two predecessors).
        let mut b = a.fork().with_actor(ActorId::from([2u8; 16].as_slice()));
        let mut tx = a.transaction();
        tx.put(ROOT, "title", "Handovers at the front door")
            .unwrap();
        tx.commit();
        let mut tx = b.transaction();
        tx.put(ROOT, "title", "Handover delays").unwrap();
        tx.commit();
        a.merge(&mut b).unwrap();
        let mut tx = a.transaction();
        tx.put(ROOT, "title", "Ambulance handover delays").unwrap();
        tx.commit();

        let all = changes(&a);
        assert_eq!(all.len(), 5);
        for c in &all {
            let shape = read(c.raw_bytes()).unwrap();
            assert_eq!(shape.hash, c.hash().0);
            // The merge's second predecessor, and the other actor a
            // change names.
            let extra: u64 = 2;
            assert!(
                shape.rows >= c.len() as u64 && shape.rows <= c.len() as u64 + extra,
                "{} rows read, {} operations",
                shape.rows,
                c.len()
            );
        }
    }

    #[test]
    fn deleting_a_long_text_is_short_and_within_the_bounds() {
        let mut a = doc(1);
        let mut tx = a.transaction();
        let text = tx.put_object(ROOT, "body", ObjType::Text).unwrap();
        tx.splice_text(&text, 0, 0, &"a".repeat(100_000)).unwrap();
        tx.commit();
        let mut tx = a.transaction();
        tx.splice_text(&text, 0, 100_000, "").unwrap();
        tx.commit();
        let delete = a.get_last_local_change().unwrap();
        assert!(delete.raw_bytes().len() < 200);
        let shape = read(delete.raw_bytes()).unwrap();
        assert_eq!(shape.rows, 100_000);
        assert_eq!(shape.hash, delete.hash().0);
    }

    #[test]
    fn actors_named_count_as_rows_and_are_bounded() {
        let ops = (forge::ACTION, forge::run(10, &[1]));
        let (bytes, _) = forge::change_naming(1000, std::slice::from_ref(&ops));
        assert_eq!(read(&bytes).unwrap().rows, 1010);
        let (bytes, _) = forge::change_naming(MAX_ACTORS + 1, &[ops]);
        assert_eq!(read(&bytes), Err(ShapeError::TooManyActors));
    }

    #[test]
    fn a_few_bytes_declaring_years_of_rows_are_refused_unread() {
        // 2^40 rows would keep a core busy for about 27 hours at the
        // 90 ns a row automerge's decoder takes.
        let (bytes, _) = forge::nulls(1 << 40, 0);
        assert!(bytes.len() < 100);
        assert_eq!(read(&bytes), Err(ShapeError::TooManyRows));
        // Just within the bound, the same shape is read.
        let (bytes, hash) = forge::nulls(MAX_ROWS, 0);
        assert_eq!(
            read(&bytes),
            Ok(Shape {
                hash,
                rows: MAX_ROWS,
                strings: MAX_ROWS,
                first: true,
            })
        );
    }

    #[test]
    fn an_operation_listing_billions_of_predecessors_is_refused_unread() {
        // automerge walks an operation's predecessors one by one as it
        // decodes it (the rows of the predecessor columns bound them too;
        // this bound comes first).
        let (bytes, _) = forge::nulls(1, 1 << 32);
        assert_eq!(read(&bytes), Err(ShapeError::TooManyPredecessors));
        let (bytes, _) = forge::nulls(1, MAX_PREDECESSORS);
        assert!(read(&bytes).is_ok());
    }

    #[test]
    fn damaged_bytes_are_refused_without_panicking() {
        let mut a = doc(1);
        let mut tx = a.transaction();
        tx.put(ROOT, "title", "Ambulance handovers").unwrap();
        let tags = tx.put_object(ROOT, "tags", ObjType::List).unwrap();
        tx.insert(&tags, 0, "flow").unwrap();
        tx.commit();
        let good = a.get_last_local_change().unwrap().raw_bytes().to_vec();
        // Every length cut short, and every byte set to every value that
        // changes what a number or a run says.
        for len in 0..good.len() {
            assert!(read(&good[..len]).is_err(), "cut to {len}");
        }
        let mut longer = good.clone();
        longer.push(0);
        assert_eq!(
            read(&longer),
            Err(ShapeError::Malformed("bytes after the chunk"))
        );
        for at in 0..good.len() {
            for value in [0x00, 0x01, 0x3f, 0x40, 0x7f, 0x80, 0xff] {
                let mut bad = good.clone();
                bad[at] = value;
                let _ = read(&bad);
            }
        }
        // Numbers of more than 64 bits.
        let mut r = Reader {
            bytes: &[0xff; 11],
            at: 0,
        };
        assert!(r.uleb().is_err());
        let mut r = Reader {
            bytes: &[0xff; 11],
            at: 0,
        };
        assert!(r.sleb().is_err());
    }

    #[test]
    fn numbers_read_as_automerge_writes_them() {
        for n in [
            0i64,
            1,
            -1,
            63,
            64,
            -64,
            -65,
            1 << 40,
            -(1 << 40),
            i64::MAX,
            i64::MIN,
        ] {
            let bytes = forge::sleb(n);
            let mut r = Reader {
                bytes: &bytes,
                at: 0,
            };
            assert_eq!(r.sleb(), Ok(n));
            assert!(r.done());
        }
        for n in [0u64, 1, 127, 128, 1 << 40, u64::MAX] {
            let bytes = forge::uleb(n);
            let mut r = Reader {
                bytes: &bytes,
                at: 0,
            };
            assert_eq!(r.uleb(), Ok(n));
        }
    }

    /// Every reader of change chunks here shares one LEB128 reader: a
    /// number past 64 bits, or one cut short, reads as nothing (never as
    /// its low bits, which a looser reader took).
    #[test]
    fn a_number_past_64_bits_or_cut_short_does_not_read() {
        let max = [[0xff; 9].as_slice(), &[0x01]].concat();
        assert_eq!(leb::read_u(&max), Ok((u64::MAX, 10)));
        let past = [[0xff; 9].as_slice(), &[0x02]].concat();
        assert_eq!(leb::read_u(&past), Err(leb::Fault::TooLarge));
        let eleven = [[0x80; 10].as_slice(), &[0x00]].concat();
        assert_eq!(leb::read_u(&eleven), Err(leb::Fault::TooLarge));
        assert_eq!(leb::read_u(&[0x80, 0x80]), Err(leb::Fault::CutShort));
        assert_eq!(leb::read_u(&[]), Err(leb::Fault::CutShort));
        let min = forge::sleb(i64::MIN);
        assert_eq!(leb::read_i(&min), Ok((i64::MIN, 10)));
        let past = [[0x80; 9].as_slice(), &[0x01]].concat();
        assert_eq!(leb::read_i(&past), Err(leb::Fault::TooLarge));
        assert_eq!(leb::read_i(&[0xff]), Err(leb::Fault::CutShort));
        let mut r = Reader {
            bytes: &past,
            at: 0,
        };
        assert_eq!(r.sleb(), Err(ShapeError::Malformed("a number too large")));
    }

    #[test]
    fn a_long_key_repeated_for_every_operation_is_refused_unread() {
        // automerge copies an operation's key each time it applies one:
        // a 60 KB key in a run of 1,000,000 rows would be 60 GB.
        let key = [&uleb_bytes(60_000)[..], &[b'k'; 60_000]].concat();
        let (bytes, _) = forge::change(&[
            (forge::KEY_STRING, forge::run(1_000_000, &key)),
            (forge::ACTION, forge::run(1_000_000, &[1])),
        ]);
        assert!(bytes.len() < 61_000);
        assert_eq!(read(&bytes), Err(ShapeError::TooManyStringBytes));
    }

    #[test]
    fn a_checksum_altered_on_the_way_is_refused() {
        let (mut bytes, _) = forge::nulls(3, 0);
        bytes[5] ^= 1;
        assert_eq!(
            read(&bytes),
            Err(ShapeError::Malformed("a checksum that does not match"))
        );
    }

    #[test]
    fn the_rows_of_changes_received_together_are_bounded_by_their_bytes() {
        let shape = |rows, strings| Shape {
            hash: [0; 32],
            rows,
            strings,
            first: true,
        };
        let mut budget = Budget::for_bytes(1000);
        assert!(budget.take(&shape(BATCH_ROWS, MAX_STRING_BYTES)));
        assert!(budget.take(&shape(ROWS_PER_BYTE * 1000, 0)));
        assert!(!budget.take(&shape(1, 0)));
        assert!(budget.take(&shape(0, ROWS_PER_BYTE * 1000)));
        assert!(!budget.take(&shape(0, 1)));
        assert!(budget.take(&shape(0, 0)));
    }
}
