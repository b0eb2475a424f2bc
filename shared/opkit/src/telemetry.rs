//! Logging set-up shared by the Lambda functions.

/// Structured logs for Lambda: one JSON object per line on stdout, the level from
/// `RUST_LOG`, no timestamp (CloudWatch Logs stamps each line). Call once, first
/// thing in `main`.
pub fn init_json_logs() {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_current_span(false)
        .without_time()
        .init();
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
