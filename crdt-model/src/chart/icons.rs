//! The two *Making Data Count* icons, chosen exactly as NHSRplotthedots
//! chooses them (`ptd_get_icons` in `R/geom_ptd_icon.R` and
//! `R/ptd_calculate_assurance_type.R`):
//!
//! - **variation**: from the colour of the *last* point. Common cause;
//!   special cause improvement, drawn high or low by which way is better;
//!   special cause concern, likewise; or, where neither direction is
//!   better, special cause high or low (the purple icons).
//! - **assurance** (only with a target, and a direction): from the last
//!   point's limits. A target above the upper limit is consistently failed
//!   where higher is better (passed where lower is), one below the lower
//!   limit consistently passed (failed where lower is better), and one
//!   between the limits hit and miss.

use serde::Serialize;

use super::{Direction, Point, PointType};

/// The variation icon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Variation {
    CommonCause,
    ImprovementHigh,
    ImprovementLow,
    ConcernHigh,
    ConcernLow,
    NeutralHigh,
    NeutralLow,
}

impl Variation {
    /// What the icon says, in words (its accessible name).
    pub fn label(self) -> &'static str {
        match self {
            Self::CommonCause => "Common cause variation",
            Self::ImprovementHigh => "Special cause variation: improvement (higher)",
            Self::ImprovementLow => "Special cause variation: improvement (lower)",
            Self::ConcernHigh => "Special cause variation: concern (higher)",
            Self::ConcernLow => "Special cause variation: concern (lower)",
            Self::NeutralHigh => "Special cause variation: higher (neither direction is better)",
            Self::NeutralLow => "Special cause variation: lower (neither direction is better)",
        }
    }

    /// The letter drawn inside the badge: H or L for special cause, as
    /// the *Making Data Count* icons do, nothing for common cause.
    pub fn letter(self) -> &'static str {
        match self {
            Self::CommonCause => "",
            Self::ImprovementHigh | Self::ConcernHigh | Self::NeutralHigh => "H",
            Self::ImprovementLow | Self::ConcernLow | Self::NeutralLow => "L",
        }
    }
}

/// The assurance icon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Assurance {
    ConsistentPass,
    Inconsistent,
    ConsistentFail,
}

impl Assurance {
    pub fn label(self) -> &'static str {
        match self {
            Self::ConsistentPass => "Consistently passing the target",
            Self::Inconsistent => "Hit and miss: the target lies between the limits",
            Self::ConsistentFail => "Consistently failing the target",
        }
    }

    pub fn letter(self) -> &'static str {
        match self {
            Self::ConsistentPass => "P",
            Self::Inconsistent => "?",
            Self::ConsistentFail => "F",
        }
    }
}

/// The variation icon of a chart's points (in date order).
pub fn variation(points: &[Point], direction: Direction) -> Option<Variation> {
    let last = points.last()?;
    Some(match (last.point_type, direction) {
        (PointType::CommonCause, _) => Variation::CommonCause,
        (PointType::SpecialCauseNeutralHigh, _) => Variation::NeutralHigh,
        (PointType::SpecialCauseNeutralLow, _) => Variation::NeutralLow,
        (PointType::SpecialCauseImprovement, Direction::Higher) => Variation::ImprovementHigh,
        (PointType::SpecialCauseImprovement, _) => Variation::ImprovementLow,
        (PointType::SpecialCauseConcern, Direction::Higher) => Variation::ConcernLow,
        (PointType::SpecialCauseConcern, _) => Variation::ConcernHigh,
    })
}

/// The assurance icon, if there is a target and a direction.
pub fn assurance(points: &[Point], direction: Direction, target: Option<f64>) -> Option<Assurance> {
    let target = target?;
    let last = points.last()?;
    let higher = match direction {
        Direction::Higher => true,
        Direction::Lower => false,
        Direction::Neither => return None,
    };
    // No limits (one value in the last period): R's comparisons give NA
    // and `case_when` falls through to hit and miss.
    let above = last.upper_limit.is_some_and(|u| target > u);
    let below = last.lower_limit.is_some_and(|l| target < l);
    Some(match (above, below) {
        (true, _) if higher => Assurance::ConsistentFail,
        (true, _) => Assurance::ConsistentPass,
        (_, true) if higher => Assurance::ConsistentPass,
        (_, true) => Assurance::ConsistentFail,
        _ => Assurance::Inconsistent,
    })
}

#[cfg(test)]
mod tests {
    //! `tests/testthat/test-ptd_calculate_assurance_type.R`: limits (1, 3),
    //! (5, 7), (1, 5) against a target of 4.
    use super::*;

    fn last(lpl: f64, upl: f64) -> Vec<Point> {
        vec![Point {
            date: "2024-01-01".into(),
            value: 0.0,
            numerator: None,
            denominator: None,
            period: 0,
            baseline: true,
            centre: (lpl + upl) / 2.0,
            lower_limit: Some(lpl),
            upper_limit: Some(upl),
            lower_two_sigma: None,
            upper_two_sigma: None,
            point_type: PointType::CommonCause,
            flags: Vec::new(),
            note: String::new(),
        }]
    }

    #[test]
    fn assurance_as_nhsrplotthedots() {
        use Assurance::*;
        let cases = [(1.0, 3.0), (5.0, 7.0), (1.0, 5.0)];
        let up: Vec<_> = cases
            .iter()
            .map(|(l, u)| assurance(&last(*l, *u), Direction::Higher, Some(4.0)))
            .collect();
        assert_eq!(
            up,
            [
                Some(ConsistentFail),
                Some(ConsistentPass),
                Some(Inconsistent)
            ]
        );
        let down: Vec<_> = cases
            .iter()
            .map(|(l, u)| assurance(&last(*l, *u), Direction::Lower, Some(4.0)))
            .collect();
        assert_eq!(
            down,
            [
                Some(ConsistentPass),
                Some(ConsistentFail),
                Some(Inconsistent)
            ]
        );
        assert_eq!(
            assurance(&last(1.0, 3.0), Direction::Neither, Some(4.0)),
            None
        );
        assert_eq!(assurance(&last(1.0, 3.0), Direction::Higher, None), None);
    }

    #[test]
    fn variation_follows_the_last_point_and_the_direction() {
        let mut p = last(1.0, 3.0);
        assert_eq!(
            variation(&p, Direction::Higher),
            Some(Variation::CommonCause)
        );
        p[0].point_type = PointType::SpecialCauseImprovement;
        assert_eq!(
            variation(&p, Direction::Higher),
            Some(Variation::ImprovementHigh)
        );
        assert_eq!(
            variation(&p, Direction::Lower),
            Some(Variation::ImprovementLow)
        );
        p[0].point_type = PointType::SpecialCauseConcern;
        assert_eq!(
            variation(&p, Direction::Higher),
            Some(Variation::ConcernLow)
        );
        assert_eq!(
            variation(&p, Direction::Lower),
            Some(Variation::ConcernHigh)
        );
        p[0].point_type = PointType::SpecialCauseNeutralLow;
        assert_eq!(
            variation(&p, Direction::Neither),
            Some(Variation::NeutralLow)
        );
        assert_eq!(variation(&[], Direction::Neither), None);
    }
}
