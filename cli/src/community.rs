//! Community commands: create, invite, join, members and stewards.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use convene_node::Node;
use convene_node::community::InviteCode;
use convene_node::daemon::{self, Config, DaemonLock, Status, parse_addr};
use serde_json::json;

use crate::args::{CommunityCommand, InviteArgs, JoinArgs, MemberCommand, StewardCommand};

/// `30m`, `12h`, `7d`, `90s` → milliseconds.
fn duration_ms(s: &str) -> Result<i64> {
    let s = s.trim();
    let (number, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = number
        .parse()
        .map_err(|_| anyhow!("{s:?} is not a duration: use e.g. 30m, 12h or 7d"))?;
    let unit_ms = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" | "" => 86_400_000,
        "w" => 7 * 86_400_000,
        _ => bail!("{s:?} is not a duration: use e.g. 30m, 12h or 7d"),
    };
    if n <= 0 {
        bail!("an invite must be valid for some time, not {s:?}");
    }
    Ok(n * unit_ms)
}

pub fn community(out: &mut impl Write, home: &Path, c: CommunityCommand) -> Result<()> {
    let CommunityCommand::Create { name } = c;
    let mut node = Node::open(home)?;
    let id = node.create_community(&name)?;
    writeln!(
        out,
        "Created the community {name:?} ({id}); your organisation is its steward."
    )?;
    writeln!(
        out,
        "Invite members with `convene invite` while `convene node start` runs."
    )?;
    Ok(())
}

pub fn members(out: &mut impl Write, home: &Path, c: MemberCommand) -> Result<()> {
    let mut node = Node::open(home)?;
    match c {
        MemberCommand::List { json: as_json } => {
            let m = node
                .membership()
                .ok_or(convene_node::NodeError::NotInCommunity)?;
            for info in m.members.values() {
                if as_json {
                    let v = json!({
                        "organisation": info.org,
                        "name": info.name,
                        "steward": info.steward,
                        "nodes": info.nodes,
                        "joined": info.joined.to_string(),
                        "removed": info.removed.map(|r| r.to_string()),
                    });
                    serde_json::to_writer(&mut *out, &v)?;
                    writeln!(out)?;
                } else {
                    writeln!(
                        out,
                        "{:<40} {}{}  {} node(s), joined {}{}",
                        info.name,
                        crate::output::short_id(&info.org),
                        if info.steward { "  steward" } else { "" },
                        info.nodes.len(),
                        info.joined.short(),
                        info.removed
                            .map(|r| format!(", removed {}", r.short()))
                            .unwrap_or_default()
                    )?;
                }
            }
            if !as_json {
                for (invite, nodes) in &m.conflicts {
                    writeln!(
                        out,
                        "contested invite {}: claimed by {} nodes ({}); none is admitted until a steward runs `convene member confirm NODE`",
                        &invite[..8.min(invite.len())],
                        nodes.len(),
                        nodes.iter().cloned().collect::<Vec<_>>().join(", ")
                    )?;
                }
            }
        }
        MemberCommand::Confirm { node: prefix } => {
            let full = node.confirm_node(&prefix)?;
            writeln!(
                out,
                "confirmed node {full}'s claim; every other claim on its invite is void"
            )?;
        }
        MemberCommand::AddNode { node: id } => {
            let id: convene_node::NodeId = id.trim().parse().map_err(|e: String| anyhow!(e))?;
            let outcome = node.authorize_node(id)?;
            writeln!(
                out,
                "{} node {id} as a node of your organisation; a steward's `convene invite --org` code now admits it",
                if outcome == convene_node::Outcome::Changed {
                    "listed"
                } else {
                    "already listed"
                }
            )?;
        }
        MemberCommand::Remove { org } => {
            let id = node.resolve_org(&org)?;
            node.remove_member(id)?;
            writeln!(out, "removed {org} from the community")?;
        }
    }
    Ok(())
}

pub fn stewards(out: &mut impl Write, home: &Path, c: StewardCommand) -> Result<()> {
    let mut node = Node::open(home)?;
    let (org, on) = match c {
        StewardCommand::Add { org } => (org, true),
        StewardCommand::Remove { org } => (org, false),
    };
    let id = node.resolve_org(&org)?;
    node.set_steward(id, on)?;
    writeln!(
        out,
        "{org} is {} a steward",
        if on { "now" } else { "no longer" }
    )?;
    Ok(())
}

