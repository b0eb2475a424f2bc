//! Catbot's AWS commands, each pack behind its own feature so a bot compiles only
//! the SDK clients it uses:
//!
//! - [`cloudwatch`] (`cloudwatch`): `alarms …`, `health`, `metric`, `graph`;
//! - [`ec2`] (`ec2`): `ec2 list|status|start|stop|reboot|logs`;
//! - [`sqs`] (`sqs`): `sqs list|depth|peek`.
//!
//! Each pack takes its SDK client (and so the deployment's region) and options
//! in `script(client, opts)`; its commands take `in <account>` / `in <region>`
//! and the channel's default account ([`targets`], [`crate::accounts`]), say
//! which account and region they looked at in every reply, and
//! turns every AWS error into one sentence for the user ([`format::AwsFailure`])
//! with the detail in the log. The SDK's standard retry mode already retries
//! throttled calls with backoff; what still fails is reported as throttling.

/// The usage line of an AWS command that takes nothing but the `in` words
/// every AWS command takes: a command whose usage is empty takes no words at
/// all (its `in prod` would be refused as extra words).
pub const IN_ONLY: &str = "[in <account> [<region>]]";

#[cfg(feature = "cloudwatch")]
pub mod cloudwatch;
#[cfg(feature = "ec2")]
pub mod ec2;
pub mod format;
#[cfg(feature = "sqs")]
pub mod sqs;
pub mod targets;
