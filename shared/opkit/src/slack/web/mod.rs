//! A minimal Slack Web API client for the bot token: post, post ephemeral, update
//! ([`SlackApi`]); file uploads ([`FileUploader`]); an in-memory [`ChannelPoster`]
//! for tests; who a user or a conversation is ([`Directory`]: `users.info`,
//! `conversations.info`); who is in a user group (`usergroups.users.list`, the
//! [`crate::groups::UserGroups`] port); and, for Socket Mode, the app-level token and `apps.connections.open`.
//!
//! Slack answers most failures with HTTP 200 and `{"ok": false, "error": "..."}`;
//! those become [`WebApiError::Slack`]. HTTP failures are retried with the same
//! [`RetryPolicy`] and code as replies to a `response_url`.

mod directory;
mod memory;
mod socket_mode;
mod upload;
mod usergroups;

pub use directory::{Directory, MemoryDirectory, SlackConversation, SlackUser};
pub use memory::{ChannelPost, MemoryChannelPoster};
pub use socket_mode::{AppToken, AppTokenError, open_socket_connection};
pub use upload::{FileUpload, FileUploader, MAX_UPLOAD_BYTES, UploadedFile};

use std::fmt;
use std::time::Duration;

use reqwest::header::CONTENT_TYPE;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::mrkdwn::{Code, Mrkdwn};
use super::poster::{DEFAULT_TIMEOUT, PostError, RetryPolicy, send_with_retries};
use super::reply::{Block, Reply};
use crate::BoxFuture;
use crate::ids::{ChannelId, UserId};

/// Slack's Web API, used unless the configuration says otherwise (`SLACK_API_URL`).
pub const DEFAULT_BASE_URL: &str = "https://slack.com/api";

/// A bot token (`xoxb-...`). Its `Debug` output never shows the token.
#[derive(Clone)]
pub struct BotToken(String);

impl BotToken {
    /// Wraps the token from the Slack app's "OAuth & Permissions" page.
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }
}

impl fmt::Debug for BotToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BotToken(***)")
    }
}

/// Where a message was posted: together, its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostedMessage {
    /// The conversation id.
    pub channel: String,
    /// The message's timestamp, its id within the conversation.
    pub ts: String,
}

/// Why a Web API call failed.
#[derive(Debug, thiserror::Error)]
pub enum WebApiError {
    /// Slack refused the call (`"ok": false`), e.g. `channel_not_found`, `not_in_channel`.
    #[error("Slack refused {method}: {error}")]
    Slack {
        /// The Web API method, e.g. `chat.postMessage`.
        method: &'static str,
        /// Slack's error code.
        error: String,
    },
    /// The call did not get through (after any retries).
    #[error("Slack {method} failed: {source}")]
    Http {
        /// The Web API method.
        method: &'static str,
        /// What went wrong on the wire.
        #[source]
        source: PostError,
    },
    /// Slack answered 2xx with something that is not the expected JSON.
    #[error("Slack {method} gave an unexpected answer: {reason}")]
    InvalidResponse {
        /// The Web API method.
        method: &'static str,
        /// What was wrong with it.
        reason: String,
    },
}

/// Posts messages to a channel (for events and scheduled jobs, which have no `response_url`).
pub trait ChannelPoster: Send + Sync {
    /// Posts `reply` to `channel`, in the thread `thread_ts` if given.
    fn post_message<'a>(
        &'a self,
        channel: &'a str,
        reply: &'a Reply,
        thread_ts: Option<&'a str>,
    ) -> BoxFuture<'a, Result<PostedMessage, WebApiError>>;

    /// Replaces the text and blocks of the message `ts` in `channel`.
    fn update<'a>(
        &'a self,
        channel: &'a str,
        ts: &'a str,
        reply: &'a Reply,
    ) -> BoxFuture<'a, Result<PostedMessage, WebApiError>>;

    /// Posts `reply` so that only `user` sees it, in `channel` (and thread).
    fn post_ephemeral<'a>(
        &'a self,
        channel: &'a str,
        user: &'a str,
        reply: &'a Reply,
        thread_ts: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), WebApiError>>;
}

