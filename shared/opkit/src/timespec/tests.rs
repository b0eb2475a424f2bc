//! Durations, start times in zones, and how times are shown.

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;

use super::*;

const UTC: Tz = Tz::UTC;

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
        "`2h⏎• ˋforgedˋ` is not a duration: use a number and a unit, like 90m, 2h, 1d, 1h30m or 2 hours"
    );
    let now = at("2027-01-15T08:00:00Z");
    let err = parse_start("22:00\n`x`", now, UTC).unwrap_err().to_string();
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
    assert_eq!(
        parse_start("22:00", now, UTC),
        Ok(at("2026-11-25T22:00:00Z"))
    );
    assert_eq!(
        parse_start("06:00", now, UTC),
        Ok(at("2026-11-26T06:00:00Z"))
    );
}

#[test]
fn iso_times_are_accepted_unless_past() {
    let now = at("2026-11-25T20:00:00Z");
    assert_eq!(
        parse_start("2026-11-30T22:00:00+01:00", now, UTC),
        Ok(at("2026-11-30T21:00:00Z"))
    );
    assert!(matches!(
        parse_start("2026-11-01T00:00:00Z", now, UTC),
        Err(TimeError::InThePast(_))
    ));
    assert_eq!(
        parse_start("25:00", now, UTC),
        Err(TimeError::BadTime("25:00".to_string()))
    );
    assert_eq!(
        parse_start("tomorrow", now, UTC),
        Err(TimeError::BadTime("tomorrow".to_string()))
    );
}

#[test]
fn long_unit_names_and_plurals_are_durations() {
    // the wording item of issue #10 §6: `for 2 hours` said "unexpected `hours`"
    for (typed, minutes) in [
        ("2 hours", 120),
        ("1 hour", 60),
        ("90 minutes", 90),
        ("90 mins", 90),
        ("1 day", 1440),
        ("2 days", 2880),
        ("1 week", 10080),
        ("2h30m", 150),
        ("2h 30m", 150),
        ("1 hour 30 minutes", 90),
        ("1 hour and 30 minutes", 90),
        ("1 Hour, 30 Minutes", 90),
        ("2hrs", 120),
        ("45 seconds", 0),
    ] {
        let expected = if minutes == 0 {
            Duration::seconds(45)
        } else {
            Duration::minutes(minutes)
        };
        assert_eq!(parse_duration(typed), Ok(expected), "{typed}");
    }
    for bad in [
        "2 months",
        "hours",
        "2 hours 3",
        "and 2h",
        "2 and",
        "2h and and 3m",
        "1 fortnight",
    ] {
        assert_eq!(
            parse_duration(bad),
            Err(TimeError::BadDuration(bad.to_string())),
            "{bad}"
        );
    }
    assert_eq!(
        parse_duration("91 days"),
        Err(TimeError::TooLong("91 days".to_string()))
    );
}

fn paris() -> Tz {
    parse_zone("Europe/Paris").unwrap()
}

#[test]
fn a_clock_time_is_read_in_the_askers_zone() {
    // GIVEN it is 20:00 UTC on a winter day (Paris is UTC+1, New York UTC-5)
    let now = at("2026-11-25T20:00:00Z");
    // THEN 22:00 for a Parisian is 21:00 UTC today
    assert_eq!(
        parse_start("22:00", now, paris()),
        Ok(at("2026-11-25T21:00:00Z"))
    );
    // AND 22:00 for a New Yorker is 03:00 UTC tomorrow
    let ny = parse_zone("America/New_York").unwrap();
    assert_eq!(
        parse_start("22:00", now, ny),
        Ok(at("2026-11-26T03:00:00Z"))
    );
    // AND 20:30 for a Parisian (19:30 UTC) has passed: tomorrow's
    assert_eq!(
        parse_start("20:30", now, paris()),
        Ok(at("2026-11-26T19:30:00Z"))
    );
    // AND in summer Paris is UTC+2
    let june = at("2027-06-10T08:00:00Z");
    assert_eq!(
        parse_start("22:00", june, paris()),
        Ok(at("2027-06-10T20:00:00Z"))
    );
}

