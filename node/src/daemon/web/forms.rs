//! Publish and edit forms. Each kind has one list of fields; the same list
//! draws the form, reads what was sent, and works out which fields an edit
//! changed, so a form and its handler cannot disagree.
//!
//! A form that fails validation comes back with what was typed and the
//! problems, never half-saved: writes go through [`Node::publish`] and
//! [`Node::edit`], one signed change each.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use convene_model::{
    Body, Channel, Consent, DataPoint, Entry, EntryInput, InputError, Kind, Measure, Problem,
    Visibility, Vocabularies, Vocabulary,
};
use maud::{Markup, html};
use serde_json::{Map, Value, json};

use super::pages::{html_page, humanise, layout};
use super::{AppState, Failure};
use crate::NodeError;
use crate::node::{Edit, Node};

/// A problem with what a form sent, for the field `field` of the form
/// (`""` when it belongs to no one field).
pub(crate) fn problem(field: &str, message: impl Into<String>) -> Problem {
    Problem {
        field: field.to_string(),
        message: message.into(),
    }
}

/// Every problem a failed write names, each with its field path as the
/// model's checker gives it (`measures[0].data[2].date`).
pub(crate) fn problems_of(e: NodeError) -> Vec<Problem> {
    match e {
        NodeError::Invalid(p) | NodeError::Input(InputError::Invalid(p)) => p.0,
        NodeError::Input(InputError::Field { field, message }) => vec![problem(&field, message)],
        NodeError::Input(InputError::UnknownField { field, .. }) => {
            vec![problem(&field, "is not a field of this kind of entry")]
        }
        other => vec![problem("", other.to_string())],
    }
}

/// Whether a failed write is a refusal (not allowed, gone) rather than a
/// problem with what was typed: it gets its own status and page.
pub(crate) fn is_refusal(e: &NodeError) -> bool {
    matches!(
        e,
        NodeError::NotOwner { .. }
            | NodeError::UnknownId(_)
            | NodeError::Erased(_)
            | NodeError::Retracted(_)
    )
}

/// The form field a problem's path belongs to: its first segment, with a
/// project's first measure and a contact's channels mapped to the inputs
/// that hold them.
pub(crate) fn form_field(path: &str) -> String {
    let top = path.split(['.', '[']).next().unwrap_or_default();
    let rest = path[top.len()..]
        .trim_start_matches(|c: char| c == '[' || c.is_ascii_digit() || c == ']' || c == '.');
    match top {
        "measures" => match rest.split(['.', '[']).next().unwrap_or_default() {
            "data" => "measure_data".into(),
            "measure_type" => "measure_type".into(),
            "unit" => "measure_unit".into(),
            "target" => "measure_target".into(),
            _ => "measure_name".into(),
        },
        "channels" => "email".into(),
        other => other.to_string(),
    }
}

/// The `id` of the input for the form field `name`: `f-title`,
/// `f-learning_type`; the extra inputs of a new project and a contact
/// (`measure_name`, `consent_by`) are `f-measure-name`, `f-consent-by`.
pub(crate) fn input_id(name: &str) -> String {
    if name.starts_with("measure_") || name.starts_with("consent_") {
        format!("f-{}", name.replace('_', "-"))
    } else {
        format!("f-{name}")
    }
}

/// The messages of `problems` that belong to the form field `name`.
pub(crate) fn messages_for<'a>(problems: &'a [Problem], name: &str) -> Vec<&'a str> {
    problems
        .iter()
        .filter(|p| form_field(&p.field) == name)
        .map(|p| p.message.as_str())
        .collect()
}

/// The messages beside a field, linked to it by `id`-error.
pub(crate) fn field_errors(id: &str, messages: &[&str]) -> Markup {
    html! {
        @if !messages.is_empty() {
            p class="field-error" id=(format!("{id}-error")) {
                @for (i, m) in messages.iter().enumerate() {
                    @if i > 0 { br; }
                    span class="visually-hidden" { "Error: " } (m)
                }
            }
        }
    }
}

/// `problems` in the order their fields come in the form: the entry's
/// fields, then visibility, then the rest (a first measure, consent).
fn in_form_order(problems: &[Problem], list: &[Field]) -> Vec<Problem> {
    let mut sorted = problems.to_vec();
    sorted.sort_by_key(|p| {
        let field = form_field(&p.field);
        list.iter()
            .position(|f| f.name == field)
            .unwrap_or(list.len() + usize::from(field != "visibility"))
    });
    sorted
}

