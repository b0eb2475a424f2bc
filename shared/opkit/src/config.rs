//! One typed configuration, read once at start-up from the environment.
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `SLACK_SIGNING_SECRET` | verifies requests from Slack (at least 16 characters; Slack's have 32) | required by `serve` and the ingress |
//! | `SLACK_BOT_TOKEN` | posts with the Web API (`xoxb-…`; another kind of token is refused) | none |
//! | `SLACK_APP_TOKEN` | app-level token (`xapp-…`, scope `connections:write`) for Socket Mode | required by `serve --socket-mode` |
//! | `SLACK_API_URL` | Slack Web API base URL; when not Slack's, `response_url`s on its origin are taken too ([`crate::slack::response_url`]) | `https://slack.com/api` |
//! | `OPKIT_BOT_NAME` | name used in greetings | `catbot` |
//! | `OPKIT_ADMINS` | comma-separated user ids that always hold `admin` | none |
//! | `OPKIT_TEAM_IDS` | comma-separated team/enterprise ids allowed to call, or `any` | required by the ingress Lambda; unset: any (local) |
//! | `OPKIT_ALLOW_EXTERNAL_USERS` | `true`: users of other organisations (Slack Connect) may call | `false` |
//! | `OPKIT_GRANT_ROLES` | roles that may grant, besides `admin` | none |
//! | `OPKIT_AUDIT_ROLES` | roles that may read the audit trail, besides `admin` | none |
//! | `OPKIT_GRANT_APPROVERS` | if set, `roles grant` waits for a second person with one of these roles | none |
//! | `OPKIT_ALLOW_SELF_GRANT` | `true`: a granter may grant a role to themselves | `false` |
//! | `OPKIT_DATA_DIR` | file store directory | `.opkit` |
//! | `OPKIT_TABLE` | DynamoDB table | none |
//! | `OPKIT_QUEUE_URL` | SQS queue URL | none |
//! | `OPKIT_ENVELOPE_KEY` | the key (32+ characters) that seals job envelopes on the SQS queue: the ingress and the expiry pass seal, the worker verifies | required by the three Lambdas, `opkit worker` and `opkit serve --queue sqs` |
//!
//! These are the framework's settings; a bot built on Opkit reads its own packs'
//! settings the same way (Catbot's `catbot::settings`), with [`http_url`] and
//! [`ConfigError`].
//!
//! A malformed value fails start-up with one line naming the variable; secrets are
//! held in [`Secret`], whose `Debug` and `Display` never show them.
//!
//! Deployed, each credential in [`SECRET_SETTINGS`] may instead be named by
//! `NAME_ARN` (`SLACK_BOT_TOKEN_ARN`): the ARN of an AWS Secrets Manager secret the
//! Lambda reads once at cold start ([`crate::secret::references`]), so that no
//! credential sits in a function's configuration.

use std::path::PathBuf;

use crate::ids::{IdError, Role, TeamId, UserId};
use crate::job::EnvelopeKey;
use crate::slack::credentials::{CredentialError, bot_token, signing_secret};
use crate::slack::web::{AppToken, AppTokenError};
use crate::slack::{BotToken, SigningSecret};

pub use crate::secret::Secret;

/// The settings that hold credentials: [`Config::from_lookup`] registers their
/// values with [`crate::secret::register`], so no log line ever shows them.
pub const SECRET_SETTINGS: [&str; 4] = [
    "SLACK_SIGNING_SECRET",
    "SLACK_BOT_TOKEN",
    "SLACK_APP_TOKEN",
    "OPKIT_ENVELOPE_KEY",
];

/// A credential's check ([`crate::slack::credentials`]) as the error naming its
/// setting.
fn credential<T>(
    name: &'static str,
    checked: Result<T, CredentialError>,
) -> Result<T, ConfigError> {
    checked.map_err(|e| ConfigError::Invalid {
        name,
        reason: e.to_string(),
    })
}

/// A missing or malformed setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A required variable is not set.
    #[error("{0} is not set")]
    Missing(&'static str),
    /// A variable a deployment must choose explicitly is not set.
    #[error("{name} is not set: {hint}")]
    Unchosen {
        /// The variable.
        name: &'static str,
        /// What to set it to.
        hint: &'static str,
    },
    /// A variable is set to something unusable.
    #[error("{name} is invalid: {reason}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// `SLACK_APP_TOKEN` is set to something that is not an app-level token.
    #[error("SLACK_APP_TOKEN is invalid: {0}")]
    AppToken(#[source] AppTokenError),
    /// The secret a `…_ARN` setting names could not be read
    /// ([`crate::secret::references`]).
    #[error("{name}_ARN: cannot read the secret {secret_id}: {reason}")]
    Secret {
        /// The setting the secret holds (`SLACK_BOT_TOKEN`).
        name: &'static str,
        /// The secret's ARN or name.
        secret_id: String,
        /// Why (Secrets Manager's error, or what is wrong with the value).
        reason: String,
    },
}

/// Everything configurable, parsed.
#[derive(Debug, Clone)]
pub struct Config {
    /// `SLACK_SIGNING_SECRET`.
    pub signing_secret: Option<SigningSecret>,
    /// `SLACK_BOT_TOKEN`.
    pub bot_token: Option<BotToken>,
    /// `SLACK_APP_TOKEN`.
    pub app_token: Option<AppToken>,
    /// `SLACK_API_URL`.
    pub slack_api_url: String,
    /// `OPKIT_BOT_NAME`.
    pub bot_name: String,
    /// `OPKIT_ADMINS`.
    pub admins: Vec<UserId>,
    /// `OPKIT_TEAM_IDS`.
    pub team_ids: TeamAllowList,
    /// `OPKIT_ALLOW_EXTERNAL_USERS`.
    pub allow_external_users: bool,
    /// `OPKIT_GRANT_ROLES`.
    pub grant_roles: Vec<Role>,
    /// `OPKIT_AUDIT_ROLES`.
    pub audit_roles: Vec<Role>,
    /// `OPKIT_GRANT_APPROVERS`.
    pub grant_approvers: Vec<Role>,
    /// `OPKIT_ALLOW_SELF_GRANT`.
    pub allow_self_grant: bool,
    /// `OPKIT_DATA_DIR`.
    pub data_dir: PathBuf,
    /// `OPKIT_TABLE`.
    pub table: Option<String>,
    /// `OPKIT_QUEUE_URL`.
    pub queue_url: Option<String>,
    /// `OPKIT_ENVELOPE_KEY`.
    pub envelope_key: Option<EnvelopeKey>,
    /// `OPKIT_TIME_ZONE`: the IANA zone times are read in for a user whose own
    /// Slack zone is not known (and, locally, the shell's zone instead of the
    /// machine's). Unset: UTC deployed, the machine's zone in the shell.
    pub time_zone: Option<crate::timespec::Tz>,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup` (tests pass a map). Empty values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| setting(&lookup, name);
        // Every credential is blanked out of the logs from now on.
        for name in SECRET_SETTINGS {
            if let Some(value) = get(name) {
                crate::secret::register(&value);
            }
        }
        let slack_api_url = http_url(
            "SLACK_API_URL",
            get("SLACK_API_URL").unwrap_or_else(|| crate::slack::web::DEFAULT_BASE_URL.into()),
        )?;
        // A fake Slack's `response_url`s are on its own origin: take them too.
        if slack_api_url != crate::slack::web::DEFAULT_BASE_URL {
            crate::slack::response_url::allow_origin_of(&slack_api_url);
        }
        Ok(Self {
            signing_secret: get("SLACK_SIGNING_SECRET")
                .map(|secret| credential("SLACK_SIGNING_SECRET", signing_secret(&secret)))
                .transpose()?,
            bot_token: get("SLACK_BOT_TOKEN")
                .map(|token| {
                    let (token, warning) = credential("SLACK_BOT_TOKEN", bot_token(&token))?;
                    if let Some(warning) = warning {
                        tracing::warn!("{warning}");
                    }
                    Ok::<_, ConfigError>(token)
                })
                .transpose()?,
            app_token: get("SLACK_APP_TOKEN")
                .map(|token| AppToken::parse(token).map_err(ConfigError::AppToken))
                .transpose()?,
            slack_api_url,
            bot_name: get("OPKIT_BOT_NAME").unwrap_or_else(|| "catbot".into()),
            admins: list("OPKIT_ADMINS", get("OPKIT_ADMINS"), UserId::parse)?,
            team_ids: TeamAllowList::parse(get("OPKIT_TEAM_IDS"))?,
            allow_external_users: flag(
                "OPKIT_ALLOW_EXTERNAL_USERS",
                get("OPKIT_ALLOW_EXTERNAL_USERS"),
            )?,
            grant_roles: list("OPKIT_GRANT_ROLES", get("OPKIT_GRANT_ROLES"), Role::parse)?,
            audit_roles: list("OPKIT_AUDIT_ROLES", get("OPKIT_AUDIT_ROLES"), Role::parse)?,
            grant_approvers: list(
                "OPKIT_GRANT_APPROVERS",
                get("OPKIT_GRANT_APPROVERS"),
                Role::parse,
            )?,
            allow_self_grant: flag("OPKIT_ALLOW_SELF_GRANT", get("OPKIT_ALLOW_SELF_GRANT"))?,
            data_dir: get("OPKIT_DATA_DIR")
                .unwrap_or_else(|| ".opkit".into())
                .into(),
            table: get("OPKIT_TABLE"),
            queue_url: get("OPKIT_QUEUE_URL")
                .map(|u| http_url("OPKIT_QUEUE_URL", u))
                .transpose()?,
            envelope_key: get("OPKIT_ENVELOPE_KEY")
                .map(|key| {
                    EnvelopeKey::new(&key).map_err(|e| ConfigError::Invalid {
                        name: "OPKIT_ENVELOPE_KEY",
                        reason: e.to_string(),
                    })
                })
                .transpose()?,
            time_zone: get("OPKIT_TIME_ZONE")
                .map(|name| {
                    crate::timespec::parse_zone(&name).ok_or_else(|| ConfigError::Invalid {
                        name: "OPKIT_TIME_ZONE",
                        reason: format!(
                            "`{}` is not an IANA time zone name (such as Europe/Paris, America/New_York or UTC)",
                            crate::text::one_line(&name)
                        ),
                    })
                })
                .transpose()?,
        })
    }

    /// The zone a user's times are read in when Slack does not say theirs:
    /// `OPKIT_TIME_ZONE`, else UTC.
    pub fn default_zone(&self) -> crate::timespec::Tz {
        self.time_zone.unwrap_or(crate::timespec::Tz::UTC)
    }

    /// The signing secret, or the error naming it.
    pub fn require_signing_secret(&self) -> Result<&SigningSecret, ConfigError> {
        self.signing_secret
            .as_ref()
            .ok_or(ConfigError::Missing("SLACK_SIGNING_SECRET"))
    }

    /// The bot token, or the error naming it.
    pub fn require_bot_token(&self) -> Result<&BotToken, ConfigError> {
        self.bot_token
            .as_ref()
            .ok_or(ConfigError::Missing("SLACK_BOT_TOKEN"))
    }

    /// The app-level token for Socket Mode, or the error naming it.
    pub fn require_app_token(&self) -> Result<&AppToken, ConfigError> {
        self.app_token
            .as_ref()
            .ok_or(ConfigError::Missing("SLACK_APP_TOKEN"))
    }

    /// The DynamoDB table, or the error naming it.
    pub fn require_table(&self) -> Result<&str, ConfigError> {
        self.table
            .as_deref()
            .ok_or(ConfigError::Missing("OPKIT_TABLE"))
    }

    /// The queue URL, or the error naming it.
    pub fn require_queue_url(&self) -> Result<&str, ConfigError> {
        self.queue_url
            .as_deref()
            .ok_or(ConfigError::Missing("OPKIT_QUEUE_URL"))
    }

    /// The team allow-list, chosen explicitly (ids, or `any`): what a deployed
    /// ingress requires, so that no deployment admits every workspace by leaving
    /// `OPKIT_TEAM_IDS` empty. `opkit serve` does not ask: unset, any team may call.
    pub fn require_team_ids(&self) -> Result<&TeamAllowList, ConfigError> {
        match &self.team_ids {
            TeamAllowList::Unset => Err(ConfigError::Unchosen {
                name: "OPKIT_TEAM_IDS",
                hint: "set it to the Slack team and Enterprise Grid ids that may call \
                       (T0123ABCD,E0456EFGH), or to `any` to let any workspace call",
            }),
            chosen => Ok(chosen),
        }
    }

    /// The key that seals job envelopes, or the error naming it.
    pub fn require_envelope_key(&self) -> Result<&EnvelopeKey, ConfigError> {
        self.envelope_key
            .as_ref()
            .ok_or(ConfigError::Missing("OPKIT_ENVELOPE_KEY"))
    }
}

/// Which workspaces and Enterprise Grid organisations may call the bot:
/// `OPKIT_TEAM_IDS`. [`crate::admission::admit`] applies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TeamAllowList {
    /// Not set: any team may call. Only `opkit serve` accepts it; a deployed
    /// ingress refuses to start ([`Config::require_team_ids`]).
    Unset,
    /// `any`: any workspace may call, chosen knowingly.
    Any,
    /// Only these workspaces (`T…`) and organisations (`E…`, each of its
    /// workspaces).
    Only(Vec<TeamId>),
}

impl TeamAllowList {
    /// Reads the setting: unset or only separators is [`TeamAllowList::Unset`];
    /// `any` (any case) is [`TeamAllowList::Any`]; otherwise comma-separated ids,
    /// each checked. `any` with ids is refused: it would make the ids meaningless.
    fn parse(value: Option<String>) -> Result<Self, ConfigError> {
        const NAME: &str = "OPKIT_TEAM_IDS";
        let value = value.unwrap_or_default();
        let entries: Vec<&str> = value
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        match entries.as_slice() {
            [] => Ok(Self::Unset),
            [only] if only.eq_ignore_ascii_case("any") => Ok(Self::Any),
            _ if entries.iter().any(|e| e.eq_ignore_ascii_case("any")) => {
                Err(ConfigError::Invalid {
                    name: NAME,
                    reason: "`any` cannot be combined with team ids".into(),
                })
            }
            _ => list(NAME, Some(value.clone()), TeamId::parse).map(Self::Only),
        }
    }

    /// Whether `id` is named in the list (never for `any` or unset, which name
    /// none).
    pub fn names(&self, id: &TeamId) -> bool {
        matches!(self, Self::Only(ids) if ids.contains(id))
    }
}

/// Setting `name` read through `lookup`, trimmed; empty counts as unset. Every
/// settings reader (Opkit's [`Config`], a bot's own) reads values this way.
pub fn setting(lookup: impl Fn(&str) -> Option<String>, name: &str) -> Option<String> {
    lookup(name)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// Checks that setting `name` is an http(s) URL; returns it without a trailing `/`.
pub fn http_url(name: &'static str, value: String) -> Result<String, ConfigError> {
    if value.starts_with("http://") || value.starts_with("https://") {
        Ok(value.trim_end_matches('/').to_string())
    } else {
        Err(ConfigError::Invalid {
            name,
            reason: format!("`{value}` is not an http(s) URL"),
        })
    }
}

/// A yes/no setting: `true`/`false` (also `1`/`0`, `yes`/`no`, any case); unset is no.
fn flag(name: &'static str, value: Option<String>) -> Result<bool, ConfigError> {
    match value.map(|v| v.to_ascii_lowercase()).as_deref() {
        None | Some("false" | "0" | "no") => Ok(false),
        Some("true" | "1" | "yes") => Ok(true),
        Some(other) => Err(ConfigError::Invalid {
            name,
            reason: format!("`{other}` is not true or false"),
        }),
    }
}

fn list<T>(
    name: &'static str,
    value: Option<String>,
    parse: impl Fn(&str) -> Result<T, IdError>,
) -> Result<Vec<T>, ConfigError> {
    value
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            parse(s).map_err(|e| ConfigError::Invalid {
                name,
                reason: e.to_string(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_need_nothing() {
        let c = config(&[]).unwrap();
        assert_eq!(c.data_dir, PathBuf::from(".opkit"));
        assert_eq!(c.slack_api_url, "https://slack.com/api");
        assert!(c.admins.is_empty());
        assert_eq!(
            c.require_signing_secret().unwrap_err().to_string(),
            "SLACK_SIGNING_SECRET is not set"
        );
    }

    #[test]
    fn the_time_zone_is_an_iana_name_checked_at_start_up() {
        assert_eq!(config(&[]).unwrap().time_zone, None);
        assert_eq!(config(&[]).unwrap().default_zone().name(), "UTC");
        let paris = config(&[("OPKIT_TIME_ZONE", "europe/paris")]).unwrap();
        assert_eq!(paris.default_zone().name(), "Europe/Paris");
        for bad in ["Paris", "CEST", "+02:00", "Europe/Atlantis"] {
            assert_eq!(
                config(&[("OPKIT_TIME_ZONE", bad)]).unwrap_err().to_string(),
                format!(
                    "OPKIT_TIME_ZONE is invalid: `{bad}` is not an IANA time zone name (such as Europe/Paris, America/New_York or UTC)"
                )
            );
        }
    }

    #[test]
    fn lists_are_parsed_and_bad_entries_named() {
        let c = config(&[("OPKIT_ADMINS", " U1, U2 ,"), ("OPKIT_TEAM_IDS", "T1")]).unwrap();
        assert_eq!(c.admins.len(), 2);
        assert_eq!(
            c.team_ids,
            TeamAllowList::Only(vec![TeamId::parse("T1").unwrap()])
        );
        let err = config(&[("OPKIT_ADMINS", "U1,bob")])
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("OPKIT_ADMINS is invalid"), "{err}");
        let err = config(&[("SLACK_API_URL", "localhost:9")])
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("SLACK_API_URL is invalid"), "{err}");
    }

    #[test]
    fn the_team_allow_list_is_ids_or_any_and_unset_is_not_a_choice() {
        let ids = |list: &[&str]| {
            TeamAllowList::Only(list.iter().map(|t| TeamId::parse(t).unwrap()).collect())
        };
        let teams = |value: &str| config(&[("OPKIT_TEAM_IDS", value)]).map(|c| c.team_ids);
        assert_eq!(teams("T1, E2"), Ok(ids(&["T1", "E2"])));
        assert_eq!(teams("any"), Ok(TeamAllowList::Any));
        assert_eq!(teams(" ANY "), Ok(TeamAllowList::Any));
        for unset in ["", " ", " , "] {
            assert_eq!(teams(unset), Ok(TeamAllowList::Unset), "{unset:?}");
        }
        assert_eq!(config(&[]).unwrap().team_ids, TeamAllowList::Unset);
        assert_eq!(
            teams("any,T1").unwrap_err().to_string(),
            "OPKIT_TEAM_IDS is invalid: `any` cannot be combined with team ids"
        );
        let err = teams("T1,anything").unwrap_err().to_string();
        assert!(err.starts_with("OPKIT_TEAM_IDS is invalid"), "{err}");
        // A deployed ingress asks for the choice; unset names the variable.
        let unset = config(&[]).unwrap();
        let err = unset.require_team_ids().unwrap_err().to_string();
        assert!(
            err.starts_with("OPKIT_TEAM_IDS is not set: ") && err.contains("`any`"),
            "{err}"
        );
        let any = config(&[("OPKIT_TEAM_IDS", "any")]).unwrap();
        assert_eq!(any.require_team_ids(), Ok(&TeamAllowList::Any));
        assert!(!TeamAllowList::Any.names(&TeamId::parse("T1").unwrap()));
        assert!(ids(&["T1"]).names(&TeamId::parse("T1").unwrap()));
    }

    #[test]
    fn external_users_are_refused_unless_turned_on() {
        assert!(!config(&[]).unwrap().allow_external_users);
        let c = config(&[("OPKIT_ALLOW_EXTERNAL_USERS", "true")]).unwrap();
        assert!(c.allow_external_users);
        let err = config(&[("OPKIT_ALLOW_EXTERNAL_USERS", "maybe")]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("OPKIT_ALLOW_EXTERNAL_USERS is invalid"),
            "{err}"
        );
    }

    #[test]
    fn self_grant_is_off_unless_turned_on() {
        assert!(!config(&[]).unwrap().allow_self_grant);
        for on in ["true", "TRUE", "1", "yes"] {
            let c = config(&[("OPKIT_ALLOW_SELF_GRANT", on)]).unwrap();
            assert!(c.allow_self_grant, "{on}");
        }
        for off in ["false", "0", "no", " "] {
            let c = config(&[("OPKIT_ALLOW_SELF_GRANT", off)]).unwrap();
            assert!(!c.allow_self_grant, "{off:?}");
        }
        assert_eq!(
            config(&[("OPKIT_ALLOW_SELF_GRANT", "sometimes")])
                .unwrap_err()
                .to_string(),
            "OPKIT_ALLOW_SELF_GRANT is invalid: `sometimes` is not true or false"
        );
    }

    #[test]
    fn app_token_is_optional_named_when_missing_and_checked() {
        let c = config(&[]).unwrap();
        assert_eq!(
            c.require_app_token().unwrap_err().to_string(),
            "SLACK_APP_TOKEN is not set"
        );
        let c = config(&[("SLACK_APP_TOKEN", "xapp-1-A1-hunter2")]).unwrap();
        assert!(c.require_app_token().is_ok());
        assert!(!format!("{c:?}").contains("hunter2"));
        let err = config(&[("SLACK_APP_TOKEN", "xoxb-1")]).unwrap_err();
        assert_eq!(err, ConfigError::AppToken(AppTokenError::NotAppLevel));
        assert_eq!(
            err.to_string(),
            "SLACK_APP_TOKEN is invalid: expected an app-level token starting with `xapp-`"
        );
    }

    #[test]
    fn the_envelope_key_is_required_long_and_never_shown() {
        assert_eq!(
            config(&[]).unwrap().require_envelope_key().unwrap_err(),
            ConfigError::Missing("OPKIT_ENVELOPE_KEY")
        );
        assert_eq!(
            config(&[("OPKIT_ENVELOPE_KEY", "short")])
                .unwrap_err()
                .to_string(),
            "OPKIT_ENVELOPE_KEY is invalid: must be at least 32 characters long (it has 5)"
        );
        let key = "envelope-key-never-shown-0123456789";
        let c = config(&[("OPKIT_ENVELOPE_KEY", key)]).unwrap();
        assert!(c.require_envelope_key().is_ok());
        assert!(!format!("{c:?}").contains(key));
        assert_eq!(
            crate::secret::redact(&format!("key={key}")),
            "key=***",
            "registered: no log line shows it"
        );
    }

    #[test]
    fn secrets_never_print() {
        let c = config(&[("SLACK_SIGNING_SECRET", "hunter2-hunter2-hunter2")]).unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(c.require_signing_secret().is_ok());
    }

    #[test]
    fn weak_or_misplaced_slack_credentials_stop_start_up_naming_the_setting() {
        // GIVEN the tester's one-character signing secret, and tokens of the wrong kind
        for (name, value, says) in [
            (
                "SLACK_SIGNING_SECRET",
                "x",
                "SLACK_SIGNING_SECRET is invalid: 1 characters is too short for a signing secret",
            ),
            (
                "SLACK_SIGNING_SECRET",
                "xoxb-1-2-abcdefghijklmnop",
                "SLACK_SIGNING_SECRET is invalid: this is a Slack bot token",
            ),
            (
                "SLACK_BOT_TOKEN",
                "xoxp-1-2-abcdefghijklmnop",
                "SLACK_BOT_TOKEN is invalid: this is a Slack user token",
            ),
        ] {
            // WHEN the configuration is read THEN it fails with one line naming it
            let err = config(&[(name, value)]).unwrap_err().to_string();
            assert!(err.starts_with(says), "{err}");
            assert!(
                value.len() < 8 || !err.contains(&value[5..]),
                "the value is not shown: {err}"
            );
        }
        // AND the stack's placeholder bot token is taken (with a warning logged)
        assert!(config(&[("SLACK_BOT_TOKEN", &"Q".repeat(64))]).is_ok());
    }
}
