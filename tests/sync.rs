//! Nodes as separate processes on 127.0.0.1, each with its own home,
//! syncing over real libp2p connections. Every wait has a deadline.

mod support;

use std::time::Duration;

use predicates::prelude::*;
use support::{Daemon, Home, wait_for};

const CONVERGE: Duration = Duration::from_secs(30);

fn converge(homes: &[&Home], what: &str) {
    wait_for(CONVERGE, what, || {
        let first = homes[0].ids();
        homes.iter().all(|h| h.ids() == first).then_some(())
    });
}

#[test]
fn a_publish_on_one_node_reaches_the_others() {
    let trust = Home::for_org("Gateshead Health NHS Foundation Trust", "nhs-trust");
    let council = Home::for_org("Gateshead Council", "council");
    let a = Daemon::start(&trust, &[]);
    let _b = Daemon::start(&council, &[&a.addr]);
    converge(&[&trust, &council], "the profiles to sync");

    // Published from the CLI while both daemons run.
    let id = trust.publish("Community calls cut falls admissions");
    wait_for(CONVERGE, "the entry to reach the council", || {
        council.ids().contains(&id).then_some(())
    });
    let shown = council.json(&["show", &id, "--json"]);
    assert_eq!(shown["title"], "Community calls cut falls admissions");
    assert_eq!(shown["owner_name"], "Gateshead Health NHS Foundation Trust");

    // And the other way.
    let back = council.publish("Warm spaces this winter");
    wait_for(CONVERGE, "the council's entry to reach the trust", || {
        trust.ids().contains(&back).then_some(())
    });

    let status = trust.json(&["status", "--json"]);
    assert_eq!(status["running"], true);
    assert_eq!(status["connected_peers"].as_array().unwrap().len(), 1);
    assert_eq!(status["entries"]["learning"], 2);
    let peers = council.json_lines(&["peers", "--json"]);
    assert_eq!(peers.len(), 1);
    assert_eq!(peers[0]["node"], a.node_id.as_str());
    assert!(peers[0]["last_sync"].is_string());
}

#[test]
fn a_node_that_was_stopped_catches_up_when_it_restarts() {
    let trust = Home::for_org("North Cumbria Trust", "nhs-trust");
    let vcse = Home::for_org("Carlisle Carers", "vcse");
    let a = Daemon::start(&trust, &[]);
    let b = Daemon::start(&vcse, &[&a.addr]);
    converge(&[&trust, &vcse], "first sync");
    assert!(b.stop().success(), "a clean shutdown exits 0");

    let mut published = Vec::new();
    for i in 0..25 {
        published.push(trust.publish(&format!("Lesson {i} from the winter")));
    }
    assert!(published.iter().all(|id| !vcse.ids().contains(id)));
    let _b = Daemon::start(&vcse, &[&a.addr]);
    converge(&[&trust, &vcse], "the restarted node to catch up");
}

#[test]
fn three_nodes_in_a_line_converge_through_the_middle() {
    let a_home = Home::for_org("A Trust", "nhs-trust");
    let b_home = Home::for_org("B Council", "council");
    let c_home = Home::for_org("C Group", "vcse");
    let a = Daemon::start(&a_home, &[]);
    let b = Daemon::start(&b_home, &[&a.addr]);
    let _c = Daemon::start(&c_home, &[&b.addr]);
    converge(&[&a_home, &b_home, &c_home], "the line to converge");
    let from_a = a_home.publish("From one end");
    let from_c = c_home.publish("From the other end");
    wait_for(CONVERGE, "both entries everywhere", || {
        [&a_home, &b_home, &c_home]
            .iter()
            .all(|h| {
                let ids = h.ids();
                ids.contains(&from_a) && ids.contains(&from_c)
            })
            .then_some(())
    });
    // A and C never connected to each other.
    let peers_of_a = a_home.json_lines(&["peers", "--json"]);
    assert!(peers_of_a.iter().all(|p| p["node"] != _c.node_id.as_str()));
}

