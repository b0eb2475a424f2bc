//! The ack path: verify, parse, enqueue, answer — within Slack's 3 seconds.
//!
//! One decision, two ways in:
//!
//! - [`Ingress::handle`] is the whole HTTP behaviour of the three Slack routes,
//!   independent of the server around it: `opkit serve` (axum) and the ingress
//!   Lambda (API Gateway) both call it and send [`Answer::into_http`]. It checks the
//!   size and the signature, answers Slack's endpoint checks (`ssl_check`,
//!   `url_verification`), parses the body, and hands the payload to
//!   [`Ingress::accept`].
//! - [`Ingress::accept`] takes a payload that is already authenticated and parsed
//!   ([`Inbound`]): Socket Mode calls it with what Slack's WebSocket delivered. It
//!   makes the decision for both ways in: who may call ([`admit`]: the
//!   installation on the team allow-list, the user one of its own), the job, the
//!   queue, the answer.
//!
//! It does no store read and no Slack call: one enqueue, then the answer.
//!
//! | request | answer |
//! |---|---|
//! | body over [`MAX_BODY`] (1 MiB) | 413, nothing queued |
//! | missing, stale or wrong signature | 401, nothing queued |
//! | malformed payload | 400, nothing queued |
//! | slash command or click from a team not in `OPKIT_TEAM_IDS`, or from a user of another organisation | 403 with the reason, nothing queued |
//! | event from a team not allowed, or from a user of another organisation | 200, empty; nothing queued; logged |
//! | `ssl_check=1` | 200, empty |
//! | `url_verification` | 200, the challenge |
//! | slash command | 200, ephemeral "Working on …"; one job queued |
//! | slash command, queue down | 200, ephemeral "could not queue"; logged |
//! | mention or direct message | 200, empty; one job queued (id from `event_id`) |
//! | other events, bots' and own messages, edits | 200, empty; nothing queued |
//! | event, queue down | 503, so Slack retries (the retry is the same job) |
//! | click on an Opkit button (`block_actions`) | 200, empty; one job queued |
//! | click, queue down | 200, ephemeral "could not take that click"; logged |
//! | other interactions, unknown action ids | 400, nothing queued |
//!
//! Once a payload parses, the check of who is calling comes first, before the job
//! is built: a well-formed command or click from a caller not admitted is always a
//! 403. A refused event is acknowledged with a 200 all the same: Slack retries
//! events answered otherwise, and turns off an app's event subscriptions when too
//! many deliveries fail (<https://docs.slack.dev/apis/events-api/>, "Failure
//! limits").

mod answer;
#[cfg(test)]
mod tests;

pub use answer::{Answer, Body};

use std::sync::Arc;

use http::StatusCode;
use serde_json::json;

use crate::admission::admit;
use crate::clock::SharedClock;
use crate::config::{Config, ConfigError};
use crate::job::{Job, JobQueue};
use crate::slack::{
    BlockActions, CommandRequest, EventCallback, EventRequest, Interaction, Origin, SlashCommand,
    Verifier,
};
use crate::telemetry::ErrorChain;

/// The largest payload accepted from Slack, in bytes: an HTTP request's body, and
/// in Socket Mode a WebSocket message (and each frame of it). One limit for both
/// ways in.
///
/// Slack documents no total size, only the parts'. A message's `text` is cut at
/// 40,000 characters
/// (<https://api.slack.com/changelog/2018-04-truncating-really-long-messages>), and
/// a message event carries it twice (`text`, and again in its `rich_text` blocks):
/// written as JSON `\uXXXX` escapes, 6 bytes a UTF-16 unit, that is about 480 KB,
/// and under 1 MiB even if every character were an emoji (a surrogate pair). A click
/// (`block_actions`) carries the whole message its button is in (up to 50 blocks,
/// a section's text up to 3,000 characters,
/// <https://api.slack.com/reference/block-kit/blocks>), and over HTTP that JSON is
/// form-encoded, which can triple it: an ordinary long message already passes
/// 64 KiB. 1 MiB holds all of them.
pub const MAX_BODY: usize = 1024 * 1024;

/// The three Slack endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `POST /slack/commands`.
    Commands,
    /// `POST /slack/events`.
    Events,
    /// `POST /slack/interactions`.
    Interactions,
}

impl Route {
    /// The route for a request path, if it is one of ours. A leading stage name
    /// (`/prod/slack/commands`, as API Gateway's REST APIs send it) is allowed.
    pub fn from_path(path: &str) -> Option<Self> {
        let path = path.trim_end_matches('/');
        [
            ("/slack/commands", Route::Commands),
            ("/slack/events", Route::Events),
            ("/slack/interactions", Route::Interactions),
        ]
        .into_iter()
        .find(|(suffix, _)| path.ends_with(suffix))
        .map(|(_, route)| route)
    }
}

