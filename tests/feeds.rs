//! Feeds: the Atom feed and the iCalendar feed of a real daemon over HTTP,
//! read with real parsers (`feed-rs` for Atom, `ical` for iCalendar: other
//! crates than the ones that write them), and the feed links' capability
//! tokens made, used and revoked with the real `convene` binary.

mod support;

use support::{agent, sign_in};

use serde_json::{Value, json};
use support::{Daemon, Home};

/// A GET: status, content type, body.
fn get(url: &str, headers: &[(&str, &str)]) -> (u16, String, String) {
    let mut req = agent().get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut r = req.call().expect("the web app answers");
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (
        status,
        ct,
        r.body_mut().read_to_string().unwrap_or_default(),
    )
}

/// The API token's `Authorization` header value.
fn bearer(home: &Home) -> String {
    let t = std::fs::read_to_string(home.path().join("web-token")).unwrap();
    format!("Bearer {}", t.trim())
}

/// Sends JSON to the API; status and answer.
fn api(home: &Home, daemon: &Daemon, method: &str, path: &str, body: &Value) -> (u16, Value) {
    let url = format!("{}{}", daemon.web, path.trim_start_matches('/'));
    let req = match method {
        "POST" => agent().post(url),
        "PATCH" => agent().patch(url),
        other => panic!("no {other}"),
    };
    let mut r = req
        .header("Authorization", &bearer(home))
        .header("Content-Type", "application/json")
        .send(body.to_string())
        .unwrap();
    let status = r.status().as_u16();
    (status, r.body_mut().read_json().unwrap_or(Value::Null))
}

fn parse_atom(body: &str) -> feed_rs::model::Feed {
    feed_rs::parser::parse(body.as_bytes())
        .unwrap_or_else(|e| panic!("not a feed a parser reads ({e}): {body}"))
}

fn titles(feed: &feed_rs::model::Feed) -> Vec<String> {
    feed.entries
        .iter()
        .map(|e| {
            e.title
                .as_ref()
                .map(|t| t.content.clone())
                .unwrap_or_default()
        })
        .collect()
}

/// A home with entries of every sort a feed must carry or leave out.
struct Entries {
    discharge: String,
    project: String,
}

fn publish_entries(home: &Home) -> Entries {
    let discharge = home
        .stdout(&[
            "publish",
            "learning",
            "--title",
            "Discharge lounge <cut> waits & delays",
            "--summary",
            "Patients left 90 minutes sooner; \"home for lunch\".",
            "--priority",
            "Discharge and safe transfers of care",
        ])
        .trim()
        .to_string();
    let project = home
        .stdout(&[
            "publish",
            "project",
            "--title",
            "Family hubs in Gateshead",
            "--summary",
            "Bringing services under one roof.",
            "--priority",
            "Children and young people's mental health",
        ])
        .trim()
        .to_string();
    home.stdout(&[
        "publish",
        "learning",
        "--title",
        "A draft nobody should see",
        "--summary",
        "Not yet.",
        "--draft",
    ]);
    home.stdout(&[
        "publish",
        "learning",
        "--title",
        "Only for our own organisation",
        "--summary",
        "Internal.",
        "--visibility",
        "organisation",
    ]);
    home.stdout(&[
        "publish",
        "contact",
        "--name",
        "Sam Contact-Person",
        "--email",
        "sam@example.org",
        "--consent",
    ]);
    Entries { discharge, project }
}

