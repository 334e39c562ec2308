//! PDSA cycles and annotations on a project's entry page: the list, and
//! forms to add and edit them.
//!
//! A project's PDSA cycles (change idea, prediction, plan, do, study, act)
//! are the project's, dated by when they started; a measure's annotations
//! are dated notes on that measure's timeline. Both are written with
//! [`Edit::Set`] on the narrowest path that holds them (`pdsa[2]`,
//! `measures[0].annotations`), so an edit touches only what it changes and
//! goes through the same checks and signing as every other edit. A form
//! that fails comes back with what was typed and each problem beside its
//! field.
//!
//! Cycles and annotations are addressed by their position; a concurrent
//! edit from another node may move them, which at worst shows the person
//! a different cycle than they opened, never writes one over another
//! silently: the form carries the change idea it opened, and a save whose
//! cycle no longer has it is refused.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use convene_model::{Annotation, Body, Entry, Measure, Pdsa, Problem, Project, Vocabularies};
use maud::{Markup, html};

use super::forms::{field_errors, is_refusal, messages_for, problem, problems_of};
use super::pages::{html_page, layout};
use super::{AppState, Failure};
use crate::node::{Edit, Node};

/// One PDSA field: name in the entry's JSON, label, hint, long text.
struct Field {
    name: &'static str,
    label: &'static str,
    hint: &'static str,
    area: bool,
}

const FIELDS: &[Field] = &[
    Field {
        name: "prediction",
        label: "Prediction",
        hint: "What you expect to happen, and why.",
        area: true,
    },
    Field {
        name: "plan",
        label: "Plan",
        hint: "Who, what, when, where; the data you will collect.",
        area: true,
    },
    Field {
        name: "do",
        label: "Do",
        hint: "What happened when you tried it; anything unexpected.",
        area: true,
    },
    Field {
        name: "study",
        label: "Study",
        hint: "What the data show, compared with the prediction.",
        area: true,
    },
];

fn value<'a>(p: &'a Pdsa, name: &str) -> &'a str {
    match name {
        "change_idea" => &p.change_idea,
        "started" => p.started.as_deref().unwrap_or(""),
        "prediction" => &p.prediction,
        "plan" => &p.plan,
        "do" => &p.did,
        "study" => &p.study,
        "act" => p.act.as_deref().unwrap_or(""),
        _ => "",
    }
}

/// The cycle a form sent.
fn read_pdsa(sent: &[(String, String)]) -> Pdsa {
    let one = |name: &str| {
        sent.iter()
            .find(|(k, _)| k == name)
            .map_or(String::new(), |(_, v)| v.replace("\r\n", "\n"))
    };
    let opt = |name: &str| Some(one(name).trim().to_string()).filter(|s| !s.is_empty());
    Pdsa {
        change_idea: one("change_idea").trim().to_string(),
        started: opt("started"),
        prediction: one("prediction").trim_end().to_string(),
        plan: one("plan").trim_end().to_string(),
        did: one("do").trim_end().to_string(),
        study: one("study").trim_end().to_string(),
        act: opt("act"),
    }
}

fn parse(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn one<'a>(sent: &'a [(String, String)], name: &str) -> &'a str {
    sent.iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

/// Problems of a write, with paths made relative to the cycle or
/// annotation the form shows (`pdsa[2].started` → `started`).
fn local(problems: Vec<Problem>, prefix: &str) -> Vec<Problem> {
    problems
        .into_iter()
        .map(|p| match p.field.strip_prefix(prefix) {
            Some(rest) => {
                let rest = rest.trim_start_matches(|c: char| c.is_ascii_digit() || c == ']');
                problem(rest.trim_start_matches('.'), p.message)
            }
            None => p,
        })
        .collect()
}

