//! An entry: metadata every document carries, plus a kind-specific body.
//!
//! In the automerge document both live side by side at the root: the
//! metadata keys (`kind`, `schema`, `owner`, `visibility`, `editors`,
//! `created`, `updated`, `status`) and the body's keys. Reconciling writes
//! only the keys this version knows and never deletes others, so fields
//! added by a newer version survive an edit made by an older one.

use std::fmt;
use std::str::FromStr;

use autosurgeon::{Hydrate, Reconcile};
use serde::{Deserialize, Serialize};

use crate::check::{Checker, Problems};
use crate::codec::Timestamp;
use crate::vocab::Vocabularies;
use crate::{
    Charter, Claim, Contact, DocumentId, Event, Idea, Learning, Message, OrgId, Organisation,
    Project, Response, Round, Visibility,
};

/// The schema version this code writes. Readers accept documents of any
/// version and keep fields they do not know.
pub const SCHEMA: u64 = 1;

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Learning,
    Project,
    Contact,
    Organisation,
    /// The community's charter (stewards, members, invites).
    Charter,
    /// A newcomer's claim to an invite.
    Join,
    /// A question on an entry, or a reply in its thread.
    Message,
    /// A gathering members can go to.
    Event,
    /// An idea put to the community, which members support.
    Idea,
    /// A stewards' time-boxed vote on ideas.
    Round,
    /// An organisation's answer to an event or idea (going, support).
    Response,
}

impl Kind {
    pub const ALL: [Kind; 11] = [
        Kind::Learning,
        Kind::Project,
        Kind::Contact,
        Kind::Organisation,
        Kind::Charter,
        Kind::Join,
        Kind::Message,
        Kind::Event,
        Kind::Idea,
        Kind::Round,
        Kind::Response,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Learning => "learning",
            Kind::Project => "project",
            Kind::Contact => "contact",
            Kind::Organisation => "organisation",
            Kind::Charter => "charter",
            Kind::Join => "join",
            Kind::Message => "message",
            Kind::Event => "event",
            Kind::Idea => "idea",
            Kind::Round => "round",
            Kind::Response => "response",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Not a kind of entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown kind {0:?}: expected learning, project, contact, event, idea, message, round, organisation or charter"
)]
pub struct UnknownKind(pub String);

impl FromStr for Kind {
    type Err = UnknownKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_lowercase().as_str() {
            "learning" => Ok(Kind::Learning),
            "project" => Ok(Kind::Project),
            "contact" => Ok(Kind::Contact),
            "organisation" | "organization" | "org" => Ok(Kind::Organisation),
            "charter" => Ok(Kind::Charter),
            "join" => Ok(Kind::Join),
            "message" | "question" | "reply" => Ok(Kind::Message),
            "event" => Ok(Kind::Event),
            "idea" => Ok(Kind::Idea),
            "round" => Ok(Kind::Round),
            "response" => Ok(Kind::Response),
            _ => Err(UnknownKind(s.to_string())),
        }
    }
}

crate::codec::string_codec!(Kind, "an entry kind");

/// Where an entry is in its life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Draft,
    #[default]
    Published,
    /// Withdrawn by its owner; kept, with its history, but no longer current.
    Retracted,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Draft => "draft",
            Status::Published => "published",
            Status::Retracted => "retracted",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_lowercase().as_str() {
            "draft" => Ok(Status::Draft),
            "published" => Ok(Status::Published),
            "retracted" => Ok(Status::Retracted),
            _ => Err(format!(
                "unknown status {s:?}: expected draft, published or retracted"
            )),
        }
    }
}

crate::codec::string_codec!(Status, "an entry status");

/// What every entry carries besides its body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Reconcile, Hydrate)]
pub struct Meta {
    pub kind: Kind,
    pub schema: u64,
    /// The organisation that owns the entry and decides who may edit it.
    pub owner: OrgId,
    pub visibility: Visibility,
    /// Other organisations the owner allowed to edit.
    #[autosurgeon(missing = "Default::default")]
    pub editors: Vec<OrgId>,
    pub created: Timestamp,
    pub updated: Timestamp,
    #[autosurgeon(missing = "Default::default")]
    pub status: Status,
}

