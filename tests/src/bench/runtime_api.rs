//! A minimal Lambda Runtime API: the documented `2018-06-01` interface a
//! `bootstrap` polls (<https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html>),
//! serving one event and timing the process around it.
//!
//! | route | answer |
//! |---|---|
//! | `GET /2018-06-01/runtime/invocation/next` | the event, once, with `Lambda-Runtime-Aws-Request-Id`, `-Deadline-Ms`, `-Invoked-Function-Arn`, `-Trace-Id`; later polls wait forever, as Lambda freezes an idle runtime |
//! | `POST /2018-06-01/runtime/invocation/{id}/response` | 202; the invocation's end |
//! | `POST /2018-06-01/runtime/invocation/{id}/error` | 202; the invocation failed |
//! | `POST /2018-06-01/runtime/init/error` | 202; the runtime could not start |

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The request id of the one invocation served.
pub const REQUEST_ID: &str = "8476a536-e9f4-11e8-9739-2dfe598c3fcd";
/// The function ARN the invocation names.
pub const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:opkit-bench";

/// How the one invocation ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// `/response`: the function's answer (for API Gateway, its response JSON).
    Response(Bytes),
    /// `/invocation/{id}/error` or `/init/error`: the error document.
    Error(Bytes),
}

/// When things happened, from the harness's clock.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// The runtime's first `GET …/invocation/next`: its initialisation is over.
    pub next_at: Instant,
    /// The `/response` (or error) post.
    pub done_at: Instant,
    /// What the function answered.
    pub outcome: Outcome,
}

#[derive(Default)]
struct Progress {
    next_at: Option<Instant>,
    done: Option<(Instant, Outcome)>,
}

struct Shared {
    event: Bytes,
    deadline: Duration,
    served: Mutex<bool>,
    progress: watch::Sender<Progress>,
}

/// A running Runtime API serving one event; the server stops when dropped.
pub struct RuntimeApi {
    addr: SocketAddr,
    progress: watch::Receiver<Progress>,
    server: JoinHandle<()>,
}

impl RuntimeApi {
    /// Starts on a free loopback port, serving `event` (JSON) with an invocation
    /// deadline `deadline` after it is handed out.
    pub async fn start(event: Vec<u8>, deadline: Duration) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the Runtime API to a loopback port");
        let addr = listener.local_addr().expect("Runtime API address");
        let (progress, receiver) = watch::channel(Progress::default());
        let shared = Arc::new(Shared {
            event: Bytes::from(event),
            deadline,
            served: Mutex::new(false),
            progress,
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(shared);
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("Runtime API server");
        });
        Self {
            addr,
            progress: receiver,
            server,
        }
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// Waits for the invocation's end, or `None` after `timeout`.
    pub async fn finished(&mut self, timeout: Duration) -> Option<Invocation> {
        let waited =
            tokio::time::timeout(timeout, self.progress.wait_for(|p| p.done.is_some())).await;
        let progress = waited.ok()?.ok()?;
        let (done_at, outcome) = progress.done.clone()?;
        Some(Invocation {
            // An init error ends the run before any poll.
            next_at: progress.next_at.unwrap_or(done_at),
            done_at,
            outcome,
        })
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn next(State(shared): State<Arc<Shared>>) -> Response {
    let now = Instant::now();
    let first = !std::mem::replace(&mut *shared.served.lock().unwrap(), true);
    if !first {
        // One event per run: a runtime asking for another waits, as a frozen one would.
        std::future::pending::<()>().await;
    }
    shared.progress.send_modify(|p| p.next_at = Some(now));
    let headers = invocation_headers(REQUEST_ID, shared.deadline);
    (StatusCode::OK, headers, shared.event.clone()).into_response()
}

/// The headers of an invocation handed out by `GET …/invocation/next`: its request
/// id, a deadline `deadline` from now, the function's ARN, a trace id, JSON.
pub(crate) fn invocation_headers(request_id: &str, deadline: Duration) -> HeaderMap {
    let deadline = std::time::SystemTime::now() + deadline;
    let deadline_ms = deadline
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis();
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: String| {
        headers.insert(name, HeaderValue::from_str(&value).expect("a header value"));
    };
    set("lambda-runtime-aws-request-id", request_id.to_string());
    set("lambda-runtime-deadline-ms", deadline_ms.to_string());
    set(
        "lambda-runtime-invoked-function-arn",
        FUNCTION_ARN.to_string(),
    );
    set(
        "lambda-runtime-trace-id",
        "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1".to_string(),
    );
    set("content-type", "application/json".to_string());
    headers
}

fn finish(shared: &Shared, outcome: Outcome) -> StatusCode {
    let now = Instant::now();
    shared.progress.send_modify(|p| {
        p.done.get_or_insert((now, outcome));
    });
    StatusCode::ACCEPTED
}

async fn response(
    State(shared): State<Arc<Shared>>,
    Path(_id): Path<String>,
    body: Bytes,
) -> StatusCode {
    finish(&shared, Outcome::Response(body))
}

async fn error(
    State(shared): State<Arc<Shared>>,
    Path(_id): Path<String>,
    body: Bytes,
) -> StatusCode {
    finish(&shared, Outcome::Error(body))
}

async fn init_error(State(shared): State<Arc<Shared>>, body: Bytes) -> StatusCode {
    finish(&shared, Outcome::Error(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn call(
        api: &RuntimeApi,
        method: &str,
        path: &str,
        body: &str,
    ) -> (u16, HeaderMap, String) {
        let client = reqwest::Client::new();
        let url = format!("http://{}{path}", api.address());
        let request = match method {
            "GET" => client.get(url),
            _ => client.post(url).body(body.to_string()),
        };
        let response = request.send().await.expect("a response");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        (status, headers, response.text().await.expect("a body"))
    }

    #[tokio::test]
    async fn serves_the_event_once_and_records_the_response() {
        let mut api = RuntimeApi::start(b"{\"x\":1}".to_vec(), Duration::from_secs(3)).await;
        let (status, headers, body) =
            call(&api, "GET", "/2018-06-01/runtime/invocation/next", "").await;
        assert_eq!(status, 200);
        assert_eq!(body, "{\"x\":1}");
        assert_eq!(headers["lambda-runtime-aws-request-id"], REQUEST_ID);
        let deadline: u128 = headers["lambda-runtime-deadline-ms"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis();
        assert!(deadline > now && deadline <= now + 3_000);
        let path = format!("/2018-06-01/runtime/invocation/{REQUEST_ID}/response");
        assert_eq!(call(&api, "POST", &path, "ok").await.0, 202);
        let invocation = api.finished(Duration::from_secs(5)).await.expect("done");
        assert!(invocation.done_at >= invocation.next_at);
        assert!(matches!(invocation.outcome, Outcome::Response(ref b) if b == "ok"));
    }

    #[tokio::test]
    async fn an_init_error_ends_the_run() {
        let mut api = RuntimeApi::start(b"{}".to_vec(), Duration::from_secs(3)).await;
        let (status, _, _) = call(&api, "POST", "/2018-06-01/runtime/init/error", "boom").await;
        assert_eq!(status, 202);
        let invocation = api.finished(Duration::from_secs(5)).await.expect("done");
        assert!(matches!(invocation.outcome, Outcome::Error(ref b) if b == "boom"));
    }
}
