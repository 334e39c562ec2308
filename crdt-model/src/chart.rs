//! Charts of a measure over time, read the way NHS improvement teams read
//! them: what the web page draws, `convene chart` prints and
//! `/api/entries/{id}/chart` returns all come from [`analyse`].
//!
//! # Which chart
//!
//! - A **run chart** ([`run`]) for fewer than 15 values, or when the
//!   measure asks for one (`chart = "run"`): the median of a baseline (the
//!   first 12 values, or `baseline_points`) and the run-chart rules of
//!   Perla, Provost & Murray (2011, *BMJ Qual Saf* 20:46–51), as NHS
//!   England's *Making Data Count* and the IHI teach them.
//! - An **XmR chart** ([`xmr`]) from 15 values on: the individuals chart of
//!   *Making Data Count* (NHS England / NHS Improvement, 2019), computed
//!   exactly as NHSRplotthedots (the NHS-R community's R package,
//!   `ptd_spc`) computes it, special-cause rules ([`spc`]) and icons
//!   ([`icons`]) included.
//! - A **p-chart** ([`pchart`]) from 15 values on when the values have
//!   denominators (a proportion), with limits that vary with each
//!   denominator; the same special-cause rules read it.
//!
//! Fewer than 15 points is where *Making Data Count* says SPC limits start
//! to be worth having (it prefers 20); below that the median is the honest
//! centre line.
//!
//! # Flow
//!
//! [`series`] turns a [`Measure`] into points in date order split into
//! periods at its rebase dates; each period gets its centre line and limits
//! from its own baseline ([`run`] with [`runs_table`], [`xmr`], [`pchart`]),
//! and its points their flags; [`icons`] reads the last point; [`markers`]
//! collects rebases, PDSA cycles and annotations; [`findings`] says in a
//! sentence what was found; [`csv`] writes the points out; [`project`]
//! charts every measure of a project. Everything here is arithmetic on the
//! measure: no I/O, no clock.

pub mod csv;
pub mod findings;
pub mod icons;
pub mod markers;
pub mod pchart;
pub mod project;
pub mod run;
pub mod runs_table;
pub mod series;
pub mod spc;
pub mod xmr;

use serde::Serialize;

use crate::project::{Measure, Pdsa};

pub use icons::{Assurance, Variation};
pub use markers::{Marker, MarkerKind};
pub use project::{ProjectCharts, Skipped, analyse_project};

/// Below this many values a measure gets a run chart unless it asks for
/// another.
pub const SPC_MIN_POINTS: usize = 15;

/// The kind of chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChartKind {
    Run,
    Xmr,
    P,
}

impl ChartKind {
    pub fn label(self) -> &'static str {
        match self {
            Self::Run => "run chart",
            Self::Xmr => "XmR chart (individuals)",
            Self::P => "p-chart (proportion)",
        }
    }

    /// What the centre line is.
    pub fn centre_name(self) -> &'static str {
        match self {
            Self::Run => "median",
            Self::Xmr => "mean",
            Self::P => "overall proportion",
        }
    }
}

/// Which way is better for a measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Higher,
    Lower,
    Neither,
}

impl Direction {
    /// From `Measure::improvement` (already normalised by the checker).
    pub fn of(measure: &Measure) -> Self {
        match measure.improvement.as_deref() {
            Some("higher") => Self::Higher,
            Some("lower") => Self::Lower,
            _ => Self::Neither,
        }
    }

    /// What a signal on `side` means for this measure.
    pub fn meaning(self, side: Side) -> Meaning {
        match (self, side) {
            (Self::Neither, _) => Meaning::Neutral,
            (Self::Higher, Side::High) | (Self::Lower, Side::Low) => Meaning::Improvement,
            _ => Meaning::Concern,
        }
    }
}

/// Above or below the centre line; rising or falling for a trend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    High,
    Low,
}

/// Whether a signal is good news, bad news, or neither.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Meaning {
    Improvement,
    Concern,
    Neutral,
}

/// A rule that marks points as special cause (or, for the runs rule, the
/// whole period as non-random).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// SPC: a point above the upper or below the lower process limit.
    BeyondLimit,
    /// Run chart: 6 or more on one side of the median. SPC: 7 or more on
    /// one side of the mean.
    Shift,
    /// Run chart: 5 or more rising or falling. SPC: 7 or more.
    Trend,
    /// SPC: two of three points beyond two sigma, on the same side.
    TwoOfThree,
    /// Run chart: a value obviously different from the rest.
    Astronomical,
    /// Run chart: fewer runs than chance would give.
    TooFewRuns,
    /// Run chart: more runs than chance would give.
    TooManyRuns,
}

/// One rule a point is part of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Flag {
    pub rule: Rule,
    pub side: Side,
    pub meaning: Meaning,
}

/// How a point is coloured: NHSRplotthedots's `point_type`, the first of
/// its flags in the order beyond limit, trend, two of three, shift.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PointType {
    CommonCause,
    SpecialCauseImprovement,
    SpecialCauseConcern,
    SpecialCauseNeutralHigh,
    SpecialCauseNeutralLow,
}

impl PointType {
    /// The type of a point whose deciding flag is `flag`.
    pub fn of(flag: Option<&Flag>) -> Self {
        match flag {
            None => Self::CommonCause,
            Some(f) => match (f.meaning, f.side) {
                (Meaning::Improvement, _) => Self::SpecialCauseImprovement,
                (Meaning::Concern, _) => Self::SpecialCauseConcern,
                (Meaning::Neutral, Side::High) => Self::SpecialCauseNeutralHigh,
                (Meaning::Neutral, Side::Low) => Self::SpecialCauseNeutralLow,
            },
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::CommonCause => "common cause",
            Self::SpecialCauseImprovement => "special cause: improvement",
            Self::SpecialCauseConcern => "special cause: concern",
            Self::SpecialCauseNeutralHigh => "special cause: higher",
            Self::SpecialCauseNeutralLow => "special cause: lower",
        }
    }
}

