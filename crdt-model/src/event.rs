//! An event: a summit, a world café, a community of practice meeting.
//!
//! Times are stored as instants (UTC milliseconds) with the IANA time zone
//! the organiser gave them in, so every node shows the same moment and a
//! calendar feed can say it exactly. Organisations say they are going with
//! a [`crate::Response`] document of their own, never by editing the event.

use autosurgeon::{Hydrate, Reconcile};
use chrono::{LocalResult, NaiveDateTime, TimeZone};
use serde::{Deserialize, Serialize};

use crate::check::Checker;
use crate::codec::{Prose, Timestamp};
use crate::vocab::Vocabularies;

/// The time zone events are in unless the organiser says otherwise.
pub const DEFAULT_TIME_ZONE: &str = "Europe/London";

/// A gathering members can go to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Reconcile, Hydrate)]
#[serde(default, deny_unknown_fields)]
pub struct Event {
    #[autosurgeon(missing = "Default::default")]
    pub title: String,
    #[autosurgeon(missing = "Default::default")]
    pub summary: Prose,
    /// When it starts (an instant).
    #[autosurgeon(missing = "Default::default")]
    pub starts: Timestamp,
    /// When it ends (an instant, after `starts`).
    #[autosurgeon(missing = "Default::default")]
    pub ends: Timestamp,
    /// The IANA zone the times were given in and are shown in.
    #[autosurgeon(missing = "Default::default")]
    pub time_zone: String,
    /// Where: a venue and town.
    #[autosurgeon(missing = "Default::default")]
    pub place: String,
    /// Where to join online or read more (`https://…`).
    #[autosurgeon(missing = "Default::default")]
    pub link: String,
    /// Who runs it, in words (the owner organisation is the entry's owner).
    #[autosurgeon(missing = "Default::default")]
    pub organiser: String,
    #[autosurgeon(missing = "Default::default")]
    pub priorities: Vec<String>,
    #[autosurgeon(missing = "Default::default")]
    pub tags: Vec<String>,
    /// How many organisations' places there are; `None` for no limit.
    #[autosurgeon(missing = "Default::default")]
    pub capacity: Option<u64>,
    /// The organisations (ids) given a place, in the order the organiser's
    /// node confirmed them. Places are handed out by the organiser, in the
    /// order its node heard the answers, never by a time an answer claims.
    #[autosurgeon(missing = "Default::default")]
    pub places: Vec<String>,
    /// Called off. A cancelled event stays listed (and in calendar feeds,
    /// so subscribed calendars remove it).
    #[autosurgeon(missing = "Default::default")]
    pub cancelled: bool,
}

impl Default for Event {
    fn default() -> Self {
        Self {
            title: String::new(),
            summary: Prose::default(),
            starts: Timestamp(0),
            ends: Timestamp(0),
            time_zone: DEFAULT_TIME_ZONE.to_string(),
            place: String::new(),
            link: String::new(),
            organiser: String::new(),
            priorities: Vec::new(),
            tags: Vec::new(),
            capacity: None,
            places: Vec::new(),
            cancelled: false,
        }
    }
}

/// A local time that cannot be read in a time zone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocalTimeError {
    #[error("unknown time zone {0:?} (expected an IANA name such as Europe/London)")]
    Zone(String),
    #[error("{0:?} is not a time (expected YYYY-MM-DD HH:MM, or RFC 3339 with an offset)")]
    Format(String),
    #[error("{0} does not exist in {1} (the clocks go forward then)")]
    Gap(String, String),
}

/// Reads a time as people type it: `2027-03-04 09:30` (or with a `T`,
/// or with seconds) in `zone`, or an RFC 3339 time with its own offset.
/// A local time the clocks skip is refused; one they pass twice is the
/// earlier.
pub fn parse_local(text: &str, zone: &str) -> Result<Timestamp, LocalTimeError> {
    let text = text.trim();
    if let Ok(t) = text.parse::<Timestamp>() {
        return Ok(t);
    }
    let tz: chrono_tz::Tz = zone
        .trim()
        .parse()
        .map_err(|_| LocalTimeError::Zone(zone.to_string()))?;
    let naive = [
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M:%S",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
    .ok_or_else(|| LocalTimeError::Format(text.to_string()))?;
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => {
            Ok(Timestamp(t.timestamp_millis()))
        }
        LocalResult::None => Err(LocalTimeError::Gap(text.to_string(), zone.to_string())),
    }
}

