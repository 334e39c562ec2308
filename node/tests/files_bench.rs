//! The file-transfer bench at a small size, in the normal suite, so that it
//! cannot rot: every row is there and every field was measured.
//!
//! This binary is the bench itself (included by path) with no libtest
//! harness: the bench runs the fetching node in a child process by running
//! its own executable again with `--role`, so this `main` hands those
//! invocations to the bench and otherwise runs the check.

#[path = "../benches/files.rs"]
#[allow(dead_code)] // the bench's own `main`
mod bench;
mod harnessless;

use std::time::{Duration, Instant};

use bench::Row;

/// A small run takes a few seconds; well within this.
const LIMIT: Duration = Duration::from_secs(30);

fn main() {
    harnessless::main(
        "files_bench_at_small_size",
        |args| bench::dispatch(bench::args_from(args.into_iter())),
        files_bench_at_small_size,
    );
}

fn row<'a>(rows: &'a [Row], scenario: &str) -> &'a Row {
    rows.iter()
        .find(|r| r.scenario == scenario)
        .unwrap_or_else(|| panic!("no {scenario} row"))
}

fn files_bench_at_small_size() {
    let start = Instant::now();
    let args = bench::args_from(
        ["--size-mb", "4", "--files", "6", "--total-mb", "12"]
            .map(String::from)
            .into_iter(),
    );
    let rows = bench::measure(&args);
    let took = start.elapsed();
    assert!(took < LIMIT, "the small run took {took:?}");

    for (scenario, files, sources, bytes) in [
        ("one-file", 1, 1, 4_000_000),
        ("one-file-tenth", 1, 1, 400_000),
        ("many-files", 6, 3, 12_000_000),
    ] {
        let r = row(&rows, scenario);
        let what = format!("{}", r.json());
        assert_eq!((r.files, r.sources, r.bytes), (files, Some(sources), bytes));
        assert!(r.seconds > 0.0, "{what}");
        assert!(r.cpu_seconds.expect(&what) > 0.0, "{what}");
        assert!(r.peak_rss.expect(&what) > 1_000_000, "{what}");
        let sources_cpu = r
            .extra
            .iter()
            .find(|(k, _)| *k == "sources_cpu_seconds")
            .map(|(_, x)| *x);
        assert!(sources_cpu.is_some_and(|x| x > 0.0), "{what}");
        assert_eq!(
            extra(r, "both_ends_cpu_seconds"),
            r.cpu_seconds.unwrap() + sources_cpu.unwrap(),
            "{what}"
        );
        // Every byte went out with its proof: a little more than the content.
        let sent = r.sent_bytes.expect(&what);
        assert!(sent > bytes && sent < bytes + bytes / 10, "{what}");
    }
    for scenario in [
        "floor-hash-1",
        "floor-hash-all",
        "floor-copy",
        "floor-read-write",
    ] {
        let r = row(&rows, scenario);
        let what = format!("{}", r.json());
        assert_eq!(r.bytes, 4_000_000, "{what}");
        assert!(r.seconds > 0.0 && r.mb_per_s().is_finite(), "{what}");
        assert!(r.cpu_seconds.is_none() && r.sent_bytes.is_none(), "{what}");
    }
    // The two floors that move the file between two ends: their CPU is
    // both ends', counted as the transfers' both_ends_cpu_seconds is.
    for scenario in ["floor-sealed-stream", "floor-libp2p-stream"] {
        let r = row(&rows, scenario);
        let what = format!("{}", r.json());
        assert_eq!(r.bytes, 4_000_000, "{what}");
        assert!(r.seconds > 0.0 && r.mb_per_s().is_finite(), "{what}");
        assert!(extra(r, "both_ends_cpu_seconds") > 0.0, "{what}");
    }
    let one = row(&rows, "one-file");
    for k in [
        "over_floor_hash_1",
        "over_floor_hash_all",
        "over_floor_copy",
        "over_floor_read_write",
        "over_floor_sealed_stream",
        "over_floor_libp2p_stream",
        "peak_rss_over_tenth",
    ] {
        let x = extra(one, k);
        assert!(x > 0.0 && x.is_finite(), "{k}: {x}");
    }
}

fn extra(r: &Row, k: &str) -> f64 {
    r.extra
        .iter()
        .find(|(name, _)| *name == k)
        .map(|(_, x)| *x)
        .unwrap_or_else(|| panic!("no {k} in {}", r.json()))
}
