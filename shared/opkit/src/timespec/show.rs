//! Showing an instant: in each reader's zone on Slack, in local time in a terminal.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::slack::mrkdwn::Mrkdwn;

/// How Slack shows the time: "Nov 25, 2026 at 10:00 PM", or "Today at …",
/// in the reader's zone and locale (Slack's "Formatting text for app surfaces",
/// *Date formatting*).
const SLACK_DATE_FORMAT: &str = "{date_short_pretty} at {time}";

/// Renders an instant for whoever reads the message: Slack's date token
/// `<!date^UNIX^{date_short_pretty} at {time}|FALLBACK>`, which each reader's
/// client shows in their own time zone, with the UTC time
/// ([`format_time_utc`]) as the fallback where the token cannot be drawn
/// (notifications, old clients). The one way every reply shows a time; a
/// terminal (`opkit shell`, `opkit say`) draws the token with [`format_time_in`]
/// in its own zone.
///
/// The token is markup made by the bot from a number, never from user text, and
/// its type says so: it goes into replies and errors as markup, never as text to
/// escape (which would show the raw token). Where plain text is needed (logs, an
/// error's `Display`), use [`format_time_utc`].
pub fn format_time(t: DateTime<Utc>) -> Mrkdwn {
    Mrkdwn::__format(format_args!(
        "<!date^{}^{SLACK_DATE_FORMAT}|{}>",
        t.timestamp(),
        format_time_utc(t)
    ))
}

/// An instant in UTC, for logs and fallbacks: `2026-11-25 22:00 UTC`.
pub fn format_time_utc(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// An instant in `zone`, with the zone's abbreviation: `2026-11-25 23:00 CET`
/// (`UTC` for UTC).
pub fn format_time_in(t: DateTime<Utc>, zone: Tz) -> String {
    t.with_timezone(&zone)
        .format("%Y-%m-%d %H:%M %Z")
        .to_string()
}
