//! The Runtime API of a warm function: one process handed invocation after
//! invocation, as Lambda reuses an execution environment (the same documented
//! `2018-06-01` interface as [`runtime_api`](super::runtime_api), which serves one).
//!
//! | route | answer |
//! |---|---|
//! | `GET /2018-06-01/runtime/invocation/next` | the next event [`WarmRuntimeApi::invoke`] was given, with a request id of its own and the headers Lambda sends; waits while there is none (an idle environment) |
//! | `POST /2018-06-01/runtime/invocation/{id}/response` | 202; that invocation's answer |
//! | `POST /2018-06-01/runtime/invocation/{id}/error` | 202; that invocation failed |
//! | `POST /2018-06-01/runtime/init/error` | 202; the runtime could not start |
//!
//! One invocation at a time, as one execution environment runs them.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::runtime_api::{Outcome, invocation_headers};

/// An event waiting for the runtime's next poll.
struct Pending {
    event: Bytes,
    answer: oneshot::Sender<Outcome>,
}

struct Shared {
    deadline: Duration,
    events: tokio::sync::Mutex<mpsc::Receiver<Pending>>,
    waiting: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    first_poll: watch::Sender<Option<Instant>>,
    init_error: watch::Sender<Option<Bytes>>,
}

/// Why an invocation did not answer.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InvokeError {
    /// The runtime reported that it could not start.
    #[error("the runtime could not start: {0}")]
    Init(String),
    /// No answer within the time allowed.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

/// A running warm Runtime API; the server stops when dropped.
pub struct WarmRuntimeApi {
    addr: SocketAddr,
    events: mpsc::Sender<Pending>,
    first_poll: watch::Receiver<Option<Instant>>,
    init_error: watch::Receiver<Option<Bytes>>,
    server: JoinHandle<()>,
}

impl WarmRuntimeApi {
    /// Starts on a free loopback port; each invocation's deadline is `deadline`
    /// after it is handed out (the function's timeout).
    pub async fn start(deadline: Duration) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the Runtime API to a loopback port");
        let addr = listener.local_addr().expect("Runtime API address");
        let (events, receiver) = mpsc::channel(1);
        let (first_poll, first_poll_rx) = watch::channel(None);
        let (init_error, init_error_rx) = watch::channel(None);
        let shared = Arc::new(Shared {
            deadline,
            events: tokio::sync::Mutex::new(receiver),
            waiting: Mutex::new(HashMap::new()),
            first_poll,
            init_error,
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error_route))
            .with_state(shared);
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("Runtime API server");
        });
        Self {
            addr,
            events,
            first_poll: first_poll_rx,
            init_error: init_error_rx,
            server,
        }
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// Waits for the runtime's first poll (its initialisation is over): when it
    /// came.
    pub async fn ready(&mut self, timeout: Duration) -> Result<Instant, InvokeError> {
        let mut init_error = self.init_error.clone();
        tokio::select! {
            polled = tokio::time::timeout(timeout, self.first_poll.wait_for(Option::is_some)) => {
                match polled {
                    Ok(Ok(at)) => Ok((*at).expect("waited for it")),
                    _ => Err(InvokeError::Timeout(timeout)),
                }
            }
            Ok(failed) = init_error.wait_for(Option::is_some) => {
                let body: Option<Bytes> = (*failed).clone();
                Err(InvokeError::Init(super::cold::lossy(&body.unwrap_or_default())))
            }
        }
    }

    /// Hands `event` (JSON) to the runtime's next poll and waits for its answer.
    pub async fn invoke(&self, event: Vec<u8>, timeout: Duration) -> Result<Outcome, InvokeError> {
        let (answer, answered) = oneshot::channel();
        let pending = Pending {
            event: Bytes::from(event),
            answer,
        };
        let mut init_error = self.init_error.clone();
        let run = async {
            self.events
                .send(pending)
                .await
                .map_err(|_| InvokeError::Timeout(timeout))?;
            answered.await.map_err(|_| InvokeError::Timeout(timeout))
        };
        tokio::select! {
            done = tokio::time::timeout(timeout, run) => done.unwrap_or(Err(InvokeError::Timeout(timeout))),
            Ok(failed) = init_error.wait_for(Option::is_some) => {
                let body: Option<Bytes> = (*failed).clone();
                Err(InvokeError::Init(super::cold::lossy(&body.unwrap_or_default())))
            }
        }
    }
}