/// The PDSA form: to add (`index` none) or edit a cycle.
fn pdsa_form(id: &str, index: Option<usize>, p: &Pdsa, problems: &[Problem]) -> Markup {
    let vocab = Vocabularies::default();
    let action = match index {
        Some(i) => format!("/e/{id}/pdsa/{i}"),
        None => format!("/e/{id}/pdsa"),
    };
    let prefix = match index {
        Some(i) => format!("pd{i}"),
        None => "pdnew".into(),
    };
    let class = |name: &str| {
        if messages_for(problems, name).is_empty() {
            "field"
        } else {
            "field invalid"
        }
    };
    let errors =
        |name: &str| field_errors(&format!("{prefix}-{name}"), &messages_for(problems, name));
    let invalid = |name: &str| (!messages_for(problems, name).is_empty()).then_some("true");
    html! {
        form method="post" action=(action) class="pdsa-form" novalidate[!problems.is_empty()] {
            @if index.is_some() {
                input type="hidden" name="opened" value=(p.change_idea);
            }
            div class=(class("change_idea")) {
                label for=(format!("{prefix}-change_idea")) { "Change idea " span class="required" { "(required)" } }
                p class="hint" { "What you will try, in a few words." }
                (errors("change_idea"))
                input id=(format!("{prefix}-change_idea")) type="text" name="change_idea" required
                    value=(p.change_idea) aria-invalid=[invalid("change_idea")];
            }
            div class=(class("started")) {
                label for=(format!("{prefix}-started")) { "Started" }
                p class="hint" { "The date the cycle began; it is drawn there on the measures' charts." }
                (errors("started"))
                input id=(format!("{prefix}-started")) type="date" name="started"
                    value=(value(p, "started")) aria-invalid=[invalid("started")];
            }
            @for f in FIELDS {
                div class=(class(f.name)) {
                    label for=(format!("{prefix}-{}", f.name)) { (f.label) }
                    p class="hint" { (f.hint) }
                    (errors(f.name))
                    @if f.area {
                        textarea id=(format!("{prefix}-{}", f.name)) name=(f.name) rows="3"
                            aria-invalid=[invalid(f.name)] { (value(p, f.name)) }
                    }
                }
            }
            div class=(class("act")) {
                label for=(format!("{prefix}-act")) { "Act" }
                p class="hint" { "What you decided: adopt, adapt or abandon the change." }
                (errors("act"))
                select id=(format!("{prefix}-act")) name="act" aria-invalid=[invalid("act")] {
                    option value="" { "Not decided yet" }
                    @for t in &vocab.pdsa_acts.terms {
                        option value=(t.slug) selected[value(p, "act") == t.slug] { (t.label) }
                    }
                }
            }
            div class="actions" {
                button type="submit" { @if index.is_some() { "Save cycle" } @else { "Add PDSA cycle" } }
                @if index.is_some() {
                    " " button type="submit" name="remove" value="yes" class="secondary" { "Remove cycle" }
                    " " a href=(format!("/e/{id}#pdsa")) { "Cancel" }
                }
            }
        }
    }
}

/// The PDSA section of a project's page: each cycle, with an edit link and
/// an add form for those who may change the project.
pub(crate) fn section(id: &str, project: &Project, may_change: bool) -> Markup {
    let vocab = Vocabularies::default();
    let mut order: Vec<usize> = (0..project.pdsa.len()).collect();
    order.sort_by(|a, b| {
        let date = |i: &usize| project.pdsa[*i].started.clone().unwrap_or_default();
        date(a).cmp(&date(b)).then(a.cmp(b))
    });
    html! {
        section aria-labelledby="pdsa" {
            h2 id="pdsa" { "PDSA cycles" }
            @if project.pdsa.is_empty() {
                p { "No PDSA cycles yet." }
            }
            @for i in order {
                @let p = &project.pdsa[i];
                article class="pdsa" aria-labelledby=(format!("pdsa-{i}")) {
                    h3 id=(format!("pdsa-{i}")) {
                        (p.change_idea)
                        @if let Some(s) = &p.started { " " span class="meta" { "from " (s) } }
                    }
                    dl class="fields" {
                        @for f in FIELDS {
                            @if !value(p, f.name).is_empty() {
                                dt { (f.label) }
                                dd { @for para in value(p, f.name).split("\n\n") { p { (para) } } }
                            }
                        }
                        @if let Some(a) = &p.act {
                            dt { "Act" } dd { (vocab.pdsa_acts.label(a)) }
                        }
                    }
                    @if may_change {
                        p { a class="button secondary" href=(format!("/e/{id}/pdsa/{i}")) { "Edit cycle" } }
                    }
                }
            }
            @if may_change {
                details {
                    summary { "Add a PDSA cycle" }
                    (pdsa_form(id, None, &Pdsa::default(), &[]))
                }
            }
        }
    }
}

