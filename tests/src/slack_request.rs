//! Building requests as Slack sends them: signed headers and slash command bodies.

use opkit::slack::signing::{SIGNATURE_HEADER, SigningSecret, TIMESTAMP_HEADER, sign};

/// The workspace every fake command comes from.
pub const TEAM_ID: &str = "T0001";
/// The channel every fake command is run in.
pub const CHANNEL_ID: &str = "C0001";
/// The Slack app every fake command is sent to.
pub const APP_ID: &str = "A0001";

/// The two headers Slack signs a request with, as `(name, value)` pairs:
/// [`TIMESTAMP_HEADER`] and [`SIGNATURE_HEADER`].
pub fn signed_headers(
    secret: &SigningSecret,
    timestamp: i64,
    body: &[u8],
) -> [(&'static str, String); 2] {
    [
        (TIMESTAMP_HEADER, timestamp.to_string()),
        (SIGNATURE_HEADER, sign(secret, timestamp, body)),
    ]
}

/// A realistic urlencoded slash command body for `/opkit {text}` run by `user`
/// in [`CHANNEL_ID`] of [`TEAM_ID`], with every documented field and a fresh
/// `trigger_id` each time (Slack makes one per invocation).
pub fn slash_command_body(user: &str, text: &str, response_url: &str) -> String {
    serde_urlencoded::to_string([
        ("token", "verification-token-unused"),
        ("team_id", TEAM_ID),
        ("team_domain", "opkit-test"),
        ("enterprise_id", ""),
        ("enterprise_name", ""),
        ("channel_id", CHANNEL_ID),
        ("channel_name", "ops"),
        ("user_id", user),
        ("user_name", user),
        ("command", "/opkit"),
        ("text", text),
        ("response_url", response_url),
        // Slack makes a trigger_id per invocation, and the job id is derived from it.
        (
            "trigger_id",
            &format!("13345224609.738474920.{}", uuid::Uuid::new_v4().simple()),
        ),
        ("api_app_id", APP_ID),
        ("is_enterprise_install", "false"),
    ])
    .expect("string pairs always urlencode")
}
