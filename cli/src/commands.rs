//! Each command: open the node, call `convene_node`, print the result.

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::{Context, Result, anyhow};
use convene_model::{DataPoint, EntryInput, Kind, Vocabularies};
use convene_node::{Edit, Filter, InitOptions, Node, Outcome};

use crate::args::{
    Cli, Command, EditArgs, ListArgs, PublishCommand, RecordArgs, SearchArgs, ShowArgs,
};
use crate::{input, network, output};

/// The data directory: `--home`, `CONVENE_HOME`, or the platform default.
fn home(cli_home: Option<PathBuf>) -> Result<PathBuf> {
    match cli_home {
        Some(h) => Ok(h),
        None => directories::ProjectDirs::from("", "", "convene")
            .map(|d| d.data_dir().to_path_buf())
            .ok_or_else(|| {
                anyhow!("cannot find a home directory: pass --home DIR or set CONVENE_HOME")
            }),
    }
}

pub fn run(cli: Cli) -> Result<()> {
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    // These describe the command itself and need no home.
    match &cli.command {
        Command::Completions { shell } => {
            crate::ops::completions(&mut out, *shell)?;
            out.flush()?;
            return Ok(());
        }
        Command::Man { out: dir } => {
            crate::ops::man(&mut out, dir.as_deref())?;
            out.flush()?;
            return Ok(());
        }
        _ => {}
    }
    let home = home(cli.home)?;
    match cli.command {
        Command::Completions { .. } | Command::Man { .. } => {}
        Command::Config(c) => crate::ops::config(&mut out, &home, c)?,
        Command::Doctor(a) => crate::ops::doctor(&mut out, &home, a)?,
        Command::Init(a) => {
            let node = Node::init(
                &home,
                &InitOptions {
                    org: a.org,
                    sector: a.sector,
                    place: a.place,
                },
            )?;
            writeln!(out, "Initialised a Convene node in {}", home.display())?;
            writeln!(out, "node id:         {}", node.node_id())?;
            writeln!(out, "organisation id: {}", node.org())?;
        }
        Command::Id => {
            let node = Node::open(&home)?;
            writeln!(out, "{}", node.node_id())?;
        }
        Command::Publish(mut p) => {
            let mut node = Node::open(&home)?;
            let common = match &mut p {
                PublishCommand::Learning(a) => &mut a.common,
                PublishCommand::Project(a) => &mut a.common,
                PublishCommand::Contact(a) => &mut a.common,
                PublishCommand::Event(a) => &mut a.common,
                PublishCommand::Idea(a) => &mut a.common,
                PublishCommand::Round(a) => &mut a.common,
            };
            // Organisation names become ids.
            if let Some(v) = &common.visibility {
                common.visibility = Some(node.parse_visibility(v)?.to_string());
            }
            let input: EntryInput = match &p {
                PublishCommand::Learning(a) => input::learning(a)?,
                PublishCommand::Project(a) => input::project(a)?,
                PublishCommand::Contact(a) => input::contact(a)?,
                PublishCommand::Event(a) => crate::convening::event_input(a)?,
                PublishCommand::Idea(a) => crate::convening::idea_input(&node, a)?,
                PublishCommand::Round(a) => crate::convening::round_input(a)?,
            };
            let id = node.publish(input)?;
            writeln!(out, "{id}")?;
            // Stdout stays the id alone, for scripts; the hint goes to stderr.
            if !cli.quiet && !matches!(p, PublishCommand::Contact(_)) {
                out.flush()?;
                crate::similar::after_publish(&mut std::io::stderr(), &node, id);
            }
        }
        Command::List(a) => list(&mut out, &home, a)?,
        Command::Show(a) => show(&mut out, &home, a)?,
        Command::Edit(a) => edit(&mut out, &home, a)?,
        Command::Record(a) => record(&mut out, &home, a)?,
        Command::Chart(a) => crate::chart::run(&mut out, &home, a)?,
        Command::Search(a) => search(&mut out, &home, a)?,
        Command::Similar(a) => crate::similar::run(&mut out, &home, a)?,
        Command::Who(a) => crate::who::run(&mut out, &home, a)?,
        Command::Digest(a) => crate::digest::run(&mut out, &home, a)?,
        Command::Attach(a) => crate::files::attach(&mut out, &home, a)?,
        Command::Ask(a) => crate::convening::ask(&mut out, &home, a)?,
        Command::Reply(a) => crate::convening::reply(&mut out, &home, a)?,
        Command::Questions(a) => crate::convening::questions(&mut out, &home, a)?,
        Command::Attend(a) => crate::convening::attend(&mut out, &home, a)?,
        Command::Vote(a) => crate::convening::vote(&mut out, &home, a)?,
        Command::Ideas(a) => crate::convening::ideas(&mut out, &home, a)?,
        Command::Round(c) => crate::convening::round(&mut out, &home, c)?,
        Command::Files(a) => crate::files::list(&mut out, &home, a)?,
        Command::Feed(c) => crate::feeds::run(&mut out, &home, c)?,
        Command::Get(a) => crate::files::get(&mut out, &home, a)?,
        Command::Retract(a) => {
            let mut node = Node::open(&home)?;
            let id = node.resolve(&a.id)?;
            if a.erase {
                node.erase(id, &a.reason)?;
                writeln!(out, "erased {id}")?;
                out.flush()?;
                return Ok(());
            }
            match node.retract(id)? {
                Outcome::Changed => writeln!(out, "retracted {id}")?,
                Outcome::Unchanged => writeln!(out, "{id} was already retracted")?,
            }
        }
        Command::Node(crate::args::NodeCommand::Start(a)) => network::start(&mut out, &home, a)?,
        Command::Open(a) => crate::web::open(&mut out, &home, a)?,
        Command::Demo(a) => crate::web::demo(&mut out, a)?,
        Command::Sync(a) => network::sync_once(&mut out, &home, a)?,
        Command::Status(a) => network::status(&mut out, &home, a)?,
        Command::Peers(a) => network::peers(&mut out, &home, a)?,
        Command::Community(c) => crate::community::community(&mut out, &home, c)?,
        Command::Member(c) => crate::community::members(&mut out, &home, c)?,
        Command::Steward(c) => crate::community::stewards(&mut out, &home, c)?,
        Command::Invite(a) => crate::community::invite(&mut out, &home, a)?,
        Command::Join(a) => crate::community::join(&mut out, &home, a)?,
        Command::Export(a) => crate::bundles::export(&mut out, &home, a)?,
        Command::Import(a) => crate::bundles::import(&mut out, &home, a)?,
        Command::ImportCsv {
            kind,
            file,
            dry_run,
        } => crate::bundles::import_csv(&mut out, &home, &kind, &file, dry_run)?,
        Command::ExportCsv { kind, out: file } => {
            crate::bundles::export_csv(&mut out, &home, &kind, file.as_deref())?
        }
        Command::ExportMd { out: dir, contacts } => {
            crate::bundles::export_md(&mut out, &home, &dir, contacts)?
        }
        Command::Backup { file } => {
            let node = Node::open(&home)?;
            let size = node.backup_to(&file)?;
            writeln!(
                out,
                "Wrote {} ({size} bytes). It holds this node's private key: keep it safe.",
                file.display()
            )?;
        }
        Command::Restore { file } => {
            let node = Node::restore(&home, &file)?;
            writeln!(
                out,
                "Restored node {} into {}; start it with `convene node start`.",
                node.node_id(),
                home.display()
            )?;
        }
        Command::Log(a) => {
            let node = Node::open(&home)?;
            let entries = node.store().log(a.security)?;
            if a.json {
                for e in &entries {
                    serde_json::to_writer(&mut out, &output::log_json(e))?;
                    writeln!(out)?;
                }
            } else {
                output::print_log(&mut out, &entries)?;
            }
        }
        Command::Vocab(a) => {
            let v = Vocabularies::default();
            let vocab = vocabulary(&v, &a.name)?;
            if a.json {
                serde_json::to_writer(&mut out, &vocab.terms)?;
                writeln!(out)?;
            } else {
                output::print_vocabulary(&mut out, vocab)?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

fn vocabulary<'a>(v: &'a Vocabularies, name: &str) -> Result<&'a convene_model::Vocabulary> {
    let all = [
        ("priorities", &v.priorities),
        ("goals", &v.goals),
        ("themes", &v.themes),
        ("sectors", &v.sectors),
        ("levels", &v.levels),
        ("stages", &v.stages),
        ("methods", &v.methods),
        ("skills", &v.skills),
        ("learning-types", &v.learning_types),
        ("outcomes", &v.outcomes),
        ("sources", &v.sources),
        ("measure-types", &v.measure_types),
        ("team-roles", &v.team_roles),
        ("pdsa-acts", &v.pdsa_acts),
        ("open-to", &v.open_to),
        ("channels", &v.channels),
    ];
    let wanted = name.trim().to_lowercase().replace('_', "-");
    all.iter()
        .find(|(n, _)| *n == wanted || n.trim_end_matches('s') == wanted)
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            let names: Vec<&str> = all.iter().map(|(n, _)| *n).collect();
            anyhow!(
                "unknown vocabulary {name:?} (vocabularies: {})",
                names.join(", ")
            )
        })
}

