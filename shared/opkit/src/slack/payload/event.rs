//! The Events API: the JSON Slack POSTs to the events Request URL (or sends in a
//! Socket Mode `events_api` envelope), and the messages for the bot inside it.
//!
//! Source: <https://docs.slack.dev/apis/events-api/>.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Org, Origin, PayloadError, UserOrg};

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
///
/// `team_id` is absent from organisation-level events: those Slack sends to an app
/// installed org-wide on Enterprise Grid (`team_access_granted`,
/// `team_access_revoked`, and `app_uninstalled` or `tokens_revoked` of an org-wide
/// install), which name `enterprise_id` and the `authorizations` instead
/// (<https://docs.slack.dev/reference/events/team_access_granted>,
/// <https://docs.slack.dev/enterprise/organization-ready-apps>).
///
/// In a channel shared with another organisation (Slack Connect) the envelope's
/// `team_id` and `enterprise_id` may name the other organisation's workspace (where
/// the event originated), and `authorizations` the installation the event is
/// delivered for: [`EventCallback::origin`] reads them in that light.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventCallback {
    /// The workspace the event happened in; absent from organisation-level events.
    #[serde(default)]
    pub team_id: Option<String>,
    /// The Enterprise Grid organisation the event happened in, if any.
    #[serde(default)]
    pub enterprise_id: Option<String>,
    /// The workspace the event is seen from, for events in shared channels.
    #[serde(default)]
    pub context_team_id: Option<String>,
    /// The Enterprise Grid organisation the event is seen from, if any.
    #[serde(default)]
    pub context_enterprise_id: Option<String>,
    /// The app the event is for.
    pub api_app_id: String,
    /// Unique per event; Slack retries deliver the same id, so it is the dedupe key.
    pub event_id: String,
    /// When the event was dispatched (Unix time, seconds).
    pub event_time: i64,
    /// The inner event, kept as raw JSON.
    pub event: Value,
    /// Installations that can see the event (Slack sends at most one).
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
            .and_then(|a| a.user_id.as_deref())
    }

    /// Whether the event ends the app's access somewhere: the app was uninstalled
    /// (`app_uninstalled`, `app_uninstalled_team`), its tokens revoked
    /// (`tokens_revoked`), or an org-wide install lost workspaces
    /// (`team_access_revoked`). Opkit runs nothing for these; operators want to
    /// see them in the log.
    ///
    /// Sources: <https://docs.slack.dev/reference/events/app_uninstalled>,
    /// <https://docs.slack.dev/reference/events/tokens_revoked>,
    /// <https://docs.slack.dev/reference/events/team_access_revoked>.
    pub fn ends_access(&self) -> bool {
        matches!(
            self.event_type(),
            Some(
                "app_uninstalled"
                    | "app_uninstalled_team"
                    | "tokens_revoked"
                    | "team_access_revoked"
            )
        )
    }

    /// Who is calling.
    ///
    /// The installation is the one the event was delivered for: the bot's entry in
    /// `authorizations` (else the first entry); without one, `context_team_id` and
    /// `context_enterprise_id`; without those, the envelope's `team_id` and
    /// `enterprise_id`. One source is used whole, never mixed with another: in a
    /// shared channel the envelope may name the other organisation.
    ///
    /// The user's side is every one of the inner event's `user_team` (the user's
    /// own workspace), `source_team` (the workspace the message was sent from) and
    /// `team` that is present; `is_ext_shared_channel` says whether the channel is
    /// shared with another organisation.
    ///
    /// Sources: <https://docs.slack.dev/apis/events-api/>,
    /// <https://api.slack.com/enterprise/grid/developing>.
    pub fn origin(&self) -> Origin {
        let authorization = self
            .authorizations
            .iter()
            .find(|a| a.is_bot)
            .or(self.authorizations.first());
        let installation = if let Some(a) = authorization {
            Org::new(a.team_id.as_deref(), a.enterprise_id.as_deref())
        } else if self.context_team_id.is_some() || self.context_enterprise_id.is_some() {
            Org::new(
                self.context_team_id.as_deref(),
                self.context_enterprise_id.as_deref(),
            )
        } else {
            Org::new(self.team_id.as_deref(), self.enterprise_id.as_deref())
        };
        // A field that is present but not a string names something that is not an
        // id: it counts, and makes the user unknown.
        let field = |name: &str| match self.event.get(name) {
            None | Some(Value::Null) => None,
            Some(value) => Some(value.as_str().unwrap_or_default()),
        };
        Origin {
            installation,
            user: UserOrg::from_fields(["user_team", "source_team", "team"].map(field)),
            shared_externally: self.is_ext_shared_channel,
        }
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
    /// The installing user or the bot user; Slack's own example of an
    /// organisation-level event (`team_access_granted`) leaves it out.
    #[serde(default)]
    pub user_id: Option<String>,
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
        Self::from_json(json)
    }

    /// Reads an Events API body that is already JSON: a Socket Mode `events_api`
    /// envelope's `payload`, which is the body Slack would have POSTed.
    ///
    /// Source: <https://docs.slack.dev/apis/events-api/using-socket-mode>.
    pub fn from_json(json: Value) -> Result<Self, PayloadError> {
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

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
        assert_eq!(callback.team_id.as_deref(), Some("T0001"));
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

    fn fixture(json: &str) -> EventCallback {
        callback(&serde_json::from_str(json).unwrap())
    }

    fn team(id: &str) -> crate::ids::TeamId {
        crate::ids::TeamId::parse(id).unwrap()
    }

    #[test]
    fn a_slack_connect_mention_names_our_installation_and_the_users_own_team() {
        // GIVEN a member of another organisation mentioning the bot in a shared channel
        let connect = fixture(include_str!(
            "../../../tests/fixtures/slack/connect_mention.json"
        ));
        // THEN the installation is ours, and the user's side theirs, as Slack says it
        let origin = connect.origin();
        assert_eq!(origin.installation, Org::new(Some("T0001"), None));
        assert_eq!(
            origin.user,
            UserOrg::Named(vec![team("T0EXT"), team("T0EXT"), team("T0EXT")])
        );
        assert_eq!(origin.shared_externally, Some(true));
        assert_eq!(
            connect.team_id.as_deref(),
            Some("T0001"),
            "the envelope alone looks like ours"
        );
    }

    #[test]
    fn an_enterprise_grid_mention_names_the_organisation() {
        let grid = fixture(include_str!(
            "../../../tests/fixtures/slack/grid_mention.json"
        ));
        let origin = grid.origin();
        assert_eq!(origin.installation, Org::new(Some("T0001"), Some("E0001")));
        assert_eq!(origin.user, UserOrg::Named(vec![team("T0001")]));
        assert_eq!(origin.shared_externally, Some(false));
        assert_eq!(grid.enterprise_id.as_deref(), Some("E0001"));
        assert_eq!(grid.context_enterprise_id.as_deref(), Some("E0001"));
    }

    #[test]
    fn the_installation_is_the_authorization_else_the_context_else_the_envelope() {
        // In a channel another organisation hosts, the envelope names their
        // workspace; the authorization names the installation the event is for.
        let mut body = app_mention_callback();
        body["team_id"] = json!("T0EXT");
        body["enterprise_id"] = json!("E0EXT");
        assert_eq!(
            callback(&body).origin().installation,
            Org::new(Some("T0001"), None),
            "one source, whole: the envelope's organisation is not mixed in"
        );
        body.as_object_mut().unwrap().remove("authorizations");
        body["context_team_id"] = json!("T0001");
        assert_eq!(
            callback(&body).origin().installation,
            Org::new(Some("T0001"), None)
        );
        body.as_object_mut().unwrap().remove("context_team_id");
        assert_eq!(
            callback(&body).origin().installation,
            Org::new(Some("T0EXT"), Some("E0EXT"))
        );
    }

    #[test]
    fn a_user_side_field_that_is_not_a_string_makes_the_user_unknown() {
        let mut body = app_mention_callback();
        assert_eq!(callback(&body).origin().user, UserOrg::Unnamed);
        body["event"]["user_team"] = json!(42);
        assert_eq!(callback(&body).origin().user, UserOrg::Invalid);
        body["event"]["user_team"] = Value::Null;
        assert_eq!(callback(&body).origin().user, UserOrg::Unnamed);
    }

    #[test]
    fn a_socket_payload_is_read_as_the_http_body() {
        let body = app_mention_callback();
        assert_eq!(
            EventRequest::from_json(body.clone()).unwrap(),
            EventRequest::parse(body.to_string().as_bytes()).unwrap()
        );
        assert!(matches!(
            EventRequest::from_json(json!("event_callback")),
            Err(PayloadError::MissingEventType)
        ));
    }
}
