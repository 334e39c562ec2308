//! What each fuzz target checks, as plain functions of the input bytes.
//!
//! The targets in `fuzz_targets/` call these under libFuzzer; the normal
//! test suite compiles this same file into `node/tests/fuzz_seeds.rs` and
//! runs every input of the seed corpus (`fuzz/corpus/<target>/`) through
//! it, so the checks are built and exercised without `cargo fuzz`.
//!
//! Every input starts from a fresh node: the homes are built once (a
//! template) and copied into a new temporary directory per input, so a
//! crash replays from its input alone.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::Path;

use convene_model::{
    Body as EntryBody, DocumentId, EntryInput, Kind, Learning, Status, Visibility,
};
use convene_node::bundle::{self, Body};
use convene_node::net::{Inbound, SyncCodec};
use convene_node::sync::catalogue::Fingerprint;
use convene_node::sync::session::MAX_ROUNDS;
use convene_node::sync::wire::{
    self, DocHeads, DocId, MAX_MESSAGE_BYTES, RangeResult, Request, Response, WireChange,
};
use convene_node::sync::{Event, Input, Io, NodeReplica, Replica, Service};
use convene_node::tabular;
use convene_node::{Identity, InitOptions, Node, NodeId, SignedChange};
use futures::executor::block_on;
use libp2p::StreamProtocol;
use libp2p::request_response::Codec;
use serde::{Deserialize, Serialize};

fn options(org: &str, sector: &str) -> InitOptions {
    InitOptions {
        org: org.into(),
        sector: sector.into(),
        place: None,
    }
}

fn learning(title: &str, visibility: Option<Visibility>, status: Option<Status>) -> EntryInput {
    EntryInput {
        body: EntryBody::Learning(Learning {
            title: title.into(),
            summary: "What the fuzzer may ask for.".into(),
            ..Default::default()
        }),
        visibility,
        status,
    }
}

/// Copies a node's home (its key, database and files; no process has it
/// open) into a new temporary directory.
fn fresh_copy(template: &Path) -> tempfile::TempDir {
    fn copy(from: &Path, to: &Path) {
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                std::fs::create_dir(&target).unwrap();
                copy(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), &target).unwrap();
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    copy(template, dir.path());
    dir
}

// ---------------------------------------------------------------- wire

fn roundtrip<T>(bytes: &[u8])
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    if let Ok(msg) = wire::decode::<T>(bytes) {
        let again = wire::encode(&msg);
        let back: T = wire::decode(&again).expect("an encoded message decodes");
        assert_eq!(back, msg);
    }
}

/// The sync wire format: arbitrary bytes through the frame reader of the
/// libp2p codec and the message decoder. Nothing may panic or decode into
/// a message that does not encode back to itself; a frame decodes whole
/// (a byte more is refused); the codec counts no more than it read.
pub fn wire(data: &[u8]) {
    // The message decoder on its own.
    roundtrip::<Request>(data);
    roundtrip::<Response>(data);
    if let Ok(r) = wire::decode::<Request>(data)
        && r.check().is_ok()
    {
        let _ = r.kind();
        if let Request::PutChanges { changes, erased } = r {
            let _ = wire::into_signed(changes, erased);
        }
    }
    if let Ok(r) = wire::decode::<Response>(data) {
        let _ = r.check();
    }

    // The codec: the same bytes as a stream (length prefix included).
    let protocol = StreamProtocol::new(wire::PROTOCOL);
    let mut codec = SyncCodec::default();
    let mut io = futures::io::Cursor::new(data);
    match block_on(codec.read_request(&protocol, &mut io)) {
        Ok(Inbound::Request(r)) => {
            let len = u32::from_be_bytes(data[..4].try_into().unwrap()) as usize;
            assert!(len <= MAX_MESSAGE_BYTES);
            let mut longer = data[4..4 + len].to_vec();
            assert_eq!(wire::decode::<Request>(&longer), Ok(r));
            longer.push(0);
            assert!(wire::decode::<Request>(&longer).is_err(), "trailing bytes");
        }
        Ok(Inbound::Invalid(_)) | Err(_) => {}
    }
    let mut io = futures::io::Cursor::new(data);
    let _ = block_on(codec.read_response(&protocol, &mut io));
    assert!(codec.counters.received() <= 2 * (data.len() as u64));
}