/// The box at the top of a form that failed: every problem, each linking
/// to its field.
pub(crate) fn problem_summary(problems: &[Problem], label_of: impl Fn(&str) -> String) -> Markup {
    html! {
        @if !problems.is_empty() {
            div class="error" role="alert" id="problems" tabindex="-1" {
                h2 { "Please check " (problems.len()) @if problems.len() == 1 { " thing" } @else { " things" } }
                ul {
                    @for p in problems {
                        @let field = form_field(&p.field);
                        li {
                            @if field.is_empty() {
                                (p.message)
                            } @else {
                                a href=(format!("#{}", input_id(&field))) { (label_of(&field)) } ": " (p.message)
                                @if p.field != field { " (" (p.field) ")" }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The vocabulary a field's values come from, if any.
pub(crate) fn vocab_for<'a>(v: &'a Vocabularies, field: &str) -> Option<&'a Vocabulary> {
    Some(match field {
        "priorities" => &v.priorities,
        "goals" => &v.goals,
        "themes" => &v.themes,
        "sector" => &v.sectors,
        "level" => &v.levels,
        "stage" => &v.stages,
        "methods" => &v.methods,
        "expertise" => &v.skills,
        "learning_type" => &v.learning_types,
        "outcome" => &v.outcomes,
        "sources" => &v.sources,
        "measure_type" => &v.measure_types,
        "act" => &v.pdsa_acts,
        "open_to" => &v.open_to,
        "channel" => &v.channels,
        _ => return None,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Input {
    /// One line.
    Text,
    /// Paragraphs.
    Area,
    /// One value of the field's vocabulary, or none.
    Choice,
    /// Any values of the field's vocabulary (checkboxes).
    Multi,
    /// Free items separated by commas.
    List,
    /// Yes or no.
    Check,
    /// A wall-clock date and time (`datetime-local`), read in the form's
    /// time zone (an event's `time_zone`).
    When,
    /// A whole number of at least 1, or nothing.
    Count,
}

#[derive(Debug)]
struct Field {
    name: &'static str,
    input: Input,
    required: bool,
    hint: &'static str,
}

const fn f(name: &'static str, input: Input, hint: &'static str) -> Field {
    Field {
        name,
        input,
        required: false,
        hint,
    }
}

const fn required(name: &'static str, input: Input, hint: &'static str) -> Field {
    Field {
        name,
        input,
        required: true,
        hint,
    }
}

use Input::*;

const TITLE: Field = required("title", Text, "");
const SUMMARY: Field = f(
    "summary",
    Area,
    "One or two sentences, shown in lists and search results.",
);
const PLACE: Field = f("place", Text, "For example Gateshead or North Cumbria.");
const LEVEL: Field = f("level", Choice, "");
const PRIORITIES: Field = f("priorities", Multi, "");
const METHODS: Field = f("methods", Multi, "");
const THEMES: Field = f("themes", Multi, "");
const TAGS: Field = f("tags", List, "Separate with commas.");
const EVIDENCE: Field = f(
    "evidence",
    Area,
    "How you know: data, evaluation, references.",
);

const LEARNING: &[Field] = &[
    TITLE,
    SUMMARY,
    f(
        "body",
        Area,
        "The full story: what you did, what happened, what you would do again.",
    ),
    f("learning_type", Choice, ""),
    f("outcome", Choice, ""),
    f(
        "setting",
        Text,
        "Where it happened: a ward, a practice, a community centre.",
    ),
    f("population", Text, "Who it was for."),
    PLACE,
    LEVEL,
    f(
        "impact",
        Text,
        "Measured impact in words, e.g. 44 per cent fewer missed calls.",
    ),
    EVIDENCE,
    PRIORITIES,
    METHODS,
    THEMES,
    TAGS,
    f(
        "organisations",
        List,
        "Organisations involved; separate with commas.",
    ),
];

const PROJECT: &[Field] = &[
    TITLE,
    SUMMARY,
    f(
        "problem",
        Area,
        "The problem you are working on, and for whom.",
    ),
    f("aim", Text, "What, by how much, by when."),
    f("stage", Choice, ""),
    PLACE,
    LEVEL,
    PRIORITIES,
    METHODS,
    THEMES,
    f(
        "partners",
        List,
        "Partner organisations; separate with commas.",
    ),
    TAGS,
    f(
        "lived_experience",
        Area,
        "How people with lived experience shaped the work.",
    ),
    EVIDENCE,
];

const CONTACT: &[Field] = &[
    required("name", Text, ""),
    f("pronouns", Text, ""),
    f("role", Text, "For example Quality improvement lead."),
    f("organisations", List, "Separate with commas."),
    f("sector", Choice, ""),
    f("place", Text, ""),
    f("expertise", Multi, ""),
    f("interests", List, "Separate with commas."),
    f("open_to", Multi, ""),
    f(
        "lived_experience_partner",
        Check,
        "A lived experience partner",
    ),
];

const EVENT: &[Field] = &[
    TITLE,
    SUMMARY,
    required(
        "starts",
        When,
        "Date and time it starts, in the time zone below.",
    ),
    required("ends", When, "Date and time it ends."),
    f(
        "time_zone",
        Text,
        "An IANA time zone name, for example Europe/London.",
    ),
    f(
        "place",
        Text,
        "Venue and town; leave empty for an online event.",
    ),
    f(
        "link",
        Text,
        "Where to join online or read more (https://…).",
    ),
    f(
        "organiser",
        Text,
        "Who runs it, if not your organisation alone.",
    ),
    f(
        "capacity",
        Count,
        "How many organisations can come; leave empty for no limit.",
    ),
    PRIORITIES,
    TAGS,
];

const IDEA: &[Field] = &[
    TITLE,
    required(
        "summary",
        Area,
        "The idea in one or two sentences, shown in the ranking.",
    ),
    f("problem", Area, "The problem it answers, and for whom."),
    PRIORITIES,
    TAGS,
];

fn fields(kind: Kind) -> Option<&'static [Field]> {
    match kind {
        Kind::Learning => Some(LEARNING),
        Kind::Project => Some(PROJECT),
        Kind::Contact => Some(CONTACT),
        Kind::Event => Some(EVENT),
        Kind::Idea => Some(IDEA),
        _ => None,
    }
}

fn label(field: &Field) -> String {
    match field.name {
        "learning_type" => "Type of learning".into(),
        "open_to" => "Open to".into(),
        "lived_experience_partner" => "Lived experience".into(),
        "lived_experience" => "Lived experience".into(),
        "link" => "Link".into(),
        "capacity" => "Places".into(),
        other => humanise(other),
    }
}

/// The form's name/value pairs, in order (repeated names for checkboxes).
#[derive(Debug, Default)]
struct Sent(Vec<(String, String)>);

impl Sent {
    fn parse(body: &[u8]) -> Self {
        Self(
            form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.replace("\r\n", "\n")))
                .collect(),
        )
    }

    fn one(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, v)| k == name && !v.trim().is_empty())
            .map(|(_, v)| v.trim().to_string())
            .collect()
    }

    /// The value of `field` as the entry's JSON holds it.
    fn value(&self, field: &Field) -> Value {
        let one = self.one(field.name);
        match field.input {
            Text => Value::String(one.trim().to_string()),
            Area => Value::String(one.trim_end().to_string()),
            Choice if one.trim().is_empty() => Value::Null,
            Choice => Value::String(one.trim().to_string()),
            Multi => json!(self.all(field.name)),
            List => json!(
                one.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .collect::<Vec<_>>()
            ),
            Check => Value::Bool(matches!(one, "on" | "true" | "yes")),
            // Read as typed; `typed_values` turns them into the model's.
            When | Count => Value::String(one.trim().to_string()),
        }
    }

    fn body(&self, list: &[Field]) -> Map<String, Value> {
        list.iter()
            .map(|f| (f.name.to_string(), self.value(f)))
            .collect()
    }
}

fn input(field: &Field, value: &Value, vocab: &Vocabularies, problems: &[Problem]) -> Markup {
    let id = format!("f-{}", field.name);
    let hint_id = format!("{id}-hint");
    let errors = messages_for(problems, field.name);
    let invalid = !errors.is_empty();
    let described = [
        (!field.hint.is_empty()).then_some(hint_id.clone()),
        invalid.then(|| format!("{id}-error")),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" ");
    let described = (!described.is_empty()).then_some(described);
    let text = value.as_str().unwrap_or("");
    let hint = html! {
        @if !field.hint.is_empty() && field.input != Check {
            p class="hint" id=(hint_id) { (field.hint) }
        }
        (field_errors(&id, &errors))
    };
    let label_text = html! {
        (label(field))
        @if field.required { " " span class="required" { "(required)" } }
    };
    let class = if invalid { "field invalid" } else { "field" };
    match field.input {
        Text => html! {
            div class=(class) {
                label for=(id) { (label_text) }
                (hint)
                input id=(id) type="text" name=(field.name) value=(text) required[field.required]
                    aria-invalid=[invalid.then_some("true")] aria-describedby=[described];
            }
        },
        Area => html! {
            div class=(class) {
                label for=(id) { (label_text) }
                (hint)
                textarea id=(id) name=(field.name) rows=(if field.name == "body" { 10 } else { 4 })
                    aria-invalid=[invalid.then_some("true")] aria-describedby=[described] { (text) }
            }
        },
        Choice => {
            let v = vocab_for(vocab, field.name).expect("choice fields have a vocabulary");
            html! {
                div class=(class) {
                    label for=(id) { (label_text) }
                    (hint)
                    select id=(id) name=(field.name) aria-invalid=[invalid.then_some("true")] aria-describedby=[described] {
                        option value="" { "Not set" }
                        @for t in &v.terms {
                            option value=(t.slug) selected[text == t.slug] { (t.label) }
                        }
                    }
                }
            }
        }
        Multi => {
            let v = vocab_for(vocab, field.name).expect("multi fields have a vocabulary");
            let chosen: Vec<&str> = value
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            html! {
                fieldset class=(format!("{class} choices")) id=(id) {
                    legend { (label_text) }
                    (field_errors(&id, &errors))
                    @for (i, t) in v.terms.iter().enumerate() {
                        div class="choice" {
                            input type="checkbox" id=(format!("{id}-{i}")) name=(field.name) value=(t.slug)
                                checked[chosen.contains(&t.slug.as_str())];
                            label for=(format!("{id}-{i}")) { (t.label) }
                        }
                    }
                }
            }
        }
        List => {
            let joined = value
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default();
            html! {
                div class=(class) {
                    label for=(id) { (label_text) }
                    (hint)
                    input id=(id) type="text" name=(field.name) value=(joined)
                        aria-invalid=[invalid.then_some("true")] aria-describedby=[described];
                }
            }
        }
        When | Count => html! {
            div class=(class) {
                label for=(id) { (label_text) }
                (hint)
                @if field.input == When {
                    input id=(id) type="datetime-local" name=(field.name) value=(text) required[field.required]
                        aria-invalid=[invalid.then_some("true")] aria-describedby=[described];
                } @else {
                    input id=(id) type="number" min="1" step="1" inputmode="numeric" name=(field.name) value=(text)
                        aria-invalid=[invalid.then_some("true")] aria-describedby=[described];
                }
            }
        },
        Check => html! {
            div class=(format!("{class} choice")) {
                (field_errors(&id, &errors))
                input type="checkbox" id=(id) name=(field.name) checked[value.as_bool() == Some(true)];
                label for=(id) { (field.hint) }
            }
        },
    }
}

fn visibility_select(current: &str) -> Markup {
    // A list of organisations (set with the CLI or API) is offered as it is.
    let listed = current != "community" && current != "organisation";
    html! {
        div class="field" {
            label for="f-visibility" { "Who can see it" }
            select id="f-visibility" name="visibility" {
                option value="community" selected[current == "community"] { "Everyone in the community" }
                option value="organisation" selected[current == "organisation"] { "Our organisation only" }
                @if listed {
                    option value=(current) selected { "Only the organisations chosen before" }
                }
            }
        }
    }
}

fn title_of(kind: Kind) -> &'static str {
    match kind {
        Kind::Learning => "Share learning",
        Kind::Project => "New improvement project",
        Kind::Event => "New event",
        Kind::Idea => "Put forward an idea",
        _ => "New contact",
    }
}

fn parse_kind(kind: &str) -> Result<Kind, Failure> {
    let kind: Kind = kind
        .parse()
        .map_err(|e: convene_model::entry::UnknownKind| Failure::bad_request(e.to_string()))?;
    fields(kind)
        .map(|_| kind)
        .ok_or_else(|| Failure::bad_request(format!("a {kind} cannot be published here")))
}

/// Extra fields of a new entry that are not plain body fields.
fn extras(kind: Kind, sent: &Sent, vocab: &Vocabularies, problems: &[Problem]) -> Markup {
    let err = |name: &str| field_errors(&input_id(name), &messages_for(problems, name));
    let class = |name: &str| {
        if messages_for(problems, name).is_empty() {
            "field"
        } else {
            "field invalid"
        }
    };
    match kind {
        Kind::Project => html! {
            fieldset class="group" {
                legend { "A first measure (optional)" }
                p class="hint" { "Aggregate figures only, never data about a patient or person." }
                div class=(class("measure_name")) {
                    label for="f-measure-name" { "Measure name" }
                    (err("measure_name"))
                    input id="f-measure-name" type="text" name="measure_name" value=(sent.one("measure_name"));
                }
                div class=(class("measure_type")) {
                    label for="f-measure-type" { "Type of measure" }
                    (err("measure_type"))
                    select id="f-measure-type" name="measure_type" {
                        option value="" { "Not set" }
                        @for t in &vocab.measure_types.terms {
                            option value=(t.slug) selected[sent.one("measure_type") == t.slug] { (t.label) }
                        }
                    }
                }
                div class=(class("measure_unit")) {
                    label for="f-measure-unit" { "Unit" }
                    (err("measure_unit"))
                    input id="f-measure-unit" type="text" name="measure_unit" value=(sent.one("measure_unit"));
                }
                div class=(class("measure_target")) {
                    label for="f-measure-target" { "Target" }
                    (err("measure_target"))
                    input id="f-measure-target" type="text" inputmode="decimal" name="measure_target" value=(sent.one("measure_target"));
                }
                (improvement_select("f-measure-improvement", sent.one("measure_improvement")))
                div class=(class("measure_data")) {
                    label for="f-measure-data" { "Values" }
                    p class="hint" id="f-measure-data-hint" { "One per line: date, value. For example 2026-01-05, 42, or 2026-01-05, 12/40 for 12 out of 40" }
                    (err("measure_data"))
                    textarea id="f-measure-data" name="measure_data" rows="6" aria-describedby="f-measure-data-hint" { (sent.one("measure_data")) }
                }
            }
        },
        Kind::Contact => html! {
            (reach(sent, problems))
            fieldset class="group" {
                legend { "Consent" }
                p class="hint" { "A contact is personal data. Ask the person whether they agree to be listed, and to whom." }
                div class=(format!("{} choice", class("consent"))) {
                    (err("consent"))
                    input type="checkbox" id="f-consent" name="consent" required checked[sent.one("consent") == "on"];
                    label for="f-consent" { "They agreed to be listed " span class="required" { "(required)" } }
                }
                div class="field" {
                    label for="f-consent-by" { "Who agreed, if not the person themselves" }
                    input id="f-consent-by" type="text" name="consent_by" value=(sent.one("consent_by"));
                }
            }
        },
        _ => html! {},
    }
}

fn form_page(
    title: &str,
    action: &str,
    kind: Kind,
    values: &Map<String, Value>,
    visibility: &str,
    extra: Markup,
    problems: &[Problem],
) -> Markup {
    let vocab = Vocabularies::default();
    let list = fields(kind).unwrap_or_default();
    let label_of = |name: &str| match name {
        "measure_name" => "Measure name".to_string(),
        "measure_data" => "Values".to_string(),
        "measure_target" => "Target".to_string(),
        "measure_unit" => "Unit".to_string(),
        "measure_type" => "Type of measure".to_string(),
        other => list
            .iter()
            .find(|f| f.name == other)
            .map_or_else(|| humanise(other), label),
    };
    html! {
        h1 { (title) }
        (problem_summary(&in_form_order(problems, list), label_of))
        p class="hint" { "Fields marked (required) must be filled in; the rest are optional." }
        form method="post" action=(action) class="entry-form" novalidate[!problems.is_empty()] {
            @for field in list {
                (input(field, values.get(field.name).unwrap_or(&Value::Null), &vocab, problems))
            }
            (visibility_select(visibility))
            (extra)
            div class="actions" { button type="submit" { "Save" } " " a href="/" { "Cancel" } }
        }
    }
}

pub(crate) async fn new_page(
    State(state): State<AppState>,
    Path(kind): Path<String>,
) -> Result<Response, Failure> {
    let kind = parse_kind(&kind)?;
    let vocab = Vocabularies::default();
    let sent = Sent::default();
    let rounds = rounds_for(&state, kind).await?;
    let mut values = Map::new();
    if kind == Kind::Event {
        values.insert(
            "time_zone".into(),
            json!(convene_model::event::DEFAULT_TIME_ZONE),
        );
    }
    let form = form_page(
        title_of(kind),
        &format!("/new/{}", kind.as_str()),
        kind,
        &values,
        "community",
        html! { (extras(kind, &sent, &vocab, &[])) (round_select(kind, &sent, &rounds, &[])) },
        &[],
    );
    let page = html! { (form) (super::similar::panel(kind)) };
    Ok(html_page(title_of(kind), page))
}

/// The voting rounds a new idea may be put forward in (none for other
/// kinds).
async fn rounds_for(state: &AppState, kind: Kind) -> Result<Vec<(String, String)>, Failure> {
    if kind != Kind::Idea {
        return Ok(Vec::new());
    }
    state
        .run(|node| Ok(super::convening::round_options(node)?))
        .await
}

/// An idea's round: a choice of the rounds held here.
fn round_select(
    kind: Kind,
    sent: &Sent,
    rounds: &[(String, String)],
    problems: &[Problem],
) -> Markup {
    if kind != Kind::Idea {
        return html! {};
    }
    let messages = messages_for(problems, "round");
    let chosen = sent.one("round");
    html! {
        div class=(if messages.is_empty() { "field" } else { "field invalid" }) {
            label for="f-round" { "Voting round" }
            p class="hint" id="f-round-hint" { "Put it forward in a round the stewards set, or in none." }
            (field_errors("f-round", &messages))
            select id="f-round" name="round" aria-describedby="f-round-hint" {
                option value="" { "No round" }
                @for (id, title) in rounds {
                    option value=(id) selected[chosen == id] { (title) }
                }
            }
        }
    }
}

/// Turns what a form typed into the model's values where they differ: an
/// event's local times (read in its time zone) and its number of places,
/// an idea's round. Each value that cannot be read is left out of `json`
/// with a problem; the second list names the fields whose model problems
/// ("is required") would only repeat that.
fn typed_values(
    kind: Kind,
    json: &mut Map<String, Value>,
    sent: &Sent,
    node: &Node,
) -> (Vec<Problem>, Vec<&'static str>) {
    let mut problems = Vec::new();
    let mut covered = Vec::new();
    let zone = match sent.one("time_zone").trim() {
        "" => convene_model::event::DEFAULT_TIME_ZONE,
        z => z,
    };
    for field in fields(kind).unwrap_or_default() {
        let text = sent.one(field.name).trim();
        match field.input {
            When => {
                json.remove(field.name);
                if text.is_empty() {
                    continue;
                }
                match convene_model::event::parse_local(text, zone) {
                    Ok(t) => {
                        json.insert(field.name.into(), json!(t.to_string()));
                    }
                    // The time zone's own problem says it.
                    Err(convene_model::event::LocalTimeError::Zone(_)) => {
                        covered.push(field.name);
                    }
                    Err(e) => {
                        problems.push(problem(field.name, e.to_string()));
                        covered.push(field.name);
                    }
                }
            }
            Count => {
                json.remove(field.name);
                if text.is_empty() {
                    continue;
                }
                match text.parse::<u64>() {
                    Ok(n) if n >= 1 => {
                        json.insert(field.name.into(), json!(n));
                    }
                    _ => {
                        problems.push(problem(
                            field.name,
                            format!("{text:?} is not a whole number of at least 1"),
                        ));
                        covered.push(field.name);
                    }
                }
            }
            _ => {}
        }
    }
    if kind == Kind::Idea {
        let round = sent.one("round").trim();
        if !round.is_empty() {
            match node.resolve(round).and_then(|id| node.get(id)) {
                Ok(e) if e.meta.kind == Kind::Round => {
                    json.insert("round".into(), json!(e.id.to_string()));
                }
                _ => problems.push(problem("round", "is not a voting round held here")),
            }
        }
    }
    (problems, covered)
}

fn unprocessable(title: &str, page: Markup) -> Response {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Html(layout(title, page).into_string()),
    )
        .into_response()
}

fn number(what: &str, s: &str) -> Result<f64, String> {
    s.trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| format!("{what}: {:?} is not a number", s.trim()))
}

/// The measure and values typed into a new project's form; every problem
/// with them, each for its input.
fn first_measure(sent: &Sent) -> Result<Option<Measure>, Vec<Problem>> {
    match typed_measure(sent) {
        (m, problems) if problems.is_empty() => Ok(m),
        (_, problems) => Err(problems),
    }
}

/// The measure typed into a form, with the values that could be read, and
/// the problems with the rest (so the model can check what was read too).
fn typed_measure(sent: &Sent) -> (Option<Measure>, Vec<Problem>) {
    let name = sent.one("measure_name").trim();
    let data = sent.one("measure_data");
    let mut problems = Vec::new();
    if name.is_empty() {
        if data.trim().is_empty() {
            return (None, Vec::new());
        }
        problems.push(problem(
            "measure_name",
            "give the measure a name for its values",
        ));
    }
    let mut m = Measure {
        name: name.to_string(),
        measure_type: Some(sent.one("measure_type").trim().to_string()).filter(|s| !s.is_empty()),
        unit: sent.one("measure_unit").trim().to_string(),
        improvement: Some(sent.one("measure_improvement").trim().to_string())
            .filter(|s| !s.is_empty()),
        ..Measure::default()
    };
    if !sent.one("measure_target").trim().is_empty() {
        match number("the target", sent.one("measure_target")) {
            Ok(t) => m.target = Some(t),
            Err(_) => problems.push(problem(
                "measure_target",
                format!("{:?} is not a number", sent.one("measure_target").trim()),
            )),
        }
    }
    for (i, line) in data.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let Some((date, value)) = line.split_once([',', '\t', ';']) else {
            problems.push(problem(
                "measure_data",
                format!("line {}: expected DATE, VALUE", i + 1),
            ));
            continue;
        };
        let (value, denominator) = match value.split_once('/') {
            Some((v, d)) => (v, Some(d)),
            None => (value, None),
        };
        let line_no = format!("line {}", i + 1);
        match (
            number(&line_no, value),
            denominator.map(|d| number(&line_no, d)).transpose(),
        ) {
            (Ok(value), Ok(denominator)) => m.data.push(DataPoint {
                date: date.trim().to_string(),
                value,
                denominator,
                ..DataPoint::default()
            }),
            (Err(e), _) | (_, Err(e)) => problems.push(problem("measure_data", e)),
        }
    }
    (Some(m), problems)
}

