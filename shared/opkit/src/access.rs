//! Access control with Opkit's semantics, and timed grants.
//!
//! A command's requirement is a list of alternatives; each alternative is one role
//! or a set of roles that must all be held:
//!
//! ```text
//! ["admin", ["ops", "oncall"]]   admin OR (ops AND oncall)
//! (no requirement)               open to everyone
//! []                             nobody
//! ```
//!
//! Roles come from [`Grant`]s. A grant may be timed (`for 2h`) or scheduled as a
//! maintenance window (`from 22:00 for 2h`); it authorizes only inside its window,
//! whatever is still stored. Roles also come from configuration (`OPKIT_ADMINS`)
//! and from Slack user groups linked to them ([`crate::groups`]); [`Held`] says
//! which, for `can` and `whoami`.

use std::collections::BTreeSet;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{ChannelId, Role, UserId};
use crate::mrkdwn;
use crate::slack::mrkdwn::Mrkdwn;

/// The roles a user holds at one instant.
pub type RoleSet = BTreeSet<Role>;

/// Who may run a command.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Access {
    /// Everyone.
    #[default]
    Open,
    /// Anyone who satisfies at least one alternative; no alternatives means nobody.
    AnyOf(Vec<Alternative>),
}

/// Why a requirement cannot be built ([`Access::parse`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    /// A name that is not a role.
    #[error(transparent)]
    Role(#[from] crate::ids::IdError),
    /// The alternative at this place (from 1) names no role: everyone would
    /// satisfy it.
    #[error(
        "alternative {0} names no role, so it would let everyone in: write no requirement \
         for everyone, or `[]` for nobody"
    )]
    EmptyAlternative(usize),
}

/// One way to satisfy an [`Access`] requirement: every role in it must be held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alternative(pub Vec<Role>);

impl Access {
    /// Nobody may run the command.
    pub fn nobody() -> Self {
        Access::AnyOf(Vec::new())
    }

    /// Builds a requirement from alternatives, each a list of roles held together.
    ///
    /// ```
    /// use opkit::access::Access;
    /// // admin OR (ops AND oncall)
    /// let access = Access::parse(&[&["admin"], &["ops", "oncall"]]).unwrap();
    /// assert_eq!(access.describe(), "admin, or ops and oncall");
    /// // an alternative of no roles would let everyone in: refused
    /// assert!(Access::parse(&[&["admin"], &[]]).is_err());
    /// ```
    ///
    /// # Errors
    /// [`AccessError::Role`] for a name that is not a role;
    /// [`AccessError::EmptyAlternative`] for an alternative of no roles, which
    /// every user would satisfy (`[[]]` is not "nobody", it is everyone: write
    /// no requirement for everyone, `[]` for nobody).
    pub fn parse(alternatives: &[&[&str]]) -> Result<Self, AccessError> {
        let alts = alternatives
            .iter()
            .enumerate()
            .map(|(i, roles)| {
                if roles.is_empty() {
                    return Err(AccessError::EmptyAlternative(i + 1));
                }
                roles
                    .iter()
                    .map(|r| Role::parse(r))
                    .collect::<Result<Vec<_>, _>>()
                    .map(Alternative)
                    .map_err(AccessError::Role)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Access::AnyOf(alts))
    }

    /// A single role.
    pub fn role(role: Role) -> Self {
        Access::AnyOf(vec![Alternative(vec![role])])
    }

    /// Whether someone holding `held` may run the command.
    pub fn allows(&self, held: &RoleSet) -> bool {
        match self {
            Access::Open => true,
            Access::AnyOf(alts) => alts
                .iter()
                .any(|alt| alt.0.iter().all(|r| held.contains(r))),
        }
    }

    /// Whether this requirement lets everyone in.
    pub fn is_open(&self) -> bool {
        matches!(self, Access::Open)
    }

    /// What would allow a user, for "you need …" messages.
    pub fn describe(&self) -> Mrkdwn {
        match self {
            Access::Open => "nothing".into(),
            Access::AnyOf(alts) if alts.is_empty() => "a role nobody can have".into(),
            Access::AnyOf(alts) => Mrkdwn::join(
                alts.iter()
                    .map(|alt| Mrkdwn::join(alt.0.iter().map(|r| Mrkdwn::new().and(r)), " and ")),
                ", or ",
            ),
        }
    }
}

/// The most grants one user may hold at once, running or still to start (of
/// all roles together): `roles grant` refuses one more. Windows and standing
/// grants coexist, but a few dozen is already more than anyone reads in
/// `roles list`, and every authorization reads them all.
pub const MAX_GRANTS_PER_USER: usize = 20;

/// One role given to one user, possibly only for a window of time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// Identifies this grant among the user's grants of the role (they coexist).
    /// Grants stored before ids existed read as the nil id: there was at most one
    /// per user and role then.
    #[serde(default)]
    pub id: uuid::Uuid,
    /// Who holds the role.
    pub user: UserId,
    /// The role.
    pub role: Role,
    /// Who granted it (`None` for configuration, e.g. bootstrap admins).
    pub granted_by: Option<UserId>,
    /// When it was granted.
    pub granted_at: DateTime<Utc>,
    /// When it starts to count; `None`: at once.
    #[serde(default)]
    pub starts_at: Option<DateTime<Utc>>,
    /// When it stops counting; `None`: until revoked.
    #[serde(default)]
    pub ends_at: Option<DateTime<Utc>>,
    /// The channel it was granted in, where its start and end are announced.
    #[serde(default)]
    pub channel: Option<ChannelId>,
    /// Whether the start of a scheduled window has been announced.
    #[serde(default)]
    pub start_announced: bool,
}

