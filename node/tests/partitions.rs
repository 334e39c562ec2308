//! Random partitions, cuts and lost messages in the middle of sessions,
//! duplication and reordering, on 5–10 nodes of 3–5 organisations whose
//! nodes edit the same documents concurrently (the owner's nodes and the
//! co-editor organisations' nodes, in text, lists and maps): once the
//! faults stop and the nodes reconnect and resync as the daemon does, every
//! node holds the same documents with the same heads, every edit made
//! anywhere is in them, and nothing was rejected.
//!
//! The network delivers one message at a time, and the scenario decides
//! what happens between deliveries: a link is cut or a message lost
//! between a request and its answer, a node's timers fire (its tick, which
//! announces local writes, and its periodic resync), a node edits or
//! publishes. Healing uses only what the daemon does
//! (`node/src/daemon/event_loop.rs`): a node dials its bootstrap peer again,
//! which gives both sides `Connected` and the dialer a session; ticks; and
//! the resync timer, which starts a session with every connected peer it
//! dialled. The
//! test allows at most [`RESYNCS`] resync periods after reconnecting.
//!
//! Driven by proptest with a fixed RNG seed, so every run plays the same
//! scenarios (and a failure shrinks to a small one). The normal suite runs
//! 32 scenarios; the long form runs thousands, on more nodes, for longer:
//!
//! ```text
//! CONVENE_LONG=1 cargo test -p convene-node --release --test partitions -- --nocapture
//! ```
//!
//! `CONVENE_SEED=<u64>` plays other scenarios than the fixed default, and
//! `CONVENE_CASES=<n>` plays `n` of them.

mod sim;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use automerge::ReadDoc;
use convene_model::{
    Body, DataPoint, DocumentId, EntryInput, Learning, Measure, OrgId, Project, TeamMember,
};
use convene_node::Edit;
use convene_node::sync::Input;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestRunner};
use sim::{Faults, Net};

/// Resync periods the nodes get after reconnecting, to end identical.
const RESYNCS: usize = 1;

/// One edit of a shared entry, through the node's own edit path.
#[derive(Debug, Clone, Copy)]
enum Change {
    /// Insert a word into the entry's prose (a learning's body, a
    /// project's problem) at `at`/256 of its length, deleting up to `cut`
    /// characters after it.
    Text { at: u8, cut: u8 },
    /// Insert an item into a list (tags; a project's team, whose items are
    /// maps).
    ListInsert { at: u8 },
    /// Remove an item from that list.
    ListRemove { at: u8 },
    /// Set a field of a map: the entry's own fields, or a team member's
    /// name.
    MapSet { field: u8, at: u8 },
    /// A dated value on a project's measure (a map appended to a list in a
    /// map in a list), or another organisation named on a learning entry.
    Append,
}

/// One thing that happens to the network.
#[derive(Debug, Clone)]
enum Op {
    /// The first node dials the second (which starts a session).
    Link(usize, usize),
    Cut(usize, usize),
    /// One of the links on which a session is running (the `k % n`-th of
    /// `n`) is cut.
    CutSession(usize),
    /// Up to this many messages are delivered.
    Deliver(usize),
    /// The next message is lost (its requester's request fails, as after a
    /// timeout).
    Drop,
    /// The node's tick: it announces its local writes.
    Tick(usize),
    /// The node's periodic resync: a session with every connected peer.
    Resync(usize),
    /// The node publishes an entry (a project, or a learning entry) and
    /// makes the organisations in `editors` (a bit mask) its co-editors.
    Publish {
        node: usize,
        project: bool,
        editors: u8,
    },
    /// The node (of the owner) makes another organisation a co-editor.
    AddEditor {
        node: usize,
        doc: usize,
        org: usize,
    },
    /// The node edits an entry, if it has it and may.
    Edit {
        node: usize,
        doc: usize,
        change: Change,
    },
}

#[derive(Debug, Clone)]
struct Scenario {
    /// Node `i` belongs to organisation `i % orgs`; nodes `orgs..` are the
    /// organisations' second nodes.
    orgs: usize,
    nodes: usize,
    ops: Vec<Op>,
    fault_seed: u64,
    /// Per mille.
    loss: u64,
    duplicate: u64,
    reorder: u64,
}

