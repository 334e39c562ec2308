//! The sync state machine on a deterministic in-process network: real
//! nodes (SQLite stores in temporary directories, real signatures), no
//! sockets, every message encoded and decoded as on the wire.

mod sim;

use convene_model::{Body, DocumentId, EntryInput, Learning};
use convene_node::sync::wire::{self, Request};
use convene_node::sync::{Event, Input, SessionError};
use convene_node::{Edit, SignedChange};
use sim::{Msg, Net};

#[test]
fn a_new_node_catches_up_and_a_second_session_is_one_small_round_trip() {
    let mut net = Net::new();
    let a = net.add("Gateshead Health");
    let b = net.add("Gateshead Carers");
    for i in 0..300 {
        net.publish(a, &format!("Lesson {i}"));
    }
    net.connect(b, a);
    net.run();
    assert_eq!(net.catalogue(a), net.catalogue(b));
    assert_eq!(net.catalogue(a).len(), 302, "300 entries and two profiles");
    let done = net
        .events
        .iter()
        .filter(|(i, e)| *i == b && matches!(e, Event::SessionDone { .. }))
        .count();
    assert_eq!(
        done,
        1,
        "{:#?}",
        net.events
            .iter()
            .filter(|(i, _)| *i == b)
            .map(|(_, e)| match e {
                Event::SessionDone { stats, .. } => format!(
                    "{:?}",
                    (
                        stats.round_trips,
                        stats.received,
                        stats.sent,
                        stats.docs_differing
                    )
                ),
                other => format!("{other:?}"),
            })
            .collect::<Vec<_>>()
    );

    // Reconnect with nothing changed: one round trip, a few dozen bytes.
    net.disconnect(a, b);
    net.reset_counters();
    net.connect(b, a);
    net.run();
    assert_eq!(net.messages, 2, "one request and one response");
    assert!(net.bytes < 1024, "{} bytes", net.bytes);
}

/// `sync --once` between members: the daemon starts a full session on
/// connecting and the command asks for one at the same moment; the session
/// under way answers both (a second reconcile used to follow it for
/// nothing).
#[test]
fn a_sync_asked_for_while_a_full_session_runs_is_answered_by_it() {
    let mut net = Net::new();
    let a = net.add("Gateshead Health");
    let b = net.add("Gateshead Carers");
    net.publish(a, "Lesson");
    net.connect(b, a);
    net.run();
    net.disconnect(a, b);
    net.reset_counters();
    net.connect(b, a);
    net.input(b, Input::Sync { peer: net.ids[a] });
    net.run();
    assert_eq!(net.messages, 2, "one request and one response");
}

/// A network of two nodes: `a` has published `n` learning entries, `b`
/// nothing yet.
fn a_source_of(n: usize) -> (Net, usize, usize) {
    let mut net = Net::new();
    let a = net.add("Gateshead Health");
    let b = net.add("Gateshead Carers");
    let entries = (0..n)
        .map(|i| EntryInput {
            body: Body::Learning(Learning {
                title: format!("Lesson {i}"),
                summary: "What it taught us.".into(),
                ..Learning::default()
            }),
            visibility: None,
            status: None,
        })
        .collect();
    net.node_mut(a).publish_batch(entries).unwrap();
    (net, a, b)
}

#[test]
fn a_catch_up_reports_its_progress_in_documents_up_to_the_whole() {
    // More than one request's worth of documents (512).
    let (mut net, a, b) = a_source_of(700);
    net.connect(b, a);
    let peer = net.ids[a];
    let mut seen = Vec::new();
    net.run_watching(|net| seen.extend(net.nodes[b].service.progress(&peer)));
    assert!(
        net.nodes[b].service.progress(&peer).is_none(),
        "no session is left running"
    );
    assert!(!seen.is_empty(), "the session was seen running");
    // Until the catalogues are compared, the total is not known.
    assert!(!seen[0].reconciled);
    let counted: Vec<_> = seen.iter().filter(|p| p.reconciled).collect();
    // The 700 entries and the peer's organisation profile.
    assert!(counted.iter().all(|p| p.docs_total == 701), "{counted:?}");
    assert!(
        counted
            .windows(2)
            .all(|w| w[0].docs_done <= w[1].docs_done && w[0].received <= w[1].received),
        "progress never goes back: {counted:?}"
    );
    let last = counted.last().unwrap();
    assert_eq!(last.docs_done, 701, "{last:?}");
    assert_eq!(last.received, 701);
    assert!(
        counted.iter().any(|p| p.docs_done > 0 && p.docs_done < 701),
        "a catch-up of several round trips shows the steps between"
    );
}

