//! The harness of the Socket Mode tests: a fake of Slack's Socket Mode server (a
//! WebSocket server on a loopback port that speaks Slack's envelope protocol), the
//! `opkit serve --socket-mode` process started against it and the fake Slack, and
//! the envelopes Slack sends. Shared by the test files that drive the binary over a
//! socket; each uses part of it.
#![allow(
    dead_code,
    reason = "each test binary uses a different part of the harness"
)]

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

pub(crate) const WAIT: Duration = Duration::from_secs(10);
pub(crate) const OPEN: &str = "/api/apps.connections.open";

/// A fake of Slack's WebSocket endpoint: hands each accepted connection to the test.
pub(crate) struct FakeSocketMode {
    addr: std::net::SocketAddr,
    connections: mpsc::UnboundedReceiver<Connection>,
    server: JoinHandle<()>,
}

impl FakeSocketMode {
    pub(crate) async fn start() -> Self {
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
    pub(crate) fn url(&self, name: &str) -> String {
        format!("ws://{}/link/{name}", self.addr)
    }

    /// Makes the fake Slack's next answer an `apps.connections.open` success
    /// pointing at connection `name`.
    pub(crate) fn offer(&self, slack: &FakeSlack, name: &str) {
        slack.push_response(
            CannedResponse::status(200)
                .with_header("Content-Type", "application/json")
                .with_body(json!({"ok": true, "url": self.url(name)}).to_string()),
        );
    }

    /// Waits for the bot to connect.
    pub(crate) async fn accept(&mut self) -> Connection {
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
pub(crate) struct Connection {
    pub(crate) path: String,
    pub(crate) socket: WebSocketStream<TcpStream>,
}

impl Connection {
    pub(crate) async fn send(&mut self, frame: Value) {
        self.send_text(frame.to_string()).await;
    }

    pub(crate) async fn send_text(&mut self, text: String) {
        self.socket.send(Message::text(text)).await.unwrap();
    }

    pub(crate) async fn hello(&mut self) {
        self.send(json!({
            "type": "hello",
            "num_connections": 1,
            "debug_info": {"host": "applink-fake", "approximate_connection_time": 18060},
            "connection_info": {"app_id": "A0001"}
        }))
        .await;
    }

    /// The next text frame from the bot, as JSON.
    pub(crate) async fn receive(&mut self) -> Value {
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
    pub(crate) async fn closed_by_bot(&mut self) {
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
pub(crate) fn start_bot(
    slack: &FakeSlack,
    extra_env: &[(&str, &str)],
    capture_stderr: bool,
) -> Child {
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
pub(crate) struct Connected {
    pub(crate) slack: FakeSlack,
    pub(crate) socket: FakeSocketMode,
    pub(crate) bot: Child,
    pub(crate) connection: Connection,
}

pub(crate) async fn connected() -> Connected {
    connected_capturing(false).await
}

pub(crate) async fn connected_capturing(capture_stderr: bool) -> Connected {
    connected_with(&[], capture_stderr).await
}

pub(crate) async fn connected_with(extra_env: &[(&str, &str)], capture_stderr: bool) -> Connected {
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
pub(crate) fn slash_envelope(
    envelope_id: &str,
    user: &str,
    text: &str,
    response_url: &str,
) -> Value {
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

pub(crate) fn mention_envelope(envelope_id: &str, user: &str, text: &str) -> Value {
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

pub(crate) fn working_ack(envelope_id: &str, text: &str) -> Value {
    json!({
        "envelope_id": envelope_id,
        "payload": {"response_type": "ephemeral", "replace_original": false, "text": format!("Working on `{text}`…")},
    })
}

/// Runs `queue join {queue}` as `user` over `connection` and checks the ack and
/// the reply at the `response_url` (the `n`th request the fake Slack has seen).
pub(crate) async fn join_queue(
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

pub(crate) async fn exit_and_stderr(bot: Child) -> (Option<i32>, String) {
    let output = tokio::time::timeout(WAIT, bot.wait_with_output())
        .await
        .expect("the bot exited in time")
        .unwrap();
    (
        output.status.code(),
        String::from_utf8(output.stderr).unwrap(),
    )
}