fn list(out: &mut impl Write, home: &std::path::Path, a: ListArgs) -> Result<()> {
    let node = Node::open(home)?;
    let kind = a.kind.as_deref().map(str::parse::<Kind>).transpose()?;
    let mut terms = Vec::new();
    if let Some(tag) = &a.tag {
        terms.push(("tag".to_string(), tag.trim().to_lowercase()));
    }
    if let Some(p) = &a.priority {
        let t = node.vocab().priorities.resolve(p)?;
        terms.push(("priority".to_string(), t.slug.clone()));
    }
    if let Some(m) = &a.method {
        let t = node.vocab().methods.resolve(m)?;
        terms.push(("method".to_string(), t.slug.clone()));
    }
    let owner = a
        .org
        .as_deref()
        .map(|o| node.resolve_org(o).map(|id| id.to_string()))
        .transpose()?;
    let rows = node.list(&Filter {
        kind,
        owner,
        terms,
        include_retracted: a.all,
        limit: a.limit,
        offset: 0,
    })?;
    if a.json {
        for r in &rows {
            serde_json::to_writer(&mut *out, &r.to_json())?;
            writeln!(out)?;
        }
    } else {
        output::print_list(out, &rows)?;
    }
    Ok(())
}

fn show(out: &mut impl Write, home: &std::path::Path, a: ShowArgs) -> Result<()> {
    let node = Node::open(home)?;
    let id = node.resolve(&a.id)?;
    let entry = node.get(id)?;
    let standing = node.org_standing(&entry.meta.owner);
    let owner_name = node.org_name(&entry.meta.owner).map(|n| match standing {
        Some("former member") => format!("{n} (former member)"),
        _ => n,
    });
    let history = if a.history {
        Some(node.history(id)?)
    } else {
        None
    };
    let mut json = entry.to_json();
    if a.json {
        json["owner_name"] = serde_json::json!(node.org_name(&entry.meta.owner));
        json["owner_standing"] = serde_json::json!(standing);
        if let Some(h) = &history {
            json["history"] = convene_node::node::history_json(h);
        }
        crate::convening::show_extras(out, &node, &entry, a.thread, Some(&mut json))?;
        serde_json::to_writer(&mut *out, &json)?;
        writeln!(out)?;
    } else {
        output::print_entry(out, &json, owner_name.as_deref(), node.vocab())?;
        crate::convening::show_extras(out, &node, &entry, a.thread, None)?;
        if let Some(h) = &history {
            output::print_history(out, h)?;
        }
    }
    Ok(())
}

