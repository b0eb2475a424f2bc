//! `opkit serve --socket-mode`: Slack's Socket Mode, for a real workspace with no
//! public URL and no AWS.
//!
//! The bot calls `apps.connections.open` with the app-level token
//! (`SLACK_APP_TOKEN`), opens the WebSocket it is given, and receives there, in
//! envelopes, what Slack would otherwise POST to the three routes. Each payload
//! goes through the same [`Ingress`] `accept_*` methods as `opkit serve` — unsigned,
//! because the connection itself is authenticated — so commands are queued, run
//! and answered exactly as over HTTP.
//!
//! | frame from Slack | what opkit does | sent back |
//! |---|---|---|
//! | `hello` | the connection works: the backoff is reset | nothing |
//! | `disconnect`, reason `warning` or `refresh_requested` (or any other) | opens a new connection at once | nothing; the old socket is closed |
//! | `disconnect`, reason `link_disabled` | stops with an error: Socket Mode was turned off for the app | nothing |
//! | `slash_commands` | `accept_command`: one job queued | `{"envelope_id", "payload": <the ephemeral "Working…" ack>}` |
//! | `slash_commands`, refused (team, malformed) | logged, nothing queued | `{"envelope_id", "payload": <ephemeral error>}` |
//! | `events_api` | `accept_event`: a job for a mention or a DM, nothing else | `{"envelope_id"}` |
//! | `events_api`, queue down | logged | nothing, so Slack redelivers it (the retry is the same job) |
//! | `interactive` | `accept_interaction` | `{"envelope_id"}` (plus its JSON answer, if any) |
//! | unknown type, or a payload that does not parse | logged, nothing queued | `{"envelope_id"}`, so Slack stops resending it |
//! | not JSON, or no `envelope_id` | logged | nothing: there is nothing to ack |
//! | socket closed, failed, or silent for 90 s | reconnects after 1 s, doubling to 30 s while it keeps failing | |
//!
//! `payload` is only sent back when the envelope says `accepts_response_payload`.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use opkit::clock::SystemClock;
use opkit::config::Config;
use opkit::engine::bot::Bot;
use opkit::ingress::{Answer, Ingress, MAX_BODY};
use opkit::slack::web::{AppToken, open_socket_connection};
use opkit::slack::{EventRequest, SlashCommand, WebApiError};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

/// How long the WebSocket handshake may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the bot pings Slack, to notice a connection that died silently.
const PING_EVERY: Duration = Duration::from_secs(30);
/// A connection that has sent nothing (not even a pong) for this long is dead.
const SILENCE_LIMIT: Duration = Duration::from_secs(90);
/// The first wait before reconnecting after a failure; it doubles per failure.
const BACKOFF_BASE: Duration = Duration::from_secs(1);
/// The longest wait before reconnecting.
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Largest frame handled: the HTTP routes' body limit plus room for the envelope.
const MAX_FRAME: usize = MAX_BODY + 1024;
/// Slack errors from `apps.connections.open` that trying again later may cure;
/// any other refusal (`invalid_auth`, `not_allowed_token_type`, ...) will not.
const TRANSIENT_SLACK_ERRORS: [&str; 5] = [
    "ratelimited",
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
];

