//! Questions and replies, events and votes between real members' nodes:
//! each message and answer is its own signed document owned by its
//! author's organisation, travels only to the entry's audience, and every
//! node shows the same thread, attendance and ranking once synced.

mod support;

use std::time::Duration;

use predicates::prelude::*;
use support::{Daemon, Home, wait_for};

const CONVERGE: Duration = Duration::from_secs(30);

fn now_plus(secs: i64) -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    convene_model::Timestamp(ms + secs * 1000).to_string()
}

/// A steward's node and two members', all in one community; the steward's
/// daemon is the meeting point and the others sync with it once at a time
/// (as laptops that come online now and then).
struct Community {
    trust: Home,
    council: Home,
    vcse: Home,
    hub: Daemon,
}

fn community() -> Community {
    let trust = Home::for_org("Steward Trust", "nhs-trust");
    let council = Home::for_org("Member Council", "council");
    let vcse = Home::for_org("Hexham Carers Group", "vcse");
    trust
        .convene(&["community", "create", "Boost"])
        .assert()
        .success();
    let hub = Daemon::start(&trust, &[]);
    council.join(&trust.stdout(&["invite", "--expires", "1d"]));
    vcse.join(&trust.stdout(&["invite", "--expires", "1d"]));
    council.sync_with(&hub.addr);
    vcse.sync_with(&hub.addr);
    Community {
        trust,
        council,
        vcse,
        hub,
    }
}

