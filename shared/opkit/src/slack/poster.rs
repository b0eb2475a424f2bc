//! Posting replies to a slash command's `response_url`, with bounded retries.
//!
//! [`ReplyPoster`] is the narrow port handlers use; [`HttpPoster`] is the real adapter
//! and [`MemoryPoster`] the in-memory one for tests. The retry loop here
//! ([`RetryPolicy`] and `send_with_retries`) is also used by the
//! [Web API client](super::web), so both retry the same way.
//!
//! What is retried: HTTP 5xx, HTTP 429 (waiting the `Retry-After` seconds Slack
//! asks for — never less: a wait longer than the policy's `max_delay` is not cut
//! short, the call gives up instead) and failures to connect. A timeout is *not* retried: Slack may have received the
//! reply and only been slow to answer, and a duplicate message is worse than a
//! reported error. Any other 4xx means the request itself is wrong, so it is not
//! retried either.

use std::sync::Mutex;
use std::time::Duration;

use reqwest::header::RETRY_AFTER;
use reqwest::{RequestBuilder, Response, StatusCode};

use super::reply::Reply;
use super::response_url::ResponseUrl;
use crate::BoxFuture;

/// How much of an error response's body is kept in a [`PostError::Status`].
const BODY_EXCERPT_CHARS: usize = 200;

/// Why a reply could not be posted.
#[derive(Debug, thiserror::Error)]
pub enum PostError {
    /// Slack did not answer in time; the reply may or may not have been delivered.
    #[error("Slack did not answer within {} ms", after.as_millis())]
    Timeout {
        /// The per-request timeout that expired.
        after: Duration,
    },
    /// Slack answered with an error status (after any retries).
    #[error("Slack answered HTTP {status}: {body}")]
    Status {
        /// The HTTP status code.
        status: u16,
        /// The start of the response body.
        body: String,
    },
    /// The request could not be sent or the answer not read.
    #[error("could not reach Slack: {source}")]
    Transport {
        /// The HTTP client's error, with the URL removed (a `response_url` is a credential).
        #[source]
        source: reqwest::Error,
    },
}

impl PostError {
    /// Whether trying again later (for example by letting the queue redeliver the job)
    /// may succeed. A timeout counts as not transient: the reply may have arrived.
    pub fn is_transient(&self) -> bool {
        match self {
            PostError::Timeout { .. } => false,
            PostError::Status { status, .. } => is_retryable_status(*status),
            PostError::Transport { .. } => true,
        }
    }
}

/// How often and how patiently to retry a failed HTTP call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries in total, the first included; `0` is treated as `1`.
    pub attempts: u32,
    /// The wait before the first retry; it doubles for each retry after that.
    pub base_delay: Duration,
    /// The longest wait before any retry; a `Retry-After` asking for longer ends
    /// the tries.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// Three tries, waiting 250 ms then 500 ms, never more than 5 s.
    fn default() -> Self {
        Self {
            attempts: 3,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// One try, no retries.
    pub fn no_retries() -> Self {
        Self {
            attempts: 1,
            ..Self::default()
        }
    }

    /// The wait after failed try number `attempt` (1-based): Slack's `Retry-After` if it
    /// gave one, exponential backoff otherwise; never more than `max_delay`.
    pub fn delay_after(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let backoff = || {
            let doublings = attempt.saturating_sub(1).min(16);
            self.base_delay.saturating_mul(1 << doublings)
        };
        retry_after.unwrap_or_else(backoff).min(self.max_delay)
    }
}

/// Posts a reply to a `response_url` — only ever one checked to be Slack's
/// ([`ResponseUrl`]).
pub trait ReplyPoster: Send + Sync {
    /// Delivers `reply` to `response_url`.
    fn post<'a>(
        &'a self,
        response_url: &'a ResponseUrl,
        reply: &'a Reply,
    ) -> BoxFuture<'a, Result<(), PostError>>;
}

/// Posts replies over HTTPS with retries.
#[derive(Debug, Clone)]
pub struct HttpPoster {
    client: reqwest::Client,
    timeout: Duration,
    policy: RetryPolicy,
}

/// How long one HTTP call to Slack may take by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

