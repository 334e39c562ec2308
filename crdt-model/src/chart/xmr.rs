//! The XmR (individuals) chart of *Making Data Count*, calculated as
//! NHSRplotthedots's `ptd_spc_standard` does with its defaults:
//!
//! - centre: the mean of the period's baseline values (every value unless
//!   `baseline_points`, NHSRplotthedots's `fix_after_n_points`, says
//!   fewer);
//! - moving ranges `|x[i] − x[i−1]|` of the baseline; their mean; then
//!   outlier screening (on by default there): moving ranges of 3.267 × that
//!   mean or more are left out and the mean is taken again;
//! - process limits: mean ± 2.66 × mean moving range (3 sigma, as
//!   2.66 = 3 / 1.128); two-sigma lines at mean ± (2 × 2.66 / 3) × mean
//!   moving range.
//!
//! Each period (see `series`) gets its own, so a rebase recalculates them.

use super::series::Series;
use super::spc::{self, Lines};
use super::{Direction, Period, Point};

/// 3 / d2, d2 = 1.128 for moving ranges of two.
pub const LIMIT: f64 = 2.66;
/// D4 for moving ranges of two: the screen for outlying moving ranges.
pub const SCREEN: f64 = 3.267;

/// Centre line and limits of one period.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    pub mean: f64,
    /// `None` with a single value: no moving range.
    pub mean_moving_range: Option<f64>,
}

impl Limits {
    /// From the period's values `y`, of which the first `baseline` (all if
    /// `None`) make the limits.
    pub fn of(y: &[f64], baseline: Option<usize>) -> Self {
        let b = baseline.unwrap_or(y.len()).min(y.len());
        let base = &y[..b];
        let mean = base.iter().sum::<f64>() / b as f64;
        let mr: Vec<f64> = base.windows(2).map(|w| (w[1] - w[0]).abs()).collect();
        let mean_moving_range = if mr.is_empty() {
            None
        } else {
            let first = mr.iter().sum::<f64>() / mr.len() as f64;
            let kept: Vec<f64> = mr.iter().copied().filter(|m| *m < SCREEN * first).collect();
            // All moving ranges equal to 0 leave none below 0 × 3.267: the
            // mean moving range is then 0, as it was (R would give NaN).
            Some(if kept.is_empty() {
                first
            } else {
                kept.iter().sum::<f64>() / kept.len() as f64
            })
        };
        Self {
            mean,
            mean_moving_range,
        }
    }

    pub fn lines(&self) -> Option<Lines> {
        self.mean_moving_range.map(|amr| Lines {
            centre: self.mean,
            lower: self.mean - LIMIT * amr,
            upper: self.mean + LIMIT * amr,
            lower_two_sigma: self.mean - 2.0 * LIMIT / 3.0 * amr,
            upper_two_sigma: self.mean + 2.0 * LIMIT / 3.0 * amr,
        })
    }
}

/// Periods and points of an XmR chart.
pub fn analyse(s: &Series, direction: Direction) -> (Vec<Period>, Vec<Point>) {
    let ys = s.ys();
    let mut periods = Vec::new();
    let mut points = Vec::new();
    for (k, range) in s.periods().into_iter().enumerate() {
        let y = &ys[range.clone()];
        let limits = Limits::of(y, s.baseline);
        let lines = limits.lines();
        let baseline = s.baseline.unwrap_or(y.len()).min(y.len());
        let start = &s.starts[k];
        periods.push(Period {
            start: range.start,
            points: y.len(),
            baseline_points: baseline,
            from: s.points[range.start].date.clone(),
            to: s.points[range.end - 1].date.clone(),
            centre: limits.mean,
            lower_limit: lines.map(|l| l.lower),
            upper_limit: lines.map(|l| l.upper),
            mean_moving_range: limits.mean_moving_range,
            runs: None,
            reason: start.reason.clone(),
            pdsa: start.pdsa.clone(),
        });
        let each = vec![lines; y.len()];
        for (j, (kind, flags)) in spc::rules(y, &each, direction).into_iter().enumerate() {
            let v = &s.points[range.start + j];
            points.push(Point {
                date: v.date.clone(),
                value: v.y,
                numerator: None,
                denominator: None,
                period: k,
                baseline: j < baseline,
                centre: limits.mean,
                lower_limit: lines.map(|l| l.lower),
                upper_limit: lines.map(|l| l.upper),
                lower_two_sigma: lines.map(|l| l.lower_two_sigma),
                upper_two_sigma: lines.map(|l| l.upper_two_sigma),
                point_type: kind,
                flags,
                note: String::new(),
            });
        }
    }
    (periods, points)
}
