//! Whether members can reach this node: what the daemon recorded when it
//! last ran (`reach` in the store's meta table: AutoNAT's verdict, whether
//! it listens, the relays it holds reservations on).

use rusqlite::Connection;

use super::{Level, Report};
use crate::daemon::META_REACH;

pub(super) fn check_reach(report: &mut Report, conn: &Connection, running: bool) {
    let text: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [META_REACH], |r| {
            r.get(0)
        })
        .ok();
    let Some(v) = text.and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok()) else {
        report.push(
            "reachability",
            Level::Warn,
            "not known yet: start the daemon (`convene node start`) and connect to a member",
        );
        return;
    };
    let when = if running {
        ""
    } else {
        "when the daemon last ran: "
    };
    let listening = v["listening"].as_bool().unwrap_or(false);
    let nat = v["nat"].as_str().unwrap_or("unknown");
    let relays: Vec<&str> = v["relays"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
        .unwrap_or_default();
    let through = if relays.is_empty() {
        String::new()
    } else {
        format!(
            "; reached through the relay{} {}",
            if relays.len() == 1 { "" } else { "s" },
            relays.join(", ")
        )
    };
    let (level, message) = match (listening, nat, relays.is_empty()) {
        (true, "public", _) => (
            Level::Ok,
            format!("{when}reachable from outside (members dialled it back){through}"),
        ),
        (true, "private", true) => (
            Level::Warn,
            format!(
                "{when}listening, but members could not dial it back (behind NAT or a firewall?): open the port, or members behind NAT cannot reach it"
            ),
        ),
        (true, "private", false) => (
            Level::Ok,
            format!("{when}members could not dial it back (behind NAT?){through}"),
        ),
        (true, _, _) => (
            Level::Ok,
            format!(
                "{when}listening; not yet confirmed from outside (AutoNAT needs members that can dial back){through}"
            ),
        ),
        (false, _, false) => (
            Level::Ok,
            format!("{when}not reachable from outside (listens on nothing){through}"),
        ),
        (false, _, true) => (
            Level::Warn,
            format!(
                "{when}not reachable from outside and holds no relay reservation: connect to a member that listens (`--bootstrap`) so others can reach this node"
            ),
        ),
    };
    report.push("reachability", level, message);
    check_connections(report, &v, when);
}

/// How many members the daemon was connected to, against its bounds.
fn check_connections(report: &mut Report, v: &serde_json::Value, when: &str) {
    let (Some(n), Some(min), Some(max), Some(known)) = (
        v["members_connected"].as_u64(),
        v["min_peers"].as_u64(),
        v["max_peers"].as_u64(),
        v["records"].as_u64(),
    ) else {
        return; // written by a release without them
    };
    let bounds = format!("network.min_peers {min}, network.max_peers {max}");
    let members = if n == 1 { "member" } else { "members" };
    let (level, message) = if n == 0 && known == 0 {
        (Level::Ok, format!("{when}no member known yet ({bounds})"))
    } else if n == 0 {
        (
            Level::Warn,
            format!("{when}connected to no member ({bounds}): check `bootstrap` and the network"),
        )
    } else if n < min && known > n {
        (
            Level::Ok,
            format!(
                "{when}{n} {members} connected, fewer than min_peers: dialling others from their address records ({bounds})"
            ),
        )
    } else {
        (
            Level::Ok,
            format!("{when}{n} {members} connected ({bounds})"),
        )
    };
    report.push("connections", level, message);
}
