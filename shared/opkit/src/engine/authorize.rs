//! Authorization: where a user's roles come from ([`Authorizer`]: grants and
//! configuration; [`crate::groups`]: linked Slack user groups), and the one check
//! dispatch, `help`, `can` and the gate ask ([`Bot::authorize`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::bot::Bot;
use super::command::CommandSpec;
use crate::BoxFuture;
use crate::access::{Access, Held, RoleSet, Source};
use crate::groups::Unverified;
use crate::ids::{Role, UserId};
use crate::slack::mrkdwn::Mrkdwn;
use crate::store::{GrantStore, StoreError};

/// Where a user's roles come from.
pub trait Authorizer: Send + Sync {
    /// The roles `user` holds at `now`.
    fn roles_of<'a>(
        &'a self,
        user: &'a UserId,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<RoleSet, StoreError>>;

    /// The roles `user` holds at `now`, each with where it comes from (for `can`
    /// and `whoami`). Default: [`Authorizer::roles_of`], every role
    /// [`Source::Configured`].
    fn holdings<'a>(
        &'a self,
        user: &'a UserId,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<Vec<Held>, StoreError>> {
        Box::pin(async move {
            let roles = self.roles_of(user, now).await?;
            Ok(roles
                .into_iter()
                .map(|role| Held {
                    role,
                    source: Source::Configured,
                })
                .collect())
        })
    }

    /// Who holds `role` by configuration rather than by a grant (the built-in
    /// authorizer: `OPKIT_ADMINS` for `admin`, and fixed roles), for `roles who`.
    /// Default: nobody.
    fn configured_holders(&self, role: &Role) -> Vec<UserId> {
        let _ = role;
        Vec::new()
    }
}

/// The built-in authorizer: live grants from the store, plus bootstrap admins from
/// configuration, plus fixed roles (e.g. `opkit shell --roles`).
pub struct GrantAuthorizer {
    grants: Arc<dyn GrantStore>,
    admins: BTreeSet<UserId>,
    fixed: BTreeMap<UserId, RoleSet>,
}

impl GrantAuthorizer {
    /// Reads grants from `grants`; `admins` always hold `admin`.
    pub fn new(grants: Arc<dyn GrantStore>, admins: impl IntoIterator<Item = UserId>) -> Self {
        Self {
            grants,
            admins: admins.into_iter().collect(),
            fixed: BTreeMap::new(),
        }
    }

    /// Gives `user` these roles regardless of grants (local use).
    pub fn with_fixed_roles(mut self, user: UserId, roles: impl IntoIterator<Item = Role>) -> Self {
        self.fixed.entry(user).or_default().extend(roles);
        self
    }
}

impl Authorizer for GrantAuthorizer {
    fn roles_of<'a>(
        &'a self,
        user: &'a UserId,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<RoleSet, StoreError>> {
        Box::pin(async move {
            let held = self.holdings(user, now).await?;
            Ok(held.into_iter().map(|h| h.role).collect())
        })
    }

    fn holdings<'a>(
        &'a self,
        user: &'a UserId,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<Vec<Held>, StoreError>> {
        Box::pin(async move {
            let grants = self.grants.grants_for(user).await?;
            // The window decides, not whether the grant is still stored: TTL deletes late.
            let mut held: Vec<Held> = grants
                .into_iter()
                .filter(|g| g.is_active(now))
                .map(|g| Held {
                    role: g.role.clone(),
                    source: Source::Grant(g),
                })
                .collect();
            let configured = |role: Role| Held {
                role,
                source: Source::Configured,
            };
            if self.admins.contains(user) {
                held.push(configured(Role::admin()));
            }
            if let Some(fixed) = self.fixed.get(user) {
                held.extend(fixed.iter().cloned().map(configured));
            }
            Ok(held)
        })
    }

    fn configured_holders(&self, role: &Role) -> Vec<UserId> {
        let mut holders: BTreeSet<UserId> = BTreeSet::new();
        if *role == Role::admin() {
            holders.extend(self.admins.iter().cloned());
        }
        holders.extend(
            self.fixed
                .iter()
                .filter(|(_, roles)| roles.contains(role))
                .map(|(user, _)| user.clone()),
        );
        holders.into_iter().collect()
    }
}

/// The answer of [`Bot::authorize`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// Whether the user may run the command.
    pub allowed: bool,
    /// The roles the user was found to hold: every role from grants and
    /// configuration, and those of linked user groups that were looked at (only
    /// when grants and configuration were not enough, or for `can`).
    pub roles: RoleSet,
    /// The same roles, each with where it comes from.
    pub held: Vec<Held>,
    /// Linked groups that could have helped but that Slack did not answer for:
    /// they gave nothing (fails closed).
    pub unverified: Vec<Unverified>,
}

impl Authorization {
    /// What lets the user in under `access`: the roles of the first alternative
    /// they satisfy, each with its sources (a role held two ways is listed
    /// twice). Empty when `access` is open or they are not allowed.
    pub fn reasons(&self, access: &Access) -> Vec<&Held> {
        let Access::AnyOf(alts) = access else {
            return Vec::new();
        };
        let Some(alt) = alts
            .iter()
            .find(|alt| alt.0.iter().all(|r| self.roles.contains(r)))
        else {
            return Vec::new();
        };
        self.held
            .iter()
            .filter(|h| alt.0.contains(&h.role))
            .collect()
    }

    /// For a denial: which linked groups could not be checked, if any (see
    /// [`Unverified::explain`]).
    pub fn unverified_note(&self) -> Mrkdwn {
        Unverified::explain(&self.unverified)
    }
}

