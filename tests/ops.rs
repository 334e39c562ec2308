//! Operator commands end to end: completions, man pages, `config`,
//! `doctor`, and the sample files in `examples/`.

mod support;

use predicates::prelude::*;
use support::Home;

#[test]
fn completions_name_the_subcommands() {
    let home = Home::new();
    let bash = home.stdout(&["completions", "bash"]);
    for word in ["convene", "publish", "doctor", "import-csv", "config"] {
        assert!(bash.contains(word), "bash completions lack {word}");
    }
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        assert!(!home.stdout(&["completions", shell]).is_empty(), "{shell}");
    }
    home.convene(&["completions", "tcsh"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("invalid value 'tcsh'"));
}

#[test]
fn man_pages_are_printed_or_written_one_per_subcommand() {
    let home = Home::new();
    let page = home.stdout(&["man"]);
    assert!(page.contains(".SH NAME"), "{page}");
    assert!(page.contains(".SH SYNOPSIS"), "{page}");
    assert!(page.contains("publish"), "{page}");

    let dir = home.path().join("man");
    let said = home.stdout(&["man", "--out", dir.to_str().unwrap()]);
    assert!(said.contains("man pages"), "{said}");
    for name in [
        "convene.1",
        "convene-publish.1",
        "convene-publish-learning.1",
        "convene-doctor.1",
    ] {
        let text =
            std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(text.contains(".SH NAME"), "{name}");
        assert!(text.contains(".SH SYNOPSIS"), "{name}");
    }
    let publish = std::fs::read_to_string(dir.join("convene-publish.1")).unwrap();
    assert!(publish.contains("convene\\-publish"), "{publish}");
}

#[test]
fn config_set_and_show_round_trip_and_bad_input_changes_nothing() {
    let home = Home::new();
    let shown = home.json(&["config", "show", "--json"]);
    assert_eq!(shown["exists"], false);
    assert_eq!(shown["config"]["mdns"], true);
    assert_eq!(shown["config"]["bootstrap"], serde_json::json!([]));

    let file = home.write("config.toml", "# Ours.\nmdns = true # for the office LAN\n");
    let peer = "/ip4/192.0.2.10/tcp/4040/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN";
    let said = home.stdout(&["config", "set", "bootstrap", peer]);
    assert!(said.contains("Set bootstrap in"), "{said}");
    home.stdout(&["config", "set", "mdns", "false"]);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains("# Ours.") && text.contains("# for the office LAN"),
        "{text}"
    );

    let shown = home.json(&["config", "show", "--json"]);
    assert_eq!(shown["exists"], true);
    assert_eq!(shown["config"]["bootstrap"], serde_json::json!([peer]));
    assert_eq!(shown["config"]["mdns"], false);
    let plain = home.stdout(&["config", "show"]);
    assert!(plain.contains("config.toml"), "{plain}");
    assert!(plain.contains(peer), "{plain}");
    assert!(plain.contains("listen = ["), "defaults are shown: {plain}");

    let before = std::fs::read(&file).unwrap();
    let refused = [
        (
            vec!["config", "set", "bootstrapp", peer],
            "did you mean \"bootstrap\"?",
        ),
        (
            vec!["config", "set", "bootstrap", "192.0.2.10:4040"],
            "is not a multiaddress",
        ),
        (vec!["config", "set", "mdns", "sometimes"], "true or false"),
        (
            vec!["config", "set", "mdns", "true", "false"],
            "takes one value",
        ),
        (vec!["config", "unset", "mnds"], "did you mean \"mdns\"?"),
    ];
    for (args, message) in refused {
        let out = home.convene(&args).output().unwrap();
        assert!(!out.status.success(), "{args:?} was accepted");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        assert_eq!(
            std::fs::read(&file).unwrap(),
            before,
            "{args:?} changed the file"
        );
    }

    let said = home.stdout(&["config", "unset", "bootstrap"]);
    assert!(said.contains("Removed bootstrap"), "{said}");
    let shown = home.json(&["config", "show", "--json"]);
    assert_eq!(shown["config"]["bootstrap"], serde_json::json!([]));
    assert_eq!(shown["config"]["mdns"], false);
}

