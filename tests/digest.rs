//! What's new: `convene digest` on a real home (entries published with
//! the binary, a question and replies from another organisation's node
//! applied as sync would), and the web app's `/whats-new` page with its
//! last-visit cookie.

mod support;

use support::agent;

use convene_model::Timestamp;
use convene_node::Node;
use support::{Daemon, Home};

const DISCHARGE: &str = "discharge-and-safe-transfers-of-care";
const PREVENTION: &str =
    "working-with-communities-to-shift-the-balance-from-treatment-to-prevention";

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A local time `days` from now, as `publish event --starts` reads it.
fn in_days(days: i64, hour: u32) -> String {
    let t = chrono::Utc::now() + chrono::Duration::days(days);
    format!("{} {hour:02}:00", t.format("%Y-%m-%d"))
}

/// Copies every change `from` holds into `to`, as a sync would.
fn sync(from: &Home, to: &Home) {
    let source = Node::open(from.path()).unwrap();
    let mut target = Node::open(to.path()).unwrap();
    target.apply(source.store().all_changes().unwrap()).unwrap();
}

/// Our council's entries (through the binary) and a question on our
/// learning from an NHS trust's node.
struct World {
    us: Home,
    trust: Home,
    learning: String,
    project: String,
    event: String,
    question: String,
}

fn world() -> World {
    let us = Home::for_org("Gateshead Council", "council");
    let trust = Home::for_org("Newcastle Hospitals NHS Foundation Trust", "nhs-trust");
    let learning = us
        .stdout(&[
            "publish",
            "learning",
            "--title",
            "Home before lunch",
            "--summary",
            "Patients left the ward earlier in the day once pharmacy came first.",
            "--priority",
            DISCHARGE,
        ])
        .trim()
        .to_string();
    let project = us
        .stdout(&[
            "publish",
            "project",
            "--title",
            "Community calls",
            "--summary",
            "Weekly calls to people living alone.",
            "--priority",
            PREVENTION,
        ])
        .trim()
        .to_string();
    let event = us
        .stdout(&[
            "publish",
            "event",
            "--title",
            "Discharge summit",
            "--summary",
            "A morning of talks and a world café.",
            "--starts",
            &in_days(5, 9),
            "--ends",
            &in_days(5, 12),
            "--place",
            "Gateshead Civic Centre",
            "--organiser",
            "Dr Secret Organiser",
            "--priority",
            DISCHARGE,
        ])
        .trim()
        .to_string();
    us.stdout(&[
        "publish",
        "learning",
        "--title",
        "Draft plan nobody may see",
        "--summary",
        "Not ready.",
        "--priority",
        DISCHARGE,
        "--draft",
    ]);
    let old = us.publish("Old approach we withdrew");
    us.stdout(&["retract", &old]);
    us.stdout(&[
        "publish",
        "contact",
        "--name",
        "Asha Patel",
        "--role",
        "Discharge lead",
        "--email",
        "asha@example.org",
        "--consent",
    ]);

    // The trust's node receives our entries and asks about our learning.
    sync(&us, &trust);
    let question = {
        let mut t = Node::open(trust.path()).unwrap();
        t.ask(
            learning.parse().unwrap(),
            "How did you get pharmacy to come first?",
        )
        .unwrap()
        .to_string()
    };
    sync(&trust, &us);
    World {
        us,
        trust,
        learning,
        project,
        event,
        question,
    }
}

