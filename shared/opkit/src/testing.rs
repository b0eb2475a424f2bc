//! A test harness for commands: a bot on the memory store with a manual clock,
//! driven the way Slack would drive it, with assertions on replies, state and the
//! audit trail. Opkit's own packs are tested with it, and so can a team's.
//!
//! ```
//! use opkit::prelude::*;
//! use opkit::testing::TestBot;
//!
//! # tokio_test_block_on(async {
//! let t = TestBot::new(); // Opkit's built-ins; `UADMIN` is a bootstrap admin
//! assert!(t.text("UBOB", "whoami").await.contains("<@UBOB>"));
//! assert_eq!(
//!     t.text("UBOB", "roles grant <@UCAROL> ops").await,
//!     "Sorry, you need admin to run `roles grant`."
//! );
//! t.advance(chrono::Duration::hours(1)); // time moves only when told
//! # });
//! # fn tokio_test_block_on(f: impl std::future::Future<Output = ()>) {
//! #     tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
//! # }
//! ```
//!
//! Add your scripts with [`TestBot::with`]; read state with
//! [`TestBot::state`] and the trail with [`TestBot::audit`]; click a prompt's
//! buttons with [`TestBot::click`].

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde::de::DeserializeOwned;

use crate::audit::AuditRecord;
use crate::builtin::{self, Policy};
use crate::clock::ManualClock;
use crate::engine::gate::Decision;
use crate::engine::{Bot, BotBuilder, Caller, Request};
use crate::groups::MemoryUserGroups;
use crate::ids::{ChannelId, UserId};
use crate::slack::{Block, Reply};
use crate::store::memory::MemoryStore;
use crate::store::{AuditLog, StateStore};

/// The channel [`TestBot::say`] speaks in.
pub const CHANNEL: &str = "C0PS";

/// The bootstrap admin of every [`TestBot`].
pub const ADMIN: &str = "UADMIN";

/// A bot with Opkit's built-in commands on the memory store, `UADMIN` as
/// bootstrap admin, in-memory Slack user groups, and a manual clock that starts at 2027-01-15 08:00 UTC.
pub struct TestBot {
    /// The bot.
    pub bot: Bot,
    /// Its store.
    pub store: Arc<MemoryStore>,
    /// Its clock: move it with [`TestBot::advance`].
    pub clock: ManualClock,
    /// Its Slack user groups (for roles linked to them): set members, or make
    /// Slack fail, with [`MemoryUserGroups`]'s methods.
    pub groups: Arc<MemoryUserGroups>,
}

impl Default for TestBot {
    fn default() -> Self {
        Self::new()
    }
}

impl TestBot {
    /// Opkit's built-ins only.
    pub fn new() -> Self {
        Self::with(|b| b)
    }

    /// The built-ins and whatever `extra` adds: `TestBot::with(|b| b.script(my::script()))`.
    ///
    /// # Panics
    /// If the scripts do not make a bot (two commands claim one form, a command
    /// has no handler): the test shows the [`crate::engine::BuildError`].
    pub fn with(extra: impl FnOnce(BotBuilder) -> BotBuilder) -> Self {
        Self::with_policy(Policy::default(), extra)
    }

    /// As [`TestBot::with`], with the built-ins' [`Policy`] (who grants, who
    /// reads the audit trail, who approves grants).
    pub fn with_policy(policy: Policy, extra: impl FnOnce(BotBuilder) -> BotBuilder) -> Self {
        Self::build(
            policy,
            Arc::new(MemoryStore::new()),
            ManualClock::at_unix(1_800_000_000),
            Arc::new(MemoryUserGroups::new()),
            extra,
        )
    }

    /// Another bot on this one's store, clock and user groups, with the
    /// built-ins (default [`Policy`]) and whatever `extra` adds: a second
    /// process — another Lambda invocation, `opkit say` with other settings or
    /// another version of the commands — deciding what this one asked.
    ///
    /// # Panics
    /// As [`TestBot::with`].
    pub fn beside(&self, extra: impl FnOnce(BotBuilder) -> BotBuilder) -> Self {
        Self::build(
            Policy::default(),
            self.store.clone(),
            self.clock.clone(),
            self.groups.clone(),
            extra,
        )
    }

    fn build(
        policy: Policy,
        store: Arc<MemoryStore>,
        clock: ManualClock,
        groups: Arc<MemoryUserGroups>,
        extra: impl FnOnce(BotBuilder) -> BotBuilder,
    ) -> Self {
        let builder = Bot::builder(store.clone())
            .clock(Arc::new(clock.clone()))
            .admins([UserId::parse(ADMIN).expect("a valid user id")])
            .usergroups(groups.clone())
            .script(builtin::script(policy.clone()))
            .script(builtin::links_script(&policy));
        let bot = match extra(builder).build() {
            Ok(bot) => bot,
            Err(e) => panic!("the test bot does not build: {e}"),
        };
        Self {
            bot,
            store,
            clock,
            groups,
        }
    }

