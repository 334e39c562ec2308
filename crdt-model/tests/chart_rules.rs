//! Each chart rule on data small enough to check by hand.

use convene_model::chart::run::{self, RunsTest};
use convene_model::chart::{
    self, ChartError, ChartKind, Meaning, PointType, Rule, Side, csv, pchart,
};
use convene_model::{Body, DataPoint, Measure, Pdsa, Project, Rebase, Vocabularies};

fn monthly(values: &[f64]) -> Vec<DataPoint> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| DataPoint {
            date: format!("{}-{:02}-01", 2024 + i / 12, 1 + i % 12),
            value: *v,
            ..DataPoint::default()
        })
        .collect()
}

fn measure(values: &[f64], improvement: &str) -> Measure {
    Measure {
        name: "Minutes lost".into(),
        improvement: Some(improvement.into()),
        data: monthly(values),
        ..Measure::default()
    }
}

fn flagged(a: &chart::Analysis, rule: Rule) -> Vec<usize> {
    a.points
        .iter()
        .enumerate()
        .filter(|(_, p)| p.flags.iter().any(|f| f.rule == rule))
        .map(|(i, _)| i)
        .collect()
}

#[test]
fn fewer_than_15_values_make_a_run_chart_15_an_xmr_chart_denominators_a_p_chart() {
    let values: Vec<f64> = (0..14).map(|i| f64::from(i % 3)).collect();
    let a = chart::analyse(&measure(&values, "higher"), &[]).unwrap();
    assert_eq!(a.chart, ChartKind::Run);
    let values: Vec<f64> = (0..15).map(|i| f64::from(i % 3)).collect();
    let a = chart::analyse(&measure(&values, "higher"), &[]).unwrap();
    assert_eq!(a.chart, ChartKind::Xmr);
    let mut m = measure(&values, "higher");
    for d in &mut m.data {
        d.denominator = Some(10.0);
    }
    assert_eq!(chart::analyse(&m, &[]).unwrap().chart, ChartKind::P);
    m.chart = Some("run".into());
    assert_eq!(chart::analyse(&m, &[]).unwrap().chart, ChartKind::Run);
    let mut m = measure(&values, "higher");
    m.chart = Some("p".into());
    assert_eq!(
        chart::analyse(&m, &[]).unwrap_err(),
        ChartError::NoDenominators("Minutes lost".into())
    );
    assert_eq!(
        chart::analyse(&measure(&[], "higher"), &[]).unwrap_err(),
        ChartError::NoData("Minutes lost".into())
    );
}

#[test]
fn the_run_chart_median_comes_from_the_first_12_values() {
    // The first 12 have median 6.5; the two 100s after them do not move it.
    let mut values: Vec<f64> = (1..=12).map(f64::from).collect();
    values.extend([100.0, 100.0]);
    let a = chart::analyse(&measure(&values, "higher"), &[]).unwrap();
    assert_eq!(a.periods[0].centre, 6.5);
    assert_eq!(a.periods[0].baseline_points, 12);
    let mut m = measure(&values, "higher");
    m.baseline_points = Some(4);
    assert_eq!(chart::analyse(&m, &[]).unwrap().periods[0].centre, 2.5);
}

#[test]
fn a_shift_is_six_on_one_side_and_points_on_the_median_neither_count_nor_break() {
    // Median 5: five below, one on the median, one more below: six below.
    let y = [1.0, 2.0, 1.0, 2.0, 1.0, 5.0, 2.0, 9.0, 8.0, 9.0, 9.0, 5.0];
    let s = run::shifts(&y, 5.0);
    let idx: Vec<usize> = s.iter().map(|(i, _)| *i).collect();
    assert_eq!(idx, [0, 1, 2, 3, 4, 6]);
    assert!(s.iter().all(|(_, side)| *side == Side::Low));
    // Five in a row is not a shift.
    assert!(run::shifts(&[1.0, 1.0, 1.0, 1.0, 1.0, 9.0], 5.0).is_empty());
}