#[test]
fn a_digest_lists_what_is_new_and_nothing_that_must_not_leave() {
    let w = world();
    let text = w.us.stdout(&["digest", "--since", "7d"]);
    for expected in [
        "New learning (1)",
        "Home before lunch",
        "New projects (1)",
        "Community calls",
        "Events in the next 4 weeks (1)",
        "Discharge summit",
        "Gateshead Civic Centre",
        "Questions and replies on our entries (1)",
        "Newcastle Hospitals NHS Foundation Trust asked about",
        "How did you get pharmacy to come first?",
        "Questions waiting for our answer (1)",
        "1 new contact in the directory",
        &format!("id {}", w.learning),
        &format!("id {}", w.event),
    ] {
        assert!(text.contains(expected), "{expected:?} missing:\n{text}");
    }
    for never in [
        "Draft plan",
        "Old approach",
        "Asha",
        "asha@example.org",
        "Dr Secret Organiser",
    ] {
        assert!(!text.contains(never), "{never:?} is in the digest:\n{text}");
    }
    for line in text.lines() {
        assert!(
            line.chars().count() <= 72,
            "longer than 72 columns: {line:?}"
        );
    }

    // Markdown, linked to the entries' pages when a base address is given.
    let md = w.us.stdout(&[
        "digest",
        "--format",
        "markdown",
        "--base-url",
        "https://convene.example.org/",
    ]);
    assert!(md.starts_with("# What's new\n"), "{md}");
    assert!(md.contains("## New learning (1)"), "{md}");
    assert!(
        md.contains(&format!(
            "- **[Home before lunch](https://convene.example.org/e/{})**",
            w.learning
        )),
        "{md}"
    );
    assert!(
        md.contains(&format!("(https://convene.example.org/e/{})", w.project)),
        "{md}"
    );
    for never in ["Draft plan", "Old approach", "Asha", "Dr Secret Organiser"] {
        assert!(!md.contains(never), "{never:?} is in the digest:\n{md}");
    }
    // JSON for scripts: the same sections, no more.
    let json = w.us.json(&["digest", "--format", "json"]);
    assert_eq!(json["learning"][0]["title"], "Home before lunch");
    assert_eq!(json["learning"][0]["id"], w.learning.as_str());
    assert_eq!(json["events"][0]["place"], "Gateshead Civic Centre");
    assert_eq!(
        json["conversations"][0]["text"],
        "How did you get pharmacy to come first?"
    );
    assert_eq!(json["new_contacts"], 1);
    assert_eq!(json["audience"], "community");
    let raw = json.to_string();
    for never in ["Draft plan", "Old approach", "Asha", "Dr Secret Organiser"] {
        assert!(!raw.contains(never), "{never:?} is in the JSON: {raw}");
    }
    // Without one, entries are named by id.
    let md = w.us.stdout(&["digest", "--format", "markdown"]);
    assert!(
        md.contains(&format!("**Home before lunch** (`{}`)", w.learning)),
        "{md}"
    );

    // A priority keeps what is on it: the discharge learning and event,
    // not the prevention project, and no count of contacts.
    let only = w.us.stdout(&[
        "digest",
        "--priority",
        "Discharge and safe transfers of care",
    ]);
    assert!(
        only.contains("Home before lunch") && only.contains("Discharge summit"),
        "{only}"
    );
    assert!(!only.contains("Community calls"), "{only}");
    assert!(!only.contains("new contact"), "{only}");
    let prevention = w.us.stdout(&["digest", "--priority", PREVENTION]);
    assert!(prevention.contains("Community calls"), "{prevention}");
    assert!(!prevention.contains("Home before lunch"), "{prevention}");
    // Kinds pick sections.
    let events = w.us.stdout(&["digest", "--kind", "event"]);
    assert!(events.contains("Discharge summit"), "{events}");
    assert!(
        !events.contains("Home before lunch") && !events.contains("Questions"),
        "{events}"
    );

    // Once we have answered, the question no longer waits for us.
    w.us.stdout(&[
        "reply",
        &w.question,
        "--text",
        "We asked them to start the day on the ward.",
    ]);
    let after = w.us.stdout(&["digest"]);
    assert!(!after.contains("Questions waiting"), "{after}");
    assert!(
        after.contains("Questions and replies on our entries (1)"),
        "our own reply is not news to us: {after}"
    );
    let _ = &w.trust;
}

