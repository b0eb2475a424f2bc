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

use std::sync::Arc;

use http::StatusCode;
use serde_json::{Value, json};

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

/// The answer to one request: a status and a body. [`Answer::into_http`] is the one
/// place it becomes HTTP; Socket Mode reads it to build its acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The HTTP status: 200 when Slack should consider the request handled.
    pub status: StatusCode,
    /// What is sent back.
    pub body: Body,
}

/// The body of an [`Answer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// No bytes.
    Empty,
    /// JSON (`application/json`): a message Slack shows the user, such as a slash
    /// command's ephemeral `{"response_type": "ephemeral", "text": "Working…"}`, or
    /// `{"challenge": …}` for `url_verification`.
    Json(Value),
    /// Plain text (`text/plain; charset=utf-8`): why a request was refused.
    Text(String),
}

impl Answer {
    /// 200 with an empty body: handled, nothing to show.
    pub fn empty() -> Self {
        Self {
            status: StatusCode::OK,
            body: Body::Empty,
        }
    }

    /// 200 with a JSON body.
    pub fn json(value: Value) -> Self {
        Self {
            status: StatusCode::OK,
            body: Body::Json(value),
        }
    }

    /// A refusal: `status` (4xx, or 5xx when Slack should retry) and why, as text.
    pub fn refuse(status: StatusCode, why: impl Into<String>) -> Self {
        Self {
            status,
            body: Body::Text(why.into()),
        }
    }

    /// The answer as an HTTP response: its status, a `Content-Type`, and the body's
    /// bytes (an empty body is sent as empty text). `opkit serve` and the ingress
    /// Lambda both send this.
    pub fn into_http(self) -> http::Response<String> {
        const TEXT: &str = "text/plain; charset=utf-8";
        let (content_type, body) = match self.body {
            Body::Empty => (TEXT, String::new()),
            Body::Json(json) => ("application/json", json.to_string()),
            Body::Text(text) => (TEXT, text),
        };
        let mut response = http::Response::new(body);
        *response.status_mut() = self.status;
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static(content_type),
        );
        response
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
                    format!(" on `{}`", cmd.text.trim())
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

    use std::sync::Mutex;

    use crate::BoxFuture;
    use crate::clock::ManualClock;
    use crate::job::{QueueError, Source};
    use crate::slack::{SigningSecret, sign};

    const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    const NOW: i64 = 1_800_000_000;

    /// Records what the ingress queues.
    #[derive(Default)]
    struct Recorded(Mutex<Vec<Job>>);

    impl JobQueue for Recorded {
        fn enqueue<'a>(&'a self, job: &'a Job) -> BoxFuture<'a, Result<(), QueueError>> {
            self.0.lock().unwrap().push(job.clone());
            Box::pin(std::future::ready(Ok(())))
        }
    }

    fn ingress(team_ids: &str) -> (Ingress, Arc<Recorded>) {
        ingress_with(&[("OPKIT_TEAM_IDS", team_ids)])
    }

