//! A [`Digest`] as JSON (`convene digest --format json`), for scripts that
//! lay out their own newsletter. It holds what the text holds, and no
//! more: no contact is named, and quoted text is as clipped.

use serde_json::{Value, json};

use super::{Audience, Digest, EventItem, IdeaItem, Item, MessageItem};

fn item(it: &Item) -> Value {
    json!({
        "id": it.id.to_string(),
        "kind": it.kind.as_str(),
        "title": it.title,
        "summary": it.summary,
        "owner": it.owner.to_string(),
        "owner_name": it.owner_name,
        "seen": it.seen.to_string(),
        "priorities": it.priorities,
        "restricted": it.restricted,
    })
}

fn event(e: &EventItem) -> Value {
    let mut v = item(&e.item);
    v["starts"] = json!(e.starts.to_string());
    v["ends"] = json!(e.ends.to_string());
    v["starts_local"] = json!(e.starts_local);
    v["ends_local"] = json!(e.ends_local);
    v["time_zone"] = json!(e.time_zone);
    v["place"] = json!(e.place);
    v["link"] = json!(e.link);
    v["cancelled"] = json!(e.cancelled);
    v["going"] = json!(e.going);
    v["new"] = json!(e.new);
    v
}

fn idea(i: &IdeaItem) -> Value {
    let mut v = item(&i.item);
    v["support"] = json!(i.support);
    v["new_support"] = json!(i.new_support);
    v
}

fn message(m: &MessageItem) -> Value {
    json!({
        "id": m.id.to_string(),
        "question": m.question,
        "from": m.from.to_string(),
        "from_name": m.from_name,
        "about": m.about.to_string(),
        "about_title": m.about_title,
        "text": m.text,
        "seen": m.seen.to_string(),
        "answers_us": m.answers_us,
    })
}

impl Digest {
    /// The digest as one JSON object, sections in the text's order.
    pub fn to_json(&self) -> Value {
        json!({
            "since": self.since.to_string(),
            "until": self.until.to_string(),
            "organisation": self.org_name,
            "community": self.community,
            "audience": match self.audience {
                Audience::Community => "community",
                Audience::Here => "organisation",
            },
            "priorities": self.priorities,
            "sections": self.sections.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
            "weeks_ahead": self.weeks_ahead,
            "learning": self.learning.iter().map(item).collect::<Vec<_>>(),
            "new_projects": self.new_projects.iter().map(item).collect::<Vec<_>>(),
            "updated_projects": self.updated_projects.iter().map(item).collect::<Vec<_>>(),
            "events": self.events.iter().map(event).collect::<Vec<_>>(),
            "new_ideas": self.new_ideas.iter().map(idea).collect::<Vec<_>>(),
            "top_ideas": self.top_ideas.iter().map(idea).collect::<Vec<_>>(),
            "conversations": self.conversations.iter().map(message).collect::<Vec<_>>(),
            "waiting": self.waiting.iter().map(message).collect::<Vec<_>>(),
            "new_contacts": self.new_contacts,
        })
    }
}
