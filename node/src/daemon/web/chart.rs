//! Run charts: a measure's values in date order with their median, the
//! chart improvement teams read to tell signal from noise. Drawn as SVG on
//! the server, so it needs no script and prints well.
//!
//! Two run-chart rules are marked: a *shift* (six or more points in a row on
//! one side of the median; points on the median neither break nor count)
//! and a *trend* (five or more points in a row going the same way).

use maud::{Markup, html};

/// What a run chart shows.
#[derive(Debug, Clone, PartialEq)]
pub struct RunChart {
    /// The median of all points.
    pub median: f64,
    /// Indexes (in date order) of points that are part of a shift.
    pub shift: Vec<usize>,
    /// Indexes of points that are part of a trend.
    pub trend: Vec<usize>,
}

const SHIFT: usize = 6;
const TREND: usize = 5;

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        0.0
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

impl RunChart {
    /// Applies the rules to values in date order.
    pub fn analyse(values: &[f64]) -> Self {
        let m = median(values);
        // Shifts: runs on one side, skipping points on the median.
        let mut shift = Vec::new();
        let mut run: Vec<usize> = Vec::new();
        let mut side = 0i8;
        let close = |run: &mut Vec<usize>, shift: &mut Vec<usize>| {
            if run.len() >= SHIFT {
                shift.extend(run.iter().copied());
            }
            run.clear();
        };
        for (i, v) in values.iter().enumerate() {
            let s = if *v > m {
                1
            } else if *v < m {
                -1
            } else {
                continue;
            };
            if s != side {
                close(&mut run, &mut shift);
                side = s;
            }
            run.push(i);
        }
        close(&mut run, &mut shift);
        // Trends: strictly rising or falling runs (equal values end a run).
        let mut trend = Vec::new();
        let mut start = 0;
        let mut dir = 0i8;
        for i in 1..=values.len() {
            let d = if i < values.len() {
                match values[i].total_cmp(&values[i - 1]) {
                    std::cmp::Ordering::Greater => 1,
                    std::cmp::Ordering::Less => -1,
                    std::cmp::Ordering::Equal => 0,
                }
            } else {
                0
            };
            if d != dir || d == 0 {
                if dir != 0 && i - start >= TREND {
                    trend.extend(start..i);
                }
                start = i - 1;
                dir = d;
            }
        }
        Self {
            median: m,
            shift,
            trend,
        }
    }
}