/// What every document says about itself, read without knowing its kind:
/// enough to decide who may write it and who may see it. A node reads a
/// document of a kind a newer Convene made through this, so it can store
/// it, check every change to it and pass it on to those who may see it,
/// though it cannot show it.
#[derive(Debug, Clone, PartialEq, Hydrate)]
pub struct Header {
    /// The kind as written (perhaps one this version does not know).
    pub kind: String,
    pub owner: OrgId,
    pub visibility: Visibility,
    #[autosurgeon(missing = "Default::default")]
    pub editors: Vec<OrgId>,
    #[autosurgeon(missing = "Default::default")]
    pub created: Timestamp,
    #[autosurgeon(missing = "Default::default")]
    pub updated: Timestamp,
    #[autosurgeon(missing = "Default::default")]
    pub status: Status,
}

impl Header {
    /// The kind, if this version knows it.
    pub fn known_kind(&self) -> Option<Kind> {
        self.kind.parse().ok()
    }
}

/// The kind-specific part of an entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Body {
    Learning(Learning),
    Project(Project),
    Contact(Contact),
    Organisation(Organisation),
    Charter(Charter),
    Join(Claim),
    Message(Message),
    Event(Event),
    Idea(Idea),
    Round(Round),
    Response(Response),
}

/// A whole entry as read from its document.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub id: DocumentId,
    pub meta: Meta,
    pub body: Body,
}

/// A document that cannot be read or written as an entry.
#[derive(Debug, thiserror::Error)]
pub enum DocError {
    #[error("document is not a valid entry: {0}")]
    Hydrate(#[from] autosurgeon::HydrateError),
    #[error("cannot write entry into document: {0}")]
    Reconcile(#[from] autosurgeon::ReconcileError),
}

/// Input (a file, a `--set`) that does not describe a valid entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error("{0}")]
    Malformed(String),
    #[error("the input describes a {found} but a {expected} was expected")]
    KindMismatch { expected: Kind, found: String },
    #[error("unknown field {field:?} for a {kind} entry (fields: {known})")]
    UnknownField {
        field: String,
        kind: Kind,
        known: String,
    },
    #[error("{field}: {message}")]
    Field { field: String, message: String },
    #[error(transparent)]
    Invalid(#[from] Problems),
}

/// Text an entry contributes to the full-text index.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchText {
    pub title: String,
    pub summary: String,
    pub body: String,
    pub tags: String,
    pub names: String,
}

/// Metadata keys that may appear in input files (from `show --json`);
/// the node sets all but `visibility` and `status` itself.
const META_KEYS: [&str; 11] = [
    "id",
    "kind",
    "schema",
    "owner",
    "owner_name",
    "owner_standing",
    "history",
    "editors",
    "created",
    "updated",
    "status",
];

impl Body {
    pub fn kind(&self) -> Kind {
        match self {
            Body::Learning(_) => Kind::Learning,
            Body::Project(_) => Kind::Project,
            Body::Contact(_) => Kind::Contact,
            Body::Organisation(_) => Kind::Organisation,
            Body::Charter(_) => Kind::Charter,
            Body::Join(_) => Kind::Join,
            Body::Message(_) => Kind::Message,
            Body::Event(_) => Kind::Event,
            Body::Idea(_) => Kind::Idea,
            Body::Round(_) => Kind::Round,
            Body::Response(_) => Kind::Response,
        }
    }

    /// An empty body of `kind` (with defaults such as the licence).
    pub fn empty(kind: Kind) -> Self {
        match kind {
            Kind::Learning => Body::Learning(Learning::default()),
            Kind::Project => Body::Project(Project::default()),
            Kind::Contact => Body::Contact(Contact::default()),
            Kind::Organisation => Body::Organisation(Organisation::default()),
            Kind::Charter => Body::Charter(Charter::default()),
            Kind::Join => Body::Join(Claim::default()),
            Kind::Message => Body::Message(Message::default()),
            Kind::Event => Body::Event(Event::default()),
            Kind::Idea => Body::Idea(Idea::default()),
            Kind::Round => Body::Round(Round::default()),
            Kind::Response => Body::Response(Response::default()),
        }
    }

