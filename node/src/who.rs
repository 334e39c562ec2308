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
//!   [`Vocabulary::resolve`] reads them), or, failing that, the one term of
//!   a vocabulary whose name starts with the typed words ("discharge" is the
//!   priority *Discharge and safe transfers of care*); and a place, when
//!   some entry names it. Entries tagged with a term are *about* it.
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

use std::collections::{BTreeMap, HashMap};

use convene_model::vocab::slugify;
use convene_model::{
    Body, Contact, DocumentId, Entry, Kind, OrgId, Timestamp, Visibility, Vocabulary,
};
use serde::Serialize;

use crate::store::{Filter, Listed};
use crate::{Node, NodeError};

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

/// How strongly an entry is about the topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Strength {
    /// Tagged with one of the topic's terms.
    Tagged,
    /// Only mentions the words.
    Mentioned,
}

impl Strength {
    fn factor(self) -> f64 {
        match self {
            Strength::Tagged => 1.0,
            Strength::Mentioned => 0.5,
        }
    }
}

#[derive(Debug)]
struct Found {
    listed: Listed,
    strength: Strength,
}

/// The topic's words, lower case, for matching contacts' fields.
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Two words are the same but for an ending ("discharge", "discharges";
/// "prevention", "preventing").
fn same_word(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    let common = a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count();
    let long = a.chars().count().max(b.chars().count());
    common >= 4 && common + 3 >= long
}

/// Every topic word appears in `text`.
fn mentions(text: &str, topic: &[String]) -> bool {
    if topic.is_empty() {
        return false;
    }
    let have = words(text);
    topic.iter().all(|w| have.iter().any(|h| same_word(w, h)))
}

/// The one term of `v` whose slug (or an alias's) starts with the typed
/// words, if exactly one does.
fn starts_term<'a>(v: &'a Vocabulary, slug: &str) -> Option<&'a convene_model::Term> {
    if slug.len() < 4 {
        return None;
    }
    let starts = |s: &str| s == slug || s.starts_with(&format!("{slug}-"));
    let mut found = v
        .terms
        .iter()
        .filter(|t| starts(&t.slug) || t.aliases.iter().any(|a| starts(&slugify(a))));
    let first = found.next()?;
    found.next().is_none().then_some(first)
}

