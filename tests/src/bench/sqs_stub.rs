//! An SQS endpoint that answers `SendMessage` in microseconds, so a cold-start
//! figure measures the function and not the emulator (moto, in Python, takes
//! 7–10 ms per call).
//!
//! It speaks the AWS JSON 1.0 protocol the SDK uses for SQS: `POST /` with
//! `X-Amz-Target: AmazonSQS.SendMessage`, answered with the documented output's
//! `MessageId` (<https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessage.html>).
//! Any other operation is a 400 `UnsupportedOperation`, so a function calling more
//! than it should fails loudly.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use serde_json::json;
use tokio::task::JoinHandle;

/// The target header's value for `SendMessage`.
pub const SEND_MESSAGE: &str = "AmazonSQS.SendMessage";

/// A running stub; stops when dropped.
pub struct SqsStub {
    addr: SocketAddr,
    sent: Arc<AtomicUsize>,
    server: JoinHandle<()>,
}

impl SqsStub {
    /// Starts on a free loopback port.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the SQS stub to a loopback port");
        let addr = listener.local_addr().expect("SQS stub address");
        let sent = Arc::new(AtomicUsize::new(0));
        let app = Router::new().fallback(answer).with_state(Arc::clone(&sent));
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("SQS stub server");
        });
        Self { addr, sent, server }
    }

    /// The endpoint (`AWS_ENDPOINT_URL`), e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A queue URL on this endpoint (`OPKIT_QUEUE_URL`).
    pub fn queue_url(&self) -> String {
        format!("{}/123456789012/opkit-bench-jobs", self.url())
    }

    /// How many messages were sent.
    pub fn sent(&self) -> usize {
        self.sent.load(Ordering::SeqCst)
    }
}

impl Drop for SqsStub {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn answer(
    State(sent): State<Arc<AtomicUsize>>,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let json_type = [(header::CONTENT_TYPE, "application/x-amz-json-1.0")];
    let is_send = target == SEND_MESSAGE
        && serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .is_some_and(|v| v["MessageBody"].is_string() && v["QueueUrl"].is_string());
    if !is_send {
        let error = json!({
            "__type": "com.amazonaws.sqs#UnsupportedOperation",
            "message": format!("the stub answers SendMessage only, not {target:?}")
        });
        return (StatusCode::BAD_REQUEST, json_type, error.to_string());
    }
    let n = sent.fetch_add(1, Ordering::SeqCst);
    let answer = json!({ "MessageId": format!("00000000-0000-4000-8000-{n:012}") });
    (StatusCode::OK, json_type, answer.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn post(stub: &SqsStub, target: &str, body: &str) -> (u16, serde_json::Value) {
        let response = reqwest::Client::new()
            .post(stub.url())
            .header("x-amz-target", target)
            .body(body.to_string())
            .send()
            .await
            .expect("a response");
        let status = response.status().as_u16();
        (status, response.json().await.expect("JSON"))
    }

    #[tokio::test]
    async fn answers_send_message_and_counts_it() {
        let stub = SqsStub::start().await;
        let body = json!({ "QueueUrl": stub.queue_url(), "MessageBody": "job" }).to_string();
        let (status, answer) = post(&stub, SEND_MESSAGE, &body).await;
        assert_eq!(status, 200);
        assert!(answer["MessageId"].is_string());
        assert_eq!(stub.sent(), 1);
    }

    #[tokio::test]
    async fn refuses_anything_else() {
        let stub = SqsStub::start().await;
        let (status, answer) = post(&stub, "AmazonSQS.ReceiveMessage", "{}").await;
        assert_eq!(status, 400);
        assert!(
            answer["__type"]
                .as_str()
                .unwrap()
                .ends_with("UnsupportedOperation")
        );
        let (status, _) = post(&stub, SEND_MESSAGE, "{\"QueueUrl\":\"q\"}").await;
        assert_eq!(status, 400, "a SendMessage without a body is refused");
        assert_eq!(stub.sent(), 0);
    }
}
