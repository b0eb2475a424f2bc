//! Roles from Slack user groups: an admin links a role to a user group
//! (`roles link ops @ops-oncall`), and whoever is in the group holds the role —
//! so an on-call rotation that updates the group (as paging tools do) moves the
//! role with it.
//!
//! ```text
//! roles link ops @ops-oncall ──> RoleLinks: the state of the script `role-links`
//!                                (one item, versioned, audited like any command)
//! Bot::authorize ── grants and OPKIT_ADMINS first ──> enough? done: no Slack call,
//!                │                                    no extra store read
//!                └─ not enough ──> links of the roles that would help (cached LINKS_TTL)
//!                                  └─> usergroups.users.list per group (cached MEMBERSHIP_TTL)
//! ```
//!
//! - Membership comes from Slack's `usergroups.users.list` (bot scope
//!   `usergroups:read`) through the [`UserGroups`] port: the bot token's
//!   [`crate::slack::SlackApi`] deployed, a [`MemoryUserGroups`] in tests.
//! - Each group's members are kept [`MEMBERSHIP_TTL`] (a minute) per process, on
//!   the bot's clock: someone taken out of the group loses the role within a
//!   minute, and a busy worker asks Slack about once a minute per group. The links
//!   themselves are kept as long; the process that changes them sees the change at
//!   once.
//! - It fails closed: when Slack does not answer (or there is no bot token), a
//!   linked group gives nobody its role, the user is told why, and it is logged. A
//!   failed lookup is remembered [`FAILED_LOOKUP_TTL`], so an outage costs one call
//!   per group every few seconds, not one per command.

mod resolve;
#[cfg(test)]
mod tests;

pub use resolve::{GroupHoldings, GroupRoles, Membership, Unverified};

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::BoxFuture;
use crate::ids::{Role, UserGroupId, UserId};
use crate::mrkdwn;
use crate::slack::mrkdwn::{Code, Mrkdwn, UserText};
use crate::slack::web::WebApiError;

/// The script whose state holds the links ([`RoleLinks`]); its commands are
/// `roles link` and `roles unlink` ([`crate::builtin::links`]).
pub const LINKS_SCRIPT: &str = "role-links";

/// How long a group's members are kept before Slack is asked again.
pub const MEMBERSHIP_TTL: Duration = Duration::minutes(1);

/// How long the links are kept before the store is read again (by processes
/// other than the one that changed them).
pub const LINKS_TTL: Duration = Duration::minutes(1);

/// How long a failed membership lookup is remembered (and denies).
pub const FAILED_LOOKUP_TTL: Duration = Duration::seconds(15);

/// The most links a deployment may have.
pub const MAX_LINKS: usize = 100;

/// The Web API method that lists a user group's members.
pub const USERS_LIST_METHOD: &str = "usergroups.users.list";

/// One role held by the members of one Slack user group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleLink {
    /// The role its members hold.
    pub role: Role,
    /// The user group, e.g. `S0614TZR7`.
    pub group: UserGroupId,
    /// The group's handle as Slack showed it when it was linked (`ops-oncall`,
    /// without `@`), if it did.
    #[serde(default)]
    pub handle: Option<String>,
    /// The admin who linked it.
    pub linked_by: UserId,
    /// When.
    pub linked_at: DateTime<Utc>,
}

impl RoleLink {
    /// The group for a reply: `@handle` as plain text (which does not notify the
    /// group, unlike `<!subteam^…>`), else its id.
    pub fn group_name(&self) -> Mrkdwn {
        match &self.handle {
            Some(handle) => mrkdwn!("{}", UserText::line(&format!("@{handle}"))),
            None => mrkdwn!("the user group {}", Code::new(self.group.as_str())),
        }
    }
}

/// The handle to keep from a mention's label (`@ops-oncall` → `ops-oncall`):
/// Slack's handles are short words; anything else is not kept.
pub fn handle_from_label(label: Option<&str>) -> Option<String> {
    let handle = label?.trim().trim_start_matches('@');
    let ok = !handle.is_empty()
        && handle.len() <= 80
        && handle
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'));
    ok.then(|| handle.to_owned())
}

/// Every link: the state of [`LINKS_SCRIPT`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleLinks {
    /// In the order they were made.
    #[serde(default)]
    pub links: Vec<RoleLink>,
}

impl RoleLinks {
    /// The link of `role` to `group`, if there is one.
    pub fn find(&self, role: &Role, group: &UserGroupId) -> Option<&RoleLink> {
        self.links
            .iter()
            .find(|l| &l.role == role && &l.group == group)
    }

    /// The links of `role`.
    pub fn of_role<'a>(&'a self, role: &'a Role) -> impl Iterator<Item = &'a RoleLink> + 'a {
        self.links.iter().filter(move |l| &l.role == role)
    }
}

/// Who is in a Slack user group.
pub trait UserGroups: Send + Sync {
    /// `usergroups.users.list`: the members of `group`, or `None` if Slack knows
    /// no such group (`no_such_subteam`; a disabled group answers the same).
    fn members<'a>(
        &'a self,
        group: &'a UserGroupId,
    ) -> BoxFuture<'a, Result<Option<BTreeSet<UserId>>, WebApiError>>;
}

/// A [`UserGroups`] whose groups, members and failures the test sets, and which
/// counts the lookups it answered.
#[derive(Debug, Default)]
pub struct MemoryUserGroups {
    groups: Mutex<BTreeMap<UserGroupId, BTreeSet<UserId>>>,
    failing: Mutex<Option<String>>,
    lookups: Mutex<usize>,
}

impl MemoryUserGroups {
    /// No groups: every lookup answers `None`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes `group` exist with exactly `members` (ids, e.g. `["U1", "U2"]`).
    ///
    /// # Panics
    /// On an id that is not a Slack id: a test's typo.
    pub fn set_members(&self, group: &str, members: &[&str]) {
        let group = UserGroupId::parse(group).expect("a user group id");
        let members = members
            .iter()
            .map(|m| UserId::parse(m).expect("a user id"))
            .collect();
        self.groups
            .lock()
            .expect("groups lock")
            .insert(group, members);
    }

    /// Deletes `group`: lookups answer `None`.
    pub fn remove(&self, group: &str) {
        if let Ok(group) = UserGroupId::parse(group) {
            self.groups.lock().expect("groups lock").remove(&group);
        }
    }

    /// From now on every lookup fails with Slack's error code `error`
    /// (`Some("fatal_error")`), or answers again (`None`).
    pub fn fail_with(&self, error: Option<&str>) {
        *self.failing.lock().expect("groups lock") = error.map(str::to_owned);
    }

    /// How many lookups were asked so far.
    pub fn lookups(&self) -> usize {
        *self.lookups.lock().expect("groups lock")
    }
}

impl UserGroups for MemoryUserGroups {
    fn members<'a>(
        &'a self,
        group: &'a UserGroupId,
    ) -> BoxFuture<'a, Result<Option<BTreeSet<UserId>>, WebApiError>> {
        *self.lookups.lock().expect("groups lock") += 1;
        let answer = match self.failing.lock().expect("groups lock").clone() {
            Some(error) => Err(WebApiError::Slack {
                method: USERS_LIST_METHOD,
                error,
            }),
            None => Ok(self.groups.lock().expect("groups lock").get(group).cloned()),
        };
        Box::pin(std::future::ready(answer))
    }
}
