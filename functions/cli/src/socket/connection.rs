//! Opening a Socket Mode connection (`apps.connections.open`, then the WebSocket
//! handshake over rustls), telling fatal refusals from transient ones, and the
//! backoff between attempts.

use std::sync::Arc;
use std::time::Duration;

use opkit::ingress::{ENVELOPE_OVERHEAD, Route};
use opkit::slack::WebApiError;
use opkit::slack::web::{AppToken, open_socket_connection};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

/// How long the WebSocket handshake may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The first wait before reconnecting after a failure; it doubles per failure.
const BACKOFF_BASE: Duration = Duration::from_secs(1);
/// The longest wait before reconnecting.
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Slack errors from `apps.connections.open` that trying again later may cure;
/// any other refusal (`invalid_auth`, `not_allowed_token_type`, ...) will not.
const TRANSIENT_SLACK_ERRORS: [&str; 5] = [
    "ratelimited",
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
];

/// An open Socket Mode WebSocket.
pub(super) type Socket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// What opens a connection: `apps.connections.open`, then the WebSocket handshake.
pub(super) struct Connect<'a> {
    pub(super) http: reqwest::Client,
    pub(super) api_url: &'a str,
    pub(super) token: &'a AppToken,
    pub(super) tls: Connector,
}

/// Why a connection could not be opened.
pub(super) enum Failure {
    /// Trying again will not help (the token was refused): stop with this message.
    Fatal(String),
    /// Worth another try after a backoff.
    Retry(String),
}

impl Connect<'_> {
    pub(super) async fn open(&self) -> Result<Socket, Failure> {
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
            Some(socket_config()),
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

/// The largest WebSocket message (and frame) read from Slack, in bytes: an
/// envelope carrying the largest payload any HTTP route accepts
/// ([`Route::largest_body`]) and the envelope's own fields. Each envelope is then
/// held to its own route's limit ([`super::protocol::parse_frame`]).
pub(super) const MAX_MESSAGE: usize = Route::largest_body() + ENVELOPE_OVERHEAD;

/// The WebSocket's limits: a message from Slack, and each frame of it, may be
/// [`MAX_MESSAGE`] bytes, and no larger. A frame announcing more is refused from
/// its header, before its payload is read or room is made for it, and the
/// connection is dropped (tungstenite's defaults, 64 MiB a message and 16 MiB a
/// frame, would buffer that much first).
pub(super) fn socket_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE))
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
pub(super) fn tls_connector() -> Result<Connector, String> {
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
pub(super) struct Backoff {
    failures: u32,
}

impl Backoff {
    pub(super) fn delay(&self) -> Duration {
        match self.failures {
            0 => Duration::ZERO,
            n => BACKOFF_BASE
                .saturating_mul(1 << (n - 1).min(16))
                .min(BACKOFF_MAX),
        }
    }

    pub(super) fn failed(&mut self) {
        self.failures = self.failures.saturating_add(1);
    }

    pub(super) fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn messages_and_frames_are_limited_to_what_the_http_routes_accept() {
        let config = socket_config();
        assert_eq!(config.max_message_size, Some(MAX_MESSAGE));
        assert_eq!(config.max_frame_size, Some(MAX_MESSAGE));
        assert_eq!(
            MAX_MESSAGE,
            Route::Interactions.max_body() + ENVELOPE_OVERHEAD
        );
    }

    #[test]
    fn logged_urls_lose_their_ticket() {
        assert_eq!(
            without_query("wss://wss-primary.slack.com/link/?ticket=secret&app_id=A1"),
            "wss://wss-primary.slack.com/link/"
        );
    }
}
