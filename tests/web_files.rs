//! Files in the web app, over HTTP against a real `convene node start`:
//! uploads through the entry page's form and the API, downloads that can
//! never run in the web app's origin, and the attacks replayed: another
//! organisation's upload, a cross-site form post, an over-limit file, a
//! dropped connection, hostile names. Whatever is refused leaves no bytes
//! and no record behind.

mod support;

use support::{agent, sign_in};

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use support::{Daemon, Home};

fn token(home: &Home) -> String {
    std::fs::read_to_string(home.path().join("web-token"))
        .unwrap()
        .trim()
        .to_string()
}

/// A browser tab signed in to one node's web app.
struct Browser {
    base: String,
    cookie: String,
}

struct Answer {
    status: u16,
    headers: ureq::http::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    }
}

fn answer(mut r: ureq::http::Response<ureq::Body>) -> Answer {
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let mut body = Vec::new();
    r.body_mut()
        .with_config()
        .limit(u64::MAX)
        .reader()
        .read_to_end(&mut body)
        .unwrap();
    Answer {
        status,
        headers,
        body,
    }
}

/// One part of a `multipart/form-data` body: a field name, a file name
/// (for a file), the bytes.
type Part<'a> = (&'a str, Option<&'a str>, &'a [u8]);

const BOUNDARY: &str = "----convene-test-boundary-7d3f0a";

fn multipart(parts: &[Part]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, file, data) in parts {
        body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        match file {
            Some(f) => body.extend_from_slice(
                format!(
                    "Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                )
                .as_bytes(),
            ),
            None => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            ),
        }
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

impl Browser {
    fn new(home: &Home, daemon: &Daemon) -> Self {
        Self {
            base: daemon.web.trim_end_matches('/').to_string(),
            cookie: sign_in(home),
        }
    }

    fn get(&self, path: &str) -> Answer {
        answer(
            agent()
                .get(format!("{}{path}", self.base))
                .header("Cookie", &self.cookie)
                .call()
                .unwrap(),
        )
    }

    /// Posts the upload form as the browser would from the entry page.
    fn upload(&self, id: &str, parts: &[Part]) -> Answer {
        self.upload_from(id, parts, &self.base.clone())
    }

    fn upload_from(&self, id: &str, parts: &[Part], origin: &str) -> Answer {
        answer(
            agent()
                .post(format!("{}/e/{id}/files", self.base))
                .header("Cookie", &self.cookie)
                .header("Origin", origin)
                .header(
                    "Content-Type",
                    format!("multipart/form-data; boundary={BOUNDARY}"),
                )
                .send(&multipart(parts)[..])
                .unwrap(),
        )
    }
}

/// Every regular file under `dir`, recursively, but for the hash trees
/// (`.obao`) kept beside stored content, which hold hashes, not content.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else if p.extension().is_none_or(|x| x != "obao") {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// The file store's files: held content and temporary files of uploads
/// (not the partial downloads, `.part-*`, of files the node is fetching).
fn stored_files(home: &Home) -> Vec<PathBuf> {
    files_under(&home.path().join("files"))
        .into_iter()
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(".part-"))
        })
        .collect()
}

fn listed(home: &Home, id: &str) -> Vec<Value> {
    home.json_lines(&["files", id, "--json"])
}

fn content(n: usize, seed: u32) -> Vec<u8> {
    (0..n as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(seed) >> 13) as u8)
        .collect()
}

/// The text of the error paragraph with `id` on a page (empty if none).
fn error_beside(html: &str, id: &str) -> String {
    let Some(start) = html.find(&format!("id=\"{id}\"")) else {
        return String::new();
    };
    let rest = &html[start..];
    let open = rest.find('>').unwrap() + 1;
    let close = rest.find("</p>").unwrap();
    rest[open..close]
        .replace("<span class=\"visually-hidden\">Error: </span>", "")
        .replace("&quot;", "\"")
}

