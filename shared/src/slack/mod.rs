//! Slack's wire formats: request signing, payloads, replies and the clients that post them.

pub mod reply;
pub mod signing;

pub use reply::{Block, Reply, Visibility};
pub use signing::{SigningSecret, Verifier, VerifyError, sign};
