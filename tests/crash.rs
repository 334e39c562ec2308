//! Crash safety: `convene` processes killed with SIGKILL at random moments
//! during a bulk import (`import-csv`), while publishing (the publishing
//! command, or the daemon of the node it publishes on), and during
//! catch-up (the daemon of a node that is fetching another's entries).
//! After every kill the database passes `PRAGMA integrity_check`, nothing
//! reported as published is missing, and once restarted the nodes sync to
//! convergence.
//!
//! The kill moments come from a seeded generator. The normal suite kills a
//! few times per scenario; the long form kills 17 times per scenario (51
//! in all):
//!
//! ```text
//! CONVENE_LONG=1 cargo test -p convene --test crash -- --nocapture
//! ```
//!
//! `CONVENE_SEED=<u64>` picks other moments.

mod support;

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::{Daemon, Home, wait_for};

const CONVERGE: Duration = Duration::from_secs(60);

fn kills() -> usize {
    if std::env::var_os("CONVENE_LONG").is_some_and(|v| v != "0") {
        17
    } else {
        3
    }
}

/// xorshift64*, seeded per scenario.
struct Rng(u64);

impl Rng {
    fn new(scenario: u64) -> Self {
        let seed = std::env::var("CONVENE_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0x5eed_c0de);
        Self((seed ^ scenario.wrapping_mul(0x9e37_79b9_7f4a_7c15)).max(1))
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A duration in `[lo, hi)`.
    fn between(&mut self, lo: Duration, hi: Duration) -> Duration {
        let span = (hi - lo).as_micros() as u64;
        lo + Duration::from_micros(self.next() % span.max(1))
    }
}

/// The database must be whole.
fn assert_intact(home: &Home, after: &str) {
    let store = convene_node::Store::open(&home.path().join("convene.db"))
        .unwrap_or_else(|e| panic!("after {after}: the store does not open: {e}"));
    assert_eq!(
        store.integrity_check().unwrap(),
        "ok",
        "after {after}: integrity check"
    );
}

fn learning_count(home: &Home) -> u64 {
    home.json(&["status", "--json"])["entries"]["learning"]
        .as_u64()
        .unwrap_or(0)
}

fn convene(home: &Home, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_convene"));
    cmd.env_remove("CONVENE_HOME")
        .env_remove("RUST_LOG")
        .arg("--home")
        .arg(home.path())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Waits for `child` to exit until `deadline`: its output if it exited
/// (`None` unless it succeeded), or the child if it still runs.
fn wait_until(mut child: Child, deadline: Instant) -> Result<Option<String>, Child> {
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            return Ok(status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).into_owned()));
        }
        if Instant::now() >= deadline {
            return Err(child);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Runs `child` until it exits or `after` has passed; then SIGKILLs it.
/// Returns its stdout if it finished successfully on its own.
fn kill_after(child: Child, after: Duration) -> Option<String> {
    match wait_until(child, Instant::now() + after) {
        Ok(out) => out,
        Err(mut child) => {
            let _ = child.kill();
            let _ = child.wait();
            None
        }
    }
}

fn csv(rows: usize, tag: &str) -> String {
    let mut s = String::from("title,summary,tags\n");
    for i in 0..rows {
        s.push_str(&format!(
            "Lesson {i} of {tag},What row {i} taught us about crash safety.,{tag}\n"
        ));
    }
    s
}

#[test]
fn killed_during_a_bulk_import_the_store_is_whole_and_the_import_all_or_nothing() {
    const ROWS: u64 = 1000;
    let mut rng = Rng::new(1);
    let home = Home::initialised();
    let file = home.write("rows.csv", &csv(ROWS as usize, "bulk"));
    let file = file.to_str().unwrap();
    // How long a whole import takes here (it also must work).
    let started = Instant::now();
    let out = home.stdout(&["import-csv", "learning", file]);
    let full = started.elapsed();
    assert!(out.contains(&format!("Published {ROWS}")), "{out}");
    let mut expected = ROWS;
    let mut completed = 0;
    for k in 0..kills() {
        // A file of its own each time: import-csv does not publish again
        // rows that are already here field for field.
        let rows = home.write(
            &format!("rows{k}.csv"),
            &csv(ROWS as usize, &format!("bulk{k}")),
        );
        let child = convene(&home, &["import-csv", "learning", rows.to_str().unwrap()])
            .spawn()
            .unwrap();
        let at = rng.between(Duration::ZERO, full + full / 4);
        let finished = kill_after(child, at);
        let what = format!("kill {k} at {at:?} of an import that takes {full:?}");
        assert_intact(&home, &what);
        let count = learning_count(&home);
        if let Some(out) = finished {
            assert!(out.contains(&format!("Published {ROWS}")), "{out}");
            completed += 1;
            expected += ROWS;
            assert_eq!(count, expected, "{what}: a reported import is whole");
        } else {
            // Killed: either the whole batch committed or none of it.
            assert!(
                count == expected || count == expected + ROWS,
                "{what}: {count} entries, expected {expected} or {}",
                expected + ROWS
            );
            expected = count;
        }
    }
    eprintln!(
        "bulk import: {} kills, {completed} imports finished first",
        kills()
    );
    // And the node still imports.
    let last = home.write("last.csv", &csv(ROWS as usize, "last"));
    home.stdout(&["import-csv", "learning", last.to_str().unwrap()]);
    assert_eq!(learning_count(&home), expected + ROWS);
}

#[test]
fn killed_while_publishing_nothing_reported_is_lost_and_sync_resumes() {
    let mut rng = Rng::new(2);
    let a = Home::for_org("Publishing Trust", "nhs-trust");
    let b = Home::for_org("Receiving Council", "council");
    let mut a_daemon = Daemon::start(&a, &[]);
    let b_daemon = Daemon::start(&b, &[&a_daemon.addr]);
    let mut reported: BTreeSet<String> = BTreeSet::new();
    let mut n = 0;
    for k in 0..kills() {
        // Publish one entry after another; at a random moment kill either
        // the command that is publishing or A's daemon (which is reading
        // and announcing the new entries, and storing what B sends).
        let kill_daemon = k % 2 == 1;
        let at =
            Instant::now() + rng.between(Duration::from_millis(50), Duration::from_millis(1500));
        loop {
            n += 1;
            let title = format!("Lesson {n} published under fire");
            let child = convene(
                &a,
                &[
                    "publish",
                    "learning",
                    "--title",
                    &title,
                    "--summary",
                    "What we learned.",
                ],
            )
            .spawn()
            .unwrap();
            match wait_until(child, at) {
                Ok(Some(out)) => {
                    reported.insert(out.trim().to_string());
                }
                Ok(None) => panic!("publishing failed"),
                Err(mut child) if kill_daemon => {
                    // The daemon dies mid-publish; the command goes on.
                    let addr = a_daemon.addr.clone();
                    a_daemon.kill();
                    let status = child.wait().unwrap();
                    assert!(status.success());
                    let mut out = String::new();
                    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut out)
                        .unwrap();
                    reported.insert(out.trim().to_string());
                    a_daemon = Daemon::start_on(&a, listen_of(&addr), &[]);
                    break;
                }
                Err(mut child) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
            }
        }
        let what = format!(
            "kill {k} ({})",
            if kill_daemon { "daemon" } else { "publish" }
        );
        assert_intact(&a, &what);
        let ids = a.ids();
        let missing: Vec<_> = reported.difference(&ids).collect();
        assert!(
            missing.is_empty(),
            "{what}: reported but missing {missing:?}"
        );
    }
    eprintln!(
        "publishing: {} kills, {} entries reported",
        kills(),
        reported.len()
    );
    // B reconnects to A (same address) and gets everything.
    wait_for(CONVERGE, "B to hold every reported entry", || {
        let ids = b.ids();
        reported.is_subset(&ids).then_some(())
    });
    assert_intact(&b, "convergence");
    drop(b_daemon);
    drop(a_daemon);
}

/// The listen part of a full address (without `/p2p/…`), to restart a
/// daemon on the same port, where its peers' bootstrap finds it again.
fn listen_of(full: &str) -> &str {
    full.split("/p2p/").next().unwrap()
}

/// Entries on the node that the other catches up from, at first…
const ENTRIES: u64 = 1300;
/// …and added whenever the other has caught up. (More than the 512
/// documents one request asks for: a catch-up comes in batches, each
/// stored as it arrives, so a kill can land between them.)
const MORE: u64 = 1300;

/// Learning entries in `home`'s database, read directly (cheaply, while
/// its daemon writes).
fn stored_learning(store: &convene_node::Store) -> u64 {
    store
        .counts()
        .unwrap()
        .into_iter()
        .find(|(k, _)| k == "learning")
        .map_or(0, |(_, n)| n as u64)
}

#[test]
fn killed_during_catch_up_the_store_is_whole_and_sync_converges() {
    let mut rng = Rng::new(3);
    let a = Home::for_org("Big Trust", "nhs-trust");
    let b = Home::for_org("New Council", "council");
    let file = a.write("rows.csv", &csv(ENTRIES as usize, "catch-up"));
    a.stdout(&["import-csv", "learning", file.to_str().unwrap()]);
    let a_daemon = Daemon::start(&a, &[]);
    let store = convene_node::Store::open(&b.path().join("convene.db")).unwrap();
    let mut floor = 0;
    let mut total = ENTRIES;
    let mut midway = 0;
    let mut catch_up: Option<Duration> = None;
    // Every round kills; should no kill land before catch-up finished,
    // a few more rounds are played (catch-up times vary with the load).
    let mut k = 0;
    while k < kills() || (midway == 0 && k < kills() + 5) {
        k += 1;
        if floor == total {
            // B has everything: give it more to catch up with.
            let more = a.write("more.csv", &csv(MORE as usize, &format!("round {k}")));
            a.stdout(&["import-csv", "learning", more.to_str().unwrap()]);
            total += MORE;
        }
        let b_daemon = Daemon::start(&b, &[&a_daemon.addr]);
        let started = Instant::now();
        // The first round measures how long catching up takes here; later
        // rounds kill at a random moment within that time.
        let target = match catch_up {
            None => {
                wait_for(CONVERGE, "the first catch-up", || {
                    (learning_count(&b) == total).then_some(())
                });
                catch_up = Some(started.elapsed());
                started.elapsed()
            }
            Some(d) => {
                // Once the transfer is under way (the first batch of this
                // round is stored), at a random moment within the next
                // quarter of a catch-up.
                let deadline = Instant::now() + CONVERGE;
                while stored_learning(&store) == floor {
                    assert!(Instant::now() < deadline, "round {k}: nothing arrived");
                    std::thread::sleep(Duration::from_millis(2));
                }
                let moving = started.elapsed();
                let at = moving + rng.between(Duration::ZERO, d / 4);
                while started.elapsed() < at {
                    std::thread::sleep(Duration::from_millis(2));
                }
                at
            }
        };
        b_daemon.kill();
        let what = format!("kill {k} at {target:?} into catch-up (which took {catch_up:?})");
        assert_intact(&b, &what);
        // What was stored stays stored.
        let count = learning_count(&b);
        assert!(count >= floor, "{what}: {count} entries, had {floor}");
        // Mid-transfer: some of this round's entries arrived, not all.
        if floor < count && count < total {
            midway += 1;
        }
        floor = count;
    }
    eprintln!(
        "catch-up: {k} kills, {midway} mid-transfer; {floor} of {total} entries before the last restart"
    );
    assert!(midway > 0, "no kill landed mid-transfer");
    let _b_daemon = Daemon::start(&b, &[&a_daemon.addr]);
    wait_for(CONVERGE, "B to catch up after the kills", || {
        (learning_count(&b) == total && a.ids() == b.ids()).then_some(())
    });
    assert_intact(&b, "convergence");
}
