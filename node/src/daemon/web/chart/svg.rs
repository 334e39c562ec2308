//! One measure's chart as SVG, drawn from its [`Analysis`]: points
//! coloured by what they signal (the *Making Data Count* colours of
//! NHSRplotthedots: grey common cause, blue improvement, orange concern,
//! purple where neither direction is better), the centre line and process
//! limits of each period with a step at each rebase, the target, the PDSA
//! cycles and annotations as numbered markers, the two icons as labelled
//! badges, labelled value ticks, dates that never overlap, a legend, and a
//! `<title>` and `<desc>` (the findings) for screen readers. The same
//! drawing is the web page's and `convene chart --svg`'s; presentation
//! attributes (not CSS) carry the colours so a downloaded file looks the
//! same.

use convene_model::chart::findings::value;
use convene_model::chart::{Analysis, ChartKind, PointType};
use maud::{Markup, PreEscaped, html};

use super::axis;

const W: f64 = 720.0;
const H: f64 = 400.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = W - 24.0;
const TOP: f64 = 56.0;
const BOTTOM: f64 = H - 96.0;

pub const GREY: &str = "#a6a6a6";
pub const BLUE: &str = "#00b0f0";
pub const ORANGE: &str = "#e46c0a";
pub const PURPLE: &str = "#490092";
const INK: &str = "#212b32";
const RED: &str = "#de1b1b";

/// A point type's colour and name in the legend.
pub fn colour(t: PointType) -> (&'static str, &'static str) {
    match t {
        PointType::CommonCause => (GREY, "Common cause"),
        PointType::SpecialCauseImprovement => (BLUE, "Improvement"),
        PointType::SpecialCauseConcern => (ORANGE, "Concern"),
        PointType::SpecialCauseNeutralHigh => (PURPLE, "Special cause (higher)"),
        PointType::SpecialCauseNeutralLow => (PURPLE, "Special cause (lower)"),
    }
}

fn f1(v: f64) -> String {
    format!("{v:.1}")
}

/// `2024-06` when the chart's dates are monthly, else the date.
fn short_dates(a: &Analysis) -> Vec<String> {
    let months: std::collections::HashSet<&str> = a
        .points
        .iter()
        .map(|p| p.date.get(..7).unwrap_or(&p.date))
        .collect();
    let monthly = months.len() == a.points.len();
    a.points
        .iter()
        .map(|p| {
            if monthly {
                p.date.get(..7).unwrap_or(&p.date).to_string()
            } else {
                p.date.clone()
            }
        })
        .collect()
}

