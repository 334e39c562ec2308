//! The sync core under hostile peers: a sequence of arbitrary requests
//! (from a member and from a stranger), responses to whatever the node has
//! in flight (including a peer that splits every range for ever),
//! failures, reconnects and sync starts, fed to the sans-IO `Service` of a
//! fresh copy of a node in a community. The service must never panic,
//! must answer every request exactly once or disconnect its peer, must
//! send a stranger nothing but refusals, must never tell the member of a
//! document it may not see, must keep its requests to the limits, and
//! every session must end within the round bound (and once its requests
//! fail). The checks are [`convene_fuzz::ServiceHome::run`].

#![no_main]

use convene_fuzz::ServiceHome;
use libfuzzer_sys::fuzz_target;

thread_local! {
    static HOME: ServiceHome = ServiceHome::new();
}

fuzz_target!(|data: &[u8]| {
    // The node catches panics inside automerge (a malformed change is
    // rejected, see `apply_received`); libFuzzer's hook would abort first.
    // A panic that escapes the target still aborts, as a crash.
    static DEFAULT_HOOK: std::sync::Once = std::sync::Once::new();
    DEFAULT_HOOK.call_once(|| drop(std::panic::take_hook()));
    HOME.with(|home| home.run(data));
});