impl Grant {
    /// Whether `other` is the same grant (perhaps in another state): the same
    /// user, role and id.
    pub fn same_grant(&self, other: &Grant) -> bool {
        self.user == other.user && self.role == other.role && self.id == other.id
    }

    /// Whether the grant counts at `now`: started, and not yet ended.
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.starts_at.is_none_or(|s| s <= now) && self.ends_at.is_none_or(|e| now < e)
    }

    /// Whether the window has closed for good at `now`.
    pub fn has_ended(&self, now: DateTime<Utc>) -> bool {
        self.ends_at.is_some_and(|e| e <= now)
    }

    /// Describes the window relative to `now`: "until revoked", "for 1h 30m more",
    /// "from 2026-11-25 22:00 UTC for 2h".
    pub fn describe_window(&self, now: DateTime<Utc>) -> Mrkdwn {
        match (self.starts_at, self.ends_at) {
            (Some(s), Some(e)) if s > now => mrkdwn!("from {} for {}", s, e - s),
            (Some(s), None) if s > now => mrkdwn!("from {} until revoked", s),
            (_, Some(e)) if e > now => mrkdwn!("until {} ({} left)", e, e - now),
            (_, Some(e)) => mrkdwn!("ended {}", e),
            (_, None) => "until revoked".into(),
        }
    }
}

impl fmt::Display for Alternative {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.0.iter().map(Role::as_str).collect();
        f.write_str(&names.join(" and "))
    }
}

/// Where a role a user holds comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A grant in the store that counts now.
    Grant(Grant),
    /// Set outside the store: `OPKIT_ADMINS` for `admin`, a role fixed for the
    /// local user (`opkit shell --roles`), or a custom [`crate::engine::Authorizer`].
    Configured,
    /// Membership of a Slack user group linked to the role.
    Group(crate::groups::RoleLink),
}

/// One role a user holds, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// The role.
    pub role: Role,
    /// Where it comes from.
    pub source: Source,
}

impl Held {
    /// A role held as a member of a linked group.
    pub fn from_link(link: crate::groups::RoleLink) -> Self {
        Held {
            role: link.role.clone(),
            source: Source::Group(link),
        }
    }

    /// Why it is held, for a reply: `by a grant until revoked`, `as a member of
    /// @ops-oncall`, `set in the configuration (OPKIT_ADMINS)`.
    pub fn describe_source(&self, now: DateTime<Utc>) -> Mrkdwn {
        match &self.source {
            Source::Grant(g) => {
                let by = g
                    .granted_by
                    .as_ref()
                    .map(|u| mrkdwn!(", granted by {}", u.mention()));
                mrkdwn!("by a grant {}{}", g.describe_window(now), by)
            }
            Source::Configured if self.role == Role::admin() => {
                "set in the configuration (`OPKIT_ADMINS`)".into()
            }
            Source::Configured => "set in the configuration".into(),
            Source::Group(link) => mrkdwn!("as a member of {}", link.group_name()),
        }
    }
}

