//! [`Notifier`]: the one handler of an EventBridge event, which the worker
//! Lambda, `opkit notify` and the tests all call.
//!
//! ```text
//! parse ──> apply to the `notify` state (a conditional save: the first delivery
//!           of a change wins; a repeat or an older change saves nothing)
//!       ──> post what the plan says (chat.postMessage, in threads; chat.update)
//!       ──> record the new messages' ts with the incident (a second save)
//! ```
//!
//! The state is saved before anything is posted, so a change is posted at most
//! once however often EventBridge delivers it: a delivery whose posting fails is
//! logged, not retried (a retry would find the change already applied).

use std::sync::Arc;

use crate::accounts::AccountBook;

use serde_json::Value;

use super::SCRIPT;
use super::event::{self, AlarmChange, EventError, InstanceChange, Notification};
use super::incident::{self, Plan, Why};
use super::render;
use super::state::{AlarmRecord, InstanceSeen, NotifyState, Post};
use opkit::BoxFuture;
use opkit::engine::Bot;
use opkit::ids::UserId;
use opkit::slack::ChannelPoster;
use opkit::store::{EncodedState, StoreError};

/// The script whose state says who watches which alarm (`alarms watch`).
const WATCH_SCRIPT: &str = "cloudwatch";

/// How many times a save that lost a race is tried again.
const MAX_ATTEMPTS: usize = 16;

/// Whether an instance carries the tag `opkit:managed=true` (EC2's
/// DescribeInstances deployed; a fixed answer in tests). Only those notify.
pub trait ManagedInstances: Send + Sync {
    /// Whether `instance`, in `region`, is managed by Opkit. `Err`: why it could
    /// not be told (the event is retried).
    fn is_managed<'a>(
        &'a self,
        region: &'a str,
        instance: &'a str,
    ) -> BoxFuture<'a, Result<bool, String>>;
}

/// The tags of a CloudWatch alarm (ListTagsForResource on its ARN deployed; a
/// fixed answer in tests): where a notification finds the alarm's runbook
/// ([`event::RUNBOOK_TAG`]).
pub trait AlarmTags: Send + Sync {
    /// The tags of the alarm `arn`, as (key, value). `Err`: why they could not be
    /// read; the notification is posted without them.
    fn tags<'a>(&'a self, arn: &'a str) -> BoxFuture<'a, Result<Vec<(String, String)>, String>>;
}

/// What one event did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Messages posted (new messages and thread replies).
    pub posted: usize,
    /// Messages updated (`chat.update`).
    pub updated: usize,
    /// Posts or updates Slack refused (logged).
    pub failed: usize,
    /// Why nothing was posted, when nothing was.
    pub quiet: Option<Why>,
}

/// Why an event was not handled.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NotifyError {
    /// The event is malformed or of a kind not handled: dropped, never retried.
    #[error(transparent)]
    Event(#[from] EventError),
    /// The store failed: worth a retry.
    #[error("the store failed: {0}")]
    Store(#[from] StoreError),
    /// Whether an instance is managed could not be told: worth a retry.
    #[error("could not tell whether the instance is managed: {0}")]
    Instances(String),
}

impl NotifyError {
    /// Whether delivering the event again may succeed.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, NotifyError::Event(_))
    }
}

/// Handles EventBridge events: alarm and instance state changes.
#[derive(Clone)]
pub struct Notifier {
    bot: Bot,
    channels: Option<Arc<dyn ChannelPoster>>,
    instances: Option<Arc<dyn ManagedInstances>>,
    tags: Option<Arc<dyn AlarmTags>>,
    accounts: Arc<AccountBook>,
}

impl Notifier {
    /// Posts with `channels` (the bot token's Web API; `None`: nothing can be
    /// posted, and each event says so in the log); keeps its state in `bot`'s store.
    pub fn new(bot: Bot, channels: Option<Arc<dyn ChannelPoster>>) -> Self {
        Self {
            bot,
            channels,
            instances: None,
            tags: None,
            accounts: Arc::new(AccountBook::empty()),
        }
    }

    /// Names the alarms' accounts with `accounts` (`OPKIT_ACCOUNTS`), for the
    /// Graph button: `graph` names an account by its name. Without it, Graph
    /// looks in the bot's own account, and only alarms of one account should come.
    pub fn with_accounts(mut self, accounts: Arc<AccountBook>) -> Self {
        self.accounts = accounts;
        self
    }

    /// Reads alarms' tags with `tags`, once per alarm event: a `runbook` tag
    /// holding an `https://` link is the notification's runbook (before a link in
    /// the description). Without it, only the description is looked at.
    pub fn with_alarm_tags(mut self, tags: Arc<dyn AlarmTags>) -> Self {
        self.tags = Some(tags);
        self
    }

    /// Tells managed instances with `instances`. Without it, instance state
    /// changes post nothing (nothing says they are Opkit's).
    pub fn with_instances(mut self, instances: Arc<dyn ManagedInstances>) -> Self {
        self.instances = Some(instances);
        self
    }

