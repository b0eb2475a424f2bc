//! Socket Mode's Web API side: the app-level token ([`AppToken`]) and
//! `apps.connections.open`, kept together so that the Socket Mode transport (in the
//! `opkit` binary) needs nothing else from this module.
//!
//! Source: <https://docs.slack.dev/apis/events-api/using-socket-mode>.

use std::fmt;

use reqwest::header::CONTENT_TYPE;
use serde::Deserialize;

use super::WebApiError;
use crate::slack::poster::{DEFAULT_TIMEOUT, RetryPolicy, send_with_retries};

/// An app-level token (`xapp-...`), used only to open Socket Mode connections.
/// Its `Debug` output never shows the token.
#[derive(Clone)]
pub struct AppToken(String);

impl AppToken {
    /// Wraps a token from the Slack app's "Basic Information" → "App-Level Tokens";
    /// it needs the `connections:write` scope. Anything that does not start with
    /// `xapp-` is refused: a bot token pasted here is the usual mistake.
    pub fn parse(token: impl Into<String>) -> Result<Self, AppTokenError> {
        let token = token.into();
        if token.starts_with("xapp-") {
            Ok(Self(token))
        } else {
            Err(AppTokenError::NotAppLevel)
        }
    }
}

/// Why a value is not an app-level token. Never shows the value (it may be a
/// secret of another kind).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AppTokenError {
    /// It does not start with `xapp-`, as every app-level token does; a bot token
    /// (`xoxb-...`) is the usual mistake.
    #[error("expected an app-level token starting with `xapp-`")]
    NotAppLevel,
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
mod tests {
    use super::*;

    #[test]
    fn app_token_must_be_app_level_and_never_prints() {
        // GIVEN an app-level token and a bot token
        let token = AppToken::parse("xapp-1-A1-secret").unwrap();
        // THEN the app token hides itself and the bot token is refused
        assert_eq!(format!("{token:?}"), "AppToken(***)");
        let refused = AppToken::parse("xoxb-123").unwrap_err();
        assert_eq!(refused, AppTokenError::NotAppLevel);
        assert!(refused.to_string().contains("xapp-"), "{refused}");
        assert!(!refused.to_string().contains("xoxb-123"), "{refused}");
    }
}