#[test]
fn a_catch_up_keeps_two_fetches_in_flight_and_takes_answers_in_order_whatever_order_they_arrive() {
    // Three requests' worth of documents (512 each): the organisation's
    // profile goes in the first, its entries in all three.
    let (mut net, a, b) = a_source_of(1100);
    net.connect(b, a);
    // Deliver the network's messages, but hold back an answer to b while
    // a later answer to b is on its way: the later one arrives first.
    let (mut most_in_flight, mut overtaken) = (0, 0);
    let mut steps = 0;
    while !net.queue.is_empty() {
        steps += 1;
        assert!(steps < 10_000, "the network never went quiet");
        let b_waits = net.queue.iter().filter(|m| m.requester().0 == b).count();
        most_in_flight = most_in_flight.max(b_waits);
        let answers_to_b = net
            .queue
            .iter()
            .filter(|m| !m.is_request() && m.ends().1 == b)
            .count();
        if answers_to_b > 1 && !net.queue[0].is_request() && net.queue[0].ends().1 == b {
            let held = net.queue.pop_front().unwrap();
            net.queue.push_back(held);
            overtaken += 1;
        }
        net.deliver_one();
    }
    assert!(
        most_in_flight >= 2,
        "b had {most_in_flight} requests in flight at most"
    );
    assert!(overtaken > 0, "an answer was overtaken by a later one");
    assert_eq!(net.catalogue(a), net.catalogue(b));
    let stats = net
        .events
        .iter()
        .find_map(|(i, e)| match e {
            Event::SessionDone { stats, .. } if *i == b => Some(stats.clone()),
            _ => None,
        })
        .expect("b's session completed");
    assert_eq!(
        stats.received, 1101,
        "the entries and the organisation's profile"
    );
    // Taken in the order they were asked for, the profile is stored before
    // the entries it authorises: none waits, however the answers arrived.
    assert_eq!(stats.waited, 0, "changes set aside");
    assert_eq!(stats.rejected, 0);
    // The reconciliation rounds, the three fetches (the first two at once)
    // and the push of b's own profile, one after another.
    assert_eq!(
        stats.round_trips,
        stats.reconcile_rounds + 2 + 1,
        "{} reconciliation rounds",
        stats.reconcile_rounds
    );
}

#[test]
fn entries_from_both_sides_and_concurrent_edits_merge() {
    let mut net = Net::new();
    let a = net.add("Newcastle City Council");
    let a2 = net.add_joining(a);
    let a2_id = net.ids[a2];
    net.node_mut(a).authorize_node(a2_id).unwrap();
    let c = net.add("Sunderland Community Action");
    let shared = net.publish(a, "Community calls");
    net.connect(a2, a);
    net.run();
    net.disconnect(a, a2);

    // Apart: both nodes of the owner edit the same entry; c publishes.
    net.node_mut(a)
        .edit(shared, Edit::Set(vec![("tags".into(), "falls".into())]))
        .unwrap();
    net.node_mut(a2)
        .edit(
            shared,
            Edit::Set(vec![("impact".into(), "6% fewer falls admissions".into())]),
        )
        .unwrap();
    let from_c = net.publish(c, "Social prescribing in Sunderland");

    net.connect(c, a);
    net.connect(a2, c);
    net.run();
    for n in [a, a2, c] {
        let e = net.node(n).get(shared).unwrap();
        let Body::Learning(l) = e.body else { panic!() };
        assert_eq!(l.tags, vec!["falls"], "node {n}");
        assert_eq!(l.impact, "6% fewer falls admissions", "node {n}");
        assert!(net.node(n).get(from_c).is_ok());
    }
    assert_eq!(net.catalogue(a), net.catalogue(c));
    assert_eq!(net.catalogue(a2), net.catalogue(c));
    for n in [a, a2, c] {
        assert!(
            net.node(n).store().log(true).unwrap().is_empty(),
            "node {n} rejected nothing"
        );
    }
}

#[test]
fn a_forged_edit_by_a_member_is_rejected_by_every_node_and_not_relayed() {
    use automerge::transaction::Transactable;
    let mut net = Net::new();
    let a = net.add("Owner Trust");
    let b = net.add("Relay Council");
    let m = net.add("Mallory Group");
    net.connect(b, a);
    net.connect(m, b);
    net.run();
    let id = net.publish(a, "Handover standard");
    net.run();
    assert!(net.node(m).get(id).is_ok());

    // M edits A's entry with a build that skips the local ownership check.
    let forged = {
        let node = net.node(m);
        let mut state = node.store().load(id).unwrap().unwrap();
        state.set_actor(automerge::ActorId::from(
            node.identity().public_bytes().as_slice(),
        ));
        let mut tx = state.transaction();
        tx.put(automerge::ROOT, "title", "Mallory's now").unwrap();
        let (hash, _) = tx.commit();
        let change = automerge::ReadDoc::get_change_by_hash(&state, &hash.unwrap()).unwrap();
        convene_node::SignedChange::sign(node.identity(), id, &change)
    };
    net.queue.push_back(Msg::Request {
        from: m,
        to: b,
        token: 4242,
        bytes: wire::encode(&Request::PutChanges {
            changes: vec![wire::WireChange::from(&forged)],
            erased: vec![],
        }),
    });
    net.run();
    for n in [a, b] {
        assert_eq!(
            net.node(n).get(id).unwrap().body.title(),
            "Handover standard"
        );
    }
    assert!(
        net.node(a).store().changes(id).unwrap().len() == 1,
        "never relayed to A"
    );
    let log = net.node(b).store().log(true).unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(
        log[0].signer.as_deref(),
        Some(net.ids[m].to_string().as_str())
    );
}

#[test]
fn live_changes_travel_along_a_line() {
    let mut net = Net::new();
    let a = net.add("A");
    let b = net.add("B");
    let c = net.add("C");
    net.connect(a, b);
    net.connect(b, c);
    net.run();
    let id = net.publish(a, "Family hubs while you wait");
    net.run();
    assert_eq!(
        net.node(c).get(id).unwrap().body.title(),
        "Family hubs while you wait"
    );
    net.node_mut(a)
        .edit(id, Edit::Set(vec![("title".into(), "Family hubs".into())]))
        .unwrap();
    net.run();
    assert_eq!(net.node(c).get(id).unwrap().body.title(), "Family hubs");
    assert!(!net.linked(a, c));
}

/// A, and B linked to C; A has published an entry that B and C lack.
fn an_entry_of_a_beside_b_and_c() -> (Net, usize, usize, usize, DocumentId) {
    let mut net = Net::new();
    let a = net.add("A");
    let b = net.add("B");
    let c = net.add("C");
    net.connect(b, c);
    net.run();
    let id = net.publish(a, "Ambulance handovers");
    (net, a, b, c, id)
}

