//! Hostile peers against the sans-IO sync core: a peer that floods
//! requests (or join attempts) is refused and then disconnected, a peer
//! that keeps splitting reconciliation ranges is cut off after the round
//! bound, a peer that never answers ends the session when the runtime
//! reports the timeout, an answer to a request never sent (or sent to
//! another peer, or answered already) changes nothing, and a stranger's
//! join request declaring years of rows is refused unread. (The same over real libp2p connections is in
//! `daemon.rs`.)

mod sim;

use convene_node::sync::catalogue::{Fingerprint, Prefix};
use convene_node::sync::session::MAX_ROUNDS;
use convene_node::sync::wire::{RangeResult, Request, Response};
use convene_node::sync::{Event, Input, Io, Limits, SessionError};
use convene_node::{Identity, NodeId};
use sim::Net;

/// What the service did with a run of requests from one peer.
#[derive(Debug, Default)]
struct Tally {
    answered: usize,
    refused_for_rate: usize,
    refused_other: usize,
    /// How many requests it took before the peer was disconnected.
    disconnected_after: Option<usize>,
    throttled_events: usize,
}

/// Sends `n` copies of `request` from `peer` to node `to`, all at the same
/// instant, straight into its service.
fn flood(net: &mut Net, to: usize, peer: NodeId, request: &Request, n: usize) -> Tally {
    let now = net.now;
    let service = &mut net.nodes[to].service;
    let mut tally = Tally::default();
    for i in 0..n {
        service.handle(
            now,
            Input::Request {
                peer,
                channel: 1_000_000 + i as u64,
                request: request.clone(),
            },
        );
        while let Some(io) = service.next_io() {
            match io {
                Io::Respond {
                    response: Response::Refused { reason },
                    ..
                } if reason.contains("too many") => tally.refused_for_rate += 1,
                Io::Respond {
                    response: Response::Refused { .. },
                    ..
                } => tally.refused_other += 1,
                Io::Respond { .. } => tally.answered += 1,
                Io::Disconnect { peer: p, .. } if p == peer => {
                    tally.disconnected_after.get_or_insert(i + 1);
                }
                Io::Event(Event::Throttled { .. }) => tally.throttled_events += 1,
                _ => {}
            }
        }
        if tally.disconnected_after.is_some() {
            break;
        }
    }
    tally
}

#[test]
fn a_peer_that_floods_requests_is_refused_then_disconnected() {
    let mut net = Net::new();
    let flooder = net.add("Flooder");
    let victim = net.add("Victim");
    let honest = net.add("Honest");
    net.connect(flooder, victim);
    net.connect(honest, victim);
    net.run();
    let limits = Limits::default();
    let burst = limits.burst as usize;
    for request in [
        Request::Announce { items: Vec::new() },
        Request::Reconcile {
            ranges: vec![(Prefix::root(), Fingerprint::default())],
        },
        Request::GetChanges { docs: Vec::new() },
    ] {
        // A new flooder each time (the budget is per peer and survives
        // reconnections).
        let peer = Identity::generate().node_id();
        net.input(victim, Input::Connected { peer });
        let t = flood(&mut net, victim, peer, &request, 10 * burst);
        assert_eq!(t.answered, burst, "{request:?}: {t:?}");
        assert_eq!(t.refused_for_rate, burst, "{t:?}");
        assert_eq!(t.disconnected_after, Some(2 * burst + 1), "{t:?}");
        assert_eq!(t.throttled_events, burst + 1, "every refusal is reported");
    }
    // The honest peer still gets answers, at once.
    let honest_id = net.ids[honest];
    let t = flood(
        &mut net,
        victim,
        honest_id,
        &Request::Announce { items: Vec::new() },
        10,
    );
    assert_eq!((t.answered, t.refused_for_rate), (10, 0), "{t:?}");
    // A flooder that stops is served again once its debt is paid.
    let peer = Identity::generate().node_id();
    let announce = Request::Announce { items: Vec::new() };
    let t = flood(&mut net, victim, peer, &announce, burst + 10);
    assert_eq!(t.refused_for_rate, 10);
    net.now += 60_000;
    let t = flood(&mut net, victim, peer, &announce, 10);
    assert_eq!((t.answered, t.refused_for_rate), (10, 0), "{t:?}");
}

/// A node holding `lessons` published learning entries.
fn victim_with_lessons(lessons: usize) -> (Net, usize) {
    let mut net = Net::new();
    let victim = net.add("Victim");
    for i in 0..lessons {
        net.publish(victim, &format!("Lesson {i}"));
    }
    (net, victim)
}

