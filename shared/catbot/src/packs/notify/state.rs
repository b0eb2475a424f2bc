//! What the notifications keep, in the `notify` script's state: the channels'
//! subscriptions, and per alarm the last change seen, its incident and its mute.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::event::{AlarmFacts, AlarmState};
use opkit::ids::{ChannelId, UserId};
use opkit::slack::mrkdwn::Mrkdwn;

/// Most subscriptions in all (each a channel, a prefix and states).
pub const MAX_SUBSCRIPTIONS: usize = 200;
/// Most subscriptions one person makes.
pub const MAX_SUBSCRIPTIONS_PER_USER: usize = 50;
/// The most bytes all subscriptions take together, as JSON: prefixes are up to
/// 255 characters, and the alarms' records need the rest of [`NOTIFY_BUDGET`].
pub const SUBSCRIPTIONS_BUDGET: usize = 64 * 1024;
/// Most channels that hear of instances (`ec2 subscribe`).
pub const MAX_INSTANCE_CHANNELS: usize = 200;
/// Most instance state changes Opkit asked for that are remembered at once
/// ([`OwnChange`]); past it, the oldest are forgotten (and their events posted).
pub const MAX_OWN_CHANGES: usize = 100;
/// How long an instance state change Opkit asked for keeps its events quiet.
pub const OWN_CHANGE_TTL: chrono::Duration = chrono::Duration::minutes(15);
/// How much earlier than Opkit's record an event may say it happened (EC2's
/// clock and the bot's are not the same clock).
pub const OWN_CHANGE_SKEW: chrono::Duration = chrono::Duration::minutes(1);

/// The most bytes the `notify` state takes as JSON: well under
/// [`opkit::store::MAX_STATE_BYTES`], so that the next alarm's record (its name
/// at most [`ALARM_NAME_MAX`](super::event::ALARM_NAME_MAX) characters, its
/// reason [`REASON_MAX`](super::event::REASON_MAX), its runbook link
/// [`RUNBOOK_MAX`](super::event::RUNBOOK_MAX)) always fits. [`NotifyState::prune`]
/// keeps it.
pub const NOTIFY_BUDGET: usize = 300 * 1024;

/// Most alarms whose last change is remembered. Past it, the alarms without an
/// open incident or a mute that changed longest ago are forgotten first (a
/// forgotten alarm's next change is taken as news).
pub const MAX_TRACKED: usize = 400;

/// The `notify` script's state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NotifyState {
    /// Which channels hear of which alarms.
    #[serde(default)]
    pub subscriptions: Vec<Subscription>,
    /// Channels that hear of managed instances' state changes (`ec2 subscribe`).
    #[serde(default)]
    pub instance_channels: BTreeSet<ChannelId>,
    /// Per alarm ([`AlarmRecord::key`]): the last change seen, and its incident.
    #[serde(default)]
    pub alarms: BTreeMap<String, AlarmRecord>,
    /// Per instance (`account/region/instance`): the last change seen (repeats
    /// and late events post nothing).
    #[serde(default)]
    pub instances: BTreeMap<String, InstanceSeen>,
    /// Instance state changes Opkit itself asked for (`ec2 start`, `ec2 stop`):
    /// their events are not news. At most [`MAX_OWN_CHANGES`], each kept
    /// [`OWN_CHANGE_TTL`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub own_changes: Vec<OwnChange>,
}

/// An instance state change Opkit asked for: the states EC2 will announce for
/// it, who asked, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnChange {
    /// The instance's region, as AWS names it (`us-east-1`; never a place's
    /// label such as `account prod, us-west-2`).
    pub region: String,
    /// The instance's account id, when Opkit knows it (an account reached
    /// through a role); `None`: the bot's own account, any id matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// The instance (`i-…`).
    pub instance: String,
    /// The states still to come (`stopping`, `stopped`); each is quiet once.
    pub states: BTreeSet<String>,
    /// Who asked.
    pub by: UserId,
    /// When (the bot's clock).
    pub at: DateTime<Utc>,
}

/// The newest state changes seen of one instance: their time, and the states
/// entered at that time. EventBridge's `time` has one-second resolution, so two
/// changes (`stopping`, then `stopped`) may share it: a state not yet seen at
/// that time is news, the same state again a repeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "SeenForm")]
pub struct InstanceSeen {
    /// When.
    pub at: DateTime<Utc>,
    /// The states entered at `at`.
    pub states: BTreeSet<String>,
}

