//! Catbot: the ready-to-deploy DevOps bot built on [Opkit](opkit), as Bandwidth's
//! Catbot was built on the Node.js Opkit.
//!
//! ```text
//! catbot
//!   packs/        the commands: queue (environment reservations), weather (the
//!                 seed's example), schedule (schedule add|remove, schedules),
//!                 notify (alarm and instance notifications: subscriptions,
//!                 incidents, acknowledge, mute, and their event handler), and
//!                 aws/ — CloudWatch, EC2, SQS — each behind a cargo feature so a
//!                 binary compiles only the SDK clients it uses
//!   accounts      several AWS accounts: OPKIT_ACCOUNTS, the `in <account>|<region>`
//!                 words of the AWS commands, channel defaults, `accounts …`
//!   settings      the packs' own settings (OPKIT_WEATHER_URL, OPKIT_WEATHER_KEY,
//!                 OPKIT_ACCOUNTS)
//!   wiring        what the binaries call: builder (Opkit's built-ins + the packs),
//!                 deployed (the bot on DynamoDB, at a Lambda's cold start),
//!                 channel_poster, with_aws_packs
//! ```
//!
//! Everything the packs use is Opkit's public API (mostly [`opkit::prelude`]), the
//! same a team uses for its own commands; none of them reaches into Opkit's
//! runtime (the job, the worker, the ingress, the configuration).
#![warn(missing_docs)]

pub mod accounts;
pub mod packs;
pub mod settings;
pub mod wiring;

pub use settings::Settings;
#[cfg(all(feature = "ec2", feature = "cloudwatch"))]
pub use wiring::deployed_notifier;
#[cfg(any(
    feature = "dynamodb",
    feature = "sqs",
    feature = "ec2",
    feature = "cloudwatch"
))]
pub use wiring::with_configured_aws_packs;
#[cfg(any(feature = "cloudwatch", feature = "ec2", feature = "sqs"))]
pub use wiring::{AwsPacksConfig, aws_packs_config, with_aws_packs};
#[cfg(feature = "dynamodb")]
pub use wiring::{DeployError, deployed, deployed_with_commands};
pub use wiring::{builder, channel_poster, directory, notifier, policy, with_commands_file};
