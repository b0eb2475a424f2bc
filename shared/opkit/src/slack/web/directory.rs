//! Who a user or a conversation is: `users.info` and `conversations.info`, behind
//! the narrow [`Directory`] port (the bot token's [`SlackApi`], or a
//! [`MemoryDirectory`] in tests).
//!
//! Both methods are read with a form-encoded POST (Slack's Web API takes every
//! argument that way; JSON bodies are only for the write methods). An id Slack does
//! not know is `Ok(None)`, not an error: `user_not_found` / `user_not_visible` for
//! users, `channel_not_found` for conversations (also what a private channel the
//! bot is not in answers).

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::Deserialize;

use super::{SlackApi, WebApiError};
use crate::BoxFuture;

/// The fields of a Slack user object (`users.info`'s `user`) Opkit reads.
///
/// Source: Slack's "User object" reference; `tz_offset` is in seconds east of
/// UTC at the time of the call (it changes with daylight saving time, `tz` does not).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SlackUser {
    /// The user id, e.g. `U012AB3CD` (or `W…` on Enterprise Grid).
    pub id: String,
    /// The workspace the user belongs to.
    #[serde(default)]
    pub team_id: Option<String>,
    /// The legacy user name (`@name` before display names).
    #[serde(default)]
    pub name: String,
    /// The full name, if set.
    #[serde(default)]
    pub real_name: Option<String>,
    /// Whether the account is deactivated.
    #[serde(default)]
    pub deleted: bool,
    /// Whether this is a bot user.
    #[serde(default)]
    pub is_bot: bool,
    /// The user's IANA time zone, e.g. `Europe/Paris`; absent for some bots.
    #[serde(default)]
    pub tz: Option<String>,
    /// The time zone's name for display, e.g. `Central European Summer Time`.
    #[serde(default)]
    pub tz_label: Option<String>,
    /// Seconds east of UTC now, e.g. `7200` in Paris in summer, `-25200` in
    /// Los Angeles in summer.
    #[serde(default)]
    pub tz_offset: Option<i32>,
}

/// The fields of a Slack conversation object (`conversations.info`'s `channel`)
/// Opkit reads.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SlackConversation {
    /// The conversation id, e.g. `C012AB3CD` (public), `G…` (older private), `D…` (DM).
    pub id: String,
    /// Its name without `#`; absent for direct messages.
    #[serde(default)]
    pub name: Option<String>,
    /// A channel (public or private), rather than a DM or group DM.
    #[serde(default)]
    pub is_channel: bool,
    /// A private channel.
    #[serde(default)]
    pub is_private: bool,
    /// Archived: nothing can be posted there.
    #[serde(default)]
    pub is_archived: bool,
    /// A direct message.
    #[serde(default)]
    pub is_im: bool,
}

/// Looks users and conversations up by id.
pub trait Directory: Send + Sync {
    /// `users.info`: the user `user`, or `None` if Slack knows no such user (or
    /// the bot may not see them).
    fn user_info<'a>(
        &'a self,
        user: &'a str,
    ) -> BoxFuture<'a, Result<Option<SlackUser>, WebApiError>>;

    /// `conversations.info`: the conversation `channel`, or `None` if Slack knows
    /// none the bot can see.
    fn conversation_info<'a>(
        &'a self,
        channel: &'a str,
    ) -> BoxFuture<'a, Result<Option<SlackConversation>, WebApiError>>;
}

#[derive(Deserialize)]
struct UserAnswer {
    user: SlackUser,
}

#[derive(Deserialize)]
struct ConversationAnswer {
    channel: SlackConversation,
}

impl SlackApi {
    /// `users.info` (scope `users:read`). See [`Directory::user_info`].
    pub async fn user_info(&self, user: &str) -> Result<Option<SlackUser>, WebApiError> {
        const METHOD: &str = "users.info";
        let answer = self.lookup(METHOD, &[("user", user)]).await;
        match not_found_is_none(answer, &["user_not_found", "user_not_visible"])? {
            Some(answer) => Ok(Some(decode::<UserAnswer>(METHOD, answer)?.user)),
            None => Ok(None),
        }
    }

