//! Spinners on stderr for long operations, shown only to a person at a
//! terminal: scripts, pipes and logs get nothing.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// A ticking spinner with `message`, or `None` when stderr is not a
/// terminal.
pub fn spinner(message: impl Into<String>) -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let s = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
        s.set_style(style);
    }
    s.set_message(message.into());
    s.enable_steady_tick(Duration::from_millis(100));
    Some(s)
}

/// Changes the message of a spinner, if there is one.
pub fn say(s: &Option<ProgressBar>, message: impl Into<String>) {
    if let Some(s) = s {
        s.set_message(message.into());
    }
}

/// Removes a spinner, if there is one, before the result is printed.
pub fn done(s: &Option<ProgressBar>) {
    if let Some(s) = s {
        s.finish_and_clear();
    }
}
