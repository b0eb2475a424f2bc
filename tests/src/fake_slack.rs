//! A fake Slack HTTP server that records what the bot posts.
//!
//! ```text
//! POST /response/{anything}  acts as a response_url: 200 "ok"
//! POST /api/users.info       the user added with `add_user`, else `user_not_found`
//! POST /api/conversations.info  the channel added with `add_conversation`, else `channel_not_found`
//! POST /api/usergroups.users.list  {"ok":true,"users":[…]} of the group set with
//!                            `set_usergroup`, else `no_such_subteam`
//! POST /api/{method}         acts as the Web API: {"ok":true,"channel":..,"ts":"<increasing>"}
//! anything else              404, recorded too (so a wrong URL shows up in failures)
//! ```
//!
//! Faults are scripted with a queue of [`CannedResponse`]s: each request takes the next
//! one, whatever its path; when the queue is empty the routes answer as above. A
//! method can also be broken for as long as a test says ([`FakeSlack::break_method`]):
//! every call to it gets the same answer until [`FakeSlack::mend_method`].

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// A request the fake received.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    /// `POST`, `GET`, ...
    pub method: String,
    /// The path, e.g. `/api/chat.postMessage`.
    pub path: String,
    /// Every header, names lower-cased.
    pub headers: BTreeMap<String, String>,
    /// The body, decoded by its content type.
    pub body: RecordedBody,
    /// The HTTP status the fake answered with.
    pub answered: u16,
    /// The body it answered with.
    pub answer: String,
    /// When it arrived, whole (its body read).
    pub at: std::time::Instant,
}

impl RecordedRequest {
    /// A header's value, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// The JSON body; panics (with the request) if the body was not JSON.
    pub fn json(&self) -> &Value {
        match &self.body {
            RecordedBody::Json(value) => value,
            other => panic!(
                "expected a JSON body on {} {}, got {other:?}",
                self.method, self.path
            ),
        }
    }

    /// The `ts` the fake gave the message (a Web API call's answer), e.g. to
    /// click a button on it or to find replies in its thread.
    pub fn answered_ts(&self) -> Option<String> {
        let answer: Value = serde_json::from_str(&self.answer).ok()?;
        answer.get("ts")?.as_str().map(str::to_string)
    }

    /// A form field of the body (`files.completeUploadExternal`'s `thread_ts`), or
    /// a top-level string field of a JSON body.
    pub fn field(&self, name: &str) -> Option<String> {
        body_field(&self.body, name).as_str().map(str::to_string)
    }

    /// Whether the fake answered with a 2xx status.
    pub fn was_accepted(&self) -> bool {
        (200..300).contains(&self.answered)
    }
}

/// A recorded body.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordedBody {
    /// `application/json`, parsed.
    Json(Value),
    /// `application/x-www-form-urlencoded`, decoded in order.
    Form(Vec<(String, String)>),
    /// Anything else (or a body that did not parse as its content type claimed), as text.
    Text(String),
}

/// A scripted answer for the next request.
#[derive(Debug, Clone)]
pub struct CannedResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: Option<String>,
    delay: Duration,
}

