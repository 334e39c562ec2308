//! The chart settings of one measure, for those who may change the
//! project: which way is better, the target, the chart, how many values make
//! the baseline, and the rebase dates (a change to the process, with its
//! reason and PDSA cycle) from which the limits are recalculated.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use convene_model::{Body, Measure, Pdsa, Rebase};
use maud::{Markup, html};

use super::super::{AppState, Failure};
use crate::node::Edit;

/// The form, folded away under the chart.
pub fn form(id: &str, index: usize, m: &Measure, pdsa: &[Pdsa]) -> Markup {
    let p = format!("cs{index}");
    let improvement = m.improvement.as_deref().unwrap_or("");
    let chart = m.chart.as_deref().unwrap_or("");
    html! {
        details class="chart-settings" {
            summary { "Chart settings for " (m.name) }
            form method="post" action=(format!("/e/{id}/chart/{index}")) class="inline-form" {
                fieldset {
                    legend { "How " (m.name) " is charted" }
                    div class="field" {
                        label for=(format!("{p}-improvement")) { "Which way is better" }
                        select id=(format!("{p}-improvement")) name="improvement" {
                            @for (v, l) in [("", "Not set"), ("higher", "Higher is better"), ("lower", "Lower is better"), ("neither", "Neither")] {
                                option value=(v) selected[improvement == v] { (l) }
                            }
                        }
                    }
                    div class="field" {
                        label for=(format!("{p}-target")) { "Target" }
                        input id=(format!("{p}-target")) type="text" inputmode="decimal" name="target"
                            value=(m.target.map(|t| t.to_string()).unwrap_or_default());
                    }
                    div class="field" {
                        label for=(format!("{p}-chart")) { "Chart" }
                        select id=(format!("{p}-chart")) name="chart" {
                            @for (v, l) in [("", "Chosen from the data"), ("run", "Run chart"), ("xmr", "XmR chart"), ("p", "p-chart (proportion)")] {
                                option value=(v) selected[chart == v] { (l) }
                            }
                        }
                    }
                    div class="field" {
                        label for=(format!("{p}-baseline")) { "Values in the baseline (blank: the usual)" }
                        input id=(format!("{p}-baseline")) type="text" inputmode="numeric" name="baseline_points"
                            value=(m.baseline_points.map(|b| b.to_string()).unwrap_or_default());
                    }
                }
                fieldset {
                    legend { "Recalculate the limits from a change" }
                    @for (j, r) in m.rebase.iter().enumerate() {
                        div class="field" {
                            input id=(format!("{p}-keep{j}")) type="checkbox" name="remove_rebase" value=(j);
                            label for=(format!("{p}-keep{j}")) {
                                "Remove the change of " (r.date)
                                @if !r.reason.is_empty() { " (" (r.reason) ")" }
                            }
                        }
                    }
                    div class="field" {
                        label for=(format!("{p}-date")) { "Date of the change" }
                        input id=(format!("{p}-date")) type="date" name="rebase_date";
                    }
                    div class="field" {
                        label for=(format!("{p}-reason")) { "What changed" }
                        input id=(format!("{p}-reason")) type="text" name="rebase_reason";
                    }
                    @if !pdsa.is_empty() {
                        div class="field" {
                            label for=(format!("{p}-pdsa")) { "PDSA cycle behind it" }
                            select id=(format!("{p}-pdsa")) name="rebase_pdsa" {
                                option value="" { "None" }
                                @for c in pdsa { option value=(c.change_idea) { (c.change_idea) } }
                            }
                        }
                    }
                }
                div class="actions" { button type="submit" { "Save chart settings" } }
            }
        }
    }
}

/// What the form sent, applied to the measure.
fn apply(m: &mut Measure, sent: &[(String, String)]) -> Result<(), Failure> {
    let one = |name: &str| {
        sent.iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.trim())
    };
    let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
    // Read everything before changing anything: a bad number leaves the
    // measure as it was.
    let target = match one("target") {
        "" => None,
        t => Some(
            t.parse()
                .map_err(|_| Failure::bad_request(format!("the target {t:?} is not a number")))?,
        ),
    };
    let baseline_points = match one("baseline_points") {
        "" => None,
        b => Some(b.parse().map_err(|_| {
            Failure::bad_request(format!(
                "the number of baseline values {b:?} is not a whole number"
            ))
        })?),
    };
    m.improvement = opt(one("improvement"));
    m.chart = opt(one("chart"));
    m.target = target;
    m.baseline_points = baseline_points;
    let remove: Vec<usize> = sent
        .iter()
        .filter(|(k, _)| k == "remove_rebase")
        .filter_map(|(_, v)| v.parse().ok())
        .collect();
    let mut j = 0;
    m.rebase.retain(|_| {
        j += 1;
        !remove.contains(&(j - 1))
    });
    let (date, reason, pdsa) = (one("rebase_date"), one("rebase_reason"), one("rebase_pdsa"));
    if !date.is_empty() || !reason.is_empty() || !pdsa.is_empty() {
        m.rebase.push(Rebase {
            date: date.to_string(),
            reason: reason.to_string(),
            pdsa: pdsa.to_string(),
        });
    }
    Ok(())
}

/// `POST /e/{id}/chart/{m}`.
pub(crate) async fn save(
    State(state): State<AppState>,
    Path((id, m)): Path<(String, usize)>,
    body: Bytes,
) -> Result<Response, Failure> {
    let sent: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let id = state
        .run(move |node| {
            let id = node.resolve(&id)?;
            let Body::Project(p) = node.get(id)?.body else {
                return Err(Failure::bad_request("only projects have measures"));
            };
            let mut measure = p
                .measures
                .get(m)
                .cloned()
                .ok_or_else(|| Failure::bad_request("this project has no such measure"))?;
            apply(&mut measure, &sent)?;
            let json =
                serde_json::to_string(&measure).map_err(|e| Failure::internal(e.to_string()))?;
            node.edit(id, Edit::Set(vec![(format!("measures[{m}]"), json)]))?;
            Ok(id)
        })
        .await?;
    Ok(Redirect::to(&format!("/e/{id}#measures")).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_form_sets_clears_adds_and_removes() {
        let mut m = Measure {
            name: "Waits".into(),
            improvement: Some("higher".into()),
            rebase: vec![Rebase {
                date: "2024-01-01".into(),
                reason: "old".into(),
                pdsa: String::new(),
            }],
            ..Measure::default()
        };
        apply(
            &mut m,
            &sent(&[
                ("improvement", "lower"),
                ("target", "45"),
                ("chart", ""),
                ("baseline_points", "12"),
                ("remove_rebase", "0"),
                ("rebase_date", "2024-06-01"),
                ("rebase_reason", "New rota"),
            ]),
        )
        .unwrap();
        assert_eq!(m.improvement.as_deref(), Some("lower"));
        assert_eq!(
            (m.target, m.baseline_points, m.chart.as_deref()),
            (Some(45.0), Some(12), None)
        );
        assert_eq!(m.rebase.len(), 1);
        assert_eq!(m.rebase[0].reason, "New rota");
        assert!(apply(&mut m, &sent(&[("target", "lots")])).is_err());
        assert_eq!(
            m.improvement.as_deref(),
            Some("lower"),
            "unchanged by a refused form"
        );
        let html = form("abc", 0, &m, &[]).into_string();
        assert!(html.contains("action=\"/e/abc/chart/0\""));
        assert!(html.contains("<option value=\"lower\" selected>"), "{html}");
    }
}