#[test]
fn sync_once_without_a_daemon_and_an_unreachable_peer() {
    let trust = Home::for_org("Durham Trust", "nhs-trust");
    let laptop = Home::for_org("Durham Youth Group", "vcse");
    let on_trust = trust.publish("Family hubs while you wait");
    let on_laptop = laptop.publish("What young people told us");
    let a = Daemon::start(&trust, &[]);

    let out = laptop.stdout(&["sync", "--once", "--peer", &a.addr]);
    assert!(out.contains("received 2 changes to 2 entries"), "{out}");
    assert!(out.contains("sent 2 changes to 2 entries"), "{out}");
    assert!(out.contains("Family hubs while you wait"), "{out}");
    assert!(laptop.ids().contains(&on_trust));
    wait_for(CONVERGE, "the laptop's entry on the trust", || {
        trust.ids().contains(&on_laptop).then_some(())
    });

    // Nothing new: still succeeds, sends and receives nothing.
    let again = laptop.json(&["sync", "--once", "--peer", &a.addr, "--json"]);
    assert_eq!(again["changes_received"], 0);
    assert_eq!(again["changes_sent"], 0);
    assert_eq!(again["round_trips"], 1);

    drop(a);
    laptop
        .convene(&[
            "sync",
            "--once",
            "--peer",
            "/ip4/127.0.0.1/tcp/1",
            "--timeout",
            "20",
        ])
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "cannot reach /ip4/127.0.0.1/tcp/1",
        ));
    laptop
        .convene(&["sync", "--once", "--peer", "not-an-address"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("is not a multiaddress"));
}

/// Learning entries the syncing node holds, read from its database while
/// another process writes it.
fn learning_in(store: &convene_node::Store) -> i64 {
    store
        .counts()
        .unwrap()
        .into_iter()
        .find(|(k, _)| k == "learning")
        .map_or(0, |(_, n)| n)
}

#[test]
fn a_peer_killed_mid_sync_loses_nothing_and_sync_resumes() {
    // More entries than one request asks for (512 documents), so that the
    // transfer comes in batches, each stored as it arrives.
    const ENTRIES: i64 = 1300;
    let big = Home::for_org("Big Trust", "nhs-trust");
    let mut rows = String::from("title,summary\n");
    for i in 0..ENTRIES {
        rows.push_str(&format!("Lesson {i},What lesson {i} taught us.\n"));
    }
    let file = big.write("rows.csv", &rows);
    big.stdout(&["import-csv", "learning", file.to_str().unwrap()]);
    let small = Home::for_org("Small Group", "vcse");
    let store = convene_node::Store::open(&small.path().join("convene.db")).unwrap();
    let a = Daemon::start(&big, &[]);
    let syncing = std::process::Command::new(env!("CARGO_BIN_EXE_convene"))
        .arg("--home")
        .arg(small.path())
        .args(["sync", "--once", "--timeout", "20", "--peer", &a.addr])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Kill the peer once the first batch is stored: the transfer has
    // started and has more to go.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while learning_in(&store) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no entry arrived in 60 s"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    a.kill();
    let out = syncing.wait_with_output().unwrap();
    let got = learning_in(&store);
    eprintln!("killed with {got} of {ENTRIES} entries here");
    assert!(
        0 < got && got < ENTRIES,
        "the kill landed mid-transfer: {got} of {ENTRIES} entries"
    );
    // The sync fails with one clear line; what arrived stays, the store is
    // whole, and a later sync completes it.
    assert!(
        !out.status.success(),
        "a sync cut off mid-transfer succeeded"
    );
    // (The session's failure is also logged as a warning before it.)
    let err = String::from_utf8_lossy(&out.stderr);
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(errors.len(), 1, "{err}");
    assert!(err.trim_end().ends_with(errors[0]), "{err}");
    assert!(errors[0].contains("failed"), "{err}");
    assert_eq!(store.integrity_check().unwrap(), "ok");
    small.convene(&["list"]).assert().success();
    let a = Daemon::start(&big, &[]);
    small.stdout(&["sync", "--once", "--peer", &a.addr]);
    assert_eq!(small.ids(), big.ids());
    assert_eq!(learning_in(&store), ENTRIES);
}

fn files_contain(home: &Home, needle: &[u8]) -> bool {
    ["convene.db", "convene.db-wal"].iter().any(|f| {
        std::fs::read(home.path().join(f))
            .map(|b| b.windows(needle.len()).any(|w| w == needle))
            .unwrap_or(false)
    })
}

