//! `convene who TOPIC`: the organisations and people who know about a
//! topic, ranked, with the evidence. The ranking is `Node::who`'s
//! (`convene_node::who`); this prints it.

use std::io::Write;
use std::path::Path;

use anyhow::Result;
use clap::Args;
use convene_node::Node;
use convene_node::who::{Reason, Who};

#[derive(Debug, Args)]
pub struct WhoArgs {
    /// A priority, method, skill, place or a few words ("discharge", "QSIR", "Gateshead", "family hubs")
    #[arg(required = true, num_args = 1.., value_name = "TOPIC")]
    pub topic: Vec<String>,
    /// At most this many organisations and this many people
    #[arg(long, value_name = "N", default_value_t = 10,
          value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub limit: u16,
    /// One JSON object: the terms the topic was read as, organisations and people with their scores and reasons
    #[arg(long)]
    pub json: bool,
}

pub fn run(out: &mut impl Write, home: &Path, a: WhoArgs) -> Result<()> {
    let node = Node::open(home)?;
    let who = node.who(&a.topic.join(" "), usize::from(a.limit))?;
    if a.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&who.to_json())?)?;
        return Ok(());
    }
    print(out, &who)
}

fn print(out: &mut impl Write, who: &Who) -> Result<()> {
    let read_as: Vec<String> = who
        .terms
        .iter()
        .map(|t| format!("{} \"{}\"", t.field.replace('_', " "), t.label))
        .collect();
    if who.is_empty() {
        writeln!(out, "No one found for \"{}\".", who.topic)?;
        if !read_as.is_empty() {
            writeln!(out, "Read as {}, and as words.", read_as.join(", "))?;
        }
        return Ok(());
    }
    writeln!(out, "Who knows about \"{}\"", who.topic)?;
    if read_as.is_empty() {
        writeln!(out, "Read as words ({} entries)", who.entries)?;
    } else {
        writeln!(
            out,
            "Read as {}, and as words ({} entries)",
            read_as.join(", "),
            who.entries
        )?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "Organisations{}",
        more(who.organisations.len(), who.total_organisations)
    )?;
    if who.organisations.is_empty() {
        writeln!(out, "  none")?;
    }
    for (i, o) in who.organisations.iter().enumerate() {
        let former = if o.standing == Some("former member") {
            " (former member)"
        } else {
            ""
        };
        writeln!(out, "{:>3}. {}{former}  (score {})", i + 1, o.name, o.score)?;
        reasons(out, &o.reasons)?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "People{} (only contacts who agreed to be listed)",
        more(who.people.len(), who.total_people)
    )?;
    if who.people.is_empty() {
        writeln!(out, "  none")?;
    }
    for (i, p) in who.people.iter().enumerate() {
        let mut line = p.name.clone();
        if !p.pronouns.is_empty() {
            line += &format!(" ({})", p.pronouns);
        }
        if !p.role.is_empty() {
            line += &format!(", {}", p.role);
        }
        let org = p.organisation.name.as_deref().unwrap_or(&p.organisation.id);
        line += &format!(", {org}");
        writeln!(out, "{:>3}. {line}  (score {})", i + 1, p.score)?;
        let mut facts = Vec::new();
        if !p.open_to.is_empty() {
            facts.push(format!("open to: {}", p.open_to.join(", ").to_lowercase()));
        }
        if p.lived_experience_partner {
            facts.push("lived-experience partner".to_string());
        }
        if let Some(email) = &p.email {
            facts.push(format!("email: {email}"));
        }
        if !facts.is_empty() {
            writeln!(out, "     {}", facts.join(" · "))?;
        }
        reasons(out, &p.reasons)?;
        writeln!(out, "     contact: {}", p.id)?;
    }
    Ok(())
}

/// " (10 of 14)" when the limit left some out.
fn more(shown: usize, total: usize) -> String {
    if total > shown {
        format!(" ({shown} of {total})")
    } else {
        String::new()
    }
}

fn reasons(out: &mut impl Write, reasons: &[Reason]) -> Result<()> {
    for r in reasons {
        if r.entries.is_empty() {
            writeln!(out, "     - {}", r.text)?;
        } else {
            let titles: Vec<String> = r
                .entries
                .iter()
                .map(|e| format!("{} ({})", e.title, short(&e.id)))
                .collect();
            writeln!(out, "     - {}: {}", r.text, titles.join("; "))?;
        }
    }
    Ok(())
}

fn short(id: &str) -> &str {
    crate::output::short_id(id)
}