/// The Slack Web API, called with the bot token.
#[derive(Debug, Clone)]
pub struct SlackApi {
    base_url: String,
    token: BotToken,
    client: reqwest::Client,
    timeout: Duration,
    policy: RetryPolicy,
}

/// The answer fields Opkit reads from a successful call; Slack sends many more.
#[derive(Deserialize)]
struct ApiAnswer {
    #[serde(default)]
    channel: Option<String>,
    #[serde(default)]
    ts: Option<String>,
}

impl SlackApi {
    /// A client for [`DEFAULT_BASE_URL`] using `client` (share one per process), with a
    /// 5 s timeout per try and the default [`RetryPolicy`].
    pub fn new(token: BotToken, client: reqwest::Client) -> Self {
        Self {
            base_url: DEFAULT_BASE_URL.to_owned(),
            token,
            client,
            timeout: DEFAULT_TIMEOUT,
            policy: RetryPolicy::default(),
        }
    }

    /// Calls another base URL (a fake Slack in tests), e.g. `http://127.0.0.1:4000/api`.
    pub fn with_base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = base_url.into().trim_end_matches('/').to_owned();
        self
    }

    /// Changes the timeout of each try.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Changes how failed tries are retried.
    pub fn with_retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// `chat.postMessage`: posts `reply` for the whole channel (its visibility is
    /// ignored), in the thread `thread_ts` if given.
    pub async fn post_message(
        &self,
        channel: &str,
        reply: &Reply,
        thread_ts: Option<&str>,
    ) -> Result<PostedMessage, WebApiError> {
        const METHOD: &str = "chat.postMessage";
        let mut body = message_fields(reply);
        body.insert("channel".into(), json!(channel));
        if let Some(thread_ts) = thread_ts {
            body.insert("thread_ts".into(), json!(thread_ts));
        }
        let answer = self.call(METHOD, body).await?;
        posted_message(METHOD, answer)
    }

    /// `chat.postEphemeral`: shows `reply` to `user` only, in `channel`.
    ///
    /// Returns nothing: an ephemeral message cannot be updated later.
    pub async fn post_ephemeral(
        &self,
        channel: &str,
        user: &str,
        reply: &Reply,
        thread_ts: Option<&str>,
    ) -> Result<(), WebApiError> {
        let mut body = message_fields(reply);
        body.insert("channel".into(), json!(channel));
        body.insert("user".into(), json!(user));
        if let Some(thread_ts) = thread_ts {
            body.insert("thread_ts".into(), json!(thread_ts));
        }
        self.call("chat.postEphemeral", body).await.map(drop)
    }

    /// `chat.update`: replaces the text and blocks of the message `ts` in `channel`.
    pub async fn update(
        &self,
        channel: &str,
        ts: &str,
        reply: &Reply,
    ) -> Result<PostedMessage, WebApiError> {
        const METHOD: &str = "chat.update";
        let mut body = message_fields(reply);
        body.insert("channel".into(), json!(channel));
        body.insert("ts".into(), json!(ts));
        let answer = self.call(METHOD, body).await?;
        posted_message(METHOD, answer)
    }

    /// POSTs a JSON `body` to `method` and returns Slack's answer if it says
    /// `"ok": true`.
    async fn call(
        &self,
        method: &'static str,
        body: Map<String, Value>,
    ) -> Result<ApiAnswer, WebApiError> {
        let body = Value::Object(body).to_string();
        let answer = self
            .send(method, "application/json; charset=utf-8", body)
            .await?;
        serde_json::from_value(Value::Object(answer)).map_err(|e| WebApiError::InvalidResponse {
            method,
            reason: e.to_string(),
        })
    }

    /// POSTs `body` to `method` with the bot token, retrying as the policy says;
    /// returns Slack's answer if it says `"ok": true`, else its error code.
    async fn send(
        &self,
        method: &'static str,
        content_type: &'static str,
        body: String,
    ) -> Result<Map<String, Value>, WebApiError> {
        let url = format!("{}/{method}", self.base_url);
        let request = || {
            self.client
                .post(&url)
                .bearer_auth(&self.token.0)
                .header(CONTENT_TYPE, content_type)
                .body(body.clone())
        };
        let text = send_with_retries(request, self.timeout, &self.policy, method)
            .await
            .map_err(|source| WebApiError::Http { method, source })?;
        let answer: Map<String, Value> =
            serde_json::from_str(&text).map_err(|e| WebApiError::InvalidResponse {
                method,
                reason: e.to_string(),
            })?;
        if answer.get("ok") != Some(&Value::Bool(true)) {
            let error = answer
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("unknown_error")
                .to_owned();
            return Err(WebApiError::Slack { method, error });
        }
        Ok(answer)
    }
}