/// One value on the chart.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Point {
    pub date: String,
    /// What is plotted: the value, or for a proportion `numerator /
    /// denominator` (between 0 and 1).
    pub value: f64,
    /// For a proportion: the count and the denominator as recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub numerator: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub denominator: Option<f64>,
    /// Index into [`Analysis::periods`].
    pub period: usize,
    /// Whether the point is in its period's baseline (the values the
    /// centre line and limits come from).
    pub baseline: bool,
    pub centre: f64,
    /// Process limits (SPC only): 3 sigma, i.e. the mean ± 2.66 × mean
    /// moving range for an XmR chart.
    pub lower_limit: Option<f64>,
    pub upper_limit: Option<f64>,
    /// Two-sigma lines (SPC only), for the two-of-three rule.
    pub lower_two_sigma: Option<f64>,
    pub upper_two_sigma: Option<f64>,
    pub point_type: PointType,
    /// Every rule the point is part of.
    pub flags: Vec<Flag>,
    /// The value's note, as recorded.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub note: String,
}

/// A stretch of the chart with one centre line: the whole chart, or the
/// values from one rebase date to the next.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Period {
    /// Index of its first point.
    pub start: usize,
    /// How many points it has.
    pub points: usize,
    /// How many of them the centre line and limits come from.
    pub baseline_points: usize,
    pub from: String,
    pub to: String,
    pub centre: f64,
    /// XmR only: the limits (the same for every point of the period).
    pub lower_limit: Option<f64>,
    pub upper_limit: Option<f64>,
    /// XmR only: the mean moving range the limits come from, after
    /// screening out moving ranges of 3.267 × the first mean or more.
    pub mean_moving_range: Option<f64>,
    /// Run charts: the number of runs against the table.
    pub runs: Option<run::RunsTest>,
    /// Why this period starts (empty for the first).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub pdsa: String,
}

/// Consecutive points flagged by one rule on one side: what the findings
/// sentence reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Signal {
    pub rule: Rule,
    pub side: Option<Side>,
    pub meaning: Meaning,
    pub first: usize,
    pub last: usize,
    /// How many points are flagged.
    pub points: usize,
    pub from: String,
    pub to: String,
}

/// Everything a chart of one measure shows, as data.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Analysis {
    pub measure: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub unit: String,
    pub chart: ChartKind,
    /// Why this chart.
    pub chosen: String,
    pub improvement: Direction,
    /// The target, in the plotted unit (a proportion for a p-chart).
    pub target: Option<f64>,
    pub periods: Vec<Period>,
    pub points: Vec<Point>,
    pub signals: Vec<Signal>,
    /// The *Making Data Count* variation icon (SPC charts only).
    pub variation: Option<Variation>,
    /// The assurance icon (SPC charts with a target and a direction).
    pub assurance: Option<Assurance>,
    pub markers: Vec<Marker>,
    /// One or two sentences: what the chart shows.
    pub findings: String,
    /// Caveats: trial limits, ignored rebase dates.
    pub notes: Vec<String>,
}

/// Why a measure cannot be charted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChartError {
    #[error("measure {0:?} has no values to chart")]
    NoData(String),
    #[error("measure {0:?} asks for a p-chart but its values have no denominators")]
    NoDenominators(String),
    #[error("the project has no measure {name:?} (its measures: {})", if known.is_empty() { "none".to_string() } else { known.join(", ") })]
    UnknownMeasure { name: String, known: Vec<String> },
    #[error("the project has no measures to chart")]
    NoMeasures,
}

/// Analyses one measure; `pdsa` are the project's cycles (drawn as markers).
pub fn analyse(measure: &Measure, pdsa: &[Pdsa]) -> Result<Analysis, ChartError> {
    let s = series::Series::of(measure)?;
    let direction = Direction::of(measure);
    let mut notes = s.notes.clone();
    let (periods, mut points) = match s.kind {
        ChartKind::Run => run::analyse(&s, direction),
        ChartKind::Xmr => xmr::analyse(&s, direction),
        ChartKind::P => pchart::analyse(&s, direction),
    };
    if s.kind != ChartKind::Run {
        for p in &periods {
            if p.baseline_points < 12 {
                notes.push(format!(
                    "The limits from {} are trial limits: {} values, fewer than the 12 Making Data Count asks for.",
                    p.from, p.baseline_points
                ));
            }
        }
    }
    if measure.improvement.is_none() {
        notes.push(format!(
            "No improvement direction is set: signals are shown as higher or lower, not as improvement or concern{}.",
            if s.target.is_some() && s.kind != ChartKind::Run {
                ", and the assurance icon needs one"
            } else {
                ""
            }
        ));
    }
    for (p, d) in points.iter_mut().zip(&s.points) {
        p.note = d.note.clone();
    }
    let target = s.target;
    let (variation, assurance) = if s.kind == ChartKind::Run {
        (None, None)
    } else {
        (
            icons::variation(&points, direction),
            icons::assurance(&points, direction, target),
        )
    };
    let signals = findings::signals(&points, &periods);
    let markers = markers::markers(measure, pdsa, &periods);
    let mut a = Analysis {
        measure: measure.name.clone(),
        unit: measure.unit.clone(),
        chart: s.kind,
        chosen: s.chosen.clone(),
        improvement: direction,
        target,
        periods,
        points,
        signals,
        variation,
        assurance,
        markers,
        findings: String::new(),
        notes,
    };
    a.findings = findings::sentence(&a);
    Ok(a)
}
