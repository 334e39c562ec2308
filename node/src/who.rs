//! Who's who: for a topic, the organisations and people who know about
//! it, ranked, each with the evidence (`convene who`, the web app's
//! `/who` page).
//!
//! # Reading the topic
//!
//! What a person types is read two ways at once:
//!
//! - as **vocabulary terms**: a priority, method, quality theme, ICS goal,
//!   skill or "open to" value it names (slug, label or alias, as
//!   [`Vocabulary::resolve`](convene_model::vocab::Vocabulary::resolve)
//!   reads them), or, failing that, the one term of a vocabulary whose
//!   name starts with the typed words ("discharge" is the
//!   priority *Discharge and safe transfers of care*) or, for two words
//!   or more, holds them ("mental health"); and a place, when some entry
//!   names it. Entries tagged with a term are *about* it.
//! - as **free text** through the full-text index (FTS5, bm25): entries
//!   that only *mention* the words count half as much as tagged ones.
//!
//! # Ranking
//!
//! Only published entries count (never a draft, not even this
//! organisation's own, nor a retracted or erased entry). Each matched entry
//! credits:
//!
//! - a learning entry: its owner ("published"), the organisations it names
//!   ("named in"), and the authors who are consenting contacts;
//! - a project: its owner ("leads"), its co-editors, its partner
//!   organisations, each team member who is a consenting contact (lead,
//!   coach, member …), that person's organisation, and, for team members
//!   who are not, only the owner organisation ("team members, named only
//!   with their consent");
//! - an event not called off: its owner ("ran", or "runs" while it is
//!   still to come) and its organiser, when the organiser names a member
//!   organisation or a consenting contact;
//! - a contact: the person, by expertise, interests, role, "open to" and
//!   place.
//!
//! The weights are in [`weights`]; a result's score is the sum of its
//! reasons' weights. People who are open to something (mentoring, peer
//! visits …) get a small bonus, since they are the ones to ask.
//!
//! # Personal data
//!
//! A person is shown only from a contact entry that carries a consent
//! record whose scope covers this node's organisation (community; or the
//! owner organisation; or a list that names it), in an entry whose own
//! visibility covers it too. Names typed into a project's team or a
//! learning entry's authors are never shown unless they are such a
//! contact: the project's owner organisation gets the credit instead. A
//! contact channel (email, phone) is shown only when its own, possibly
//! narrower, visibility covers this node's organisation.
//!
//! # Layout
//!
//! - `topic`: what the typed topic is read as (terms, place, words).
//! - `gather`: crediting organisations and people entry by entry.
//! - `evidence`: each result's reasons, weights and sentences.

mod evidence;
mod gather;
mod topic;

use std::collections::{BTreeMap, HashMap};

use convene_model::{Body, Contact, DocumentId, Entry, Kind, OrgId, Visibility};
use serde::Serialize;

use self::gather::{Found, Gather, OrgKey, Strength};
use self::topic::{topic_terms, words};
use crate::store::Filter;
use crate::{Node, NodeError};

/// The longest topic, in characters: a term or a few words, never a
/// document pasted into the box.
pub const MAX_TOPIC: usize = 200;

/// The most full-text hits read for one topic (best first).
pub const MAX_TEXT_HITS: usize = 1000;

/// The most tagged entries read per term and kind (newest first).
pub const MAX_TAGGED: usize = 1000;

/// How much each kind of evidence weighs (an entry tagged with the topic
/// counts in full, one that only mentions it counts half).
pub mod weights {
    pub const PUBLISHED_LEARNING: f64 = 3.0;
    pub const NAMED_IN_LEARNING: f64 = 1.5;
    pub const LEADS_PROJECT: f64 = 4.0;
    pub const CO_EDITS_PROJECT: f64 = 2.0;
    pub const PARTNER_ON_PROJECT: f64 = 2.0;
    pub const PEOPLE_ON_TEAM: f64 = 1.0;
    pub const UNNAMED_TEAM_MEMBER: f64 = 0.5;
    pub const RAN_EVENT: f64 = 3.0;
    pub const ORGANISED_EVENT: f64 = 3.0;
    pub const PROJECT_LEAD: f64 = 3.0;
    pub const ON_TEAM: f64 = 2.0;
    pub const AUTHOR: f64 = 3.0;
    pub const EXPERTISE_TERM: f64 = 4.0;
    pub const EXPERTISE_WORDS: f64 = 3.0;
    pub const INTEREST: f64 = 2.0;
    pub const ROLE: f64 = 2.0;
    pub const OPEN_TO_TERM: f64 = 2.0;
    pub const PLACE: f64 = 1.0;
    pub const PROFILE_MENTIONS: f64 = 1.0;
    /// For anyone open to mentoring, collaboration, peer visits or coffee.
    pub const OPEN_TO_ANYTHING: f64 = 0.5;
}

