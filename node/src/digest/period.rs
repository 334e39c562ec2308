//! When a digest starts: `7d`, `24h`, `2w` back from now, a date
//! (`2026-11-01`, midnight UTC, as `convene export --since` reads it) or
//! an RFC 3339 instant.

use convene_model::Timestamp;

/// The longest period a digest may cover (about ten years): a typo such
/// as `70000d` is refused rather than read as "everything".
pub const MAX_PERIOD_MS: i64 = 3_660 * DAY_MS;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// A `since` that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeriodError {
    #[error(
        "{0:?} is not a period or a date: use a number of hours, days or weeks (24h, 7d, 2w), a date (2026-11-01) or an RFC 3339 time"
    )]
    Unreadable(String),
    #[error("{0:?} is in the future: a digest covers what already happened")]
    Future(String),
    #[error("{0:?} reaches back more than ten years")]
    TooLong(String),
}

/// The start of the period `text` names, counted back from `now`.
pub fn parse_since(text: &str, now: Timestamp) -> Result<Timestamp, PeriodError> {
    let text = text.trim();
    let unreadable = || PeriodError::Unreadable(text.to_string());
    let at = if let Some((digits, unit)) = split_unit(text) {
        // All digits: the only way to fail is to overflow.
        let n: i64 = digits
            .parse()
            .map_err(|_| PeriodError::TooLong(text.to_string()))?;
        let unit_ms = match unit {
            'h' => HOUR_MS,
            'd' => DAY_MS,
            'w' => 7 * DAY_MS,
            _ => return Err(unreadable()),
        };
        let back = n
            .checked_mul(unit_ms)
            .filter(|b| *b <= MAX_PERIOD_MS)
            .ok_or_else(|| PeriodError::TooLong(text.to_string()))?;
        now.millis() - back
    } else if let Ok(d) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        d.and_hms_opt(0, 0, 0)
            .ok_or_else(unreadable)?
            .and_utc()
            .timestamp_millis()
    } else if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        t.timestamp_millis()
    } else {
        return Err(unreadable());
    };
    if at > now.millis() {
        return Err(PeriodError::Future(text.to_string()));
    }
    if now.millis() - at > MAX_PERIOD_MS {
        return Err(PeriodError::TooLong(text.to_string()));
    }
    Ok(Timestamp(at))
}

/// `7d` → `("7", 'd')`: ASCII digits then one unit letter.
fn split_unit(text: &str) -> Option<(&str, char)> {
    let unit = text.chars().last()?;
    let digits = &text[..text.len() - unit.len_utf8()];
    (unit.is_ascii_alphabetic() && !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
        .then_some((digits, unit.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp(1_796_000_000_000); // 2026-11-29

    #[test]
    fn periods_count_back_from_now() {
        assert_eq!(parse_since("24h", NOW).unwrap().millis(), NOW.0 - DAY_MS);
        assert_eq!(parse_since("7d", NOW).unwrap().millis(), NOW.0 - 7 * DAY_MS);
        assert_eq!(
            parse_since(" 2W ", NOW).unwrap().millis(),
            NOW.0 - 14 * DAY_MS
        );
        assert_eq!(parse_since("0d", NOW).unwrap(), NOW);
    }

    #[test]
    fn dates_are_midnight_utc_and_instants_exact() {
        let t = parse_since("2026-11-01", NOW).unwrap();
        assert_eq!(t.to_string(), "2026-11-01T00:00:00.000Z");
        let t = parse_since("2026-11-01T09:30:00+01:00", NOW).unwrap();
        assert_eq!(t.to_string(), "2026-11-01T08:30:00.000Z");
    }

    #[test]
    fn nonsense_the_future_and_huge_periods_are_refused() {
        for bad in [
            "",
            "7",
            "d",
            "7x",
            "-7d",
            "7 d",
            "seven days",
            "2026-13-01",
            "7d!",
        ] {
            assert!(
                matches!(parse_since(bad, NOW), Err(PeriodError::Unreadable(_))),
                "{bad:?}"
            );
        }
        assert!(matches!(
            parse_since("2030-01-01", NOW),
            Err(PeriodError::Future(_))
        ));
        for huge in ["99999999999999999999d", "70000d", "1900-01-01"] {
            assert!(
                matches!(parse_since(huge, NOW), Err(PeriodError::TooLong(_))),
                "{huge:?}"
            );
        }
        let message = parse_since("soon", NOW).unwrap_err().to_string();
        assert!(
            message.contains("7d") && !message.contains('\n'),
            "{message}"
        );
    }
}
