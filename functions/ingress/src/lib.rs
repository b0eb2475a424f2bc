//! The ingress Lambda's handler: API Gateway's event in, [`Ingress`]'s answer out.
//!
//! `lambda_http` has already decoded a base64 body (API Gateway encodes form
//! bodies), so the signature is checked over the exact bytes Slack sent.

use std::sync::Arc;

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
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