impl ChannelPoster for SlackApi {
    fn post_message<'a>(
        &'a self,
        channel: &'a str,
        reply: &'a Reply,
        thread_ts: Option<&'a str>,
    ) -> BoxFuture<'a, Result<PostedMessage, WebApiError>> {
        Box::pin(SlackApi::post_message(self, channel, reply, thread_ts))
    }

    fn post_ephemeral<'a>(
        &'a self,
        channel: &'a str,
        user: &'a str,
        reply: &'a Reply,
        thread_ts: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), WebApiError>> {
        Box::pin(SlackApi::post_ephemeral(
            self, channel, user, reply, thread_ts,
        ))
    }

    fn update<'a>(
        &'a self,
        channel: &'a str,
        ts: &'a str,
        reply: &'a Reply,
    ) -> BoxFuture<'a, Result<PostedMessage, WebApiError>> {
        Box::pin(SlackApi::update(self, channel, ts, reply))
    }
}

/// What became of a message the bot posted on its own (an expiry notice, a queue
/// hand-over, a scheduled command's answer): see [`post_or_tell_owner`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnPost {
    /// Posted in the channel.
    Posted(PostedMessage),
    /// The channel refused the bot; its owner was told in a direct message.
    ToldOwner {
        /// Slack's error code for the channel (`not_in_channel`, `channel_not_found`).
        error: String,
    },
    /// The channel refused the bot again, and its owner had already been told
    /// of this streak of refusals: nothing was sent (a recurring schedule DMs its
    /// owner once, not on every run; see [`crate::schedule::post_answer`]).
    Refused {
        /// Slack's error code for the channel.
        error: String,
    },
}

/// Slack's answers to `chat.postMessage` when the bot may not post in a channel:
/// `not_in_channel` (not a member; with the `chat:write.public` scope this no
/// longer happens in public channels) and `channel_not_found` (a private channel
/// it was never invited to looks like no channel at all). Source:
/// [chat.postMessage errors](https://docs.slack.dev/reference/methods/chat.postMessage#errors).
const NOT_ALLOWED_IN_CHANNEL: [&str; 2] = ["not_in_channel", "channel_not_found"];

/// Posts `reply` in `channel` for the whole channel: `Ok(Ok(posted))`, or
/// `Ok(Err(error))` with Slack's error code when the channel will not take the
/// bot ([`NOT_ALLOWED_IN_CHANNEL`]); any other failure is an `Err`.
pub async fn post_own(
    poster: &dyn ChannelPoster,
    channel: &str,
    reply: &Reply,
    thread_ts: Option<&str>,
) -> Result<Result<PostedMessage, String>, WebApiError> {
    match poster.post_message(channel, reply, thread_ts).await {
        Ok(posted) => Ok(Ok(posted)),
        Err(WebApiError::Slack { error, .. })
            if NOT_ALLOWED_IN_CHANNEL.contains(&error.as_str()) =>
        {
            Ok(Err(error))
        }
        Err(e) => Err(e),
    }
}

