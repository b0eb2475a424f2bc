//! The one check of the Slack credentials a deployment is configured with
//! ([`signing_secret`], [`bot_token`]), asked by [`crate::config::Config`] — so by
//! the ingress, the worker, the expiry function and every `opkit` command, from
//! the environment or from Secrets Manager (`…_ARN`, resolved before the check).
//!
//! | setting | refused (start-up fails, naming it) | warned (logged at start-up) |
//! |---|---|---|
//! | `SLACK_SIGNING_SECRET` | under [`MIN_SIGNING_SECRET_LEN`] characters; a Slack token (`xox…`, `xapp-`) | — |
//! | `SLACK_BOT_TOKEN` | another kind of Slack token: user (`xoxp-`), app-level (`xapp-`), refresh (`xoxe-`) | not starting with `xoxb-` (or `xoxe.xoxb-`, rotated) |
//! | `SLACK_APP_TOKEN` | not starting with `xapp-` ([`crate::slack::AppToken::parse`]) | — |
//!
//! Slack's signing secrets are 32 characters (Slack app → Basic Information →
//! App Credentials; the SDKs take them as given, only refusing an empty one): a
//! shorter value is a typo or a placeholder, and one of a few characters makes
//! forging signatures a matter of guessing. Bot tokens start `xoxb-` ("Token
//! types", docs.slack.dev; `xoxe.xoxb-` once token rotation is on). A value
//! without a known prefix is only warned about: the stack creates its secrets
//! holding a random placeholder until the real token is put in (infra/DEPLOY.md).
//! No message shows the value.

use crate::slack::{BotToken, SigningSecret};

/// The fewest characters a signing secret may have. Slack's have 32.
pub const MIN_SIGNING_SECRET_LEN: usize = 16;

/// Why a credential is refused. Never shows the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialError {
    /// A signing secret shorter than [`MIN_SIGNING_SECRET_LEN`].
    #[error(
        "{len} characters is too short for a signing secret (at least {MIN_SIGNING_SECRET_LEN}; \
         Slack's have 32: Slack app > Basic Information > App Credentials > Signing Secret)"
    )]
    TooShort {
        /// Its length, in characters.
        len: usize,
    },
    /// A Slack token where another kind of credential belongs.
    #[error("this is a Slack {kind} (`{prefix}…`), not {expected}")]
    WrongKind {
        /// What it is (`user token`).
        kind: &'static str,
        /// Its prefix.
        prefix: &'static str,
        /// What was expected (`a bot token (`xoxb-…`)`).
        expected: &'static str,
    },
}

/// Slack's token prefixes, most specific first, and what each one is.
const TOKEN_KINDS: [(&str, &str); 6] = [
    ("xoxe.xoxb-", "bot token"),
    ("xoxe.xoxp-", "user token"),
    ("xoxb-", "bot token"),
    ("xoxp-", "user token"),
    ("xapp-", "app-level token"),
    ("xoxe-", "refresh token"),
];

/// What kind of Slack token `value` is, by its prefix.
fn token_kind(value: &str) -> Option<(&'static str, &'static str)> {
    TOKEN_KINDS
        .iter()
        .find(|(prefix, _)| value.starts_with(prefix))
        .copied()
}

/// `SLACK_SIGNING_SECRET`, checked: at least [`MIN_SIGNING_SECRET_LEN`]
/// characters, and not a Slack token pasted in the wrong place.
pub fn signing_secret(value: &str) -> Result<SigningSecret, CredentialError> {
    if let Some((prefix, kind)) = token_kind(value) {
        return Err(CredentialError::WrongKind {
            kind,
            prefix,
            expected: "a signing secret (Basic Information > App Credentials)",
        });
    }
    let len = value.chars().count();
    if len < MIN_SIGNING_SECRET_LEN {
        return Err(CredentialError::TooShort { len });
    }
    Ok(SigningSecret::new(value))
}

/// `SLACK_BOT_TOKEN`, checked: refused when it is another kind of Slack token;
/// with a warning for the log when it has no bot token's prefix.
pub fn bot_token(value: &str) -> Result<(BotToken, Option<&'static str>), CredentialError> {
    let warning = match token_kind(value) {
        Some((_, "bot token")) => None,
        Some((prefix, kind)) => {
            return Err(CredentialError::WrongKind {
                kind,
                prefix,
                expected: "a bot token (`xoxb-…`: OAuth & Permissions > Bot User OAuth Token)",
            });
        }
        None => Some(
            "SLACK_BOT_TOKEN does not start with `xoxb-` as Slack's bot tokens do: \
             Slack will refuse it if it is still the stack's placeholder \
             (put the Bot User OAuth Token in: infra/DEPLOY.md)",
        ),
    };
    Ok((BotToken::new(value), warning))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_signing_secret_is_refused_with_its_length_and_slacks() {
        // GIVEN the tester's one-character secret, and one just under the minimum
        for (value, len) in [("x", 1), ("0123456789abcde", 15)] {
            // WHEN checked THEN refused, saying how long it is and should be
            let err = signing_secret(value).unwrap_err();
            assert_eq!(err, CredentialError::TooShort { len });
            assert_eq!(
                err.to_string(),
                format!(
                    "{len} characters is too short for a signing secret (at least 16; Slack's \
                     have 32: Slack app > Basic Information > App Credentials > Signing Secret)"
                )
            );
        }
        // AND Slack's own example secret, and 16 characters, are taken
        assert!(signing_secret("8f742231b10e8888abcd99yyyzzz85a5").is_ok());
        assert!(signing_secret("0123456789abcdef").is_ok());
    }

    #[test]
    fn a_token_in_the_wrong_setting_is_refused_without_showing_it() {
        for (value, kind) in [
            ("xoxb-1234-5678-abcdefghijklmnop", "bot token"),
            ("xapp-1-A0-1234-abcdefabcdef", "app-level token"),
        ] {
            let err = signing_secret(value).unwrap_err().to_string();
            assert!(err.starts_with(&format!("this is a Slack {kind}")), "{err}");
            assert!(!err.contains("1234"), "the value is not shown: {err}");
        }
        for (value, kind) in [
            ("xoxp-1234-5678-abcdef", "user token"),
            ("xoxe.xoxp-1-abcdef", "user token"),
            ("xapp-1-A0-1234-abcdef", "app-level token"),
            ("xoxe-1-abcdef", "refresh token"),
        ] {
            let err = bot_token(value).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("this is a Slack {kind}"))
                    && err.ends_with(
                        "not a bot token (`xoxb-…`: OAuth & Permissions > Bot User OAuth Token)"
                    ),
                "{err}"
            );
            assert!(!err.contains("abcdef"), "the value is not shown: {err}");
        }
    }

    #[test]
    fn a_bot_token_without_its_prefix_is_taken_with_a_warning() {
        assert_eq!(bot_token("xoxb-1-2-abc").unwrap().1, None);
        assert_eq!(bot_token("xoxe.xoxb-1-abc").unwrap().1, None);
        // The stack's placeholder: 64 random letters and digits.
        let placeholder = "Q".repeat(64);
        let warning = bot_token(&placeholder).unwrap().1.expect("a warning");
        assert!(warning.contains("`xoxb-`"), "{warning}");
    }
}