/// The annotations of measure `index` with, for those who may change the
/// project, an add form.
pub(crate) fn annotations(id: &str, index: usize, m: &Measure, may_change: bool) -> Markup {
    let mut order: Vec<usize> = (0..m.annotations.len()).collect();
    order.sort_by(|a, b| m.annotations[*a].date.cmp(&m.annotations[*b].date));
    html! {
        @if !m.annotations.is_empty() {
            h4 { "Annotations" }
            ul class="annotations" {
                @for j in order {
                    @let a = &m.annotations[j];
                    li {
                        time datetime=(a.date) { (a.date) } ": " (a.text)
                        @if may_change {
                            " " a href=(format!("/e/{id}/annotations/{index}/{j}")) {
                                "Edit" span class="visually-hidden" { " the annotation of " (a.date) }
                            }
                        }
                    }
                }
            }
        }
        @if may_change {
            (annotation_form(id, index, None, &m.name, &Annotation::default(), &[]))
        }
    }
}

fn annotation_form(
    id: &str,
    measure: usize,
    index: Option<usize>,
    name: &str,
    a: &Annotation,
    problems: &[Problem],
) -> Markup {
    let prefix = match index {
        Some(j) => format!("an{measure}-{j}"),
        None => format!("an{measure}"),
    };
    let action = match index {
        Some(j) => format!("/e/{id}/annotations/{measure}/{j}"),
        None => format!("/e/{id}/annotations/{measure}"),
    };
    let class = |f: &str| {
        if messages_for(problems, f).is_empty() {
            "field"
        } else {
            "field invalid"
        }
    };
    html! {
        form method="post" action=(action) class="inline-form" novalidate[!problems.is_empty()] {
            fieldset {
                legend { @if index.is_some() { "Edit the annotation on " } @else { "Annotate " } (name) }
                div class=(class("date")) {
                    label for=(format!("{prefix}-date")) { "Date " span class="required" { "(required)" } }
                    (field_errors(&format!("{prefix}-date"), &messages_for(problems, "date")))
                    input id=(format!("{prefix}-date")) type="date" name="date" required value=(a.date);
                }
                div class=(class("text")) {
                    label for=(format!("{prefix}-text")) { "What happened " span class="required" { "(required)" } }
                    (field_errors(&format!("{prefix}-text"), &messages_for(problems, "text")))
                    input id=(format!("{prefix}-text")) type="text" name="text" required value=(a.text)
                        placeholder="e.g. New discharge checklist in use";
                }
                div class="actions" {
                    button type="submit" { @if index.is_some() { "Save annotation" } @else { "Add annotation" } }
                    @if index.is_some() {
                        " " button type="submit" name="remove" value="yes" class="secondary" { "Remove annotation" }
                        " " a href=(format!("/e/{id}#measures")) { "Cancel" }
                    }
                }
            }
        }
    }
}

/// The project `id` names, and whether this node may change it.
fn project(node: &Node, id: &str) -> Result<(Entry, Project), Failure> {
    let id = node.resolve(id)?;
    let entry = node.get(id)?;
    match &entry.body {
        Body::Project(p) => {
            let p = p.clone();
            Ok((entry, p))
        }
        _ => Err(Failure::bad_request(
            "only improvement projects have PDSA cycles and measures",
        )),
    }
}

fn unprocessable(title: &str, page: Markup) -> Response {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Html(layout(title, page).into_string()),
    )
        .into_response()
}

/// A page holding one small form of an entry's page (a PDSA cycle, an
/// annotation, a value, a measure); `prefix` is its inputs' id prefix
/// (`{prefix}-{field}`), so the problem summary links to them, and
/// `label_of` names each field there.
pub(crate) fn form_page(
    title: &str,
    entry: &Entry,
    prefix: &str,
    problems: &[Problem],
    form: Markup,
    label_of: &dyn Fn(&str) -> String,
) -> Markup {
    html! {
        p class="breadcrumb" { a href="/" { "Browse" } " › " a href=(format!("/e/{}", entry.id)) { (entry.body.title()) } }
        h1 { (title) }
        @if !problems.is_empty() {
            div class="error" role="alert" id="problems" tabindex="-1" {
                h2 { "Please check " (problems.len()) @if problems.len() == 1 { " thing" } @else { " things" } }
                ul {
                    @for p in problems {
                        li {
                            @if p.field.is_empty() {
                                (p.message)
                            } @else {
                                a href=(format!("#{prefix}-{}", p.field)) { (label_of(&p.field)) } ": " (p.message)
                            }
                        }
                    }
                }
            }
        }
        (form)
        p { a href=(format!("/e/{}", entry.id)) { "Back to " (entry.body.title()) } }
    }
}