/// How [`InstanceSeen`] was stored: a bare time (before the states were kept),
/// or the time and its states.
#[derive(Deserialize)]
#[serde(untagged)]
enum SeenForm {
    Both {
        at: DateTime<Utc>,
        #[serde(default)]
        states: BTreeSet<String>,
    },
    At(DateTime<Utc>),
}

impl From<SeenForm> for InstanceSeen {
    fn from(form: SeenForm) -> Self {
        match form {
            SeenForm::Both { at, states } => Self { at, states },
            SeenForm::At(at) => Self {
                at,
                states: BTreeSet::new(),
            },
        }
    }
}

impl InstanceSeen {
    /// Whether the instance entering `state` at `at` is news after what was
    /// seen: later, or at the same time into a state not seen then.
    pub fn is_news(&self, state: &str, at: DateTime<Utc>) -> bool {
        at > self.at || (at == self.at && !self.states.contains(state))
    }

    /// What is seen after `state` at `at` (which [`Self::is_news`]).
    pub fn after(seen: Option<&Self>, state: &str, at: DateTime<Utc>) -> Self {
        let mut states = match seen {
            Some(seen) if seen.at == at => seen.states.clone(),
            _ => BTreeSet::new(),
        };
        states.insert(state.to_string());
        Self { at, states }
    }
}

/// One channel's subscription to alarms whose name starts with a prefix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    /// Where notifications go.
    pub channel: ChannelId,
    /// The alarm name prefix; `None`: every alarm.
    pub prefix: Option<String>,
    /// The states whose changes the channel hears of.
    pub states: BTreeSet<AlarmState>,
    /// Who subscribed.
    pub by: UserId,
}

impl Subscription {
    /// Whether the alarm `name` entering `state` concerns this subscription.
    pub fn matches(&self, name: &str, state: AlarmState) -> bool {
        self.states.contains(&state) && self.prefix.as_deref().is_none_or(|p| name.starts_with(p))
    }
}

/// What is remembered of one alarm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlarmRecord {
    /// Its state after the newest change seen.
    pub state: AlarmState,
    /// When that change happened (CloudWatch's `state.timestamp`).
    pub at: DateTime<Utc>,
    /// What its messages show.
    pub facts: AlarmFacts,
    /// Its latest incident, open or ended.
    #[serde(default)]
    pub incident: Option<Incident>,
    /// A mute, until it ends.
    #[serde(default)]
    pub muted: Option<Mute>,
}

impl AlarmRecord {
    /// The key of an alarm: its account, region and name.
    pub fn key(account: &str, region: &str, name: &str) -> String {
        format!("{account}/{region}/{name}")
    }
}

/// An incident: from an alarm's ALARM to its OK.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incident {
    /// When it began.
    pub since: DateTime<Utc>,
    /// Its messages, one per channel; later changes go into their threads.
    #[serde(default)]
    pub posts: Vec<Post>,
    /// Changes since it began.
    #[serde(default)]
    pub changes: u32,
    /// Of those, the ones not posted one by one (flapping).
    #[serde(default)]
    pub quiet: u32,
    /// When its thread was last replied to.
    #[serde(default)]
    pub last_reply_at: Option<DateTime<Utc>>,
    /// When it ended (back to OK); `None` while open.
    #[serde(default)]
    pub ended_at: Option<DateTime<Utc>>,
    /// Who acknowledged it.
    #[serde(default)]
    pub acked_by: Option<UserId>,
}

/// One message of an incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Post {
    /// The channel.
    pub channel: ChannelId,
    /// The message's `ts` (the thread's, for replies).
    pub ts: String,
}

/// A mute: no notifications of the alarm until `until`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mute {
    /// When it ends.
    pub until: DateTime<Utc>,
    /// Who muted it.
    pub by: UserId,
    /// Where it was muted: told there when it ends.
    pub channel: Option<ChannelId>,
    /// The thread it was muted from, if any.
    #[serde(default)]
    pub thread_ts: Option<String>,
}

impl NotifyState {
    /// The channels subscribed to `name` entering `state`, each once, sorted.
    pub fn channels_for(&self, name: &str, state: AlarmState) -> Vec<ChannelId> {
        let channels: BTreeSet<ChannelId> = self
            .subscriptions
            .iter()
            .filter(|s| s.matches(name, state))
            .map(|s| s.channel.clone())
            .collect();
        channels.into_iter().collect()
    }