#[test]
fn repeated_join_requests_from_a_non_member_are_cut_off() {
    let mut net = Net::new();
    let steward = net.add("Steward Trust");
    net.node_mut(steward).create_community("Boost").unwrap();
    let outsider = Identity::generate().node_id();
    net.input(steward, Input::Connected { peer: outsider });
    let join = Request::Join {
        changes: Vec::new(),
    };
    let t = flood(&mut net, steward, outsider, &join, 100);
    let l = Limits::default();
    assert_eq!(t.refused_other, l.join_burst as usize, "not a valid claim");
    assert_eq!(t.refused_for_rate, l.join_burst as usize, "{t:?}");
    assert_eq!(
        t.disconnected_after,
        Some(2 * l.join_burst as usize + 1),
        "{t:?}"
    );
}

#[test]
fn strangers_that_asked_to_join_leave_nothing_behind_when_they_go() {
    let mut net = Net::new();
    let steward = net.add("Steward Trust");
    net.node_mut(steward).create_community("Boost").unwrap();
    let join = Request::Join {
        changes: Vec::new(),
    };
    for _ in 0..200 {
        let stranger = Identity::generate().node_id();
        net.input(steward, Input::Connected { peer: stranger });
        flood(&mut net, steward, stranger, &join, 1);
        net.input(steward, Input::Disconnected { peer: stranger });
    }
    let kept = net.nodes[steward].service.peers().count();
    assert_eq!(kept, 0, "{kept} strangers are still remembered");
}

#[test]
fn a_peer_that_keeps_splitting_ranges_is_cut_off() {
    let (mut net, victim) = victim_with_lessons(50);
    let hostile = Identity::generate().node_id();
    let service = &mut net.nodes[victim].service;
    let mut now = 1_800_000_000_000;
    service.handle(now, Input::Connected { peer: hostile });
    service.handle(now, Input::Sync { peer: hostile });
    let mut requests = 0;
    let mut failed = None;
    let mut disconnected = false;
    let mut salt = 0u128;
    'outer: for _ in 0..1000 {
        let mut sent = Vec::new();
        while let Some(io) = service.next_io() {
            match io {
                Io::Send { token, request, .. } => sent.push((token, request)),
                Io::Event(Event::SessionFailed { error, .. }) => failed = Some(error),
                Io::Disconnect { .. } => disconnected = true,
                _ => {}
            }
        }
        if sent.is_empty() {
            break 'outer;
        }
        for (token, request) in sent {
            // (Announcements and pushes of the victim's entries go
            // unanswered.)
            let Request::Reconcile { ranges } = request else {
                assert!(
                    matches!(request, Request::Announce { .. } | Request::Push { .. }),
                    "{request:?}"
                );
                continue;
            };
            requests += 1;
            // Every range "differs" and is "too big to list".
            let results = ranges
                .iter()
                .map(|(range, _)| {
                    RangeResult::Split(
                        range
                            .children()
                            .into_iter()
                            .map(|c| {
                                salt += 1;
                                (
                                    c,
                                    Fingerprint {
                                        count: 1_000_000,
                                        sum: salt,
                                    },
                                )
                            })
                            .collect(),
                    )
                })
                .collect();
            now += 5;
            service.handle(
                now,
                Input::Response {
                    peer: hostile,
                    token,
                    response: Response::Reconcile { results },
                },
            );
        }
    }
    assert_eq!(requests, MAX_ROUNDS as usize, "one request per round");
    assert!(
        matches!(&failed, Some(SessionError::Violation(v)) if v.to_string().contains("rounds")),
        "{failed:?}"
    );
    assert!(disconnected, "the peer is dropped");
    assert!(!service.is_syncing(&hostile));
}

#[test]
fn a_peer_that_never_answers_ends_the_session_and_others_are_served() {
    let mut net = Net::new();
    let a = net.add("A");
    let b = net.add("B");
    let silent = Identity::generate().node_id();
    net.connect(a, b);
    net.run();
    let service = &mut net.nodes[a].service;
    let now = 1_800_000_000_000;
    service.handle(now, Input::Connected { peer: silent });
    service.handle(now, Input::Sync { peer: silent });
    let mut token = None;
    while let Some(io) = service.next_io() {
        if let Io::Send { token: t, peer, .. } = io
            && peer == silent
        {
            token = Some(t);
        }
    }
    let token = token.expect("a request to the silent peer");
    assert!(service.is_syncing(&silent));
    // The runtime's request timeout fires.
    service.handle(
        now + 30_000,
        Input::Failed {
            peer: silent,
            token,
            error: "timeout".into(),
        },
    );
    let mut failed = false;
    while let Some(io) = service.next_io() {
        failed |= matches!(io, Io::Event(Event::SessionFailed { peer, .. }) if peer == silent);
    }
    assert!(failed && !service.is_syncing(&silent));
    // (The simulated network does not know the silent peer: let it go.)
    service.handle(now + 30_001, Input::Disconnected { peer: silent });
    while service.next_io().is_some() {}
    // Meanwhile and after, B syncs with A as usual.
    let id = net.publish(b, "Still flowing");
    net.run();
    assert!(net.node(a).get(id).is_ok());
}

