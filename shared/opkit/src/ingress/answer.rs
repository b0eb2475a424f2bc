//! What the ingress answers Slack: a status and a body, and the one place they
//! become HTTP.

use http::StatusCode;
use serde_json::{Value, json};

use crate::slack::{Mrkdwn, Reply};

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
    /// JSON (`application/json`) of Slack's protocol, not a message:
    /// `{"challenge": …}` for `url_verification`.
    Json(Value),
    /// A message Slack shows the user who made the request (a slash command's
    /// ephemeral "Working on …", a refusal), sent as JSON: rendered by
    /// [`Reply::to_response_json`], so it fits Slack's limits like every other
    /// message ([`Reply::message_fields`]), plus `"replace_original": false` unless
    /// it replaces (an answer must never take the place of the message a click
    /// came from: <https://docs.slack.dev/interactivity/handling-message-interactions>).
    Message(Reply),
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

    /// 200 with a message for the user who made the request ([`Body::Message`]).
    /// Slack shows it to a slash command's user (and a Socket Mode ack carries it).
    pub fn message(reply: Reply) -> Self {
        Self {
            status: StatusCode::OK,
            body: Body::Message(reply),
        }
    }

    /// 200 with an ephemeral text message for the user who made the request:
    /// `{"text": …, "response_type": "ephemeral", "replace_original": false}`.
    pub fn ephemeral(text: impl Into<Mrkdwn>) -> Self {
        Self::message(Reply::text(text))
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
            Body::Text(text) => (TEXT, text),
            json => (
                "application/json",
                json.json().unwrap_or_default().to_string(),
            ),
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

impl Body {
    /// The JSON sent for a [`Body::Json`] or a [`Body::Message`] (what HTTP sends
    /// and a Socket Mode ack carries as its `payload`); `None` for the others.
    pub fn json(&self) -> Option<Value> {
        match self {
            Body::Json(value) => Some(value.clone()),
            Body::Message(reply) => {
                let mut value = reply.to_response_json();
                if !reply.replace_original {
                    value["replace_original"] = json!(false);
                }
                Some(value)
            }
            Body::Empty | Body::Text(_) => None,
        }
    }
}