impl HttpPoster {
    /// A poster using `client` (share one client per process), with a 5 s timeout per
    /// try and the default [`RetryPolicy`].
    pub fn new(client: reqwest::Client) -> Self {
        Self {
            client,
            timeout: DEFAULT_TIMEOUT,
            policy: RetryPolicy::default(),
        }
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
}

impl Default for HttpPoster {
    fn default() -> Self {
        Self::new(reqwest::Client::new())
    }
}

impl ReplyPoster for HttpPoster {
    fn post<'a>(
        &'a self,
        response_url: &'a ResponseUrl,
        reply: &'a Reply,
    ) -> BoxFuture<'a, Result<(), PostError>> {
        let body = reply.to_response_json();
        Box::pin(async move {
            let request = || self.client.post(response_url.as_str()).json(&body);
            send_with_retries(request, self.timeout, &self.policy, "response_url").await?;
            Ok(())
        })
    }
}

/// Sends the request made by `request` until Slack accepts it, fails for good, or the
/// policy's tries run out; returns the accepted response's body.
///
/// `target` names the call in logs; it must not be a `response_url` (a credential).
pub(crate) async fn send_with_retries(
    request: impl Fn() -> RequestBuilder,
    timeout: Duration,
    policy: &RetryPolicy,
    target: &str,
) -> Result<String, PostError> {
    let mut attempt = 1;
    loop {
        match send_once(request().timeout(timeout), timeout).await {
            Outcome::Accepted(body) => return Ok(body),
            // Slack's rule for a 429: not again before `Retry-After`. A wait longer
            // than the policy allows is not cut short (that only earns another 429).
            Outcome::Retryable {
                error,
                retry_after: Some(wait),
            } if wait > policy.max_delay => {
                tracing::warn!(call = target, retry_after_s = wait.as_secs(), %error, "Slack asks to wait longer than allowed; giving up");
                return Err(error);
            }
            Outcome::Retryable { error, retry_after } if attempt < policy.attempts => {
                let delay = policy.delay_after(attempt, retry_after);
                tracing::warn!(
                    call = target,
                    attempt,
                    delay_ms = delay.as_millis() as u64,
                    %error,
                    "Slack call failed; retrying"
                );
                tokio::time::sleep(delay).await;
                attempt += 1;
            }
            Outcome::Retryable { error, .. } | Outcome::Failed(error) => return Err(error),
        }
    }
}

/// The result of one try.
enum Outcome {
    Accepted(String),
    Retryable {
        error: PostError,
        retry_after: Option<Duration>,
    },
    Failed(PostError),
}

async fn send_once(request: RequestBuilder, timeout: Duration) -> Outcome {
    match request.send().await {
        Ok(response) => classify_response(response, timeout).await,
        Err(error) => classify_transport_error(error, timeout),
    }
}

async fn classify_response(response: Response, timeout: Duration) -> Outcome {
    let status = response.status();
    let retry_after = retry_after(&response);
    let body = match response.text().await {
        Ok(body) => body,
        Err(error) => return classify_transport_error(error, timeout),
    };
    if status.is_success() {
        return Outcome::Accepted(body);
    }
    let error = PostError::Status {
        status: status.as_u16(),
        body: excerpt(&body),
    };
    if is_retryable_status(status.as_u16()) {
        let retry_after = retry_after.filter(|_| status == StatusCode::TOO_MANY_REQUESTS);
        Outcome::Retryable { error, retry_after }
    } else {
        Outcome::Failed(error)
    }
}

fn classify_transport_error(error: reqwest::Error, timeout: Duration) -> Outcome {
    if error.is_timeout() {
        return Outcome::Failed(PostError::Timeout { after: timeout });
    }
    let retryable = error.is_connect();
    let error = PostError::Transport {
        source: error.without_url(),
    };
    if retryable {
        Outcome::Retryable {
            error,
            retry_after: None,
        }
    } else {
        Outcome::Failed(error)
    }
}

fn is_retryable_status(status: u16) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS.as_u16() || (500..600).contains(&status)
}