    /// Handles one event, as EventBridge delivers it (JSON).
    ///
    /// # Errors
    /// [`NotifyError`]; [`NotifyError::is_retryable`] says whether to retry.
    pub async fn handle(&self, body: &str) -> Result<Outcome, NotifyError> {
        let notification = event::parse(body)?;
        let now = self.bot.now();
        if incident::from_the_future(notification.at(), now) {
            let (kind, what, account, region) = match &notification {
                Notification::Alarm(c) => ("alarm", &c.name, &c.account, &c.region),
                Notification::Instance(c) => ("instance", &c.instance, &c.account, &c.region),
            };
            tracing::warn!(kind, name = %what, %account, %region, event_id = %notification.id(), at = %notification.at(), %now, "a state change dated ahead of the clock: refused, kept nowhere");
            return Ok(quiet(Why::FromTheFuture));
        }
        match notification {
            Notification::Alarm(mut change) => {
                self.tagged_runbook(&mut change).await;
                self.alarm(&change).await
            }
            Notification::Instance(change) => self.instance(&change).await,
        }
    }

    /// The alarm's `runbook` tag, when it is an `https://` link, becomes the
    /// change's runbook. One ListTagsForResource; whatever fails is logged and
    /// the notification goes on without it.
    async fn tagged_runbook(&self, change: &mut AlarmChange) {
        let Some(tags) = &self.tags else {
            return;
        };
        let tags = match tags.tags(&change.arn).await {
            Ok(tags) => tags,
            Err(e) => {
                tracing::warn!(alarm = %change.name, error = %e, "could not read the alarm's tags: posted without its runbook tag");
                return;
            }
        };
        let Some((_, value)) = tags
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(event::RUNBOOK_TAG))
        else {
            return;
        };
        match event::runbook_link(value) {
            Some(link) => change.facts.runbook = Some(link),
            None => {
                let shown: String = value.chars().take(100).collect();
                tracing::warn!(alarm = %change.name, value = %shown.escape_debug(), "the alarm's runbook tag is not an https:// link: ignored");
            }
        }
    }

    async fn alarm(&self, change: &AlarmChange) -> Result<Outcome, NotifyError> {
        let now = self.bot.now();
        let key = AlarmRecord::key(&change.account, &change.region, &change.name);
        let (plan, record) = update(&self.bot, |state| {
            let plan = incident::apply(state, change, now);
            (plan, state.alarms.get(&key).cloned())
        })
        .await?;
        tracing::info!(alarm = %change.name, state = change.state.as_str(), event_id = %change.id, ?plan, "alarm state change");
        let Some(record) = record else {
            return Ok(quiet(Why::NotNewer));
        };
        let mut outcome = Outcome::default();
        if !matches!(plan, Plan::Quiet(Why::NotNewer | Why::Muted)) {
            self.tell_watchers(&record, change.previous, &mut outcome)
                .await;
        }
        if let Plan::Quiet(why) = plan {
            outcome.quiet = (outcome.posted == 0).then_some(why);
            return Ok(outcome);
        }
        let Some(poster) = self.channels.as_ref() else {
            tracing::warn!(alarm = %change.name, "no SLACK_BOT_TOKEN: a notification was not posted");
            return Ok(outcome);
        };
        match plan {
            Plan::Quiet(_) => {}
            Plan::Open { channels } => {
                let incident = record.incident.clone().expect("an opened incident");
                let message = render::incident_message(&record, &incident, &self.accounts);
                let mut posts = Vec::new();
                for channel in channels {
                    match poster.post_message(channel.as_str(), &message, None).await {
                        Ok(posted) => {
                            outcome.posted += 1;
                            posts.push(Post {
                                channel,
                                ts: posted.ts,
                            });
                        }
                        Err(e) => failed(&mut outcome, channel.as_str(), &e),
                    }
                }
                update(&self.bot, |state| {
                    state.record_posts(&key, incident.since, posts.clone())
                })
                .await?;
            }
            Plan::Follow { posts, reply, .. } => {
                let incident = record.incident.clone().expect("a followed incident");
                let message = render::incident_message(&record, &incident, &self.accounts);
                let answer = render::thread_reply(&record, &incident);
                for post in posts {
                    let channel = post.channel.as_str();
                    if reply {
                        match poster.post_message(channel, &answer, Some(&post.ts)).await {
                            Ok(_) => outcome.posted += 1,
                            Err(e) => failed(&mut outcome, channel, &e),
                        }
                    }
                    match poster.update(channel, &post.ts, &message).await {
                        Ok(_) => outcome.updated += 1,
                        Err(e) => failed(&mut outcome, channel, &e),
                    }
                }
            }
            Plan::Single { channels } => {
                let message = render::single_message(&record, change.previous);
                for channel in channels {
                    match poster.post_message(channel.as_str(), &message, None).await {
                        Ok(_) => outcome.posted += 1,
                        Err(e) => failed(&mut outcome, channel.as_str(), &e),
                    }
                }
            }
        }
        Ok(outcome)
    }

    /// Direct messages to whoever watches the alarm (`alarms watch`, kept in
    /// the `cloudwatch` script's state as `watchers`). The change is already
    /// applied: a store that cannot be read now is logged, not retried.
    async fn tell_watchers(
        &self,
        record: &AlarmRecord,
        previous: Option<super::AlarmState>,
        outcome: &mut Outcome,
    ) {
        let Some(poster) = self.channels.as_ref() else {
            return;
        };
        let watchers: Vec<UserId> = match self.bot.store().load(WATCH_SCRIPT).await {
            Ok(loaded) => loaded
                .value
                .as_ref()
                .and_then(|state| state.get("watchers"))
                .and_then(|all| all.get(&record.facts.name))
                .and_then(|users| serde_json::from_value(users.clone()).ok())
                .unwrap_or_default(),
            Err(e) => {
                tracing::error!(alarm = %record.facts.name, error = %e, "could not read who watches the alarm: nobody told");
                return;
            }
        };
        if watchers.is_empty() {
            return;
        }
        let message = render::watch_message(record, previous);
        for user in watchers {
            match poster.post_message(user.as_str(), &message, None).await {
                Ok(_) => outcome.posted += 1,
                Err(e) => failed(outcome, user.as_str(), &e),
            }
        }
    }

    async fn instance(&self, change: &InstanceChange) -> Result<Outcome, NotifyError> {
        let Some(instances) = &self.instances else {
            tracing::warn!(instance = %change.instance, "no EC2 client: an instance state change posts nothing");
            return Ok(quiet(Why::NoInstanceLookup));
        };
        let managed = instances
            .is_managed(&change.region, &change.instance)
            .await
            .map_err(NotifyError::Instances)?;
        if !managed {
            tracing::info!(instance = %change.instance, "not tagged opkit:managed=true: not posted");
            return Ok(quiet(Why::NotManaged));
        }
        let key = format!("{}/{}/{}", change.account, change.region, change.instance);
        let now = self.bot.now();
        let mut asked_by = None;
        let channels = update(&self.bot, |state| {
            asked_by = None;
            let seen = state.instances.get(&key);
            if seen.is_some_and(|seen| !seen.is_news(&change.state, change.at)) {
                return Err(Why::InstanceNotNewer);
            }
            let seen = InstanceSeen::after(seen, &change.state, change.at);
            state.instances.insert(key.clone(), seen);
            state.prune(None, now);
            state.forget_own_changes(now);
            asked_by = state.take_own_change(
                &change.account,
                &change.region,
                &change.instance,
                &change.state,
                change.at,
            );
            if asked_by.is_some() {
                return Err(Why::AskedByOpkit);
            }
            Ok(state.instance_channels.iter().cloned().collect::<Vec<_>>())
        })
        .await?;
        let channels = match channels {
            Ok(channels) if !channels.is_empty() => channels,
            Ok(_) => return Ok(quiet(Why::NoInstanceSubscriber)),
            Err(why) => {
                if let Some(by) = asked_by {
                    tracing::info!(instance = %change.instance, state = %change.state, %by, "an instance state change Opkit asked for: not posted");
                }
                return Ok(quiet(why));
            }
        };
        let Some(poster) = self.channels.as_ref() else {
            tracing::warn!("no SLACK_BOT_TOKEN: an instance state change was not posted");
            return Ok(Outcome::default());
        };
        let message = render::instance_message(change);
        let mut outcome = Outcome::default();
        for channel in channels {
            match poster.post_message(channel.as_str(), &message, None).await {
                Ok(_) => outcome.posted += 1,
                Err(e) => failed(&mut outcome, channel.as_str(), &e),
            }
        }
        Ok(outcome)
    }
}

