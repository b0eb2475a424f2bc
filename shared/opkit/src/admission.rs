//! Who may call the bot: one decision, [`admit`], for every way in — slash
//! commands, events and interactions, over HTTP and in Socket Mode.
//!
//! Two questions, both answered from what the payload says ([`Origin`], which each
//! payload parser extracts):
//!
//! 1. **The installation**: is the workspace (or Enterprise Grid organisation) the
//!    payload was delivered for on the allow-list (`OPKIT_TEAM_IDS`)? `any` (or,
//!    locally, unset) admits every installation; a payload that names none is
//!    refused.
//! 2. **The user**: is the calling user one of the installation's own? In a
//!    channel shared with another organisation (Slack Connect) a member of that
//!    organisation can mention the bot, DM it or click its buttons, through the
//!    installation's channel: their own team (`user_team`, `user.team_id`) is
//!    another organisation's. Such a user is refused unless
//!    `OPKIT_ALLOW_EXTERNAL_USERS=true`.
//!
//! | the user's side, as the payload names it | the user is |
//! |---|---|
//! | every id is the installation's workspace or organisation, or on the allow-list | one of ours |
//! | a workspace (`T…`) of another id, the installation is on Enterprise Grid and Slack says the channel is not shared with another organisation (`is_ext_shared_channel: false`) | one of ours: another workspace of the same organisation |
//! | any other id | external |
//! | not named, in a conversation Slack says is shared with another organisation | external: not known |
//! | not named, elsewhere | one of ours |
//! | named with something that is not a Slack id | external: not known |
//!
//! Sources: <https://api.slack.com/apis/channels-between-orgs> (Slack Connect),
//! <https://api.slack.com/enterprise/grid/developing> (Enterprise Grid,
//! `user_team`/`source_team`), <https://docs.slack.dev/apis/events-api/>.

use crate::config::TeamAllowList;
use crate::ids::TeamId;
use crate::slack::{Org, Origin, UserOrg};

/// Why a caller is refused. Its text is what the user is shown (slash commands,
/// clicks) and what the log says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The payload names no workspace or organisation it was delivered for.
    #[error("the request does not say which workspace it comes from")]
    NoInstallation,
    /// The installation is not on the allow-list.
    #[error("workspace {0} is not allowed to use this bot")]
    Installation(Org),
    /// The user is a member of another organisation.
    #[error(
        "this bot answers only members of its own workspace; \
         you are from another organisation ({0})"
    )]
    ExternalUser(UserOrg),
    /// The payload does not say (or says something unreadable about) which
    /// organisation the user belongs to, where it could be another's.
    #[error(
        "this bot answers only members of its own workspace, \
         and this request does not say which organisation you are from"
    )]
    UnknownUser,
}

