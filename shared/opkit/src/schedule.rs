//! The schedule runtime (Opkit's `addCron`): when a scheduled command is due.
//!
//! A schedule is an [`Entry`]: a name, a [`When`], the channel its answers go to,
//! the identity it runs as, and the command text. All entries live in the state of
//! the script named [`SCRIPT`]; the expiry pass ([`crate::expiry`]) takes those
//! that are due ([`take_due`]) every minute and runs them as jobs, and the worker
//! posts their answers with [`posted_reply`]. The commands that add and remove
//! schedules are a pack of the bot built on Opkit (Catbot's `schedule add`).
//!
//! `<when>` is one of `every 15m` (any duration of at least a minute),
//! `daily 09:00`, `weekdays 09:00`, or days and a time such as `mon,wed,fri 17:30`;
//! times are UTC.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Datelike, Duration, NaiveTime, TimeZone, Timelike, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{ChannelId, UserId};
use crate::slack::{Block, Reply};
use crate::timespec::{format_duration, parse_duration};

/// The script whose state holds the schedules.
pub const SCRIPT: &str = "schedules";

/// When a schedule fires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum When {
    /// Every so often.
    Every {
        /// The interval, in seconds (at least 60).
        secs: i64,
    },
    /// At a UTC time on some days of the week.
    At {
        /// Days (Monday = 0), sorted, at least one.
        days: Vec<u8>,
        /// Hour and minute.
        hour: u32,
        /// Minute.
        minute: u32,
    },
}

/// Why a `<when>` does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{}` is not a schedule: use `every 15m`, `daily 09:00`, `weekdays 09:00` or `mon,wed 17:30` (UTC)",
    crate::text::one_line(.0)
)]
pub struct WhenError(String);

const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

impl When {
    /// Parses `every 15m`, `daily 09:00`, `weekdays 09:00`, `mon,wed 17:30`.
    pub fn parse(s: &str) -> Result<Self, WhenError> {
        let bad = || WhenError(s.to_string());
        let lower = s.trim().to_lowercase();
        let (head, tail) = lower.split_once(char::is_whitespace).ok_or_else(bad)?;
        let tail = tail.trim();
        if head == "every" {
            let d = parse_duration(tail).map_err(|_| bad())?;
            if d < Duration::minutes(1) {
                return Err(bad());
            }
            return Ok(When::Every {
                secs: d.num_seconds(),
            });
        }
        let time = NaiveTime::parse_from_str(tail, "%H:%M").map_err(|_| bad())?;
        let days: Vec<u8> = match head {
            "daily" => (0..7).collect(),
            "weekdays" => (0..5).collect(),
            list => {
                let mut days = list
                    .split(',')
                    .map(|d| DAY_NAMES.iter().position(|n| *n == d).map(|i| i as u8))
                    .collect::<Option<Vec<u8>>>()
                    .ok_or_else(bad)?;
                days.sort_unstable();
                days.dedup();
                days
            }
        };
        Ok(When::At {
            days,
            hour: time.hour(),
            minute: time.minute(),
        })
    }

    /// The first time strictly after `after` that this fires.
    pub fn next_after(&self, after: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            When::Every { secs } => after + Duration::seconds(*secs),
            When::At { days, hour, minute } => {
                let time =
                    NaiveTime::from_hms_opt(*hour, *minute, 0).expect("valid by construction");
                (0..=7)
                    .map(|offset| after.date_naive() + Duration::days(offset))
                    .filter(|date| days.contains(&(date.weekday().num_days_from_monday() as u8)))
                    .map(|date| Utc.from_utc_datetime(&date.and_time(time)))
                    .find(|t| *t > after)
                    .expect("some listed day comes round within a week")
            }
        }
    }
}

impl fmt::Display for When {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            When::Every { secs } => {
                write!(f, "every {}", format_duration(Duration::seconds(*secs)))
            }
            When::At { days, hour, minute } => {
                let names = match days.as_slice() {
                    [0, 1, 2, 3, 4, 5, 6] => "daily".to_string(),
                    [0, 1, 2, 3, 4] => "weekdays".to_string(),
                    _ => days
                        .iter()
                        .map(|d| DAY_NAMES[usize::from(*d)])
                        .collect::<Vec<_>>()
                        .join(","),
                };
                write!(f, "{names} {hour:02}:{minute:02} UTC")
            }
        }
    }
}

