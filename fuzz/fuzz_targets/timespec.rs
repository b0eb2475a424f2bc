//! Durations, start times and schedules: any text parses or is refused with an
//! error, never a panic, and what parses is within the documented bounds.
#![no_main]

use chrono::{DateTime, Duration};
use libfuzzer_sys::fuzz_target;
use opkit::schedule::When;
use opkit::timespec::{Tz, format_duration, format_time, parse_duration, parse_start};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(d) = parse_duration(text) {
        assert!(d > Duration::zero() && d <= Duration::days(90), "{text}: {d}");
        let _ = format_duration(d);
    }
    let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
    for zone in [Tz::UTC, Tz::Europe__Paris, Tz::Pacific__Apia] {
        if let Ok(at) = parse_start(text, now, zone) {
            assert!(at >= now, "{text}: {at}");
        }
    }
    assert!(format_time(now).as_str().ends_with("|2027-01-15 08:00 UTC>"));
    if let Ok(when) = When::parse(text, Tz::America__New_York) {
        assert!(when.next_after(now) > now, "{text}");
        let shown = when.to_string();
        let _ = shown;
    }
});