    /// The line that names the entry in lists: a title, or a name.
    pub fn title(&self) -> &str {
        match self {
            Body::Learning(l) => &l.title,
            Body::Project(p) => &p.title,
            Body::Contact(c) => &c.name,
            Body::Organisation(o) => &o.name,
            Body::Charter(c) => &c.name,
            Body::Join(j) => &j.org_name,
            Body::Message(m) => m.headline(),
            Body::Event(e) => &e.title,
            Body::Idea(i) => &i.title,
            Body::Round(r) => &r.title,
            Body::Response(r) => r.answer.as_str(),
        }
    }

    pub fn tags(&self) -> &[String] {
        match self {
            Body::Learning(l) => &l.tags,
            Body::Project(p) => &p.tags,
            Body::Contact(c) => &c.interests,
            Body::Event(e) => &e.tags,
            Body::Idea(i) => &i.tags,
            Body::Organisation(_)
            | Body::Charter(_)
            | Body::Join(_)
            | Body::Message(_)
            | Body::Round(_)
            | Body::Response(_) => &[],
        }
    }

    pub fn priorities(&self) -> &[String] {
        match self {
            Body::Learning(l) => &l.priorities,
            Body::Project(p) => &p.priorities,
            Body::Event(e) => &e.priorities,
            Body::Idea(i) => &i.priorities,
            _ => &[],
        }
    }

    pub fn methods(&self) -> &[String] {
        match self {
            Body::Learning(l) => &l.methods,
            Body::Project(p) => &p.methods,
            _ => &[],
        }
    }

    /// The files a learning entry or project uses (none for other kinds).
    pub fn attachments(&self) -> &[crate::Attachment] {
        match self {
            Body::Learning(l) => &l.attachments,
            Body::Project(p) => &p.attachments,
            _ => &[],
        }
    }

    pub fn place(&self) -> &str {
        match self {
            Body::Learning(l) => &l.place,
            Body::Project(p) => &p.place,
            Body::Contact(c) => &c.place,
            Body::Organisation(o) => &o.place,
            Body::Event(e) => &e.place,
            Body::Charter(_)
            | Body::Join(_)
            | Body::Message(_)
            | Body::Idea(_)
            | Body::Round(_)
            | Body::Response(_) => "",
        }
    }

    /// Normalises (labels to slugs, trimming) and validates.
    pub fn check(&mut self, vocab: &Vocabularies) -> Result<(), Problems> {
        let mut c = Checker::new();
        match self {
            Body::Learning(l) => l.check(vocab, &mut c),
            Body::Project(p) => p.check(vocab, &mut c),
            Body::Contact(x) => x.check(vocab, &mut c),
            Body::Organisation(o) => o.check(vocab, &mut c),
            Body::Charter(x) => x.check(&mut c),
            Body::Join(x) => x.check(&mut c),
            Body::Message(x) => x.check(&mut c),
            Body::Event(x) => x.check(vocab, &mut c),
            Body::Idea(x) => x.check(vocab, &mut c),
            Body::Round(x) => x.check(&mut c),
            Body::Response(x) => x.check(&mut c),
        }
        c.finish()
    }