/// `a` links to `b` and sends it `changes` in a `PutChanges` that `a`'s
/// service did not make (its answer goes back to a service that did not
/// ask, which ignores it), and the net runs.
fn put_unasked(net: &mut Net, a: usize, b: usize, changes: Vec<wire::WireChange>) {
    net.links.insert((a.min(b), a.max(b)));
    net.input(b, Input::Connected { peer: net.ids[a] });
    net.queue.push_back(Msg::Request {
        from: a,
        to: b,
        token: 999,
        bytes: wire::encode(&Request::PutChanges {
            changes,
            erased: vec![],
        }),
    });
    net.run();
}

#[test]
fn forged_changes_are_rejected_and_never_relayed() {
    let (mut net, a, b, c, id) = an_entry_of_a_beside_b_and_c();
    // A sends B a copy of its entry with a broken signature.
    let mut changes: Vec<wire::WireChange> = net
        .node(a)
        .store()
        .changes(id)
        .unwrap()
        .iter()
        .map(|c| wire::WireChange::from(&c.change))
        .collect();
    changes[0].signature[5] ^= 1;
    put_unasked(&mut net, a, b, changes);
    assert!(net.node(b).get(id).is_err(), "not stored");
    assert!(net.node(c).get(id).is_err(), "not relayed");
    assert!(net.events.iter().any(|(i, e)| *i == b
        && matches!(
            e,
            Event::Received {
                applied: 0,
                rejected: 1,
                ..
            }
        )));
}

/// The compressed form of a change hashes the same as the change, so its
/// author's signature covers it, and automerge inflates it whole: a member
/// (or anyone relaying) could make a node allocate gigabytes with a few
/// kilobytes. It is refused unread and never stored or relayed.
#[test]
fn a_compressed_change_is_refused_unread_and_never_relayed() {
    let (mut net, a, b, c, id) = an_entry_of_a_beside_b_and_c();
    // A sends B its organisation's profile as it is, and its entry's
    // changes in compressed form, with the signatures A made for them.
    let profile = net.node(a).org().0;
    let as_sent = |doc| net.node(a).store().changes(doc).unwrap().into_iter();
    let entry: Vec<wire::WireChange> = as_sent(id)
        .map(|c| {
            let mut w = wire::WireChange::from(&c.change);
            let mut decoded = automerge::Change::try_from(c.change.bytes.as_slice()).unwrap();
            w.bytes = decoded.bytes().into_owned();
            w
        })
        .collect();
    assert!(entry.iter().all(|w| w.bytes[8] == 2), "sent compressed");
    let changes: Vec<wire::WireChange> = as_sent(profile)
        .map(|c| wire::WireChange::from(&c.change))
        .chain(entry)
        .collect();
    put_unasked(&mut net, a, b, changes);
    assert!(net.node(b).get(id).is_err(), "not stored");
    assert!(net.node(c).get(id).is_err(), "not relayed");
    assert!(net.node(c).get(profile).is_ok(), "the profile was taken");
    assert!(
        net.events
            .iter()
            .any(|(i, e)| *i == b && matches!(e, Event::Received { rejected: 1, .. }))
    );
}

/// A member signs, with its own key, 70 bytes of change whose columns
/// declare 2^40 operations (automerge's decoder would walk them for about
/// a day before checking anything) and sends it with its profile. The
/// change is refused unread and never stored or relayed; the profile is
/// taken.
#[test]
fn a_change_declaring_years_of_rows_is_refused_unread_and_never_relayed() {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (mut net, a, b, c, _) = an_entry_of_a_beside_b_and_c();
        let profile = net.node(a).org().0;
        let (bytes, hash) = convene_node::trust::columns::forge::nulls(1 << 40, 0);
        let doc = DocumentId::from_bytes([9; 16]);
        let bomb = SignedChange::sign_raw(net.node(a).identity(), doc, bytes, hash);
        let changes: Vec<wire::WireChange> = net
            .node(a)
            .store()
            .changes(profile)
            .unwrap()
            .iter()
            .map(|c| wire::WireChange::from(&c.change))
            .chain([wire::WireChange::from(&bomb)])
            .collect();
        put_unasked(&mut net, a, b, changes);
        let _ = tx.send((
            net.node(b).get(doc).is_err(),
            net.node(c).get(doc).is_err(),
            net.node(c).get(profile).is_ok(),
            net.events
                .iter()
                .any(|(i, e)| *i == b && matches!(e, Event::Received { rejected: 1, .. })),
        ));
    });
    let (not_stored, not_relayed, profile_taken, rejected) = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("still decoding: the change was not refused unread");
    assert!(not_stored && not_relayed && profile_taken && rejected);
}

#[test]
fn hostile_requests_get_the_peer_disconnected() {
    let mut net = Net::new();
    let a = net.add("A");
    let b = net.add("B");
    net.connect(a, b);
    net.run();
    // Too many ranges in one request.
    let ranges = vec![
        (
            convene_node::sync::catalogue::Prefix::root(),
            convene_node::sync::catalogue::Fingerprint::default()
        );
        wire::MAX_RANGES + 1
    ];
    net.queue.push_back(Msg::Request {
        from: a,
        to: b,
        token: 7,
        bytes: wire::encode(&Request::Reconcile { ranges }),
    });
    net.run();
    assert!(
        net.disconnects
            .iter()
            .any(|(i, peer, reason)| *i == b && *peer == net.ids[a] && reason.contains("ranges")),
        "{:?}",
        net.disconnects
    );
    // Garbage never decodes into a message.
    assert!(wire::decode::<Request>(&[0xff, 0xfe, 0x00, 0x13, 0x37]).is_err());
    let big = vec![0u8; wire::MAX_MESSAGE_BYTES + 1];
    assert!(wire::decode::<Request>(&big).is_err());
}