// ------------------------------------------------------------- service

/// Which peer a step comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Who {
    /// A member of the node's community (another organisation).
    Member,
    /// A peer that is not a member: it must learn nothing.
    Stranger,
}

/// One thing a hostile peer (or the runtime) does.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Step {
    Request(Who, Request),
    /// Asks for the home's documents by index (the fuzzer cannot know
    /// their ids), as a peer that has none of them.
    Get(Who, Vec<u8>),
    /// Answers the oldest request the node has in flight.
    Respond(Response),
    /// Answers the oldest reconciliation the node has in flight by
    /// splitting every range it asked about: "all differ, too many to
    /// list", for ever.
    Split,
    /// The oldest request in flight fails (timeout, closed stream).
    Fail,
    /// The runtime starts a session with the member.
    Sync,
    Tick,
    Reconnect(Who),
}

/// The home the `service` target copies for every input: a node in a
/// community with one other member organisation, holding entries every
/// member sees, entries only its own organisation sees, and drafts.
#[derive(Debug)]
pub struct ServiceHome {
    dir: tempfile::TempDir,
    member: NodeId,
    stranger: NodeId,
    /// Every entry published, in a fixed order ([`Step::Get`] indexes it).
    docs: Vec<DocId>,
    /// The entries the member may not see (its organisation's own and
    /// drafts).
    hidden: BTreeSet<DocId>,
}

impl Default for ServiceHome {
    fn default() -> Self {
        Self::new()
    }
}

impl ServiceHome {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let steward = Node::init(dir.path(), &options("Fuzz Trust", "nhs-trust")).unwrap();
        let member_dir = tempfile::tempdir().unwrap();
        let mut member =
            Node::init(member_dir.path(), &options("Fuzz Council", "council")).unwrap();
        let mut replica = NodeReplica::new(steward).unwrap();
        replica.node_mut().create_community("Fuzz").unwrap();
        let code = replica
            .node_mut()
            .invite(3_600_000, false, None, Vec::new())
            .unwrap();
        member.accept_invite(&code).unwrap();
        let claim = member.join_changes().unwrap();
        replica
            .join(&member.node_id(), claim)
            .expect("the member joins");
        let mut docs = Vec::new();
        let mut hidden = BTreeSet::new();
        let node = replica.node_mut();
        for i in 0..30 {
            docs.push(
                node.publish(learning(&format!("Lesson {i}"), None, None))
                    .unwrap(),
            );
        }
        let to_member = Visibility::Orgs(vec![member.org()]);
        docs.push(
            node.publish(learning("Shared with the council", Some(to_member), None))
                .unwrap(),
        );
        for i in 0..4 {
            let own = learning(&format!("Own {i}"), Some(Visibility::Organisation), None);
            let id = node.publish(own).unwrap();
            docs.push(id);
            hidden.insert(id);
        }
        for i in 0..3 {
            let draft = learning(&format!("Draft {i}"), None, Some(Status::Draft));
            let id = node.publish(draft).unwrap();
            docs.push(id);
            hidden.insert(id);
        }
        let member = member.node_id();
        let stranger = Identity::generate().node_id();
        assert!(replica.admit(&member).is_ok(), "the member is admitted");
        assert!(replica.admit(&stranger).is_err(), "the stranger is not");
        let docs: Vec<DocId> = docs.iter().map(DocumentId::as_bytes).copied().collect();
        let hidden = hidden.iter().map(DocumentId::as_bytes).copied().collect();
        Self {
            dir,
            member,
            stranger,
            docs,
            hidden,
        }
    }

    fn peer(&self, who: Who) -> NodeId {
        match who {
            Who::Member => self.member,
            Who::Stranger => self.stranger,
        }
    }

    /// The sync core under a hostile peer: a sequence of [`Step`]s
    /// (postcard-encoded) fed to the sans-IO [`Service`] of a fresh copy
    /// of the home. The service must never panic, must answer every
    /// request exactly once (or disconnect its peer), must send a peer
    /// that is not a member nothing but refusals, must never tell the
    /// member anything about a document it may not see, must keep its own
    /// requests to the limits, must end every session within
    /// [`MAX_ROUNDS`] reconciliation rounds, and every session must end
    /// once its requests fail.
    pub fn run(&self, data: &[u8]) {
        let Ok(steps) = postcard::from_bytes::<Vec<Step>>(data) else {
            return;
        };
        if steps.len() > 64 {
            return;
        }
        let home = fresh_copy(self.dir.path());
        let node = Node::open(home.path()).unwrap();
        let mut run = Run {
            home: self,
            service: Service::new(NodeReplica::new(node).unwrap()),
            now: 1_700_000_000_000,
            in_flight: VecDeque::new(),
            open: BTreeMap::new(),
            next_channel: 1,
            rounds: 0,
            sends: 0,
            salt: 0,
        };
        run.input(Input::Connected { peer: self.member });
        run.input(Input::Connected {
            peer: self.stranger,
        });
        for step in steps {
            run.step(step);
        }
        // The runtime times out whatever is still in flight: every session
        // must then end.
        for _ in 0..10_000 {
            let Some((token, _)) = run.in_flight.pop_front() else {
                break;
            };
            run.input(Input::Failed {
                peer: self.member,
                token,
                error: "timeout".into(),
            });
        }
        assert!(
            run.in_flight.is_empty(),
            "requests go on after every one failed"
        );
        assert!(
            !run.service.is_syncing(&self.member),
            "a session did not end when its requests failed"
        );
        assert!(
            run.open.is_empty(),
            "requests never answered: {:?}",
            run.open
        );
        assert!(run.sends <= 64 * 64, "{} requests from 64 steps", run.sends);
    }
}

