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
//! `daily 09:00`, `weekdays 09:00`, or days and a time such as `mon,wed,fri 17:30`.
//! A time of day is local to a zone — the one named after it (`daily 09:00
//! Europe/Paris`), else the zone of whoever added the schedule — and stays that
//! local time across DST: a daily 09:00 in Paris runs at 08:00 UTC in winter and
//! 07:00 UTC in summer. Schedules stored before zones existed have none, and
//! keep running in UTC.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Datelike, Duration, NaiveTime, Timelike, Utc};
use serde::{Deserialize, Serialize};

use crate::engine::bot::Bot;
use crate::engine::command::CommandError;
use crate::ids::{ChannelId, UserId};
use crate::slack::web::{OwnPost, post_own, tell_owner};
use crate::slack::{Block, ChannelPoster, Code, Reply, WebApiError};
use crate::timespec::{Tz, format_duration, parse_duration, parse_zone, resolve_local};

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
    /// At a local time on some days of the week.
    At {
        /// Days (Monday = 0), sorted, at least one.
        days: Vec<u8>,
        /// Hour and minute.
        hour: u32,
        /// Minute.
        minute: u32,
        /// The zone the time is local to, by its IANA name. Absent in schedules
        /// stored before zones existed: those are UTC, as they always were.
        #[serde(default = "utc")]
        zone: Tz,
    },
}

fn utc() -> Tz {
    Tz::UTC
}

/// Why a `<when>` does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WhenError {
    /// It is not a schedule at all.
    #[error(
        "`{}` is not a schedule: use `every 15m`, `daily 09:00`, `weekdays 09:00` or `mon,wed 17:30`, optionally with a zone (`daily 09:00 Europe/Paris`)",
        crate::text::one_line(.0)
    )]
    NotASchedule(String),
    /// `every` with an interval under [`MIN_INTERVAL`].
    #[error(
        "`{}` is too often: the shortest interval is one minute (`every 1m`), as often as schedules are checked",
        crate::text::one_line(.0)
    )]
    TooOften(String),
}

/// The shortest interval of an `every` schedule: one minute. The expiry
/// function that runs due schedules is itself invoked once a minute (an
/// EventBridge `rate(1 minute)`, the shortest rate EventBridge takes), as cron
/// and Slack's `/remind` count in minutes at the finest.
pub const MIN_INTERVAL: Duration = Duration::minutes(1);

const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

impl When {
    /// Parses `every 15m`, `daily 09:00`, `weekdays 09:00`, `mon,wed 17:30`, a
    /// time optionally followed by an IANA zone name (`daily 09:00 Europe/Paris`);
    /// without one, the time is local to `zone` (the asker's).
    pub fn parse(s: &str, zone: Tz) -> Result<Self, WhenError> {
        let bad = || WhenError::NotASchedule(s.to_string());
        let lower = s.trim().to_lowercase();
        let (head, tail) = lower.split_once(char::is_whitespace).ok_or_else(bad)?;
        let mut tail = tail.trim();
        let mut zone = zone;
        if head != "every"
            && let Some((time, name)) = tail.split_once(char::is_whitespace)
        {
            zone = parse_zone(name).ok_or_else(bad)?;
            tail = time;
        }
        if head == "every" {
            let d = parse_duration(tail).map_err(|_| bad())?;
            if d < MIN_INTERVAL {
                return Err(WhenError::TooOften(s.trim().to_string()));
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
            zone,
        })
    }

