//! A chart's points as CSV, for a spreadsheet: one row per value with its
//! centre line, limits, colour and flags, so anyone can redo the sums.

use super::{Analysis, Flag, Meaning, Rule, Side};

const HEADER: &str = "date,value,numerator,denominator,period,baseline,centre,lower_limit,upper_limit,lower_two_sigma,upper_two_sigma,point_type,flags,note";

fn num(v: Option<f64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

/// A cell, quoted when it must be; a leading `= + - @` gets an apostrophe
/// so a spreadsheet shows text, not a formula.
fn cell(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

fn enum_name<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// `shift:low:improvement`.
pub fn flag(f: &Flag) -> String {
    let _: (Rule, Side, Meaning) = (f.rule, f.side, f.meaning);
    format!(
        "{}:{}:{}",
        enum_name(&f.rule),
        enum_name(&f.side),
        enum_name(&f.meaning)
    )
}

/// The CSV text, header first.
pub fn to_csv(a: &Analysis) -> String {
    let mut out = String::from(HEADER);
    out.push('\n');
    for p in &a.points {
        let flags: Vec<String> = p.flags.iter().map(flag).collect();
        let row = [
            cell(&p.date),
            p.value.to_string(),
            num(p.numerator),
            num(p.denominator),
            p.period.to_string(),
            p.baseline.to_string(),
            p.centre.to_string(),
            num(p.lower_limit),
            num(p.upper_limit),
            num(p.lower_two_sigma),
            num(p.upper_two_sigma),
            enum_name(&p.point_type),
            cell(&flags.join(" ")),
            cell(&p.note),
        ];
        out.push_str(&row.join(","));
        out.push('\n');
    }
    out
}
