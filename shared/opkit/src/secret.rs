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
    // Kept in lower case: [`redact`] ignores case anyway.
    let secret = secret.to_ascii_lowercase();
    let mut known = KNOWN.write().unwrap_or_else(|e| e.into_inner());
    if !known.contains(&secret) {
        known.push(secret);
        // The longest first, so that no secret is blanked half by a shorter
        // one (a webhook's last segment is registered beside its whole path).
        known.sort_by_key(|k| std::cmp::Reverse(k.len()));
    }
}

/// `text` with every registered secret replaced by `***`, ignoring ASCII case
/// ([`blank`]).
pub fn redact(text: &str) -> std::borrow::Cow<'_, str> {
    let known = KNOWN.read().unwrap_or_else(|e| e.into_inner());
    let lower = text.to_ascii_lowercase();
    if !known.iter().any(|k| lower.contains(k.as_str())) {
        return std::borrow::Cow::Borrowed(text);
    }
    std::borrow::Cow::Owned(blank(text, &known))
}

/// `text` with each of `forms` (tried in the order given: put the longest
/// first) replaced by `***`, ignoring ASCII case: a service that repeats a
/// credential may upper- or lower-case it (`/SERVICES/…/XYZSECRET`, `%2f` for
/// `%2F`), and a random credential in another case is no less the credential.
/// An empty form is skipped.
pub fn blank(text: &str, forms: &[String]) -> String {
    let mut out = text.to_string();
    for form in forms.iter().filter(|f| !f.is_empty()) {
        let needle = form.to_ascii_lowercase();
        // Lower-casing ASCII keeps every byte offset, so a match in `lower` is
        // the same range of `out`.
        let lower = out.to_ascii_lowercase();
        if !lower.contains(needle.as_str()) {
            continue;
        }
        let mut blanked = String::with_capacity(out.len());
        let mut last = 0;
        for (at, _) in lower.match_indices(needle.as_str()) {
            blanked.push_str(&out[last..at]);
            blanked.push_str("***");
            last = at + needle.len();
        }
        blanked.push_str(&out[last..]);
        out = blanked;
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
        assert_eq!(
            redact("GET /WEATHER?APPID=S3CR3T-VALUE-FOR-REDACT-TEST"),
            "GET /WEATHER?APPID=***",
            "a service that upper-cases what it repeats"
        );
    }

    #[test]
    fn blank_ignores_case_and_takes_the_longest_form_first() {
        let forms = [
            "/services/T0/XyZsEcReT123".to_string(),
            "XyZsEcReT123".to_string(),
        ];
        assert_eq!(
            blank("a /SERVICES/t0/xyzsecret123 b XYZSECRET123 c", &forms),
            "a *** b *** c"
        );
        // non-ASCII text around a match keeps its characters
        assert_eq!(blank("é xyzsecret123 ü", &forms), "é *** ü");
        assert_eq!(blank("nothing", &[String::new()]), "nothing");
    }
}