#[test]
fn entries_reach_only_the_organisations_that_may_see_them() {
    use convene_model::Visibility;
    let mut net = Net::new();
    let a = net.add("Owner Trust");
    let b = net.add("Neighbour Council");
    let c = net.add("Partner Charity");
    net.connect(b, a);
    net.connect(c, a);
    net.run();
    let c_org = net.node(c).org();
    let mut publish = |title: &str, visibility: Visibility| {
        net.node_mut(a)
            .publish(EntryInput {
                body: Body::Learning(Learning {
                    title: title.into(),
                    summary: "s".into(),
                    ..Learning::default()
                }),
                visibility: Some(visibility),
                status: None,
            })
            .unwrap()
    };
    let internal = publish("Internal only", Visibility::Organisation);
    let shared = publish("For the charity", Visibility::Orgs(vec![c_org]));
    let open = publish("For everyone", Visibility::Community);
    net.run();
    // B and C then connect to each other: C must not relay what B may not see.
    net.connect(b, c);
    net.run();

    let has = |net: &Net, n: usize, id: DocumentId| {
        net.catalogue(n).iter().any(|(d, _)| d == id.as_bytes())
    };
    assert!(has(&net, b, open) && has(&net, c, open));
    assert!(has(&net, c, shared), "the listed organisation gets it");
    assert!(
        !has(&net, b, shared),
        "not relayed to an organisation that may not see it"
    );
    assert!(!has(&net, b, internal) && !has(&net, c, internal));
    assert!(net.node(b).get(shared).is_err() && net.node(b).get(internal).is_err());
    assert!(
        net.node(b).store().pending_count().unwrap() == 0,
        "not even waiting somewhere"
    );
}

#[test]
fn an_erasure_travels_along_a_line_and_the_entry_never_comes_back() {
    let mut net = Net::new();
    let a = net.add("Owner Trust");
    let b = net.add("Relay Council");
    let c = net.add("Far Charity");
    net.connect(b, a);
    net.connect(c, b);
    net.run();
    let id = net.publish(a, "A story withdrawn");
    net.run();
    assert!(net.node(c).get(id).is_ok());
    // C goes away; A erases; C comes back with its old copy.
    net.disconnect(b, c);
    net.node_mut(a)
        .erase(id, "withdrawn at the teller's request")
        .unwrap();
    net.run();
    assert!(matches!(
        net.node(b).get(id),
        Err(convene_node::NodeError::Erased(_))
    ));
    net.connect(c, b);
    net.run();
    for n in [a, b, c] {
        assert!(
            matches!(net.node(n).get(id), Err(convene_node::NodeError::Erased(_))),
            "node {n}"
        );
        assert!(
            net.node(n).store().changes(id).unwrap().is_empty(),
            "node {n}"
        );
    }
    assert_eq!(net.catalogue(a), net.catalogue(c));
}

fn link(net: &mut Net, a: usize, b: usize) {
    net.link(a, b);
}

fn admit(net: &mut Net, newcomer: usize, via: usize) {
    net.admit(newcomer, via);
}

fn invite_and_admit(net: &mut Net, newcomer: usize, steward: usize) {
    net.invite_and_admit(newcomer, steward);
}

fn join(net: &mut Net, newcomer: usize, via: usize) -> Result<String, String> {
    net.join(newcomer, via)
}

#[test]
fn a_community_admits_by_invite_even_with_its_steward_away_and_refuses_others() {
    let mut net = Net::new();
    let steward = net.add("Steward Trust");
    let council = net.add("Member Council");
    let group = net.add("Late VCSE Group");
    let outsider = net.add("Outsider Ltd");
    net.node_mut(steward).create_community("Boost").unwrap();
    invite_and_admit(&mut net, council, steward);
    let council_m = net.node(council).membership().expect("the charter arrived");
    assert!(council_m.is_member_node(&net.ids[council].to_string()));

    // The steward issues another invite, syncs it to the council, leaves.
    let code2 = net
        .node_mut(steward)
        .invite(3_600_000, false, None, vec![])
        .unwrap();
    net.run();
    net.disconnect(steward, council);
    net.node_mut(group).accept_invite(&code2).unwrap();
    link(&mut net, council, group);
    assert_eq!(
        join(&mut net, group, council),
        Ok("Boost".into()),
        "admitted by a member"
    );
    net.input(
        group,
        Input::Sync {
            peer: net.ids[council],
        },
    );
    net.run();
    let posted = net.publish(group, "Warm spaces");
    net.run();
    assert!(net.node(council).get(posted).is_ok());

    // The same code does not work twice.
    let mut outsider_net_code = code2.clone();
    outsider_net_code.addrs.clear();
    net.node_mut(outsider)
        .accept_invite(&outsider_net_code)
        .unwrap();
    link(&mut net, council, outsider);
    let refused = join(&mut net, outsider, council).unwrap_err();
    assert_eq!(refused, "not admitted");
    // A non-member learns nothing: its session is refused.
    net.events.clear();
    net.input(
        outsider,
        Input::Sync {
            peer: net.ids[council],
        },
    );
    net.run();
    assert!(net.events.iter().any(|(i, e)| *i == outsider
        && matches!(e, Event::SessionFailed { error, .. } if error.to_string().contains("not admitted"))));
    let outsider_docs = net.catalogue(outsider);
    assert!(!outsider_docs.iter().any(|(d, _)| d == posted.as_bytes()));
    assert!(net.node(outsider).get(posted).is_err());

    // The steward comes back and removes the group: it is refused from
    // then on and its new changes are rejected.
    net.connect(steward, council);
    net.run();
    // The replayed code contests the group's invite: a steward settles it.
    let m = net.node(steward).membership().unwrap();
    assert_eq!(m.conflicts.len(), 1);
    let group_id = net.ids[group].to_string();
    net.node_mut(steward).confirm_node(&group_id).unwrap();
    net.run();
    assert!(
        net.node(council)
            .membership()
            .unwrap()
            .is_member_node(&group_id)
    );
    let group_org = net.node(group).org();
    net.node_mut(steward).remove_member(group_org).unwrap();
    net.run();
    let m = net.node(council).membership().unwrap();
    assert!(m.is_removed(&group_org.to_string()));
    let after = net.publish(group, "After removal");
    net.input(
        group,
        Input::Sync {
            peer: net.ids[council],
        },
    );
    net.run();
    assert!(net.node(council).get(after).is_err());
    assert!(
        net.node(council).get(posted).is_ok(),
        "what it published before stays"
    );
}

