//! Durations and start times as people type them: `90m`, `2h`, `1d`, `1h30m`;
//! `22:00` (UTC, the next time it comes round) or an ISO-8601 instant.

use chrono::{DateTime, Duration, NaiveTime, TimeZone, Utc};

use crate::text::one_line;

/// The longest duration accepted anywhere: 90 days.
pub const MAX_DURATION: Duration = Duration::days(90);

/// Why a duration or a time did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TimeError {
    /// Not a duration at all.
    #[error(
        "`{}` is not a duration: use a number and a unit, like 90m, 2h, 1d or 1h30m",
        one_line(.0)
    )]
    BadDuration(String),
    /// Zero or negative.
    #[error("a duration must be longer than zero")]
    ZeroDuration,
    /// Longer than [`MAX_DURATION`].
    #[error("`{}` is too long: the most is 90d", one_line(.0))]
    TooLong(String),
    /// Not a time at all.
    #[error(
        "`{}` is not a time: use HH:MM (UTC) or an ISO-8601 time like 2026-11-30T22:00:00Z",
        one_line(.0)
    )]
    BadTime(String),
    /// A start time in the past.
    #[error("{0} is in the past")]
    InThePast(String),
}

/// Parses `90m`, `2h`, `1d`, `45s`, `1w` or a concatenation such as `1h30m`.
pub fn parse_duration(s: &str) -> Result<Duration, TimeError> {
    let bad = || TimeError::BadDuration(s.to_string());
    let text = s.trim().to_ascii_lowercase();
    if text.is_empty() {
        return Err(bad());
    }
    let mut total = Duration::zero();
    let mut digits = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let n: i64 = digits.parse().map_err(|_| bad())?;
        digits.clear();
        let unit = match c {
            's' => Duration::seconds(1),
            'm' => Duration::minutes(1),
            'h' => Duration::hours(1),
            'd' => Duration::days(1),
            'w' => Duration::weeks(1),
            _ => return Err(bad()),
        };
        let part = n
            .checked_mul(unit.num_seconds())
            .ok_or_else(|| TimeError::TooLong(s.to_string()))?;
        // `Duration::seconds` panics past ±i64::MAX ms: ask, never assume.
        total = Duration::try_seconds(part)
            .and_then(|part| total.checked_add(&part))
            .ok_or_else(|| TimeError::TooLong(s.to_string()))?;
    }
    if !digits.is_empty() {
        return Err(bad());
    }
    if total <= Duration::zero() {
        return Err(TimeError::ZeroDuration);
    }
    if total > MAX_DURATION {
        return Err(TimeError::TooLong(s.to_string()));
    }
    Ok(total)
}

/// Renders a duration compactly: `1d 2h`, `1h 30m`, `45s`.
pub fn format_duration(d: Duration) -> String {
    let mut secs = d.num_seconds().max(0);
    if secs == 0 {
        return "0s".to_string();
    }
    let mut parts = Vec::new();
    for (unit, name) in [(86_400, "d"), (3_600, "h"), (60, "m"), (1, "s")] {
        if secs >= unit {
            parts.push(format!("{}{name}", secs / unit));
            secs %= unit;
        }
        if parts.len() == 2 {
            break;
        }
    }
    parts.join(" ")
}

