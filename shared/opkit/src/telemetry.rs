//! Logging set-up shared by the Lambda functions and the `opkit` binary.
//!
//! Every line goes through [`Redacting`], which blanks out each secret the
//! configuration registered ([`crate::secret::register`]): whatever a library or
//! a command logs — an HTTP error with its URL, a debug dump of a request — no
//! credential reaches the logs.

use std::io::Write;

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The setting that filters the Lambda functions' logs when Lambda's own log level
/// (`AWS_LAMBDA_LOG_LEVEL`) is not set.
pub const LOG_FILTER_SETTING: &str = "RUST_LOG";

/// Logs for Lambda, set up as Lambda's own runtimes do: filtered by
/// [`lambda_log_filter`] (Lambda's `AWS_LAMBDA_LOG_LEVEL`, which the function's
/// `ApplicationLogLevel` and the console's logging settings set; else `RUST_LOG`),
/// one JSON object per line on stdout unless `AWS_LAMBDA_LOG_FORMAT` is `Text`,
/// registered secrets blanked. Call once, first thing in `main`.
///
/// Each JSON line carries the two keys Lambda's log-level filter reads: `level`
/// (`ERROR`, `WARN`, …) and an RFC 3339 `timestamp`; Lambda counts a line without
/// a valid level — or, as its guide words it, without a valid timestamp — as
/// `INFO`, which a `WARN` setting would then drop
/// (<https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-log-level.html>).
/// Text lines carry no timestamp (CloudWatch Logs stamps each line; Lambda does
/// not filter text).
///
/// An invalid filter is not fatal (a log setting should not stop the bot): the
/// function logs errors only, and says so in its first line.
pub fn init_json_logs() {
    let (logs, invalid) = lambda_logs();
    logs.init();
    report_invalid(invalid);
}

/// [`init_json_logs`], and each command's correlation id sent to X-Ray as an
/// annotation of the invocation's trace ([`crate::xray::XrayLayer`]) where
/// Lambda runs the X-Ray daemon (`AWS_XRAY_DAEMON_ADDRESS` set: tracing on). For
/// the worker and the expiry, which run commands; the ingress does not, and its
/// binary holds none of this.
pub fn init_traced_json_logs() {
    let (logs, invalid) = lambda_logs();
    // Each layer has its own filter: X-Ray sees the command spans whatever the
    // log level, and enables nothing else.
    let xray = crate::xray::XrayLayer::from_env().map(|layer| {
        use tracing_subscriber::Layer as _;
        layer.with_filter(tracing_subscriber::filter::filter_fn(
            crate::xray::XrayLayer::wants,
        ))
    });
    logs.with(xray).init();
    report_invalid(invalid);
}

/// The Lambda functions' log subscriber (see [`init_json_logs`]), not yet
/// installed, and why the log filter was refused, if it was.
fn lambda_logs() -> (
    impl tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a> + Send + Sync,
    Option<String>,
) {
    use tracing_subscriber::Layer as _;
    let env = |name: &str| std::env::var(name).ok();
    let (filter, invalid) = match lambda_log_filter(env) {
        Ok(filter) => (filter, None),
        Err(e) => (Targets::new().with_default(LevelFilter::ERROR), Some(e)),
    };
    let text = env("AWS_LAMBDA_LOG_FORMAT").is_some_and(|f| f.eq_ignore_ascii_case("text"));
    let logs = log_layer(text, Redacting::new(std::io::stdout)).with_filter(filter);
    (tracing_subscriber::registry().with(logs), invalid)
}

fn report_invalid(invalid: Option<String>) {
    if let Some(error) = invalid {
        tracing::error!(setting = LOG_FILTER_SETTING, %error, "invalid log filter ignored: logging errors only");
    }
}

/// The formatting layer of [`init_json_logs`], writing to `writer`: JSON with a
/// `timestamp`, or text (`text`) without one.
fn log_layer<S, W>(text: bool, writer: W) -> Box<dyn tracing_subscriber::Layer<S> + Send + Sync>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    use tracing_subscriber::Layer as _;
    let layer = tracing_subscriber::fmt::layer().with_writer(writer);
    if text {
        layer.without_time().with_ansi(false).boxed()
    } else {
        layer.json().with_current_span(false).boxed()
    }
}

