//! Turning flags and input files into the model's input types. Parsing
//! only: validation and normalisation happen in `convene_model`.

use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use convene_model::{
    Body, Channel, Consent, Contact, DataPoint, EntryInput, Kind, Learning, Measure, Project,
    Status, Visibility,
};

use crate::args::{Classification, PublishCommon, PublishContact, PublishLearning, PublishProject};

/// Reads a TOML or JSON file (`-` for stdin) into a JSON value. The format
/// follows the extension; without one, JSON is tried first.
pub fn read_file(path: &Path) -> Result<serde_json::Value> {
    let text = if path.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("cannot read standard input")?;
        s
    } else {
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?
    };
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_lowercase);
    let as_json = || {
        serde_json::from_str::<serde_json::Value>(&text)
            .map_err(|e| anyhow!("{} is not valid JSON: {e}", path.display()))
    };
    let as_toml = || {
        toml::from_str::<serde_json::Value>(&text).map_err(|e| {
            let msg = e.to_string().replace('\n', " ");
            anyhow!("{} is not valid TOML: {}", path.display(), msg.trim())
        })
    };
    match ext.as_deref() {
        Some("json") => as_json(),
        Some("toml") => as_toml(),
        _ => as_json().or_else(|_| as_toml()),
    }
}

/// An empty entry of `kind`, or one read from `--from`, with the
/// visibility and draft flags every publish shares applied.
pub fn start(kind: Kind, common: &PublishCommon) -> Result<EntryInput> {
    let mut input = match &common.from {
        Some(path) => {
            let value = read_file(path)?;
            EntryInput::from_json(kind, value).with_context(|| format!("in {}", path.display()))?
        }
        None => EntryInput {
            body: Body::empty(kind),
            visibility: None,
            status: None,
        },
    };
    if let Some(v) = &common.visibility {
        input.visibility = Some(v.parse::<Visibility>()?);
    }
    if common.draft {
        input.status = Some(Status::Draft);
    }
    Ok(input)
}

fn set(field: &mut String, flag: &Option<String>) {
    if let Some(v) = flag {
        *field = v.clone();
    }
}

fn set_opt(field: &mut Option<String>, flag: &Option<String>) {
    if let Some(v) = flag {
        *field = Some(v.clone());
    }
}

fn set_prose(field: &mut convene_model::Prose, flag: &Option<String>) {
    if let Some(v) = flag {
        *field = v.as_str().into();
    }
}

struct Classes<'a> {
    priorities: &'a mut Vec<String>,
    methods: &'a mut Vec<String>,
    themes: &'a mut Vec<String>,
    goals: &'a mut Vec<String>,
    tags: &'a mut Vec<String>,
    level: &'a mut Option<String>,
    place: &'a mut String,
}

fn classify(c: &Classification, into: Classes<'_>) {
    into.priorities.extend(c.priorities.iter().cloned());
    into.methods.extend(c.methods.iter().cloned());
    into.themes.extend(c.themes.iter().cloned());
    into.goals.extend(c.goals.iter().cloned());
    into.tags.extend(c.tags.iter().cloned());
    set_opt(into.level, &c.level);
    set(into.place, &c.place);
}

pub fn learning(a: &PublishLearning) -> Result<EntryInput> {
    let mut input = start(Kind::Learning, &a.common)?;
    let Body::Learning(l) = &mut input.body else {
        unreachable!("start() returns the requested kind")
    };
    let l: &mut Learning = l;
    set(&mut l.title, &a.title);
    set_prose(&mut l.summary, &a.summary);
    set_prose(&mut l.body, &a.body);
    set_opt(&mut l.learning_type, &a.learning_type);
    set_opt(&mut l.outcome, &a.outcome);
    set(&mut l.impact, &a.impact);
    set_prose(&mut l.evidence, &a.evidence);
    set(&mut l.setting, &a.setting);
    set(&mut l.population, &a.population);
    set(&mut l.licence, &a.licence);
    l.sources.extend(a.sources.iter().cloned());
    l.authors.extend(a.authors.iter().cloned());
    classify(
        &a.class,
        Classes {
            priorities: &mut l.priorities,
            methods: &mut l.methods,
            themes: &mut l.themes,
            goals: &mut l.goals,
            tags: &mut l.tags,
            level: &mut l.level,
            place: &mut l.place,
        },
    );
    Ok(input)
}

pub fn project(a: &PublishProject) -> Result<EntryInput> {
    let mut input = start(Kind::Project, &a.common)?;
    let Body::Project(p) = &mut input.body else {
        unreachable!("start() returns the requested kind")
    };
    let p: &mut Project = p;
    set(&mut p.title, &a.title);
    set_prose(&mut p.summary, &a.summary);
    set_prose(&mut p.problem, &a.problem);
    set(&mut p.aim, &a.aim);
    set_opt(&mut p.stage, &a.stage);
    p.partners.extend(a.partners.iter().cloned());
    for spec in &a.measures {
        p.measures.push(measure(spec)?);
    }
    for spec in &a.data {
        let (name, point) = data_point(spec)?;
        let known = p
            .measures
            .iter()
            .map(|m| m.name.clone())
            .collect::<Vec<_>>();
        let m = p.measure_mut(&name).ok_or_else(|| {
            anyhow!(
                "--data {spec:?}: no measure called {name:?} (measures: {})",
                if known.is_empty() {
                    "none".into()
                } else {
                    known.join(", ")
                }
            )
        })?;
        m.data.push(point);
    }
    classify(
        &a.class,
        Classes {
            priorities: &mut p.priorities,
            methods: &mut p.methods,
            themes: &mut p.themes,
            goals: &mut p.goals,
            tags: &mut p.tags,
            level: &mut p.level,
            place: &mut p.place,
        },
    );
    Ok(input)
}

