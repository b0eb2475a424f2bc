//! Parsing what Slack sends: slash commands, Events API envelopes and interactions.
//!
//! Parsing comes after [signature verification](super::signing) (or, in Socket
//! Mode, after Slack's authenticated WebSocket delivered the payload) and before
//! anything else. Each kind has two ways in, sharing one set of rules:
//!
//! | kind | HTTP body (`parse`) | Socket Mode envelope `payload` (`from_json`) |
//! |---|---|---|
//! | [`SlashCommand`] ([`CommandRequest`] at the endpoint) | form fields | the same fields in a JSON object |
//! | [`EventRequest`] | JSON | the same JSON |
//! | [`Interaction`] | a form whose `payload` field holds JSON | that JSON |
//!
//! Each parser returns a typed value or a [`PayloadError`] that says what was
//! wrong (naming the field where there is one), and each typed value says who is
//! calling ([`Origin`]: the installation and the user's own organisation), for
//! the allow-list.

mod command;
mod event;
mod form;
mod interaction;
mod origin;

pub use command::{CommandRequest, SlashCommand};
pub use event::{Authorization, ChatKind, ChatMessage, EventCallback, EventRequest};
pub use interaction::{
    BlockAction, BlockActions, Interaction, InteractionChannel, InteractionContainer,
    InteractionEnterprise, InteractionMessage, InteractionTeam, InteractionUser, is_message_ts,
};
pub use origin::{Org, Origin, UserOrg};

/// Why a request body could not be understood.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    /// The body has no bytes at all.
    #[error("the request body is empty")]
    EmptyBody,
    /// A form body is not UTF-8 text.
    #[error("the form body is not valid UTF-8")]
    NotUtf8,
    /// A form body could not be decoded.
    #[error("the form body could not be decoded: {reason}")]
    MalformedForm {
        /// The decoder's explanation.
        reason: String,
    },
    /// A form field appears more than once.
    #[error("the form field `{field}` appears more than once")]
    DuplicateField {
        /// The repeated field's name.
        field: String,
    },
    /// A required field is absent or empty.
    #[error("the required field `{field}` is missing or empty")]
    MissingField {
        /// The field's name.
        field: &'static str,
    },
    /// A field is present but its value is not of the expected kind.
    #[error("the field `{field}` is invalid: {reason}")]
    InvalidField {
        /// The field's name.
        field: &'static str,
        /// What was expected.
        reason: String,
    },
    /// A JSON body (or embedded JSON) does not parse.
    #[error("the {what} is not valid JSON: {source}")]
    InvalidJson {
        /// What was being parsed, e.g. "event body".
        what: &'static str,
        /// The JSON parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// An Events API request has no `type`.
    #[error("the event body has no string `type` field")]
    MissingEventType,
    /// An Events API request has a `type` Opkit does not handle.
    #[error("the event type `{kind}` is not supported")]
    UnsupportedEventType {
        /// The `type` that was sent.
        kind: String,
    },
    /// An Events API request of a known type lacks a field or has one of the wrong kind.
    #[error("the `{kind}` request is invalid: {source}")]
    InvalidEvent {
        /// The envelope or event type.
        kind: String,
        /// The JSON decoder's error, which names the field.
        #[source]
        source: serde_json::Error,
    },
    /// An interaction of a known type (`block_actions`) lacks a field or has one of
    /// the wrong kind.
    #[error("the `{kind}` interaction is invalid: {source}")]
    InvalidInteraction {
        /// The interaction's `type`.
        kind: String,
        /// The JSON decoder's error, which names the field.
        #[source]
        source: serde_json::Error,
    },
}