/// Fills what the form holds beyond plain body fields; every problem with
/// those parts goes into `problems`.
fn complete(kind: Kind, input: &mut EntryInput, sent: &Sent, problems: &mut Vec<Problem>) {
    match &mut input.body {
        Body::Project(p) if kind == Kind::Project => {
            let (m, found) = typed_measure(sent);
            p.measures.extend(m);
            problems.extend(found);
        }
        Body::Contact(c) => {
            c.channels = channels(&c.channels, sent);
            if sent.one("consent") != "on" {
                problems.push(problem("consent", "a contact is listed only with the person's agreement; ask them, then tick the box"));
            }
            if c.consent.is_none() {
                let by = sent.one("consent_by").trim();
                c.consent = Some(Consent {
                    given_by: if by.is_empty() {
                        c.name.clone()
                    } else {
                        by.to_string()
                    },
                    scope: input.visibility.clone().unwrap_or_default(),
                    ..Consent::default()
                });
            }
        }
        _ => {}
    }
}

/// A contact's channels with email and phone as the form gives them.
fn channels(current: &[Channel], sent: &Sent) -> Vec<Channel> {
    // Changed in place, so the list keeps its order and any channel the
    // form does not show (a second email, a social handle) stays as it is.
    let mut out = current.to_vec();
    for channel in ["email", "phone"] {
        let value = sent.one(channel).trim();
        match out.iter().position(|c| c.channel == channel) {
            Some(i) if value.is_empty() => {
                out.remove(i);
            }
            Some(i) => value.clone_into(&mut out[i].value),
            None if !value.is_empty() => out.push(Channel {
                channel: channel.into(),
                value: value.to_string(),
                visibility: None,
            }),
            None => {}
        }
    }
    out
}

