//! `opkit serve --socket-mode`: Slack's Socket Mode, for a real workspace with no
//! public URL and no AWS.
//!
//! The bot calls `apps.connections.open` with the app-level token
//! (`SLACK_APP_TOKEN`), opens the WebSocket it is given, and receives there, in
//! envelopes, what Slack would otherwise POST to the three routes. Each payload is
//! parsed from its JSON into Opkit's types ([`protocol`]) and handed to
//! [`Ingress::accept`], the decision the HTTP routes make after checking the
//! signature — unsigned here, because the connection itself is authenticated — so
//! commands are queued, run and answered exactly as over HTTP. Opening the
//! connection and reconnecting are in [`connection`].
//!
//! | frame from Slack | what opkit does | sent back |
//! |---|---|---|
//! | `hello` | the connection works: the backoff is reset | nothing |
//! | `disconnect`, reason `warning` or `refresh_requested` (or any other) | opens a new connection at once | nothing; the old socket is closed |
//! | `disconnect`, reason `link_disabled` | stops with an error: Socket Mode was turned off for the app | nothing |
//! | `slash_commands` | `accept`: one job queued | `{"envelope_id", "payload": <the ephemeral "Working…" ack>}` |
//! | `slash_commands`, caller not admitted, or text too long | logged, nothing queued | `{"envelope_id", "payload": <ephemeral refusal saying why>}` |
//! | `slash_commands`, malformed | logged, nothing queued | `{"envelope_id", "payload": <ephemeral error>}` |
//! | `events_api` | `accept`: a job for a mention or a DM, nothing else | `{"envelope_id"}` |
//! | `events_api` without `team_id` (organisation-level), `app_uninstalled`, `tokens_revoked` | nothing queued (an uninstall or a revocation logged at warn) | `{"envelope_id"}` |
//! | `events_api`, caller not admitted (team not allowed, user of another organisation) | logged, nothing queued | `{"envelope_id"}`, so Slack does not resend it |
//! | `events_api`, queue down | logged | nothing, so Slack redelivers it (the retry is the same job) |
//! | `events_api`, the bot busy or its user's places taken | logged, nothing queued; the user is told in a message only they see | `{"envelope_id"}`, so Slack does not resend it |
//! | `interactive`, a click on an Opkit button | `accept`: one job queued | `{"envelope_id"}` (plus its JSON answer, if any) |
//! | `interactive` of any other kind (`shortcut`, `message_action`, `view_submission`, `view_closed`, `block_suggestion`, another app's or a stale `block_actions`) | logged at debug, nothing queued | `{"envelope_id"}` |
//! | unknown type, or a payload that does not parse | logged, nothing queued | `{"envelope_id"}`, so Slack stops resending it |
//! | an envelope larger than its route's limit over HTTP (`Route::max_body`, plus 4 KiB for the envelope) | logged, nothing queued | `{"envelope_id"}`, so Slack stops resending it |
//! | not JSON, or no `envelope_id` | logged | nothing: there is nothing to ack |
//! | a message or frame larger than the largest route's limit (4 MiB, plus 4 KiB) | refused from the frame's header, before its payload is read; logged | nothing: the connection is dropped and a new one opened |
//! | socket closed, failed, or silent for 90 s | reconnects after 1 s, doubling to 30 s while it keeps failing | |
//! | (the process) SIGINT or SIGTERM | closes the socket, finishes the jobs it acked (at most 60 s), exits 0 | nothing more |
//!
//! `payload` is only sent back when the envelope says `accepts_response_payload`.

mod connection;
mod protocol;

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use opkit::clock::SystemClock;
use opkit::config::Config;
use opkit::engine::bot::Bot;
use opkit::ingress::Ingress;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use connection::{Backoff, Connect, Failure, Socket, tls_connector};
use protocol::{Frame, ack, parse_frame, route};

/// How often the bot pings Slack, to notice a connection that died silently.
const PING_EVERY: Duration = Duration::from_secs(30);
/// A connection that has sent nothing (not even a pong) for this long is dead.
const SILENCE_LIMIT: Duration = Duration::from_secs(90);

/// Connects to Slack and handles envelopes until asked to stop (SIGINT or
/// SIGTERM, [`crate::stop::requested`]), reconnecting as needed; then finishes
/// the jobs it acked ([`crate::serve::Jobs::drain`]). Needs `SLACK_APP_TOKEN`; with `sqs`, accepted commands go to
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
    let tls = tls_connector()?;
    let jobs = crate::serve::job_queue(&config, bot, sqs.as_ref())?;
    let ingress = Ingress::trusted(&config, Arc::new(SystemClock), jobs.queue.clone());
    let (stop, stopped) = watch::channel(false);
    let requested = crate::stop::requested();
    tokio::spawn(async move {
        requested.await;
        let _ = stop.send(true);
        // Keep the sender: dropping it would read as a request to stop.
        std::future::pending::<()>().await;
    });
    let connector = Connect {
        http: reqwest::Client::new(),
        api_url: &config.slack_api_url,
        token: &token,
        tls,
    };
    let ended = connect_until_stopped(&connector, &ingress, stopped).await;
    // However it ended, the jobs acked over the socket are owed their answers.
    jobs.drain().await;
    ended
}

/// Opens connections and handles their envelopes until `stopped` says so, or
/// Slack turns Socket Mode off (`Err`, the message to stop with).
async fn connect_until_stopped(
    connector: &Connect<'_>,
    ingress: &Ingress,
    mut stopped: watch::Receiver<bool>,
) -> Result<(), String> {
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
            ingress,
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
    /// The process was asked to stop (SIGINT or SIGTERM).
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
            Frame::Envelope(mut envelope) => {
                if envelope.retry_attempt > 0 {
                    tracing::info!(
                        envelope_id = %envelope.id,
                        retry_attempt = envelope.retry_attempt,
                        retry_reason = %envelope.retry_reason,
                        "Slack redelivered an envelope"
                    );
                }
                let payload = std::mem::take(&mut envelope.payload);
                let answer = route(self.ingress, &envelope.id, &envelope.kind, payload).await;
                match ack(&envelope, &answer) {
                    Some(ack) => self.send(ack).await,
                    None => {
                        tracing::warn!(
                            envelope_id = %envelope.id,
                            status = answer.status.as_u16(),
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
