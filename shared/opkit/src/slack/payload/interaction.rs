//! Interactions: what Slack sends when someone uses an interactive element, such as
//! a click on one of Opkit's confirmation buttons (`block_actions`).
//!
//! Over HTTP the interaction is a form POSTed to the app's Interactivity Request
//! URL, with one field, `payload`, holding a JSON object; in Socket Mode that JSON
//! object is an `interactive` envelope's `payload`.
//!
//! Source: <https://docs.slack.dev/interactivity/handling-user-interaction>.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::form::Form;
use super::{Org, Origin, PayloadError, UserOrg};

/// An interaction, by its `type`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[expect(
    clippy::large_enum_variant,
    reason = "built once per request and matched at once; a Box buys nothing"
)]
pub enum Interaction {
    /// Someone used an interactive Block Kit element: `"type": "block_actions"`.
    BlockActions(BlockActions),
    /// Any other type (`view_submission`, `shortcut`, `message_action`, ...): only
    /// its type is read, and Opkit handles none of them.
    Other {
        /// The `type` that was sent.
        kind: String,
    },
}

impl Interaction {
    /// Parses an interaction request body: an `application/x-www-form-urlencoded`
    /// form whose `payload` field holds the JSON object.
    pub fn parse(body: &[u8]) -> Result<Self, PayloadError> {
        let mut form = Form::parse(body)?;
        let payload = form
            .optional("payload")
            .ok_or(PayloadError::MissingField { field: "payload" })?;
        let json: Value =
            serde_json::from_str(&payload).map_err(|source| PayloadError::InvalidJson {
                what: "interaction `payload` field",
                source,
            })?;
        Self::from_json(json)
    }

    /// Reads the interaction's JSON object itself (a Socket Mode `interactive`
    /// envelope's `payload`). It must be an object with a string `type`; a
    /// `block_actions` payload must have the fields [`BlockActions`] requires.
    pub fn from_json(payload: Value) -> Result<Self, PayloadError> {
        if !payload.is_object() {
            return Err(PayloadError::InvalidField {
                field: "payload",
                reason: "expected a JSON object".into(),
            });
        }
        let kind = payload
            .get("type")
            .and_then(Value::as_str)
            .filter(|kind| !kind.is_empty())
            .ok_or(PayloadError::MissingField { field: "type" })?;
        match kind {
            "block_actions" => BlockActions::deserialize(payload)
                .map(Self::BlockActions)
                .map_err(|source| PayloadError::InvalidInteraction {
                    kind: "block_actions".into(),
                    source,
                }),
            other => Ok(Self::Other {
                kind: other.to_owned(),
            }),
        }
    }

    /// The interaction's `type`, e.g. `block_actions`.
    pub fn kind(&self) -> &str {
        match self {
            Self::BlockActions(_) => "block_actions",
            Self::Other { kind } => kind,
        }
    }
}

