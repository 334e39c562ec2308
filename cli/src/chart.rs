//! `convene chart`: a project's measures as run charts, XmR charts or
//! p-charts, read with the *Making Data Count* rules. The analysis is
//! `convene_model::chart`'s and the drawing the web app's
//! (`chart_svg_document`), so what this prints is what the page shows.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use convene_model::Body;
use convene_model::chart::{self, Analysis, ChartKind, Direction, findings::value};
use convene_node::Node;
use convene_node::daemon::web::chart_svg_document;

#[derive(Debug, Args)]
pub struct ChartArgs {
    /// Project id (or a unique prefix)
    pub id: String,
    /// Only this measure (by name)
    #[arg(long, value_name = "NAME")]
    pub measure: Option<String>,
    /// The analysis as one JSON object: chart type, centre, limits per point, each point's flags, icons
    #[arg(long)]
    pub json: bool,
    /// Write the chart as an SVG file (needs --measure if the project has several measures)
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
    /// Write the points as CSV (needs --measure if the project has several measures)
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
}

pub fn run(out: &mut impl Write, home: &Path, a: ChartArgs) -> Result<()> {
    let node = Node::open(home)?;
    let id = node.resolve(&a.id)?;
    let entry = node.get(id)?;
    let Body::Project(p) = &entry.body else {
        bail!(
            "{id} is a {} entry, not a project: only projects have measures to chart",
            entry.meta.kind
        );
    };
    let charts = chart::analyse_project(p, a.measure.as_deref())?;
    if a.svg.is_some() || a.csv.is_some() {
        let one = match charts.charts.as_slice() {
            [one] => one,
            [] => bail!("no measure of this project has values to chart"),
            many => bail!(
                "--svg and --csv draw one measure: choose it with --measure ({})",
                many.iter()
                    .map(|c| c.measure.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        if let Some(path) = &a.svg {
            write(path, &chart_svg_document(one))?;
        }
        if let Some(path) = &a.csv {
            write(path, &chart::csv::to_csv(one))?;
        }
    }
    if a.json {
        let json = serde_json::json!({
            "id": id.to_string(),
            "title": p.title,
            "charts": charts.charts,
            "skipped": charts.skipped,
        });
        // Through `write!`, so a closed pipe is an io::Error main ignores.
        writeln!(out, "{}", serde_json::to_string(&json)?)?;
        return Ok(());
    }
    writeln!(out, "{}", p.title)?;
    for c in &charts.charts {
        writeln!(out)?;
        print(out, c)?;
    }
    for s in &charts.skipped {
        writeln!(out)?;
        writeln!(out, "{}: {}", s.measure, s.reason)?;
    }
    for (flag, path) in [("svg", &a.svg), ("csv", &a.csv)] {
        if let Some(path) = path {
            writeln!(
                out,
                "\nwrote the {} to {}",
                if flag == "svg" { "chart" } else { "values" },
                path.display()
            )?;
        }
    }
    Ok(())
}

fn write(path: &Path, text: &str) -> Result<()> {
    if path.as_os_str().is_empty() {
        return Err(anyhow!("the file name is empty"));
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// One measure: chart, centre, limits, icons, findings.
fn print(out: &mut impl Write, c: &Analysis) -> Result<()> {
    let kind = c.chart;
    let v = |x: f64| value(kind, x);
    writeln!(out, "{}: {} ({})", c.measure, kind.label(), c.chosen)?;
    let direction = match c.improvement {
        Direction::Higher => "higher is better",
        Direction::Lower => "lower is better",
        Direction::Neither => "no improvement direction set",
    };
    let mut facts = vec![direction.to_string()];
    if let Some(t) = c.target {
        facts.push(format!("target {}", v(t)));
    }
    if !c.unit.is_empty() && kind != ChartKind::P {
        facts.push(format!("unit: {}", c.unit));
    }
    writeln!(out, "  {}", facts.join(" · "))?;
    for (i, p) in c.periods.iter().enumerate() {
        let mut line = format!(
            "  {}{} to {}: {} {}",
            if c.periods.len() > 1 {
                format!("period {} · ", i + 1)
            } else {
                String::new()
            },
            p.from,
            p.to,
            kind.centre_name(),
            v(p.centre)
        );
        match (p.lower_limit, p.upper_limit) {
            (Some(l), Some(u)) => line.push_str(&format!(", process limits {} to {}", v(l), v(u))),
            _ if kind == ChartKind::P => line.push_str(", limits vary with each denominator"),
            _ => {}
        }
        if p.baseline_points < p.points {
            line.push_str(&format!(" (from the first {} values)", p.baseline_points));
        }
        if !p.reason.is_empty() || !p.pdsa.is_empty() {
            let why: Vec<&str> = [p.reason.as_str(), p.pdsa.as_str()]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect();
            line.push_str(&format!(" — {}", why.join("; PDSA: ")));
        }
        writeln!(out, "{line}")?;
        if let Some(r) = p.runs {
            match (r.lower, r.upper) {
                (Some(lo), Some(hi)) => writeln!(
                    out,
                    "  runs: {} ({lo} to {hi} expected with {} values off the median)",
                    r.runs, r.useful
                )?,
                _ => writeln!(
                    out,
                    "  runs: {} (too few values off the median, {}, to judge)",
                    r.runs, r.useful
                )?,
            }
        }
    }
    if let Some(x) = c.variation {
        writeln!(out, "  variation: {}", x.label())?;
    }
    if let Some(x) = c.assurance {
        writeln!(out, "  assurance: {}", x.label())?;
    }
    writeln!(out, "  {}", c.findings)?;
    for n in &c.notes {
        writeln!(out, "  note: {n}")?;
    }
    Ok(())
}
