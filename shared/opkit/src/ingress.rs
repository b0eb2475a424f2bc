//! The ack path: verify, parse, enqueue, answer — within Slack's 3 seconds.
//!
//! [`Ingress::handle`] is the whole HTTP behaviour of the three Slack routes,
//! independent of the server around it: `opkit serve` (axum) and the ingress
//! Lambda (API Gateway) both translate to and from it. It does no store read and
//! no Slack call: one enqueue, then the answer.
//!
//! | request | answer |
//! |---|---|
//! | body over 64 KiB | 413, nothing queued |
//! | missing, stale or wrong signature | 401, nothing queued |
//! | team not in `OPKIT_TEAM_IDS` | 403, nothing queued |
//! | malformed payload | 400, nothing queued |
//! | `ssl_check=1` | 200, empty |
//! | `url_verification` | 200, the challenge |
//! | slash command | 200, ephemeral "Working on …"; one job queued |
//! | slash command, queue down | 200, ephemeral "could not queue"; logged |
//! | mention or direct message | 200, empty; one job queued (id from `event_id`) |
//! | other events, bots' and own messages, edits | 200, empty; nothing queued |
//! | event, queue down | 503, so Slack retries (the retry is the same job) |
//! | click on an Opkit button (`block_actions`) | 200, empty; one job queued |
//! | other interactions, unknown action ids | 400, nothing queued |

use std::sync::Arc;

use serde_json::{Value, json};

use crate::clock::SharedClock;
use crate::config::{Config, ConfigError};
use crate::job::Job;
use crate::job::JobQueue;
use crate::slack::{
    CommandRequest, EventCallback, EventRequest, SlashCommand, Verifier, parse_interaction,
};

/// Largest body accepted, in bytes.
pub const MAX_BODY: usize = 64 * 1024;

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

/// The HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// JSON body, or `None` for an empty one.
    pub json: Option<Value>,
    /// Plain-text body when there is no JSON (errors).
    pub text: Option<String>,
}

impl Answer {
    fn ok_empty() -> Self {
        Self {
            status: 200,
            json: None,
            text: None,
        }
    }

    fn json(value: Value) -> Self {
        Self {
            status: 200,
            json: Some(value),
            text: None,
        }
    }

    fn error(status: u16, message: impl Into<String>) -> Self {
        Self {
            status,
            json: None,
            text: Some(message.into()),
        }
    }

