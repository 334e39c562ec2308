//! The `convene` command. Parsing lives in `args`, each command's calls
//! into `convene_node` in `commands`, and presentation (tables, labels,
//! JSON) in `output`. Errors end here: one line on stderr, exit code 1.
//!
//! One line means one line: a one-shot command logs nothing unless asked
//! (`-v`, `RUST_LOG`), so no warnings from the node it drives come before
//! the error; logs carry colour only when stderr is a terminal (never in a
//! file or journald); and a cause that the message before it already
//! states is not repeated.

mod args;
mod bundles;
mod chart;
mod commands;
mod community;
mod convening;
mod digest;
mod feeds;
mod files;
mod input;
mod network;
mod ops;
mod output;
mod progress;
mod similar;
mod web;
mod who;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    // A running node reports what it does; one-shot commands stay quiet.
    let daemon = matches!(cli.command, args::Command::Node(_));
    // The demo prints its own story; its nodes' warnings (a joiner refused
    // before it is admitted) would only distract.
    let demo = matches!(cli.command, args::Command::Demo(_)) && cli.verbose == 0;
    init_tracing(cli.verbose, daemon, cli.quiet || demo);
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // Broken pipes (`convene list | head`) are not errors.
            if err
                .downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            {
                return ExitCode::SUCCESS;
            }
            let _ = writeln!(std::io::stderr(), "error: {}", one_line(&err));
            ExitCode::FAILURE
        }
    }
}

/// An error and its causes as one line, each cause once: a cause whose
/// text an earlier part already holds ("…: Connection refused (os error
/// 111)" above "Connection refused (os error 111)") is left out, and so
/// is a `: `-separated piece that only repeats the next one (libp2p's dial
/// errors say "refused: refused"), or is empty.
fn one_line(err: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in err.chain() {
        let text = cause.to_string().replace(['\n', '\r'], " ");
        let text = text.trim();
        if text.is_empty() || parts.iter().any(|p| p.contains(text)) {
            continue;
        }
        parts.push(text.to_string());
    }
    let joined = parts.join(": ");
    let pieces: Vec<&str> = joined.split(": ").collect();
    let mut kept: Vec<&str> = Vec::new();
    for (i, piece) in pieces.iter().enumerate() {
        let repeats_next = pieces.get(i + 1).is_some_and(|n| {
            n.strip_prefix(*piece)
                .is_some_and(|rest| rest.chars().all(|c| c == ')' || c == ']'))
        });
        if piece.trim().is_empty() || repeats_next {
            continue;
        }
        kept.push(piece);
    }
    kept.join(": ")
}

/// Logging on stderr. A running node (`node start`) reports what it does
/// from warnings up (`-v` for more); a one-shot command logs nothing unless
/// asked, so its output and its one-line error stand alone.
fn init_tracing(verbose: u8, daemon: bool, quiet: bool) {
    let level = match (quiet, verbose + u8::from(daemon)) {
        (true, _) => "error",
        (false, 0) => "off",
        (false, 1) => "warn,convene=info,convene_node=info",
        (false, 2) => "info,convene=debug,convene_node=debug",
        _ => "debug,convene=trace,convene_node=trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    // Colour only for a person at a terminal: a log file, a pipe or
    // journald would get the escape codes as text.
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_target(false)
        .init();
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[test]
    fn a_cause_the_message_already_states_is_not_repeated() {
        let inner = std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "Connection refused (os error 111)",
        );
        let err = anyhow::Error::new(inner)
            .context("Connection refused (os error 111)")
            .context("cannot reach /ip4/127.0.0.1/tcp/9");
        assert_eq!(
            one_line(&err),
            "cannot reach /ip4/127.0.0.1/tcp/9: Connection refused (os error 111)"
        );
        let dial = anyhow::anyhow!(
            "cannot reach /ip4/127.0.0.1/tcp/9: Failed to negotiate transport protocol(s): [(/ip4/127.0.0.1/tcp/9: : Connection refused (os error 111): Connection refused (os error 111))]"
        );
        assert_eq!(
            one_line(&dial),
            "cannot reach /ip4/127.0.0.1/tcp/9: Failed to negotiate transport protocol(s): [(/ip4/127.0.0.1/tcp/9: Connection refused (os error 111))]"
        );
    }
}