impl CannedResponse {
    /// Answer with `status` and an empty body.
    pub fn status(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Some(String::new()),
            delay: Duration::ZERO,
        }
    }

    /// Answer 429 with `Retry-After: {seconds}`.
    pub fn rate_limited(retry_after_secs: u64) -> Self {
        Self::status(429).with_header("Retry-After", retry_after_secs.to_string())
    }

    /// Answer 200 `{"ok":false,"error":error}`, as the Web API refuses a call.
    pub fn slack_error(error: &str) -> Self {
        Self::status(200)
            .with_header("Content-Type", "application/json")
            .with_body(json!({"ok": false, "error": error}).to_string())
    }

    /// Answer as the route normally would, but only after `delay`.
    pub fn delayed(delay: Duration) -> Self {
        Self {
            status: 200,
            headers: Vec::new(),
            body: None,
            delay,
        }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    /// Sets the body.
    pub fn with_body(mut self, body: impl Into<String>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// The status, headers and body to send, unless the route's usual answer is wanted.
    fn fixed_answer(&self) -> Option<Answer> {
        let body = self.body.clone()?;
        Some((self.status, self.headers.clone(), body))
    }

    /// Waits `delay` before answering.
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// Status, headers and body of an answer.
type Answer = (u16, Vec<(String, String)>, String);

#[derive(Default)]
struct State {
    requests: Mutex<Vec<RecordedRequest>>,
    arrived: Notify,
    script: Mutex<VecDeque<CannedResponse>>,
    next_ts: AtomicU64,
    /// `users.info`'s `user` objects by id.
    users: Mutex<BTreeMap<String, Value>>,
    /// `conversations.info`'s `channel` objects by id.
    conversations: Mutex<BTreeMap<String, Value>>,
    /// `usergroups.users.list`'s `users` by user group id.
    usergroups: Mutex<BTreeMap<String, Vec<String>>>,
    /// Methods answered with a fixed response until mended, by path.
    broken: Mutex<BTreeMap<String, CannedResponse>>,
}

/// A running fake Slack; the server stops when this is dropped.
pub struct FakeSlack {
    addr: SocketAddr,
    state: Arc<State>,
    server: JoinHandle<()>,
}

impl FakeSlack {
    /// Starts a fake on a free loopback port.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake Slack to a loopback port");
        let addr = listener.local_addr().expect("fake Slack address");
        let state = Arc::new(State::default());
        let app = Router::new()
            .fallback(record_and_answer)
            .with_state(Arc::clone(&state));
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("fake Slack server");
        });
        Self {
            addr,
            state,
            server,
        }
    }

    /// The base URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A `response_url` served by the fake: `{url}/response/{name}`.
    pub fn response_url(&self, name: &str) -> String {
        format!("{}/response/{name}", self.url())
    }

    /// [`FakeSlack::response_url`], checked as the bot checks every
    /// `response_url` (its origin taken, as a configured `SLACK_API_URL` pointing
    /// here makes it): for posting to directly.
    pub fn checked_response_url(&self, name: &str) -> opkit::slack::ResponseUrl {
        opkit::slack::response_url::allow_origin_of(&self.url());
        opkit::slack::ResponseUrl::parse(&self.response_url(name))
            .expect("the fake's origin is taken")
    }

    /// The Web API base URL (what `SLACK_API_URL` should be): `{url}/api`.
    pub fn api_url(&self) -> String {
        format!("{}/api", self.url())
    }

    /// Queues `response` for the next request that has no earlier canned response.
    pub fn push_response(&self, response: CannedResponse) {
        self.state
            .script
            .lock()
            .expect("script lock")
            .push_back(response);
    }

    /// Makes `users.info` know `user`, a Slack user object (at least its `id`).
    pub fn add_user(&self, user: Value) {
        let id = user["id"]
            .as_str()
            .expect("a user object has an id")
            .to_owned();
        self.state
            .users
            .lock()
            .expect("users lock")
            .insert(id, user);
    }

    /// Makes `conversations.info` know `channel`, a Slack conversation object
    /// (at least its `id`).
    pub fn add_conversation(&self, channel: Value) {
        let id = channel["id"]
            .as_str()
            .expect("a conversation object has an id")
            .to_owned();
        self.state
            .conversations
            .lock()
            .expect("conversations lock")
            .insert(id, channel);
    }

    /// Makes `usergroups.users.list` answer that `group` (an id such as
    /// `S0ONCALL1`) has exactly `users` (user ids), as an on-call rotation
    /// updating the group would.
    pub fn set_usergroup(&self, group: &str, users: &[&str]) {
        let users = users.iter().map(|u| (*u).to_owned()).collect();
        self.state
            .usergroups
            .lock()
            .expect("usergroups lock")
            .insert(group.to_owned(), users);
    }

    /// Every call to the Web API method `method` (e.g. `usergroups.users.list`)
    /// is answered with `response` until [`FakeSlack::mend_method`]: Slack down
    /// for that method (`CannedResponse::status(503)`), or refusing it
    /// (`CannedResponse::slack_error("missing_scope")`).
    ///
    /// # Panics
    /// If `response` has no fixed answer (a [`CannedResponse::delayed`] one).
    pub fn break_method(&self, method: &str, response: CannedResponse) {
        assert!(
            response.fixed_answer().is_some(),
            "a broken method needs a fixed answer"
        );
        self.state
            .broken
            .lock()
            .expect("broken lock")
            .insert(format!("/api/{method}"), response);
    }

    /// `method` answers as usual again.
    pub fn mend_method(&self, method: &str) {
        self.state
            .broken
            .lock()
            .expect("broken lock")
            .remove(&format!("/api/{method}"));
    }

    /// The next `n` requests are answered with `status`.
    pub fn fail_next(&self, n: usize, status: u16) {
        for _ in 0..n {
            self.push_response(CannedResponse::status(status));
        }
    }

    /// Every request received so far, in order of arrival.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state.requests.lock().expect("requests lock").clone()
    }

    /// How many requests have arrived so far.
    pub fn count(&self) -> usize {
        self.state.requests.lock().expect("requests lock").len()
    }

    /// The requests received on `path` (e.g. `/api/chat.postMessage`), in order.
    pub fn posts_to(&self, path: &str) -> Vec<RecordedRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == "POST" && r.path == path)
            .collect()
    }

    /// Waits until at least `n` requests have arrived and returns all of them.
    ///
    /// # Panics
    /// If they have not arrived within `timeout`, listing those that did.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<RecordedRequest> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Register interest before looking, so an arrival in between is not missed.
            let arrived = self.state.arrived.notified();
            let mut arrived = std::pin::pin!(arrived);
            arrived.as_mut().enable();
            // Count without copying: a thousand arrivals must not copy a million requests.
            if self.count() >= n {
                return self.requests();
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                let requests = self.requests();
                panic!(
                    "fake Slack expected {n} request(s) within {timeout:?}, got {}:\n{}",
                    requests.len(),
                    describe(&requests)
                );
            }
        }
    }
}