/// The race a `convene join` met: the newcomer's daemon begins a session
/// on connecting (as a stranger, so the steward refuses it), the join is
/// admitted, and the refusal arrives after the admission. The newcomer
/// still catches up (a full session follows the refused one), and a
/// `sync` asked once it was admitted is answered by that catch-up, not
/// by the refusal (which used to end it: nothing more was asked).
#[test]
fn a_refusal_of_a_session_begun_before_joining_does_not_end_the_catch_up() {
    let mut net = Net::new();
    let steward = net.add("Steward Trust");
    let council = net.add("Member Council");
    net.node_mut(steward).create_community("Boost").unwrap();
    let lesson = net.publish(steward, "Peer visits");
    let code = net
        .node_mut(steward)
        .invite(3_600_000, false, None, vec![])
        .unwrap();
    net.node_mut(council).accept_invite(&code).unwrap();
    // The steward's daemon has looked at its store since (a tick).
    net.input(steward, Input::Tick);
    let s = net.ids[steward];
    // Connected: the council's daemon begins a session (and offers what
    // it holds); the steward refuses both (not admitted yet), but the
    // refusals are slow to arrive.
    net.link(council, steward);
    net.input(council, Input::Sync { peer: s });
    let asked = net.queue.len();
    assert!(asked >= 1 && net.queue.iter().all(|m| m.ends() == (council, steward)));
    for _ in 0..asked {
        assert!(net.deliver_one());
    }
    let refusals: Vec<Msg> = net.queue.drain(..).collect();
    assert_eq!(refusals.len(), asked, "an answer to each");
    assert!(
        refusals
            .iter()
            .all(|m| !m.is_request() && m.ends() == (steward, council))
    );
    // Meanwhile the council joins, and is admitted.
    net.events.clear();
    let changes = net.node(council).join_changes().unwrap();
    net.input(council, Input::Join { peer: s, changes });
    let joined = |net: &Net| {
        net.events
            .iter()
            .any(|(i, e)| *i == council && matches!(e, Event::Joined { .. }))
    };
    // The claim, and what the steward sends back (its welcome, and a push
    // of the council's own claim as the steward now holds it).
    while !joined(&net) {
        assert!(net.deliver_one(), "admitted");
    }
    // `convene join` asks for a sync now; then the refusals arrive.
    net.input(council, Input::Sync { peer: s });
    net.events.clear();
    for m in refusals.into_iter().rev() {
        net.queue.push_front(m);
    }
    for _ in 0..asked {
        assert!(net.deliver_one());
    }
    assert!(
        net.events.iter().any(|(i, e)| *i == council
            && matches!(e, Event::SessionFailed { error: SessionError::Refused(r), .. } if r == "not admitted")),
        "the session begun before joining was refused"
    );
    assert!(
        net.nodes[council].service.in_full_session(&s),
        "a full session follows the refused one, and answers the sync asked after joining"
    );
    net.run();
    assert!(
        net.node(council).membership().is_some(),
        "the charter arrived"
    );
    assert!(
        net.node(council).get(lesson).is_ok(),
        "the steward's entry arrived"
    );
    assert_eq!(net.catalogue(council), net.catalogue(steward));
}

#[test]
fn a_second_node_of_a_member_organisation_joins_and_edits_its_entries() {
    let mut net = Net::new();
    let steward = net.add("Steward Trust");
    let council = net.add("Member Council");
    let second = net.add("(to become the council's second node)");
    net.node_mut(steward).create_community("Boost").unwrap();
    invite_and_admit(&mut net, council, steward);
    let entry = net.publish(council, "Discharge to assess");
    net.run();

    let council_org = net.node(council).org();
    let code = net
        .node_mut(steward)
        .invite(3_600_000, false, Some(council_org), vec![])
        .unwrap();
    net.run();
    // The council consents: one of its nodes lists the new node.
    let second_id = net.ids[second];
    net.node_mut(council).authorize_node(second_id).unwrap();
    net.run();
    net.node_mut(second).accept_invite(&code).unwrap();
    assert_eq!(
        net.node(second).org(),
        council_org,
        "it became a node of the council"
    );
    admit(&mut net, second, council);
    net.node_mut(second)
        .edit(
            entry,
            Edit::Set(vec![("impact".into(), "Shorter stays".into())]),
        )
        .unwrap();
    net.run();
    for n in [steward, council, second] {
        let Body::Learning(l) = net.node(n).get(entry).unwrap().body else {
            panic!()
        };
        assert_eq!(l.impact, "Shorter stays", "node {n}");
        assert!(
            net.node(n).store().log(true).unwrap().is_empty(),
            "node {n} rejected nothing"
        );
    }
    // An entry only the council's nodes may see reaches its second node.
    let internal = net
        .node_mut(council)
        .publish(EntryInput {
            body: Body::Learning(Learning {
                title: "Internal".into(),
                summary: "s".into(),
                ..Learning::default()
            }),
            visibility: Some(convene_model::Visibility::Organisation),
            status: None,
        })
        .unwrap();
    net.run();
    assert!(net.node(second).get(internal).is_ok());
    assert!(net.node(steward).get(internal).is_err());
}

