//! What the ingress answers Slack: a status and a body, and the one place they
//! become HTTP.

use http::StatusCode;
use serde_json::Value;

/// The answer to one request: a status and a body. [`Answer::into_http`] is the one
/// place it becomes HTTP; Socket Mode reads it to build its acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The HTTP status: 200 when Slack should consider the request handled.
    pub status: StatusCode,
    /// What is sent back.
    pub body: Body,
}

/// The body of an [`Answer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// No bytes.
    Empty,
    /// JSON (`application/json`): a message Slack shows the user, such as a slash
    /// command's ephemeral `{"response_type": "ephemeral", "text": "Working…"}`, or
    /// `{"challenge": …}` for `url_verification`.
    Json(Value),
    /// Plain text (`text/plain; charset=utf-8`): why a request was refused.
    Text(String),
}

impl Answer {
    /// 200 with an empty body: handled, nothing to show.
    pub fn empty() -> Self {
        Self {
            status: StatusCode::OK,
            body: Body::Empty,
        }
    }

    /// 200 with a JSON body.
    pub fn json(value: Value) -> Self {
        Self {
            status: StatusCode::OK,
            body: Body::Json(value),
        }
    }

    /// 200 with an ephemeral message for the user who made the request: `{"response_type":
    /// "ephemeral", "replace_original": false, "text": …}`. Slack shows it to a slash
    /// command's user (and a Socket Mode ack carries it); `replace_original: false`
    /// keeps it from replacing the message a click came from
    /// (<https://docs.slack.dev/interactivity/handling-message-interactions>).
    pub fn ephemeral(text: impl Into<String>) -> Self {
        Self::json(serde_json::json!({
            "response_type": "ephemeral",
            "replace_original": false,
            "text": text.into(),
        }))
    }

    /// A refusal: `status` (4xx, or 5xx when Slack should retry) and why, as text.
    pub fn refuse(status: StatusCode, why: impl Into<String>) -> Self {
        Self {
            status,
            body: Body::Text(why.into()),
        }
    }

    /// The answer as an HTTP response: its status, a `Content-Type`, and the body's
    /// bytes (an empty body is sent as empty text). `opkit serve` and the ingress
    /// Lambda both send this.
    pub fn into_http(self) -> http::Response<String> {
        const TEXT: &str = "text/plain; charset=utf-8";
        let (content_type, body) = match self.body {
            Body::Empty => (TEXT, String::new()),
            Body::Json(json) => ("application/json", json.to_string()),
            Body::Text(text) => (TEXT, text),
        };
        let mut response = http::Response::new(body);
        *response.status_mut() = self.status;
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static(content_type),
        );
        response
    }
}
