//! `convene ask`, `reply`, `questions`, `attend`, `vote`, `ideas`,
//! `round close` and `publish event|idea|round`: the community's
//! conversations, events and votes. The node does the work (its
//! `convening` module); this module parses flags and prints.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use convene_model::event::parse_local;
use convene_model::{Answer, Body, Entry, EntryInput, Kind};
use convene_node::Node;
use convene_node::convening::{Thread, ThreadMessage};

use crate::args::PublishCommon;

#[derive(Debug, Args)]
pub struct AskArgs {
    /// The learning entry, project, event or idea asked about (id or unique prefix)
    pub id: String,
    /// The question
    #[arg(long)]
    pub text: String,
}

#[derive(Debug, Args)]
pub struct ReplyArgs {
    /// The question or reply answered (id or unique prefix)
    pub id: String,
    /// The reply
    #[arg(long)]
    pub text: String,
}

#[derive(Debug, Args)]
pub struct QuestionsArgs {
    /// One JSON object per open question
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct AttendArgs {
    /// The event (id or unique prefix)
    pub id: String,
    /// Say your organisation is no longer going
    #[arg(long)]
    pub not_going: bool,
}

#[derive(Debug, Args)]
pub struct VoteArgs {
    /// The idea (id or unique prefix)
    pub id: String,
    /// Withdraw your organisation's support
    #[arg(long)]
    pub withdraw: bool,
}

#[derive(Debug, Args)]
pub struct IdeasArgs {
    /// Rank the ideas of one voting round (id or unique prefix) by its rules
    #[arg(long, value_name = "ROUND")]
    pub round: Option<String>,
    /// The ranking as one JSON object
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum RoundCommand {
    /// Seal a round after it closes: the votes this node holds become the result every node shows (the steward organisation that set the round)
    Close {
        /// The round (id or unique prefix)
        id: String,
    },
}

#[derive(Debug, Args)]
pub struct PublishEvent {
    #[arg(long)]
    pub title: Option<String>,
    #[arg(long)]
    pub summary: Option<String>,
    /// When it starts: "YYYY-MM-DD HH:MM" in --time-zone (or RFC 3339 with an offset)
    #[arg(long, value_name = "TIME")]
    pub starts: Option<String>,
    /// When it ends, as --starts
    #[arg(long, value_name = "TIME")]
    pub ends: Option<String>,
    /// IANA time zone the times are in [default: Europe/London]
    #[arg(long, value_name = "ZONE")]
    pub time_zone: Option<String>,
    /// Venue and town
    #[arg(long)]
    pub place: Option<String>,
    /// Where to join online or read more (https://…)
    #[arg(long)]
    pub link: Option<String>,
    /// Who runs it
    #[arg(long)]
    pub organiser: Option<String>,
    /// A community priority (slug or label; repeatable)
    #[arg(long = "priority", value_name = "PRIORITY")]
    pub priorities: Vec<String>,
    /// A free tag (repeatable)
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Places for this many organisations (the earliest to say they are going get them)
    #[arg(long)]
    pub capacity: Option<u64>,
    #[command(flatten)]
    pub common: PublishCommon,
}

#[derive(Debug, Args)]
pub struct PublishIdea {
    #[arg(long)]
    pub title: Option<String>,
    #[arg(long)]
    pub summary: Option<String>,
    /// The problem it answers
    #[arg(long)]
    pub problem: Option<String>,
    /// A community priority (slug or label; repeatable)
    #[arg(long = "priority", value_name = "PRIORITY")]
    pub priorities: Vec<String>,
    /// A free tag (repeatable)
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Put it forward in this voting round (id or unique prefix)
    #[arg(long, value_name = "ROUND")]
    pub round: Option<String>,
    #[command(flatten)]
    pub common: PublishCommon,
}

#[derive(Debug, Args)]
pub struct PublishRound {
    #[arg(long)]
    pub title: Option<String>,
    #[arg(long)]
    pub summary: Option<String>,
    /// When voting opens: "YYYY-MM-DD HH:MM" in --time-zone (or RFC 3339)
    #[arg(long, value_name = "TIME")]
    pub opens: Option<String>,
    /// When voting closes, as --opens
    #[arg(long, value_name = "TIME")]
    pub closes: Option<String>,
    /// IANA time zone of --opens and --closes [default: Europe/London]
    #[arg(long, value_name = "ZONE")]
    pub time_zone: Option<String>,
    /// How many ideas each organisation may support (5 for a "top five")
    #[arg(long)]
    pub picks: Option<u64>,
    #[command(flatten)]
    pub common: PublishCommon,
}

fn time(flag: &str, text: &str, zone: &str) -> Result<convene_model::Timestamp> {
    parse_local(text, zone).with_context(|| format!("--{flag}"))
}

pub fn event_input(a: &PublishEvent) -> Result<EntryInput> {
    let mut input = crate::input::start(Kind::Event, &a.common)?;
    let Body::Event(e) = &mut input.body else {
        unreachable!("start() returns the requested kind")
    };
    if let Some(z) = &a.time_zone {
        e.time_zone = z.trim().to_string();
    }
    let zone = e.time_zone.clone();
    if let Some(t) = &a.title {
        e.title = t.clone();
    }
    if let Some(s) = &a.summary {
        e.summary = s.as_str().into();
    }
    if let Some(s) = &a.starts {
        e.starts = time("starts", s, &zone)?;
    }
    if let Some(s) = &a.ends {
        e.ends = time("ends", s, &zone)?;
    }
    if let Some(p) = &a.place {
        e.place = p.clone();
    }
    if let Some(l) = &a.link {
        e.link = l.clone();
    }
    if let Some(o) = &a.organiser {
        e.organiser = o.clone();
    }
    e.priorities.extend(a.priorities.iter().cloned());
    e.tags.extend(a.tags.iter().cloned());
    if a.capacity.is_some() {
        e.capacity = a.capacity;
    }
    Ok(input)
}

pub fn idea_input(node: &Node, a: &PublishIdea) -> Result<EntryInput> {
    let mut input = crate::input::start(Kind::Idea, &a.common)?;
    let Body::Idea(i) = &mut input.body else {
        unreachable!("start() returns the requested kind")
    };
    if let Some(t) = &a.title {
        i.title = t.clone();
    }
    if let Some(s) = &a.summary {
        i.summary = s.as_str().into();
    }
    if let Some(p) = &a.problem {
        i.problem = p.as_str().into();
    }
    i.priorities.extend(a.priorities.iter().cloned());
    i.tags.extend(a.tags.iter().cloned());
    if let Some(r) = &a.round {
        let rid = node.resolve(r)?;
        if node.get(rid)?.meta.kind != Kind::Round {
            bail!("--round {r}: {rid} is not a voting round");
        }
        i.round = Some(rid.to_string());
    }
    Ok(input)
}

pub fn round_input(a: &PublishRound) -> Result<EntryInput> {
    let mut input = crate::input::start(Kind::Round, &a.common)?;
    let Body::Round(r) = &mut input.body else {
        unreachable!("start() returns the requested kind")
    };
    let zone = a
        .time_zone
        .clone()
        .unwrap_or_else(|| convene_model::event::DEFAULT_TIME_ZONE.to_string());
    if let Some(t) = &a.title {
        r.title = t.clone();
    }
    if let Some(s) = &a.summary {
        r.summary = s.as_str().into();
    }
    if let Some(s) = &a.opens {
        r.opens = time("opens", s, &zone)?;
    }
    if let Some(s) = &a.closes {
        r.closes = time("closes", s, &zone)?;
    }
    if a.picks.is_some() {
        r.picks = a.picks;
    }
    Ok(input)
}

pub fn ask(out: &mut impl Write, home: &Path, a: AskArgs) -> Result<()> {
    let mut node = Node::open(home)?;
    let about = node.resolve(&a.id)?;
    let id = node.ask(about, &a.text)?;
    writeln!(out, "{id}")?;
    Ok(())
}

pub fn reply(out: &mut impl Write, home: &Path, a: ReplyArgs) -> Result<()> {
    let mut node = Node::open(home)?;
    let to = node.resolve(&a.id)?;
    let id = node.reply(to, &a.text)?;
    writeln!(out, "{id}")?;
    Ok(())
}

pub fn questions(out: &mut impl Write, home: &Path, a: QuestionsArgs) -> Result<()> {
    let node = Node::open(home)?;
    let open = node.open_questions()?;
    if a.json {
        for q in &open {
            serde_json::to_writer(
                &mut *out,
                &serde_json::json!({
                    "id": q.question.to_string(),
                    "about": q.about.to_string(),
                    "about_title": q.about_title,
                    "on_ours": q.on_ours,
                    "asked_by": q.asked_by,
                    "asked": q.asked.to_string(),
                    "text": q.text,
                }),
            )?;
            writeln!(out)?;
        }
        return Ok(());
    }
    if open.is_empty() {
        writeln!(out, "No open questions.")?;
        return Ok(());
    }
    for q in &open {
        let mark = if q.on_ours { "* " } else { "  " };
        writeln!(
            out,
            "{mark}{}  on {:?} ({})  asked by {} {}",
            q.question,
            q.about_title,
            q.about,
            q.asked_by.as_deref().unwrap_or("an unknown organisation"),
            q.asked.short()
        )?;
        for line in q.text.lines() {
            writeln!(out, "      {line}")?;
        }
    }
    if open.iter().any(|q| q.on_ours) {
        writeln!(
            out,
            "* on your organisation's entries: answer with `convene reply ID --text …`"
        )?;
    }
    Ok(())
}

pub fn attend(out: &mut impl Write, home: &Path, a: AttendArgs) -> Result<()> {
    let mut node = Node::open(home)?;
    let event = node.resolve(&a.id)?;
    let answer = if a.not_going {
        Answer::NotGoing
    } else {
        Answer::Going
    };
    node.respond(event, answer)?;
    let attendance = node.attendance(event)?;
    let me = node.org().to_string();
    match attendance.going.iter().find(|g| g.org == me) {
        Some(g) if g.confirmed => writeln!(out, "going to {event}")?,
        Some(g) if g.waiting => writeln!(
            out,
            "{event} is full: your organisation is on the waiting list"
        )?,
        Some(_) => writeln!(
            out,
            "going to {event}: the organiser's node confirms your place when it hears of it"
        )?,
        None => writeln!(out, "not going to {event}")?,
    }
    Ok(())
}

pub fn vote(out: &mut impl Write, home: &Path, a: VoteArgs) -> Result<()> {
    let mut node = Node::open(home)?;
    let idea = node.resolve(&a.id)?;
    let answer = if a.withdraw {
        Answer::Withdrawn
    } else {
        Answer::Support
    };
    node.respond(idea, answer)?;
    match answer {
        Answer::Support => writeln!(out, "your organisation supports {idea}")?,
        _ => writeln!(out, "your organisation no longer supports {idea}")?,
    }
    Ok(())
}

pub fn ideas(out: &mut impl Write, home: &Path, a: IdeasArgs) -> Result<()> {
    let node = Node::open(home)?;
    let round = a.round.as_deref().map(|r| node.resolve(r)).transpose()?;
    let ranking = node.rank_ideas(round)?;
    if a.json {
        serde_json::to_writer(&mut *out, &ranking.to_json())?;
        writeln!(out)?;
        return Ok(());
    }
    if let Some((id, title, phase)) = &ranking.round {
        writeln!(out, "Round {title:?} ({id}): {}", phase.as_str())?;
    }
    if ranking.ideas.is_empty() {
        writeln!(out, "No ideas yet.")?;
    }
    for (i, r) in ranking.ideas.iter().enumerate() {
        writeln!(
            out,
            "{:>3}. {}  {} ({} support{})",
            i + 1,
            r.idea,
            r.title,
            r.supporters.len(),
            if r.supporters.len() == 1 { "" } else { "s" }
        )?;
    }
    Ok(())
}

pub fn round(out: &mut impl Write, home: &Path, c: RoundCommand) -> Result<()> {
    match c {
        RoundCommand::Close { id } => {
            let mut node = Node::open(home)?;
            let rid = node.resolve(&id)?;
            let n = node.seal_round(rid)?;
            writeln!(out, "sealed round {rid} with {n} votes")?;
        }
    }
    Ok(())
}

/// What `show` adds for conversations, events and ideas: the thread (with
/// `--thread`), who is going, the support an idea has.
pub fn show_extras(
    out: &mut impl Write,
    node: &Node,
    entry: &Entry,
    thread: bool,
    json: Option<&mut serde_json::Value>,
) -> Result<()> {
    let thread = if thread {
        Some(node.thread(entry.id)?)
    } else {
        None
    };
    let attendance = match entry.body {
        Body::Event(_) => Some(node.attendance(entry.id)?),
        _ => None,
    };
    let support = match entry.body {
        Body::Idea(_) => node
            .rank_ideas(None)?
            .ideas
            .into_iter()
            .find(|r| r.idea == entry.id)
            .map(|r| r.supporters),
        _ => None,
    };
    if let Some(json) = json {
        if let Some(t) = &thread {
            json["thread"] = t.to_json();
        }
        if let Some(a) = &attendance {
            json["attendance"] = a.to_json();
        }
        if let Some(s) = &support {
            json["support"] = serde_json::json!(s.len());
        }
        return Ok(());
    }
    if let Body::Event(e) = &entry.body {
        writeln!(
            out,
            "when: {} to {} ({})",
            convene_model::event::local_time(e.starts, &e.time_zone),
            convene_model::event::local_time(e.ends, &e.time_zone),
            e.time_zone
        )?;
        if e.cancelled {
            writeln!(out, "CANCELLED")?;
        }
    }
    if let Some(a) = &attendance {
        let names: Vec<String> = a
            .going
            .iter()
            .map(|g| {
                let name = g.name.clone().unwrap_or_else(|| g.org.clone());
                if g.confirmed {
                    name
                } else if g.waiting {
                    format!("{name} (waiting list)")
                } else {
                    format!("{name} (place not yet confirmed)")
                }
            })
            .collect();
        let places = a
            .capacity
            .map(|c| format!(" of {c} places"))
            .unwrap_or_default();
        writeln!(
            out,
            "going ({}{places}): {}",
            a.going.len(),
            names.join(", ")
        )?;
    }
    if let Some(s) = &support {
        writeln!(out, "support: {} organisation(s)", s.len())?;
    }
    if let Some(t) = &thread {
        print_thread(out, t)?;
    }
    Ok(())
}

fn print_thread(out: &mut impl Write, t: &Thread) -> Result<()> {
    writeln!(out)?;
    if t.questions.is_empty() {
        writeln!(
            out,
            "No questions yet: ask one with `convene ask {} --text …`",
            t.about
        )?;
        return Ok(());
    }
    writeln!(out, "Questions ({}):", t.questions.len())?;
    for q in &t.questions {
        let state = if q.is_open() { "open" } else { "answered" };
        print_message(out, q, "  ", &format!(" [{state}]"))?;
        for r in &q.replies {
            print_message(out, r, "      ", "")?;
        }
    }
    Ok(())
}

fn print_message(out: &mut impl Write, m: &ThreadMessage, indent: &str, note: &str) -> Result<()> {
    writeln!(
        out,
        "{indent}{} {} {}{note}",
        m.owner_name.as_deref().unwrap_or("an unknown organisation"),
        m.created.short(),
        m.id
    )?;
    for line in m.text.lines() {
        writeln!(out, "{indent}  {line}")?;
    }
    Ok(())
}
