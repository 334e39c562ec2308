//! `convene similar`: the entries most like an entry held here, or like a
//! draft described with flags, each with why it matches; and the short
//! "Similar work already in the community" hint a publish prints.

use std::io::Write;
use std::path::Path;

use anyhow::{Result, anyhow};
use clap::Args;
use convene_model::DocumentId;
use convene_node::Node;
use convene_node::similar::{self, Draft, Similar};

use crate::output::short_id;

#[derive(Debug, Args)]
pub struct SimilarArgs {
    /// An entry id (or a unique prefix): learning, project or idea. Without it, describe a draft with the flags below
    #[arg(conflicts_with_all = ["title", "summary", "body", "priorities", "methods", "tags", "place"])]
    pub id: Option<String>,
    /// The draft's title
    #[arg(long)]
    pub title: Option<String>,
    /// The draft's summary
    #[arg(long)]
    pub summary: Option<String>,
    /// The draft's longer text (body, problem, aim …)
    #[arg(long)]
    pub body: Option<String>,
    /// A priority (slug or label; repeatable)
    #[arg(long = "priority", value_name = "PRIORITY")]
    pub priorities: Vec<String>,
    /// A method (slug or label; repeatable)
    #[arg(long = "method", value_name = "METHOD")]
    pub methods: Vec<String>,
    /// A free tag (repeatable)
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// The place it concerns
    #[arg(long)]
    pub place: Option<String>,
    /// At most this many
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub limit: usize,
    /// One JSON object per line (with `score`, `reasons` and `words`)
    #[arg(long)]
    pub json: bool,
}

pub fn run(out: &mut impl Write, home: &Path, a: SimilarArgs) -> Result<()> {
    if a.limit == 0 {
        return Err(anyhow!("--limit must be at least 1"));
    }
    let node = Node::open(home)?;
    let found = match &a.id {
        Some(id) => {
            let id = node.resolve(id)?;
            similar::similar_to(&node, id, a.limit)?
        }
        None => {
            let draft = draft(&node, &a)?;
            if draft == Draft::default() {
                return Err(anyhow!(
                    "give an entry id, or describe a draft with --title, --summary, --priority …"
                ));
            }
            similar::similar(&node, &draft, a.limit)?
        }
    };
    if a.json {
        for s in &found {
            serde_json::to_writer(&mut *out, &s.to_json())?;
            writeln!(out)?;
        }
    } else if found.is_empty() {
        writeln!(out, "No similar entries found.")?;
    } else {
        print(out, &found)?;
    }
    Ok(())
}

/// The draft the flags describe, with vocabulary values resolved to slugs.
fn draft(node: &Node, a: &SimilarArgs) -> Result<Draft> {
    let vocab = node.vocab();
    let slugs = |v: &convene_model::Vocabulary, values: &[String]| -> Result<Vec<String>> {
        values
            .iter()
            .map(|p| Ok(v.resolve(p)?.slug.clone()))
            .collect()
    };
    let text = [a.summary.as_deref(), a.body.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join("\n");
    Ok(Draft {
        title: a.title.clone().unwrap_or_default(),
        text,
        tags: a.tags.clone(),
        priorities: slugs(&vocab.priorities, &a.priorities)?,
        methods: slugs(&vocab.methods, &a.methods)?,
        themes: Vec::new(),
        place: a.place.clone().unwrap_or_default(),
        exclude: None,
    })
}

/// Numbered entries, each with its owner and reasons.
fn print(out: &mut impl Write, found: &[Similar]) -> Result<()> {
    for (i, s) in found.iter().enumerate() {
        let l = &s.listed;
        let owner = l
            .owner_name
            .clone()
            .unwrap_or_else(|| short_id(&l.owner).to_string());
        writeln!(
            out,
            "{:>2}. {}  {:<8} {}  ({owner}; score {:.2})",
            i + 1,
            short_id(&l.id.to_string()),
            l.kind.as_str(),
            l.title,
            s.score
        )?;
        let reasons: Vec<String> = s.reasons.iter().map(ToString::to_string).collect();
        if !reasons.is_empty() {
            writeln!(out, "    {}", reasons.join("; "))?;
        }
    }
    Ok(())
}

/// After a publish: the few entries most like the new one, if any are
/// close enough. Written to `out` (stderr: stdout holds only the new id,
/// for scripts); a failure here never fails the publish.
pub fn after_publish(out: &mut impl Write, node: &Node, id: DocumentId) {
    let Ok(found) = similar::similar_to(node, id, 3) else {
        return;
    };
    let close: Vec<&Similar> = found.iter().filter(|s| s.worth_showing()).collect();
    if close.is_empty() {
        return;
    }
    let mut text = String::from("Similar work already in the community:\n");
    for s in close {
        let l = &s.listed;
        let owner = l
            .owner_name
            .clone()
            .unwrap_or_else(|| short_id(&l.owner).to_string());
        text += &format!("  {}  {} ({owner})\n", short_id(&l.id.to_string()), l.title);
        let reasons: Vec<String> = s.reasons.iter().map(ToString::to_string).collect();
        if !reasons.is_empty() {
            text += &format!("      {}\n", reasons.join("; "));
        }
    }
    text += "  (convene similar ID for more; convene show ID to read one)\n";
    let _ = out.write_all(text.as_bytes());
}
