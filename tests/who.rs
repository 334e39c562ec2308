//! Who's who (`convene who`, `/who`): a small community built through the
//! node's API in real homes, its changes applied to the viewer as sync
//! would, then asked through the real binary and the real web app.

mod support;

use support::agent;

use automerge::transaction::Transactable;
use convene_model::{
    Body, Channel, Consent, Contact, EntryInput, Event, Learning, OrgId, Project, Status,
    TeamMember, Timestamp, Visibility,
};
use convene_node::{Node, SignedChange};
use serde_json::Value;
use support::{Daemon, Home};

const DISCHARGE: &str = "discharge-and-safe-transfers-of-care";

fn learning(title: &str, summary: &str, priorities: &[&str]) -> EntryInput {
    EntryInput {
        body: Body::Learning(Learning {
            title: title.into(),
            summary: summary.into(),
            priorities: priorities.iter().map(|p| p.to_string()).collect(),
            ..Learning::default()
        }),
        visibility: None,
        status: None,
    }
}

fn event(title: &str, starts: i64, organiser: &str, cancelled: bool) -> EntryInput {
    EntryInput {
        body: Body::Event(Event {
            title: title.into(),
            starts: Timestamp(starts),
            ends: Timestamp(starts + 3 * 3_600_000),
            organiser: organiser.into(),
            priorities: vec![DISCHARGE.into()],
            cancelled,
            ..Event::default()
        }),
        visibility: None,
        status: None,
    }
}

fn contact(name: &str, role: &str, scope: Visibility, channels: Vec<Channel>) -> EntryInput {
    EntryInput {
        body: Body::Contact(Contact {
            name: name.into(),
            role: role.into(),
            expertise: vec!["quality-improvement".into()],
            open_to: vec!["mentoring".into()],
            channels,
            consent: Some(Consent {
                given_by: name.into(),
                scope,
                ..Consent::default()
            }),
            ..Contact::default()
        }),
        visibility: None,
        status: None,
    }
}

fn email(value: &str, visibility: Option<Visibility>) -> Channel {
    Channel {
        channel: "email".into(),
        value: value.into(),
        visibility,
    }
}

/// Three organisations: the viewer (a council), an NHS trust that leads
/// discharge work, and a VCSE group that mentions it once.
struct Community {
    viewer: Home,
    trust: Home,
    project: String,
}

