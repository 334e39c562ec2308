//! Attachments between organisations' nodes as a new user meets them:
//! separate `convene node start` processes on 127.0.0.1, files attached
//! with `convene attach`, arriving by themselves on the others up to
//! `files.auto_fetch_mb`, larger ones through `convene get` (which asks the
//! running daemon), `status` showing what is held, and an erased entry's
//! file leaving no bytes behind. Every wait has a deadline.

mod support;

use std::path::Path;
use std::time::Duration;

use predicates::prelude::*;
use support::{Daemon, Home, wait_for};

const WAIT: Duration = Duration::from_secs(30);

/// Bytes that do not repeat.
fn content(len: usize, seed: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 32);
    let mut i = 0u64;
    while out.len() < len {
        out.extend_from_slice(blake3::hash(&[&[seed][..], &i.to_le_bytes()].concat()).as_bytes());
        i += 1;
    }
    out.truncate(len);
    out
}

fn held(home: &Home, id: &str, name: &str) -> bool {
    home.json_lines(&["files", id, "--json"])
        .iter()
        .any(|f| f["name"] == name && f["held"] == true)
}

/// Whether any file under the home's `files/` contains `needle`.
fn files_contain(dir: &Path, needle: &[u8]) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|e| {
        let p = e.path();
        if p.is_dir() {
            files_contain(&p, needle)
        } else {
            std::fs::read(&p).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle))
        }
    })
}

#[test]
fn files_reach_three_organisations_and_larger_ones_come_with_get() {
    let trust = Home::for_org("Gateshead Health NHS Foundation Trust", "nhs-trust");
    let council = Home::for_org("Gateshead Council", "council");
    let vcse = Home::for_org("Gateshead Carers", "vcse");
    for h in [&trust, &council, &vcse] {
        h.convene(&["config", "set", "files.auto_fetch_mb", "1"])
            .assert()
            .success();
    }
    let a = Daemon::start(&trust, &[]);
    let b = Daemon::start(&council, &[&a.addr]);
    let c = Daemon::start(&vcse, &[&a.addr, &b.addr]);

    let id = trust.publish("Falls prevention: the evaluation");
    let small = content(600_000, 1);
    let large = content(3_000_000, 2);
    let small_path = trust.path().join("poster.pdf");
    let large_path = trust.path().join("evaluation.pdf");
    std::fs::write(&small_path, &small).unwrap();
    std::fs::write(&large_path, &large).unwrap();
    for p in [&small_path, &large_path] {
        trust
            .convene(&["attach", &id, p.to_str().unwrap()])
            .assert()
            .success();
    }

    // Under the automatic limit: on both others by itself.
    wait_for(WAIT, "the poster on the council and the carers", || {
        (held(&council, &id, "poster.pdf") && held(&vcse, &id, "poster.pdf")).then_some(())
    });
    assert!(
        !held(&council, &id, "evaluation.pdf"),
        "over files.auto_fetch_mb"
    );

    // Over it: `get` asks the daemon, which fetches and verifies it.
    let out = council.path().join("evaluation-copy.pdf");
    council
        .convene(&["get", &id, "evaluation.pdf", "--out", out.to_str().unwrap()])
        .timeout(WAIT)
        .assert()
        .success()
        .stdout(predicate::str::contains("wrote"));
    assert_eq!(std::fs::read(&out).unwrap(), large);
    let status = council.json(&["status", "--json"]);
    assert!(
        status["files"]["held_bytes"].as_u64().unwrap() >= 3_600_000,
        "{status}"
    );
    assert!(
        council
            .stdout(&["status"])
            .contains("files         3.6 MB held")
    );

    // The council's copy damaged on disk: `get` refuses to hand it out,
    // lets it go and has the daemon fetch it again from a member.
    let hash = blake3::hash(&large).to_hex().to_string();
    let copy = council
        .path()
        .join("files")
        .join(&hash[..2])
        .join(&hash[2..]);
    let mut damaged = std::fs::read(&copy).unwrap();
    damaged[2_000_000] ^= 0x01;
    std::fs::write(&copy, &damaged).unwrap();
    let again = council.path().join("evaluation-again.pdf");
    council
        .convene(&[
            "get",
            &id,
            "evaluation.pdf",
            "--out",
            again.to_str().unwrap(),
        ])
        .timeout(WAIT)
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "note: the copy of evaluation.pdf held here was damaged on disk (its bytes no longer match their hash; moved aside to",
        ));
    assert_eq!(std::fs::read(&again).unwrap(), large);
    assert_eq!(
        std::fs::read(&copy).unwrap(),
        large,
        "the copy held is sound again"
    );

    // With no daemon running, `get` says so in one line.
    assert!(c.stop().success());
    vcse.convene(&["get", &id, "evaluation.pdf", "--out", "x.pdf"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("no daemon is running"));

    // Erased: the bytes leave every node that was running.
    trust
        .convene(&["retract", &id, "--erase"])
        .assert()
        .success();
    let needle = &large[1_000_000..1_000_064];
    wait_for(WAIT, "the evaluation's bytes gone from the council", || {
        (!files_contain(&council.path().join("files"), needle)
            && !files_contain(&trust.path().join("files"), needle))
        .then_some(())
    });
    drop(b);
}

fn metric(web: &str, name: &str) -> Option<u64> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let mut r = agent.get(format!("{web}metrics")).call().ok()?;
    let text = r.body_mut().read_to_string().ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
}

#[test]
fn a_download_interrupted_by_killing_the_daemon_resumes_from_what_verified() {
    let trust = Home::for_org("North Cumbria Trust", "nhs-trust");
    let council = Home::for_org("Cumberland Council", "council");
    council
        .convene(&["config", "set", "files.auto_fetch_mb", "100"])
        .assert()
        .success();
    let id = trust.publish("The evaluation, in full");
    let bytes = content(40_000_000, 3);
    let path = trust.path().join("evaluation.pdf");
    std::fs::write(&path, &bytes).unwrap();
    trust
        .convene(&["attach", &id, path.to_str().unwrap()])
        .assert()
        .success();
    let hash = blake3::hash(&bytes).to_hex().to_string();
    let a = Daemon::start(&trust, &[]);
    let b = Daemon::start(&council, &[&a.addr]);

    // Killed (SIGKILL) while the record of verified groups says it is part
    // way through.
    let record = council
        .path()
        .join("files")
        .join(format!(".part-{hash}.ok"));
    let groups = bytes.len().div_ceil(16 * 1024) as u32;
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let set: u32 = std::fs::read(&record)
            .map(|b| b.iter().map(|x| x.count_ones()).sum())
            .unwrap_or(0);
        if set > 0 && set < groups {
            b.kill();
            break;
        }
        assert!(
            set < groups && std::time::Instant::now() < deadline,
            "the download was not seen part way ({set} of {groups} groups)"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(
        !held(&council, &id, "evaluation.pdf"),
        "a partial file is not held"
    );

    // Started again: the rest comes, and only the rest.
    let b = Daemon::start(&council, &[&a.addr]);
    wait_for(WAIT, "the evaluation on the council", || {
        held(&council, &id, "evaluation.pdf").then_some(())
    });
    let copy = council.path().join("copy.pdf");
    council
        .convene(&[
            "get",
            &id,
            "evaluation.pdf",
            "--out",
            copy.to_str().unwrap(),
        ])
        .assert()
        .success();
    assert_eq!(std::fs::read(&copy).unwrap(), bytes);
    let again = metric(&b.web, "convene_files_received_bytes_total").unwrap();
    assert!(
        again < bytes.len() as u64,
        "{again} bytes fetched again of {}",
        bytes.len()
    );
}