#[test]
fn doctor_passes_a_healthy_home() {
    let home = Home::initialised();
    let out = home.stdout(&["doctor"]);
    for check in [
        "home", "key", "database", "identity", "clock", "config", "disk", "daemon",
    ] {
        assert!(
            out.lines()
                .any(|l| l.split_whitespace().nth(1) == Some(check)),
            "no {check} line: {out}"
        );
    }
    assert!(!out.contains("FAIL"), "{out}");
    assert!(out.contains("integrity ok"), "{out}");
    let report = home.json(&["doctor", "--json"]);
    assert_eq!(report["ok"], true);
    assert!(report["checks"].as_array().unwrap().len() >= 8);

    // A reachable and an unreachable bootstrap peer: warnings, not failures.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let up = format!(
        "/ip4/127.0.0.1/tcp/{}",
        listener.local_addr().unwrap().port()
    );
    let gone = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("/ip4/127.0.0.1/tcp/{}", l.local_addr().unwrap().port())
    };
    home.stdout(&["config", "set", "bootstrap", &up, &gone]);
    let out = home.stdout(&["doctor", "--timeout", "2"]);
    assert!(out.contains(&format!("{up}: reachable")), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("warn") && l.contains(&gone) && l.contains("unreachable")),
        "{out}"
    );
}

fn doctor_fails(home: &Home, check: &str, message: &str) {
    let out = home.convene(&["doctor"]).output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(!out.status.success(), "doctor passed: {stdout}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("FAIL") && l.split_whitespace().nth(1) == Some(check))
        .unwrap_or_else(|| panic!("no failed {check} line: {stdout}"));
    assert!(line.contains(message), "{line}");
    assert!(
        stderr.contains("doctor found") && stderr.contains(check),
        "{stderr}"
    );
}

#[test]
fn doctor_names_what_is_broken() {
    let corrupt = Home::initialised();
    for f in ["convene.db-wal", "convene.db-shm"] {
        let _ = std::fs::remove_file(corrupt.path().join(f));
    }
    let db = corrupt.path().join("convene.db");
    let mut bytes = std::fs::read(&db).unwrap();
    // Keep the header, garble every page after the first.
    for b in bytes.iter_mut().skip(4096) {
        *b = 0x42;
    }
    std::fs::write(&db, bytes).unwrap();
    doctor_fails(&corrupt, "database", "damaged");

    let no_key = Home::initialised();
    std::fs::remove_file(no_key.path().join("node.key")).unwrap();
    doctor_fails(&no_key, "key", "missing");

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let open_key = Home::initialised();
        let key = open_key.path().join("node.key");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        doctor_fails(&open_key, "key", "chmod 600");
    }

    let bad_config = Home::initialised();
    bad_config.write("config.toml", "listen = 4040\n");
    doctor_fails(&bad_config, "config", "config.toml");

    let nowhere = Home::new();
    let missing = nowhere.path().join("not-here");
    let out = assert_cmd::Command::cargo_bin("convene")
        .unwrap()
        .env_remove("CONVENE_HOME")
        .env_remove("RUST_LOG")
        .arg("--home")
        .arg(&missing)
        .args(["doctor", "--json"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], false);
    assert_eq!(report["checks"][0]["check"], "home");
    assert_eq!(report["checks"][0]["status"], "fail");
}

#[test]
fn the_sample_config_loads_with_the_real_loader_and_has_every_key() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/config.toml");
    let text = std::fs::read_to_string(path).unwrap();
    let config = convene_node::daemon::Config::parse(&text, "examples/config.toml")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config, convene_node::daemon::Config::default());
    let defaults: toml::Table = toml::from_str(&config.to_toml()).unwrap();
    let sample: toml::Table = toml::from_str(&text).unwrap();
    for key in defaults.keys() {
        assert!(sample.contains_key(key), "examples/config.toml lacks {key}");
    }
}

