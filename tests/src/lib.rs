//! Test harness for Opkit's end-to-end tests: a fake Slack server, helpers that
//! build requests the way Slack sends them, and the AWS emulator's settings.

pub mod aws;
pub mod aws_packs;
pub mod fake_slack;
pub mod serverless;
pub mod slack_request;

pub use fake_slack::{CannedResponse, FakeSlack, RecordedBody, RecordedRequest};
pub use slack_request::{signed_headers, slash_command_body};
