//! Opkit: a ChatOps framework for Slack, built to run serverless on AWS Lambda —
//! and in one process on a laptop, with no AWS and no Slack.
//!
//! Commands belong to scripts that share a JSON state; access follows Opkit's role
//! alternatives with timed grants; help, dispatch and `can` ask one authorize
//! function; every step is audited. This crate is the framework: it has its admin
//! commands ([`builtin`]) and no other pack — Catbot's packs live in the crate
//! `catbot`, written with the same public API as any team's.
//!
//! # Writing commands
//!
//! `use opkit::prelude::*;` brings what a command needs ([`engine::Script`],
//! [`engine::Command`], [`engine::Ctx`], [`slack::Reply`], [`access::Access`], …);
//! [`testing::TestBot`] tests it on the memory store with a manual clock. The
//! README's "Writing a command" is a complete example with its test.
//!
//! # How a command flows
//!
//! ```text
//! Slack ─HTTP─> ingress ─────────> job ──(queue: SQS | in-process)──> worker ──> Slack
//!               verify (slack)     the envelope,    verify the seal   Bot::handle (engine)
//!               parse  (slack)     sealed (HMAC)    claims (store)    text → registry → authorize
//!               admit (admission)  + JobQueue port  once per job      → gate? → handler (state
//!               ack                                                   load/save) → audit
//! every minute: expiry ─> grants that ended, windows that opened, script tickers,
//!                         scheduled commands due (schedule) → jobs
//! ```
//!
//! # Modules
//!
//! | module | what it holds |
//! |---|---|
//! | [`prelude`] | the command author's one import |
//! | [`engine`] | command API, registry and matching, the bot (resolve → authorize → execute → audit), the gate (confirmations, approvals) |
//! | [`builtin`] | `help`, `can`, `whoami`, `roles …`, `audit` |
//! | [`declare`] | declarative commands: a TOML file of HTTP calls, Lambda invocations and aliases, with templates whose arguments stay data |
//! | [`testing`] | the public test harness: a bot on memory with a manual clock |
//! | [`access`] | role alternatives, grants and their windows, where a held role comes from |
//! | [`groups`] | roles from Slack user groups: the links, the `usergroups.users.list` port, the minute-long caches |
//! | [`audit`] | the audit record |
//! | [`text`], [`ids`], [`timespec`], [`zones`] | tokens (Slack entities stay one token); Slack ids and roles as newtypes; durations, times and zones (read in the asker's zone, shown in each reader's); where the asker's zone comes from |
//! | [`slack`] | request signing, payloads, replies and Block Kit, the `response_url` poster, the Web API (over HTTPS with the default feature `web-tls`, which the ingress leaves off) |
//! | [`store`] | the persistence ports and their memory, file and DynamoDB (feature `dynamodb`) persisters |
//! | [`job`] | the envelope that crosses the queue (sealed: an HMAC under the envelope key), and the queue port |
//! | [`ingress`] | the ack path: verify, parse, admit, enqueue, answer |
//! | [`admission`] | who may call: the installation on the team allow-list, the user one of its own (not another organisation's, in Slack Connect) |
//! | [`worker`] | the work path: verify the seal, claim, run, reply; partial batch failures; the in-process queue |
//! | [`timing`] | the worker's timeout, the queue's visibility timeout, the claim's lease, and how they relate |
//! | [`expiry`], [`schedule`] | the every-minute pass; when scheduled commands are due |
//! | `sqs` | the SQS queue (feature `sqs`) |
//! | `aws` | the AWS SDK's configuration at cold start: its HTTPS client (Opkit's HTTP/1.1 client on ring, `aws::http1`, feature `tls-ring`; or the SDK's on aws-lc, feature `tls-aws-lc`) and the roots it trusts, and the Lambda functions' configuration from the environment alone (feature `aws`, enabled by every AWS feature) |
//! | [`config`], [`secret`], [`clock`], [`telemetry`] | settings from the environment; secrets that never print, and credentials read from Secrets Manager at cold start (feature `secretsmanager`); injected time; log set-up |
//! | [`metrics`] | the bot's own metrics: CloudWatch embedded metric format lines (Lambda), Prometheus text (`opkit serve`) |
#![warn(missing_docs)]

pub mod access;
pub mod admission;
pub mod audit;
#[cfg(feature = "aws")]
pub mod aws;
pub mod builtin;
pub mod clock;
pub mod config;
pub mod declare;
pub mod engine;
pub mod expiry;
#[cfg(test)]
mod fixtures;
pub mod groups;
pub mod ids;
pub mod ingress;
pub mod job;
pub mod metrics;
pub mod prelude;
pub mod schedule;
pub mod secret;
pub mod slack;
#[cfg(feature = "sqs")]
pub mod sqs;
pub mod store;
pub mod telemetry;
pub mod testing;
pub mod text;
pub mod timespec;
pub mod timing;
pub mod worker;
pub mod xray;
pub mod zones;

/// A boxed, sendable future: the return type of Opkit's object-safe async traits.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;