    /// What full-text search indexes for this entry. Vocabulary values are
    /// indexed by label, so people find them with their own words.
    pub fn search_text(&self, vocab: &Vocabularies) -> SearchText {
        let labels = |v: &'_ crate::Vocabulary, slugs: &[String]| -> String {
            slugs
                .iter()
                .map(|s| v.label(s))
                .collect::<Vec<_>>()
                .join(" ")
        };
        fn join<'a>(parts: impl IntoIterator<Item = &'a str>) -> String {
            parts
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        }
        match self {
            Body::Learning(l) => SearchText {
                title: l.title.clone(),
                summary: join([l.summary.as_str(), l.impact.as_str()]),
                body: join([
                    l.body.as_str(),
                    l.evidence.as_str(),
                    &l.setting,
                    &l.population,
                    &l.place,
                ]),
                tags: join([
                    l.tags.join(" ").as_str(),
                    &labels(&vocab.priorities, &l.priorities),
                    &labels(&vocab.methods, &l.methods),
                    &labels(&vocab.themes, &l.themes),
                ]),
                names: join(l.authors.iter().chain(&l.organisations).map(String::as_str)),
            },
            Body::Project(p) => SearchText {
                title: p.title.clone(),
                summary: join([p.summary.as_str(), &p.aim]),
                body: join(
                    [
                        p.problem.as_str(),
                        p.evidence.as_str(),
                        p.lived_experience.as_str(),
                        &p.place,
                    ]
                    .into_iter()
                    .chain(p.measures.iter().map(|m| m.name.as_str()))
                    .chain(p.pdsa.iter().map(|c| c.change_idea.as_str())),
                ),
                tags: join([
                    p.tags.join(" ").as_str(),
                    &labels(&vocab.priorities, &p.priorities),
                    &labels(&vocab.methods, &p.methods),
                    &labels(&vocab.themes, &p.themes),
                ]),
                names: join(
                    p.partners
                        .iter()
                        .map(String::as_str)
                        .chain(p.team.iter().map(|t| t.name.as_str())),
                ),
            },
            Body::Contact(c) => SearchText {
                title: c.name.clone(),
                summary: join([c.role.as_str(), &c.place]),
                body: join(c.interests.iter().map(String::as_str)),
                tags: join([
                    labels(&vocab.skills, &c.expertise).as_str(),
                    &labels(&vocab.open_to, &c.open_to),
                ]),
                names: join(
                    std::iter::once(c.name.as_str())
                        .chain(c.organisations.iter().map(String::as_str)),
                ),
            },
            Body::Organisation(o) => SearchText {
                title: o.name.clone(),
                summary: join([vocab.sectors.label(&o.sector), &o.place]),
                body: o.website.clone(),
                tags: String::new(),
                names: o.name.clone(),
            },
            Body::Charter(c) => SearchText {
                title: c.name.clone(),
                ..SearchText::default()
            },
            Body::Message(m) => SearchText {
                title: m.headline().to_string(),
                body: m.text.as_str().to_string(),
                ..SearchText::default()
            },
            Body::Event(e) => SearchText {
                title: e.title.clone(),
                summary: join([e.summary.as_str(), &e.place]),
                body: e.organiser.clone(),
                tags: join([
                    e.tags.join(" ").as_str(),
                    &labels(&vocab.priorities, &e.priorities),
                ]),
                names: e.organiser.clone(),
            },
            Body::Idea(i) => SearchText {
                title: i.title.clone(),
                summary: i.summary.as_str().to_string(),
                body: i.problem.as_str().to_string(),
                tags: join([
                    i.tags.join(" ").as_str(),
                    &labels(&vocab.priorities, &i.priorities),
                ]),
                names: String::new(),
            },
            Body::Round(r) => SearchText {
                title: r.title.clone(),
                summary: r.summary.as_str().to_string(),
                ..SearchText::default()
            },
            Body::Join(_) | Body::Response(_) => SearchText::default(),
        }
    }

    /// The body as JSON: its fields, in the shape `show --json` prints.
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("entry bodies always serialise")
    }

    fn from_value(kind: Kind, value: serde_json::Value) -> Result<Self, InputError> {
        fn de<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> Result<T, String> {
            serde_json::from_value(v).map_err(|e| e.to_string())
        }
        let known = || {
            Body::empty(kind)
                .to_value()
                .as_object()
                .map(|m| m.keys().cloned().collect::<Vec<_>>().join(", "))
                .unwrap_or_default()
        };
        if let Some(obj) = value.as_object()
            && let Some(field) = obj.keys().find(|k| {
                !Body::empty(kind)
                    .to_value()
                    .as_object()
                    .is_some_and(|m| m.contains_key(*k))
            })
        {
            return Err(InputError::UnknownField {
                field: field.clone(),
                kind,
                known: known(),
            });
        }
        let body = match kind {
            Kind::Learning => de(value).map(Body::Learning),
            Kind::Project => de(value).map(Body::Project),
            Kind::Contact => de(value).map(Body::Contact),
            Kind::Organisation => de(value).map(Body::Organisation),
            Kind::Charter => de(value).map(Body::Charter),
            Kind::Join => de(value).map(Body::Join),
            Kind::Message => de(value).map(Body::Message),
            Kind::Event => de(value).map(Body::Event),
            Kind::Idea => de(value).map(Body::Idea),
            Kind::Round => de(value).map(Body::Round),
            Kind::Response => de(value).map(Body::Response),
        };
        body.map_err(InputError::Malformed)
    }

    /// Sets one field from a command-line `FIELD=VALUE`.
    ///
    /// `FIELD` is a path (`title`, `measures[0].unit`). The value is read as
    /// the field's current type: text stays text (`--set title=2024` is a
    /// title), a list takes comma-separated items unless the value is a JSON
    /// array, and anything else is read as JSON when it parses as JSON.
    pub fn set_field(&mut self, path: &str, raw: &str) -> Result<(), InputError> {
        let kind = self.kind();
        let mut root = self.to_value();
        let segments = parse_path(path)?;
        let top = match &segments[0] {
            Segment::Key(k) => k.clone(),
            Segment::Index(_) => return Err(field_err(path, "a field name must come first")),
        };
        if !root.as_object().is_some_and(|m| m.contains_key(&top)) {
            return Err(InputError::UnknownField {
                field: top,
                kind,
                known: root
                    .as_object()
                    .map(|m| m.keys().cloned().collect::<Vec<_>>().join(", "))
                    .unwrap_or_default(),
            });
        }
        let mut slot = &mut root;
        for seg in &segments {
            slot = match (seg, slot) {
                (Segment::Key(k), serde_json::Value::Object(m)) => m
                    .get_mut(k)
                    .ok_or_else(|| field_err(path, format!("no field {k:?} here")))?,
                (Segment::Index(i), serde_json::Value::Array(a)) => {
                    let len = a.len();
                    a.get_mut(*i).ok_or_else(|| {
                        field_err(
                            path,
                            format!("index {i} is out of range (the list has {len} items)"),
                        )
                    })?
                }
                (Segment::Key(k), _) => {
                    return Err(field_err(path, format!("{k:?} is not inside an object")));
                }
                (Segment::Index(_), _) => return Err(field_err(path, "is not a list")),
            };
        }
        *slot = coerce(slot, raw);
        *self = Body::from_value(kind, root).map_err(|e| match e {
            InputError::Malformed(m) => field_err(path, m),
            other => other,
        })?;
        Ok(())
    }
}

