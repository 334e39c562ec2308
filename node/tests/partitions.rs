//! Random partitions, message loss, duplication and reordering, random
//! publishes and concurrent edits on 5–10 nodes: once the network heals,
//! every node holds identical documents, and nothing was rejected.
//!
//! Driven by proptest with a fixed RNG seed, so every run plays the same
//! scenarios (and a failure shrinks to a small one). The normal suite runs
//! a few short scenarios; the long form runs many, on more nodes, for
//! longer:
//!
//! ```text
//! CONVENE_LONG=1 cargo test -p convene-node --release --test partitions
//! ```
//!
//! `CONVENE_SEED=<u64>` plays other scenarios than the fixed default.

mod sim;

use convene_model::Body;
use convene_node::Edit;
use convene_node::sync::Input;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use sim::{Faults, Net};

/// One thing that happens to the network.
#[derive(Debug, Clone)]
enum Op {
    Link(usize, usize),
    Cut(usize, usize),
    Publish(usize),
    /// The node edits the last entry it published (if any), perhaps
    /// while cut off from the others.
    Edit(usize),
}

#[derive(Debug, Clone)]
struct Scenario {
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

fn scenario() -> impl Strategy<Value = Scenario> {
    let (max_nodes, max_steps): (usize, usize) = if long() { (10, 200) } else { (7, 40) };
    (5..=max_nodes).prop_flat_map(move |nodes| {
        let node = 0..nodes;
        let op = prop_oneof![
            2 => (node.clone(), node.clone()).prop_map(|(a, b)| Op::Link(a, b)),
            1 => (node.clone(), node.clone()).prop_map(|(a, b)| Op::Cut(a, b)),
            3 => node.clone().prop_map(Op::Publish),
            2 => node.clone().prop_map(Op::Edit),
        ];
        (
            prop::collection::vec(op, 10..=max_steps),
            any::<u64>(),
            0..200u64,
            0..100u64,
            0..200u64,
        )
            .prop_map(
                move |(ops, fault_seed, loss, duplicate, reorder)| Scenario {
                    nodes,
                    ops,
                    fault_seed,
                    loss,
                    duplicate,
                    reorder,
                },
            )
    })
}

fn config() -> Config {
    let seed = std::env::var("CONVENE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x00c0_ffee);
    Config {
        cases: if long() { 64 } else { 4 },
        rng_seed: RngSeed::Fixed(seed),
        // Deterministic: no regression files, no forking.
        failure_persistence: None,
        max_shrink_iters: if long() { 256 } else { 32 },
        ..Config::default()
    }
}

fn play(s: &Scenario) -> Result<(), TestCaseError> {
    let mut net = Net::new();
    let ids: Vec<usize> = (0..s.nodes)
        .map(|i| net.add(&format!("Member {i}")))
        .collect();
    let mut published: Vec<(usize, convene_model::DocumentId)> = Vec::new();
    net.faults = Some(Faults::new(s.fault_seed, s.loss, s.duplicate, s.reorder));
    for (step, op) in s.ops.iter().enumerate() {
        match *op {
            Op::Link(a, b) if a != b && !net.linked(a, b) => net.connect(ids[a], ids[b]),
            Op::Cut(a, b) if a != b && net.linked(a, b) => net.disconnect(ids[a], ids[b]),
            Op::Publish(a) => {
                let id = net.publish(ids[a], &format!("Lesson {step} from {a}"));
                published.push((ids[a], id));
            }
            Op::Edit(a) => {
                if let Some((owner, id)) = published.iter().rfind(|(o, _)| *o == ids[a]).copied() {
                    net.node_mut(owner)
                        .edit(id, Edit::Set(vec![("tags".into(), format!("t{step}"))]))
                        .unwrap();
                }
            }
            _ => {}
        }
        net.run();
    }
    // Heal: no more faults, everyone linked in a line, then full syncs
    // until nothing changes.
    net.faults = None;
    for w in ids.windows(2) {
        if !net.linked(w[0], w[1]) {
            net.connect(w[0], w[1]);
        }
    }
    for _ in 0..3 {
        for w in ids.windows(2) {
            let peer = net.ids[w[1]];
            net.input(w[0], Input::Sync { peer });
            let peer = net.ids[w[0]];
            net.input(w[1], Input::Sync { peer });
        }
        net.run();
    }
    let first = net.catalogue(ids[0]);
    for &n in &ids {
        prop_assert_eq!(&net.catalogue(n), &first, "node {} differs", n);
    }
    for (_, id) in &published {
        let reference = net.node(ids[0]).get(*id).unwrap();
        for &n in &ids {
            let e = net.node(n).get(*id).unwrap();
            let (Body::Learning(x), Body::Learning(y)) = (&e.body, &reference.body) else {
                panic!("not learning")
            };
            prop_assert_eq!(x, y, "node {}, entry {}", n, id);
        }
    }
    for &n in &ids {
        prop_assert!(
            net.node(n).store().log(true).unwrap().is_empty(),
            "node {} rejected something",
            n
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn after_healing_every_node_has_identical_documents(s in scenario()) {
        play(&s)?;
    }
}