    /// `user` types `text` in [`CHANNEL`]; the whole reply.
    ///
    /// # Panics
    /// If `user` is not a Slack user id (`U…` or `W…`).
    pub async fn say(&self, user: &str, text: &str) -> Reply {
        let caller = Caller::in_channel(
            UserId::parse(user).expect("a Slack user id such as UBOB"),
            ChannelId::parse(CHANNEL).expect("a valid channel id"),
        );
        self.bot.handle(&Request::new(caller, text)).await
    }

    /// `user` types `text`; the reply's text.
    pub async fn text(&self, user: &str, text: &str) -> String {
        self.say(user, text).await.text.into_string()
    }

    /// `user` types `text` and is answered at once: the reply's text, once it is
    /// checked that the reply has no buttons and no request is held for a
    /// decision (a gated command refusing before it asks).
    ///
    /// # Panics
    /// If the reply has blocks (a prompt) or a request is waiting on `user`.
    pub async fn answered_at_once(&self, user: &str, text: &str) -> String {
        let reply = self.say(user, text).await;
        assert!(
            reply.blocks.is_empty(),
            "`{text}` asked with a prompt: {}",
            reply.text
        );
        assert_eq!(
            self.text(user, "approvals").await,
            "Nothing is waiting for you to decide.",
            "`{text}` held a request"
        );
        reply.text.into_string()
    }

    /// Clicks `decision` on the buttons of `prompt`, as `user`.
    ///
    /// # Panics
    /// If `prompt` has no buttons.
    pub async fn click(&self, user: &str, prompt: &Reply, decision: Decision) -> Reply {
        let id = pending_id(prompt);
        let caller = Caller::user(UserId::parse(user).expect("a Slack user id such as UBOB"));
        self.bot.decide(&caller, &id, decision).await
    }

    /// Clicks the command button labelled `label` on `message`, as `user` in
    /// [`CHANNEL`]: runs the button's command as theirs, exactly as the worker
    /// runs the job of such a click ([`crate::slack::Button::command`]).
    ///
    /// # Panics
    /// If `message` has no command button labelled `label`.
    pub async fn press(&self, user: &str, message: &Reply, label: &str) -> Reply {
        let command = message
            .blocks
            .iter()
            .filter_map(|block| match block {
                crate::slack::Block::Actions { buttons } => Some(buttons),
                _ => None,
            })
            .flatten()
            .find(|b| b.text == label && b.action_id == crate::engine::gate::actions::RUN)
            .unwrap_or_else(|| panic!("no command button `{label}` on: {}", message.text))
            .value
            .clone();
        self.say(user, &command).await
    }

    /// Moves the clock on.
    pub fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }

    /// The clock's time now.
    pub fn now(&self) -> DateTime<Utc> {
        use crate::clock::Clock;
        self.clock.now()
    }

    /// The saved state of script `script`, decoded (the default if it was never
    /// saved).
    ///
    /// # Panics
    /// If the saved state does not decode as `S`.
    pub async fn state<S: DeserializeOwned + Default>(&self, script: &str) -> S {
        let saved = self
            .store
            .load(script)
            .await
            .expect("the memory store answers");
        match saved.value {
            Some(value) => serde_json::from_value(value)
                .unwrap_or_else(|e| panic!("the state of `{script}` does not decode: {e}")),
            None => S::default(),
        }
    }

    /// The audit trail, newest first (at most `limit` records).
    pub async fn audit(&self, limit: usize) -> Vec<AuditRecord> {
        self.store
            .recent(None, limit)
            .await
            .expect("the memory store answers")
    }
}

/// A [`JobQueue`](crate::job::JobQueue) that keeps what is put on it, for tests
/// of what an ingress or an expiry pass queues.
#[derive(Debug, Default)]
pub struct RecordingQueue(std::sync::Mutex<Vec<crate::job::Job>>);

impl RecordingQueue {
    /// The jobs queued so far, oldest first.
    pub fn jobs(&self) -> Vec<crate::job::Job> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl crate::job::JobQueue for RecordingQueue {
    fn enqueue<'a>(
        &'a self,
        job: &'a crate::job::Job,
    ) -> crate::BoxFuture<'a, Result<(), crate::job::QueueError>> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(job.clone());
        Box::pin(std::future::ready(Ok(())))
    }
}

/// The pending request id carried by a prompt's buttons.
///
/// # Panics
/// If `prompt` has no buttons.
pub fn pending_id(prompt: &Reply) -> String {
    prompt
        .blocks
        .iter()
        .find_map(|b| match b {
            Block::Actions { buttons } => Some(buttons[0].value.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no buttons in {prompt:?}"))
}