#[test]
fn an_erased_contact_is_gone_from_every_nodes_files() {
    let trust = Home::for_org("Erasing Trust", "nhs-trust");
    let council = Home::for_org("Listening Council", "council");
    let a = Daemon::start(&trust, &[]);
    let _b = Daemon::start(&council, &[&a.addr]);
    let id = trust.stdout(&[
        "publish",
        "contact",
        "--name",
        "Ottoline Brackenbury",
        "--email",
        "ottoline@example.org",
        "--consent",
    ]);
    let id = id.trim().to_string();
    wait_for(CONVERGE, "the contact on the council's node", || {
        council.ids().contains(&id).then_some(())
    });
    trust
        .convene(&["retract", &id, "--erase", "--reason", "she asked us to"])
        .assert()
        .success()
        .stdout(predicate::str::contains("erased"));
    wait_for(CONVERGE, "the erasure on the council's node", || {
        (!council.ids().contains(&id)).then_some(())
    });
    council
        .convene(&["show", &id])
        .assert()
        .failure()
        .stderr(predicate::str::contains("was erased"));
    let log = council.json_lines(&["log", "--json"]);
    assert!(
        log.iter()
            .any(|e| e["event"] == "erased" && e["entry"] == id.as_str()),
        "{log:?}"
    );
    // Stop the daemons so every connection is closed and the logs are
    // checkpointed, then look for the name in the files.
    drop(_b);
    drop(a);
    for home in [&trust, &council] {
        for needle in [
            &b"Ottoline"[..],
            b"ottoline",
            b"Brackenbury",
            b"brackenbury",
        ] {
            assert!(
                !files_contain(home, needle),
                "{:?} is still in a file",
                String::from_utf8_lossy(needle)
            );
        }
    }
}

#[test]
fn a_community_by_invitation_with_a_gate_and_removal() {
    let trust = Home::for_org("Steward Trust", "nhs-trust");
    let council = Home::for_org("Member Council", "council");
    let vcse = Home::for_org("Joining VCSE Group", "vcse");
    let outsider = Home::for_org("Outsider Ltd", "other");

    trust
        .convene(&["community", "create", "Boost"])
        .assert()
        .success();
    let a = Daemon::start(&trust, &[]);
    let code = trust.stdout(&["invite", "--expires", "1d"]);
    let code = code.trim();
    assert!(code.starts_with("convene-invite-"), "{code}");
    let out = council.convene(&["join", code]).output().unwrap();
    if !out.status.success() {
        panic!(
            "join failed: {}\n--- steward daemon log ---\n{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(trust.path().join("daemon.log")).unwrap_or_default()
        );
    }
    let joined = String::from_utf8(out.stdout).unwrap();
    assert!(
        joined.contains("Joined the community \"Boost\""),
        "{joined}"
    );
    // The same code does not work twice: the steward's node confirmed the
    // council's claim, so any other claim on it is void.
    outsider
        .convene(&["join", code])
        .assert()
        .failure()
        .stderr(predicate::str::contains("not admitted"));
    let b = Daemon::start(&council, &[&a.addr]);

    // The steward invites the VCSE group, then goes offline; the group
    // joins through the council's node.
    let code2 = trust.stdout(&["invite"]);
    wait_for(CONVERGE, "the new invite on the council's node", || {
        let members = council.stdout(&["member", "list", "--json"]);
        (!members.is_empty()).then_some(())
    });
    let charter_synced = || {
        let t = trust.json_lines(&["list", "charter", "--json"]);
        let c = council.json_lines(&["list", "charter", "--json"]);
        (t.first().map(|x| x["updated"].clone()) == c.first().map(|x| x["updated"].clone()))
            .then_some(())
    };
    wait_for(
        CONVERGE,
        "the charter with the invite on the council",
        charter_synced,
    );
    drop(a);
    let out = vcse
        .convene(&["join", code2.trim(), "--peer", &b.addr])
        .output()
        .unwrap();
    if !out.status.success() {
        panic!(
            "join failed: {}\n--- council daemon log ---\n{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(council.path().join("daemon.log")).unwrap_or_default()
        );
    }
    let joined = String::from_utf8(out.stdout).unwrap();
    assert!(joined.contains("Boost"), "{joined}");
    let _c = Daemon::start(&vcse, &[&b.addr]);
    let from_vcse = vcse.publish("Community calls in Sunderland");
    let from_council = council.publish("Warm spaces");
    wait_for(
        CONVERGE,
        "the VCSE group and the council to converge",
        || {
            let (v, c) = (vcse.ids(), council.ids());
            (v.contains(&from_council) && c.contains(&from_vcse)).then_some(())
        },
    );
    let members = council.json_lines(&["member", "list", "--json"]);
    assert_eq!(members.len(), 3, "{members:?}");

    // The steward comes back and catches up.
    let a = Daemon::start(&trust, &[&b.addr]);
    wait_for(CONVERGE, "the steward to catch up", || {
        trust.ids().contains(&from_vcse).then_some(())
    });

    // A non-member is refused and learns nothing.
    let before = outsider.ids();
    outsider
        .convene(&["sync", "--once", "--peer", &a.addr])
        .assert()
        .failure()
        .stderr(predicate::str::contains("not admitted"))
        .stderr(predicate::str::contains("Boost").not());
    assert_eq!(outsider.ids(), before);

    // The steward removes the VCSE group: it can no longer sync.
    trust
        .convene(&["member", "remove", "Joining VCSE Group"])
        .assert()
        .success();
    drop(_c);
    wait_for(CONVERGE, "the removal to reach the council", || {
        let members = council.json_lines(&["member", "list", "--json"]);
        members
            .iter()
            .any(|m| m["name"] == "Joining VCSE Group" && m["removed"].is_string())
            .then_some(())
    });
    vcse.convene(&["sync", "--once", "--peer", &b.addr])
        .assert()
        .failure()
        .stderr(predicate::str::contains("not admitted"))
        .stderr(predicate::str::contains("no longer").not());
    assert!(
        council.ids().contains(&from_vcse),
        "what it published before stays"
    );
    let shown = council.json(&["show", &from_vcse, "--json"]);
    assert_eq!(shown["owner_standing"], "former member");
    let log = trust.json_lines(&["log", "--json"]);
    for event in ["community-created", "invited", "removed"] {
        assert!(
            log.iter().any(|e| e["event"] == event),
            "{event} in {log:?}"
        );
    }
    // The council learned of the join and the removal made elsewhere, with
    // who signed them.
    let log = council.json_lines(&["log", "--json"]);
    for event in ["joined", "removed"] {
        assert!(
            log.iter()
                .any(|e| e["event"] == event && e["signer"].is_string()),
            "{event} in {log:?}"
        );
    }
}