fn community() -> Community {
    let viewer = Home::for_org("Gateshead Council", "council");
    let trust_home = Home::for_org("Newcastle Hospitals NHS Foundation Trust", "nhs-trust");
    let vcse_home = Home::for_org("Felling Community Group", "vcse");
    let mut trust = Node::open(trust_home.path()).unwrap();
    let mut vcse = Node::open(vcse_home.path()).unwrap();
    let mut me = Node::open(viewer.path()).unwrap();

    for (title, summary) in [
        (
            "Home before lunch",
            "Patients left the ward earlier in the day.",
        ),
        (
            "Trusted assessors",
            "Care homes accepted assessments made on the ward.",
        ),
    ] {
        trust
            .publish(learning(title, summary, &[DISCHARGE]))
            .unwrap();
    }
    let old = trust
        .publish(learning("Old approach", "Superseded.", &[DISCHARGE]))
        .unwrap();
    trust.retract(old).unwrap();
    trust
        .publish(EntryInput {
            status: Some(Status::Draft),
            ..learning("Draft plan", "Not ready.", &[DISCHARGE])
        })
        .unwrap();
    let project = trust
        .publish(EntryInput {
            body: Body::Project(Project {
                title: "Safe transfer of care collaborative".into(),
                summary: "Sixty improvement leads working on flow.".into(),
                priorities: vec![DISCHARGE.into()],
                partners: vec!["Age UK Gateshead".into()],
                place: "Gateshead".into(),
                team: vec![
                    TeamMember {
                        name: "Asha Patel".into(),
                        role: Some("lead".into()),
                    },
                    TeamMember {
                        name: "Bob Hidden".into(),
                        role: Some("member".into()),
                    },
                ],
                ..Project::default()
            }),
            visibility: None,
            status: None,
        })
        .unwrap();
    // Asha agreed to be seen by the community; one of her addresses is for
    // her own organisation only.
    trust
        .publish(contact(
            "Asha Patel",
            "Discharge improvement lead",
            Visibility::Community,
            vec![
                email("asha.private@example.org", Some(Visibility::Organisation)),
                email("asha@example.org", None),
            ],
        ))
        .unwrap();
    // Nadia agreed to be seen by her own organisation only, though the
    // entry went to everyone.
    trust
        .publish(contact(
            "Nadia Narrow",
            "Discharge coordinator",
            Visibility::Organisation,
            vec![],
        ))
        .unwrap();

    // Written with the council and two people: Asha (a listed contact)
    // and Bob (a name only).
    let mut welcome = learning(
        "Warm welcome home",
        "Volunteers phone people the day after discharge from hospital.",
        &[],
    );
    if let Body::Learning(l) = &mut welcome.body {
        l.authors = vec!["Asha Patel".into(), "Bob Hidden".into()];
        l.organisations = vec!["Gateshead Council".into()];
    }
    vcse.publish(welcome).unwrap();
    vcse.publish(learning(
        "Community calls",
        "A 6 per cent fall in falls-related admissions.",
        &[],
    ))
    .unwrap();
    // Events: one the group ran (organised by Asha, a listed contact), one
    // still to come organised by someone who is not a contact, and one the
    // trust called off.
    let hour = 3_600_000;
    let past = 1_677_657_600_000; // 2023-03-01
    let future = 4_102_444_800_000; // 2100-01-01
    vcse.publish(event("Discharge summit", past, "Asha Patel", false))
        .unwrap();
    vcse.publish(event(
        "Discharge café",
        future,
        "Dr Secret Organiser",
        false,
    ))
    .unwrap();
    trust
        .publish(event("Winter discharge day", past + 24 * hour, "", true))
        .unwrap();
    // Carol agreed to be seen by the trust only.
    vcse.publish(contact(
        "Carol Quiet",
        "Discharge volunteer",
        Visibility::Orgs(vec![OrgId(trust.org().0)]),
        vec![],
    ))
    .unwrap();
    // Zed's consent record is then taken out of the document (a change
    // signed by the group's own node, as a newer or broken release could
    // send): a contact without consent.
    let zed = vcse
        .publish(contact(
            "Zed Withdrawn",
            "Discharge helper",
            Visibility::Community,
            vec![],
        ))
        .unwrap();
    let before = vcse.who("discharge", 10).unwrap();
    assert!(
        before.people.iter().any(|p| p.name == "Zed Withdrawn"),
        "with consent, Zed is listed: {before:?}"
    );
    let mut state = vcse.store().load(zed).unwrap().unwrap();
    state.set_actor(automerge::ActorId::from(
        vcse.identity().public_bytes().as_slice(),
    ));
    let mut tx = state.transaction();
    tx.delete(automerge::ROOT, "consent").unwrap();
    let (hash, _) = tx.commit();
    let change = automerge::ReadDoc::get_change_by_hash(&state, &hash.unwrap()).unwrap();
    let withdrawn = SignedChange::sign(vcse.identity(), zed, &change);
    vcse.apply(vec![withdrawn]).unwrap();

    // Everything reaches the viewer; the group's entries reach the trust.
    me.apply(trust.store().all_changes().unwrap()).unwrap();
    me.apply(vcse.store().all_changes().unwrap()).unwrap();
    trust.apply(vcse.store().all_changes().unwrap()).unwrap();
    assert!(
        me.store().load(zed).unwrap().is_some(),
        "the viewer holds Zed's document"
    );
    Community {
        viewer,
        trust: trust_home,
        project: project.to_string(),
    }
}

fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap().to_string())
        .collect()
}

fn reason<'a>(result: &'a Value, kind: &str) -> &'a Value {
    result["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} reason in {result:#}"))
}

#[test]
fn who_ranks_organisations_and_consenting_people_with_their_reasons() {
    let c = community();

    // --json: the topic read as the discharge priority.
    let who = c.viewer.json(&["who", "discharge", "--json"]);
    assert_eq!(who["topic"], "discharge");
    assert_eq!(who["terms"][0]["field"], "priority", "{who:#}");
    assert_eq!(who["terms"][0]["slug"], DISCHARGE);
    let orgs = &who["organisations"];
    let org_names = names(orgs);
    assert_eq!(
        org_names[0], "Newcastle Hospitals NHS Foundation Trust",
        "{who:#}"
    );
    let trust = &orgs[0];
    let group = orgs
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "Felling Community Group")
        .expect("the group that mentions discharge once is listed");
    assert!(
        trust["score"].as_f64().unwrap() > group["score"].as_f64().unwrap(),
        "{who:#}"
    );
    let published = reason(trust, "published");
    assert_eq!(published["text"], "published 2 learning entries on it");
    let titles: Vec<&str> = published["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["title"].as_str().unwrap())
        .collect();
    assert!(
        titles.contains(&"Home before lunch") && titles.contains(&"Trusted assessors"),
        "{titles:?}"
    );
    assert_eq!(reason(trust, "leads")["entries"][0]["id"], c.project);
    assert_eq!(
        reason(group, "published")["entries"][0]["title"],
        "Warm welcome home"
    );
    // The council is named in it; Asha wrote it.
    let council = orgs
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "Gateshead Council")
        .expect("an organisation a learning entry names");
    assert_eq!(
        reason(council, "named-in")["entries"][0]["title"],
        "Warm welcome home"
    );
    // Events: the group ran one and runs another; the trust's cancelled
    // one counts for no one.
    assert_eq!(
        reason(group, "ran")["entries"][0]["title"],
        "Discharge summit"
    );
    assert_eq!(reason(group, "runs")["text"], "runs 1 upcoming event on it");
    // A partner that is not a member is named, without an id.
    let partner = orgs
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "Age UK Gateshead")
        .expect("the project's partner");
    assert!(partner["id"].is_null());

    // People: only Asha. Nadia's and Carol's consent does not cover this
    // council, Zed's was withdrawn, Bob is not a contact at all.
    assert_eq!(names(&who["people"]), vec!["Asha Patel"], "{who:#}");
    let asha = &who["people"][0];
    assert_eq!(asha["role"], "Discharge improvement lead");
    assert_eq!(
        asha["organisation"]["name"],
        "Newcastle Hospitals NHS Foundation Trust"
    );
    assert_eq!(
        asha["email"], "asha@example.org",
        "the narrower address is left out"
    );
    assert_eq!(asha["open_to"][0], "Mentoring");
    assert_eq!(reason(asha, "lead")["entries"][0]["id"], c.project);
    assert_eq!(
        reason(asha, "role")["text"],
        "role: Discharge improvement lead"
    );
    assert_eq!(
        reason(asha, "organiser")["entries"][0]["title"],
        "Discharge summit"
    );
    assert_eq!(
        reason(asha, "author")["text"],
        "wrote 1 learning entry on it"
    );
    // Bob counts for his project's organisation, unnamed.
    assert!(
        reason(trust, "unnamed-team")["text"]
            .as_str()
            .unwrap()
            .starts_with("1 person on the team of 1 project"),
        "{trust:#}"
    );
    let everything = who.to_string();
    for hidden in [
        "Bob Hidden",
        "Nadia Narrow",
        "Carol Quiet",
        "Zed Withdrawn",
        "asha.private",
        "Old approach",
        "Draft plan",
        "Secret",
        "Winter discharge day",
    ] {
        assert!(!everything.contains(hidden), "{hidden} shown: {who:#}");
    }

    // The same as text: ranked, with reasons and entry titles.
    let text = c.viewer.stdout(&["who", "discharge"]);
    let line = |needle: &str| {
        text.lines()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no {needle:?} in:\n{text}"))
    };
    assert!(line("1. Newcastle Hospitals") < line("Felling Community Group"));
    assert!(text.contains("published 2 learning entries on it: "));
    assert!(text.contains("Asha Patel, Discharge improvement lead, Newcastle Hospitals"));
    assert!(text.contains("open to: mentoring"));
    assert!(text.contains("lead of 1 project on it: Safe transfer of care collaborative"));
    assert!(
        !text.contains("Bob Hidden") && !text.contains("Nadia"),
        "{text}"
    );

    // On the trust's own node, Nadia (consent: her organisation) and Carol
    // (consent: the trust) are listed; the trust's draft still is not.
    let theirs = c.trust.json(&["who", "discharge", "--json"]);
    let people = names(&theirs["people"]);
    for name in ["Asha Patel", "Nadia Narrow", "Carol Quiet"] {
        assert!(people.contains(&name.to_string()), "{name}: {theirs:#}");
    }
    assert!(!people.contains(&"Zed Withdrawn".to_string()));
    assert!(!theirs.to_string().contains("Draft plan"), "{theirs:#}");
    let asha = theirs["people"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "Asha Patel")
        .unwrap();
    assert_eq!(
        asha["email"], "asha.private@example.org",
        "her own organisation sees it"
    );

    // A skill: people with that expertise, with their role.
    let qi = c.viewer.json(&["who", "Quality improvement", "--json"]);
    assert_eq!(qi["terms"][0]["field"], "skill");
    assert_eq!(names(&qi["people"]), vec!["Asha Patel"]);
    assert_eq!(
        reason(&qi["people"][0], "expertise:quality-improvement")["text"],
        "expertise: Quality improvement"
    );
    let text = c.viewer.stdout(&["who", "quality", "improvement"]);
    assert!(
        text.contains("Asha Patel, Discharge improvement lead")
            && text.contains("expertise: Quality improvement"),
        "{text}"
    );

    // A place some entry names.
    let place = c.viewer.json(&["who", "gateshead", "--json"]);
    assert!(
        place["terms"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["field"] == "place" && t["slug"] == "gateshead"),
        "{place:#}"
    );
    assert_eq!(
        reason(&place["organisations"][0], "leads")["entries"][0]["id"],
        c.project
    );

    // Free text: words no vocabulary holds.
    let falls = c.viewer.json(&["who", "falls", "--json", "--limit", "1"]);
    assert_eq!(falls["terms"], Value::Array(vec![]));
    assert_eq!(
        names(&falls["organisations"]),
        vec!["Felling Community Group"]
    );
    assert_eq!(
        reason(&falls["organisations"][0], "published")["entries"][0]["title"],
        "Community calls"
    );
}