#[test]
fn since_counts_from_when_entries_reached_this_node() {
    let home = Home::for_org("Gateshead Council", "council");
    home.publish("Earlier learning");
    // Past the millisecond the first entry was stored in, without sleeping.
    let stored_by = now_ms();
    while now_ms() <= stored_by {
        std::hint::spin_loop();
    }
    let boundary = Timestamp(now_ms()).to_string();
    home.publish("Later learning");
    let out = home.stdout(&["digest", "--since", &boundary]);
    assert!(out.contains("Later learning"), "{out}");
    assert!(!out.contains("Earlier learning"), "{out}");
    let both = home.stdout(&["digest", "--since", "1h"]);
    assert!(
        both.contains("Earlier learning") && both.contains("Later learning"),
        "{both}"
    );
    // A limit keeps the newest of each section and says what it left out.
    let one = home.stdout(&["digest", "--since", "1h", "--limit", "1"]);
    assert!(
        one.contains("Later learning") && !one.contains("Earlier learning"),
        "{one}"
    );
    assert!(
        one.contains("1 more thing is left out of this digest"),
        "{one}"
    );
    let none = home.stdout(&["digest", "--since", "0d"]);
    assert!(none.contains("Nothing new in this period."), "{none}");

    // Bad input: one line, a non-zero exit, nothing written.
    let target = home.path().join("digest.md");
    std::fs::write(&target, "last week's digest\n").unwrap();
    let target_arg = target.to_str().unwrap();
    for (args, message) in [
        (
            vec!["--since", "yesterday"],
            "--since: \"yesterday\" is not a period or a date",
        ),
        (vec!["--since", "2999-01-01"], "is in the future"),
        (vec!["--since", "99999d"], "more than ten years"),
        (
            vec!["--format", "html"],
            "--format: unknown format \"html\"",
        ),
        (
            vec!["--kind", "contactz"],
            "--kind: unknown kind \"contactz\"",
        ),
        (
            vec!["--priority", "nonsense"],
            "unknown priority value \"nonsense\"",
        ),
        (vec!["--base-url", "javascript:alert(1)"], "--base-url:"),
    ] {
        let mut all = vec!["digest", "--out", target_arg];
        all.extend(args.iter().copied());
        let out = home.convene(&all).output().unwrap();
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(message), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert_eq!(
            std::fs::read_to_string(&target).unwrap(),
            "last week's digest\n"
        );
    }

    // --out replaces the file whole and says what it wrote.
    let said = home.stdout(&["digest", "--format", "markdown", "--out", target_arg]);
    assert!(said.starts_with("Wrote "), "{said}");
    let written = std::fs::read_to_string(&target).unwrap();
    assert!(written.starts_with("# What's new"), "{written}");
    assert!(written.contains("Later learning"), "{written}");
    let leftovers: Vec<_> = std::fs::read_dir(home.path())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(".convene-digest")
        })
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    let missing = home.path().join("no-such-folder").join("d.md");
    let out = home
        .convene(&["digest", "--out", missing.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim().lines().count(),
        1
    );
}

/// GETs `url` with `cookies`; the status, the body and the cookies set.
fn get(url: &str, cookies: &str) -> (u16, String, Vec<String>) {
    let mut req = agent().get(url);
    if !cookies.is_empty() {
        req = req.header("Cookie", cookies);
    }
    let mut r = req.call().unwrap();
    let set: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    (
        r.status().as_u16(),
        r.body_mut().read_to_string().unwrap(),
        set,
    )
}