type Socket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// Connects to Slack and handles envelopes until interrupted, reconnecting as
/// needed. Needs `SLACK_APP_TOKEN`; with `sqs`, accepted commands go to
/// OPKIT_QUEUE_URL, otherwise an in-process worker runs them.
pub async fn run(
    config: Config,
    bot: Bot,
    sqs: Option<aws_config::SdkConfig>,
) -> Result<(), String> {
    let token = config
        .require_app_token()
        .map_err(|e| e.to_string())?
        .clone();
    if config.bot_token.is_none() {
        tracing::warn!(
            "SLACK_BOT_TOKEN is not set: slash commands are answered, mentions and DMs are not"
        );
    }
    let queue = crate::serve::job_queue(&config, bot, sqs.as_ref())?;
    let ingress = Ingress::trusted(&config, Arc::new(SystemClock), queue);
    let tls = tls_connector()?;
    let (stop, mut stopped) = watch::channel(false);
    tokio::spawn(async move {
        match tokio::signal::ctrl_c().await {
            Ok(()) => drop(stop.send(true)),
            Err(e) => {
                // Keep the sender: dropping it would read as a request to stop.
                tracing::warn!(error = %e, "cannot listen for Ctrl-C");
                std::future::pending::<()>().await;
            }
        }
    });
    let connector = Connect {
        http: reqwest::Client::new(),
        api_url: &config.slack_api_url,
        token: &token,
        tls,
    };

    let mut backoff = Backoff::default();
    let mut announced = false;
    loop {
        let delay = backoff.delay();
        if !delay.is_zero() {
            tracing::info!(
                delay_ms = delay.as_millis() as u64,
                "waiting before reconnecting"
            );
        }
        let attempt = async {
            tokio::time::sleep(delay).await;
            connector.open().await
        };
        let socket = tokio::select! {
            attempt = attempt => match attempt {
                Ok(socket) => socket,
                Err(Failure::Fatal(message)) => return Err(message),
                Err(Failure::Retry(why)) => {
                    tracing::warn!(why, "cannot open a Socket Mode connection; will retry");
                    backoff.failed();
                    continue;
                }
            },
            _ = stopped.changed() => return Ok(()),
        };
        let mut session = Session {
            socket,
            ingress: &ingress,
            hello_seen: false,
            announced: &mut announced,
        };
        match session.run(&mut stopped).await {
            SessionEnd::Refresh(reason) => {
                tracing::info!(reason, "Slack asked for a new connection; reconnecting");
                backoff.reset();
            }
            SessionEnd::LinkDisabled => {
                return Err(
                    "Slack disabled this app's Socket Mode connection (link_disabled); \
                     turn Socket Mode on in the app's settings and start again"
                        .to_owned(),
                );
            }
            SessionEnd::Lost { hello_seen, why } => {
                tracing::warn!(why, "Socket Mode connection lost; reconnecting");
                if hello_seen {
                    backoff.reset();
                }
                backoff.failed();
            }
            SessionEnd::Shutdown => return Ok(()),
        }
    }
}

/// What opens a connection: `apps.connections.open`, then the WebSocket handshake.
struct Connect<'a> {
    http: reqwest::Client,
    api_url: &'a str,
    token: &'a AppToken,
    tls: Connector,
}

/// Why a connection could not be opened.
enum Failure {
    /// Trying again will not help (the token was refused): stop with this message.
    Fatal(String),
    /// Worth another try after a backoff.
    Retry(String),
}

impl Connect<'_> {
    async fn open(&self) -> Result<Socket, Failure> {
        let url = match open_socket_connection(&self.http, self.api_url, self.token).await {
            Ok(url) => url,
            Err(e) if is_transient(&e) => return Err(Failure::Retry(e.to_string())),
            Err(e) => {
                return Err(Failure::Fatal(format!(
                    "cannot open a Socket Mode connection: {e}"
                )));
            }
        };
        let shown = without_query(&url);
        let handshake = tokio_tungstenite::connect_async_tls_with_config(
            url.as_str(),
            None,
            true,
            Some(self.tls.clone()),
        );
        match tokio::time::timeout(CONNECT_TIMEOUT, handshake).await {
            Ok(Ok((socket, _))) => {
                tracing::info!(url = shown, "Socket Mode connection open");
                Ok(socket)
            }
            Ok(Err(e)) => Err(Failure::Retry(format!(
                "the WebSocket handshake with {shown} failed: {e}"
            ))),
            Err(_) => Err(Failure::Retry(format!(
                "the WebSocket handshake with {shown} timed out"
            ))),
        }
    }
}

/// Whether another `apps.connections.open` may succeed later.
fn is_transient(error: &WebApiError) -> bool {
    match error {
        WebApiError::Slack { error, .. } => TRANSIENT_SLACK_ERRORS.contains(&error.as_str()),
        WebApiError::Http { .. } | WebApiError::InvalidResponse { .. } => true,
    }
}

/// TLS for `wss://`: rustls with the same provider and platform verifier as the
/// HTTP client, chosen explicitly so that no process-wide default is needed.
fn tls_connector() -> Result<Connector, String> {
    use rustls_platform_verifier::BuilderVerifierExt;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|builder| builder.with_platform_verifier())
        .map_err(|e| format!("cannot set up TLS for Socket Mode: {e}"))?
        .with_no_client_auth();
    Ok(Connector::Rustls(Arc::new(config)))
}

/// The URL without its query: Slack's carries a connection ticket.
fn without_query(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}

/// Waits between connection attempts: none after a working connection was
/// refreshed, then 1 s, 2 s, 4 s ... up to 30 s while attempts keep failing.
#[derive(Debug, Default)]
struct Backoff {
    failures: u32,
}