/// What a person typed, read as vocabulary terms (see the module docs).
fn topic_terms(node: &Node, topic: &str) -> Result<Vec<TopicTerm>, WhoError> {
    let v = node.vocab();
    let vocabularies: [(&'static str, &Vocabulary); 6] = [
        ("priority", &v.priorities),
        ("method", &v.methods),
        ("theme", &v.themes),
        ("goal", &v.goals),
        ("skill", &v.skills),
        ("open_to", &v.open_to),
    ];
    let term = |field, t: &convene_model::Term| TopicTerm {
        field,
        slug: t.slug.clone(),
        label: t.label.clone(),
    };
    let mut out: Vec<TopicTerm> = vocabularies
        .iter()
        .filter_map(|(field, voc)| voc.resolve(topic).ok().map(|t| term(field, t)))
        .collect();
    if out.is_empty() {
        let slug = slugify(topic);
        out = vocabularies
            .iter()
            .filter_map(|(field, voc)| starts_term(voc, &slug).map(|t| term(field, t)))
            .collect();
    }
    let place = topic.to_lowercase();
    let placed = node.count(&Filter {
        terms: vec![("place".into(), place.clone())],
        limit: Some(1),
        ..Filter::default()
    })?;
    if placed > 0 {
        out.push(TopicTerm {
            field: "place",
            slug: place,
            label: topic.to_string(),
        });
    }
    Ok(out)
}

/// Evidence gathered for one result, keyed by reason.
#[derive(Debug, Default)]
struct Evidence {
    reasons: BTreeMap<String, Acc>,
}

#[derive(Debug, Default)]
struct Acc {
    weight: f64,
    entries: Vec<EntryRef>,
    /// Unnamed people counted (team members without consent).
    people: usize,
    /// A fixed sentence (for reasons without entries).
    text: Option<String>,
}

impl Evidence {
    fn add(&mut self, key: &str, weight: f64, entry: Option<&Listed>) {
        let acc = self.reasons.entry(key.to_string()).or_default();
        if let Some(e) = entry {
            if acc.entries.iter().any(|r| r.id == e.id.to_string()) {
                return;
            }
            acc.entries.push(EntryRef {
                id: e.id.to_string(),
                kind: e.kind.as_str().to_string(),
                title: e.title.clone(),
            });
        }
        acc.weight += weight;
    }

    fn fixed(&mut self, key: &str, weight: f64, text: String) {
        let acc = self.reasons.entry(key.to_string()).or_default();
        if acc.text.is_none() {
            acc.weight += weight;
            acc.text = Some(text);
        }
    }

    fn unnamed(&mut self, weight: f64, entry: &Listed) {
        let acc = self.reasons.entry("unnamed-team".to_string()).or_default();
        acc.people += 1;
        acc.weight += weight;
        if !acc.entries.iter().any(|r| r.id == entry.id.to_string()) {
            acc.entries.push(EntryRef {
                id: entry.id.to_string(),
                kind: entry.kind.as_str().to_string(),
                title: entry.title.clone(),
            });
        }
    }

    fn score(&self) -> f64 {
        round(self.reasons.values().map(|a| a.weight).sum())
    }

    /// The reasons, heaviest first, with their sentences.
    fn reasons(self) -> Vec<Reason> {
        let mut out: Vec<Reason> = self
            .reasons
            .into_iter()
            .map(|(kind, acc)| Reason {
                text: acc
                    .text
                    .clone()
                    .unwrap_or_else(|| sentence(&kind, acc.entries.len(), acc.people)),
                kind,
                weight: round(acc.weight),
                entries: acc.entries,
            })
            .collect();
        out.sort_by(|a, b| b.weight.total_cmp(&a.weight).then(a.kind.cmp(&b.kind)));
        out
    }
}

fn round(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// The sentence for a reason that cites `n` entries.
fn sentence(kind: &str, n: usize, people: usize) -> String {
    let projects = || plural(n, "project", "projects");
    match kind {
        "published" => format!(
            "published {} on it",
            plural(n, "learning entry", "learning entries")
        ),
        "named-in" => format!(
            "named in {} on it",
            plural(n, "learning entry", "learning entries")
        ),
        "leads" => format!("leads {} on it", projects()),
        "co-edits" => format!("co-edits {} on it", projects()),
        "partner" => format!("partner on {} on it", projects()),
        "people-on-team" => format!("its people are on the team of {} on it", projects()),
        "unnamed-team" => format!(
            "{} on the team of {} on it (people are named only with their consent)",
            plural(people, "person", "people"),
            projects()
        ),
        "ran" => format!("ran {} on it", plural(n, "event", "events")),
        "runs" => format!(
            "runs {} on it",
            plural(n, "upcoming event", "upcoming events")
        ),
        "organiser" => format!("organiser of {} on it", plural(n, "event", "events")),
        "author" => format!(
            "wrote {} on it",
            plural(n, "learning entry", "learning entries")
        ),
        "lead" => format!("lead of {} on it", projects()),
        other => match other.strip_prefix("team:") {
            Some(role) => format!("{role} on the team of {} on it", projects()),
            None => format!("{other}: {}", plural(n, "entry", "entries")),
        },
    }
}

/// Which organisation a name or id in an entry refers to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum OrgKey {
    Member(OrgId),
    /// Only named (not an organisation whose profile is here).
    Named(String),
}

/// State while one `who` runs.
struct Gather<'n> {
    node: &'n Node,
    viewer: OrgId,
    topic_words: Vec<String>,
    terms: Vec<TopicTerm>,
    /// Organisation profiles here: id → name, and lower-case name → id.
    org_names: HashMap<OrgId, String>,
    org_by_name: HashMap<String, OrgId>,
    /// Published contacts here by lower-case name (their title).
    contacts_by_name: HashMap<String, Vec<DocumentId>>,
    /// Contacts read so far: `Some` when they may be shown.
    contacts: HashMap<DocumentId, Option<Entry>>,
    orgs: BTreeMap<OrgKey, (String, Evidence)>,
    people: BTreeMap<DocumentId, Evidence>,
}

impl<'n> Gather<'n> {
    fn org_key(&self, text: &str) -> Option<OrgKey> {
        let text = text.trim();
        if text.is_empty() {
            return None;
        }
        if let Ok(id) = text.parse::<OrgId>() {
            return Some(OrgKey::Member(id));
        }
        Some(match self.org_by_name.get(&text.to_lowercase()) {
            Some(id) => OrgKey::Member(*id),
            None => OrgKey::Named(text.to_string()),
        })
    }

    fn org(&mut self, key: OrgKey) -> &mut Evidence {
        let name = match &key {
            OrgKey::Member(id) => self
                .org_names
                .get(id)
                .cloned()
                .unwrap_or_else(|| format!("organisation {id}")),
            OrgKey::Named(n) => n.clone(),
        };
        &mut self
            .orgs
            .entry(key)
            .or_insert_with(|| (name, Evidence::default()))
            .1
    }