/// A download is a download: never rendered, never sniffed, never script.
fn assert_inert(a: &Answer, name: &str) {
    assert_eq!(a.status, 200, "{}", a.text());
    let disposition = a.header("content-disposition");
    assert!(
        disposition.starts_with("attachment;"),
        "{name}: {disposition}"
    );
    assert_eq!(a.header("x-content-type-options"), "nosniff", "{name}");
    let csp = a.header("content-security-policy");
    assert!(csp.contains("sandbox"), "{name}: {csp}");
    let t = a.header("content-type");
    assert!(
        !t.contains("html") && !t.contains("svg") && !t.contains("xml") && !t.contains("script"),
        "{name} served as {t}"
    );
}

#[test]
fn the_owner_uploads_through_the_form_and_downloads_the_same_bytes() {
    let home = Home::initialised();
    let id = home.publish("Summit: what we learned about discharge");
    let daemon = Daemon::start(&home, &[]);
    let b = Browser::new(&home, &daemon);

    // The page offers the form, with the limit and a drop zone's script.
    let page = b.get(&format!("/e/{id}")).text();
    assert!(
        page.contains("<h2 id=\"files-h\">Attachments</h2>"),
        "{page}"
    );
    assert!(page.contains("No files yet."));
    assert!(page.contains("enctype=\"multipart/form-data\""));
    assert!(page.contains("<label for=\"f-file\">File</label>"));
    assert!(page.contains("<label for=\"f-file-name\">Name (optional)</label>"));
    assert!(page.contains("up to 200.0 MB"), "{page}");
    assert!(page.contains("<script src=\"/files.js\" defer>"));
    let script = agent().get(format!("{}/files.js", b.base)).call().unwrap();
    assert_eq!(script.status().as_u16(), 200);

    // A 3 MB report through the form: redirected back to the list.
    let report = content(3_000_000, 7);
    let hash = blake3::hash(&report).to_hex().to_string();
    let r = b.upload(
        &id,
        &[
            ("file", Some("evaluation report.pdf"), &report),
            ("name", None, b""),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(r.header("location"), format!("/e/{id}#files"));
    let page = b.get(&format!("/e/{id}")).text();
    assert!(page.contains("evaluation report.pdf"), "{page}");
    assert!(page.contains("3.0 MB"));
    assert!(
        page.contains("title=\"application/pdf\">PDF</td>"),
        "{page}"
    );
    assert!(page.contains(&hash[..12]), "the short hash");
    let href = format!("/e/{id}/files/evaluation%20report.pdf");
    assert!(page.contains(&format!("href=\"{href}\"")), "{page}");
    let files = listed(&home, &id);
    assert_eq!(files.len(), 1);
    assert_eq!(files[0]["hash"], hash.as_str());
    assert_eq!(files[0]["held"], true);

    // Downloaded: the same bytes, as an attachment.
    let d = b.get(&href);
    assert_inert(&d, "the report");
    assert_eq!(d.header("content-type"), "application/pdf");
    assert_eq!(d.header("content-length"), "3000000");
    assert_eq!(
        d.header("content-disposition"),
        "attachment; filename=\"evaluation report.pdf\"; filename*=UTF-8''evaluation%20report.pdf"
    );
    assert!(d.body == report, "identical bytes");

    // The API: the entry lists it, and the same download with the token.
    let auth = format!("Bearer {}", token(&home));
    let mut r = agent()
        .get(format!("{}/api/entries/{id}", b.base))
        .header("Authorization", &auth)
        .call()
        .unwrap();
    let entry: Value = r.body_mut().read_json().unwrap();
    assert_eq!(entry["attachments"][0]["name"], "evaluation report.pdf");
    assert_eq!(entry["attachments"][0]["hash"], hash.as_str());
    let mut r = agent()
        .get(format!("{}/api/entries/{id}/files", b.base))
        .header("Authorization", &auth)
        .call()
        .unwrap();
    let list: Value = r.body_mut().read_json().unwrap();
    assert_eq!(list[0]["held"], true);
    let api_href = list[0]["href"].as_str().unwrap().to_string();
    let d = answer(
        agent()
            .get(format!("{}{api_href}", b.base))
            .header("Authorization", &auth)
            .call()
            .unwrap(),
    );
    assert_inert(&d, "the report through the API");
    assert!(d.body == report);

    // Uploaded through the API (the body is the file).
    let notes = b"Notes from table 4.\n".to_vec();
    let mut r = agent()
        .post(format!("{}/api/entries/{id}/files?name=notes.txt", b.base))
        .header("Authorization", &auth)
        .header("Content-Type", "application/octet-stream")
        .send(&notes[..])
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let added: Value = r.body_mut().read_json().unwrap();
    assert_eq!(added["name"], "notes.txt");
    assert_eq!(added["size"], notes.len());
    // Not as JSON, not as a form: refused before anything is read.
    let r = agent()
        .post(format!("{}/api/entries/{id}/files?name=x.txt", b.base))
        .header("Authorization", &auth)
        .header("Content-Type", "text/plain")
        .send("x")
        .unwrap();
    assert_eq!(r.status().as_u16(), 415);
    assert_eq!(listed(&home, &id).len(), 2);

    // Signed out: nothing.
    let r = agent().get(format!("{}{href}", b.base)).call().unwrap();
    assert_eq!(r.status().as_u16(), 401);
    // An unknown file and an unknown entry: one and the same 404 page.
    let a = b.get(&format!("/e/{id}/files/other.pdf"));
    let c = b.get("/e/5Yr8notanentry/files/evaluation%20report.pdf");
    assert_eq!((a.status, c.status), (404, 404));
    assert_eq!(a.text(), c.text());
    drop(daemon);
}

#[test]
fn html_and_svg_with_scripts_download_as_inert_attachments_and_names_are_sanitised() {
    let home = Home::initialised();
    let id = home.publish("Posters from the summit");
    let daemon = Daemon::start(&home, &[]);
    let b = Browser::new(&home, &daemon);
    let html =
        b"<!doctype html><script>fetch('/api/status').then(r=>r.text()).then(alert)</script>";
    let svg = br#"<svg xmlns="http://www.w3.org/2000/svg" onload="alert(document.cookie)"><script>alert(1)</script></svg>"#;
    for (name, bytes) in [("poster.html", &html[..]), ("driver-diagram.svg", &svg[..])] {
        let r = b.upload(&id, &[("file", Some(name), bytes)]);
        assert_eq!(r.status, 303, "{name}: {}", r.text());
        let d = b.get(&format!("/e/{id}/files/{name}"));
        assert_inert(&d, name);
        assert_eq!(
            d.header("content-type"),
            "application/octet-stream",
            "{name}"
        );
        assert!(d.body == bytes);
    }
    // Through the API too, whatever the document says the type is.
    let auth = format!("Bearer {}", token(&home));
    let d = answer(
        agent()
            .get(format!("{}/api/entries/{id}/files/poster.html", b.base))
            .header("Authorization", &auth)
            .call()
            .unwrap(),
    );
    assert_inert(&d, "poster.html via the API");
    assert_eq!(d.header("content-type"), "application/octet-stream");

    // A file name that climbs out of folders keeps only its last part; a
    // typed name with control characters has them replaced.
    let before = files_under(Path::new("/etc")).len();
    let r = b.upload(&id, &[("file", Some("../../etc/passwd"), b"root:x:0:0")]);
    assert_eq!(r.status, 303, "{}", r.text());
    let r = b.upload(
        &id,
        &[
            (
                "name",
                None,
                "minutes\u{7}\r\nSet-Cookie: x=1\u{1b}[31m.txt".as_bytes(),
            ),
            ("file", Some("minutes.txt"), b"Minutes"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.text());
    let names: Vec<String> = listed(&home, &id)
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        names,
        [
            "poster.html",
            "driver-diagram.svg",
            "passwd",
            "minutes___Set-Cookie_ x=1_[31m.txt"
        ]
    );
    assert_eq!(files_under(Path::new("/etc")).len(), before);
    for f in stored_files(&home) {
        assert!(f.starts_with(home.path().join("files")), "{}", f.display());
    }
    let d = b.get(&format!(
        "/e/{id}/files/{}",
        "minutes___Set-Cookie_%20x%3D1_%5B31m.txt"
    ));
    assert_inert(&d, "minutes");
    assert_eq!(
        d.header("content-disposition"),
        "attachment; filename=\"minutes___Set-Cookie_ x=1_[31m.txt\"; filename*=UTF-8''minutes___Set-Cookie_%20x%3D1_%5B31m.txt"
    );
    assert!(d.header("set-cookie").is_empty());

    // A name that is nothing once cleaned, and a name already taken: the
    // form comes back with one sentence beside the name, and nothing stays.
    let stored = stored_files(&home);
    let r = b.upload(
        &id,
        &[
            ("name", None, b".."),
            ("file", Some("a.bin"), b"fresh bytes 1"),
        ],
    );
    assert_eq!(r.status, 400);
    assert_eq!(
        error_beside(&r.text(), "f-file-name-error"),
        "\"..\" is not a usable file name; give the file another name."
    );
    assert!(r.text().contains("value=\"..\""), "what was typed stays");
    let r = b.upload(&id, &[("file", Some("passwd"), b"fresh bytes 2")]);
    assert_eq!(r.status, 409);
    assert_eq!(
        error_beside(&r.text(), "f-file-name-error"),
        "This entry already has a file named \"passwd\"; give this one another name."
    );
    // No file chosen, and an empty one.
    let r = b.upload(&id, &[("file", Some(""), b""), ("name", None, b"")]);
    assert_eq!(r.status, 400);
    assert_eq!(
        error_beside(&r.text(), "f-file-error"),
        "Choose a file to upload."
    );
    let r = b.upload(&id, &[("file", Some("empty.pdf"), b"")]);
    assert_eq!(r.status, 400);
    assert_eq!(
        error_beside(&r.text(), "f-file-error"),
        "The file is empty (0 bytes); choose the file again."
    );
    assert_eq!(stored_files(&home), stored, "refusals store nothing");
    assert_eq!(listed(&home, &id).len(), 4);

    // A contact takes no files.
    let contact = home
        .stdout(&[
            "publish",
            "contact",
            "--name",
            "Sam Lee",
            "--email",
            "sam@example.org",
            "--consent",
        ])
        .trim()
        .to_string();
    let page = b.get(&format!("/e/{contact}")).text();
    assert!(!page.contains("Attachments"), "{page}");
    let r = b.upload(&contact, &[("file", Some("cv.pdf"), b"cv")]);
    assert_eq!(r.status, 422);
    assert!(r.text().contains("cannot have files"), "{}", r.text());
    assert_eq!(stored_files(&home), stored);
    drop(daemon);
}

#[test]
fn an_upload_over_the_limit_or_cut_off_leaves_no_bytes_and_no_record() {
    let home = Home::initialised();
    home.stdout(&["config", "set", "files.max_file_mb", "1"]);
    let id = home.publish("Slides");
    let daemon = Daemon::start(&home, &[]);
    let b = Browser::new(&home, &daemon);
    let page = b.get(&format!("/e/{id}")).text();
    assert!(page.contains("up to 1.0 MB"), "{page}");
    assert!(page.contains("data-max=\"1000000\""));

    let big = content(1_500_000, 3);
    let r = b.upload(
        &id,
        &[
            ("name", None, b"deck.pptx"),
            ("file", Some("deck.pptx"), &big),
        ],
    );
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(
        error_beside(&r.text(), "f-file-error"),
        "The file is larger than 1.0 MB, the most this node accepts for one file."
    );
    assert!(r.text().contains("value=\"deck.pptx\""));
    // Just over: one byte more than the limit.
    let over = content(1_000_001, 4);
    let r = b.upload(&id, &[("file", Some("deck.pptx"), &over)]);
    assert_eq!(r.status, 413);
    // Through the API, declared and not.
    let auth = format!("Bearer {}", token(&home));
    let r = agent()
        .post(format!("{}/api/entries/{id}/files?name=deck.pptx", b.base))
        .header("Authorization", &auth)
        .header("Content-Type", "application/octet-stream")
        .send(&over[..])
        .map(|r| r.status().as_u16());
    // The server answers before reading a body it has already refused; the
    // client may see the answer or a closed connection, never a success.
    assert!(!matches!(r, Ok(201)), "{r:?}");
    assert!(stored_files(&home).is_empty(), "{:?}", stored_files(&home));
    assert!(listed(&home, &id).is_empty());

    // Exactly at the limit is fine.
    let fits = content(1_000_000, 5);
    let r = b.upload(&id, &[("file", Some("deck.pptx"), &fits)]);
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(stored_files(&home).len(), 1);

    // A browser that goes away half way through an upload.
    let before = stored_files(&home);
    let body = multipart(&[("file", Some("cut.bin"), &content(800_000, 6))]);
    let addr = b.base.trim_start_matches("http://").to_string();
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        s,
        "POST /e/{id}/files HTTP/1.1\r\nHost: {addr}\r\nCookie: {}\r\nOrigin: {}\r\nContent-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {}\r\n\r\n",
        b.cookie,
        b.base,
        body.len()
    )
    .unwrap();
    s.write_all(&body[..body.len() / 2]).unwrap();
    s.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    drop(s);
    support::wait_for(
        Duration::from_secs(10),
        "the cut-off upload to be dropped",
        || (stored_files(&home) == before).then_some(()),
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(stored_files(&home), before, "no temporary file, no blob");
    assert_eq!(listed(&home, &id).len(), 1);
    drop(daemon);
}

#[test]
fn another_organisation_sees_no_upload_form_and_its_uploads_are_refused() {
    let trust = Home::initialised();
    let id = trust.publish("Virtual wards: what worked");
    let work = tempfile::tempdir().unwrap();
    let report = work.path().join("report.pdf");
    std::fs::write(&report, content(50_000, 9)).unwrap();
    trust.stdout(&["attach", &id, report.to_str().unwrap()]);

    // The council's node holds the entry (by bundle), not the bytes.
    let council = Home::for_org("Gateshead Council", "council");
    let bundle = trust.path().join("out.bundle");
    trust.stdout(&["export", "--out", bundle.to_str().unwrap()]);
    council.stdout(&["import", bundle.to_str().unwrap()]);
    // Nothing is fetched without asking, so the page offers to.
    council.stdout(&["config", "set", "files.auto_fetch_mb", "0"]);
    let daemon = Daemon::start(&council, &[]);
    let b = Browser::new(&council, &daemon);
    let page = b.get(&format!("/e/{id}")).text();
    assert!(page.contains("report.pdf"), "the file is listed: {page}");
    assert!(page.contains("Not yet on this node"), "{page}");
    assert!(
        !page.contains(&format!("href=\"/e/{id}/files/report.pdf\"")),
        "no download link"
    );
    assert!(
        page.contains(&format!("action=\"/e/{id}/files/report.pdf/fetch\"")),
        "a Fetch button: {page}"
    );
    assert!(!page.contains("f-file") && !page.contains("multipart/form-data"));
    assert!(!page.contains("files.js"));
    let d = b.get(&format!("/e/{id}/files/report.pdf"));
    assert_eq!(d.status, 404);
    assert!(d.text().contains("not yet on this node"), "{}", d.text());

    // Replayed: the form posted anyway, and the API with the token.
    let r = b.upload(&id, &[("file", Some("mine.pdf"), b"not theirs")]);
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(
        r.text().contains(
            "Only the entry&#39;s own organisation, or an editor it named, can add files to it."
        ) || r.text().contains(
            "Only the entry's own organisation, or an editor it named, can add files to it."
        ),
        "{}",
        r.text()
    );
    assert!(!r.text().contains("f-file"), "still no form");
    let mut r = agent()
        .post(format!("{}/api/entries/{id}/files?name=mine.pdf", b.base))
        .header("Authorization", format!("Bearer {}", token(&council)))
        .header("Content-Type", "application/octet-stream")
        .send(&b"not theirs"[..])
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let e: Value = r.body_mut().read_json().unwrap();
    assert!(
        e["error"].as_str().unwrap().contains("Only the entry"),
        "{e}"
    );
    assert!(
        stored_files(&council).is_empty(),
        "nothing stored: {:?}",
        stored_files(&council)
    );
    assert_eq!(listed(&council, &id).len(), 1);

    // Fetch: the daemon is asked, and the page says how that goes (no
    // member that holds it is connected).
    let r = answer(
        agent()
            .post(format!("{}/e/{id}/files/report.pdf/fetch", b.base))
            .header("Cookie", &b.cookie)
            .header("Origin", &b.base)
            .send_empty()
            .unwrap(),
    );
    assert_eq!(r.status, 303, "{}", r.text());
    support::wait_for(Duration::from_secs(15), "the daemon to take it up", || {
        b.get(&format!("/e/{id}"))
            .text()
            .contains("no connected member has it yet")
            .then_some(())
    });
    let r = answer(
        agent()
            .post(format!("{}/e/{id}/files/other.pdf/fetch", b.base))
            .header("Cookie", &b.cookie)
            .header("Origin", &b.base)
            .send_empty()
            .unwrap(),
    );
    assert_eq!(r.status, 404);
    drop(daemon);

    // The owner's own browser, tricked by another site into posting the
    // form: refused before the upload is read.
    let daemon = Daemon::start(&trust, &[]);
    let b = Browser::new(&trust, &daemon);
    let stored = stored_files(&trust);
    let r = b.upload_from(
        &id,
        &[("file", Some("planted.html"), b"<script>")],
        "http://evil.example",
    );
    assert_eq!(r.status, 403);
    assert_eq!(stored_files(&trust), stored);
    assert_eq!(listed(&trust, &id).len(), 1);
    drop(daemon);
}

#[test]
fn a_file_damaged_on_disk_is_never_delivered_whole_and_an_erased_entrys_files_are_gone() {
    let home = Home::initialised();
    let story = home.publish("A family's story");
    let keep = home.publish("Summit slides");
    let daemon = Daemon::start(&home, &[]);
    let b = Browser::new(&home, &daemon);
    let slides = content(200_000, 11);
    let words = content(150_000, 12);
    for (id, name, bytes) in [
        (&story, "story.docx", &words),
        (&story, "slides.pdf", &slides),
        (&keep, "slides.pdf", &slides),
    ] {
        let r = b.upload(id, &[("file", Some(name), bytes)]);
        assert_eq!(r.status, 303, "{}", r.text());
    }
    assert_eq!(
        stored_files(&home).len(),
        2,
        "the same content is stored once"
    );

    // One byte of the story changed on disk: the download breaks off before
    // its end (the client was promised every byte and never gets them).
    let hash = blake3::hash(&words).to_hex().to_string();
    let path = home.path().join("files").join(&hash[..2]).join(&hash[2..]);
    let mut damaged = std::fs::read(&path).unwrap();
    damaged[100_000] ^= 1;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    std::fs::write(&path, &damaged).unwrap();
    // (The connection may even close before the answer's head is sent.)
    match agent()
        .get(format!("{}/e/{story}/files/story.docx", b.base))
        .header("Cookie", &b.cookie)
        .call()
    {
        Ok(mut r) => {
            assert_eq!(r.status().as_u16(), 200);
            assert_eq!(r.headers().get("content-length").unwrap(), "150000");
            let mut got = Vec::new();
            let read = r
                .body_mut()
                .with_config()
                .limit(u64::MAX)
                .reader()
                .read_to_end(&mut got);
            assert!(read.is_err(), "the download must fail, not end quietly");
            assert!(got.len() < words.len(), "{} bytes arrived", got.len());
        }
        Err(e) => assert!(matches!(e, ureq::Error::Io(_)), "{e}"),
    }
    // And the damaged copy is let go (it would otherwise count as held and
    // never be fetched again): the page now says it is not here.
    support::wait_for(Duration::from_secs(10), "the damaged copy to go", || {
        (!path.exists()).then_some(())
    });
    let again = b.get(&format!("/e/{story}/files/story.docx"));
    assert_eq!(again.status, 404);
    assert!(
        again.text().contains("not yet on this node"),
        "{}",
        again.text()
    );

    // Erased: its files are gone from the page's addresses, with the same
    // 404 as a file that never was; the shared file stays for the other.
    home.stdout(&["retract", &story, "--erase"]);
    let gone = b.get(&format!("/e/{story}/files/slides.pdf"));
    let never = b.get(&format!("/e/{keep}/files/never.pdf"));
    assert_eq!((gone.status, never.status), (404, 404));
    assert_eq!(gone.text(), never.text());
    let d = b.get(&format!("/e/{keep}/files/slides.pdf"));
    assert_inert(&d, "the shared slides");
    assert!(d.body == slides);
    drop(daemon);
}

#[test]
fn a_file_uploaded_on_one_nodes_page_downloads_from_another_organisations_node() {
    let demo = support::DemoRun::start();
    let follow = |link: &str, web: &str| {
        let r = agent().get(link).call().unwrap();
        assert_eq!(r.status().as_u16(), 303, "the sign-in link works");
        let cookie = r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string();
        Browser {
            base: web.trim_end_matches('/').to_string(),
            cookie,
        }
    };
    let trust = follow(&demo.sign_ins[0], &demo.webs[0]);
    let council = follow(&demo.sign_ins[1], &demo.webs[1]);
    let auth = format!(
        "Bearer {}",
        std::fs::read_to_string(demo.homes[0].join("web-token"))
            .unwrap()
            .trim()
    );
    let mut r = agent()
        .get(format!("{}/api/entries?kind=learning", trust.base))
        .header("Authorization", &auth)
        .call()
        .unwrap();
    let entries: Value = r.body_mut().read_json().unwrap();
    let trust_org = {
        let mut r = agent()
            .get(format!("{}/api/status", trust.base))
            .header("Authorization", &auth)
            .call()
            .unwrap();
        let s: Value = r.body_mut().read_json().unwrap();
        s["organisation"].as_str().unwrap().to_string()
    };
    // One of the trust's own learning entries, seen by every member.
    let id = entries
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["owner"] == trust_org.as_str() && e["visibility"] == "community")
        .map(|e| e["id"].as_str().unwrap().to_string())
        .expect("the trust has a learning entry for the community");
    let poster = content(400_000, 21);
    let r = trust.upload(&id, &[("file", Some("poster.pdf"), &poster)]);
    assert_eq!(r.status, 303, "{}", r.text());

    // The council's node learns of it by sync and fetches it by itself.
    support::wait_for(
        Duration::from_secs(60),
        "the council's node to hold the poster",
        || {
            let page = council.get(&format!("/e/{id}")).text();
            (page.contains(&format!("href=\"/e/{id}/files/poster.pdf\""))).then_some(())
        },
    );
    let page = council.get(&format!("/e/{id}")).text();
    assert!(
        !page.contains("f-file"),
        "no upload form on another organisation's node"
    );
    let d = council.get(&format!("/e/{id}/files/poster.pdf"));
    assert_inert(&d, "the poster from the council's node");
    assert!(d.body == poster, "the same bytes");
    drop(demo);
}
