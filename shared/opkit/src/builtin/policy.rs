//! Who may change whose roles: the grant policy and [`may_grant`], the one
//! function that decides.

use std::fmt;

use crate::access::{Access, Alternative, RoleSet};
use crate::config::Config;
use crate::ids::{Role, UserId};

/// Who may use the guarded built-ins. Both default to `admin`.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Who may grant and revoke roles. Only an admin grants or revokes `admin`
    /// or a role named here (see [`may_grant`]).
    pub grant: Access,
    /// Who may read the audit trail.
    pub audit: Access,
    /// If set, `roles grant` waits for approval by a second person satisfying
    /// this. Only an admin grants or revokes a role named here.
    pub grant_approval: Option<Access>,
    /// Whether a granter may grant a role to themselves (default: no one may,
    /// admins included).
    pub allow_self_grant: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            grant: Access::role(Role::admin()),
            audit: Access::role(Role::admin()),
            grant_approval: None,
            allow_self_grant: false,
        }
    }
}

impl Policy {
    /// The policy of a deployment's settings: `grant_roles` grant besides `admin`
    /// (`OPKIT_GRANT_ROLES`), `audit_roles` read the audit trail besides `admin`
    /// (`OPKIT_AUDIT_ROLES`), and if `grant_approvers` is not empty, `roles grant`
    /// waits for a second person holding one of them (`OPKIT_GRANT_APPROVERS`).
    pub fn from_roles(
        grant_roles: &[Role],
        audit_roles: &[Role],
        grant_approvers: &[Role],
    ) -> Self {
        let any_of = |roles: &[Role]| {
            Access::AnyOf(roles.iter().map(|r| Alternative(vec![r.clone()])).collect())
        };
        Policy {
            grant: Policy::admin_or(grant_roles),
            audit: Policy::admin_or(audit_roles),
            grant_approval: (!grant_approvers.is_empty()).then(|| any_of(grant_approvers)),
            allow_self_grant: false,
        }
    }

    /// The policy of a deployment's configuration: [`Policy::from_roles`] with
    /// its three lists, and `OPKIT_ALLOW_SELF_GRANT`.
    pub fn from_config(config: &Config) -> Self {
        Policy {
            allow_self_grant: config.allow_self_grant,
            ..Policy::from_roles(
                &config.grant_roles,
                &config.audit_roles,
                &config.grant_approvers,
            )
        }
    }

    /// What holding `role` lets one do to grants, if anything: roles that only
    /// an admin may grant or revoke.
    pub fn power_of(&self, role: &Role) -> Option<Power> {
        let names = |access: &Access| match access {
            Access::Open => false,
            Access::AnyOf(alts) => alts.iter().any(|alt| alt.0.contains(role)),
        };
        if *role == Role::admin() {
            Some(Power::Admin)
        } else if names(&self.grant) {
            Some(Power::Grants)
        } else if self.grant_approval.as_ref().is_some_and(names) {
            Some(Power::Approves)
        } else {
            None
        }
    }

    /// Every role [`Policy::power_of`] gives power over grants: `admin`, and the
    /// roles that grant or approve.
    pub fn roles_with_power(&self) -> Vec<Role> {
        let named = |access: &Access| match access {
            Access::Open => Vec::new(),
            Access::AnyOf(alts) => alts.iter().flat_map(|alt| alt.0.iter().cloned()).collect(),
        };
        let mut roles = vec![Role::admin()];
        roles.extend(named(&self.grant));
        roles.extend(self.grant_approval.as_ref().map(named).unwrap_or_default());
        roles.retain(|r| self.power_of(r).is_some());
        roles.sort();
        roles.dedup();
        roles
    }

    /// `admin`, or any of `extra` on its own (e.g. `OPKIT_GRANT_ROLES=lead`).
    pub fn admin_or(extra: &[Role]) -> Access {
        let mut alts = vec![Alternative(vec![Role::admin()])];
        alts.extend(extra.iter().map(|r| Alternative(vec![r.clone()])));
        Access::AnyOf(alts)
    }
}

/// What a role lets its holders do to grants: why only an admin gives it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Power {
    /// `admin` itself.
    Admin,
    /// Its holders grant and revoke roles ([`Policy::grant`]).
    Grants,
    /// Its holders approve grants ([`Policy::grant_approval`]).
    Approves,
}

/// Giving a role, or taking it away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleChange {
    /// `roles grant`.
    Grant,
    /// `roles revoke`.
    Revoke,
}

impl RoleChange {
    fn verb(self) -> &'static str {
        match self {
            RoleChange::Grant => "grant",
            RoleChange::Revoke => "revoke",
        }
    }
}

/// Why [`may_grant`] refuses a change; its `Display` is the answer the user gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The caller may not grant or revoke at all.
    NotAGranter {
        /// A grant or a revoke.
        change: RoleChange,
        /// What would allow it ([`Policy::grant`]).
        needed: String,
    },
    /// The caller would grant a role to themselves.
    ToThemselves,
    /// Only an admin gives or takes this role.
    AdminOnly {
        /// A grant or a revoke.
        change: RoleChange,
        /// The role.
        role: Role,
        /// What the role lets its holders do.
        power: Power,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::NotAGranter { change, needed } => {
                write!(f, "You need {needed} to {} roles.", change.verb())
            }
            Refusal::ToThemselves => f.write_str(
                "You cannot grant a role to yourself; ask someone else who can grant it.",
            ),
            Refusal::AdminOnly {
                change,
                role,
                power,
            } => {
                let why = match power {
                    Power::Admin => "",
                    Power::Grants => ": its holders can grant roles",
                    Power::Approves => ": its holders approve grants",
                };
                write!(f, "Only an admin can {} {role}{why}.", change.verb())
            }
        }
    }
}

impl std::error::Error for Refusal {}

/// Whether `by`, holding `by_roles`, may grant `role` to `whom` (or revoke it
/// from them) under `policy`. The one place these rules live:
///
/// | who | does | answer |
/// |---|---|---|
/// | anyone not satisfying [`Policy::grant`] | anything | [`Refusal::NotAGranter`] |
/// | anyone, admins included | grants a role to themselves | [`Refusal::ToThemselves`], unless [`Policy::allow_self_grant`] |
/// | anyone | revokes their own role | allowed (it only gives power up) |
/// | a granter who is not an admin | grants or revokes `admin`, a granting role or an approving role ([`Policy::power_of`]) | [`Refusal::AdminOnly`] |
/// | a granter | grants or revokes any other role, for someone else | allowed |
///
/// It is asked when the command runs: directly, or after its approval or
/// confirmation, with the roles the granter holds then.
pub fn may_grant(
    change: RoleChange,
    by: &UserId,
    by_roles: &RoleSet,
    whom: &UserId,
    role: &Role,
    policy: &Policy,
) -> Result<(), Refusal> {
    if !policy.grant.allows(by_roles) {
        return Err(Refusal::NotAGranter {
            change,
            needed: policy.grant.describe().into_string(),
        });
    }
    if change == RoleChange::Grant && by == whom && !policy.allow_self_grant {
        return Err(Refusal::ToThemselves);
    }
    if let Some(power) = policy.power_of(role)
        && !by_roles.contains(&Role::admin())
    {
        return Err(Refusal::AdminOnly {
            change,
            role: role.clone(),
            power,
        });
    }
    Ok(())
}