#[test]
fn a_trend_is_five_values_rising_and_repeats_neither_count_nor_break() {
    let idx = |y: &[f64]| {
        run::trends(y)
            .into_iter()
            .map(|(i, _)| i)
            .collect::<Vec<_>>()
    };
    assert_eq!(idx(&[5.0, 1.0, 2.0, 3.0, 4.0, 5.0, 2.0]), [1, 2, 3, 4, 5]);
    assert!(idx(&[1.0, 2.0, 3.0, 4.0]).is_empty());
    // 1 2 2 3 4: only four count.
    assert!(idx(&[1.0, 2.0, 2.0, 3.0, 4.0]).is_empty());
    // 1 2 2 3 4 5: five count; the repeat is inside the span.
    assert_eq!(idx(&[1.0, 2.0, 2.0, 3.0, 4.0, 5.0]), [0, 1, 2, 3, 4, 5]);
    let falling = run::trends(&[9.0, 7.0, 6.0, 4.0, 1.0]);
    assert!(falling.iter().all(|(_, s)| *s == Side::Low));
}

#[test]
fn too_few_and_too_many_runs_come_from_the_table() {
    // 16 values, 2 runs: the table expects 5 to 13.
    let few: Vec<f64> = [1.0; 8].into_iter().chain([9.0; 8]).collect();
    let r = run::runs_test(&few, 5.0);
    assert_eq!(
        r,
        RunsTest {
            useful: 16,
            runs: 2,
            lower: Some(5),
            upper: Some(13)
        }
    );
    assert!(r.too_few() && !r.too_many());
    let many: Vec<f64> = (0..16)
        .map(|i| if i % 2 == 0 { 1.0 } else { 9.0 })
        .collect();
    let r = run::runs_test(&many, 5.0);
    assert_eq!(r.runs, 16);
    assert!(r.too_many());
    // Points on the median are not useful observations.
    let mut on = few.clone();
    on.extend([5.0, 5.0]);
    assert_eq!(run::runs_test(&on, 5.0).useful, 16);
    // Below 10 useful observations the rule does not apply.
    assert!(!run::runs_test(&[1.0, 9.0, 1.0], 5.0).too_many());
}

#[test]
fn an_astronomical_point_is_far_beyond_the_median_moving_range() {
    // Moving ranges of 1 (median 1): 30 is 20 from the median of 10.
    let y = [10.0, 11.0, 10.0, 9.0, 10.0, 30.0, 10.0, 11.0];
    let found = run::astronomical(&y, 10.0);
    assert_eq!(found, [(5, Side::High)]);
    // 13 is within 3.145 of 10: ordinary.
    assert!(run::astronomical(&[10.0, 11.0, 10.0, 9.0, 10.0, 13.0, 10.0], 10.0).is_empty());
}

#[test]
fn the_findings_say_what_was_found() {
    // Baseline median 16; from July eight values below it.
    let values = [
        20.0, 22.0, 19.0, 21.0, 23.0, 20.0, 12.0, 11.0, 13.0, 12.0, 10.0, 11.0, 12.0, 11.0,
    ];
    let a = chart::analyse(&measure(&values, "lower"), &[]).unwrap();
    assert_eq!(a.chart, ChartKind::Run);
    assert_eq!(a.periods[0].centre, 16.0);
    assert_eq!(flagged(&a, Rule::Shift), (0..14).collect::<Vec<_>>());
    assert!(
        a.findings
            .contains("a shift of 8 points below the median since 2024-07 (improvement)"),
        "{}",
        a.findings
    );
    assert!(
        a.findings
            .contains("a shift of 6 points above the median from 2024-01 to 2024-06 (concern)"),
        "{}",
        a.findings
    );
    assert!(
        a.findings.contains("too few runs (2 where 4 to 12"),
        "{}",
        a.findings
    );
    assert_eq!(a.points[13].point_type, PointType::SpecialCauseImprovement);
    // Where neither direction is better, nothing is improvement or concern.
    let a = chart::analyse(&measure(&values, "neither"), &[]).unwrap();
    assert!(
        a.points
            .iter()
            .flat_map(|p| &p.flags)
            .all(|f| f.meaning == Meaning::Neutral)
    );
    assert_eq!(a.points[13].point_type, PointType::SpecialCauseNeutralLow);
    assert!(!a.findings.contains("improvement"));
}

#[test]
fn common_cause_only_says_so() {
    let values: Vec<f64> = (0..20).map(|i| [5.0, 6.0, 4.0, 5.5][i % 4]).collect();
    let a = chart::analyse(&measure(&values, "higher"), &[]).unwrap();
    assert_eq!(a.chart, ChartKind::Xmr);
    assert!(a.signals.is_empty());
    assert!(a.findings.contains("no signal"), "{}", a.findings);
    assert!(
        a.findings.contains("Variation: common cause variation"),
        "{}",
        a.findings
    );
}

