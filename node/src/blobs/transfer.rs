//! The file transfer protocol `/convene/files/1`: its messages, and the
//! fetcher that spreads a download's ranges over the members connected.
//!
//! A request names a file by its BLAKE3 hash and a byte range (aligned to
//! 16 KiB groups, at most [`MAX_RANGE`] long); the answer is the range
//! with its proof ([`super::verified`]), or [`FileResponse::NotHeld`],
//! which is also what a peer gets for a file it may not see or that does
//! not exist: the answers cannot be told apart, so asking teaches a peer
//! nothing it could not see already.
//!
//! [`Fetcher`] is the receiving side's state: no sockets and no clock. It
//! is told which members are connected and which files to get; it says
//! which requests to send ([`Fetcher::requests`]) and takes their answers,
//! writing what verifies into each file's [`Partial`]. Ranges of one file
//! go to every connected member that has not said it lacks the file, at
//! most [`PER_PEER`] at a time each and [`IN_FLIGHT`] in all, so a
//! download's memory is bounded by that window, never by the file's size.
//! A peer whose answer fails verification is reported
//! ([`Step::Violation`]) and not asked for that file again; its ranges go
//! to the others.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Range;

use serde::{Deserialize, Serialize};

use super::verified::{GROUP, Partial, Refused};
use crate::trust::NodeId;

/// The protocol's name on the wire.
pub const PROTOCOL: &str = "/convene/files/1";
/// The most content bytes one request may ask for (64 groups).
pub const MAX_RANGE: u64 = 1024 * 1024;
/// The largest request frame: a hash and two numbers.
pub const MAX_REQUEST_BYTES: usize = 128;
/// The largest response frame: a full range and its proof.
pub const MAX_RESPONSE_BYTES: usize = MAX_RANGE as usize + 64 * 1024;
/// Requests in flight to one peer at once.
pub const PER_PEER: usize = 4;
/// Requests in flight in all (so at most 16 MiB of answers are on their
/// way or being checked).
pub const IN_FLIGHT: usize = 16;

/// A request for bytes `start..end` of the file with BLAKE3 hash `hash`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRequest {
    pub hash: [u8; 32],
    pub start: u64,
    pub end: u64,
}

impl FileRequest {
    /// Whether the range is one a well-behaved peer asks for: aligned to
    /// groups and at most [`MAX_RANGE`] long.
    pub fn is_well_formed(&self) -> bool {
        self.start < self.end
            && self.start.is_multiple_of(GROUP)
            && self.end - self.start <= MAX_RANGE
    }

    pub fn hash_hex(&self) -> String {
        blake3::Hash::from_bytes(self.hash).to_hex().to_string()
    }
}

/// The answer to a [`FileRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FileResponse {
    /// The range with its proof; `size` is the whole file's (the receiver
    /// checks it against the entry, never takes it as given).
    Range {
        size: u64,
        #[serde(with = "bytes")]
        encoded: Encoded,
    },
    /// Not held here, or not for you, or no such file: one answer for all.
    NotHeld,
    /// Too many of your requests at once; ask again later.
    Busy,
}

/// A range's bytes and proof. Received, they stay in the buffer their
/// frame was read into, after the frame's few bytes of header, so taking
/// them out of the frame copies nothing (moving a 1 MiB range to the
/// buffer's front was about 3% of a fetching node's CPU).
#[derive(Clone, Default)]
pub struct Encoded {
    buf: Vec<u8>,
    start: usize,
}

impl Encoded {
    /// The buffer the bytes are in, to reuse (its first bytes may be a
    /// frame's header).
    pub fn into_buffer(self) -> Vec<u8> {
        self.buf
    }
}

impl From<Vec<u8>> for Encoded {
    fn from(buf: Vec<u8>) -> Self {
        Self { buf, start: 0 }
    }
}

impl std::ops::Deref for Encoded {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.buf[self.start..]
    }
}

impl std::ops::DerefMut for Encoded {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..]
    }
}

