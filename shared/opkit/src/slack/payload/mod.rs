//! Parsing what Slack sends: slash commands, Events API envelopes and interactions.
//!
//! Parsing comes after [signature verification](super::signing) and before anything
//! else; each parser takes the raw body bytes and either returns a typed value or a
//! [`PayloadError`] that says what was wrong (naming the field where there is one).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

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
}

/// A slash command invocation, with every field Slack documents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlashCommand {
    /// The deprecated verification token (requests are checked by signature instead).
    pub token: String,
    /// The workspace the command was run in.
    pub team_id: String,
    /// The workspace's subdomain.
    pub team_domain: String,
    /// The Enterprise Grid organisation, if any.
    pub enterprise_id: Option<String>,
    /// The Enterprise Grid organisation's name, if any.
    pub enterprise_name: Option<String>,
    /// The conversation the command was run in.
    pub channel_id: String,
    /// The conversation's name (`directmessage` or `privategroup` for those kinds).
    pub channel_name: String,
    /// Who ran the command.
    pub user_id: String,
    /// Their (deprecated) user name.
    pub user_name: String,
    /// The command, with its slash: `/opkit`.
    pub command: String,
    /// Everything after the command; may be empty.
    pub text: String,
    /// Where to post up to five replies within 30 minutes.
    pub response_url: String,
    /// Opens a modal; expires 3 seconds after the command.
    pub trigger_id: String,
    /// The Slack app that received the command.
    pub api_app_id: Option<String>,
    /// Whether the app is installed org-wide on Enterprise Grid.
    pub is_enterprise_install: Option<bool>,
}

/// Fields Slack always sends with content; the others may be sent empty.
const NON_EMPTY: [&str; 6] = [
    "team_id",
    "channel_id",
    "user_id",
    "command",
    "response_url",
    "trigger_id",
];

impl SlashCommand {
    /// Parses an `application/x-www-form-urlencoded` slash command body.
    ///
    /// Unknown fields are ignored (Slack adds fields over time); a missing or repeated
    /// field is an error naming it.
    pub fn parse(body: &[u8]) -> Result<Self, PayloadError> {
        Self::from_form(&mut Form::parse(body)?)
    }

    fn from_form(form: &mut Form) -> Result<Self, PayloadError> {
        Ok(Self {
            token: form.required("token")?,
            team_id: form.required("team_id")?,
            team_domain: form.required("team_domain")?,
            enterprise_id: form.optional("enterprise_id"),
            enterprise_name: form.optional("enterprise_name"),
            channel_id: form.required("channel_id")?,
            channel_name: form.required("channel_name")?,
            user_id: form.required("user_id")?,
            user_name: form.required("user_name")?,
            command: form.required("command")?,
            text: form.required("text")?,
            response_url: form.required("response_url")?,
            trigger_id: form.required("trigger_id")?,
            api_app_id: form.optional("api_app_id"),
            is_enterprise_install: form.optional_bool("is_enterprise_install")?,
        })
    }
}

/// What arrives at the slash command endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
#[expect(
    clippy::large_enum_variant,
    reason = "built once per request and matched at once; a Box buys nothing"
)]
pub enum CommandRequest {
    /// Slack checking the endpoint's certificate (`ssl_check=1`); answer 200, do nothing.
    SslCheck,
    /// A user ran a command.
    Command(SlashCommand),
}

impl CommandRequest {
    /// Parses a slash command endpoint's body, recognising Slack's SSL check.
    pub fn parse(body: &[u8]) -> Result<Self, PayloadError> {
        let mut form = Form::parse(body)?;
        if form.fields.get("ssl_check").is_some_and(|v| v == "1") {
            return Ok(Self::SslCheck);
        }
        SlashCommand::from_form(&mut form).map(Self::Command)
    }
}

/// A decoded form body whose fields are taken out one by one.
struct Form {
    fields: HashMap<String, String>,
}

