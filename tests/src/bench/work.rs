//! The work path: stateful commands through the release worker `bootstrap`, warm,
//! on the emulator — from the ingress's SendMessage to the reply posted, and what
//! each costs in DynamoDB, counted at the client.
//!
//! ```text
//! signed /opkit queue join … ──> opkit_ingress::handle (in process, Stack) ──SendMessage──> SQS (emulator)
//!                                                                                  │
//!   the harness as SQS's event source mapping (BatchSize 10, no batching window,   │
//!   ReportBatchItemFailures): ReceiveMessage (long poll) ──> one SQS event ────────┘
//!        ──> WarmRuntimeApi ──> worker bootstrap (one process, invocation after invocation)
//!              │  DynamoDB through a FaultProxy (no fault: it counts) ──> emulator
//!              └─ reply ──> FakeSlack response_url (its arrival time ends the command's)
//!   ◄── batchItemFailures: every other record is deleted (DeleteMessageBatch)
//! ```
//!
//! Two scenarios of `commands` commands each, by distinct users, each of whom joins
//! an environment of their own (`queue join`) and later leaves it (`queue leave`):
//! every command writes the queue script's one state item (all environments'
//! lines are one state, `STATE#queue`) and posts a reply.
//!
//! - **one at a time**: each user joins, then leaves, before the next user; each
//!   command sent once the last one's reply came: batches of one, no two commands
//!   on the item at once, the state at its least (one line at most) — the floor.
//! - **burst**: the joins sent back to back, then (once all are answered) the
//!   leaves: batches of up to 10 whose records run concurrently on that one item,
//!   so saves conflict and retry (optimistic versions), as a busy team's would;
//!   the state grows to every joiner's line (reported: units follow its size).
//!
//! One warm execution environment (one worker process), so batches run one after
//! another: the template lets up to `WorkerMaximumConcurrency` (5) run at once.
//!
//! Each run is checked: every command got exactly one reply, saying what it did
//! (a join's that the user holds the environment, a leave's that they gave it up);
//! after the burst's joins the state holds each joiner in their line, after the
//! leaves none; the state's version moved by exactly the number of commands (one
//! save each, none lost, none twice). A miss is an error, and the bench exits
//! non-zero.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::DeleteMessageBatchRequestEntry;
use serde_json::Value;
use tokio::sync::watch;

use super::cold::{lambda_environment, lossy, peak_rss_kib};
use super::runtime_api::Outcome;
use super::serve::cpu_secs;
use super::suites::function_env;
use super::warm_api::{InvokeError, WarmRuntimeApi};
use crate::aws::emulator_endpoint;
use crate::capacity::{self, Units};
use crate::fault_proxy::{FaultProxy, Seen};
use crate::serverless::{Stack, sqs_event_from};
use opkit::store::StateStore;

/// The template's event source mapping of the jobs queue: `BatchSize`.
pub const BATCH_SIZE: i32 = 10;
/// Its pollers' long poll (SQS's longest): `WaitTimeSeconds`.
pub const LONG_POLL_SECS: i32 = 20;

/// What to run.
#[derive(Debug, Clone)]
pub struct WorkLoad {
    /// The worker `bootstrap` (release).
    pub worker: PathBuf,
    /// Commands per scenario (even: half join, half leave).
    pub commands: usize,
    /// Where the worker's output goes.
    pub log: PathBuf,
    /// How long one scenario's commands may take to be answered, all together
    /// (a record retried comes back after the queue's visibility timeout, 180 s).
    pub timeout: Duration,
}

/// What the event source mapping does with a batch once its invocation ended.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Settled {
    /// Message ids deleted from the queue.
    pub delete: Vec<String>,
    /// Message ids left on it: they come back after the visibility timeout.
    pub retry: Vec<String>,
    /// Why the whole batch failed, if it did.
    pub whole_batch_failed: Option<String>,
}

impl Settled {
    fn all_failed(ids: &[String], why: String) -> Self {
        Settled {
            delete: Vec::new(),
            retry: ids.to_vec(),
            whole_batch_failed: Some(why),
        }
    }
}

