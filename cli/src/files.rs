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

/// `export --with-files`: the encoded bundle `bytes` and the bytes of its
/// entries' files held here, written to `tmp` (private, synced).
pub fn write_bundle_with_files(
    node: &Node,
    body: &convene_node::bundle::Body,
    bytes: &[u8],
    tmp: &Path,
) -> Result<usize> {
    use anyhow::Context;
    let file = convene_node::node::create_private_file(tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    let mut w = std::io::BufWriter::new(file);
    let result = node
        .write_bundle_with_files(bytes, convene_node::bundle::documents(body), &mut w)
        .map_err(anyhow::Error::from)
        .and_then(|n| {
            let file = w.into_inner().map_err(|e| e.into_error())?;
            file.sync_all()?;
            Ok(n)
        })
        .with_context(|| format!("cannot write {}", tmp.display()));
    if result.is_err() {
        let _ = std::fs::remove_file(tmp);
    }
    result
}

/// Before a bundle is imported: where its inner bundle is and, for one
/// made with `--with-files`, every file checked against its hash.
pub fn check_bundle_files(path: &Path) -> Result<convene_node::bundle::files::Layout> {
    use anyhow::Context;
    let layout = convene_node::bundle::files::layout(path)
        .with_context(|| format!("{} was refused", path.display()))?;
    convene_node::bundle::files::verify(path, &layout)
        .with_context(|| format!("{} was refused; nothing was imported", path.display()))?;
    Ok(layout)
}

/// After a bundle's changes are imported: store its files (verified
/// again as written). `None` for a bundle without files.
pub fn import_bundle_files(
    node: &Node,
    home: &Path,
    path: &Path,
    layout: &convene_node::bundle::files::Layout,
) -> Result<Option<convene_node::bundle::files::FilesImported>> {
    if !layout.with_files {
        return Ok(None);
    }
    let limits = Config::load(home)?.files;
    Ok(Some(node.import_bundle_files(path, layout, &limits)?))
}