fn quiet(why: Why) -> Outcome {
    Outcome {
        quiet: Some(why),
        ..Outcome::default()
    }
}

fn failed(outcome: &mut Outcome, channel: &str, error: &dyn std::fmt::Display) {
    tracing::error!(channel, error = %error, "could not post a notification");
    outcome.failed += 1;
}

/// Reads the `notify` state, applies `step`, and saves it if it changed, only
/// if nobody saved it meanwhile (the store's version check); on a lost race,
/// reads again and applies `step` again. Returns what `step` returned.
pub(super) async fn update<T>(
    bot: &Bot,
    mut step: impl FnMut(&mut NotifyState) -> T,
) -> Result<T, StoreError> {
    let store = bot.store();
    for _ in 0..MAX_ATTEMPTS {
        let loaded = store.load(SCRIPT).await?;
        let mut state: NotifyState = match loaded.value.clone() {
            Some(value) => serde_json::from_value(value).map_err(|e| StoreError::Corrupt {
                what: format!("the state of `{SCRIPT}`"),
                detail: e.to_string(),
            })?,
            None => NotifyState::default(),
        };
        let before = state.clone();
        let out = step(&mut state);
        if state == before {
            return Ok(out);
        }
        let value: Value = serde_json::to_value(&state).expect("the state serialises");
        let encoded = EncodedState::new(SCRIPT, value)?;
        match store.save(SCRIPT, &encoded, loaded.version).await {
            Ok(_) => return Ok(out),
            Err(e) if e.is_conflict() => continue,
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::Conflict {
        what: format!("the state of `{SCRIPT}`"),
    })
}