    /// The first time strictly after `after` that this fires.
    pub fn next_after(&self, after: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            When::Every { secs } => after + Duration::seconds(*secs),
            When::At {
                days,
                hour,
                minute,
                zone,
            } => {
                let time =
                    NaiveTime::from_hms_opt(*hour, *minute, 0).expect("valid by construction");
                // Days and the time are the zone's: count local dates, then find
                // the instant each names (DST moves it, not the local time).
                let today = after.with_timezone(zone).date_naive();
                (0..=8)
                    .map(|offset| today + Duration::days(offset))
                    .filter(|date| days.contains(&(date.weekday().num_days_from_monday() as u8)))
                    .map(|date| resolve_local(zone, date.and_time(time)))
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
            When::At {
                days,
                hour,
                minute,
                zone,
            } => {
                let names = match days.as_slice() {
                    [0, 1, 2, 3, 4, 5, 6] => "daily".to_string(),
                    [0, 1, 2, 3, 4] => "weekdays".to_string(),
                    _ => days
                        .iter()
                        .map(|d| DAY_NAMES[usize::from(*d)])
                        .collect::<Vec<_>>()
                        .join(","),
                };
                write!(f, "{names} {hour:02}:{minute:02} {}", zone.name())
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
    /// Whether its owner (`run_as`) was told in a DM that its channel refuses
    /// the bot, since the last run that was posted: they are told once per
    /// streak of refused runs ([`post_answer`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub owner_told: bool,
}

/// All schedules, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleState {
    /// Schedules by name.
    #[serde(default)]
    pub entries: BTreeMap<String, Entry>,
    /// Set while Slack refuses the bot's token (the app was uninstalled, or its
    /// tokens revoked): no schedule runs until [`Suspension::retry_at`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspended: Option<Suspension>,
}

/// Scheduled commands stopped because Slack refused the bot's token: a run whose
/// answer cannot be posted anywhere is not worth running every minute. One try
/// an hour ([`SUSPENSION_RETRY`]) finds out when the app is back (reinstalled,
/// or a new token in place): its first posted run lifts the suspension.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suspension {
    /// When Slack first refused the token.
    pub since: DateTime<Utc>,
    /// Slack's error code (`account_inactive`, `token_revoked`, …).
    pub error: String,
    /// When the schedules due then run again, as a try.
    pub retry_at: DateTime<Utc>,
}

/// How long scheduled commands stay suspended before one more try.
pub const SUSPENSION_RETRY: Duration = Duration::hours(1);

/// Slack's answers to a Web API call whose token no longer works: the app was
/// uninstalled (`account_inactive`: "Authentication token is for a deleted user
/// or workspace when using a bot token"), its tokens revoked (`token_revoked`),
/// or the token is not valid (`invalid_auth`, `not_authed`, `token_expired`).
/// Source: [chat.postMessage errors](https://docs.slack.dev/reference/methods/chat.postMessage#errors);
/// the events that announce the first two are `app_uninstalled` and `tokens_revoked`.
pub const TOKEN_REFUSED: [&str; 5] = [
    "account_inactive",
    "token_revoked",
    "invalid_auth",
    "not_authed",
    "token_expired",
];

/// Takes the entries due at `now` and moves each to its next time (runs missed
/// while nothing checked collapse into one). While the schedules are
/// [suspended](ScheduleState::suspended) and the retry time has not come, the due
/// entries move on without running.
pub fn take_due(state: &mut ScheduleState, now: DateTime<Utc>) -> Vec<Entry> {
    let paused = state.suspended.as_ref().is_some_and(|s| now < s.retry_at);
    let mut due = Vec::new();
    for entry in state.entries.values_mut() {
        if entry.next_at <= now {
            if !paused {
                due.push(entry.clone());
            }
            entry.next_at = entry.when.next_after(now);
        }
    }
    due
}

/// Reads the schedules, lets `change` look at them and change them, and saves
/// them if it says so (`(out, true)`), at the version read: the one way the
/// runtime updates the schedules (the expiry pass taking the due ones, a post's
/// outcome); a concurrent change makes it run again on fresh state.
pub(crate) async fn update<T: Send>(
    bot: &Bot,
    mut change: impl FnMut(&mut ScheduleState) -> (T, bool) + Send,
) -> Result<T, CommandError> {
    bot.update_state(SCRIPT, true, |state| {
        let step = || {
            let mut schedules: ScheduleState = state
                .map(serde_json::from_value)
                .transpose()
                .map_err(|e| CommandError::internal_with("schedules do not parse", e))?
                .unwrap_or_default();
            let (out, changed) = change(&mut schedules);
            let value = if changed {
                Some(serde_json::to_value(&schedules).map_err(CommandError::internal)?)
            } else {
                None
            };
            Ok((out, value))
        };
        Box::pin(std::future::ready(step()))
    })
    .await
}

/// Posts a scheduled run's answer (made by [`posted_reply`]) in the schedule's
/// channel. Where the channel will not take the bot, its owner hears of it in a
/// DM ([`tell_owner`]) — once per streak of refused runs, not on every run: the
/// entry remembers it ([`Entry::owner_told`], set here with the store's
/// optimistic write, so two runs refused at once DM once), and a run that is
/// posted again forgets it, so the next refusal is told again. The DM says what
/// to do: invite the bot, or remove the schedule.
///
/// A store that cannot record the flag does not keep the owner from hearing:
/// they are told (maybe again), and the failure is logged.
pub async fn post_answer(
    bot: &Bot,
    poster: &dyn ChannelPoster,
    name: &str,
    channel: &ChannelId,
    reply: &Reply,
    owner: &UserId,
) -> Result<OwnPost, WebApiError> {
    let refused = match post_own(poster, channel.as_str(), reply, None).await {
        Ok(Ok(posted)) => {
            // Posted: a streak of refusals, and any suspension, are over.
            let over = update(bot, |s| {
                let lifted = s.suspended.take().is_some();
                let entry = s.entries.get_mut(name).filter(|e| e.owner_told);
                let cleared = entry.map(|e| e.owner_told = false).is_some();
                ((), lifted || cleared)
            });
            if let Err(e) = over.await {
                tracing::warn!(schedule = name, error = %e, "could not record that a scheduled run was posted");
            }
            return Ok(OwnPost::Posted(posted));
        }
        Ok(Err(refused)) => refused,
        Err(WebApiError::Slack { method, error }) if TOKEN_REFUSED.contains(&error.as_str()) => {
            suspend(bot, &error).await;
            return Err(WebApiError::Slack { method, error });
        }
        Err(e) => return Err(e),
    };
    let first = update(bot, |s| match s.entries.get_mut(name) {
        Some(entry) if !entry.owner_told => {
            entry.owner_told = true;
            (true, true)
        }
        _ => (false, false),
    });
    let first = first.await.unwrap_or_else(|e| {
        tracing::warn!(schedule = name, error = %e, "could not record that the owner was told");
        true
    });
    if !first {
        tracing::info!(schedule = name, channel = %channel, error = refused, "channel refused the bot again; owner already told");
        return Ok(OwnPost::Refused { error: refused });
    }
    let then = crate::mrkdwn!(
        "Schedule {} runs on; I will not message you about it again until one of its runs is posted there. To stop it instead: {}.",
        Code::new(name),
        Code::new(&format!("schedule remove {name}"))
    );
    tell_owner(poster, channel.as_str(), &refused, reply, owner, Some(then)).await?;
    Ok(OwnPost::ToldOwner { error: refused })
}

/// Suspends the schedules after Slack refused the bot's token with `error`
/// ([`TOKEN_REFUSED`]), until [`SUSPENSION_RETRY`] from now; logged.
async fn suspend(bot: &Bot, error: &str) {
    let now = bot.now();
    let retry_at = now + SUSPENSION_RETRY;
    let suspended = update(bot, |s| {
        let since = s.suspended.as_ref().map_or(now, |old| old.since);
        s.suspended = Some(Suspension {
            since,
            error: error.to_owned(),
            retry_at,
        });
        ((), true)
    });
    match suspended.await {
        Ok(()) => tracing::error!(
            error, %retry_at,
            "Slack refused the bot's token (the app uninstalled, or its token revoked?): scheduled commands suspended, tried again hourly"
        ),
        Err(e) => {
            tracing::error!(error, store_error = %e, "Slack refused the bot's token; could not suspend the schedules")
        }
    }
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
mod tests;