/// `t` as a wall-clock time in `zone` (`2027-03-04 09:30`), falling back
/// to UTC for a zone this build does not know.
pub fn local_time(t: Timestamp, zone: &str) -> String {
    let Some(utc) = chrono::DateTime::from_timestamp_millis(t.millis()) else {
        return t.to_string();
    };
    match zone.parse::<chrono_tz::Tz>() {
        Ok(tz) => utc.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string(),
        Err(_) => utc.format("%Y-%m-%d %H:%M UTC").to_string(),
    }
}

impl Event {
    /// Whether the event is still to come (or under way) at `now`.
    pub fn is_upcoming(&self, now: Timestamp) -> bool {
        self.ends.millis() >= now.millis()
    }

    pub(crate) fn check(&mut self, v: &Vocabularies, c: &mut Checker) {
        c.line("title", &mut self.title, true);
        c.prose("summary", self.summary.as_str(), false);
        c.line("time_zone", &mut self.time_zone, false);
        if self.time_zone.is_empty() {
            self.time_zone = DEFAULT_TIME_ZONE.to_string();
        }
        if self.time_zone.parse::<chrono_tz::Tz>().is_err() {
            c.problem(
                "time_zone",
                format!(
                    "unknown time zone {:?} (expected an IANA name such as Europe/London)",
                    self.time_zone
                ),
            );
        }
        if self.starts.millis() == 0 {
            c.problem("starts", "is required");
        }
        if self.ends.millis() == 0 {
            c.problem("ends", "is required");
        } else if self.ends.millis() <= self.starts.millis() {
            c.problem("ends", "must be after the start");
        }
        c.line("place", &mut self.place, false);
        c.line("link", &mut self.link, false);
        if !self.link.is_empty() && !is_web_link(&self.link) {
            c.problem("link", "must be a web address starting https:// or http://");
        }
        c.line("organiser", &mut self.organiser, false);
        c.terms("priorities", &v.priorities, &mut self.priorities);
        c.lines("tags", &mut self.tags);
        c.each("places", &mut self.places, |c, org| {
            if org.parse::<crate::OrgId>().is_err() {
                c.problem("org", format!("{org:?} is not an organisation id"));
            }
        });
        if self.capacity == Some(0) {
            c.problem("capacity", "must be at least 1 (leave it out for no limit)");
        }
    }
}

/// A link a page may put in an `href`: web addresses only, never
/// `javascript:` or `data:`.
pub fn is_web_link(link: &str) -> bool {
    let lower = link.trim().to_ascii_lowercase();
    (lower.starts_with("https://") || lower.starts_with("http://"))
        && !link.contains(char::is_whitespace)
        && link.len() > "https://".len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_times_read_in_their_zone() {
        // Summer time: 09:30 in London is 08:30 UTC.
        let t = parse_local("2027-07-01 09:30", "Europe/London").unwrap();
        assert_eq!(t.to_string(), "2027-07-01T08:30:00.000Z");
        // Winter: the same wall-clock time is 09:30 UTC.
        let t = parse_local("2027-01-14T09:30", "Europe/London").unwrap();
        assert_eq!(t.to_string(), "2027-01-14T09:30:00.000Z");
        assert_eq!(local_time(t, "Europe/London"), "2027-01-14 09:30");
        // An explicit offset wins over the zone.
        let t = parse_local("2027-01-14T09:30:00+01:00", "Europe/London").unwrap();
        assert_eq!(t.to_string(), "2027-01-14T08:30:00.000Z");
    }

    #[test]
    fn impossible_times_and_zones_are_refused() {
        assert!(matches!(
            parse_local("2027-03-28 01:30", "Europe/London"),
            Err(LocalTimeError::Gap(..))
        ));
        assert!(matches!(
            parse_local("2027-03-28 10:00", "Mars/Olympus"),
            Err(LocalTimeError::Zone(_))
        ));
        assert!(matches!(
            parse_local("next Tuesday", "Europe/London"),
            Err(LocalTimeError::Format(_))
        ));
    }

    #[test]
    fn only_web_links_are_links() {
        assert!(is_web_link("https://example.org/summit"));
        assert!(!is_web_link("javascript:alert(1)"));
        assert!(!is_web_link("data:text/html,hi"));
        assert!(!is_web_link("https://"));
    }
}