    /// The status as the `http` crate's type.
    pub fn status_code(&self) -> http::StatusCode {
        http::StatusCode::from_u16(self.status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The body as bytes and its content type.
    pub fn body(&self) -> (&'static str, String) {
        match (&self.json, &self.text) {
            (Some(json), _) => ("application/json", json.to_string()),
            (None, Some(text)) => ("text/plain; charset=utf-8", text.clone()),
            (None, None) => ("text/plain; charset=utf-8", String::new()),
        }
    }
}

/// The ingress: verifies and queues.
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
    /// (Socket Mode): they are not signed, so only the `accept_*` methods are
    /// usable; [`Ingress::handle`] refuses every request.
    pub fn trusted(config: &Config, clock: SharedClock, queue: Arc<dyn JobQueue>) -> Self {
        Self {
            verifier: None,
            config: config.clone(),
            clock,
            queue,
        }
    }

    /// Answers one request to one of the Slack routes.
    pub async fn handle(&self, route: Route, request: SlackRequest<'_>) -> Answer {
        if request.body.len() > MAX_BODY {
            tracing::warn!(size = request.body.len(), "refused: body too large");
            return Answer::error(413, format!("request body is larger than {MAX_BODY} bytes"));
        }
        let Some(verifier) = &self.verifier else {
            return Answer::error(401, "this ingress accepts no HTTP requests");
        };
        if let Err(e) = verifier.verify(request.timestamp, request.signature, request.body) {
            tracing::warn!(error = %e, "refused: signature");
            return Answer::error(401, e.to_string());
        }
        match route {
            Route::Commands => match CommandRequest::parse(request.body) {
                Ok(CommandRequest::SslCheck) => Answer::ok_empty(),
                Ok(CommandRequest::Command(cmd)) => self.accept_command(&cmd).await,
                Err(e) => {
                    tracing::warn!(error = %e, "refused: malformed slash command");
                    Answer::error(400, e.to_string())
                }
            },
            Route::Events => match EventRequest::parse(request.body) {
                Ok(EventRequest::UrlVerification { challenge }) => {
                    Answer::json(json!({ "challenge": challenge }))
                }
                Ok(EventRequest::AppRateLimited { .. }) => Answer::ok_empty(),
                Ok(EventRequest::EventCallback(callback)) => self.accept_event(&callback).await,
                Err(e) => Answer::error(400, e.to_string()),
            },
            Route::Interactions => match parse_interaction(request.body) {
                Ok(payload) => self.accept_interaction(&payload).await,
                Err(e) => Answer::error(400, e.to_string()),
            },
        }
    }

    /// Queues a verified interaction if it is a click on one of Opkit's buttons;
    /// anything else is refused (400) and nothing is queued.
    pub async fn accept_interaction(&self, payload: &serde_json::Value) -> Answer {
        let job = match Job::from_interaction(payload, self.clock.now()) {
            Ok(job) => job,
            Err(e) => {
                tracing::warn!(error = %e, "refused: interaction");
                return Answer::error(400, e.to_string());
            }
        };
        let team = job
            .caller
            .team
            .as_ref()
            .map(|t| t.as_str().to_string())
            .unwrap_or_default();
        let enterprise = payload.pointer("/enterprise/id").and_then(|v| v.as_str());
        if let Some(refusal) = self.refuse_team(&team, enterprise) {
            return refusal;
        }
        match self.queue.enqueue(&job).await {
            Ok(()) => {
                tracing::info!(job_id = %job.id, user = %job.caller.user, "click queued");
                Answer::ok_empty()
            }
            Err(e) => {
                tracing::error!(job_id = %job.id, error = %e, "could not queue the click");
                Answer::json(json!({
                    "response_type": "ephemeral",
                    "replace_original": false,
                    "text": "Sorry, I could not take that click; please try again in a moment.",
                }))
            }
        }
    }

    fn refuse_team(&self, team: &str, enterprise: Option<&str>) -> Option<Answer> {
        if self.config.team_allowed(Some(team), enterprise) {
            return None;
        }
        tracing::warn!(team, enterprise, "refused: team not allowed");
        Some(Answer::error(
            403,
            format!("team {team} is not allowed to use this bot"),
        ))
    }

    /// Queues a verified slash command; the answer is the ephemeral ack.
    pub async fn accept_command(&self, cmd: &SlashCommand) -> Answer {
        if let Some(refusal) = self.refuse_team(&cmd.team_id, cmd.enterprise_id.as_deref()) {
            return refusal;
        }
        let job = match Job::from_slash_command(cmd, self.clock.now()) {
            Ok(job) => job,
            Err(e) => return Answer::error(400, e.to_string()),
        };
        match self.queue.enqueue(&job).await {
            Ok(()) => {
                tracing::info!(job_id = %job.id, user = %job.caller.user, "queued");
                let shown = if cmd.text.trim().is_empty() {
                    String::new()
                } else {
                    format!(" on `{}`", cmd.text.trim())
                };
                Answer::json(json!({
                    "response_type": "ephemeral",
                    "text": format!("Working{shown}…"),
                }))
            }
            Err(e) => {
                tracing::error!(job_id = %job.id, error = %e, "could not queue the command");
                Answer::json(json!({
                    "response_type": "ephemeral",
                    "text": "Sorry, I could not queue your command; please try again in a moment.",
                }))
            }
        }
    }

    /// Queues a verified event if it is a message for the bot.
    pub async fn accept_event(&self, callback: &EventCallback) -> Answer {
        if let Some(refusal) = self.refuse_team(&callback.team_id, None) {
            return refusal;
        }
        let message = match callback.chat_message() {
            Ok(Some(message)) => message,
            Ok(None) => {
                tracing::debug!(event_id = %callback.event_id, kind = ?callback.event_type(), "event ignored");
                return Answer::ok_empty();
            }
            Err(e) => return Answer::error(400, e.to_string()),
        };
        let job = match Job::from_chat_message(callback, &message, self.clock.now()) {
            Ok(job) => job,
            Err(e) => return Answer::error(400, e.to_string()),
        };
        match self.queue.enqueue(&job).await {
            Ok(()) => {
                tracing::info!(job_id = %job.id, event_id = %callback.event_id, "queued");
                Answer::ok_empty()
            }
            Err(e) => {
                // Slack retries failed event deliveries; the retry is the same job.
                tracing::error!(job_id = %job.id, error = %e, "could not queue the event");
                Answer::error(503, "could not queue the event; retry")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_found_with_or_without_a_stage() {
        assert_eq!(Route::from_path("/slack/commands"), Some(Route::Commands));
        assert_eq!(Route::from_path("/prod/slack/events/"), Some(Route::Events));
        assert_eq!(
            Route::from_path("/slack/interactions"),
            Some(Route::Interactions)
        );
        assert_eq!(Route::from_path("/slack"), None);
        assert_eq!(Route::from_path("/healthz"), None);
    }
}
