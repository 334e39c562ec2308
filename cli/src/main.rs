//! The `convene` command. Parsing lives in `args`, each command's calls
//! into `convene_node` in `commands`, and presentation (tables, labels,
//! JSON) in `output`. Errors end here: one line on stderr, exit code 1.

mod args;
mod bundles;
mod commands;
mod community;
mod input;
mod network;
mod ops;
mod output;
mod progress;
mod web;

use std::io::Write;
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
    init_tracing(cli.verbose + u8::from(daemon), cli.quiet || demo);
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
            let line = format!("{err:#}").replace('\n', " ");
            let _ = writeln!(std::io::stderr(), "error: {line}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "warn,convene=info,convene_node=info",
        (false, 2) => "info,convene=debug,convene_node=debug",
        _ => "debug,convene=trace,convene_node=trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}