    /// `conversations.info` (scopes `channels:read`, `groups:read`). See
    /// [`Directory::conversation_info`].
    pub async fn conversation_info(
        &self,
        channel: &str,
    ) -> Result<Option<SlackConversation>, WebApiError> {
        const METHOD: &str = "conversations.info";
        let answer = self.lookup(METHOD, &[("channel", channel)]).await;
        match not_found_is_none(answer, &["channel_not_found"])? {
            Some(answer) => Ok(Some(decode::<ConversationAnswer>(METHOD, answer)?.channel)),
            None => Ok(None),
        }
    }

    pub(super) async fn lookup(
        &self,
        method: &'static str,
        fields: &[(&str, &str)],
    ) -> Result<serde_json::Map<String, serde_json::Value>, WebApiError> {
        let body =
            serde_urlencoded::to_string(fields).map_err(|e| WebApiError::InvalidResponse {
                method,
                reason: format!("cannot encode the arguments: {e}"),
            })?;
        self.send(method, "application/x-www-form-urlencoded", body)
            .await
    }
}

/// Slack's "no such id" codes become `None`; other failures stay errors.
pub(super) fn not_found_is_none<T>(
    answer: Result<T, WebApiError>,
    codes: &[&str],
) -> Result<Option<T>, WebApiError> {
    match answer {
        Ok(answer) => Ok(Some(answer)),
        Err(WebApiError::Slack { error, .. }) if codes.contains(&error.as_str()) => Ok(None),
        Err(e) => Err(e),
    }
}

pub(super) fn decode<T: serde::de::DeserializeOwned>(
    method: &'static str,
    answer: serde_json::Map<String, serde_json::Value>,
) -> Result<T, WebApiError> {
    serde_json::from_value(serde_json::Value::Object(answer)).map_err(|e| {
        WebApiError::InvalidResponse {
            method,
            reason: e.to_string(),
        }
    })
}

impl Directory for SlackApi {
    fn user_info<'a>(
        &'a self,
        user: &'a str,
    ) -> BoxFuture<'a, Result<Option<SlackUser>, WebApiError>> {
        Box::pin(SlackApi::user_info(self, user))
    }

    fn conversation_info<'a>(
        &'a self,
        channel: &'a str,
    ) -> BoxFuture<'a, Result<Option<SlackConversation>, WebApiError>> {
        Box::pin(SlackApi::conversation_info(self, channel))
    }
}

/// A [`Directory`] of users and conversations added by the test, which also
/// counts the lookups it answered.
#[derive(Debug, Default)]
pub struct MemoryDirectory {
    users: Mutex<BTreeMap<String, SlackUser>>,
    conversations: Mutex<BTreeMap<String, SlackConversation>>,
    lookups: Mutex<usize>,
}

impl MemoryDirectory {
    /// An empty directory: every lookup answers `None`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a user.
    pub fn with_user(self, user: SlackUser) -> Self {
        self.users
            .lock()
            .expect("directory lock")
            .insert(user.id.clone(), user);
        self
    }

    /// Adds (or replaces) a conversation.
    pub fn with_conversation(self, conversation: SlackConversation) -> Self {
        self.conversations
            .lock()
            .expect("directory lock")
            .insert(conversation.id.clone(), conversation);
        self
    }

    /// How many lookups were answered so far.
    pub fn lookups(&self) -> usize {
        *self.lookups.lock().expect("directory lock")
    }

    fn count(&self) {
        *self.lookups.lock().expect("directory lock") += 1;
    }
}

impl SlackUser {
    /// A user with only an id and a name (tests and fixtures); no time zone.
    pub fn named(id: &str, name: &str) -> Self {
        Self {
            id: id.to_owned(),
            team_id: None,
            name: name.to_owned(),
            real_name: None,
            deleted: false,
            is_bot: false,
            tz: None,
            tz_label: None,
            tz_offset: None,
        }
    }
}

