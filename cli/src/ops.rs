//! Operator commands: `completions`, `man`, `config`, `doctor`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use clap::CommandFactory;
use convene_node::daemon::{config_edit, is_running};
use convene_node::doctor::{self, Level};
use serde_json::json;

use crate::args::{Cli, ConfigCommand, DoctorArgs};

pub fn completions(out: &mut impl Write, shell: clap_complete::Shell) -> Result<()> {
    // Into memory first: clap_complete panics if its writer fails (as
    // stdout does when piped into `head`).
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "convene", &mut script);
    out.write_all(&script)?;
    Ok(())
}

/// Without a folder, prints `convene.1`; with one, writes it and a page per
/// subcommand (`convene-publish.1`, `convene-publish-learning.1`, …).
pub fn man(out: &mut impl Write, dir: Option<&Path>) -> Result<()> {
    let Some(dir) = dir else {
        let cmd = Cli::command().disable_help_subcommand(true);
        clap_mangen::Man::new(cmd).render(out)?;
        return Ok(());
    };
    fn pages(cmd: clap::Command, dir: &Path, written: &mut Vec<PathBuf>) -> std::io::Result<()> {
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned() {
            pages(sub, dir, written)?;
        }
        written.push(clap_mangen::Man::new(cmd).generate_to(dir)?);
        Ok(())
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    // Built once so that subcommands carry their full names (convene-publish).
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    let mut written = Vec::new();
    pages(cmd, dir, &mut written).with_context(|| format!("cannot write to {}", dir.display()))?;
    writeln!(
        out,
        "Wrote {} man pages to {} (read one with `man {}`)",
        written.len(),
        dir.display(),
        dir.join("convene.1").display()
    )?;
    Ok(())
}

pub fn config(out: &mut impl Write, home: &Path, c: ConfigCommand) -> Result<()> {
    match c {
        ConfigCommand::Show { json } => {
            let shown = config_edit::show(home)?;
            let text = shown.config.to_toml();
            if json {
                let config: serde_json::Value =
                    toml::from_str(&text).context("the configuration as JSON")?;
                let v = json!({
                    "path": shown.path.display().to_string(),
                    "exists": shown.exists,
                    "config": config,
                });
                serde_json::to_writer(&mut *out, &v)?;
                writeln!(out)?;
            } else {
                if shown.exists {
                    writeln!(out, "# {} (with defaults filled in)", shown.path.display())?;
                } else {
                    writeln!(
                        out,
                        "# {} does not exist: these are the defaults",
                        shown.path.display()
                    )?;
                }
                write!(out, "{text}")?;
            }
        }
        ConfigCommand::Set { key, values } => {
            config_edit::set(home, &key, &values)?;
            writeln!(out, "Set {key} in {}", config_file(home).display())?;
            restart_hint(out, home)?;
        }
        ConfigCommand::Unset { key } => {
            if config_edit::unset(home, &key)? {
                writeln!(
                    out,
                    "Removed {key} from {}; its default applies",
                    config_file(home).display()
                )?;
                restart_hint(out, home)?;
            } else {
                writeln!(out, "{key} was not set; its default applies")?;
            }
        }
    }
    Ok(())
}

fn config_file(home: &Path) -> PathBuf {
    home.join(convene_node::daemon::CONFIG_FILE)
}

fn restart_hint(out: &mut impl Write, home: &Path) -> Result<()> {
    if is_running(home) {
        writeln!(
            out,
            "The daemon is running: restart it for this to take effect"
        )?;
    }
    Ok(())
}

pub fn doctor(out: &mut impl Write, home: &Path, a: DoctorArgs) -> Result<()> {
    let report = doctor::run(
        home,
        &doctor::Options {
            connect_timeout: std::time::Duration::from_secs(a.timeout.max(1)),
        },
    );
    let count = |l: Level| report.checks.iter().filter(|c| c.status == l).count();
    let failed = count(Level::Fail);
    if a.json {
        let v = json!({
            "home": report.home.display().to_string(),
            "ok": report.ok(),
            "checks": report.checks,
        });
        serde_json::to_writer(&mut *out, &v)?;
        writeln!(out)?;
    } else {
        for c in &report.checks {
            let status = match c.status {
                Level::Ok => "ok",
                Level::Warn => "warn",
                Level::Fail => "FAIL",
            };
            writeln!(out, "{status:<4}  {:<9} {}", c.check, c.message)?;
        }
        let warnings = count(Level::Warn);
        writeln!(
            out,
            "{} checks: {} ok, {warnings} warning{}, {failed} failed",
            report.checks.len(),
            count(Level::Ok),
            if warnings == 1 { "" } else { "s" }
        )?;
    }
    if failed > 0 {
        out.flush()?;
        let names: Vec<&str> = report
            .checks
            .iter()
            .filter(|c| c.status == Level::Fail)
            .map(|c| c.check)
            .collect();
        return Err(anyhow!(
            "doctor found {failed} problem{} ({})",
            if failed == 1 { "" } else { "s" },
            names.join(", ")
        ));
    }
    Ok(())
}
