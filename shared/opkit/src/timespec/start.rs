//! Start times (`from 22:00`): read in the asker's zone unless a zone or an
//! offset is given.

use chrono::{DateTime, Duration, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

use super::TimeError;
use super::zone::{exact_local, parse_zone};

/// Parses a start time; `zone` is the asker's, used when the text names none.
///
/// - `HH:MM` (or `HH:MM:SS`): the next time that clock time comes round in the
///   zone — today, or tomorrow if it has passed;
/// - a date and a time, `2026-12-01 22:00` or `2026-12-01T22:00`, in the zone;
/// - either followed by an IANA zone name (`22:00 Europe/Paris`) or an offset
///   (`22:00+02:00`, `22:00Z`, `2026-12-01T22:00:00-05:00`), which wins over `zone`.
///
/// A dated time must not be in the past; a local time that DST skips is refused
/// ([`TimeError::SkippedByDst`]); one that comes twice is the first.
pub fn parse_start(s: &str, now: DateTime<Utc>, zone: Tz) -> Result<DateTime<Utc>, TimeError> {
    let bad = || TimeError::BadTime(s.to_string());
    let text = s.trim();
    if text.is_empty() || text.len() > 80 {
        return Err(bad());
    }
    // A trailing word that is not part of a time names the zone.
    let (body, named) = match text.rsplit_once(char::is_whitespace) {
        Some((head, tail)) if !tail.starts_with(|c: char| c.is_ascii_digit()) => {
            let zone_like = tail
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "/_-+".contains(c));
            match parse_zone(tail) {
                Some(tz) => (head.trim_end(), Some(tz)),
                None if zone_like => return Err(TimeError::UnknownZone(tail.to_string())),
                None => return Err(bad()),
            }
        }
        _ => (text, None),
    };
    // The date, if any, ends at a `T` or a space.
    let (date, clock) = match body.split_once(['T', 't', ' ']) {
        Some((date, clock)) => (
            Some(NaiveDate::parse_from_str(date, "%Y-%m-%d").map_err(|_| bad())?),
            clock.trim_start(),
        ),
        None => (None, body),
    };
    let (clock, offset) = split_offset(clock).ok_or_else(bad)?;
    let time = ["%H:%M", "%H:%M:%S"]
        .iter()
        .find_map(|f| NaiveTime::parse_from_str(clock, f).ok())
        .ok_or_else(bad)?;
    let at = match (offset, named) {
        (Some(_), Some(_)) => return Err(bad()),
        (Some(offset), None) => at_in(&offset, &offset.to_string(), date, time, now)?,
        (None, Some(tz)) => at_in(&tz, tz.name(), date, time, now)?,
        (None, None) => at_in(&zone, zone.name(), date, time, now)?,
    };
    if at < now {
        return Err(TimeError::InThePast(at));
    }
    if at - now > super::MAX_START_AHEAD {
        return Err(TimeError::TooFarAhead(at));
    }
    Ok(at)
}

/// The instant of `time` (on `date`, or next) in `zone`.
fn at_in<Z: TimeZone>(
    zone: &Z,
    zone_name: &str,
    date: Option<NaiveDate>,
    time: NaiveTime,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, TimeError> {
    let skipped = |local: NaiveDateTime| TimeError::SkippedByDst {
        time: local.format("%Y-%m-%d %H:%M").to_string(),
        zone: zone_name.to_string(),
    };
    if let Some(date) = date {
        let local = date.and_time(time);
        return exact_local(zone, local).ok_or_else(|| skipped(local));
    }
    let today = now.with_timezone(zone).date_naive();
    for day in [today, today + Duration::days(1)] {
        let local = day.and_time(time);
        match exact_local(zone, local) {
            Some(at) if at >= now => return Ok(at),
            Some(_) => continue,
            // Tonight's 02:30 does not exist: say so rather than pick another.
            None => return Err(skipped(local)),
        }
    }
    // Tomorrow's is always after now; a fuzzer is owed an answer, not a panic.
    Err(TimeError::BadTime(time.to_string()))
}

/// Splits `22:00+02:00`, `22:00-0500`, `22:00Z` into the clock and the offset.
/// `None` when what follows the clock is not an offset.
fn split_offset(clock: &str) -> Option<(&str, Option<FixedOffset>)> {
    if let Some(c) = clock.strip_suffix(['Z', 'z']) {
        return Some((c, Some(FixedOffset::east_opt(0)?)));
    }
    let Some(i) = clock.find(['+', '-']) else {
        return Some((clock, None));
    };
    let (c, off) = clock.split_at(i);
    let sign = if off.starts_with('-') { -1 } else { 1 };
    let digits: String = off[1..].chars().filter(|c| *c != ':').collect();
    if !digits.chars().all(|c| c.is_ascii_digit()) || !matches!(digits.len(), 2 | 4) {
        return None;
    }
    let hours: i32 = digits[..2].parse().ok()?;
    let minutes: i32 = if digits.len() == 4 {
        digits[2..].parse().ok()?
    } else {
        0
    };
    if hours > 14 || minutes > 59 {
        return None;
    }
    Some((
        c,
        Some(FixedOffset::east_opt(sign * (hours * 3600 + minutes * 60))?),
    ))
}