impl Backoff {
    fn delay(&self) -> Duration {
        match self.failures {
            0 => Duration::ZERO,
            n => BACKOFF_BASE
                .saturating_mul(1 << (n - 1).min(16))
                .min(BACKOFF_MAX),
        }
    }

    fn failed(&mut self) {
        self.failures = self.failures.saturating_add(1);
    }

    fn reset(&mut self) {
        self.failures = 0;
    }
}

/// Why a connection ended.
#[derive(Debug, PartialEq)]
enum SessionEnd {
    /// Slack asked for a new connection (`disconnect`, with this reason).
    Refresh(String),
    /// Slack turned Socket Mode off for the app.
    LinkDisabled,
    /// The socket closed, failed or went silent.
    Lost {
        /// Whether Slack said `hello` on it first (the connection had worked).
        hello_seen: bool,
        /// What happened.
        why: String,
    },
    /// The process was interrupted.
    Shutdown,
}

/// One WebSocket connection.
struct Session<'a> {
    socket: Socket,
    ingress: &'a Ingress,
    hello_seen: bool,
    /// Whether "connected" was printed already (once per process).
    announced: &'a mut bool,
}

impl Session<'_> {
    async fn run(&mut self, stopped: &mut watch::Receiver<bool>) -> SessionEnd {
        let mut ping = tokio::time::interval_at(Instant::now() + PING_EVERY, PING_EVERY);
        let mut last_heard = Instant::now();
        loop {
            tokio::select! {
                _ = stopped.changed() => {
                    let _ = self.socket.close(None).await;
                    return SessionEnd::Shutdown;
                }
                _ = ping.tick() => {
                    if last_heard.elapsed() > SILENCE_LIMIT {
                        return self.lost(format!("nothing heard for {} s", SILENCE_LIMIT.as_secs()));
                    }
                    if let Err(e) = self.socket.send(Message::Ping(Default::default())).await {
                        return self.lost(format!("ping failed: {e}"));
                    }
                }
                message = self.socket.next() => {
                    last_heard = Instant::now();
                    let text = match message {
                        None => return self.lost("the socket closed".to_owned()),
                        Some(Err(e)) => return self.lost(format!("the socket failed: {e}")),
                        Some(Ok(Message::Close(frame))) => {
                            let why = frame.map_or_else(String::new, |f| format!(": {} {}", f.code, f.reason));
                            return self.lost(format!("Slack closed the socket{why}"));
                        }
                        // tungstenite answers pings itself.
                        Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                        Some(Ok(Message::Binary(bytes))) => {
                            tracing::warn!(size = bytes.len(), "ignored a binary frame");
                            continue;
                        }
                        Some(Ok(Message::Text(text))) => text,
                    };
                    if let Some(end) = self.on_text(text.as_str()).await {
                        return end;
                    }
                }
            }
        }
    }

    fn lost(&self, why: String) -> SessionEnd {
        SessionEnd::Lost {
            hello_seen: self.hello_seen,
            why,
        }
    }

    /// Handles one text frame; `Some` ends the session.
    async fn on_text(&mut self, text: &str) -> Option<SessionEnd> {
        match parse_frame(text) {
            Frame::Hello { connections } => {
                self.hello_seen = true;
                tracing::info!(connections, "Slack said hello: ready for events");
                if !*self.announced {
                    *self.announced = true;
                    // Scripts can wait for this line, as for `listening on` over HTTP;
                    // a reader that went away is no reason to stop.
                    let _ = writeln!(std::io::stdout(), "connected to Slack (Socket Mode)");
                }
                None
            }
            Frame::Disconnect { reason } => {
                let _ = self.socket.close(None).await;
                Some(if reason == "link_disabled" {
                    SessionEnd::LinkDisabled
                } else {
                    SessionEnd::Refresh(reason)
                })
            }
            Frame::Envelope(envelope) => {
                if envelope.retry_attempt > 0 {
                    tracing::info!(
                        envelope_id = %envelope.id,
                        retry_attempt = envelope.retry_attempt,
                        retry_reason = %envelope.retry_reason,
                        "Slack redelivered an envelope"
                    );
                }
                let answer = route(self.ingress, &envelope).await;
                match ack(&envelope, &answer) {
                    Some(ack) => self.send(ack).await,
                    None => {
                        tracing::warn!(
                            envelope_id = %envelope.id,
                            status = answer.status,
                            "not acknowledged, so that Slack delivers it again"
                        );
                        None
                    }
                }
            }
            Frame::Unusable {
                envelope_id,
                reason,
            } => {
                tracing::warn!(envelope_id, reason, "ignored a frame from Slack");
                match envelope_id {
                    Some(id) => self.send(json!({ "envelope_id": id })).await,
                    None => None,
                }
            }
        }
    }

    async fn send(&mut self, ack: Value) -> Option<SessionEnd> {
        match self.socket.send(Message::text(ack.to_string())).await {
            Ok(()) => None,
            Err(e) => Some(self.lost(format!("could not send an ack: {e}"))),
        }
    }
}