fn field_err(field: &str, message: impl Into<String>) -> InputError {
    InputError::Field {
        field: field.to_string(),
        message: message.into(),
    }
}

enum Segment {
    Key(String),
    Index(usize),
}

fn parse_path(path: &str) -> Result<Vec<Segment>, InputError> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (name, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if name.is_empty() && out.is_empty() {
            return Err(field_err(path, "empty field name"));
        }
        if !name.is_empty() {
            out.push(Segment::Key(name.to_string()));
        }
        while let Some(stripped) = rest.strip_prefix('[') {
            let end = stripped
                .find(']')
                .ok_or_else(|| field_err(path, "missing ]"))?;
            let idx = stripped[..end].parse().map_err(|_| {
                field_err(path, format!("{:?} is not a list index", &stripped[..end]))
            })?;
            out.push(Segment::Index(idx));
            rest = &stripped[end + 1..];
        }
        if !rest.is_empty() {
            return Err(field_err(path, "unexpected text after ]"));
        }
    }
    Ok(out)
}

fn coerce(current: &serde_json::Value, raw: &str) -> serde_json::Value {
    use serde_json::Value;
    match current {
        Value::String(_) => Value::String(raw.to_string()),
        Value::Array(_) if !raw.trim_start().starts_with('[') => Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Value::String(s.to_string()))
                .collect(),
        ),
        _ => serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_string())),
    }
}

/// A body and the metadata a person may choose, read from an input file.
#[derive(Debug, Clone, PartialEq)]
pub struct EntryInput {
    pub body: Body,
    pub visibility: Option<Visibility>,
    pub status: Option<Status>,
}

impl EntryInput {
    /// Reads input in the shape `show --json` prints. Metadata the node
    /// controls (id, owner, times) is ignored; `kind`, when present, must
    /// match.
    pub fn from_json(kind: Kind, value: serde_json::Value) -> Result<Self, InputError> {
        let serde_json::Value::Object(mut map) = value else {
            return Err(InputError::Malformed(
                "expected an object (a table of fields)".into(),
            ));
        };
        if let Some(found) = map.get("kind") {
            let found_kind = found.as_str().and_then(|s| s.parse::<Kind>().ok());
            if found_kind != Some(kind) {
                return Err(InputError::KindMismatch {
                    expected: kind,
                    found: found
                        .as_str()
                        .map_or_else(|| found.to_string(), str::to_string),
                });
            }
        }
        let visibility = match map.remove("visibility") {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(s)) => Some(
                s.parse()
                    .map_err(|e: crate::VisibilityError| field_err("visibility", e.to_string()))?,
            ),
            Some(_) => return Err(field_err("visibility", "must be a string")),
        };
        let status = match map.get("status") {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(s)) => {
                Some(s.parse().map_err(|e| field_err("status", e))?)
            }
            Some(_) => return Err(field_err("status", "must be a string")),
        };
        for k in META_KEYS {
            map.remove(k);
        }
        let body = Body::from_value(kind, serde_json::Value::Object(map))?;
        Ok(Self {
            body,
            visibility,
            status,
        })
    }
}

