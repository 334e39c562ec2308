//! `convene attach`, `convene files`, `convene get`: files on learning
//! entries and projects. The node does the work (`Node::attach`,
//! `Node::attachments`, `Node::save_attachment`); this module parses,
//! reads the per-file limit from `config.toml`, and prints.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;
use comfy_table::{ContentArrangement, Table, presets};
use convene_node::Node;
use convene_node::daemon::config::Config;

#[derive(Debug, Args)]
pub struct AttachArgs {
    /// Learning entry or project id (or a unique prefix)
    pub id: String,
    /// The file to attach (at most `files.max_file_mb` in config.toml; default 200 MB)
    pub file: PathBuf,
    /// The name it is shown and downloaded as [default: the file's own name]
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
}

#[derive(Debug, Args)]
pub struct FilesArgs {
    /// Entry id (or a unique prefix)
    pub id: String,
    /// One JSON object per file: name, size, media_type, hash, held
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    /// Entry id (or a unique prefix)
    pub id: String,
    /// The file's name, as `convene files ID` lists it
    pub name: String,
    /// Where to write it [default: its name, in the current folder]
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Replace the file at --out if it exists
    #[arg(long)]
    pub force: bool,
}

pub fn attach(out: &mut impl Write, home: &Path, a: AttachArgs) -> Result<()> {
    let limits = Config::load(home)?.files;
    let mut node = Node::open(home)?;
    let id = node.resolve(&a.id)?;
    let added = node.attach(id, &a.file, a.name.as_deref(), &limits)?;
    writeln!(
        out,
        "attached {} ({}, {}) to {id}",
        added.name,
        size(added.size),
        added.hash
    )?;
    Ok(())
}

pub fn list(out: &mut impl Write, home: &Path, a: FilesArgs) -> Result<()> {
    let node = Node::open(home)?;
    let id = node.resolve(&a.id)?;
    let files = node.attachments(id)?;
    if a.json {
        for f in &files {
            serde_json::to_writer(&mut *out, &f.to_json())?;
            writeln!(out)?;
        }
        return Ok(());
    }
    if files.is_empty() {
        writeln!(out, "no files (add one with `convene attach {id} FILE`)")?;
        return Ok(());
    }
    let mut t = Table::new();
    t.load_style(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(["NAME", "SIZE", "TYPE", "HASH", "HERE"]);
    for f in &files {
        let a = &f.attachment;
        t.add_row([
            a.name.clone(),
            size(a.size),
            a.media_type.clone(),
            a.hash[..16.min(a.hash.len())].to_string(),
            if f.held { "yes" } else { "no" }.to_string(),
        ]);
    }
    for line in t.lines() {
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

pub fn get(out: &mut impl Write, home: &Path, a: GetArgs) -> Result<()> {
    let node = Node::open(home)?;
    let id = node.resolve(&a.id)?;
    // The stored name is sanitised, so it is always a safe single file name.
    let attachment = node.attachment(id, &a.name)?;
    let dest = a.out.unwrap_or_else(|| PathBuf::from(&attachment.name));
    node.save_attachment(id, &attachment.name, &dest, a.force)?;
    writeln!(out, "wrote {} ({})", dest.display(), size(attachment.size))?;
    Ok(())
}

/// A size for people: bytes below 1 kB, then kB, MB, GB (powers of 1000).
fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["kB", "MB", "GB", "TB"];
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64;
    let mut unit = "B";
    for u in UNITS {
        if v < 1000.0 {
            break;
        }
        v /= 1000.0;
        unit = u;
    }
    format!("{v:.1} {unit}")
}
