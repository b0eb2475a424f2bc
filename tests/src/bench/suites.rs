//! The cold-start suites: which processes run, what each is handed, what counts as
//! its answer, and the report.
//!
//! Runs are interleaved in rounds (every target once per round), so load from the
//! rest of the machine falls on all of them alike and ratios within a run hold.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use super::cold::{RunError, Sample, Spread, Target, run_once};
use super::sqs_stub::SqsStub;
use crate::aws::unique_name;
use crate::serverless::{ADMIN, ENVELOPE_KEY, SECRET, Stack, apigw_v2_event_json, sqs_event};
use crate::slack_request::{TEAM_ID, signed_headers, slash_command_body};
use opkit::slack::SigningSecret;
use opkit::sqs::create_queues;

/// What a target is handed and how its answer is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A signed `/opkit help` through API Gateway (HTTP API, base64 body); the
    /// answer must be a 200.
    SlashCommand,
    /// The same, to the ingress: besides the 200, exactly one job must have reached
    /// the queue (an ingress that cannot enqueue still answers 200, with an
    /// ephemeral error for the user).
    Queued(Queue),
    /// One sealed job (a stateful `queue join`) in an SQS event; the answer must
    /// list no batch item failure, and the reply must have reached the fake Slack.
    Job,
    /// EventBridge's scheduled event; the answer must not be an error.
    Schedule,
}

/// The queue an ingress row sends to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queue {
    /// The stub ([`SqsStub`]): counted by its `sent()`.
    Stub,
    /// [`Bench::ingress_queue`] on the emulator: its messages are received and deleted.
    Emulator,
}

/// One row of the report: a target, what it is handed, and its runs.
#[derive(Debug)]
pub struct Row {
    /// The process.
    pub target: Target,
    /// Its event.
    pub kind: Kind,
    /// The file whose size is reported (the `bootstrap`), if any.
    pub binary: Option<PathBuf>,
    /// The runs that answered as expected.
    pub samples: Vec<Sample>,
    /// The runs that did not, and why.
    pub failures: Vec<String>,
}

impl Row {
    /// A row for `target`, handed `kind` events.
    pub fn new(target: Target, kind: Kind, binary: Option<PathBuf>) -> Self {
        Self {
            target,
            kind,
            binary,
            samples: Vec::new(),
            failures: Vec::new(),
        }
    }

    /// The spread of the runs' exec → response times.
    pub fn total(&self) -> Option<Spread> {
        Spread::of(self.samples.iter().map(|s| s.total))
    }
}