#[test]
fn p_chart_limits_vary_with_the_denominator_and_stay_within_0_and_1() {
    // p̄ = 30 / 100 = 0.3; n = 25 gives sigma √(0.21 / 25) = 0.0916515.
    assert_eq!(pchart::p_bar(&[10.0, 20.0], &[25.0, 75.0], None), 0.3);
    let l = pchart::lines(0.3, 25.0);
    assert!((l.upper - (0.3 + 3.0 * 0.091_651_513_9)).abs() < 1e-9);
    assert!((l.lower - (0.3 - 3.0 * 0.091_651_513_9)).abs() < 1e-9);
    assert!((l.upper_two_sigma - (0.3 + 2.0 * 0.091_651_513_9)).abs() < 1e-9);
    // n = 4: 0.3 − 3 × 0.229 is below 0.
    assert_eq!(pchart::lines(0.3, 4.0).lower, 0.0);
    assert_eq!(pchart::lines(0.9, 4.0).upper, 1.0);

    let mut m = measure(&[0.0; 16], "higher");
    for (i, d) in m.data.iter_mut().enumerate() {
        d.denominator = Some(if i % 2 == 0 { 20.0 } else { 80.0 });
        d.value = d.denominator.unwrap() / 2.0;
    }
    m.data[15].value = 79.0;
    m.target = Some(40.0);
    let a = chart::analyse(&m, &[]).unwrap();
    assert_eq!(a.chart, ChartKind::P);
    // A percentage target reads as a proportion.
    assert_eq!(a.target, Some(0.4));
    let widths: Vec<f64> = a
        .points
        .iter()
        .map(|p| p.upper_limit.unwrap() - p.lower_limit.unwrap())
        .collect();
    assert!(
        widths[0] > widths[1],
        "a smaller denominator has wider limits"
    );
    assert_eq!(a.points[0].value, 0.5);
    assert_eq!(a.points[15].numerator, Some(79.0));
    assert!(
        a.points[15]
            .flags
            .iter()
            .any(|f| f.rule == Rule::BeyondLimit && f.side == Side::High)
    );
    assert_eq!(a.points[15].point_type, PointType::SpecialCauseImprovement);
    assert!(a.variation.is_some());
}

#[test]
fn a_rebase_recalculates_from_the_first_value_on_or_after_its_date_and_is_marked() {
    let mut values = vec![10.0; 10];
    values.extend([20.0; 10]);
    let mut m = measure(&values, "higher");
    m.rebase = vec![Rebase {
        date: "2024-10-15".into(),
        reason: "New rota".into(),
        pdsa: "Rota".into(),
    }];
    let pdsa = [Pdsa {
        change_idea: "Rota".into(),
        started: Some("2024-09-01".into()),
        ..Pdsa::default()
    }];
    let a = chart::analyse(&m, &pdsa).unwrap();
    assert_eq!(a.periods.len(), 2);
    // 2024-10-15 falls between the 10th value (October) and the 11th
    // (November): the 11th starts the new period.
    assert_eq!(a.periods[1].start, 10);
    assert_eq!(a.periods[1].from, "2024-11-01");
    assert_eq!((a.periods[0].centre, a.periods[1].centre), (10.0, 20.0));
    assert_eq!(a.markers.len(), 2);
    assert_eq!(a.markers[0].text, "Rota");
    assert_eq!(a.markers[1].text, "New rota (PDSA: Rota)");
    // A rebase before the first value starts nothing and says so.
    m.rebase[0].date = "2020-01-01".into();
    let a = chart::analyse(&m, &[]).unwrap();
    assert_eq!(a.periods.len(), 1);
    assert_eq!(a.notes.len(), 1);
}

#[test]
fn the_csv_has_a_row_per_point_with_its_flags() {
    let mut m = measure(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], "higher");
    m.data[0].note = "=cmd, \"quoted\"".into();
    let a = chart::analyse(&m, &[]).unwrap();
    let text = csv::to_csv(&a);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 7);
    assert!(lines[0].starts_with("date,value,numerator,denominator,period,baseline,centre"));
    assert!(
        lines[1].starts_with("2024-01-01,1,,,0,true,3.5,"),
        "{}",
        lines[1]
    );
    assert!(lines[1].contains("trend:high:improvement"), "{}", lines[1]);
    assert!(
        lines[1].ends_with(",\"'=cmd, \"\"quoted\"\"\""),
        "{}",
        lines[1]
    );
}