/// Decides whether the caller `origin` describes may use the bot, given the team
/// allow-list and whether users of other organisations are allowed
/// (`external_users`, `OPKIT_ALLOW_EXTERNAL_USERS`). The module's table says how
/// the user's side is read.
pub fn admit(origin: &Origin, teams: &TeamAllowList, external_users: bool) -> Result<(), Refusal> {
    let installation = &origin.installation;
    let ids: Vec<&TeamId> = installation.ids().collect();
    if ids.is_empty() {
        return Err(Refusal::NoInstallation);
    }
    let installation_allowed = match teams {
        TeamAllowList::Unset | TeamAllowList::Any => true,
        TeamAllowList::Only(_) => ids.iter().any(|id| teams.names(id)),
    };
    if !installation_allowed {
        return Err(Refusal::Installation(installation.clone()));
    }
    if external_users {
        return Ok(());
    }
    let ours = |id: &TeamId| {
        ids.contains(&id)
            || teams.names(id)
            // Another workspace of the installation's Enterprise Grid organisation:
            // Slack says the conversation is shared with no other organisation.
            || (id.as_str().starts_with('T')
                && installation.enterprise.is_some()
                && origin.shared_externally == Some(false))
    };
    match &origin.user {
        UserOrg::Named(user) if user.iter().all(ours) => Ok(()),
        UserOrg::Named(_) => Err(Refusal::ExternalUser(origin.user.clone())),
        UserOrg::Unnamed if origin.shared_externally != Some(true) => Ok(()),
        UserOrg::Unnamed | UserOrg::Invalid => Err(Refusal::UnknownUser),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn org(team: Option<&str>, enterprise: Option<&str>) -> Org {
        Org::new(team, enterprise)
    }

    fn named(ids: &[&str]) -> UserOrg {
        UserOrg::Named(ids.iter().map(|id| TeamId::parse(id).unwrap()).collect())
    }

    fn only(ids: &[&str]) -> TeamAllowList {
        TeamAllowList::Only(ids.iter().map(|id| TeamId::parse(id).unwrap()).collect())
    }

    fn origin(installation: Org, user: UserOrg, shared: Option<bool>) -> Origin {
        Origin {
            installation,
            user,
            shared_externally: shared,
        }
    }

    #[test]
    fn the_installation_must_be_on_the_list_by_its_workspace_or_its_organisation() {
        let ours = org(Some("T1"), Some("E1"));
        let user = named(&["T1"]);
        for list in [only(&["T1"]), only(&["E1"]), only(&["T9", "E1"])] {
            let o = origin(ours.clone(), user.clone(), None);
            assert_eq!(admit(&o, &list, false), Ok(()), "{list:?}");
        }
        let theirs = origin(org(Some("T9"), None), named(&["T9"]), None);
        assert_eq!(
            admit(&theirs, &only(&["T1", "E1"]), false),
            Err(Refusal::Installation(org(Some("T9"), None)))
        );
        // any, and unset (local), admit every installation
        for list in [TeamAllowList::Any, TeamAllowList::Unset] {
            assert_eq!(admit(&theirs, &list, false), Ok(()));
        }
        // but never one the payload does not name
        let nameless = origin(org(None, None), named(&["T1"]), None);
        assert_eq!(
            admit(&nameless, &TeamAllowList::Any, true),
            Err(Refusal::NoInstallation)
        );
    }

    #[test]
    fn a_user_of_another_organisation_is_refused_whatever_the_list_says_of_the_installation() {
        // GIVEN our installation, and a Slack Connect user whose own team is theirs
        let connect = origin(org(Some("T1"), None), named(&["T9"]), Some(true));
        for list in [only(&["T1"]), TeamAllowList::Any, TeamAllowList::Unset] {
            // THEN they are refused, naming their team
            assert_eq!(
                admit(&connect, &list, false),
                Err(Refusal::ExternalUser(named(&["T9"]))),
                "{list:?}"
            );
            // UNLESS external users are allowed
            assert_eq!(admit(&connect, &list, true), Ok(()), "{list:?}");
        }
        // One foreign id among the user's is enough (source_team foreign).
        let mixed = origin(org(Some("T1"), None), named(&["T1", "T9"]), Some(true));
        assert!(matches!(
            admit(&mixed, &only(&["T1"]), false),
            Err(Refusal::ExternalUser { .. })
        ));
        // Listing the other organisation admits its users.
        assert_eq!(admit(&connect, &only(&["T1", "T9"]), false), Ok(()));
        // Even where Slack says the channel is not shared externally, a foreign
        // team is foreign when the installation has no organisation of its own.
        let plain = origin(org(Some("T1"), None), named(&["T9"]), Some(false));
        assert!(admit(&plain, &only(&["T1"]), false).is_err());
    }

    #[test]
    fn on_enterprise_grid_the_organisation_is_the_users_own() {
        // The org id is listed; the installation is one workspace of it
        let list = only(&["E1"]);
        let grid = org(Some("T1"), Some("E1"));
        // the user named by their workspace, or by the org (Slack reports E… ids)
        for user in [named(&["T1"]), named(&["E1"]), named(&["T1", "E1"])] {
            let o = origin(grid.clone(), user.clone(), Some(false));
            assert_eq!(admit(&o, &list, false), Ok(()), "{user:?}");
        }
        // An org-wide install names no workspace; a member of another workspace
        // of the org, in a channel Slack says is not shared outside it, is ours.
        let org_wide = org(None, Some("E1"));
        let other_workspace = origin(org_wide.clone(), named(&["T2"]), Some(false));
        assert_eq!(admit(&other_workspace, &list, false), Ok(()));
        // In a channel shared with another organisation, that is not known.
        let shared = origin(org_wide.clone(), named(&["T2"]), Some(true));
        assert!(admit(&shared, &list, false).is_err());
        // Another organisation is never ours.
        let other_org = origin(org_wide, named(&["E2"]), Some(false));
        assert_eq!(
            admit(&other_org, &list, false),
            Err(Refusal::ExternalUser(named(&["E2"])))
        );
    }

    #[test]
    fn a_user_the_payload_does_not_name_is_ours_only_outside_shared_conversations() {
        let list = only(&["T1"]);
        let ours = org(Some("T1"), None);
        for shared in [None, Some(false)] {
            let o = origin(ours.clone(), UserOrg::Unnamed, shared);
            assert_eq!(admit(&o, &list, false), Ok(()), "{shared:?}");
        }
        let unknown = origin(ours.clone(), UserOrg::Unnamed, Some(true));
        assert_eq!(admit(&unknown, &list, false), Err(Refusal::UnknownUser));
        let invalid = origin(ours, UserOrg::Invalid, None);
        assert_eq!(admit(&invalid, &list, false), Err(Refusal::UnknownUser));
        assert_eq!(admit(&invalid, &list, true), Ok(()));
    }

    #[test]
    fn refusals_say_why_in_words_a_user_understands() {
        assert_eq!(
            Refusal::Installation(org(Some("T9"), Some("E9"))).to_string(),
            "workspace T9 (E9) is not allowed to use this bot"
        );
        assert_eq!(
            Refusal::ExternalUser(named(&["T9"])).to_string(),
            "this bot answers only members of its own workspace; \
             you are from another organisation (T9)"
        );
    }
}