impl SlackConversation {
    /// A public channel with an id and a name (tests and fixtures).
    pub fn channel(id: &str, name: &str) -> Self {
        Self {
            id: id.to_owned(),
            name: Some(name.to_owned()),
            is_channel: true,
            is_private: false,
            is_archived: false,
            is_im: false,
        }
    }
}

impl Directory for MemoryDirectory {
    fn user_info<'a>(
        &'a self,
        user: &'a str,
    ) -> BoxFuture<'a, Result<Option<SlackUser>, WebApiError>> {
        self.count();
        let found = self
            .users
            .lock()
            .expect("directory lock")
            .get(user)
            .cloned();
        Box::pin(std::future::ready(Ok(found)))
    }

    fn conversation_info<'a>(
        &'a self,
        channel: &'a str,
    ) -> BoxFuture<'a, Result<Option<SlackConversation>, WebApiError>> {
        self.count();
        let found = self
            .conversations
            .lock()
            .expect("directory lock")
            .get(channel)
            .cloned();
        Box::pin(std::future::ready(Ok(found)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_users_info_answer_gives_the_time_zone() {
        // GIVEN users.info's answer as Slack documents it (shortened; our values)
        let answer = json!({
            "ok": true,
            "user": {
                "id": "U0PARIS01", "team_id": "T0TEAM001", "name": "camille",
                "deleted": false, "real_name": "Camille Martin",
                "tz": "Europe/Paris", "tz_label": "Central European Summer Time",
                "tz_offset": 7200, "is_admin": false, "is_bot": false,
                "profile": {"display_name": "camille", "real_name": "Camille Martin"},
                "updated": 1_700_000_000
            }
        });
        // WHEN it is decoded
        let user = decode::<UserAnswer>("users.info", answer.as_object().unwrap().clone())
            .unwrap()
            .user;
        // THEN the fields Opkit reads are there
        assert_eq!(user.id, "U0PARIS01");
        assert_eq!(user.tz.as_deref(), Some("Europe/Paris"));
        assert_eq!(user.tz_offset, Some(7200));
        assert!(!user.deleted && !user.is_bot);
    }

    #[test]
    fn a_bot_without_a_time_zone_still_decodes() {
        let answer = json!({"ok": true, "user": {"id": "B1", "name": "ci", "is_bot": true}});
        let user = decode::<UserAnswer>("users.info", answer.as_object().unwrap().clone())
            .unwrap()
            .user;
        assert!(user.is_bot);
        assert_eq!(user.tz, None);
    }

    #[test]
    fn a_conversations_info_answer_decodes() {
        let answer = json!({"ok": true, "channel": {
            "id": "C0OPS0001", "name": "ops", "is_channel": true, "is_private": false,
            "is_archived": false, "is_im": false, "created": 1_600_000_000
        }});
        let channel =
            decode::<ConversationAnswer>("conversations.info", answer.as_object().unwrap().clone())
                .unwrap()
                .channel;
        assert_eq!(channel, SlackConversation::channel("C0OPS0001", "ops"));
    }

    #[test]
    fn unknown_ids_are_none_and_other_refusals_errors() {
        let refused = |error: &str| {
            Err::<(), _>(WebApiError::Slack {
                method: "users.info",
                error: error.to_owned(),
            })
        };
        assert_eq!(
            not_found_is_none(refused("user_not_found"), &["user_not_found"]).unwrap(),
            None
        );
        assert!(not_found_is_none(refused("missing_scope"), &["user_not_found"]).is_err());
    }

    #[tokio::test]
    async fn memory_directory_answers_what_was_added() {
        let dir = MemoryDirectory::new()
            .with_user(SlackUser::named("U1", "al"))
            .with_conversation(SlackConversation::channel("C1", "ops"));
        let port: &dyn Directory = &dir;
        assert_eq!(port.user_info("U1").await.unwrap().unwrap().name, "al");
        assert_eq!(port.user_info("U2").await.unwrap(), None);
        assert!(port.conversation_info("C1").await.unwrap().is_some());
        assert_eq!(dir.lookups(), 3);
    }
}