impl Form {
    fn parse(body: &[u8]) -> Result<Self, PayloadError> {
        if body.is_empty() {
            return Err(PayloadError::EmptyBody);
        }
        // The form decoder would silently replace invalid UTF-8; refuse it instead.
        std::str::from_utf8(body).map_err(|_| PayloadError::NotUtf8)?;
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_bytes(body).map_err(|e| PayloadError::MalformedForm {
                reason: e.to_string(),
            })?;
        let mut fields = HashMap::with_capacity(pairs.len());
        for (name, value) in pairs {
            if fields.contains_key(&name) {
                return Err(PayloadError::DuplicateField { field: name });
            }
            fields.insert(name, value);
        }
        Ok(Self { fields })
    }

    fn required(&mut self, field: &'static str) -> Result<String, PayloadError> {
        let value = self
            .fields
            .remove(field)
            .ok_or(PayloadError::MissingField { field })?;
        if value.is_empty() && NON_EMPTY.contains(&field) {
            return Err(PayloadError::MissingField { field });
        }
        Ok(value)
    }

    /// An optional field; Slack sends some as empty strings, which mean "absent".
    fn optional(&mut self, field: &str) -> Option<String> {
        self.fields.remove(field).filter(|v| !v.is_empty())
    }

    fn optional_bool(&mut self, field: &'static str) -> Result<Option<bool>, PayloadError> {
        match self.optional(field).as_deref() {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(other) => Err(PayloadError::InvalidField {
                field,
                reason: format!("expected `true` or `false`, got {other:?}"),
            }),
        }
    }
}

/// What arrives at the Events API endpoint.
#[derive(Debug, Clone, PartialEq)]
pub enum EventRequest {
    /// Slack checking the endpoint when it is configured: echo `challenge` back.
    UrlVerification {
        /// The value to answer with.
        challenge: String,
    },
    /// An event the app subscribed to.
    EventCallback(EventCallback),
    /// Slack telling the app it exceeded the events rate limit; acknowledge and log it.
    AppRateLimited {
        /// The workspace whose events are being dropped.
        team_id: String,
        /// The minute (Unix time, seconds) in which the limit was reached.
        minute_rate_limited: i64,
        /// The app that was limited.
        api_app_id: String,
    },
}

/// The outer envelope of a subscribed event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventCallback {
    /// The workspace the event happened in.
    pub team_id: String,
    /// The app the event is for.
    pub api_app_id: String,
    /// Unique per event; Slack retries deliver the same id, so it is the dedupe key.
    pub event_id: String,
    /// When the event was dispatched (Unix time, seconds).
    pub event_time: i64,
    /// The inner event, kept as raw JSON.
    pub event: Value,
    /// Installations that can see the event.
    #[serde(default)]
    pub authorizations: Vec<Authorization>,
    /// An opaque identifier of the event's context, for `apps.event.authorizations.list`.
    #[serde(default)]
    pub event_context: Option<String>,
    /// Whether the event happened in a channel shared with another organisation.
    #[serde(default)]
    pub is_ext_shared_channel: Option<bool>,
}

impl EventCallback {
    /// The inner event's `type`, e.g. `app_mention`.
    pub fn event_type(&self) -> Option<&str> {
        self.event.get("type").and_then(Value::as_str)
    }

    /// The bot's own user id, from the installations the event is visible to.
    pub fn bot_user_id(&self) -> Option<&str> {
        self.authorizations
            .iter()
            .find(|a| a.is_bot)
            .map(|a| a.user_id.as_str())
    }

