//! Opkit: a ChatOps framework for Slack.
#![warn(missing_docs)]

pub mod clock;
pub mod slack;
