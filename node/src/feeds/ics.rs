//! The iCalendar feed (RFC 5545) of events, written with the `icalendar`
//! crate, which folds lines at 75 octets, ends them with CRLF and escapes
//! TEXT values; text is passed through [`super::clean`] first (a CR or a
//! control character has no place in a TEXT value).
//!
//! One `VEVENT` per event entry, so a calendar that subscribes keeps it in
//! step:
//!
//! - `UID` is `<entry id>@convene`: the same on every node and across
//!   edits, so an edited event replaces itself rather than doubling.
//! - `SEQUENCE` is the number of changes the entry has had, less one:
//!   it only grows (changes are never taken away short of erasure, which
//!   takes the whole event), so clients take every edit as newer.
//! - `DTSTAMP` and `LAST-MODIFIED` are the entry's updated time, `CREATED`
//!   its created time; `DTSTART` and `DTEND` are UTC instants (`…Z`), the
//!   organiser's zone named in the description.
//! - A cancelled event (its `cancelled` field, or the entry retracted)
//!   stays in the feed with `STATUS:CANCELLED`, so calendars that hold it
//!   take it off; an erased one is gone from the feed.

use chrono::{DateTime, Utc};
use convene_model::event::{is_web_link, local_time};
use convene_model::{Body, DocumentId, Timestamp};
use icalendar::{Calendar, CalendarDateTime, Component, Event, EventLike, EventStatus, Property};

use super::{EVENTS_SINCE_MS, FeedError, FeedFilter, ICS_LIMIT, Item, Scope, clean, feed_id};
use crate::node::Node;

/// The media type of an iCalendar feed.
pub const CONTENT_TYPE: &str = "text/calendar; charset=utf-8";

/// The longest description carried (characters); a longer one is cut.
const MAX_DESCRIPTION: usize = 4000;

/// The events of a calendar feed: published or cancelled community-wide
/// events matching `filter` (resolved) that ended after `now` less
/// [`EVENTS_SINCE_MS`], at most [`ICS_LIMIT`], most recently updated
/// first.
pub fn events(node: &Node, filter: &FeedFilter, now: Timestamp) -> Result<Vec<Item>, FeedError> {
    let since = now.millis().saturating_sub(EVENTS_SINCE_MS);
    super::select(
        node,
        Scope::Events,
        filter,
        ICS_LIMIT,
        |_, entry| matches!(&entry.body, Body::Event(e) if e.ends.millis() >= since),
    )
}

/// An event's `SEQUENCE`: how many changes its entry has here, less one.
fn sequence(node: &Node, id: DocumentId) -> Result<u32, FeedError> {
    let n: i64 = node.store().conn().query_row(
        "SELECT count(*) FROM changes WHERE doc = ?1",
        [id.as_bytes().as_slice()],
        |r| r.get(0),
    )?;
    Ok(u32::try_from(n.saturating_sub(1)).unwrap_or(u32::MAX))
}

fn utc(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

fn cut(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", s[..i].trim_end()),
        None => s.to_string(),
    }
}

/// A TEXT value escaped by hand, for the `X-WR-CALNAME` the crate does not
/// know to be text.
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace(';', "\\;")
        .replace(',', "\\,")
        .replace('\n', "\\n")
}

/// The calendar's name: what it holds, with the filter in words.
fn name(node: &Node, filter: &FeedFilter) -> String {
    let vocab = node.vocab();
    let mut parts = Vec::new();
    if !filter.priority.is_empty() {
        parts.push(vocab.priorities.label(&filter.priority).to_string());
    }
    if !filter.place.is_empty() {
        parts.push(filter.place.clone());
    }
    if !filter.org.is_empty() {
        parts.push(
            filter
                .org
                .parse()
                .ok()
                .and_then(|o| node.org_name(&o))
                .unwrap_or_else(|| filter.org.clone()),
        );
    }
    if !filter.q.is_empty() {
        parts.push(format!("\"{}\"", filter.q));
    }
    let mut n = "Convene events".to_string();
    if !parts.is_empty() {
        n += &format!(": {}", parts.join(", "));
    }
    clean(&n).replace('\n', " ")
}

