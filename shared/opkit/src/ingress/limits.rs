//! How much the ingress accepts: one limit per route, the same over HTTP (`opkit
//! serve`, the ingress Lambda) and in Socket Mode, derived from what Slack
//! documents of the payloads it sends, and what a job may carry onto the queue.
//!
//! Slack documents no total size for any request, only the parts'. The figures:
//!
//! - a message's `text` is cut at 40,000 characters
//!   (<https://api.slack.com/changelog/2018-04-truncating-really-long-messages>);
//! - a message holds up to 50 blocks, a modal or App Home up to 100; a section's
//!   text up to 3,000 characters and its fields 10 × 2,000; a `plain_text_input`
//!   up to 3,000 characters (<https://docs.slack.dev/reference/block-kit/blocks>,
//!   <https://docs.slack.dev/reference/block-kit/block-elements/plain-text-input-element>);
//! - a slash command and an interaction arrive as `application/x-www-form-urlencoded`
//!   (an interaction's JSON in its `payload` field), where a byte other than a
//!   letter, a digit or `-._*` becomes three (`%XX`): a character up to 12 bytes;
//!   an event arrives as JSON, where a character written as a `\uXXXX` escape
//!   (a UTF-16 pair for one past U+FFFF) is up to 12 bytes too
//!   (<https://docs.slack.dev/interactivity/implementing-slash-commands>,
//!   <https://docs.slack.dev/interactivity/handling-user-interaction>,
//!   <https://docs.slack.dev/apis/events-api/>).
//!
//! | route | limit | what it holds |
//! |---|---|---|
//! | commands | [`COMMANDS_MAX_BODY`], 512 KiB | a command's `text` of 40,000 characters at 12 bytes each (480,000 B), and its other fields (ids, URLs: under 2 KB) |
//! | events | [`EVENTS_MAX_BODY`], 1 MiB | a message of 40,000 characters carried twice (`text`, and its `rich_text` blocks), as escaped JSON |
//! | interactions | [`INTERACTIONS_MAX_BODY`], 4 MiB | a `view_submission` of a 100-block modal, its texts and inputs at their maxima (about 600,000 characters) at an average of 7 bytes each; a `block_actions` carrying its 50-block message; Slack's SDKs test with one of ~89 KB |
//!
//! The largest, 4 MiB, is still far from the transports' own ceilings: an API
//! Gateway HTTP API takes 10 MB, and a Lambda's synchronous invocation 6 MB,
//! in which the ingress Lambda receives the body base64-encoded (4/3: 5.6 MB)
//! (<https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-quotas.html>,
//! <https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html>).
//!
//! A job carries only what the worker needs: who, where, the text and where to
//! reply; never the message or view a click came with. Its text is at most
//! [`MAX_TEXT_CHARS`] characters (Slack's own limit on a message; a longer one
//! cannot be one Slack sent), so a job stays within SQS's message size (1 MiB
//! today, 256 KiB before August 2025,
//! <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-messages.html>)
//! whatever the characters.

use super::Route;

/// The largest body of a slash command (`POST /slack/commands`), in bytes.
pub const COMMANDS_MAX_BODY: usize = 512 * 1024;

/// The largest Events API body (`POST /slack/events`), in bytes.
pub const EVENTS_MAX_BODY: usize = 1024 * 1024;

/// The largest interaction body (`POST /slack/interactions`), in bytes.
pub const INTERACTIONS_MAX_BODY: usize = 4 * 1024 * 1024;

/// The longest command text a job carries, in characters (Unicode scalar
/// values): Slack cuts a message at 40,000.
pub const MAX_TEXT_CHARS: usize = 40_000;

/// What a Socket Mode envelope adds around its payload (`envelope_id`, `type`,
/// `accepts_response_payload`, `retry_attempt`, `retry_reason`), with room to
/// spare, in bytes.
pub const ENVELOPE_OVERHEAD: usize = 4 * 1024;

impl Route {
    /// The largest body accepted on this route, in bytes: over HTTP the request's
    /// body; in Socket Mode the envelope carrying the payload, less
    /// [`ENVELOPE_OVERHEAD`] (the JSON of a command or an interaction there is no
    /// larger than its form over HTTP). The module's table says where each figure
    /// comes from.
    pub const fn max_body(self) -> usize {
        match self {
            Route::Commands => COMMANDS_MAX_BODY,
            Route::Events => EVENTS_MAX_BODY,
            Route::Interactions => INTERACTIONS_MAX_BODY,
        }
    }

    /// The largest limit of any route: a Socket Mode connection carries all three,
    /// so its WebSocket accepts a message (and a frame) of this many bytes plus
    /// [`ENVELOPE_OVERHEAD`], and each envelope is then held to its own route's
    /// [`Route::max_body`].
    pub const fn largest_body() -> usize {
        let (a, b, c) = (COMMANDS_MAX_BODY, EVENTS_MAX_BODY, INTERACTIONS_MAX_BODY);
        let ab = if a > b { a } else { b };
        if ab > c { ab } else { c }
    }
}

/// Whether a command's text is short enough to be queued: at most
/// [`MAX_TEXT_CHARS`] characters.
pub fn text_fits(text: &str) -> bool {
    // Counting stops at the limit: a long text costs no more than a short one.
    text.chars().nth(MAX_TEXT_CHARS).is_none()
}
