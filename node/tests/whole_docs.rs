//! Documents sent whole (`/convene/sync/3`): a peer with none of a
//! document of one change gets its saved form (as stored, compressed) in
//! place of the change, and
//! stores exactly the signed change a peer sent the change itself would
//! have; every check a change gets still holds, and what a hostile member
//! can make of a saved form is refused.

mod sim;

use automerge::transaction::Transactable;
use convene_node::Edit;
use convene_node::sync::Event;
use convene_node::sync::wire::{self, Response, WireChange, WireSaved};
use sim::{Msg, Net};

/// The stored signed changes of a document, as comparable tuples.
fn stored(net: &Net, i: usize, doc: convene_model::DocumentId) -> Vec<(Vec<u8>, [u8; 32])> {
    let mut all: Vec<(Vec<u8>, [u8; 32])> = net
        .node(i)
        .store()
        .changes(doc)
        .unwrap()
        .into_iter()
        .map(|s| {
            let c = s.change;
            (
                [c.bytes, c.signer.to_vec(), c.signature.to_vec()].concat(),
                c.hash,
            )
        })
        .collect();
    all.sort();
    all
}

#[test]
fn a_peer_with_nothing_gets_documents_of_one_change_whole_and_stores_the_same_signed_changes() {
    let mut net = Net::new();
    let a = net.add("A");
    let b = net.add("B");
    let c = net.add("C");
    let ids: Vec<_> = (0..5)
        .map(|i| net.publish(a, &format!("Lesson {i}")))
        .collect();
    // One with two changes goes as changes.
    net.node_mut(a)
        .edit(
            ids[0],
            Edit::Set(vec![("title".into(), "Lesson zero".into())]),
        )
        .unwrap();
    net.connect(a, b);
    net.run();
    assert!(net.whole >= 4, "{} documents arrived whole", net.whole);
    for id in &ids {
        assert_eq!(stored(&net, b, *id), stored(&net, a, *id), "{id}");
    }
    assert_eq!(net.node(b).get(ids[0]).unwrap().body.title(), "Lesson zero");
    assert_eq!(net.node(b).get(ids[3]).unwrap().body.title(), "Lesson 3");
    // What B stored from saved forms, B passes on.
    net.connect(b, c);
    net.run();
    for id in &ids {
        assert_eq!(stored(&net, c, *id), stored(&net, a, *id), "{id}");
    }
    assert_eq!(net.node(c).get(ids[4]).unwrap().body.title(), "Lesson 4");
}

#[test]
fn with_a_node_of_the_previous_release_every_document_goes_as_changes() {
    let mut net = Net::new();
    net.version = wire::Version::V2;
    let a = net.add("A");
    let b = net.add("B");
    let ids: Vec<_> = (0..3)
        .map(|i| net.publish(a, &format!("Lesson {i}")))
        .collect();
    net.connect(a, b);
    net.run();
    assert_eq!(net.whole, 0);
    for id in &ids {
        assert_eq!(stored(&net, b, *id), stored(&net, a, *id), "{id}");
    }
}

/// Runs the net until `from` answers with documents sent whole, lets
/// `tamper` change that answer, and runs on (losing `from`'s pushes until
/// then). False if no such answer came.
fn tamper_first_whole(
    net: &mut Net,
    from: usize,
    tamper: impl Fn(&mut Vec<WireChange>, &mut Vec<WireSaved>),
) -> bool {
    loop {
        for msg in net.queue.iter_mut() {
            let Msg::Response { from: f, bytes, .. } = msg else {
                continue;
            };
            if *f != from {
                continue;
            }
            let mut response = wire::decode_response(bytes, wire::Version::V3).unwrap();
            if let Response::Changes { changes, saved, .. } = &mut response
                && !saved.is_empty()
            {
                tamper(changes, saved);
                // Encoded by hand: `encode_response` would drop changes of
                // documents sent whole.
                let Response::Changes { saved, .. } = &response else {
                    unreachable!()
                };
                let mut out = wire::encode(&response);
                out.extend(wire::encode(saved));
                *bytes = out;
                net.run();
                return true;
            }
        }
        // Pushes of the entries are lost, so that every document comes in
        // the answer (none is already waiting for its organisation's
        // profile, which comes in that answer too).
        if let Some(Msg::Request { from: f, bytes, .. }) = net.queue.front()
            && *f == from
            && matches!(wire::decode(bytes), Ok(wire::Request::Push { .. }))
        {
            let push = net.queue.pop_front().unwrap();
            net.lose(push);
            continue;
        }
        if !net.deliver_one() {
            return false;
        }
    }
}

/// A with `n` entries, and B, which has nothing yet, dialling it (so B's
/// session asks A for what it lacks).
fn member_with_entries(n: usize) -> (Net, usize, usize, Vec<[u8; 16]>) {
    let mut net = Net::new();
    let a = net.add("A");
    let b = net.add("B");
    let ids = (0..n)
        .map(|i| *net.publish(a, &format!("Lesson {i}")).as_bytes())
        .collect();
    net.connect(b, a);
    (net, a, b, ids)
}

