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
//! | body over its route's limit ([`Route::max_body`]: commands 512 KiB, events 1 MiB, interactions 4 MiB) | 413, nothing queued |
//! | Slack's SSL check, `ssl_check=1&token=…` exactly, unsigned or signed, on the commands route | 200, empty; nothing queued |
//! | missing, stale or wrong signature (anything else unsigned) | 401, nothing queued |
//! | malformed payload | 400, nothing queued |
//! | `url_verification` | 200, the challenge |
//! | `app_rate_limited` | 200, empty; logged |
//! | slash command | 200, ephemeral "Working on …" ([`working`]); one job queued |
//! | slash command or click from a team not in `OPKIT_TEAM_IDS`, or from a user of another organisation | 200, ephemeral refusal saying why; nothing queued; logged |
//! | slash command whose text passes the bot's 4,000 characters ([`command_too_long`](crate::engine::bot::command_too_long)) | 200, ephemeral "too long", the same answer the bot would give; nothing queued; logged |
//! | message whose text passes 40,000 characters ([`MAX_TEXT_CHARS`]) | 200, empty; nothing queued; logged |
//! | slash command, queue down | 200, ephemeral "could not queue"; logged |
//! | slash command, queue full (`opkit serve`) | 200, ephemeral "too busy"; logged; nothing queued |
//! | mention or direct message | 200, empty; one job queued (id from `event_id`) |
//! | event from a team not allowed, or from a user of another organisation | 200, empty; nothing queued; logged |
//! | other events, bots' and own messages, edits; organisation-level events without `team_id` (`team_access_granted`, …) | 200, empty; nothing queued |
//! | `app_uninstalled`, `tokens_revoked`, `team_access_revoked` | 200, empty; nothing queued; logged at warn (the schedules stop at the first post Slack then refuses: [`crate::schedule::TOKEN_REFUSED`]) |
//! | event, queue down | 503, so Slack retries (the retry is the same job) |
//! | mention or direct message, queue full or its user's places taken (`opkit serve`) | 200, empty; nothing queued; logged; the queue posts "Sorry, I'm too busy to take your message…" / "you already have 8 commands waiting or running…" to the user (ephemeral in a channel, in its thread) |
//! | click on an Opkit button (`block_actions`, action id `opkit:…`) | 200, empty; one job queued |
//! | click, queue down | 200, ephemeral "could not queue that click" ("too busy" when full, or its user's places taken: then the queue also posts it to the click's `response_url`, as Slack shows no click's ack); logged |
//! | other interactions (`shortcut`, `message_action`, `view_submission`, `view_closed`, `block_suggestion`, …) and `block_actions` with an action id that is not Opkit's (another app's block, a stale message) | 200, empty; nothing queued; logged at debug |
//!
//! Every request Slack really sends gets a 200: Slack shows the user an error for
//! anything else, retries events answered otherwise, and turns off an app's event
//! subscriptions when too many deliveries fail
//! (<https://docs.slack.dev/apis/events-api/>, "Failure limits";
//! <https://docs.slack.dev/interactivity/handling-user-interaction>). A refusal
//! of who is calling is therefore a 200 too: an ephemeral message saying why for a
//! command or a click (Slack shows a slash command's; for a click Slack reads no
//! body, and the refusal is in the log), and an empty 200 for an event. Other
//! statuses are left for what Slack does not send: bad signatures, malformed or
//! oversized bodies. Interactions Opkit has no part in are acknowledged before the
//! check of who is calling, so that another app's click is never answered with a
//! refusal.

mod answer;
mod limits;
#[cfg(test)]
mod response_url_tests;
#[cfg(test)]
mod tests;

pub use answer::{Answer, Body};
pub use limits::{
    COMMANDS_MAX_BODY, ENVELOPE_OVERHEAD, EVENTS_MAX_BODY, INTERACTIONS_MAX_BODY, MAX_TEXT_CHARS,
    text_fits,
};

use std::sync::Arc;

use http::StatusCode;
use serde_json::json;