/// A `block_actions` interaction: someone used an interactive element in a message
/// or a view (for Opkit, clicked one of its buttons). Only the fields Opkit reads
/// are typed (of `container` and `message`, only where the message is: its `ts`
/// and its thread); the others (`view`, `state`, `token`, ...) are ignored. Its
/// shape, abridged:
///
/// ```json
/// {
///   "type": "block_actions",
///   "user": {"id": "U0001", "username": "al", "name": "al", "team_id": "T0001"},
///   "team": {"id": "T0001", "domain": "example"},
///   "enterprise": null,
///   "is_enterprise_install": false,
///   "api_app_id": "A0001",
///   "channel": {"id": "C0001", "name": "ops"},
///   "container": {"type": "message", "message_ts": "1795000000.000300",
///                 "thread_ts": "1795000000.000100", "channel_id": "C0001",
///                 "is_ephemeral": false},
///   "message": {"type": "message", "ts": "1795000000.000300",
///               "thread_ts": "1795000000.000100", "text": "…", "blocks": […]},
///   "response_url": "https://hooks.slack.com/actions/T0001/1/abc",
///   "trigger_id": "13345224609.738474920.8088930838d88f008e0",
///   "actions": [{"action_id": "opkit:confirm", "block_id": "b1", "type": "button",
///                "value": "p-1", "action_ts": "1795000001.000400"}]
/// }
/// ```
///
/// `user` and `actions` are required; the rest depends on where the element was
/// (`channel` and `response_url` come with messages, not with modals) and on the
/// installation (`team` is `null` for some org-wide installs, `enterprise` outside
/// Enterprise Grid).
///
/// Source: <https://docs.slack.dev/reference/interaction-payloads/block_actions-payload>.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockActions {
    /// Who used the element.
    pub user: InteractionUser,
    /// The workspace it happened in.
    #[serde(default)]
    pub team: Option<InteractionTeam>,
    /// The Enterprise Grid organisation, if any.
    #[serde(default)]
    pub enterprise: Option<InteractionEnterprise>,
    /// Whether the app is installed org-wide on Enterprise Grid.
    #[serde(default)]
    pub is_enterprise_install: Option<bool>,
    /// The Slack app the element belongs to.
    #[serde(default)]
    pub api_app_id: Option<String>,
    /// The conversation of the message the element is in.
    #[serde(default)]
    pub channel: Option<InteractionChannel>,
    /// Where to post up to five replies within 30 minutes (messages only); a reply
    /// may replace the message that held the element.
    #[serde(default)]
    pub response_url: Option<String>,
    /// Opens a modal; expires 3 seconds after the interaction.
    #[serde(default)]
    pub trigger_id: Option<String>,
    /// What was done; one entry for a button click.
    pub actions: Vec<BlockAction>,
    /// Where the element is: for a message, its `message_ts`, the thread it is a
    /// reply in (`thread_ts`) and whether it is ephemeral. One not shaped as Slack
    /// documents it is taken as absent: it only places the reply.
    #[serde(default, deserialize_with = "absent_unless_shaped")]
    pub container: Option<InteractionContainer>,
    /// The message the element is in (messages only): its `ts`, and its
    /// `thread_ts` when it is in a thread. Its other fields are ignored; one not
    /// shaped as Slack documents it is taken as absent.
    #[serde(default, deserialize_with = "absent_unless_shaped")]
    pub message: Option<InteractionMessage>,
}

/// `Some` when the field is shaped as `T`, else `None` (never an error): for the
/// fields that only say where a reply goes, whose absence is no reason to refuse
/// a click.
fn absent_unless_shaped<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    let value = Option::<Value>::deserialize(deserializer)?;
    Ok(value.and_then(|v| serde_json::from_value(v).ok()))
}

impl BlockActions {
    /// The workspace: `team.id`, or the user's `team_id` when `team` is absent.
    pub fn team_id(&self) -> Option<&str> {
        self.team
            .as_ref()
            .map(|team| team.id.as_str())
            .or(self.user.team_id.as_deref())
    }

    /// The Enterprise Grid organisation's id, if any: `enterprise.id`, or
    /// `team.enterprise_id`.
    pub fn enterprise_id(&self) -> Option<&str> {
        self.enterprise
            .as_ref()
            .map(|e| e.id.as_str())
            .or(self.team.as_ref().and_then(|t| t.enterprise_id.as_deref()))
    }

    /// Who is calling: the installation is the workspace the click happened in
    /// (`team.id`; `null` for some org-wide installs) and its organisation
    /// ([`BlockActions::enterprise_id`]); the user's side is `user.team_id`, the
    /// clicking user's own workspace (or, on Enterprise Grid, organisation). A click
    /// that does not say which team the user is from is from an unknown user.
    ///
    /// Sources: <https://docs.slack.dev/reference/interaction-payloads/block_actions-payload>,
    /// <https://docs.slack.dev/reference/interaction-payloads/block_suggestion-payload>.
    pub fn origin(&self) -> Origin {
        let user = match self.user.team_id.as_deref() {
            Some(team) => UserOrg::from_fields([Some(team)]),
            None => UserOrg::Invalid,
        };
        Origin {
            installation: Org::new(
                self.team.as_ref().map(|t| t.id.as_str()),
                self.enterprise_id(),
            ),
            user,
            shared_externally: None,
        }
    }

