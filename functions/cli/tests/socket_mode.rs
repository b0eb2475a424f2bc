//! `opkit serve --socket-mode` end to end: the real binary, a fake Socket Mode
//! server (a WebSocket server on a loopback port that speaks Slack's envelope
//! protocol), and the fake Slack for `apps.connections.open`, `response_url`s and
//! the Web API. Nothing sleeps: every wait is for an event, with a timeout as the
//! upper bound.

use std::process::Stdio;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use opkit_tests::{CannedResponse, FakeSlack, slash_command_body};
use serde_json::{Map, Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};

const WAIT: Duration = Duration::from_secs(10);
const OPEN: &str = "/api/apps.connections.open";

/// A fake of Slack's WebSocket endpoint: hands each accepted connection to the test.
struct FakeSocketMode {
    addr: std::net::SocketAddr,
    connections: mpsc::UnboundedReceiver<Connection>,
    server: JoinHandle<()>,
}

impl FakeSocketMode {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, connections) = mpsc::unbounded_channel();
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let mut path = String::new();
                #[expect(
                    clippy::result_large_err,
                    reason = "the signature tungstenite's handshake callback requires"
                )]
                let remember_path = |request: &Request, response: Response| {
                    path = request.uri().path().to_owned();
                    Ok(response)
                };
                let Ok(socket) = tokio_tungstenite::accept_hdr_async(stream, remember_path).await
                else {
                    continue;
                };
                if tx.send(Connection { path, socket }).is_err() {
                    return;
                }
            }
        });
        Self {
            addr,
            connections,
            server,
        }
    }

    /// The URL of connection `name`, as `apps.connections.open` would give it.
    fn url(&self, name: &str) -> String {
        format!("ws://{}/link/{name}", self.addr)
    }

    /// Makes the fake Slack's next answer an `apps.connections.open` success
    /// pointing at connection `name`.
    fn offer(&self, slack: &FakeSlack, name: &str) {
        slack.push_response(
            CannedResponse::status(200)
                .with_header("Content-Type", "application/json")
                .with_body(json!({"ok": true, "url": self.url(name)}).to_string()),
        );
    }

    /// Waits for the bot to connect.
    async fn accept(&mut self) -> Connection {
        tokio::time::timeout(WAIT, self.connections.recv())
            .await
            .expect("the bot connected to the fake Socket Mode server in time")
            .expect("the fake Socket Mode server is running")
    }
}

impl Drop for FakeSocketMode {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// One WebSocket connection from the bot, seen from Slack's side.
struct Connection {
    path: String,
    socket: WebSocketStream<TcpStream>,
}

impl Connection {
    async fn send(&mut self, frame: Value) {
        self.send_text(frame.to_string()).await;
    }

    async fn send_text(&mut self, text: String) {
        self.socket.send(Message::text(text)).await.unwrap();
    }

    async fn hello(&mut self) {
        self.send(json!({
            "type": "hello",
            "num_connections": 1,
            "debug_info": {"host": "applink-fake", "approximate_connection_time": 18060},
            "connection_info": {"app_id": "A0001"}
        }))
        .await;
    }