#[test]
fn conversations_and_answers_reach_only_the_entrys_audience_and_agree_everywhere() {
    let Community {
        trust,
        council,
        vcse,
        hub,
    } = community();
    let a = &hub.addr;

    // The trust shares learning with the council only, and puts an idea
    // and an event with one place to the whole community.
    let restricted = trust.stdout(&[
        "publish",
        "learning",
        "--title",
        "Handover delays: what the fast sites did",
        "--summary",
        "Peer visits, then one standard operating model.",
        "--visibility",
        "Member Council",
    ]);
    let restricted = restricted.trim();
    let idea = trust.stdout(&[
        "publish",
        "idea",
        "--title",
        "While-you-wait family hubs",
        "--summary",
        "Support for families on waiting lists.",
    ]);
    let idea = idea.trim();
    let event = trust.stdout(&[
        "publish",
        "event",
        "--title",
        "Discharge summit",
        "--starts",
        &now_plus(86_400),
        "--ends",
        &now_plus(90_000),
        "--capacity",
        "1",
    ]);
    let event = event.trim();
    council.sync_with(a);
    vcse.sync_with(a);

    // The council asks about the restricted entry, supports the idea and
    // says it is going; the carers' group, offline from the council, does
    // the same for the idea and the event.
    let question = council.stdout(&[
        "ask",
        restricted,
        "--text",
        "How did you count minutes lost?",
    ]);
    let question = question.trim();
    // The carers' group answers first by the clock but reaches the
    // organiser second: the place goes by the organiser's receipt, so a
    // backdated answer wins nothing.
    vcse.convene(&["attend", event])
        .assert()
        .success()
        .stdout(predicate::str::contains("confirms your place"));
    council.convene(&["vote", idea]).assert().success();
    council
        .convene(&["attend", event])
        .assert()
        .success()
        .stdout(predicate::str::contains("going to"));
    vcse.convene(&["vote", idea]).assert().success();
    council.sync_with(a);
    wait_for(
        CONVERGE,
        "the organiser to give the council the place",
        || {
            let shown = trust.json(&["show", event, "--json"]);
            (shown["attendance"]["going"][0]["confirmed"] == true).then_some(())
        },
    );
    vcse.sync_with(a);
    council.sync_with(a);

    // The organiser's daemon gives out the place as the answers arrive.
    wait_for(CONVERGE, "the organiser to give out the place", || {
        let shown = trust.json(&["show", event, "--json"]);
        (shown["attendance"]["going"][0]["confirmed"] == true).then_some(())
    });

    // The trust sees the open question first and answers it.
    let open = trust.json_lines(&["questions", "--json"]);
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0]["id"], question);
    assert_eq!(open[0]["on_ours"], true);
    trust
        .convene(&[
            "reply",
            question,
            "--text",
            "From the ambulance service's own handover data.",
        ])
        .assert()
        .success();
    assert!(trust.json_lines(&["questions", "--json"]).is_empty());
    council.sync_with(a);
    vcse.sync_with(a);

    let thread = council.json(&["show", restricted, "--thread", "--json"])["thread"].clone();
    let q = &thread["questions"][0];
    assert_eq!(q["id"], question);
    assert_eq!(q["open"], false);
    assert_eq!(q["owner_name"], "Member Council");
    assert_eq!(q["replies"][0]["owner_name"], "Steward Trust");
    assert!(
        q["replies"][0]["text"]
            .as_str()
            .unwrap()
            .contains("handover data")
    );

    // The carers' group may not see the restricted entry: it holds neither
    // it nor a word of the conversation about it.
    let held = vcse.ids();
    assert!(!held.contains(restricted));
    assert!(!held.contains(question));
    let messages = vcse.json_lines(&["list", "message", "--all", "--json"]);
    assert!(messages.is_empty(), "{messages:?}");

    // Every node ranks the idea the same: two organisations support it.
    let ranking = trust.json(&["ideas", "--json"]);
    assert_eq!(ranking["ideas"][0]["id"], idea);
    assert_eq!(ranking["ideas"][0]["support"], 2);
    assert_eq!(council.json(&["ideas", "--json"]), ranking);
    assert_eq!(vcse.json(&["ideas", "--json"]), ranking);

    // One place: the organiser's node gave it to the answer it heard
    // first (never by the time an answer claims), the other waits; the
    // same on every node once the organiser's allocation has synced.
    let going = |h: &Home| h.json(&["show", event, "--json"])["attendance"]["going"].clone();
    let at_trust = going(&trust);
    assert_eq!(at_trust.as_array().unwrap().len(), 2, "{at_trust}");
    assert_eq!(at_trust[0]["name"], "Member Council");
    assert_eq!(at_trust[0]["confirmed"], true);
    assert_eq!(at_trust[1]["confirmed"], false);
    assert_eq!(at_trust[1]["waiting"], true);
    assert_eq!(going(&council), at_trust);
    assert_eq!(going(&vcse), at_trust);

    // A vote is changeable, and only by its own organisation.
    let responses = trust.json_lines(&["list", "response", "--json"]);
    let vcse_response = responses
        .iter()
        .find(|r| r["owner_name"] == "Hexham Carers Group" && r["title"] == "support")
        .unwrap_or_else(|| panic!("the carers' vote in {responses:?}"))["id"]
        .as_str()
        .unwrap()
        .to_string();
    council
        .convene(&["edit", &vcse_response, "--set", "answer=withdrawn"])
        .assert()
        .failure();
    council
        .convene(&["vote", idea, "--withdraw"])
        .assert()
        .success();
    council.sync_with(a);
    vcse.sync_with(a);
    for h in [&trust, &council, &vcse] {
        let r = h.json(&["ideas", "--json"]);
        assert_eq!(r["ideas"][0]["support"], 1, "{r}");
    }
    // The council's answer is still one document, edited, not a second.
    let council_answers = council
        .json_lines(&["list", "response", "--json"])
        .into_iter()
        .filter(|r| r["owner_name"] == "Member Council")
        .count();
    assert_eq!(council_answers, 2, "one for the idea, one for the event");

    // A removed organisation's support stops counting.
    trust
        .convene(&["member", "remove", "Hexham Carers Group"])
        .assert()
        .success();
    let r = trust.json(&["ideas", "--json"]);
    assert_eq!(r["ideas"][0]["support"], 0, "{r}");
}