#[test]
fn an_explicit_zone_or_offset_wins_over_the_askers_zone() {
    let now = at("2026-11-25T20:00:00Z");
    let ny = parse_zone("America/New_York").unwrap();
    for (typed, expected) in [
        ("22:00 Europe/Paris", "2026-11-25T21:00:00Z"),
        ("22:00 europe/paris", "2026-11-25T21:00:00Z"),
        ("22:00 UTC", "2026-11-25T22:00:00Z"),
        ("22:00Z", "2026-11-25T22:00:00Z"),
        ("22:00+02:00", "2026-11-25T20:00:00Z"),
        // 18:00 UTC has passed: tomorrow's
        ("23:30+0530", "2026-11-26T18:00:00Z"),
        ("2026-12-01T22:00Z", "2026-12-01T22:00:00Z"),
        ("2026-12-01T22:00:00-05:00", "2026-12-02T03:00:00Z"),
        ("2026-12-01 22:00 Asia/Tokyo", "2026-12-01T13:00:00Z"),
        ("2026-12-01 22:00:30 UTC", "2026-12-01T22:00:30Z"),
    ] {
        assert_eq!(parse_start(typed, now, ny), Ok(at(expected)), "{typed}");
    }
    // a date without a zone is in the asker's
    assert_eq!(
        parse_start("2026-12-01 22:00", now, ny),
        Ok(at("2026-12-02T03:00:00Z"))
    );
}

#[test]
fn bad_zones_and_mixed_forms_say_what_is_wrong() {
    let now = at("2026-11-25T20:00:00Z");
    assert_eq!(
        parse_start("22:00 Paris", now, UTC),
        Err(TimeError::UnknownZone("Paris".into()))
    );
    assert_eq!(
        parse_start("22:00 PST", now, UTC),
        Err(TimeError::UnknownZone("PST".into())),
        "an abbreviation names no rules"
    );
    for bad in [
        "22:00+02:00 Europe/Paris",
        "22:00+25:00",
        "22:00+2",
        "2026-13-01 22:00",
        "2026-12-01",
        "22",
        "22:00 \u{202e}x",
    ] {
        assert!(
            matches!(parse_start(bad, now, UTC), Err(TimeError::BadTime(_))),
            "{bad}: {:?}",
            parse_start(bad, now, UTC)
        );
    }
    assert!(
        parse_start("22:00 Mars/Olympus", now, UTC)
            .unwrap_err()
            .to_string()
            .starts_with("`Mars/Olympus` is not a time zone: use an IANA name")
    );
}

#[test]
fn a_time_the_clocks_skip_is_refused_and_one_they_repeat_is_the_first() {
    // Europe/Paris: 2027-03-28 02:00 → 03:00; 2027-10-31 03:00 → 02:00
    let before_spring = at("2027-03-27T22:00:00Z");
    assert_eq!(
        parse_start("02:30", before_spring, paris()),
        Err(TimeError::SkippedByDst {
            time: "2027-03-28 02:30".into(),
            zone: "Europe/Paris".into()
        })
    );
    assert!(matches!(
        parse_start("2027-03-28 02:30", before_spring, paris()),
        Err(TimeError::SkippedByDst { .. })
    ));
    // 02:30 on 2027-10-31 comes twice: at 00:30 UTC (CEST) and 01:30 UTC (CET)
    let before_autumn = at("2027-10-30T22:00:00Z");
    assert_eq!(
        parse_start("02:30", before_autumn, paris()),
        Ok(at("2027-10-31T00:30:00Z"))
    );
}

#[test]
fn zone_names_are_iana_names_in_any_case() {
    assert_eq!(parse_zone("Europe/Paris"), Some(paris()));
    assert_eq!(parse_zone("EUROPE/PARIS"), Some(paris()));
    assert_eq!(
        parse_zone(" America/New_York "),
        parse_zone("america/new_york")
    );
    assert_eq!(parse_zone("UTC"), Some(Tz::UTC));
    for bad in ["", "Paris", "Europe/Atlantis", &"x".repeat(100)] {
        assert_eq!(parse_zone(bad), None, "{bad}");
    }
}

#[test]
fn times_render_as_slack_date_tokens_with_a_utc_fallback() {
    let t = at("2026-11-25T22:00:00Z");
    assert_eq!(
        format_time(t),
        "<!date^1795644000^{date_short_pretty} at {time}|2026-11-25 22:00 UTC>"
    );
    assert_eq!(format_time_utc(t), "2026-11-25 22:00 UTC");
    assert_eq!(format_time_in(t, paris()), "2026-11-25 23:00 CET");
    assert_eq!(format_time_in(t, UTC), "2026-11-25 22:00 UTC");
}

#[test]
fn schedules_resolve_skipped_times_to_the_jump_and_repeated_ones_to_the_first() {
    let local = |s: &str| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap();
    assert_eq!(
        resolve_local(&paris(), local("2027-03-28 02:30")),
        at("2027-03-28T01:00:00Z"),
        "03:00 CEST, the moment the clocks jump"
    );
    assert_eq!(
        resolve_local(&paris(), local("2027-10-31 02:30")),
        at("2027-10-31T00:30:00Z")
    );
    assert_eq!(
        resolve_local(&paris(), local("2027-01-10 09:00")),
        at("2027-01-10T08:00:00Z")
    );
}