/// The entry `doc` among documents sent whole.
fn of(saved: &mut [WireSaved], doc: [u8; 16]) -> &mut WireSaved {
    saved.iter_mut().find(|s| s.doc == doc).expect("sent whole")
}

fn held(net: &Net, i: usize, doc: [u8; 16]) -> bool {
    net.node(i)
        .get(convene_model::DocumentId::from_bytes(doc))
        .is_ok()
}

/// Whatever `b` holds of the entries is what `a` made: nothing a tampered
/// answer carried was stored (the honest answer to a later fetch may have
/// brought them since).
fn same_as_source(net: &Net, a: usize, b: usize, ids: &[[u8; 16]]) {
    for id in ids {
        let doc = convene_model::DocumentId::from_bytes(*id);
        if held(net, b, *id) {
            assert_eq!(stored(net, b, doc), stored(net, a, doc));
        } else {
            assert!(stored(net, b, doc).is_empty());
        }
    }
}

fn rejected_at(net: &Net, i: usize) -> usize {
    net.events
        .iter()
        .filter(|(n, _)| *n == i)
        .map(|(_, e)| match e {
            Event::SessionDone { stats, .. } => stats.rejected,
            _ => 0,
        })
        .sum()
}

/// Whether `i` logged a refusal that says `why`.
fn refused_for(net: &Net, i: usize, why: &str) -> bool {
    let log = net.node(i).store().log(true).unwrap();
    log.iter()
        .any(|e| e.event == "rejected" && e.detail.contains(why))
}

#[test]
fn what_a_member_can_make_of_a_saved_form_is_refused() {
    // A bomb: 24 MiB once inflated, in a few kilobytes (automerge would
    // inflate it whole, whatever its size).
    let (mut net, a, b, ids) = member_with_entries(2);
    assert!(tamper_first_whole(&mut net, a, |_, saved| {
        let s = of(saved, ids[0]);
        let mut doc = automerge::Automerge::new();
        let mut tx = doc.transaction();
        tx.put(automerge::ROOT, "summary", "a".repeat(24 << 20))
            .unwrap();
        tx.commit();
        s.saved = doc.save();
        assert!(s.saved.len() < 1 << 20);
    }));
    assert_eq!(rejected_at(&net, b), 1);
    assert!(refused_for(&net, b, "once inflated"));
    assert!(held(&net, b, ids[1]), "the rest is taken");
    same_as_source(&net, a, b, &ids);

    // Two changes, one of them its author never signed.
    let (mut net, a, b, ids) = member_with_entries(1);
    assert!(tamper_first_whole(&mut net, a, |_, saved| {
        let s = of(saved, ids[0]);
        let mut doc = automerge::Automerge::load(&s.saved).unwrap();
        let mut tx = doc.transaction();
        tx.put(automerge::ROOT, "title", "Not what A wrote")
            .unwrap();
        tx.commit();
        s.saved = doc.save();
    }));
    assert_eq!(rejected_at(&net, b), 1);
    assert!(refused_for(&net, b, "holds 2 changes"));
    same_as_source(&net, a, b, &ids);

    // A signature that does not verify.
    let (mut net, a, b, ids) = member_with_entries(1);
    assert!(tamper_first_whole(&mut net, a, |_, saved| {
        of(saved, ids[0]).signature[3] ^= 1;
    }));
    assert_eq!(rejected_at(&net, b), 1);
    assert!(refused_for(&net, b, "signature does not verify"));
    same_as_source(&net, a, b, &ids);

    // One entry's saved form under the other's id, signed for that id by
    // its author: the id must still match its first change.
    let (mut net, a, b, ids) = member_with_entries(2);
    let author = net.node(a).identity().clone();
    assert!(tamper_first_whole(&mut net, a, |_, saved| {
        let first = automerge::Automerge::load(&of(saved, ids[0]).saved).unwrap();
        let change = first.get_changes(&[]).pop().unwrap();
        let other = convene_model::DocumentId::from_bytes(ids[1]);
        let signed = convene_node::SignedChange::sign(&author, other, &change);
        let s = of(saved, ids[1]);
        s.saved = first.save();
        s.signature = signed.signature.to_vec();
    }));
    assert_eq!(rejected_at(&net, b), 1);
    assert!(refused_for(&net, b, "does not match its first change"));
    same_as_source(&net, a, b, &ids);

    // A document sent both whole and as its change: a protocol violation.
    let (mut net, a, b, ids) = member_with_entries(1);
    let ids_a = net.ids[a];
    assert!(tamper_first_whole(&mut net, a, |changes, saved| {
        let s = of(saved, ids[0]);
        let doc = automerge::Automerge::load(&s.saved).unwrap();
        let change = doc.get_changes(&[]).pop().unwrap();
        changes.push(WireChange {
            doc: s.doc,
            hash: change.hash().0,
            signer: s.signer,
            signature: s.signature.clone(),
            bytes: change.raw_bytes().to_vec(),
        });
    }));
    assert!(
        net.disconnects
            .iter()
            .any(|(i, peer, why)| *i == b && *peer == ids_a && why.contains("whole")),
        "{:?}",
        net.disconnects
    );
}