/// The attack: a newcomer edits its invite code to name the steward's
/// organisation, hoping to join as one of the steward's nodes.
#[test]
fn an_invite_code_edited_to_name_the_steward_is_refused_and_logged() {
    use convene_model::DocumentId;
    use convene_node::community::InviteCode;
    let trust = Home::for_org("Steward Trust", "nhs-trust");
    let attacker = Home::for_org("Attacker Ltd", "other");
    trust
        .convene(&["community", "create", "Boost"])
        .assert()
        .success();
    let _a = Daemon::start(&trust, &[]);
    let code = trust.stdout(&["invite", "--expires", "1h"]);
    let mut edited = InviteCode::decode(code.trim()).unwrap();
    let steward_org: DocumentId = trust.json(&["status", "--json"])["organisation"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    edited.org = Some(*steward_org.as_bytes());
    attacker
        .convene(&["join", &edited.encode(), "--timeout", "60"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("not admitted"));
    let members = trust.json_lines(&["member", "list", "--json"]);
    assert_eq!(members.len(), 1, "{members:?}");
    assert_eq!(members[0]["nodes"].as_array().unwrap().len(), 1);
    let log = trust.json_lines(&["log", "--security", "--json"]);
    assert!(log.iter().any(|e| e["event"] == "forged-claim"), "{log:?}");
}

/// A member organisation adds a second node: it consents (`member
/// add-node`), a steward issues an invite for that organisation, and the
/// new node joins as one of its nodes; without the consent it is refused.
#[test]
fn a_second_node_joins_its_organisation_only_with_that_organisations_consent() {
    let trust = Home::for_org("Steward Trust", "nhs-trust");
    let council = Home::for_org("Member Council", "council");
    let second = Home::for_org("Member Council (laptop)", "council");
    trust
        .convene(&["community", "create", "Boost"])
        .assert()
        .success();
    let a = Daemon::start(&trust, &[]);
    let code = trust.stdout(&["invite"]);
    council.convene(&["join", code.trim()]).assert().success();
    let b = Daemon::start(&council, &[&a.addr]);
    wait_for(
        CONVERGE,
        "the council's profile on the steward's node",
        || {
            trust
                .convene(&["invite", "--org", "Member Council"])
                .output()
                .unwrap()
                .status
                .success()
                .then_some(())
        },
    );
    let code = trust.stdout(&["invite", "--org", "Member Council"]);
    // Without the council's consent the code admits nothing, and says why.
    second
        .convene(&["join", code.trim(), "--peer", &b.addr, "--timeout", "60"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("not admitted"))
        .stderr(predicate::str::contains("member add-node"));
    let id = second.stdout(&["id"]);
    council
        .convene(&["member", "add-node", id.trim()])
        .assert()
        .success()
        .stdout(predicate::str::contains("listed node"));
    second
        .convene(&["join", code.trim(), "--peer", &b.addr, "--timeout", "60"])
        .assert()
        .success();
    let members = trust.json_lines(&["member", "list", "--json"]);
    wait_for(
        CONVERGE,
        "the second node in the council's membership",
        || {
            let members = trust.json_lines(&["member", "list", "--json"]);
            members
                .iter()
                .any(|m| m["name"] == "Member Council" && m["nodes"].as_array().unwrap().len() == 2)
                .then_some(())
        },
    );
    assert_eq!(members.len(), 2, "{members:?}");
}

/// A member node built to skip the local ownership check: it edits another
/// organisation's entry, stores the change as if it were allowed, and
/// syncs it out. Every honest node must reject it and never pass it on.
#[test]
fn a_forged_edit_from_a_modified_member_is_rejected_everywhere() {
    use automerge::transaction::Transactable;
    use convene_node::{Node, SignedChange};

    let owner = Home::for_org("Owner Trust", "nhs-trust");
    let relay = Home::for_org("Relay Council", "council");
    let mallory = Home::for_org("Mallory Group", "vcse");
    owner
        .convene(&["community", "create", "Boost"])
        .assert()
        .success();
    let a = Daemon::start(&owner, &[]);
    for home in [&relay, &mallory] {
        let code = owner.stdout(&["invite"]);
        home.stdout(&["join", code.trim()]);
    }
    let b = Daemon::start(&relay, &[&a.addr]);
    let entry = owner.publish("Handover standard");
    wait_for(CONVERGE, "the entry on the relay", || {
        relay.ids().contains(&entry).then_some(())
    });
    mallory.stdout(&["sync", "--once", "--peer", &b.addr]);

    // The modified build: change the title and store it unchecked.
    {
        let mut node = Node::open(mallory.path()).unwrap();
        let id = node.resolve(&entry).unwrap();
        let mut state = node.store().load(id).unwrap().unwrap();
        state.set_actor(automerge::ActorId::from(
            node.identity().public_bytes().as_slice(),
        ));
        let mut tx = state.transaction();
        tx.put(automerge::ROOT, "title", "Mallory's now").unwrap();
        let (hash, _) = tx.commit();
        let change = automerge::ReadDoc::get_change_by_hash(&state, &hash.unwrap()).unwrap();
        let forged = SignedChange::sign(node.identity(), id, &change);
        node.store_mut()
            .write(|w| w.put(id, &state, &[forged], 0).map(|_| ()))
            .unwrap();
        assert_eq!(node.get(id).unwrap().body.title(), "Mallory's now");
    }
    mallory.stdout(&["sync", "--once", "--peer", &b.addr]);

    // The relay rejected it, logged it with Mallory's node as signer, and
    // did not pass it on: a later entry reaches the owner, the forgery not.
    let mallory_node = mallory.stdout(&["id"]);
    wait_for(CONVERGE, "the rejection in the relay's log", || {
        relay
            .json_lines(&["log", "--security", "--json"])
            .iter()
            .any(|e| e["signer"] == mallory_node.trim() && e["entry"] == entry.as_str())
            .then_some(())
    });
    let marker = relay.publish("Later news");
    wait_for(CONVERGE, "the later entry on the owner's node", || {
        owner.ids().contains(&marker).then_some(())
    });
    for home in [&owner, &relay] {
        assert_eq!(
            home.json(&["show", &entry, "--json"])["title"],
            "Handover standard"
        );
    }
    assert!(
        owner
            .json_lines(&["log", "--security", "--json"])
            .is_empty(),
        "never relayed to the owner"
    );
    drop(a);
}

#[test]
fn a_backup_taken_while_the_daemon_syncs_restores_the_same_entries() {
    let trust = Home::for_org("Backed-up Trust", "nhs-trust");
    let council = Home::for_org("Busy Council", "council");
    let a = Daemon::start(&trust, &[]);
    let _b = Daemon::start(&council, &[&a.addr]);
    for i in 0..20 {
        council.publish(&format!("Entry {i}"));
    }
    // Taken while the council's entries are still arriving.
    let file = trust.path().join("node.backup");
    trust.stdout(&["backup", file.to_str().unwrap()]);
    drop(a);
    let restored = Home::new();
    let out = restored.stdout(&["restore", file.to_str().unwrap()]);
    assert!(out.contains("Restored node"), "{out}");
    assert_eq!(restored.stdout(&["id"]), trust.stdout(&["id"]));
    let backed_up = restored.ids();
    assert!(backed_up.is_subset(&trust.ids()));
    // The restored node resumes syncing and catches up, nothing twice.
    restored.stdout(&["sync", "--once", "--peer", &_b.addr]);
    assert_eq!(restored.ids(), council.ids());
    let twice = restored.json(&["sync", "--once", "--peer", &_b.addr, "--json"]);
    assert_eq!(twice["changes_received"], 0);

    // A damaged backup is refused, and restore wants an empty home.
    let mut bytes = std::fs::read(&file).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    let damaged = restored.write("damaged.backup", "");
    std::fs::write(&damaged, bytes).unwrap();
    Home::new()
        .convene(&["restore", damaged.to_str().unwrap()])
        .assert()
        .failure()
        .stderr(predicate::str::contains("damaged"));
    restored
        .convene(&["restore", file.to_str().unwrap()])
        .assert()
        .failure()
        .stderr(predicate::str::contains("already holds a Convene node"));
}

/// Issue 13, item 5, with real daemons: a draft saved with `publish
/// --draft` never reaches another organisation's node (live, or in the full
/// session of a restarted daemon); once published it does, whole.
#[test]
fn a_draft_stays_on_its_node_until_it_is_published() {
    let trust = Home::for_org("Gateshead Health NHS Foundation Trust", "nhs-trust");
    let council = Home::for_org("Gateshead Council", "council");
    let a = Daemon::start(&trust, &[]);
    let b = Daemon::start(&council, &[&a.addr]);
    converge(&[&trust, &council], "the profiles to sync");

    let draft = trust
        .stdout(&[
            "publish",
            "learning",
            "--title",
            "Unfinished thoughts on discharge",
            "--summary",
            "Not for sharing yet: quokka",
            "--draft",
        ])
        .trim()
        .to_string();
    // Entries written after the draft reach the council: by then the
    // draft would have too.
    let hidden = |what: &str| {
        assert!(!council.ids().contains(&draft), "{what}: listed");
        let hits = council.json_lines(&["search", "quokka", "--json"]);
        assert!(hits.is_empty(), "{what}: found {hits:?}");
        council.convene(&["show", &draft]).assert().failure();
    };
    let later = trust.publish("Published after the draft");
    wait_for(CONVERGE, "the later entry to reach the council", || {
        council.ids().contains(&later).then_some(())
    });
    hidden("live");
    // A restarted daemon reconciles the whole catalogue.
    assert!(b.stop().success());
    let after = trust.publish("Published while the council was away");
    let b = Daemon::start(&council, &[&a.addr]);
    wait_for(CONVERGE, "the council to catch up", || {
        council.ids().contains(&after).then_some(())
    });
    hidden("after a full session");

    // Published: it arrives, with its full text.
    trust.stdout(&["edit", &draft, "--set", "status=published"]);
    wait_for(CONVERGE, "the published draft to reach the council", || {
        council.ids().contains(&draft).then_some(())
    });
    let shown = council.json(&["show", &draft, "--json"]);
    assert_eq!(shown["title"], "Unfinished thoughts on discharge");
    assert_eq!(council.json_lines(&["search", "quokka", "--json"]).len(), 1);
    drop(b);
}