impl Entry {
    /// Reads an entry from its automerge document.
    pub fn from_doc<D: autosurgeon::ReadDoc>(id: DocumentId, doc: &D) -> Result<Self, DocError> {
        // The metadata and the body are both read from the root map.
        Self::from_root(id, &crate::read::RootOnce::new(doc))
    }

    /// [`Entry::from_doc`] for a reader that answers the root map's keys
    /// without seeking them in the document: a [`crate::RootOnce`] whose
    /// root map was read already (to check who may write it, say), which is
    /// not read again, or another reading of the document's state.
    pub fn from_root<D: autosurgeon::ReadDoc>(id: DocumentId, doc: &D) -> Result<Self, DocError> {
        let meta: Meta = autosurgeon::hydrate(doc)?;
        let body = match meta.kind {
            Kind::Learning => Body::Learning(autosurgeon::hydrate(doc)?),
            Kind::Project => Body::Project(autosurgeon::hydrate(doc)?),
            Kind::Contact => Body::Contact(autosurgeon::hydrate(doc)?),
            Kind::Organisation => Body::Organisation(autosurgeon::hydrate(doc)?),
            Kind::Charter => Body::Charter(autosurgeon::hydrate(doc)?),
            Kind::Join => Body::Join(autosurgeon::hydrate(doc)?),
            Kind::Message => Body::Message(autosurgeon::hydrate(doc)?),
            Kind::Event => Body::Event(autosurgeon::hydrate(doc)?),
            Kind::Idea => Body::Idea(autosurgeon::hydrate(doc)?),
            Kind::Round => Body::Round(autosurgeon::hydrate(doc)?),
            Kind::Response => Body::Response(autosurgeon::hydrate(doc)?),
        };
        Ok(Self { id, meta, body })
    }

    /// Writes the entry into a document (inside an automerge transaction):
    /// only the keys that differ are changed.
    /// Long texts are rewritten by a diff whose cost is bounded
    /// ([`crate::textdiff`]).
    pub fn write<D: autosurgeon::Doc>(&self, doc: &mut D) -> Result<(), DocError> {
        let doc = &mut crate::textdiff::Bounded(doc);
        autosurgeon::reconcile(doc, &self.meta)?;
        match &self.body {
            Body::Learning(b) => autosurgeon::reconcile(doc, b)?,
            Body::Project(b) => autosurgeon::reconcile(doc, b)?,
            Body::Contact(b) => autosurgeon::reconcile(doc, b)?,
            Body::Organisation(b) => autosurgeon::reconcile(doc, b)?,
            Body::Charter(b) => autosurgeon::reconcile(doc, b)?,
            Body::Join(b) => autosurgeon::reconcile(doc, b)?,
            Body::Message(b) => autosurgeon::reconcile(doc, b)?,
            Body::Event(b) => autosurgeon::reconcile(doc, b)?,
            Body::Idea(b) => autosurgeon::reconcile(doc, b)?,
            Body::Round(b) => autosurgeon::reconcile(doc, b)?,
            Body::Response(b) => autosurgeon::reconcile(doc, b)?,
        }
        Ok(())
    }

    /// The entry as one JSON object: `id`, the metadata, then the body's
    /// fields, with vocabulary values as slugs. This is `show --json` and
    /// what `--from` reads back.
    pub fn to_json(&self) -> serde_json::Value {
        let mut map = serde_json::Map::new();
        map.insert("id".into(), serde_json::Value::String(self.id.to_string()));
        if let serde_json::Value::Object(meta) =
            serde_json::to_value(&self.meta).expect("metadata always serialises")
        {
            map.extend(meta);
        }
        if let serde_json::Value::Object(body) = self.body.to_value() {
            map.extend(body);
        }
        serde_json::Value::Object(map)
    }
}