    /// Adds `new`, or replaces the subscription of its channel and prefix: a
    /// new one only within [`super::MAX_PER_CHANNEL`] for its channel,
    /// [`MAX_SUBSCRIPTIONS_PER_USER`] for whoever makes it, [`MAX_SUBSCRIPTIONS`]
    /// and [`SUBSCRIPTIONS_BUDGET`] in all. `Err`: which bound, for the one
    /// who would pass it; nothing changed.
    pub fn add_subscription(&mut self, new: Subscription) -> Result<(), Mrkdwn> {
        let same = |s: &Subscription| s.channel == new.channel && s.prefix == new.prefix;
        if let Some(old) = self.subscriptions.iter_mut().find(|s| same(s)) {
            *old = new;
            return Ok(());
        }
        let here = self
            .subscriptions
            .iter()
            .filter(|s| s.channel == new.channel)
            .count();
        if here >= super::MAX_PER_CHANNEL {
            return Err(opkit::mrkdwn!(
                "This channel has {} subscriptions, the most it may: unsubscribe one first.",
                super::MAX_PER_CHANNEL
            ));
        }
        let theirs = self.subscriptions.iter().filter(|s| s.by == new.by).count();
        if theirs >= MAX_SUBSCRIPTIONS_PER_USER {
            return Err(opkit::mrkdwn!(
                "You made {} subscriptions, the most one person may: unsubscribe one first.",
                theirs
            ));
        }
        if self.subscriptions.len() >= MAX_SUBSCRIPTIONS {
            return Err(opkit::mrkdwn!(
                "There are {} subscriptions, the most the bot keeps: unsubscribe one first.",
                MAX_SUBSCRIPTIONS
            ));
        }
        let bytes = json_len(&self.subscriptions) + json_len(&new) + 1;
        if bytes > SUBSCRIPTIONS_BUDGET {
            return Err(opkit::mrkdwn!(
                "The subscriptions would take {} bytes, more than the {} the bot keeps for \
                 them: unsubscribe one first, or use a shorter prefix.",
                bytes,
                SUBSCRIPTIONS_BUDGET
            ));
        }
        self.subscriptions.push(new);
        Ok(())
    }

    /// Records the messages that opened the incident of `key` begun `since`
    /// (unless a newer incident has begun meanwhile).
    pub fn record_posts(&mut self, key: &str, since: DateTime<Utc>, posts: Vec<Post>) {
        if let Some(incident) = self
            .alarms
            .get_mut(key)
            .and_then(|r| r.incident.as_mut())
            .filter(|i| i.since == since)
        {
            incident.posts.extend(posts);
        }
    }

