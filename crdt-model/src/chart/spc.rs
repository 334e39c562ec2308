//! The *Making Data Count* special-cause rules for SPC charts, ported from
//! NHSRplotthedots (`R/ptd_calculate_point_type.R`, `R/ptd_spc_standard.R`)
//! so that a chart here and one from `ptd_spc()` with its defaults flag the
//! same points the same way:
//!
//! - **beyond limit**: a point above the upper or below the lower process
//!   limit (strictly);
//! - **trend**: 7 points in a row each strictly higher (or lower) than the
//!   one before; an equal value breaks it;
//! - **two of three**: of three points in a row, all on one side of the
//!   mean, at least two lie between the two-sigma line and the limit on
//!   that side (a point beyond the limit does not count); only those two
//!   are flagged;
//! - **shift**: 7 points in a row on one side of the mean; a point exactly
//!   on the mean breaks it.
//!
//! Every point of the run (all 7, and every point after while it lasts) is
//! flagged. A point's colour is its first flag in the order above; a point
//! in a trend takes the trend's direction, the right-hand one where two
//! trends meet (NHSRplotthedots's rule). Rules run within a period, never
//! across a rebase.

use super::{Direction, Flag, PointType, Rule, Side};

/// Run and trend length of the SPC rules.
pub const RUN: usize = 7;

/// The limits the rules read, per point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lines {
    pub centre: f64,
    pub lower: f64,
    pub upper: f64,
    pub lower_two_sigma: f64,
    pub upper_two_sigma: f64,
}

/// Flags and colour of each point of one period. `lines` is `None` where
/// no limits could be calculated (a period of one value): only the shift
/// and trend rules then apply.
pub fn rules(
    y: &[f64],
    lines: &[Option<Lines>],
    direction: Direction,
) -> Vec<(PointType, Vec<Flag>)> {
    let n = y.len();
    let rtm: Vec<i8> = y
        .iter()
        .zip(lines)
        .map(|(v, l)| l.map_or(0, |l| sign(v - l.centre)))
        .collect();
    let outside: Vec<bool> = y
        .iter()
        .zip(lines)
        .map(|(v, l)| l.is_some_and(|l| *v > l.upper || *v < l.lower))
        .collect();
    let close: Vec<bool> = y
        .iter()
        .zip(lines)
        .zip(&outside)
        .map(|((v, l), out)| {
            !out && l.is_some_and(|l| *v < l.lower_two_sigma || *v > l.upper_two_sigma)
        })
        .collect();
    let trend = part_of_run(&trend_ends(y));
    let shift = part_of_run(&one_side_ends(&rtm));
    let two = two_of_three(&close, &rtm);
    let trend_side = trend_sides(y, &trend);
    let side_of = |r: i8| if r > 0 { Side::High } else { Side::Low };
    let flag = |rule, side| Flag {
        rule,
        side,
        meaning: direction.meaning(side),
    };
    (0..n)
        .map(|i| {
            let mut flags = Vec::new();
            if outside[i] {
                // NHSRplotthedots: "Above UCL" only when above the mean.
                let side = if rtm[i] == 1 { Side::High } else { Side::Low };
                flags.push(flag(Rule::BeyondLimit, side));
            }
            if trend[i] {
                flags.push(flag(Rule::Trend, trend_side[i]));
            }
            if two[i] {
                flags.push(flag(Rule::TwoOfThree, side_of(rtm[i])));
            }
            if shift[i] {
                flags.push(flag(Rule::Shift, side_of(rtm[i])));
            }
            (PointType::of(flags.first()), flags)
        })
        .collect()
}

fn sign(v: f64) -> i8 {
    if v > 0.0 {
        1
    } else if v < 0.0 {
        -1
    } else {
        0
    }
}

/// `ptd_seven_point_trend`: ±1 at the last point of 7 strictly rising or
/// falling values.
pub fn trend_ends(y: &[f64]) -> Vec<i8> {
    (0..y.len())
        .map(|i| {
            if i + 1 < RUN {
                return 0;
            }
            let d: Vec<i8> = (i + 1 - RUN..i).map(|j| sign(y[j + 1] - y[j])).collect();
            if d.iter().all(|&s| s == 1) {
                1
            } else if d.iter().all(|&s| s == -1) {
                -1
            } else {
                0
            }
        })
        .collect()
}

/// `ptd_seven_point_one_side_mean`: 1 at the last point of 7 on one side.
pub fn one_side_ends(rtm: &[i8]) -> Vec<i8> {
    (0..rtm.len())
        .map(|i| {
            i8::from(i + 1 >= RUN && rtm[i] != 0 && (i + 1 - RUN..i).all(|j| rtm[j] == rtm[i]))
        })
        .collect()
}

/// `ptd_part_of_seven_trend`: a point is part of a run if it, or one of the
/// 6 after it, ends one.
pub fn part_of_run(ends: &[i8]) -> Vec<bool> {
    (0..ends.len())
        .map(|i| (i..(i + RUN).min(ends.len())).any(|j| ends[j] != 0))
        .collect()
}

/// `ptd_two_in_three` then `ptd_part_of_two_in_three`.
pub fn two_of_three(close: &[bool], rtm: &[i8]) -> Vec<bool> {
    let n = close.len();
    // A window of three starting at `s` (may hang over either end, where
    // the padding counts as neither close nor on a side).
    let window = |s: isize| {
        let (mut near, mut side) = (0, 0i32);
        for j in s..s + 3 {
            if j >= 0 && (j as usize) < n {
                near += usize::from(close[j as usize]);
                side += i32::from(rtm[j as usize]);
            }
        }
        near >= 2 && side.abs() == 3
    };
    (0..n)
        .map(|i| {
            let i = i as isize;
            close[i as usize] && (window(i - 2) || window(i - 1) || window(i))
        })
        .collect()
}

