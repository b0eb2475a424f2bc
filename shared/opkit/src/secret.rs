//! Secrets: a string that never prints, the registry that blanks credentials out
//! of every log line, and credential settings read from AWS Secrets Manager
//! ([`references`]; [`secrets_manager`] with the `secretsmanager` feature).

pub mod references;
#[cfg(feature = "secretsmanager")]
pub mod secrets_manager;

use std::fmt;

/// A secret string that never prints (API keys; Slack's own secrets have their own types).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The secret itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl Secret {
    /// Wraps a secret and registers it with [`register`], so that it is blanked
    /// out of every log line written through [`crate::telemetry`].
    pub fn registered(s: impl Into<String>) -> Self {
        let secret = Self::new(s);
        register(secret.expose());
        secret
    }
}

/// Secrets shorter than this are not registered: blanking a short common string
/// would mangle logs, and no real credential is this short.
pub const MIN_REGISTERED_LEN: usize = 8;

static KNOWN: std::sync::RwLock<Vec<String>> = std::sync::RwLock::new(Vec::new());

/// Remembers `secret` so that [`redact`] (and so every log line Opkit's logging
/// set-up writes) replaces it with `***`. Configuration registers each credential
/// it reads (the signing secret, the bot and app tokens, pack keys), once, at
/// start-up.
pub fn register(secret: &str) {
    if secret.len() < MIN_REGISTERED_LEN {
        return;
    }
    let mut known = KNOWN.write().unwrap_or_else(|e| e.into_inner());
    if !known.iter().any(|k| k == secret) {
        known.push(secret.to_string());
    }
}

/// `text` with every registered secret replaced by `***`.
pub fn redact(text: &str) -> std::borrow::Cow<'_, str> {
    let known = KNOWN.read().unwrap_or_else(|e| e.into_inner());
    let mut out = std::borrow::Cow::Borrowed(text);
    for secret in known.iter() {
        if out.contains(secret.as_str()) {
            out = std::borrow::Cow::Owned(out.replace(secret.as_str(), "***"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_secrets_are_blanked_and_short_ones_ignored() {
        let s = Secret::registered("s3cr3t-value-for-redact-test");
        register("abc");
        assert_eq!(
            redact("GET /weather?appid=s3cr3t-value-for-redact-test&q=abc failed"),
            "GET /weather?appid=***&q=abc failed"
        );
        assert_eq!(format!("{s:?}"), "Secret(***)");
        assert!(matches!(
            redact("nothing here"),
            std::borrow::Cow::Borrowed(_)
        ));
    }
}