/// The calendar of `items` (as [`events`] selected them with the resolved
/// `filter`), with entry pages under `base` (`http://host:port/`).
pub fn render(
    node: &Node,
    base: &str,
    filter: &FeedFilter,
    items: &[Item],
) -> Result<String, FeedError> {
    let base = format!("{}/", base.trim_end_matches('/'));
    let mut calendar = Calendar::empty();
    calendar.append_property(Property::new("VERSION", "2.0"));
    calendar.append_property(Property::new(
        "PRODID",
        format!("-//Convene//Convene {}//EN", env!("CARGO_PKG_VERSION")),
    ));
    calendar.append_property(Property::new("CALSCALE", "GREGORIAN"));
    calendar.append_property(Property::new("X-WR-CALNAME", escape(&name(node, filter))));
    calendar.append_property(Property::new(
        "X-WR-RELCALID",
        feed_id(node, Scope::Events, filter),
    ));
    // How often to look again (RFC 7986, and Outlook's older name).
    calendar.append_property(
        Property::new("REFRESH-INTERVAL", "PT1H")
            .add_parameter("VALUE", "DURATION")
            .done(),
    );
    calendar.append_property(Property::new("X-PUBLISHED-TTL", "PT1H"));
    for item in items {
        let Body::Event(e) = &item.entry.body else {
            continue;
        };
        let l = &item.listed;
        let id = l.id.to_string();
        let page = format!("{base}e/{id}");
        let link = clean(e.link.trim());
        let link = (is_web_link(&link)).then_some(link);
        let zone = if e.time_zone.is_empty() {
            convene_model::event::DEFAULT_TIME_ZONE
        } else {
            e.time_zone.as_str()
        };
        let mut description = cut(clean(e.summary.as_str()).trim(), MAX_DESCRIPTION);
        let mut more = Vec::new();
        more.push(format!(
            "When: {} to {} ({})",
            local_time(e.starts, zone),
            local_time(e.ends, zone),
            clean(zone)
        ));
        let owner = l.owner_name.as_deref().unwrap_or(&l.owner);
        let organiser = clean(e.organiser.trim());
        if organiser.is_empty() {
            more.push(format!("Organiser: {}", clean(owner)));
        } else {
            more.push(format!("Organiser: {organiser} ({})", clean(owner)));
        }
        if let Some(link) = &link {
            more.push(format!("Online or more: {link}"));
        }
        more.push(format!("In Convene: {page}"));
        if !description.is_empty() {
            description.push_str("\n\n");
        }
        description.push_str(&more.join("\n"));
        let cancelled = e.cancelled || l.status == "retracted";
        let mut event = Event::new();
        event
            .uid(&format!("{id}@convene"))
            .timestamp(utc(l.updated))
            .add_property(
                "CREATED",
                utc(l.created).format("%Y%m%dT%H%M%SZ").to_string(),
            )
            .last_modified(utc(l.updated))
            .sequence(sequence(node, l.id)?)
            .summary(&clean(&l.title).replace('\n', " "))
            .description(&description)
            .starts(CalendarDateTime::from(utc(e.starts.millis())))
            .ends(CalendarDateTime::from(utc(e.ends.millis())))
            .url(link.as_deref().unwrap_or(&page))
            .status(if cancelled {
                EventStatus::Cancelled
            } else {
                EventStatus::Confirmed
            });
        let place = clean(e.place.trim()).replace('\n', " ");
        if !place.is_empty() {
            event.location(&place);
        } else if let Some(link) = &link {
            event.location(link);
        }
        calendar.push(event.done());
    }
    Ok(calendar.done().to_string())
}