/// Addresses a newcomer can reach members at: this node's own while its
/// daemon runs, and the members it dials (config.toml's bootstrap).
fn member_addresses(node: &Node) -> Result<Vec<String>> {
    let mut addrs = Status::read(node)?.listen;
    let config = Config::load(node.home())?;
    addrs.extend(config.bootstrap.iter().map(ToString::to_string));
    addrs.retain(|a| !a.contains("/ip4/0.0.0.0/") && !a.contains("/ip6/::/"));
    addrs.dedup();
    addrs.truncate(8);
    Ok(addrs)
}

pub fn invite(out: &mut impl Write, home: &Path, a: InviteArgs) -> Result<()> {
    let valid_for = duration_ms(&a.expires)?;
    let mut node = Node::open(home)?;
    let org = a.org.as_deref().map(|o| node.resolve_org(o)).transpose()?;
    let addrs = member_addresses(&node)?;
    if addrs.is_empty() {
        eprintln!(
            "note: no member addresses are known (the daemon is not running and config.toml names no bootstrap peers); the newcomer must give `convene join CODE --peer MULTIADDR`"
        );
    }
    let code = node.invite(valid_for, a.steward, org, addrs)?;
    writeln!(out, "{}", code.encode())?;
    Ok(())
}

pub fn join(out: &mut impl Write, home: &Path, a: JoinArgs) -> Result<()> {
    let code = InviteCode::decode(&a.code)?;
    let mut addrs = code.addrs.clone();
    addrs.extend(a.peer.iter().cloned());
    if addrs.is_empty() {
        bail!("the code names no member to reach: add --peer MULTIADDR");
    }
    let addrs: Vec<_> = addrs
        .iter()
        .map(|s| parse_addr(s).map_err(|e| anyhow!(e)))
        .collect::<Result<_>>()?;
    let mut node = Node::open(home)?;
    let _lock = DaemonLock::acquire(home)?;
    node.accept_invite(&code)?;
    let changes = node.join_changes()?;
    let node_id = node.node_id();
    drop(node);
    let node = Node::open(home)?;
    let config = Config {
        listen: Vec::new(),
        bootstrap: Vec::new(),
        mdns: false,
        ..Config::default()
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let deadline = Duration::from_secs(a.timeout);
    let spinner = crate::progress::spinner("joining");
    let result = rt.block_on(async {
        let (client, handle) = daemon::spawn(node, config)?;
        let work = async {
            let mut failures = Vec::new();
            for addr in &addrs {
                crate::progress::say(&spinner, format!("asking {addr} to admit this node"));
                let admitted = async {
                    let peer = client.dial(addr.clone()).await?;
                    let name = client.join(peer, changes.clone()).await?;
                    Ok::<_, anyhow::Error>((peer, name))
                };
                // Admission has 30 seconds; the catch-up that follows may
                // take longer (thousands of changes), shown as it goes.
                let attempt = async {
                    let (peer, name) =
                        match tokio::time::timeout(Duration::from_secs(30), admitted).await {
                            Ok(r) => r?,
                            Err(_) => return Ok(None),
                        };
                    crate::progress::say(&spinner, format!("joined {name:?}; catching up"));
                    // The daemon catches up with the member that admitted
                    // it after any session begun before the join (which that
                    // member refused): this sync is answered by that.
                    let stats =
                        crate::network::sync_showing_progress(&client, peer, &spinner).await?;
                    Ok::<_, anyhow::Error>(Some((peer, name, stats)))
                };
                match attempt.await.transpose() {
                    Some(Ok(done)) => return Ok(done),
                    Some(Err(e)) => failures.push(format!("{e:#}")),
                    None => failures.push(format!("{addr}: no answer within 30 seconds")),
                }
            }
            let hint = if code.org.is_some() {
                format!(
                    "; this code is for another node of an existing organisation: that organisation must first run `convene member add-node {}` on one of its nodes",
                    node_id
                )
            } else {
                String::new()
            };
            Err(anyhow!(
                "could not join: {} (a member refuses a code that expired, was used by another node or was changed){hint}",
                failures.join("; ")
            ))
        };
        let r = tokio::time::timeout(deadline, work)
            .await
            .map_err(|_| anyhow!("joining did not finish within {} seconds", a.timeout))
            .and_then(|r| r);
        crate::progress::done(&spinner);
        drop(client);
        let _ = handle.await;
        r
    });
    let (peer, name, stats) = result?;
    writeln!(
        out,
        "Joined the community {name:?} through {peer}; received {} changes, sent {}.",
        stats.received, stats.sent
    )?;
    writeln!(out, "Run `convene node start` to stay in sync.")?;
    Ok(())
}