    /// The first (for a click, the only) action.
    pub fn action(&self) -> Option<&BlockAction> {
        self.actions.first()
    }

    /// The thread the clicked message is a reply in: `container.thread_ts`, else
    /// `message.thread_ts` (Slack sends the first; its SDKs read both). `None` for
    /// a message that is not in a thread, for a view, and for a value that is not
    /// a message timestamp ([`is_message_ts`]).
    pub fn thread_ts(&self) -> Option<&str> {
        let container = self.container.as_ref();
        container
            .and_then(|c| c.thread_ts.as_deref())
            .or_else(|| self.message.as_ref()?.thread_ts.as_deref())
            .filter(|ts| is_message_ts(ts))
    }

    /// The thread a reply to the click belongs in: the one the message is in
    /// ([`BlockActions::thread_ts`]), else the message's own (it starts one):
    /// `container.message_ts`, else `message.ts`. `None` for an ephemeral message
    /// (nothing can be threaded under it) and for a view.
    pub fn reply_thread_ts(&self) -> Option<&str> {
        if let Some(thread) = self.thread_ts() {
            return Some(thread);
        }
        let container = self.container.as_ref();
        if container.is_some_and(|c| c.is_ephemeral == Some(true)) {
            return None;
        }
        container
            .filter(|c| c.kind.as_deref() == Some("message"))
            .and_then(|c| c.message_ts.as_deref())
            .or_else(|| self.message.as_ref()?.ts.as_deref())
            .filter(|ts| is_message_ts(ts))
    }
}

/// Whether `ts` is shaped as a Slack message timestamp, `1795000000.000300`:
/// digits, a dot, digits, at most 32 characters in all. What a click says about
/// its message is checked against it before it is used as a `thread_ts`.
pub fn is_message_ts(ts: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    ts.len() <= 32
        && ts
            .split_once('.')
            .is_some_and(|(a, b)| digits(a) && digits(b))
}

/// Where an interactive element is: `{"type": "message", "message_ts",
/// "channel_id", "is_ephemeral"}` for a message, plus `thread_ts` when the message
/// is a reply in a thread; `{"type": "view", "view_id"}` for a modal or a Home tab.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InteractionContainer {
    /// `message` or `view`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// The message's `ts`.
    #[serde(default)]
    pub message_ts: Option<String>,
    /// The thread the message is a reply in, if it is.
    #[serde(default)]
    pub thread_ts: Option<String>,
    /// The message's conversation.
    #[serde(default)]
    pub channel_id: Option<String>,
    /// Whether the message is ephemeral (seen by one user, never threaded).
    #[serde(default)]
    pub is_ephemeral: Option<bool>,
}

/// The message an interactive element is in, as far as Opkit reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InteractionMessage {
    /// The message's `ts`.
    #[serde(default)]
    pub ts: Option<String>,
    /// The thread it is a reply in (the parent's `ts`), if it is.
    #[serde(default)]
    pub thread_ts: Option<String>,
}

/// The user in an interaction: `{"id", "username", "name", "team_id"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InteractionUser {
    /// The user's id (`U…` or `W…`).
    pub id: String,
    /// Their handle.
    #[serde(default)]
    pub username: Option<String>,
    /// Their (deprecated) name.
    #[serde(default)]
    pub name: Option<String>,
    /// Their workspace.
    #[serde(default)]
    pub team_id: Option<String>,
}

/// The workspace in an interaction: `{"id", "domain"}`, plus `enterprise_id` and
/// `enterprise_name` on Enterprise Grid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InteractionTeam {
    /// The workspace's id (`T…`).
    pub id: String,
    /// Its subdomain.
    #[serde(default)]
    pub domain: Option<String>,
    /// Its Enterprise Grid organisation's id (`E…`), if any.
    #[serde(default)]
    pub enterprise_id: Option<String>,
    /// Its Enterprise Grid organisation's name, if any.
    #[serde(default)]
    pub enterprise_name: Option<String>,
}

