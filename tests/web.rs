//! The local web app and JSON API, against real `convene node start` and
//! `convene demo` processes over HTTP on loopback.

mod support;

use support::agent;

use std::io::{Read, Write};
use std::time::Duration;

use serde_json::{Value, json};
use support::{Daemon, DemoRun, Home, port_of, wait_for};

fn token(home: &std::path::Path) -> String {
    std::fs::read_to_string(home.join("web-token"))
        .expect("the daemon wrote its web token")
        .trim()
        .to_string()
}

/// An API client holding a node's token.
struct Api {
    agent: ureq::Agent,
    base: String,
    auth: String,
}

impl Api {
    fn new(base: &str, home: &std::path::Path) -> Self {
        Self {
            agent: agent(),
            base: base.trim_end_matches('/').to_string(),
            auth: format!("Bearer {}", token(home)),
        }
    }

    fn get(&self, path: &str) -> (u16, Value) {
        let mut r = self
            .agent
            .get(format!("{}{path}", self.base))
            .header("Authorization", &self.auth)
            .call()
            .expect("the web app answers");
        let status = r.status().as_u16();
        (status, r.body_mut().read_json().unwrap_or(Value::Null))
    }

    fn send(&self, method: &str, path: &str, body: &str) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        let req = match method {
            "POST" => self.agent.post(url),
            "PATCH" => self.agent.patch(url),
            other => panic!("no {other}"),
        };
        let mut r = req
            .header("Authorization", &self.auth)
            .header("Content-Type", "application/json")
            .send(body)
            .expect("the web app answers");
        let status = r.status().as_u16();
        (status, r.body_mut().read_json().unwrap_or(Value::Null))
    }
}

fn project() -> Value {
    json!({
        "title": "Reducing falls at home with community calls",
        "summary": "Weekly calls to people at risk of falling.",
        "aim": "10 per cent fewer falls-related admissions in a year",
        "priorities": ["Working with communities to shift the balance from treatment to prevention"],
        "measures": [{
            "name": "Falls-related admissions",
            "measure_type": "outcome",
            "unit": "per month",
            "data": [
                {"date": "2026-01-31", "value": 41.0},
                {"date": "2026-02-28", "value": 44.0},
                {"date": "2026-03-31", "value": 39.0},
                {"date": "2026-04-30", "value": 36.0},
                {"date": "2026-05-31", "value": 35.0},
                {"date": "2026-06-30", "value": 33.0}
            ]
        }]
    })
}

