//! One cold start: exec a `bootstrap` (or a peer's process) under a fresh
//! [`RuntimeApi`], hand it one event, and time exec → the invocation's response.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::time::Instant;

use super::runtime_api::{Outcome, RuntimeApi};

/// A process to start cold, as Lambda would start a function's runtime.
#[derive(Debug, Clone)]
pub struct Target {
    /// The row's name in the report.
    pub name: String,
    /// The program (`bootstrap`, `python`, `node`, or `qemu-aarch64`).
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// Settings beyond Lambda's own (see [`lambda_environment`]).
    pub env: Vec<(String, String)>,
}

impl Target {
    /// A target that runs `program` with no arguments.
    pub fn new(name: &str, program: impl Into<PathBuf>) -> Self {
        Self {
            name: name.to_string(),
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
        }
    }

    /// Adds arguments.
    pub fn args<S: ToString>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.args.extend(args.into_iter().map(|a| a.to_string()));
        self
    }

    /// Adds (or overrides) settings.
    pub fn env<K: ToString, V: ToString>(mut self, vars: impl IntoIterator<Item = (K, V)>) -> Self {
        self.env.extend(
            vars.into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        self
    }
}

/// One cold start's figures.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// exec → the runtime's first poll for an event (Lambda's "Init Duration").
    pub init: Duration,
    /// the event handed out → the response posted (the first invocation).
    pub invoke: Duration,
    /// exec → the response: what Slack waits for on a cold start.
    pub total: Duration,
    /// The process's peak resident set (`VmHWM`), in KiB, read before it is killed.
    pub peak_rss_kib: u64,
}

/// Why a run did not count.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The process could not be started.
    #[error("cannot start {program}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// The reason.
        source: std::io::Error,
    },
    /// The process ended before it answered.
    #[error("the process ended before it answered ({0})")]
    Exited(String),
    /// No response within the time allowed.
    #[error("no response within {0:?}")]
    Timeout(Duration),
    /// The function reported an error to the Runtime API.
    #[error("the function failed: {0}")]
    Failed(String),
    /// The response was not the expected answer.
    #[error("unexpected response: {0}")]
    Unexpected(String),
}

/// The variables Lambda sets for every runtime
/// (<https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime>),
/// with dummy credentials: `lambda_runtime` refuses to start without the function's
/// name, memory, version and log names.
pub fn lambda_environment(runtime_api: &str) -> Vec<(String, String)> {
    [
        ("AWS_LAMBDA_RUNTIME_API", runtime_api),
        ("AWS_LAMBDA_FUNCTION_NAME", "opkit-bench"),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/opkit-bench"),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "2026/11/29/[$LATEST]bench"),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_SESSION_TOKEN", "test"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("TZ", ":UTC"),
        ("LANG", "C.UTF-8"),
        ("PATH", "/usr/local/bin:/usr/bin:/bin"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Starts `target` cold with a clean environment, serves it `event`, and checks
/// its response with `check`. The process's output is appended to `log`.
pub async fn run_once(
    target: &Target,
    event: Vec<u8>,
    check: impl Fn(&[u8]) -> Result<(), String>,
    log: &std::fs::File,
    timeout: Duration,
) -> Result<Sample, RunError> {
    let mut api = RuntimeApi::start(event, Duration::from_secs(30)).await;
    let mut command = tokio::process::Command::new(&target.program);
    command
        .args(&target.args)
        .env_clear()
        .envs(lambda_environment(&api.address()))
        .envs(target.env.iter().cloned())
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("a log handle"))
        .stderr(log.try_clone().expect("a log handle"))
        .kill_on_drop(true);
    let started = Instant::now();
    let mut child = command.spawn().map_err(|source| RunError::Spawn {
        program: target.program.display().to_string(),
        source,
    })?;
    let finished = tokio::select! {
        finished = api.finished(timeout) => finished,
        status = child.wait() => {
            let status = status.map_or_else(|e| e.to_string(), |s| s.to_string());
            return Err(RunError::Exited(status));
        }
    };
    let peak_rss_kib = child.id().map(peak_rss_kib).unwrap_or(0);
    let _ = child.start_kill();
    let _ = child.wait().await;
    let invocation = finished.ok_or(RunError::Timeout(timeout))?;
    match &invocation.outcome {
        Outcome::Error(body) => return Err(RunError::Failed(lossy(body))),
        Outcome::Response(body) => check(body).map_err(RunError::Unexpected)?,
    }
    Ok(Sample {
        init: invocation.next_at - started,
        invoke: invocation.done_at - invocation.next_at,
        total: invocation.done_at - started,
        peak_rss_kib,
    })
}

/// `VmHWM` of a live process, in KiB (0 if it cannot be read).
pub fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| vm_hwm_kib(&status))
        .unwrap_or(0)
}