/// `Retry-After` in seconds; the HTTP-date form is ignored (Slack sends seconds).
fn retry_after(response: &Response) -> Option<Duration> {
    let value = response.headers().get(RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse().ok().map(Duration::from_secs)
}

fn excerpt(body: &str) -> String {
    let mut chars = body.chars();
    let mut out: String = chars.by_ref().take(BODY_EXCERPT_CHARS).collect();
    if chars.next().is_some() {
        out.push('…');
    }
    out
}

/// A [`ReplyPoster`] that records what it is asked to post, for handler tests.
#[derive(Debug, Default)]
pub struct MemoryPoster {
    posts: Mutex<Vec<(String, Reply)>>,
}

impl MemoryPoster {
    /// An empty recorder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every `(response_url, reply)` posted so far, oldest first.
    pub fn posts(&self) -> Vec<(String, Reply)> {
        self.posts.lock().expect("poster lock").clone()
    }
}

impl ReplyPoster for MemoryPoster {
    fn post<'a>(
        &'a self,
        response_url: &'a ResponseUrl,
        reply: &'a Reply,
    ) -> BoxFuture<'a, Result<(), PostError>> {
        self.posts
            .lock()
            .expect("poster lock")
            .push((response_url.as_str().to_owned(), reply.clone()));
        Box::pin(std::future::ready(Ok(())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            attempts: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(350),
        }
    }

    #[test]
    fn backoff_doubles_until_the_cap() {
        // GIVEN a policy starting at 100 ms, capped at 350 ms
        let policy = policy();
        // WHEN tries fail without a Retry-After
        let delays: Vec<_> = (1..=4).map(|n| policy.delay_after(n, None)).collect();
        // THEN the waits double, then stay at the cap
        let ms = |n| Duration::from_millis(n);
        assert_eq!(delays, [ms(100), ms(200), ms(350), ms(350)]);
    }

    #[test]
    fn retry_after_wins_over_backoff_but_not_over_the_cap() {
        let policy = policy();
        assert_eq!(policy.delay_after(3, Some(Duration::ZERO)), Duration::ZERO);
        assert_eq!(
            policy.delay_after(1, Some(Duration::from_secs(30))),
            Duration::from_millis(350)
        );
    }

    #[test]
    fn huge_attempt_numbers_do_not_overflow() {
        let policy = RetryPolicy {
            max_delay: Duration::MAX,
            ..policy()
        };
        assert!(policy.delay_after(u32::MAX, None) >= Duration::from_secs(1));
    }

    #[test]
    fn only_5xx_and_429_are_retryable_statuses() {
        for status in [429, 500, 502, 503, 599] {
            assert!(is_retryable_status(status), "{status}");
        }
        for status in [400, 401, 403, 404, 410, 418] {
            assert!(!is_retryable_status(status), "{status}");
        }
    }

    #[test]
    fn status_errors_know_whether_they_are_transient() {
        let status = |status| PostError::Status {
            status,
            body: String::new(),
        };
        assert!(status(503).is_transient());
        assert!(!status(404).is_transient());
        assert!(
            !PostError::Timeout {
                after: DEFAULT_TIMEOUT
            }
            .is_transient()
        );
    }

    #[test]
    fn long_bodies_are_cut_to_an_excerpt() {
        let cut = excerpt(&"é".repeat(500));
        assert_eq!(cut.chars().count(), BODY_EXCERPT_CHARS + 1);
        assert!(cut.ends_with('…'));
        assert_eq!(excerpt("no_text"), "no_text");
    }

    #[tokio::test]
    async fn memory_poster_records_posts_in_order() {
        // GIVEN a memory poster
        let poster = MemoryPoster::new();
        // WHEN two replies are posted through the trait
        let port: &dyn ReplyPoster = &poster;
        let url = |n: u8| ResponseUrl::parse(&format!("https://hooks.slack.com/r/{n}")).unwrap();
        port.post(&url(1), &Reply::text("one")).await.unwrap();
        port.post(&url(2), &Reply::in_channel("two")).await.unwrap();
        // THEN both are recorded with their URLs, in order
        assert_eq!(
            poster.posts(),
            vec![
                ("https://hooks.slack.com/r/1".to_owned(), Reply::text("one")),
                (
                    "https://hooks.slack.com/r/2".to_owned(),
                    Reply::in_channel("two")
                ),
            ]
        );
    }
}
