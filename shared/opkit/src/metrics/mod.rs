//! The bot's own metrics: what ran, what was refused, how long it took.
//!
//! Each measurement is one [`Sample`], handed to the process's sink:
//!
//! - deployed, [`Sink::Emf`]: one line of CloudWatch's embedded metric format
//!   (EMF) per sample on standard output, which CloudWatch Logs turns into metrics
//!   in the namespace `OPKIT_METRICS_NAMESPACE` (the template sets
//!   `Opkit/<stack name>`) — no API call, no extra latency;
//! - `opkit serve`, [`Sink::Prometheus`]: counters and histograms kept in the
//!   process, shown by `GET /metrics` in Prometheus' text format, names prefixed
//!   `opkit_`;
//! - anything else (tests, the shell): nothing is recorded.
//!
//! | metric (EMF) | Prometheus | unit | dimensions |
//! |---|---|---|---|
//! | `Commands` | `opkit_commands_total` | count | `Command`, `Outcome` |
//! | `CommandDuration` | `opkit_command_duration_seconds` | ms | `Command` |
//! | `AckLatency` | `opkit_ack_latency_seconds` | ms | `Route` |
//! | `QueueToReply` | `opkit_queue_to_reply_seconds` | ms | — |
//! | `SlackPostFailures` | `opkit_slack_post_failures_total` | count | `Via` |
//! | `JobTimeouts` | `opkit_job_timeouts_total` | count | `Command` |
//! | `ExpiryActions` | `opkit_expiry_actions_total` | count | `Action` |
//! | `StateEvictions` | `opkit_state_evictions_total` | count | `Script`, `What` |
//!
//! Dimensions are low-cardinality by construction: a command's registered name
//! (never the text typed), an outcome, a route, a fixed word. No user, channel or
//! team id is ever a dimension or a property of a line: each metric has a separate
//! cost per distinct dimension value in CloudWatch, and the audit trail, not the
//! metrics, says who did what.

mod emf;
mod prometheus;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use crate::audit::Outcome;
use crate::engine::bot::Bot;
use crate::ingress::Route;
use crate::job::Job;

pub use emf::level as emf_level;
pub use prometheus::{CONTENT_TYPE, Registry};

/// The variable naming the CloudWatch namespace of the EMF lines.
pub const NAMESPACE_VAR: &str = "OPKIT_METRICS_NAMESPACE";
/// The namespace when [`NAMESPACE_VAR`] is unset.
pub const DEFAULT_NAMESPACE: &str = "Opkit";

/// How a metric's value is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A number of events (EMF `Count`; a Prometheus counter).
    Count,
    /// A duration in milliseconds (EMF `Milliseconds`; a Prometheus histogram in
    /// seconds).
    Milliseconds,
}

/// One measurement: a metric, its value and its dimensions.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The metric's name (`Commands`).
    pub name: &'static str,
    /// Its unit.
    pub unit: Unit,
    /// The value: 1 for an event, a duration in milliseconds.
    pub value: f64,
    /// `(dimension, value)` pairs; the values are low-cardinality (see the module).
    pub dimensions: Vec<(&'static str, String)>,
}

/// Where samples go.
pub enum Sink {
    /// EMF lines in `namespace`, through `write` (standard output in a Lambda).
    Emf {
        /// The CloudWatch namespace.
        namespace: String,
        /// The lines' `level`, for Lambda's log filter ([`emf_level`]).
        level: &'static str,
        /// Writes one whole line.
        write: Box<dyn Fn(&str) + Send + Sync>,
    },
    /// Kept in a registry for `GET /metrics`.
    Prometheus(Arc<Registry>),
}

static SINK: OnceLock<Sink> = OnceLock::new();

/// Sets the process's sink; the first call wins (later ones are ignored and
/// return `false`). Call once, at start-up.
pub fn install(sink: Sink) -> bool {
    SINK.set(sink).is_ok()
}

/// For a Lambda: EMF lines on standard output, in the namespace
/// `OPKIT_METRICS_NAMESPACE` (or [`DEFAULT_NAMESPACE`]), at the level the
/// function's log setting keeps ([`emf_level`]).
pub fn install_emf_from_env() {
    let namespace = crate::config::setting(|name| std::env::var(name).ok(), NAMESPACE_VAR)
        .unwrap_or_else(|| DEFAULT_NAMESPACE.to_string());
    install(Sink::Emf {
        namespace,
        level: emf_level(|name| std::env::var(name).ok()),
        write: Box::new(|line| {
            use std::io::Write;
            // One write of the whole line, under the lock: never interleaved with a
            // log line.
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(line.as_bytes());
            let _ = out.flush();
        }),
    });
}

/// For `opkit serve`: a registry that `GET /metrics` renders.
pub fn install_prometheus() -> Arc<Registry> {
    let registry = Arc::new(Registry::default());
    install(Sink::Prometheus(registry.clone()));
    match SINK.get() {
        Some(Sink::Prometheus(installed)) => installed.clone(),
        // Another sink was installed first: this registry stays empty.
        _ => registry,
    }
}

/// Hands `sample` to the installed sink, if any.
pub fn record(sample: Sample) {
    if let Some(sink) = SINK.get() {
        sink.record(&sample, chrono::Utc::now().timestamp_millis());
    }
}