#[test]
fn the_atom_feed_lists_published_entries_and_filters_like_browse() {
    let home = Home::initialised();
    let e = publish_entries(&home);
    let daemon = Daemon::start(&home, &[]);
    let feed_url = format!("{}feed.atom", daemon.web);

    // Not signed in: refused like any page.
    let (status, _, _) = get(&feed_url, &[]);
    assert_eq!(status, 401);

    let cookie = sign_in(&home);
    let (status, ct, body) = get(&feed_url, &[("Cookie", &cookie)]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(ct, "application/atom+xml; charset=utf-8");
    let feed = parse_atom(&body);
    assert_eq!(feed.feed_type, feed_rs::model::FeedType::Atom);
    let mut got = titles(&feed);
    got.sort();
    assert_eq!(
        got,
        [
            "Discharge lounge <cut> waits & delays",
            "Family hubs in Gateshead"
        ],
        "published, community-wide learning and projects only: no draft, no organisation-only entry, no contact"
    );
    assert!(!body.contains("Sam Contact-Person") && !body.contains("sam@example.org"));

    let shown = home.json(&["show", &e.discharge, "--json"]);
    let entry = feed
        .entries
        .iter()
        .find(|x| x.id == format!("urn:convene:{}", e.discharge))
        .expect("the entry's id is urn:convene:ID");
    let updated: chrono::DateTime<chrono::Utc> =
        shown["updated"].as_str().unwrap().parse().unwrap();
    // Atom dates carry seconds; the store keeps milliseconds.
    assert_eq!(
        entry.updated.unwrap().timestamp(),
        updated.timestamp(),
        "updated is the entry's"
    );
    assert_eq!(
        entry.links[0].href,
        format!("{}e/{}", daemon.web, e.discharge)
    );
    assert_eq!(
        entry.summary.as_ref().unwrap().content,
        "Patients left 90 minutes sooner; \"home for lunch\"."
    );
    assert_eq!(
        entry.authors[0].name.as_deref(),
        Some("Gateshead Health NHS Foundation Trust")
    );
    assert!(
        entry
            .categories
            .iter()
            .any(|c| c.term == "discharge-and-safe-transfers-of-care"
                && c.label.as_deref() == Some("Discharge and safe transfers of care")),
        "a category per priority: {:?}",
        entry.categories
    );

    // Filters, as on the browse page (labels or slugs).
    let only = |query: &str| {
        let (status, _, body) = get(&format!("{feed_url}?{query}"), &[("Cookie", &cookie)]);
        assert_eq!(status, 200, "{query}: {body}");
        let feed = parse_atom(&body);
        (feed.id.clone(), titles(&feed))
    };
    let (by_priority, t) = only("priority=discharge-and-safe-transfers-of-care");
    assert_eq!(t, ["Discharge lounge <cut> waits & delays"]);
    let (by_label, _) = only("priority=Discharge+and+safe+transfers+of+care");
    assert_eq!(by_priority, by_label, "one filter, one feed id");
    assert_ne!(by_priority, feed.id, "another filter, another feed id");
    assert_eq!(only("kind=project").1, ["Family hubs in Gateshead"]);
    assert_eq!(
        only("q=lounge").1,
        ["Discharge lounge <cut> waits & delays"]
    );
    assert!(
        only("kind=project&priority=discharge-and-safe-transfers-of-care")
            .1
            .is_empty()
    );
    let (status, _, body) = get(&format!("{feed_url}?kind=contact"), &[("Cookie", &cookie)]);
    assert_eq!(status, 400);
    assert!(body.contains("never go into feeds"), "{body}");
    assert_eq!(body.trim().lines().count(), 1);
    let (status, _, _) = get(
        &format!("{feed_url}?priority=nonsense"),
        &[("Cookie", &cookie)],
    );
    assert_eq!(status, 400);

    // An edit shows as the same entry, updated.
    home.stdout(&[
        "edit",
        &e.project,
        "--set",
        "title=Family hubs across Gateshead",
    ]);
    let (_, _, body) = get(&feed_url, &[("Cookie", &cookie)]);
    let after = parse_atom(&body);
    let edited = after
        .entries
        .iter()
        .find(|x| x.id == format!("urn:convene:{}", e.project))
        .unwrap();
    assert_eq!(
        edited.title.as_ref().unwrap().content,
        "Family hubs across Gateshead"
    );
    assert_eq!(after.entries.len(), 2);
    assert_eq!(after.id, feed.id, "the feed's id is stable");

    // A retracted entry leaves the feed.
    home.stdout(&["retract", &e.project]);
    let (_, _, body) = get(&feed_url, &[("Cookie", &cookie)]);
    assert_eq!(
        titles(&parse_atom(&body)),
        ["Discharge lounge <cut> waits & delays"]
    );
}

/// `convene feed new --json …`.
fn new_link(home: &Home, args: &[&str]) -> Value {
    let mut all = vec!["feed", "new", "--json"];
    all.extend_from_slice(args);
    home.json(&all)
}

#[test]
fn a_feed_link_opens_its_own_feed_and_nothing_else_until_revoked() {
    let home = Home::initialised();
    let e = publish_entries(&home);
    let daemon = Daemon::start(&home, &[]);
    let link = new_link(
        &home,
        &[
            "--label",
            "Teams channel",
            "--priority",
            "Discharge and safe transfers of care",
        ],
    );
    let url = link["url"]
        .as_str()
        .expect("the running daemon's address")
        .to_string();
    assert!(
        url.starts_with(&format!(
            "{}feed.atom?priority=discharge-and-safe-transfers-of-care&token=",
            daemon.web
        )),
        "{url}"
    );
    let secret = url.rsplit_once("token=").unwrap().1.to_string();
    assert!(secret.len() >= 43, "256 bits in base58");

    // Without any session, the link reads its feed with its filter.
    let (status, ct, body) = get(&url, &[]);
    assert_eq!(status, 200, "{body}");
    assert!(ct.starts_with("application/atom+xml"));
    assert_eq!(
        titles(&parse_atom(&body)),
        ["Discharge lounge <cut> waits & delays"]
    );
    assert!(
        !body.contains(&secret),
        "the token is not written into the feed"
    );
    // A reader's cache-buster is fine; the bare token is the same feed.
    let (status, _, _) = get(&format!("{url}&_=12345"), &[]);
    assert_eq!(status, 200);
    let bare = format!("{}feed.atom?token={secret}", daemon.web);
    let (status, _, again) = get(&bare, &[]);
    assert_eq!(status, 200);
    assert_eq!(
        titles(&parse_atom(&again)),
        ["Discharge lounge <cut> waits & delays"]
    );

    // Another filter, another feed, the API and pages: refused.
    for other in [
        format!(
            "{}feed.atom?priority=Children+and+young+people%27s+mental+health&token={secret}",
            daemon.web
        ),
        format!("{url}&kind=project"),
        format!("{}feed.atom?q=family&token={secret}", daemon.web),
        format!("{}events.ics?token={secret}", daemon.web),
    ] {
        let (status, _, body) = get(&other, &[]);
        assert_eq!(status, 403, "{other}: {body}");
        assert!(!body.contains("Family hubs"), "{body}");
    }
    for path in [
        format!("api/entries?token={secret}"),
        format!("api/entries/{}?token={secret}", e.project),
        format!("?token={secret}"),
        format!("e/{}?token={secret}", e.discharge),
    ] {
        let (status, _, body) = get(&format!("{}{path}", daemon.web), &[]);
        assert_eq!(status, 401, "{path}: {body}");
        let (status, _, _) = get(
            &format!("{}{}", daemon.web, path.split('?').next().unwrap()),
            &[("Authorization", &format!("Bearer {secret}"))],
        );
        assert_eq!(status, 401, "{path} with the feed token as a bearer");
    }

    // A wrong token and, later, the revoked one get the same answer.
    let (wrong_status, _, wrong_body) = get(
        &format!(
            "{}feed.atom?priority=discharge-and-safe-transfers-of-care&token=not{secret}",
            daemon.web
        ),
        &[],
    );
    assert_eq!(wrong_status, 403);
    let (status, _, _) = get(&format!("{}feed.atom?token=", daemon.web), &[]);
    assert_eq!(status, 403, "an empty token is a wrong one, not a sign-in");

    let listed = home.json_lines(&["feed", "list", "--json"]);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["label"], "Teams channel");
    assert_eq!(listed[0]["scope"], "entries");
    assert_eq!(
        listed[0]["filter"],
        "priority=discharge-and-safe-transfers-of-care"
    );
    assert!(listed[0]["last_used"].is_string(), "{:?}", listed[0]);
    assert!(listed[0]["revoked"].is_null());
    let table = home.stdout(&["feed", "list"]);
    assert!(
        table.contains("Teams channel") && !table.contains(&secret),
        "{table}"
    );

    let out = home.stdout(&["feed", "revoke", &link["id"].to_string()]);
    assert!(out.starts_with("Revoked feed link"), "{out}");
    let (status, _, body) = get(&url, &[]);
    assert_eq!(
        (status, body),
        (wrong_status, wrong_body),
        "revoked = never issued"
    );
    let listed = home.json_lines(&["feed", "list", "--json"]);
    assert!(listed[0]["revoked"].is_string());
    let out = home.stdout(&["feed", "revoke", &link["id"].to_string()]);
    assert!(out.contains("revoked already"), "{out}");

    // Only the token's hash was ever written to the database.
    let _ = daemon.stop();
    for file in ["convene.db", "convene.db-wal"] {
        if let Ok(bytes) = std::fs::read(home.path().join(file)) {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{file} holds the token"
            );
        }
    }
}

