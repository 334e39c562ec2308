//! End to end in headless Chromium (WebDriver, through chromedriver): the
//! demo community, a project published with a measure through one node's
//! web app, its run chart, and the project found by search on another
//! node's web app; signed in to two nodes at once, then signed out of one.
//! Screenshots of the main pages go to `target/tmp/screenshots/`.
//!
//! Needs Debian's `chromium` and `chromium-driver` (CI installs them). Where
//! they are missing the test says so and passes, unless
//! `CONVENE_REQUIRE_BROWSER=1` (set by CI), when it fails. When it has run
//! to the end it writes `ran` to the file `CONVENE_BROWSER_RAN` names, if
//! set: CI fails when that file is missing, so a skip (or a test filtered
//! out or ignored) cannot pass unseen.

mod support;

use std::path::PathBuf;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use support::{Daemon, DemoRun, Home, port_of, wait_for};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

struct Driver {
    child: std::process::Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_driver() -> Option<Driver> {
    let present =
        std::path::Path::new(CHROMEDRIVER).exists() && std::path::Path::new(CHROMIUM).exists();
    if !present {
        assert!(
            std::env::var("CONVENE_REQUIRE_BROWSER").is_err(),
            "CONVENE_REQUIRE_BROWSER is set but {CHROMEDRIVER} or {CHROMIUM} is missing"
        );
        eprintln!("skipping the browser test: install chromium and chromium-driver to run it");
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = std::process::Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start chromedriver");
    wait_for(Duration::from_secs(20), "chromedriver to listen", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    });
    Some(Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    })
}

async fn browser(driver: &Driver, profile: &std::path::Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": CHROMIUM,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1280,1000",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a Chromium session")
}

fn screenshots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn shot(c: &Client, name: &str) {
    let png = c.screenshot().await.expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    std::fs::write(screenshots().join(format!("{name}.png")), png).unwrap();
}

async fn fill(c: &Client, css: &str, text: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"))
        .send_keys(text)
        .await
        .unwrap();
}

async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"))
        .click()
        .await
        .unwrap();
}

async fn js(c: &Client, script: &str) -> serde_json::Value {
    c.execute(script, Vec::new()).await.expect("script runs")
}