impl Drop for WarmRuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn next(State(shared): State<Arc<Shared>>) -> Response {
    let now = Instant::now();
    shared.first_poll.send_if_modified(|first| {
        let unset = first.is_none();
        first.get_or_insert(now);
        unset
    });
    // One poll at a time takes the next event; with none, it waits (an idle
    // environment, frozen by Lambda until there is work).
    let Some(pending) = shared.events.lock().await.recv().await else {
        return std::future::pending().await;
    };
    let id = uuid::Uuid::new_v4().to_string();
    shared
        .waiting
        .lock()
        .expect("waiting")
        .insert(id.clone(), pending.answer);
    let headers = invocation_headers(&id, shared.deadline);
    (StatusCode::OK, headers, pending.event).into_response()
}

fn finish(shared: &Shared, id: &str, outcome: Outcome) -> StatusCode {
    match shared.waiting.lock().expect("waiting").remove(id) {
        Some(answer) => {
            let _ = answer.send(outcome);
            StatusCode::ACCEPTED
        }
        // Lambda answers an unknown or already answered request id with an error.
        None => StatusCode::BAD_REQUEST,
    }
}

async fn response(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> StatusCode {
    finish(&shared, &id, Outcome::Response(body))
}

async fn error(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> StatusCode {
    finish(&shared, &id, Outcome::Error(body))
}

async fn init_error_route(State(shared): State<Arc<Shared>>, body: Bytes) -> StatusCode {
    shared.init_error.send_replace(Some(body));
    StatusCode::ACCEPTED
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A runtime loop as `lambda_runtime` runs it: poll, answer, poll again;
    /// each answer is `answer(event)`, posted to the invocation's own id.
    async fn runtime(address: String, rounds: usize, answer: fn(&str) -> (String, &'static str)) {
        let client = reqwest::Client::new();
        for _ in 0..rounds {
            let next = client
                .get(format!(
                    "http://{address}/2018-06-01/runtime/invocation/next"
                ))
                .send()
                .await
                .expect("next");
            let id = next.headers()["lambda-runtime-aws-request-id"]
                .to_str()
                .unwrap()
                .to_string();
            let event = next.text().await.unwrap();
            let (body, route) = answer(&event);
            let status = client
                .post(format!(
                    "http://{address}/2018-06-01/runtime/invocation/{id}/{route}"
                ))
                .body(body)
                .send()
                .await
                .expect("answer")
                .status();
            assert_eq!(status, 202);
        }
    }

    #[tokio::test]
    async fn one_process_is_handed_invocation_after_invocation() {
        // GIVEN a warm Runtime API and a runtime that echoes, failing on "boom"
        let mut api = WarmRuntimeApi::start(Duration::from_secs(3)).await;
        let echo = |event: &str| {
            if event.contains("boom") {
                (event.to_string(), "error")
            } else {
                (format!("re: {event}"), "response")
            }
        };
        let runtime = tokio::spawn(runtime(api.address(), 3, echo));
        api.ready(Duration::from_secs(5)).await.expect("it polled");
        // WHEN three events are invoked in turn
        let wait = Duration::from_secs(5);
        let first = api.invoke(b"one".to_vec(), wait).await.unwrap();
        let second = api.invoke(b"two".to_vec(), wait).await.unwrap();
        let third = api.invoke(b"boom".to_vec(), wait).await.unwrap();
        // THEN each answer is its own invocation's
        assert!(matches!(first, Outcome::Response(ref b) if b == "re: one"));
        assert!(matches!(second, Outcome::Response(ref b) if b == "re: two"));
        assert!(matches!(third, Outcome::Error(ref b) if b == "boom"));
        runtime.await.unwrap();
        // AND an invocation nobody takes times out
        let err = api
            .invoke(b"late".to_vec(), Duration::from_millis(100))
            .await
            .unwrap_err();
        assert_eq!(err, InvokeError::Timeout(Duration::from_millis(100)));
    }

    #[tokio::test]
    async fn an_init_error_fails_the_wait() {
        let mut api = WarmRuntimeApi::start(Duration::from_secs(3)).await;
        let status = reqwest::Client::new()
            .post(format!(
                "http://{}/2018-06-01/runtime/init/error",
                api.address()
            ))
            .body("no table")
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 202);
        let err = api.ready(Duration::from_secs(5)).await.unwrap_err();
        assert_eq!(err, InvokeError::Init("no table".into()));
        let err = api
            .invoke(b"{}".to_vec(), Duration::from_secs(5))
            .await
            .unwrap_err();
        assert_eq!(err, InvokeError::Init("no table".into()));
    }
}
