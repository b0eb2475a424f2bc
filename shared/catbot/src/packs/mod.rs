//! Catbot's command packs, written with the same public API as any team's commands
//! (`opkit::prelude`):
//!
//! - [`queue`]: environment reservation queues ("who's on perf?");
//! - [`weather`]: the seed's example, an HTTP API with a cache in script state;
//! - [`schedule`]: `schedule add|remove` and `schedules` (the runtime that runs
//!   them is Opkit's [`opkit::schedule`]);
//! - [`notify`]: alarm and instance notifications (subscriptions, incidents,
//!   acknowledge and mute) and their one event handler, [`notify::Notifier`];
//! - `aws`: CloudWatch, EC2 and SQS, each behind the cargo feature of its name.
//!
//! The admin commands (`help`, `can`, `whoami`, `roles …`, `audit`) are Opkit's own
//! [`opkit::builtin`] pack.

#[cfg(any(feature = "cloudwatch", feature = "ec2", feature = "sqs"))]
pub mod aws;
pub mod notify;
pub mod queue;
pub mod schedule;
pub mod weather;
