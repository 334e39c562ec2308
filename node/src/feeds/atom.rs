//! The Atom feed (RFC 4287) of new and updated entries, written with
//! `atom_syndication` (which escapes through `quick-xml`); text is passed
//! through [`super::clean`] first, since XML 1.0 cannot carry most
//! control characters even escaped.
//!
//! Ids are stable: the feed's is [`super::feed_id`] (this node and the
//! filter), an entry's is `urn:convene:<entry id>`, so a reader shows an
//! edited entry as updated rather than new. `updated` is the entry's own
//! updated time; links go to the entry's page in this node's web app.
//! An event's summary starts with when (in its organiser's zone) and
//! where, and a cancelled event's title says so.

use atom_syndication::{Category, Feed, FixedDateTime, Generator, Link, Person, Text};
use convene_model::Body;
use convene_model::event::local_time;

use super::{FeedError, FeedFilter, Item, Scope, clean, feed_id};
use crate::node::Node;

/// The media type of an Atom feed.
pub const CONTENT_TYPE: &str = "application/atom+xml; charset=utf-8";

/// The longest summary carried (characters); a longer one is cut.
const MAX_SUMMARY: usize = 2000;

fn time(ms: i64) -> FixedDateTime {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .fixed_offset()
}

/// The feed's title: what it holds, with the filter in words.
fn title(node: &Node, filter: &FeedFilter) -> String {
    let vocab = node.vocab();
    let mut parts = Vec::new();
    if !filter.kind.is_empty() {
        parts.push(format!("kind: {}", filter.kind));
    }
    if !filter.priority.is_empty() {
        parts.push(format!(
            "priority: {}",
            vocab.priorities.label(&filter.priority)
        ));
    }
    if !filter.method.is_empty() {
        parts.push(format!("method: {}", vocab.methods.label(&filter.method)));
    }
    if !filter.sector.is_empty() {
        parts.push(format!("sector: {}", vocab.sectors.label(&filter.sector)));
    }
    if !filter.place.is_empty() {
        parts.push(format!("place: {}", filter.place));
    }
    if !filter.org.is_empty() {
        let name = filter
            .org
            .parse()
            .ok()
            .and_then(|o| node.org_name(&o))
            .unwrap_or_else(|| filter.org.clone());
        parts.push(format!("from: {name}"));
    }
    if !filter.q.is_empty() {
        parts.push(format!("search: {}", filter.q));
    }
    let mut t = "Convene: new and updated entries".to_string();
    if !parts.is_empty() {
        t += &format!(" ({})", parts.join(", "));
    }
    clean(&t)
}

fn cut(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", s[..i].trim_end()),
        None => s.to_string(),
    }
}

/// The feed of `items` (as [`super::entries`] selected them with the
/// resolved `filter`), with links under `base` (`http://host:port/`).
pub fn render(
    node: &Node,
    base: &str,
    filter: &FeedFilter,
    items: &[Item],
) -> Result<String, FeedError> {
    let base = format!("{}/", base.trim_end_matches('/'));
    let vocab = node.vocab();
    let query = filter.to_query();
    let with_query = |path: &str| {
        if query.is_empty() {
            format!("{base}{path}")
        } else {
            format!("{base}{path}?{query}")
        }
    };
    let entries: Vec<atom_syndication::Entry> = items
        .iter()
        .map(|item| {
            let l = &item.listed;
            let id = l.id.to_string();
            let mut categories = vec![Category {
                term: l.kind.as_str().into(),
                scheme: Some("urn:convene:kind".into()),
                label: Some(l.kind.as_str().into()),
            }];
            categories.extend(item.entry.body.priorities().iter().map(|slug| Category {
                term: clean(slug),
                scheme: Some("urn:convene:priority".into()),
                label: Some(clean(vocab.priorities.label(slug))),
            }));
            let mut summary = clean(&cut(item.summary(node).trim(), MAX_SUMMARY));
            let mut title = clean(&l.title);
            // An event says when and where first, and that it is off.
            if let Body::Event(e) = &item.entry.body {
                let zone = if e.time_zone.is_empty() {
                    convene_model::event::DEFAULT_TIME_ZONE
                } else {
                    e.time_zone.as_str()
                };
                let mut when = format!("{} ({})", local_time(e.starts, zone), clean(zone));
                if !e.place.trim().is_empty() {
                    when += &format!(", {}", clean(e.place.trim()));
                }
                summary = if summary.is_empty() {
                    format!("{when}.")
                } else {
                    format!("{when}. {summary}")
                };
                if e.cancelled {
                    title = format!("Cancelled: {title}");
                }
            }
            atom_syndication::Entry {
                title: Text::plain(title),
                id: format!("urn:convene:{id}"),
                updated: time(l.updated),
                published: Some(time(l.created)),
                authors: vec![Person {
                    name: clean(l.owner_name.as_deref().unwrap_or(&l.owner)),
                    ..Person::default()
                }],
                categories,
                links: vec![Link {
                    href: format!("{base}e/{id}"),
                    rel: "alternate".into(),
                    mime_type: Some("text/html".into()),
                    ..Link::default()
                }],
                summary: (!summary.is_empty()).then(|| Text::plain(summary)),
                ..atom_syndication::Entry::default()
            }
        })
        .collect();
    let updated = items.iter().map(|i| i.listed.updated).max().unwrap_or(0);
    let feed = Feed {
        title: Text::plain(title(node, filter)),
        id: feed_id(node, Scope::Entries, filter),
        updated: time(updated),
        authors: vec![Person {
            name: clean(
                &node
                    .org_name(&node.org())
                    .unwrap_or_else(|| node.org().to_string()),
            ),
            ..Person::default()
        }],
        generator: Some(Generator {
            value: "Convene".into(),
            uri: None,
            version: Some(env!("CARGO_PKG_VERSION").into()),
        }),
        links: vec![
            // The self link leaves out any token: the feed's document is
            // not where a token should travel.
            Link {
                href: with_query("feed.atom"),
                rel: "self".into(),
                mime_type: Some("application/atom+xml".into()),
                ..Link::default()
            },
            Link {
                href: with_query(""),
                rel: "alternate".into(),
                mime_type: Some("text/html".into()),
                ..Link::default()
            },
        ],
        entries,
        ..Feed::default()
    };
    let bytes = feed
        .write_to(Vec::new())
        .map_err(|e| FeedError::Invalid(format!("cannot write the feed: {e}")))?;
    String::from_utf8(bytes).map_err(|e| FeedError::Invalid(format!("cannot write the feed: {e}")))
}
