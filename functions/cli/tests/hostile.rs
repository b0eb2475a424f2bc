//! Hostile HTTP at `opkit serve` (its own HTTP layer in front of the shared
//! ingress): for each Slack route, requests that are forged, mis-framed or
//! malformed are refused, and nothing runs — no job claimed, nothing stored or
//! audited, nothing sent to Slack. `tests/tests/hostile_ingress.rs` has the full
//! table for the deployed ingress.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use opkit::slack::{SigningSecret, sign};
use opkit_tests::{FakeSlack, slash_command_body};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";

fn data_dir() -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = std::env::temp_dir().join(format!("opkit-hostile-{nanos:x}"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn serve(dir: &Path) -> (String, Child) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_opkit"))
        .args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .env("SLACK_SIGNING_SECRET", SECRET)
        .env("OPKIT_TEAM_IDS", "T0001")
        .env_remove("OPKIT_ADMINS")
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start opkit serve");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .expect("opkit serve printed its address in time")
        .unwrap()
        .unwrap();
    let addr = line
        .strip_prefix("listening on http://")
        .unwrap()
        .to_string();
    (addr, child)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Sends raw HTTP/1.1 bytes and returns the status code of the answer.
async fn raw(addr: &str, request: &[u8]) -> u16 {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    let head = String::from_utf8_lossy(&answer);
    head.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer: {head:?}"))
}

/// A POST with the given extra header lines and body, `Connection: close`.
fn post(path: &str, headers: &[String], body: &[u8]) -> Vec<u8> {
    let mut head = format!("POST {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    for h in headers {
        head.push_str(h);
        head.push_str("\r\n");
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    [head.as_bytes(), body].concat()
}

fn signed(body: &[u8]) -> Vec<String> {
    let ts = now();
    vec![
        format!("X-Slack-Request-Timestamp: {ts}"),
        format!(
            "X-Slack-Signature: {}",
            sign(&SigningSecret::new(SECRET), ts, body)
        ),
    ]
}

#[tokio::test]
async fn hostile_http_to_each_route_runs_nothing() {
    let slack = FakeSlack::start().await;
    let dir = data_dir();
    let (addr, _child) = serve(&dir).await;
    let command = slash_command_body("U1", "queue join perf", &slack.response_url("x"));
    let other = slash_command_body("U2", "queue join perf", &slack.response_url("x"));
    let event = json!({"type": "event_callback", "team_id": "T0001", "event_id": "Ev1",
        "event": {"type": "app_mention", "user": "U1", "text": "<@UBOT> queue join perf",
                  "ts": "1.1", "channel": "C0001"}})
    .to_string();
    let nested = format!("{}{}", "[".repeat(20_000), "]".repeat(20_000));
    let click = serde_urlencoded::to_string([("payload", "{\"type\":\"block_actions\"")]).unwrap();
    let form = "Content-Type: application/x-www-form-urlencoded".to_string();
    let json_type = "Content-Type: application/json".to_string();
    let big = vec![b'a'; opkit::ingress::Route::Commands.max_body() + 1];
    let chunked_big = {
        let mut r = format!(
            "POST /slack/commands HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
             Transfer-Encoding: chunked\r\n{}\r\n{}\r\n\r\n",
            signed(&big)[0],
            signed(&big)[1]
        )
        .into_bytes();
        for chunk in big.chunks(8 * 1024) {
            r.extend(format!("{:x}\r\n", chunk.len()).as_bytes());
            r.extend(chunk);
            r.extend(b"\r\n");
        }
        r.extend(b"0\r\n\r\n");
        r
    };
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        (
            "commands: a valid signature over another body",
            post(
                "/slack/commands",
                &[signed(other.as_bytes()), vec![form.clone()]].concat(),
                command.as_bytes(),
            ),
            401,
        ),
        (
            "commands: the headers twice, the first pair over another body",
            post(
                "/slack/commands",
                &[signed(other.as_bytes()), signed(command.as_bytes())].concat(),
                command.as_bytes(),
            ),
            401,
        ),
        (
            "commands: a header value that is not text",
            [
                b"POST /slack/commands HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nX-Slack-Signature: v0=\xff\xfe\r\n".as_slice(),
                format!("Content-Length: {}\r\n\r\n{command}", command.len()).as_bytes(),
            ]
            .concat(),
            401,
        ),
        (
            "commands: oversized by Content-Length",
            post("/slack/commands", &signed(&big), &big),
            413,
        ),
        ("commands: oversized, chunked", chunked_big, 413),
        (
            "commands: broken form, signed",
            post("/slack/commands", &signed(b"%%%"), b"%%%"),
            400,
        ),
        (
            "commands: GET",
            b"GET /slack/commands HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".to_vec(),
            405,
        ),
        (
            "events: deeply nested JSON, signed",
            post(
                "/slack/events",
                &[signed(nested.as_bytes()), vec![json_type.clone()]].concat(),
                nested.as_bytes(),
            ),
            400,
        ),
        (
            "events: non-UTF-8, signed",
            post("/slack/events", &signed(b"{\"type\":\"\xff\"}"), b"{\"type\":\"\xff\"}"),
            400,
        ),
        (
            "events: forged",
            post(
                "/slack/events",
                &[
                    format!("X-Slack-Request-Timestamp: {}", now()),
                    format!("X-Slack-Signature: {}", sign(&SigningSecret::new("x"), now(), event.as_bytes())),
                ],
                event.as_bytes(),
            ),
            401,
        ),
        (
            "interactions: a truncated payload, signed",
            post("/slack/interactions", &signed(click.as_bytes()), click.as_bytes()),
            400,
        ),
        (
            "interactions: unsigned",
            post("/slack/interactions", std::slice::from_ref(&form), click.as_bytes()),
            401,
        ),
        (
            "an unknown route",
            post("/slack/other", &signed(command.as_bytes()), command.as_bytes()),
            404,
        ),
    ];
    for (name, request, expected) in cases {
        assert_eq!(raw(&addr, &request).await, expected, "{name}");
    }
    // THEN nothing ran: no claim, no state, no audit record, nothing sent to Slack
    let jobs = std::fs::read_dir(dir.join("jobs")).map_or(0, |d| d.count());
    assert_eq!(jobs, 0, "no job was claimed");
    assert!(!dir.join("state").join("queue.json").exists());
    assert!(!dir.join("audit.jsonl").exists());
    assert!(slack.requests().is_empty(), "{:?}", slack.requests());
    std::fs::remove_dir_all(&dir).ok();
}
