//! [`GroupRoles`]: which roles a user holds through linked user groups, with the
//! links and each group's members kept in memory for a minute.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

use super::{
    FAILED_LOOKUP_TTL, LINKS_SCRIPT, LINKS_TTL, MEMBERSHIP_TTL, RoleLink, RoleLinks, UserGroups,
};
use crate::ids::{Role, UserGroupId, UserId};
use crate::mrkdwn;
use crate::slack::mrkdwn::{Code, Mrkdwn};
use crate::slack::web::WebApiError;
use crate::store::{StateStore, StoreError};

/// The most groups one process remembers; past it, the cache starts again.
const MAX_CACHED_GROUPS: usize = 1_000;

/// What Slack says about a group's members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Membership {
    /// Its members now.
    Members(Arc<BTreeSet<UserId>>),
    /// Slack knows no such group (deleted or disabled): it gives nobody a role.
    NoSuchGroup,
    /// Slack could not be asked, or did not answer: the group gives nobody a role
    /// until it does (fails closed). The reason is short: Slack's error code, or
    /// what kept the call from getting through.
    Unknown(String),
}

/// A linked group whose members could not be listed, so its role was not counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unverified {
    /// The link that could not be checked.
    pub link: RoleLink,
    /// Why ([`Membership::Unknown`]'s reason).
    pub reason: String,
}

impl Unverified {
    /// For a reply: which groups could not be checked, and what that means;
    /// empty if none.
    pub fn explain(unverified: &[Unverified]) -> Mrkdwn {
        if unverified.is_empty() {
            return Mrkdwn::new();
        }
        let groups = unverified.iter().map(|u| {
            mrkdwn!(
                "{} (for *{}*: {})",
                u.link.group_name(),
                u.link.role,
                Code::new(&u.reason)
            )
        });
        mrkdwn!(
            " I could not ask Slack who is in {}, so roles from those user groups do not count right now; try again in a minute.",
            Mrkdwn::join(groups, ", ")
        )
    }
}

/// The roles one user holds through linked groups.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupHoldings {
    /// The links whose group the user is in.
    pub held: Vec<RoleLink>,
    /// The links whose group could not be checked.
    pub unverified: Vec<Unverified>,
    /// Links of roles no link gives ([`GroupRoles::gives`]) whose group the
    /// user is in: they gave nothing. Only when every role was asked for.
    pub ignored: Vec<RoleLink>,
}

/// Which roles users hold through linked user groups: the links from the store,
/// the members from Slack, each kept a minute (see [the module](super)).
pub struct GroupRoles {
    store: Arc<dyn StateStore>,
    groups: Option<Arc<dyn UserGroups>>,
    links: Mutex<Option<(Arc<RoleLinks>, DateTime<Utc>)>>,
    members: Mutex<HashMap<UserGroupId, (Membership, DateTime<Utc>)>>,
    unlinkable: BTreeSet<Role>,
}

impl GroupRoles {
    /// Links from `store` (the state of [`LINKS_SCRIPT`]), members from
    /// `groups`; without `groups` (no bot token) a linked group gives nobody
    /// its role.
    pub fn new(store: Arc<dyn StateStore>, groups: Option<Arc<dyn UserGroups>>) -> Self {
        Self {
            store,
            groups,
            links: Mutex::new(None),
            members: Mutex::new(HashMap::new()),
            unlinkable: BTreeSet::new(),
        }
    }

    /// Links of `roles` give nobody anything (nor do links of `admin`, ever):
    /// the roles `roles link` refuses, for links stored before it did.
    #[must_use]
    pub fn never_giving(mut self, roles: impl IntoIterator<Item = Role>) -> Self {
        self.unlinkable.extend(roles);
        self
    }

    /// Whether a link of `role` gives it: never `admin`, nor a role with power
    /// over grants ([`GroupRoles::never_giving`]). The one check every
    /// resolution of linked roles makes.
    pub fn gives(&self, role: &Role) -> bool {
        *role != Role::admin() && !self.unlinkable.contains(role)
    }

    /// Whether members can be looked up at all (a bot token is configured).
    pub fn can_look_up(&self) -> bool {
        self.groups.is_some()
    }