/// Why `who` could not run.
#[derive(Debug, thiserror::Error)]
pub enum WhoError {
    #[error(
        "the topic is empty: give a priority, a method, a place or a few words (e.g. `convene who discharge`)"
    )]
    EmptyTopic,
    #[error(
        "the topic {0:?} has no word to search for: give a priority, a method, a place or a few words"
    )]
    NoWords(String),
    #[error("the topic is {0} characters long: give at most {MAX_TOPIC} (a term or a few words)")]
    TooLong(usize),
    #[error(transparent)]
    Node(#[from] NodeError),
}

impl From<crate::StoreError> for WhoError {
    fn from(e: crate::StoreError) -> Self {
        WhoError::Node(e.into())
    }
}

/// A vocabulary term the topic was read as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TopicTerm {
    /// `priority`, `method`, `theme`, `goal`, `skill`, `open_to` or `place`.
    pub field: &'static str,
    pub slug: String,
    pub label: String,
}

/// An entry cited as evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EntryRef {
    pub id: String,
    pub kind: String,
    pub title: String,
}

/// One reason a result is listed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reason {
    /// A stable key: `published`, `leads`, `expertise`, `lead` …
    pub kind: String,
    /// The sentence people read ("published 2 learning entries on it").
    pub text: String,
    /// What it adds to the score.
    pub weight: f64,
    /// The entries it comes from, if any.
    pub entries: Vec<EntryRef>,
}

/// An organisation that knows about the topic.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OrgResult {
    /// Its profile's id; `None` for an organisation only named in an
    /// entry (a project partner that is not a member).
    pub id: Option<String>,
    pub name: String,
    /// `member` or `former member` of the community (`None` when this
    /// node is in no community, or for an organisation only named).
    pub standing: Option<&'static str>,
    pub score: f64,
    pub reasons: Vec<Reason>,
}

/// A person (a consenting contact) who knows about the topic.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PersonResult {
    /// The contact entry's id.
    pub id: String,
    pub name: String,
    pub pronouns: String,
    pub role: String,
    /// The organisation that holds the contact entry.
    pub organisation: OrgName,
    /// Other organisations they work with, as the contact names them.
    pub organisations: Vec<String>,
    pub place: String,
    /// Labels of their expertise.
    pub expertise: Vec<String>,
    /// Labels of what they are open to (mentoring, coffee …).
    pub open_to: Vec<String>,
    pub lived_experience_partner: bool,
    /// The first email address whose visibility covers this node.
    pub email: Option<String>,
    pub score: f64,
    pub reasons: Vec<Reason>,
}

/// An organisation's id and name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrgName {
    pub id: String,
    /// `None` when its profile is not on this node.
    pub name: Option<String>,
}

/// The answer to "who knows about this topic?".
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Who {
    /// The topic as typed (trimmed).
    pub topic: String,
    /// The vocabulary terms it was read as (empty: free text only).
    pub terms: Vec<TopicTerm>,
    /// How many entries matched (tagged or mentioning it), counting only
    /// the contacts that may be shown.
    pub entries: usize,
    /// Organisations, best first (at most the limit).
    pub organisations: Vec<OrgResult>,
    /// How many organisations were found before the limit.
    pub total_organisations: usize,
    /// People, best first (at most the limit).
    pub people: Vec<PersonResult>,
    pub total_people: usize,
}

