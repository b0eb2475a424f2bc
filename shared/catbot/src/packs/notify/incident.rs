//! What one alarm state change does, decided on the stored state alone (pure):
//! which channels hear of it, whether it opens an incident, goes into an open
//! incident's thread, or ends one — and whether it is news at all.
//!
//! ```text
//! (dated more than MAX_SKEW ahead of the clock    → refused before this, alarm or
//!                                                   instance: [`from_the_future`])
//! older than or as old as the last change seen   → nothing (a repeat, or late)
//! muted                                           → recorded, nothing posted
//! → ALARM, no open incident                       → a new message in each channel
//!                                                   subscribed to ALARM: the incident
//! → ALARM within FLAP_WINDOW of the last recovery → that incident again (flapping),
//!                                                   always a thread reply: the thread's
//!                                                   last word is never "back to OK"
//!                                                   while it fires
//! any other change while an incident is open      → its thread; at most one reply per
//!                                                   FLAP_WINDOW, the rest counted
//! → OK ending an incident                         → its thread, and the original
//!                                                   message updated with the duration
//! any other change                                → a message in each channel
//!                                                   subscribed to that state (OK only
//!                                                   when it follows ALARM)
//! ```

use chrono::{DateTime, Duration, Utc};

use super::event::{AlarmChange, AlarmState};
use super::state::{AlarmRecord, Incident, NotifyState, Post};
use opkit::ids::ChannelId;

/// Changes of one alarm closer together than this are summarised: one thread
/// reply per window at most, and an alarm firing again this soon after its
/// recovery reopens the same incident instead of starting a new one.
pub const FLAP_WINDOW: Duration = Duration::minutes(5);

/// How far ahead of the bot's clock a change may be dated, alarm or instance.
/// CloudWatch and EC2 stamp a change when it happens, so a later one is forged
/// or from a skewed clock; kept, it would make every real change of that alarm
/// or instance after it "not newer", until then.
pub const MAX_SKEW: Duration = Duration::minutes(5);

/// What to post for one change.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// Nothing to post.
    Quiet(Why),
    /// A new incident: a message in each of these channels (its `ts` is then
    /// recorded with [`NotifyState::record_posts`]).
    Open {
        /// Where.
        channels: Vec<ChannelId>,
    },
    /// A change inside an open incident.
    Follow {
        /// The incident's messages: replied to in their thread (when `reply`),
        /// and redrawn.
        posts: Vec<Post>,
        /// Whether a thread reply is due (not within [`FLAP_WINDOW`] of the last).
        reply: bool,
        /// Whether the incident ended with this change (back to OK).
        ended: bool,
    },
    /// A change outside any incident: a message in each of these channels.
    Single {
        /// Where.
        channels: Vec<ChannelId>,
    },
}

/// Why a change posts nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// Not newer than the last change seen of this alarm: a repeat, or late.
    NotNewer,
    /// Not newer than the last change seen of this instance, or that same
    /// state at the same time: a repeat, or late.
    InstanceNotNewer,
    /// The alarm is muted.
    Muted,
    /// No channel is subscribed to this alarm.
    NoSubscriber,
    /// Channels are subscribed to this alarm, but none to its changes into this state.
    NotThisState(AlarmState),
    /// A change to OK that follows no ALARM (from INSUFFICIENT_DATA, or the first seen).
    NotNews,
    /// No channel is subscribed to EC2 instance state changes.
    NoInstanceSubscriber,
    /// The instance is not tagged `opkit:managed=true`.
    NotManaged,
    /// The bot has no EC2 client to look up the instance's tags.
    NoInstanceLookup,
    /// An instance state change Opkit itself asked for (`ec2 start`, `ec2 stop`).
    AskedByOpkit,
    /// Dated more than [`MAX_SKEW`] ahead of the bot's clock: refused, kept nowhere.
    FromTheFuture,
}

impl std::fmt::Display for Why {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Why::NotThisState(state) = self {
            return write!(
                f,
                "the channels subscribed to this alarm do not hear its changes into {}",
                state.as_str()
            );
        }
        f.write_str(match self {
            Why::NotNewer => {
                "not newer than the last change seen of this alarm (a repeat, or late)"
            }
            Why::InstanceNotNewer => {
                "not newer than the last change seen of this instance (a repeat, or late)"
            }
            Why::Muted => "the alarm is muted",
            Why::NoSubscriber => "no channel is subscribed to this alarm",
            Why::NotThisState(_) => unreachable!("written above"),
            Why::NotNews => "a change to OK that follows no ALARM is not news",
            Why::NoInstanceSubscriber => {
                "no channel is subscribed to EC2 instance state changes (`ec2 subscribe`)"
            }
            Why::NotManaged => "the instance is not tagged opkit:managed=true",
            Why::NoInstanceLookup => {
                "the bot has no EC2 client to look up the instance's opkit:managed tag"
            }
            Why::AskedByOpkit => "Opkit itself asked for this change",
            Why::FromTheFuture => {
                "dated more than 5 minutes ahead of the bot's clock (forged, or a skewed clock): refused"
            }
        })
    }
}