/// Tells `owner` in a direct message (`chat.postMessage` with the user id as
/// `channel` posts in the app's DM with them, with the same `chat:write` scope)
/// that `reply` could not be posted in `channel` (Slack said `error`), how to let
/// the bot in, and `then` if given (what else to know: a schedule's "I will not
/// tell you again"); then the message as it was.
pub async fn tell_owner(
    poster: &dyn ChannelPoster,
    channel: &str,
    error: &str,
    reply: &Reply,
    owner: &UserId,
    then: Option<Mrkdwn>,
) -> Result<(), WebApiError> {
    let place = match ChannelId::parse(channel) {
        Ok(id) => id.mention(),
        Err(_) => Code::new(channel).into(),
    };
    let mut note = crate::mrkdwn!(
        "I could not post this in {} (Slack said {}): invite me there with `/invite` and my name, and I will post there next time.",
        place,
        Code::new(error)
    );
    if let Some(then) = then {
        note = crate::mrkdwn!("{} {}", note, then);
    }
    let mut told = reply.clone().with_visibility(super::Visibility::InChannel);
    told.text = crate::mrkdwn!("{}\n{}", note, reply.text);
    // The blocks carry the whole answer: the note, then the message as it was.
    if told.blocks.is_empty() {
        told.blocks.push(Block::Section {
            text: reply.text.clone(),
        });
    }
    told.blocks.insert(0, Block::Section { text: note });
    poster.post_message(owner.as_str(), &told, None).await?;
    tracing::warn!(channel, %owner, error, "not allowed to post in the channel: told the owner by DM");
    Ok(())
}

/// Posts `reply` in `channel` for the whole channel; where Slack refuses because
/// the bot is not there ([`NOT_ALLOWED_IN_CHANNEL`]), tells `owner` instead, in a
/// direct message ([`tell_owner`]): what it could not post, where, and how to let
/// it in. The way the bot posts one-off messages on its own: expiry notices and
/// queue hand-overs. A recurring post (a schedule's) tells its owner once per
/// streak of refusals instead: [`crate::schedule::post_answer`].
pub async fn post_or_tell_owner(
    poster: &dyn ChannelPoster,
    channel: &str,
    reply: &Reply,
    thread_ts: Option<&str>,
    owner: &UserId,
) -> Result<OwnPost, WebApiError> {
    match post_own(poster, channel, reply, thread_ts).await? {
        Ok(posted) => Ok(OwnPost::Posted(posted)),
        Err(error) => {
            tell_owner(poster, channel, &error, reply, owner, None).await?;
            Ok(OwnPost::ToldOwner { error })
        }
    }
}

/// The `text` and `blocks` arguments shared by the `chat.*` methods: the
/// reply's own [`Reply::message_fields`], within Slack's limits.
fn message_fields(reply: &Reply) -> Map<String, Value> {
    reply.message_fields()
}

fn posted_message(method: &'static str, answer: ApiAnswer) -> Result<PostedMessage, WebApiError> {
    match (answer.channel, answer.ts) {
        (Some(channel), Some(ts)) => Ok(PostedMessage { channel, ts }),
        _ => Err(WebApiError::InvalidResponse {
            method,
            reason: "the answer has no `channel` and `ts`".to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_fields_carry_text_and_blocks_but_no_response_type() {
        // GIVEN an in-channel reply with a block
        let reply = Reply::in_channel("hi").block(Block::Divider);
        // WHEN it becomes chat.* arguments
        let fields = Value::Object(message_fields(&reply));
        // THEN text and rendered blocks are there, response_type is not
        assert_eq!(
            fields,
            json!({"text": "hi", "blocks": [{"type": "divider"}]})
        );
    }

    #[test]
    fn answer_without_ts_is_invalid() {
        let answer = ApiAnswer {
            channel: Some("C1".into()),
            ts: None,
        };
        let error = posted_message("chat.postMessage", answer).unwrap_err();
        assert!(matches!(error, WebApiError::InvalidResponse { .. }));
    }

    #[test]
    fn debug_output_hides_the_token() {
        let api = SlackApi::new(BotToken::new("xoxb-secret-1"), reqwest::Client::new());
        let shown = format!("{api:?}");
        assert!(!shown.contains("xoxb-secret-1"), "{shown}");
        assert!(shown.contains("BotToken(***)"));
    }

    #[test]
    fn base_url_loses_its_trailing_slash() {
        let api = SlackApi::new(BotToken::new("t"), reqwest::Client::new())
            .with_base_url("http://127.0.0.1:9/api/");
        assert_eq!(api.base_url, "http://127.0.0.1:9/api");
    }
}