#[test]
fn an_expired_invite_is_refused() {
    let mut net = Net::new();
    let steward = net.add("Steward Trust");
    let late = net.add("Late Group");
    net.node_mut(steward).create_community("Boost").unwrap();
    // Valid until a second ago.
    let code = net
        .node_mut(steward)
        .invite(-1000, false, None, vec![])
        .unwrap();
    net.node_mut(late).accept_invite(&code).unwrap();
    link(&mut net, steward, late);
    let refused = join(&mut net, late, steward).unwrap_err();
    assert_eq!(refused, "not admitted", "a stranger is told nothing more");
    let m = net.node(steward).membership().unwrap();
    assert!(!m.is_member_node(&net.ids[late].to_string()));
}

#[test]
fn a_catch_up_from_a_community_of_many_organisations_sets_each_early_change_aside_exactly_once() {
    let mut net = Net::new();
    let steward = net.add("Steward Trust");
    net.node_mut(steward).create_community("Boost").unwrap();
    let orgs = 6;
    let per_org = 30;
    for o in 0..orgs {
        let member = net.add(&format!("Member {o}"));
        invite_and_admit(&mut net, member, steward);
        for i in 0..per_org {
            net.publish(member, &format!("Lesson {i} of member {o}"));
        }
        net.input(
            member,
            Input::Sync {
                peer: net.ids[steward],
            },
        );
        net.run();
        net.disconnect(member, steward);
    }
    let newcomer = net.add("Newcomer Group");
    invite_and_admit(&mut net, newcomer, steward);
    assert_eq!(net.catalogue(newcomer), net.catalogue(steward));
    let waited: usize = net
        .events
        .iter()
        .filter_map(|(i, e)| match e {
            Event::SessionDone { stats, .. } if *i == newcomer => Some(stats.waited),
            _ => None,
        })
        .sum();
    // The whole catalogue comes in one answer, and every change of a
    // member organisation (its entries and its profile) arrives before
    // what lets it in: each is set aside exactly once, and taken back once
    // that is here, however many organisations' profiles arrive meanwhile.
    // None is set aside twice, and none is missed (nothing waiting would
    // mean the changes were applied out of order or the count is lost).
    let changes = net.node(steward).store().all_changes().unwrap().len();
    assert!(changes > orgs * per_org);
    assert_eq!(
        waited,
        orgs * (per_org + 1),
        "set-asides of {changes} changes: each of the members' entries and profiles once"
    );
}

/// Issue 13, item 5: a draft never leaves its node (not announced, not
/// offered in reconciliation, not served even when asked for by id); once
/// published it travels with its earlier changes; made a draft again, the
/// edits after that stay home.
#[test]
fn a_draft_stays_on_its_node_until_it_is_published() {
    use convene_model::Status;
    use convene_node::sync::Replica;
    let mut net = Net::new();
    let a = net.add("Owner Trust");
    let b = net.add("Neighbour Council");
    net.connect(b, a);
    net.run();
    let draft = net
        .node_mut(a)
        .publish(EntryInput {
            body: Body::Learning(Learning {
                title: "Unfinished thoughts".into(),
                summary: "Not for sharing yet: zanzibar".into(),
                ..Learning::default()
            }),
            visibility: None,
            status: Some(Status::Draft),
        })
        .unwrap();
    let set = |pairs: &[(&str, &str)]| {
        Edit::Set(
            pairs
                .iter()
                .map(|(f, v)| (f.to_string(), v.to_string()))
                .collect(),
        )
    };
    net.node_mut(a)
        .edit(draft, set(&[("title", "Unfinished thoughts, revised")]))
        .unwrap();
    net.run();
    let has = |net: &Net, n: usize| net.catalogue(n).iter().any(|(d, _)| d == draft.as_bytes());
    let hidden_from_b = |net: &Net, when: &str| {
        assert!(!has(net, b), "{when}: in B's catalogue");
        assert!(net.node(b).get(draft).is_err(), "{when}: B reads it");
        assert!(net.node(b).store().changes(draft).unwrap().is_empty());
        assert_eq!(net.node(b).store().pending_count().unwrap(), 0, "{when}");
        let found = net.node(b).search("zanzibar", 10).unwrap().unwrap();
        assert!(found.is_empty(), "{when}: B finds it");
    };
    assert!(has(&net, a));
    hidden_from_b(&net, "live");
    // A full session (reconciliation) from either side.
    for (x, y) in [(b, a), (a, b)] {
        net.disconnect(a, b);
        net.connect(x, y);
        net.run();
        hidden_from_b(&net, "after a full session");
    }
    // Asked for by id, with or without heads: refused.
    let peer_b = net.ids[b];
    let heads = net.node(a).store().heads(draft).unwrap();
    let replica = net.nodes[a].service.replica_mut();
    for have in [Vec::new(), heads] {
        assert!(
            replica
                .fetch(&peer_b, draft.as_bytes(), &have)
                .unwrap()
                .is_none()
        );
    }

    // Published: it travels, with the changes made while it was a draft.
    net.node_mut(a)
        .edit(draft, set(&[("status", "published")]))
        .unwrap();
    net.run();
    assert!(has(&net, b));
    assert_eq!(
        net.node(b).get(draft).unwrap(),
        net.node(a).get(draft).unwrap()
    );
    assert_eq!(net.node(b).store().changes(draft).unwrap().len(), 3);

    // A draft again: what is written after that stays on A, live or in a
    // full session, and the sessions still end.
    net.node_mut(a)
        .edit(
            draft,
            set(&[("status", "draft"), ("title", "Secret rewrite")]),
        )
        .unwrap();
    // Before A's catalogue has noticed (as when a CLI command writes while
    // the daemon runs), B asks with the heads it has: the store decides.
    let b_heads = net.node(b).store().heads(draft).unwrap();
    let replica = net.nodes[a].service.replica_mut();
    assert!(
        replica
            .fetch(&peer_b, draft.as_bytes(), &b_heads)
            .unwrap()
            .is_none(),
        "the change that made it a draft again was served"
    );
    net.run();
    net.disconnect(a, b);
    net.connect(b, a);
    net.run();
    let at_b = net.node(b).get(draft).unwrap();
    assert_eq!(at_b.body.title(), "Unfinished thoughts, revised");
    assert_eq!(at_b.meta.status, Status::Published);
    assert_eq!(net.node(b).store().changes(draft).unwrap().len(), 3);
    assert_eq!(net.node(a).store().changes(draft).unwrap().len(), 4);
}

