//! The p-chart: a proportion (numerator / denominator per value) whose
//! limits depend on each value's denominator.
//!
//! - centre: p̄ = Σ numerators / Σ denominators over the period's baseline
//!   (every value unless `baseline_points` says fewer);
//! - sigma for value *i*: √(p̄(1 − p̄) / nᵢ); process limits p̄ ± 3 sigma and
//!   two-sigma lines p̄ ± 2 sigma, each clamped to [0, 1];
//!
//! as in Provost & Murray, *The Health Care Data Guide* (2011), and the
//! attribute charts of *Making Data Count*. The special-cause rules and
//! icons are the XmR chart's (`spc`, `icons`), applied with each point's
//! own limits: NHSRplotthedots draws no p-charts, so this is the same
//! reading carried over.

use super::series::Series;
use super::spc::{self, Lines};
use super::{Direction, Period, Point};

/// p̄ of the first `baseline` values of a period.
pub fn p_bar(numerators: &[f64], denominators: &[f64], baseline: Option<usize>) -> f64 {
    let b = baseline.unwrap_or(numerators.len()).min(numerators.len());
    let num: f64 = numerators[..b].iter().sum();
    let den: f64 = denominators[..b].iter().sum();
    if den > 0.0 { num / den } else { 0.0 }
}

/// The lines for one value with denominator `n`.
pub fn lines(p_bar: f64, n: f64) -> Lines {
    let sigma = (p_bar * (1.0 - p_bar) / n).sqrt();
    let clamp = |v: f64| v.clamp(0.0, 1.0);
    Lines {
        centre: p_bar,
        lower: clamp(p_bar - 3.0 * sigma),
        upper: clamp(p_bar + 3.0 * sigma),
        lower_two_sigma: clamp(p_bar - 2.0 * sigma),
        upper_two_sigma: clamp(p_bar + 2.0 * sigma),
    }
}

/// Periods and points of a p-chart.
pub fn analyse(s: &Series, direction: Direction) -> (Vec<Period>, Vec<Point>) {
    let mut periods = Vec::new();
    let mut points = Vec::new();
    for (k, range) in s.periods().into_iter().enumerate() {
        let vals = &s.points[range.clone()];
        let num: Vec<f64> = vals.iter().map(|v| v.numerator.unwrap_or(0.0)).collect();
        let den: Vec<f64> = vals.iter().map(|v| v.denominator.unwrap_or(1.0)).collect();
        let centre = p_bar(&num, &den, s.baseline);
        let baseline = s.baseline.unwrap_or(vals.len()).min(vals.len());
        let each: Vec<Option<Lines>> = den.iter().map(|&n| Some(lines(centre, n))).collect();
        let y: Vec<f64> = vals.iter().map(|v| v.y).collect();
        let start = &s.starts[k];
        periods.push(Period {
            start: range.start,
            points: vals.len(),
            baseline_points: baseline,
            from: vals[0].date.clone(),
            to: vals[vals.len() - 1].date.clone(),
            centre,
            lower_limit: None,
            upper_limit: None,
            mean_moving_range: None,
            runs: None,
            reason: start.reason.clone(),
            pdsa: start.pdsa.clone(),
        });
        for (j, (kind, flags)) in spc::rules(&y, &each, direction).into_iter().enumerate() {
            let v = &vals[j];
            let l = each[j];
            points.push(Point {
                date: v.date.clone(),
                value: v.y,
                numerator: v.numerator,
                denominator: v.denominator,
                period: k,
                baseline: j < baseline,
                centre,
                lower_limit: l.map(|l| l.lower),
                upper_limit: l.map(|l| l.upper),
                lower_two_sigma: l.map(|l| l.lower_two_sigma),
                upper_two_sigma: l.map(|l| l.upper_two_sigma),
                point_type: kind,
                flags,
                note: String::new(),
            });
        }
    }
    (periods, points)
}