/// SQS's event source mapping with `ReportBatchItemFailures`, after an
/// invocation of the batch `ids` (message ids, in order) ended with `outcome`
/// (AWS Lambda Developer Guide, "Handling errors for an SQS event source",
/// reporting batch item failures):
///
/// - a function error, or an answer that is not JSON: the whole batch failed;
/// - `batchItemFailures` empty, null or missing, or an empty or null answer: all
///   succeeded;
/// - a failure whose `itemIdentifier` is null, empty, not a string or not a
///   message of the batch (or an entry without it): the whole batch failed;
/// - otherwise the named messages failed and every other one is deleted.
pub fn settle(ids: &[String], outcome: &Outcome) -> Settled {
    let body = match outcome {
        Outcome::Error(body) => {
            return Settled::all_failed(ids, format!("the function failed: {}", lossy(body)));
        }
        Outcome::Response(body) => body,
    };
    let answer: Value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        match serde_json::from_slice(body) {
            Ok(answer) => answer,
            Err(_) => {
                return Settled::all_failed(ids, format!("not JSON: {}", lossy(body)));
            }
        }
    };
    let failures = match &answer["batchItemFailures"] {
        Value::Null => Vec::new(),
        Value::Array(failures) => failures.clone(),
        other => {
            return Settled::all_failed(ids, format!("batchItemFailures is not a list: {other}"));
        }
    };
    let mut retry = Vec::new();
    for failure in &failures {
        match failure["itemIdentifier"].as_str() {
            Some(id) if !id.is_empty() && ids.iter().any(|i| i == id) => {
                if !retry.iter().any(|r| r == id) {
                    retry.push(id.to_string());
                }
            }
            _ => {
                return Settled::all_failed(
                    ids,
                    format!("an invalid batch item failure: {failure}"),
                );
            }
        }
    }
    Settled {
        delete: ids
            .iter()
            .filter(|id| !retry.contains(id))
            .cloned()
            .collect(),
        retry: ids
            .iter()
            .filter(|id| retry.contains(id))
            .cloned()
            .collect(),
        whole_batch_failed: None,
    }
}

/// The `p`th percentile (0 < p ≤ 100) of `sorted` by nearest rank: the least
/// value with at least `p`% of the values at or below it.
pub fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// What the event source mapping did.
#[derive(Debug, Default, Clone)]
pub struct MappingLog {
    /// The number of records of each batch handed to the worker, in order.
    pub batches: Vec<usize>,
    /// Records left on the queue as failures (named, or their whole batch failed).
    pub retried: usize,
    /// Why whole batches failed.
    pub batch_failures: Vec<String>,
    /// SQS calls that failed (ReceiveMessage, DeleteMessageBatch).
    pub sqs_errors: Vec<String>,
}

/// One scenario's figures.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Its name in the report.
    pub name: String,
    /// Commands sent.
    pub commands: usize,
    /// Each command's SendMessage → reply posted.
    pub latencies: Vec<Duration>,
    /// What the event source mapping did meanwhile.
    pub mapping: MappingLog,
    /// The worker's DynamoDB requests meanwhile.
    pub dynamodb: Vec<Seen>,
    /// Slack Web API calls meanwhile (replies to `response_url`s not counted).
    pub web_api_calls: usize,
    /// The queue state's JSON at its largest (after the joins), bytes.
    pub state_bytes: usize,
}