/// A draft that reached a node anyway (from a node of an older version,
/// which served drafts) is not passed on from there.
#[test]
fn a_draft_from_an_older_node_is_not_relayed() {
    use convene_model::Status;
    let mut net = Net::new();
    let a = net.add("Owner Trust");
    let b = net.add("Old Relay");
    let c = net.add("Far Charity");
    let draft = net
        .node_mut(a)
        .publish(EntryInput {
            body: Body::Learning(Learning {
                title: "Unfinished thoughts".into(),
                summary: "Not for sharing yet.".into(),
                ..Learning::default()
            }),
            visibility: None,
            status: Some(Status::Draft),
        })
        .unwrap();
    // B has A's profile and, as an older node would have sent it, the draft.
    net.connect(b, a);
    net.run();
    let changes: Vec<_> = net
        .node(a)
        .store()
        .changes(draft)
        .unwrap()
        .into_iter()
        .map(|s| s.change)
        .collect();
    // (Without the fix B has it already, from A.)
    let report = net.node_mut(b).apply(changes).unwrap();
    assert_eq!(report.applied + report.already_had, 1, "{report:?}");
    assert!(net.node(b).get(draft).is_ok());
    net.connect(c, b);
    net.run();
    net.disconnect(b, c);
    net.connect(b, c);
    net.run();
    assert!(net.node(c).get(draft).is_err());
    assert!(
        !net.catalogue(c).iter().any(|(d, _)| d == draft.as_bytes()),
        "C learnt of it"
    );
}

/// In a full mesh the author pushes a new entry (its changes, with the
/// announcement) to every member; each push names the others it was sent
/// to, so no receiver passes it on, nobody fetches, and nothing is
/// announced back.
#[test]
fn in_a_full_mesh_a_new_entry_is_pushed_once_to_each_node_and_not_passed_on() {
    const N: usize = 6;
    let mut net = Net::new();
    for i in 0..N {
        net.add(&format!("Member {i}"));
    }
    for i in 0..N {
        for j in 0..i {
            net.connect(i, j);
        }
    }
    net.run();
    let id = net.publish(0, "A lesson for everyone");
    net.input(0, Input::Tick);
    let (mut announces, mut pushes, mut fetches, mut requests) = (0, 0, 0, 0);
    while let Some(front) = net.queue.front() {
        if let Msg::Request { bytes, .. } = front {
            requests += 1;
            match wire::decode::<Request>(bytes).unwrap() {
                Request::Announce { .. } => announces += 1,
                Request::Push { items, changes, .. } => {
                    assert!(items.iter().any(|(d, _)| d == id.as_bytes()));
                    assert!(!changes.is_empty(), "a push carries the changes");
                    pushes += 1
                }
                Request::GetChanges { docs } if docs.iter().any(|d| d.doc == *id.as_bytes()) => {
                    fetches += 1
                }
                _ => {}
            }
        }
        net.deliver_one();
    }
    for i in 1..N {
        assert_eq!(net.catalogue(i), net.catalogue(0), "node {i}");
        assert!(net.node(i).get(id).is_ok(), "node {i} has the entry");
    }
    assert_eq!(pushes, N - 1, "one push to each other node");
    assert_eq!(fetches, 0, "nobody had to ask");
    assert_eq!(announces, 0, "nobody passed it on or announced it back");
    assert_eq!(requests, N - 1, "nothing else was sent");
}