/// The direction each trend point is labelled with (`sdy` in
/// `ptd_special_cause_type`): the step to the next point if that point is
/// in a trend too, else the step from the previous one; no step (equal
/// values) reads as falling, as in NHSRplotthedots.
fn trend_sides(y: &[f64], trend: &[bool]) -> Vec<Side> {
    let n = y.len();
    let step = |a: usize, b: usize| sign(y[b] - y[a]);
    (0..n)
        .map(|i| {
            let s = if n < 2 {
                0
            } else if i + 1 < n && trend[i] && trend[i + 1] {
                step(i, i + 1)
            } else if i == 0 {
                0
            } else {
                step(i - 1, i)
            };
            if s == 1 { Side::High } else { Side::Low }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    //! The cases of NHSRplotthedots's `tests/testthat/test-ptd_calculate_point_type.R`.
    use super::*;

    fn ones(v: &[i8]) -> Vec<bool> {
        v.iter().map(|&x| x != 0).collect()
    }

    #[test]
    fn seven_on_one_side() {
        assert_eq!(one_side_ends(&[]), Vec::<i8>::new());
        assert_eq!(one_side_ends(&[1; 6]), vec![0; 6]);
        assert_eq!(one_side_ends(&[1, 1, 1, 1, 1, 1, -1]), vec![0; 7]);
        let mut v = vec![1; 8];
        v.push(-1);
        assert_eq!(one_side_ends(&v), vec![0, 0, 0, 0, 0, 0, 1, 1, 0]);
        let v: Vec<i8> = v.iter().map(|x| -x).collect();
        assert_eq!(one_side_ends(&v), vec![0, 0, 0, 0, 0, 0, 1, 1, 0]);
    }

    #[test]
    fn part_of_seven() {
        assert!(part_of_run(&[]).is_empty());
        assert_eq!(part_of_run(&[0; 6]), vec![false; 6]);
        assert_eq!(
            part_of_run(&[0, 0, 0, 0, 0, 0, 1, 0]),
            ones(&[1, 1, 1, 1, 1, 1, 1, 0])
        );
        assert_eq!(
            part_of_run(&[0, 0, 0, 0, 0, 0, 0, 1, 0]),
            ones(&[0, 1, 1, 1, 1, 1, 1, 1, 0])
        );
        assert_eq!(
            part_of_run(&[0, 0, 0, 0, 0, 0, -1, 0]),
            ones(&[1, 1, 1, 1, 1, 1, 1, 0])
        );
    }

    #[test]
    fn seven_point_trend() {
        let f = |v: &[f64]| trend_ends(v);
        assert!(f(&[]).is_empty());
        assert_eq!(f(&[1., 2., 3., 4., 5., 6.]), vec![0; 6]);
        assert_eq!(f(&[1., 2., 3., 3., 4., 5., 6.]), vec![0; 7]);
        assert_eq!(f(&[1., 2., 3., 4., 5., 6., 7.]), vec![0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(
            f(&[2., 1., 2., 3., 4., 5., 6., 7., 3.]),
            vec![0, 0, 0, 0, 0, 0, 0, 1, 0]
        );
        assert_eq!(f(&[7., 6., 5., 4., 3., 2., 1.]), vec![0, 0, 0, 0, 0, 0, -1]);
        assert_eq!(
            f(&[2., 7., 6., 5., 4., 3., 2., 1., 3.]),
            vec![0, 0, 0, 0, 0, 0, 0, -1, 0]
        );
    }

    #[test]
    fn two_in_three() {
        let b = |v: &[u8]| v.iter().map(|&x| x == 1).collect::<Vec<bool>>();
        assert!(two_of_three(&[], &[]).is_empty());
        for close in [[1, 0, 1], [0, 1, 1], [1, 1, 0]] {
            // Only the close points are flagged (ptd_part_of_two_in_three).
            assert_eq!(two_of_three(&b(&close), &[1, 1, 1]), b(&close));
            // Opposite sides of the mean: nothing.
            assert_eq!(two_of_three(&b(&close), &[1, -1, 1]), vec![false; 3]);
        }
        assert_eq!(
            two_of_three(&b(&[0, 0, 1, 0, 1, 0, 0]), &[1; 7]),
            b(&[0, 0, 1, 0, 1, 0, 0])
        );
        assert_eq!(
            two_of_three(&b(&[0, 0, 1, 1, 0, 0, 0]), &[1; 7]),
            b(&[0, 0, 1, 1, 0, 0, 0])
        );
        assert_eq!(
            two_of_three(&b(&[0, 0, 1, 0, 1, 0, 0]), &[1, -1, 1, -1, 1, -1, 1]),
            vec![false; 7]
        );
        // Too far apart.
        assert_eq!(two_of_three(&b(&[1, 0, 0, 1]), &[1; 4]), vec![false; 4]);
        assert_eq!(
            two_of_three(&b(&[1, 0, 0, 1, 1]), &[1; 5]),
            b(&[0, 0, 0, 1, 1])
        );
    }

    #[test]
    fn a_peak_between_two_trends_takes_the_right_hand_direction() {
        // 1..7 then down to 1: the 7 is in both trends and reads as falling.
        let y: Vec<f64> = (1..=7).chain((1..7).rev()).map(f64::from).collect();
        let trend = part_of_run(&trend_ends(&y));
        assert!(trend.iter().all(|&t| t));
        let sides = trend_sides(&y, &trend);
        assert_eq!(sides[5], Side::High);
        assert_eq!(sides[6], Side::Low);
        assert_eq!(sides[12], Side::Low);
    }
}
