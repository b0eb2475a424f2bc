//! The ingress Lambda's handler: API Gateway's event in, [`Ingress`]'s answer out.
//!
//! `lambda_http` has already decoded a base64 body (API Gateway encodes form
//! bodies), so the signature is checked over the exact bytes Slack sent.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use opkit::ingress::{Answer, Ingress, Route, SlackRequest};

/// Answers one API Gateway request (HTTP API payload v2 or REST API v1).
pub async fn handle(ingress: &Ingress, request: Request) -> Response<Body> {
    let answer = match Route::from_path(request.uri().path()) {
        Some(route) => {
            let slack = SlackRequest::from_http(request.headers(), request.body().as_ref());
            ingress.handle(route, slack).await
        }
        None => Answer::refuse(StatusCode::NOT_FOUND, "no such route"),
    };
    answer.into_http().map(Body::Text)
}
