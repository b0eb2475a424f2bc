//! A fault-injecting HTTP proxy on loopback, in front of the AWS emulator.
//!
//! ```text
//! AWS SDK client ──> FaultProxy (127.0.0.1:<port>) ──> moto (AWS_ENDPOINT_URL)
//!                    records each call's operation and when it came;
//!                    answers a scripted fault instead of (or after) forwarding
//! ```
//!
//! Faults are aimed at AWS operations: `PutItem`, `Query`, `RebootInstances`, …
//! (from `X-Amz-Target` for JSON protocols, the `Action` form field for query
//! protocols), optionally only when the request body contains some text (a key).
//! Because the SDK client itself meets the fault, its own retry strategy — the one
//! deployed — is what is exercised.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use tokio::task::JoinHandle;

use crate::aws::emulator_endpoint;

/// What a fault answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyFault {
    /// HTTP 400 `ThrottlingException` (DynamoDB's throttling answer); not forwarded.
    Throttle,
    /// HTTP 400 `ProvisionedThroughputExceededException`; not forwarded.
    ThroughputExceeded,
    /// This 5xx status with `InternalServerError`; not forwarded.
    ServerError(u16),
    /// Forwarded — the emulator applies it — and then answered with this 5xx, as
    /// when a response is lost: the client cannot tell whether it happened.
    LostAnswer(u16),
}

#[derive(Debug)]
struct Rule {
    operation: String,
    body_contains: Option<String>,
    skip: usize,
    times: usize,
    fault: ProxyFault,
    seen: AtomicUsize,
}

/// One call the proxy saw.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The operation, e.g. `PutItem`.
    pub operation: String,
    /// When it arrived.
    pub at: Instant,
    /// The fault answered, if any.
    pub fault: Option<ProxyFault>,
    /// The request body (JSON protocols: the request; query protocols: the form).
    pub body: String,
    /// The answer's body as the client got it (empty while the call is in flight,
    /// and for a fault answered instead of forwarding).
    pub response: String,
    /// How long the emulator took to answer it, as the proxy timed it (`None`
    /// while in flight, and for a fault answered instead of forwarding).
    pub upstream: Option<std::time::Duration>,
}

#[derive(Default)]
struct State {
    upstream: String,
    rules: Mutex<Vec<Arc<Rule>>>,
    seen: Mutex<Vec<Seen>>,
}

/// A running proxy; it stops when dropped.
pub struct FaultProxy {
    addr: SocketAddr,
    state: Arc<State>,
    server: JoinHandle<()>,
}

impl FaultProxy {
    /// Starts a proxy in front of the emulator (`AWS_ENDPOINT_URL`).
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fault proxy to a loopback port");
        let addr = listener.local_addr().expect("proxy address");
        let state = Arc::new(State {
            upstream: emulator_endpoint().trim_end_matches('/').to_string(),
            ..State::default()
        });
        let app = Router::new()
            .fallback(forward)
            .with_state((Arc::clone(&state), reqwest::Client::new()));
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("fault proxy");
        });
        Self {
            addr,
            state,
            server,
        }
    }

    /// The URL to point an SDK client at.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Answers `fault` to `times` calls of `operation` (after letting `skip`
    /// through) whose body contains `body_contains`, if given.
    pub fn inject(
        &self,
        operation: &str,
        body_contains: Option<&str>,
        skip: usize,
        times: usize,
        fault: ProxyFault,
    ) {
        self.state.rules.lock().expect("rules").push(Arc::new(Rule {
            operation: operation.to_string(),
            body_contains: body_contains.map(str::to_string),
            skip,
            times,
            fault,
            seen: AtomicUsize::new(0),
        }));
    }

    /// Removes every fault.
    pub fn heal(&self) {
        self.state.rules.lock().expect("rules").clear();
    }

    /// Every call so far, in order of arrival.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().expect("seen").clone()
    }

    /// The calls of `operation` whose body contains `needle`.
    pub fn calls(&self, operation: &str, needle: &str) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.operation == operation && s.body.contains(needle))
            .collect()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// `DynamoDB_20120810.PutItem` → `PutItem`; `Action=RebootInstances&…` → `RebootInstances`.