#[test]
fn the_checker_normalises_and_names_each_chart_field() {
    let mut m = measure(&[1.0, 2.0], "increase");
    m.chart = Some("SPC".into());
    m.data[0].denominator = Some(10.0);
    m.data[0].value = 11.0;
    m.rebase = vec![
        Rebase {
            date: "2024-13-01".into(),
            reason: String::new(),
            pdsa: String::new(),
        },
        Rebase {
            date: "2024-02-01".into(),
            reason: String::new(),
            pdsa: "no such cycle".into(),
        },
    ];
    m.baseline_points = Some(1);
    let mut bad = measure(&[1.0], "sideways");
    bad.name = "Other".into();
    bad.chart = Some("p".into());
    let mut body = Body::Project(Project {
        title: "Flow".into(),
        measures: vec![m, bad],
        ..Project::default()
    });
    let err = body.check(&Vocabularies::default()).unwrap_err();
    let fields: Vec<&str> = err.0.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "measures[0].baseline_points",
            "measures[0].data[0].value",
            "measures[0].data[1].denominator",
            "measures[0].rebase[0].date",
            "measures[0].rebase[0].reason",
            "measures[0].rebase[1].pdsa",
            "measures[1].improvement",
            "measures[1].chart",
        ],
        "{err}"
    );
    // Spellings people use become one word.
    let mut ok = Body::Project(Project {
        title: "Flow".into(),
        measures: vec![Measure {
            name: "Waits".into(),
            improvement: Some("Lower is better".into()),
            chart: Some("run chart".into()),
            ..Measure::default()
        }],
        ..Project::default()
    });
    ok.check(&Vocabularies::default()).unwrap();
    let Body::Project(p) = ok else { unreachable!() };
    assert_eq!(p.measures[0].improvement.as_deref(), Some("lower"));
    assert_eq!(p.measures[0].chart.as_deref(), Some("run"));
}

#[test]
fn a_measure_written_before_charts_reads_with_the_new_fields_empty() {
    // The shape of a measure before this version: no direction, chart,
    // baseline, rebase or denominators.
    #[derive(autosurgeon::Reconcile)]
    struct OldPoint {
        date: String,
        value: f64,
        note: String,
    }
    #[derive(autosurgeon::Reconcile)]
    struct OldMeasure {
        name: String,
        data: Vec<OldPoint>,
    }
    let mut doc = automerge::AutoCommit::new();
    autosurgeon::reconcile(
        &mut doc,
        &OldMeasure {
            name: "Waits".into(),
            data: vec![OldPoint {
                date: "2024-01-01".into(),
                value: 3.0,
                note: String::new(),
            }],
        },
    )
    .unwrap();
    let m: Measure = autosurgeon::hydrate(&doc).unwrap();
    assert_eq!(m.name, "Waits");
    assert_eq!(m.data[0].denominator, None);
    assert_eq!(
        (&m.improvement, &m.chart, m.baseline_points),
        (&None, &None, None)
    );
    assert!(m.rebase.is_empty());
    let a = chart::analyse(&m, &[]).unwrap();
    assert_eq!(a.improvement, chart::Direction::Neither);
    assert!(
        a.notes[0].starts_with("No improvement direction is set"),
        "{:?}",
        a.notes
    );
}

#[test]
fn an_older_version_reads_a_measure_with_chart_fields_and_keeps_them() {
    #[derive(Debug, autosurgeon::Hydrate, autosurgeon::Reconcile)]
    struct OldPoint {
        date: String,
        value: f64,
        note: String,
    }
    #[derive(Debug, autosurgeon::Hydrate, autosurgeon::Reconcile)]
    struct OldMeasure {
        name: String,
        data: Vec<OldPoint>,
    }
    let mut m = measure(&[3.0, 4.0], "lower");
    m.data[0].denominator = Some(10.0);
    m.rebase = vec![Rebase {
        date: "2024-02-01".into(),
        reason: "New rota".into(),
        pdsa: String::new(),
    }];
    let mut doc = automerge::AutoCommit::new();
    autosurgeon::reconcile(&mut doc, &m).unwrap();
    let mut old: OldMeasure = autosurgeon::hydrate(&doc).unwrap();
    assert_eq!(old.data[0].value, 3.0);
    // The older version edits what it knows; the fields it does not know stay.
    old.data[1].note = "checked".into();
    autosurgeon::reconcile(&mut doc, &old).unwrap();
    let back: Measure = autosurgeon::hydrate(&doc).unwrap();
    assert_eq!(back.data[1].note, "checked");
    assert_eq!(back.improvement.as_deref(), Some("lower"));
    assert_eq!(back.data[0].denominator, Some(10.0));
    assert_eq!(back.rebase[0].reason, "New rota");
}