impl PartialEq for Encoded {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for Encoded {}

impl std::fmt::Debug for Encoded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Encoded({} bytes)", self.len())
    }
}

/// `encoded` as one byte string rather than a sequence of `u8`s: in
/// postcard both are the length and then the bytes (the wire is the same),
/// but a sequence is written and read one element at a time, which cost
/// the fetching node about 8% of its CPU on a large download.
mod bytes {
    use serde::{Deserializer, Serializer, de};

    use super::Encoded;

    pub fn serialize<S: Serializer>(v: &Encoded, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Encoded, D::Error> {
        d.deserialize_byte_buf(Bytes).map(Encoded::from)
    }

    struct Bytes;
    impl<'de> de::Visitor<'de> for Bytes {
        type Value = Vec<u8>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("bytes")
        }

        fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
            Ok(v.to_vec())
        }

        fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
            Ok(v)
        }

        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 20));
            while let Some(b) = seq.next_element()? {
                out.push(b);
            }
            Ok(out)
        }
    }
}

impl FileResponse {
    /// The answer's frame in two parts, whose concatenation is exactly
    /// its postcard encoding: a few bytes of header and the range's bytes
    /// as they are (not copied into one buffer with the header).
    pub fn to_frame(&self) -> Result<(Vec<u8>, &[u8]), postcard::Error> {
        match self {
            // The variant's index, the size, the bytes' length: postcard
            // writes all three as varints, as it does the enum's fields.
            FileResponse::Range { size, encoded } => Ok((
                postcard::to_stdvec(&(0u32, *size, encoded.len() as u64))?,
                &encoded[..],
            )),
            other => Ok((postcard::to_stdvec(other)?, &[])),
        }
    }

    /// Decodes an answer's frame, keeping the range's bytes where they are
    /// in the frame's own buffer rather than copying or moving them.
    pub fn from_frame(mut frame: Vec<u8>) -> Result<Self, postcard::Error> {
        /// [`FileResponse`] with the range's bytes borrowed from the frame
        /// (the same variants in the same order: the same encoding).
        #[derive(Deserialize)]
        enum Borrowed<'a> {
            Range {
                size: u64,
                #[serde(borrow)]
                encoded: &'a [u8],
            },
            NotHeld,
            Busy,
        }
        let (size, at) = match postcard::from_bytes::<Borrowed>(&frame)? {
            Borrowed::Range { size, encoded } => {
                let start = encoded.as_ptr() as usize - frame.as_ptr() as usize;
                (size, start..start + encoded.len())
            }
            Borrowed::NotHeld => return Ok(FileResponse::NotHeld),
            Borrowed::Busy => return Ok(FileResponse::Busy),
        };
        frame.truncate(at.end);
        Ok(FileResponse::Range {
            size,
            encoded: Encoded {
                buf: frame,
                start: at.start,
            },
        })
    }
}

/// A request the fetcher wants sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub token: u64,
    pub peer: NodeId,
    pub request: FileRequest,
}

/// What happened to a download.
#[derive(Debug)]
pub enum Step {
    /// `bytes` more verified.
    Progress { hash: String, bytes: u64 },
    /// Every group verified: the caller checks the whole file once more
    /// and moves it into the store ([`Partial::finish`], disk work best
    /// done off an event loop).
    Complete { partial: Partial },
    /// Given up (a local error: disk full, permissions).
    Failed { hash: String, reason: String },
    /// `peer` sent content that does not verify (or a response cut short):
    /// the node penalises it. `bytes` before the fault were kept.
    Violation {
        peer: NodeId,
        hash: String,
        reason: String,
    },
}

#[derive(Debug)]
struct Job {
    partial: Partial,
    on_demand: bool,
    /// Peers that said they do not hold it (or sent a bad answer).
    lacking: BTreeSet<NodeId>,
    /// Range starts in flight.
    asked: BTreeSet<u64>,
}

#[derive(Debug)]
struct Flight {
    peer: NodeId,
    hash: String,
    range: Range<u64>,
}

