//! The `--compare` bench at a small size, in the normal suite, so that it
//! cannot rot: every system's rows are there and every field was measured.
//!
//! This binary is the bench itself (its modules, included by path) with no
//! libtest harness: the bench runs each side in a child process by running
//! its own executable again with `--role`, so this `main` hands those
//! invocations to the bench and otherwise runs the check.

#[path = "../benches/sync.rs"]
#[allow(dead_code)] // the bench's own `main`
mod bench;
mod harnessless;

use std::time::{Duration, Instant};

use bench::compare::Row;

/// What the issue asks of a small run: well within this.
const LIMIT: Duration = Duration::from_secs(90);

fn main() {
    harnessless::main(
        "compare_at_small_size",
        |args| bench::dispatch(bench::args_from(args.into_iter())),
        compare_at_small_size,
    );
}

fn row<'a>(rows: &'a [Row], system: &str, scenario: &str) -> &'a Row {
    rows.iter()
        .find(|r| r.system == system && r.scenario == scenario)
        .unwrap_or_else(|| panic!("no {system} {scenario} row"))
}

fn compare_at_small_size() {
    const N: usize = 50;
    let start = Instant::now();
    let args = bench::args_from(
        [
            "--compare",
            "--entries",
            "50",
            "--samod-limit",
            "30",
            "--mesh-nodes",
            "5",
            "--publishes",
            "20",
        ]
        .map(String::from)
        .into_iter(),
    );
    let (rows, ratios) = bench::compare::measure(&args);
    let took = start.elapsed();
    assert!(took < LIMIT, "the small compare run took {took:?}");

    let scenarios = ["catch-up", "reconnect-unchanged", "reconnect-10-changed"];
    for system in ["convene", "samod"] {
        for scenario in scenarios {
            let r = row(&rows, system, scenario);
            let what = format!("{system} {scenario}: {}", r.json());
            assert_eq!(r.entries, N, "{what}");
            assert!(!r.timed_out, "{what}");
            assert!(r.seconds > 0.0, "{what}");
            let bytes = r.bytes.expect(&what);
            let wire = r.wire_bytes.expect(&what);
            assert!(bytes > 0 && wire > bytes, "the wire carries more: {what}");
            assert!(r.messages.expect(&what) > 0, "{what}");
            assert!(r.cpu_seconds.expect(&what) > 0.0, "{what}");
            assert!(r.peak_rss.expect(&what) > 1_000_000, "{what}");
        }
        // Round trips only where requests wait for answers.
        let rtt = row(&rows, system, "catch-up").round_trips;
        assert_eq!(rtt.is_some(), system == "convene", "{system}: {rtt:?}");
        assert!(
            row(&rows, system, "catch-up").peer_peak_rss.is_some(),
            "{system}"
        );

        // The changed run carried the changes: more on the wire than the
        // unchanged one by at least their size.
        let unchanged = row(&rows, system, "reconnect-unchanged");
        let changed = row(&rows, system, "reconnect-10-changed");
        let size = changed.changes_bytes.expect("the changes' size");
        assert!(size > 0);
        assert!(
            changed.wire_bytes.unwrap() >= unchanged.wire_bytes.unwrap() + size,
            "{system}: 10 changed {} bytes on the wire, unchanged {}, changes {size}",
            changed.wire_bytes.unwrap(),
            unchanged.wire_bytes.unwrap()
        );
        assert!(changed.bytes.unwrap() >= unchanged.bytes.unwrap() + size);
    }
    // Reconnecting with nothing changed: one round trip and at most 3 KB
    // on the wire, handshakes included (issue 14's target; the ping
    // protocol's two immediate exchanges alone took it past 3 KB).
    let unchanged = row(&rows, "convene", "reconnect-unchanged");
    assert_eq!(unchanged.round_trips, Some(1), "{}", unchanged.json());
    assert!(
        unchanged.wire_bytes.unwrap() <= 3_000,
        "reconnecting with nothing changed took {} bytes on the wire",
        unchanged.wire_bytes.unwrap()
    );
    // A catch-up moves at least every change's bytes.
    let floor = row(&rows, "floor", "catch-up");
    let change_bytes = floor.bytes.expect("the floor's input bytes");
    assert!(row(&rows, "convene", "catch-up").bytes.unwrap() >= change_bytes);

    for system in ["floor", "floor-parallel", "floor-load"] {
        let r = row(&rows, system, "catch-up");
        let what = format!("{}", r.json());
        assert!(r.seconds > 0.0, "{what}");
        assert!(r.bytes.expect(&what) > 0, "{what}");
        assert!(r.cpu_seconds.expect(&what) > 0.0, "{what}");
        assert!(r.peak_rss.expect(&what) > 1_000_000, "{what}");
        assert!(r.wire_bytes.is_none() && r.round_trips.is_none(), "{what}");
    }
    assert_eq!(
        row(&rows, "floor-parallel", "catch-up").bytes,
        Some(change_bytes),
        "both replaying floors work from the same changes"
    );

    // Convene's mesh, and its floor: the same publishes decoded, verified
    // and applied once per receiver, timed the same way, with its own CPU
    // time.
    let mesh = row(&rows, "convene", "publish-mesh");
    let floor = row(&rows, "floor-parallel", "publish-mesh");
    assert_eq!(floor.entries, mesh.entries, "{}", floor.json());
    for r in [mesh, floor] {
        let field = |k: &str| {
            r.extra(k)
                .unwrap_or_else(|| panic!("no {k} in {}", r.json()))
        };
        assert!(field("median_seconds") > 0.0);
        assert!(field("median_seconds") <= field("p99_seconds"));
        assert!(field("p99_seconds") <= field("max_seconds"));
        assert!(r.cpu_seconds.is_some_and(|c| c > 0.0));
    }
    let mesh_ratio = ratios
        .iter()
        .find(|v| v["scenario"] == "publish-mesh")
        .expect("a mesh ratio row");
    for k in [
        "convene_median_over_floor_median",
        "convene_p99_over_floor_p99",
        "convene_cpu_over_floor_cpu",
    ] {
        assert!(
            mesh_ratio[k].as_f64().is_some_and(|x| x > 0.0),
            "{k}: {mesh_ratio}"
        );
    }
    assert!(mesh_ratio["median_target_met"].is_boolean());

    let ratio = ratios
        .iter()
        .find(|v| v["scenario"] == "catch-up" && v["entries"] == N)
        .expect("a ratio row");
    for k in [
        "convene_over_best_floor",
        "convene_over_floor",
        "convene_over_floor_parallel",
        "convene_over_floor_load",
        "convene_cpu_over_floor_cpu",
        "convene_over_samod",
    ] {
        assert!(ratio[k].as_f64().is_some_and(|x| x > 0.0), "{k}: {ratio}");
    }
}