/// A push that lacks what came before (here: the entry was a draft, so
/// its first changes were never sent) leaves the receiver's digest behind
/// the pushed one; the receiver fetches the rest, as after an
/// announcement.
#[test]
fn a_push_that_lacks_earlier_changes_is_completed_by_a_fetch() {
    let mut net = Net::new();
    let a = net.add("Member A");
    let b = net.add("Member B");
    net.connect(b, a);
    net.run();
    let draft = net
        .node_mut(a)
        .publish(EntryInput {
            body: Body::Learning(Learning {
                title: "Written over weeks".into(),
                summary: "What three teams found".into(),
                ..Learning::default()
            }),
            visibility: None,
            status: Some(convene_model::Status::Draft),
        })
        .unwrap();
    net.input(a, Input::Tick);
    net.run();
    assert!(net.node(b).get(draft).is_err(), "a draft stays home");
    net.node_mut(a)
        .edit(
            draft,
            Edit::Set(vec![("status".to_string(), "published".to_string())]),
        )
        .unwrap();
    net.input(a, Input::Tick);
    let (mut pushes, mut fetches) = (0, 0);
    while let Some(front) = net.queue.front() {
        if let Msg::Request { bytes, .. } = front {
            match wire::decode::<Request>(bytes).unwrap() {
                Request::Push { .. } => pushes += 1,
                Request::GetChanges { docs } if docs.iter().any(|d| d.doc == *draft.as_bytes()) => {
                    fetches += 1
                }
                _ => {}
            }
        }
        net.deliver_one();
    }
    assert_eq!((pushes, fetches), (1, 1));
    assert_eq!(net.catalogue(b), net.catalogue(a));
    assert!(net.node(b).get(draft).is_ok());
}

/// A node catching up from a peer does not tell that peer about what it
/// just fetched from it: the heads in the peer's answers say it has them.
#[test]
fn what_a_session_fetched_is_not_announced_back_to_where_it_came_from() {
    let mut net = Net::new();
    let a = net.add("Member A");
    let b = net.add("Member B");
    for i in 0..5 {
        net.publish(a, &format!("Lesson {i}"));
    }
    net.input(a, Input::Tick);
    net.run();
    net.connect(b, a);
    let mut back = Vec::new();
    while let Some(front) = net.queue.front() {
        if let Msg::Request { from, bytes, .. } = front
            && *from == b
        {
            let r = wire::decode::<Request>(bytes).unwrap();
            if matches!(r, Request::Push { .. } | Request::Announce { .. }) {
                back.push(r.kind());
            }
        }
        net.deliver_one();
        if net.queue.is_empty() {
            // What a tick would find on B.
            net.input(b, Input::Tick);
        }
    }
    assert_eq!(net.catalogue(b), net.catalogue(a));
    assert!(back.is_empty(), "B told A of what it fetched: {back:?}");
}

/// A document of a kind a newer Convene makes ("poll" here): a node that
/// cannot show it still checks who wrote it, stores it and passes it on
/// to the members that may see it, so a new kind does not split a
/// community whose nodes upgrade one at a time.
#[test]
fn a_kind_from_a_newer_version_is_checked_kept_and_passed_on() {
    use automerge::transaction::Transactable;
    let mut net = Net::new();
    let a = net.add("Newer Trust");
    let b = net.add("Older Council");
    let c = net.add("Newer Group");
    net.connect(a, b);
    net.connect(b, c);
    net.run();

    // A writes a poll as a newer release would: the metadata every entry
    // carries, and fields this release has never heard of.
    let make = |node: &convene_node::Node, doc: Option<convene_model::DocumentId>, title: &str| {
        let mut state = match doc {
            Some(id) => node.store().load(id).unwrap().unwrap(),
            None => automerge::Automerge::new(),
        };
        state.set_actor(automerge::ActorId::from(
            node.identity().public_bytes().as_slice(),
        ));
        let mut tx = state.transaction();
        if doc.is_none() {
            let at = automerge::ScalarValue::Timestamp(1_700_000_000_000);
            tx.put(automerge::ROOT, "kind", "poll").unwrap();
            tx.put(automerge::ROOT, "schema", 2_u64).unwrap();
            tx.put(automerge::ROOT, "owner", net_org(node)).unwrap();
            tx.put(automerge::ROOT, "visibility", "community").unwrap();
            tx.put(automerge::ROOT, "created", at.clone()).unwrap();
            tx.put(automerge::ROOT, "updated", at).unwrap();
            tx.put(automerge::ROOT, "status", "published").unwrap();
            tx.put(automerge::ROOT, "choices", "Tuesday, Thursday")
                .unwrap();
        }
        tx.put(automerge::ROOT, "title", title).unwrap();
        let (hash, _) = tx.commit();
        let hash = hash.unwrap();
        let change = automerge::ReadDoc::get_change_by_hash(&state, &hash).unwrap();
        let id = doc.unwrap_or_else(|| convene_node::trust::entry_id(&hash.0));
        (
            id,
            convene_node::SignedChange::sign(node.identity(), id, &change),
        )
    };
    fn net_org(node: &convene_node::Node) -> String {
        node.org().to_string()
    }
    let (poll, first) = make(net.node(a), None, "Which day suits the summit?");
    let report = net.node_mut(a).apply(vec![first]).unwrap();
    assert!(report.rejected.is_empty(), "{report:?}");
    net.run();

    // B cannot show it, but holds it; C gets it through B.
    for n in [b, c] {
        assert!(
            !net.node(n).store().changes(poll).unwrap().is_empty(),
            "node {n} holds the poll"
        );
        assert!(net.node(n).get(poll).is_err(), "it is not shown");
        let listed = net.node(n).list(&Default::default()).unwrap();
        assert!(listed.iter().all(|l| l.id != poll));
    }

    // Its writers are still checked: B may not change A's poll.
    let (_, forged) = make(net.node(b), Some(poll), "Mallory's poll");
    let report = net.node_mut(c).apply(vec![forged]).unwrap();
    assert_eq!(report.rejected.len(), 1, "{report:?}");

    // An edit by its owner travels like the first change.
    let (_, edit) = make(net.node(a), Some(poll), "Which day suits the summit best?");
    net.node_mut(a).apply(vec![edit]).unwrap();
    net.run();
    assert_eq!(
        net.node(c).store().heads(poll).unwrap(),
        net.node(a).store().heads(poll).unwrap()
    );
}