/// The SVG element; `id` makes its title and description ids unique in a
/// page.
pub fn svg(a: &Analysis, id: &str) -> Markup {
    let n = a.points.len().max(1);
    let band = (RIGHT - LEFT) / n as f64;
    let x = |i: usize| LEFT + band * (i as f64 + 0.5);
    let edge = |i: usize| LEFT + band * i as f64;
    let mut values: Vec<f64> = a.points.iter().map(|p| p.value).collect();
    for p in &a.points {
        values.extend([p.centre]);
        values.extend(p.lower_limit);
        values.extend(p.upper_limit);
    }
    values.extend(a.target);
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi, ticks) = axis::ticks(lo, hi);
    let y = |v: f64| BOTTOM - (BOTTOM - TOP) * (v - lo) / (hi - lo);
    let kind = a.chart;
    let fmt = |v: f64| value(kind, v);
    let unit = if a.unit.is_empty() || kind == ChartKind::P {
        String::new()
    } else {
        format!(" {}", a.unit)
    };
    let dates = short_dates(a);
    let widths: Vec<f64> = dates.iter().map(|d| 7.0 * d.len() as f64).collect();
    let xs: Vec<f64> = (0..a.points.len()).map(x).collect();
    let labelled = axis::spaced(&xs, &widths, 8.0);
    let line: Vec<String> = a
        .points
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{},{}", f1(x(i)), f1(y(p.value))))
        .collect();
    let centre_word = match kind {
        ChartKind::Run => "Median",
        ChartKind::Xmr => "Mean",
        ChartKind::P => "Centre",
    };
    let last = a.periods.last();
    let title = format!("{}: {}", capitalised(kind.label()), a.measure);
    let class = if kind == ChartKind::Run {
        "chart run-chart"
    } else {
        "chart spc-chart"
    };
    // Each marker's x: at its value's date, or between the values around it.
    let marker_x = |date: &str| match a.points.iter().position(|p| p.date.as_str() >= date) {
        None => RIGHT,
        Some(i) if a.points[i].date == date => x(i),
        Some(i) => edge(i),
    };
    let mut legend: Vec<PointType> = Vec::new();
    for p in &a.points {
        if !legend.contains(&p.point_type) {
            legend.push(p.point_type);
        }
    }
    legend.sort_by_key(|t| *t as u8);
    html! {
        svg class=(class) xmlns="http://www.w3.org/2000/svg" viewBox=(format!("0 0 {W} {H}"))
            role="img" aria-labelledby=(format!("{id}-title {id}-desc")) font-family="Arial, sans-serif" {
            title id=(format!("{id}-title")) { (title) }
            desc id=(format!("{id}-desc")) { (a.findings) }
            rect x="0" y="0" width=(W) height=(H) fill="#ffffff" {}
            text x="16" y="24" font-size="15" font-weight="bold" fill=(INK) { (title) }
            (icons(a))
            // Value axis with labelled ticks and light grid lines.
            @for t in &ticks {
                line x1=(LEFT) y1=(f1(y(*t))) x2=(RIGHT) y2=(f1(y(*t))) stroke="#e8edee" stroke-width="1" {}
                text class="tick" x=(LEFT - 6.0) y=(f1(y(*t) + 4.0)) text-anchor="end" font-size="12" fill=(INK) { (fmt(*t)) }
            }
            line class="axis" x1=(LEFT) y1=(TOP) x2=(LEFT) y2=(BOTTOM) stroke=(INK) stroke-width="1" {}
            line class="axis" x1=(LEFT) y1=(BOTTOM) x2=(RIGHT) y2=(BOTTOM) stroke=(INK) stroke-width="1" {}
            @if !a.unit.is_empty() && kind != ChartKind::P {
                text x="14" y=(f1((TOP + BOTTOM) / 2.0)) font-size="12" fill=(INK) text-anchor="middle"
                    transform=(format!("rotate(-90 14 {})", f1((TOP + BOTTOM) / 2.0))) { (a.unit) }
            }
            // Rebase steps: a new period, its centre and limits.
            @for p in a.periods.iter().skip(1) {
                line class="rebase" x1=(f1(edge(p.start))) y1=(TOP) x2=(f1(edge(p.start))) y2=(BOTTOM)
                    stroke=(INK) stroke-width="1" stroke-dasharray="2 3" {}
            }
            @for p in &a.periods {
                line class=(if kind == ChartKind::Run { "median" } else { "centre" })
                    x1=(f1(edge(p.start))) y1=(f1(y(p.centre))) x2=(f1(edge(p.start + p.points))) y2=(f1(y(p.centre)))
                    stroke=(INK) stroke-width="1.5" {}
                @if let (Some(l), Some(u)) = (p.lower_limit, p.upper_limit) {
                    @for v in [l, u] {
                        line class="limit" x1=(f1(edge(p.start))) y1=(f1(y(v))) x2=(f1(edge(p.start + p.points))) y2=(f1(y(v)))
                            stroke="#7f7f7f" stroke-width="1.5" stroke-dasharray="6 4" {}
                    }
                }
            }
            @if kind == ChartKind::P {
                @for side in [false, true] {
                    path class="limit" fill="none" stroke="#7f7f7f" stroke-width="1.5" stroke-dasharray="6 4"
                        d=(step_path(a, side, &edge, &y)) {}
                }
            }
            @if let Some(p) = last {
                text class=(if kind == ChartKind::Run { "median-label" } else { "centre-label" })
                    x=(RIGHT) y=(f1(y(p.centre) - 6.0)) text-anchor="end" font-size="12" fill=(INK) {
                    (centre_word) " " (fmt(p.centre))
                }
                @if let (Some(l), Some(u)) = (p.lower_limit, p.upper_limit) {
                    text class="limit-label" x=(RIGHT) y=(f1(y(u) - 5.0)) text-anchor="end" font-size="11" fill="#595959" {
                        "Upper limit " (fmt(u))
                    }
                    text class="limit-label" x=(RIGHT) y=(f1(y(l) + 14.0)) text-anchor="end" font-size="11" fill="#595959" {
                        "Lower limit " (fmt(l))
                    }
                }
            }
            @if let Some(t) = a.target {
                line class="target" x1=(LEFT) y1=(f1(y(t))) x2=(RIGHT) y2=(f1(y(t))) stroke=(RED) stroke-width="1.5" stroke-dasharray="2 3" {}
                text class="target-label" x=(LEFT + 4.0) y=(f1(y(t) - 6.0)) font-size="12" fill=(RED) { "Target " (fmt(t)) }
            }
            polyline class="values" points=(line.join(" ")) fill="none" stroke=(GREY) stroke-width="1.5" {}
            @for (i, p) in a.points.iter().enumerate() {
                @let (fill, name) = colour(p.point_type);
                @let special = p.point_type != PointType::CommonCause;
                circle class=(format!("dot {}", kebab(p.point_type))) cx=(f1(x(i))) cy=(f1(y(p.value)))
                    r=(if special { "5" } else { "4" }) fill=(fill) stroke=(if special { INK } else { fill }) stroke-width="1" {
                    title { (p.date) ": " (fmt(p.value)) (unit) " (" (name) ")" }
                }
            }
            @for i in &labelled {
                @let anchor = if *i == 0 { "start" } else if *i + 1 == a.points.len() { "end" } else { "middle" };
                text class="tick date" x=(f1(x(*i))) y=(BOTTOM + 18.0) text-anchor=(anchor) font-size="12" fill=(INK) { (dates[*i]) }
            }
            @for (k, m) in a.markers.iter().enumerate() {
                @let mx = marker_x(&m.date);
                g class="marker" {
                    title { (m.date) ": " (marker_word(m.kind)) " " (m.text) }
                    line x1=(f1(mx)) y1=(TOP) x2=(f1(mx)) y2=(BOTTOM) stroke=(PURPLE) stroke-width="1" stroke-opacity="0.35" {}
                    path d=(format!("M{} {} l-6 10 h12 z", f1(mx), BOTTOM + 26.0)) fill=(PURPLE) {}
                    text x=(f1(mx)) y=(BOTTOM + 50.0) text-anchor="middle" font-size="11" fill=(PURPLE) { (k + 1) }
                }
            }
            (legend_row(&legend, kind, a.target.is_some(), !a.markers.is_empty()))
        }
    }
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

