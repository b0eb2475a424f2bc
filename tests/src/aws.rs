//! The AWS emulator, as the end-to-end tests reach it.
//!
//! Tests run against moto's server on a loopback port, never real AWS:
//! `infra/test.sh` installs and starts it and exports `AWS_ENDPOINT_URL` (and the
//! region and dummy credentials) for the command it runs, e.g.
//! `bash infra/test.sh`.

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;

/// The variable that points the SDK at the emulator.
pub const ENDPOINT_VAR: &str = "AWS_ENDPOINT_URL";

/// SDK configuration for the emulator named by `AWS_ENDPOINT_URL`.
///
/// Panics with instructions when the variable is missing, and refuses an
/// endpoint that is not on this machine, so a test can never reach real AWS.
/// Credentials are always dummies; the region defaults to `us-east-1`.
pub async fn sdk_config() -> SdkConfig {
    let endpoint = emulator_endpoint();
    let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".to_string());
    let config = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region))
        .credentials_provider(Credentials::new("test", "test", None, None, "opkit-tests"))
        .load()
        .await;
    assert_eq!(
        config.endpoint_url(),
        Some(endpoint.as_str()),
        "the SDK did not pick up {ENDPOINT_VAR}"
    );
    config
}

/// SDK configuration for `endpoint` on this machine — the emulator, or a
/// [`FaultProxy`](crate::fault_proxy::FaultProxy) in front of it — set in code, so
/// it wins over `AWS_ENDPOINT_URL`; with `retry` instead of the SDK's default
/// retry strategy, if given.
pub async fn sdk_config_at(endpoint: &str, retry: Option<RetryConfig>) -> SdkConfig {
    assert!(
        is_loopback(endpoint),
        "{endpoint} is not a loopback address"
    );
    let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".to_string());
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region))
        .credentials_provider(Credentials::new("test", "test", None, None, "opkit-tests"))
        .endpoint_url(endpoint);
    if let Some(retry) = retry {
        loader = loader.retry_config(retry);
    }
    loader.load().await
}

/// The emulator's URL; panics, saying what to run, when there is none.
pub fn emulator_endpoint() -> String {
    let Ok(endpoint) = std::env::var(ENDPOINT_VAR) else {
        panic!(
            "{ENDPOINT_VAR} is not set: these tests need the AWS emulator (moto). \
             Run them through the test script: `bash infra/test.sh`"
        );
    };
    assert!(
        is_loopback(&endpoint),
        "{ENDPOINT_VAR}={endpoint} is not a loopback address: tests only talk to a local emulator"
    );
    endpoint
}

fn is_loopback(url: &str) -> bool {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .unwrap_or("");
    let host = rest.split(['/', ':']).next().unwrap_or("");
    matches!(host, "127.0.0.1" | "localhost") || rest.starts_with("[::1]")
}

/// A name no other test run uses, for a table or a queue: `<prefix>-<32 hex>`.
pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_endpoints_are_accepted() {
        assert!(is_loopback("http://127.0.0.1:5000"));
        assert!(is_loopback("http://localhost:5000/"));
        assert!(is_loopback("http://[::1]:5000"));
        assert!(!is_loopback("https://dynamodb.us-east-1.amazonaws.com"));
        assert!(!is_loopback("http://127.0.0.1.example.com"));
        assert!(!is_loopback("127.0.0.1:5000"));
    }

    #[test]
    fn unique_names_differ_and_keep_the_prefix() {
        let (a, b) = (unique_name("opkit"), unique_name("opkit"));
        assert_ne!(a, b);
        assert!(a.starts_with("opkit-"));
    }
}