/// One input's run of the `service` target.
struct Run<'a> {
    home: &'a ServiceHome,
    service: Service<NodeReplica>,
    now: i64,
    /// The node's requests not yet answered or failed.
    in_flight: VecDeque<(u64, Request)>,
    /// Requests to the node not yet answered, with who asked.
    open: BTreeMap<u64, Who>,
    next_channel: u64,
    /// Reconciliation requests in the member's current session.
    rounds: u32,
    sends: usize,
    salt: u128,
}

impl Run<'_> {
    fn step(&mut self, step: Step) {
        let member = self.home.member;
        match step {
            Step::Request(who, request) => self.request(who, request),
            Step::Get(who, which) => {
                let docs = &self.home.docs;
                let docs = which
                    .iter()
                    .map(|i| DocHeads {
                        doc: docs[*i as usize % docs.len()],
                        heads: Vec::new(),
                    })
                    .collect();
                self.request(who, Request::GetChanges { docs });
            }
            Step::Respond(response) => {
                if let Some((token, _)) = self.in_flight.pop_front() {
                    self.input(Input::Response {
                        peer: member,
                        token,
                        response,
                    });
                }
            }
            Step::Split => {
                let Some(i) = self
                    .in_flight
                    .iter()
                    .position(|(_, r)| matches!(r, Request::Reconcile { .. }))
                else {
                    return;
                };
                let (token, Request::Reconcile { ranges }) = self.in_flight.remove(i).unwrap()
                else {
                    unreachable!()
                };
                let mut results = Vec::new();
                for (range, _) in ranges {
                    let children = range.children().into_iter().map(|c| {
                        self.salt += 1;
                        let fp = Fingerprint {
                            count: 1_000_000,
                            sum: self.salt,
                        };
                        (c, fp)
                    });
                    results.push(RangeResult::Split(children.collect()));
                }
                self.input(Input::Response {
                    peer: member,
                    token,
                    response: Response::Reconcile { results },
                });
            }
            Step::Fail => {
                if let Some((token, _)) = self.in_flight.pop_front() {
                    self.input(Input::Failed {
                        peer: member,
                        token,
                        error: "fuzz".into(),
                    });
                }
            }
            Step::Sync => self.input(Input::Sync { peer: member }),
            Step::Tick => self.input(Input::Tick),
            Step::Reconnect(who) => {
                let peer = self.home.peer(who);
                self.input(Input::Disconnected { peer });
                self.input(Input::Connected { peer });
            }
        }
    }

    fn request(&mut self, who: Who, request: Request) {
        let channel = self.next_channel;
        self.next_channel += 1;
        self.open.insert(channel, who);
        let peer = self.home.peer(who);
        self.input(Input::Request {
            peer,
            channel,
            request,
        });
        assert!(
            !self.open.contains_key(&channel),
            "a request was neither answered nor its peer disconnected"
        );
    }

    /// Feeds one input and carries out what the service asks, as the
    /// runtime would (a disconnected peer's connection closes).
    fn input(&mut self, input: Input) {
        self.now += 10;
        self.service.handle(self.now, input);
        let mut closed = Vec::new();
        while let Some(io) = self.service.next_io() {
            match io {
                Io::Send {
                    peer,
                    token,
                    request,
                } => {
                    assert_eq!(peer, self.home.member, "sent {request:?} to a stranger");
                    request.check().expect("the node keeps to the limits");
                    self.assert_hidden_from_member(&request_docs(&request), request.kind());
                    if matches!(request, Request::Reconcile { .. }) {
                        self.rounds += 1;
                        assert!(
                            self.rounds <= MAX_ROUNDS,
                            "a session went on past {MAX_ROUNDS} reconciliation rounds"
                        );
                    }
                    self.in_flight.push_back((token, request));
                    self.sends += 1;
                }
                Io::Respond { channel, response } => {
                    let who = self.open.remove(&channel).expect("answered twice");
                    match who {
                        Who::Stranger => assert!(
                            matches!(response, Response::Refused { .. }),
                            "a peer that is not a member got {response:?}"
                        ),
                        Who::Member => {
                            let _ = response.check();
                            self.assert_hidden_from_member(&response_docs(&response), "an answer");
                        }
                    }
                }
                Io::Disconnect { peer, .. } => closed.push(peer),
                Io::Event(event) => match event {
                    Event::SessionDone { peer, stats } => {
                        assert!(stats.reconcile_rounds <= MAX_ROUNDS, "{stats:?}");
                        if peer == self.home.member {
                            self.rounds = 0;
                        }
                    }
                    Event::SessionFailed { peer, .. } if peer == self.home.member => {
                        self.rounds = 0;
                    }
                    Event::Admitted { peer } | Event::Joined { peer, .. } => {
                        assert_ne!(peer, self.home.stranger, "a stranger was admitted");
                    }
                    _ => {}
                },
            }
        }
        for peer in closed {
            let who = if peer == self.home.member {
                Who::Member
            } else {
                Who::Stranger
            };
            self.open.retain(|_, w| *w != who);
            if who == Who::Member {
                self.in_flight.clear();
            }
            self.input(Input::Disconnected { peer });
            self.input(Input::Connected { peer });
        }
    }

    fn assert_hidden_from_member(&self, docs: &[DocId], what: &str) {
        for doc in docs {
            assert!(
                !self.home.hidden.contains(doc),
                "the member was told of document {doc:02x?}, which it may not see, in {what}"
            );
        }
    }
}