fn kebab(t: PointType) -> String {
    serde_json::to_value(t)
        .ok()
        .and_then(|v| v.as_str().map(|s| s.replace('_', "-")))
        .unwrap_or_default()
}

fn marker_word(k: convene_model::chart::MarkerKind) -> &'static str {
    match k {
        convene_model::chart::MarkerKind::Pdsa => "PDSA cycle:",
        convene_model::chart::MarkerKind::Rebase => "limits recalculated:",
        convene_model::chart::MarkerKind::Annotation => "note:",
    }
}

/// The per-point upper (or lower) limit of a p-chart as a step line.
fn step_path(
    a: &Analysis,
    upper: bool,
    edge: &dyn Fn(usize) -> f64,
    y: &dyn Fn(f64) -> f64,
) -> String {
    let mut d = String::new();
    for (i, p) in a.points.iter().enumerate() {
        let Some(v) = (if upper { p.upper_limit } else { p.lower_limit }) else {
            continue;
        };
        let start_new = i == 0 || a.points[i - 1].period != p.period;
        d.push_str(&format!(
            "{}{} {} H{} ",
            if start_new { "M" } else { "L" },
            f1(edge(i)),
            f1(y(v)),
            f1(edge(i + 1))
        ));
    }
    d
}

/// The two icons as badges with their words in `<title>`.
fn icons(a: &Analysis) -> Markup {
    let variation = a.variation.map(|v| {
        let fill = match v {
            convene_model::chart::Variation::CommonCause => GREY,
            convene_model::chart::Variation::ImprovementHigh
            | convene_model::chart::Variation::ImprovementLow => BLUE,
            convene_model::chart::Variation::ConcernHigh
            | convene_model::chart::Variation::ConcernLow => ORANGE,
            _ => PURPLE,
        };
        (v.label(), v.letter(), fill, "Variation")
    });
    let assurance = a.assurance.map(|x| {
        let fill = match x {
            convene_model::chart::Assurance::ConsistentPass => BLUE,
            convene_model::chart::Assurance::ConsistentFail => ORANGE,
            convene_model::chart::Assurance::Inconsistent => GREY,
        };
        (x.label(), x.letter(), fill, "Assurance")
    });
    let badges: Vec<_> = [variation, assurance].into_iter().flatten().collect();
    html! {
        @for (k, (label, letter, fill, kind)) in badges.iter().enumerate() {
            // 64 px a badge, so the words under them do not touch.
            @let bx = W - 8.0 - 64.0 * (badges.len() - k) as f64 + 18.0;
            g class=(format!("icon {}", kind.to_lowercase())) {
                title { (kind) ": " (label) }
                rect x=(f1(bx)) y="8" width="28" height="28" rx="14" fill=(fill) stroke=(INK) stroke-width="1" {}
                text x=(f1(bx + 14.0)) y="27" text-anchor="middle" font-size="14" font-weight="bold" fill="#ffffff" {
                    @if letter.is_empty() { (PreEscaped("&#8776;")) } @else { (letter) }
                }
                text x=(f1(bx + 14.0)) y="48" text-anchor="middle" font-size="9" fill=(INK) { (kind) }
            }
        }
    }
}