impl Sink {
    /// Records `sample`, taken at `at_ms` (Unix milliseconds).
    pub fn record(&self, sample: &Sample, at_ms: i64) {
        match self {
            Sink::Emf {
                namespace,
                level,
                write,
            } => write(&emf::line(namespace, level, sample, at_ms)),
            Sink::Prometheus(registry) => registry.record(sample),
        }
    }
}

/// The name a command's outcome is counted under, or `None` for records that are
/// not a command's result (`requested` always precedes another; system actions are
/// counted by [`expiry_pass`]).
pub fn outcome_name(outcome: &Outcome) -> Option<&'static str> {
    Some(match outcome {
        Outcome::Requested | Outcome::System { .. } => return None,
        Outcome::Succeeded => "ran",
        Outcome::Denied { .. } => "denied",
        Outcome::Failed { .. } => "failed",
        Outcome::Held { .. } => "held",
        Outcome::Forged { .. } => "forged",
        Outcome::Decided { decision, .. } => match decision.as_str() {
            "confirmed" => "confirmed",
            "approved" => "approved",
            "cancelled" => "cancelled",
            "denied" => "rejected",
            _ => "decided",
        },
    })
}

/// Counts an audited outcome of `command` (`None`: no command matched). The one
/// place every audit record passes ([`crate::engine::bot::Bot::audit`]) calls it.
pub fn command_outcome(command: Option<&str>, outcome: &Outcome) {
    if let Some(name) = outcome_name(outcome) {
        record(Sample {
            name: "Commands",
            unit: Unit::Count,
            value: 1.0,
            dimensions: vec![
                ("Command", command.unwrap_or("unknown").to_string()),
                ("Outcome", name.to_string()),
            ],
        });
    }
}

/// Runs `run` (a command's load, run and save) and records how long it took.
pub async fn time_command<T>(command: &str, run: impl Future<Output = T>) -> T {
    let started = Instant::now();
    let out = run.await;
    record(Sample {
        name: "CommandDuration",
        unit: Unit::Milliseconds,
        value: millis(started),
        dimensions: vec![("Command", command.to_string())],
    });
    out
}

/// Runs `ack` (the ingress's whole answer to one request on `route`) and records
/// how long it took, by route (`commands`, `events`, `interactions`).
pub async fn time_ack<T>(route: Route, ack: impl Future<Output = T>) -> T {
    let route = match route {
        Route::Commands => "commands",
        Route::Events => "events",
        Route::Interactions => "interactions",
    };
    let started = Instant::now();
    let out = ack.await;
    record(Sample {
        name: "AckLatency",
        unit: Unit::Milliseconds,
        value: millis(started),
        dimensions: vec![("Route", route.to_string())],
    });
    out
}

/// Records the end of `job`'s processing at the worker, by `bot`'s clock once
/// `result` is in: on success the time from the ingress's receipt to the reply
/// delivered; on a failed delivery, a Slack posting failure. Returns `result`, so
/// the call wraps the processing.
pub fn job_done<T, E>(bot: &Bot, job: &Job, result: Result<T, E>) -> Result<T, E> {
    match &result {
        Ok(_) => record(Sample {
            name: "QueueToReply",
            unit: Unit::Milliseconds,
            value: (bot.now() - job.received_at).num_milliseconds().max(0) as f64,
            dimensions: Vec::new(),
        }),
        Err(_) => slack_post_failed("reply"),
    }
    result
}

/// Counts a message that could not be posted to Slack; `via` says which kind
/// (`reply`, `channel`).
pub fn slack_post_failed(via: &'static str) {
    record(Sample {
        name: "SlackPostFailures",
        unit: Unit::Count,
        value: 1.0,
        dimensions: vec![("Via", via.to_string())],
    });
}

/// Counts a job abandoned at its time limit (`opkit serve`'s in-process queue,
/// [`crate::worker::INLINE_TIME_LIMIT`]), by its command's registered name
/// (`None`: none matched, counted as `unknown`).
pub fn job_timed_out(command: Option<&str>) {
    record(Sample {
        name: "JobTimeouts",
        unit: Unit::Count,
        value: 1.0,
        dimensions: vec![("Command", command.unwrap_or("unknown").to_string())],
    });
}

/// Counts one thing a script's state forgot before its time to make room
/// (`what`: a fixed word, such as `open_incident` or `held_request`), so that
/// the state always takes the next change; the caller logs which.
pub fn state_evicted(script: &'static str, what: &'static str) {
    record(Sample {
        name: "StateEvictions",
        unit: Unit::Count,
        value: 1.0,
        dimensions: vec![("Script", script.to_string()), ("What", what.to_string())],
    });
}

/// Counts what one expiry pass did (only the non-zero counts);
/// [`crate::expiry::Expiry::run_once`] calls it.
pub fn expiry_pass(report: &crate::expiry::ExpiryReport) {
    for (action, count) in [
        ("grants_ended", report.grants_ended),
        ("windows_started", report.windows_started),
        ("script_notices", report.script_notices),
        ("scheduled_runs", report.scheduled_runs),
        ("scheduled_not_run", report.scheduled_not_run),
        ("posted", report.posted),
    ] {
        if count > 0 {
            record(Sample {
                name: "ExpiryActions",
                unit: Unit::Count,
                value: count as f64,
                dimensions: vec![("Action", action.to_string())],
            });
        }
    }
    for _ in 0..report.not_posted {
        slack_post_failed("channel");
    }
}

fn millis(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}
