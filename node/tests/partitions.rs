//! Random partitions, message loss, duplication and reordering, random
//! publishes and concurrent edits on several nodes: once the network heals,
//! every node holds identical documents. Deterministic: each seed always
//! plays out the same way.

mod sim;

use convene_model::Body;
use convene_node::Edit;
use convene_node::sync::Input;
use sim::{Faults, Net};

fn play(seed: u64, nodes: usize, steps: usize) {
    let mut net = Net::new();
    let ids: Vec<usize> = (0..nodes)
        .map(|i| net.add(&format!("Member {i}")))
        .collect();
    let mut rng = Faults::new(seed, 0, 0, 0);
    let mut published: Vec<(usize, convene_model::DocumentId)> = Vec::new();
    net.faults = Some(Faults::new(seed ^ 0x9e37_79b9, 100, 50, 100));
    for step in 0..steps {
        let a = ids[(rng.next() % nodes as u64) as usize];
        let b = ids[(rng.next() % nodes as u64) as usize];
        match rng.next() % 5 {
            0 if a != b && !net.linked(a, b) => net.connect(a, b),
            1 if a != b && net.linked(a, b) => net.disconnect(a, b),
            2 | 3 => {
                let id = net.publish(a, &format!("Lesson {step} from {a}"));
                published.push((a, id));
            }
            _ => {
                // An owner edits one of its own entries, possibly while
                // cut off from the others.
                if let Some((owner, id)) = published.iter().rfind(|(o, _)| *o == a).copied() {
                    net.node_mut(owner)
                        .edit(id, Edit::Set(vec![("tags".into(), format!("t{step}"))]))
                        .unwrap();
                }
            }
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
        assert_eq!(net.catalogue(n), first, "seed {seed}: node {n} differs");
    }
    for (_, id) in &published {
        let reference = net.node(ids[0]).get(*id).unwrap();
        for &n in &ids {
            let e = net.node(n).get(*id).unwrap();
            let (Body::Learning(x), Body::Learning(y)) = (&e.body, &reference.body) else {
                panic!("seed {seed}: not learning")
            };
            assert_eq!(x, y, "seed {seed}: node {n}, entry {id}");
        }
    }
    for &n in &ids {
        assert!(
            net.node(n).store().log(true).unwrap().is_empty(),
            "seed {seed}: node {n} rejected something"
        );
    }
}

#[test]
fn after_healing_every_node_has_identical_documents() {
    for seed in 1..=6 {
        play(seed, 5, 40);
    }
}