/// A download's progress, for status and progress bars.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    pub hash: String,
    pub done: u64,
    pub total: u64,
    /// Peers asked right now.
    pub sources: usize,
    /// No connected member has it (every one said so, or none is connected).
    pub stalled: bool,
}

/// The downloads in progress.
#[derive(Debug, Default)]
pub struct Fetcher {
    jobs: BTreeMap<String, Job>,
    peers: BTreeSet<NodeId>,
    flights: HashMap<u64, Flight>,
    next_token: u64,
}

impl Fetcher {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts getting the file whose download is `partial`.
    pub fn add(&mut self, partial: Partial, on_demand: bool) {
        let hash = partial.hash().to_string();
        match self.jobs.get_mut(&hash) {
            Some(job) => job.on_demand |= on_demand,
            None => {
                self.jobs.insert(
                    hash,
                    Job {
                        partial,
                        on_demand,
                        lacking: BTreeSet::new(),
                        asked: BTreeSet::new(),
                    },
                );
            }
        }
    }

    pub fn is_fetching(&self, hash: &str) -> bool {
        self.jobs.contains_key(hash)
    }

    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    /// Makes every download's verified bytes durable and recorded, each on
    /// a thread of its own (the caller goes on meanwhile).
    pub fn checkpoint(&mut self) {
        for job in self.jobs.values_mut() {
            if let Err(e) = job.partial.checkpoint_in_background() {
                tracing::warn!(hash = %job.partial.hash(), error = %e, "cannot save a download's progress");
            }
        }
    }

    /// Downloads in progress.
    pub fn len(&self) -> usize {
        self.jobs.len()
    }

    /// Downloads in progress that nobody asked for.
    pub fn automatic(&self) -> usize {
        self.jobs.values().filter(|j| !j.on_demand).count()
    }

    /// Stops getting `hash` (erased, say); its partial download stays for
    /// the caller to remove.
    pub fn cancel(&mut self, hash: &str) {
        self.drop_job(hash);
    }

    /// Forgets the download of `hash` with its requests in flight: their
    /// answers are ignored when they come (they were asked for a download
    /// that may come back with another declared size, whose groups they
    /// would not fit).
    fn drop_job(&mut self, hash: &str) {
        self.flights.retain(|_, f| f.hash != hash);
        self.jobs.remove(hash);
    }

    pub fn connected(&mut self, peer: NodeId) {
        self.peers.insert(peer);
    }

    pub fn disconnected(&mut self, peer: &NodeId) {
        self.peers.remove(peer);
    }

    /// Forgets which peers said they lack what: they may have it by now.
    pub fn retry(&mut self) {
        for job in self.jobs.values_mut() {
            job.lacking.clear();
        }
    }

    fn in_flight_to(&self, peer: &NodeId) -> usize {
        self.flights.values().filter(|f| &f.peer == peer).count()
    }

    /// The requests to send now.
    pub fn requests(&mut self) -> Vec<Outgoing> {
        let mut out = Vec::new();
        let mut load: BTreeMap<NodeId, usize> = self
            .peers
            .iter()
            .map(|p| (*p, self.in_flight_to(p)))
            .collect();
        let mut total = self.flights.len();
        // Files asked for on demand first.
        let mut order: Vec<&String> = self.jobs.keys().collect();
        order.sort_by_key(|h| !self.jobs[*h].on_demand);
        let order: Vec<String> = order.into_iter().cloned().collect();
        for hash in order {
            let job = self.jobs.get_mut(&hash).expect("listed");
            for range in job.partial.missing(MAX_RANGE) {
                if total >= IN_FLIGHT {
                    return out;
                }
                if job.asked.contains(&range.start) {
                    continue;
                }
                let Some((&peer, n)) = load
                    .iter_mut()
                    .filter(|(p, n)| !job.lacking.contains(*p) && **n < PER_PEER)
                    .min_by_key(|(_, n)| **n)
                else {
                    break;
                };
                *n += 1;
                total += 1;
                job.asked.insert(range.start);
                let token = self.next_token;
                self.next_token += 1;
                let request = FileRequest {
                    hash: *blake3::Hash::from_hex(&hash)
                        .expect("jobs have valid hashes")
                        .as_bytes(),
                    start: range.start,
                    end: range.end,
                };
                self.flights.insert(
                    token,
                    Flight {
                        peer,
                        hash: hash.clone(),
                        range,
                    },
                );
                out.push(Outgoing {
                    token,
                    peer,
                    request,
                });
            }
        }
        out
    }