use crate::admission::admit;
use crate::clock::SharedClock;
use crate::config::{Config, ConfigError};
use crate::engine::gate::is_opkit_action;
use crate::job::{Job, JobQueue};
use crate::slack::mrkdwn::CommandLine;
use crate::slack::{
    BlockActions, CommandRequest, EventCallback, EventRequest, Interaction, Origin, Reply,
    SlashCommand, UserText, Verifier,
};
use crate::telemetry::ErrorChain;

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
    /// an interaction Opkit has no part in ([`Inbound::not_ours`]).
    pub fn origin(&self) -> Option<Origin> {
        match self {
            Inbound::Command(cmd) => Some(cmd.origin()),
            Inbound::Event(callback) => Some(callback.origin()),
            Inbound::Interaction(Interaction::BlockActions(click)) => Some(click.origin()),
            Inbound::Interaction(Interaction::Other { .. }) => None,
        }
    }

    /// What the payload is, when Opkit has no part in it: an interaction of
    /// another type than `block_actions` (`shortcut`, `message_action`,
    /// `view_submission`, `view_closed`, `block_suggestion`, ...), or a
    /// `block_actions` whose action id is not one of Opkit's buttons' (an element
    /// of another app's blocks, or of a message from an older version of the
    /// bot). Slack still wants its 200; nothing is run. `None` for everything Opkit
    /// decides on.
    ///
    /// Source: <https://docs.slack.dev/reference/interaction-payloads>.
    pub fn not_ours(&self) -> Option<String> {
        match self {
            Inbound::Interaction(Interaction::Other { kind }) => Some(kind.clone()),
            Inbound::Interaction(Interaction::BlockActions(click)) => click
                .action()
                .filter(|action| !is_opkit_action(&action.action_id))
                .map(|action| format!("block_actions `{}`", action.action_id)),
            Inbound::Command(_) | Inbound::Event(_) => None,
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
        let limit = route.max_body();
        if request.body.len() > limit {
            tracing::warn!(
                size = request.body.len(),
                limit,
                ?route,
                "refused: body too large"
            );
            return Answer::refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body is larger than {limit} bytes"),
            );
        }
        // Slack sends its SSL check unsigned; only that exact shape passes unsigned.
        if route == Route::Commands && CommandRequest::is_ssl_check(request.body) {
            tracing::debug!("answered Slack's SSL check");
            return Answer::empty();
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
                Err(e) => Err(e),
            },
            Route::Events => match EventRequest::parse(request.body) {
                Ok(EventRequest::UrlVerification { challenge }) => {
                    return Answer::json(json!({ "challenge": challenge }));
                }
                Ok(EventRequest::AppRateLimited {
                    team_id,
                    minute_rate_limited,
                    ..
                }) => {
                    tracing::warn!(
                        team_id,
                        minute_rate_limited,
                        "Slack is dropping events: rate limited"
                    );
                    return Answer::empty();
                }
                Ok(EventRequest::EventCallback(callback)) => Ok(Inbound::Event(callback)),
                Err(e) => Err(e),
            },
            Route::Interactions => Interaction::parse(request.body).map(Inbound::Interaction),
        };
        match inbound {
            Ok(inbound) => self.accept(inbound).await,
            Err(e) => {
                tracing::warn!(error = %e, ?route, "refused: malformed payload");
                Answer::refuse(StatusCode::BAD_REQUEST, e.to_string())
            }
        }
    }

    /// Decides on one authenticated, parsed payload: acknowledges what Opkit has
    /// no part in ([`Inbound::not_ours`]) and runs nothing; refuses a caller
    /// [`admit`] does not admit (an ephemeral 200 saying why for a command or a
    /// click; an empty 200 for an event); then queues a job for a slash command, a
    /// message for the bot or a click on one of Opkit's buttons, and answers as
    /// the module's table says.
    ///
    /// Only for payloads whose origin is established: [`Ingress::handle`] calls it
    /// after checking the signature, Socket Mode for what Slack's authenticated
    /// WebSocket delivered.
    pub async fn accept(&self, inbound: Inbound) -> Answer {
        if let Some(kind) = inbound.not_ours() {
            tracing::debug!(kind, "ignored an interaction that is not Opkit's; acked");
            return Answer::empty();
        }
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
                        event_id = %callback.event_id, kind = ?callback.event_type(),
                        %installation, %user, reason = %refusal,
                        "refused an event: caller not admitted; acked so that Slack does not retry"
                    );
                    Answer::empty()
                }
                _ => {
                    tracing::warn!(%installation, %user, reason = %refusal, "refused: caller not admitted");
                    Answer::ephemeral(crate::mrkdwn!(
                        "Sorry, I cannot run that: {}",
                        UserText::new(refusal.to_string())
                    ))
                }
            };
        }
        match inbound {
            Inbound::Command(cmd) => self.accept_command(&cmd).await,
            Inbound::Event(callback) => self.accept_event(&callback).await,
            Inbound::Interaction(Interaction::BlockActions(click)) => {
                self.accept_click(&click).await
            }
            // Acknowledged above, as not Opkit's.
            Inbound::Interaction(Interaction::Other { .. }) => Answer::empty(),
        }
    }

    /// Queues a slash command; the answer is the ephemeral ack.
    async fn accept_command(&self, cmd: &SlashCommand) -> Answer {
        // The bot's own limit, asked here so a command it would refuse is
        // refused at once, not after a "Working…".
        if let Some(refusal) = crate::engine::bot::command_too_long(&cmd.text) {
            tracing::warn!(user = %cmd.user_id, "refused: command text too long");
            return Answer::ephemeral(refusal);
        }
        let job = match Job::from_slash_command(cmd, self.clock.now()) {
            Ok(job) => job,
            Err(e) => {
                tracing::warn!(error = %e, "refused: slash command");
                return Answer::refuse(StatusCode::BAD_REQUEST, e.to_string());
            }
        };
        match self.queue.enqueue(&job).await {
            Ok(()) => {
                tracing::info!(job_id = %job.id, user = %job.caller.user, "queued");
                Answer::message(working(&cmd.text))
            }
            Err(e) => {
                tracing::error!(job_id = %job.id, error = %ErrorChain(&e), "could not queue the command");
                Answer::ephemeral(UserText::new(e.tell_user("your command")))
            }
        }
    }

    /// Queues an event if it is a message for the bot.
    async fn accept_event(&self, callback: &EventCallback) -> Answer {
        let message = match callback.chat_message() {
            Ok(Some(message)) => message,
            Ok(None) if callback.ends_access() => {
                tracing::warn!(
                    event_id = %callback.event_id, kind = ?callback.event_type(),
                    installation = %callback.origin().installation,
                    "Slack says the app lost access (uninstalled, or its tokens revoked); nothing to run"
                );
                return Answer::empty();
            }
            Ok(None) => {
                tracing::debug!(event_id = %callback.event_id, kind = ?callback.event_type(), "event ignored");
                return Answer::empty();
            }
            Err(e) => return Answer::refuse(StatusCode::BAD_REQUEST, e.to_string()),
        };
        if !text_fits(&message.text) {
            // Slack cuts messages at this length; acked all the same, so that Slack
            // does not send it again.
            tracing::warn!(event_id = %callback.event_id, "ignored: message text too long");
            return Answer::empty();
        }
        let job = match Job::from_chat_message(callback, &message, self.clock.now()) {
            Ok(job) => job,
            Err(e) => return Answer::refuse(StatusCode::BAD_REQUEST, e.to_string()),
        };
        match self.queue.enqueue(&job).await {
            Ok(()) => {
                tracing::info!(job_id = %job.id, event_id = %callback.event_id, "queued");
                Answer::empty()
            }
            Err(e) if e.is_busy() => {
                // Acked: a retry would come minutes later, out of order with what
                // the user typed since, or not at all. The queue told the user.
                tracing::warn!(job_id = %job.id, event_id = %callback.event_id, error = %e, "event refused: the bot is busy; its user is told");
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

    /// Queues a click on one of Opkit's buttons (others were acknowledged by
    /// [`Ingress::accept`]); a malformed one (no request id, no `response_url`) is
    /// refused with 400, and nothing is queued.
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
                Answer::ephemeral(UserText::new(e.tell_user("that click")))
            }
        }
    }
}

/// A slash command's ack: "Working on `queue join perf`…", the command as parsed
/// ([`canonical`](crate::text::canonical), quoted like every prompt quotes a
/// request: on one line, nothing in it live), or "Working on your command…" for
/// one longer than a one-line echo ([`ONE_LINE_MAX`](crate::text::ONE_LINE_MAX)
/// characters): the ack is a reminder of what runs, not a copy of it.
pub fn working(text: &str) -> Reply {
    let shown = crate::text::canonical(&crate::text::tokenize(text));
    if shown.is_empty() {
        Reply::text("Working…")
    } else if shown.chars().count() > crate::text::ONE_LINE_MAX {
        Reply::text("Working on your command…")
    } else {
        Reply::text(crate::mrkdwn!("Working on {}…", CommandLine::new(&shown)))
    }
}