/// The label of a PDSA or annotation field.
fn label_of(field: &str) -> String {
    match field {
        "change_idea" => "Change idea".into(),
        "text" => "What happened".into(),
        other => FIELDS
            .iter()
            .find(|f| f.name == other)
            .map_or_else(|| super::pages::humanise(other), |f| f.label.to_string()),
    }
}

fn not_found(what: &str) -> Failure {
    Failure {
        status: StatusCode::NOT_FOUND,
        message: format!("this project has no {what} there (another edit may have removed it)"),
    }
}

/// `GET /e/{id}/pdsa/{n}`: the form to edit a cycle.
pub(crate) async fn edit_page(
    State(state): State<AppState>,
    Path((id, n)): Path<(String, usize)>,
) -> Result<Response, Failure> {
    let (entry, p) = state.run(move |node| project(node, &id)).await?;
    let cycle = p.pdsa.get(n).ok_or_else(|| not_found("PDSA cycle"))?;
    let title = format!("Edit PDSA cycle: {}", cycle.change_idea);
    let id = entry.id.to_string();
    Ok(html_page(
        &title,
        form_page(
            &title,
            &entry,
            &format!("pd{n}"),
            &[],
            pdsa_form(&id, Some(n), cycle, &[]),
            &label_of,
        ),
    ))
}