/// Whether a state change dated `at` is refused at `now`: more than
/// [`MAX_SKEW`] ahead. The one check of every event, alarm or instance, before
/// anything is read or kept ([`super::Notifier::handle`]).
pub fn from_the_future(at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    at > now + MAX_SKEW
}

/// Applies `change` to `state` and says what to post. `now` decides mutes. A
/// change [`from_the_future`] is refused before this is called.
pub fn apply(state: &mut NotifyState, change: &AlarmChange, now: DateTime<Utc>) -> Plan {
    let key = AlarmRecord::key(&change.account, &change.region, &change.name);
    let subscribed = |s: AlarmState| state.channels_for(&change.name, s);
    let alarm_channels = subscribed(AlarmState::Alarm);
    let state_channels = subscribed(change.state);
    let subscribed_at_all = AlarmState::ALL
        .into_iter()
        .any(|s| !subscribed(s).is_empty());
    let record = state
        .alarms
        .entry(key.clone())
        .or_insert_with(|| AlarmRecord {
            state: change.state,
            at: DateTime::<Utc>::MIN_UTC,
            facts: change.facts.clone(),
            incident: None,
            muted: None,
        });
    if change.at <= record.at {
        return Plan::Quiet(Why::NotNewer);
    }
    record.state = change.state;
    record.at = change.at;
    record.facts = change.facts.clone();
    let muted = record.muted.as_ref().is_some_and(|m| m.until > now);
    let plan = follow_or_open(
        record,
        change,
        alarm_channels,
        state_channels,
        subscribed_at_all,
    );
    state.prune(Some(&key), now);
    if muted {
        return Plan::Quiet(Why::Muted);
    }
    plan
}

fn follow_or_open(
    record: &mut AlarmRecord,
    change: &AlarmChange,
    alarm_channels: Vec<ChannelId>,
    state_channels: Vec<ChannelId>,
    subscribed_at_all: bool,
) -> Plan {
    let at = change.at;
    let reopens = |i: &Incident| i.ended_at.is_some_and(|end| at - end < FLAP_WINDOW);
    match record.incident.as_mut() {
        Some(incident)
            if incident.ended_at.is_none()
                || (change.state == AlarmState::Alarm && reopens(incident)) =>
        {
            incident.changes += 1;
            let ended = change.state == AlarmState::Ok;
            // Firing again after "back to OK": said in the thread whatever the
            // window (a redraw of the message notifies nobody).
            let refired = incident.ended_at.is_some();
            incident.ended_at = ended.then_some(at);
            let reply = ended
                || refired
                || incident
                    .last_reply_at
                    .is_none_or(|last| at - last >= FLAP_WINDOW);
            if reply {
                incident.last_reply_at = Some(at);
            } else {
                incident.quiet += 1;
            }
            Plan::Follow {
                posts: incident.posts.clone(),
                reply,
                ended,
            }
        }
        _ if change.state == AlarmState::Alarm => {
            record.incident = Some(Incident {
                since: at,
                posts: Vec::new(),
                changes: 0,
                quiet: 0,
                last_reply_at: None,
                ended_at: None,
                acked_by: None,
            });
            if alarm_channels.is_empty() {
                Plan::Quiet(if subscribed_at_all {
                    Why::NotThisState(AlarmState::Alarm)
                } else {
                    Why::NoSubscriber
                })
            } else {
                Plan::Open {
                    channels: alarm_channels,
                }
            }
        }
        _ => {
            let news = change.state != AlarmState::Ok || change.previous == Some(AlarmState::Alarm);
            if !news {
                Plan::Quiet(Why::NotNews)
            } else if !state_channels.is_empty() {
                Plan::Single {
                    channels: state_channels,
                }
            } else if subscribed_at_all {
                Plan::Quiet(Why::NotThisState(change.state))
            } else {
                Plan::Quiet(Why::NoSubscriber)
            }
        }
    }
}
