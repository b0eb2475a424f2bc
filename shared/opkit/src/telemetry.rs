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
