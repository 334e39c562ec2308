//! The local web app and JSON API, against real `convene node start` and
//! `convene demo` processes over HTTP on loopback.

mod support;

use std::io::{Read, Write};
use std::time::Duration;

use serde_json::{Value, json};
use support::{Daemon, DemoRun, Home, wait_for};

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into()
}

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
    assert!(err["error"].as_str().unwrap().contains("convene open"));
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

/// Signs in as a browser would: `convene open --print`, then the ticket.
fn sign_in(home: &Home, base: &str) -> String {
    let url = home.stdout(&["open", "--print"]).trim().to_string();
    assert!(url.starts_with(base), "{url}");
    let r = agent().get(&url).call().unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let cookie = r
        .headers()
        .get("set-cookie")
        .expect("a session cookie")
        .to_str()
        .unwrap()
        .to_string();
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
    assert!(html.contains(r#"<svg class="run-chart""#), "a run chart");
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
    assert_eq!(status, 400);
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
