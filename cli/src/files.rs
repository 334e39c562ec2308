//! `convene attach`, `convene files`, `convene get`: files on learning
//! entries and projects. The node does the work (`Node::attach`,
//! `Node::attachments`, `Node::save_attachment`); this module parses,
//! reads the per-file limit from `config.toml`, and prints.
//!
//! `get` of a file whose bytes are not here asks the running daemon for
//! them the way every CLI command talks to it, through the store: it adds
//! the hash to the `files.wanted` list, then follows the daemon's
//! `files.fetching` report (a progress bar at a terminal) until the bytes
//! are in the file store.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use comfy_table::{ContentArrangement, Table, presets};
use std::time::{Duration, Instant};

use convene_model::Attachment;
use convene_node::blobs::BlobError;
use convene_node::daemon::config::Config;
use convene_node::daemon::files::{META_FETCHING, set_wanted};
use convene_node::error::NodeError;
use convene_node::{Node, human_size};

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
    /// One JSON object per file: name, size, media_type, hash, held (and, while the daemon fetches it, fetching: done, total, state)
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
        human_size(added.size),
        added.hash
    )?;
    Ok(())
}

pub fn list(out: &mut impl Write, home: &Path, a: FilesArgs) -> Result<()> {
    let node = Node::open(home)?;
    let id = node.resolve(&a.id)?;
    let files = node.attachments(id)?;
    // What the running daemon is fetching (nothing when it does not run).
    let report: serde_json::Value = if convene_node::daemon::is_running(home) {
        node.store()
            .meta(META_FETCHING)?
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default()
    } else {
        serde_json::Value::Null
    };
    if a.json {
        for f in &files {
            let mut v = f.to_json();
            let fetching = &report[&f.attachment.hash];
            if !f.held && fetching.is_object() {
                v["fetching"] = fetching.clone();
            }
            serde_json::to_writer(&mut *out, &v)?;
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
        let fetching = &report[&a.hash];
        let here = if f.held {
            "yes".to_string()
        } else {
            match (fetching["state"].as_str(), fetching["done"].as_u64()) {
                (Some("fetching"), Some(done)) if a.size > 0 => {
                    format!("fetching {}%", done * 100 / a.size)
                }
                (Some(state), _) => format!("no ({state})"),
                _ => "no".to_string(),
            }
        };
        t.add_row([
            a.name.clone(),
            human_size(a.size),
            a.media_type.clone(),
            a.hash[..16.min(a.hash.len())].to_string(),
            here,
        ]);
    }
    for line in t.lines() {
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

pub fn get(out: &mut impl Write, home: &Path, a: GetArgs) -> Result<()> {
    let mut node = Node::open(home)?;
    let id = node.resolve(&a.id)?;
    // The stored name is sanitised, so it is always a safe single file name.
    let attachment = node.attachment(id, &a.name)?;
    let dest = a.out.unwrap_or_else(|| PathBuf::from(&attachment.name));
    if !node.blobs().has(&attachment.hash) {
        if !a.force && dest.exists() {
            bail!(
                "cannot write {}: it already exists (pass --force to replace it)",
                dest.display()
            );
        }
        fetch_through_daemon(&mut node, home, &attachment)?;
    }
    match node.save_attachment(id, &attachment.name, &dest, a.force) {
        // The copy held here was damaged on disk and has just been moved
        // aside: fetched again from a member, as if it had never been here.
        Err(NodeError::Files(BlobError::Damaged { aside, .. })) => {
            let damaged = |is| damaged_copy(&attachment.name, is, aside.as_deref());
            if !convene_node::daemon::is_running(home) {
                bail!(
                    "{}; start the daemon (`convene node start`) and `convene get` again to fetch it from a member",
                    damaged("is")
                );
            }
            fetch_through_daemon(&mut node, home, &attachment)
                .with_context(|| format!("{}, and fetching it again failed", damaged("is")))?;
            node.save_attachment(id, &attachment.name, &dest, a.force)?;
            eprintln!("note: {}; fetched it again from a member", damaged("was"));
        }
        saved => {
            saved?;
        }
    }
    writeln!(
        out,
        "wrote {} ({})",
        dest.display(),
        human_size(attachment.size)
    )?;
    Ok(())
}

/// How long a download may go without progress before `get` gives up.
const STALLED: Duration = Duration::from_secs(60);
/// How long `get` waits for a member that holds the file to be found.
const NO_SOURCE: Duration = Duration::from_secs(10);

/// Asks the running daemon to fetch `a`'s bytes and waits until they are
/// in the file store, showing its progress.
fn fetch_through_daemon(node: &mut Node, home: &Path, a: &Attachment) -> Result<()> {
    if !convene_node::daemon::is_running(home) {
        bail!(
            "the bytes of {} are not held on this node, and no daemon is running to fetch them from members (start it with `convene node start`)",
            a.name
        );
    }
    set_wanted(node, &a.hash, true)?;
    let result = wait_for_fetch(node, home, a);
    let _ = set_wanted(node, &a.hash, false);
    result
}

fn wait_for_fetch(node: &Node, home: &Path, a: &Attachment) -> Result<()> {
    let blobs = node.blobs();
    let spinner = crate::progress::spinner(format!("asking members for {}", a.name));
    let started = Instant::now();
    let mut last = (0u64, Instant::now());
    let result = loop {
        if blobs.has(&a.hash) {
            break Ok(());
        }
        if !convene_node::daemon::is_running(home) {
            break Err(anyhow::anyhow!(
                "the daemon stopped before {} arrived; what arrived is kept, and `convene get` again resumes",
                a.name
            ));
        }
        let report: serde_json::Value = node
            .store()
            .meta(META_FETCHING)?
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default();
        let mine = &report[&a.hash];
        let state = mine["state"].as_str().unwrap_or("");
        let done = mine["done"].as_u64().unwrap_or(0);
        if done != last.0 {
            last = (done, Instant::now());
        }
        if let Some(why) = state
            .strip_prefix("refused: ")
            .or(state.strip_prefix("failed: "))
        {
            break Err(anyhow::anyhow!("cannot fetch {}: {why}", a.name));
        }
        if state == "no source" && started.elapsed() > NO_SOURCE && done == 0 {
            break Err(anyhow::anyhow!(
                "no connected member holds {} (the daemon keeps asking; try again later)",
                a.name
            ));
        }
        if last.1.elapsed() > STALLED {
            break Err(anyhow::anyhow!(
                "fetching {} made no progress for {} seconds ({} of {} bytes verified, kept for next time)",
                a.name,
                STALLED.as_secs(),
                done,
                a.size
            ));
        }
        if state == "fetching" || done > 0 {
            crate::progress::bar(
                &spinner,
                &format!("fetching {}", a.name),
                done,
                a.size,
                "bytes",
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    crate::progress::done(&spinner);
    result
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
    let docs: Vec<_> = convene_node::bundle::documents(body).into_iter().collect();
    let result = match node.write_bundle_with_files(bytes, docs.iter().copied(), &mut w) {
        // Not a failure to write: a file held here is damaged.
        Err(NodeError::Files(BlobError::Damaged { hash, aside })) => {
            let (what, get) = file_named(node, &docs, &hash);
            Err(anyhow::anyhow!(
                "nothing was exported: {}; fetch it again from a member ({get}, with the daemon running), then export again",
                damaged_copy(&what, "is", aside.as_deref()),
            ))
        }
        written => written
            .map_err(anyhow::Error::from)
            .and_then(|n| {
                let file = w.into_inner().map_err(|e| e.into_error())?;
                file.sync_all()?;
                Ok(n)
            })
            .with_context(|| format!("cannot write {}", tmp.display())),
    };
    if result.is_err() {
        let _ = std::fs::remove_file(tmp);
    }
    result
}

/// The file with `hash` as a person knows it (its name and entry, from
/// the first of `docs` that uses it, else its hash), and the command that
/// fetches it.
fn file_named(node: &Node, docs: &[convene_model::DocumentId], hash: &str) -> (String, String) {
    docs.iter()
        .find_map(|doc| {
            let files = node.attachments(*doc).ok()?;
            let name = &files
                .iter()
                .find(|f| f.attachment.hash == hash)?
                .attachment
                .name;
            Some((
                format!("{name} on entry {doc}"),
                format!("`convene get {doc} {name:?}`"),
            ))
        })
        .unwrap_or_else(|| (format!("file {hash}"), "`convene get`".into()))
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

/// How a copy of an attachment found damaged on disk is reported, the
/// same way by every command: what it is, why, and where it was moved.
fn damaged_copy(what: &str, is: &str, aside: Option<&Path>) -> String {
    let aside = aside.map_or(String::new(), |p| {
        format!("; moved aside to {}", p.display())
    });
    format!(
        "the copy of {what} held here {is} damaged on disk (its bytes no longer match their hash{aside})"
    )
}