/// The worker process's figures over the whole run.
#[derive(Debug, Clone, Default)]
pub struct Process {
    /// exec → its first poll for an invocation.
    pub init: Duration,
    /// DynamoDB requests before that poll.
    pub init_requests: usize,
    /// Peak resident set (`VmHWM`), KiB.
    pub peak_rss_kib: u64,
    /// CPU used (user + system), seconds.
    pub cpu_secs: f64,
    /// The `bootstrap`'s size, bytes.
    pub size: u64,
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

/// `1: 40, 10: 6` — how many batches had each number of records.
fn batch_sizes(batches: &[usize]) -> String {
    let mut counts: BTreeMap<usize, usize> = BTreeMap::new();
    for &b in batches {
        *counts.entry(b).or_default() += 1;
    }
    counts
        .iter()
        .map(|(records, n)| format!("{n}×{records}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The report: a latency table, a DynamoDB table (per command: requests by
/// operation, read and write units, the on-demand cost per million commands at
/// us-east-1 prices), and the worker's process figures.
pub fn report(scenarios: &[Scenario], process: &Process) -> String {
    let mut out = String::new();
    out.push_str("| scenario | commands | batches handed (count×records) | records retried | SendMessage → reply p50 ms | p99 ms | min ms | max ms |\n");
    out.push_str("|---|---|---|---|---|---|---|---|\n");
    for s in scenarios {
        let mut sorted = s.latencies.clone();
        sorted.sort();
        let cell = |d: Option<Duration>| d.map_or_else(|| "–".to_string(), ms);
        let _ = writeln!(
            out,
            "| {} | {} | {} ({}) | {} | {} | {} | {} | {} |",
            s.name,
            s.commands,
            s.mapping.batches.len(),
            batch_sizes(&s.mapping.batches),
            s.mapping.retried,
            cell(percentile(&sorted, 50.0)),
            cell(percentile(&sorted, 99.0)),
            cell(sorted.first().copied()),
            cell(sorted.last().copied()),
        );
    }
    out.push_str("\n| scenario | DynamoDB requests / command (refused: condition or conflict) | by operation, per command | read units / command | write units / command (table + indexes) | DynamoDB on demand, $ per million commands | state at its largest, B |\n");
    out.push_str("|---|---|---|---|---|---|---|\n");
    for s in scenarios {
        let n = s.commands.max(1) as f64;
        let ops = capacity::by_operation(&s.dynamodb)
            .iter()
            .map(|(op, count)| format!("{op} {:.2}", *count as f64 / n))
            .collect::<Vec<_>>()
            .join(", ");
        let units: Units = s.dynamodb.iter().map(capacity::units).sum();
        let (read, table, index) = (
            units.read / n,
            units.write as f64 / n,
            units.index_write as f64 / n,
        );
        let _ = writeln!(
            out,
            "| {} | {:.2} ({:.2}) | {ops} | {read:.2} | {:.2} ({table:.2} + {index:.2}) | {:.2} | {} |",
            s.name,
            s.dynamodb.len() as f64 / n,
            s.dynamodb.iter().filter(|r| capacity::refused(r)).count() as f64 / n,
            table + index,
            capacity::on_demand_per_million(read, table + index),
            s.state_bytes,
        );
    }
    let commands: usize = scenarios.iter().map(|s| s.commands).sum();
    let web: usize = scenarios.iter().map(|s| s.web_api_calls).sum();
    let _ = writeln!(
        out,
        "\nworker: init {} ms (exec → first poll; {} DynamoDB requests), peak RSS {:.1} MiB, CPU {:.2} ms per command over {commands} commands, {} B; Slack Web API calls besides the replies: {web}",
        ms(process.init),
        process.init_requests,
        process.peak_rss_kib as f64 / 1024.0,
        process.cpu_secs * 1000.0 / commands.max(1) as f64,
        process.size,
    );
    let mut answers: Vec<Duration> = scenarios
        .iter()
        .flat_map(|s| s.dynamodb.iter().filter_map(|r| r.upstream))
        .collect();
    answers.sort();
    if let (Some(p50), Some(p99)) = (percentile(&answers, 50.0), percentile(&answers, 99.0)) {
        let _ = writeln!(
            out,
            "the emulator answered the worker's DynamoDB requests in {} ms at the median, {} ms at p99 (one at a time: infra/moto_server.py serialises them)",
            ms(p50),
            ms(p99)
        );
    }
    for s in scenarios {
        for failure in s.mapping.batch_failures.iter().take(3) {
            let _ = writeln!(out, "{}: a whole batch failed: {failure}", s.name);
        }
        for error in s.mapping.sqs_errors.iter().take(3) {
            let _ = writeln!(out, "{}: SQS: {error}", s.name);
        }
    }
    out
}

/// Plays SQS's event source mapping for the jobs queue until `stop`: receive
/// (long poll, up to [`BATCH_SIZE`]), hand the records to the worker as one SQS
/// event, delete those its answer does not name as failures.
async fn event_source_mapping(
    api: Arc<WarmRuntimeApi>,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    queue_arn: String,
    log: Arc<Mutex<MappingLog>>,
    mut stop: watch::Receiver<bool>,
    invocation_timeout: Duration,
) {
    loop {
        let received = tokio::select! {
            received = opkit::sqs::receive(&sqs, &queue_url, BATCH_SIZE, LONG_POLL_SECS) => received,
            _ = stop.wait_for(|stopped| *stopped) => return,
        };
        let messages = match received {
            Ok(messages) => messages,
            Err(e) => {
                log.lock().expect("log").sqs_errors.push(e.to_string());
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if messages.is_empty() {
            continue;
        }
        let ids: Vec<String> = messages.iter().map(|m| m.id.clone()).collect();
        let event =
            serde_json::to_vec(&sqs_event_from(&messages, &queue_arn)).expect("SQS event JSON");
        let settled = match api.invoke(event, invocation_timeout).await {
            Ok(outcome) => settle(&ids, &outcome),
            Err(e @ (InvokeError::Timeout(_) | InvokeError::Init(_))) => {
                Settled::all_failed(&ids, e.to_string())
            }
        };
        let entries: Vec<DeleteMessageBatchRequestEntry> = messages
            .iter()
            .filter(|m| settled.delete.contains(&m.id))
            .enumerate()
            .map(|(i, m)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(format!("m{i}"))
                    .receipt_handle(&m.receipt)
                    .build()
                    .expect("an id and a receipt handle")
            })
            .collect();
        let deleted = if entries.is_empty() {
            None
        } else {
            Some(
                sqs.delete_message_batch()
                    .queue_url(&queue_url)
                    .set_entries(Some(entries))
                    .send()
                    .await,
            )
        };
        let mut log = log.lock().expect("log");
        log.batches.push(ids.len());
        log.retried += settled.retry.len();
        log.batch_failures.extend(settled.whole_batch_failed);
        match deleted {
            Some(Ok(out)) if !out.failed().is_empty() => log
                .sqs_errors
                .push(format!("DeleteMessageBatch failed for {:?}", out.failed())),
            Some(Err(e)) => log.sqs_errors.push(format!(
                "DeleteMessageBatch: {}",
                aws_sdk_sqs::error::DisplayErrorContext(&e)
            )),
            _ => {}
        }
    }
}

/// One command of a scenario: who sends what, and what its reply must say.
struct Command {
    user: String,
    text: String,
    reply_to: String,
    says: &'static str,
}

/// The joins (or the leaves) of scenario `tag`: user `k` joins (leaves)
/// `bench-{tag}-{k}`.
fn commands(tag: &str, count: usize, join: bool, run: &str) -> Vec<Command> {
    (0..count)
        .map(|k| {
            let env = format!("bench-{tag}-{k}");
            let (verb, says) = if join {
                ("join", "holds")
            } else {
                ("leave", "gave up")
            };
            Command {
                user: format!("U{}{k:07}", tag.to_ascii_uppercase()),
                text: format!("queue {verb} {env}"),
                reply_to: format!("{run}-{tag}-{verb}-{k}"),
                says,
            }
        })
        .collect()
}

/// Sends `command` through the in-process ingress (signed as Slack signs it; the
/// ingress seals the job and sends it to the jobs queue): when it was sent.
async fn send(stack: &Stack, command: &Command) -> Result<Instant, String> {
    // The ingress checks the signature's time by the stack's clock: keep it now.
    stack.clock.set(chrono::Utc::now());
    let body = crate::slash_command_body(
        &command.user,
        &command.text,
        &stack.slack.response_url(&command.reply_to),
    );
    let request = stack.signed_event("/slack/commands", &body);
    let sent = Instant::now();
    let (status, ack) = stack.ingress(request).await;
    if status != 200 {
        return Err(format!(
            "`{}`: the ingress answered {status}: {ack}",
            command.text
        ));
    }
    Ok(sent)
}

/// Waits until each of `commands` has a reply, or `deadline`; then checks each
/// has exactly one, saying what it did. Returns each one's time from `sent`.
async fn replies(
    stack: &Stack,
    commands: &[Command],
    sent: &[Instant],
    deadline: Instant,
) -> Result<Vec<Duration>, String> {
    let paths: HashMap<String, usize> = commands
        .iter()
        .enumerate()
        .map(|(i, c)| (format!("/response/{}", c.reply_to), i))
        .collect();
    loop {
        let mut got: Vec<Vec<crate::RecordedRequest>> = vec![Vec::new(); commands.len()];
        for request in stack.slack.requests() {
            if let Some(&i) = paths.get(&request.path) {
                got[i].push(request);
            }
        }
        let missing = got.iter().filter(|g| g.is_empty()).count();
        if missing == 0 {
            // Let a second reply (a record run twice) show before judging.
            tokio::time::sleep(Duration::from_millis(200)).await;
            got.iter_mut().for_each(Vec::clear);
            for request in stack.slack.requests() {
                if let Some(&i) = paths.get(&request.path) {
                    got[i].push(request);
                }
            }
            let mut times = Vec::new();
            for ((command, replies), sent) in commands.iter().zip(&got).zip(sent) {
                if replies.len() != 1 {
                    return Err(format!(
                        "`{}` by {} got {} replies instead of 1",
                        command.text,
                        command.user,
                        replies.len()
                    ));
                }
                let reply = &replies[0];
                let text = match &reply.body {
                    crate::RecordedBody::Json(json) => json["text"].as_str().unwrap_or(""),
                    _ => "",
                };
                if !text.contains(command.says) {
                    return Err(format!(
                        "`{}` by {} was answered {text:?}, not a reply that {}",
                        command.text, command.user, command.says
                    ));
                }
                times.push(reply.at.saturating_duration_since(*sent));
            }
            return Ok(times);
        }
        if Instant::now() > deadline {
            let first = got
                .iter()
                .position(Vec::is_empty)
                .map(|i| commands[i].text.clone())
                .unwrap_or_default();
            return Err(format!(
                "{missing} of {} commands got no reply in time (first: `{first}`)",
                commands.len()
            ));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// The queue script's state as stored.
struct QueueState {
    version: u64,
    /// Each environment's line (users).
    lines: BTreeMap<String, Vec<String>>,
    /// Its JSON's size, bytes (the item holds it, its key and version besides).
    bytes: usize,
}

/// The queue script's state, read from the table.
async fn queue_state(stack: &Stack) -> Result<QueueState, String> {
    let stored = stack
        .store
        .load("queue")
        .await
        .map_err(|e| format!("cannot read the queue state: {e}"))?;
    let mut lines = BTreeMap::new();
    if let Some(envs) = stored.value.as_ref().and_then(|v| v["envs"].as_object()) {
        for (env, line) in envs {
            let users = line
                .as_array()
                .map(|entries| {
                    entries
                        .iter()
                        .filter_map(|e| e["user"].as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            lines.insert(env.clone(), users);
        }
    }
    Ok(QueueState {
        version: stored.version,
        lines,
        bytes: stored.value.as_ref().map_or(0, |v| v.to_string().len()),
    })
}

/// Checks the state after `sent` commands of scenario `tag`: its lines hold each
/// of `joins`' users alone (`joined`), or none of them is left; and its version
/// moved by one per command (each saved once: none lost, none run twice).
fn check_state(
    tag: &str,
    joins: &[Command],
    joined: bool,
    sent: usize,
    before: u64,
    after: (u64, BTreeMap<String, Vec<String>>),
) -> Result<(), String> {
    let (version, lines) = after;
    if version != before + sent as u64 {
        return Err(format!(
            "the queue state went from version {before} to {version}: {sent} commands should save it exactly {sent} times"
        ));
    }
    let prefix = format!("bench-{tag}-");
    let ours: BTreeMap<&String, &Vec<String>> = lines
        .iter()
        .filter(|(env, _)| env.starts_with(&prefix))
        .collect();
    if !joined {
        return match ours.keys().next() {
            None => Ok(()),
            Some(env) => Err(format!(
                "{} lines are left after every leave, e.g. {env}",
                ours.len()
            )),
        };
    }
    for (k, command) in joins.iter().enumerate() {
        let env = format!("{prefix}{k}");
        match ours.get(&env) {
            Some(line) if **line == [command.user.clone()] => {}
            other => {
                return Err(format!(
                    "after the joins, {env} holds {other:?}, not {}",
                    command.user
                ));
            }
        }
    }
    if ours.len() != joins.len() {
        return Err(format!("{} lines after {} joins", ours.len(), joins.len()));
    }
    Ok(())
}

/// What the worker was doing meanwhile: a scenario's slice of the logs.
struct Marks {
    dynamodb: usize,
    slack: usize,
    mapping: MappingLog,
}

fn marks(proxy: &FaultProxy, stack: &Stack, log: &Mutex<MappingLog>) -> Marks {
    Marks {
        dynamodb: proxy.seen().len(),
        slack: stack.slack.requests().len(),
        mapping: log.lock().expect("log").clone(),
    }
}

fn since(
    before: &Marks,
    proxy: &FaultProxy,
    stack: &Stack,
    log: &Mutex<MappingLog>,
) -> (Vec<Seen>, usize, MappingLog) {
    let seen = capacity::dynamodb(&proxy.seen()[before.dynamodb..]);
    let web = stack.slack.requests()[before.slack..]
        .iter()
        .filter(|r| r.path.starts_with("/api/"))
        .count();
    let now = log.lock().expect("log").clone();
    let mapping = MappingLog {
        batches: now.batches[before.mapping.batches.len()..].to_vec(),
        retried: now.retried - before.mapping.retried,
        batch_failures: now.batch_failures[before.mapping.batch_failures.len()..].to_vec(),
        sqs_errors: now.sqs_errors[before.mapping.sqs_errors.len()..].to_vec(),
    };
    (seen, web, mapping)
}

/// Runs both scenarios against the worker and returns their figures, or what
/// went wrong.
pub async fn run(load: &WorkLoad) -> Result<(Vec<Scenario>, Process), String> {
    if load.commands < 2 || !load.commands.is_multiple_of(2) {
        return Err(format!(
            "--commands must be an even number of at least 2 (half join, half leave), not {}",
            load.commands
        ));
    }
    let size = std::fs::metadata(&load.worker)
        .map_err(|e| format!("cannot read {}: {e}", load.worker.display()))?
        .len();
    let stack = Stack::start().await;
    let proxy = FaultProxy::start().await;
    let timeout_secs = u64::from(opkit::timing::WORKER_TIMEOUT_SECS);
    let mut api = WarmRuntimeApi::start(Duration::from_secs(timeout_secs)).await;
    let output = std::fs::File::create(&load.log)
        .map_err(|e| format!("cannot create {}: {e}", load.log.display()))?;
    let mut worker = tokio::process::Command::new(&load.worker)
        .env_clear()
        .envs(lambda_environment(&api.address()))
        .envs(function_env(
            &stack,
            &emulator_endpoint(),
            &stack.queues.url,
        ))
        // As template.yaml sizes it.
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        // Its DynamoDB client, and only it, through the counting proxy.
        .env("AWS_ENDPOINT_URL_DYNAMODB", proxy.url())
        .stdin(Stdio::null())
        .stdout(output.try_clone().map_err(|e| e.to_string())?)
        .stderr(output)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", load.worker.display()))?;
    let started = Instant::now();
    let pid = worker.id().unwrap_or(0);
    let ready = tokio::select! {
        ready = api.ready(Duration::from_secs(60)) => ready.map_err(|e| e.to_string()),
        status = worker.wait() => Err(format!("the worker exited before it polled: {status:?}")),
    };
    let polled = ready.map_err(|e| format!("{e} (its output: {})", load.log.display()))?;
    let init_requests = capacity::dynamodb(&proxy.seen()).len();

    let api = Arc::new(api);
    let log = Arc::new(Mutex::new(MappingLog::default()));
    let (stop, stopped) = watch::channel(false);
    let queue_name = stack.queues.url.rsplit('/').next().unwrap_or_default();
    let mapping = tokio::spawn(event_source_mapping(
        api.clone(),
        stack.sqs.clone(),
        stack.queues.url.clone(),
        format!("arn:aws:sqs:us-east-1:123456789012:{queue_name}"),
        log.clone(),
        stopped,
        Duration::from_secs(timeout_secs + 5),
    ));

    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let half = load.commands / 2;
    let mut scenarios = Vec::new();
    let result: Result<(), String> = async {
        for (name, tag, paced) in [
            ("one at a time (join, leave, join, …)", "p", true),
            (
                "burst (the joins back to back, then the leaves)",
                "b",
                false,
            ),
        ] {
            let before = marks(&proxy, &stack, &log);
            let mut latencies = Vec::new();
            let mut state_bytes = 0;
            let joins = commands(tag, half, true, &run_id);
            let leaves = commands(tag, half, false, &run_id);
            if paced {
                // Each user joins and leaves before the next: the state stays at its
                // least, and no two commands meet on it.
                let version = queue_state(&stack).await?.version;
                let deadline = Instant::now() + load.timeout;
                for command in joins.iter().zip(&leaves).flat_map(|(j, l)| [j, l]) {
                    let sent = send(&stack, command).await?;
                    let one = std::slice::from_ref(command);
                    latencies.extend(replies(&stack, one, &[sent], deadline).await?);
                    state_bytes = state_bytes.max(queue_state(&stack).await?.bytes);
                }
                let after = queue_state(&stack).await?;
                check_state(
                    tag,
                    &joins,
                    false,
                    load.commands,
                    version,
                    (after.version, after.lines),
                )
                .map_err(|e| format!("{name}: {e}"))?;
            } else {
                for (half_commands, joined) in [(&joins, true), (&leaves, false)] {
                    let version = queue_state(&stack).await?.version;
                    let deadline = Instant::now() + load.timeout;
                    let mut sent = Vec::new();
                    for command in half_commands {
                        sent.push(send(&stack, command).await?);
                    }
                    latencies.extend(replies(&stack, half_commands, &sent, deadline).await?);
                    let after = queue_state(&stack).await?;
                    state_bytes = state_bytes.max(after.bytes);
                    check_state(
                        tag,
                        &joins,
                        joined,
                        half,
                        version,
                        (after.version, after.lines),
                    )
                    .map_err(|e| format!("{name}: {e}"))?;
                }
            }
            let (dynamodb, web_api_calls, mapping) = since(&before, &proxy, &stack, &log);
            scenarios.push(Scenario {
                name: name.to_string(),
                commands: load.commands,
                latencies,
                mapping,
                dynamodb,
                web_api_calls,
                state_bytes,
            });
        }
        Ok(())
    }
    .await;
    let _ = stop.send(true);
    let _ = mapping.await;
    let process = Process {
        init: polled.into_std().saturating_duration_since(started),
        init_requests,
        peak_rss_kib: peak_rss_kib(pid),
        cpu_secs: cpu_secs(pid),
        size,
    };
    let _ = worker.start_kill();
    let _ = worker.wait().await;
    result.map(|()| (scenarios, process))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Bytes;

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("m{i}")).collect()
    }

    fn answered(body: &str) -> Outcome {
        Outcome::Response(Bytes::from(body.to_string()))
    }

    #[test]
    fn the_records_not_named_as_failures_are_deleted() {
        // GIVEN a batch of three, the worker naming the second as failed
        let batch = ids(3);
        let settled = settle(
            &batch,
            &answered(r#"{"batchItemFailures":[{"itemIdentifier":"m1"}]}"#),
        );
        // THEN the others are deleted, the second comes back later
        assert_eq!(settled.delete, ["m0", "m2"]);
        assert_eq!(settled.retry, ["m1"]);
        assert_eq!(settled.whole_batch_failed, None);
    }

    #[test]
    fn empty_or_missing_failures_delete_the_whole_batch() {
        let batch = ids(2);
        for body in [
            r#"{"batchItemFailures":[]}"#,
            r#"{"batchItemFailures":null}"#,
            "{}",
            "null",
            "",
        ] {
            let settled = settle(&batch, &answered(body));
            assert_eq!(settled.delete, batch, "{body:?}");
            assert!(settled.retry.is_empty(), "{body:?}");
        }
    }

    #[test]
    fn an_error_or_an_invalid_answer_fails_the_whole_batch() {
        let batch = ids(2);
        let error = settle(&batch, &Outcome::Error(Bytes::from_static(b"panicked")));
        assert_eq!(error.retry, batch);
        assert!(error.delete.is_empty());
        assert!(error.whole_batch_failed.unwrap().contains("panicked"));
        for body in [
            "not json",
            r#"{"batchItemFailures":[{"itemIdentifier":""}]}"#,
            r#"{"batchItemFailures":[{"itemIdentifier":null}]}"#,
            r#"{"batchItemFailures":[{"itemId":"m0"}]}"#,
            r#"{"batchItemFailures":[{"itemIdentifier":"m9"}]}"#,
            r#"{"batchItemFailures":"m0"}"#,
        ] {
            let settled = settle(&batch, &answered(body));
            assert_eq!(settled.retry, batch, "{body}");
            assert!(settled.delete.is_empty(), "{body}");
            assert!(settled.whole_batch_failed.is_some(), "{body}");
        }
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let values: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&values, 50.0), Some(Duration::from_millis(50)));
        assert_eq!(percentile(&values, 99.0), Some(Duration::from_millis(99)));
        assert_eq!(percentile(&values, 100.0), Some(Duration::from_millis(100)));
        let few = [Duration::from_millis(3), Duration::from_millis(7)];
        assert_eq!(percentile(&few, 50.0), Some(Duration::from_millis(3)));
        assert_eq!(percentile(&few, 99.0), Some(Duration::from_millis(7)));
        assert_eq!(percentile(&[], 50.0), None);
    }

    fn seen(operation: &str, body: &str, response: &str) -> Seen {
        Seen {
            operation: operation.to_string(),
            at: Instant::now(),
            fault: None,
            body: body.to_string(),
            response: response.to_string(),
            upstream: None,
        }
    }

    #[test]
    fn the_report_gives_figures_per_command() {
        // GIVEN two commands, each a claim, a consistent read and a transaction of two
        let claim = seen("PutItem", r#"{"Item":{"pk":{"S":"JOB#1"}}}"#, "{}");
        let read = seen("GetItem", r#"{"ConsistentRead":false}"#, "{}");
        let commit = seen(
            "TransactWriteItems",
            r#"{"TransactItems":[{"Put":{"Item":{"pk":{"S":"A"}}}},{"Put":{"Item":{"pk":{"S":"B"},"gsi1pk":{"S":"C"},"gsi1sk":{"S":"D"}}}}]}"#,
            "{}",
        );
        let scenario = Scenario {
            name: "paced".into(),
            commands: 2,
            latencies: (1..=2).map(|n| Duration::from_millis(10 * n)).collect(),
            mapping: MappingLog {
                batches: vec![1, 1],
                ..MappingLog::default()
            },
            dynamodb: [&claim, &read, &commit, &claim, &read, &commit]
                .into_iter()
                .cloned()
                .collect(),
            web_api_calls: 0,
            state_bytes: 900,
        };
        let process = Process {
            init: Duration::from_millis(12),
            init_requests: 0,
            peak_rss_kib: 10240,
            cpu_secs: 0.01,
            size: 8_000_000,
        };
        // WHEN it is reported
        let text = report(&[scenario], &process);
        // THEN latencies, requests and units are per command: 3 requests, half a
        // read unit, 1 + 2 × 2 table write units and 1 index write
        // ($0.0625 + 6 × $0.625)
        assert!(
            text.contains("| paced | 2 | 2 (2×1) | 0 | 10.0 | 20.0 | 10.0 | 20.0 |"),
            "{text}"
        );
        assert!(
            text.contains(
                "| paced | 3.00 (0.00) | GetItem 1.00, PutItem 1.00, TransactWriteItems 1.00 | 0.50 | 6.00 (5.00 + 1.00) | 3.81 | 900 |"
            ),
            "{text}"
        );
        assert!(text.contains("peak RSS 10.0 MiB"), "{text}");
        assert!(text.contains("CPU 5.00 ms per command"), "{text}");
    }

    #[test]
    fn the_state_check_catches_a_lost_or_missing_save() {
        let joins = commands("p", 2, true, "run");
        let lines = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(env, user)| (env.to_string(), vec![user.to_string()]))
                .collect::<BTreeMap<_, _>>()
        };
        let full = lines(&[("bench-p-0", "UP0000000"), ("bench-p-1", "UP0000001")]);
        assert_eq!(
            check_state("p", &joins, true, 2, 5, (7, full.clone())),
            Ok(())
        );
        // one save short: a lost update, or a command that did nothing
        assert!(check_state("p", &joins, true, 2, 5, (6, full.clone())).is_err());
        // a joiner missing from their line
        let short = lines(&[("bench-p-0", "UP0000000")]);
        assert!(check_state("p", &joins, true, 2, 5, (7, short)).is_err());
        // after the leaves: nothing of ours left (others' lines are theirs)
        let others = lines(&[("perf", "UOTHER")]);
        assert_eq!(check_state("p", &joins, false, 2, 7, (9, others)), Ok(()));
        assert!(check_state("p", &joins, false, 2, 7, (9, full)).is_err());
    }
}
