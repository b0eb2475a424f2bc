//! [`MemoryChannelPoster`]: a [`ChannelPoster`] that records what it is asked to
//! post, for handler tests.

use std::sync::Mutex;

use super::{ChannelPoster, PostedMessage, WebApiError};
use crate::BoxFuture;
use crate::slack::reply::Reply;

/// One message recorded by a [`MemoryChannelPoster`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelPost {
    /// The conversation posted to.
    pub channel: String,
    /// What was posted.
    pub reply: Reply,
    /// The thread posted in, if any.
    pub thread_ts: Option<String>,
    /// The id the message was given (empty for ephemeral messages).
    pub ts: String,
    /// For an ephemeral message, the only user who sees it.
    pub only_for: Option<String>,
    /// Whether this replaced the message `ts` (`chat.update`) rather than posting.
    pub updated: bool,
}

/// A [`ChannelPoster`] that records what it is asked to post, for handler tests.
///
/// Messages get increasing `ts` values, like Slack's.
#[derive(Debug, Default)]
pub struct MemoryChannelPoster {
    posts: Mutex<Vec<ChannelPost>>,
    /// Channels whose `chat.postMessage` Slack refuses, with its error code.
    refused: Mutex<Vec<(String, String)>>,
}

impl MemoryChannelPoster {
    /// An empty recorder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every message posted so far, oldest first.
    pub fn posts(&self) -> Vec<ChannelPost> {
        self.posts.lock().expect("poster lock").clone()
    }

    /// From now on, `chat.postMessage` in `channel` fails as Slack's does where
    /// the bot may not post: [`WebApiError::Slack`] with `error` (such as
    /// `not_in_channel`), and nothing is recorded. `None` lets the bot in again.
    pub fn refuse(&self, channel: &str, error: Option<&str>) {
        let mut refused = self.refused.lock().expect("poster lock");
        refused.retain(|(c, _)| c != channel);
        if let Some(error) = error {
            refused.push((channel.to_owned(), error.to_owned()));
        }
    }
}

impl ChannelPoster for MemoryChannelPoster {
    fn post_message<'a>(
        &'a self,
        channel: &'a str,
        reply: &'a Reply,
        thread_ts: Option<&'a str>,
    ) -> BoxFuture<'a, Result<PostedMessage, WebApiError>> {
        let refused = self.refused.lock().expect("poster lock");
        if let Some((_, error)) = refused.iter().find(|(c, _)| c == channel) {
            return Box::pin(std::future::ready(Err(WebApiError::Slack {
                method: "chat.postMessage",
                error: error.clone(),
            })));
        }
        drop(refused);
        let mut posts = self.posts.lock().expect("poster lock");
        let ts = format!("1700000000.{:06}", posts.len() + 1);
        posts.push(ChannelPost {
            channel: channel.to_owned(),
            reply: reply.clone(),
            thread_ts: thread_ts.map(str::to_owned),
            ts: ts.clone(),
            only_for: None,
            updated: false,
        });
        let posted = PostedMessage {
            channel: channel.to_owned(),
            ts,
        };
        Box::pin(std::future::ready(Ok(posted)))
    }

    fn post_ephemeral<'a>(
        &'a self,
        channel: &'a str,
        user: &'a str,
        reply: &'a Reply,
        thread_ts: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), WebApiError>> {
        let mut posts = self.posts.lock().expect("poster lock");
        posts.push(ChannelPost {
            channel: channel.to_owned(),
            reply: reply.clone(),
            thread_ts: thread_ts.map(str::to_owned),
            ts: String::new(),
            only_for: Some(user.to_owned()),
            updated: false,
        });
        Box::pin(std::future::ready(Ok(())))
    }

    fn update<'a>(
        &'a self,
        channel: &'a str,
        ts: &'a str,
        reply: &'a Reply,
    ) -> BoxFuture<'a, Result<PostedMessage, WebApiError>> {
        let mut posts = self.posts.lock().expect("poster lock");
        posts.push(ChannelPost {
            channel: channel.to_owned(),
            reply: reply.clone(),
            thread_ts: None,
            ts: ts.to_owned(),
            only_for: None,
            updated: true,
        });
        let posted = PostedMessage {
            channel: channel.to_owned(),
            ts: ts.to_owned(),
        };
        Box::pin(std::future::ready(Ok(posted)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slack::reply::Visibility;

    #[tokio::test]
    async fn memory_channel_poster_records_posts_with_increasing_ts() {
        // GIVEN a memory channel poster
        let poster = MemoryChannelPoster::new();
        let port: &dyn ChannelPoster = &poster;
        // WHEN two messages are posted, one in a thread
        let first = port
            .post_message("C1", &Reply::text("a"), None)
            .await
            .unwrap();
        let second = port
            .post_message("C1", &Reply::text("b"), Some(&first.ts))
            .await
            .unwrap();
        // THEN both are recorded, the second in the first's thread, with later ts
        let posts = poster.posts();
        assert_eq!(posts.len(), 2);
        assert_eq!(posts[1].thread_ts.as_deref(), Some(first.ts.as_str()));
        assert_eq!(posts[0].reply.visibility, Visibility::Ephemeral);
        assert!(second.ts > first.ts);
    }
}