    /// A request failed (timeout, connection closed): its range is asked
    /// again, of whoever can answer; `lacks`: the peer cannot answer at all
    /// (it does not speak the protocol).
    pub fn failed(&mut self, token: u64, lacks: bool) {
        if let Some(f) = self.flights.remove(&token)
            && let Some(job) = self.jobs.get_mut(&f.hash)
        {
            job.asked.remove(&f.range.start);
            if lacks {
                job.lacking.insert(f.peer);
            }
        }
    }

    /// Takes the answer to request `token`.
    pub fn response(&mut self, token: u64, response: FileResponse) -> Vec<Step> {
        let Some(f) = self.flights.remove(&token) else {
            return Vec::new();
        };
        let Some(job) = self.jobs.get_mut(&f.hash) else {
            return Vec::new();
        };
        job.asked.remove(&f.range.start);
        let mut steps = Vec::new();
        match response {
            FileResponse::NotHeld | FileResponse::Busy => {
                job.lacking.insert(f.peer);
            }
            FileResponse::Range { size, .. } if size != job.partial.size() => {
                // The entry and the sender disagree on the size: one of
                // them is wrong, and the content could not verify either
                // way. Not proof that the sender lies; just not a source.
                tracing::debug!(peer = %f.peer, hash = %f.hash, size, "a peer holds the file with another size");
                job.lacking.insert(f.peer);
            }
            FileResponse::Range { encoded, .. } => {
                let applied = job.partial.apply(&f.range, &encoded);
                // The answer's buffer goes to the next answer.
                crate::net::spare::give(encoded.into_buffer());
                match applied {
                    Ok(bytes) => {
                        if bytes > 0 {
                            steps.push(Step::Progress {
                                hash: f.hash.clone(),
                                bytes,
                            });
                        }
                    }
                    Err((bytes, refused)) => {
                        if bytes > 0 {
                            steps.push(Step::Progress {
                                hash: f.hash.clone(),
                                bytes,
                            });
                        }
                        match refused {
                            Refused::Violation(reason) => {
                                job.lacking.insert(f.peer);
                                steps.push(Step::Violation {
                                    peer: f.peer,
                                    hash: f.hash.clone(),
                                    reason,
                                });
                            }
                            Refused::Local(e) => {
                                self.drop_job(&f.hash);
                                steps.push(Step::Failed {
                                    hash: f.hash,
                                    reason: e.to_string(),
                                });
                                return steps;
                            }
                        }
                    }
                }
            }
        }
        if job.partial.is_complete() && job.asked.is_empty() {
            let job = self.jobs.remove(&f.hash).expect("present");
            steps.push(Step::Complete {
                partial: job.partial,
            });
        }
        steps
    }

    /// Completes downloads that need no request at all (an empty file, or
    /// one whose every group verified before a restart).
    pub fn finish_ready(&mut self) -> Vec<Step> {
        let ready: Vec<String> = self
            .jobs
            .iter()
            .filter(|(_, j)| j.partial.is_complete() && j.asked.is_empty())
            .map(|(h, _)| h.clone())
            .collect();
        let mut steps = Vec::new();
        for hash in ready {
            let job = self.jobs.remove(&hash).expect("listed");
            steps.push(Step::Complete {
                partial: job.partial,
            });
        }
        steps
    }