/// The Enterprise Grid organisation in an interaction: `{"id", "name"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InteractionEnterprise {
    /// The organisation's id (`E…`).
    pub id: String,
    /// Its name.
    #[serde(default)]
    pub name: Option<String>,
}

/// The conversation in an interaction: `{"id", "name"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InteractionChannel {
    /// The conversation's id (`C…`, `G…` or `D…`).
    pub id: String,
    /// Its name (`directmessage` or `privategroup` for those kinds).
    #[serde(default)]
    pub name: Option<String>,
}

/// One action in a `block_actions` interaction: `{"action_id", "block_id", "type",
/// "value", "action_ts"}` for a button; other elements add their own fields
/// (`selected_option`, ...), which are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockAction {
    /// The element's `action_id`, as the app set it (`opkit:confirm`).
    pub action_id: String,
    /// The block the element is in.
    #[serde(default)]
    pub block_id: Option<String>,
    /// The element's type, e.g. `button`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// The button's `value`, as the app set it (Opkit puts a pending request's id there).
    #[serde(default)]
    pub value: Option<String>,
    /// When the action happened (a Slack timestamp).
    #[serde(default)]
    pub action_ts: Option<String>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// A click on a button in a message, shaped as Slack documents it (with the
    /// fields Opkit ignores).
    fn click() -> Value {
        json!({
            "type": "block_actions",
            "user": {"id": "U0CA5", "username": "al", "name": "al", "team_id": "T3MDE"},
            "api_app_id": "A0CA5",
            "token": "Shh_its_a_seekrit",
            "container": {"type": "message", "message_ts": "1795000000.000300",
                          "channel_id": "C0CA5", "is_ephemeral": true},
            "trigger_id": "12321423423.333649436676.d8c1bb837935619ccad0f624c448ffb3",
            "team": {"id": "T3MDE", "domain": "eriktest"},
            "enterprise": null,
            "is_enterprise_install": false,
            "channel": {"id": "C0CA5", "name": "ops"},
            "message": {"type": "message", "text": "Confirm?", "ts": "1795000000.000300"},
            "state": {"values": {}},
            "response_url": "https://hooks.slack.com/actions/T3MDE/1/abc",
            "actions": [{
                "action_id": "opkit:confirm",
                "block_id": "b1",
                "text": {"type": "plain_text", "text": "Confirm", "emoji": true},
                "value": "p-42",
                "style": "primary",
                "type": "button",
                "action_ts": "1795000001.000400"
            }]
        })
    }

    fn form(payload: &Value) -> String {
        serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap()
    }

    fn block_actions(payload: Value) -> BlockActions {
        match Interaction::from_json(payload).unwrap() {
            Interaction::BlockActions(click) => click,
            other => panic!("expected block_actions, got {other:?}"),
        }
    }

    #[test]
    fn a_button_click_is_typed_from_the_form() {
        // GIVEN a click as Slack POSTs it
        let body = form(&click());
        // WHEN it is parsed
        let Interaction::BlockActions(click) = Interaction::parse(body.as_bytes()).unwrap() else {
            panic!("expected block_actions");
        };
        // THEN the fields Opkit reads are typed
        assert_eq!(click.user.id, "U0CA5");
        assert_eq!(click.user.username.as_deref(), Some("al"));
        assert_eq!(click.team_id(), Some("T3MDE"));
        assert_eq!(click.enterprise_id(), None);
        assert_eq!(click.is_enterprise_install, Some(false));
        assert_eq!(click.api_app_id.as_deref(), Some("A0CA5"));
        assert_eq!(
            click.channel,
            Some(InteractionChannel {
                id: "C0CA5".into(),
                name: Some("ops".into())
            })
        );
        assert_eq!(
            click.response_url.as_deref(),
            Some("https://hooks.slack.com/actions/T3MDE/1/abc")
        );
        assert_eq!(
            click.action(),
            Some(&BlockAction {
                action_id: "opkit:confirm".into(),
                block_id: Some("b1".into()),
                kind: Some("button".into()),
                value: Some("p-42".into()),
                action_ts: Some("1795000001.000400".into()),
            })
        );
    }

    #[test]
    fn the_socket_payload_is_the_same_json() {
        // GIVEN the same click as a Socket Mode envelope's payload
        // WHEN it is read as JSON rather than as a form
        let from_json = Interaction::from_json(click()).unwrap();
        // THEN it is what the HTTP route reads
        assert_eq!(
            from_json,
            Interaction::parse(form(&click()).as_bytes()).unwrap()
        );
        assert_eq!(from_json.kind(), "block_actions");
    }

    #[test]
    fn team_falls_back_to_the_users_and_enterprise_is_read() {
        let mut payload = click();
        payload["team"] = Value::Null;
        payload["enterprise"] = json!({"id": "E0001", "name": "Globular Construct Inc"});
        let click = block_actions(payload);
        assert_eq!(click.team_id(), Some("T3MDE"));
        assert_eq!(click.enterprise_id(), Some("E0001"));
    }

    #[test]
    fn a_click_says_the_installation_and_the_users_own_team() {
        // GIVEN a member of another organisation clicking in a shared channel
        let connect: Value = serde_json::from_str(include_str!(
            "../../../tests/fixtures/slack/connect_click.json"
        ))
        .unwrap();
        let origin = block_actions(connect.clone()).origin();
        // THEN the installation is ours and the user's team theirs
        assert_eq!(origin.installation, Org::new(Some("T0001"), None));
        assert_eq!(
            origin.user,
            UserOrg::Named(vec![crate::ids::TeamId::parse("T0EXT").unwrap()])
        );
        // On Enterprise Grid the organisation may come as `team.enterprise_id`
        let mut grid = connect.clone();
        grid["team"]["enterprise_id"] = json!("E0001");
        assert_eq!(
            block_actions(grid).origin().installation,
            Org::new(Some("T0001"), Some("E0001"))
        );
        // A click that does not say which team the user is from is not trusted
        let mut unsaid = connect;
        unsaid["user"].as_object_mut().unwrap().remove("team_id");
        assert_eq!(block_actions(unsaid).origin().user, UserOrg::Invalid);
    }

    #[test]
    fn a_click_says_which_thread_its_reply_belongs_in() {
        // GIVEN a click on a channel message that is not in a thread
        let mut payload = click();
        payload["container"]["is_ephemeral"] = false.into();
        let top = block_actions(payload.clone());
        // THEN it is in no thread, and a reply starts one under the message
        assert_eq!(top.thread_ts(), None);
        assert_eq!(top.reply_thread_ts(), Some("1795000000.000300"));

        // GIVEN the same message as a reply in a thread (Slack says so in `container`)
        payload["container"]["thread_ts"] = "1795000000.000100".into();
        let reply = block_actions(payload.clone());
        assert_eq!(reply.thread_ts(), Some("1795000000.000100"));
        assert_eq!(reply.reply_thread_ts(), Some("1795000000.000100"));
        // (or only in `message`, as the SDKs also read it)
        payload["container"]
            .as_object_mut()
            .unwrap()
            .remove("thread_ts");
        payload["message"]["thread_ts"] = "1795000000.000100".into();
        assert_eq!(
            block_actions(payload).reply_thread_ts(),
            Some("1795000000.000100")
        );

        // an ephemeral message starts no thread
        assert_eq!(block_actions(click()).reply_thread_ts(), None);
        // a view is in no conversation
        let mut view = click();
        view["container"] = json!({"type": "view", "view_id": "V0CA5"});
        view.as_object_mut().unwrap().remove("message");
        assert_eq!(block_actions(view).reply_thread_ts(), None);
    }

    #[test]
    fn a_container_or_message_of_another_shape_places_nothing_and_refuses_nothing() {
        let mut payload = click();
        payload["container"] =
            json!({"type": "message", "message_ts": 1795000000, "thread_ts": []});
        payload["message"] = json!("a message");
        let click = block_actions(payload);
        assert_eq!(click.container, None);
        assert_eq!(click.message, None);
        assert_eq!(click.reply_thread_ts(), None);
        assert_eq!(click.action().unwrap().action_id, "opkit:confirm");
    }

    #[test]
    fn a_thread_that_is_not_a_message_timestamp_is_not_used() {
        for junk in [
            "",
            "abc",
            "1.2.3",
            "12345",
            ".5",
            "5.",
            "1795000000.0003<!here>",
        ] {
            let mut payload = click();
            payload["container"]["is_ephemeral"] = false.into();
            payload["container"]["thread_ts"] = junk.into();
            payload["container"]["message_ts"] = junk.into();
            payload["message"]["ts"] = junk.into();
            let click = block_actions(payload);
            assert_eq!(click.thread_ts(), None, "{junk:?}");
            assert_eq!(click.reply_thread_ts(), None, "{junk:?}");
        }
        assert!(is_message_ts("1795000000.000300"));
        assert!(!is_message_ts(&format!("1.{}", "0".repeat(40))));
    }

    #[test]
    fn a_click_in_a_modal_has_no_channel_or_response_url() {
        let mut payload = click();
        let object = payload.as_object_mut().unwrap();
        for field in ["channel", "response_url", "trigger_id", "team"] {
            object.remove(field);
        }
        let click = block_actions(payload);
        assert_eq!(click.team_id(), Some("T3MDE"));
        assert_eq!((click.channel, click.response_url), (None, None));
    }

    #[test]
    fn other_interaction_types_are_named_not_refused() {
        let shortcut = json!({"type": "shortcut", "callback_id": "x", "user": {"id": "U1"}});
        assert_eq!(
            Interaction::from_json(shortcut).unwrap(),
            Interaction::Other {
                kind: "shortcut".into()
            }
        );
    }

    #[test]
    fn a_malformed_block_actions_payload_names_the_field() {
        type Breakage = fn(&mut Value);
        let cases: [(&str, Breakage); 4] = [
            ("`user`", |p| {
                p.as_object_mut().unwrap().remove("user");
            }),
            ("`actions`", |p| {
                p.as_object_mut().unwrap().remove("actions");
            }),
            ("`action_id`", |p| {
                p["actions"][0].as_object_mut().unwrap().remove("action_id");
            }),
            ("invalid type", |p| p["user"]["id"] = json!(42)),
        ];
        for (expected, break_it) in cases {
            // GIVEN a click with one thing wrong
            let mut payload = click();
            break_it(&mut payload);
            // WHEN it is parsed
            let error = Interaction::parse(form(&payload).as_bytes()).unwrap_err();
            // THEN the error says it is a bad block_actions payload, and what is wrong
            let message = error.to_string();
            assert!(
                matches!(error, PayloadError::InvalidInteraction { ref kind, .. } if kind == "block_actions"),
                "{message}"
            );
            assert!(
                message.starts_with("the `block_actions` interaction is invalid")
                    && message.contains(expected),
                "{expected}: {message}"
            );
        }
    }

    #[test]
    fn an_interaction_without_a_type_is_refused() {
        let error = Interaction::from_json(json!({"user": {"id": "U1"}})).unwrap_err();
        assert!(matches!(
            error,
            PayloadError::MissingField { field: "type" }
        ));
        assert!(error.to_string().contains("`type`"), "{error}");
    }

    #[test]
    fn interaction_without_payload_is_refused() {
        let error = Interaction::parse(b"token=x").unwrap_err();
        assert!(matches!(
            error,
            PayloadError::MissingField { field: "payload" }
        ));
    }

    #[test]
    fn interaction_with_non_json_payload_is_refused() {
        let error = Interaction::parse(b"payload=%7Bnot+json").unwrap_err();
        assert!(matches!(error, PayloadError::InvalidJson { .. }));
        assert!(error.to_string().contains("payload"), "{error}");
    }

    #[test]
    fn interaction_with_non_object_payload_is_refused() {
        for error in [
            Interaction::parse(b"payload=42").unwrap_err(),
            Interaction::from_json(json!(["block_actions"])).unwrap_err(),
        ] {
            assert!(matches!(
                error,
                PayloadError::InvalidField {
                    field: "payload",
                    ..
                }
            ));
        }
    }
}
