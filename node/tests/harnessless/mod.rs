//! `main` for a test binary that is a bench itself (no libtest harness):
//! the bench runs its sides in child processes by running its own
//! executable again with `--role`, so `main` hands those invocations to
//! the bench, answers `--list` and a name filter as libtest would, and
//! otherwise runs the one test.

use std::time::Instant;

/// Runs the test `name` (`test`), or, for a `--role` invocation, the
/// bench's child (`role`, given the arguments).
pub fn main(name: &str, role: impl FnOnce(Vec<String>), test: impl FnOnce()) {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--role") {
        role(args);
        return;
    }
    // `cargo test -- --list` and filters: one test, named like the file.
    if args.iter().any(|a| a == "--list") {
        println!("{name}: test");
        return;
    }
    if let Some(filter) = args.iter().find(|a| !a.starts_with('-'))
        && !name.contains(filter.as_str())
    {
        println!("test result: ok. 0 passed; 0 failed; 1 filtered out");
        return;
    }
    let start = Instant::now();
    test();
    println!(
        "test {name} ... ok ({:.1} s)",
        start.elapsed().as_secs_f64()
    );
    println!("test result: ok. 1 passed; 0 failed");
}
