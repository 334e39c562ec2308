//! Run charts and their rules (Perla, Provost & Murray 2011; the IHI and
//! NHS England *Making Data Count* run-chart guidance):
//!
//! - **centre**: the median of the period's baseline, the first 12 values
//!   (or `baseline_points`), extended over the rest of the period;
//! - **shift**: 6 or more values in a row on one side of the median; a
//!   value on the median neither counts nor breaks the run;
//! - **trend**: 5 or more values in a row all going up or all going down.
//!   The convention chosen is the IHI's (Perla et al.): a value equal to
//!   the one before neither counts nor breaks the trend, and 5 means five
//!   values (four steps);
//! - **too few or too many runs**: a run is a series of values on one side
//!   of the median (values on it ignored); the count is checked against
//!   [`super::runs_table`];
//! - **astronomical point**: "obviously different", which needs a rule to
//!   be computed: a value further from the median than 3.145 × the median
//!   moving range of its period (Wheeler's limits for individuals from the
//!   median moving range, robust to the outlier itself) *and* further than
//!   twice that moving range from every other value (so the ends of a
//!   steady rise, which the trend rule covers, are not astronomical), in a
//!   period of at least 6 values with some variation.
//!
//! Rules run within a period; a rebase starts a new median.

use serde::Serialize;

use super::series::Series;
use super::{Direction, Flag, Period, Point, PointType, Rule, Side};

pub const SHIFT: usize = 6;
pub const TREND: usize = 5;
pub const BASELINE: usize = 12;
/// Wheeler's scaling constant for limits from the median moving range.
pub const ASTRONOMICAL: f64 = 3.145;

/// The runs rule's reading of one period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RunsTest {
    /// Values not on the median.
    pub useful: usize,
    pub runs: usize,
    /// Expected range; `None` below 10 useful observations.
    pub lower: Option<usize>,
    pub upper: Option<usize>,
}

impl RunsTest {
    pub fn too_few(&self) -> bool {
        self.lower.is_some_and(|l| self.runs < l)
    }

    pub fn too_many(&self) -> bool {
        self.upper.is_some_and(|u| self.runs > u)
    }
}

