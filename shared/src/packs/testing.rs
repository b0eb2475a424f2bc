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
        let store = Arc::new(MemoryStore::new());
        let clock = ManualClock::at_unix(1_800_000_000);
        let builder = Bot::builder(store.clone())
            .clock(Arc::new(clock.clone()))
            .admins([UserId::parse("UADMIN").unwrap()])
            .script(builtin::script(builtin::Policy::default()))
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

    pub fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }
}