impl Who {
    /// Whether no one was found.
    pub fn is_empty(&self) -> bool {
        self.organisations.is_empty() && self.people.is_empty()
    }

    /// `who --json`'s shape (and `/api/who`'s).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("who results always serialise")
    }
}

/// Whether `visibility` on an entry owned by `owner` lets `viewer` see it.
pub fn covers(visibility: &Visibility, owner: OrgId, viewer: OrgId) -> bool {
    match visibility {
        Visibility::Community => true,
        Visibility::Organisation => owner == viewer,
        Visibility::Orgs(orgs) => owner == viewer || orgs.contains(&viewer),
    }
}

/// Whether a contact may be shown to `viewer`: it is published, it has a
/// consent record, and both the consent's scope and the entry's
/// visibility cover the viewer.
pub fn may_show_contact(entry: &Entry, viewer: OrgId) -> bool {
    let Body::Contact(c) = &entry.body else {
        return false;
    };
    entry.meta.status == convene_model::Status::Published
        && covers(&entry.meta.visibility, entry.meta.owner, viewer)
        && c.consent
            .as_ref()
            .is_some_and(|consent| covers(&consent.scope, entry.meta.owner, viewer))
}

/// The first email address of `c` that `viewer` may see.
fn visible_email(c: &Contact, entry: &Entry, viewer: OrgId) -> Option<String> {
    c.channels
        .iter()
        .filter(|ch| ch.channel == "email")
        .find(|ch| {
            ch.visibility
                .as_ref()
                .is_none_or(|v| covers(v, entry.meta.owner, viewer))
        })
        .map(|ch| ch.value.clone())
}

