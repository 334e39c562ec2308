//! What a chart shows, in words: the signals (consecutive points flagged
//! by one rule on one side) and a sentence that reports them, such as "a
//! shift of 8 points below the median since 2024-06 (improvement)". The
//! sentence says what was found, never which rules exist.

use super::{Analysis, ChartKind, Meaning, Period, Point, Rule, Side, Signal};

/// The signals of a chart, in order of their first point.
pub fn signals(points: &[Point], periods: &[Period]) -> Vec<Signal> {
    let mut out = Vec::new();
    for p in periods {
        let range = p.start..p.start + p.points;
        for rule in [
            Rule::BeyondLimit,
            Rule::Astronomical,
            Rule::Shift,
            Rule::Trend,
            Rule::TwoOfThree,
        ] {
            let mut current: Option<Signal> = None;
            for i in range.clone() {
                let Some(f) = points[i].flags.iter().find(|f| f.rule == rule) else {
                    continue;
                };
                let joins = current.as_ref().is_some_and(|s| {
                    s.side == Some(f.side)
                        && (s.last + 1..i).all(|j| {
                            points[j].value == points[j].centre
                                || (rule == Rule::TwoOfThree && i - s.last <= 2)
                        })
                        && (rule != Rule::BeyondLimit && rule != Rule::Astronomical
                            || i == s.last + 1)
                });
                if joins {
                    let s = current.as_mut().expect("joins implies a signal");
                    s.last = i;
                    s.points += 1;
                    s.to = points[i].date.clone();
                } else {
                    out.extend(current.take());
                    current = Some(Signal {
                        rule,
                        side: Some(f.side),
                        meaning: f.meaning,
                        first: i,
                        last: i,
                        points: 1,
                        from: points[i].date.clone(),
                        to: points[i].date.clone(),
                    });
                }
            }
            out.extend(current);
        }
        if let Some(r) = p.runs
            && (r.too_few() || r.too_many())
        {
            out.push(Signal {
                rule: if r.too_few() {
                    Rule::TooFewRuns
                } else {
                    Rule::TooManyRuns
                },
                side: None,
                meaning: Meaning::Neutral,
                first: range.start,
                last: range.end - 1,
                points: r.useful,
                from: p.from.clone(),
                to: p.to.clone(),
            });
        }
    }
    out.sort_by_key(|s| (s.first, s.last));
    out
}

/// A number as people read it: at most three significant decimals.
pub fn number(v: f64) -> String {
    if !v.is_finite() {
        return "–".into();
    }
    let a = v.abs();
    let s = if a >= 100.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    };
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    if s == "-0" { "0".into() } else { s }
}

/// A plotted value: a percentage on a p-chart.
pub fn value(kind: ChartKind, v: f64) -> String {
    match kind {
        ChartKind::P => format!("{}%", number(v * 100.0)),
        _ => number(v),
    }
}

/// Dates as short as they can be: `2024-06` when no two values share a
/// month, else the whole date.
fn dates(a: &Analysis) -> impl Fn(&str) -> String {
    let mut months: Vec<&str> = a
        .points
        .iter()
        .map(|p| p.date.get(..7).unwrap_or(&p.date))
        .collect();
    let n = months.len();
    months.dedup();
    let monthly = months.len() == n;
    move |d: &str| {
        if monthly {
            d.get(..7).unwrap_or(d).to_string()
        } else {
            d.to_string()
        }
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        let article = if one.starts_with(['a', 'e', 'i', 'o', 'u']) {
            "an"
        } else {
            "a"
        };
        format!("{article} {one}")
    } else {
        format!("{n} {many}")
    }
}

/// One signal in words.
pub fn phrase(a: &Analysis, s: &Signal) -> String {
    let date = dates(a);
    let last = a.points.len().saturating_sub(1);
    let on = |d: &str| {
        let d = date(d);
        if d.len() > 7 {
            format!("on {d}")
        } else {
            format!("in {d}")
        }
    };
    let span = if s.first == s.last {
        on(&s.from)
    } else if s.last == last {
        format!("since {}", date(&s.from))
    } else {
        format!("from {} to {}", date(&s.from), date(&s.to))
    };
    let centre = a.chart.centre_name();
    let side = |high: &str, low: &str| match s.side {
        Some(Side::High) => high.to_string(),
        _ => low.to_string(),
    };
    let text = match s.rule {
        Rule::Shift => format!(
            "a shift of {} points {} the {centre} {span}",
            s.points,
            side("above", "below")
        ),
        Rule::Trend => format!(
            "a trend of {} points {} {span}",
            s.points,
            side("rising", "falling")
        ),
        Rule::BeyondLimit => format!(
            "{} {} limit {span}",
            plural(s.points, "point", "points"),
            side("above the upper", "below the lower")
        ),
        Rule::TwoOfThree => format!(
            "two of three points close to the {} limit {span}",
            side("upper", "lower")
        ),
        Rule::Astronomical => format!(
            "{} far {} the rest {span}",
            plural(s.points, "astronomical point", "astronomical points"),
            side("above", "below")
        ),
        Rule::TooFewRuns | Rule::TooManyRuns => {
            let r = a
                .periods
                .iter()
                .find(|p| p.start == s.first)
                .and_then(|p| p.runs);
            let (runs, lo, hi) = r.map_or((0, 0, 0), |r| {
                (r.runs, r.lower.unwrap_or(0), r.upper.unwrap_or(0))
            });
            format!(
                "too {} runs ({runs} where {lo} to {hi} are expected with {} values off the median{})",
                if s.rule == Rule::TooFewRuns {
                    "few"
                } else {
                    "many"
                },
                s.points,
                if a.periods.len() > 1 {
                    format!(", from {}", date(&s.from))
                } else {
                    String::new()
                }
            )
        }
    };
    match s.meaning {
        Meaning::Improvement => format!("{text} (improvement)"),
        Meaning::Concern => format!("{text} (concern)"),
        Meaning::Neutral => text,
    }
}

/// The findings: one or two sentences.
pub fn sentence(a: &Analysis) -> String {
    let n = a.points.len();
    let mut kind = a.chart.label().to_string();
    if let Some(first) = kind.get_mut(..1) {
        first.make_ascii_uppercase();
    }
    let last = a.periods.last();
    let centre = last.map_or(0.0, |p| p.centre);
    let mut s = format!(
        "{kind} of {n} value{}, {} {}",
        if n == 1 { "" } else { "s" },
        a.chart.centre_name(),
        value(a.chart, centre)
    );
    if let Some(p) = last
        && let (Some(lo), Some(hi)) = (p.lower_limit, p.upper_limit)
    {
        s.push_str(&format!(
            " (process limits {} to {})",
            value(a.chart, lo),
            value(a.chart, hi)
        ));
    }
    if a.periods.len() > 1
        && let Some(p) = last
    {
        let date = dates(a);
        s.push_str(&format!(", recalculated from {}", date(&p.from)));
        if !p.reason.is_empty() {
            s.push_str(&format!(" ({})", p.reason));
        }
    }
    if a.signals.is_empty() {
        s.push_str(": no signal; the variation is common cause.");
    } else {
        let phrases: Vec<String> = a.signals.iter().map(|x| phrase(a, x)).collect();
        s.push_str(": ");
        s.push_str(&phrases.join("; "));
        s.push('.');
    }
    if let Some(v) = a.variation {
        s.push_str(&format!(" Variation: {}", v.label().to_lowercase()));
        match a.assurance {
            Some(x) => s.push_str(&format!("; assurance: {}.", x.label().to_lowercase())),
            None => s.push('.'),
        }
    }
    s
}