    /// The contact `id`, if it may be shown.
    fn contact(&mut self, id: DocumentId) -> Result<Option<&Entry>, WhoError> {
        if !self.contacts.contains_key(&id) {
            let shown = match self.node.get(id) {
                Ok(e) if may_show_contact(&e, self.viewer) => Some(e),
                Ok(_) | Err(NodeError::UnknownId(_) | NodeError::Erased(_)) => None,
                Err(NodeError::InvalidDocument { .. }) => None,
                Err(e) => return Err(e.into()),
            };
            self.contacts.insert(id, shown);
        }
        Ok(self.contacts.get(&id).and_then(Option::as_ref))
    }

    /// The consenting contact a team member or author names: a contact's
    /// id, or the name of exactly one contact that may be shown.
    fn person(&mut self, text: &str) -> Result<Option<DocumentId>, WhoError> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(None);
        }
        if let Ok(id) = text.parse::<DocumentId>() {
            return Ok(self.contact(id)?.map(|_| id));
        }
        let candidates = self
            .contacts_by_name
            .get(&text.to_lowercase())
            .cloned()
            .unwrap_or_default();
        let mut shown = Vec::new();
        for id in candidates {
            if self.contact(id)?.is_some() {
                shown.push(id);
            }
        }
        Ok(match shown.as_slice() {
            [one] => Some(*one),
            _ => None,
        })
    }

    fn learning(&mut self, f: &Found) -> Result<(), WhoError> {
        let k = f.strength.factor();
        let owner = f.listed.owner.parse::<OrgId>().ok();
        if let Some(owner) = owner {
            self.org(OrgKey::Member(owner)).add(
                "published",
                weights::PUBLISHED_LEARNING * k,
                Some(&f.listed),
            );
        }
        let Ok(Entry {
            body: Body::Learning(l),
            ..
        }) = self.node.get(f.listed.id)
        else {
            return Ok(());
        };
        for org in &l.organisations {
            if let Some(key) = self.org_key(org)
                && Some(&key) != owner.map(OrgKey::Member).as_ref()
            {
                self.org(key)
                    .add("named-in", weights::NAMED_IN_LEARNING * k, Some(&f.listed));
            }
        }
        for author in &l.authors {
            if let Some(person) = self.person(author)? {
                self.people.entry(person).or_default().add(
                    "author",
                    weights::AUTHOR * k,
                    Some(&f.listed),
                );
            }
        }
        Ok(())
    }

    fn project(&mut self, f: &Found) -> Result<(), WhoError> {
        let k = f.strength.factor();
        let Ok(Entry {
            meta,
            body: Body::Project(p),
            ..
        }) = self.node.get(f.listed.id)
        else {
            return Ok(());
        };
        let owner = meta.owner;
        self.org(OrgKey::Member(owner))
            .add("leads", weights::LEADS_PROJECT * k, Some(&f.listed));
        for editor in &meta.editors {
            if *editor != owner {
                self.org(OrgKey::Member(*editor)).add(
                    "co-edits",
                    weights::CO_EDITS_PROJECT * k,
                    Some(&f.listed),
                );
            }
        }
        for partner in &p.partners {
            if let Some(key) = self.org_key(partner)
                && key != OrgKey::Member(owner)
            {
                self.org(key)
                    .add("partner", weights::PARTNER_ON_PROJECT * k, Some(&f.listed));
            }
        }
        let roles = &self.node.vocab().team_roles;
        for member in &p.team {
            match self.person(&member.name)? {
                Some(person) => {
                    let role = member.role.as_deref().unwrap_or("member");
                    let (key, weight) = if role == "lead" {
                        ("lead".to_string(), weights::PROJECT_LEAD)
                    } else {
                        (format!("team:{}", roles.label(role)), weights::ON_TEAM)
                    };
                    self.people
                        .entry(person)
                        .or_default()
                        .add(&key, weight * k, Some(&f.listed));
                    let their_org = self
                        .contacts
                        .get(&person)
                        .and_then(Option::as_ref)
                        .map(|c| c.meta.owner);
                    if let Some(org) = their_org
                        && org != owner
                    {
                        self.org(OrgKey::Member(org)).add(
                            "people-on-team",
                            weights::PEOPLE_ON_TEAM * k,
                            Some(&f.listed),
                        );
                    }
                }
                None if !member.name.trim().is_empty() => {
                    self.org(OrgKey::Member(owner))
                        .unnamed(weights::UNNAMED_TEAM_MEMBER * k, &f.listed);
                }
                None => {}
            }
        }
        Ok(())
    }

    /// An event (not one called off): its owner ran it (or runs it, if it
    /// is still to come); its organiser, when that names a member
    /// organisation or a consenting contact, organised it.
    fn event(&mut self, f: &Found, now: Timestamp) -> Result<(), WhoError> {
        let k = f.strength.factor();
        let Ok(Entry {
            meta,
            body: Body::Event(e),
            ..
        }) = self.node.get(f.listed.id)
        else {
            return Ok(());
        };
        if e.cancelled {
            return Ok(());
        }
        let owner = meta.owner;
        let key = if e.is_upcoming(now) { "runs" } else { "ran" };
        self.org(OrgKey::Member(owner))
            .add(key, weights::RAN_EVENT * k, Some(&f.listed));
        let organiser = e.organiser.trim();
        if organiser.is_empty() {
            return Ok(());
        }
        if let Some(person) = self.person(organiser)? {
            self.people.entry(person).or_default().add(
                "organiser",
                weights::ORGANISED_EVENT * k,
                Some(&f.listed),
            );
            return Ok(());
        }
        // Only a member organisation's name: free text here may be a
        // person's name, which needs their consent.
        if let Some(OrgKey::Member(org)) = self.org_key(organiser)
            && org != owner
            && self.org_names.contains_key(&org)
        {
            self.org(OrgKey::Member(org)).add(
                "organiser",
                weights::ORGANISED_EVENT * k,
                Some(&f.listed),
            );
        }
        Ok(())
    }

    /// A contact that matched: what in their own profile is about the topic.
    fn contact_match(&mut self, f: &Found) -> Result<(), WhoError> {
        let k = f.strength.factor();
        let Some(entry) = self.contact(f.listed.id)?.cloned() else {
            return Ok(());
        };
        let Body::Contact(c) = &entry.body else {
            return Ok(());
        };
        let vocab = self.node.vocab();
        let has_term = |field: &str, slug: &str| {
            self.terms
                .iter()
                .any(|t| t.field == field && t.slug == slug)
        };
        let mut ev = Evidence::default();
        for skill in &c.expertise {
            let label = vocab.skills.label(skill);
            if has_term("skill", skill) {
                ev.fixed(
                    &format!("expertise:{skill}"),
                    weights::EXPERTISE_TERM,
                    format!("expertise: {label}"),
                );
            } else if mentions(label, &self.topic_words) {
                ev.fixed(
                    &format!("expertise:{skill}"),
                    weights::EXPERTISE_WORDS,
                    format!("expertise: {label}"),
                );
            }
        }
        for open in &c.open_to {
            let label = vocab.open_to.label(open);
            if has_term("open_to", open) || mentions(label, &self.topic_words) {
                ev.fixed(
                    &format!("open-to:{open}"),
                    weights::OPEN_TO_TERM,
                    format!("open to {}", label.to_lowercase()),
                );
            }
        }
        for interest in &c.interests {
            if mentions(interest, &self.topic_words) {
                ev.fixed(
                    &format!("interest:{}", interest.to_lowercase()),
                    weights::INTEREST,
                    format!("interested in: {interest}"),
                );
            }
        }
        if mentions(&c.role, &self.topic_words) {
            ev.fixed("role", weights::ROLE, format!("role: {}", c.role));
        }
        if !c.place.is_empty() && has_term("place", &c.place.to_lowercase()) {
            ev.fixed("place", weights::PLACE, format!("based in {}", c.place));
        }
        if ev.reasons.is_empty() {
            ev.fixed(
                "profile",
                weights::PROFILE_MENTIONS * k,
                "their profile mentions it".to_string(),
            );
        }
        let acc = self.people.entry(f.listed.id).or_default();
        for (key, a) in ev.reasons {
            acc.reasons.entry(key).or_insert(a);
        }
        Ok(())
    }
}