/// `POST /e/{id}/pdsa` (add) and `POST /e/{id}/pdsa/{n}` (save or remove).
async fn save_pdsa(
    state: AppState,
    id: String,
    index: Option<usize>,
    body: Bytes,
) -> Result<Response, Failure> {
    let sent = parse(&body);
    let cycle = read_pdsa(&sent);
    let remove = one(&sent, "remove") == "yes";
    let opened = one(&sent, "opened").to_string();
    let typed = cycle.clone();
    let (entry, outcome) = state
        .run(move |node| {
            let (entry, p) = project(node, &id)?;
            let mut also = Vec::new();
            let set = match index {
                None => {
                    let mut all = p.pdsa.clone();
                    all.push(cycle);
                    ("pdsa".to_string(), to_json(&all))
                }
                Some(n) => {
                    let current = p.pdsa.get(n).ok_or_else(|| not_found("PDSA cycle"))?;
                    if current.change_idea != opened {
                        return Err(Failure {
                            status: StatusCode::CONFLICT,
                            message: "this cycle changed since you opened it (another edit arrived); open it again".into(),
                        });
                    }
                    let named_by = p.measures.iter().find_map(|m| {
                        m.rebase
                            .iter()
                            .find(|r| r.pdsa == current.change_idea)
                            .map(|r| (m.name.clone(), r.date.clone()))
                    });
                    if let (true, Some((measure, date))) = (remove, named_by) {
                        let message = format!(
                            "{measure:?} starts a new period on {date} because of this cycle; remove or change that first"
                        );
                        return Ok((entry, Err(vec![problem("", message)])));
                    }
                    if remove {
                        let mut all = p.pdsa.clone();
                        all.remove(n);
                        ("pdsa".to_string(), to_json(&all))
                    } else {
                        // Keep any field this form does not show.
                        let mut merged = current.clone();
                        merged.change_idea = cycle.change_idea;
                        merged.started = cycle.started;
                        merged.prediction = cycle.prediction;
                        merged.plan = cycle.plan;
                        merged.did = cycle.did;
                        merged.study = cycle.study;
                        merged.act = cycle.act;
                        // A measure's rebase names its cycle by change idea:
                        // renaming the idea renames it there too.
                        if merged.change_idea != current.change_idea {
                            for (i, m) in p.measures.iter().enumerate() {
                                for (j, r) in m.rebase.iter().enumerate() {
                                    if r.pdsa == current.change_idea {
                                        also.push((
                                            format!("measures[{i}].rebase[{j}].pdsa"),
                                            merged.change_idea.clone(),
                                        ));
                                    }
                                }
                            }
                        }
                        (format!("pdsa[{n}]"), to_json(&merged))
                    }
                }
            };
            let mut pairs = vec![set];
            pairs.extend(also);
            let outcome = match node.edit(entry.id, Edit::Set(pairs)) {
                Ok(_) => Ok(()),
                Err(e) if is_refusal(&e) => return Err(e.into()),
                Err(e) => Err(problems_of(e)),
            };
            Ok((entry, outcome))
        })
        .await?;
    match outcome {
        Ok(()) => Ok(Redirect::to(&format!("/e/{}#pdsa", entry.id)).into_response()),
        Err(problems) => {
            let n = index.unwrap_or(match &entry.body {
                Body::Project(p) => p.pdsa.len(),
                _ => 0,
            });
            let problems = local(problems, &format!("pdsa[{n}"));
            let title = if index.is_some() {
                "Edit PDSA cycle"
            } else {
                "Add a PDSA cycle"
            };
            let id = entry.id.to_string();
            Ok(unprocessable(
                title,
                form_page(
                    title,
                    &entry,
                    &index.map_or_else(|| "pdnew".to_string(), |i| format!("pd{i}")),
                    &problems,
                    pdsa_form(&id, index, &typed, &problems),
                    &label_of,
                ),
            ))
        }
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("PDSA cycles and annotations serialise")
}

pub(crate) async fn add_pdsa(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, Failure> {
    save_pdsa(state, id, None, body).await
}

pub(crate) async fn edit_pdsa(
    State(state): State<AppState>,
    Path((id, n)): Path<(String, usize)>,
    body: Bytes,
) -> Result<Response, Failure> {
    save_pdsa(state, id, Some(n), body).await
}

/// `GET /e/{id}/annotations/{m}/{n}`: the form to edit an annotation.
pub(crate) async fn annotation_page(
    State(state): State<AppState>,
    Path((id, m, n)): Path<(String, usize, usize)>,
) -> Result<Response, Failure> {
    let (entry, p) = state.run(move |node| project(node, &id)).await?;
    let measure = p.measures.get(m).ok_or_else(|| not_found("measure"))?;
    let a = measure
        .annotations
        .get(n)
        .ok_or_else(|| not_found("annotation"))?;
    let title = format!("Edit an annotation on {}", measure.name);
    let id = entry.id.to_string();
    Ok(html_page(
        &title,
        form_page(
            &title,
            &entry,
            &format!("an{m}-{n}"),
            &[],
            annotation_form(&id, m, Some(n), &measure.name, a, &[]),
            &label_of,
        ),
    ))
}

async fn save_annotation(
    state: AppState,
    id: String,
    m: usize,
    index: Option<usize>,
    body: Bytes,
) -> Result<Response, Failure> {
    let sent = parse(&body);
    let typed = Annotation {
        date: one(&sent, "date").trim().to_string(),
        text: one(&sent, "text").trim().to_string(),
    };
    let remove = one(&sent, "remove") == "yes";
    let annotation = typed.clone();
    let (entry, name, outcome) = state
        .run(move |node| {
            let (entry, p) = project(node, &id)?;
            let measure = p.measures.get(m).ok_or_else(|| not_found("measure"))?;
            let mut all = measure.annotations.clone();
            match index {
                None => all.push(annotation),
                Some(n) if n < all.len() => {
                    if remove {
                        all.remove(n);
                    } else {
                        all[n].date = annotation.date;
                        all[n].text = annotation.text;
                    }
                }
                Some(_) => return Err(not_found("annotation")),
            }
            let set = (format!("measures[{m}].annotations"), to_json(&all));
            let outcome = match node.edit(entry.id, Edit::Set(vec![set])) {
                Ok(_) => Ok(()),
                Err(e) if is_refusal(&e) => return Err(e.into()),
                Err(e) => Err(problems_of(e)),
            };
            Ok((entry, measure.name.clone(), outcome))
        })
        .await?;
    match outcome {
        Ok(()) => Ok(Redirect::to(&format!("/e/{}#measures", entry.id)).into_response()),
        Err(problems) => {
            let problems = local(problems, &format!("measures[{m}].annotations["));
            let title = format!("Annotate {name}");
            let id = entry.id.to_string();
            Ok(unprocessable(
                &title,
                form_page(
                    &title,
                    &entry,
                    &index.map_or_else(|| format!("an{m}"), |j| format!("an{m}-{j}")),
                    &problems,
                    annotation_form(&id, m, index, &name, &typed, &problems),
                    &label_of,
                ),
            ))
        }
    }
}

pub(crate) async fn add_annotation(
    State(state): State<AppState>,
    Path((id, m)): Path<(String, usize)>,
    body: Bytes,
) -> Result<Response, Failure> {
    save_annotation(state, id, m, None, body).await
}

pub(crate) async fn edit_annotation(
    State(state): State<AppState>,
    Path((id, m, n)): Path<(String, usize, usize)>,
    body: Bytes,
) -> Result<Response, Failure> {
    save_annotation(state, id, m, Some(n), body).await
}