impl Node {
    /// Who knows about `topic`: organisations and people, best first, at
    /// most `limit` of each, with the evidence (see [`crate::who`]).
    pub fn who(&self, topic: &str, limit: usize) -> Result<Who, WhoError> {
        let topic = topic.trim();
        if topic.is_empty() {
            return Err(WhoError::EmptyTopic);
        }
        let length = topic.chars().count();
        if length > MAX_TOPIC {
            return Err(WhoError::TooLong(length));
        }
        let now = crate::node::now();
        let terms = topic_terms(self, topic)?;
        let hits = self.search(topic, MAX_TEXT_HITS)?;
        if hits.is_none() && terms.is_empty() {
            return Err(WhoError::NoWords(topic.to_string()));
        }
        let counted = |kind: Kind| {
            matches!(
                kind,
                Kind::Learning | Kind::Project | Kind::Contact | Kind::Event
            )
        };
        // Every entry about the topic: tagged first, then mentions.
        let mut found: BTreeMap<DocumentId, Found> = BTreeMap::new();
        for term in &terms {
            let field = match term.field {
                "open_to" => continue,
                f => f,
            };
            let rows = self.list(&Filter {
                terms: vec![(field.to_string(), term.slug.clone())],
                limit: Some(MAX_TAGGED),
                ..Filter::default()
            })?;
            for listed in rows {
                if listed.status == "published" && counted(listed.kind) {
                    found.entry(listed.id).or_insert(Found {
                        listed,
                        strength: Strength::Tagged,
                    });
                }
            }
        }
        for term in terms.iter().filter(|t| t.field == "open_to") {
            for hit in self.search(&term.label, MAX_TEXT_HITS)?.unwrap_or_default() {
                if hit.listed.status == "published" && hit.listed.kind == Kind::Contact {
                    found.entry(hit.listed.id).or_insert(Found {
                        listed: hit.listed,
                        strength: Strength::Tagged,
                    });
                }
            }
        }
        for hit in hits.unwrap_or_default() {
            if hit.listed.status == "published" && counted(hit.listed.kind) {
                found.entry(hit.listed.id).or_insert(Found {
                    listed: hit.listed,
                    strength: Strength::Mentioned,
                });
            }
        }

        let orgs = self.list(&Filter {
            kind: Some(Kind::Organisation),
            ..Filter::default()
        })?;
        let mut contacts_by_name: HashMap<String, Vec<DocumentId>> = HashMap::new();
        for c in self.list(&Filter {
            kind: Some(Kind::Contact),
            ..Filter::default()
        })? {
            if c.status == "published" {
                contacts_by_name
                    .entry(c.title.trim().to_lowercase())
                    .or_default()
                    .push(c.id);
            }
        }
        let mut g = Gather {
            node: self,
            viewer: self.org(),
            topic_words: words(topic),
            terms: terms.clone(),
            org_names: orgs
                .iter()
                .map(|o| (OrgId(o.id), o.title.clone()))
                .collect(),
            org_by_name: orgs
                .iter()
                .map(|o| (o.title.trim().to_lowercase(), OrgId(o.id)))
                .collect(),
            contacts_by_name,
            contacts: HashMap::new(),
            orgs: BTreeMap::new(),
            people: BTreeMap::new(),
        };
        for f in found.values() {
            match f.listed.kind {
                Kind::Learning => g.learning(f)?,
                Kind::Project => g.project(f)?,
                Kind::Contact => g.contact_match(f)?,
                Kind::Event => g.event(f, now)?,
                _ => {}
            }
        }

        let mut organisations: Vec<OrgResult> = std::mem::take(&mut g.orgs)
            .into_iter()
            .map(|(key, (name, ev))| OrgResult {
                standing: match &key {
                    OrgKey::Member(id) => self.org_standing(id),
                    OrgKey::Named(_) => None,
                },
                id: match key {
                    OrgKey::Member(id) => Some(id.to_string()),
                    OrgKey::Named(_) => None,
                },
                name,
                score: ev.score(),
                reasons: ev.reasons(),
            })
            .collect();
        organisations.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.name.cmp(&b.name)));
        let total_organisations = organisations.len();
        organisations.truncate(limit);

        let mut people = Vec::new();
        for (id, mut ev) in std::mem::take(&mut g.people) {
            let Some(entry) = g.contact(id)?.cloned() else {
                continue;
            };
            let Body::Contact(c) = &entry.body else {
                continue;
            };
            if !c.open_to.is_empty() {
                ev.fixed("open-to-anything", weights::OPEN_TO_ANYTHING, String::new());
            }
            let score = ev.score();
            let reasons = ev
                .reasons()
                .into_iter()
                .filter(|r| r.kind != "open-to-anything")
                .collect();
            let vocab = self.vocab();
            people.push(PersonResult {
                id: id.to_string(),
                name: c.name.clone(),
                pronouns: c.pronouns.clone(),
                role: c.role.clone(),
                organisation: OrgName {
                    id: entry.meta.owner.to_string(),
                    name: g.org_names.get(&entry.meta.owner).cloned(),
                },
                organisations: c.organisations.clone(),
                place: c.place.clone(),
                expertise: c
                    .expertise
                    .iter()
                    .map(|s| vocab.skills.label(s).to_string())
                    .collect(),
                open_to: c
                    .open_to
                    .iter()
                    .map(|s| vocab.open_to.label(s).to_string())
                    .collect(),
                lived_experience_partner: c.lived_experience_partner,
                email: visible_email(c, &entry, g.viewer),
                score,
                reasons,
            });
        }
        people.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.name.cmp(&b.name)));
        let total_people = people.len();
        people.truncate(limit);
        // Contacts that may not be shown are not counted either.
        let entries = found
            .values()
            .filter(|f| {
                f.listed.kind != Kind::Contact
                    || g.contacts.get(&f.listed.id).is_some_and(Option::is_some)
            })
            .count();
        Ok(Who {
            topic: topic.to_string(),
            terms,
            entries,
            organisations,
            total_organisations,
            people,
            total_people,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visibility_and_consent_decide_who_sees_a_contact() {
        let viewer = OrgId(DocumentId::from_bytes([1; 16]));
        let owner = OrgId(DocumentId::from_bytes([2; 16]));
        assert!(covers(&Visibility::Community, owner, viewer));
        assert!(!covers(&Visibility::Organisation, owner, viewer));
        assert!(covers(&Visibility::Organisation, viewer, viewer));
        assert!(covers(&Visibility::Orgs(vec![viewer]), owner, viewer));
        assert!(!covers(&Visibility::Orgs(vec![owner]), owner, viewer));
    }
}