#[test]
fn the_systemd_unit_runs_the_node_as_its_own_user() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/convene.service");
    let unit = std::fs::read_to_string(path).unwrap();
    for line in [
        "ExecStart=/usr/local/bin/convene node start",
        "Environment=CONVENE_HOME=/var/lib/convene",
        "User=convene",
        "Restart=on-failure",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/convene",
        "NoNewPrivileges=yes",
    ] {
        assert!(unit.lines().any(|l| l == line), "the unit lacks {line}");
    }
}

#[cfg(unix)]
#[test]
fn a_new_home_is_private_to_its_user() {
    use std::os::unix::fs::PermissionsExt;
    let parent = Home::new();
    let home = parent.path().join("node");
    let run = |args: &[&str]| {
        assert_cmd::Command::cargo_bin("convene")
            .unwrap()
            .env_remove("CONVENE_HOME")
            .arg("--home")
            .arg(&home)
            .args(args)
            .output()
            .unwrap()
    };
    assert!(
        run(&["init", "--org", "Carers Trust", "--sector", "vcse"])
            .status
            .success()
    );
    let mode = std::fs::metadata(&home).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    let out = run(&["doctor"]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.lines().any(|l| l.starts_with("ok    home")),
        "{stdout}"
    );
}

#[test]
fn doctor_sees_a_running_daemon_and_judges_the_clock_by_synced_changes() {
    let trust = Home::for_org("Gateshead Health NHS Foundation Trust", "nhs-trust");
    trust.publish("Family hubs while you wait");
    let laptop = Home::for_org("Carers Trust", "vcse");
    let clock = |home: &Home| -> serde_json::Value {
        let report = home.json(&["doctor", "--json"]);
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["check"] == "clock")
            .cloned()
            .unwrap()
    };
    let before = clock(&laptop);
    assert_eq!(before["status"], "warn");
    assert!(
        before["message"].as_str().unwrap().contains("no reference"),
        "{before}"
    );

    let daemon = support::Daemon::start(&trust, &[]);
    let running = trust.stdout(&["doctor"]);
    assert!(
        running.lines().any(|l| l.starts_with("ok    daemon")),
        "{running}"
    );
    laptop.stdout(&["sync", "--once", "--peer", &daemon.addr]);
    let after = clock(&laptop);
    assert_eq!(after["status"], "ok", "{after}");
    assert!(
        after["message"]
            .as_str()
            .unwrap()
            .contains("from 1 other node "),
        "{after}"
    );
}

