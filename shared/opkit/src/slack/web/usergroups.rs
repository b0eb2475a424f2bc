//! `usergroups.users.list`: who is in a Slack user group, for roles linked to
//! one ([`crate::groups`]).
//!
//! Source: Slack's method reference, "usergroups.users.list": a form-encoded
//! `usergroup` argument, bot scope `usergroups:read`, rate limit Tier 2; the
//! answer is `{"ok": true, "users": ["U060R4BJ4", "W123A4BC5"]}`, and an id
//! Slack does not know is refused with `no_such_subteam`.

use std::collections::BTreeSet;

use serde::Deserialize;

use super::directory::{decode, not_found_is_none};
use super::{SlackApi, WebApiError};
use crate::BoxFuture;
use crate::groups::{USERS_LIST_METHOD, UserGroups};
use crate::ids::{UserGroupId, UserId};

#[derive(Deserialize)]
struct UsersAnswer {
    users: Vec<String>,
}

impl SlackApi {
    /// `usergroups.users.list` (scope `usergroups:read`). See [`UserGroups::members`].
    /// A member id that is not a Slack user id is left out (and logged).
    pub async fn usergroup_members(
        &self,
        group: &UserGroupId,
    ) -> Result<Option<BTreeSet<UserId>>, WebApiError> {
        let answer = self
            .lookup(USERS_LIST_METHOD, &[("usergroup", group.as_str())])
            .await;
        let Some(answer) = not_found_is_none(answer, &["no_such_subteam"])? else {
            return Ok(None);
        };
        Ok(Some(members(
            decode::<UsersAnswer>(USERS_LIST_METHOD, answer)?,
            group,
        )))
    }
}

fn members(answer: UsersAnswer, group: &UserGroupId) -> BTreeSet<UserId> {
    answer
        .users
        .iter()
        .filter_map(|id| match UserId::parse(id) {
            Ok(user) => Some(user),
            Err(_) => {
                tracing::warn!(%group, member = %crate::text::one_line(id), "usergroups.users.list gave a member that is not a user id; left out");
                None
            }
        })
        .collect()
}

impl UserGroups for SlackApi {
    fn members<'a>(
        &'a self,
        group: &'a UserGroupId,
    ) -> BoxFuture<'a, Result<Option<BTreeSet<UserId>>, WebApiError>> {
        Box::pin(self.usergroup_members(group))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_documented_answer_gives_the_members() {
        // GIVEN usergroups.users.list's answer as Slack documents it
        let answer = json!({"ok": true, "users": ["U060R4BJ4", "W123A4BC5"]});
        // WHEN it is decoded
        let decoded =
            decode::<UsersAnswer>(USERS_LIST_METHOD, answer.as_object().unwrap().clone()).unwrap();
        let group = UserGroupId::parse("S0604QSJC").unwrap();
        // THEN both members are there
        let got: Vec<String> = members(decoded, &group)
            .into_iter()
            .map(String::from)
            .collect();
        assert_eq!(got, ["U060R4BJ4", "W123A4BC5"]);
    }

    #[test]
    fn a_member_that_is_not_a_user_id_is_left_out() {
        let answer = UsersAnswer {
            users: vec!["U1".into(), "<@U2>".into(), "".into()],
        };
        let group = UserGroupId::parse("S1").unwrap();
        assert_eq!(members(answer, &group).len(), 1);
    }

    #[test]
    fn an_answer_without_users_is_an_invalid_response() {
        let answer = json!({"ok": true});
        let err = decode::<UsersAnswer>(USERS_LIST_METHOD, answer.as_object().unwrap().clone())
            .map(drop)
            .unwrap_err();
        assert!(matches!(err, WebApiError::InvalidResponse { .. }), "{err}");
    }
}