    /// The inner event as a message for the bot: a mention (`app_mention`) or a
    /// direct message (`message` in an `im`). `None` for everything the bot does
    /// not answer: other events, channel messages (mentions come as
    /// `app_mention`), edits, joins and other subtypes, and messages from bots —
    /// itself included.
    pub fn chat_message(&self) -> Result<Option<ChatMessage>, PayloadError> {
        let kind = match (
            self.event_type(),
            self.event.get("channel_type").and_then(Value::as_str),
        ) {
            (Some("app_mention"), _) => ChatKind::Mention,
            (Some("message"), Some("im")) => ChatKind::Direct,
            _ => return Ok(None),
        };
        let kind_name = self.event_type().unwrap_or_default().to_string();
        let raw =
            RawMessage::deserialize(&self.event).map_err(|source| PayloadError::InvalidEvent {
                kind: kind_name.clone(),
                source,
            })?;
        if raw.subtype.is_some() || raw.bot_id.is_some() {
            return Ok(None);
        }
        let user = raw.user.ok_or_else(|| PayloadError::InvalidEvent {
            kind: kind_name,
            source: serde::de::Error::missing_field("user"),
        })?;
        if Some(user.as_str()) == self.bot_user_id() {
            return Ok(None);
        }
        Ok(Some(ChatMessage {
            kind,
            user,
            text: raw.text,
            channel: raw.channel,
            ts: raw.ts,
            thread_ts: raw.thread_ts,
        }))
    }
}

#[derive(Deserialize)]
struct RawMessage {
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    text: String,
    channel: String,
    ts: String,
    #[serde(default)]
    thread_ts: Option<String>,
    #[serde(default)]
    subtype: Option<String>,
    #[serde(default)]
    bot_id: Option<String>,
}

/// How a message reached the bot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChatKind {
    /// `@catbot …` in a channel.
    Mention,
    /// A direct message to the bot.
    Direct,
}

/// One installation an event is visible to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authorization {
    /// The organisation, for Enterprise Grid installs.
    #[serde(default)]
    pub enterprise_id: Option<String>,
    /// The workspace.
    #[serde(default)]
    pub team_id: Option<String>,
    /// The installing user or the bot user.
    pub user_id: String,
    /// Whether `user_id` is a bot.
    #[serde(default)]
    pub is_bot: bool,
    /// Whether the install is org-wide.
    #[serde(default)]
    pub is_enterprise_install: bool,
}

/// A message for the bot: a mention or a direct message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Mention or direct message.
    pub kind: ChatKind,
    /// Who wrote it.
    pub user: String,
    /// The text, mention included (`<@U0BOT> queue join perf`).
    pub text: String,
    /// Where.
    pub channel: String,
    /// The message's timestamp (its id within the channel).
    pub ts: String,
    /// The thread the message is in, if any.
    #[serde(default)]
    pub thread_ts: Option<String>,
}

#[derive(Deserialize)]
struct UrlVerificationBody {
    challenge: String,
}

#[derive(Deserialize)]
struct AppRateLimitedBody {
    team_id: String,
    minute_rate_limited: i64,
    api_app_id: String,
}

impl EventRequest {
    /// Parses an Events API JSON body.
    pub fn parse(body: &[u8]) -> Result<Self, PayloadError> {
        if body.is_empty() {
            return Err(PayloadError::EmptyBody);
        }
        let json: Value =
            serde_json::from_slice(body).map_err(|source| PayloadError::InvalidJson {
                what: "event body",
                source,
            })?;
        let kind = json
            .get("type")
            .and_then(Value::as_str)
            .ok_or(PayloadError::MissingEventType)?
            .to_owned();
        let invalid = |source| PayloadError::InvalidEvent {
            kind: kind.clone(),
            source,
        };
        match kind.as_str() {
            "url_verification" => {
                let body = UrlVerificationBody::deserialize(&json).map_err(invalid)?;
                Ok(Self::UrlVerification {
                    challenge: body.challenge,
                })
            }
            "event_callback" => EventCallback::deserialize(json)
                .map(Self::EventCallback)
                .map_err(invalid),
            "app_rate_limited" => {
                let body = AppRateLimitedBody::deserialize(&json).map_err(invalid)?;
                Ok(Self::AppRateLimited {
                    team_id: body.team_id,
                    minute_rate_limited: body.minute_rate_limited,
                    api_app_id: body.api_app_id,
                })
            }
            _ => Err(PayloadError::UnsupportedEventType { kind }),
        }
    }
}