#[test]
fn an_empty_topic_is_refused_and_an_unknown_one_finds_no_one() {
    let home = Home::initialised();
    let long = "falls ".repeat(50);
    for (topic, message) in [
        ("", "the topic is empty"),
        ("  ", "the topic is empty"),
        ("()", "has no word to search for"),
        (long.as_str(), "characters long"),
    ] {
        let out = home.convene(&["who", topic]).output().unwrap();
        assert!(!out.status.success(), "{topic:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(message), "{topic:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
    let out = home.stdout(&["who", "zzyzx"]);
    assert!(out.contains("No one found for \"zzyzx\""), "{out}");
    let json = home.json(&["who", "zzyzx", "--json"]);
    assert_eq!(json["organisations"], Value::Array(vec![]));
    assert_eq!(json["people"], Value::Array(vec![]));
    home.convene(&["who", "x", "--limit", "0"])
        .assert()
        .failure();
}

fn get(url: &str, header: Option<(&str, &str)>) -> (u16, String) {
    let mut req = agent().get(url);
    if let Some((k, v)) = header {
        req = req.header(k, v);
    }
    let mut r = req.call().unwrap();
    (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
}

#[test]
fn the_page_lists_them_with_links_and_needs_sign_in() {
    let c = community();
    let daemon = Daemon::start(&c.viewer, &[]);
    let url = format!("{}who?topic=discharge", daemon.web);

    // Not signed in: nothing about anyone.
    let (status, body) = get(&url, None);
    assert_ne!(status, 200);
    assert!(
        !body.contains("Asha") && !body.contains("Newcastle"),
        "{body}"
    );

    let cookie = support::sign_in(&c.viewer);
    let (status, html) = get(&url, Some(("Cookie", &cookie)));
    assert_eq!(status, 200, "{html}");
    assert!(
        html.contains("<label for=\"f-topic\">Topic</label>"),
        "{html}"
    );
    assert!(
        html.contains("href=\"/who\""),
        "the navigation links the page"
    );
    assert!(html.contains("Newcastle Hospitals NHS Foundation Trust"));
    assert!(html.contains("Asha Patel") && html.contains("Discharge improvement lead"));
    assert!(
        html.contains(&format!("href=\"/e/{}\"", c.project)),
        "evidence links to the project"
    );
    for hidden in [
        "Bob Hidden",
        "Nadia Narrow",
        "Carol Quiet",
        "Zed Withdrawn",
        "Draft plan",
    ] {
        assert!(!html.contains(hidden), "{hidden} shown");
    }
    let trust_at = html
        .find("Newcastle Hospitals NHS Foundation Trust")
        .unwrap();
    let group_at = html.find("Felling Community Group").unwrap();
    assert!(trust_at < group_at, "ranked");

    // No topic yet: the box, and the priorities and skills to start from.
    let (status, html) = get(&format!("{}who", daemon.web), Some(("Cookie", &cookie)));
    assert_eq!(status, 200);
    assert!(
        html.contains(&format!("href=\"/who?topic={DISCHARGE}\"")),
        "{html}"
    );
    assert!(html.contains("href=\"/who?topic=quality-improvement\""));
    let (_, html) = get(
        &format!("{}who?topic={DISCHARGE}", daemon.web),
        Some(("Cookie", &cookie)),
    );
    assert!(
        html.contains("Safe transfer of care collaborative"),
        "{html}"
    );

    // A topic nobody knows about: said so, with the form to try another.
    let (status, html) = get(
        &format!("{}who?topic=zzyzx", daemon.web),
        Some(("Cookie", &cookie)),
    );
    assert_eq!(status, 200);
    assert!(html.contains("No one found for “zzyzx”"), "{html}");
    assert!(html.contains("value=\"zzyzx\""), "the box keeps the topic");

    // A topic with no word: the form again, with the problem.
    let (status, html) = get(
        &format!("{}who?topic=%28%29", daemon.web),
        Some(("Cookie", &cookie)),
    );
    assert_eq!(status, 400);
    assert!(html.contains("has no word to search for"), "{html}");

    // The JSON API, with the node's token.
    let token = std::fs::read_to_string(c.viewer.path().join("web-token")).unwrap();
    let auth = format!("Bearer {}", token.trim());
    let (status, body) = get(
        &format!("{}api/who?topic=discharge&limit=1", daemon.web),
        Some(("Authorization", &auth)),
    );
    assert_eq!(status, 200, "{body}");
    let json: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        names(&json["organisations"]),
        vec!["Newcastle Hospitals NHS Foundation Trust"]
    );
    assert_eq!(json["total_organisations"], 4);
    let (status, body) = get(
        &format!("{}api/who?topic=discharge&limit=lots", daemon.web),
        Some(("Authorization", &auth)),
    );
    assert_eq!(status, 400);
    assert!(body.contains("\"error\""), "{body}");
}
