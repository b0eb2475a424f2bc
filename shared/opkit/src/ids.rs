//! Newtypes for the identifiers that cross the edge: users, channels, teams and roles.
//!
//! Each one is parsed once, where text enters the system, so that an invalid value
//! cannot travel further and the error says exactly what was wrong.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::text::one_line;

/// Why a piece of text is not a valid identifier. The text is shown through
/// [`one_line`]: it is what someone typed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdError {
    /// Not a Slack user id (`U…` or `W…`) nor a mention of one.
    #[error("`{}` is not a Slack user: mention someone like @name", one_line(.0))]
    User(String),
    /// Not a Slack channel id.
    #[error("`{}` is not a Slack channel id", one_line(.0))]
    Channel(String),
    /// Not a Slack user group id.
    #[error("`{}` is not a Slack user group id", one_line(.0))]
    UserGroup(String),
    /// Not a Slack team id.
    #[error("`{}` is not a Slack team id", one_line(.0))]
    Team(String),
    /// Not a role name.
    #[error(
        "`{}` is not a role name: use 1-32 lowercase letters, digits, `-` or `_`",
        one_line(.0)
    )]
    Role(String),
}

fn is_slack_id(s: &str, prefixes: &[char]) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if prefixes.contains(&c))
        && s.len() >= 2
        && s.len() <= 32
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

macro_rules! slack_id {
    ($(#[$doc:meta])* $name:ident, $prefixes:expr, $err:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Parses an id, checking its shape.
            pub fn parse(s: &str) -> Result<Self, IdError> {
                if is_slack_id(s, $prefixes) {
                    Ok(Self(s.to_string()))
                } else {
                    Err(IdError::$err(s.to_string()))
                }
            }

            /// The id as Slack spells it.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                Self::parse(&s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }
    };
}

slack_id!(
    /// A Slack user id such as `U024BE7LH` (or `W…` on Enterprise Grid).
    UserId,
    &['U', 'W', 'B'],
    User
);
slack_id!(
    /// A Slack conversation id: public (`C…`), private (`G…`) or direct message (`D…`).
    ChannelId,
    &['C', 'G', 'D'],
    Channel
);
slack_id!(
    /// A Slack user group id such as `S0614TZR7` (mentioned as `<!subteam^S0614TZR7>`).
    UserGroupId,
    &['S'],
    UserGroup
);
slack_id!(
    /// A Slack workspace (`T…`) or Enterprise Grid organisation (`E…`) id.
    TeamId,
    &['T', 'E'],
    Team
);

/// A role name such as `admin`, `ops` or `oncall`: lowercase, 1 to 32 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Role(String);

impl Role {
    /// Parses a role name; upper case is folded to lower case.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let lower = s.to_ascii_lowercase();
        let ok = !lower.is_empty()
            && lower.len() <= 32
            && lower
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if ok {
            Ok(Self(lower))
        } else {
            Err(IdError::Role(s.to_string()))
        }
    }

    /// The built-in administrator role.
    pub fn admin() -> Self {
        Self("admin".to_string())
    }

    /// The role name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Role {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        Self::parse(&s)
    }
}

impl From<Role> for String {
    fn from(r: Role) -> String {
        r.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids_are_checked() {
        assert!(UserId::parse("U024BE7LH").is_ok());
        assert!(UserId::parse("W0123ABC").is_ok());
        assert_eq!(UserId::parse("bob"), Err(IdError::User("bob".to_string())));
        assert!(UserId::parse("U").is_err());
        assert!(UserId::parse("u024be7lh").is_err());
        assert!(UserId::parse("C024BE7LH").is_err());
    }

    #[test]
    fn errors_quote_what_was_typed_on_one_line() {
        let err = UserId::parse("x\n• `forged`").unwrap_err().to_string();
        assert_eq!(
            err,
            "`x⏎• ˋforgedˋ` is not a Slack user: mention someone like @name"
        );
        let err = Role::parse("a`\nb").unwrap_err().to_string();
        assert!(err.starts_with("`aˋ⏎b` is not a role name"), "{err}");
    }

    #[test]
    fn roles_fold_case_and_reject_junk() {
        assert_eq!(Role::parse("Ops").unwrap().as_str(), "ops");
        assert!(Role::parse("on-call_2").is_ok());
        assert!(Role::parse("").is_err());
        assert!(Role::parse("has space").is_err());
        assert!(Role::parse(&"x".repeat(33)).is_err());
    }

    #[test]
    fn ids_round_trip_through_serde_and_reject_bad_values() {
        let u: UserId = serde_json::from_str("\"U1\"").unwrap();
        assert_eq!(serde_json::to_string(&u).unwrap(), "\"U1\"");
        assert!(serde_json::from_str::<UserId>("\"nope\"").is_err());
    }
}