/// The settings every Opkit function gets in the suites (the emulator's stack).
pub fn function_env(stack: &Stack, endpoint: &str, queue_url: &str) -> Vec<(String, String)> {
    let table = stack.config.require_table().expect("the stack has a table");
    [
        ("SLACK_SIGNING_SECRET", SECRET.to_string()),
        ("SLACK_BOT_TOKEN", "xoxb-test".to_string()),
        ("SLACK_API_URL", stack.slack.api_url()),
        ("OPKIT_ADMINS", ADMIN.to_string()),
        ("OPKIT_TEAM_IDS", TEAM_ID.to_string()),
        ("OPKIT_TABLE", table.to_string()),
        ("OPKIT_QUEUE_URL", queue_url.to_string()),
        ("OPKIT_ENVELOPE_KEY", ENVELOPE_KEY.to_string()),
        ("AWS_ENDPOINT_URL", endpoint.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// The ingress's event: API Gateway's (HTTP API, payload v2) for a slash command
/// signed now, with a fresh `trigger_id`.
pub fn slash_command_event() -> Vec<u8> {
    let body = slash_command_body(
        ADMIN,
        "help",
        "https://hooks.slack.com/commands/T0001/1/bench",
    );
    let now = chrono::Utc::now().timestamp();
    let headers = signed_headers(&SigningSecret::new(SECRET), now, body.as_bytes());
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    apigw_v2_event_json("/slack/commands", body.as_bytes(), &headers, true)
        .to_string()
        .into_bytes()
}

/// EventBridge's scheduled event, as the expiry function's rule delivers it.
pub fn schedule_event() -> Vec<u8> {
    json!({
        "version": "0",
        "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/opkit-expiry"],
        "detail": {}
    })
    .to_string()
    .into_bytes()
}

/// Checks an API Gateway answer: a 200.
pub fn check_http_ok(body: &[u8]) -> Result<(), String> {
    let answer: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    match answer["statusCode"].as_u64() {
        Some(200) => Ok(()),
        _ => Err(super::cold::lossy(body)),
    }
}

/// Checks an SQS batch answer: no batch item failure.
pub fn check_batch_ok(body: &[u8]) -> Result<(), String> {
    let answer: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    match answer["batchItemFailures"].as_array() {
        Some(failures) if failures.is_empty() => Ok(()),
        _ => Err(super::cold::lossy(body)),
    }
}

/// Everything the suites share: the emulator's stack, the SQS stub, the log.
pub struct Bench {
    /// The emulator's stack (table, queues, fake Slack) the functions use.
    pub stack: Stack,
    /// The stub answering `SendMessage`.
    pub stub: SqsStub,
    /// A queue on the emulator of the ingress's own, apart from the stack's jobs
    /// queue (which carries the worker's jobs).
    pub ingress_queue: String,
    /// Where the processes' output goes.
    pub log: std::fs::File,
    /// How long one run may take before it counts as failed.
    pub timeout: Duration,
}

impl Bench {
    /// Starts the stack on the emulator (`AWS_ENDPOINT_URL`) and the stub.
    pub async fn start(log: &Path, timeout: Duration) -> Self {
        let stack = Stack::start().await;
        let ingress_queue = create_queues(&stack.sqs, &unique_name("bench-ingress"))
            .await
            .expect("create the ingress's queue")
            .url;
        Self {
            stack,
            ingress_queue,
            stub: SqsStub::start().await,
            log: std::fs::File::create(log).expect("create the bench log"),
            timeout,
        }
    }

    /// Runs every row once per round, `rounds` times.
    pub async fn run(&self, rows: &mut [Row], rounds: usize) {
        for round in 0..rounds {
            for row in rows.iter_mut() {
                match self.run_one(row, round).await {
                    Ok(sample) => row.samples.push(sample),
                    Err(e) => row.failures.push(e.to_string()),
                }
            }
        }
    }

    /// Receives and deletes what the ingress queue holds; how many messages.
    async fn take_ingress_queue(&self) -> usize {
        let mut taken = 0;
        loop {
            let received = self
                .stack
                .sqs
                .receive_message()
                .queue_url(&self.ingress_queue)
                .max_number_of_messages(10)
                .wait_time_seconds(0)
                .send()
                .await
                .expect("receive from the ingress's queue on the emulator");
            let messages = received.messages.unwrap_or_default();
            if messages.is_empty() {
                return taken;
            }
            for message in &messages {
                self.stack
                    .sqs
                    .delete_message()
                    .queue_url(&self.ingress_queue)
                    .set_receipt_handle(message.receipt_handle.clone())
                    .send()
                    .await
                    .expect("delete from the ingress's queue on the emulator");
            }
            taken += messages.len();
        }
    }

    async fn run_one(&self, row: &Row, round: usize) -> Result<Sample, RunError> {
        match row.kind {
            Kind::SlashCommand => {
                let event = slash_command_event();
                run_once(&row.target, event, check_http_ok, &self.log, self.timeout).await
            }
            Kind::Queued(queue) => {
                let before = self.stub.sent();
                let event = slash_command_event();
                let sample =
                    run_once(&row.target, event, check_http_ok, &self.log, self.timeout).await?;
                let queued = match queue {
                    Queue::Stub => self.stub.sent() - before,
                    Queue::Emulator => self.take_ingress_queue().await,
                };
                if queued != 1 {
                    return Err(RunError::Unexpected(format!(
                        "acked, but {queued} jobs reached the queue instead of 1"
                    )));
                }
                Ok(sample)
            }
            Kind::Schedule => {
                let check = |_: &[u8]| Ok(());
                run_once(
                    &row.target,
                    schedule_event(),
                    check,
                    &self.log,
                    self.timeout,
                )
                .await
            }
            Kind::Job => {
                let reply_to = format!("bench-{}-{round}", uuid::Uuid::new_v4().simple());
                let message = self
                    .stack
                    .queue_command(ADMIN, &format!("queue join perf{round}"), &reply_to)
                    .await;
                let event = serde_json::to_vec(&sqs_event(&[message])).expect("SQS event JSON");
                let sample =
                    run_once(&row.target, event, check_batch_ok, &self.log, self.timeout).await?;
                if self
                    .stack
                    .slack
                    .posts_to(&format!("/response/{reply_to}"))
                    .is_empty()
                {
                    return Err(RunError::Unexpected("no reply reached Slack".into()));
                }
                Ok(sample)
            }
        }
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

/// The report: one Markdown row per target (median, min–max of exec → response;
/// init and first invocation medians; peak RSS; stripped size), then the ratios of
/// each row's median to `baseline`'s and of `peers` to `ours`.
pub fn report(rows: &[Row], baseline: &str, ours: &str, peers: &[&str]) -> String {
    let mut out = String::new();
    out.push_str("| process | runs | exec → response, median (min–max) ms | init ms | first invoke ms | peak RSS MiB | size B |\n");
    out.push_str("|---|---|---|---|---|---|---|\n");
    for row in rows {
        let size = row
            .binary
            .as_ref()
            .and_then(|p| std::fs::metadata(p).ok())
            .map(|m| m.len().to_string())
            .unwrap_or_else(|| "–".into());
        let peak = row
            .samples
            .iter()
            .map(|s| s.peak_rss_kib)
            .max()
            .unwrap_or(0);
        let init = Spread::of(row.samples.iter().map(|s| s.init));
        let invoke = Spread::of(row.samples.iter().map(|s| s.invoke));
        let cell = match (row.total(), init, invoke) {
            (Some(t), Some(i), Some(v)) => format!(
                "{} ({}–{}) | {} | {}",
                ms(t.median),
                ms(t.min),
                ms(t.max),
                ms(i.median),
                ms(v.median)
            ),
            _ => "no run answered | – | –".into(),
        };
        let _ = writeln!(
            out,
            "| {} | {}{} | {cell} | {:.1} | {size} |",
            row.target.name,
            row.samples.len(),
            if row.failures.is_empty() {
                String::new()
            } else {
                format!(" ({} failed)", row.failures.len())
            },
            peak as f64 / 1024.0,
        );
    }
    let median = |name: &str| {
        rows.iter()
            .find(|r| r.target.name == name)
            .and_then(Row::total)
            .map(|s| s.median.as_secs_f64())
    };
    if let (Some(ours_t), Some(floor)) = (median(ours), median(baseline)) {
        let _ = writeln!(out, "\n{ours} / {baseline}: {:.2}×", ours_t / floor);
    }
    for peer in peers {
        if let (Some(ours_t), Some(p)) = (median(ours), median(peer)) {
            let _ = writeln!(out, "{peer} / {ours}: {:.1}×", p / ours_t);
        }
    }
    for row in rows.iter().filter(|r| !r.failures.is_empty()) {
        let _ = writeln!(
            out,
            "\n{} failures, first: {}",
            row.target.name, row.failures[0]
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_judged() {
        assert!(check_http_ok(br#"{"statusCode":200,"body":"ok"}"#).is_ok());
        assert!(check_http_ok(br#"{"statusCode":401,"body":"no"}"#).is_err());
        assert!(check_http_ok(b"not json").is_err());
        assert!(check_batch_ok(br#"{"batchItemFailures":[]}"#).is_ok());
        assert!(check_batch_ok(br#"{"batchItemFailures":[{"itemIdentifier":"1"}]}"#).is_err());
        assert!(check_batch_ok(br#"{}"#).is_err());
    }

    #[test]
    fn the_slash_command_event_is_signed_api_gateway_v2() {
        let event: Value = serde_json::from_slice(&slash_command_event()).unwrap();
        assert_eq!(event["version"], "2.0");
        assert_eq!(event["isBase64Encoded"], true);
        assert!(
            event["headers"]["x-slack-signature"]
                .as_str()
                .unwrap()
                .starts_with("v0=")
        );
        // Each event is a new invocation: Slack makes a trigger_id per command.
        assert_ne!(slash_command_event(), slash_command_event());
    }

    #[test]
    fn the_report_gives_ratios_within_the_run() {
        let sample = |ms: u64| Sample {
            init: Duration::from_millis(ms / 2),
            invoke: Duration::from_millis(ms / 2),
            total: Duration::from_millis(ms),
            peak_rss_kib: 2048,
        };
        let mut floor = Row::new(Target::new("floor", "/bin/true"), Kind::SlashCommand, None);
        floor.samples = vec![sample(4), sample(4)];
        let mut ours = Row::new(
            Target::new("ingress", "/bin/true"),
            Kind::SlashCommand,
            None,
        );
        ours.samples = vec![sample(8), sample(8)];
        let mut peer = Row::new(Target::new("bolt", "/bin/true"), Kind::SlashCommand, None);
        peer.samples = vec![sample(400)];
        peer.failures = vec!["boom".into()];
        let text = report(&[floor, ours, peer], "floor", "ingress", &["bolt"]);
        assert!(text.contains("ingress / floor: 2.00×"), "{text}");
        assert!(text.contains("bolt / ingress: 50.0×"), "{text}");
        assert!(
            text.contains("| bolt | 1 (1 failed) | 400.0 (400.0–400.0)"),
            "{text}"
        );
        assert!(text.contains("bolt failures, first: boom"), "{text}");
    }
}