    /// The next text frame from the bot, as JSON.
    async fn receive(&mut self) -> Value {
        let next = async {
            loop {
                match self.socket.next().await {
                    Some(Ok(Message::Text(text))) => {
                        return serde_json::from_str(text.as_str()).expect("the bot sends JSON");
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    other => panic!("expected a frame from the bot, got {other:?}"),
                }
            }
        };
        tokio::time::timeout(WAIT, next)
            .await
            .expect("the bot sent a frame in time")
    }

    /// Waits until the bot closes this connection; it must send nothing else first.
    async fn closed_by_bot(&mut self) {
        let closed = async {
            loop {
                match self.socket.next().await {
                    None | Some(Ok(Message::Close(_))) | Some(Err(_)) => return,
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(other)) => panic!("expected the bot to close, got {other:?}"),
                }
            }
        };
        tokio::time::timeout(WAIT, closed)
            .await
            .expect("the bot closed the old connection in time");
    }
}

/// Starts `opkit serve --socket-mode --store memory` against the fakes; its
/// stderr is captured (`capture_stderr`) or shown with the test's output.
fn start_bot(slack: &FakeSlack, extra_env: &[(&str, &str)], capture_stderr: bool) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_opkit"));
    command
        .args(["serve", "--socket-mode", "--store", "memory"])
        .env("SLACK_API_URL", slack.api_url())
        .env("SLACK_APP_TOKEN", "xapp-test")
        .env("SLACK_BOT_TOKEN", "xoxb-test")
        .env_remove("SLACK_SIGNING_SECRET")
        .env_remove("OPKIT_TEAM_IDS")
        .env_remove("OPKIT_ADMINS")
        .env("RUST_LOG", "error")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(if capture_stderr {
            Stdio::piped()
        } else {
            Stdio::inherit()
        })
        .kill_on_drop(true);
    for (k, v) in extra_env {
        command.env(k, v);
    }
    command.spawn().expect("start opkit serve --socket-mode")
}

/// A running bot with its first connection open and greeted.
struct Connected {
    slack: FakeSlack,
    socket: FakeSocketMode,
    bot: Child,
    connection: Connection,
}

async fn connected() -> Connected {
    connected_capturing(false).await
}

async fn connected_capturing(capture_stderr: bool) -> Connected {
    connected_with(&[], capture_stderr).await
}

