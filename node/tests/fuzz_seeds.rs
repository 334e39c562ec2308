//! Writes the seed corpus of the fuzz targets in `fuzz/` (valid messages,
//! frames, step sequences, bundles and spreadsheets), so that fuzzing
//! starts from inputs that reach deep into each parser. Run by hand when
//! the formats change:
//!
//! ```text
//! cargo test -p convene-node --test fuzz_seeds -- --ignored
//! ```

mod sim;

use std::path::{Path, PathBuf};

use convene_node::bundle::{self, Since};
use convene_node::sync::catalogue::{Fingerprint, Prefix};
use convene_node::sync::wire::{self, DocHeads, RangeResult, Request, Response, WireChange};
use sim::Net;

fn dir(target: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn frame(bytes: &[u8]) -> Vec<u8> {
    let mut f = (bytes.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(bytes);
    f
}

/// postcard's variable-length integer.
fn varint(mut n: usize, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

#[test]
#[ignore = "writes files; run by hand"]
fn write_the_fuzz_seed_corpus() {
    let mut net = Net::new();
    let a = net.add("Seed Trust");
    let b = net.add("Seed Council");
    let doc = net.publish(a, "A seed entry");
    net.connect(b, a);
    net.run();
    let change = WireChange::from(&net.node(a).store().all_changes().unwrap()[0]);
    let heads = vec![change.hash];
    let id = *doc.as_bytes();

    let requests = [
        Request::Reconcile {
            ranges: vec![(Prefix::root(), Fingerprint { count: 3, sum: 42 })],
        },
        Request::GetChanges {
            docs: vec![DocHeads {
                doc: id,
                heads: heads.clone(),
            }],
        },
        Request::PutChanges {
            changes: vec![change.clone()],
            erased: Vec::new(),
        },
        Request::Announce {
            items: vec![(id, [7; 32])],
        },
        Request::Join {
            changes: vec![change.clone()],
        },
    ];
    let responses = [
        Response::Reconcile {
            results: vec![
                RangeResult::Same,
                RangeResult::Items(vec![(id, [1; 32])]),
                RangeResult::Split(
                    Prefix::root()
                        .children()
                        .into_iter()
                        .map(|c| (c, Fingerprint { count: 40, sum: 1 }))
                        .collect(),
                ),
            ],
        },
        Response::Changes {
            changes: vec![change.clone()],
            heads: vec![DocHeads { doc: id, heads }],
            unknown: vec![[3; 16]],
            truncated: Vec::new(),
            erased: Vec::new(),
        },
        Response::Applied {
            applied: 1,
            already_had: 0,
            rejected: 0,
        },
        Response::Ack,
        Response::Refused {
            reason: "no".into(),
        },
    ];

    let wire_dir = dir("wire");
    for (i, r) in requests.iter().enumerate() {
        let bytes = wire::encode(r);
        std::fs::write(wire_dir.join(format!("request-{i}")), &bytes).unwrap();
        std::fs::write(wire_dir.join(format!("request-frame-{i}")), frame(&bytes)).unwrap();
    }
    for (i, r) in responses.iter().enumerate() {
        let bytes = wire::encode(r);
        std::fs::write(wire_dir.join(format!("response-{i}")), &bytes).unwrap();
        std::fs::write(wire_dir.join(format!("response-frame-{i}")), frame(&bytes)).unwrap();
    }

    // The service target reads a postcard Vec<Step>: 0 Request, 1 Respond,
    // 2 Fail, 3 Sync, 4 Tick, 5 Reconnect.
    let service_dir = dir("service");
    let step = |variant: usize, payload: &[u8], out: &mut Vec<u8>| {
        varint(variant, out);
        out.extend_from_slice(payload);
    };
    for (i, r) in requests.iter().enumerate() {
        let mut s = Vec::new();
        varint(2, &mut s);
        step(0, &wire::encode(r), &mut s);
        step(4, &[], &mut s);
        std::fs::write(service_dir.join(format!("request-{i}")), s).unwrap();
    }
    for (i, r) in responses.iter().enumerate() {
        // Start a session, answer its first request, then go on.
        let mut s = Vec::new();
        varint(4, &mut s);
        step(3, &[], &mut s);
        step(1, &wire::encode(r), &mut s);
        step(1, &wire::encode(r), &mut s);
        step(2, &[], &mut s);
        std::fs::write(service_dir.join(format!("session-{i}")), s).unwrap();
    }

    let bundle_dir = dir("bundle");
    let body = net.node(a).export_bundle(None, &Since::Everything).unwrap();
    std::fs::write(bundle_dir.join("whole"), bundle::encode(&body)).unwrap();
    std::fs::write(bundle_dir.join("body"), postcard::to_stdvec(&body).unwrap()).unwrap();
    // Version 1 (one postcard body), still read up to its cap.
    let v1 = bundle::craft(1, |z| z.write_all(&postcard::to_stdvec(&body).unwrap())).unwrap();
    std::fs::write(bundle_dir.join("v1-whole"), v1).unwrap();
    // Small bombs: a version 1 body of zeros, and a version 2 header
    // declaring more changes than follow, then zeros.
    let zeros = vec![0u8; 1 << 20];
    let v1_bomb = bundle::craft(1, |z| z.write_all(&zeros)).unwrap();
    std::fs::write(bundle_dir.join("v1-bomb"), v1_bomb).unwrap();
    let header = bundle::Header {
        changes: 3,
        ..bundle::Header::default()
    };
    let h = postcard::to_stdvec(&header).unwrap();
    let v2_bomb = bundle::craft(2, |z| {
        z.write_all(&(h.len() as u32).to_le_bytes())?;
        z.write_all(&h)?;
        z.write_all(&((1u32 << 20) - 4).to_le_bytes())?;
        z.write_all(&zeros)
    })
    .unwrap();
    std::fs::write(bundle_dir.join("v2-bomb"), v2_bomb).unwrap();

    let csv_dir = dir("csv");
    // First byte: 0 learning, 1 project, 2 contact.
    let sheets: [(u8, &str); 3] = [
        (
            0,
            "title,summary,tags,visibility\nCalls,What calls taught us.,falls;calls,community\n\"Quoted, title\",\"A \"\"quoted\"\" summary\",,\n",
        ),
        (
            1,
            "title,summary,status\nFlow,Improving patient flow.,active\n",
        ),
        (
            2,
            "name,role,email,phone,consent,consent_by\nAsha Patel,Lead,asha@example.org,0191 000 0000,yes,Asha Patel\n",
        ),
    ];
    for (i, (kind, text)) in sheets.iter().enumerate() {
        let mut bytes = vec![*kind];
        bytes.extend_from_slice(text.as_bytes());
        std::fs::write(csv_dir.join(format!("sheet-{i}")), bytes).unwrap();
    }
}
