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
        return respond(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "no such route".into(),
        );
    };
    let slack = SlackRequest::from_http(request.headers(), request.body().as_ref());
    let answer = ingress.handle(route, slack).await;
    let (content_type, body) = answer.body();
    respond(answer.status_code(), content_type, body)
}

fn respond(status: StatusCode, content_type: &str, body: String) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Body::Text(body))
        .expect("a response with a valid status and header")
}
