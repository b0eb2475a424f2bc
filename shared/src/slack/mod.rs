//! Slack's wire formats: request signing, payloads, replies and the clients that post them.

pub mod payload;
pub mod reply;
pub mod signing;

pub use payload::{
    AppMention, Authorization, CommandRequest, EventCallback, EventRequest, PayloadError,
    SlashCommand, parse_interaction,
};
pub use reply::{Block, Reply, Visibility};
pub use signing::{SigningSecret, Verifier, VerifyError, sign};