impl Node {
    /// Who knows about `topic`: organisations and people, best first, at
    /// most `limit` of each, with the evidence (see [`crate::who`]).
    pub fn who(&self, topic: &str, limit: usize) -> Result<Who, WhoError> {
        let topic = topic.trim();
        if topic.is_empty() {
            return Err(WhoError::EmptyTopic);
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
    fn words_match_but_for_their_endings() {
        let t = words("Discharge");
        assert!(mentions("Discharges lead", &t));
        assert!(mentions("safe DISCHARGE", &t));
        assert!(!mentions("Dispatch", &t));
        assert!(mentions("preventing falls", &words("prevention")));
        assert!(!mentions("car park", &words("care")));
        assert!(!mentions("anything", &[]));
        // Every word must appear.
        assert!(!mentions("mental wellbeing", &words("mental health")));
    }

    #[test]
    fn a_typed_word_names_the_one_term_it_starts() {
        let v = convene_model::Vocabularies::default();
        assert_eq!(
            starts_term(&v.priorities, "discharge").unwrap().slug,
            "discharge-and-safe-transfers-of-care"
        );
        assert_eq!(
            starts_term(&v.skills, "quality").unwrap().slug,
            "quality-improvement"
        );
        // Too short, or not the start of a term.
        assert!(starts_term(&v.priorities, "car").is_none());
        assert!(starts_term(&v.priorities, "health").is_none());
    }

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
