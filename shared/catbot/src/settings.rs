//! Catbot's own settings: what its packs need beyond Opkit's
//! [`opkit::config::Config`], read once at start-up from the environment.
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `OPKIT_WEATHER_URL` | weather API base URL (OpenWeatherMap-compatible) | `https://api.openweathermap.org/data/2.5` |
//! | `OPKIT_WEATHER_KEY` | weather API key | none |
//! | `OPKIT_ACCOUNTS` | the named AWS accounts, JSON ([`crate::accounts`]) | none: the bot's own account only |
//! | `OPKIT_COMMANDS_FILE` | a TOML file of declarative commands ([`opkit::declare`]) loaded at start-up; unset, the commands pushed to the store (`opkit commands push`) | none |
//!
//! A malformed value fails start-up with one line naming the variable, as Opkit's
//! own settings do.

use opkit::config::{ConfigError, http_url, setting};
use opkit::secret::Secret;

use crate::accounts::{self, AccountBook};

/// Catbot's settings that hold credentials: like Opkit's
/// [`opkit::config::SECRET_SETTINGS`], each may be named by `NAME_ARN` instead
/// (a Secrets Manager secret, resolved at cold start).
pub const SECRET_SETTINGS: [&str; 1] = ["OPKIT_WEATHER_KEY"];

/// The weather API Catbot asks by default.
pub const DEFAULT_WEATHER_URL: &str = "https://api.openweathermap.org/data/2.5";

/// Catbot's packs' settings, parsed.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `OPKIT_WEATHER_URL`, without a trailing `/`.
    pub weather_url: String,
    /// `OPKIT_WEATHER_KEY`.
    pub weather_key: Option<Secret>,
    /// `OPKIT_NOTIFY_QUEUE_ARN`: the ARN of the notifications queue, whose
    /// records the worker hands to the notifications' handler (EventBridge
    /// events) rather than opening them as jobs. Unset: no notifications.
    pub notify_queue_arn: Option<String>,
    /// `OPKIT_ACCOUNTS`: the AWS accounts commands may look at with `in <account>`.
    pub accounts: AccountBook,
    /// `OPKIT_COMMANDS_FILE`: declarative commands to load at start-up.
    pub commands_file: Option<std::path::PathBuf>,
}

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup` (tests pass a map). Empty values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| setting(&lookup, name);
        Ok(Self {
            weather_url: http_url(
                "OPKIT_WEATHER_URL",
                get("OPKIT_WEATHER_URL").unwrap_or_else(|| DEFAULT_WEATHER_URL.into()),
            )?,
            weather_key: get("OPKIT_WEATHER_KEY").map(Secret::registered),
            notify_queue_arn: get("OPKIT_NOTIFY_QUEUE_ARN")
                .map(|arn| {
                    if arn.starts_with("arn:") && arn.split(':').nth(2) == Some("sqs") {
                        Ok(arn)
                    } else {
                        Err(ConfigError::Invalid {
                            name: "OPKIT_NOTIFY_QUEUE_ARN",
                            reason: "must be an SQS queue ARN (arn:aws:sqs:region:account:name)"
                                .into(),
                        })
                    }
                })
                .transpose()?,
            accounts: match get(accounts::SETTING) {
                Some(json) => {
                    let book =
                        AccountBook::parse(&json).map_err(|reason| ConfigError::Invalid {
                            name: accounts::SETTING,
                            reason,
                        })?;
                    for warning in book.warnings() {
                        tracing::warn!("{warning}");
                    }
                    book
                }
                None => AccountBook::empty(),
            },
            commands_file: get("OPKIT_COMMANDS_FILE").map(Into::into),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_need_nothing_and_a_bad_url_is_named() {
        let s = Settings::from_lookup(|_| None).unwrap();
        assert_eq!(s.weather_url, DEFAULT_WEATHER_URL);
        assert!(s.weather_key.is_none());
        let err = Settings::from_lookup(|k| (k == "OPKIT_WEATHER_URL").then(|| "ftp://x".into()))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("OPKIT_WEATHER_URL is invalid"), "{err}");
    }

    #[test]
    fn accounts_are_read_and_a_bad_value_is_named() {
        let json = r#"{"prod": {"role_arn": "arn:aws:iam::111111111111:role/opkit"}}"#;
        let s = Settings::from_lookup(|k| (k == "OPKIT_ACCOUNTS").then(|| json.into())).unwrap();
        assert_eq!(
            s.accounts.get("prod").unwrap().account_id(),
            Some("111111111111")
        );
        let err = Settings::from_lookup(|k| (k == "OPKIT_ACCOUNTS").then(|| "{".into()))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("OPKIT_ACCOUNTS is invalid: expected a JSON object"),
            "{err}"
        );
    }

    #[test]
    fn the_key_never_prints() {
        let s = Settings::from_lookup(|k| (k == "OPKIT_WEATHER_KEY").then(|| "hunter2".into()))
            .unwrap();
        assert!(!format!("{s:?}").contains("hunter2"));
        assert_eq!(s.weather_key.unwrap().expose(), "hunter2");
    }
}
