//! The chart's downloads and its JSON API route.

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use convene_model::chart::{self, ProjectCharts};
use convene_model::{Body, DocumentId};
use serde::Deserialize;
use serde_json::json;

use super::super::{AppState, Failure};

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/e/{id}/chart.svg", get(svg_file))
        .route("/e/{id}/chart.csv", get(csv_file))
        .route("/api/entries/{id}/chart", get(api))
        .route(
            "/e/{id}/chart/{m}",
            axum::routing::post(super::settings::save),
        )
}

#[derive(Debug, Deserialize)]
struct Which {
    measure: Option<String>,
}

/// The project's id, title and charts (all, or the one measure named).
async fn charts(
    state: &AppState,
    id: String,
    measure: Option<String>,
) -> Result<(DocumentId, String, ProjectCharts), Failure> {
    let (id, entry) = state
        .run(move |node| {
            let id = node.resolve(&id)?;
            Ok((id, node.get(id)?))
        })
        .await?;
    let Body::Project(p) = &entry.body else {
        return Err(Failure::bad_request(format!(
            "{id} is not a project: only projects have measures to chart"
        )));
    };
    let charts = chart::analyse_project(p, measure.as_deref()).map_err(|e| Failure {
        status: match e {
            chart::ChartError::UnknownMeasure { .. } => StatusCode::NOT_FOUND,
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        },
        message: e.to_string(),
    })?;
    Ok((id, p.title.clone(), charts))
}

/// One chart: the measure named, or the first with values.
async fn one(state: &AppState, id: String, which: Which) -> Result<chart::Analysis, Failure> {
    let (_, _, c) = charts(state, id, which.measure).await?;
    c.charts.into_iter().next().ok_or_else(|| Failure {
        status: StatusCode::UNPROCESSABLE_ENTITY,
        message: "no measure of this project has values to chart".into(),
    })
}

/// A file name from a measure's name: letters, digits and dashes.
fn file_name(measure: &str, ext: &str) -> String {
    let mut s: String = measure
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    while s.contains("--") {
        s = s.replace("--", "-");
    }
    let s = s.trim_matches('-');
    format!("{}.{ext}", if s.is_empty() { "chart" } else { s })
}

async fn svg_file(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(which): Query<Which>,
) -> Result<Response, Failure> {
    let a = one(&state, id, which).await?;
    Ok(download(
        &a,
        "image/svg+xml",
        "svg",
        super::svg::document(&a),
    ))
}

async fn csv_file(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(which): Query<Which>,
) -> Result<Response, Failure> {
    let a = one(&state, id, which).await?;
    Ok(download(&a, "text/csv", "csv", chart::csv::to_csv(&a)))
}

/// `body`, a download of `a`'s chart as a `.ext` file of type `media`.
fn download(a: &chart::Analysis, media: &str, ext: &str, body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, format!("{media}; charset=utf-8")),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}\"", file_name(&a.measure, ext)),
            ),
        ],
        body,
    )
        .into_response()
}

/// `{"id", "title", "charts": [...], "skipped": [...]}`, as `convene chart
/// --json` prints it; errors as `{"error": "…"}`.
async fn api(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(which): Query<Which>,
) -> Response {
    match charts(&state, id, which.measure).await {
        Ok((id, title, c)) => Json(json!({
            "id": id.to_string(),
            "title": title,
            "charts": c.charts,
            "skipped": c.skipped,
        }))
        .into_response(),
        Err(f) => (f.status, Json(json!({ "error": f.message }))).into_response(),
    }
}
