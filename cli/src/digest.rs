//! `convene digest`: what's new in a period, as plain text or Markdown, for
//! a newsletter or an email. Gathering and rendering are
//! `convene_node::digest`'s; this reads the flags, and writes the result
//! to stdout or, atomically, to `--out`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use clap::Args;
use convene_model::Timestamp;
use convene_node::Node;
use convene_node::digest::render::{self, Format};
use convene_node::digest::{Audience, DigestOptions, Section, parse_since};

#[derive(Debug, Args)]
pub struct DigestArgs {
    /// How far back: hours, days or weeks (24h, 7d, 2w), a date (2026-11-01, midnight UTC) or an RFC 3339 time
    #[arg(long, value_name = "PERIOD", default_value = "7d")]
    pub since: String,
    /// Only entries on this priority (its name, slug or a short form); repeat for several
    #[arg(long = "priority", value_name = "PRIORITY")]
    pub priorities: Vec<String>,
    /// Only these parts: learning, project, event, idea, question (questions and replies) or contact (a count); repeat for several
    #[arg(long = "kind", value_name = "KIND")]
    pub kinds: Vec<String>,
    /// markdown, text (wrapped at 72 columns) or json (one object, for scripts)
    #[arg(long, value_name = "FORMAT", default_value = "text")]
    pub format: String,
    /// Link each entry to its page under this address (your node's web app as readers reach it); without it entries are named by id
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
    /// How many weeks ahead to list events
    #[arg(long, value_name = "N", default_value_t = 4,
          value_parser = clap::value_parser!(u32).range(1..=52))]
    pub weeks: u32,
    /// Also entries shown to some organisations only (for a digest that stays inside your organisation)
    #[arg(long)]
    pub include_restricted: bool,
    /// At most N things in each section (the newest, or the soonest events)
    #[arg(long, value_name = "N", default_value_t = 50,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub limit: u32,
    /// Write the digest to FILE (replaced whole, never left half-written) instead of printing it
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

fn now() -> Timestamp {
    Timestamp(chrono::Utc::now().timestamp_millis())
}

pub fn run(out: &mut impl Write, home: &Path, a: DigestArgs) -> Result<()> {
    // Every flag is checked before the node is opened or a file touched.
    let until = now();
    let since = parse_since(&a.since, until).map_err(|e| anyhow!("--since: {e}"))?;
    let format: Format = a.format.parse().map_err(|e| anyhow!("--format: {e}"))?;
    let base = a
        .base_url
        .as_deref()
        .map(render::base_url)
        .transpose()
        .map_err(|e| anyhow!("--base-url: {e}"))?;
    let sections = a
        .kinds
        .iter()
        .map(|k| k.parse::<Section>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow!("--kind: {e}"))?;
    let node = Node::open(home)?;
    let digest = node.digest(&DigestOptions {
        since,
        until,
        priorities: a.priorities,
        sections,
        audience: if a.include_restricted {
            Audience::Here
        } else {
            Audience::Community
        },
        weeks_ahead: a.weeks,
        limit: Some(a.limit as usize),
    })?;
    let text = render::render(&digest, format, base.as_deref());
    match &a.out {
        None => out.write_all(text.as_bytes())?,
        Some(path) => {
            write_atomically(path, text.as_bytes())?;
            writeln!(
                out,
                "Wrote {} ({} new since {} UTC)",
                path.display(),
                digest.count_new(),
                since.short()
            )?;
        }
    }
    Ok(())
}

/// Writes beside `path` and renames over it: a reader (or a mail merge
/// picking the file up) sees the old digest or the new one, never half.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let cannot = || format!("cannot write {}", path.display());
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".convene-digest")
        .tempfile_in(dir)
        .with_context(cannot)?;
    tmp.write_all(bytes).with_context(cannot)?;
    tmp.as_file().sync_all().with_context(cannot)?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(cannot)?;
    Ok(())
}
