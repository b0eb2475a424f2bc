//! Settings that name a secret instead of holding it: `NAME_ARN`.
//!
//! Deployed, a credential (`SLACK_SIGNING_SECRET`, `SLACK_BOT_TOKEN`,
//! `OPKIT_ENVELOPE_KEY`, a pack's key) is not in the function's environment, where
//! anyone allowed `lambda:GetFunctionConfiguration` could read it: the environment
//! holds `SLACK_BOT_TOKEN_ARN`, the ARN (or name) of a Secrets Manager secret whose
//! `SecretString` is the value. The binary resolves every reference once at cold
//! start ([`super::secrets_manager::resolve`]) and reads its settings through the
//! result ([`Settings::get`]), so `Config::from_lookup` and a bot's own settings
//! reader see the value as if it had been set directly. Locally, the variables
//! themselves stay.

use std::collections::HashMap;

use crate::config::ConfigError;

/// What a setting's name ends with when it names a secret rather than holds one.
pub const REFERENCE_SUFFIX: &str = "_ARN";

/// A credential setting whose value is to be read from a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretReference {
    /// The setting the secret's value becomes (`SLACK_BOT_TOKEN`).
    pub setting: &'static str,
    /// The secret's ARN or name, as `{setting}_ARN` gives it.
    pub secret_id: String,
}

impl SecretReference {
    /// The variable that named the secret (`SLACK_BOT_TOKEN_ARN`).
    pub fn variable(&self) -> String {
        format!("{}{REFERENCE_SUFFIX}", self.setting)
    }
}

/// The references among `settings`: each one whose `{name}_ARN` is set (non-empty).
///
/// Setting both `NAME` and `NAME_ARN` is refused, naming `NAME`: which one wins
/// would be a guess, and a stale value in the environment is exactly what the
/// reference is there to avoid.
pub fn references(
    lookup: impl Fn(&str) -> Option<String>,
    settings: &[&'static str],
) -> Result<Vec<SecretReference>, ConfigError> {
    let mut found = Vec::new();
    for &setting in settings {
        let Some(secret_id) =
            crate::config::setting(&lookup, &format!("{setting}{REFERENCE_SUFFIX}"))
        else {
            continue;
        };
        if crate::config::setting(&lookup, setting).is_some() {
            return Err(ConfigError::Invalid {
                name: setting,
                reason: format!(
                    "set together with {setting}{REFERENCE_SUFFIX}; set the value or the \
                     secret that holds it, not both"
                ),
            });
        }
        found.push(SecretReference { setting, secret_id });
    }
    Ok(found)
}

/// Settings read through resolved secrets first, then `lookup` (the process
/// environment, or a test's map).
pub struct Settings<L> {
    resolved: HashMap<&'static str, String>,
    lookup: L,
}

impl<L: Fn(&str) -> Option<String>> Settings<L> {
    /// `lookup` with nothing resolved yet.
    pub fn new(lookup: L) -> Self {
        Self {
            resolved: HashMap::new(),
            lookup,
        }
    }

    /// Records a secret's value for its setting and registers it with
    /// [`super::register`], so no log line shows it.
    pub fn insert(&mut self, setting: &'static str, value: String) {
        super::register(&value);
        self.resolved.insert(setting, value);
    }

    /// The setting: a resolved secret's value, or else what `lookup` gives.
    pub fn get(&self, name: &str) -> Option<String> {
        match self.resolved.get(name) {
            Some(value) => Some(value.clone()),
            None => (self.lookup)(name),
        }
    }

    /// The settings whose value came from a secret, sorted (for the start-up log).
    pub fn resolved_names(&self) -> Vec<&'static str> {
        let mut names: Vec<_> = self.resolved.keys().copied().collect();
        names.sort_unstable();
        names
    }

    /// The references `lookup` makes among `settings` (see [`references`]).
    pub fn references(
        &self,
        settings: &[&'static str],
    ) -> Result<Vec<SecretReference>, ConfigError> {
        references(&self.lookup, settings)
    }
}

impl<L> std::fmt::Debug for Settings<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("resolved", &self.resolved.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k: &str| map.get(k).cloned()
    }

    #[test]
    fn a_reference_is_the_setting_with_arn_appended() {
        // GIVEN the bot token named by a secret, the signing secret set directly
        let lookup = env(&[
            (
                "SLACK_BOT_TOKEN_ARN",
                " arn:aws:secretsmanager:eu-west-1:1:secret:bot-AbC ",
            ),
            ("SLACK_SIGNING_SECRET", "direct"),
            ("OPKIT_ENVELOPE_KEY_ARN", ""),
        ]);
        // WHEN the credentials are looked at
        let found = references(
            &lookup,
            &[
                "SLACK_SIGNING_SECRET",
                "SLACK_BOT_TOKEN",
                "OPKIT_ENVELOPE_KEY",
            ],
        )
        .unwrap();
        // THEN only the bot token is a reference (an empty one counts as unset)
        assert_eq!(
            found,
            [SecretReference {
                setting: "SLACK_BOT_TOKEN",
                secret_id: "arn:aws:secretsmanager:eu-west-1:1:secret:bot-AbC".into(),
            }]
        );
        assert_eq!(found[0].variable(), "SLACK_BOT_TOKEN_ARN");
    }

    #[test]
    fn a_value_and_a_reference_together_are_refused() {
        let lookup = env(&[
            ("SLACK_BOT_TOKEN_ARN", "bot"),
            ("SLACK_BOT_TOKEN", "xoxb-1"),
        ]);
        let err = references(&lookup, &["SLACK_BOT_TOKEN"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "SLACK_BOT_TOKEN is invalid: set together with SLACK_BOT_TOKEN_ARN; set the value \
             or the secret that holds it, not both"
        );
    }

    #[test]
    fn resolved_values_win_are_registered_and_never_printed() {
        let mut settings = Settings::new(env(&[("OPKIT_TABLE", "t")]));
        settings.insert("SLACK_BOT_TOKEN", "xoxb-resolved-secret-value".into());
        assert_eq!(
            settings.get("SLACK_BOT_TOKEN").as_deref(),
            Some("xoxb-resolved-secret-value")
        );
        assert_eq!(settings.get("OPKIT_TABLE").as_deref(), Some("t"));
        assert_eq!(settings.get("OPKIT_QUEUE_URL"), None);
        assert_eq!(settings.resolved_names(), ["SLACK_BOT_TOKEN"]);
        assert!(!format!("{settings:?}").contains("xoxb-resolved"));
        assert_eq!(
            super::super::redact("t=xoxb-resolved-secret-value"),
            "t=***"
        );
    }
}