#[test]
fn the_api_needs_the_token_and_publishes_edits_and_finds_entries() {
    let home = Home::initialised();
    let daemon = Daemon::start(&home, &[]);
    let api = Api::new(&daemon.web, home.path());

    // Without the token: refused, with a one-line JSON error.
    let mut r = agent()
        .get(format!("{}api/status", daemon.web))
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let err: Value = r.body_mut().read_json().unwrap();
    assert_eq!(err, json!({ "error": "not signed in" }), "only that");
    let mut r = agent()
        .get(format!("{}api/status", daemon.web))
        .header("Authorization", "Bearer not-the-token")
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let _ = r.body_mut().read_to_string();

    let (status, s) = api.get("/api/status");
    assert_eq!(status, 200);
    assert_eq!(s["node"], daemon.node_id);
    assert_eq!(s["running"], true);

    // Publish a project with a measure; read it back with its history.
    let (status, created) = api.send("POST", "/api/entries/project", &project().to_string());
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    let (status, e) = api.get(&format!("/api/entries/{id}?history=true"));
    assert_eq!(status, 200);
    assert_eq!(e["title"], "Reducing falls at home with community calls");
    assert_eq!(
        e["priorities"][0],
        "working-with-communities-to-shift-the-balance-from-treatment-to-prevention"
    );
    assert_eq!(e["measures"][0]["data"].as_array().unwrap().len(), 6);
    assert_eq!(e["history"].as_array().unwrap().len(), 1);

    // Add a value, set a field; the CLI sees the same entry.
    let (status, _) = api.send(
        "POST",
        &format!("/api/entries/{id}/data"),
        r#"{"measure": "Falls-related admissions", "date": "2026-07-31", "value": 31}"#,
    );
    assert_eq!(status, 200);
    let (status, patched) = api.send(
        "PATCH",
        &format!("/api/entries/{id}"),
        r#"{"aim": "15 per cent fewer falls-related admissions in a year", "tags": ["falls", "prevention"]}"#,
    );
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["changed"], true);
    let shown = home.json(&["show", &id, "--json"]);
    assert_eq!(
        shown["aim"],
        "15 per cent fewer falls-related admissions in a year"
    );
    assert_eq!(shown["measures"][0]["data"].as_array().unwrap().len(), 7);
    assert_eq!(shown["tags"], json!(["falls", "prevention"]));

    // Bad input: a clear error, nothing changed.
    let (status, err) = api.send(
        "PATCH",
        &format!("/api/entries/{id}"),
        r#"{"colour": "red"}"#,
    );
    assert_eq!(status, 400);
    assert!(err["error"].as_str().unwrap().contains("colour"), "{err}");
    let (status, err) = api.send("POST", "/api/entries/project", "{not json");
    assert_eq!(status, 400);
    assert!(err["error"].as_str().unwrap().contains("not JSON"), "{err}");
    let (status, err) = api.send("POST", "/api/entries/project", r#"{"summary": "no title"}"#);
    assert_eq!(status, 422, "{err}");
    assert!(err["error"].as_str().unwrap().contains("title"), "{err}");
    let (status, _) = api.get("/api/entries/zzzzzzzz");
    assert_eq!(status, 404);

    // Search and filters.
    let (_, hits) = api.get("/api/entries?q=falls%20calls");
    assert_eq!(hits[0]["id"], id.as_str(), "{hits}");
    assert!(hits[0]["snippet"].as_str().unwrap().contains('['));
    let (status, err) = api.get("/api/entries?priority=nonsense");
    assert_eq!(status, 400);
    assert!(err["error"].as_str().unwrap().contains("unknown"), "{err}");
    let (_, rows) = api.get(
        "/api/entries?kind=project&priority=working-with-communities-to-shift-the-balance-from-treatment-to-prevention&sector=nhs-trust&place=",
    );
    assert_eq!(rows.as_array().unwrap().len(), 1, "{rows}");
    let (_, rows) = api.get("/api/entries?sector=council");
    assert!(rows.as_array().unwrap().is_empty(), "{rows}");

    // A request naming another host (DNS rebinding) is refused.
    let port = daemon.web.trim_end_matches('/').rsplit(':').next().unwrap();
    let mut s = std::net::TcpStream::connect(format!("127.0.0.1:{port}")).unwrap();
    write!(
        s,
        "GET /api/status HTTP/1.1\r\nHost: attacker.example:{port}\r\nAuthorization: {}\r\nConnection: close\r\n\r\n",
        api.auth
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 421"), "{answer}");
}

/// A fresh one-time sign-in address: `convene open --print`.
fn sign_in_link(home: &Home, base: &str) -> String {
    let url = home.stdout(&["open", "--print"]).trim().to_string();
    assert!(url.starts_with(base), "{url}");
    url
}

/// Follows a sign-in link as a browser would; the whole `Set-Cookie`.
fn follow_sign_in(url: &str) -> String {
    let r = agent().get(url).call().unwrap();
    assert_eq!(r.status().as_u16(), 303, "the link signs in");
    r.headers()
        .get("set-cookie")
        .expect("a session cookie")
        .to_str()
        .unwrap()
        .to_string()
}

/// Signs in as a browser would: `convene open --print`, then the ticket.
/// Returns the cookie as a browser sends it back (`name=value`).
fn sign_in(home: &Home, base: &str) -> String {
    let url = sign_in_link(home, base);
    let cookie = follow_sign_in(&url);
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    // A ticket works once.
    let again = agent().get(&url).call().unwrap();
    assert_eq!(again.status().as_u16(), 401);
    cookie.split(';').next().unwrap().to_string()
}

fn page(cookie: &str, url: &str) -> (u16, String) {
    let mut r = agent().get(url).header("Cookie", cookie).call().unwrap();
    (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
}

fn post_form(
    cookie: &str,
    url: &str,
    origin: Option<&str>,
    form: &[(&str, &str)],
) -> (u16, String, String) {
    let mut req = agent().post(url).header("Cookie", cookie);
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

#[test]
fn the_pages_publish_through_forms_and_draw_run_charts() {
    let home = Home::initialised();
    let daemon = Daemon::start(&home, &[]);
    let base = daemon.web.clone();
    let (status, _) = page("convene_session=wrong", &base);
    assert_eq!(status, 401);
    let (status, html) = page(&format!("convene_session_{}=wrong", port_of(&base)), &base);
    assert_eq!(status, 401);
    assert!(html.contains("Not signed in"), "{html}");
    assert!(
        !html.contains("Gateshead") && !html.contains("Community"),
        "a stranger learns nothing about the node: {html}"
    );
    let cookie = sign_in(&home, &base);
    let origin = base.trim_end_matches('/');

    let r = agent().get(&base).header("Cookie", &cookie).call().unwrap();
    let csp = r
        .headers()
        .get("content-security-policy")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(r.headers().get("cache-control").unwrap(), "no-store");
    let (status, html) = page(&cookie, &format!("{base}new/project"));
    assert_eq!(status, 200);
    assert!(html.contains(r#"<label for="f-title">"#), "labelled fields");

    let form = [
        ("title", "Waiting well in family hubs"),
        ("summary", "Support while a child waits for an assessment."),
        ("priorities", "children-and-young-peoples-mental-health"),
        ("methods", "co-production"),
        ("methods", "model-for-improvement"),
        ("visibility", "community"),
        ("measure_name", "Families offered a session"),
        ("measure_type", "process"),
        ("measure_unit", "per cent"),
        ("measure_target", "90"),
        (
            "measure_data",
            "2026-01-05, 20\n2026-01-12, 25\n2026-01-19, 22\n2026-01-26, 40\n2026-02-02, 45",
        ),
    ];
    // From another site: refused, nothing published.
    let before = home.ids().len();
    let (status, _, _) = post_form(
        &cookie,
        &format!("{base}new/project"),
        Some("http://evil.example"),
        &form,
    );
    assert_eq!(status, 403);
    assert_eq!(home.ids().len(), before);
    // Nor from a page on another port of this computer (same site to a
    // browser, so a SameSite=Strict cookie goes with it).
    let mut r = agent()
        .post(format!("{base}new/project"))
        .header("Cookie", &cookie)
        .header("Sec-Fetch-Site", "same-site")
        .send_form(form.iter().copied())
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let _ = r.body_mut().read_to_string();
    assert_eq!(home.ids().len(), before);

    let (status, location, _) =
        post_form(&cookie, &format!("{base}new/project"), Some(origin), &form);
    assert_eq!(status, 303);
    let id = location
        .strip_prefix("/e/")
        .expect("redirect to the entry")
        .to_string();
    let shown = home.json(&["show", &id, "--json"]);
    assert_eq!(
        shown["methods"],
        json!(["co-production", "model-for-improvement"])
    );
    assert_eq!(shown["measures"][0]["target"], 90.0);

    let (_, html) = page(&cookie, &format!("{base}e/{id}"));
    assert!(
        html.contains(r#"<svg class="chart run-chart""#),
        "a run chart"
    );
    assert_eq!(html.matches("<circle").count(), 5);
    assert!(html.contains("Median 25"), "the median line is labelled");
    assert!(html.contains("Target 90"));

    // Add a value through the form under the chart.
    let (status, _, _) = post_form(
        &cookie,
        &format!("{base}e/{id}/data"),
        Some(origin),
        &[
            ("measure", "Families offered a session"),
            ("date", "2026-02-09"),
            ("value", "51"),
        ],
    );
    assert_eq!(status, 303);
    let (_, html) = page(&cookie, &format!("{base}e/{id}"));
    assert_eq!(html.matches("<circle").count(), 6);
    let (status, _, body) = post_form(
        &cookie,
        &format!("{base}e/{id}/data"),
        Some(origin),
        &[
            ("measure", "Families offered a session"),
            ("date", "2026-02-16"),
            ("value", "lots"),
        ],
    );
    assert_eq!(status, 422);
    assert!(body.contains("not a number"));

    // Edit through the form: only the changed field is written.
    let (_, html) = page(&cookie, &format!("{base}e/{id}/edit"));
    assert!(html.contains("Waiting well in family hubs"));
    let mut edit: Vec<(&str, &str)> = form[..6].to_vec();
    edit[0] = ("title", "Waiting well: family hubs");
    let (status, _, _) = post_form(&cookie, &format!("{base}e/{id}/edit"), Some(origin), &edit);
    assert_eq!(status, 303);
    let shown = home.json(&["show", &id, "--json", "--history"]);
    assert_eq!(shown["title"], "Waiting well: family hubs");
    assert_eq!(shown["measures"][0]["data"].as_array().unwrap().len(), 6);
    assert_eq!(shown["history"].as_array().unwrap().len(), 3);

    // A contact needs consent: the form comes back with what was typed.
    let before = home.ids().len();
    let (status, _, body) = post_form(
        &cookie,
        &format!("{base}new/contact"),
        Some(origin),
        &[("name", "Sam Okafor"), ("email", "sam@example.org")],
    );
    assert_eq!(status, 422);
    assert!(body.contains("consent") && body.contains("Sam Okafor"));
    assert_eq!(home.ids().len(), before);
    let (status, _, _) = post_form(
        &cookie,
        &format!("{base}new/contact"),
        Some(origin),
        &[
            ("name", "Sam Okafor"),
            ("email", "sam@example.org"),
            ("consent", "on"),
        ],
    );
    assert_eq!(status, 303);

    // Browse: search and filters.
    let (_, html) = page(&cookie, &format!("{base}?q=family+hubs"));
    assert!(html.contains("<mark>"), "matched words are marked");
    assert!(html.contains("Waiting well: family hubs"));
    let (_, html) = page(&cookie, &format!("{base}?kind=contact"));
    assert!(html.contains("Sam Okafor") && !html.contains("Waiting well"));
    let (_, html) = page(&cookie, &format!("{base}community"));
    assert!(html.contains("Peers"));
    assert!(
        home.stdout(&["status"])
            .contains(&format!("web app       {base}"))
    );

    // Once the daemon stops, `open` says so instead of a dead address.
    daemon.stop();
    let out = home.convene(&["open", "--print"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not running") && err.lines().count() == 1,
        "{err}"
    );
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0.0)
}

#[test]
fn metrics_count_a_sync() {
    let a = Home::for_org("Gateshead Council", "council");
    let b = Home::for_org("Bensham Community Connectors", "vcse");
    let id = a.publish("Community calls");
    let da = Daemon::start(&a, &[]);
    let db = Daemon::start(&b, &[&da.addr]);
    wait_for(Duration::from_secs(20), "the entry to reach b", || {
        b.ids().contains(&id).then_some(())
    });
    let text = wait_for(Duration::from_secs(20), "a complete session", || {
        let mut r = agent().get(format!("{}metrics", db.web)).call().ok()?;
        let text = r.body_mut().read_to_string().ok()?;
        (metric(&text, "convene_sync_sessions_total{outcome=\"complete\"}") >= 1.0).then_some(text)
    });
    assert_eq!(metric(&text, "convene_peers "), 1.0, "{text}");
    assert!(
        metric(&text, "convene_changes_received_total ") >= 2.0,
        "{text}"
    );
    assert!(
        metric(&text, "convene_sync_received_bytes_total ") > 0.0,
        "{text}"
    );
    let served = wait_for(Duration::from_secs(20), "a's metrics", || {
        let mut r = agent().get(format!("{}metrics", da.web)).call().ok()?;
        r.body_mut().read_to_string().ok()
    });
    assert!(
        metric(&served, "convene_changes_sent_total ") >= 2.0,
        "{served}"
    );
    assert!(metric(&text, "convene_sync_session_duration_seconds_count ") >= 1.0);
    assert!(text.ends_with("# EOF\n"));
}

#[test]
fn the_demo_community_syncs_what_one_web_app_publishes_to_the_others() {
    let mut demo = DemoRun::start();
    let trust = Api::new(&demo.webs[0], &demo.homes[0]);
    let council = Api::new(&demo.webs[1], &demo.homes[1]);
    let (_, all) = council.get("/api/entries");
    assert!(all.as_array().unwrap().len() >= 7, "{all}");
    let (status, created) = trust.send("POST", "/api/entries/project", &project().to_string());
    assert_eq!(status, 201);
    let id = created["id"].as_str().unwrap().to_string();
    wait_for(
        Duration::from_secs(20),
        "the council's app to find it",
        || {
            let (_, hits) = council.get("/api/entries?q=community%20calls%20falls");
            hits.as_array()?
                .iter()
                .any(|h| h["id"] == id.as_str())
                .then_some(())
        },
    );
    assert!(demo.interrupt().success());
    assert!(demo.homes[0].exists(), "--dir is kept");
}

/// A request with only a `Cookie` header; its status.
fn status_with_cookie(url: &str, cookie: &str) -> u16 {
    let mut r = agent().get(url).header("Cookie", cookie).call().unwrap();
    let _ = r.body_mut().read_to_string();
    r.status().as_u16()
}

/// Issue 13, item 9: the cookie was the permanent API token, named
/// `convene_session` whatever the port.
#[test]
fn the_session_cookie_is_not_the_api_token_and_is_named_for_the_port() {
    let home = Home::initialised();
    let daemon = Daemon::start(&home, &[]);
    let base = daemon.web.clone();
    let port = port_of(&base);
    let token = token(home.path());

    let set_cookie = follow_sign_in(&sign_in_link(&home, &base));
    let (pair, attributes) = set_cookie.split_once(';').expect("attributes");
    let (name, value) = pair.split_once('=').unwrap();
    assert_eq!(name, format!("convene_session_{port}"), "{set_cookie}");
    assert_ne!(value, token, "the cookie is not the API token");
    assert!(!value.contains(&token) && value.len() >= 43, "{set_cookie}");
    let attributes: Vec<&str> = attributes.split(';').map(str::trim).collect();
    for wanted in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(attributes.contains(&wanted), "{wanted}: {set_cookie}");
    }
    assert!(
        !attributes
            .iter()
            .any(|a| a.to_ascii_lowercase().starts_with("domain")),
        "no Domain: {set_cookie}"
    );
    let max_age: i64 = attributes
        .iter()
        .find_map(|a| a.strip_prefix("Max-Age="))
        .expect("a bounded Max-Age")
        .parse()
        .unwrap();
    assert!((1..=86_400).contains(&max_age), "{set_cookie}");
    assert_eq!(status_with_cookie(&base, pair), 200);

    // The token in a cookie opens nothing; the session is no API token.
    assert_eq!(
        status_with_cookie(&base, &format!("convene_session_{port}={token}")),
        401
    );
    assert_eq!(
        status_with_cookie(&base, &format!("convene_session={token}")),
        401
    );
    let r = agent()
        .get(format!("{base}api/status"))
        .header("Authorization", &format!("Bearer {value}"))
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    // The token still works for API clients.
    let (status, _) = Api::new(&base, home.path()).get("/api/status");
    assert_eq!(status, 200);
}

/// A browser's cookie jar for one host: cookies are not kept per port, so
/// a cookie set by one node's web app is sent to every port on 127.0.0.1,
/// and a second cookie of the same name replaces the first.
#[derive(Default)]
struct Jar(std::collections::BTreeMap<String, String>);

impl Jar {
    fn keep(&mut self, set_cookie: &str) {
        let pair = set_cookie.split(';').next().unwrap();
        let (name, value) = pair.split_once('=').unwrap();
        self.0.insert(name.to_string(), value.to_string());
    }

    fn header(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Issue 13, item 9: two nodes' cookies overwrote each other.
#[test]
fn two_nodes_on_one_computer_keep_separate_sessions() {
    let a = Home::for_org("Gateshead Council", "council");
    let b = Home::for_org("Bensham Community Connectors", "vcse");
    let da = Daemon::start(&a, &[]);
    let db = Daemon::start(&b, &[]);
    assert_ne!(da.web, db.web);

    let mut jar = Jar::default();
    jar.keep(&follow_sign_in(&sign_in_link(&a, &da.web)));
    jar.keep(&follow_sign_in(&sign_in_link(&b, &db.web)));
    assert_eq!(jar.0.len(), 2, "one cookie per node: {:?}", jar.0.keys());
    assert_eq!(
        status_with_cookie(&da.web, &jar.header()),
        200,
        "a's session"
    );
    assert_eq!(
        status_with_cookie(&db.web, &jar.header()),
        200,
        "b's session"
    );

    // One node's session, sent under the other's name, opens nothing.
    let a_value = &jar.0[&format!("convene_session_{}", port_of(&da.web))];
    let forged = format!("convene_session_{}={a_value}", port_of(&db.web));
    assert_eq!(status_with_cookie(&db.web, &forged), 401);
    // Nor does a link from one node's home on the other's web app.
    let link = sign_in_link(&a, &da.web).replace(&da.web, &db.web);
    assert_eq!(agent().get(&link).call().unwrap().status().as_u16(), 401);
}

/// Issue 13, item 9: sessions could not be revoked (the cookie was the
/// token itself).
#[test]
fn signing_out_ends_one_session_and_sign_out_all_ends_every_one() {
    let home = Home::initialised();
    let daemon = Daemon::start(&home, &[]);
    let base = daemon.web.clone();
    let origin = base.trim_end_matches('/').to_string();
    let sign_out = |cookie: &str, origin: Option<&str>, path: &str| {
        let mut req = agent()
            .post(format!("{base}{path}"))
            .header("Cookie", cookie);
        if let Some(o) = origin {
            req = req.header("Origin", o);
        }
        let r = req.send_empty().unwrap();
        let cleared = r
            .headers()
            .get("set-cookie")
            .map(|c| c.to_str().unwrap().to_string())
            .unwrap_or_default();
        (r.status().as_u16(), cleared)
    };

    // Two browsers; the Sign out button ends only the one it is pressed in.
    let laptop = sign_in(&home, &base);
    let phone = sign_in(&home, &base);
    assert_ne!(laptop, phone, "each sign-in makes a new session");
    let (status, _) = sign_out(&laptop, Some("http://evil.example"), "sign-out");
    assert_eq!(status, 403, "another site cannot sign you out");
    assert_eq!(status_with_cookie(&base, &laptop), 200);
    let (status, cleared) = sign_out(&laptop, Some(&origin), "sign-out");
    assert_eq!(status, 303);
    assert!(
        cleared.starts_with(&format!("convene_session_{}=;", port_of(&base)))
            && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    assert_eq!(status_with_cookie(&base, &laptop), 401, "signed out");
    assert_eq!(status_with_cookie(&base, &phone), 200, "the other stays");
    let (status, html) = page("", &format!("{base}signed-out"));
    assert_eq!(status, 200);
    assert!(html.contains("convene open"), "{html}");

    // Someone not signed in (another local user) cannot sign everyone out.
    let (status, _) = sign_out("", Some(&origin), "sign-out-everywhere");
    assert_eq!(status, 401);
    assert_eq!(status_with_cookie(&base, &phone), 200);

    // `convene open --sign-out-all` ends every session and unused link,
    // while the daemon runs.
    let desk = sign_in(&home, &base);
    let unused = sign_in_link(&home, &base);
    let out = home.stdout(&["open", "--sign-out-all"]);
    assert!(out.contains("2 sessions ended"), "{out}");
    assert_eq!(status_with_cookie(&base, &phone), 401, "old cookie refused");
    assert_eq!(status_with_cookie(&base, &desk), 401, "old cookie refused");
    assert_eq!(agent().get(&unused).call().unwrap().status().as_u16(), 401);
    let mut r = agent()
        .get(format!("{base}api/status"))
        .header("Cookie", &desk)
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let err: Value = r.body_mut().read_json().unwrap();
    assert_eq!(err, json!({ "error": "not signed in" }));

    // `convene open` signs in again; Sign out everywhere on the page does
    // what --sign-out-all does.
    let one = sign_in(&home, &base);
    let two = sign_in(&home, &base);
    let (status, _) = sign_out(&one, Some(&origin), "sign-out-everywhere");
    assert_eq!(status, 303);
    assert_eq!(status_with_cookie(&base, &one), 401);
    assert_eq!(status_with_cookie(&base, &two), 401);
    // The API token is not a session: it still works.
    let (status, _) = Api::new(&base, home.path()).get("/api/status");
    assert_eq!(status, 200);
}

/// A sign-in link works once, and a newer link does not void an older
/// unused one (two browsers can be signed in at once).
#[test]
fn a_sign_in_link_works_once() {
    let home = Home::initialised();
    let daemon = Daemon::start(&home, &[]);
    let base = daemon.web.clone();
    let first = sign_in_link(&home, &base);
    let second = sign_in_link(&home, &base);
    let cookie = follow_sign_in(&second);
    assert_eq!(agent().get(&second).call().unwrap().status().as_u16(), 401);
    let other = follow_sign_in(&first);
    assert_ne!(cookie, other);
    let mut r = agent().get(&first).call().unwrap();
    assert_eq!(r.status().as_u16(), 401, "used already");
    assert!(r.headers().get("set-cookie").is_none());
    let html = r.body_mut().read_to_string().unwrap();
    assert!(html.contains("convene open"), "{html}");
    // A made-up ticket, or none, signs nobody in.
    for bad in ["login?ticket=2Nq8", "login?ticket=", "login"] {
        let r = agent().get(format!("{base}{bad}")).call().unwrap();
        assert_eq!(r.status().as_u16(), 401, "{bad}");
        assert!(r.headers().get("set-cookie").is_none(), "{bad}");
    }
}

/// Issue 13, item 9: the JSON API took a `text/plain` body when no
/// `Origin` header came with it: what a form or `fetch` on any site can
/// send without a CORS preflight.
#[test]
fn the_json_api_takes_only_json_bodies() {
    let home = Home::initialised();
    let daemon = Daemon::start(&home, &[]);
    let base = daemon.web.clone();
    let cookie = sign_in(&home, &base);
    let api = Api::new(&base, home.path());
    let id = home.publish("Community calls");
    let before = home.ids();
    let body = project().to_string();
    let send =
        |method: &str, path: &str, auth: (&str, &str), content_type: Option<&str>, body: &str| {
            let url = format!("{base}{path}");
            let req = match method {
                "POST" => agent().post(url),
                "PATCH" => agent().patch(url),
                other => panic!("no {other}"),
            };
            let mut req = req.header(auth.0, auth.1);
            if let Some(t) = content_type {
                req = req.header("Content-Type", t);
            }
            let mut r = if body.is_empty() {
                req.send_empty()
            } else {
                req.send(body)
            }
            .unwrap();
            let status = r.status().as_u16();
            (
                status,
                r.body_mut().read_json::<Value>().unwrap_or(Value::Null),
            )
        };
    let by_cookie = ("Cookie", cookie.as_str());
    let bearer = api.auth.clone();
    let by_token = ("Authorization", bearer.as_str());

    for auth in [by_cookie, by_token] {
        for t in [
            Some("text/plain"),
            Some("text/plain; charset=utf-8"),
            Some("application/x-www-form-urlencoded"),
            Some("multipart/form-data; boundary=x"),
            None,
        ] {
            let (status, err) = send("POST", "api/entries/project", auth, t, &body);
            assert_eq!(status, 415, "{t:?} with {}: {err}", auth.0);
            assert!(
                err["error"].as_str().unwrap().contains("application/json"),
                "{err}"
            );
            let (status, _) = send(
                "PATCH",
                &format!("api/entries/{id}"),
                auth,
                t,
                r#"{"title": "Changed"}"#,
            );
            assert_eq!(status, 415, "{t:?}");
            let (status, _) = send("POST", &format!("api/entries/{id}/retract"), auth, t, "");
            assert_eq!(status, 415, "{t:?}");
        }
    }
    assert_eq!(home.ids(), before, "nothing was published");
    let shown = home.json(&["show", &id, "--json"]);
    assert_eq!(shown["title"], "Community calls", "nothing was changed");
    assert_eq!(shown["status"], "published", "nothing was retracted");

    // JSON is taken, by token or by this server's own pages' session.
    let (status, _) = send(
        "POST",
        "api/entries/project",
        by_cookie,
        Some("application/json"),
        &body,
    );
    assert_eq!(status, 201);
    let (status, _) = send(
        "POST",
        &format!("api/entries/{id}/retract"),
        by_token,
        Some("application/json; charset=utf-8"),
        "",
    );
    assert_eq!(status, 200);
    assert_eq!(home.ids().len(), before.len() + 1);
    assert_eq!(home.json(&["show", &id, "--json"])["status"], "retracted");
}

#[test]
fn the_chart_api_page_and_downloads_come_from_one_analysis() {
    let home = Home::initialised();
    let mut args: Vec<String> = [
        "publish",
        "project",
        "--title",
        "Ambulance handover delays",
        "--summary",
        "Peer visits, then a standard operating model.",
        "--measure",
        "Minutes lost;unit=minutes;improvement=lower;target=45;rebase=2023-12-01:New handover model",
    ]
    .map(String::from)
    .to_vec();
    let values = [
        52, 48, 55, 50, 47, 53, 51, 49, 54, 50, 52, 48, 70, 44, 41, 39, 42, 40, 38, 41, 39, 40, 37,
        41,
    ];
    for (i, v) in values.iter().enumerate() {
        args.push("--data".into());
        args.push(format!(
            "Minutes lost@{}-{:02}-01={v}",
            2023 + i / 12,
            1 + i % 12
        ));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let id = home.stdout(&args).trim().to_string();
    let daemon = Daemon::start(&home, &[]);
    let api = Api::new(&daemon.web, home.path());

    // The API gives what `convene chart --json` prints.
    let (status, v) = api.get(&format!("/api/entries/{id}/chart"));
    assert_eq!(status, 200, "{v}");
    assert_eq!(v, home.json(&["chart", &id, "--json"]));
    let chart = &v["charts"][0];
    assert_eq!(chart["chart"], "xmr");
    assert_eq!(chart["periods"].as_array().unwrap().len(), 2);
    assert_eq!(chart["periods"][1]["reason"], "New handover model");
    assert_eq!(chart["variation"], "improvement_low");
    let (status, v) = api.get(&format!("/api/entries/{id}/chart?measure=Beds"));
    assert_eq!(status, 404);
    assert!(
        v["error"].as_str().unwrap().contains("no measure \"Beds\""),
        "{v}"
    );

    // The page draws it, with the table, the icons and the downloads.
    let cookie = sign_in(&home, &daemon.web);
    let (status, html) = page(&cookie, &format!("{}e/{id}", daemon.web));
    assert_eq!(status, 200);
    assert!(html.contains(r#"<svg class="chart spc-chart""#), "{html}");
    assert_eq!(html.matches("<circle").count(), 24);
    assert!(html.contains("Variation: Special cause variation: improvement (lower)"));
    assert!(html.contains("Assurance: Hit and miss"));
    assert!(
        html.contains("limits recalculated: New handover model"),
        "{html}"
    );
    assert!(html.contains("<th scope=\"col\">Limits</th>"));
    let svg_link = format!("/e/{id}/chart.svg?measure=Minutes+lost");
    assert!(html.contains(&svg_link), "{html}");

    let mut r = agent()
        .get(format!("{}{}", daemon.web.trim_end_matches('/'), svg_link))
        .header("Cookie", &cookie)
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        r.headers().get("content-type").unwrap(),
        "image/svg+xml; charset=utf-8"
    );
    let svg = r.body_mut().read_to_string().unwrap();
    assert!(svg.contains("<desc id=\"chart-desc\">XmR chart"), "{svg}");
    let mut r = agent()
        .get(format!(
            "{}/e/{id}/chart.csv?measure=minutes%20lost",
            daemon.web.trim_end_matches('/')
        ))
        .header("Cookie", &cookie)
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(
        r.headers()
            .get("content-disposition")
            .unwrap()
            .to_str()
            .unwrap()
            .contains("minutes-lost.csv")
    );
    let csv = r.body_mut().read_to_string().unwrap();
    assert_eq!(csv.lines().count(), 25);
    // Signed out, nothing.
    let r = agent()
        .get(format!("{}{}", daemon.web.trim_end_matches('/'), svg_link))
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);

    // A proportion from the forms: which way is better, COUNT/DENOMINATOR
    // values, and a value added with its denominator.
    let origin = daemon.web.trim_end_matches('/');
    let lines: Vec<String> = (0..15)
        .map(|i| format!("2024-{:02}-01, {}/{}", 1 + i % 12, 20 + i, 40))
        .enumerate()
        .map(|(i, l)| {
            if i >= 12 {
                l.replace("2024-", "2025-")
            } else {
                l
            }
        })
        .collect();
    let data = lines.join("\n");
    let (status, _, _) = post_form(
        &cookie,
        &format!("{}e/{id}/measures", daemon.web),
        Some(origin),
        &[
            ("measure_name", "Seen within 4 hours"),
            ("measure_improvement", "higher"),
            ("measure_data", &data),
        ],
    );
    assert_eq!(status, 303);
    let (status, _, _) = post_form(
        &cookie,
        &format!("{}e/{id}/data", daemon.web),
        Some(origin),
        &[
            ("measure", "Seen within 4 hours"),
            ("date", "2025-04-01"),
            ("value", "39"),
            ("denominator", "40"),
        ],
    );
    assert_eq!(status, 303);
    let (status, v) = api.get(&format!(
        "/api/entries/{id}/chart?measure=seen%20within%204%20hours"
    ));
    assert_eq!(status, 200, "{v}");
    let c = &v["charts"][0];
    assert_eq!(c["chart"], "p", "{c}");
    assert_eq!(c["improvement"], "higher");
    assert_eq!(c["points"].as_array().unwrap().len(), 16);
    assert_eq!(c["points"][15]["denominator"], 40.0);
    assert_eq!(c["points"][15]["value"], 39.0 / 40.0);

    // The chart settings form: higher is better now, and no rebase.
    assert!(html.contains("Chart settings for Minutes lost"));
    let (status, _, _) = post_form(
        &cookie,
        &format!("{}e/{id}/chart/0", daemon.web),
        Some(origin),
        &[
            ("improvement", "higher"),
            ("target", "45"),
            ("chart", ""),
            ("baseline_points", ""),
            ("remove_rebase", "0"),
        ],
    );
    assert_eq!(status, 303);
    let (_, v) = api.get(&format!("/api/entries/{id}/chart?measure=Minutes%20lost"));
    let c = &v["charts"][0];
    assert_eq!(c["improvement"], "higher");
    assert_eq!(c["periods"].as_array().unwrap().len(), 1, "{c}");
    assert_eq!(c["variation"], "concern_low");
}
