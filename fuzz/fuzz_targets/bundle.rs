//! `convene import`: arbitrary bundle files. Bytes that start with the
//! bundle magic go through the streaming importer as `convene import`
//! runs it (checksum, then every record read in bounded memory, verified,
//! applied in batches) and through the whole-body reader; other bytes are
//! taken as the decoded body itself, so mutations reach the importer past
//! the checksum. Changes whose
//! bytes parse as automerge changes are then re-signed by the importing
//! node, so that arbitrary (but validly signed) change bytes reach the
//! permission checks, apply and the store. Nothing may panic, and the store
//! must pass `PRAGMA integrity_check` afterwards.

#![no_main]

use std::cell::RefCell;

use convene_model::DocumentId;
use convene_node::bundle::{self, Body};
use convene_node::sync::wire::WireChange;
use convene_node::{InitOptions, Node, SignedChange};
use libfuzzer_sys::fuzz_target;

thread_local! {
    static NODE: RefCell<(tempfile::TempDir, Node)> = RefCell::new({
        let dir = tempfile::tempdir().unwrap();
        let mut node = Node::init(
            dir.path(),
            &InitOptions { org: "Fuzz Council".into(), sector: "council".into(), place: None },
        )
        .unwrap();
        node.publish(convene_model::EntryInput {
            body: convene_model::Body::Learning(convene_model::Learning {
                title: "Seed".into(),
                summary: "An entry for the fuzzer to change.".into(),
                ..Default::default()
            }),
            visibility: None,
            status: None,
        })
        .unwrap();
        (dir, node)
    });
}

fn body(data: &[u8]) -> Option<Body> {
    if data.starts_with(b"CONVENE-BUNDLE\n") {
        bundle::decode(data).ok()
    } else {
        postcard::from_bytes(data).ok()
    }
}

fuzz_target!(|data: &[u8]| {
    // The node catches panics inside automerge (a malformed change is
    // rejected, see `apply_received`); libFuzzer's hook would abort first.
    // A panic that escapes the target still aborts, as a crash.
    static DEFAULT_HOOK: std::sync::Once = std::sync::Once::new();
    DEFAULT_HOOK.call_once(|| drop(std::panic::take_hook()));
    if data.starts_with(b"CONVENE-BUNDLE\n") {
        NODE.with(|cell| {
            let (_, node) = &mut *cell.borrow_mut();
            let _ = node.import_bundle_from(|| Ok(data), &mut |_, _, _| {});
            assert_eq!(node.store().integrity_check().unwrap(), "ok");
        });
    }
    let Some(mut body) = body(data) else {
        return;
    };
    if body.changes.len() > 64 || body.tombstones.len() > 64 {
        return;
    }
    let _ = bundle::hashes(&body);
    let _ = bundle::documents(&body);
    NODE.with(|cell| {
        let (_, node) = &mut *cell.borrow_mut();
        // As sent: signatures must be checked (a forged one refuses all).
        let _ = node.import_bundle(body.clone());
        // Re-signed by this node: arbitrary change bytes with good
        // signatures.
        body.changes = body
            .changes
            .iter()
            .filter_map(|c| {
                let change = automerge::Change::try_from(c.bytes.as_slice()).ok()?;
                let signed =
                    SignedChange::sign(node.identity(), DocumentId::from_bytes(c.doc), &change);
                Some(WireChange::from(&signed))
            })
            .collect();
        let _ = node.import_bundle(body);
        assert_eq!(node.store().integrity_check().unwrap(), "ok");
    });
});