/// One schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Its name.
    pub name: String,
    /// When it fires.
    pub when: When,
    /// Where the answer goes.
    pub channel: ChannelId,
    /// Whom the command runs as.
    pub run_as: UserId,
    /// The command text.
    pub text: String,
    /// The next time it fires.
    pub next_at: DateTime<Utc>,
}

/// All schedules, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleState {
    /// Schedules by name.
    #[serde(default)]
    pub entries: BTreeMap<String, Entry>,
}

/// Takes the entries due at `now` and moves each to its next time (runs missed
/// while nothing checked collapse into one).
pub fn take_due(state: &mut ScheduleState, now: DateTime<Utc>) -> Vec<Entry> {
    let mut due = Vec::new();
    for entry in state.entries.values_mut() {
        if entry.next_at <= now {
            due.push(entry.clone());
            entry.next_at = entry.when.next_after(now);
        }
    }
    due
}

/// A scheduled run's answer as posted: in the channel, marked as scheduled.
pub fn posted_reply(reply: Reply, name: &str, run_as: &UserId) -> Reply {
    let note = crate::mrkdwn!(
        "Scheduled {}, run as {}",
        crate::slack::Code::new(name),
        run_as.mention()
    );
    let mut reply = reply.with_visibility(crate::slack::Visibility::InChannel);
    // The blocks carry the whole answer: a reply of text alone gets it as a section.
    if reply.blocks.is_empty() {
        reply.blocks.push(Block::Section {
            text: reply.text.clone(),
        });
    }
    reply.text = crate::mrkdwn!("{}\n_{}_", reply.text, note);
    reply.block(Block::Context { text: note })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn schedules_parse_and_print_back() {
        for (text, shown) in [
            ("every 15m", "every 15m"),
            ("daily 09:00", "daily 09:00 UTC"),
            ("Weekdays 9:05", "weekdays 09:05 UTC"),
            ("fri,mon 17:30", "mon,fri 17:30 UTC"),
        ] {
            assert_eq!(When::parse(text).unwrap().to_string(), shown, "{text}");
        }
        for bad in [
            "",
            "every",
            "every 30s",
            "daily",
            "daily 25:00",
            "funday 09:00",
            "hourly x",
        ] {
            assert!(When::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_bad_schedule_is_quoted_on_one_line() {
        let err = When::parse("daily\n`09:00`").unwrap_err().to_string();
        assert!(
            err.starts_with("`daily⏎ˋ09:00ˋ` is not a schedule"),
            "{err}"
        );
    }

    #[test]
    fn next_times_skip_to_the_right_day() {
        // 2027-01-15 is a Friday
        let friday_8 = at("2027-01-15T08:00:00Z");
        let weekdays = When::parse("weekdays 09:00").unwrap();
        assert_eq!(weekdays.next_after(friday_8), at("2027-01-15T09:00:00Z"));
        assert_eq!(
            weekdays.next_after(at("2027-01-15T09:00:00Z")),
            at("2027-01-18T09:00:00Z"),
            "after Friday's run comes Monday's"
        );
        let mondays = When::parse("mon 07:00").unwrap();
        assert_eq!(
            mondays.next_after(at("2027-01-18T07:00:00Z")),
            at("2027-01-25T07:00:00Z")
        );
        assert_eq!(
            When::parse("every 15m").unwrap().next_after(friday_8),
            at("2027-01-15T08:15:00Z")
        );
    }

    #[test]
    fn due_entries_are_taken_once_and_missed_runs_collapse() {
        let mut state = ScheduleState::default();
        let when = When::parse("every 1h").unwrap();
        state.entries.insert(
            "h".into(),
            Entry {
                name: "h".into(),
                when,
                channel: ChannelId::parse("C1").unwrap(),
                run_as: UserId::parse("U1").unwrap(),
                text: "queue status".into(),
                next_at: at("2027-01-15T08:00:00Z"),
            },
        );
        assert!(take_due(&mut state, at("2027-01-15T07:59:00Z")).is_empty());
        assert_eq!(take_due(&mut state, at("2027-01-15T11:30:00Z")).len(), 1);
        assert!(take_due(&mut state, at("2027-01-15T11:31:00Z")).is_empty());
        assert_eq!(state.entries["h"].next_at, at("2027-01-15T12:30:00Z"));
    }
}
