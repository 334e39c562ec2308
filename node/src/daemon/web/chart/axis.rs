//! Axis arithmetic for the chart: round-numbered value ticks, and which
//! dates to label so that no two labels overlap.

/// A "nice" step (1, 2, 2.5 or 5 × 10ⁿ) giving about `wanted` intervals
/// over `span`.
pub fn nice_step(span: f64, wanted: usize) -> f64 {
    if span <= 0.0 || !span.is_finite() {
        return 1.0;
    }
    let raw = span / wanted.max(1) as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    let scaled = raw / magnitude;
    let nice = [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .find(|n| *n >= scaled)
        .unwrap_or(10.0);
    nice * magnitude
}

/// The axis range, widened to whole steps, and its ticks.
pub fn ticks(lo: f64, hi: f64) -> (f64, f64, Vec<f64>) {
    let (lo, hi) = if (hi - lo).abs() < f64::EPSILON {
        (lo - 1.0, hi + 1.0)
    } else {
        (lo, hi)
    };
    let step = nice_step(hi - lo, 5);
    let start = (lo / step).floor() * step;
    let end = (hi / step).ceil() * step;
    let mut out = Vec::new();
    let mut k = 0;
    loop {
        let t = start + step * f64::from(k);
        if t > end + step * 1e-9 {
            break;
        }
        // Rounding noise: 0.30000000000000004 is 0.3.
        let scale = 10f64.powi((1 - step.log10().floor() as i32).max(0));
        out.push((t * scale).round() / scale);
        k += 1;
    }
    (start, end, out)
}

/// Indexes of the labels to draw: the first and the last always, others
/// left to right when they leave `gap` pixels to the one before and to the
/// last. `xs` are the labels' centres, `widths` their widths.
pub fn spaced(xs: &[f64], widths: &[f64], gap: f64) -> Vec<usize> {
    let n = xs.len();
    if n == 0 {
        return Vec::new();
    }
    // The first is drawn from its x rightwards, the last leftwards.
    let right_of_first = xs[0] + widths[0];
    let left_of_last = xs[n - 1] - widths[n - 1];
    let mut out = vec![0];
    if n == 1 {
        return out;
    }
    let mut edge = right_of_first;
    for i in 1..n - 1 {
        let (l, r) = (xs[i] - widths[i] / 2.0, xs[i] + widths[i] / 2.0);
        if l >= edge + gap && r + gap <= left_of_last {
            out.push(i);
            edge = r;
        }
    }
    if left_of_last >= right_of_first + gap {
        out.push(n - 1);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        let (lo, hi, t) = ticks(3.2, 47.9);
        assert_eq!((lo, hi), (0.0, 50.0));
        assert_eq!(t, vec![0.0, 10.0, 20.0, 30.0, 40.0, 50.0]);
        let (_, _, t) = ticks(0.12, 0.61);
        assert_eq!(t, vec![0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]);
        assert_eq!(ticks(5.0, 5.0).2.first(), Some(&4.0));
    }

    #[test]
    fn date_labels_never_overlap_and_keep_both_ends() {
        // 40 labels 60 px wide, 15 px apart: most must go.
        let xs: Vec<f64> = (0..40).map(|i| 60.0 + 15.0 * f64::from(i)).collect();
        let widths = vec![60.0; 40];
        let shown = spaced(&xs, &widths, 8.0);
        assert_eq!(shown.first(), Some(&0));
        assert_eq!(shown.last(), Some(&39));
        // Their extents (first drawn rightwards, last leftwards) are apart.
        let extent = |i: usize| match i {
            0 => (xs[0], xs[0] + 60.0),
            39 => (xs[39] - 60.0, xs[39]),
            i => (xs[i] - 30.0, xs[i] + 30.0),
        };
        for w in shown.windows(2) {
            assert!(extent(w[1]).0 >= extent(w[0]).1 + 8.0, "{w:?}");
        }
        // Two labels too close for both: only the first.
        assert_eq!(spaced(&[10.0, 20.0], &[60.0, 60.0], 8.0), vec![0]);
    }
}