    /// The alarms called `name`, in any account or region.
    pub fn named<'a>(
        &'a mut self,
        name: &'a str,
    ) -> impl Iterator<Item = (&'a String, &'a mut AlarmRecord)> {
        self.alarms
            .iter_mut()
            .filter(move |(_, r)| r.facts.name == name)
    }

    /// Records that Opkit is about to move `instances` of `region` (of the
    /// account `account`, when known) through `states`, asked by `by` at `now`;
    /// forgets what is past [`OWN_CHANGE_TTL`] or [`MAX_OWN_CHANGES`].
    pub fn expect_own_changes(
        &mut self,
        account: Option<&str>,
        region: &str,
        instances: &[String],
        states: &[&str],
        by: &UserId,
        now: DateTime<Utc>,
    ) {
        for instance in instances {
            self.own_changes.push(OwnChange {
                region: region.to_string(),
                account: account.map(str::to_string),
                instance: instance.clone(),
                states: states.iter().map(|s| s.to_string()).collect(),
                by: by.clone(),
                at: now,
            });
        }
        self.forget_own_changes(now);
    }

    /// Whether the instance of `account` and `region` (as the event names them)
    /// entering `state` at `at` is a change Opkit asked for (then that state of
    /// it is used up): who asked, if it is.
    pub fn take_own_change(
        &mut self,
        account: &str,
        region: &str,
        instance: &str,
        state: &str,
        at: DateTime<Utc>,
    ) -> Option<UserId> {
        let found = self.own_changes.iter_mut().find(|c| {
            c.region == region
                && c.account.as_deref().is_none_or(|a| a == account)
                && c.instance == instance
                && c.states.contains(state)
                && at >= c.at - OWN_CHANGE_SKEW
                && at <= c.at + OWN_CHANGE_TTL
        })?;
        found.states.remove(state);
        let by = found.by.clone();
        self.own_changes.retain(|c| !c.states.is_empty());
        Some(by)
    }

    /// Drops the own changes older than [`OWN_CHANGE_TTL`], then the oldest past
    /// [`MAX_OWN_CHANGES`].
    pub fn forget_own_changes(&mut self, now: DateTime<Utc>) {
        self.own_changes.retain(|c| now - c.at <= OWN_CHANGE_TTL);
        let excess = self.own_changes.len().saturating_sub(MAX_OWN_CHANGES);
        self.own_changes.drain(..excess);
    }

    /// Keeps the state within [`MAX_TRACKED`] alarms, as many instances, and
    /// [`NOTIFY_BUDGET`] bytes in all, so that the next change always fits: drops
    /// the alarms that changed longest ago, idle ones first (no open incident,
    /// no live mute at `now`), then instances, and only then an alarm with an
    /// open incident or a mute — those without a message posted first — each
    /// said in the log and counted ([`opkit::metrics::state_evicted`]). `keep`,
    /// the alarm just changed, is never dropped.
    pub fn prune(&mut self, keep: Option<&str>, now: DateTime<Utc>) {
        while self.alarms.len() > MAX_TRACKED {
            if self.drop_alarm(keep, now, true).is_none() {
                break;
            }
        }
        while self.instances.len() > MAX_TRACKED {
            if self.drop_instance().is_none() {
                break;
            }
        }
        // Measured once, then less what each drop took (its entry and a comma:
        // at most one byte too many), and measured again at the end.
        let mut bytes = json_len(self);
        while bytes > NOTIFY_BUDGET {
            while bytes > NOTIFY_BUDGET {
                let dropped = self
                    .drop_alarm(keep, now, false)
                    .or_else(|| self.drop_instance())
                    .or_else(|| self.drop_alarm(keep, now, true));
                match dropped {
                    Some(size) => bytes = bytes.saturating_sub(size),
                    None => return,
                }
            }
            bytes = json_len(self);
        }
    }

    /// Drops the alarm that changed longest ago among the idle ones, or with
    /// `busy` among all (but `keep`); the bytes its entry took, if it dropped one.
    fn drop_alarm(&mut self, keep: Option<&str>, now: DateTime<Utc>, busy: bool) -> Option<usize> {
        let idle = |r: &AlarmRecord| {
            r.muted.as_ref().is_none_or(|m| m.until <= now)
                && r.incident.as_ref().is_none_or(|i| i.ended_at.is_some())
        };
        let posted = |r: &AlarmRecord| r.incident.as_ref().is_some_and(|i| !i.posts.is_empty());
        let candidates = self.alarms.iter().filter(|(k, _)| keep != Some(k.as_str()));
        let oldest = if busy {
            candidates
                .min_by_key(|(_, r)| (!idle(r), posted(r), r.at))
                .map(|(k, _)| k.clone())
        } else {
            candidates
                .filter(|(_, r)| idle(r))
                .min_by_key(|(_, r)| r.at)
                .map(|(k, _)| k.clone())
        };
        let key = oldest?;
        let record = self.alarms.remove(&key).expect("just found");
        let size = json_len(&key) + json_len(&record) + 2;
        if !idle(&record) {
            let open = record
                .incident
                .as_ref()
                .is_some_and(|i| i.ended_at.is_none());
            let what = if open { "open_incident" } else { "mute" };
            tracing::warn!(
                alarm = %key,
                what,
                posted = posted(&record),
                "the notify state is full: forgot an alarm with an open incident or a mute \
                 (its next change is taken as news; `alarms ack` and `alarms unmute` no \
                 longer find it)"
            );
            opkit::metrics::state_evicted("notify", what);
        }
        Some(size)
    }

    /// Drops the instance whose last change is oldest; the bytes its entry
    /// took, if it dropped one.
    fn drop_instance(&mut self) -> Option<usize> {
        let key = self
            .instances
            .iter()
            .min_by_key(|(_, seen)| seen.at)
            .map(|(k, _)| k.clone())?;
        let seen = self.instances.remove(&key)?;
        Some(json_len(&key) + json_len(&seen) + 2)
    }
}

/// How many bytes `value` takes as JSON (what the store measures).
fn json_len<T: Serialize>(value: &T) -> usize {
    serde_json::to_string(value).map_or(usize::MAX, |s| s.len())
}