fn long() -> bool {
    std::env::var_os("CONVENE_LONG").is_some_and(|v| v != "0")
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        3 => (any::<u8>(), 0..4u8).prop_map(|(at, cut)| Change::Text { at, cut }),
        2 => any::<u8>().prop_map(|at| Change::ListInsert { at }),
        1 => any::<u8>().prop_map(|at| Change::ListRemove { at }),
        2 => (any::<u8>(), any::<u8>()).prop_map(|(field, at)| Change::MapSet { field, at }),
        1 => Just(Change::Append),
    ]
}

fn scenario() -> impl Strategy<Value = Scenario> {
    let (max_orgs, max_nodes, max_steps): (usize, usize, usize) =
        if long() { (5, 10, 240) } else { (4, 7, 80) };
    (3..=max_orgs)
        .prop_flat_map(move |orgs| (Just(orgs), (orgs + 1).max(5)..=(2 * orgs).min(max_nodes)))
        .prop_flat_map(move |(orgs, nodes)| {
            let node = 0..nodes;
            let op = prop_oneof![
                2 => (node.clone(), node.clone()).prop_map(|(a, b)| Op::Link(a, b)),
                1 => (node.clone(), node.clone()).prop_map(|(a, b)| Op::Cut(a, b)),
                1 => any::<usize>().prop_map(Op::CutSession),
                6 => (1..8usize).prop_map(Op::Deliver),
                1 => Just(Op::Drop),
                2 => node.clone().prop_map(Op::Tick),
                1 => node.clone().prop_map(Op::Resync),
                1 => (node.clone(), any::<bool>(), any::<u8>())
                    .prop_map(|(node, project, editors)| Op::Publish { node, project, editors }),
                1 => (node.clone(), any::<usize>(), 0..orgs)
                    .prop_map(|(node, doc, org)| Op::AddEditor { node, doc, org }),
                6 => (node.clone(), any::<usize>(), change())
                    .prop_map(|(node, doc, change)| Op::Edit { node, doc, change }),
            ];
            (
                prop::collection::vec(op, 10..=max_steps),
                any::<u64>(),
                0..150u64,
                0..100u64,
                0..200u64,
            )
                .prop_map(move |(ops, fault_seed, loss, duplicate, reorder)| {
                    Scenario {
                        orgs,
                        nodes,
                        ops,
                        fault_seed,
                        loss,
                        duplicate,
                        reorder,
                    }
                })
        })
}