#[test]
fn the_whats_new_page_shows_a_reply_on_our_entry_once() {
    let w = world();
    // We answered the trust's question; the trust thanked us.
    let ours =
        w.us.stdout(&[
            "reply",
            &w.question,
            "--text",
            "We asked them to start on the ward.",
        ])
        .trim()
        .to_string();
    sync(&w.us, &w.trust);
    {
        let mut t = Node::open(w.trust.path()).unwrap();
        t.reply(ours.parse().unwrap(), "Thanks, that helps our winter plan.")
            .unwrap();
    }
    sync(&w.trust, &w.us);

    let daemon = Daemon::start(&w.us, &[]);
    let url = format!("{}whats-new", daemon.web);
    let port = support::port_of(&daemon.web);
    let seen_name = format!("convene_seen_{port}");

    // Not signed in: nothing.
    let (status, body, _) = get(&url, "");
    assert_eq!(status, 401);
    assert!(!body.contains("Thanks, that helps"), "{body}");

    let session = support::sign_in(&w.us);

    // A cookie from the future counts as no visit: the last week.
    let future = format!("{session}; {seen_name}={}", now_ms() + 86_400_000);
    let (status, html, _) = get(&url, &future);
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("What's new in the last 7 days"), "{html}");

    // First visit: the reply on our entry, linked, and the rest.
    let (status, html, set) = get(&url, &session);
    assert_eq!(status, 200, "{html}");
    assert!(
        html.contains("href=\"/whats-new\""),
        "the navigation links the page"
    );
    assert!(
        html.contains("Questions and replies on our entries"),
        "{html}"
    );
    assert!(
        html.contains("Thanks, that helps our winter plan."),
        "{html}"
    );
    assert!(
        html.contains("Newcastle Hospitals NHS Foundation Trust"),
        "{html}"
    );
    assert!(
        html.contains(&format!("href=\"/e/{}\"", w.learning)),
        "{html}"
    );
    assert!(html.contains(&format!("href=\"/e/{}\"", w.event)), "{html}");
    assert!(
        !html.contains("Draft plan") && !html.contains("Dr Secret Organiser"),
        "{html}"
    );
    let seen = set
        .iter()
        .find(|c| c.starts_with(&format!("{seen_name}=")))
        .unwrap_or_else(|| panic!("the visit is remembered: {set:?}"));
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(seen.contains(attribute), "{seen}");
    }
    let seen = seen.split(';').next().unwrap().to_string();

    // Second visit, with the cookie: the reply is no longer new.
    let (status, html, _) = get(&url, &format!("{session}; {seen}"));
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("since your last visit"), "{html}");
    assert!(
        !html.contains("Thanks, that helps our winter plan."),
        "{html}"
    );
    assert!(
        !html.contains("Questions and replies on our entries"),
        "{html}"
    );
    assert!(!html.contains("Home before lunch"), "{html}");
    // The event is still to come, so it is still listed.
    assert!(html.contains("Discharge summit"), "{html}");

    // Another period on request, without forgetting the visit.
    let (status, html, set) = get(&format!("{url}?since=7d"), &format!("{session}; {seen}"));
    assert_eq!(status, 200);
    assert!(
        html.contains("Thanks, that helps our winter plan."),
        "{html}"
    );
    assert!(set.iter().all(|c| !c.starts_with(&seen_name)), "{set:?}");
    let (status, html, _) = get(&format!("{url}?since=soon"), &session);
    assert_eq!(status, 400);
    assert!(html.contains("is not a period or a date"), "{html}");
}

/// Writes `key` at the root of `doc` in `node` as a change signed by the
/// node itself: what a newer release, or a node that lies, could send.
fn put_root(
    node: &mut Node,
    doc: convene_model::DocumentId,
    key: &str,
    value: automerge::ScalarValue,
) {
    use automerge::transaction::Transactable;
    let mut state = node.store().load(doc).unwrap().unwrap();
    state.set_actor(automerge::ActorId::from(
        node.identity().public_bytes().as_slice(),
    ));
    let mut tx = state.transaction();
    tx.put(automerge::ROOT, key, value).unwrap();
    let (hash, _) = tx.commit();
    let change = automerge::ReadDoc::get_change_by_hash(&state, &hash.unwrap()).unwrap();
    let signed = convene_node::SignedChange::sign(node.identity(), doc, &change);
    node.apply(vec![signed]).unwrap();
}

