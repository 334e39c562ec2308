//! Spinners and progress bars on stderr for long operations, shown only to
//! a person at a terminal: scripts, pipes and logs get nothing. An
//! operation starts with a spinner (while it cannot tell how much there is
//! to do) and turns it into a bar once it can.

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

/// Turns a spinner into a bar (or moves the bar): `done` of `total`, in
/// `unit` (`"bytes"` shows sizes), with `message` before it.
pub fn bar(s: &Option<ProgressBar>, message: &str, done: u64, total: u64, unit: &str) {
    let Some(s) = s else {
        return;
    };
    if s.length() != Some(total) {
        if s.length().is_none() {
            let counts = if unit == "bytes" {
                "{bytes}/{total_bytes}".to_string()
            } else {
                format!("{{pos}}/{{len}} {unit}")
            };
            let template =
                format!("{{msg}} [{{bar:30}}] {counts} ({{elapsed}}, about {{eta}} left)");
            if let Ok(style) = ProgressStyle::with_template(&template) {
                s.set_style(style.progress_chars("=> "));
            }
        }
        s.set_length(total);
    }
    s.set_position(done.min(total));
    if s.message() != message {
        s.set_message(message.to_string());
    }
}

/// Removes a spinner, if there is one, before the result is printed.
pub fn done(s: &Option<ProgressBar>) {
    if let Some(s) = s {
        s.finish_and_clear();
    }
}