fn edit(out: &mut impl Write, home: &std::path::Path, a: EditArgs) -> Result<()> {
    let mut node = Node::open(home)?;
    let id = node.resolve(&a.id)?;
    let editor = |name: &str| node.resolve_org(name);
    let change = if let Some(org) = &a.add_editor {
        Edit::AddEditor(editor(org)?)
    } else if let Some(org) = &a.remove_editor {
        Edit::RemoveEditor(editor(org)?)
    } else {
        match &a.from {
            Some(path) => {
                let kind = node.get(id)?.meta.kind;
                let value = input::read_file(path)?;
                let input = EntryInput::from_json(kind, value)
                    .with_context(|| format!("in {}", path.display()))?;
                Edit::Replace(Box::new(input))
            }
            None => Edit::Set(
                a.set
                    .iter()
                    .map(|s| input::assignment(s))
                    .collect::<Result<_>>()?,
            ),
        }
    };
    match node.edit(id, change)? {
        Outcome::Changed => writeln!(out, "edited {id}")?,
        Outcome::Unchanged => writeln!(out, "{id} already had those values; nothing changed")?,
    }
    Ok(())
}

fn record(out: &mut impl Write, home: &std::path::Path, a: RecordArgs) -> Result<()> {
    let mut node = Node::open(home)?;
    let id = node.resolve(&a.id)?;
    node.edit(
        id,
        Edit::AddDataPoint {
            measure: a.measure.clone(),
            point: DataPoint {
                date: a.date,
                value: a.value,
                note: a.note.unwrap_or_default(),
                denominator: a.denominator,
            },
        },
    )?;
    writeln!(out, "recorded a value for {:?} in {id}", a.measure)?;
    Ok(())
}

fn search(out: &mut impl Write, home: &std::path::Path, a: SearchArgs) -> Result<()> {
    let node = Node::open(home)?;
    let query = a.query.join(" ");
    if a.limit == 0 {
        return Err(anyhow!("--limit must be at least 1"));
    }
    let offset = a
        .offset
        .unwrap_or_else(|| a.page.max(1).saturating_sub(1).saturating_mul(a.limit));
    let (hits, total) = node
        .search_page(&query, offset, a.limit)?
        .ok_or_else(|| anyhow!("the query {query:?} has no words to search for"))?;
    let shown = output::showing(offset, hits.len(), total, a.limit);
    if a.json {
        for h in &hits {
            serde_json::to_writer(&mut *out, &h.to_json())?;
            writeln!(out)?;
        }
        if let Some(line) = shown {
            eprintln!("{line}");
        }
    } else {
        if hits.is_empty() && total > 0 {
            writeln!(out, "No results on this page.")?;
        } else {
            output::print_hits(out, &hits)?;
        }
        if let Some(line) = shown {
            writeln!(out, "{line}")?;
        }
    }
    Ok(())
}
