//! Helpers for handler tests: a bot on memory, with a manual clock.

use std::sync::Arc;

use chrono::Duration;

use crate::bot::{Bot, Request};
use crate::clock::ManualClock;
use crate::command::Caller;
use crate::ids::{ChannelId, UserId};
use crate::packs::{builtin, queue};
use crate::slack::Reply;
use crate::store::memory::MemoryStore;

/// A bot with the built-in and queue packs, `UADMIN` as bootstrap admin.
pub(crate) struct TestBot {
    pub bot: Bot,
    pub store: Arc<MemoryStore>,
    pub clock: ManualClock,
}

impl TestBot {
    pub fn new() -> Self {
        Self::with(|b| b)
    }

    pub fn with(extra: impl FnOnce(crate::bot::BotBuilder) -> crate::bot::BotBuilder) -> Self {
        Self::with_policy(builtin::Policy::default(), extra)
    }

    pub fn with_policy(
        policy: builtin::Policy,
        extra: impl FnOnce(crate::bot::BotBuilder) -> crate::bot::BotBuilder,
    ) -> Self {
        let store = Arc::new(MemoryStore::new());
        let clock = ManualClock::at_unix(1_800_000_000);
        let builder = Bot::builder(store.clone())
            .clock(Arc::new(clock.clone()))
            .admins([UserId::parse("UADMIN").unwrap()])
            .script(builtin::script(policy))
            .script(queue::script());
        let bot = extra(builder).build().unwrap();
        Self { bot, store, clock }
    }

    pub async fn say(&self, user: &str, text: &str) -> Reply {
        let caller = Caller {
            user: UserId::parse(user).unwrap(),
            channel: Some(ChannelId::parse("C0PS").unwrap()),
            team: None,
        };
        self.bot.handle(&Request::new(caller, text)).await
    }

    pub async fn text(&self, user: &str, text: &str) -> String {
        self.say(user, text).await.text
    }

    /// Clicks `decision` on the buttons of `prompt`, as `user`.
    pub async fn click(
        &self,
        user: &str,
        prompt: &Reply,
        decision: crate::gate::Decision,
    ) -> Reply {
        let id = pending_id(prompt);
        let caller = Caller::user(UserId::parse(user).unwrap());
        self.bot.decide(&caller, &id, decision).await
    }

    pub fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }
}

/// The pending request id carried by a prompt's buttons.
pub(crate) fn pending_id(prompt: &Reply) -> String {
    prompt
        .blocks
        .iter()
        .find_map(|b| match b {
            crate::slack::Block::Actions { buttons } => Some(buttons[0].value.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no buttons in {prompt:?}"))
}