    /// Every link, as of at most [`LINKS_TTL`] ago.
    ///
    /// # Errors
    /// The store's, including [`StoreError::Corrupt`] when the stored links do
    /// not read back.
    pub async fn links(&self, now: DateTime<Utc>) -> Result<Arc<RoleLinks>, StoreError> {
        if let Some((links, until)) = &*self.links.lock().expect("links lock")
            && *until > now
        {
            return Ok(links.clone());
        }
        let stored = self.store.load(LINKS_SCRIPT).await?;
        let links: RoleLinks = match stored.value {
            Some(value) => serde_json::from_value(value).map_err(|e| StoreError::Corrupt {
                what: format!("the role links (state of `{LINKS_SCRIPT}`)"),
                detail: e.to_string(),
            })?,
            None => RoleLinks::default(),
        };
        for link in links.links.iter().filter(|l| !self.gives(&l.role)) {
            tracing::warn!(
                role = %link.role,
                group = %link.group,
                linked_by = %link.linked_by,
                "a user group link of a role that grants, approves or is admin is ignored: \
                 its members do not hold it through the group; unlink it (roles unlink)"
            );
        }
        let links = Arc::new(links);
        *self.links.lock().expect("links lock") = Some((links.clone(), now + LINKS_TTL));
        Ok(links)
    }

    /// Forgets the links read so far: the next [`GroupRoles::links`] reads the
    /// store (after `roles link` or `roles unlink` changed them).
    pub fn forget_links(&self) {
        *self.links.lock().expect("links lock") = None;
    }

    /// `group`'s members, as of at most [`MEMBERSHIP_TTL`] ago (a failure: as of
    /// [`FAILED_LOOKUP_TTL`]).
    pub async fn membership(&self, group: &UserGroupId, now: DateTime<Utc>) -> Membership {
        let cached = self
            .members
            .lock()
            .expect("members lock")
            .get(group)
            .filter(|(_, until)| *until > now)
            .map(|(membership, _)| membership.clone());
        match cached {
            Some(membership) => membership,
            None => self.look_up(group, now).await,
        }
    }

    /// Asks Slack for `group`'s members now, and remembers the answer. A
    /// failure is logged.
    pub async fn look_up(&self, group: &UserGroupId, now: DateTime<Utc>) -> Membership {
        let (membership, ttl) = match &self.groups {
            None => (
                Membership::Unknown("no bot token (SLACK_BOT_TOKEN) to ask Slack with".into()),
                FAILED_LOOKUP_TTL,
            ),
            Some(groups) => match groups.members(group).await {
                Ok(Some(members)) => (Membership::Members(Arc::new(members)), MEMBERSHIP_TTL),
                Ok(None) => (Membership::NoSuchGroup, MEMBERSHIP_TTL),
                Err(e) => {
                    tracing::error!(%group, error = %e, "could not list the members of a linked user group: its roles count for nobody until Slack answers");
                    (Membership::Unknown(short_reason(&e)), FAILED_LOOKUP_TTL)
                }
            },
        };
        let mut cache = self.members.lock().expect("members lock");
        if cache.len() >= MAX_CACHED_GROUPS && !cache.contains_key(group) {
            cache.clear();
        }
        cache.insert(group.clone(), (membership.clone(), now + ttl));
        membership
    }

    /// The roles `user` holds through linked groups at `now`: only the links of
    /// `wanted` roles (`None`: every link), so a group that could not help is
    /// not asked about.
    ///
    /// # Errors
    /// The store's, reading the links. A Slack failure is not an error: the
    /// link is [`GroupHoldings::unverified`], and gives nothing.
    pub async fn of_user(
        &self,
        user: &UserId,
        wanted: Option<&BTreeSet<Role>>,
        now: DateTime<Utc>,
    ) -> Result<GroupHoldings, StoreError> {
        let links = self.links(now).await?;
        let mut found = GroupHoldings::default();
        for link in &links.links {
            if wanted.is_some_and(|w| !w.contains(&link.role)) {
                continue;
            }
            if !self.gives(&link.role) {
                // Shown to its members when they ask what they hold; never held.
                if wanted.is_none()
                    && let Membership::Members(members) = self.membership(&link.group, now).await
                    && members.contains(user)
                {
                    found.ignored.push(link.clone());
                }
                continue;
            }
            match self.membership(&link.group, now).await {
                Membership::Members(members) if members.contains(user) => {
                    found.held.push(link.clone());
                }
                Membership::Members(_) | Membership::NoSuchGroup => {}
                Membership::Unknown(reason) => found.unverified.push(Unverified {
                    link: link.clone(),
                    reason,
                }),
            }
        }
        Ok(found)
    }
}

/// A short reason for a reply: Slack's error code, or what kept the call from
/// getting through (the whole error goes to the log).
fn short_reason(error: &WebApiError) -> String {
    match error {
        WebApiError::Slack { error, .. } => error.clone(),
        WebApiError::Http { .. } => "Slack did not answer".into(),
        WebApiError::InvalidResponse { .. } => "an answer I could not read".into(),
    }
}
