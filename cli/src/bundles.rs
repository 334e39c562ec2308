//! `convene export` and `convene import`: bundles of signed changes; and
//! spreadsheets and web pages in and out (`import-csv`, `export-csv`,
//! `export-md`).
//!
//! Every file written here is private to the user (0600, created folders
//! 0700), whatever the umask: bundles and exports carry entries and
//! contacts that are not for everyone. Put them somewhere more open on
//! purpose, with `chmod`, once you have checked what they hold.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result, anyhow};
use convene_node::Node;
use convene_node::bundle::{self, Since};
use convene_node::node::{create_private_dir, create_private_file};

use crate::args::{ExportArgs, ImportArgs};
use crate::progress;

fn since(s: &str) -> Result<Since> {
    let path = Path::new(s);
    if path.is_file() {
        // A bundle made with --with-files holds an ordinary one.
        let layout = bundle::files::layout(path)
            .with_context(|| format!("{} was refused", path.display()))?;
        let hashes = bundle::read_hashes(|| layout.open_bundle(path))
            .with_context(|| format!("{} was refused", path.display()))?;
        return Ok(Since::Bundle(hashes));
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        let t = d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc();
        return Ok(Since::Time(t.timestamp_millis()));
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(Since::Time(t.timestamp_millis()));
    }
    Err(anyhow!(
        "--since {s:?} is neither a bundle file nor a date (YYYY-MM-DD or RFC 3339)"
    ))
}

pub fn export(out: &mut impl Write, home: &Path, a: ExportArgs) -> Result<()> {
    let since = a
        .since
        .as_deref()
        .map(since)
        .transpose()?
        .unwrap_or_default();
    let node = Node::open(home)?;
    let for_org = a
        .for_org
        .as_deref()
        .map(|o| node.resolve_org(o))
        .transpose()?;
    let spinner = progress::spinner(format!("collecting changes for {}", a.out.display()));
    let body = node.export_bundle(for_org, &since);
    let body = match body {
        Ok(b) => b,
        Err(e) => {
            progress::done(&spinner);
            return Err(e.into());
        }
    };
    let message = format!("compressing {} changes", body.changes.len());
    let bytes = bundle::encode_with(&body, &mut |done, total| {
        progress::bar(&spinner, &message, done, total, "records");
    });
    progress::done(&spinner);
    // Write beside the target and rename, so a full disk or a crash never
    // leaves half a bundle under the real name.
    // Private to this user like every export: a bundle holds entries and
    // contacts that are not for everyone.
    let tmp = a.out.with_extension("partial");
    let files = if a.with_files {
        crate::files::write_bundle_with_files(&node, &body, &bytes, &tmp)?
    } else {
        write_private(&tmp, &bytes)?;
        0
    };
    std::fs::rename(&tmp, &a.out).with_context(|| format!("cannot write {}", a.out.display()))?;
    if a.with_files {
        writeln!(out, "with {files} files")?;
    }
    writeln!(
        out,
        "Wrote {}: {} changes to {} entries, {} erasures ({} bytes)",
        a.out.display(),
        body.changes.len(),
        bundle::documents(&body).len() - body.tombstones.len().min(bundle::documents(&body).len()),
        body.tombstones.len(),
        bytes.len()
    )?;
    Ok(())
}

pub fn import(out: &mut impl Write, home: &Path, a: ImportArgs) -> Result<()> {
    let spinner = progress::spinner(format!("reading {}", a.file.display()));
    let imported = (|| {
        let mut node = Node::open(home)?;
        let layout = crate::files::check_bundle_files(&a.file)?;
        let imported = node
            .import_bundle_from(|| layout.open_bundle(&a.file), &mut |stage, done, total| {
                match stage {
                    bundle::Stage::Checking => progress::say(&spinner, "checking the checksum"),
                    bundle::Stage::Verifying => {
                        progress::bar(&spinner, "verifying signatures", done, total, "records")
                    }
                    bundle::Stage::Applying => {
                        progress::bar(&spinner, "applying", done, total, "changes")
                    }
                }
            })
            .with_context(|| format!("{} was refused", a.file.display()))?;
        progress::say(&spinner, "saving");
        let files = crate::files::import_bundle_files(&node, home, &a.file, &layout)?;
        Ok::<_, anyhow::Error>((imported, files))
    })();
    progress::done(&spinner);
    let (imported, files) = imported?;
    let report = &imported.report;
    writeln!(
        out,
        "Imported {}: {} new changes, {} already here, {} rejected{}{}",
        a.file.display(),
        report.applied,
        report.already_had + report.refused_erased,
        imported.rejected,
        if report.waiting > 0 {
            format!(", {} waiting for what they depend on", report.waiting)
        } else {
            String::new()
        },
        if report.erased.is_empty() {
            String::new()
        } else {
            format!(", {} entries erased", report.erased.len())
        }
    )?;
    for r in &report.rejected {
        writeln!(out, "  rejected a change to {}: {}", r.doc, r.reason)?;
    }
    if imported.rejected > report.rejected.len() {
        writeln!(
            out,
            "  and {} more (`convene log --security` lists them all)",
            imported.rejected - report.rejected.len()
        )?;
    }
    if let Some(f) = files {
        writeln!(
            out,
            "  files: {} stored, {} already here, {} left out (no entry here uses them, or over the size limit)",
            f.stored, f.already, f.skipped
        )?;
    }
    Ok(())
}

