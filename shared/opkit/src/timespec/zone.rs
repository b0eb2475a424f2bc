//! Time zone names, the machine's own zone, and local times that DST skips or
//! repeats.

use chrono::{DateTime, Duration, LocalResult, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

/// Looks up an IANA zone name (`Europe/Paris`, `america/new_york`, `UTC`),
/// ignoring case, as Slack's `users.info` and people write them. `None` for
/// anything else, including abbreviations such as `PST` or `CEST` that are not
/// zone names in the IANA database.
pub fn parse_zone(name: &str) -> Option<Tz> {
    let name = name.trim();
    if name.is_empty() || name.len() > 64 {
        return None;
    }
    if let Ok(tz) = name.parse::<Tz>() {
        return Some(tz);
    }
    chrono_tz::TZ_VARIANTS
        .iter()
        .find(|tz| tz.name().eq_ignore_ascii_case(name))
        .copied()
}

/// The machine's zone, for `opkit shell` and `opkit say`: `TZ` if it names an
/// IANA zone, else the system's (`/etc/localtime`), else UTC.
pub fn local_zone() -> Tz {
    std::env::var("TZ")
        .ok()
        .and_then(|tz| parse_zone(tz.trim_start_matches(':')))
        .or_else(|| {
            iana_time_zone::get_timezone()
                .ok()
                .and_then(|name| parse_zone(&name))
        })
        .unwrap_or(Tz::UTC)
}

/// The instant a local date and time names in `zone`. When the clocks go back
/// and the time comes twice, the first; when they go forward and skip it, `None`
/// (a start time typed by someone is refused; a schedule takes
/// [`resolve_local`]'s next valid minute instead).
pub fn exact_local<Z: TimeZone>(zone: &Z, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    match zone.from_local_datetime(&local) {
        LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
        LocalResult::Ambiguous(first, _) => Some(first.with_timezone(&Utc)),
        LocalResult::None => None,
    }
}

/// The instant a local date and time names in `zone`, for a schedule: the first
/// when it comes twice, and the moment the clocks jump when it is skipped (as
/// cron does: a daily 02:30 runs at 03:00 on the night DST begins in Europe).
pub fn resolve_local<Z: TimeZone>(zone: &Z, local: NaiveDateTime) -> DateTime<Utc> {
    // No zone skips more than a day (Samoa skipped 2011-12-30 whole).
    (0..=(26 * 60))
        .find_map(|m| exact_local(zone, local + Duration::minutes(m)))
        .unwrap_or_else(|| Utc.from_utc_datetime(&local))
}