pub fn median(values: &[f64]) -> f64 {
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

fn side(v: f64, centre: f64) -> Option<Side> {
    if v > centre {
        Some(Side::High)
    } else if v < centre {
        Some(Side::Low)
    } else {
        None
    }
}

/// Indexes in shifts, with the shift's side.
pub fn shifts(y: &[f64], centre: f64) -> Vec<(usize, Side)> {
    let mut out = Vec::new();
    let mut run: Vec<usize> = Vec::new();
    let mut current = None;
    let mut close = |run: &mut Vec<usize>, s: Option<Side>| {
        if let Some(s) = s
            && run.len() >= SHIFT
        {
            out.extend(run.iter().map(|&i| (i, s)));
        }
        run.clear();
    };
    for (i, &v) in y.iter().enumerate() {
        let Some(s) = side(v, centre) else { continue };
        if Some(s) != current {
            close(&mut run, current);
            current = Some(s);
        }
        run.push(i);
    }
    close(&mut run, current);
    out.sort_by_key(|(i, _)| *i);
    out
}

/// Indexes in trends (repeated values included in the span), with the
/// trend's direction (`High` rising).
pub fn trends(y: &[f64]) -> Vec<(usize, Side)> {
    let mut out = Vec::new();
    if y.is_empty() {
        return out;
    }
    let close = |out: &mut Vec<(usize, Side)>, counted: &[usize], dir: Option<Side>| {
        if let (Some(d), Some(first), Some(last)) = (dir, counted.first(), counted.last())
            && counted.len() >= TREND
        {
            out.extend((*first..=*last).map(|i| (i, d)));
        }
    };
    // The values that count in the current run (repeats left out).
    let mut counted = vec![0usize];
    let mut dir = None;
    for i in 1..y.len() {
        let last = *counted.last().unwrap_or(&0);
        match side(y[i], y[last]) {
            None => {}
            Some(s) if dir.is_none() || dir == Some(s) => {
                counted.push(i);
                dir = Some(s);
            }
            Some(s) => {
                close(&mut out, &counted, dir);
                counted = vec![last, i];
                dir = Some(s);
            }
        }
    }
    close(&mut out, &counted, dir);
    // A value ending one trend and starting the next is listed twice: keep
    // the later trend's direction.
    out.sort_by_key(|(i, _)| *i);
    let mut dedup: Vec<(usize, Side)> = Vec::new();
    for (i, s) in out {
        match dedup.last_mut() {
            Some(last) if last.0 == i => last.1 = s,
            _ => dedup.push((i, s)),
        }
    }
    dedup
}

/// The runs rule for one period.
pub fn runs_test(y: &[f64], centre: f64) -> RunsTest {
    let sides: Vec<Side> = y.iter().filter_map(|&v| side(v, centre)).collect();
    let runs = if sides.is_empty() {
        0
    } else {
        1 + sides.windows(2).filter(|w| w[0] != w[1]).count()
    };
    let limits = super::runs_table::limits(sides.len());
    RunsTest {
        useful: sides.len(),
        runs,
        lower: limits.map(|l| l.0),
        upper: limits.map(|l| l.1),
    }
}

/// Indexes of astronomical points, with their side.
pub fn astronomical(y: &[f64], centre: f64) -> Vec<(usize, Side)> {
    if y.len() < 6 {
        return Vec::new();
    }
    let mr: Vec<f64> = y.windows(2).map(|w| (w[1] - w[0]).abs()).collect();
    let spread = median(&mr);
    if spread <= 0.0 {
        return Vec::new();
    }
    let isolated = |i: usize| {
        y.iter()
            .enumerate()
            .all(|(j, w)| j == i || (y[i] - w).abs() > 2.0 * spread)
    };
    y.iter()
        .enumerate()
        .filter(|(i, v)| (**v - centre).abs() > ASTRONOMICAL * spread && isolated(*i))
        .filter_map(|(i, &v)| side(v, centre).map(|s| (i, s)))
        .collect()
}

/// Periods and points of a run chart.
pub fn analyse(s: &Series, direction: Direction) -> (Vec<Period>, Vec<Point>) {
    let ys = s.ys();
    let mut periods = Vec::new();
    let mut points = Vec::new();
    for (k, range) in s.periods().into_iter().enumerate() {
        let y = &ys[range.clone()];
        let baseline = s.baseline.unwrap_or(BASELINE).min(y.len());
        let centre = median(&y[..baseline]);
        let mut flags: Vec<Vec<Flag>> = vec![Vec::new(); y.len()];
        let mut add = |found: Vec<(usize, Side)>, rule: Rule| {
            for (i, side) in found {
                flags[i].push(Flag {
                    rule,
                    side,
                    meaning: direction.meaning(side),
                });
            }
        };
        add(astronomical(y, centre), Rule::Astronomical);
        add(shifts(y, centre), Rule::Shift);
        add(trends(y), Rule::Trend);
        let start = &s.starts[k];
        periods.push(Period {
            start: range.start,
            points: y.len(),
            baseline_points: baseline,
            from: s.points[range.start].date.clone(),
            to: s.points[range.end - 1].date.clone(),
            centre,
            lower_limit: None,
            upper_limit: None,
            mean_moving_range: None,
            runs: Some(runs_test(y, centre)),
            reason: start.reason.clone(),
            pdsa: start.pdsa.clone(),
        });
        for (j, f) in flags.into_iter().enumerate() {
            let v = &s.points[range.start + j];
            points.push(Point {
                date: v.date.clone(),
                value: v.y,
                numerator: v.numerator,
                denominator: v.denominator,
                period: k,
                baseline: j < baseline,
                centre,
                lower_limit: None,
                upper_limit: None,
                lower_two_sigma: None,
                upper_two_sigma: None,
                point_type: PointType::of(f.first()),
                flags: f,
                note: String::new(),
            });
        }
    }
    (periods, points)
}
