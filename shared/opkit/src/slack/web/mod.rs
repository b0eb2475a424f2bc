//! A minimal Slack Web API client for the bot token: post, post ephemeral, update.
//!
//! Slack answers most failures with HTTP 200 and `{"ok": false, "error": "..."}`;
//! those become [`WebApiError::Slack`]. HTTP failures are retried with the same
//! [`RetryPolicy`] and code as replies to a `response_url`.

use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use reqwest::header::CONTENT_TYPE;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::poster::{DEFAULT_TIMEOUT, PostError, RetryPolicy, send_with_retries};
use super::reply::{Block, Reply};
use crate::BoxFuture;

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

/// The `text` and `blocks` arguments shared by the `chat.*` methods.
fn message_fields(reply: &Reply) -> Map<String, Value> {
    let mut fields = Map::new();
    fields.insert("text".into(), json!(reply.text));
    if !reply.blocks.is_empty() {
        let blocks = reply.blocks.iter().map(Block::to_slack).collect();
        fields.insert("blocks".into(), Value::Array(blocks));
    }
    fields
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
}

impl ChannelPoster for MemoryChannelPoster {
    fn post_message<'a>(
        &'a self,
        channel: &'a str,
        reply: &'a Reply,
        thread_ts: Option<&'a str>,
    ) -> BoxFuture<'a, Result<PostedMessage, WebApiError>> {
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

/// A file to post to a channel with [`FileUploader::upload_file`].
#[derive(Clone)]
pub struct FileUpload {
    /// The conversation id to share it in.
    pub channel: String,
    /// The file name, e.g. `cpu.png`.
    pub filename: String,
    /// The title shown above it.
    pub title: String,
    /// The content.
    pub bytes: Vec<u8>,
    /// A message posted with it.
    pub initial_comment: Option<String>,
    /// The thread to post it in, if any.
    pub thread_ts: Option<String>,
}

impl fmt::Debug for FileUpload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileUpload")
            .field("channel", &self.channel)
            .field("filename", &self.filename)
            .field("bytes", &self.bytes.len())
            .finish_non_exhaustive()
    }
}

/// A file Slack accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadedFile {
    /// Slack's file id (`F…`).
    pub id: String,
}

/// Posts files to channels (the `graph` command's pictures).
pub trait FileUploader: Send + Sync {
    /// Uploads `file` and shares it in its channel.
    fn upload_file<'a>(
        &'a self,
        file: &'a FileUpload,
    ) -> BoxFuture<'a, Result<UploadedFile, WebApiError>>;
}

/// Largest file [`SlackApi::upload_file`] sends (Slack allows more; graphs are small).
pub const MAX_UPLOAD_BYTES: usize = 10 * 1024 * 1024;

impl SlackApi {
    /// Slack's external upload flow: `files.getUploadURLExternal` for an upload URL,
    /// a POST of the bytes to it, then `files.completeUploadExternal` to share the
    /// file in `file.channel` (the bot must be a member).
    pub async fn upload_file(&self, file: &FileUpload) -> Result<UploadedFile, WebApiError> {
        const GET_URL: &str = "files.getUploadURLExternal";
        const UPLOAD: &str = "file upload";
        const COMPLETE: &str = "files.completeUploadExternal";
        if file.bytes.is_empty() || file.bytes.len() > MAX_UPLOAD_BYTES {
            return Err(WebApiError::InvalidResponse {
                method: GET_URL,
                reason: format!("a file of {} bytes cannot be uploaded", file.bytes.len()),
            });
        }
        let answer = self
            .call_form(
                GET_URL,
                &[
                    ("filename", file.filename.clone()),
                    ("length", file.bytes.len().to_string()),
                ],
            )
            .await?;
        let field = |name: &str| answer.get(name).and_then(Value::as_str).map(str::to_owned);
        let (Some(upload_url), Some(id)) = (field("upload_url"), field("file_id")) else {
            return Err(WebApiError::InvalidResponse {
                method: GET_URL,
                reason: "the answer has no `upload_url` and `file_id`".to_owned(),
            });
        };
        // The upload URL carries its own authorization: the token is not sent there.
        let request = || {
            self.client
                .post(&upload_url)
                .header(CONTENT_TYPE, "application/octet-stream")
                .body(file.bytes.clone())
        };
        send_with_retries(request, self.timeout, &self.policy, UPLOAD)
            .await
            .map_err(|source| WebApiError::Http {
                method: UPLOAD,
                source,
            })?;
        let files = json!([{ "id": id, "title": file.title }]).to_string();
        let mut fields = vec![("files", files), ("channel_id", file.channel.clone())];
        if let Some(comment) = &file.initial_comment {
            fields.push(("initial_comment", comment.clone()));
        }
        if let Some(thread_ts) = &file.thread_ts {
            fields.push(("thread_ts", thread_ts.clone()));
        }
        self.call_form(COMPLETE, &fields).await?;
        Ok(UploadedFile { id })
    }