#[test]
fn restricted_late_and_edited_entries_are_placed_as_they_should_be() {
    let us = Home::for_org("Gateshead Council", "council");
    let trust = Home::for_org("Newcastle Hospitals NHS Foundation Trust", "nhs-trust");
    let project = us
        .stdout(&[
            "publish",
            "project",
            "--title",
            "Falls prevention",
            "--summary",
            "Strength and balance classes.",
        ])
        .trim()
        .to_string();
    let stored_by = now_ms();
    while now_ms() <= stored_by {
        std::hint::spin_loop();
    }
    let boundary = Timestamp(now_ms()).to_string();
    us.stdout(&[
        "edit",
        &project,
        "--set",
        "aim=Ten per cent fewer falls by June",
    ]);
    us.stdout(&[
        "publish",
        "learning",
        "--title",
        "Internal lessons",
        "--summary",
        "For our own staff.",
        "--visibility",
        "organisation",
    ]);
    us.stdout(&[
        "publish",
        "idea",
        "--title",
        "While you are waiting family hubs",
        "--summary",
        "Support for families while they wait.",
    ]);

    // The trust wrote an entry 60 days ago (by its clock) that reaches us
    // only now: history, not news, in this week's digest.
    {
        let mut t = Node::open(trust.path()).unwrap();
        let old = t
            .publish(convene_model::EntryInput {
                body: convene_model::Body::Learning(convene_model::Learning {
                    title: "Written long ago".into(),
                    summary: "An old lesson.".into(),
                    ..convene_model::Learning::default()
                }),
                visibility: None,
                status: None,
            })
            .unwrap();
        let sixty_days_ago = now_ms() - 60 * 86_400_000;
        put_root(
            &mut t,
            old,
            "created",
            automerge::ScalarValue::Timestamp(sixty_days_ago),
        );
    }
    // An entry we show to the trust only, and the trust's question on it,
    // whose visibility the trust's node then widens to the community.
    sync(&trust, &us);
    let trust_org = Node::open(trust.path()).unwrap().org().to_string();
    let shared = us
        .stdout(&[
            "publish",
            "learning",
            "--title",
            "Shared with the trust only",
            "--summary",
            "Between us.",
            "--visibility",
            &trust_org,
        ])
        .trim()
        .to_string();
    sync(&us, &trust);
    {
        let mut t = Node::open(trust.path()).unwrap();
        let q = t
            .ask(shared.parse().unwrap(), "What did the trust board say?")
            .unwrap();
        put_root(
            &mut t,
            q,
            "visibility",
            automerge::ScalarValue::Str("community".into()),
        );
    }
    sync(&trust, &us);

    let week = us.stdout(&["digest", "--since", &boundary]);
    assert!(
        !week.contains("Shared with the trust only") && !week.contains("trust board"),
        "a message cannot carry a restricted entry into a community digest: {week}"
    );
    assert!(
        week.contains("Updated projects (1)") && week.contains("Falls prevention"),
        "{week}"
    );
    assert!(!week.contains("New projects"), "{week}");
    assert!(
        week.contains("New ideas (1)") && week.contains("While you are waiting"),
        "{week}"
    );
    assert!(
        !week.contains("Internal lessons"),
        "restricted entries stay out: {week}"
    );
    assert!(
        !week.contains("Written long ago"),
        "a late old entry is not news: {week}"
    );

    let inside = us.stdout(&["digest", "--since", &boundary, "--include-restricted"]);
    assert!(inside.contains("Internal lessons"), "{inside}");
    assert!(inside.contains("Not for everyone."), "{inside}");
    assert!(inside.contains("What did the trust board say?"), "{inside}");
    assert!(inside.contains("only: keep it inside"), "{inside}");

    // Over a longer period the old entry counts: it reached us in it and
    // was written less than 31 days before it began.
    let quarter = us.stdout(&["digest", "--since", "12w"]);
    assert!(quarter.contains("Written long ago"), "{quarter}");
    assert!(quarter.contains("New projects (1)"), "{quarter}");
}
