//! Questions and replies, events and ideas in the web app, against a real
//! `convene node start` over HTTP on loopback, signed in as a browser is.

mod support;

use support::agent;

use serde_json::Value;
use support::{Daemon, Home, port_of};

const ORG: &str = "Gateshead Health NHS Foundation Trust";

/// A browser signed in to one node's web app.
struct Browser {
    base: String,
    origin: String,
    cookie: String,
}

impl Browser {
    fn sign_in(home: &Home, daemon: &Daemon) -> Self {
        let url = home.stdout(&["open", "--print"]).trim().to_string();
        let r = agent().get(&url).call().unwrap();
        assert_eq!(r.status().as_u16(), 303, "the link signs in");
        let cookie = r
            .headers()
            .get("set-cookie")
            .expect("a session cookie")
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string();
        assert!(cookie.starts_with(&format!("convene_session_{}=", port_of(&daemon.web))));
        Self {
            base: daemon.web.trim_end_matches('/').to_string(),
            origin: daemon.web.trim_end_matches('/').to_string(),
            cookie,
        }
    }

    fn get(&self, path: &str) -> (u16, String) {
        let mut r = agent()
            .get(format!("{}{path}", self.base))
            .header("Cookie", &self.cookie)
            .call()
            .unwrap();
        (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
    }

    /// Posts a form as this server's own page would; status, `Location`
    /// and body.
    fn post(&self, path: &str, form: &[(&str, &str)]) -> (u16, String, String) {
        post(
            &format!("{}{path}", self.base),
            Some(&self.cookie),
            Some(&self.origin),
            form,
        )
    }
}

fn post(
    url: &str,
    cookie: Option<&str>,
    origin: Option<&str>,
    form: &[(&str, &str)],
) -> (u16, String, String) {
    let mut req = agent().post(url);
    if let Some(c) = cookie {
        req = req.header("Cookie", c);
    }
    if let Some(o) = origin {
        req = req.header("Origin", o);
    }
    let mut r = req.send_form(form.iter().copied()).unwrap();
    let location = r
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_string())
        .unwrap_or_default();
    (
        r.status().as_u16(),
        location,
        r.body_mut().read_to_string().unwrap(),
    )
}

/// The part of `html` from the element with `id` to the end of `html`.
fn from_id<'a>(html: &'a str, id: &str) -> &'a str {
    let at = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no element {id} in {html}"));
    &html[at..]
}

fn thread(home: &Home, id: &str) -> Value {
    home.json(&["show", id, "--thread", "--json"])["thread"].clone()
}

fn now_plus(secs: i64) -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    convene_model::Timestamp(ms + secs * 1000).to_string()
}