/// The roles `grants` give at `now`.
pub fn active_roles<'a>(
    grants: impl IntoIterator<Item = &'a Grant>,
    now: DateTime<Utc>,
) -> RoleSet {
    grants
        .into_iter()
        .filter(|g| g.is_active(now))
        .map(|g| g.role.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn roles(names: &[&str]) -> RoleSet {
        names.iter().map(|n| Role::parse(n).unwrap()).collect()
    }

    #[test]
    fn opkit_reference_cases() {
        // GIVEN Opkit's own example requirement [["A","B"],"D"]
        let access = Access::parse(&[&["a", "b"], &["d"]]).unwrap();
        // THEN [A,B,C] passes, [A,C,D] passes, [A,E,F] is denied
        assert!(access.allows(&roles(&["a", "b", "c"])));
        assert!(access.allows(&roles(&["a", "c", "d"])));
        assert!(!access.allows(&roles(&["a", "e", "f"])));
    }

    #[test]
    fn open_nobody_and_descriptions() {
        assert!(Access::Open.allows(&RoleSet::new()));
        assert!(!Access::nobody().allows(&roles(&["admin"])));
        let access = Access::parse(&[&["admin"], &["ops", "oncall"]]).unwrap();
        assert!(!access.allows(&roles(&["ops"])));
        assert!(access.allows(&roles(&["oncall", "ops"])));
        assert_eq!(access.describe(), "admin, or ops and oncall");
        assert!(Access::parse(&[&["bad role"]]).is_err());
    }

    #[test]
    fn an_alternative_of_no_roles_is_refused_not_read_as_everyone() {
        // tester 6, G14: `approval = [[]]` loaded as approval by anyone
        assert_eq!(Access::parse(&[&[]]), Err(AccessError::EmptyAlternative(1)));
        assert_eq!(
            Access::parse(&[&["admin"], &[]]),
            Err(AccessError::EmptyAlternative(2))
        );
        assert_eq!(Access::parse(&[]), Ok(Access::nobody()));
    }

    fn grant(starts: Option<i64>, ends: Option<i64>) -> Grant {
        let t = |h: i64| DateTime::from_timestamp(0, 0).unwrap() + Duration::hours(h);
        Grant {
            id: uuid::Uuid::nil(),
            user: UserId::parse("U1").unwrap(),
            role: Role::parse("ops").unwrap(),
            granted_by: None,
            granted_at: t(0),
            starts_at: starts.map(t),
            ends_at: ends.map(t),
            channel: None,
            start_announced: false,
        }
    }

    #[test]
    fn grants_count_only_inside_their_window() {
        let t = |h: i64| DateTime::from_timestamp(0, 0).unwrap() + Duration::hours(h);
        // GIVEN a maintenance window from hour 2 to hour 4
        let g = grant(Some(2), Some(4));
        // THEN it does not count before, counts during, and stops exactly at the end
        assert!(!g.is_active(t(1)));
        assert!(g.is_active(t(2)));
        assert!(g.is_active(t(3)));
        assert!(!g.is_active(t(4)));
        assert!(g.has_ended(t(4)));
        assert!(!g.has_ended(t(3)));
        // AND an open-ended grant always counts
        assert!(grant(None, None).is_active(t(1000)));
        assert_eq!(active_roles([&g], t(3)), roles(&["ops"]));
        assert!(active_roles([&g], t(5)).is_empty());
    }

    #[test]
    fn windows_are_described_relative_to_now() {
        let t = |h: i64| DateTime::from_timestamp(0, 0).unwrap() + Duration::hours(h);
        assert_eq!(
            grant(Some(2), Some(4)).describe_window(t(1)),
            "from <!date^7200^{date_short_pretty} at {time}|1970-01-01 02:00 UTC> for 2h"
        );
        assert_eq!(
            grant(None, Some(4)).describe_window(t(3)),
            "until <!date^14400^{date_short_pretty} at {time}|1970-01-01 04:00 UTC> (1h left)"
        );
        assert_eq!(grant(None, None).describe_window(t(3)), "until revoked");
    }
}