/// The documents a response shows (not those it only echoes back).
fn response_docs(response: &Response) -> Vec<DocId> {
    match response {
        Response::Reconcile { results } => results
            .iter()
            .flat_map(|r| match r {
                RangeResult::Items(items) => items.iter().map(|(d, _)| *d).collect(),
                _ => Vec::new(),
            })
            .collect(),
        Response::Changes {
            changes,
            heads,
            erased,
            ..
        } => changes
            .iter()
            .map(|c| c.doc)
            .chain(heads.iter().map(|h| h.doc))
            .chain(erased.iter().map(|t| t.doc))
            .collect(),
        _ => Vec::new(),
    }
}

/// The documents a request of the node shows.
fn request_docs(request: &Request) -> Vec<DocId> {
    match request {
        Request::Announce { items } => items.iter().map(|(d, _)| *d).collect(),
        Request::PutChanges { changes, erased } => changes
            .iter()
            .map(|c| c.doc)
            .chain(erased.iter().map(|t| t.doc))
            .collect(),
        _ => Vec::new(),
    }
}

// -------------------------------------------------------------- bundle

/// The home the `bundle` target copies for every input: a node with one
/// entry for bundles to change.
#[derive(Debug)]
pub struct BundleHome {
    dir: tempfile::TempDir,
}

impl Default for BundleHome {
    fn default() -> Self {
        Self::new()
    }
}