#[test]
fn publish_a_project_see_its_run_chart_and_find_it_from_another_node() {
    let Some(driver) = start_driver() else { return };
    let mut demo = DemoRun::start();
    let profile = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let c = browser(&driver, profile.path()).await;
        // Sign in to the trust's node and browse.
        c.goto(&demo.sign_ins[0]).await.unwrap();
        let title = c.title().await.unwrap();
        assert_eq!(title, "Browse · Convene");
        shot(&c, "browse").await;
        // Keyboard: the first Tab reaches the skip link.
        c.find(Locator::Css("body"))
            .await
            .unwrap()
            .send_keys("\u{E004}")
            .await
            .unwrap();
        assert_eq!(
            js(&c, "return document.activeElement.textContent").await,
            "Skip to content"
        );

        // Publish a project with a measure and values.
        click(&c, "nav a[href='/new/project']").await;
        wait_for_page(&c, "/new/project").await;
        fill(&c, "#f-title", "Hospital at home for frail older people").await;
        fill(&c, "#f-summary", "Acute care at home instead of a hospital bed.").await;
        click(&c, "input[name=priorities][value=discharge-and-safe-transfers-of-care]").await;
        fill(&c, "#f-measure-name", "Bed days saved").await;
        fill(&c, "#f-measure-unit", "days per week").await;
        fill(
            &c,
            "#f-measure-data",
            "2026-03-02, 12\n2026-03-09, 15\n2026-03-16, 14\n2026-03-23, 19\n2026-03-30, 22\n2026-04-06, 24\n2026-04-13, 23",
        )
        .await;
        assert_eq!(unlabelled(&c).await, 0, "every field has a label");
        shot(&c, "new-project").await;
        click(&c, "form.entry-form button[type=submit]").await;
        wait_for_page(&c, "/e/").await;

        // Its run chart: one point per value, the median labelled.
        let chart = c.find(Locator::Css("svg.run-chart")).await.expect("a run chart");
        let label = chart.attr("aria-labelledby").await.unwrap().unwrap();
        assert!(label.ends_with("-desc"));
        assert_eq!(
            c.find_all(Locator::Css("svg.run-chart circle")).await.unwrap().len(),
            7
        );
        let median = c.find(Locator::Css("svg .median-label")).await.unwrap().text().await.unwrap();
        assert_eq!(median, "Median 19");
        assert_eq!(unlabelled(&c).await, 0, "every field has a label");
        shot(&c, "project-run-chart").await;
        js(&c, "document.querySelector('svg.run-chart').scrollIntoView()").await;
        let png = chart.screenshot().await.expect("a screenshot of the chart");
        std::fs::write(screenshots().join("run-chart.png"), png).unwrap();

        // Readable on a phone: nothing wider than the screen.
        c.set_window_size(390, 844).await.unwrap();
        let overflow = js(
            &c,
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth",
        )
        .await;
        assert!(overflow.as_i64().unwrap() <= 0, "scrolls sideways by {overflow}");
        shot(&c, "project-phone").await;
        c.set_window_size(1280, 1000).await.unwrap();

        // Another organisation's node finds it by search once synced.
        c.goto(&demo.sign_ins[1]).await.unwrap();
        let found = wait_for_search(&c, &demo.webs[1], "hospital at home").await;
        assert!(found, "the council's web app finds the project");
        shot(&c, "search-other-node").await;
        click(&c, "ol.entries a.title").await;
        wait_for_page(&c, "/e/").await;
        c.find(Locator::Css("svg.run-chart")).await.expect("the chart there too");
        // Its files are listed there, but only the owner may add one.
        c.find(Locator::Css("#files")).await.expect("an Attachments section");
        assert!(c.find(Locator::Css("form.upload")).await.is_err(), "no upload form for another organisation");

        c.goto(&format!("{}community", demo.webs[1])).await.unwrap();
        let text = c.find(Locator::Css("main")).await.unwrap().text().await.unwrap();
        assert!(text.contains("Tyneside Hospitals NHS Foundation Trust"), "{text}");
        assert!(text.contains("steward"));
        shot(&c, "community").await;

        // Signed in to two nodes on one computer at once: one cookie each,
        // named for its port, neither the API token, script cannot read it.
        let cookies = c.get_all_cookies().await.unwrap();
        let mut names: Vec<String> = cookies.iter().map(|k| k.name().to_string()).collect();
        names.sort();
        let mut wanted: Vec<String> = demo.webs[..2].iter().map(|w| format!("convene_session_{}", port_of(w))).collect();
        wanted.sort();
        assert_eq!(names, wanted);
        for (web, home) in demo.webs[..2].iter().zip(&demo.homes) {
            let name = format!("convene_session_{}", port_of(web));
            let k = cookies.iter().find(|k| k.name() == name).unwrap();
            assert_eq!(k.http_only(), Some(true), "{name}");
            let token = std::fs::read_to_string(home.join("web-token")).unwrap();
            assert_ne!(k.value(), token.trim(), "{name} is not the API token");
        }
        assert_eq!(js(&c, "return document.cookie").await, "");
        c.goto(&demo.webs[0]).await.unwrap();
        assert_eq!(c.title().await.unwrap(), "Browse · Convene", "still signed in to the first node");

        // The Sign out button signs this browser out of that node only.
        click(&c, "header form.sign-out button").await;
        wait_for_page(&c, "/signed-out").await;
        assert_eq!(c.title().await.unwrap(), "Signed out · Convene");
        shot(&c, "signed-out").await;
        c.goto(&demo.webs[0]).await.unwrap();
        assert_eq!(c.title().await.unwrap(), "Not signed in · Convene");
        c.goto(&demo.webs[1]).await.unwrap();
        assert_eq!(c.title().await.unwrap(), "Browse · Convene", "the other node's session stays");

        // Sign out everywhere, on the Community page.
        c.goto(&format!("{}community", demo.webs[1])).await.unwrap();
        c.find(Locator::Css("form.sign-out-everywhere button")).await.expect("Sign out everywhere");
        js(&c, "document.querySelector('form.sign-out-everywhere').scrollIntoView()").await;
        shot(&c, "sign-out-everywhere").await;
        c.set_window_size(390, 844).await.unwrap();
        js(&c, "window.scrollTo(0, 0)").await;
        shot(&c, "community-phone").await;
        c.set_window_size(1280, 1000).await.unwrap();
        click(&c, "form.sign-out-everywhere button").await;
        wait_for_page(&c, "/signed-out").await;
        c.goto(&demo.webs[1]).await.unwrap();
        assert_eq!(c.title().await.unwrap(), "Not signed in · Convene");
        c.close().await.unwrap();
    });
    assert!(demo.interrupt().success());
    if let Some(marker) = std::env::var_os("CONVENE_BROWSER_RAN") {
        std::fs::write(marker, "ran\n").unwrap();
    }
}

