//! Test harness for Opkit's end-to-end tests: a fake Slack server, helpers that
//! build requests the way Slack sends them, the AWS emulator's settings, and
//! fault injection (at the store port, and as an HTTP proxy in front of the emulator),
//! DynamoDB's capacity units reckoned from what that proxy saw ([`capacity`]),
//! and the whole-process benchmarks ([`bench`], the `opkit-bench` binary).

pub mod aws;
pub mod aws_packs;
pub mod bench;
pub mod capacity;
pub mod eventbridge;
pub mod fake_service;
pub mod fake_slack;
pub mod fault_proxy;
pub mod faults;
pub mod serverless;
pub mod slack_request;
pub mod tally;

pub use fake_service::{FakeLambda, FakeService};
pub use fake_slack::{CannedResponse, FakeSlack, RecordedBody, RecordedRequest};
pub use slack_request::{signed_headers, slash_command_body};