fn operation(headers: &HeaderMap, body: &[u8]) -> String {
    if let Some(target) = headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
        return target.rsplit('.').next().unwrap_or(target).to_string();
    }
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
        .ok()
        .and_then(|pairs| pairs.into_iter().find(|(k, _)| k == "Action"))
        .map_or_else(|| "unknown".to_string(), |(_, v)| v)
}

async fn forward(
    axum::extract::State((state, http)): axum::extract::State<(Arc<State>, reqwest::Client)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let op = operation(&headers, &body);
    let text = String::from_utf8_lossy(&body).into_owned();
    let rules = state.rules.lock().expect("rules").clone();
    let fault = rules
        .iter()
        .find(|r| {
            r.operation == op && r.body_contains.as_ref().is_none_or(|n| text.contains(n)) && {
                let n = r.seen.fetch_add(1, Ordering::SeqCst);
                n >= r.skip && n - r.skip < r.times
            }
        })
        .map(|r| r.fault);
    let index = {
        let mut seen = state.seen.lock().expect("seen");
        seen.push(Seen {
            operation: op,
            at: Instant::now(),
            fault,
            body: text,
            response: String::new(),
            upstream: None,
        });
        seen.len() - 1
    };
    match fault {
        Some(ProxyFault::Throttle) => {
            return aws_error(
                400,
                "ThrottlingException",
                "Rate of requests exceeds the allowed throughput.",
            );
        }
        Some(ProxyFault::ThroughputExceeded) => {
            return aws_error(
                400,
                "ProvisionedThroughputExceededException",
                "The level of configured provisioned throughput for the table was exceeded.",
            );
        }
        Some(ProxyFault::ServerError(status)) => {
            return aws_error(status, "InternalServerError", "Internal server error");
        }
        Some(ProxyFault::LostAnswer(_)) | None => {}
    }
    let url = format!(
        "{}{}",
        state.upstream,
        uri.path_and_query().map_or("/", |p| p.as_str())
    );
    let mut request = http.request(method, url).body(body.to_vec());
    for (name, value) in &headers {
        if !matches!(name.as_str(), "host" | "content-length" | "connection") {
            request = request.header(name, value);
        }
    }
    let forwarded = Instant::now();
    let upstream = match request.send().await {
        Ok(response) => response,
        Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    };
    if let Some(ProxyFault::LostAnswer(status)) = fault {
        // The emulator has applied it; the client hears an error.
        let _ = upstream.bytes().await;
        return aws_error(status, "InternalServerError", "Internal server error");
    }
    let status = upstream.status();
    let response_headers = upstream.headers().clone();
    let bytes = upstream.bytes().await.unwrap_or_default();
    {
        let mut seen = state.seen.lock().expect("seen");
        seen[index].response = String::from_utf8_lossy(&bytes).into_owned();
        seen[index].upstream = Some(forwarded.elapsed());
    }
    let mut response = (status, bytes).into_response();
    for (name, value) in &response_headers {
        if !matches!(
            name.as_str(),
            "content-length" | "transfer-encoding" | "connection"
        ) {
            response.headers_mut().insert(name, value.clone());
        }
    }
    response
}

/// An AWS JSON-protocol error answer.
fn aws_error(status: u16, code: &str, message: &str) -> Response {
    let body = serde_json::json!({
        "__type": format!("com.amazonaws.dynamodb.v20120810#{code}"),
        "message": message,
    })
    .to_string();
    let status = StatusCode::from_u16(status).expect("a valid status");
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/x-amz-json-1.0"),
    );
    response.headers_mut().insert(
        "x-amzn-errortype",
        axum::http::HeaderValue::from_str(code).expect("code"),
    );
    response
}
