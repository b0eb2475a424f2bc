//! `opkit serve` end to end: the real binary on a free port, driven with signed
//! Slack requests, replying to a fake Slack `response_url`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use opkit::slack::SigningSecret;
use opkit_tests::{FakeSlack, signed_headers, slash_command_body};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStderr, Command};

const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
const WAIT: Duration = Duration::from_secs(10);

struct Served {
    base: String,
    data_dir: PathBuf,
    http: reqwest::Client,
    /// The JSON log lines on stderr, when asked for ([`serve_logging`]).
    logs: Option<Lines<BufReader<ChildStderr>>>,
    _child: Child,
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("opkit-serve-{name}-{}", uuid()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn uuid() -> String {
    format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

/// Starts `opkit serve --addr 127.0.0.1:0` and reads the bound address it prints.
async fn serve(name: &str, extra_env: &[(&str, &str)]) -> Served {
    start(name, extra_env, false).await
}

/// As [`serve`], with the JSON logs of `log_targets` (e.g. `opkit::worker=info`)
/// readable with [`Served::log_where`].
async fn serve_logging(name: &str, extra_env: &[(&str, &str)], log_targets: &str) -> Served {
    let filter = format!("error,{log_targets}");
    let mut env = vec![("RUST_LOG", filter.as_str()), ("OPKIT_LOG_FORMAT", "json")];
    env.extend_from_slice(extra_env);
    start(name, &env, true).await
}

async fn start(name: &str, extra_env: &[(&str, &str)], capture_logs: bool) -> Served {
    let data_dir = temp_dir(name);
    let mut command = Command::new(env!("CARGO_BIN_EXE_opkit"));
    command
        .args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
        .arg(&data_dir)
        .env("SLACK_SIGNING_SECRET", SECRET)
        .env_remove("OPKIT_TEAM_IDS")
        .env_remove("OPKIT_ADMINS")
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(if capture_logs {
            Stdio::piped()
        } else {
            Stdio::inherit()
        })
        .kill_on_drop(true);
    for (k, v) in extra_env {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("start opkit serve");
    let logs = child
        .stderr
        .take()
        .map(|stderr| BufReader::new(stderr).lines());
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(WAIT, lines.next_line())
        .await
        .expect("opkit serve printed its address in time")
        .unwrap()
        .expect("opkit serve printed a line");
    let base = line
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {line}"))
        .to_string();
    Served {
        base,
        data_dir,
        http: reqwest::Client::new(),
        logs,
        _child: child,
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

impl Served {
    async fn post(&self, path: &str, body: &[u8], headers: &[(&str, String)]) -> (u16, String) {
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_vec());
        for (k, v) in headers {
            request = request.header(*k, v);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }

    async fn signed(&self, path: &str, body: &str, timestamp: i64) -> (u16, String) {
        let headers = signed_headers(&SigningSecret::new(SECRET), timestamp, body.as_bytes());
        self.post(path, body.as_bytes(), &headers).await
    }

    /// Reads log lines until one's `fields` satisfy `wanted`; returns them.
    ///
    /// # Panics
    /// If none does within [`WAIT`], listing the lines read.
    async fn log_where(&mut self, what: &str, wanted: impl Fn(&Value) -> bool) -> Value {
        let logs = self.logs.as_mut().expect("started with serve_logging");
        let mut seen = Vec::new();
        let found = tokio::time::timeout(WAIT, async {
            while let Some(line) = logs.next_line().await.unwrap() {
                let fields = serde_json::from_str::<Value>(&line)
                    .map(|l| l["fields"].clone())
                    .unwrap_or(Value::Null);
                if wanted(&fields) {
                    return Some(fields);
                }
                seen.push(line);
            }
            None
        })
        .await;
        match found {
            Ok(Some(fields)) => fields,
            _ => panic!(
                "no log line {what} within {WAIT:?}; read:\n{}",
                seen.join("\n")
            ),
        }
    }

    /// The audit records in the data directory, oldest first.
    fn audit(&self) -> Vec<Value> {
        let path = self.data_dir.join("audit.jsonl");
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn nothing_ran(&self) -> bool {
        !exists(&self.data_dir.join("state").join("queue.json"))
            && !exists(&self.data_dir.join("audit.jsonl"))
    }
}

fn exists(path: &Path) -> bool {
    path.try_exists().unwrap()
}

#[tokio::test]
async fn a_signed_command_is_acked_at_once_and_answered_at_the_response_url() {
    let slack = FakeSlack::start().await;
    // SLACK_API_URL on the fake Slack: its response_urls are taken
    let served = serve("happy", &[("SLACK_API_URL", &slack.api_url())]).await;
    let body = slash_command_body("U1", "queue join perf", &slack.response_url("one"));

    let (status, ack) = served.signed("/slack/commands", &body, now()).await;

    assert_eq!(status, 200, "{ack}");
    let ack: Value = serde_json::from_str(&ack).unwrap();
    assert_eq!(
        ack,
        json!({"response_type": "ephemeral", "replace_original": false, "text": "Working on `queue join perf`…"})
    );
    let posts = slack.wait_for(1, WAIT).await;
    assert_eq!(posts[0].path, "/response/one");
    assert_eq!(
        posts[0].json(),
        &json!({"response_type": "in_channel", "text": "<@U1> holds *perf* now until you leave."})
    );
    let health = served
        .http
        .get(format!("{}/healthz", served.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
}

#[tokio::test]
async fn get_metrics_shows_what_ran_in_prometheus_text() {
    // GIVEN one command acked and answered by `opkit serve`
    let slack = FakeSlack::start().await;
    let served = serve("metrics", &[("SLACK_API_URL", &slack.api_url())]).await;
    let body = slash_command_body("UMETRIC1", "queue join perf", &slack.response_url("m"));
    let (status, ack) = served.signed("/slack/commands", &body, now()).await;
    assert_eq!(status, 200, "{ack}");
    slack.wait_for(1, WAIT).await;
    // WHEN the operator asks for the metrics
    let response = served
        .http
        .get(format!("{}/metrics", served.base))
        .send()
        .await
        .unwrap();
    // THEN Prometheus text, opkit_ names, the command counted by name and outcome
    assert_eq!(response.status().as_u16(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = response.text().await.unwrap();
    assert!(
        text.contains("opkit_commands_total{command=\"queue join\",outcome=\"ran\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("opkit_ack_latency_seconds_count{route=\"commands\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("# TYPE opkit_command_duration_seconds histogram"),
        "{text}"
    );
    assert!(!text.contains("UMETRIC1"), "no user id in a metric: {text}");
    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        assert!(line.starts_with("opkit_"), "{line}");
    }
}

/// A mention of the bot, as Slack sends it to the events route.
fn mention_event(event_id: &str, user: &str, text: &str) -> String {
    json!({
        "token": "unused",
        "team_id": "T0001",
        "api_app_id": "A0001",
        "event": {"type": "app_mention", "user": user, "text": format!("<@UBOT> {text}"),
                  "ts": "1795000000.000100", "channel": "C0001", "event_ts": "1795000000.000100"},
        "type": "event_callback",
        "event_id": event_id,
        "event_time": 1_795_000_000,
        "authorizations": [{"team_id": "T0001", "user_id": "UBOT", "is_bot": true, "is_enterprise_install": false}],
        "is_ext_shared_channel": false
    })
    .to_string()
}

#[tokio::test]
async fn an_event_slack_sends_again_runs_its_command_once() {
    // GIVEN `opkit serve` answering mentions through a fake Slack's Web API
    let slack = FakeSlack::start().await;
    let api = slack.api_url();
    let env = [
        ("SLACK_BOT_TOKEN", "xoxb-test"),
        ("SLACK_API_URL", api.as_str()),
    ];
    let mut served = serve_logging("retried", &env, "opkit::ingress=info,opkit::worker=info").await;
    let event = mention_event("Ev0RETRIED1", "U1", "queue join perf");
    let queued = |fields: &Value| fields["message"] == "queued";

    // WHEN the event comes, is answered, and Slack sends it again as a retry
    assert_eq!(served.signed("/slack/events", &event, now()).await.0, 200);
    let first = served.log_where("queuing the event", queued).await;
    let job_id = first["job_id"].as_str().unwrap().to_string();
    slack.wait_for(1, WAIT).await;
    let retry = [
        ("X-Slack-Retry-Num", "1".to_string()),
        ("X-Slack-Retry-Reason", "http_timeout".to_string()),
    ];
    let mut headers = signed_headers(&SigningSecret::new(SECRET), now(), event.as_bytes()).to_vec();
    headers.extend(retry);
    let (status, _) = served
        .post("/slack/events", event.as_bytes(), &headers)
        .await;

    // THEN the retry is acked and taken as the same job, which is not run again
    // (ignored by the queue while the first still runs, or by the worker, which
    // finds it done, after: so either line may come first)
    assert_eq!(status, 200, "acked, so Slack stops retrying");
    let (taken, ignored) = (std::cell::Cell::new(false), std::cell::Cell::new(false));
    served
        .log_where("taking and ignoring the retry", |f| {
            if f["job_id"] == job_id.as_str() {
                let message = f["message"].as_str().unwrap_or_default();
                taken.set(taken.get() || queued(f));
                ignored.set(ignored.get() || message.ends_with("ignored"));
            }
            taken.get() && ignored.get()
        })
        .await;
    // one reply, in the mention's thread
    let replies = slack.posts_to("/api/chat.postMessage");
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert_eq!(
        replies[0].json()["text"],
        "<@U1> holds *perf* now until you leave."
    );
    assert_eq!(replies[0].json()["thread_ts"], "1795000000.000100");
    // one run in the audit trail
    let runs: Vec<String> = served
        .audit()
        .iter()
        .filter(|r| r["correlation_id"] == job_id.as_str())
        .map(|r| r["outcome"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(runs, ["requested", "succeeded"]);
    assert_eq!(slack.requests().len(), 1, "{:?}", slack.requests());
}

#[tokio::test]
async fn bad_requests_are_refused_and_run_nothing() {
    let slack = FakeSlack::start().await;
    let api = slack.api_url();
    let served = serve(
        "bad",
        &[("OPKIT_TEAM_IDS", "T0001"), ("SLACK_API_URL", &api)],
    )
    .await;
    let url = slack.response_url("bad");
    let body = slash_command_body("U1", "queue join perf", &url);
    let secret = SigningSecret::new(SECRET);

    // forged: signed with another secret
    let forged = signed_headers(
        &SigningSecret::new("not-the-secret"),
        now(),
        body.as_bytes(),
    );
    assert_eq!(
        served
            .post("/slack/commands", body.as_bytes(), &forged)
            .await
            .0,
        401
    );
    // replayed: a valid signature from ten minutes ago
    assert_eq!(
        served.signed("/slack/commands", &body, now() - 600).await.0,
        401
    );
    // from the future
    assert_eq!(
        served.signed("/slack/commands", &body, now() + 600).await.0,
        401
    );
    // unsigned
    assert_eq!(
        served.post("/slack/commands", body.as_bytes(), &[]).await.0,
        401
    );
    // tampered after signing
    let headers = signed_headers(&secret, now(), body.as_bytes());
    let tampered = body.replace("U1", "U2");
    assert_eq!(
        served
            .post("/slack/commands", tampered.as_bytes(), &headers)
            .await
            .0,
        401
    );
    // oversized
    let huge = format!(
        "{body}&pad={}",
        "x".repeat(opkit::ingress::Route::Commands.max_body())
    );
    assert_eq!(served.signed("/slack/commands", &huge, now()).await.0, 413);
    // malformed, but signed
    let (status, text) = served
        .signed("/slack/commands", "%%%not-a-form", now())
        .await;
    assert_eq!(status, 400, "{text}");
    let (status, text) = served.signed("/slack/commands", "text=hello", now()).await;
    assert_eq!(status, 400, "{text}");
    // a team not on the allow-list
    let other_team = body.replace("team_id=T0001", "team_id=T0666");
    let (status, text) = served.signed("/slack/commands", &other_team, now()).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("workspace T0666 is not allowed"), "{text}");
    // an invalid user id in an otherwise good request
    let bad_user = slash_command_body("bob", "queue join perf", &url);
    assert_eq!(
        served.signed("/slack/commands", &bad_user, now()).await.0,
        400
    );

    // THEN nothing ran, nothing was stored, nothing was posted
    assert!(served.nothing_ran());
    assert!(slack.requests().is_empty(), "{:?}", slack.requests());
    // AND a good request afterwards still works
    assert_eq!(served.signed("/slack/commands", &body, now()).await.0, 200);
    slack.wait_for(1, WAIT).await;
}

#[tokio::test]
async fn ssl_check_and_url_verification_are_answered() {
    let slack = FakeSlack::start().await;
    let served = serve("checks", &[]).await;
    let (status, text) = served
        .signed("/slack/commands", "ssl_check=1&token=abc", now())
        .await;
    assert_eq!((status, text.as_str()), (200, ""));
    let challenge = r#"{"token":"t","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}"#;
    let (status, text) = served.signed("/slack/events", challenge, now()).await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        json!({"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"})
    );
    let (status, _) = served.signed("/slack/events", "{not json", now()).await;
    assert_eq!(status, 400);
    assert!(served.nothing_ran());
    assert!(slack.requests().is_empty());
}

#[tokio::test]
async fn a_missing_signing_secret_fails_start_up_naming_it() {
    let output = Command::new(env!("CARGO_BIN_EXE_opkit"))
        .args(["serve", "--addr", "127.0.0.1:0", "--store", "memory"])
        .env_remove("SLACK_SIGNING_SECRET")
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.trim(), "opkit: SLACK_SIGNING_SECRET is not set");
}

#[tokio::test]
async fn a_one_character_signing_secret_fails_start_up_naming_it() {
    // GIVEN the tester's finding: a 1-character SLACK_SIGNING_SECRET
    // WHEN `opkit serve` starts THEN it stops, naming the setting and Slack's length
    let output = Command::new(env!("CARGO_BIN_EXE_opkit"))
        .args(["serve", "--addr", "127.0.0.1:0", "--store", "memory"])
        .env("SLACK_SIGNING_SECRET", "s")
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.trim().starts_with(
            "opkit: SLACK_SIGNING_SECRET is invalid: 1 characters is too short for a signing secret (at least 16; Slack's have 32"
        ),
        "{stderr}"
    );
}

/// Sends `signal` (`TERM`, `INT`) to `child`.
async fn send_signal(child: &Child, signal: &str) {
    let pid = child.id().expect("still running").to_string();
    let sent = Command::new("kill")
        .args([format!("-{signal}"), pid])
        .status()
        .await
        .unwrap();
    assert!(sent.success());
}

#[tokio::test]
async fn sigterm_finishes_the_acked_jobs_before_the_process_ends() {
    // GIVEN `opkit serve` whose reply to an acked command is under way (Slack
    // takes two seconds to take it)
    let slack = FakeSlack::start().await;
    slack.push_response(opkit_tests::CannedResponse::delayed(Duration::from_secs(2)));
    let env = [("SLACK_API_URL", slack.api_url())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut served = serve_logging("sigterm", &env, "opkit::serve=info,opkit::stop=info").await;
    let body = slash_command_body("U1", "queue join perf", &slack.response_url("t"));
    assert_eq!(served.signed("/slack/commands", &body, now()).await.0, 200);
    slack.wait_for(1, WAIT).await;
    // WHEN it is sent SIGTERM (kill, docker stop, systemd)
    send_signal(&served._child, "TERM").await;
    // THEN it says why it stops, and finishes the acked job first
    let asked = served
        .log_where("asked to stop", |f| f["message"] == "asked to stop")
        .await;
    assert_eq!(asked["signal"], "SIGTERM");
    let draining = served
        .log_where("draining", |f| {
            f["message"] == "finishing the acked jobs before stopping"
        })
        .await;
    assert_eq!(draining["jobs"], 1);
    // AND then ends cleanly, with nothing left unfinished
    let mut rest = Vec::new();
    let logs = served.logs.as_mut().unwrap();
    while let Ok(Some(line)) = tokio::time::timeout(WAIT, logs.next_line())
        .await
        .expect("the log ends in time")
    {
        rest.push(line);
    }
    assert!(
        !rest
            .iter()
            .any(|l| l.contains("unfinished") || l.contains("not delivered")),
        "{rest:#?}"
    );
    let status = tokio::time::timeout(WAIT, served._child.wait())
        .await
        .expect("it ends in time")
        .unwrap();
    assert_eq!(status.code(), Some(0), "exited by itself, not killed");
    assert_eq!(slack.requests().len(), 1);
}

#[tokio::test]
async fn a_mention_past_its_users_places_is_acked_200_and_its_user_told_they_are_busy() {
    // GIVEN `opkit serve`, and eight mentions of UHOG's whose answers Slack is
    // slow to take (their jobs hold UHOG's eight places meanwhile)
    let slack = FakeSlack::start().await;
    for _ in 0..8 {
        slack.push_response(opkit_tests::CannedResponse::delayed(Duration::from_secs(3)));
    }
    let api = slack.api_url();
    let env = [
        ("SLACK_BOT_TOKEN", "xoxb-test"),
        ("SLACK_API_URL", api.as_str()),
    ];
    let served = serve("busy-mention", &env).await;
    for i in 0..8 {
        let event = mention_event(&format!("Ev0HOG{i}"), "UHOG", "queue join perf");
        assert_eq!(served.signed("/slack/events", &event, now()).await.0, 200);
    }
    slack.wait_for(8, WAIT).await;
    // WHEN UHOG mentions the bot a ninth time (tester G4: 503)
    let ninth = mention_event("Ev0HOG9", "UHOG", "queue join perf");
    let (status, body) = served.signed("/slack/events", &ninth, now()).await;
    // THEN Slack gets a 200, so it does not send it again minutes later
    assert_eq!(status, 200, "{body}");
    // AND UHOG is told, in a message only they see, in the mention's thread
    slack.wait_for(9, WAIT).await;
    let told: Vec<_> = slack
        .posts_to("/api/chat.postEphemeral")
        .into_iter()
        .filter(|p| {
            p.json()["text"]
                .as_str()
                .is_some_and(|t| t.starts_with("Sorry, you already have 8 commands"))
        })
        .collect();
    assert_eq!(told.len(), 1, "{told:?}");
    let told = told[0].json();
    assert_eq!(told["user"], "UHOG");
    assert_eq!(told["channel"], "C0001");
    assert_eq!(told["thread_ts"], "1795000000.000100");
    assert_eq!(
        told["text"],
        "Sorry, you already have 8 commands waiting or running; I did not take your message. \
         Please try again when one of them has finished."
    );
    // AND the eight it took each got their answer
    assert_eq!(slack.requests().len(), 9);
}