/// What the ingress needs from an HTTP request.
#[derive(Debug, Clone, Copy)]
pub struct SlackRequest<'a> {
    /// `X-Slack-Request-Timestamp`.
    pub timestamp: Option<&'a str>,
    /// `X-Slack-Signature`.
    pub signature: Option<&'a str>,
    /// The raw body bytes, exactly as signed (already base64-decoded).
    pub body: &'a [u8],
}

impl<'a> SlackRequest<'a> {
    /// Reads Slack's two headers from an HTTP request (axum and `lambda_http`
    /// both use the `http` crate's types).
    pub fn from_http(headers: &'a http::HeaderMap, body: &'a [u8]) -> Self {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        Self {
            timestamp: header("x-slack-request-timestamp"),
            signature: header("x-slack-signature"),
            body,
        }
    }
}

/// One payload from Slack, authenticated and parsed: what [`Ingress::accept`]
/// decides on, whichever way it came in (an HTTP route or a Socket Mode envelope).
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound {
    /// A slash command (the commands route, or a `slash_commands` envelope).
    Command(SlashCommand),
    /// A subscribed event (the events route, or an `events_api` envelope).
    Event(EventCallback),
    /// An interaction (the interactions route, or an `interactive` envelope).
    Interaction(Interaction),
}

impl Inbound {
    /// Who is calling, as the payload's parser reads it, for [`admit`]. `None` for
    /// an interaction Opkit does not handle (refused whoever sent it).
    pub fn origin(&self) -> Option<Origin> {
        match self {
            Inbound::Command(cmd) => Some(cmd.origin()),
            Inbound::Event(callback) => Some(callback.origin()),
            Inbound::Interaction(Interaction::BlockActions(click)) => Some(click.origin()),
            Inbound::Interaction(Interaction::Other { .. }) => None,
        }
    }
}

/// The ingress: verifies, decides and queues.
pub struct Ingress {
    /// `None` only for a trusted transport (Socket Mode), which has no HTTP routes.
    verifier: Option<Verifier>,
    config: Config,
    clock: SharedClock,
    queue: Arc<dyn JobQueue>,
}

impl Ingress {
    /// Needs `SLACK_SIGNING_SECRET`; the team allow-list comes from the config.
    pub fn new(
        config: &Config,
        clock: SharedClock,
        queue: Arc<dyn JobQueue>,
    ) -> Result<Self, ConfigError> {
        let secret = config.require_signing_secret()?.clone();
        Ok(Self {
            verifier: Some(Verifier::new(secret, clock.clone())),
            config: config.clone(),
            clock,
            queue,
        })
    }

    /// An ingress for payloads that arrive over an authenticated connection
    /// (Socket Mode): they are not signed, so only [`Ingress::accept`] is usable;
    /// [`Ingress::handle`] refuses every request.
    pub fn trusted(config: &Config, clock: SharedClock, queue: Arc<dyn JobQueue>) -> Self {
        Self {
            verifier: None,
            config: config.clone(),
            clock,
            queue,
        }
    }