async fn connected_with(extra_env: &[(&str, &str)], capture_stderr: bool) -> Connected {
    let slack = FakeSlack::start().await;
    let mut socket = FakeSocketMode::start().await;
    socket.offer(&slack, "1");
    let mut bot = start_bot(&slack, extra_env, capture_stderr);
    let mut connection = socket.accept().await;
    connection.hello().await;
    // The bot says so once Slack has said hello.
    let mut stdout = BufReader::new(bot.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(WAIT, stdout.next_line())
        .await
        .expect("the bot printed a line in time")
        .unwrap();
    assert_eq!(line.as_deref(), Some("connected to Slack (Socket Mode)"));
    Connected {
        slack,
        socket,
        bot,
        connection,
    }
}

/// A `slash_commands` envelope: the same fields as the HTTP form, as JSON strings.
fn slash_envelope(envelope_id: &str, user: &str, text: &str, response_url: &str) -> Value {
    let form = slash_command_body(user, text, response_url);
    let fields: Vec<(String, String)> = serde_urlencoded::from_str(&form).unwrap();
    let payload: Map<String, Value> = fields
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    json!({
        "envelope_id": envelope_id,
        "type": "slash_commands",
        "accepts_response_payload": true,
        "payload": payload,
    })
}

fn mention_envelope(envelope_id: &str, user: &str, text: &str) -> Value {
    json!({
        "envelope_id": envelope_id,
        "type": "events_api",
        "accepts_response_payload": false,
        "retry_attempt": 0,
        "retry_reason": "",
        "payload": {
            "token": "unused",
            "team_id": "T0001",
            "api_app_id": "A0001",
            "event": {"type": "app_mention", "user": user, "text": format!("<@UBOT> {text}"),
                      "ts": "1795000000.000100", "channel": "C0001", "event_ts": "1795000000.000100"},
            "type": "event_callback",
            "event_id": "Ev0001",
            "event_time": 1_795_000_000,
            "authorizations": [{"team_id": "T0001", "user_id": "UBOT", "is_bot": true, "is_enterprise_install": false}],
            "is_ext_shared_channel": false
        }
    })
}

fn working_ack(envelope_id: &str, text: &str) -> Value {
    json!({
        "envelope_id": envelope_id,
        "payload": {"response_type": "ephemeral", "text": format!("Working on `{text}`…")},
    })
}

/// Runs `queue join {queue}` as `user` over `connection` and checks the ack and
/// the reply at the `response_url` (the `n`th request the fake Slack has seen).
async fn join_queue(
    slack: &FakeSlack,
    connection: &mut Connection,
    id: &str,
    queue: &str,
    n: usize,
) {
    let text = format!("queue join {queue}");
    let response_url = slack.response_url(id);
    connection
        .send(slash_envelope(id, "U1", &text, &response_url))
        .await;
    assert_eq!(connection.receive().await, working_ack(id, &text));
    let requests = slack.wait_for(n, WAIT).await;
    let reply = &requests[n - 1];
    assert_eq!(reply.path, format!("/response/{id}"));
    assert_eq!(
        reply.json(),
        &json!({"response_type": "in_channel", "text": format!("<@U1> holds *{queue}* now until you leave.")})
    );
}

async fn exit_and_stderr(bot: Child) -> (Option<i32>, String) {
    let output = tokio::time::timeout(WAIT, bot.wait_with_output())
        .await
        .expect("the bot exited in time")
        .unwrap();
    (
        output.status.code(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[tokio::test]
async fn a_slash_command_is_acked_on_the_socket_and_answered_at_the_response_url() {
    let Connected {
        slack,
        mut connection,
        bot: _bot,
        ..
    } = connected().await;

    // The connection was opened with the app-level token, on the URL Slack gave.
    let opens = slack.posts_to(OPEN);
    assert_eq!(opens.len(), 1);
    assert_eq!(opens[0].header("authorization"), Some("Bearer xapp-test"));
    assert_eq!(connection.path, "/link/1");

    join_queue(&slack, &mut connection, "env-1", "perf", 2).await;
}

#[tokio::test]
async fn a_mention_is_acked_and_answered_in_its_thread() {
    let Connected {
        slack,
        mut connection,
        bot: _bot,
        ..
    } = connected().await;

    connection
        .send(mention_envelope("env-2", "U1", "queue join perf"))
        .await;

    assert_eq!(connection.receive().await, json!({"envelope_id": "env-2"}));
    let requests = slack.wait_for(2, WAIT).await;
    let post = &requests[1];
    assert_eq!(post.path, "/api/chat.postMessage");
    assert_eq!(post.header("authorization"), Some("Bearer xoxb-test"));
    let body = post.json();
    assert_eq!(body["channel"], "C0001");
    assert_eq!(body["thread_ts"], "1795000000.000100");
    assert_eq!(body["text"], "<@U1> holds *perf* now until you leave.");
}

#[tokio::test]
async fn an_event_slack_sends_again_runs_its_command_once() {
    // GIVEN the bot, logging what its worker does as JSON
    let env = [
        ("RUST_LOG", "error,opkit::worker=info"),
        ("OPKIT_LOG_FORMAT", "json"),
    ];
    let Connected {
        slack,
        mut connection,
        mut bot,
        ..
    } = connected_with(&env, true).await;
    let mut logs = BufReader::new(bot.stderr.take().unwrap()).lines();

    // WHEN a mention is answered, and Slack sends the same event again
    connection
        .send(mention_envelope("env-2", "U1", "queue join perf"))
        .await;
    assert_eq!(connection.receive().await, json!({"envelope_id": "env-2"}));
    slack.wait_for(2, WAIT).await;
    let mut again = mention_envelope("env-3", "U1", "queue join perf");
    again["retry_attempt"] = json!(1);
    again["retry_reason"] = json!("timeout");
    connection.send(again).await;

    // THEN the retry is acked, and the worker says it did not run it again
    assert_eq!(connection.receive().await, json!({"envelope_id": "env-3"}));
    let ignored = tokio::time::timeout(WAIT, async {
        while let Some(line) = logs.next_line().await.unwrap() {
            let line: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
            let message = line["fields"]["message"].as_str().unwrap_or_default();
            if message.ends_with("ignored") {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(ignored, Ok(true), "the worker ignored the second delivery");
    let replies = slack.posts_to("/api/chat.postMessage");
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert_eq!(
        replies[0].json()["text"],
        "<@U1> holds *perf* now until you leave."
    );
}

#[tokio::test]
async fn a_refresh_request_opens_a_new_connection_that_works() {
    let Connected {
        slack,
        mut socket,
        connection: mut first,
        bot: _bot,
        ..
    } = connected().await;
    join_queue(&slack, &mut first, "before", "perf", 2).await;

    // WHEN Slack asks for a refresh
    socket.offer(&slack, "2");
    first
        .send(json!({"type": "disconnect", "reason": "refresh_requested",
                     "debug_info": {"host": "applink-fake"}}))
        .await;

    // THEN the bot asks for a new URL, connects to it and drops the old socket
    let mut second = socket.accept().await;
    assert_eq!(second.path, "/link/2");
    first.closed_by_bot().await;
    assert_eq!(slack.posts_to(OPEN).len(), 2);
    // AND commands work on the new connection
    second.hello().await;
    join_queue(&slack, &mut second, "after", "staging", 4).await;
}

#[tokio::test]
async fn a_lost_connection_is_reopened_after_a_short_backoff() {
    let Connected {
        slack,
        mut socket,
        connection,
        bot: _bot,
        ..
    } = connected().await;

    // WHEN the socket drops without a word
    socket.offer(&slack, "2");
    drop(connection);

    // THEN the bot opens a new one (after its first, 1 s, backoff) that works
    let mut second = socket.accept().await;
    assert_eq!(second.path, "/link/2");
    second.hello().await;
    join_queue(&slack, &mut second, "after", "perf", 3).await;
}

#[tokio::test]
async fn a_transient_refusal_to_open_is_retried_after_a_backoff() {
    let slack = FakeSlack::start().await;
    let mut socket = FakeSocketMode::start().await;
    // GIVEN Slack fails the first apps.connections.open with a transient error
    slack.push_response(CannedResponse::slack_error("internal_error"));
    socket.offer(&slack, "1");

    let _bot = start_bot(&slack, &[], false);

    // THEN the bot tries again and connects
    let mut connection = socket.accept().await;
    assert_eq!(slack.posts_to(OPEN).len(), 2);
    connection.hello().await;
    join_queue(&slack, &mut connection, "env-1", "perf", 3).await;
}

#[tokio::test]
async fn ctrl_c_closes_the_socket_and_exits_cleanly() {
    let Connected {
        bot,
        mut connection,
        ..
    } = connected().await;

    let pid = bot.id().expect("the bot is running").to_string();
    let kill = Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .await
        .unwrap();
    assert!(kill.success());

    connection.closed_by_bot().await;
    let (code, _) = exit_and_stderr(bot).await;
    assert_eq!(code, Some(0));
}

#[tokio::test]
async fn malformed_envelopes_are_acked_or_ignored_and_the_connection_keeps_working() {
    let Connected {
        slack,
        mut connection,
        bot: _bot,
        ..
    } = connected().await;

    // Not JSON, and a frame without an envelope_id: nothing to ack. Acks are
    // sent in order, so the next frame received answers the next envelope.
    connection.send_text("{not json".to_owned()).await;
    connection
        .send(json!({"type": "events_api", "payload": {}}))
        .await;
    // An unknown type: acked so that Slack does not send it again.
    connection
        .send(json!({"envelope_id": "bad-1", "type": "brand_new_type", "payload": {}}))
        .await;
    assert_eq!(connection.receive().await, json!({"envelope_id": "bad-1"}));
    // An event payload that does not parse.
    connection
        .send(json!({"envelope_id": "bad-2", "type": "events_api",
                     "accepts_response_payload": false, "payload": {"type": "event_callback"}}))
        .await;
    assert_eq!(connection.receive().await, json!({"envelope_id": "bad-2"}));
    // A slash command missing its fields: acked, and the user is told why.
    connection
        .send(json!({"envelope_id": "bad-3", "type": "slash_commands",
                     "accepts_response_payload": true, "payload": {"text": "queue join perf"}}))
        .await;
    let ack = connection.receive().await;
    assert_eq!(ack["envelope_id"], "bad-3");
    assert_eq!(ack["payload"]["response_type"], "ephemeral");
    let shown = ack["payload"]["text"].as_str().unwrap();
    assert!(shown.starts_with("Sorry, I cannot run that:"), "{shown}");
    // A slash command from an invalid user id: refused as over HTTP.
    let mut bad_user = slash_envelope("bad-4", "bob", "queue join perf", &slack.response_url("x"));
    bad_user["accepts_response_payload"] = json!(false);
    connection.send(bad_user).await;
    assert_eq!(connection.receive().await, json!({"envelope_id": "bad-4"}));
    // A binary frame is ignored.
    connection
        .socket
        .send(Message::binary(b"\x00\x01".to_vec()))
        .await
        .unwrap();

    // THEN nothing ran, and a good command still works
    assert_eq!(slack.requests().len(), 1, "{:?}", slack.requests());
    join_queue(&slack, &mut connection, "good", "perf", 2).await;
}

#[tokio::test]
async fn link_disabled_stops_the_bot_with_a_clear_message() {
    let Connected {
        bot,
        mut connection,
        ..
    } = connected_capturing(true).await;

    connection
        .send(json!({"type": "disconnect", "reason": "link_disabled"}))
        .await;

    let (code, stderr) = exit_and_stderr(bot).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr
            .trim()
            .starts_with("opkit: Slack disabled this app's Socket Mode connection (link_disabled)"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_refused_app_token_stops_the_bot_naming_slacks_error() {
    let slack = FakeSlack::start().await;
    slack.push_response(CannedResponse::slack_error("invalid_auth"));

    let (code, stderr) = exit_and_stderr(start_bot(&slack, &[], true)).await;

    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(
        stderr.trim(),
        "opkit: cannot open a Socket Mode connection: Slack refused apps.connections.open: invalid_auth"
    );
}

#[tokio::test]
async fn a_missing_or_malformed_app_token_fails_start_up_naming_it() {
    let slack = FakeSlack::start().await;
    let missing = start_bot(&slack, &[("SLACK_APP_TOKEN", "")], true);
    let (code, stderr) = exit_and_stderr(missing).await;
    assert_eq!(code, Some(1));
    assert_eq!(stderr.trim(), "opkit: SLACK_APP_TOKEN is not set");

    let bot_token = start_bot(
        &slack,
        &[("SLACK_APP_TOKEN", "xoxb-not-an-app-token")],
        true,
    );
    let (code, stderr) = exit_and_stderr(bot_token).await;
    assert_eq!(code, Some(1));
    assert_eq!(
        stderr.trim(),
        "opkit: SLACK_APP_TOKEN is invalid: expected an app-level token starting with `xapp-`"
    );
    assert!(!stderr.contains("xoxb-not-an-app-token"));
    assert!(slack.requests().is_empty());
}

#[tokio::test]
async fn socket_mode_and_an_http_address_do_not_mix() {
    let output = Command::new(env!("CARGO_BIN_EXE_opkit"))
        .args(["serve", "--socket-mode", "--addr", "127.0.0.1:0"])
        .env("SLACK_APP_TOKEN", "xapp-test")
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("--socket-mode"), "{stderr}");
}

/// Payloads in the shapes Slack sends (shared/opkit/tests/fixtures/slack/README.md).
const CONNECT_MENTION: &str =
    include_str!("../../../shared/opkit/tests/fixtures/slack/connect_mention.json");
const CONNECT_CLICK: &str =
    include_str!("../../../shared/opkit/tests/fixtures/slack/connect_click.json");

#[tokio::test]
async fn a_member_of_another_organisation_gets_no_answer_over_the_socket() {
    // GIVEN the bot allowed for its own workspace only
    let Connected {
        slack,
        mut connection,
        bot: _bot,
        ..
    } = connected_with(&[("OPKIT_TEAM_IDS", "T0001")], false).await;

    // WHEN a Slack Connect user of another organisation mentions it and clicks
    // one of its buttons in a shared channel
    let payload: Value = serde_json::from_str(CONNECT_MENTION).unwrap();
    connection
        .send(json!({"envelope_id": "ext-1", "type": "events_api",
                     "accepts_response_payload": false, "payload": payload}))
        .await;
    // THEN each envelope is acked, so that Slack does not send it again
    assert_eq!(connection.receive().await, json!({"envelope_id": "ext-1"}));
    let payload: Value = serde_json::from_str(CONNECT_CLICK).unwrap();
    connection
        .send(json!({"envelope_id": "ext-2", "type": "interactive",
                     "accepts_response_payload": false, "payload": payload}))
        .await;
    assert_eq!(connection.receive().await, json!({"envelope_id": "ext-2"}));

    // AND nothing ran: the next request Slack sees is the answer to a member's command
    join_queue(&slack, &mut connection, "member", "perf", 2).await;
    assert!(slack.posts_to("/api/chat.postMessage").is_empty());
}

#[tokio::test]
async fn a_frame_over_the_limit_is_refused_from_its_header_and_the_bot_reconnects() {
    // GIVEN the bot, logging warnings as JSON
    let env = [("RUST_LOG", "warn"), ("OPKIT_LOG_FORMAT", "json")];
    let Connected {
        slack,
        mut socket,
        connection: mut first,
        mut bot,
        ..
    } = connected_with(&env, true).await;
    let mut logs = BufReader::new(bot.stderr.take().unwrap()).lines();
    socket.offer(&slack, "2");

    // WHEN Slack's side starts a text frame announcing one byte more than the
    // limit, and sends only its first bytes
    let size =
        (opkit::ingress::Route::largest_body() + opkit::ingress::ENVELOPE_OVERHEAD) as u64 + 1;
    let mut header = vec![0x81, 127]; // FIN + text; a 64-bit length follows (RFC 6455 §5.2)
    header.extend_from_slice(&size.to_be_bytes());
    header.extend_from_slice(br#"{"envelope_id":"huge","type":"events_api","payload":{"#);
    let raw = first.socket.get_mut();
    tokio::io::AsyncWriteExt::write_all(raw, &header)
        .await
        .unwrap();

    // THEN the bot drops the connection at once, without waiting for the rest of
    // the frame, and says why
    first.closed_by_bot().await;
    let why = tokio::time::timeout(WAIT, async {
        while let Some(line) = logs.next_line().await.unwrap() {
            let line: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
            if let Some(why) = line["fields"]["why"].as_str() {
                return why.to_owned();
            }
        }
        String::new()
    })
    .await
    .expect("the bot logged why it dropped the connection");
    assert!(why.contains("too long"), "{why}");

    // AND it reconnects, and a large envelope within the limit (a mention past
    // 64 KiB) is handled on the new connection
    let mut second = socket.accept().await;
    second.hello().await;
    let mut mention = mention_envelope("big", "U1", "queue join perf");
    mention["payload"]["event"]["blocks"] = json!([{"type": "rich_text", "block_id": "pad",
        "elements": [{"type": "rich_text_section",
                      "elements": [{"type": "text", "text": "x".repeat(100 * 1024)}]}]}]);
    assert!(mention.to_string().len() > 64 * 1024);
    second.send(mention).await;
    assert_eq!(second.receive().await, json!({"envelope_id": "big"}));
    let posts = slack.wait_for(3, WAIT).await;
    assert_eq!(posts[2].path, "/api/chat.postMessage");
    assert_eq!(
        posts[2].json()["text"],
        "<@U1> holds *perf* now until you leave."
    );
}
