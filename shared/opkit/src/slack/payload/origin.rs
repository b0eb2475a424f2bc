//! Who is calling, as a payload says it: the installation the payload came through,
//! and the calling user's own workspace or organisation. Each parser extracts it
//! ([`SlashCommand::origin`](super::SlashCommand::origin),
//! [`EventCallback::origin`](super::EventCallback::origin),
//! [`BlockActions::origin`](super::BlockActions::origin)); the ingress decides on it
//! with [`crate::admission::admit`].
//!
//! The two differ in a channel shared with another organisation (Slack Connect):
//! the app is installed in one workspace, and a member of another organisation can
//! write in the channel, mention the bot, or click its buttons. Slack says so in
//! the payload: the user's own team (`user_team`, `user.team_id`) is not the
//! installation's.
//!
//! Sources: <https://docs.slack.dev/apis/events-api/> (the event envelope:
//! `authorizations`, `context_team_id`, `context_enterprise_id`,
//! `is_ext_shared_channel`), <https://api.slack.com/apis/channels-between-orgs>
//! (Slack Connect: channels shared between organisations),
//! <https://api.slack.com/enterprise/grid/developing> (`user_team` and `source_team`
//! on messages from shared channels; `E…` ids), and
//! <https://docs.slack.dev/reference/interaction-payloads/block_suggestion-payload>
//! (an interaction's `user.team_id` is the organisation's `E…` id on Enterprise
//! Grid).

use std::fmt;

use crate::ids::TeamId;

/// A workspace and the Enterprise Grid organisation it belongs to, as far as a
/// payload says. An id that is absent, empty or not shaped like a Slack id is
/// `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Org {
    /// The workspace (`T…`).
    pub team: Option<TeamId>,
    /// The Enterprise Grid organisation (`E…`).
    pub enterprise: Option<TeamId>,
}

impl Org {
    /// The organisation from the ids a payload gives.
    pub fn new(team: Option<&str>, enterprise: Option<&str>) -> Self {
        let id = |id: Option<&str>| id.and_then(|id| TeamId::parse(id).ok());
        Self {
            team: id(team),
            enterprise: id(enterprise),
        }
    }

    /// The ids that are known: the workspace's, then the organisation's.
    pub fn ids(&self) -> impl Iterator<Item = &TeamId> {
        self.team.iter().chain(self.enterprise.iter())
    }
}

/// `T0001 (E0001)`, `T0001`, `E0001`, or `no workspace`.
impl fmt::Display for Org {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.team, &self.enterprise) {
            (Some(team), Some(org)) => write!(f, "{team} ({org})"),
            (Some(id), None) | (None, Some(id)) => write!(f, "{id}"),
            (None, None) => f.write_str("no workspace"),
        }
    }
}

/// What a payload says of the calling user's own workspace or organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserOrg {
    /// Every id the payload gives for the user's side, each a workspace (`T…`) or,
    /// on Enterprise Grid, an organisation (`E…`): a slash command's `team_id` and
    /// `enterprise_id`; a message's `user_team`, `source_team` and `team`; a
    /// click's `user.team_id`. All of them must be the caller's own for the user to
    /// count as one of the installation's.
    Named(Vec<TeamId>),
    /// The payload names none.
    Unnamed,
    /// The payload names one that is not a Slack id: who the user belongs to is
    /// not known, and they count as external.
    Invalid,
}

impl UserOrg {
    /// The user's side from the values of the fields that name it (`None` for a
    /// field that is absent or `null`).
    pub fn from_fields<'a>(fields: impl IntoIterator<Item = Option<&'a str>>) -> Self {
        let named: Vec<&str> = fields.into_iter().flatten().collect();
        if named.is_empty() {
            return Self::Unnamed;
        }
        named
            .into_iter()
            .map(TeamId::parse)
            .collect::<Result<Vec<_>, _>>()
            .map_or(Self::Invalid, Self::Named)
    }
}

/// The ids, comma-separated; `not named`; or `not a Slack id`.
impl fmt::Display for UserOrg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Named(ids) => {
                let ids: Vec<&str> = ids.iter().map(TeamId::as_str).collect();
                f.write_str(&ids.join(", "))
            }
            Self::Unnamed => f.write_str("not named"),
            Self::Invalid => f.write_str("not a Slack id"),
        }
    }
}

/// Who is calling: the installation a payload came through and the calling user's
/// own organisation. [`crate::admission::admit`] decides on it, the same way for
/// slash commands, events and interactions, over HTTP and in Socket Mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The workspace and organisation where the app is installed and the payload
    /// was delivered for.
    pub installation: Org,
    /// The calling user's own workspace or organisation.
    pub user: UserOrg,
    /// Whether the conversation is shared with another organisation, where the
    /// payload says so (an event's `is_ext_shared_channel`).
    pub shared_externally: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn team(id: &str) -> TeamId {
        TeamId::parse(id).unwrap()
    }

    #[test]
    fn ids_that_are_not_slack_ids_are_unknown() {
        let org = Org::new(Some("T0001"), Some("not an id"));
        assert_eq!(org.team, Some(team("T0001")));
        assert_eq!(org.enterprise, None);
        assert_eq!(org.ids().collect::<Vec<_>>(), [&team("T0001")]);
        assert_eq!(Org::new(Some(""), None), Org::default());
        assert_eq!(Org::new(Some("T1"), Some("E1")).to_string(), "T1 (E1)");
        assert_eq!(Org::new(None, Some("E1")).to_string(), "E1");
        assert_eq!(Org::default().to_string(), "no workspace");
    }

    #[test]
    fn the_users_side_is_named_unnamed_or_invalid() {
        assert_eq!(
            UserOrg::from_fields([Some("T0001"), None, Some("E0001")]),
            UserOrg::Named(vec![team("T0001"), team("E0001")])
        );
        assert_eq!(UserOrg::from_fields([None, None]), UserOrg::Unnamed);
        // A field that names something that is not an id is not trusted either way.
        assert_eq!(
            UserOrg::from_fields([Some("T0001"), Some("<script>")]),
            UserOrg::Invalid
        );
        assert_eq!(UserOrg::from_fields([Some("")]), UserOrg::Invalid);
        assert_eq!(
            UserOrg::Named(vec![team("T1"), team("E1")]).to_string(),
            "T1, E1"
        );
    }
}