    /// Answers one request to one of the Slack routes: checks its size and
    /// signature, answers Slack's endpoint checks, parses it, and hands the payload
    /// to [`Ingress::accept`].
    pub async fn handle(&self, route: Route, request: SlackRequest<'_>) -> Answer {
        if request.body.len() > MAX_BODY {
            tracing::warn!(size = request.body.len(), "refused: body too large");
            return Answer::refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body is larger than {MAX_BODY} bytes"),
            );
        }
        let Some(verifier) = &self.verifier else {
            return Answer::refuse(
                StatusCode::UNAUTHORIZED,
                "this ingress accepts no HTTP requests",
            );
        };
        if let Err(e) = verifier.verify(request.timestamp, request.signature, request.body) {
            tracing::warn!(error = %e, "refused: signature");
            return Answer::refuse(StatusCode::UNAUTHORIZED, e.to_string());
        }
        let inbound = match route {
            Route::Commands => match CommandRequest::parse(request.body) {
                Ok(CommandRequest::SslCheck) => return Answer::empty(),
                Ok(CommandRequest::Command(cmd)) => Ok(Inbound::Command(cmd)),
                Err(e) => {
                    tracing::warn!(error = %e, "refused: malformed slash command");
                    Err(e)
                }
            },
            Route::Events => match EventRequest::parse(request.body) {
                Ok(EventRequest::UrlVerification { challenge }) => {
                    return Answer::json(json!({ "challenge": challenge }));
                }
                Ok(EventRequest::AppRateLimited { .. }) => return Answer::empty(),
                Ok(EventRequest::EventCallback(callback)) => Ok(Inbound::Event(callback)),
                Err(e) => Err(e),
            },
            Route::Interactions => Interaction::parse(request.body).map(Inbound::Interaction),
        };
        match inbound {
            Ok(inbound) => self.accept(inbound).await,
            Err(e) => Answer::refuse(StatusCode::BAD_REQUEST, e.to_string()),
        }
    }

    /// Decides on one authenticated, parsed payload: refuses a caller [`admit`]
    /// does not admit (403 for a command or a click; an empty 200 for an event, so
    /// that Slack does not retry it), then queues a job for a slash command, a
    /// message for the bot or a click on one of Opkit's buttons, and answers as the
    /// module's table says.
    ///
    /// Only for payloads whose origin is established: [`Ingress::handle`] calls it
    /// after checking the signature, Socket Mode for what Slack's authenticated
    /// WebSocket delivered.
    pub async fn accept(&self, inbound: Inbound) -> Answer {
        if let Some(origin) = inbound.origin()
            && let Err(refusal) = admit(
                &origin,
                &self.config.team_ids,
                self.config.allow_external_users,
            )
        {
            let (installation, user) = (&origin.installation, &origin.user);
            return match &inbound {
                Inbound::Event(callback) => {
                    tracing::warn!(
                        event_id = %callback.event_id, %installation, %user, reason = %refusal,
                        "refused an event: caller not admitted; acked so that Slack does not retry"
                    );
                    Answer::empty()
                }
                _ => {
                    tracing::warn!(%installation, %user, reason = %refusal, "refused: caller not admitted");
                    Answer::refuse(StatusCode::FORBIDDEN, refusal.to_string())
                }
            };
        }
        match inbound {
            Inbound::Command(cmd) => self.accept_command(&cmd).await,
            Inbound::Event(callback) => self.accept_event(&callback).await,
            Inbound::Interaction(Interaction::BlockActions(click)) => {
                self.accept_click(&click).await
            }
            Inbound::Interaction(Interaction::Other { kind }) => {
                tracing::warn!(kind, "refused: interaction");
                Answer::refuse(
                    StatusCode::BAD_REQUEST,
                    "only button clicks (block_actions) are handled",
                )
            }
        }
    }

    /// Queues a slash command; the answer is the ephemeral ack.
    async fn accept_command(&self, cmd: &SlashCommand) -> Answer {
        let job = match Job::from_slash_command(cmd, self.clock.now()) {
            Ok(job) => job,
            Err(e) => return Answer::refuse(StatusCode::BAD_REQUEST, e.to_string()),
        };
        match self.queue.enqueue(&job).await {
            Ok(()) => {
                tracing::info!(job_id = %job.id, user = %job.caller.user, "queued");
                let shown = if cmd.text.trim().is_empty() {
                    String::new()
                } else {
                    // What the user typed, quoted on one line like every echo of it.
                    format!(" on `{}`", crate::text::one_line(cmd.text.trim()))
                };
                Answer::json(json!({
                    "response_type": "ephemeral",
                    "text": format!("Working{shown}…"),
                }))
            }
            Err(e) => {
                tracing::error!(job_id = %job.id, error = %ErrorChain(&e), "could not queue the command");
                Answer::json(json!({
                    "response_type": "ephemeral",
                    "text": "Sorry, I could not queue your command; please try again in a moment.",
                }))
            }
        }
    }

    /// Queues an event if it is a message for the bot.
    async fn accept_event(&self, callback: &EventCallback) -> Answer {
        let message = match callback.chat_message() {
            Ok(Some(message)) => message,
            Ok(None) => {
                tracing::debug!(event_id = %callback.event_id, kind = ?callback.event_type(), "event ignored");
                return Answer::empty();
            }
            Err(e) => return Answer::refuse(StatusCode::BAD_REQUEST, e.to_string()),
        };
        let job = match Job::from_chat_message(callback, &message, self.clock.now()) {
            Ok(job) => job,
            Err(e) => return Answer::refuse(StatusCode::BAD_REQUEST, e.to_string()),
        };
        match self.queue.enqueue(&job).await {
            Ok(()) => {
                tracing::info!(job_id = %job.id, event_id = %callback.event_id, "queued");
                Answer::empty()
            }
            Err(e) => {
                // Slack retries failed event deliveries; the retry is the same job.
                tracing::error!(job_id = %job.id, error = %ErrorChain(&e), "could not queue the event");
                Answer::refuse(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "could not queue the event; retry",
                )
            }
        }
    }

    /// Queues a click if it is on one of Opkit's buttons; anything else is
    /// refused (400) and nothing is queued.
    async fn accept_click(&self, click: &BlockActions) -> Answer {
        let job = match Job::from_block_actions(click, self.clock.now()) {
            Ok(job) => job,
            Err(e) => {
                tracing::warn!(error = %e, "refused: interaction");
                return Answer::refuse(StatusCode::BAD_REQUEST, e.to_string());
            }
        };
        match self.queue.enqueue(&job).await {
            Ok(()) => {
                tracing::info!(job_id = %job.id, user = %job.caller.user, "click queued");
                Answer::empty()
            }
            Err(e) => {
                tracing::error!(job_id = %job.id, error = %ErrorChain(&e), "could not queue the click");
                Answer::json(json!({
                    "response_type": "ephemeral",
                    "replace_original": false,
                    "text": "Sorry, I could not take that click; please try again in a moment.",
                }))
            }
        }
    }
}