/// The visibility the form chose (as `Visibility` prints it). A value the
/// form never offers narrows to the organisation; it never widens.
fn visibility_of(sent: &Sent) -> String {
    sent.one("visibility")
        .parse::<Visibility>()
        .unwrap_or(Visibility::Organisation)
        .to_string()
}

pub(crate) async fn new_submit(
    State(state): State<AppState>,
    Path(kind): Path<String>,
    body: Bytes,
) -> Result<Response, Failure> {
    let kind = parse_kind(&kind)?;
    let sent = Sent::parse(&body);
    let list = fields(kind).unwrap_or_default();
    let values = sent.body(list);
    let mut json = values.clone();
    json.insert("visibility".into(), json!(visibility_of(&sent)));
    let outcome = {
        let sent = Sent(sent.0.clone());
        state
            .run(move |node| {
                let mut json = json;
                let (typed, covered) = typed_values(kind, &mut json, &sent, node);
                let attempt = || -> Result<_, Vec<Problem>> {
                    // Every problem at once: those of the parts only the
                    // form has, then the model's own check of the rest.
                    let mut input = EntryInput::from_json(kind, Value::Object(json))
                        .map_err(|e| problems_of(e.into()))?;
                    let mut problems = typed;
                    complete(kind, &mut input, &sent, &mut problems);
                    if !problems.is_empty() {
                        // Report the body's own problems with these, not after.
                        let mut body = input.body.clone();
                        if let Err(p) = body.check(node.vocab()) {
                            problems.extend(
                                p.0.into_iter()
                                    .filter(|p| !covered.contains(&form_field(&p.field).as_str())),
                            );
                        }
                        return Err(problems);
                    }
                    node.publish(input).map_err(problems_of)
                };
                Ok(attempt())
            })
            .await?
    };
    match outcome {
        Ok(id) => Ok(Redirect::to(&format!("/e/{id}")).into_response()),
        Err(problems) => {
            let vocab = Vocabularies::default();
            let rounds = rounds_for(&state, kind).await?;
            let form = form_page(
                title_of(kind),
                &format!("/new/{}", kind.as_str()),
                kind,
                &values,
                &visibility_of(&sent),
                html! { (extras(kind, &sent, &vocab, &problems)) (round_select(kind, &sent, &rounds, &problems)) },
                &problems,
            );
            let page = html! { (form) (super::similar::panel(kind)) };
            Ok(unprocessable(title_of(kind), page))
        }
    }
}