#[test]
fn a_join_request_declaring_years_of_rows_is_refused_unread() {
    // A stranger's few hundred bytes, signed by itself, whose columns
    // declare 2^36 operations: decoding them would take the node's memory
    // and hours. It is refused from what the bytes declare, at once.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut net = Net::new();
        let steward = net.add("Steward Trust");
        net.node_mut(steward).create_community("Boost").unwrap();
        let stranger = Identity::generate();
        let (bytes, hash) = convene_node::trust::columns::forge::nulls(1 << 36, 0);
        let doc = convene_model::DocumentId::from_bytes([7; 16]);
        let bomb = convene_node::SignedChange::sign_raw(&stranger, doc, bytes, hash);
        let peer = stranger.node_id();
        net.input(steward, Input::Connected { peer });
        let join = Request::Join {
            changes: vec![convene_node::sync::wire::WireChange::from(&bomb)],
        };
        let t = flood(&mut net, steward, peer, &join, 1);
        let stored = net.node(steward).get(doc).is_ok();
        let _ = tx.send((t, stored));
    });
    let (t, stored) = rx
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("still decoding: the join request was not refused unread");
    assert_eq!((t.refused_other, t.answered), (1, 0), "{t:?}");
    assert!(!stored, "the stranger's change was stored");
}

#[test]
fn answers_to_requests_never_sent_or_already_answered_change_nothing() {
    let (mut net, victim) = victim_with_lessons(5);
    let peer = Identity::generate().node_id();
    let other = Identity::generate().node_id();
    let service = &mut net.nodes[victim].service;
    let now = 1_800_000_000_000;
    service.handle(now, Input::Connected { peer });
    service.handle(now, Input::Connected { peer: other });
    service.handle(now, Input::Sync { peer });
    // What the service does next: (requests sent, failures, disconnects).
    let drain = |service: &mut convene_node::sync::Service<convene_node::sync::NodeReplica>| {
        let (mut sent, mut failed, mut dropped) = (Vec::new(), 0, 0);
        while let Some(io) = service.next_io() {
            match io {
                Io::Send { token, request, .. } => sent.push((token, request)),
                Io::Event(Event::SessionFailed { .. }) => failed += 1,
                Io::Disconnect { .. } => dropped += 1,
                _ => {}
            }
        }
        (sent, failed, dropped)
    };
    let (sent, _, _) = drain(service);
    let (token, ranges) = sent
        .into_iter()
        .find_map(|(t, r)| match r {
            Request::Reconcile { ranges } => Some((t, ranges.len())),
            _ => None,
        })
        .expect("the session asks the peer to reconcile");
    // A lie that would split every range, for a token never sent, and
    // for the real token from another peer.
    let lie = || Response::Reconcile {
        results: vec![
            RangeResult::Split(
                Prefix::root()
                    .children()
                    .into_iter()
                    .map(|c| (c, Fingerprint { count: 9, sum: 9 }))
                    .collect()
            );
            ranges
        ],
    };
    for (from, t) in [(peer, token + 1000), (other, token)] {
        service.handle(
            now,
            Input::Response {
                peer: from,
                token: t,
                response: lie(),
            },
        );
        assert_eq!(drain(service), (Vec::new(), 0, 0), "{from} {t}");
        assert!(service.is_syncing(&peer), "the session still waits");
    }
    // The real answer: nothing differs, and the session ends.
    let same = || Response::Reconcile {
        results: vec![RangeResult::Same; ranges],
    };
    service.handle(
        now,
        Input::Response {
            peer,
            token,
            response: same(),
        },
    );
    let (_, failed, dropped) = drain(service);
    assert_eq!((failed, dropped), (0, 0));
    assert!(!service.is_syncing(&peer));
    // The same answer again, and the lie for its token: nothing happens.
    for response in [same(), lie()] {
        service.handle(
            now,
            Input::Response {
                peer,
                token,
                response,
            },
        );
        assert_eq!(drain(service), (Vec::new(), 0, 0));
        assert!(!service.is_syncing(&peer));
    }
}
