//! The ingress Lambda's handler: API Gateway's event in, [`Ingress`]'s answer out.
//!
//! `lambda_http` has already decoded a base64 body (API Gateway encodes form
//! bodies), so the signature is checked over the exact bytes Slack sent.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use opkit::ingress::{Ingress, Route, SlackRequest};

/// Answers one API Gateway request (HTTP API payload v2 or REST API v1).
pub async fn handle(ingress: &Ingress, request: Request) -> Response<Body> {
    let Some(route) = Route::from_path(request.uri().path()) else {
        return respond(404, "text/plain; charset=utf-8", "no such route".into());
    };
    let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok());
    let answer = ingress
        .handle(
            route,
            SlackRequest {
                timestamp: header("x-slack-request-timestamp"),
                signature: header("x-slack-signature"),
                body: request.body().as_ref(),
            },
        )
        .await;
    let (content_type, body) = answer.body();
    respond(answer.status, content_type, body)
}

fn respond(status: u16, content_type: &str, body: String) -> Response<Body> {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("content-type", content_type)
        .body(Body::Text(body))
        .expect("a response with a valid status and header")
}
