//! Slack's wire formats: request signing, payloads, replies and the clients that post them.

pub mod reply;

pub use reply::{Block, Reply, Visibility};
