//! Built-in command packs, written with the same public API as any team's commands.
//!
//! - [`builtin`]: `help`, `can`, `whoami`, `roles …`, `audit`;
//! - [`queue`]: environment reservation queues ("who's on perf?");
//! - [`weather`]: the seed's example, an HTTP API with a cache in script state;
//! - [`schedule`]: scheduled commands, run by the expiry pass.

#[cfg(any(feature = "cloudwatch", feature = "ec2", feature = "sqs"))]
pub mod aws;
pub mod builtin;
pub mod queue;
pub mod schedule;
pub mod weather;

#[cfg(test)]
pub(crate) mod testing;
