//! A measure's chart on the entry page, its downloads and its JSON.
//!
//! The analysis (which chart, centre and limits, each point's flags, the
//! icons, the findings) is [`convene_model::chart`]'s, the same code
//! `convene chart` calls; this module only draws it ([`svg`], with
//! [`axis`] arithmetic) and serves it ([`routes`]):
//!
//! | path | what |
//! |---|---|
//! | `/e/{id}/chart.svg?measure=NAME` | the chart as an SVG file |
//! | `/e/{id}/chart.csv?measure=NAME` | its points as CSV |
//! | `/api/entries/{id}/chart[?measure=NAME]` | the analysis as JSON |
//! | POST `/e/{id}/chart/{m}` | the chart settings of measure `m` ([`settings`]) |
//!
//! Beside the drawing the page gives the same facts as text: the findings
//! sentence, the icons in words, the numbered PDSA cycles and annotations,
//! and a table of every value with its centre, limits and signal.

mod axis;
mod routes;
mod settings;
mod svg;

use convene_model::chart::{self, Analysis, ChartError, MarkerKind, findings::value};
use convene_model::{Measure, Pdsa};
use maud::{Markup, html};

pub(crate) use routes::routes;
pub(crate) use settings::form as settings_form;
pub use svg::document as svg_document;

/// `?measure=NAME`, encoded.
fn query(measure: &str) -> String {
    form_urlencoded::Serializer::new(String::new())
        .append_pair("measure", measure)
        .finish()
}

/// The chart of measure `index` of entry `id`, with its findings, icons,
/// markers, table and download links; or why there is none.
pub fn figure(id: &str, index: usize, m: &Measure, pdsa: &[Pdsa]) -> Markup {
    let a = match chart::analyse(m, pdsa) {
        Ok(a) => a,
        Err(ChartError::NoData(_)) => return html! { p { "No values yet." } },
        Err(e) => return html! { p class="chart-note" { (e.to_string()) } },
    };
    let chart_id = format!("m{index}");
    let q = query(&m.name);
    html! {
        figure class="chart-figure" {
            div class="chart-layout" {
                div class="chart-drawing" {
                    (svg::svg(&a, &chart_id))
                    figcaption {
                        p class="chart-findings" { (a.findings) }
                        @if a.variation.is_some() || a.assurance.is_some() {
                            ul class="chart-icons" {
                                @if let Some(v) = a.variation { li { "Variation: " (v.label()) } }
                                @if let Some(x) = a.assurance { li { "Assurance: " (x.label()) } }
                            }
                        }
                        @if !a.markers.is_empty() {
                            ol class="chart-markers" {
                                @for mk in &a.markers {
                                    li {
                                        (mk.date) " · "
                                        (match mk.kind {
                                            MarkerKind::Pdsa => "PDSA cycle: ",
                                            MarkerKind::Rebase => "limits recalculated: ",
                                            MarkerKind::Annotation => "",
                                        })
                                        (mk.text)
                                    }
                                }
                            }
                        }
                        @for note in &a.notes { p class="chart-note" { (note) } }
                        p class="chart-downloads" {
                            a href=(format!("/e/{id}/chart.svg?{q}")) download { "Download the chart (SVG)" }
                            " · "
                            a href=(format!("/e/{id}/chart.csv?{q}")) download { "Download the values (CSV)" }
                            " · "
                            a href=(format!("/api/entries/{id}/chart?{q}")) { "The analysis as JSON" }
                        }
                    }
                }
                (table(&a))
            }
        }
    }
}