/// Issue 13, item 6: every file holding the key or personal data is the
/// user's only, even with a umask that lets everyone read (000) and a home
/// left open to others.
#[cfg(unix)]
#[test]
fn private_files_stay_private_whatever_the_umask_and_the_homes_mode() {
    use std::os::unix::fs::PermissionsExt;
    use support::mode_of;
    let parent = Home::new();
    let home = Home::new();
    let run = |args: &[&str]| {
        let out = home.convene_with_umask(0o000, args).output().unwrap();
        assert!(
            out.status.success(),
            "convene {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    run(&["init", "--org", "Carers Trust", "--sector", "vcse"]);
    // An operator opened the home to a group (or it was made by hand).
    std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let at = |name: &str| home.path().join(name);
    assert_eq!(mode_of(&at("node.key")), 0o600, "node.key after init");
    assert_eq!(mode_of(&at("convene.db")), 0o600, "convene.db after init");
    // config.toml names the peers to trust: no one else may write it.
    run(&["config", "set", "mdns", "false"]);
    assert_eq!(mode_of(&at("config.toml")), 0o600, "config.toml after set");

    run(&[
        "publish",
        "learning",
        "--title",
        "Family hubs",
        "--summary",
        "s",
    ]);
    assert_eq!(
        mode_of(&at("convene.db")),
        0o600,
        "convene.db after publish"
    );
    // While another process (the daemon, here this test) has the database
    // open, its WAL and SHM stay beside it: SQLite gives them the
    // database's mode.
    let node = convene_node::Node::open(home.path()).unwrap();
    run(&[
        "publish",
        "learning",
        "--title",
        "Peer visits",
        "--summary",
        "s",
    ]);
    for name in ["convene.db", "convene.db-wal", "convene.db-shm"] {
        assert_eq!(
            mode_of(&at(name)),
            0o600,
            "{name} while the database is open"
        );
    }
    drop(node);

    let backup = parent.path().join("node.backup");
    run(&["backup", backup.to_str().unwrap()]);
    assert_eq!(mode_of(&backup), 0o600, "the backup holds the private key");
    // Over an older backup that was open to everyone.
    std::fs::set_permissions(&backup, std::fs::Permissions::from_mode(0o644)).unwrap();
    run(&["backup", backup.to_str().unwrap()]);
    assert_eq!(mode_of(&backup), 0o600, "a backup written over an open one");

    let bundle = parent.path().join("for-the-trust.convene");
    run(&["export", "--out", bundle.to_str().unwrap()]);
    assert_eq!(mode_of(&bundle), 0o600, "bundle");

    let csv = parent.path().join("learning.csv");
    run(&["export-csv", "learning", "--out", csv.to_str().unwrap()]);
    assert_eq!(mode_of(&csv), 0o600, "CSV export");
    std::fs::set_permissions(&csv, std::fs::Permissions::from_mode(0o666)).unwrap();
    run(&["export-csv", "learning", "--out", csv.to_str().unwrap()]);
    assert_eq!(
        mode_of(&csv),
        0o600,
        "a CSV export written over an open file"
    );

    let site = parent.path().join("site").join("pages");
    run(&["export-md", "--out", site.to_str().unwrap()]);
    assert_eq!(mode_of(&site), 0o700, "the export folder");
    assert_eq!(mode_of(site.parent().unwrap()), 0o700, "its created parent");
    let pages: Vec<_> = std::fs::read_dir(&site)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(pages.len(), 3, "{pages:?}");
    for page in &pages {
        assert_eq!(mode_of(page), 0o600, "{}", page.display());
    }

    // The lock file, made by anything that takes the node onto the network
    // (here a sync with a peer that is not there).
    let out = home
        .convene_with_umask(
            0o000,
            &[
                "sync",
                "--once",
                "--peer",
                "/ip4/127.0.0.1/tcp/9",
                "--timeout",
                "2",
            ],
        )
        .output()
        .unwrap();
    assert!(at("daemon.lock").exists(), "{out:?}");
    assert_eq!(mode_of(&at("daemon.lock")), 0o600, "daemon.lock");

    let out = home.stdout(&["doctor"]);
    assert!(out.lines().any(|l| l.starts_with("ok    files")), "{out}");
}

/// Issue 13, item 6: the doctor names a private file that was opened up,
/// and a command tightens the database again.
#[cfg(unix)]
#[test]
fn doctor_fails_a_database_or_lock_open_to_others() {
    use std::os::unix::fs::PermissionsExt;
    let home = Home::initialised();
    let lock = home.path().join("daemon.lock");
    std::fs::write(&lock, "").unwrap();
    std::fs::set_permissions(&lock, std::fs::Permissions::from_mode(0o644)).unwrap();
    doctor_fails(&home, "files", "daemon.lock (mode 644)");
    std::fs::set_permissions(&lock, std::fs::Permissions::from_mode(0o600)).unwrap();

    let db = home.path().join("convene.db");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    doctor_fails(&home, "files", "convene.db (mode 644)");
    doctor_fails(&home, "files", &format!("chmod 600 {}", db.display()));
    // Opening the node (any command) takes the others' bits off again.
    home.stdout(&["list"]);
    assert_eq!(support::mode_of(&db), 0o600);
    let out = home.stdout(&["doctor"]);
    assert!(!out.contains("FAIL"), "{out}");
}
