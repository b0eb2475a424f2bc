//! Durations, start times and schedules: any text parses or is refused with an
//! error, never a panic, and what parses is within the documented bounds.
#![no_main]

use chrono::{DateTime, Duration};
use libfuzzer_sys::fuzz_target;
use opkit::schedule::When;
use opkit::timespec::{format_duration, parse_duration, parse_start};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(d) = parse_duration(text) {
        assert!(d > Duration::zero() && d <= Duration::days(90), "{text}: {d}");
        let _ = format_duration(d);
    }
    let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
    if let Ok(at) = parse_start(text, now) {
        assert!(at >= now, "{text}: {at}");
    }
    if let Ok(when) = When::parse(text) {
        assert!(when.next_after(now) > now, "{text}");
        let shown = when.to_string();
        let _ = shown;
    }
});