/// Every value with its lines and signal: the chart as a table.
fn table(a: &Analysis) -> Markup {
    let kind = a.chart;
    let spc = a.points.iter().any(|p| p.upper_limit.is_some());
    html! {
        div class="chart-table" {
            table {
                caption { "Values of " (a.measure) ", " (a.chart.label()) }
                thead {
                    tr {
                        th scope="col" { "Date" }
                        th scope="col" { "Value" }
                        th scope="col" { (capital(kind.centre_name())) }
                        @if spc { th scope="col" { "Limits" } }
                        th scope="col" { "Signal" }
                        th scope="col" { "Note" }
                    }
                }
                tbody {
                    @for p in &a.points {
                        tr {
                            td { (p.date) }
                            td {
                                (value(kind, p.value))
                                @if let (Some(n), Some(d)) = (p.numerator, p.denominator) {
                                    " (" (n) " of " (d) ")"
                                }
                            }
                            td { (value(kind, p.centre)) }
                            @if spc {
                                td {
                                    @if let (Some(l), Some(u)) = (p.lower_limit, p.upper_limit) {
                                        (value(kind, l)) " to " (value(kind, u))
                                    }
                                }
                            }
                            td { (signal(p)) }
                            td { (p.note) }
                        }
                    }
                }
            }
        }
    }
}

fn capital(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

/// `Shift (low), improvement`.
fn signal(p: &chart::Point) -> String {
    if p.flags.is_empty() {
        return String::new();
    }
    let rules: Vec<String> = p
        .flags
        .iter()
        .map(|f| {
            let rule = match f.rule {
                chart::Rule::BeyondLimit => "beyond a limit",
                chart::Rule::Shift => "shift",
                chart::Rule::Trend => "trend",
                chart::Rule::TwoOfThree => "two of three near a limit",
                chart::Rule::Astronomical => "astronomical",
                chart::Rule::TooFewRuns => "too few runs",
                chart::Rule::TooManyRuns => "too many runs",
            };
            let side = match (f.rule, f.side) {
                (chart::Rule::Trend, chart::Side::High) => "rising",
                (chart::Rule::Trend, chart::Side::Low) => "falling",
                (_, chart::Side::High) => "high",
                (_, chart::Side::Low) => "low",
            };
            format!("{rule} ({side})")
        })
        .collect();
    format!("{}: {}", svg::colour(p.point_type).1, rules.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use convene_model::DataPoint;

    fn measure(values: &[f64]) -> Measure {
        Measure {
            name: "Calls <answered>".into(),
            unit: "%".into(),
            target: Some(9.0),
            improvement: Some("higher".into()),
            data: values
                .iter()
                .enumerate()
                .map(|(i, v)| DataPoint {
                    date: format!("2026-01-{:02}", i + 1),
                    value: *v,
                    ..DataPoint::default()
                })
                .collect(),
            ..Measure::default()
        }
    }

    #[test]
    fn a_run_chart_has_a_point_per_value_a_labelled_median_and_escaped_names() {
        let m = measure(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
        let html = figure("abc", 0, &m, &[]).into_string();
        assert_eq!(html.matches("<circle").count(), 8);
        assert!(html.contains("Median 4.5"), "{html}");
        assert!(html.contains("Target 9"));
        assert!(html.contains("aria-labelledby=\"m0-title m0-desc\""));
        assert!(html.contains("a trend of 8 points rising"), "{html}");
        assert!(html.contains("&lt;answered&gt;") && !html.contains("<answered>"));
        assert!(
            html.contains("/e/abc/chart.csv?measure=Calls+%3Canswered%3E"),
            "{html}"
        );
        // Trend points are coloured as improvement (higher is better).
        assert_eq!(
            html.matches(&format!("fill=\"{}\"", svg::BLUE)).count(),
            8 + 1,
            "{html}"
        );
    }

    #[test]
    fn an_xmr_chart_draws_limits_and_both_icons() {
        let mut v: Vec<f64> = (0..20).map(|i| [5.0, 6.0, 4.0, 5.5][i % 4]).collect();
        v[19] = 20.0;
        let html = figure("abc", 1, &measure(&v), &[]).into_string();
        assert!(html.contains("class=\"chart spc-chart\""));
        assert!(html.contains("Upper limit"), "{html}");
        assert!(
            html.contains("Variation: Special cause variation: improvement (higher)"),
            "{html}"
        );
        assert!(html.contains("Assurance: "), "{html}");
        assert!(html.contains("<th scope=\"col\">Limits</th>"));
    }

    #[test]
    fn no_values_no_chart() {
        let html = figure("abc", 0, &measure(&[]), &[]).into_string();
        assert_eq!(html, "<p>No values yet.</p>");
    }
}