    fn ingress_with(vars: &[(&str, &str)]) -> (Ingress, Arc<Recorded>) {
        let queue = Arc::new(Recorded::default());
        let config = Config::from_lookup(|name| match name {
            "SLACK_SIGNING_SECRET" => Some(SECRET.to_owned()),
            _ => vars
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string()),
        })
        .unwrap();
        let clock = Arc::new(ManualClock::at_unix(NOW));
        (Ingress::new(&config, clock, queue.clone()).unwrap(), queue)
    }

    /// Payloads in the shapes Slack sends (tests/fixtures/slack/README.md).
    const CONNECT_MENTION: &str = include_str!("../tests/fixtures/slack/connect_mention.json");
    const CONNECT_DM: &str = include_str!("../tests/fixtures/slack/connect_dm.json");
    const CONNECT_CLICK: &str = include_str!("../tests/fixtures/slack/connect_click.json");
    const GRID_MENTION: &str = include_str!("../tests/fixtures/slack/grid_mention.json");
    const GRID_DM: &str = include_str!("../tests/fixtures/slack/grid_dm.json");
    const GRID_COMMAND: &str = include_str!("../tests/fixtures/slack/grid_command.form");

    /// An interaction's JSON as the form Slack POSTs.
    fn form_of(payload: &str) -> String {
        serde_urlencoded::to_string([("payload", payload)]).unwrap()
    }

    fn queued(queue: &Recorded) -> usize {
        queue.0.lock().unwrap().len()
    }

    /// Collects the log lines written while it is the thread's subscriber.
    #[derive(Clone, Default)]
    struct Logs(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Logs {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
        type Writer = Logs;
        fn make_writer(&'a self) -> Logs {
            self.clone()
        }
    }

    impl Logs {
        fn capture(&self) -> tracing::subscriber::DefaultGuard {
            let subscriber = tracing_subscriber::fmt()
                .with_writer(self.clone())
                .with_ansi(false)
                .finish();
            tracing::subscriber::set_default(subscriber)
        }

        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    fn click_form(team: &str, action_id: &str) -> String {
        let payload = json!({
            "type": "block_actions",
            "user": {"id": "U0001", "username": "al", "team_id": team},
            "team": {"id": team, "domain": "example"},
            "channel": {"id": "C0001", "name": "ops"},
            "response_url": "https://hooks.slack.com/actions/T0001/1/abc",
            "trigger_id": "1.2.3",
            "actions": [{"action_id": action_id, "block_id": "b1", "type": "button",
                         "value": "p-1", "action_ts": "1795000001.000400"}]
        });
        serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap()
    }

    async fn post(ingress: &Ingress, route: Route, body: &str) -> Answer {
        let signature = sign(&SigningSecret::new(SECRET), NOW, body.as_bytes());
        let timestamp = NOW.to_string();
        let request = SlackRequest {
            timestamp: Some(&timestamp),
            signature: Some(&signature),
            body: body.as_bytes(),
        };
        ingress.handle(route, request).await
    }

    #[test]
    fn an_answer_becomes_http_in_one_place() {
        let cases = [
            (Answer::empty(), 200, "text/plain; charset=utf-8", ""),
            (
                Answer::json(json!({"challenge": "c"})),
                200,
                "application/json",
                r#"{"challenge":"c"}"#,
            ),
            (
                Answer::refuse(StatusCode::FORBIDDEN, "no"),
                403,
                "text/plain; charset=utf-8",
                "no",
            ),
        ];
        for (answer, status, content_type, body) in cases {
            let response = answer.into_http();
            assert_eq!(response.status().as_u16(), status);
            assert_eq!(response.headers()[http::header::CONTENT_TYPE], content_type);
            assert_eq!(response.body(), body);
        }
    }

    #[tokio::test]
    async fn a_signed_click_is_parsed_typed_and_queued() {
        // GIVEN a signed click on a confirm button
        let (ingress, queue) = ingress("");
        // WHEN it is posted to the interactions route
        let answer = post(
            &ingress,
            Route::Interactions,
            &click_form("T0001", "opkit:confirm"),
        )
        .await;
        // THEN it is acked with an empty 200 and one job is queued
        assert_eq!(answer, Answer::empty());
        let jobs = queue.0.lock().unwrap().clone();
        assert_eq!(jobs.len(), 1);
        assert!(matches!(
            &jobs[0].source,
            Source::Interaction { pending_id, .. } if pending_id == "p-1"
        ));
        assert_eq!(jobs[0].caller.team.as_ref().unwrap().as_str(), "T0001");
    }

    #[tokio::test]
    async fn clicks_that_are_not_opkits_or_not_clicks_are_refused() {
        let (ingress, queue) = ingress("");
        let unknown = post(&ingress, Route::Interactions, &click_form("T0001", "x:y")).await;
        assert_eq!(
            unknown,
            Answer::refuse(StatusCode::BAD_REQUEST, "unknown action `x:y`")
        );
        let shortcut = json!({"type": "shortcut", "user": {"id": "U0001"}});
        let body = serde_urlencoded::to_string([("payload", shortcut.to_string())]).unwrap();
        assert_eq!(
            post(&ingress, Route::Interactions, &body).await,
            Answer::refuse(
                StatusCode::BAD_REQUEST,
                "only button clicks (block_actions) are handled"
            )
        );
        let malformed = post(&ingress, Route::Interactions, "payload=%7B%7D").await;
        assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
        assert!(queue.0.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_team_not_allowed_is_refused_before_its_click_is_judged() {
        let (ingress, queue) = ingress("T0001");
        for action in ["opkit:confirm", "x:y"] {
            let answer = post(&ingress, Route::Interactions, &click_form("T0BAD", action)).await;
            assert_eq!(answer.status, StatusCode::FORBIDDEN, "{action}");
        }
        assert!(queue.0.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_member_of_another_organisation_is_not_answered_on_any_route() {
        // GIVEN the bot allowed for its workspace, and a Slack Connect user of
        // another organisation in a channel shared with it: the envelopes name
        // our workspace, the user's own team is theirs
        let (ingress, queue) = ingress("T0001");
        // WHEN they mention the bot, DM it, and click one of its buttons
        let mention = post(&ingress, Route::Events, CONNECT_MENTION).await;
        let dm = post(&ingress, Route::Events, CONNECT_DM).await;
        let click = post(&ingress, Route::Interactions, &form_of(CONNECT_CLICK)).await;
        // THEN the events are acked (200, so that Slack keeps the subscription) and
        // the click refused with the reason; nothing is queued
        assert_eq!(mention, Answer::empty());
        assert_eq!(dm, Answer::empty());
        assert_eq!(
            click,
            Answer::refuse(
                StatusCode::FORBIDDEN,
                "this bot answers only members of its own workspace; \
                 you are from another organisation (T0EXT)"
            )
        );
        assert_eq!(queued(&queue), 0);
    }

    #[tokio::test]
    async fn members_of_other_organisations_are_answered_when_allowed() {
        let (ingress, queue) = ingress_with(&[
            ("OPKIT_TEAM_IDS", "T0001"),
            ("OPKIT_ALLOW_EXTERNAL_USERS", "true"),
        ]);
        assert_eq!(
            post(&ingress, Route::Events, CONNECT_MENTION).await,
            Answer::empty()
        );
        assert_eq!(
            post(&ingress, Route::Events, CONNECT_DM).await,
            Answer::empty()
        );
        assert_eq!(
            post(&ingress, Route::Interactions, &form_of(CONNECT_CLICK)).await,
            Answer::empty()
        );
        assert_eq!(queued(&queue), 3);
    }

    #[tokio::test]
    async fn with_any_workspace_allowed_another_organisations_users_are_still_refused() {
        let (ingress, queue) = ingress("any");
        post(&ingress, Route::Events, CONNECT_MENTION).await;
        let click = post(&ingress, Route::Interactions, &form_of(CONNECT_CLICK)).await;
        assert_eq!(click.status, StatusCode::FORBIDDEN);
        assert_eq!(queued(&queue), 0);
    }

    #[tokio::test]
    async fn an_enterprise_grid_organisation_on_the_list_is_answered_on_every_route() {
        // GIVEN the bot allowed for an Enterprise Grid organisation, by its E… id
        let (grid, queue) = ingress("E0001");
        // WHEN one of its members runs a slash command, mentions the bot and DMs it
        let command = post(&grid, Route::Commands, GRID_COMMAND).await;
        let mention = post(&grid, Route::Events, GRID_MENTION).await;
        let dm = post(&grid, Route::Events, GRID_DM).await;
        // THEN all three are accepted and queued, as the same person on any route
        assert_eq!(command.status, StatusCode::OK);
        assert!(matches!(command.body, Body::Json(_)), "{command:?}");
        assert_eq!((mention, dm), (Answer::empty(), Answer::empty()));
        assert_eq!(queued(&queue), 3);
        // AND another organisation's workspace is not
        let (other, queue) = ingress("E0002");
        assert_eq!(
            post(&other, Route::Commands, GRID_COMMAND).await.status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            post(&other, Route::Events, GRID_MENTION).await,
            Answer::empty()
        );
        assert_eq!(queued(&queue), 0);
    }

    #[tokio::test]
    async fn a_click_past_64_kib_is_taken_and_one_past_the_limit_is_not() {
        // GIVEN a click on a button in a long message (Slack sends the whole
        // message, and the form encoding of its JSON is larger still)
        let (ingress, queue) = ingress("T0001");
        let mut click: Value = serde_json::from_str(CONNECT_CLICK).unwrap();
        click["user"]["team_id"] = json!("T0001");
        let section = json!({"type": "section", "text": {"type": "mrkdwn",
            "text": "`i-0123` stopped → running; ".repeat(100)}});
        click["message"]["blocks"] = json!(vec![section; 40]);
        let body = form_of(&click.to_string());
        assert!(
            body.len() > 64 * 1024 && body.len() <= MAX_BODY,
            "{}",
            body.len()
        );
        // THEN it is queued
        assert_eq!(
            post(&ingress, Route::Interactions, &body).await,
            Answer::empty()
        );
        // AND a body past the limit is refused unread
        let huge = format!("{body}&pad={}", "x".repeat(MAX_BODY));
        let answer = post(&ingress, Route::Interactions, &huge).await;
        assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(queued(&queue), 1);
    }

    #[tokio::test]
    async fn a_refused_event_is_acked_with_200_logged_and_not_run() {
        // GIVEN an event from a workspace that is not on the list
        let logs = Logs::default();
        let _guard = logs.capture();
        let (ingress, queue) = ingress("T0002");
        // WHEN it arrives
        let answer = post(&ingress, Route::Events, GRID_MENTION).await;
        // THEN Slack gets a 200 (a non-200 would be retried, and many would turn the
        // subscription off), nothing is queued, and the log says why
        assert_eq!(answer, Answer::empty());
        assert_eq!(queued(&queue), 0);
        let logged = logs.text();
        assert!(
            logged.contains("refused an event")
                && logged.contains("Ev0GRID1")
                && logged.contains("workspace T0001 (E0001) is not allowed"),
            "{logged}"
        );
    }

    #[tokio::test]
    async fn the_trusted_way_in_makes_the_same_decision_without_a_signature() {
        // GIVEN an ingress for Socket Mode, which has no signing secret
        let queue = Arc::new(Recorded::default());
        let config =
            Config::from_lookup(|name| (name == "OPKIT_TEAM_IDS").then(|| "T0001".to_owned()))
                .unwrap();
        let ingress = Ingress::trusted(&config, Arc::new(ManualClock::at_unix(NOW)), queue.clone());
        // THEN HTTP requests are refused
        let request = SlackRequest {
            timestamp: None,
            signature: None,
            body: b"payload=%7B%7D",
        };
        assert_eq!(
            ingress.handle(Route::Interactions, request).await.status,
            StatusCode::UNAUTHORIZED
        );
        // AND parsed payloads are decided as over HTTP: the team check, then the job
        let click =
            |team: &str| Interaction::parse(click_form(team, "opkit:deny").as_bytes()).unwrap();
        let refused = ingress.accept(Inbound::Interaction(click("T0BAD"))).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
        let accepted = ingress.accept(Inbound::Interaction(click("T0001"))).await;
        assert_eq!(accepted, Answer::empty());
        assert_eq!(queue.0.lock().unwrap().len(), 1);
    }
}
