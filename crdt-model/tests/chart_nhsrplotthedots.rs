//! XmR charts checked against NHSRplotthedots, the NHS-R community's
//! *Making Data Count* implementation (github.com/nhs-r-community/
//! NHSRplotthedots, version 0.2.0).
//!
//! Where the expected values come from: the data of its own tests
//! (`tests/testthat/test-ptd_spc_standard.R`: `set.seed(123); rnorm(20)`
//! from 2020-01-02, the same with an outlier of 10 at the 15th value, a
//! rebase on 2020-01-11, `fix_after_n_points = 12`, a target of 0.5, and
//! the symmetric ±1 series with 5.5 and −5.5 at the end), plus three
//! made-up series (a step change, a trend, two of three near a limit) and
//! two random ones (`set.seed(2024)`: 45 weekly values with a dip, a rise
//! and a jump; `set.seed(7)`: 48 monthly values with a burst and a fall),
//! under each improvement direction, with rebases, a fixed baseline and
//! targets, were run through NHSRplotthedots's own R code (`ptd_spc_standard`,
//! `ptd_calculate_point_type`, `ptd_calculate_assurance_type`; R 4.2 with
//! Debian's dplyr 1.0.10, so `case_when(.default = …)` was read as `TRUE ~
//! …`) and its output (mean, process limits and `point_type` of every
//! point, the assurance type) copied into `fixtures/nhsrplotthedots.json`,
//! one case per line. The variation icon is `ptd_get_icons`'s mapping of the last point's type. Its snapshots
//! (`_snaps/ptd_spc_standard.md`: mean 0.1416238, limits −3.01138 and
//! 3.294627; with the outlier 0.6694159, −2.383666, 3.722497) agree.

use convene_model::chart::{self, ChartKind};
use convene_model::{DataPoint, Measure, Rebase};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Case {
    name: String,
    improvement: String,
    rebase: Vec<String>,
    baseline_points: Option<u32>,
    target: Option<f64>,
    points: Vec<Expected>,
    variation: String,
    assurance: Option<String>,
}

/// One value with what NHSRplotthedots made of it.
#[derive(Debug, Deserialize)]
struct Expected {
    date: String,
    value: f64,
    mean: f64,
    lower: Option<f64>,
    upper: Option<f64>,
    point_type: String,
}

fn cases() -> Vec<Case> {
    serde_json::from_str(include_str!("fixtures/nhsrplotthedots.json")).expect("the fixture parses")
}

fn measure(c: &Case) -> Measure {
    Measure {
        name: c.name.clone(),
        target: c.target,
        improvement: Some(c.improvement.clone()),
        chart: Some("xmr".into()),
        baseline_points: c.baseline_points,
        rebase: c
            .rebase
            .iter()
            .map(|d| Rebase {
                date: d.clone(),
                reason: "rebase".into(),
                pdsa: String::new(),
            })
            .collect(),
        // Recorded out of order: the chart sorts by date.
        data: c
            .points
            .iter()
            .rev()
            .map(|p| DataPoint {
                date: p.date.clone(),
                value: p.value,
                ..DataPoint::default()
            })
            .collect(),
        ..Measure::default()
    }
}

fn name<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .unwrap()
        .as_str()
        .unwrap_or("null")
        .to_string()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-8
}

#[test]
fn every_case_matches_nhsrplotthedots() {
    let cases = cases();
    assert_eq!(cases.len(), 17);
    for c in &cases {
        let a = chart::analyse(&measure(c), &[]).unwrap();
        assert_eq!(a.chart, ChartKind::Xmr, "{}", c.name);
        assert_eq!(a.points.len(), c.points.len(), "{}", c.name);
        for (i, (p, e)) in a.points.iter().zip(&c.points).enumerate() {
            let at = format!("{} point {i} ({})", c.name, p.date);
            assert_eq!(p.date, e.date, "{at}");
            assert!(
                close(p.centre, e.mean),
                "{at}: mean {} != {}",
                p.centre,
                e.mean
            );
            match (p.lower_limit, e.lower) {
                (Some(a), Some(b)) => assert!(close(a, b), "{at}: lower {a} != {b}"),
                (a, b) => assert_eq!(a, b, "{at}: lower"),
            }
            match (p.upper_limit, e.upper) {
                (Some(a), Some(b)) => assert!(close(a, b), "{at}: upper {a} != {b}"),
                (a, b) => assert_eq!(a, b, "{at}: upper"),
            }
            assert_eq!(name(&p.point_type), e.point_type, "{at}: point type");
        }
        assert_eq!(
            a.variation.map(|v| name(&v)).as_deref(),
            Some(c.variation.as_str()),
            "{}: variation",
            c.name
        );
        assert_eq!(
            a.assurance.map(|v| name(&v)),
            c.assurance,
            "{}: assurance",
            c.name
        );
    }
}

#[test]
fn the_snapshot_values_of_ptd_spc_standard() {
    let c = &cases()[0];
    let a = chart::analyse(&measure(c), &[]).unwrap();
    let p = &a.periods[0];
    assert!((p.centre - 0.1416238).abs() < 1e-7);
    assert!((p.lower_limit.unwrap() - -3.01138).abs() < 1e-5);
    assert!((p.upper_limit.unwrap() - 3.294627).abs() < 1e-6);
}

#[test]
fn the_rebase_on_2020_01_11_starts_a_period_at_the_tenth_value() {
    let cases = cases();
    let c = cases.iter().find(|c| c.name == "rnorm_rebase").unwrap();
    let a = chart::analyse(&measure(c), &[]).unwrap();
    let periods: Vec<usize> = a.points.iter().map(|p| p.period).collect();
    assert_eq!(periods, [vec![0; 9], vec![1; 11]].concat());
    assert_eq!(a.periods.len(), 2);
    assert_eq!(a.periods[1].from, "2020-01-11");
}