#[test]
fn feed_commands_refuse_bad_input_in_one_line_and_write_nothing() {
    let home = Home::initialised();
    for (args, says) in [
        (vec!["feed", "revoke", "42"], "no feed link has the id 42"),
        (vec!["feed", "revoke", "abc"], "no feed link has the id abc"),
        (
            vec!["feed", "new", "--kind", "contact"],
            "never go into feeds",
        ),
        (vec!["feed", "new", "--priority", "nonsense"], "nonsense"),
        (
            vec!["feed", "new", "--events", "--kind", "learning"],
            "events only",
        ),
        (vec!["feed", "new", "--label", "two\nlines"], "one line"),
    ] {
        let out = home.convene(&args).output().unwrap();
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.starts_with("error: ") && err.contains(says),
            "{args:?}: {err}"
        );
    }
    assert!(
        home.json_lines(&["feed", "list", "--json"]).is_empty(),
        "nothing written"
    );

    // Without a running node: the path, and what to do.
    let out = home.stdout(&["feed", "new", "--events"]);
    assert!(out.contains("convene node start"), "{out}");
    assert!(
        out.lines().any(|l| l.starts_with("/events.ics?token=")),
        "{out}"
    );
    let link = new_link(&home, &[]);
    assert!(link["url"].is_null());
    assert!(
        link["path"]
            .as_str()
            .unwrap()
            .starts_with("/feed.atom?token=")
    );
}