fn legend_row(types: &[PointType], kind: ChartKind, target: bool, markers: bool) -> Markup {
    let centre = match kind {
        ChartKind::Run => "Median",
        ChartKind::Xmr => "Mean",
        ChartKind::P => "Overall proportion",
    };
    // Items left to right, on a second row when the first is full.
    let (mut x, mut row) = (LEFT, 0.0);
    let mut items: Vec<(f64, f64, Markup)> = Vec::new();
    let mut push = |w: f64, m: Markup| {
        if x + w > RIGHT && x > LEFT {
            x = LEFT;
            row += 1.0;
        }
        items.push((x, row, m));
        x += w;
    };
    for t in types {
        let (fill, name) = colour(*t);
        push(
            24.0 + 7.0 * name.len() as f64,
            html! { rect width="10" height="10" y="-9" fill=(fill) stroke=(INK) stroke-width="0.5" {} text x="14" font-size="12" fill=(INK) { (name) } },
        );
    }
    push(
        34.0 + 7.0 * centre.len() as f64,
        html! { line x1="0" x2="20" y1="-4" y2="-4" stroke=(INK) stroke-width="1.5" {} text x="24" font-size="12" fill=(INK) { (centre) } },
    );
    if kind != ChartKind::Run {
        push(
            34.0 + 7.0 * 14.0,
            html! { line x1="0" x2="20" y1="-4" y2="-4" stroke="#7f7f7f" stroke-width="1.5" stroke-dasharray="6 4" {} text x="24" font-size="12" fill=(INK) { "Process limits" } },
        );
    }
    if target {
        push(
            34.0 + 7.0 * 6.0,
            html! { line x1="0" x2="20" y1="-4" y2="-4" stroke=(RED) stroke-width="1.5" stroke-dasharray="2 3" {} text x="24" font-size="12" fill=(RED) { "Target" } },
        );
    }
    if markers {
        push(
            30.0 + 7.0 * 16.0,
            html! { path d="M6 -10 l-6 10 h12 z" fill=(PURPLE) {} text x="16" font-size="12" fill=(INK) { "PDSA / annotation" } },
        );
    }
    html! {
        g class="legend" aria-hidden="true" {
            @for (lx, row, m) in items {
                g transform=(format!("translate({} {})", f1(lx), H - 30.0 + 18.0 * row)) { (m) }
            }
        }
    }
}

/// A standalone SVG file.
pub fn document(a: &Analysis) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{}\n",
        svg(a, "chart").into_string()
    )
}