/// The filter of a Lambda function's logs: Lambda's `AWS_LAMBDA_LOG_LEVEL`
/// (`TRACE`, `DEBUG`, `INFO`, `WARN`, `ERROR`, `FATAL`) when set, as the level of
/// every target; else [`log_filter`] of `RUST_LOG`.
pub fn lambda_log_filter(lookup: impl Fn(&str) -> Option<String>) -> Result<Targets, String> {
    let level = match lookup("AWS_LAMBDA_LOG_LEVEL")
        .map(|l| l.trim().to_ascii_uppercase())
        .as_deref()
    {
        Some("TRACE") => LevelFilter::TRACE,
        Some("DEBUG") => LevelFilter::DEBUG,
        Some("INFO") => LevelFilter::INFO,
        Some("WARN") => LevelFilter::WARN,
        // tracing has no level above error.
        Some("ERROR" | "FATAL") => LevelFilter::ERROR,
        _ => return log_filter(lookup(LOG_FILTER_SETTING).as_deref()),
    };
    Ok(Targets::new().with_default(level))
}

/// The filter for a `RUST_LOG` value: comma-separated `target=level` directives
/// and a bare level for everything else (`info`, `info,opkit=debug`,
/// `warn,aws_config=error`); unset or empty, errors only. These are the directives
/// of `tracing_subscriber`'s `Targets`, a subset of `EnvFilter`'s: span and field
/// filters (`[span{field=value}]`) are refused, and with them the regular-expression
/// engine they need stays out of the Lambda binaries.
pub fn log_filter(value: Option<&str>) -> Result<Targets, String> {
    match value.map(str::trim) {
        None | Some("") => Ok(Targets::new().with_default(LevelFilter::ERROR)),
        Some(directives) => directives.parse::<Targets>().map_err(|e| {
            format!(
                "{LOG_FILTER_SETTING}={directives:?} is not a list of target=level directives ({e})"
            )
        }),
    }
}

/// A [`MakeWriter`] that blanks registered secrets out of each log line before it
/// reaches `M`'s writer. The formatter writes one event per writer, so a secret
/// is never split across two writes.
#[derive(Debug, Clone)]
pub struct Redacting<M>(M);

impl<M> Redacting<M> {
    /// Wraps `inner` (e.g. `std::io::stderr`).
    pub fn new(inner: M) -> Self {
        Self(inner)
    }
}

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for Redacting<M> {
    type Writer = RedactingWriter<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        RedactingWriter {
            inner: self.0.make_writer(),
            line: Vec::new(),
        }
    }
}

/// One event's writer: collects the line, writes it redacted when dropped.
#[derive(Debug)]
pub struct RedactingWriter<W: Write> {
    inner: W,
    line: Vec<u8>,
}

impl<W: Write> Write for RedactingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.line.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<W: Write> Drop for RedactingWriter<W> {
    fn drop(&mut self) {
        if self.line.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(&self.line);
        let _ = self
            .inner
            .write_all(crate::secret::redact(&text).as_bytes());
        let _ = self.inner.flush();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_log_filter_reads_levels_and_targets() {
        use tracing::Level;
        let default = log_filter(None).unwrap();
        assert!(default.would_enable("opkit", &Level::ERROR));
        assert!(!default.would_enable("opkit", &Level::WARN));
        assert!(
            !log_filter(Some(" "))
                .unwrap()
                .would_enable("opkit", &Level::WARN)
        );
        let info = log_filter(Some("info")).unwrap();
        assert!(info.would_enable("opkit::ingress", &Level::INFO));
        assert!(!info.would_enable("opkit::ingress", &Level::DEBUG));
        let mixed = log_filter(Some("warn,opkit=debug,aws_config=error")).unwrap();
        assert!(mixed.would_enable("opkit::worker", &Level::DEBUG));
        assert!(!mixed.would_enable("aws_config::meta", &Level::WARN));
        assert!(mixed.would_enable("hyper", &Level::WARN));
        assert!(!mixed.would_enable("hyper", &Level::INFO));
    }

    #[test]
    fn an_invalid_log_filter_is_refused_with_its_setting_named() {
        let err = log_filter(Some("info,opkit=loud")).unwrap_err();
        assert!(err.starts_with("RUST_LOG=\"info,opkit=loud\""), "{err}");
        assert!(log_filter(Some("[span{user=U1}]=debug")).is_err());
    }

    #[test]
    fn json_lines_carry_the_level_and_timestamp_lambdas_filter_reads() {
        // GIVEN the Lambda functions' JSON log layer
        let captured = Captured::default();
        let sink = captured.clone();
        let layer = log_layer(false, move || sink.clone());
        let subscriber = tracing_subscriber::registry().with(layer);
        // WHEN an error and a warning are logged
        tracing::subscriber::with_default(subscriber, || {
            tracing::error!("failed");
            tracing::warn!("slow");
        });
        // THEN each line has Lambda's `level` and an RFC 3339 `timestamp`
        let out = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let levels: Vec<String> = out
            .lines()
            .map(|line| {
                let json: serde_json::Value = serde_json::from_str(line).unwrap();
                let timestamp = json["timestamp"].as_str().unwrap();
                assert!(
                    chrono::DateTime::parse_from_rfc3339(timestamp).is_ok(),
                    "{line}"
                );
                json["level"].as_str().unwrap().to_owned()
            })
            .collect();
        assert_eq!(levels, ["ERROR", "WARN"]);
        // AND a text line has no timestamp (Lambda does not filter text)
        let captured = Captured::default();
        let sink = captured.clone();
        let subscriber = tracing_subscriber::registry().with(log_layer(true, move || sink.clone()));
        tracing::subscriber::with_default(subscriber, || tracing::error!("failed"));
        let out = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert!(out.starts_with("ERROR "), "{out}");
    }

    #[test]
    fn log_lines_never_carry_a_registered_secret() {
        crate::secret::register("xoxb-telemetry-test-token");
        let captured = Captured::default();
        let sink = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_writer(Redacting::new(move || sink.clone()))
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(
                url = "https://x/api?token=xoxb-telemetry-test-token",
                "failed"
            );
            tracing::info!("posted with xoxb-telemetry-test-token in the text");
        });
        let out = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert_eq!(out.lines().count(), 2, "{out}");
        assert!(!out.contains("xoxb-telemetry-test-token"), "{out}");
        assert_eq!(out.matches("***").count(), 2, "{out}");
    }
}

