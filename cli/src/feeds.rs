//! `convene feed new|list|revoke`: feed links for feed readers and
//! calendars. The node keeps the tokens (as hashes) and serves the feeds
//! (`convene_node::feeds`); this module parses and prints. A new link is
//! printed with the running daemon's web address, or as a path to put
//! after it when the node is not running.

use std::io::Write;
use std::path::Path;

use anyhow::Result;
use clap::{Args, Subcommand};
use comfy_table::{ContentArrangement, Table, presets};
use convene_model::Timestamp;
use convene_node::Node;
use convene_node::daemon::is_running;
use convene_node::daemon::web::META_WEB;
use convene_node::feeds::{self, FeedFilter, FeedToken, Scope};
use serde_json::json;

#[derive(Debug, Subcommand)]
pub enum FeedCommand {
    /// Make a feed link (Atom of new and updated entries, or with --events an iCalendar of events) that a feed reader or calendar can fetch without signing in; it opens that feed with this filter and nothing else
    New(NewArgs),
    /// The feed links made on this node: id, label, feed, filter, made, last used, revoked (never the links themselves)
    List {
        /// One JSON object per link
        #[arg(long)]
        json: bool,
    },
    /// Revoke a feed link: readers holding it are refused from then on
    Revoke {
        /// The link's id, as `convene feed list` shows it
        id: String,
    },
}

#[derive(Debug, Args)]
pub struct NewArgs {
    /// A name for the link, e.g. who it is for [default: its feed and filter]
    #[arg(long, value_name = "TEXT")]
    pub label: Option<String>,
    /// The iCalendar feed of events (/events.ics) instead of the Atom feed of entries
    #[arg(long)]
    pub events: bool,
    /// Only entries matching these words
    #[arg(long, value_name = "WORDS")]
    pub search: Option<String>,
    /// Only this kind: learning, project, event or idea (never contacts)
    #[arg(long, value_name = "KIND")]
    pub kind: Option<String>,
    /// Only entries with this priority (slug or label; see `convene vocab priorities`)
    #[arg(long, value_name = "PRIORITY")]
    pub priority: Option<String>,
    /// Only entries using this improvement method
    #[arg(long, value_name = "METHOD")]
    pub method: Option<String>,
    /// Only entries from organisations in this sector
    #[arg(long, value_name = "SECTOR")]
    pub sector: Option<String>,
    /// Only entries about this place
    #[arg(long, value_name = "PLACE")]
    pub place: Option<String>,
    /// Only entries owned by this organisation (name or id)
    #[arg(long, value_name = "ORG")]
    pub org: Option<String>,
    /// Print one JSON object: id, label, scope, filter, url (or null), path
    #[arg(long)]
    pub json: bool,
}

pub fn run(out: &mut impl Write, home: &Path, c: FeedCommand) -> Result<()> {
    match c {
        FeedCommand::New(a) => new(out, home, a),
        FeedCommand::List { json } => list(out, home, json),
        FeedCommand::Revoke { id } => revoke(out, home, &id),
    }
}

fn new(out: &mut impl Write, home: &Path, a: NewArgs) -> Result<()> {
    let node = Node::open(home)?;
    let scope = if a.events {
        Scope::Events
    } else {
        Scope::Entries
    };
    let filter = FeedFilter {
        q: a.search.unwrap_or_default(),
        kind: a.kind.unwrap_or_default(),
        priority: a.priority.unwrap_or_default(),
        method: a.method.unwrap_or_default(),
        sector: a.sector.unwrap_or_default(),
        place: a.place.unwrap_or_default(),
        org: a.org.unwrap_or_default(),
    };
    let (token, secret) = feeds::create(&node, a.label.as_deref().unwrap_or(""), scope, &filter)?;
    let running = is_running(home);
    let base = if running {
        node.store().meta(META_WEB)?.filter(|u| !u.is_empty())
    } else {
        None
    };
    let path = token.url("", &secret);
    let url = base.as_deref().map(|b| token.url(b, &secret));
    if a.json {
        let v = json!({
            "id": token.id,
            "label": token.label,
            "scope": token.scope,
            "filter": token.filter.to_query(),
            "url": url,
            "path": path,
        });
        serde_json::to_writer(&mut *out, &v)?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(
        out,
        "Feed link {} ({}). Anyone holding it can read this feed, and nothing else; keep it as you would a password, and revoke it with `convene feed revoke {}`.",
        token.id, token.label, token.id
    )?;
    match url {
        Some(url) => writeln!(out, "{url}")?,
        None if running => {
            writeln!(
                out,
                "The running node serves no web app (it was started with --no-web or web.enabled = false); once it does, put its address (`convene status` shows it) in front of this path:"
            )?;
            writeln!(out, "{path}")?;
        }
        None => {
            writeln!(
                out,
                "The node is not running: start it with `convene node start`, then put its web app's address (`convene status` shows it) in front of this path:"
            )?;
            writeln!(out, "{path}")?;
        }
    }
    Ok(())
}

fn when(ms: Option<i64>) -> String {
    ms.map_or_else(|| "-".into(), |t| Timestamp(t).short())
}

fn token_json(t: &FeedToken) -> serde_json::Value {
    let at = |ms: Option<i64>| ms.map(|t| Timestamp(t).to_string());
    json!({
        "id": t.id,
        "label": t.label,
        "scope": t.scope,
        "path": t.scope.path(),
        "filter": t.filter.to_query(),
        "created": Timestamp(t.created).to_string(),
        "last_used": at(t.last_used),
        "revoked": at(t.revoked),
    })
}

fn list(out: &mut impl Write, home: &Path, json: bool) -> Result<()> {
    let node = Node::open(home)?;
    let tokens = feeds::list(&node)?;
    if json {
        for t in &tokens {
            serde_json::to_writer(&mut *out, &token_json(t))?;
            writeln!(out)?;
        }
        return Ok(());
    }
    if tokens.is_empty() {
        writeln!(out, "No feed links (make one with `convene feed new`).")?;
        return Ok(());
    }
    let mut t = Table::new();
    t.load_style(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header([
            "ID",
            "LABEL",
            "FEED",
            "FILTER",
            "MADE",
            "LAST USED",
            "REVOKED",
        ]);
    for tok in &tokens {
        t.add_row([
            tok.id.to_string(),
            tok.label.clone(),
            tok.scope.path().to_string(),
            tok.filter.describe(),
            Timestamp(tok.created).short(),
            when(tok.last_used),
            when(tok.revoked),
        ]);
    }
    for line in t.lines() {
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

fn revoke(out: &mut impl Write, home: &Path, id: &str) -> Result<()> {
    let node = Node::open(home)?;
    let (token, already) = feeds::revoke(&node, id)?;
    if already {
        writeln!(
            out,
            "Feed link {} ({}) was revoked already.",
            token.id, token.label
        )?;
    } else {
        writeln!(
            out,
            "Revoked feed link {} ({}): readers holding it are refused from now on.",
            token.id, token.label
        )?;
    }
    Ok(())
}
