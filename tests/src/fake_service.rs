//! Fakes of what declarative commands call, on loopback, recording every
//! request: an internal tool's HTTP API ([`FakeService`]) and Lambda's `Invoke`
//! ([`FakeLambda`]).
//!
//! [`FakeLambda`] exists because moto's Lambda `Invoke` runs the function in
//! docker, which this build machine and CI do not have: it speaks the same
//! REST-JSON operation the AWS SDK sends (`POST
//! /2015-03-31/functions/{FunctionName}/invocations`, the payload as the body;
//! answered with the function's result as the body, `X-Amz-Function-Error` and
//! `X-Amz-Executed-Version` headers), so the real `aws-sdk-lambda` client is
//! exercised against it — its serialisation, signing and response parsing —
//! but not Lambda's own behaviour.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;

/// One request a fake saw.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The method.
    pub method: Method,
    /// The path and query, as sent (percent-encoding intact).
    pub uri: String,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
}

type Log = Arc<Mutex<Vec<Seen>>>;

async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let base = format!("http://{}", listener.local_addr().expect("bound"));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("the fake serves") });
    base
}

fn record(log: &Log, method: Method, uri: &Uri, headers: HeaderMap, body: Bytes) {
    log.lock().unwrap_or_else(|e| e.into_inner()).push(Seen {
        method,
        uri: uri.to_string(),
        headers,
        body,
    });
}

/// A deploys service: `GET /services/{service}/version` answers
/// `{"version": "1.4.2", "deployed_at": "2026-11-29"}` for any path; `/echo`
/// answers the body it was sent.
pub struct FakeService {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    log: Log,
}

impl FakeService {
    /// Starts it on a free loopback port.
    pub async fn start() -> Self {
        let log: Log = Arc::default();
        let seen = log.clone();
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let seen = seen.clone();
                async move {
                    record(&seen, method, &uri, headers, body.clone());
                    if uri.path() == "/echo" {
                        return (StatusCode::OK, body.to_vec());
                    }
                    (
                        StatusCode::OK,
                        br#"{"version":"1.4.2","deployed_at":"2026-11-29"}"#.to_vec(),
                    )
                }
            },
        );
        Self {
            base: serve(app).await,
            log,
        }
    }

    /// Every request so far, oldest first.
    pub fn seen(&self) -> Vec<Seen> {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Lambda's `Invoke` for any function: the result is `{"function": NAME,
/// "echo": PAYLOAD}`; a function named `broken` fails as Lambda reports an
/// unhandled error (200, `X-Amz-Function-Error: Unhandled`, `errorMessage`).
pub struct FakeLambda {
    /// `http://127.0.0.1:PORT`: the endpoint to give the SDK.
    pub endpoint: String,
    log: Log,
}

impl FakeLambda {
    /// Starts it on a free loopback port.
    pub async fn start() -> Self {
        let log: Log = Arc::default();
        let seen = log.clone();
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let seen = seen.clone();
                async move {
                    record(&seen, method.clone(), &uri, headers, body.clone());
                    let path = uri.path();
                    let Some(name) = path
                        .strip_prefix("/2015-03-31/functions/")
                        .and_then(|p| p.strip_suffix("/invocations"))
                        .filter(|_| method == Method::POST)
                    else {
                        return (StatusCode::NOT_FOUND, "unknown operation").into_response();
                    };
                    let name = percent_decode(name);
                    if name == "broken" {
                        let body = r#"{"errorMessage":"boom","errorType":"Error"}"#;
                        return (
                            StatusCode::OK,
                            [
                                ("X-Amz-Function-Error", "Unhandled"),
                                ("X-Amz-Executed-Version", "$LATEST"),
                            ],
                            body,
                        )
                            .into_response();
                    }
                    let payload: serde_json::Value =
                        serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
                    let result = serde_json::json!({ "function": name, "echo": payload });
                    (
                        StatusCode::OK,
                        [("X-Amz-Executed-Version", "$LATEST")],
                        result.to_string(),
                    )
                        .into_response()
                }
            },
        );
        Self {
            endpoint: serve(app).await,
            log,
        }
    }

    /// Every request so far, oldest first.
    pub fn seen(&self) -> Vec<Seen> {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// `%XX` escapes decoded (a function ARN's `:` arrives as `%3A`).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = s.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