/// Parses a start time: `HH:MM` means the next time that UTC clock time comes
/// round (today, or tomorrow if it has passed); otherwise an RFC 3339 instant,
/// which must not be in the past.
pub fn parse_start(s: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, TimeError> {
    if let Ok(t) = NaiveTime::parse_from_str(s, "%H:%M") {
        let today = Utc.from_utc_datetime(&now.date_naive().and_time(t));
        return Ok(if today >= now {
            today
        } else {
            today + Duration::days(1)
        });
    }
    let at = DateTime::parse_from_rfc3339(s)
        .map_err(|_| TimeError::BadTime(s.to_string()))?
        .with_timezone(&Utc);
    if at < now {
        return Err(TimeError::InThePast(format_time(at)));
    }
    Ok(at)
}

/// Renders an instant for people: `2026-11-25 22:00 UTC`.
pub fn format_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_too_long_for_any_clock_are_refused_not_a_panic() {
        // found by reading what `cargo fuzz run timespec` would: seconds past
        // i64::MAX / 1000 overflowed chrono's milliseconds
        for s in [
            "9223372036854776s",
            "9223372036854775807s",
            "99999999999999999m1s",
        ] {
            assert!(
                matches!(parse_duration(s), Err(TimeError::TooLong(_))),
                "{s}: {:?}",
                parse_duration(s)
            );
        }
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn durations_in_every_unit_and_combined() {
        assert_eq!(parse_duration("90m"), Ok(Duration::minutes(90)));
        assert_eq!(parse_duration("2h"), Ok(Duration::hours(2)));
        assert_eq!(parse_duration("1d"), Ok(Duration::days(1)));
        assert_eq!(parse_duration("1H30M"), Ok(Duration::minutes(90)));
        assert_eq!(parse_duration("45s"), Ok(Duration::seconds(45)));
        assert_eq!(parse_duration("2w"), Ok(Duration::weeks(2)));
    }

    #[test]
    fn errors_quote_what_was_typed_on_one_line() {
        let typed = "2h\n• `forged`";
        assert_eq!(
            parse_duration(typed).unwrap_err().to_string(),
            "`2h⏎• ˋforgedˋ` is not a duration: use a number and a unit, like 90m, 2h, 1d or 1h30m"
        );
        let now = at("2027-01-15T08:00:00Z");
        let err = parse_start("22:00\n`x`", now).unwrap_err().to_string();
        assert!(err.starts_with("`22:00⏎ˋxˋ` is not a time"), "{err}");
    }

    #[test]
    fn bad_durations_say_why() {
        for bad in ["", "h", "2", "2x", "two hours", "-2h", "2h-"] {
            assert_eq!(
                parse_duration(bad),
                Err(TimeError::BadDuration(bad.to_string())),
                "{bad}"
            );
        }
        assert_eq!(parse_duration("0m"), Err(TimeError::ZeroDuration));
        assert_eq!(
            parse_duration("91d"),
            Err(TimeError::TooLong("91d".to_string()))
        );
        assert!(matches!(
            parse_duration("99999999999999999999d"),
            Err(TimeError::BadDuration(_) | TimeError::TooLong(_))
        ));
    }

    #[test]
    fn durations_format_compactly() {
        assert_eq!(format_duration(Duration::minutes(90)), "1h 30m");
        assert_eq!(format_duration(Duration::hours(26)), "1d 2h");
        assert_eq!(format_duration(Duration::seconds(45)), "45s");
        assert_eq!(format_duration(Duration::zero()), "0s");
    }

    #[test]
    fn clock_time_means_the_next_occurrence() {
        // GIVEN it is 20:00 UTC
        let now = at("2026-11-25T20:00:00Z");
        // THEN 22:00 is later today and 06:00 is tomorrow morning
        assert_eq!(parse_start("22:00", now), Ok(at("2026-11-25T22:00:00Z")));
        assert_eq!(parse_start("06:00", now), Ok(at("2026-11-26T06:00:00Z")));
    }

    #[test]
    fn iso_times_are_accepted_unless_past() {
        let now = at("2026-11-25T20:00:00Z");
        assert_eq!(
            parse_start("2026-11-30T22:00:00+01:00", now),
            Ok(at("2026-11-30T21:00:00Z"))
        );
        assert!(matches!(
            parse_start("2026-11-01T00:00:00Z", now),
            Err(TimeError::InThePast(_))
        ));
        assert_eq!(
            parse_start("25:00", now),
            Err(TimeError::BadTime("25:00".to_string()))
        );
        assert_eq!(
            parse_start("tomorrow", now),
            Err(TimeError::BadTime("tomorrow".to_string()))
        );
    }
}
