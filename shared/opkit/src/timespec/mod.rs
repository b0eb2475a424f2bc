//! Durations, times and time zones as people type and read them.
//!
//! ```text
//! duration  90m · 2h · 1d · 1h30m · 2 hours · 90 minutes · 1 day · 1 hour 30 minutes
//! start     22:00                      the next 22:00 in the asker's zone
//!           22:00 Europe/Paris         … in a zone named by its IANA name (or UTC)
//!           22:00+02:00 · 22:00Z       … at a UTC offset
//!           2026-12-01 22:00           a date and a time in the asker's zone
//!           2026-12-01T22:00Z · 2026-12-01T22:00:00+01:00 · 2026-12-01 22:00 Asia/Tokyo
//! ```
//!
//! An explicit zone or offset always wins over the asker's zone (see
//! [`crate::zones`] for how that is found). Going out, [`format_time`] is the one
//! way an instant is shown: Slack's `<!date^…>` token, which every reader's client
//! renders in their own zone, with a UTC fallback; [`format_time_in`] is how a
//! terminal (`opkit shell`, `opkit say`) draws such a token in its own zone.

mod show;
mod start;
#[cfg(test)]
mod tests;
mod zone;

use chrono::{DateTime, Duration, Utc};

use crate::text::one_line;

pub use show::{format_time, format_time_in, format_time_utc};
pub use start::parse_start;
pub use zone::{local_zone, parse_zone, resolve_local};

/// An IANA time zone (`Europe/Paris`, `UTC`): chrono-tz's, with the database
/// compiled in.
pub use chrono_tz::Tz;

/// The longest duration accepted anywhere: 90 days.
pub const MAX_DURATION: Duration = Duration::days(90);

/// How far ahead a start (`from 2027-03-01 22:00`) may be: 90 days, as far as a
/// duration reaches. A window planned further out is planned again nearer the
/// time; a start years away would be a grant nobody remembers making.
pub const MAX_START_AHEAD: Duration = Duration::days(90);

/// Why a duration or a time did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TimeError {
    /// Not a duration at all.
    #[error(
        "`{}` is not a duration: use a number and a unit, like 90m, 2h, 1d, 1h30m or 2 hours",
        one_line(.0)
    )]
    BadDuration(String),
    /// Zero or negative.
    #[error("a duration must be longer than zero")]
    ZeroDuration,
    /// Longer than [`MAX_DURATION`].
    #[error("`{}` is too long: the most is 90d", one_line(.0))]
    TooLong(String),
    /// A start further ahead than [`MAX_START_AHEAD`].
    #[error("{0} is too far ahead: a window starts within 90 days")]
    TooFarAhead(DateTime<Utc>),
    /// Not a time at all.
    #[error(
        "`{}` is not a time: use HH:MM (your time zone), 22:00 Europe/Paris, 22:00+02:00 or 2026-11-30T22:00Z",
        one_line(.0)
    )]
    BadTime(String),
    /// A word where a time zone was expected that is not an IANA zone name.
    #[error(
        "`{}` is not a time zone: use an IANA name such as Europe/Paris or America/New_York, UTC, or an offset like 22:00+02:00",
        one_line(.0)
    )]
    UnknownZone(String),
    /// A local time that the clocks skip (the hour lost when DST begins).
    #[error(
        "{time} does not exist in {zone}: the clocks skip it that day (DST); pick another time"
    )]
    SkippedByDst {
        /// The local date and time, as typed.
        time: String,
        /// The zone's name.
        zone: String,
    },
    /// A start time in the past. Shown to a user as a time in their own zone
    /// (see `From<TimeError> for CommandError`); its `Display` is UTC, for logs.
    #[error("{} is in the past", format_time_utc(*.0))]
    InThePast(DateTime<Utc>),
}

/// Parses a duration: a number and a unit, repeated (`90m`, `2h`, `1h30m`, `1w`),
/// with the unit's long name, singular or plural, if you like (`2 hours`,
/// `90 minutes`, `1 day`, `1 hour 30 minutes`, `1 hour and 30 minutes`).
///
/// Units: `s`/`sec`/`second`, `m`/`min`/`minute`, `h`/`hr`/`hour`, `d`/`day`,
/// `w`/`wk`/`week` (and their plurals). At most [`MAX_DURATION`].
pub fn parse_duration(s: &str) -> Result<Duration, TimeError> {
    let bad = || TimeError::BadDuration(s.to_string());
    let text = s.trim().to_ascii_lowercase();
    let mut total = Duration::zero();
    let mut rest = text.as_str();
    let mut parts = 0;
    loop {
        rest = rest.trim_start_matches([' ', ',']);
        if parts > 0 {
            // `1 hour and 30 minutes`
            if let Some(after) = rest.strip_prefix("and ") {
                rest = after.trim_start();
            }
        }
        if rest.is_empty() {
            break;
        }
        let digits_end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits_end == 0 {
            return Err(bad());
        }
        let n: i64 = rest[..digits_end]
            .parse()
            .map_err(|_| TimeError::TooLong(s.to_string()))?;
        rest = rest[digits_end..].trim_start_matches(' ');
        let unit_end = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let unit = unit_seconds(&rest[..unit_end]).ok_or_else(bad)?;
        rest = &rest[unit_end..];
        let part = n
            .checked_mul(unit)
            .ok_or_else(|| TimeError::TooLong(s.to_string()))?;
        // `Duration::seconds` panics past ±i64::MAX ms: ask, never assume.
        total = Duration::try_seconds(part)
            .and_then(|part| total.checked_add(&part))
            .ok_or_else(|| TimeError::TooLong(s.to_string()))?;
        parts += 1;
    }
    if parts == 0 {
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

/// The length of one unit, in seconds, by any of its names.
fn unit_seconds(name: &str) -> Option<i64> {
    Some(match name {
        "s" | "sec" | "secs" | "second" | "seconds" => 1,
        "m" | "min" | "mins" | "minute" | "minutes" => 60,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3_600,
        "d" | "day" | "days" => 86_400,
        "w" | "wk" | "wks" | "week" | "weeks" => 604_800,
        _ => return None,
    })
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