/// Every role a user holds now, and why ([`Bot::holdings`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Holdings {
    /// Each role with its source; a role held two ways appears twice.
    pub held: Vec<Held>,
    /// Linked groups Slack did not answer for: they gave nothing.
    pub unverified: Vec<Unverified>,
    /// Links of roles no link gives (`admin`, granting, approving) whose group
    /// the user is in: they gave nothing.
    pub ignored: Vec<crate::groups::RoleLink>,
}

impl Holdings {
    /// The roles held.
    pub fn roles(&self) -> RoleSet {
        self.held.iter().map(|h| h.role.clone()).collect()
    }
}

/// What [`Bot::authorize`] found a user to hold, before deciding.
struct Found {
    roles: RoleSet,
    held: Vec<Held>,
    unverified: Vec<Unverified>,
}

/// The roles named anywhere in `access`.
fn named_roles(access: &Access) -> BTreeSet<Role> {
    match access {
        Access::Open => BTreeSet::new(),
        Access::AnyOf(alts) => alts.iter().flat_map(|alt| alt.0.iter().cloned()).collect(),
    }
}

impl Bot {
    /// Every role `user` holds now, and why: grants and configuration, and every
    /// linked user group (asked of Slack where the minute-long cache has no
    /// answer; a group Slack does not answer for gives nothing and is listed in
    /// [`Holdings::unverified`]).
    pub async fn holdings(&self, user: &UserId) -> Result<Holdings, StoreError> {
        let now = self.now();
        let mut held = self.authorizer().holdings(user, now).await?;
        let groups = self.group_roles().of_user(user, None, now).await?;
        held.extend(groups.held.into_iter().map(Held::from_link));
        Ok(Holdings {
            held,
            unverified: groups.unverified,
            ignored: groups.ignored,
        })
    }

    /// The roles `user` holds now ([`Bot::holdings`] without the sources).
    pub async fn roles_of(&self, user: &UserId) -> Result<RoleSet, StoreError> {
        Ok(self.holdings(user).await?.roles())
    }

    /// Whether `user` may run `command` now. Dispatch, `help`, `can` and the
    /// gate all ask here (or [`Bot::allows`], the same check).
    ///
    /// Grants and configuration are read first; linked user groups are asked
    /// about only if those are not enough, and only groups linked to a role the
    /// command names — so a command open to all, or one the user holds a grant
    /// for, costs no Slack call and no extra store read.
    pub async fn authorize(
        &self,
        user: &UserId,
        command: &CommandSpec,
    ) -> Result<Authorization, StoreError> {
        self.check(user, &command.access, false).await
    }

    /// Whether `user` may do something guarded by `access` (for checks inside a
    /// handler): [`Bot::authorize`]'s check.
    pub async fn allows(&self, user: &UserId, access: &Access) -> Result<bool, StoreError> {
        Ok(self.check(user, access, false).await?.allowed)
    }

    /// [`Bot::authorize`]'s check against `access`, with its whole answer (the
    /// roles found, groups that could not be checked).
    pub async fn check_access(
        &self,
        user: &UserId,
        access: &Access,
    ) -> Result<Authorization, StoreError> {
        self.check(user, access, false).await
    }

    /// [`Bot::authorize`], but with every source of the roles `access` names,
    /// groups included even when a grant is enough: what `can` explains.
    pub async fn explain(
        &self,
        user: &UserId,
        access: &Access,
    ) -> Result<Authorization, StoreError> {
        self.check(user, access, true).await
    }

    /// Which of `commands` `user` may run now: [`Bot::authorize`]'s check for
    /// each, with the user's grants read once and linked user groups asked once,
    /// about every role the commands that grants and configuration do not allow
    /// name (what `help` lists).
    pub async fn authorize_each(
        &self,
        user: &UserId,
        commands: &[Arc<CommandSpec>],
    ) -> Result<Vec<bool>, StoreError> {
        let accesses: Vec<&Access> = commands.iter().map(|c| &c.access).collect();
        let found = self.gather(user, &accesses, false).await?;
        Ok(accesses
            .iter()
            .map(|access| access.allows(&found.roles))
            .collect())
    }

    async fn check(
        &self,
        user: &UserId,
        access: &Access,
        every_source: bool,
    ) -> Result<Authorization, StoreError> {
        let found = self.gather(user, &[access], every_source).await?;
        let allowed = access.allows(&found.roles);
        if !allowed && !found.unverified.is_empty() {
            tracing::warn!(%user, groups = found.unverified.len(), "denied while linked user groups could not be checked");
        }
        Ok(Authorization {
            allowed,
            roles: found.roles,
            held: found.held,
            unverified: found.unverified,
        })
    }

    /// The roles `user` holds for deciding each of `accesses`: grants and
    /// configuration, then linked user groups asked about only the roles named
    /// by an access that those do not satisfy, less the roles already held
    /// (with `every_source`: every role the accesses name, held or not).
    async fn gather(
        &self,
        user: &UserId,
        accesses: &[&Access],
        every_source: bool,
    ) -> Result<Found, StoreError> {
        let now = self.now();
        let mut held = self.authorizer().holdings(user, now).await?;
        let mut roles: RoleSet = held.iter().map(|h| h.role.clone()).collect();
        let mut unverified = Vec::new();
        let mut wanted = BTreeSet::new();
        for access in accesses {
            if every_source || !access.allows(&roles) {
                wanted.extend(named_roles(access));
            }
        }
        if !every_source {
            wanted.retain(|r| !roles.contains(r));
        }
        if !wanted.is_empty() {
            let groups = self.group_roles().of_user(user, Some(&wanted), now).await?;
            for link in groups.held {
                roles.insert(link.role.clone());
                held.push(Held::from_link(link));
            }
            unverified = groups.unverified;
        }
        Ok(Found {
            roles,
            held,
            unverified,
        })
    }
}