fn fmt(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e12 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// An accessible SVG run chart of `points` (date, value), which must be in
/// date order. `id` makes the SVG's title and description ids unique.
pub fn run_chart_svg(
    id: &str,
    name: &str,
    unit: &str,
    points: &[(String, f64)],
    target: Option<f64>,
) -> Markup {
    let (w, h) = (640.0, 260.0);
    let (left, right, top, bottom) = (56.0, 16.0, 16.0, 44.0);
    let values: Vec<f64> = points.iter().map(|p| p.1).collect();
    let chart = RunChart::analyse(&values);
    let mut lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let mut hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if let Some(t) = target {
        lo = lo.min(t);
        hi = hi.max(t);
    }
    if !lo.is_finite() {
        (lo, hi) = (0.0, 1.0);
    }
    if (hi - lo).abs() < f64::EPSILON {
        (lo, hi) = (lo - 1.0, hi + 1.0);
    }
    let pad = (hi - lo) * 0.1;
    let (lo, hi) = (lo - pad, hi + pad);
    let n = points.len();
    let x = |i: usize| {
        if n <= 1 {
            left + (w - left - right) / 2.0
        } else {
            left + (w - left - right) * i as f64 / (n - 1) as f64
        }
    };
    let y = |v: f64| top + (h - top - bottom) * (hi - v) / (hi - lo);
    let line: String = points
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{:.1},{:.1}", x(i), y(p.1)))
        .collect::<Vec<_>>()
        .join(" ");
    let unit_text = if unit.is_empty() {
        String::new()
    } else {
        format!(" {unit}")
    };
    let description = match (points.first(), points.last()) {
        (Some(first), Some(last)) => format!(
            "{n} values from {} to {}, median {}{unit_text}.{}{}",
            first.0,
            last.0,
            fmt(chart.median),
            if chart.shift.is_empty() {
                ""
            } else {
                " A shift: six or more values in a row on one side of the median."
            },
            if chart.trend.is_empty() {
                ""
            } else {
                " A trend: five or more values in a row rising or falling."
            },
        ),
        _ => "No values yet.".to_string(),
    };
    // Label at most about eight dates along the axis.
    let every = n.div_ceil(8).max(1);
    html! {
        svg class="run-chart" viewBox=(format!("0 0 {w} {h}")) role="img"
            aria-labelledby=(format!("{id}-title {id}-desc")) {
            title id=(format!("{id}-title")) { "Run chart: " (name) }
            desc id=(format!("{id}-desc")) { (description) }
            line class="axis" x1=(left) y1=(h - bottom) x2=(w - right) y2=(h - bottom) {}
            line class="axis" x1=(left) y1=(top) x2=(left) y2=(h - bottom) {}
            text class="tick" x=(left - 6.0) y=(y(hi - pad) + 4.0) text-anchor="end" { (fmt(hi - pad)) }
            text class="tick" x=(left - 6.0) y=(y(lo + pad) + 4.0) text-anchor="end" { (fmt(lo + pad)) }
            @if n > 0 {
                line class="median" x1=(left) y1=(y(chart.median)) x2=(w - right) y2=(y(chart.median)) {}
                text class="median-label" x=(w - right) y=(y(chart.median) - 6.0) text-anchor="end" {
                    "Median " (fmt(chart.median))
                }
            }
            @if let Some(t) = target {
                line class="target" x1=(left) y1=(y(t)) x2=(w - right) y2=(y(t)) {}
                text class="target-label" x=(left + 4.0) y=(y(t) - 6.0) { "Target " (fmt(t)) }
            }
            polyline class="run" points=(line) {}
            @for (i, (date, value)) in points.iter().enumerate() {
                circle class=(if chart.shift.contains(&i) || chart.trend.contains(&i) { "point signal" } else { "point" })
                    cx=(format!("{:.1}", x(i))) cy=(format!("{:.1}", y(*value))) r="4" {
                    title { (date) ": " (fmt(*value)) (unit_text) }
                }
                @if i % every == 0 || i + 1 == n {
                    text class="tick" x=(format!("{:.1}", x(i))) y=(h - bottom + 18.0)
                        text-anchor=(if i + 1 == n && n > 1 { "end" } else { "middle" }) { (date) }
                }
            }
        }
        p class="chart-note" { (description) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(RunChart::analyse(&[3.0, 1.0, 2.0]).median, 2.0);
        assert_eq!(RunChart::analyse(&[4.0, 1.0, 2.0, 3.0]).median, 2.5);
    }

    #[test]
    fn a_shift_needs_six_on_one_side() {
        // Median 6.5: six values below it, then six above.
        let v = [1.0, 2.0, 1.0, 2.0, 1.0, 5.0, 9.0, 8.0, 9.0, 8.0, 9.0, 8.0];
        let c = RunChart::analyse(&v);
        assert_eq!(c.median, 6.5);
        assert_eq!(c.shift, vec![0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
        let v = [1.0, 9.0, 1.0, 9.0, 1.0, 9.0];
        assert!(RunChart::analyse(&v).shift.is_empty());
    }

    #[test]
    fn points_on_the_median_do_not_break_a_shift() {
        let v = [
            1.0, 1.0, 1.0, 5.0, 1.0, 1.0, 1.0, 9.0, 9.0, 9.0, 9.0, 9.0, 9.0,
        ];
        let c = RunChart::analyse(&v);
        assert_eq!(c.median, 5.0);
        // Six below (the 5.0 on the median skipped), then six above.
        assert_eq!(c.shift.len(), 12);
        assert!(!c.shift.contains(&3));
    }

    #[test]
    fn a_trend_needs_five_rising() {
        let c = RunChart::analyse(&[5.0, 1.0, 2.0, 3.0, 4.0, 5.0, 2.0]);
        assert_eq!(c.trend, vec![1, 2, 3, 4, 5]);
        assert!(RunChart::analyse(&[1.0, 2.0, 3.0, 4.0]).trend.is_empty());
        assert!(
            RunChart::analyse(&[1.0, 2.0, 2.0, 3.0, 4.0])
                .trend
                .is_empty()
        );
    }

    #[test]
    fn the_svg_is_labelled_and_has_one_point_per_value() {
        let pts: Vec<(String, f64)> = (1..=8)
            .map(|d| (format!("2026-01-{d:02}"), f64::from(d)))
            .collect();
        let svg = run_chart_svg("m0", "Calls answered", "%", &pts, Some(9.0)).into_string();
        assert_eq!(svg.matches("<circle").count(), 8);
        assert!(svg.contains("Median 4.5"), "{svg}");
        assert!(svg.contains("Target 9"));
        assert!(svg.contains("aria-labelledby=\"m0-title m0-desc\""));
        assert!(svg.contains("A trend"));
        // Names are escaped.
        let svg = run_chart_svg("m1", "<b>", "", &pts, None).into_string();
        assert!(svg.contains("&lt;b&gt;"));
    }
}
