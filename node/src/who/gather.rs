//! Crediting organisations and people with the evidence of each entry
//! about the topic (see the parent module for the rules).

use std::collections::{BTreeMap, HashMap};

use convene_model::{Body, DocumentId, Entry, OrgId, Timestamp};

use super::evidence::Evidence;
use super::topic::mentions;
use super::{TopicTerm, WhoError, may_show_contact, weights};
use crate::store::Listed;
use crate::{Node, NodeError};

/// How strongly an entry is about the topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Strength {
    /// Tagged with one of the topic's terms.
    Tagged,
    /// Only mentions the words.
    Mentioned,
}

impl Strength {
    pub(super) fn factor(self) -> f64 {
        match self {
            Strength::Tagged => 1.0,
            Strength::Mentioned => 0.5,
        }
    }
}

#[derive(Debug)]
pub(super) struct Found {
    pub(super) listed: Listed,
    pub(super) strength: Strength,
}

/// Which organisation a name or id in an entry refers to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) enum OrgKey {
    Member(OrgId),
    /// Only named (not an organisation whose profile is here).
    Named(String),
}

/// State while one `who` runs.
pub(super) struct Gather<'n> {
    pub(super) node: &'n Node,
    pub(super) viewer: OrgId,
    pub(super) topic_words: Vec<String>,
    pub(super) terms: Vec<TopicTerm>,
    /// Organisation profiles here: id → name, and lower-case name → id.
    pub(super) org_names: HashMap<OrgId, String>,
    pub(super) org_by_name: HashMap<String, OrgId>,
    /// Published contacts here by lower-case name (their title).
    pub(super) contacts_by_name: HashMap<String, Vec<DocumentId>>,
    /// Contacts read so far: `Some` when they may be shown.
    pub(super) contacts: HashMap<DocumentId, Option<Entry>>,
    pub(super) orgs: BTreeMap<OrgKey, (String, Evidence)>,
    pub(super) people: BTreeMap<DocumentId, Evidence>,
}

impl<'n> Gather<'n> {
    pub(super) fn org_key(&self, text: &str) -> Option<OrgKey> {
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

    pub(super) fn org(&mut self, key: OrgKey) -> &mut Evidence {
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
    pub(super) fn contact(&mut self, id: DocumentId) -> Result<Option<&Entry>, WhoError> {
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
    pub(super) fn person(&mut self, text: &str) -> Result<Option<DocumentId>, WhoError> {
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

    pub(super) fn learning(&mut self, f: &Found) -> Result<(), WhoError> {
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

    pub(super) fn project(&mut self, f: &Found) -> Result<(), WhoError> {
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
    pub(super) fn event(&mut self, f: &Found, now: Timestamp) -> Result<(), WhoError> {
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
    pub(super) fn contact_match(&mut self, f: &Found) -> Result<(), WhoError> {
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