    /// POSTs form-encoded `fields` to `method` (some methods, such as
    /// `files.getUploadURLExternal`, take no JSON) and returns Slack's answer if it
    /// says `"ok": true`.
    async fn call_form(
        &self,
        method: &'static str,
        fields: &[(&str, String)],
    ) -> Result<Map<String, Value>, WebApiError> {
        let body =
            serde_urlencoded::to_string(fields).map_err(|e| WebApiError::InvalidResponse {
                method,
                reason: format!("could not encode the request: {e}"),
            })?;
        self.send(method, "application/x-www-form-urlencoded", body)
            .await
    }
}

impl FileUploader for SlackApi {
    fn upload_file<'a>(
        &'a self,
        file: &'a FileUpload,
    ) -> BoxFuture<'a, Result<UploadedFile, WebApiError>> {
        Box::pin(SlackApi::upload_file(self, file))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slack::reply::Visibility;

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

// ---------------------------------------------------------------------------
// Socket Mode: the app-level token and `apps.connections.open`.
// Kept together here so that the Socket Mode transport (in the `opkit` binary)
// needs nothing else from this module.

/// An app-level token (`xapp-...`), used only to open Socket Mode connections.
/// Its `Debug` output never shows the token.
#[derive(Clone)]
pub struct AppToken(String);

impl AppToken {
    /// Wraps a token from the Slack app's "Basic Information" → "App-Level Tokens";
    /// it needs the `connections:write` scope. Anything that does not start with
    /// `xapp-` is refused: a bot token pasted here is the usual mistake.
    pub fn parse(token: impl Into<String>) -> Result<Self, String> {
        let token = token.into();
        if token.starts_with("xapp-") {
            Ok(Self(token))
        } else {
            Err("expected an app-level token starting with `xapp-`".to_owned())
        }
    }
}

impl fmt::Debug for AppToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AppToken(***)")
    }
}

/// `apps.connections.open`: asks Slack for a Socket Mode WebSocket URL (`wss://...`),
/// valid for one connection. `base_url` is the Web API base (`SLACK_API_URL`).
///
/// Retried like every Web API call; `"ok": false` becomes [`WebApiError::Slack`]
/// with Slack's error code.
pub async fn open_socket_connection(
    client: &reqwest::Client,
    base_url: &str,
    token: &AppToken,
) -> Result<String, WebApiError> {
    const METHOD: &str = "apps.connections.open";
    #[derive(Deserialize)]
    struct OpenAnswer {
        ok: bool,
        #[serde(default)]
        error: Option<String>,
        #[serde(default)]
        url: Option<String>,
    }

    let url = format!("{}/{METHOD}", base_url.trim_end_matches('/'));
    let request = || {
        client
            .post(&url)
            .bearer_auth(&token.0)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
    };
    let text = send_with_retries(request, DEFAULT_TIMEOUT, &RetryPolicy::default(), METHOD)
        .await
        .map_err(|source| WebApiError::Http {
            method: METHOD,
            source,
        })?;
    let answer: OpenAnswer =
        serde_json::from_str(&text).map_err(|e| WebApiError::InvalidResponse {
            method: METHOD,
            reason: e.to_string(),
        })?;
    if !answer.ok {
        let error = answer.error.unwrap_or_else(|| "unknown_error".to_owned());
        return Err(WebApiError::Slack {
            method: METHOD,
            error,
        });
    }
    match answer.url {
        Some(url) if url.starts_with("wss://") || url.starts_with("ws://") => Ok(url),
        _ => Err(WebApiError::InvalidResponse {
            method: METHOD,
            reason: "the answer has no WebSocket `url`".to_owned(),
        }),
    }
}

#[cfg(test)]
mod socket_mode_tests {
    use super::*;

    #[test]
    fn app_token_must_be_app_level_and_never_prints() {
        // GIVEN an app-level token and a bot token
        let token = AppToken::parse("xapp-1-A1-secret").unwrap();
        // THEN the app token hides itself and the bot token is refused
        assert_eq!(format!("{token:?}"), "AppToken(***)");
        assert!(AppToken::parse("xoxb-123").unwrap_err().contains("xapp-"));
    }
}
