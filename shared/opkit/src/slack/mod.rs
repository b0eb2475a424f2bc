//! Slack's wire formats: request signing, payloads, replies and the clients that post them.

pub mod credentials;
pub mod mrkdwn;
pub mod payload;
pub mod poster;
pub mod reply;
pub mod response_url;
pub mod signing;
pub mod web;

pub use mrkdwn::{Code, Fragment, Mrkdwn, UserText};
pub use payload::{
    Authorization, BlockAction, BlockActions, ChatKind, ChatMessage, CommandRequest, EventCallback,
    EventRequest, Interaction, InteractionChannel, InteractionContainer, InteractionEnterprise,
    InteractionMessage, InteractionTeam, InteractionUser, Org, Origin, PayloadError, SlashCommand,
    UserOrg, is_message_ts,
};
pub use poster::{HttpPoster, MemoryPoster, PostError, ReplyPoster, RetryPolicy};
pub use reply::{Block, Button, ConfirmDialog, Reply, Visibility};
pub use response_url::{ResponseUrl, ResponseUrlError};
pub use signing::{SigningSecret, Verifier, VerifyError, sign};
pub use web::{
    BotToken, ChannelPost, ChannelPoster, Directory, MemoryChannelPoster, MemoryDirectory,
    PostedMessage, SlackApi, SlackConversation, SlackUser, WebApiError,
};