fn vm_hwm_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()
}

/// The first 300 characters of a body, for an error message.
pub fn lossy(body: &[u8]) -> String {
    String::from_utf8_lossy(body).chars().take(300).collect()
}

/// Median, min and max of a set of durations.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    /// The median (of an even count, the mean of the middle two).
    pub median: Duration,
    /// The least.
    pub min: Duration,
    /// The most.
    pub max: Duration,
}

impl Spread {
    /// The spread of `values`; `None` when there are none.
    pub fn of(values: impl IntoIterator<Item = Duration>) -> Option<Self> {
        let mut values: Vec<Duration> = values.into_iter().collect();
        values.sort();
        let n = values.len();
        let median = match n {
            0 => return None,
            _ if n % 2 == 1 => values[n / 2],
            _ => (values[n / 2 - 1] + values[n / 2]) / 2,
        };
        Some(Self {
            median,
            min: values[0],
            max: values[n - 1],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(values: &[u64]) -> Vec<Duration> {
        values.iter().map(|&v| Duration::from_millis(v)).collect()
    }

    #[test]
    fn spread_of_odd_and_even_counts() {
        let odd = Spread::of(ms(&[9, 1, 5])).unwrap();
        assert_eq!(odd.median, Duration::from_millis(5));
        assert_eq!(
            (odd.min, odd.max),
            (Duration::from_millis(1), Duration::from_millis(9))
        );
        let even = Spread::of(ms(&[4, 1, 2, 8])).unwrap();
        assert_eq!(even.median, Duration::from_millis(3));
        assert_eq!(Spread::of(Vec::new()), None);
    }

    #[test]
    fn reads_the_peak_resident_set() {
        let status = "Name:\tingress\nVmPeak:\t  12000 kB\nVmHWM:\t    5312 kB\nVmRSS:\t 5000 kB\n";
        assert_eq!(vm_hwm_kib(status), Some(5312));
        assert_eq!(vm_hwm_kib("Name:\tx\n"), None);
        assert!(
            peak_rss_kib(std::process::id()) > 0,
            "this process has a resident set"
        );
    }

    #[tokio::test]
    async fn a_process_that_exits_or_cannot_start_is_a_failed_run() {
        let log = tempfile_log();
        let missing = Target::new("missing", "/nonexistent/bootstrap");
        let err = run_once(
            &missing,
            b"{}".to_vec(),
            |_| Ok(()),
            &log,
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, RunError::Spawn { .. }), "{err}");
        // `true` exits at once without polling: the run ends with it.
        let quits = Target::new("quits", "/bin/true");
        let err = run_once(
            &quits,
            b"{}".to_vec(),
            |_| Ok(()),
            &log,
            Duration::from_secs(60),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, RunError::Exited(_)), "{err}");
    }

    fn tempfile_log() -> std::fs::File {
        let path = std::env::temp_dir().join(format!("opkit-bench-{}.log", uuid::Uuid::new_v4()));
        std::fs::File::create(path).expect("a log file")
    }

    #[test]
    fn the_environment_names_the_runtime_api() {
        let env = lambda_environment("127.0.0.1:9001");
        assert!(env.contains(&("AWS_LAMBDA_RUNTIME_API".into(), "127.0.0.1:9001".into())));
        assert!(
            env.iter()
                .any(|(k, _)| k == "AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        );
    }
}