pub fn import_csv(
    out: &mut impl Write,
    home: &Path,
    kind: &str,
    file: &Path,
    dry_run: bool,
) -> Result<()> {
    let kind: convene_model::Kind = kind.parse()?;
    if !matches!(
        kind,
        convene_model::Kind::Learning | convene_model::Kind::Project | convene_model::Kind::Contact
    ) {
        return Err(anyhow!(
            "import-csv takes learning, project or contact, not {kind}"
        ));
    }
    let mut node = Node::open(home)?;
    let reader =
        std::fs::File::open(file).with_context(|| format!("cannot read {}", file.display()))?;
    let spinner = progress::spinner(format!("checking {}", file.display()));
    let rows = convene_node::tabular::read_rows_with_ids(kind, reader, node.vocab());
    let print_problems = |problems: &[convene_node::tabular::RowProblem]| {
        for p in problems {
            let column = if p.column.is_empty() {
                String::new()
            } else {
                format!(", column {}", p.column)
            };
            eprintln!("{}: line {}{column}: {}", file.display(), p.line, p.reason);
        }
    };
    let rows = match rows {
        Ok(rows) => rows,
        Err(convene_node::tabular::CsvError::Rows(problems)) => {
            progress::done(&spinner);
            print_problems(&problems);
            return Err(convene_node::tabular::CsvError::Rows(problems).into());
        }
        Err(e) => return Err(e.into()),
    };
    let n = rows.len();
    let report =
        convene_node::tabular::import(&mut node, kind, rows, dry_run, &mut |done, total| {
            progress::bar(&spinner, "publishing", done, total, "entries");
        });
    progress::done(&spinner);
    let report = match report {
        Ok(r) => r,
        Err(convene_node::NodeError::Csv(convene_node::tabular::CsvError::Rows(problems))) => {
            print_problems(&problems);
            return Err(convene_node::tabular::CsvError::Rows(problems).into());
        }
        Err(e) => return Err(e.into()),
    };
    for w in &report.warnings {
        eprintln!("warning: {}: {w}", file.display());
    }
    for (line, id) in &report.skipped {
        eprintln!(
            "{}: line {line} is already here as {id} (same title and fields); not published again",
            file.display()
        );
    }
    if dry_run {
        writeln!(
            out,
            "{n} rows are valid: {} would be published, {} would update entries here, {} are already here; nothing was written (--dry-run)",
            n - report.unchanged - report.skipped.len(),
            report.unchanged,
            report.skipped.len()
        )?;
        return Ok(());
    }
    let mut line = format!(
        "Published {} {kind} entries from {}",
        report.published.len(),
        file.display()
    );
    for (n, what) in [
        (report.updated.len(), "updated"),
        (report.unchanged, "unchanged"),
        (report.skipped.len(), "already here"),
    ] {
        if n > 0 {
            line += &format!("; {n} {what}");
        }
    }
    writeln!(out, "{line}")?;
    Ok(())
}

pub fn export_csv(
    out: &mut impl Write,
    home: &Path,
    kind: &str,
    file: Option<&Path>,
) -> Result<()> {
    let kind: convene_model::Kind = kind.parse()?;
    let node = Node::open(home)?;
    let rows = node.list(&convene_node::Filter {
        kind: Some(kind),
        ..convene_node::Filter::default()
    })?;
    // Drafts never leave their node: a spreadsheet is made to be passed
    // on, so it holds published (and retracted-if-listed) entries only.
    let entries: Vec<convene_model::Entry> = rows
        .iter()
        .filter(|l| l.status != "draft")
        .filter_map(|l| node.get(l.id).ok())
        .collect();
    match file {
        Some(path) => {
            let f = create_private_file(path)
                .with_context(|| format!("cannot write {}", path.display()))?;
            convene_node::tabular::write_rows(&entries, f)
                .with_context(|| format!("cannot write {}", path.display()))?;
            writeln!(
                out,
                "Wrote {} {kind} entries to {}",
                entries.len(),
                path.display()
            )?;
        }
        None => convene_node::tabular::write_rows(&entries, &mut *out)?,
    }
    Ok(())
}

/// `export-md`: one page per entry, for a website. Contacts are personal
/// data shared with the community, not with the public: they are left out
/// unless `contacts` is set, and then only those whose consent covers
/// publication ([`convene_node::tabular::publishable_contact`]) are written,
/// with only the channels they made visible to the whole community.
pub fn export_md(out: &mut impl Write, home: &Path, dir: &Path, contacts: bool) -> Result<()> {
    let node = Node::open(home)?;
    create_private_dir(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut written = 0;
    let mut contacts_left_out = 0;
    for listed in node.list(&convene_node::Filter::default())? {
        // Drafts are never published, here least of all.
        if listed.status == "draft" {
            continue;
        }
        let Ok(entry) = node.get(listed.id) else {
            continue;
        };
        let entry = match entry.meta.kind {
            convene_model::Kind::Charter => continue,
            convene_model::Kind::Contact => {
                match convene_node::tabular::publishable_contact(&entry).filter(|_| contacts) {
                    Some(published) => published,
                    None => {
                        contacts_left_out += 1;
                        continue;
                    }
                }
            }
            _ => entry,
        };
        let path = dir.join(convene_node::tabular::markdown_name(&entry));
        write_private(&path, convene_node::tabular::markdown(&entry).as_bytes())?;
        written += 1;
    }
    writeln!(out, "Wrote {written} Markdown files to {}", dir.display())?;
    if contacts_left_out > 0 {
        writeln!(
            out,
            "Left out {contacts_left_out} contacts: {}",
            if contacts {
                "their consent does not cover publication on a website (consent.public)"
            } else {
                "add --contacts to include those who agreed to be published"
            }
        )?;
    }
    Ok(())
}

/// Writes a whole export file, readable by this user only (0600) whatever
/// the umask. Every file the CLI exports is written through here or
/// [`create_private_file`].
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f =
        create_private_file(path).with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}
