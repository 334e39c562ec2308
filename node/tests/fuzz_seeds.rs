//! The fuzz targets' checks (`fuzz/src/lib.rs`, compiled in here as a
//! module) run over the seed corpus in `fuzz/corpus/`, so the normal suite
//! builds them, checks that every seed still decodes (a target returns
//! early on an input it cannot decode, so a stale seed would test
//! nothing), and runs every check on every seed; and the writer of that
//! corpus (valid messages, frames, step sequences, bundles and
//! spreadsheets, so that fuzzing starts from inputs that reach deep into
//! each parser). Run the writer by hand when the formats change:
//!
//! ```text
//! cargo test -p convene-node --test fuzz_seeds -- --ignored
//! ```

mod sim;

#[allow(dead_code)]
#[path = "../../fuzz/src/lib.rs"]
mod targets;

use std::path::{Path, PathBuf};

use convene_node::bundle::{self, Since};
use convene_node::sync::catalogue::{Fingerprint, Prefix};
use convene_node::sync::session::MAX_ROUNDS;
use convene_node::sync::wire::{self, DocHeads, RangeResult, Request, Response, WireChange};
use sim::Net;
use targets::{Step, Who};

fn dir(target: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The seeds of a target, by name (the fuzzer's own additions, named by
/// their hash, are not committed but are run too if present).
fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let mut seeds: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir(target))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    seeds.sort();
    assert!(!seeds.is_empty(), "no seeds for {target}");
    seeds
}

fn frame(bytes: &[u8]) -> Vec<u8> {
    let mut f = (bytes.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(bytes);
    f
}

#[test]
fn the_wire_seeds_decode_and_pass_the_wire_checks() {
    for (name, data) in seeds("wire") {
        let body = if name.contains("-frame-") {
            &data[4..]
        } else {
            &data[..]
        };
        if name.starts_with("request") {
            wire::decode::<Request>(body).unwrap_or_else(|e| panic!("{name}: {e}"));
        } else if name.starts_with("response") {
            wire::decode::<Response>(body).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        targets::wire(&data);
    }
}

#[test]
fn the_service_seeds_decode_and_pass_the_service_checks() {
    let home = targets::ServiceHome::new();
    for (name, data) in seeds("service") {
        if !name.starts_with(|c: char| c.is_ascii_hexdigit()) || name.contains('-') {
            let steps: Vec<Step> =
                postcard::from_bytes(&data).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(steps.len() <= 64, "{name}");
        }
        home.run(&data);
    }
}

#[test]
fn the_bundle_seeds_decode_and_pass_the_bundle_checks() {
    let home = targets::BundleHome::new();
    for (name, data) in seeds("bundle") {
        match name.as_str() {
            "whole" | "v1-whole" => {
                bundle::decode(&data).unwrap_or_else(|e| panic!("{name}: {e}"));
            }
            "body" => {
                postcard::from_bytes::<bundle::Body>(&data)
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
            }
            _ => {}
        }
        home.run(&data);
    }
}

#[test]
fn the_csv_seeds_read_and_pass_the_csv_checks() {
    let home = targets::CsvHome::new();
    let vocab = convene_model::Vocabularies::default();
    for (name, data) in seeds("csv") {
        if name.starts_with("sheet-") {
            let kind = [
                convene_model::Kind::Learning,
                convene_model::Kind::Project,
                convene_model::Kind::Contact,
            ][data[0] as usize % 3];
            let rows = convene_node::tabular::read_rows(kind, &data[1..], &vocab)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!rows.is_empty(), "{name}");
        }
        home.run(&data);
    }
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

    // The service target reads a postcard Vec<Step>. Its seeds: each
    // request from the member and from a stranger, every document asked
    // for by each, sessions answered with each response, a session with a
    // peer that splits every range, and a session cut by a reconnection.
    let service_dir = dir("service");
    let write_steps = |name: &str, steps: Vec<Step>| {
        std::fs::write(service_dir.join(name), postcard::to_stdvec(&steps).unwrap()).unwrap();
    };
    for (i, r) in requests.iter().enumerate() {
        write_steps(
            &format!("request-{i}"),
            vec![Step::Request(Who::Member, r.clone()), Step::Tick],
        );
        write_steps(
            &format!("stranger-request-{i}"),
            vec![Step::Request(Who::Stranger, r.clone()), Step::Tick],
        );
    }
    let every: Vec<u8> = (0..=255).collect();
    write_steps("get-all", vec![Step::Get(Who::Member, every.clone())]);
    write_steps("stranger-get-all", vec![Step::Get(Who::Stranger, every)]);
    for (i, r) in responses.iter().enumerate() {
        // Start a session, answer its first request, then go on.
        write_steps(
            &format!("session-{i}"),
            vec![
                Step::Sync,
                Step::Respond(r.clone()),
                Step::Respond(r.clone()),
                Step::Fail,
            ],
        );
    }
    let mut splitting = vec![Step::Sync];
    splitting.extend(std::iter::repeat_n(Step::Split, 2 * MAX_ROUNDS as usize));
    write_steps("split-forever", splitting);
    write_steps(
        "cut-mid-session",
        vec![
            Step::Sync,
            Step::Split,
            Step::Reconnect(Who::Member),
            Step::Sync,
            Step::Sync,
            Step::Respond(responses[0].clone()),
            Step::Split,
        ],
    );

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
            "title,summary,status\nFlow,Improving patient flow.,published\n",
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