/// Attachments on an entry page: a file chosen with the picker is uploaded
/// and listed; a file dropped on the drop zone fills the picker; a file
/// over the node's limit is refused beside the field before it is sent.
#[test]
fn upload_files_through_the_picker_and_by_dropping_them() {
    let Some(driver) = start_driver() else { return };
    let home = Home::initialised();
    home.stdout(&["config", "set", "files.max_file_mb", "1"]);
    home.stdout(&["config", "set", "files.auto_fetch_mb", "0"]);
    let id = home.publish("Summit on discharge: slides and posters");
    let daemon = Daemon::start(&home, &[]);
    let sign_in = home.stdout(&["open", "--print"]).trim().to_string();
    let work = tempfile::tempdir().unwrap();
    let report = work.path().join("Evaluation report (final).pdf");
    let bytes: Vec<u8> = (0..250_000u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(&report, &bytes).unwrap();
    let big = work.path().join("too big.pptx");
    std::fs::write(&big, vec![7u8; 1_500_000]).unwrap();
    let profile = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let c = browser(&driver, profile.path()).await;
        c.goto(&sign_in).await.unwrap();
        c.goto(&format!("{}e/{id}", daemon.web)).await.unwrap();
        c.find(Locator::Css("#files")).await.expect("an Attachments section");
        assert_eq!(unlabelled(&c).await, 0, "every field has a label");
        let hint = c.find(Locator::Css(".drop-hint")).await.unwrap();
        assert!(hint.is_displayed().await.unwrap(), "the script offers dropping");

        // Too big: said beside the field, nothing sent.
        c.find(Locator::Css("#f-file"))
            .await
            .unwrap()
            .send_keys(big.to_str().unwrap())
            .await
            .unwrap();
        let error = c.find(Locator::Css("#f-file-error")).await.unwrap();
        assert!(error.is_displayed().await.unwrap());
        let text = error.text().await.unwrap();
        assert!(text.contains("larger than 1.0 MB"), "{text}");
        click(&c, "form.upload button[type=submit]").await;
        assert!(c.current_url().await.unwrap().path().ends_with(&id), "not sent");
        js(&c, "document.querySelector('#files').scrollIntoView()").await;
        shot(&c, "attachments-too-big").await;

        // Chosen with the picker and uploaded.
        c.find(Locator::Css("#f-file"))
            .await
            .unwrap()
            .send_keys(report.to_str().unwrap())
            .await
            .unwrap();
        assert!(!error.is_displayed().await.unwrap(), "the error goes");
        click(&c, "form.upload button[type=submit]").await;
        wait_for_listed(&c, "Evaluation report (final).pdf").await;

        // Dropped on the zone: the picker holds it, with a custom name.
        js(
            &c,
            "const dt = new DataTransfer();\
             dt.items.add(new File(['x'], 'x.txt'));\
             document.querySelector('.drop-zone').dispatchEvent(new DragEvent('dragenter', {dataTransfer: dt, bubbles: true, cancelable: true}));\
             document.querySelector('#files').scrollIntoView();",
        )
        .await;
        c.find(Locator::Css(".drop-zone.dragging")).await.expect("the zone shows a file is over it");
        shot(&c, "attachments-dragging").await;
        js(
            &c,
            "const dt = new DataTransfer();\
             dt.items.add(new File(['Minutes of the summit'], 'minutes.txt', {type: 'text/plain'}));\
             const zone = document.querySelector('.drop-zone');\
             zone.dispatchEvent(new DragEvent('dragover', {dataTransfer: dt, bubbles: true, cancelable: true}));\
             zone.dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));",
        )
        .await;
        assert_eq!(
            js(&c, "return document.querySelector('#f-file').files[0].name").await,
            "minutes.txt"
        );
        let status = c.find(Locator::Css(".upload-status")).await.unwrap().text().await.unwrap();
        assert!(status.contains("minutes.txt is ready"), "{status}");
        fill(&c, "#f-file-name", "Summit minutes.txt").await;
        click(&c, "form.upload button[type=submit]").await;
        wait_for_listed(&c, "Summit minutes.txt").await;
        js(&c, "document.querySelector('#files').scrollIntoView()").await;
        shot(&c, "attachments").await;

        // Bytes that are not here (gone from the file store): no link, but
        // a Fetch button that asks the daemon for them.
        let minutes = home.json_lines(&["files", &id, "--json"])[1]["hash"].as_str().unwrap().to_string();
        std::fs::remove_file(home.path().join("files").join(&minutes[..2]).join(&minutes[2..])).unwrap();
        c.refresh().await.unwrap();
        js(&c, "document.querySelector('#files').scrollIntoView()").await;
        shot(&c, "attachments-fetch").await;
        click(&c, "form.fetch button").await;
        wait_for_page(&c, "/e/").await;
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        loop {
            // The page may be replaced between finding the element and
            // reading it (a stale element): read again until the deadline.
            let text = match c.find(Locator::Css("#files")).await {
                Ok(e) => e.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if text.contains("no connected member has it yet") {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{text}");
            tokio::time::sleep(Duration::from_millis(200)).await;
            c.refresh().await.unwrap();
        }
        js(&c, "document.querySelector('#files').scrollIntoView()").await;
        shot(&c, "attachments-not-held").await;
        c.set_window_size(390, 844).await.unwrap();
        js(&c, "document.querySelector('#files').scrollIntoView()").await;
        let overflow = js(
            &c,
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth",
        )
        .await;
        shot(&c, "attachments-phone").await;
        let wide = js(
            &c,
            "return [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth).map(e => e.tagName + '.' + e.className + '#' + e.id).slice(0, 8).join(' ')",
        )
        .await;
        assert!(overflow.as_i64().unwrap() <= 0, "scrolls sideways by {overflow}: {wide}");
        c.close().await.unwrap();
    });
    let files = home.json_lines(&["files", &id, "--json"]);
    assert_eq!(files.len(), 2);
    assert_eq!(files[0]["name"], "Evaluation report (final).pdf");
    assert_eq!(files[0]["size"], 250_000);
    assert_eq!(files[1]["name"], "Summit minutes.txt");
    assert_eq!(files[1]["size"], 21);
    assert_eq!(files[1]["held"], false);
    drop(daemon);
}

/// Waits until the entry page lists a file called `name`.
async fn wait_for_listed(c: &Client, name: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if js(c, "return document.readyState").await == "complete" {
            let names = js(
                c,
                "return [...document.querySelectorAll('table.files td:first-child')].map(t => t.textContent)",
            )
            .await;
            if names
                .as_array()
                .is_some_and(|n| n.iter().any(|t| t == name))
            {
                return;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{name} is not listed after 20 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// How many form fields on the page have no label.
async fn unlabelled(c: &Client) -> i64 {
    js(
        c,
        "return [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]\
            .filter(e => e.labels.length === 0).length",
    )
    .await
    .as_i64()
    .expect("a count")
}

/// Waits (with a deadline) until the browser shows a page under `prefix`:
/// a click that submits a form returns before the next page loads.
async fn wait_for_page(c: &Client, prefix: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let url = c.current_url().await.unwrap();
        let loaded = js(c, "return document.readyState").await == "complete";
        let here = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        };
        if here.starts_with(prefix) && loaded {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still on {url} after 20 s, not {prefix}…"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Searches until the results list the project (sync takes a moment).
async fn wait_for_search(c: &Client, base: &str, words: &str) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        c.goto(base).await.unwrap();
        fill(c, "#f-q", words).await;
        click(c, "form.filters button[type=submit]").await;
        wait_for_page(c, "/?q=").await;
        let titles = c
            .find_all(Locator::Css("ol.entries a.title"))
            .await
            .unwrap();
        for t in titles {
            if t.text().await.unwrap().contains("Hospital at home") {
                return true;
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    false
}
