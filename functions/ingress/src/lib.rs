//! The ingress Lambda's handler: API Gateway's event in, [`Ingress`]'s answer out.
//!
//! `lambda_http` has already decoded a base64 body (API Gateway encodes form
//! bodies), so the signature is checked over the exact bytes Slack sent.

use std::future::{Future, ready};
use std::pin::Pin;
use std::sync::Arc;

use lambda_http::http::StatusCode;
use lambda_http::{Body, IntoResponse, Request, Response};
use opkit::clock::SharedClock;
use opkit::config::{Config, ConfigError};
use opkit::ingress::{Answer, Ingress, Route, SlackRequest};
use opkit::job::JobQueue;

/// The ingress as the Lambda builds it. A deployment must say who may call:
/// `OPKIT_TEAM_IDS` unset or empty is an error naming it
/// ([`Config::require_team_ids`]), where `opkit serve` would let any team call.
pub fn ingress(
    config: &Config,
    clock: SharedClock,
    queue: Arc<dyn JobQueue>,
) -> Result<Ingress, ConfigError> {
    config.require_team_ids()?;
    Ingress::new(config, clock, queue)
}

/// Answers one API Gateway request (HTTP API payload v2 or REST API v1).
pub async fn handle(ingress: &Ingress, request: Request) -> Response<Body> {
    let answer = match Route::from_path(request.uri().path()) {
        Some(route) => {
            let slack = SlackRequest::from_http(request.headers(), request.body().as_ref());
            opkit::metrics::time_ack(route, ingress.handle(route, slack)).await
        }
        None => Answer::refuse(StatusCode::NOT_FOUND, "no such route"),
    };
    answer.into_http().map(Body::Text)
}

/// [`handle`]'s response as the Lambda hands it to `lambda_http`: passed through as
/// built.
///
/// `lambda_http`'s own `IntoResponse` for a `Response<B>` converts any body by its
/// `Content-Type`, re-decoding text through `encoding_rs` for its charset; that links
/// encoding_rs's tables (155 kB, a twentieth of the ingress) for a body that is
/// already UTF-8 text ([`Answer::into_http`]).
pub struct Answered(pub Response<Body>);

impl IntoResponse for Answered {
    fn into_response(self) -> Pin<Box<dyn Future<Output = Response<Body>> + Send>> {
        Box::pin(ready(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_answered_response_reaches_lambda_http_as_built() {
        // GIVEN a response as the handler builds it
        let built = || {
            Answer::refuse(StatusCode::NOT_FOUND, "no such route")
                .into_http()
                .map(Body::Text)
        };
        // WHEN lambda_http takes it through Answered, and through its own conversion
        let passed = Answered(built()).into_response().await;
        let converted = built().into_response().await;
        // THEN status, headers and text body are the same either way
        assert_eq!(passed.status(), StatusCode::NOT_FOUND);
        assert_eq!(passed.status(), converted.status());
        assert_eq!(passed.headers(), converted.headers());
        assert!(
            matches!(passed.body(), Body::Text(_)),
            "{:?}",
            passed.body()
        );
        assert_eq!(passed.body().as_ref(), converted.body().as_ref());
        assert!(!passed.body().is_empty());
    }
}