/// `NAME[;type=T][;unit=U][;baseline=N][;target=N][;definition=D]`
/// `[;improvement=higher|lower|neither][;chart=run|xmr|p][;baseline_points=N]`
/// `[;rebase=YYYY-MM-DD:REASON]` (repeatable)
fn measure(spec: &str) -> Result<Measure> {
    let mut parts = spec.split(';');
    let mut m = Measure {
        name: parts.next().unwrap_or_default().trim().to_string(),
        ..Measure::default()
    };
    for part in parts {
        let (key, value) = part.split_once('=').ok_or_else(|| {
            anyhow!("--measure {spec:?}: expected KEY=VALUE after ';', found {part:?}")
        })?;
        let value = value.trim();
        let number = || {
            value
                .parse::<f64>()
                .map_err(|_| anyhow!("--measure {spec:?}: {key} must be a number, found {value:?}"))
        };
        match key.trim() {
            "type" => m.measure_type = Some(value.to_string()),
            "unit" => m.unit = value.to_string(),
            "definition" => m.definition = value.to_string(),
            "baseline" => m.baseline = Some(number()?),
            "target" => m.target = Some(number()?),
            "improvement" => m.improvement = Some(value.to_string()),
            "chart" => m.chart = Some(value.to_string()),
            "baseline_points" => m.baseline_points = Some(value.parse().map_err(|_| {
                anyhow!(
                    "--measure {spec:?}: baseline_points must be a whole number, found {value:?}"
                )
            })?),
            "rebase" => {
                let (date, reason) = value.split_once(':').unwrap_or((value, ""));
                m.rebase.push(convene_model::project::Rebase {
                    date: date.trim().to_string(),
                    reason: reason.trim().to_string(),
                    pdsa: String::new(),
                });
            }
            other => bail!(
                "--measure {spec:?}: unknown key {other:?} (keys: type, unit, definition, baseline, target, improvement, chart, baseline_points, rebase)"
            ),
        }
    }
    Ok(m)
}

/// `MEASURE@YYYY-MM-DD=VALUE`, or `=COUNT/DENOMINATOR` for a proportion
fn data_point(spec: &str) -> Result<(String, DataPoint)> {
    let bad = || anyhow!("--data {spec:?}: expected MEASURE@YYYY-MM-DD=VALUE");
    let (name, rest) = spec.rsplit_once('@').ok_or_else(bad)?;
    let (date, value) = rest.split_once('=').ok_or_else(bad)?;
    let (value, denominator) = match value.split_once('/') {
        Some((v, d)) => (v, Some(d)),
        None => (value, None),
    };
    let number = |s: &str| {
        s.trim()
            .parse::<f64>()
            .map_err(|_| anyhow!("--data {spec:?}: {:?} is not a number", s.trim()))
    };
    let value = number(value)?;
    let denominator = denominator.map(number).transpose()?;
    Ok((
        name.trim().to_string(),
        DataPoint {
            date: date.trim().to_string(),
            value,
            note: String::new(),
            denominator,
        },
    ))
}

pub fn contact(a: &PublishContact) -> Result<EntryInput> {
    let mut input = start(Kind::Contact, &a.common)?;
    let Body::Contact(c) = &mut input.body else {
        unreachable!("start() returns the requested kind")
    };
    let c: &mut Contact = c;
    set(&mut c.name, &a.name);
    set(&mut c.pronouns, &a.pronouns);
    set(&mut c.role, &a.role);
    set_opt(&mut c.sector, &a.sector);
    set(&mut c.place, &a.place);
    c.organisations.extend(a.organisations.iter().cloned());
    c.expertise.extend(a.expertise.iter().cloned());
    c.interests.extend(a.interests.iter().cloned());
    c.open_to.extend(a.open_to.iter().cloned());
    c.lived_experience_partner |= a.lived_experience;
    for (channel, value) in [("email", &a.email), ("phone", &a.phone)] {
        if let Some(v) = value {
            c.channels.push(Channel {
                channel: channel.into(),
                value: v.clone(),
                visibility: None,
            });
        }
    }
    if a.consent {
        c.consent = Some(Consent {
            given_by: a.consent_by.clone().unwrap_or_else(|| c.name.clone()),
            scope: input.visibility.clone().unwrap_or_default(),
            ..Consent::default()
        });
    } else if c.consent.is_none() {
        bail!(
            "a contact is personal data: ask the person whether they agree to be listed, then add --consent (and --consent-by NAME if someone else agreed for them)"
        );
    }
    Ok(input)
}

/// `FIELD=VALUE`
pub fn assignment(s: &str) -> Result<(String, String)> {
    let (field, value) = s
        .split_once('=')
        .ok_or_else(|| anyhow!("--set {s:?}: expected FIELD=VALUE"))?;
    let field = field.trim();
    if field.is_empty() {
        bail!("--set {s:?}: the field name is empty");
    }
    Ok((field.to_string(), value.to_string()))
}