fn current_values(entry: &Entry) -> Map<String, Value> {
    match entry.body.to_value() {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// The contact's email and phone as a form would send them.
fn contact_extras(entry: &Entry) -> Sent {
    let mut sent = Sent::default();
    if let Body::Contact(c) = &entry.body {
        for ch in &c.channels {
            if ch.channel == "email" || ch.channel == "phone" {
                sent.0.push((ch.channel.clone(), ch.value.clone()));
            }
        }
    }
    sent
}

/// A contact's email and phone fields.
fn reach(sent: &Sent, problems: &[Problem]) -> Markup {
    html! {
            fieldset class="group" {
                legend { "How to reach them" }
                div class="field" {
                    label for="f-email" { "Email" }
                    (field_errors("f-email", &messages_for(problems, "email")))
                    input id="f-email" type="email" name="email" value=(sent.one("email")) autocomplete="off";
                }
                div class="field" {
                    label for="f-phone" { "Phone" }
                    input id="f-phone" type="tel" name="phone" value=(sent.one("phone")) autocomplete="off";
                }
            }
    }
}

fn edit_extras(entry: &Entry, sent: &Sent, problems: &[Problem]) -> Markup {
    match &entry.body {
        Body::Contact(_) => html! {
            (reach(sent, problems))
        },
        _ => html! {},
    }
}

fn load(node: &Node, id: &str) -> Result<Entry, Failure> {
    let id = node.resolve(id)?;
    let entry = node.get(id)?;
    // An event's times and an idea's round are set when published; they
    // are edited with `convene edit` for now.
    if fields(entry.meta.kind).is_none() || matches!(entry.meta.kind, Kind::Event | Kind::Idea) {
        return Err(Failure::bad_request(format!(
            "a {} cannot be edited here",
            entry.meta.kind
        )));
    }
    Ok(entry)
}

pub(crate) async fn edit_page(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, Failure> {
    let entry = state.run(move |node| load(node, &id)).await?;
    let title = format!("Edit: {}", entry.body.title());
    let sent = contact_extras(&entry);
    Ok(html_page(
        &title,
        form_page(
            &title,
            &format!("/e/{}/edit", entry.id),
            entry.meta.kind,
            &current_values(&entry),
            &entry.meta.visibility.to_string(),
            edit_extras(&entry, &sent, &[]),
            &[],
        ),
    ))
}

/// `FIELD=VALUE` assignments for the fields the form changed.
fn changes(entry: &Entry, sent: &Sent) -> Vec<(String, String)> {
    let list = fields(entry.meta.kind).unwrap_or_default();
    let current = current_values(entry);
    let mut out = Vec::new();
    for field in list {
        let mut new = sent.value(field);
        let old = current.get(field.name).unwrap_or(&Value::Null);
        // A list keeps its own order: checkboxes come back in the
        // vocabulary's order, which says nothing about what changed. What
        // stayed keeps its place; what was added goes at the end.
        if let (Value::Array(sent_items), Value::Array(old_items)) = (&new, old) {
            let mut kept: Vec<Value> = old_items
                .iter()
                .filter(|v| sent_items.contains(v))
                .cloned()
                .collect();
            kept.extend(
                sent_items
                    .iter()
                    .filter(|v| !old_items.contains(v))
                    .cloned(),
            );
            new = Value::Array(kept);
        }
        let same = match (&new, old) {
            (Value::Array(a), Value::Null) | (Value::Array(a), Value::Array(_)) if a.is_empty() => {
                old.as_array().is_none_or(Vec::is_empty)
            }
            (Value::Bool(false), Value::Null) => true,
            _ => &new == old,
        };
        if !same {
            let raw = match (&new, field.input) {
                (Value::String(s), Text | Area) => s.clone(),
                _ => new.to_string(),
            };
            out.push((field.name.to_string(), raw));
        }
    }
    if let Body::Contact(c) = &entry.body {
        let new = channels(&c.channels, sent);
        if new != c.channels {
            out.push((
                "channels".into(),
                serde_json::to_string(&new).expect("channels serialise"),
            ));
        }
    }
    let visibility = visibility_of(sent);
    if visibility != entry.meta.visibility.to_string() {
        out.push(("visibility".into(), visibility));
    }
    out
}

pub(crate) async fn edit_submit(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, Failure> {
    let sent = Sent::parse(&body);
    let result = state
        .run(move |node| {
            let entry = load(node, &id)?;
            let set = changes(&entry, &sent);
            let outcome = if set.is_empty() {
                Ok(())
            } else {
                match node.edit(entry.id, Edit::Set(set)) {
                    Ok(_) => Ok(()),
                    Err(e) if is_refusal(&e) => return Err(e.into()),
                    Err(e) => Err(problems_of(e)),
                }
            };
            Ok((entry, sent, outcome))
        })
        .await?;
    let (entry, sent, outcome) = result;
    match outcome {
        Ok(()) => Ok(Redirect::to(&format!("/e/{}", entry.id)).into_response()),
        Err(problems) => {
            let title = format!("Edit: {}", entry.body.title());
            let list = fields(entry.meta.kind).unwrap_or_default();
            Ok(unprocessable(
                &title,
                form_page(
                    &title,
                    &format!("/e/{}/edit", entry.id),
                    entry.meta.kind,
                    &sent.body(list),
                    &visibility_of(&sent),
                    edit_extras(&entry, &sent, &problems),
                    &problems,
                ),
            ))
        }
    }
}

/// The "add a value" form under a measure's chart.
pub(crate) fn data_point_form(id: &str, index: usize, measure: &str) -> Markup {
    point_form(id, index, measure, &Sent::default(), &[])
}

/// The "add a value" form, holding what was `sent` and each of `problems`
/// beside its field (`date`, `value`, `denominator`, `note`).
fn point_form(id: &str, index: usize, measure: &str, sent: &Sent, problems: &[Problem]) -> Markup {
    let p = format!("dp{index}");
    let field = |name: &str, label: &str, kind: &str, required: bool| {
        let input = format!("{p}-{name}");
        let messages = messages_for(problems, name);
        html! {
            div class=(if messages.is_empty() { "field" } else { "field invalid" }) {
                label for=(input) {
                    (label)
                    @if required { " " span class="required" { "(required)" } }
                }
                (field_errors(&input, &messages))
                input id=(input) type=(kind) name=(name) required[required]
                    inputmode=[(name == "value" || name == "denominator").then_some("decimal")]
                    value=(sent.one(name))
                    aria-invalid=[(!messages.is_empty()).then_some("true")]
                    aria-describedby=[(!messages.is_empty()).then(|| format!("{input}-error"))];
            }
        }
    };
    html! {
        form method="post" action=(format!("/e/{id}/data")) class="inline-form" novalidate[!problems.is_empty()] {
            input type="hidden" name="measure" value=(measure);
            fieldset {
                legend { "Add a value to " (measure) }
                (field("date", "Date", "date", true))
                (field("value", "Value", "text", true))
                (field("denominator", "Out of (for a proportion)", "text", false))
                (field("note", "Note (optional)", "text", false))
                div class="actions" { button type="submit" { "Add value" } }
            }
        }
    }
}

/// A page holding the "add a value" or "add a measure" form that failed,
/// with every problem listed above it and beside its field.
fn small_form_page(
    title: &str,
    entry: &Entry,
    prefix: &str,
    problems: &[Problem],
    form: Markup,
) -> Response {
    let label_of = |field: &str| match field {
        "denominator" => "Out of".to_string(),
        "measure_name" => "Name".to_string(),
        "measure_type" => "Type of measure".to_string(),
        "measure_unit" => "Unit".to_string(),
        "measure_target" => "Target".to_string(),
        "measure_improvement" => "Which way is better".to_string(),
        other => humanise(other),
    };
    unprocessable(
        title,
        super::pdsa::form_page(title, entry, prefix, problems, form, &label_of),
    )
}

/// The field of the "add a value" form a model problem's path names
/// (`measures[0].data[3].date` is `date`); `""` for any other.
fn point_field(path: &str) -> String {
    let last = path.rsplit('.').next().unwrap_or_default();
    match last {
        "date" | "value" | "denominator" | "note" => last.to_string(),
        _ => String::new(),
    }
}

/// Which way is better for a measure: it decides whether a chart calls a
/// signal improvement or concern (see `convene_model::chart`).
fn improvement_select(id: &str, chosen: &str) -> Markup {
    html! {
        div class="field" {
            label for=(id) { "Which way is better" }
            select id=(id) name="measure_improvement" {
                @for (value, label) in [("", "Not set"), ("higher", "Higher is better"), ("lower", "Lower is better"), ("neither", "Neither")] {
                    option value=(value) selected[chosen == value] { (label) }
                }
            }
        }
    }
}

/// The "add a measure" form at the end of a project's measures.
pub(crate) fn measure_form(id: &str, vocab: &Vocabularies) -> Markup {
    new_measure_form(id, vocab, &Sent::default(), &[])
}

/// The "add a measure" form holding what was `sent`, with each of
/// `problems` beside its field (`measure_name`, `measure_target` …).
fn new_measure_form(id: &str, vocab: &Vocabularies, sent: &Sent, problems: &[Problem]) -> Markup {
    let class = |name: &str| {
        if messages_for(problems, name).is_empty() {
            "field"
        } else {
            "field invalid"
        }
    };
    let errors = |name: &str, input: &str| field_errors(input, &messages_for(problems, name));
    let chosen_type = sent.one("measure_type");
    html! {
        form method="post" action=(format!("/e/{id}/measures")) class="inline-form" novalidate[!problems.is_empty()] {
            fieldset {
                legend { "Add a measure" }
                div class=(class("measure_name")) {
                    label for="nm-measure_name" { "Name " span class="required" { "(required)" } }
                    (errors("measure_name", "nm-measure_name"))
                    input id="nm-measure_name" type="text" name="measure_name" required value=(sent.one("measure_name"));
                }
                div class=(class("measure_type")) {
                    label for="nm-measure_type" { "Type of measure" }
                    (errors("measure_type", "nm-measure_type"))
                    select id="nm-measure_type" name="measure_type" {
                        option value="" { "Not set" }
                        @for t in &vocab.measure_types.terms { option value=(t.slug) selected[chosen_type == t.slug] { (t.label) } }
                    }
                }
                div class=(class("measure_unit")) {
                    label for="nm-measure_unit" { "Unit" }
                    (errors("measure_unit", "nm-measure_unit"))
                    input id="nm-measure_unit" type="text" name="measure_unit" value=(sent.one("measure_unit"));
                }
                div class=(class("measure_target")) {
                    label for="nm-measure_target" { "Target (optional)" }
                    (errors("measure_target", "nm-measure_target"))
                    input id="nm-measure_target" type="text" inputmode="decimal" name="measure_target" value=(sent.one("measure_target"));
                }
                (improvement_select("nm-measure_improvement", sent.one("measure_improvement")))
                div class="actions" { button type="submit" { "Add measure" } }
            }
        }
    }
}

pub(crate) async fn add_data_point(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, Failure> {
    let sent = Sent::parse(&body);
    // Every problem at once, not the first: the numbers here, the date as
    // the model checks it; each shown beside its field.
    let mut problems = Vec::new();
    let date = sent.one("date").trim().to_string();
    if chrono::NaiveDate::parse_from_str(&date, "%Y-%m-%d").is_err() {
        problems.push(problem(
            "date",
            format!("{date:?} is not a date (expected YYYY-MM-DD)"),
        ));
    }
    // Beside its field, a message needs no field name of its own.
    let mut read = |name: &str, text: &str| {
        number(name, text)
            .map_err(|_| problems.push(problem(name, format!("{:?} is not a number", text.trim()))))
            .ok()
    };
    let value = read("value", sent.one("value")).unwrap_or(0.0);
    let denominator = match sent.one("denominator").trim() {
        "" => None,
        d => read("denominator", d),
    };
    let point = DataPoint {
        date,
        value,
        note: sent.one("note").trim().to_string(),
        denominator,
    };
    let measure = sent.one("measure").to_string();
    let (entry, index, outcome) = state
        .run(move |node| {
            let id = node.resolve(&id)?;
            let entry = node.get(id)?;
            let Body::Project(p) = &entry.body else {
                return Err(Failure::bad_request("only projects have measures"));
            };
            let Some(index) = p.measures.iter().position(|m| m.name == measure) else {
                return Err(Failure::bad_request(format!(
                    "this project has no measure called {measure:?} (another edit may have renamed it)"
                )));
            };
            if !problems.is_empty() {
                return Ok((entry, index, Err(problems)));
            }
            let outcome = match node.edit(id, Edit::AddDataPoint { measure, point }) {
                Ok(_) => Ok(()),
                Err(e) if is_refusal(&e) => return Err(e.into()),
                Err(e) => Err(problems_of(e)
                    .into_iter()
                    .map(|p| problem(&point_field(&p.field), p.message))
                    .collect()),
            };
            Ok((entry, index, outcome))
        })
        .await?;
    match outcome {
        Ok(()) => Ok(Redirect::to(&format!("/e/{}#measures", entry.id)).into_response()),
        Err(problems) => {
            let Body::Project(p) = &entry.body else {
                unreachable!("checked above")
            };
            let name = &p.measures[index].name;
            let title = format!("Add a value to {name}");
            let form = point_form(&entry.id.to_string(), index, name, &sent, &problems);
            Ok(small_form_page(
                &title,
                &entry,
                &format!("dp{index}"),
                &problems,
                form,
            ))
        }
    }
}

pub(crate) async fn add_measure(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, Failure> {
    let sent = Sent::parse(&body);
    let typed = match first_measure(&sent) {
        Ok(Some(m)) => Ok(m),
        Ok(None) => Err(vec![problem("measure_name", "give the measure a name")]),
        Err(problems) => Err(problems),
    };
    let (entry, vocab, outcome) = state
        .run(move |node| {
            let id = node.resolve(&id)?;
            let entry = node.get(id)?;
            let Body::Project(p) = &entry.body else {
                return Err(Failure::bad_request("only projects have measures"));
            };
            let vocab = node.vocab().clone();
            let measure = match typed {
                Ok(m) => m,
                Err(problems) => return Ok((entry, vocab, Err(problems))),
            };
            if p.measures.iter().any(|m| m.name == measure.name) {
                let taken = problem(
                    "measure_name",
                    format!(
                        "this project already has a measure called {:?}",
                        measure.name
                    ),
                );
                return Ok((entry, vocab, Err(vec![taken])));
            }
            let mut all = p.measures.clone();
            all.push(measure);
            let set = (
                "measures".to_string(),
                serde_json::to_string(&all).expect("measures serialise"),
            );
            let outcome = match node.edit(id, Edit::Set(vec![set])) {
                Ok(_) => Ok(()),
                Err(e) if is_refusal(&e) => return Err(e.into()),
                Err(e) => Err(problems_of(e)
                    .into_iter()
                    .map(|p| problem(&form_field(&p.field), p.message))
                    .collect()),
            };
            Ok((entry, vocab, outcome))
        })
        .await?;
    match outcome {
        Ok(()) => Ok(Redirect::to(&format!("/e/{}#measures", entry.id)).into_response()),
        Err(problems) => {
            let form = new_measure_form(&entry.id.to_string(), &vocab, &sent, &problems);
            Ok(small_form_page(
                "Add a measure",
                &entry,
                "nm",
                &problems,
                form,
            ))
        }
    }
}