fn config() -> Config {
    let seed = std::env::var("CONVENE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x00c0_ffee);
    Config {
        cases: std::env::var("CONVENE_CASES")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(if long() { 2000 } else { 32 }),
        rng_seed: RngSeed::Fixed(seed),
        // Deterministic: no regression files, no forking.
        failure_persistence: None,
        max_shrink_iters: if long() { 512 } else { 64 },
        ..Config::default()
    }
}

/// What the scenarios exercised, summed over all of them: a suite whose
/// cuts never fell inside a session would prove little.
#[derive(Default)]
struct Tally {
    cuts_in_session: AtomicUsize,
    drops_in_session: AtomicUsize,
    edits: AtomicUsize,
    /// Changes made concurrently with another change of the same document
    /// (the same parents), as the nodes ended up holding them.
    concurrent: AtomicUsize,
    /// Scenarios that needed the resync period (reconnecting alone did
    /// not make every node the same).
    resynced: AtomicUsize,
}

static TALLY: Tally = Tally {
    cuts_in_session: AtomicUsize::new(0),
    drops_in_session: AtomicUsize::new(0),
    edits: AtomicUsize::new(0),
    concurrent: AtomicUsize::new(0),
    resynced: AtomicUsize::new(0),
};

fn publish(
    net: &mut Net,
    node: usize,
    project: bool,
    editors: &[OrgId],
    title: &str,
) -> DocumentId {
    let body = if project {
        Body::Project(Project {
            title: title.into(),
            problem: "People wait too long to be seen.".into(),
            tags: vec!["waits".into()],
            team: vec![TeamMember {
                name: "Lead".into(),
                role: None,
            }],
            measures: vec![Measure {
                name: "waits".into(),
                definition: "Days from referral to first visit".into(),
                ..Measure::default()
            }],
            ..Project::default()
        })
    } else {
        Body::Learning(Learning {
            title: title.into(),
            summary: format!("What {title} taught us.").as_str().into(),
            body: "We tried it and it worked, mostly.".into(),
            tags: vec!["lesson".into()],
            ..Learning::default()
        })
    };
    let id = net
        .node_mut(node)
        .publish(EntryInput {
            body,
            visibility: None,
            status: None,
        })
        .unwrap();
    let own = net.node(node).org();
    for &org in editors.iter().filter(|o| **o != own) {
        net.node_mut(node).edit(id, Edit::AddEditor(org)).unwrap();
    }
    id
}

/// `body` with `change` made by a node, `word` marking what it wrote;
/// `None` if the change does not apply to it.
fn changed(body: &Body, change: Change, word: &str) -> Option<Edit> {
    fn pos(at: u8, len: usize) -> usize {
        at as usize * (len + 1) / 256
    }
    let mut body = body.clone();
    match (&mut body, change) {
        (Body::Learning(Learning { body: text, .. }), Change::Text { at, cut })
        | (Body::Project(Project { problem: text, .. }), Change::Text { at, cut }) => {
            let mut chars: Vec<char> = text.0.chars().collect();
            let p = pos(at, chars.len());
            let end = (p + cut as usize).min(chars.len());
            chars.splice(p..end, format!(" {word} ").chars());
            text.0 = chars.into_iter().collect();
        }
        (Body::Learning(l), Change::ListInsert { at }) => {
            let p = pos(at, l.tags.len());
            l.tags.insert(p, word.into());
        }
        (Body::Project(p), Change::ListInsert { at }) => {
            let i = pos(at, p.team.len());
            p.team.insert(
                i,
                TeamMember {
                    name: word.into(),
                    role: None,
                },
            );
        }
        (Body::Learning(Learning { tags: list, .. }), Change::ListRemove { at }) => {
            if list.is_empty() {
                return None;
            }
            list.remove(pos(at, list.len() - 1));
        }
        (Body::Project(Project { team: list, .. }), Change::ListRemove { at }) => {
            if list.is_empty() {
                return None;
            }
            list.remove(pos(at, list.len() - 1));
        }
        (Body::Learning(l), Change::MapSet { field, .. }) => {
            *match field % 3 {
                0 => &mut l.place,
                1 => &mut l.setting,
                _ => &mut l.impact,
            } = word.into();
        }
        (Body::Project(p), Change::MapSet { field, at }) => match field % 3 {
            0 => p.aim = word.into(),
            1 => p.place = word.into(),
            _ => {
                if p.team.is_empty() {
                    return None;
                }
                let i = pos(at, p.team.len() - 1);
                p.team[i].name = word.into();
            }
        },
        (Body::Learning(l), Change::Append) => l.organisations.push(word.into()),
        (Body::Project(_), Change::Append) => {
            return Some(Edit::AddDataPoint {
                measure: "waits".into(),
                point: DataPoint {
                    date: "2025-03-01".into(),
                    value: word.len() as f64,
                    note: word.into(),
                    denominator: None,
                },
            });
        }
        _ => return None,
    }
    Some(Edit::Replace(Box::new(EntryInput {
        body,
        visibility: None,
        status: None,
    })))
}

/// Every document every node holds, by id: its heads (sorted) and its
/// contents.
fn documents(net: &Net, n: usize) -> BTreeMap<DocumentId, (Vec<[u8; 32]>, serde_json::Value)> {
    net.catalogue(n)
        .into_iter()
        .map(|(id, _)| {
            let id = DocumentId::from_bytes(id);
            let doc = net.node(n).store().load(id).unwrap().expect("catalogued");
            let mut heads: Vec<[u8; 32]> = doc.get_heads().into_iter().map(|h| h.0).collect();
            heads.sort();
            let mut stored = net.node(n).store().heads(id).unwrap();
            stored.sort();
            assert_eq!(
                heads, stored,
                "node {n}: the index's heads of {id} are the document's"
            );
            let contents = serde_json::to_value(automerge::AutoSerde::from(&doc)).unwrap();
            (id, (heads, contents))
        })
        .collect()
}

fn converged(net: &Net) -> bool {
    let first = net.catalogue(0);
    (1..net.nodes.len()).all(|n| net.catalogue(n) == first)
        && (1..net.nodes.len()).all(|n| documents(net, n) == documents(net, 0))
}

/// The daemon's resync timer on every node: a session with every
/// connected peer.
fn resync_all(net: &mut Net) {
    for n in 0..net.nodes.len() {
        resync(net, n);
    }
    net.run();
}

/// The daemon's resync: a session with every connected peer this node
/// dialled (the other side of each link runs none).
fn resync(net: &mut Net, n: usize) {
    let peers: Vec<_> = net.nodes[n]
        .service
        .peers()
        .filter(|(p, s)| s.connected && net.dialled.contains(&(n, net.index(p))))
        .map(|(p, _)| *p)
        .collect();
    for peer in peers {
        net.input(n, Input::Sync { peer });
    }
}

fn play(s: &Scenario) -> Result<(), TestCaseError> {
    let mut net = Net::new();
    for o in 0..s.orgs {
        net.add(&format!("Organisation {o}"));
    }
    for n in s.orgs..s.nodes {
        let founder = n % s.orgs;
        let second = net.add_joining(founder);
        assert_eq!(second, n);
        let id = net.ids[n];
        net.node_mut(founder).authorize_node(id).unwrap();
    }
    let orgs: Vec<OrgId> = (0..s.orgs).map(|o| net.node(o).org()).collect();
    // Two entries every organisation co-edits, everywhere before the
    // faults start.
    let mut docs = vec![
        publish(&mut net, 0, false, &orgs, "Community calls"),
        publish(&mut net, 1, true, &orgs, "Discharge to assess"),
    ];
    for n in 1..s.nodes {
        net.connect(n, n - 1);
    }
    net.run();
    prop_assert!(converged(&net), "the set-up did not spread everything");
    for n in 1..s.nodes {
        net.disconnect(n, n - 1);
    }

    // Each edit's change, which every node must end up holding.
    let mut made: Vec<(usize, DocumentId, [u8; 32])> = Vec::new();
    net.faults = Some(Faults::new(s.fault_seed, s.loss, s.duplicate, s.reorder));
    for (step, op) in s.ops.iter().enumerate() {
        match *op {
            Op::Link(a, b) if a != b && !net.linked(a, b) => net.connect(a, b),
            Op::Cut(a, b) if a != b && net.linked(a, b) => {
                let (ia, ib) = (net.ids[a], net.ids[b]);
                if net.nodes[a].service.is_syncing(&ib) || net.nodes[b].service.is_syncing(&ia) {
                    TALLY.cuts_in_session.fetch_add(1, Relaxed);
                }
                net.disconnect(a, b);
            }
            Op::CutSession(k) => {
                let busy: Vec<(usize, usize)> = net
                    .links
                    .iter()
                    .copied()
                    .filter(|&(a, b)| {
                        net.nodes[a].service.is_syncing(&net.ids[b])
                            || net.nodes[b].service.is_syncing(&net.ids[a])
                    })
                    .collect();
                if !busy.is_empty() {
                    let (a, b) = busy[k % busy.len()];
                    TALLY.cuts_in_session.fetch_add(1, Relaxed);
                    net.disconnect(a, b);
                }
            }
            Op::Deliver(k) => {
                for _ in 0..k {
                    if net.queue.is_empty() {
                        break;
                    }
                    net.deliver_one();
                }
            }
            Op::Drop => {
                if let Some(msg) = net.queue.front() {
                    let (requester, _) = msg.requester();
                    let (from, to) = msg.ends();
                    let other = if requester == from { to } else { from };
                    if net.nodes[requester].service.is_syncing(&net.ids[other]) {
                        TALLY.drops_in_session.fetch_add(1, Relaxed);
                    }
                    net.drop_next();
                }
            }
            Op::Tick(a) => net.input(a, Input::Tick),
            Op::Resync(a) => resync(&mut net, a),
            Op::Publish {
                node,
                project,
                editors,
            } => {
                let editors: Vec<OrgId> = (0..s.orgs)
                    .filter(|o| editors & (1 << o) != 0)
                    .map(|o| orgs[o])
                    .collect();
                let id = publish(
                    &mut net,
                    node,
                    project,
                    &editors,
                    &format!("Entry {step} from {node}"),
                );
                docs.push(id);
            }
            Op::AddEditor { node, doc, org } => {
                let id = docs[doc % docs.len()];
                let own = net.node(node).org();
                if let Ok(e) = net.node(node).get(id)
                    && e.meta.owner == own
                    && orgs[org] != own
                {
                    let before = net.node(node).store().heads(id).unwrap();
                    net.node_mut(node)
                        .edit(id, Edit::AddEditor(orgs[org]))
                        .unwrap();
                    for h in net.node(node).store().heads(id).unwrap() {
                        if !before.contains(&h) {
                            made.push((node, id, h));
                        }
                    }
                }
            }
            Op::Edit { node, doc, change } => {
                let id = docs[doc % docs.len()];
                let own = net.node(node).org();
                let Ok(e) = net.node(node).get(id) else {
                    continue;
                };
                if e.meta.owner != own && !e.meta.editors.contains(&own) {
                    continue;
                }
                let Some(edit) = changed(&e.body, change, &format!("s{step}n{node}")) else {
                    continue;
                };
                let before = net.node(node).store().heads(id).unwrap();
                if let Err(err) = net.node_mut(node).edit(id, edit.clone()) {
                    return Err(TestCaseError::fail(format!(
                        "node {node} could not make {edit:?} on {id}: {err}"
                    )));
                }
                TALLY.edits.fetch_add(1, Relaxed);
                for h in net.node(node).store().heads(id).unwrap() {
                    if !before.contains(&h) {
                        made.push((node, id, h));
                    }
                }
            }
            _ => {}
        }
    }

    // Heal. The faults stop; what is still on its way arrives.
    net.faults = None;
    net.run();
    // Each node dials its bootstrap peer (the one before it) again, as the
    // daemon does after a cut.
    for n in 1..s.nodes {
        if !net.linked(n, n - 1) {
            net.connect(n, n - 1);
        }
    }
    net.run();
    // Then the resync timers fire, until every node is the same.
    let mut periods = 0;
    while !converged(&net) {
        prop_assert!(
            periods < RESYNCS,
            "not the same after reconnecting and {} resync periods",
            RESYNCS
        );
        resync_all(&mut net);
        periods += 1;
    }
    if periods > 0 {
        TALLY.resynced.fetch_add(1, Relaxed);
    }

    // The same documents with the same heads and contents everywhere.
    let reference = documents(&net, 0);
    for n in 1..s.nodes {
        let docs_n = documents(&net, n);
        prop_assert_eq!(
            docs_n.keys().collect::<Vec<_>>(),
            reference.keys().collect::<Vec<_>>(),
            "node {} holds other documents",
            n
        );
        for (id, (heads, contents)) in &reference {
            let (h, c) = &docs_n[id];
            prop_assert_eq!(h, heads, "node {}: heads of {}", n, id);
            prop_assert_eq!(c, contents, "node {}: contents of {}", n, id);
        }
    }
    // Every edit is there, and reads back as the same entry everywhere.
    for (author, id, hash) in &made {
        for n in 0..s.nodes {
            let doc = net.node(n).store().load(*id).unwrap().unwrap();
            prop_assert!(
                doc.get_change_by_hash(&automerge::ChangeHash(*hash))
                    .is_some(),
                "node {} lacks node {}'s edit of {}",
                n,
                author,
                id
            );
        }
    }
    for id in &docs {
        let entry = net.node(0).get(*id).unwrap();
        for n in 1..s.nodes {
            prop_assert_eq!(&net.node(n).get(*id).unwrap(), &entry, "node {}", n);
        }
        let doc = net.node(0).store().load(*id).unwrap().unwrap();
        let mut siblings: BTreeMap<Vec<automerge::ChangeHash>, usize> = BTreeMap::new();
        for c in doc.get_changes(&[]) {
            let mut deps = c.deps().to_vec();
            deps.sort();
            *siblings.entry(deps).or_default() += 1;
        }
        let concurrent: usize = siblings.values().map(|k| k - 1).sum();
        TALLY.concurrent.fetch_add(concurrent, Relaxed);
    }
    for n in 0..s.nodes {
        let log = net.node(n).store().log(true).unwrap();
        prop_assert!(log.is_empty(), "node {} rejected something: {:?}", n, log);
    }
    Ok(())
}

#[test]
fn after_healing_every_node_has_identical_documents_and_heads() {
    let mut runner = TestRunner::new(config());
    if let Err(e) = runner.run(&scenario(), |s| play(&s)) {
        panic!("{e}");
    }
    let t = &TALLY;
    let (cuts, drops, edits, concurrent, second) = (
        t.cuts_in_session.load(Relaxed),
        t.drops_in_session.load(Relaxed),
        t.edits.load(Relaxed),
        t.concurrent.load(Relaxed),
        t.resynced.load(Relaxed),
    );
    println!(
        "{} scenarios: {edits} edits, {concurrent} of them concurrent with another change; \
         {cuts} cuts and {drops} lost messages inside sessions; \
         {second} scenarios needed the resync period after reconnecting",
        config().cases
    );
    assert!(cuts > 0, "no cut fell inside a session");
    assert!(drops > 0, "no message of a session was lost");
    assert!(concurrent > 0, "no two changes were concurrent");
}

/// What the property test found first: a node that had never seen an
/// entry received, in one batch, the owner's change naming a co-editor and
/// that co-editor's edit (which depends on it); the edit was judged by the
/// editors before the batch and rejected as forged. Likewise an owner
/// naming a second editor in the same batch as the first editor's edit
/// made the whole batch count as "an editor changing who may edit".
#[test]
fn a_co_editors_edit_that_travels_with_the_change_naming_it_is_accepted() {
    let mut net = Net::new();
    let (owner, first, second, fresh) = (
        net.add("Owner Trust"),
        net.add("First Council"),
        net.add("Second Group"),
        net.add("Fresh Network"),
    );
    let (first_org, second_org) = (net.node(first).org(), net.node(second).org());
    // Every node knows every organisation before the entry exists.
    for n in 1..4 {
        net.connect(n, n - 1);
    }
    net.run();
    for n in 1..4 {
        net.disconnect(n, n - 1);
    }
    let id = publish(&mut net, owner, false, &[first_org], "Shared");
    net.connect(first, owner);
    net.run();
    let edit = changed(
        &net.node(first).get(id).unwrap().body,
        Change::ListInsert { at: 0 },
        "fromfirst",
    )
    .unwrap();
    net.node_mut(first).edit(id, edit).unwrap();
    net.run();
    net.node_mut(owner)
        .edit(id, Edit::AddEditor(second_org))
        .unwrap();
    net.disconnect(first, owner);
    // The fresh node gets it all in one batch from the first editor, then
    // the second editor name from the owner with the first's edit.
    net.connect(fresh, first);
    net.run();
    net.connect(fresh, owner);
    net.run();
    let Body::Learning(l) = net.node(fresh).get(id).unwrap().body else {
        panic!("not learning")
    };
    assert!(l.tags.contains(&"fromfirst".to_string()), "{:?}", l.tags);
    assert_eq!(
        net.node(fresh).get(id).unwrap().meta.editors,
        vec![first_org, second_org]
    );
    assert!(net.node(fresh).store().log(true).unwrap().is_empty());
}