    /// Every download's progress.
    pub fn progress(&self) -> Vec<Progress> {
        self.jobs
            .iter()
            .map(|(hash, job)| {
                let sources: BTreeSet<&NodeId> = self
                    .flights
                    .values()
                    .filter(|f| &f.hash == hash)
                    .map(|f| &f.peer)
                    .collect();
                Progress {
                    hash: hash.clone(),
                    done: job.partial.verified_bytes(),
                    total: job.partial.size(),
                    sources: sources.len(),
                    stalled: job.asked.is_empty()
                        && self.peers.iter().all(|p| job.lacking.contains(p)),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blobs::BlobStore;

    fn peer() -> NodeId {
        NodeId::from(libp2p::PeerId::random())
    }

    /// A store holding `len` bytes, the hash, and an empty store to fetch into.
    fn setup(
        len: usize,
    ) -> (
        tempfile::TempDir,
        BlobStore,
        tempfile::TempDir,
        BlobStore,
        String,
    ) {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (sa, sb) = (BlobStore::new(a.path()), BlobStore::new(b.path()));
        let bytes: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        let hash = sa.put(&mut &bytes[..], u64::MAX, None).unwrap().hash;
        (a, sa, b, sb, hash)
    }

    fn answer(store: &BlobStore, r: &FileRequest) -> FileResponse {
        let (size, encoded) = store
            .encode_range(&r.hash_hex(), r.start..r.end)
            .unwrap()
            .unwrap();
        FileResponse::Range {
            size,
            encoded: encoded.into(),
        }
    }

    #[test]
    fn ranges_spread_over_peers_within_the_window_and_a_peer_that_lacks_is_not_asked_again() {
        let (_a, sa, _b, sb, hash) = setup(10 * MAX_RANGE as usize);
        let mut f = Fetcher::new();
        f.add(sb.partial(&hash, 10 * MAX_RANGE).unwrap(), false);
        let (p, q, r) = (peer(), peer(), peer());
        for x in [p, q, r] {
            f.connected(x);
        }
        let out = f.requests();
        // Ten ranges, spread evenly, four at most per peer, no range twice.
        assert_eq!(out.len(), 10);
        for x in [p, q, r] {
            assert!(out.iter().filter(|o| o.peer == x).count() <= PER_PEER);
        }
        let starts: BTreeSet<u64> = out.iter().map(|o| o.request.start).collect();
        assert_eq!(starts.len(), 10);
        assert!(
            f.requests().is_empty(),
            "nothing more while all are in flight"
        );

        // r lacks the file: its ranges go to p and q, never back to r.
        let mut steps = Vec::new();
        for o in &out {
            let response = if o.peer == r {
                FileResponse::NotHeld
            } else {
                answer(&sa, &o.request)
            };
            steps.extend(f.response(o.token, response));
        }
        let again = f.requests();
        assert_eq!(again.len(), out.iter().filter(|o| o.peer == r).count());
        assert!(again.iter().all(|o| o.peer != r));
        for o in &again {
            steps.extend(f.response(o.token, answer(&sa, &o.request)));
        }
        assert!(matches!(steps.last(), Some(Step::Complete { .. })));
        assert!(f.is_empty());
    }

    #[test]
    fn a_range_is_on_the_wire_exactly_as_a_sequence_of_bytes_was() {
        #[derive(Serialize)]
        enum Before {
            Range { size: u64, encoded: Vec<u8> },
        }
        let encoded: Vec<u8> = (0..300u32).map(|i| (i * 7) as u8).collect();
        let before = postcard::to_stdvec(&Before::Range {
            size: 9,
            encoded: encoded.clone(),
        })
        .unwrap();
        let now = FileResponse::Range {
            size: 9,
            encoded: encoded.into(),
        };
        assert_eq!(postcard::to_stdvec(&now).unwrap(), before);
        assert_eq!(postcard::from_bytes::<FileResponse>(&before).unwrap(), now);
    }

    #[test]
    fn an_answer_framed_in_two_parts_is_its_postcard_encoding_both_ways() {
        let big: Vec<u8> = (0..(MAX_RANGE as usize + 4096))
            .map(|i| (i % 251) as u8)
            .collect();
        for answer in [
            FileResponse::Range {
                size: u64::MAX,
                encoded: big.into(),
            },
            FileResponse::Range {
                size: 0,
                encoded: Vec::new().into(),
            },
            FileResponse::NotHeld,
            FileResponse::Busy,
        ] {
            let whole = postcard::to_stdvec(&answer).unwrap();
            let (head, tail) = answer.to_frame().unwrap();
            assert_eq!([head.as_slice(), tail].concat(), whole);
            let decoded = FileResponse::from_frame(whole.clone()).unwrap();
            assert_eq!(decoded, answer);
            // Decoded, the range is where it was in the frame (not copied
            // or moved), and framed again it is the same frame.
            if let FileResponse::Range { encoded, .. } = &decoded {
                let frame = whole.clone();
                let at = frame.as_ptr() as usize + frame.len() - encoded.len();
                let FileResponse::Range { encoded: kept, .. } =
                    FileResponse::from_frame(frame).unwrap()
                else {
                    unreachable!()
                };
                assert_eq!(kept.as_ptr() as usize, at);
                assert_eq!(kept.into_buffer().len(), whole.len());
            }
            let (head, tail) = decoded.to_frame().unwrap();
            assert_eq!([head.as_slice(), tail].concat(), whole);
            // Cut short or with a wrong length: an error, as postcard's own.
            let cut = whole[..whole.len() - 1].to_vec();
            assert_eq!(
                FileResponse::from_frame(cut.clone()).is_err(),
                postcard::from_bytes::<FileResponse>(&cut).is_err()
            );
        }
        assert!(FileResponse::from_frame(vec![7]).is_err());
    }

    #[test]
    fn an_answer_asked_for_a_cancelled_download_is_ignored_when_it_comes_back() {
        let size = 200 * 1024u64;
        let (_a, sa, _b, sb, hash) = setup(size as usize);
        let mut f = Fetcher::new();
        let p = peer();
        f.connected(p);
        // An entry declared the hash 100 KiB + 5 bytes long: its request
        // ends inside a group of the real file.
        f.add(sb.partial(&hash, 100 * 1024 + 5).unwrap(), false);
        let stale = f.requests().remove(0);
        // Erased, then declared again with the real size; the answer to
        // the old request comes back only now.
        f.cancel(&hash);
        sb.remove_partial(&hash).unwrap();
        f.add(sb.partial(&hash, size).unwrap(), false);
        assert!(
            f.response(stale.token, answer(&sa, &stale.request))
                .is_empty()
        );
        let mut done = None;
        while done.is_none() {
            let out = f.requests();
            assert!(!out.is_empty(), "the download stalled");
            for o in out {
                for s in f.response(o.token, answer(&sa, &o.request)) {
                    if let Step::Complete { partial } = s {
                        done = Some(partial);
                    }
                }
            }
        }
        done.unwrap().finish().unwrap();
        assert_eq!(
            std::fs::read(sb.path(&hash).unwrap()).unwrap(),
            std::fs::read(sa.path(&hash).unwrap()).unwrap()
        );
    }

    #[test]
    fn a_bad_answer_names_its_sender_and_its_range_is_asked_of_another() {
        let (_a, sa, _b, sb, hash) = setup(MAX_RANGE as usize);
        let mut f = Fetcher::new();
        f.add(sb.partial(&hash, MAX_RANGE).unwrap(), true);
        let liar = peer();
        f.connected(liar);
        let out = f.requests();
        assert_eq!(out.len(), 1);
        let FileResponse::Range { size, mut encoded } = answer(&sa, &out[0].request) else {
            unreachable!()
        };
        encoded[100] ^= 1;
        let steps = f.response(out[0].token, FileResponse::Range { size, encoded });
        assert!(matches!(&steps[..], [Step::Violation { peer, .. }] if *peer == liar));
        assert!(f.requests().is_empty(), "the liar is not asked again");
        assert!(f.progress()[0].stalled);
        let honest = peer();
        f.connected(honest);
        let out = f.requests();
        assert_eq!(out[0].peer, honest);
        let steps = f.response(out[0].token, answer(&sa, &out[0].request));
        assert!(matches!(&steps[..], [.., Step::Complete { .. }]));
    }
}
