//! `convene attach`, `files`, `get` and `retract --erase` end to end, as a
//! user would run them: files go in whole or not at all, bad input gets one
//! clear line, and an erased entry leaves no bytes of its files behind.

mod support;

use std::path::{Path, PathBuf};

use support::Home;

/// Every regular file under `dir`, recursively, but for the hash trees
/// (`.obao`) kept beside stored content, which hold hashes, not content.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else if p.extension().is_none_or(|x| x != "obao") {
            out.push(p);
        }
    }
    out
}

fn home_contains(dir: &Path, needle: &[u8]) -> bool {
    files_under(dir)
        .iter()
        .any(|p| std::fs::read(p).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle)))
}

/// Runs a command that must fail with exactly one line on stderr
/// containing `message`; returns that line.
fn fails(home: &Home, args: &[&str], message: &str) -> String {
    let out = home.convene(args).output().unwrap();
    assert!(!out.status.success(), "{args:?} succeeded");
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{args:?}: not one line: {err}");
    assert!(err.contains(message), "{args:?}: {err}");
    assert!(out.stdout.is_empty(), "{args:?} printed {:?}", out.stdout);
    err
}

#[test]
fn attach_list_and_get_a_file() {
    let home = Home::initialised();
    let id = home.publish("Summit slides");
    let work = tempfile::tempdir().unwrap();
    let content: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let deck = work.path().join("deck.pptx");
    std::fs::write(&deck, &content).unwrap();
    let hash = blake3::hash(&content).to_hex().to_string();

    let out = home.stdout(&["attach", &id[..8], deck.to_str().unwrap()]);
    assert!(out.contains("attached deck.pptx (300.0 kB"), "{out}");
    home.stdout(&[
        "attach",
        &id,
        deck.to_str().unwrap(),
        "--name",
        "Summit/deck copy.pptx",
    ]);

    // The entry's history names each file added.
    let history = home.stdout(&["show", &id, "--history"]);
    assert!(
        history.contains("attach deck.pptx") && history.contains("attach deck copy.pptx"),
        "{history}"
    );

    let listed = home.json_lines(&["files", &id, "--json"]);
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["name"], "deck.pptx");
    assert_eq!(listed[0]["size"], 300_000);
    assert_eq!(
        listed[0]["media_type"],
        "application/vnd.openxmlformats-officedocument.presentationml.presentation"
    );
    assert_eq!(listed[0]["hash"], hash.as_str());
    assert_eq!(listed[0]["held"], true);
    assert_eq!(listed[1]["name"], "deck copy.pptx", "folders are cut off");
    let table = home.stdout(&["files", &id]);
    assert!(
        table.contains("deck copy.pptx") && table.contains("yes"),
        "{table}"
    );
    assert_eq!(
        files_under(&home.path().join("files")).len(),
        1,
        "one copy of the bytes"
    );

    // `get` writes into the current folder by default, --out elsewhere,
    // and never replaces a file unless --force.
    // (A folder of the test's own: the system's temporary folder is shared
    // with every other run on the machine.)
    let here = work.path().join("here");
    std::fs::create_dir(&here).unwrap();
    home.convene(&["get", &id, "deck.pptx"])
        .current_dir(&here)
        .assert()
        .success();
    let default_out = here.join("deck.pptx");
    assert_eq!(std::fs::read(&default_out).unwrap(), content);
    std::fs::remove_file(default_out).unwrap();
    let copy = work.path().join("copy.pptx");
    home.stdout(&[
        "get",
        &id,
        "deck copy.pptx",
        "--out",
        copy.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read(&copy).unwrap(), content);
    std::fs::write(&copy, b"mine").unwrap();
    fails(
        &home,
        &["get", &id, "deck.pptx", "--out", copy.to_str().unwrap()],
        "already exists (pass --force to replace it)",
    );
    assert_eq!(std::fs::read(&copy).unwrap(), b"mine");
    home.stdout(&[
        "get",
        &id,
        "deck.pptx",
        "--out",
        copy.to_str().unwrap(),
        "--force",
    ]);
    assert_eq!(std::fs::read(&copy).unwrap(), content);
    assert_eq!(
        files_under(work.path()).len(),
        2,
        "no temporary file is left"
    );
}

