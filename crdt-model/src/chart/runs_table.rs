//! How many runs chance gives: the table of Perla, Provost & Murray, "The
//! run chart: a simple analytical tool for learning from variation in
//! healthcare processes", *BMJ Quality & Safety* 20 (2011), Table 1, as the
//! IHI and NHS improvement teams use it. It is based on Swed & Eisenhart
//! (1943) and gives, for 10 to 60 useful observations (values not on the
//! median), the fewest and the most runs expected about 95% of the time.
//! Fewer than the lower limit is "too few runs", more than the upper is
//! "too many".
//!
//! Provenance: the rows are transcribed from that table as the IHI and NHS
//! training material reproduce it; the paper itself could not be consulted
//! when this was written, so check a row against it before relying on a
//! borderline count. The rows from 41 on agree with the normal
//! approximation below (rounded inwards), and the table is more
//! conservative than an exact Swed–Eisenhart test at 2.5% a tail for small
//! counts (20 values: 6 to 16 here, 7 to 15 exactly).
//!
//! Outside the table: below 10 useful observations the rule is not
//! applied; above 60 the limits come from the normal approximation to the
//! number of runs (mean N/2 + 1, variance N(N − 2) / (4(N − 1)), ± 1.96 sd,
//! rounded inwards), which is what the table tends to.

/// `(useful observations, lower limit, upper limit)`.
const TABLE: [(usize, usize, usize); 51] = [
    (10, 3, 9),
    (11, 3, 10),
    (12, 3, 11),
    (13, 4, 11),
    (14, 4, 12),
    (15, 5, 12),
    (16, 5, 13),
    (17, 5, 13),
    (18, 6, 14),
    (19, 6, 15),
    (20, 6, 16),
    (21, 7, 16),
    (22, 7, 17),
    (23, 7, 17),
    (24, 8, 18),
    (25, 8, 18),
    (26, 9, 19),
    (27, 10, 19),
    (28, 10, 20),
    (29, 10, 20),
    (30, 11, 21),
    (31, 11, 22),
    (32, 11, 22),
    (33, 12, 23),
    (34, 12, 23),
    (35, 13, 24),
    (36, 13, 24),
    (37, 13, 25),
    (38, 14, 26),
    (39, 14, 26),
    (40, 15, 27),
    (41, 16, 27),
    (42, 16, 28),
    (43, 17, 28),
    (44, 17, 29),
    (45, 17, 30),
    (46, 17, 31),
    (47, 18, 31),
    (48, 18, 32),
    (49, 19, 32),
    (50, 19, 33),
    (51, 20, 33),
    (52, 20, 34),
    (53, 21, 34),
    (54, 21, 35),
    (55, 22, 35),
    (56, 22, 36),
    (57, 23, 36),
    (58, 23, 37),
    (59, 24, 38),
    (60, 24, 38),
];

/// The fewest and most runs expected with `useful` observations, or `None`
/// below 10.
pub fn limits(useful: usize) -> Option<(usize, usize)> {
    if useful < TABLE[0].0 {
        return None;
    }
    if let Some(&(_, lo, hi)) = TABLE.iter().find(|(n, _, _)| *n == useful) {
        return Some((lo, hi));
    }
    let n = useful as f64;
    let mean = n / 2.0 + 1.0;
    let sd = (n * (n - 2.0) / (4.0 * (n - 1.0))).sqrt();
    Some((
        (mean - 1.96 * sd).ceil() as usize,
        (mean + 1.96 * sd).floor() as usize,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_of_the_table() {
        assert_eq!(limits(9), None);
        assert_eq!(limits(10), Some((3, 9)));
        assert_eq!(limits(15), Some((5, 12)));
        assert_eq!(limits(20), Some((6, 16)));
        assert_eq!(limits(30), Some((11, 21)));
        assert_eq!(limits(60), Some((24, 38)));
    }

    #[test]
    fn beyond_the_table_the_approximation_continues_it() {
        let (lo, hi) = limits(61).unwrap();
        assert!((24..=26).contains(&lo), "{lo}");
        assert!((37..=39).contains(&hi), "{hi}");
        // The limits stay ordered and widen as N grows.
        let mut last = limits(61).unwrap();
        for n in 62..200 {
            let l = limits(n).unwrap();
            assert!(l.0 < l.1 && l.1 - l.0 >= last.1 - last.0 - 1);
            last = l;
        }
    }

    #[test]
    fn the_table_is_monotonic() {
        for w in TABLE.windows(2) {
            assert_eq!(w[1].0, w[0].0 + 1);
            assert!(w[1].1 >= w[0].1 && w[1].2 >= w[0].2);
        }
    }
}