impl FakeSlack {
    /// Waits until a request has arrived on `path` (e.g. one `response_url`) and
    /// returns the requests on it; cheap to call from many tasks at once.
    ///
    /// # Panics
    /// If none has arrived within `timeout`.
    pub async fn wait_for_path(&self, path: &str, timeout: Duration) -> Vec<RecordedRequest> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let arrived = self.state.arrived.notified();
            let mut arrived = std::pin::pin!(arrived);
            arrived.as_mut().enable();
            let on_path: Vec<RecordedRequest> = self
                .state
                .requests
                .lock()
                .expect("requests lock")
                .iter()
                .filter(|r| r.path == path)
                .cloned()
                .collect();
            if !on_path.is_empty() {
                return on_path;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                panic!("fake Slack got no request on {path} within {timeout:?}");
            }
        }
    }
}

impl Drop for FakeSlack {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn describe(requests: &[RecordedRequest]) -> String {
    if requests.is_empty() {
        return "  (none)".to_owned();
    }
    requests
        .iter()
        .map(|r| format!("  {} {} -> {}: {:?}", r.method, r.path, r.answered, r.body))
        .collect::<Vec<_>>()
        .join("\n")
}

async fn record_and_answer(
    axum::extract::State(state): axum::extract::State<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let at = std::time::Instant::now();
    let broken = state
        .broken
        .lock()
        .expect("broken lock")
        .get(uri.path())
        .cloned();
    let canned = broken.or_else(|| state.script.lock().expect("script lock").pop_front());
    let body = decode_body(&headers, &body);
    let (status, response_headers, response_body) =
        match canned.as_ref().and_then(CannedResponse::fixed_answer) {
            Some(answer) => answer,
            None => default_answer(&state, &method, uri.path(), &body),
        };
    state
        .requests
        .lock()
        .expect("requests lock")
        .push(RecordedRequest {
            method: method.to_string(),
            path: uri.path().to_owned(),
            headers: header_map(&headers),
            body,
            answered: status,
            answer: response_body.clone(),
            at,
        });
    state.arrived.notify_waiters();
    if let Some(delay) = canned.map(|c| c.delay).filter(|d| !d.is_zero()) {
        tokio::time::sleep(delay).await;
    }
    build_response(status, response_headers, response_body)
}

/// What a route answers when nothing is scripted.
fn default_answer(state: &State, method: &Method, path: &str, body: &RecordedBody) -> Answer {
    let json_header = vec![("Content-Type".to_owned(), "application/json".to_owned())];
    if method != Method::POST {
        return (405, Vec::new(), "method not allowed".to_owned());
    }
    if path.starts_with("/response/") {
        return (200, Vec::new(), "ok".to_owned());
    }
    let lookup = |table: &Mutex<BTreeMap<String, Value>>, arg: &str, field: &str, missing: &str| {
        let found = body_field(body, arg)
            .as_str()
            .and_then(|id| table.lock().expect("directory lock").get(id).cloned());
        let answer = match found {
            Some(object) => json!({"ok": true, field: object}),
            None => json!({"ok": false, "error": missing}),
        };
        (200, json_header.clone(), answer.to_string())
    };
    match path {
        "/api/users.info" => return lookup(&state.users, "user", "user", "user_not_found"),
        "/api/conversations.info" => {
            return lookup(
                &state.conversations,
                "channel",
                "channel",
                "channel_not_found",
            );
        }
        "/api/usergroups.users.list" => {
            let group = body_field(body, "usergroup");
            let users = group.as_str().and_then(|id| {
                state
                    .usergroups
                    .lock()
                    .expect("usergroups lock")
                    .get(id)
                    .cloned()
            });
            let answer = match users {
                Some(users) => json!({"ok": true, "users": users}),
                None => json!({"ok": false, "error": "no_such_subteam"}),
            };
            return (200, json_header, answer.to_string());
        }
        _ => {}
    }
    if path
        .strip_prefix("/api/")
        .is_some_and(|m| !m.is_empty() && !m.contains('/'))
    {
        let n = state.next_ts.fetch_add(1, Ordering::SeqCst) + 1;
        // chat.update answers with the updated message's own ts (Slack's reference,
        // "chat.update"); every other method with a new one.
        let ts = match (path, body_field(body, "ts")) {
            ("/api/chat.update", Value::String(ts)) => ts,
            _ => format!("1700000000.{n:06}"),
        };
        let answer = json!({
            "ok": true,
            "channel": body_field(body, "channel"),
            "ts": ts,
            "message_ts": ts,
        });
        return (200, json_header, answer.to_string());
    }
    (404, Vec::new(), "no such route on fake Slack".to_owned())
}

fn body_field(body: &RecordedBody, name: &str) -> Value {
    match body {
        RecordedBody::Json(value) => value.get(name).cloned().unwrap_or(Value::Null),
        RecordedBody::Form(pairs) => pairs
            .iter()
            .find(|(k, _)| k == name)
            .map_or(Value::Null, |(_, v)| Value::String(v.clone())),
        RecordedBody::Text(_) => Value::Null,
    }
}

fn decode_body(headers: &HeaderMap, body: &[u8]) -> RecordedBody {
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let decoded = if content_type.starts_with("application/json") {
        serde_json::from_slice(body).ok().map(RecordedBody::Json)
    } else if content_type.starts_with("application/x-www-form-urlencoded") {
        serde_urlencoded::from_bytes(body)
            .ok()
            .map(RecordedBody::Form)
    } else {
        None
    };
    decoded.unwrap_or_else(|| RecordedBody::Text(String::from_utf8_lossy(body).into_owned()))
}

fn header_map(headers: &HeaderMap) -> BTreeMap<String, String> {
    headers
        .iter()
        .map(|(name, value)| {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            (name.as_str().to_owned(), value)
        })
        .collect()
}

fn build_response(status: u16, headers: Vec<(String, String)>, body: String) -> Response {
    let status = StatusCode::from_u16(status).expect("canned status is a valid HTTP status");
    let mut response = (status, body).into_response();
    for (name, value) in headers {
        let name = axum::http::HeaderName::try_from(name).expect("canned header name");
        let value = axum::http::HeaderValue::try_from(value).expect("canned header value");
        response.headers_mut().insert(name, value);
    }
    response
}