/// The calendar's events, parsed by the `ical` crate.
fn parse_ics(body: &str) -> Vec<ical::parser::ical::component::IcalEvent> {
    let mut calendars = ical::IcalParser::new(std::io::BufReader::new(body.as_bytes()));
    let calendar = calendars
        .next()
        .expect("one calendar")
        .unwrap_or_else(|e| panic!("not iCalendar a parser reads ({e}): {body}"));
    assert!(calendars.next().is_none(), "exactly one calendar");
    assert!(
        calendar
            .properties
            .iter()
            .any(|p| p.name == "VERSION" && p.value.as_deref() == Some("2.0"))
    );
    calendar.events
}

fn prop<'a>(e: &'a ical::parser::ical::component::IcalEvent, name: &str) -> &'a str {
    e.properties
        .iter()
        .find(|p| p.name == name)
        .and_then(|p| p.value.as_deref())
        .unwrap_or_else(|| panic!("no {name} in {:?}", e.properties))
}

/// A TEXT value as RFC 5545 reads it (the parser leaves escapes in).
fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n' | 'N') => out.push('\n'),
                Some(other) => out.push(other),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn by_uid<'a>(
    events: &'a [ical::parser::ical::component::IcalEvent],
    id: &str,
) -> &'a ical::parser::ical::component::IcalEvent {
    events
        .iter()
        .find(|e| prop(e, "UID") == format!("{id}@convene"))
        .unwrap_or_else(|| panic!("no VEVENT with UID {id}@convene"))
}