/// Parses an interaction (button, modal, shortcut) body: a form with one `payload`
/// field holding a JSON object. Typed parsing of the object comes later.
pub fn parse_interaction(body: &[u8]) -> Result<Value, PayloadError> {
    let mut form = Form::parse(body)?;
    let payload = form
        .optional("payload")
        .ok_or(PayloadError::MissingField { field: "payload" })?;
    let json: Value =
        serde_json::from_str(&payload).map_err(|source| PayloadError::InvalidJson {
            what: "interaction `payload` field",
            source,
        })?;
    if !json.is_object() {
        return Err(PayloadError::InvalidField {
            field: "payload",
            reason: "expected a JSON object".into(),
        });
    }
    Ok(json)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const COMMAND_BODY: &str = "token=gIkuvaNzQIHg97ATvDxqgjtO&team_id=T0001&team_domain=example&enterprise_id=E0001&enterprise_name=Globular%20Construct%20Inc&channel_id=C2147483705&channel_name=test&user_id=U2147483697&user_name=Steve&command=%2Fweather&text=94070&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2F1234%2F5678&trigger_id=13345224609.738474920.8088930838d88f008e0&api_app_id=A123456&is_enterprise_install=false";

    fn form_without(field: &str) -> String {
        COMMAND_BODY
            .split('&')
            .filter(|pair| !pair.starts_with(&format!("{field}=")))
            .collect::<Vec<_>>()
            .join("&")
    }

    fn form_with(field: &str, value: &str) -> String {
        format!("{}&{field}={value}", form_without(field))
    }

    #[test]
    fn slash_command_parses_every_documented_field() {
        // GIVEN Slack's documented example body
        // WHEN it is parsed
        let command = SlashCommand::parse(COMMAND_BODY.as_bytes()).unwrap();
        // THEN every field is decoded
        assert_eq!(
            command,
            SlashCommand {
                token: "gIkuvaNzQIHg97ATvDxqgjtO".into(),
                team_id: "T0001".into(),
                team_domain: "example".into(),
                enterprise_id: Some("E0001".into()),
                enterprise_name: Some("Globular Construct Inc".into()),
                channel_id: "C2147483705".into(),
                channel_name: "test".into(),
                user_id: "U2147483697".into(),
                user_name: "Steve".into(),
                command: "/weather".into(),
                text: "94070".into(),
                response_url: "https://hooks.slack.com/commands/1234/5678".into(),
                trigger_id: "13345224609.738474920.8088930838d88f008e0".into(),
                api_app_id: Some("A123456".into()),
                is_enterprise_install: Some(false),
            }
        );
    }

    #[test]
    fn optional_fields_may_be_absent_or_empty() {
        // GIVEN a body without enterprise fields and with an empty app id
        let body = form_with("api_app_id", "");
        let body = body
            .split('&')
            .filter(|p| !p.starts_with("enterprise_") && !p.starts_with("is_enterprise"))
            .collect::<Vec<_>>()
            .join("&");
        // WHEN it is parsed
        let command = SlashCommand::parse(body.as_bytes()).unwrap();
        // THEN they are None
        assert_eq!(command.enterprise_id, None);
        assert_eq!(command.enterprise_name, None);
        assert_eq!(command.api_app_id, None);
        assert_eq!(command.is_enterprise_install, None);
    }

    #[test]
    fn empty_text_is_allowed() {
        let command = SlashCommand::parse(form_with("text", "").as_bytes()).unwrap();
        assert_eq!(command.text, "");
    }

    #[test]
    fn text_keeps_plus_as_space_and_percent_escapes() {
        let body = form_with("text", "queue+join+%22perf%22+%26+more");
        let command = SlashCommand::parse(body.as_bytes()).unwrap();
        assert_eq!(command.text, "queue join \"perf\" & more");
    }

    #[test]
    fn each_missing_required_field_is_named() {
        for field in [
            "token",
            "team_id",
            "team_domain",
            "channel_id",
            "channel_name",
            "user_id",
            "user_name",
            "command",
            "text",
            "response_url",
            "trigger_id",
        ] {
            // GIVEN a body without that field
            let body = form_without(field);
            // WHEN it is parsed
            let error = SlashCommand::parse(body.as_bytes()).unwrap_err();
            // THEN the error names it
            assert!(
                matches!(error, PayloadError::MissingField { field: f } if f == field),
                "{field}: {error}"
            );
            assert!(error.to_string().contains(field));
        }
    }

    #[test]
    fn empty_identity_field_is_missing() {
        let error = SlashCommand::parse(form_with("user_id", "").as_bytes()).unwrap_err();
        assert!(matches!(
            error,
            PayloadError::MissingField { field: "user_id" }
        ));
    }

    #[test]
    fn repeated_field_is_refused() {
        // GIVEN a body that names the user twice (a smuggling attempt)
        let body = format!("{COMMAND_BODY}&user_id=U0ADMIN");
        // WHEN it is parsed
        let error = SlashCommand::parse(body.as_bytes()).unwrap_err();
        // THEN it is refused, naming the field
        assert!(matches!(error, PayloadError::DuplicateField { ref field } if field == "user_id"));
    }

    #[test]
    fn malformed_bodies_are_refused() {
        assert!(matches!(
            SlashCommand::parse(b""),
            Err(PayloadError::EmptyBody)
        ));
        assert!(matches!(
            SlashCommand::parse(b"token=\xff\xfe"),
            Err(PayloadError::NotUtf8)
        ));
        assert!(matches!(
            SlashCommand::parse(br#"{"token":"x"}"#),
            Err(PayloadError::MissingField { field: "token" })
        ));
    }

    #[test]
    fn invalid_enterprise_install_flag_is_refused() {
        let body = form_with("is_enterprise_install", "maybe");
        let error = SlashCommand::parse(body.as_bytes()).unwrap_err();
        assert!(matches!(
            error,
            PayloadError::InvalidField {
                field: "is_enterprise_install",
                ..
            }
        ));
    }

    #[test]
    fn ssl_check_is_recognised() {
        // GIVEN Slack's SSL check, which has no command fields
        let body = b"ssl_check=1&token=gIkuvaNzQIHg97ATvDxqgjtO";
        // WHEN it arrives at the command endpoint
        let request = CommandRequest::parse(body).unwrap();
        // THEN it is an SSL check, not a malformed command
        assert_eq!(request, CommandRequest::SslCheck);
    }

    #[test]
    fn command_request_wraps_a_slash_command() {
        let request = CommandRequest::parse(COMMAND_BODY.as_bytes()).unwrap();
        assert!(matches!(request, CommandRequest::Command(c) if c.command == "/weather"));
    }

    #[test]
    fn ssl_check_other_than_one_is_a_command_request() {
        let error = CommandRequest::parse(b"ssl_check=0&token=x").unwrap_err();
        assert!(matches!(
            error,
            PayloadError::MissingField { field: "team_id" }
        ));
    }

    #[test]
    fn url_verification_yields_the_challenge() {
        let body = json!({
            "token": "Jhj5dZrVaK7ZwHHjRyZWjbDl",
            "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
            "type": "url_verification"
        });
        let request = EventRequest::parse(body.to_string().as_bytes()).unwrap();
        assert_eq!(
            request,
            EventRequest::UrlVerification {
                challenge: "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P".into()
            }
        );
    }

    fn app_mention_callback() -> Value {
        json!({
            "token": "XXYYZZ",
            "team_id": "T0001",
            "api_app_id": "A0001",
            "event": {
                "type": "app_mention",
                "user": "U061F7AUR",
                "text": "<@U0LAN0Z89> queue join perf",
                "ts": "1515449522.000016",
                "channel": "C0LAN2Q65",
                "event_ts": "1515449522000016"
            },
            "type": "event_callback",
            "event_id": "Ev0LAN670R",
            "event_time": 1515449522,
            "authorizations": [{
                "enterprise_id": null,
                "team_id": "T0001",
                "user_id": "U0LAN0Z89",
                "is_bot": true,
                "is_enterprise_install": false
            }],
            "is_ext_shared_channel": false,
            "event_context": "4-eyJldCI6ImFwcF9tZW50aW9uIn0"
        })
    }

    #[test]
    fn event_callback_keeps_the_envelope_and_raw_event() {
        // GIVEN an app_mention event callback
        let body = app_mention_callback();
        // WHEN it is parsed
        let EventRequest::EventCallback(callback) =
            EventRequest::parse(body.to_string().as_bytes()).unwrap()
        else {
            panic!("expected an event callback");
        };
        // THEN the envelope is typed and the inner event kept as is
        assert_eq!(callback.team_id, "T0001");
        assert_eq!(callback.api_app_id, "A0001");
        assert_eq!(callback.event_id, "Ev0LAN670R");
        assert_eq!(callback.event_time, 1_515_449_522);
        assert_eq!(callback.event, body["event"]);
        assert_eq!(callback.event_type(), Some("app_mention"));
        assert_eq!(callback.authorizations.len(), 1);
        assert!(callback.authorizations[0].is_bot);
        assert_eq!(callback.authorizations[0].enterprise_id, None);
        assert_eq!(callback.is_ext_shared_channel, Some(false));
    }

    #[test]
    fn app_mention_is_typed_on_request() {
        let body = app_mention_callback();
        let EventRequest::EventCallback(callback) =
            EventRequest::parse(body.to_string().as_bytes()).unwrap()
        else {
            panic!("expected an event callback");
        };
        let mention = callback.chat_message().unwrap().unwrap();
        assert_eq!(mention.kind, ChatKind::Mention);
        assert_eq!(mention.user, "U061F7AUR");
        assert_eq!(mention.text, "<@U0LAN0Z89> queue join perf");
        assert_eq!(mention.channel, "C0LAN2Q65");
        assert_eq!(mention.thread_ts, None);
    }

    #[test]
    fn other_inner_events_are_not_app_mentions() {
        let mut body = app_mention_callback();
        body["event"]["type"] = json!("reaction_added");
        let EventRequest::EventCallback(callback) =
            EventRequest::parse(body.to_string().as_bytes()).unwrap()
        else {
            panic!("expected an event callback");
        };
        assert_eq!(callback.chat_message().unwrap(), None);
    }

    fn callback(body: &Value) -> EventCallback {
        match EventRequest::parse(body.to_string().as_bytes()).unwrap() {
            EventRequest::EventCallback(callback) => callback,
            other => panic!("expected an event callback, got {other:?}"),
        }
    }

    #[test]
    fn direct_messages_are_read_and_channel_chatter_is_not() {
        let mut body = app_mention_callback();
        body["event"]["type"] = json!("message");
        body["event"]["channel_type"] = json!("im");
        body["event"]["text"] = json!("whoami");
        let dm = callback(&body).chat_message().unwrap().unwrap();
        assert_eq!((dm.kind, dm.text.as_str()), (ChatKind::Direct, "whoami"));
        body["event"]["channel_type"] = json!("channel");
        assert_eq!(callback(&body).chat_message().unwrap(), None);
    }

    #[test]
    fn bots_edits_joins_and_the_bot_itself_are_ignored() {
        let base = app_mention_callback();
        let variants = [
            ("bot_id", json!("B123")),
            ("subtype", json!("message_changed")),
            ("subtype", json!("channel_join")),
            ("subtype", json!("bot_message")),
            ("user", json!("U0LAN0Z89")),
        ];
        for (field, value) in variants {
            let mut body = base.clone();
            body["event"][field] = value.clone();
            assert_eq!(
                callback(&body).chat_message().unwrap(),
                None,
                "{field}={value}"
            );
        }
        assert_eq!(callback(&base).bot_user_id(), Some("U0LAN0Z89"));
    }

    #[test]
    fn app_mention_without_user_is_invalid() {
        let mut body = app_mention_callback();
        body["event"].as_object_mut().unwrap().remove("user");
        let EventRequest::EventCallback(callback) =
            EventRequest::parse(body.to_string().as_bytes()).unwrap()
        else {
            panic!("expected an event callback");
        };
        let error = callback.chat_message().unwrap_err();
        assert!(error.to_string().contains("`user`"), "{error}");
    }

    #[test]
    fn event_callback_without_authorizations_is_accepted() {
        let mut body = app_mention_callback();
        body.as_object_mut().unwrap().remove("authorizations");
        let request = EventRequest::parse(body.to_string().as_bytes()).unwrap();
        assert!(matches!(request, EventRequest::EventCallback(c) if c.authorizations.is_empty()));
    }

    #[test]
    fn event_callback_missing_event_id_names_it() {
        // GIVEN an event callback without its id
        let mut body = app_mention_callback();
        body.as_object_mut().unwrap().remove("event_id");
        // WHEN it is parsed
        let error = EventRequest::parse(body.to_string().as_bytes()).unwrap_err();
        // THEN the error names the request kind and the field
        let message = error.to_string();
        assert!(matches!(error, PayloadError::InvalidEvent { .. }));
        assert!(
            message.contains("event_callback") && message.contains("event_id"),
            "{message}"
        );
    }

    #[test]
    fn url_verification_without_challenge_is_invalid() {
        let error = EventRequest::parse(br#"{"type":"url_verification"}"#).unwrap_err();
        assert!(error.to_string().contains("challenge"), "{error}");
    }

    #[test]
    fn app_rate_limited_is_recognised() {
        let body = json!({
            "token": "Jhj5dZrVaK7ZwHHjRyZWjbDl",
            "type": "app_rate_limited",
            "team_id": "T123456",
            "minute_rate_limited": 1518467820,
            "api_app_id": "BlahBlah"
        });
        let request = EventRequest::parse(body.to_string().as_bytes()).unwrap();
        assert_eq!(
            request,
            EventRequest::AppRateLimited {
                team_id: "T123456".into(),
                minute_rate_limited: 1_518_467_820,
                api_app_id: "BlahBlah".into(),
            }
        );
    }

    #[test]
    fn unknown_or_malformed_event_bodies_are_refused() {
        assert!(matches!(
            EventRequest::parse(b""),
            Err(PayloadError::EmptyBody)
        ));
        assert!(matches!(
            EventRequest::parse(b"{not json"),
            Err(PayloadError::InvalidJson { .. })
        ));
        assert!(matches!(
            EventRequest::parse(br#"{"challenge":"x"}"#),
            Err(PayloadError::MissingEventType)
        ));
        assert!(matches!(
            EventRequest::parse(br#"[1,2]"#),
            Err(PayloadError::MissingEventType)
        ));
        assert!(matches!(
            EventRequest::parse(br#"{"type":"block_actions"}"#),
            Err(PayloadError::UnsupportedEventType { ref kind }) if kind == "block_actions"
        ));
    }

    #[test]
    fn interaction_payload_is_decoded_json() {
        // GIVEN a form with a urlencoded JSON payload
        let payload = json!({"type": "block_actions", "user": {"id": "U1"}});
        let body = serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap();
        // WHEN it is parsed
        let parsed = parse_interaction(body.as_bytes()).unwrap();
        // THEN the JSON comes back
        assert_eq!(parsed, payload);
    }

    #[test]
    fn interaction_without_payload_is_refused() {
        let error = parse_interaction(b"token=x").unwrap_err();
        assert!(matches!(
            error,
            PayloadError::MissingField { field: "payload" }
        ));
    }

    #[test]
    fn interaction_with_non_json_payload_is_refused() {
        let error = parse_interaction(b"payload=%7Bnot+json").unwrap_err();
        assert!(matches!(error, PayloadError::InvalidJson { .. }));
        assert!(error.to_string().contains("payload"), "{error}");
    }

    #[test]
    fn interaction_with_non_object_payload_is_refused() {
        let error = parse_interaction(b"payload=42").unwrap_err();
        assert!(matches!(
            error,
            PayloadError::InvalidField {
                field: "payload",
                ..
            }
        ));
    }
}
