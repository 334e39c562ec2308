//! Issue 15, "found trying it as a new user": the web app and CLI replayed
//! the way a new user met each gap. Real `convene` processes over HTTP on
//! loopback, as in `tests/web.rs`.

mod support;

use support::{agent, sign_in, sign_in_at};

use std::time::Duration;

use serde_json::Value;
use support::{Daemon, DemoRun, Home};

fn page(cookie: &str, url: &str) -> (u16, String) {
    let mut r = agent().get(url).header("Cookie", cookie).call().unwrap();
    (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
}

/// Posts a form as a browser would: status, `Location`, body.
fn post_form(cookie: &str, url: &str, form: &[(&str, &str)]) -> (u16, String, String) {
    let origin = url.split('/').take(3).collect::<Vec<_>>().join("/");
    let mut r = agent()
        .post(url)
        .header("Cookie", cookie)
        .header("Origin", &origin)
        .send_form(form.iter().copied())
        .unwrap();
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

/// `n` learning entries published in one import.
fn many(home: &Home, n: usize, word: &str) {
    let mut csv = String::from("title,summary\n");
    for i in 0..n {
        csv += &format!("{word} lesson {i},What we learned about {word} ({i}).\n");
    }
    let file = home.write(&format!("{word}.csv"), &csv);
    home.stdout(&["import-csv", "learning", file.to_str().unwrap()]);
}

/// The text of an element with `id="ID"` (its first text, tags dropped).
fn text_of(html: &str, id: &str) -> String {
    let Some(at) = html.find(&format!("id=\"{id}\"")) else {
        return String::new();
    };
    let rest = &html[at..];
    let start = rest.find('>').unwrap() + 1;
    let end = rest.find("</p>").unwrap_or(rest.len());
    let mut out = String::new();
    let mut tag = false;
    for c in rest[start..end].chars() {
        match c {
            '<' => tag = true,
            '>' => tag = false,
            c if !tag => out.push(c),
            _ => {}
        }
    }
    out
}

/// Browse and search stopped at 200 and said "(200)"; the API gave no
/// total. Now: the real total, a page at a time, with next and previous.
#[test]
fn browse_search_and_the_api_page_through_every_entry_with_the_real_total() {
    let home = Home::initialised();
    many(&home, 205, "discharge");
    let daemon = Daemon::start(&home, &[]);
    let cookie = sign_in(&home);
    let base = daemon.web.clone();

    let (_, first) = page(&cookie, &base);
    assert!(
        first.contains("(206)"),
        "205 lessons and the profile: {first}"
    );
    assert!(first.contains("Showing 1–200 of 206"), "{first}");
    assert!(first.contains(r#"rel="next" href="/?page=2""#), "{first}");
    assert_eq!(first.matches("<li><a class=\"title\"").count(), 200);
    let (_, second) = page(&cookie, &format!("{base}?page=2"));
    assert!(second.contains("Showing 201–206 of 206"), "{second}");
    assert!(second.contains(r#"rel="prev""#) && !second.contains(r#"rel="next""#));
    assert_eq!(second.matches("<li><a class=\"title\"").count(), 6);

    let (_, found) = page(&cookie, &format!("{base}?q=discharge"));
    assert!(found.contains("(205)"), "{found}");
    assert!(found.contains("Showing 1–200 of 205"), "{found}");
    assert!(
        found.contains(r#"href="/?q=discharge&amp;page=2""#),
        "{found}"
    );
    let (_, rest) = page(&cookie, &format!("{base}?q=discharge&kind=learning&page=2"));
    assert!(rest.contains("Showing 201–205 of 205"), "{rest}");

    let token = std::fs::read_to_string(home.path().join("web-token")).unwrap();
    let mut r = agent()
        .get(format!("{base}api/entries?q=discharge&limit=50&offset=200"))
        .header("Authorization", &format!("Bearer {}", token.trim()))
        .call()
        .unwrap();
    assert_eq!(r.headers().get("x-total-count").unwrap(), "205");
    let rows: Value = r.body_mut().read_json().unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 5);
}

/// `/api/entries?limit=lots` came back as text/plain from axum.
#[test]
fn api_query_errors_are_json() {
    let home = Home::initialised();
    let daemon = Daemon::start(&home, &[]);
    let token = std::fs::read_to_string(home.path().join("web-token")).unwrap();
    for path in [
        "api/entries?limit=lots",
        "api/entries?all=maybe",
        "api/entries/x?history=perhaps",
        "api/nothing-here",
    ] {
        let mut r = agent()
            .get(format!("{}{path}", daemon.web))
            .header("Authorization", &format!("Bearer {}", token.trim()))
            .call()
            .unwrap();
        let expected = if path.contains("nothing") { 404 } else { 400 };
        assert_eq!(r.status().as_u16(), expected, "{path}");
        assert!(
            r.headers()
                .get("content-type")
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("application/json"),
            "{path}"
        );
        let body: Value = r.body_mut().read_json().unwrap();
        let error = body["error"].as_str().unwrap();
        assert!(
            error.contains("query") || error.contains("no API endpoint"),
            "{body}"
        );
    }
}

/// An address outside the API that nothing answers was a bare "Not found"
/// in plain text; it is a page with a way back, signed in or not.
#[test]
fn an_unknown_page_is_a_page_with_a_way_back() {
    let home = Home::initialised();
    let daemon = Daemon::start(&home, &[]);
    let cookie = sign_in(&home);
    let (status, html) = page(&cookie, &format!("{}no-such-page", daemon.web));
    assert_eq!(status, 404);
    assert!(
        html.contains("Page not found") && html.contains("/no-such-page"),
        "{html}"
    );
    assert!(html.contains(r#"<a href="/">Browse entries</a>"#), "{html}");
    let (status, html) = page("", &format!("{}e/also/not/here", daemon.web));
    assert!(status == 404 || status == 401, "{status}");
    assert!(html.contains("<html"), "{html}");
}

/// A form with several mistakes showed only the first. Every problem now
/// shows beside its own field, and required fields are marked.
#[test]
fn a_form_shows_every_problem_beside_its_field() {
    let home = Home::initialised();
    let daemon = Daemon::start(&home, &[]);
    let cookie = sign_in(&home);
    let base = daemon.web.clone();
    let (_, blank) = page(&cookie, &format!("{base}new/project"));
    assert!(
        blank.contains(r#"Title <span class="required">(required)</span>"#),
        "{blank}"
    );

    let (status, _, html) = post_form(
        &cookie,
        &format!("{base}new/project"),
        &[
            ("title", ""),
            ("aim", "line one\nline two"),
            ("visibility", "community"),
            ("measure_name", "Discharges before noon"),
            ("measure_target", "most"),
            (
                "measure_data",
                "2026-01-05, 12\n2026-01-12, twelve\n2026-13-01, 14",
            ),
        ],
    );
    assert_eq!(status, 422, "{html}");
    assert!(html.contains("Please check 5 things"), "{html}");
    assert!(
        text_of(&html, "f-title-error").contains("is required"),
        "{html}"
    );
    assert!(
        text_of(&html, "f-aim-error").contains("single line"),
        "{html}"
    );
    assert!(
        text_of(&html, "f-measure-target-error").contains("not a number"),
        "{html}"
    );
    let data = text_of(&html, "f-measure-data-error");
    assert!(data.contains("line 2") && data.contains("twelve"), "{data}");
    assert!(data.contains("2026-13-01"), "the bad date too: {data}");
    assert!(html.contains(r#"aria-invalid="true""#));
    let at = |anchor: &str| html.find(&format!("href=\"#f-{anchor}\"")).unwrap();
    assert!(
        at("title") < at("aim") && at("aim") < at("measure-target"),
        "the summary in the form's order: {html}"
    );
    assert!(html.contains("&quot;most&quot; is not a number"), "{html}");
    assert!(
        html.contains("Discharges before noon"),
        "what was typed stays"
    );
}

/// Saving the edit form wrote methods back in the vocabulary's order.
#[test]
fn the_edit_form_writes_only_what_changed() {
    let home = Home::initialised();
    let id = home
        .stdout(&[
            "publish",
            "project",
            "--title",
            "Safe transfer of care",
            "--method",
            "qsir",
            "--method",
            "co-production",
            "--method",
            "lean",
        ])
        .trim()
        .to_string();
    let daemon = Daemon::start(&home, &[]);
    let cookie = sign_in(&home);
    let url = format!("{}e/{id}/edit", daemon.web);
    let before = home.json(&["show", &id, "--json", "--history"]);
    // The form as a browser sends it back untouched: checkboxes in the
    // vocabulary's order.
    let (status, _, html) = post_form(
        &cookie,
        &url,
        &[
            ("title", "Safe transfer of care"),
            ("methods", "lean"),
            ("methods", "qsir"),
            ("methods", "co-production"),
            ("visibility", "community"),
        ],
    );
    assert_eq!(status, 303, "{html}");
    let after = home.json(&["show", &id, "--json", "--history"]);
    assert_eq!(after["methods"], before["methods"]);
    assert_eq!(
        after["history"].as_array().unwrap().len(),
        before["history"].as_array().unwrap().len(),
        "nothing changed, nothing written"
    );
    // One method off, one on: the others keep their places.
    post_form(
        &cookie,
        &url,
        &[
            ("title", "Safe transfer of care"),
            ("methods", "lean"),
            ("methods", "process-mapping"),
            ("methods", "co-production"),
            ("visibility", "community"),
        ],
    );
    let after = home.json(&["show", &id, "--json"]);
    assert_eq!(
        after["methods"],
        serde_json::json!(["co-production", "lean", "process-mapping"])
    );
}

/// PDSA cycles and annotations could only come from files: now they are
/// added and edited from the entry page, with problems beside fields.
#[test]
fn pdsa_cycles_and_annotations_are_added_and_edited_on_the_entry_page() {
    let home = Home::initialised();
    let id = home
        .stdout(&[
            "publish",
            "project",
            "--title",
            "Discharge before noon",
            "--measure",
            "Discharges before noon",
        ])
        .trim()
        .to_string();
    let daemon = Daemon::start(&home, &[]);
    let cookie = sign_in(&home);
    let entry = format!("{}e/{id}", daemon.web);
    let (_, html) = page(&cookie, &entry);
    assert!(
        html.contains("No PDSA cycles yet") && html.contains("Add PDSA cycle"),
        "{html}"
    );

    let (status, _, html) = post_form(
        &cookie,
        &format!("{entry}/pdsa"),
        &[("change_idea", ""), ("started", "2026-02-30"), ("act", "")],
    );
    assert_eq!(status, 422, "{html}");
    assert!(
        text_of(&html, "pdnew-change_idea-error").contains("is required"),
        "{html}"
    );
    assert!(
        text_of(&html, "pdnew-started-error").contains("not a date"),
        "{html}"
    );
    assert!(
        html.contains(r##"href="#pdnew-change_idea""##),
        "the summary links to the field: {html}"
    );

    let (status, location, _) = post_form(
        &cookie,
        &format!("{entry}/pdsa"),
        &[
            ("change_idea", "Board round at 9"),
            ("started", "2026-02-02"),
            ("prediction", "More discharges before noon."),
            ("plan", "Two wards for two weeks."),
            ("do", ""),
            ("study", ""),
            ("act", ""),
        ],
    );
    assert_eq!((status, location.ends_with("#pdsa")), (303, true));
    let (status, html) = page(&cookie, &format!("{entry}/pdsa/0"));
    assert_eq!(status, 200);
    assert!(html.contains("Two wards for two weeks."), "{html}");
    let (status, _, html) = post_form(
        &cookie,
        &format!("{entry}/pdsa/0"),
        &[
            ("opened", "Board round at 9"),
            ("change_idea", "Board round at 9"),
            ("started", "2026-02-02"),
            ("prediction", "More discharges before noon."),
            ("plan", "Two wards for two weeks."),
            ("do", "Ran on both wards; one missed two days."),
            ("study", "Before noon rose from 18% to 27%."),
            ("act", "adapt"),
        ],
    );
    assert_eq!(status, 303, "{html}");
    let shown = home.json(&["show", &id, "--json"]);
    assert_eq!(
        shown["pdsa"][0]["do"],
        "Ran on both wards; one missed two days."
    );
    assert_eq!(shown["pdsa"][0]["act"], "adapt");
    assert_eq!(shown["pdsa"][0]["plan"], "Two wards for two weeks.");

    let (status, _, html) = post_form(
        &cookie,
        &format!("{entry}/annotations/0"),
        &[("date", "yesterday"), ("text", "")],
    );
    assert_eq!(status, 422, "{html}");
    assert!(
        text_of(&html, "an0-date-error").contains("not a date"),
        "{html}"
    );
    assert!(
        text_of(&html, "an0-text-error").contains("is required"),
        "{html}"
    );
    let (status, _, _) = post_form(
        &cookie,
        &format!("{entry}/annotations/0"),
        &[("date", "2026-02-02"), ("text", "Board rounds start")],
    );
    assert_eq!(status, 303);
    let (status, _, _) = post_form(
        &cookie,
        &format!("{entry}/annotations/0/0"),
        &[
            ("date", "2026-02-03"),
            ("text", "Board rounds start on ward 2"),
        ],
    );
    assert_eq!(status, 303);
    let shown = home.json(&["show", &id, "--json"]);
    assert_eq!(
        shown["measures"][0]["annotations"],
        serde_json::json!([{"date": "2026-02-03", "text": "Board rounds start on ward 2"}])
    );
    let (_, html) = page(&cookie, &entry);
    assert!(
        html.contains("Board round at 9") && html.contains("Adapt"),
        "{html}"
    );
    assert!(html.contains("Board rounds start on ward 2"), "{html}");
}

/// Other organisations saw Edit, Add value and Add measure on entries they
/// may not change, then "Not allowed" naming the owner by its id.
#[test]
fn the_entry_page_offers_changes_only_to_those_who_may_make_them() {
    let demo = DemoRun::start();
    let council = sign_in_at(&demo.sign_ins[1]);
    let token = std::fs::read_to_string(demo.homes[1].join("web-token")).unwrap();
    let mut r = agent()
        .get(format!("{}api/entries?kind=project", demo.webs[1]))
        .header("Authorization", &format!("Bearer {}", token.trim()))
        .call()
        .unwrap();
    let rows: Value = r.body_mut().read_json().unwrap();
    let me = {
        let mut r = agent()
            .get(format!("{}api/status", demo.webs[1]))
            .header("Authorization", &format!("Bearer {}", token.trim()))
            .call()
            .unwrap();
        r.body_mut().read_json::<Value>().unwrap()["organisation"].clone()
    };
    let rows = rows.as_array().unwrap();
    let theirs = rows
        .iter()
        .find(|r| r["owner"] != me)
        .expect("another's project");
    let mine = rows.iter().find(|r| r["owner"] == me);
    let url = format!("{}e/{}", demo.webs[1], theirs["id"].as_str().unwrap());
    let (status, html) = page(&council, &url);
    assert_eq!(status, 200);
    for button in [
        "/edit\"",
        "Add value",
        "Add measure",
        "Add PDSA cycle",
        "Add annotation",
    ] {
        assert!(
            !html.contains(button),
            "{button} offered to another organisation"
        );
    }
    let (status, _, refused) =
        post_form(&council, &format!("{url}/edit"), &[("title", "Mine now")]);
    assert_eq!(status, 403, "the server still refuses");
    let owner = theirs["owner_name"].as_str().unwrap();
    assert!(
        refused.contains(&format!("belongs to {owner}")),
        "{refused}"
    );
    if let Some(mine) = mine {
        let (_, html) = page(
            &council,
            &format!("{}e/{}", demo.webs[1], mine["id"].as_str().unwrap()),
        );
        assert!(
            html.contains("/edit\"") && html.contains("Add value"),
            "{html}"
        );
    }
}

/// `convene search` stopped at 20 without saying there were more.
#[test]
fn cli_search_pages_and_says_how_many_there_are() {
    let home = Home::initialised();
    many(&home, 45, "handover");
    let first = home.stdout(&["search", "handover"]);
    assert_eq!(first.lines().filter(|l| l.contains("learning")).count(), 20);
    assert!(
        first.ends_with("showing 1–20 of 45; more with --page 2 (or --offset 20)\n"),
        "{first}"
    );
    let last = home.stdout(&["search", "handover", "--page", "3"]);
    assert_eq!(last.lines().filter(|l| l.contains("learning")).count(), 5);
    assert!(last.ends_with("showing 41–45 of 45\n"), "{last}");
    let out = home
        .convene(&[
            "search", "handover", "--json", "--limit", "10", "--offset", "40",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 5);
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "showing 41–45 of 45\n"
    );
    let all = home.stdout(&["search", "handover", "--limit", "100"]);
    assert!(!all.contains("showing"), "everything fits: {all}");
}

/// A failed command printed coloured WARN lines, then the error with its
/// cause twice.
#[test]
fn a_failed_sync_is_one_plain_line() {
    let home = Home::initialised();
    let id = home.stdout(&["id"]);
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let peer = format!("/ip4/127.0.0.1/tcp/{closed}/p2p/{}", id.trim());
    let out = home
        .convene(&["sync", "--once", "--peer", &peer, "--timeout", "10"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "no colour codes: {stderr:?}");
    assert_eq!(
        stderr.matches("Connection refused").count(),
        1,
        "the cause once: {stderr}"
    );
    // The address once too, and none of libp2p's wrapping around it.
    assert_eq!(stderr.matches(&peer).count(), 1, "{stderr}");
    assert!(!stderr.contains("Failed to negotiate"), "{stderr}");
}

/// `sync --once` printed one line per entry received (500 lines for 500).
#[test]
fn sync_once_sums_up_a_catch_up() {
    let trust = Home::for_org("Durham Trust", "nhs-trust");
    many(&trust, 25, "winter");
    let laptop = Home::for_org("Durham Youth Group", "vcse");
    let a = Daemon::start(&trust, &[]);
    let out = laptop.stdout(&["sync", "--once", "--peer", &a.addr]);
    assert!(
        out.contains("to 26 entries (25 learning, 1 organisation)"),
        "{out}"
    );
    assert_eq!(
        out.lines().filter(|l| l.starts_with("  received")).count(),
        10,
        "{out}"
    );
    assert!(out.contains("  … and 16 more received"), "{out}");
    assert!(out.lines().count() <= 14, "{out}");
    let json = laptop.json(&["sync", "--once", "--peer", &a.addr, "--json"]);
    assert!(json["received"].is_array(), "--json still lists every one");
}

/// This computer's address on its main network, if it has one: the local
/// end of a UDP socket "connected" towards a documentation address (no
/// packet is sent).
fn lan_ip() -> Option<std::net::IpAddr> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("192.0.2.1:9").ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

/// `node start --listen /ip4/0.0.0.0/…` printed only 127.0.0.1, and a
/// second node could bind the same TCP port without an error.
#[test]
fn a_node_on_every_interface_prints_every_address_and_owns_its_port() {
    use std::io::BufRead;
    let home = Home::initialised();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_convene"))
        .env_remove("RUST_LOG")
        .arg("--home")
        .arg(home.path())
        .args(["node", "start", "--no-mdns", "--web", "127.0.0.1:0"])
        .args(["--listen", "/ip4/0.0.0.0/tcp/0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut addrs = Vec::new();
    for line in std::io::BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if line.starts_with("web app on") {
            break;
        }
        if let Some(a) = line.strip_prefix("listening on ") {
            addrs.push(a.to_string());
        }
    }
    let port = |a: &str| {
        a.split("/tcp/")
            .nth(1)
            .unwrap()
            .split('/')
            .next()
            .unwrap()
            .to_string()
    };
    let tcp: Vec<&String> = addrs.iter().filter(|a| a.contains("/tcp/")).collect();
    let result = std::panic::catch_unwind(|| {
        assert!(
            tcp.iter().any(|a| a.starts_with("/ip4/127.0.0.1/")),
            "{addrs:?}"
        );
        if let Some(ip) = lan_ip() {
            assert!(
                tcp.iter()
                    .any(|a| a.starts_with(&format!("/ip4/{ip}/tcp/"))),
                "the address other organisations dial: {addrs:?}"
            );
            assert!(
                !tcp[0].starts_with("/ip4/127.0.0.1/"),
                "non-loopback first: {addrs:?}"
            );
        }
        // A second node on the same port is refused, with why.
        let other = Home::for_org("Carers Trust", "vcse");
        let out = other
            .convene(&["node", "start", "--no-mdns", "--no-web"])
            .args(["--listen", &format!("/ip4/127.0.0.1/tcp/{}", port(tcp[0]))])
            .timeout(Duration::from_secs(20))
            .output()
            .unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("is already in use"), "{stderr}");
        // QUIC's UDP port too, with the same clear words.
        let held = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let udp = held.local_addr().unwrap().port();
        let out = other
            .convene(&["node", "start", "--no-mdns", "--no-web"])
            .args(["--listen", &format!("/ip4/127.0.0.1/udp/{udp}/quic-v1")])
            .timeout(Duration::from_secs(20))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains(&format!("UDP port {udp} is already in use")),
            "{stderr}"
        );
    });
    let _ = child.kill();
    let _ = child.wait();
    result.unwrap();
}

/// A cell of a CSV row (a plain CSV: the test's own cells hold no commas
/// or quotes).
fn set_cell(csv: &str, title: &str, column: &str, value: &str) -> String {
    let mut lines: Vec<String> = csv.lines().map(str::to_string).collect();
    let header: Vec<&str> = lines[0].split(',').collect();
    let at = header.iter().position(|h| *h == column).unwrap();
    for line in lines.iter_mut().skip(1) {
        let mut cells: Vec<String> = line.split(',').map(str::to_string).collect();
        if cells.iter().any(|c| c == title) {
            cells[at] = value.to_string();
            *line = cells.join(",");
        }
    }
    lines.join("\n") + "\n"
}

/// `export-csv` output could not be imported back ("unknown column id"),
/// and importing a CSV twice silently made duplicates.
#[test]
fn export_csv_imports_back_updating_by_id_without_duplicates() {
    let home = Home::initialised();
    for title in ["Peer visits", "Family hubs", "Community calls"] {
        home.publish(title);
    }
    let theirs = Home::for_org("Carers Trust", "vcse");
    theirs.publish("Carers first");
    let d = Daemon::start(&theirs, &[]);
    home.stdout(&["sync", "--once", "--peer", &d.addr]);
    let count = || home.json_lines(&["list", "learning", "--json"]).len();
    assert_eq!(count(), 4);

    let exported = home.stdout(&["export-csv", "learning"]);
    let file = home.write("learning.csv", &exported);
    let out = home.stdout(&["import-csv", "learning", file.to_str().unwrap()]);
    assert!(
        out.contains("Published 0 learning entries") && out.contains("4 unchanged"),
        "{out}"
    );
    assert_eq!(count(), 4, "the same file again: no duplicates");

    // Edited in a spreadsheet: the row with that id updates its entry.
    let edited = set_cell(
        &exported,
        "Family hubs",
        "summary",
        "While you wait: family hubs.",
    );
    let file = home.write("edited.csv", &edited);
    let out = home.stdout(&["import-csv", "learning", file.to_str().unwrap()]);
    assert!(
        out.contains("1 updated") && out.contains("3 unchanged"),
        "{out}"
    );
    assert_eq!(count(), 4);
    let hubs = home
        .json_lines(&["list", "learning", "--json"])
        .into_iter()
        .find(|r| r["title"] == "Family hubs")
        .unwrap();
    let shown = home.json(&["show", hubs["id"].as_str().unwrap(), "--json"]);
    assert_eq!(shown["summary"], "While you wait: family hubs.");

    // Another organisation's entry may not be changed this way.
    let forged = set_cell(
        &exported,
        "Carers first",
        "summary",
        "Changed by someone else.",
    );
    let file = home.write("forged.csv", &forged);
    let out = home
        .convene(&["import-csv", "learning", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("belongs to Carers Trust"), "{stderr}");

    // A hand-made file without ids: twice is once; a title already here
    // with other fields is a warning.
    let file = home.write(
        "new.csv",
        "title,summary\nWinter pressures,What we learned.\nPeer visits,Another take on peer visits.\n",
    );
    let first = home
        .convene(&["import-csv", "learning", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(first.status.success());
    let warned = String::from_utf8_lossy(&first.stderr);
    assert!(
        warned.contains("warning") && warned.contains("\"Peer visits\" may duplicate"),
        "{warned}"
    );
    assert_eq!(count(), 6);
    let again = home.stdout(&["import-csv", "learning", file.to_str().unwrap()]);
    assert!(
        again.contains("Published 0") && again.contains("2 already here"),
        "{again}"
    );
    assert_eq!(count(), 6);
}

/// Messages named organisations by id ("belongs to Ezbw9Tu5…") where the
/// node knows their names.
#[test]
fn messages_name_organisations() {
    let trust = Home::for_org("Steward Trust", "nhs-trust");
    let council = Home::for_org("Member Council", "council");
    trust.stdout(&["community", "create", "Boost"]);
    let _a = Daemon::start(&trust, &[]);
    let code = trust.stdout(&["invite", "--expires", "1d"]);
    council.stdout(&["join", code.trim()]);
    trust.stdout(&["member", "remove", "Member Council"]);
    let out = trust
        .convene(&["steward", "add", "Member Council"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("\"Member Council\" is not a member of the community"),
        "{stderr}"
    );
}

/// A node's log written to a file (or journald) carried colour codes.
#[test]
fn a_log_file_has_no_colour_codes() {
    let home = Home::initialised();
    let daemon = Daemon::start(&home, &[]);
    assert!(daemon.stop().success());
    let log = std::fs::read_to_string(home.path().join("daemon.log")).unwrap();
    assert!(log.contains("INFO") || log.contains("DEBUG"), "{log}");
    assert!(!log.contains('\u{1b}'), "{log:?}");
}

/// Publishes a project "Flow" with one measure, "Stays"; its id.
fn flow_project(home: &Home) -> String {
    home.stdout(&[
        "publish",
        "project",
        "--title",
        "Flow",
        "--measure",
        "Stays",
    ])
    .trim()
    .to_string()
}

/// Asserts that the page `html` shows `message` beside the input `input`
/// (in the paragraph its `aria-describedby` names).
fn beside(html: &str, input: &str, message: &str) {
    let at = html
        .find(&format!(r#"id="{input}-error""#))
        .unwrap_or_else(|| panic!("no message beside {input}: {html}"));
    let end = html[at..].find("</p>").unwrap() + at;
    assert!(html[at..end].contains(message), "{input}: {html}");
}

/// "Add a value" with a bad date and a bad value named only the value;
/// now every mistake is named, beside its field, as for a new measure.
#[test]
fn add_value_names_every_mistake() {
    let home = Home::initialised();
    let id = flow_project(&home);
    let daemon = Daemon::start(&home, &[]);
    let cookie = sign_in(&home);
    let (status, _, html) = post_form(
        &cookie,
        &format!("{}e/{id}/data", daemon.web),
        &[("measure", "Stays"), ("date", "soon"), ("value", "lots")],
    );
    // Both named, each beside its own field, and what was typed kept.
    assert_eq!(status, 422, "{html}");
    beside(&html, "dp0-value", "&quot;lots&quot; is not a number");
    beside(&html, "dp0-date", "&quot;soon&quot; is not a date");
    assert!(html.contains(r#"value="lots""#), "{html}");
    assert!(html.contains("Please check 2 things"), "{html}");

    // The same for a new measure: a target that is not a number and a
    // name the project already has, each beside its field.
    let (status, _, html) = post_form(
        &cookie,
        &format!("{}e/{id}/measures", daemon.web),
        &[("measure_name", "Stays"), ("measure_target", "high")],
    );
    assert_eq!(status, 422, "{html}");
    beside(
        &html,
        "nm-measure_target",
        "&quot;high&quot; is not a number",
    );
    // (The duplicate name is found once the typed measure reads cleanly.)
    let (status, _, html) = post_form(
        &cookie,
        &format!("{}e/{id}/measures", daemon.web),
        &[("measure_name", "Stays"), ("measure_target", "5")],
    );
    assert_eq!(status, 422, "{html}");
    assert!(
        html.contains(r#"id="nm-measure_name-error""#)
            && html.contains("already has a measure called"),
        "{html}"
    );
}

/// A measure's rebase names a PDSA cycle by its change idea: renaming the
/// idea on the page keeps the link, and removing a cycle a rebase needs is
/// refused with why.
#[test]
fn renaming_a_pdsa_cycle_keeps_the_rebase_that_names_it() {
    let home = Home::initialised();
    let file = home.write(
        "project.json",
        r#"{"title": "Flow", "pdsa": [{"change_idea": "Board round", "started": "2026-02-01"}],
            "measures": [{"name": "Stays", "rebase": [{"date": "2026-02-01", "pdsa": "Board round"}]}]}"#,
    );
    let id = home
        .stdout(&["publish", "project", "--from", file.to_str().unwrap()])
        .trim()
        .to_string();
    let daemon = Daemon::start(&home, &[]);
    let cookie = sign_in(&home);
    let url = format!("{}e/{id}/pdsa/0", daemon.web);
    let (status, _, html) = post_form(
        &cookie,
        &url,
        &[
            ("opened", "Board round"),
            ("change_idea", "Board round at 9"),
            ("started", "2026-02-01"),
        ],
    );
    assert_eq!(status, 303, "{html}");
    let shown = home.json(&["show", &id, "--json"]);
    assert_eq!(
        shown["measures"][0]["rebase"][0]["pdsa"],
        "Board round at 9"
    );
    let (status, _, html) = post_form(
        &cookie,
        &url,
        &[
            ("opened", "Board round at 9"),
            ("change_idea", "Board round at 9"),
            ("remove", "yes"),
        ],
    );
    assert_eq!(status, 422, "{html}");
    assert!(html.contains("starts a new period on 2026-02-01"), "{html}");
    assert_eq!(
        home.json(&["show", &id, "--json"])["pdsa"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

/// A retracted entry can no longer be edited, so its page offers no edits.
#[test]
fn a_retracted_entry_offers_no_edits() {
    let home = Home::initialised();
    let id = flow_project(&home);
    home.stdout(&["retract", &id]);
    let daemon = Daemon::start(&home, &[]);
    let cookie = sign_in(&home);
    let (status, html) = page(&cookie, &format!("{}e/{id}", daemon.web));
    assert_eq!(status, 200);
    for offer in ["/edit\"", "Add value", "Add measure", "Add PDSA cycle"] {
        assert!(!html.contains(offer), "{offer} on a retracted entry");
    }
}

/// The edit form moved a contact's email and phone to the end of its
/// channels and dropped a second email, so saving it unchanged wrote.
#[test]
fn saving_a_contact_unchanged_keeps_its_channels() {
    let home = Home::initialised();
    let file = home.write(
        "contact.json",
        r#"{"name": "Sam Lee", "consent": {"given_by": "Sam Lee"},
            "channels": [
              {"channel": "phone", "value": "0191 000 0000"},
              {"channel": "email", "value": "sam@example.org"},
              {"channel": "email", "value": "sam.lee@example.org"}
            ]}"#,
    );
    let id = home
        .stdout(&["publish", "contact", "--from", file.to_str().unwrap()])
        .trim()
        .to_string();
    let before = home.json(&["show", &id, "--json", "--history"]);
    let daemon = Daemon::start(&home, &[]);
    let cookie = sign_in(&home);
    let url = format!("{}e/{id}/edit", daemon.web);
    let (status, _, html) = post_form(
        &cookie,
        &url,
        &[
            ("name", "Sam Lee"),
            ("visibility", before["visibility"].as_str().unwrap()),
            ("email", "sam@example.org"),
            ("phone", "0191 000 0000"),
        ],
    );
    assert_eq!(status, 303, "{html}");
    let after = home.json(&["show", &id, "--json", "--history"]);
    assert_eq!(after["channels"], before["channels"]);
    assert_eq!(after["history"], before["history"], "nothing written");
    // A new phone number changes that channel where it is.
    post_form(
        &cookie,
        &url,
        &[
            ("name", "Sam Lee"),
            ("visibility", before["visibility"].as_str().unwrap()),
            ("email", "sam@example.org"),
            ("phone", "0191 111 1111"),
        ],
    );
    let after = home.json(&["show", &id, "--json"]);
    assert_eq!(after["channels"][0]["value"], "0191 111 1111");
    assert_eq!(after["channels"][2]["value"], "sam.lee@example.org");
}