#[test]
fn a_round_takes_votes_while_open_up_to_its_picks_and_is_sealed_by_its_steward() {
    let Community {
        trust,
        council,
        vcse,
        hub,
    } = community();
    let a = &hub.addr;

    // Only a steward sets rounds.
    council
        .convene(&[
            "publish",
            "round",
            "--title",
            "Not ours to set",
            "--opens",
            &now_plus(-3600),
            "--closes",
            &now_plus(3600),
        ])
        .assert()
        .failure()
        .stderr(predicate::str::contains("steward"));

    // Long enough for the votes below on a busy machine; the test waits for
    // the close with a deadline, not a sleep.
    let closes = now_plus(10);
    let round = trust.stdout(&[
        "publish",
        "round",
        "--title",
        "Top ideas",
        "--opens",
        &now_plus(-3600),
        "--closes",
        &closes,
        "--picks",
        "1",
    ]);
    let round = round.trim();
    let idea = |title: &str| {
        trust
            .stdout(&[
                "publish",
                "idea",
                "--title",
                title,
                "--summary",
                "An idea.",
                "--round",
                round,
            ])
            .trim()
            .to_string()
    };
    let first = idea("Young people leading service design");
    let second = idea("Integrated teams across sectors");
    council.sync_with(a);
    vcse.sync_with(a);
    // Both members vote while offline from each other.
    council.convene(&["vote", &first]).assert().success();
    vcse.convene(&["vote", &first]).assert().success();
    council
        .convene(&["vote", &second])
        .assert()
        .failure()
        .stderr(predicate::str::contains("limit"));
    council.sync_with(a);
    vcse.sync_with(a);

    // The steward cannot seal before the close; afterwards voting is shut.
    trust
        .convene(&["round", "close", round])
        .assert()
        .failure()
        .stderr(predicate::str::contains("can be sealed after"));
    wait_for(Duration::from_secs(40), "the round to close", || {
        trust
            .convene(&["round", "close", round])
            .output()
            .unwrap()
            .status
            .success()
            .then_some(())
    });
    council
        .convene(&["vote", &second, "--withdraw"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("not open"));

    council.sync_with(a);
    vcse.sync_with(a);
    let sealed = trust.json(&["ideas", "--round", round, "--json"]);
    assert_eq!(sealed["round"]["phase"], "sealed", "{sealed}");
    assert_eq!(sealed["ideas"][0]["id"], first.as_str(), "{sealed}");
    assert_eq!(sealed["ideas"][0]["support"], 2, "{sealed}");
    assert_eq!(sealed["ideas"][1]["support"], 0, "{sealed}");
    // Every node shows the same sealed result.
    for h in [&council, &vcse] {
        assert_eq!(h.json(&["ideas", "--round", round, "--json"]), sealed);
    }
}

#[test]
fn bad_convening_input_is_one_clear_line() {
    let home = Home::initialised();
    let learning = home.publish("Community calls");
    let before = home.ids();
    for (args, says) in [
        (
            vec!["ask", learning.as_str(), "--text", "  "],
            "text: is required",
        ),
        (
            vec!["reply", learning.as_str(), "--text", "hi"],
            "not a question or reply",
        ),
        (
            vec!["attend", learning.as_str()],
            "answer events and ideas only",
        ),
        (vec!["vote", "nosuchid"], "no entry has an id"),
        (
            vec![
                "publish",
                "event",
                "--title",
                "Summit",
                "--starts",
                "2027-03-28 01:30",
                "--ends",
                "2027-03-28 05:00",
            ],
            "does not exist in Europe/London",
        ),
        (
            vec![
                "publish",
                "event",
                "--title",
                "Summit",
                "--starts",
                "2027-03-04 13:00",
                "--ends",
                "2027-03-04 09:00",
            ],
            "ends: must be after the start",
        ),
        (
            vec![
                "publish",
                "event",
                "--title",
                "Summit",
                "--starts",
                "2027-03-04 09:00",
                "--ends",
                "2027-03-04 13:00",
                "--link",
                "javascript:alert(1)",
            ],
            "link: must be a web address",
        ),
    ] {
        let out = home.convene(&args).output().unwrap();
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
    }
    // Nothing half-written: no entry, message or answer was added.
    assert_eq!(home.ids(), before);
    for kind in ["message", "response", "event"] {
        assert!(
            home.json_lines(&["list", kind, "--all", "--json"])
                .is_empty(),
            "{kind}"
        );
    }
}
