//! The clock, judged from the times on synced changes (see the parent
//! module's docs for why that is the only reference there is).

use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension};

use super::{Level, Report, human_ms};
use crate::trust::{Identity, NodeId};

/// Clock differences smaller than this are not reported (change times are
/// whole seconds, and a little drift is harmless).
pub const CLOCK_TOLERANCE_MS: i64 = 2 * 60 * 1000;

/// A change received from another node: its author's time and when it
/// arrived here (both unix ms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub signer: String,
    pub made: i64,
    pub arrived: i64,
}

/// Judges the clock from this node's newest own change time and recent
/// changes from others (see the module docs).
pub fn clock_verdict(now: i64, own_latest: Option<i64>, received: &[Received]) -> (Level, String) {
    if let Some(own) = own_latest
        && own - now > CLOCK_TOLERANCE_MS
    {
        return (
            Level::Warn,
            format!(
                "this machine's clock is {} behind the time of this node's own latest change: it went back; check time sync (`timedatectl status`)",
                human_ms(own - now)
            ),
        );
    }
    if received.is_empty() {
        return (
            Level::Warn,
            "no reference to compare with: no changes from other nodes yet; make sure the machine syncs its time (`timedatectl status`)".into(),
        );
    }
    let worst = received
        .iter()
        .max_by_key(|r| r.made - r.arrived)
        .expect("not empty");
    let ahead = worst.made - worst.arrived;
    let nodes: std::collections::BTreeSet<&str> =
        received.iter().map(|r| r.signer.as_str()).collect();
    if ahead > CLOCK_TOLERANCE_MS {
        return (
            Level::Warn,
            format!(
                "a change from node {} is stamped {} after it arrived here: this clock is behind or that node's is ahead; check time sync on both (`timedatectl status`)",
                worst.signer,
                human_ms(ahead)
            ),
        );
    }
    (
        Level::Ok,
        format!(
            "no skew seen in {} recent change{} from {} other node{} (this check sees a clock behind theirs, not one ahead)",
            received.len(),
            if received.len() == 1 { "" } else { "s" },
            nodes.len(),
            if nodes.len() == 1 { "" } else { "s" }
        ),
    )
}

pub(super) fn check_clock(report: &mut Report, identity: &Identity, conn: &Connection) {
    let own = identity.public_bytes();
    let time_of = |bytes: &[u8]| {
        automerge::Change::try_from(bytes)
            .ok()
            .map(|c| c.timestamp() * 1000)
    };
    let read = (|| {
        let own_latest = conn
            .query_row(
                "SELECT bytes FROM changes WHERE signer = ?1 ORDER BY seq DESC LIMIT 1",
                [&own[..]],
                |r| r.get::<_, Vec<u8>>(0),
            )
            .optional()?
            .and_then(|b| time_of(&b));
        let mut stmt = conn.prepare(
            "SELECT bytes, signer, received FROM changes WHERE signer != ?1 ORDER BY seq DESC LIMIT 500",
        )?;
        let rows = stmt
            .query_map([&own[..]], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let received: Vec<Received> = rows
            .into_iter()
            .filter_map(|(bytes, signer, arrived)| {
                Some(Received {
                    signer: NodeId::from_public_bytes(&signer)?.to_string(),
                    // Change times are whole seconds: allow for the cut.
                    made: time_of(&bytes)?,
                    arrived: arrived + 999,
                })
            })
            .collect();
        Ok::<_, rusqlite::Error>((own_latest, received))
    })();
    match read {
        Ok((own_latest, received)) => {
            let (level, message) = clock_verdict(now_ms(), own_latest, &received);
            report.push("clock", level, message);
        }
        Err(e) => report.push("clock", Level::Warn, format!("cannot read changes: {e}")),
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn got(signer: &str, made: i64, arrived: i64) -> Received {
        Received {
            signer: signer.into(),
            made,
            arrived,
        }
    }

    #[test]
    fn the_clock_is_judged_only_against_what_is_known() {
        let now = 1_800_000_000_000;
        let (level, msg) = clock_verdict(now, None, &[]);
        assert_eq!(level, Level::Warn);
        assert!(msg.contains("no reference"), "{msg}");

        // Changes made before they arrived, however long before: fine.
        let fine = [
            got("A", now - 86_400_000, now - 1000),
            got("B", now - 5000, now - 4000),
        ];
        let (level, msg) = clock_verdict(now, Some(now - 10), &fine);
        assert_eq!(level, Level::Ok, "{msg}");
        assert!(msg.contains("2 recent changes from 2 other nodes"), "{msg}");

        // One stamped ten minutes after it arrived.
        let skewed = [got("A", now, now - 600_000)];
        let (level, msg) = clock_verdict(now, None, &skewed);
        assert_eq!(level, Level::Warn);
        assert!(msg.contains("node A") && msg.contains("10 min"), "{msg}");

        // Our own last change is in our future: the clock went back.
        let (level, msg) = clock_verdict(now, Some(now + 3 * 3_600_000), &fine);
        assert_eq!(level, Level::Warn);
        assert!(msg.contains("went back"), "{msg}");
    }
}
