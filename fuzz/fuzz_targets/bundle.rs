//! `convene import`: arbitrary bundle files (or bundle bodies), each into
//! a fresh copy of a node. A body must re-encode to a bundle that decodes
//! to itself; changes that parse are re-signed so they pass the signature
//! check. Nothing may panic, and the store must pass
//! `PRAGMA integrity_check` afterwards. The checks are
//! [`convene_fuzz::BundleHome::run`].

#![no_main]

use convene_fuzz::BundleHome;
use libfuzzer_sys::fuzz_target;

thread_local! {
    static HOME: BundleHome = BundleHome::new();
}

fuzz_target!(|data: &[u8]| {
    // The node catches panics inside automerge (a malformed change is
    // rejected, see `apply_received`); libFuzzer's hook would abort first.
    // A panic that escapes the target still aborts, as a crash.
    static DEFAULT_HOOK: std::sync::Once = std::sync::Once::new();
    DEFAULT_HOOK.call_once(|| drop(std::panic::take_hook()));
    HOME.with(|home| home.run(data));
});