#[test]
fn questions_and_replies_are_asked_on_the_entry_page_and_shown_as_a_thread() {
    let home = Home::initialised();
    let entry = home.publish("Text reminders cut missed appointments");
    let daemon = Daemon::start(&home, &[]);
    let b = Browser::sign_in(&home, &daemon);

    let (status, html) = b.get(&format!("/e/{entry}"));
    assert_eq!(status, 200);
    assert!(html.contains("No questions yet."), "{html}");
    assert!(html.contains(&format!(r#"action="/e/{entry}/ask""#)));

    // An empty question: the message beside the field, nothing written.
    let (status, _, html) = b.post(&format!("/e/{entry}/ask"), &[("text", "  \r\n ")]);
    assert_eq!(status, 422);
    let field = from_id(&html, "ask-text-error");
    assert!(
        field.contains("Write your question before sending it."),
        "{html}"
    );
    assert!(html.contains(r#"aria-invalid="true""#));
    // Too long: refused the same way, with what was typed kept.
    let long = "x".repeat(10_001);
    let (status, _, html) = b.post(&format!("/e/{entry}/ask"), &[("text", &long)]);
    assert_eq!(status, 422);
    assert!(html.contains("the most is 10000"), "{html}");
    assert!(html.contains(&long), "what was typed is kept");
    assert_eq!(thread(&home, &entry)["questions"], serde_json::json!([]));

    let (status, location, _) = b.post(
        &format!("/e/{entry}/ask"),
        &[(
            "text",
            "How did you recruit patients?\r\n\r\n<script>alert(1)</script>",
        )],
    );
    assert_eq!(status, 303);
    let (path, anchor) = location.split_once('#').expect("an anchor");
    assert_eq!(path, format!("/e/{entry}"));
    let question = anchor.strip_prefix("q-").expect("#q-ID").to_string();

    let (status, location, _) = b.post(
        &format!("/e/{question}/reply"),
        &[("text", "Through the practice's text service.")],
    );
    assert_eq!(status, 303);
    let reply = location
        .split_once("#q-")
        .map(|(p, r)| {
            assert_eq!(p, format!("/e/{entry}"), "back to the entry");
            r.to_string()
        })
        .expect("#q-ID");

    let (_, html) = b.get(&format!("/e/{entry}"));
    let q = from_id(&html, &format!("q-{question}"));
    assert!(q.contains("How did you recruit patients?"), "{html}");
    assert!(q.contains(ORG), "the asking organisation is named");
    // The reply sits inside the question's item, after it.
    let r = from_id(q, &format!("q-{reply}"));
    assert!(r.contains("Through the practice"), "{html}");
    assert!(q.find("class=\"replies\"").unwrap() < q.find(&format!("q-{reply}")).unwrap());
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;") && !html.contains("<script>alert"),
        "a message is text, never markup"
    );
    assert!(q.contains(&format!(r#"action="/e/{question}/reply""#)));

    // The CLI shows the same thread.
    let t = thread(&home, &entry);
    assert_eq!(t["questions"].as_array().unwrap().len(), 1, "{t}");
    assert_eq!(t["questions"][0]["id"], question.as_str());
    assert_eq!(t["questions"][0]["replies"][0]["id"], reply.as_str());
    let text = home.stdout(&["show", &entry, "--thread"]);
    assert!(text.contains("How did you recruit patients?"), "{text}");
    assert!(
        text.contains("Through the practice's text service."),
        "{text}"
    );

    // A message's own page links to what it is about.
    let (status, html) = b.get(&format!("/e/{reply}"));
    assert_eq!(status, 200);
    assert!(html.contains("A reply in the conversation about"), "{html}");
    assert!(html.contains(&format!(r#"href="/e/{entry}""#)));
    assert!(html.contains(&format!(r#"href="/e/{question}""#)), "{html}");

    // An empty reply comes back under its question, nothing written.
    let (status, _, html) = b.post(&format!("/e/{question}/reply"), &[("text", "")]);
    assert_eq!(status, 422);
    let under = from_id(&html, &format!("q-{question}"));
    assert!(
        from_id(under, &format!("reply-{question}-error")).contains("Write your reply"),
        "{html}"
    );
    let t = thread(&home, &entry);
    assert_eq!(t["questions"][0]["replies"].as_array().unwrap().len(), 1);

    // Open questions: those on our entries listed first.
    let (status, html) = b.get("/questions");
    assert_eq!(status, 200);
    let ours = from_id(&html, "on-ours");
    assert!(
        ours.find("How did you recruit patients?").unwrap()
            < ours.find("Other open questions").unwrap(),
        "{html}"
    );
}

#[test]
fn an_event_made_with_the_form_is_listed_in_its_time_zone_and_members_say_they_are_going() {
    let home = Home::initialised();
    let daemon = Daemon::start(&home, &[]);
    let b = Browser::sign_in(&home, &daemon);

    let (status, html) = b.get("/new/event");
    assert_eq!(status, 200);
    assert!(html.contains(r#"type="datetime-local""#), "{html}");
    assert!(html.contains(r#"value="Europe/London""#), "{html}");

    // Problems come back beside their fields; nothing is written.
    let bad = [
        ("title", "Summit"),
        ("starts", "2030-07-01T12:00"),
        ("ends", "2030-07-01T09:00"),
        ("time_zone", "Europe/London"),
        ("link", "javascript:alert(1)"),
        ("capacity", "none"),
        ("visibility", "community"),
    ];
    let (status, _, html) = b.post("/new/event", &bad);
    assert_eq!(status, 422);
    assert!(
        from_id(&html, "f-ends-error").contains("must be after the start"),
        "{html}"
    );
    assert!(
        from_id(&html, "f-link-error").contains("https://"),
        "{html}"
    );
    assert!(from_id(&html, "f-capacity-error").contains("whole number"));
    assert!(
        html.contains(r#"value="2030-07-01T12:00""#),
        "typed times kept"
    );
    let (_, html) = b.get("/events");
    assert!(html.contains("No events to come."), "{html}");

    let form = [
        ("title", "Discharge summit"),
        ("summary", "A day on safe transfers of care."),
        ("starts", "2030-07-01T09:30"),
        ("ends", "2030-07-01T16:00"),
        ("time_zone", "Europe/London"),
        ("place", "Sage Gateshead"),
        ("link", "https://example.org/summit"),
        ("organiser", "The improvement collaborative"),
        ("capacity", "2"),
        ("visibility", "community"),
    ];
    let (status, location, _) = b.post("/new/event", &form);
    assert_eq!(status, 303, "published");
    let event = location.strip_prefix("/e/").unwrap().to_string();
    // 09:30 in London in July is 08:30 UTC.
    let shown = home.json(&["show", &event, "--json"]);
    assert_eq!(shown["starts"], "2030-07-01T08:30:00.000Z", "{shown}");

    // One in another zone: shown in its own local time.
    let (status, _, _) = b.post(
        "/new/event",
        &[
            ("title", "Transatlantic webinar"),
            ("starts", "2030-06-01T10:00"),
            ("ends", "2030-06-01T11:00"),
            ("time_zone", "America/New_York"),
            ("link", "https://example.org/webinar"),
            ("visibility", "community"),
        ],
    );
    assert_eq!(status, 303);

    let (status, html) = b.get("/events");
    assert_eq!(status, 200);
    assert!(html.contains("href=\"/events.ics\""), "{html}");
    let (status, ics) = b.get("/events.ics");
    assert_eq!(status, 200);
    assert!(ics.contains("SUMMARY:Transatlantic webinar"), "{ics}");
    assert!(
        html.contains("2030-07-01 09:30 to 16:00 (Europe/London)"),
        "{html}"
    );
    assert!(
        html.contains("2030-06-01 10:00 to 11:00 (America/New_York)"),
        "{html}"
    );
    assert!(
        html.find("Transatlantic webinar").unwrap() < html.find("Discharge summit").unwrap(),
        "soonest first"
    );
    assert!(html.contains("0 going of 2 places"), "{html}");

    let (status, html) = b.get(&format!("/e/{event}"));
    assert_eq!(status, 200);
    assert!(html.contains("Sage Gateshead"));
    assert!(
        html.contains(r#"href="https://example.org/summit" rel="noopener noreferrer""#),
        "{html}"
    );
    assert!(html.contains("We&#39;re going") || html.contains("We're going"));

    let (status, location, _) = b.post(&format!("/e/{event}/respond"), &[("answer", "going")]);
    assert_eq!(status, 303);
    assert_eq!(location, format!("/e/{event}#going"));
    let (_, html) = b.get(&format!("/e/{event}"));
    let going = from_id(&html, "going");
    assert!(going.contains(ORG), "{html}");
    assert!(going.contains("Your organisation is going."));
    assert!(going.contains("Not going"));
    let (_, html) = b.get("/events");
    assert!(html.contains("1 going of 2 places"), "{html}");
    let attendance = home.json(&["show", &event, "--json"])["attendance"].clone();
    assert_eq!(
        attendance["going"].as_array().unwrap().len(),
        1,
        "{attendance}"
    );

    // And back out.
    let (status, _, _) = b.post(&format!("/e/{event}/respond"), &[("answer", "not-going")]);
    assert_eq!(status, 303);
    let (_, html) = b.get(&format!("/e/{event}"));
    assert!(html.contains("No organisation has said it is going yet."));

    // An answer that is not an event's is refused with a message.
    let (status, _, html) = b.post(&format!("/e/{event}/respond"), &[("answer", "support")]);
    assert_eq!(status, 409);
    assert!(html.contains("going or not-going"), "{html}");
}

#[test]
fn ideas_rank_by_the_support_given_on_their_pages_and_closed_rounds_say_so() {
    let home = Home::initialised();
    let older = home.stdout(&[
        "publish",
        "idea",
        "--title",
        "A shared discharge checklist",
        "--summary",
        "One checklist for every ward.",
    ]);
    let older = older.trim().to_string();
    let round = home.stdout(&[
        "publish",
        "round",
        "--title",
        "Summit top five",
        "--opens",
        &now_plus(-7200),
        "--closes",
        &now_plus(-3600),
        "--picks",
        "5",
    ]);
    let round = round.trim().to_string();
    let daemon = Daemon::start(&home, &[]);
    let b = Browser::sign_in(&home, &daemon);

    // A new idea through the form, offered the round held here.
    let (status, html) = b.get("/new/idea");
    assert_eq!(status, 200);
    assert!(
        html.contains(&format!(
            r#"<option value="{round}">Summit top five</option>"#
        )),
        "{html}"
    );
    let (status, _, html) = b.post("/new/idea", &[("title", "Carers' passports")]);
    assert_eq!(status, 422, "a summary is required");
    assert!(
        from_id(&html, "f-summary-error").contains("required"),
        "{html}"
    );
    let (status, location, _) = b.post(
        "/new/idea",
        &[
            ("title", "Carers' passports"),
            ("summary", "Recognise carers on every ward."),
            ("visibility", "community"),
        ],
    );
    assert_eq!(status, 303);
    let newer = location.strip_prefix("/e/").unwrap().to_string();
    let (status, location, _) = b.post(
        "/new/idea",
        &[
            ("title", "Late vote idea"),
            ("summary", "Put to a round that has closed."),
            ("round", &round),
            ("visibility", "community"),
        ],
    );
    assert_eq!(status, 303);
    let in_round = location.strip_prefix("/e/").unwrap().to_string();

    // With no support, the older idea ranks first.
    let (_, html) = b.get("/ideas");
    assert!(
        html.find("A shared discharge checklist").unwrap()
            < html
                .find("Carers&#39; passports")
                .or_else(|| html.find("Carers' passports"))
                .unwrap(),
        "{html}"
    );

    let (status, location, _) = b.post(&format!("/e/{newer}/respond"), &[("answer", "support")]);
    assert_eq!(status, 303);
    assert_eq!(location, format!("/e/{newer}#support"));
    let (_, html) = b.get(&format!("/e/{newer}"));
    let support = from_id(&html, "support");
    assert!(
        support.contains("<strong>1</strong> organisation supports this idea"),
        "{html}"
    );
    assert!(support.contains("Withdraw support"));
    assert!(support.contains(ORG));

    let (_, html) = b.get("/ideas");
    let table = from_id(&html, "ranking");
    let first = table.find("<td>1</td>").unwrap();
    let row = &table[first..first + table[first..].find("</tr>").unwrap()];
    assert!(
        row.contains(&format!("/e/{newer}")),
        "supported idea first: {html}"
    );
    assert!(row.contains("<td>1</td><td><a"), "{row}");
    let ranked = home.json(&["ideas", "--json"]);
    assert_eq!(ranked["ideas"][0]["id"], newer.as_str(), "{ranked}");
    assert_ne!(ranked["ideas"][0]["id"], older.as_str());

    // A vote in a closed round: a clear message on the page, nothing
    // counted.
    let (status, _, html) = b.post(&format!("/e/{in_round}/respond"), &[("answer", "support")]);
    assert_eq!(status, 409);
    let error = from_id(&html, "answer-error");
    assert!(error.contains("is not open: it closed"), "{html}");
    let (status, html) = b.get(&format!("/ideas?round={round}"));
    assert_eq!(status, 200);
    assert!(html.contains("Voting closed"), "{html}");
    assert!(html.contains("Late vote idea"));
    let r = home.json(&["ideas", "--round", &round, "--json"]);
    assert_eq!(r["ideas"][0]["support"], 0, "{r}");

    // A round that does not exist is a clear error.
    let (status, html) = b.get("/ideas?round=nonsense");
    assert!(status == 404 || status == 400, "{status}: {html}");
}

#[test]
fn every_post_needs_a_session_from_this_server() {
    let home = Home::initialised();
    let entry = home.publish("Falls prevention in care homes");
    let idea = home
        .stdout(&[
            "publish",
            "idea",
            "--title",
            "Falls champions",
            "--summary",
            "One per home.",
        ])
        .trim()
        .to_string();
    let daemon = Daemon::start(&home, &[]);
    let b = Browser::sign_in(&home, &daemon);
    let base = b.base.clone();
    let (_, location, _) = b.post(&format!("/e/{entry}/ask"), &[("text", "Which homes?")]);
    let question = location.split_once("#q-").unwrap().1.to_string();
    let before = home.ids();

    let posts: Vec<(String, Vec<(&str, &str)>)> = vec![
        (format!("/e/{entry}/ask"), vec![("text", "Anyone there?")]),
        (format!("/e/{question}/reply"), vec![("text", "Yes.")]),
        (format!("/e/{idea}/respond"), vec![("answer", "support")]),
        (
            "/new/event".into(),
            vec![
                ("title", "Forged"),
                ("starts", "2030-01-01T10:00"),
                ("ends", "2030-01-01T11:00"),
            ],
        ),
        (
            "/new/idea".into(),
            vec![("title", "Forged"), ("summary", "Forged.")],
        ),
    ];
    for (path, form) in &posts {
        let url = format!("{base}{path}");
        let (status, _, html) = post(&url, None, Some(&b.origin), form);
        assert_eq!(status, 401, "{path} without a session: {html}");
        let stale = format!("convene_session_{}=stale", port_of(&base));
        let (status, _, _) = post(&url, Some(&stale), Some(&b.origin), form);
        assert_eq!(status, 401, "{path} with a made-up session");
        let (status, _, html) = post(&url, Some(&b.cookie), Some("http://evil.example"), form);
        assert_eq!(status, 403, "{path} from another site: {html}");
    }
    assert_eq!(home.ids(), before, "nothing was written");
}

fn ok(home: &Home, args: &[&str]) {
    let out = home.convene(args).output().unwrap();
    assert!(
        out.status.success(),
        "convene {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_question_from_another_member_is_answered_on_the_owners_page() {
    let trust = Home::initialised();
    let council = Home::for_org("Gateshead Council", "council");
    ok(&trust, &["community", "create", "Learning community"]);
    let daemon = Daemon::start(&trust, &[]);
    ok(
        &council,
        &["join", trust.stdout(&["invite", "--expires", "1d"]).trim()],
    );
    let entry = trust.publish("Handover delays: what the fast sites did");
    ok(&council, &["sync", "--once", "--peer", &daemon.addr]);
    let question = council
        .stdout(&[
            "ask",
            &entry,
            "--text",
            "Which sites took part in the peer visits?",
        ])
        .trim()
        .to_string();
    ok(&council, &["sync", "--once", "--peer", &daemon.addr]);

    let b = Browser::sign_in(&trust, &daemon);
    // The owner sees it first among open questions, and open on the page.
    let (_, html) = b.get("/questions");
    let ours = from_id(&html, "on-ours");
    let at = ours
        .find("Which sites took part in the peer visits?")
        .expect("listed");
    assert!(at < ours.find("Other open questions").unwrap(), "{html}");
    assert!(ours.contains("asked by Gateshead Council"), "{html}");
    let (_, html) = b.get(&format!("/e/{entry}"));
    let q = from_id(&html, &format!("q-{question}"));
    assert!(
        q.contains("Gateshead Council") && q.contains(r#"class="badge open""#),
        "{html}"
    );
    assert!(html.contains("(1, 1 open)"), "{html}");

    let (status, location, _) = b.post(
        &format!("/e/{question}/reply"),
        &[(
            "text",
            "Sunderland and Gateshead, with the ambulance service.",
        )],
    );
    assert_eq!(status, 303);
    assert!(
        location.starts_with(&format!("/e/{entry}#q-")),
        "{location}"
    );
    let (_, html) = b.get(&format!("/e/{entry}"));
    assert!(html.contains("(1)"), "no longer open: {html}");
    assert!(from_id(&html, &format!("q-{question}")).contains("answered"));
    let (_, html) = b.get("/questions");
    assert!(
        !html.contains("Which sites took part"),
        "answered questions leave the list: {html}"
    );

    // The asker's node gets the answer.
    ok(&council, &["sync", "--once", "--peer", &daemon.addr]);
    let t = thread(&council, &entry);
    assert_eq!(t["questions"][0]["open"], false, "{t}");
    assert_eq!(t["questions"][0]["replies"][0]["owner_name"], ORG, "{t}");
}