/// A text frame from Slack.
#[derive(Debug, PartialEq)]
enum Frame {
    /// The connection is ready.
    Hello {
        /// How many connections the app has open, as Slack counts them.
        connections: Option<u64>,
    },
    /// Slack wants this connection replaced (or ended, for `link_disabled`).
    Disconnect {
        /// `warning`, `refresh_requested`, `link_disabled`, ...
        reason: String,
    },
    /// Something to handle and acknowledge.
    Envelope(Envelope),
    /// Nothing to act on; acknowledged if it has an id, so Slack does not resend it.
    Unusable {
        /// The envelope's id, if it had one.
        envelope_id: Option<String>,
        /// What was wrong.
        reason: String,
    },
}

/// An envelope carrying a payload.
#[derive(Debug, PartialEq)]
struct Envelope {
    id: String,
    /// `slash_commands`, `events_api`, `interactive`, or a type opkit does not know.
    kind: String,
    payload: Value,
    accepts_response_payload: bool,
    /// How often Slack tried this envelope before (0 the first time).
    retry_attempt: u64,
    retry_reason: String,
}

fn parse_frame(text: &str) -> Frame {
    let unusable = |envelope_id: Option<String>, reason: String| Frame::Unusable {
        envelope_id,
        reason,
    };
    let value: Value = match serde_json::from_str(text) {
        Ok(value) => value,
        Err(e) => return unusable(None, format!("not JSON: {e}")),
    };
    let id = value
        .get("envelope_id")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
        .map(str::to_owned);
    if text.len() > MAX_FRAME {
        return unusable(id, format!("larger than {MAX_FRAME} bytes"));
    }
    let field = |name: &str| value.get(name).and_then(Value::as_str);
    match field("type") {
        Some("hello") => Frame::Hello {
            connections: value.get("num_connections").and_then(Value::as_u64),
        },
        Some("disconnect") => Frame::Disconnect {
            reason: field("reason").unwrap_or("unknown").to_owned(),
        },
        Some(kind) => match id {
            Some(id) => Frame::Envelope(Envelope {
                id,
                kind: kind.to_owned(),
                payload: value.get("payload").cloned().unwrap_or(Value::Null),
                accepts_response_payload: value
                    .get("accepts_response_payload")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                retry_attempt: value
                    .get("retry_attempt")
                    .and_then(Value::as_u64)
                    .unwrap_or(0),
                retry_reason: field("retry_reason").unwrap_or_default().to_owned(),
            }),
            None => unusable(None, format!("a `{kind}` frame without an envelope_id")),
        },
        None => unusable(id, "no `type`".to_owned()),
    }
}

/// Hands an envelope's payload to the ingress, as the matching HTTP route would.
async fn route(ingress: &Ingress, envelope: &Envelope) -> Answer {
    let refused = |what: &str, reason: String| {
        tracing::warn!(envelope_id = %envelope.id, what, reason, "refused: malformed payload");
        Answer {
            status: 400,
            json: None,
            text: Some(reason),
        }
    };
    match envelope.kind.as_str() {
        "slash_commands" => match slash_command(&envelope.payload) {
            Ok(command) => ingress.accept_command(&command).await,
            Err(reason) => refused("slash command", reason),
        },
        "events_api" => match event_request(&envelope.payload) {
            Ok(EventRequest::EventCallback(callback)) => ingress.accept_event(&callback).await,
            Ok(EventRequest::AppRateLimited { team_id, .. }) => {
                tracing::warn!(team_id, "Slack is dropping events: rate limited");
                Answer {
                    status: 200,
                    json: None,
                    text: None,
                }
            }
            Ok(EventRequest::UrlVerification { .. }) => refused(
                "event",
                "url_verification has no use over Socket Mode".into(),
            ),
            Err(reason) => refused("event", reason),
        },
        "interactive" if envelope.payload.is_object() => {
            ingress.accept_interaction(&envelope.payload).await
        }
        "interactive" => refused("interaction", "the payload is not a JSON object".into()),
        other => refused(other, format!("unsupported envelope type `{other}`")),
    }
}