#[test]
fn bad_input_gets_one_line_and_writes_nothing() {
    let home = Home::initialised();
    let id = home.publish("Peer visits");
    let work = tempfile::tempdir().unwrap();
    home.stdout(&["config", "set", "files.max_file_mb", "1"]);
    let big = work.path().join("big.bin");
    std::fs::write(&big, vec![1u8; 1_000_001]).unwrap();
    let ok = work.path().join("ok.bin");
    std::fs::write(&ok, vec![1u8; 1_000_000]).unwrap();
    let before = home.db_bytes_after_checkpoint();

    fails(
        &home,
        &["attach", &id, big.to_str().unwrap()],
        "error: the file is larger than the 1000000-byte limit for one file",
    );
    fails(
        &home,
        &[
            "attach",
            &id,
            work.path().join("nope.pdf").to_str().unwrap(),
        ],
        "cannot read",
    );
    fails(
        &home,
        &["attach", &id, work.path().to_str().unwrap()],
        "it is a folder, not a file",
    );
    fails(
        &home,
        &["attach", &id, ok.to_str().unwrap(), "--name", ".."],
        "\"..\" is not a usable file name",
    );
    // An organisation profile takes no files.
    let org = home.json_lines(&["list", "organisation", "--json"])[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    fails(
        &home,
        &["attach", &org, ok.to_str().unwrap()],
        "cannot have files",
    );
    assert!(files_under(&home.path().join("files")).is_empty());
    assert!(
        home.db_bytes_after_checkpoint() == before,
        "nothing was written"
    );

    home.stdout(&["attach", &id, ok.to_str().unwrap()]);
    fails(
        &home,
        &["attach", &id, ok.to_str().unwrap()],
        "already has a file named \"ok.bin\"",
    );
    let dest = work.path().join("out.bin");
    fails(
        &home,
        &["get", &id, "other.bin", "--out", dest.to_str().unwrap()],
        "has no file named \"other.bin\" (its files: ok.bin)",
    );
    assert!(!dest.exists());

    // Another organisation's entry: only its owner (or a co-editor) may add files.
    let other = Home::for_org("Felling Community Group", "vcse");
    let bundle = home.path().join("out.bundle");
    home.stdout(&["export", "--out", bundle.to_str().unwrap()]);
    other.stdout(&["import", bundle.to_str().unwrap()]);
    // Named by its organisation's name, not its id.
    let line = fails(
        &other,
        &["attach", &id, ok.to_str().unwrap()],
        "only its owner organisation (or an editor it named) can change it",
    );
    assert!(
        line.contains("belongs to Gateshead Health NHS Foundation Trust"),
        "{line}"
    );
    assert!(files_under(&other.path().join("files")).is_empty());
    let listed = other.json_lines(&["files", &id, "--json"]);
    assert_eq!(listed[0]["held"], false, "{listed:?}");
    fails(
        &other,
        &["get", &id, "ok.bin", "--out", dest.to_str().unwrap()],
        "are not held on this node",
    );
    assert!(!dest.exists());
}

#[test]
fn retract_erase_leaves_no_bytes_of_its_files() {
    let home = Home::initialised();
    let keep = home.publish("Still current");
    let gone = home.publish("Withdrawn story");
    let work = tempfile::tempdir().unwrap();
    let story = work.path().join("story.docx");
    std::fs::write(&story, b"ERASE-ME-4b1d: what the family told us").unwrap();
    let shared = work.path().join("slides.pdf");
    std::fs::write(&shared, b"SHARED-9e07: the summit slides").unwrap();
    home.stdout(&["attach", &gone, story.to_str().unwrap()]);
    home.stdout(&["attach", &gone, shared.to_str().unwrap()]);
    home.stdout(&["attach", &keep, shared.to_str().unwrap()]);
    drop(work);
    assert!(home_contains(home.path(), b"ERASE-ME-4b1d"));

    home.stdout(&["retract", &gone, "--erase"]);
    assert!(
        !home_contains(home.path(), b"ERASE-ME-4b1d"),
        "the erased entry's file is gone from every file in the home"
    );
    assert!(home_contains(home.path(), b"SHARED-9e07"));
    let listed = home.json_lines(&["files", &keep, "--json"]);
    assert_eq!(listed[0]["held"], true);
    home.stdout(&["retract", &keep, "--erase"]);
    assert!(!home_contains(home.path(), b"SHARED-9e07"));
}

#[test]
fn a_file_damaged_on_disk_is_not_exported_or_handed_out_and_is_let_go() {
    let home = Home::initialised();
    let id = home.publish("Summit slides");
    let work = tempfile::tempdir().unwrap();
    let deck: Vec<u8> = (0..200_000u32).map(|i| (i % 239) as u8).collect();
    let path = work.path().join("deck.pptx");
    std::fs::write(&path, &deck).unwrap();
    home.stdout(&["attach", &id, path.to_str().unwrap()]);
    let hash = blake3::hash(&deck).to_hex().to_string();
    let held = home.path().join("files").join(&hash[..2]).join(&hash[2..]);
    // One byte flipped on disk (a failing sector, a stray write).
    let mut damaged = std::fs::read(&held).unwrap();
    damaged[150_000] ^= 0x01;
    std::fs::write(&held, &damaged).unwrap();

    // The export refuses in one line, naming the file, and leaves no
    // bundle, whole or part.
    let out = work.path().join("full.bundle");
    let line = fails(
        &home,
        &["export", "--out", out.to_str().unwrap(), "--with-files"],
        "nothing was exported: the copy of deck.pptx on entry",
    );
    assert!(line.contains("damaged on disk"), "{line}");
    assert!(
        line.contains(&format!(
            "fetch it again from a member (`convene get {id} \"deck.pptx\"`"
        )),
        "{line}"
    );
    assert_eq!(
        std::fs::read_dir(work.path()).unwrap().count(),
        1,
        "a bundle or part of one was left"
    );
    // The damaged copy is moved aside: the file is no longer counted as
    // held, so a daemon would fetch it again from a member, and what is
    // left of it is kept (it may be the only copy anywhere).
    assert!(!held.exists());
    let aside = home.path().join("files").join(format!(".damaged-{hash}"));
    assert_eq!(std::fs::read(&aside).unwrap(), damaged);
    assert!(line.contains(&aside.display().to_string()), "{line}");
    let listed = home.json_lines(&["files", &id, "--json"]);
    assert_eq!(listed[0]["held"], false, "{listed:?}");
    let doctor = |home: &Home| {
        String::from_utf8(home.convene(&["doctor"]).output().unwrap().stdout).unwrap()
    };
    assert!(
        doctor(&home).contains("1 attachment copy found damaged on disk and moved aside (200.0 kB"),
        "{}",
        doctor(&home)
    );
    // The export without the file now works (the entry still names it).
    home.stdout(&["export", "--out", out.to_str().unwrap(), "--with-files"]);

    // Found damaged by `get`, with no daemon to fetch it again: one line
    // that says so and what to do.
    std::fs::create_dir_all(held.parent().unwrap()).unwrap();
    std::fs::write(&held, &damaged).unwrap();
    let got = work.path().join("got.pptx");
    let line = fails(
        &home,
        &["get", &id, "deck.pptx", "--out", got.to_str().unwrap()],
        "the copy of deck.pptx held here is damaged on disk",
    );
    assert!(line.contains("start the daemon"), "{line}");
    assert!(!got.exists() && !held.exists());

    // Erased: no bytes of it anywhere in the home, the copy aside included.
    home.stdout(&["retract", &id, "--erase"]);
    assert!(!home_contains(home.path(), &damaged[100_000..100_064]));
    assert!(!doctor(&home).contains("damaged"));
}

#[test]
fn bundles_with_files_carry_the_bytes_and_refuse_altered_ones() {
    let trust = Home::initialised();
    let id = trust.publish("Summit slides");
    let work = tempfile::tempdir().unwrap();
    let deck: Vec<u8> = (0..200_000u32).map(|i| (i % 241) as u8).collect();
    let poster = b"POSTER-BYTES-0a5f".to_vec();
    for (name, bytes) in [("deck.pptx", &deck), ("poster.png", &poster)] {
        let p = work.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        trust.stdout(&["attach", &id, p.to_str().unwrap()]);
    }

    // Without --with-files the bundle is the ordinary format older
    // releases read; it carries the description of the files, not the bytes.
    let plain = work.path().join("plain.bundle");
    trust.stdout(&["export", "--out", plain.to_str().unwrap()]);
    assert!(
        std::fs::read(&plain)
            .unwrap()
            .starts_with(b"CONVENE-BUNDLE\n")
    );
    let vcse = Home::for_org("Felling Community Group", "vcse");
    vcse.stdout(&["import", plain.to_str().unwrap()]);
    let listed = vcse.json_lines(&["files", &id, "--json"]);
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().all(|f| f["held"] == false), "{listed:?}");

    let full = work.path().join("full.bundle");
    let out = trust.stdout(&["export", "--out", full.to_str().unwrap(), "--with-files"]);
    assert!(out.contains("with 2 files"), "{out}");
    let out = vcse.stdout(&["import", full.to_str().unwrap()]);
    assert!(
        out.contains("files: 2 stored, 0 already here, 0 left out"),
        "{out}"
    );
    assert!(
        vcse.json_lines(&["files", &id, "--json"])
            .iter()
            .all(|f| f["held"] == true)
    );
    let got = work.path().join("got.pptx");
    vcse.stdout(&["get", &id, "deck.pptx", "--out", got.to_str().unwrap()]);
    assert_eq!(std::fs::read(&got).unwrap(), deck);
    // `--since` accepts a bundle with files as it does any bundle.
    trust.stdout(&[
        "export",
        "--out",
        work.path().join("since.bundle").to_str().unwrap(),
        "--since",
        full.to_str().unwrap(),
    ]);

    // One byte changed in a file's content, or a cut-off copy: refused
    // before anything is applied, with one line.
    let bytes = std::fs::read(&full).unwrap();
    let at = bytes
        .windows(poster.len())
        .position(|w| w == poster.as_slice())
        .unwrap();
    let mut altered = bytes.clone();
    altered[at] ^= 0x01;
    let altered_path = work.path().join("altered.bundle");
    std::fs::write(&altered_path, &altered).unwrap();
    let cut_path = work.path().join("cut.bundle");
    std::fs::write(&cut_path, &bytes[..bytes.len() - 5]).unwrap();
    for (path, message) in [
        (&altered_path, "does not match its hash"),
        (&cut_path, "truncated"),
    ] {
        let third = Home::for_org("Carrying Council", "council");
        let before = third.ids();
        let line = fails(&third, &["import", path.to_str().unwrap()], message);
        assert!(
            line.contains("nothing was imported") || message == "truncated",
            "{line}"
        );
        assert_eq!(third.ids(), before, "nothing was applied");
        assert!(files_under(&third.path().join("files")).is_empty());
    }
}