/// Shows an error with all its sources, outermost first, joined by `: ` — the whole
/// chain, for a log line: `internal error: the store failed: timed out`.
///
/// A source whose message its parent already shows (an error that prints its
/// source itself and also returns it from `source()`) is not repeated.
///
/// ```
/// use opkit::telemetry::ErrorChain;
///
/// let io = std::io::Error::other("disk full");
/// let error = opkit::engine::CommandError::internal_with("could not save the queue", io);
/// assert_eq!(
///     ErrorChain(&error).to_string(),
///     "internal error: could not save the queue: disk full"
/// );
/// ```
#[derive(Clone, Copy)]
pub struct ErrorChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut shown = self.0.to_string();
        f.write_str(&shown)?;
        let mut next = self.0.source();
        while let Some(source) = next {
            let text = source.to_string();
            if !text.is_empty() && !shown.contains(&text) {
                write!(f, ": {text}")?;
            }
            shown = text;
            next = source.source();
        }
        Ok(())
    }
}

impl std::fmt::Debug for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod level_tests {
    use tracing::Level;

    use super::lambda_log_filter;

    fn filter(vars: &[(&str, &str)]) -> tracing_subscriber::filter::Targets {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        lambda_log_filter(|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
            .unwrap()
    }

    #[test]
    fn lambdas_log_level_wins_then_rust_log() {
        // The console's setting (ApplicationLogLevel, as AWS_LAMBDA_LOG_LEVEL) wins.
        let debug = filter(&[("AWS_LAMBDA_LOG_LEVEL", "DEBUG"), ("RUST_LOG", "warn")]);
        assert!(debug.would_enable("opkit", &Level::DEBUG));
        assert!(debug.would_enable("aws_config", &Level::DEBUG));
        assert!(!debug.would_enable("opkit", &Level::TRACE));
        // FATAL has no tracing level: errors.
        let fatal = filter(&[("AWS_LAMBDA_LOG_LEVEL", "FATAL")]);
        assert!(fatal.would_enable("opkit", &Level::ERROR));
        assert!(!fatal.would_enable("opkit", &Level::WARN));
        let warn = filter(&[("AWS_LAMBDA_LOG_LEVEL", "warn")]);
        assert!(warn.would_enable("opkit", &Level::WARN));
        assert!(!warn.would_enable("opkit", &Level::INFO));
        // Unset, or not one of Lambda's levels: RUST_LOG's directives.
        let targets = filter(&[("RUST_LOG", "info,opkit=debug")]);
        assert!(targets.would_enable("opkit", &Level::DEBUG));
        assert!(!targets.would_enable("aws_config", &Level::DEBUG));
        let fallback = filter(&[("AWS_LAMBDA_LOG_LEVEL", "LOUD"), ("RUST_LOG", "warn")]);
        assert!(fallback.would_enable("opkit", &Level::WARN));
        assert!(!fallback.would_enable("opkit", &Level::INFO));
    }
}

#[cfg(test)]
mod chain_tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer: {0}")]
    struct Repeats(#[source] std::io::Error);

    #[derive(Debug, thiserror::Error)]
    #[error("top")]
    struct Top(#[source] Repeats);

    #[test]
    fn the_chain_is_shown_once_each() {
        // GIVEN an error whose middle link prints its source and also returns it
        let error = Top(Repeats(std::io::Error::other("bottom")));
        // THEN each message appears once, outermost first
        assert_eq!(ErrorChain(&error).to_string(), "top: outer: bottom");
        assert_eq!(
            ErrorChain(&std::io::Error::other("alone")).to_string(),
            "alone"
        );
    }
}