/// A `slash_commands` payload holds the same fields as the HTTP form, as JSON
/// strings (`"is_enterprise_install": "false"` included), so it is turned back
/// into a form and read by the very parser the HTTP route uses.
fn slash_command(payload: &Value) -> Result<SlashCommand, String> {
    let Value::Object(fields) = payload else {
        return Err("the payload is not a JSON object".to_owned());
    };
    let mut pairs = Vec::with_capacity(fields.len());
    for (name, value) in fields {
        let value = match value {
            Value::String(s) => s.clone(),
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => n.to_string(),
            Value::Null => continue,
            Value::Array(_) | Value::Object(_) => {
                return Err(format!("the field `{name}` is not a string"));
            }
        };
        pairs.push((name.as_str(), value));
    }
    let form = serde_urlencoded::to_string(&pairs).map_err(|e| e.to_string())?;
    SlashCommand::parse(form.as_bytes()).map_err(|e| e.to_string())
}

/// An `events_api` payload is the Events API body, parsed as the HTTP route does.
fn event_request(payload: &Value) -> Result<EventRequest, String> {
    let body = serde_json::to_vec(payload).map_err(|e| e.to_string())?;
    EventRequest::parse(&body).map_err(|e| e.to_string())
}

/// The acknowledgement for `envelope` given the ingress's `answer`, or `None` to
/// leave it unacknowledged so that Slack delivers it again (the ingress answers
/// 5xx only when a retry is wanted: the queue was down).
fn ack(envelope: &Envelope, answer: &Answer) -> Option<Value> {
    if answer.status >= 500 {
        return None;
    }
    let mut ack = json!({ "envelope_id": envelope.id });
    if envelope.accepts_response_payload {
        let payload = match (&answer.json, &answer.text) {
            (Some(json), _) if answer.status == 200 => Some(json.clone()),
            // Over HTTP the user sees the refusal's text; show it here too.
            (_, Some(text)) if envelope.kind == "slash_commands" => Some(json!({
                "response_type": "ephemeral",
                "text": format!("Sorry, I cannot run that: {text}"),
            })),
            _ => None,
        };
        if let Some(payload) = payload {
            ack["payload"] = payload;
        }
    }
    Some(ack)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(kind: &str, accepts_response_payload: bool) -> Envelope {
        Envelope {
            id: "env-1".into(),
            kind: kind.into(),
            payload: json!({}),
            accepts_response_payload,
            retry_attempt: 0,
            retry_reason: String::new(),
        }
    }

    fn answer(status: u16, json: Option<Value>, text: Option<&str>) -> Answer {
        Answer {
            status,
            json,
            text: text.map(str::to_owned),
        }
    }

    #[test]
    fn hello_disconnect_and_envelopes_are_told_apart() {
        assert_eq!(
            parse_frame(r#"{"type":"hello","num_connections":2,"debug_info":{}}"#),
            Frame::Hello {
                connections: Some(2)
            }
        );
        assert_eq!(
            parse_frame(r#"{"type":"disconnect","reason":"refresh_requested"}"#),
            Frame::Disconnect {
                reason: "refresh_requested".into()
            }
        );
        let Frame::Envelope(envelope) = parse_frame(
            r#"{"envelope_id":"e1","type":"events_api","payload":{"a":1},"accepts_response_payload":false,"retry_attempt":2,"retry_reason":"timeout"}"#,
        ) else {
            panic!("expected an envelope");
        };
        assert_eq!(envelope.id, "e1");
        assert_eq!(envelope.kind, "events_api");
        assert_eq!(envelope.payload, json!({"a": 1}));
        assert_eq!(
            (envelope.retry_attempt, envelope.retry_reason.as_str()),
            (2, "timeout")
        );
    }

    #[test]
    fn frames_that_cannot_be_handled_keep_their_envelope_id_when_they_have_one() {
        assert!(matches!(
            parse_frame("{not json"),
            Frame::Unusable {
                envelope_id: None,
                ..
            }
        ));
        assert!(matches!(
            parse_frame(r#"{"type":"slash_commands","payload":{}}"#),
            Frame::Unusable {
                envelope_id: None,
                ..
            }
        ));
        assert_eq!(
            parse_frame(r#"{"envelope_id":"e2","payload":{}}"#),
            Frame::Unusable {
                envelope_id: Some("e2".into()),
                reason: "no `type`".into()
            }
        );
        let huge = json!({"envelope_id": "e3", "type": "events_api", "payload": {"pad": "x".repeat(MAX_FRAME)}});
        assert!(matches!(
            parse_frame(&huge.to_string()),
            Frame::Unusable { envelope_id: Some(id), .. } if id == "e3"
        ));
    }

    #[test]
    fn a_slash_command_ack_carries_the_answer_when_slack_accepts_one() {
        // GIVEN the ingress's "Working…" answer to a slash command
        let working = json!({"response_type": "ephemeral", "text": "Working…"});
        let accepted = answer(200, Some(working.clone()), None);
        // THEN the ack carries it only if the envelope accepts a response payload
        assert_eq!(
            ack(&envelope("slash_commands", true), &accepted),
            Some(json!({"envelope_id": "env-1", "payload": working}))
        );
        assert_eq!(
            ack(&envelope("slash_commands", false), &accepted),
            Some(json!({"envelope_id": "env-1"}))
        );
    }

    #[test]
    fn refusals_are_acked_and_shown_to_the_user_only_for_commands() {
        let refused = answer(403, None, Some("team T9 is not allowed to use this bot"));
        assert_eq!(
            ack(&envelope("slash_commands", true), &refused),
            Some(json!({"envelope_id": "env-1", "payload": {
                "response_type": "ephemeral",
                "text": "Sorry, I cannot run that: team T9 is not allowed to use this bot",
            }}))
        );
        assert_eq!(
            ack(&envelope("interactive", true), &refused),
            Some(json!({"envelope_id": "env-1"}))
        );
        assert_eq!(
            ack(&envelope("events_api", false), &answer(200, None, None)),
            Some(json!({"envelope_id": "env-1"}))
        );
    }

    #[test]
    fn a_retry_wanted_by_the_ingress_withholds_the_ack() {
        let queue_down = answer(503, None, Some("could not queue the event; retry"));
        assert_eq!(ack(&envelope("events_api", false), &queue_down), None);
    }

    #[test]
    fn slash_command_payloads_are_read_like_the_http_form() {
        // GIVEN a socket payload as Slack sends it: strings, even for booleans
        let payload = json!({
            "token": "t", "team_id": "T1", "team_domain": "d", "enterprise_id": "",
            "channel_id": "C1", "channel_name": "ops", "user_id": "U1", "user_name": "u",
            "command": "/opkit", "text": "queue join perf",
            "response_url": "https://hooks.slack.com/commands/1", "trigger_id": "1.2.3",
            "api_app_id": "A1", "is_enterprise_install": "false"
        });
        // WHEN it is read
        let command = slash_command(&payload).unwrap();
        // THEN it is the command the HTTP route would have seen
        assert_eq!(command.text, "queue join perf");
        assert_eq!(command.enterprise_id, None);
        assert_eq!(command.is_enterprise_install, Some(false));
        // AND missing fields or odd shapes are named
        let mut missing = payload.clone();
        missing.as_object_mut().unwrap().remove("user_id");
        assert!(slash_command(&missing).unwrap_err().contains("user_id"));
        assert!(
            slash_command(&json!({"text": ["a"]}))
                .unwrap_err()
                .contains("text")
        );
        assert!(slash_command(&json!("text=hi")).is_err());
    }

    #[test]
    fn backoff_is_immediate_after_a_refresh_then_doubles_to_a_cap() {
        let mut backoff = Backoff::default();
        assert_eq!(backoff.delay(), Duration::ZERO);
        let mut delays = Vec::new();
        for _ in 0..8 {
            backoff.failed();
            delays.push(backoff.delay().as_secs());
        }
        assert_eq!(delays, [1, 2, 4, 8, 16, 30, 30, 30]);
        backoff.reset();
        assert_eq!(backoff.delay(), Duration::ZERO);
    }

    #[test]
    fn only_transient_refusals_are_worth_another_connection_attempt() {
        let refused = |error: &str| WebApiError::Slack {
            method: "apps.connections.open",
            error: error.to_owned(),
        };
        assert!(is_transient(&refused("ratelimited")));
        assert!(!is_transient(&refused("invalid_auth")));
        assert!(!is_transient(&refused("not_allowed_token_type")));
    }

    #[test]
    fn logged_urls_lose_their_ticket() {
        assert_eq!(
            without_query("wss://wss-primary.slack.com/link/?ticket=secret&app_id=A1"),
            "wss://wss-primary.slack.com/link/"
        );
    }
}