impl BundleHome {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut node = Node::init(dir.path(), &options("Fuzz Council", "council")).unwrap();
        node.publish(learning("Seed", None, None)).unwrap();
        Self { dir }
    }

    /// `convene import`: arbitrary bundle files, into a fresh copy of the
    /// home. Bytes that start with the bundle magic go through the
    /// streaming importer as `convene import` runs it (checksum, then
    /// every record read in bounded memory, verified, applied in batches)
    /// and through the whole-body reader; other bytes are taken as the
    /// decoded body itself, so mutations reach the importer past the
    /// checksum. A body re-encodes to a bundle that decodes to the same
    /// body. Changes whose bytes parse as automerge changes are then
    /// re-signed by the importing node, so that arbitrary (but validly
    /// signed) change bytes reach the permission checks, apply and the
    /// store. Nothing may panic, and the store must pass
    /// `PRAGMA integrity_check` afterwards.
    pub fn run(&self, data: &[u8]) {
        let whole = data.starts_with(b"CONVENE-BUNDLE\n");
        let body = if whole {
            bundle::decode(data).ok()
        } else {
            postcard::from_bytes::<Body>(data).ok()
        };
        if let Some(body) = &body {
            let again = bundle::decode(&bundle::encode(body)).expect("an encoded bundle decodes");
            assert_eq!(&again, body, "a bundle does not round-trip");
        }
        if !whole && body.is_none() {
            return;
        }
        let home = fresh_copy(self.dir.path());
        let mut node = Node::open(home.path()).unwrap();
        if whole {
            let _ = node.import_bundle_from(|| Ok(data), &mut |_, _, _| {});
            assert_eq!(node.store().integrity_check().unwrap(), "ok");
        }
        let Some(mut body) = body else {
            return;
        };
        if body.changes.len() > 64 || body.tombstones.len() > 64 {
            return;
        }
        let _ = bundle::hashes(&body);
        let _ = bundle::documents(&body);
        // As sent: signatures must be checked (a forged one refuses all).
        let _ = node.import_bundle(body.clone());
        // Re-signed by this node: arbitrary change bytes with good
        // signatures.
        body.changes = body
            .changes
            .iter()
            .filter_map(|c| {
                // Only what a node would decode: a stale checksum set
                // right, and nothing that declares more than any change.
                let mut bytes = c.bytes.clone();
                convene_node::trust::columns::forge::fix_checksum(&mut bytes);
                convene_node::trust::columns::read(&bytes).ok()?;
                let change = automerge::Change::try_from(bytes.as_slice()).ok()?;
                let signed =
                    SignedChange::sign(node.identity(), DocumentId::from_bytes(c.doc), &change);
                Some(WireChange::from(&signed))
            })
            .collect();
        let _ = node.import_bundle(body);
        assert_eq!(node.store().integrity_check().unwrap(), "ok");
    }
}

// ----------------------------------------------------------------- csv

/// The home the `csv` target copies for every input: a fresh node.
#[derive(Debug)]
pub struct CsvHome {
    dir: tempfile::TempDir,
}

impl Default for CsvHome {
    fn default() -> Self {
        Self::new()
    }
}

impl CsvHome {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        Node::init(dir.path(), &options("Fuzz Council", "council")).unwrap();
        Self { dir }
    }

    /// `convene import-csv`: arbitrary bytes as a spreadsheet of each kind
    /// (the first byte picks it). Reading must never panic; rows it
    /// accepts must publish, all of them (every row is checked before
    /// anything is written, so accepted rows are valid entries).
    pub fn run(&self, data: &[u8]) {
        let Some((&which, csv)) = data.split_first() else {
            return;
        };
        let kind = match which % 3 {
            0 => Kind::Learning,
            1 => Kind::Project,
            _ => Kind::Contact,
        };
        let vocab = convene_model::Vocabularies::default();
        let Ok(rows) = tabular::read_rows(kind, csv, &vocab) else {
            return;
        };
        if rows.is_empty() || rows.len() > 16 {
            return;
        }
        let home = fresh_copy(self.dir.path());
        let mut node = Node::open(home.path()).unwrap();
        let n = rows.len();
        let ids = node
            .publish_batch(rows)
            .expect("rows that passed the checks publish");
        assert_eq!(ids.len(), n);
        for id in ids {
            node.get(id).expect("a published row reads back");
        }
    }
}