#[test]
fn the_calendar_feed_carries_each_event_its_edits_and_cancellations() {
    let home = Home::initialised();
    let daemon = Daemon::start(&home, &[]);
    let summary = "Lived-experience voices at every table; a world café, then votes.\nBring: your top five ideas, a colleague \\ a friend. ".to_string()
        + &"Ünïcödé text long enough to be folded many times over. ".repeat(4);
    let (status, made) = api(
        &home,
        &daemon,
        "POST",
        "/api/entries/event",
        &json!({
            "title": "Boost summit, spring",
            "summary": summary,
            "starts": "2027-03-04T09:30:00Z",
            "ends": "2027-03-04T16:00:00Z",
            "time_zone": "Europe/London",
            "place": "Durham, The Glebe Centre; Room 2",
            "priorities": ["discharge-and-safe-transfers-of-care"],
        }),
    );
    assert_eq!(status, 201, "{made}");
    let summit = made["id"].as_str().unwrap().to_string();
    let (status, made) = api(
        &home,
        &daemon,
        "POST",
        "/api/entries/event",
        &json!({
            "title": "Safe Transfer of Care collaborative",
            "starts": "2027-04-01T13:00:00Z",
            "ends": "2027-04-01T14:30:00Z",
            "link": "https://example.org/join?id=42&x=1",
        }),
    );
    assert_eq!(status, 201, "{made}");
    let online = made["id"].as_str().unwrap().to_string();
    // A learning entry is not an event.
    home.publish("Not an event");

    let link = new_link(&home, &["--events", "--label", "Outlook"]);
    let url = link["url"].as_str().unwrap().to_string();
    assert!(
        url.starts_with(&format!("{}events.ics?token=", daemon.web)),
        "{url}"
    );

    let (status, ct, body) = get(&url, &[]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(ct, "text/calendar; charset=utf-8");
    // Every line ends in CRLF and is folded at 75 octets.
    assert!(body.ends_with("\r\n"));
    for line in body.split("\r\n") {
        assert!(line.len() <= 75, "{} octets: {line:?}", line.len());
        assert!(!line.contains('\n') && !line.contains('\r'), "{line:?}");
    }
    let events = parse_ics(&body);
    assert_eq!(events.len(), 2, "one VEVENT per event");
    let e = by_uid(&events, &summit);
    assert_eq!(unescape(prop(e, "SUMMARY")), "Boost summit, spring");
    assert_eq!(prop(e, "DTSTART"), "20270304T093000Z");
    assert_eq!(prop(e, "DTEND"), "20270304T160000Z");
    assert_eq!(
        unescape(prop(e, "LOCATION")),
        "Durham, The Glebe Centre; Room 2"
    );
    assert!(
        unescape(prop(e, "DESCRIPTION")).starts_with(summary.trim()),
        "{}",
        unescape(prop(e, "DESCRIPTION"))
    );
    assert_eq!(prop(e, "STATUS"), "CONFIRMED");
    let first_sequence: u32 = prop(e, "SEQUENCE").parse().unwrap();
    let o = by_uid(&events, &online);
    assert_eq!(prop(o, "URL"), "https://example.org/join?id=42&x=1");

    // An edit: the same UID, a higher SEQUENCE, the new title.
    let (status, body) = api(
        &home,
        &daemon,
        "PATCH",
        &format!("/api/entries/{summit}"),
        &json!({ "title": "Boost summit, spring (new room)" }),
    );
    assert_eq!(status, 200, "{body}");
    let (_, _, body) = get(&url, &[]);
    let events = parse_ics(&body);
    assert_eq!(events.len(), 2);
    let e = by_uid(&events, &summit);
    assert_eq!(
        unescape(prop(e, "SUMMARY")),
        "Boost summit, spring (new room)"
    );
    let second_sequence: u32 = prop(e, "SEQUENCE").parse().unwrap();
    assert!(
        second_sequence > first_sequence,
        "{first_sequence} then {second_sequence}"
    );

    // Cancelled (the field) and retracted: both stay, cancelled.
    let (status, body) = api(
        &home,
        &daemon,
        "PATCH",
        &format!("/api/entries/{summit}"),
        &json!({ "cancelled": true }),
    );
    assert_eq!(status, 200, "{body}");
    // The Atom feed says so too, with when and where.
    let cookie = sign_in(&home);
    let (_, _, body) = get(
        &format!("{}feed.atom?kind=event", daemon.web),
        &[("Cookie", &cookie)],
    );
    let atom = parse_atom(&body);
    let entry = atom
        .entries
        .iter()
        .find(|x| x.id == format!("urn:convene:{summit}"))
        .unwrap();
    assert_eq!(
        entry.title.as_ref().unwrap().content,
        "Cancelled: Boost summit, spring (new room)"
    );
    assert!(
        entry.summary.as_ref().unwrap().content.starts_with(
            "2027-03-04 09:30 (Europe/London), Durham, The Glebe Centre; Room 2. Lived-experience"
        ),
        "{:?}",
        entry.summary
    );
    home.stdout(&["retract", &online]);
    let (_, _, body) = get(&url, &[]);
    let events = parse_ics(&body);
    assert_eq!(
        events.len(),
        2,
        "cancelled events stay so calendars remove them"
    );
    for id in [&summit, &online] {
        assert_eq!(prop(by_uid(&events, id), "STATUS"), "CANCELLED", "{id}");
    }
    assert!(
        prop(by_uid(&events, &summit), "SEQUENCE")
            .parse::<u32>()
            .unwrap()
            > second_sequence
    );

    // A signed-in browser reads it too, and may filter.
    let (status, _, body) = get(
        &format!(
            "{}events.ics?priority=discharge-and-safe-transfers-of-care",
            daemon.web
        ),
        &[("Cookie", &cookie)],
    );
    assert_eq!(status, 200);
    let events = parse_ics(&body);
    assert_eq!(events.len(), 1);
    assert_eq!(prop(&events[0], "UID"), format!("{summit}@convene"));

    // An erased event is gone from the feed altogether.
    let (status, made) = api(
        &home,
        &daemon,
        "POST",
        "/api/entries/event",
        &json!({
            "title": "A walk that was never meant to be shared",
            "starts": "2027-05-01T10:00:00Z",
            "ends": "2027-05-01T11:00:00Z",
        }),
    );
    assert_eq!(status, 201, "{made}");
    let erased = made["id"].as_str().unwrap().to_string();
    let (_, _, body) = get(&url, &[]);
    assert_eq!(parse_ics(&body).len(), 3);
    home.stdout(&["retract", &erased, "--erase"]);
    let (_, _, body) = get(&url, &[]);
    let events = parse_ics(&body);
    assert_eq!(events.len(), 2);
    assert!(!body.contains(&erased) && !body.contains("never meant"));

    // Revoked: refused.
    home.stdout(&["feed", "revoke", &link["id"].to_string()]);
    let (status, _, _) = get(&url, &[]);
    assert_eq!(status, 403);
}
