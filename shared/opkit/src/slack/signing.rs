//! Verifying that a request really comes from Slack (signing version `v0`).
//!
//! Slack signs every request with the app's signing secret:
//!
//! ```text
//! X-Slack-Request-Timestamp: 1531420618
//! X-Slack-Signature:         v0=hex(HMAC-SHA256(secret, "v0:" + timestamp + ":" + raw body))
//! ```
//!
//! The raw body is the bytes exactly as received (after any base64 decoding done by
//! API Gateway), not a re-encoding of the parsed form. A [`Verifier`] checks the
//! timestamp against an injected [`Clock`] so that replayed requests are refused, and
//! compares signatures in constant time.

use std::fmt;
use std::sync::Arc;

use chrono::Duration;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::clock::Clock;

/// The header that carries the request's Unix timestamp in seconds.
pub const TIMESTAMP_HEADER: &str = "X-Slack-Request-Timestamp";
/// The header that carries the request's signature.
pub const SIGNATURE_HEADER: &str = "X-Slack-Signature";

/// The only signature version Slack uses today.
const VERSION_PREFIX: &str = "v0=";
/// An HMAC-SHA256 tag is 32 bytes.
const TAG_LEN: usize = 32;

type HmacSha256 = Hmac<Sha256>;

/// The Slack app's signing secret. Its `Debug` output never shows the secret.
#[derive(Clone)]
pub struct SigningSecret(String);

impl SigningSecret {
    /// Wraps the secret as shown in the Slack app's "Basic Information" page.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    fn mac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(self.0.as_bytes()).expect("HMAC accepts keys of any length")
    }
}

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningSecret(***)")
    }
}

/// Why a request was refused as not coming from Slack.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The timestamp header is absent.
    #[error("the X-Slack-Request-Timestamp header is missing; is this request really from Slack?")]
    MissingTimestamp,
    /// The timestamp header is not a whole number of seconds.
    #[error("the X-Slack-Request-Timestamp header is not a Unix time in seconds")]
    MalformedTimestamp,
    /// The request is older than the tolerance: a replay, or a slow clock here.
    #[error(
        "the request was signed {age_secs} s ago, more than the {tolerance_secs} s allowed \
         (a replayed request, or this server's clock is wrong)"
    )]
    StaleTimestamp {
        /// How old the request is, in seconds.
        age_secs: i64,
        /// The largest accepted age, in seconds.
        tolerance_secs: i64,
    },
    /// The request is dated in the future beyond the tolerance: a forgery, or a fast clock here.
    #[error(
        "the request is dated {ahead_secs} s in the future, more than the {tolerance_secs} s \
         allowed (a forged request, or this server's clock is wrong)"
    )]
    FutureTimestamp {
        /// How far ahead of our clock the request is, in seconds.
        ahead_secs: i64,
        /// The largest accepted skew, in seconds.
        tolerance_secs: i64,
    },
    /// The signature header is absent.
    #[error("the X-Slack-Signature header is missing; is this request really from Slack?")]
    MissingSignature,
    /// The signature does not use the `v0` scheme.
    #[error("the X-Slack-Signature header does not start with `v0=`; unsupported signing version")]
    UnsupportedVersion,
    /// The signature is not 64 hexadecimal digits after `v0=`.
    #[error("the X-Slack-Signature header is not `v0=` followed by 64 hexadecimal digits")]
    MalformedSignature,
    /// The signature is well formed but does not match.
    #[error(
        "the X-Slack-Signature does not match the request \
         (wrong signing secret configured, or the body was altered)"
    )]
    SignatureMismatch,
}

/// Checks Slack's request signatures against a signing secret and a clock.
#[derive(Clone)]
pub struct Verifier {
    secret: SigningSecret,
    clock: Arc<dyn Clock>,
    tolerance: Duration,
}

impl Verifier {
    /// How far a request's timestamp may be from now, as Slack recommends.
    pub const DEFAULT_TOLERANCE: Duration = Duration::minutes(5);

    /// A verifier with the default tolerance of five minutes.
    pub fn new(secret: SigningSecret, clock: Arc<dyn Clock>) -> Self {
        Self {
            secret,
            clock,
            tolerance: Self::DEFAULT_TOLERANCE,
        }
    }

    /// Changes how far a request's timestamp may be from now, in either direction.
    pub fn with_tolerance(mut self, tolerance: Duration) -> Self {
        self.tolerance = tolerance;
        self
    }

    /// Accepts the request if it is fresh and signed with our secret.
    ///
    /// `timestamp_header` and `signature_header` are the values of
    /// [`TIMESTAMP_HEADER`] and [`SIGNATURE_HEADER`]; `body` is the raw request body.
    pub fn verify(
        &self,
        timestamp_header: Option<&str>,
        signature_header: Option<&str>,
        body: &[u8],
    ) -> Result<(), VerifyError> {
        let timestamp = timestamp_header.ok_or(VerifyError::MissingTimestamp)?;
        self.check_fresh(parse_timestamp(timestamp)?)?;
        let tag = parse_signature(signature_header.ok_or(VerifyError::MissingSignature)?)?;
        signed_mac(&self.secret, timestamp, body)
            .verify_slice(&tag)
            .map_err(|_| VerifyError::SignatureMismatch)
    }

    fn check_fresh(&self, timestamp: i64) -> Result<(), VerifyError> {
        let tolerance_secs = self.tolerance.num_seconds();
        // Saturating: a hostile timestamp near i64::MIN/MAX must not overflow.
        let age_secs = self.clock.now().timestamp().saturating_sub(timestamp);
        if age_secs > tolerance_secs {
            return Err(VerifyError::StaleTimestamp {
                age_secs,
                tolerance_secs,
            });
        }
        if age_secs < -tolerance_secs {
            return Err(VerifyError::FutureTimestamp {
                ahead_secs: age_secs.saturating_neg(),
                tolerance_secs,
            });
        }
        Ok(())
    }
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("secret", &self.secret)
            .field("tolerance", &self.tolerance)
            .finish_non_exhaustive()
    }
}

/// The `X-Slack-Signature` value Slack would send for `body` at `timestamp` (`v0=...`).
pub fn sign(secret: &SigningSecret, timestamp: i64, body: &[u8]) -> String {
    let tag = signed_mac(secret, &timestamp.to_string(), body).finalize();
    format!("{VERSION_PREFIX}{}", hex::encode(tag.into_bytes()))
}

/// The MAC over Slack's basestring `v0:{timestamp}:{body}`, with the timestamp as sent.
fn signed_mac(secret: &SigningSecret, timestamp: &str, body: &[u8]) -> HmacSha256 {
    let mut mac = secret.mac();
    mac.update(b"v0:");
    mac.update(timestamp.as_bytes());
    mac.update(b":");
    mac.update(body);
    mac
}

fn parse_timestamp(header: &str) -> Result<i64, VerifyError> {
    // Only plain digits: `i64::from_str` would also accept a sign.
    if header.is_empty() || !header.bytes().all(|b| b.is_ascii_digit()) {
        return Err(VerifyError::MalformedTimestamp);
    }
    header.parse().map_err(|_| VerifyError::MalformedTimestamp)
}

fn parse_signature(header: &str) -> Result<Vec<u8>, VerifyError> {
    let hex_tag = header
        .strip_prefix(VERSION_PREFIX)
        .ok_or(VerifyError::UnsupportedVersion)?;
    let tag = hex::decode(hex_tag).map_err(|_| VerifyError::MalformedSignature)?;
    if tag.len() != TAG_LEN {
        return Err(VerifyError::MalformedSignature);
    }
    Ok(tag)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    // Slack's published example ("Verifying requests from Slack").
    const SLACK_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    const SLACK_TIMESTAMP: i64 = 1_531_420_618;
    const SLACK_SIGNATURE: &str =
        "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
    const SLACK_BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";

    fn secret() -> SigningSecret {
        SigningSecret::new(SLACK_SECRET)
    }

    fn verifier_at(unix: i64) -> Verifier {
        Verifier::new(secret(), Arc::new(ManualClock::at_unix(unix)))
    }

    fn verify_example(
        verifier: &Verifier,
        timestamp: Option<&str>,
        signature: Option<&str>,
    ) -> Result<(), VerifyError> {
        verifier.verify(timestamp, signature, SLACK_BODY.as_bytes())
    }

    #[test]
    fn slacks_published_example_verifies() {
        // GIVEN Slack's example request, checked at the moment it was signed
        assert_eq!(SLACK_BODY.len(), 362);
        let verifier = verifier_at(SLACK_TIMESTAMP);
        // WHEN it is verified
        let result = verify_example(&verifier, Some("1531420618"), Some(SLACK_SIGNATURE));
        // THEN it is accepted
        assert_eq!(result, Ok(()));
    }

    #[test]
    fn sign_reproduces_slacks_published_signature() {
        // GIVEN Slack's example secret, timestamp and body
        // WHEN we sign them
        let signature = sign(&secret(), SLACK_TIMESTAMP, SLACK_BODY.as_bytes());
        // THEN we get Slack's signature
        assert_eq!(signature, SLACK_SIGNATURE);
    }

    #[test]
    fn tampered_body_is_a_mismatch() {
        // GIVEN Slack's example with one character of the body changed
        let tampered = SLACK_BODY.replace("roadrunner", "wilecoyote");
        // WHEN it is verified
        let result = verifier_at(SLACK_TIMESTAMP).verify(
            Some("1531420618"),
            Some(SLACK_SIGNATURE),
            tampered.as_bytes(),
        );
        // THEN it is refused
        assert_eq!(result, Err(VerifyError::SignatureMismatch));
    }

    #[test]
    fn wrong_secret_is_a_mismatch() {
        // GIVEN a verifier configured with another secret
        let verifier = Verifier::new(
            SigningSecret::new("not-the-secret"),
            Arc::new(ManualClock::at_unix(SLACK_TIMESTAMP)),
        );
        // WHEN Slack's example is verified
        let result = verify_example(&verifier, Some("1531420618"), Some(SLACK_SIGNATURE));
        // THEN it is refused
        assert_eq!(result, Err(VerifyError::SignatureMismatch));
    }

    #[test]
    fn non_utf8_body_is_signed_and_verified_as_bytes() {
        // GIVEN a body that is not UTF-8, signed with our secret
        let body = [0xff, 0xfe, b'x', 0x00, 0xc3];
        let signature = sign(&secret(), 1_000, &body);
        // WHEN it is verified
        let result = verifier_at(1_000).verify(Some("1000"), Some(&signature), &body);
        // THEN it is accepted
        assert_eq!(result, Ok(()));
    }

    #[test]
    fn missing_timestamp_is_refused() {
        let result = verify_example(&verifier_at(SLACK_TIMESTAMP), None, Some(SLACK_SIGNATURE));
        assert_eq!(result, Err(VerifyError::MissingTimestamp));
    }

    #[test]
    fn non_numeric_timestamps_are_refused() {
        // GIVEN a verifier
        let verifier = verifier_at(SLACK_TIMESTAMP);
        for bad in [
            "",
            "abc",
            "1531420618.5",
            "+1531420618",
            " 1531420618",
            "99999999999999999999",
        ] {
            // WHEN the timestamp header is not plain seconds
            let result = verify_example(&verifier, Some(bad), Some(SLACK_SIGNATURE));
            // THEN it is refused as malformed
            assert_eq!(
                result,
                Err(VerifyError::MalformedTimestamp),
                "timestamp {bad:?}"
            );
        }
    }

    #[test]
    fn request_older_than_five_minutes_is_stale() {
        // GIVEN our clock is 5 minutes and 1 second past the request
        let verifier = verifier_at(SLACK_TIMESTAMP + 301);
        // WHEN Slack's (correctly signed) example is verified
        let result = verify_example(&verifier, Some("1531420618"), Some(SLACK_SIGNATURE));
        // THEN it is refused as stale
        assert_eq!(
            result,
            Err(VerifyError::StaleTimestamp {
                age_secs: 301,
                tolerance_secs: 300
            })
        );
    }

    #[test]
    fn request_more_than_five_minutes_ahead_is_from_the_future() {
        // GIVEN our clock is 5 minutes and 1 second before the request
        let verifier = verifier_at(SLACK_TIMESTAMP - 301);
        // WHEN Slack's example is verified
        let result = verify_example(&verifier, Some("1531420618"), Some(SLACK_SIGNATURE));
        // THEN it is refused as dated in the future
        assert_eq!(
            result,
            Err(VerifyError::FutureTimestamp {
                ahead_secs: 301,
                tolerance_secs: 300
            })
        );
    }

    #[test]
    fn request_exactly_at_the_tolerance_is_accepted_both_ways() {
        for now in [SLACK_TIMESTAMP + 300, SLACK_TIMESTAMP - 300] {
            let result =
                verify_example(&verifier_at(now), Some("1531420618"), Some(SLACK_SIGNATURE));
            assert_eq!(result, Ok(()), "clock at {now}");
        }
    }

    #[test]
    fn tolerance_can_be_tightened() {
        // GIVEN a verifier that allows only 10 seconds of skew
        let verifier = verifier_at(SLACK_TIMESTAMP + 11).with_tolerance(Duration::seconds(10));
        // WHEN an 11-second-old request arrives
        let result = verify_example(&verifier, Some("1531420618"), Some(SLACK_SIGNATURE));
        // THEN it is stale
        assert!(matches!(result, Err(VerifyError::StaleTimestamp { .. })));
    }

    #[test]
    fn extreme_timestamp_does_not_overflow() {
        // GIVEN a clock far before 1970 and the largest representable timestamp
        let verifier = verifier_at(-8_000_000_000_000);
        // WHEN it is verified
        let result = verify_example(
            &verifier,
            Some(&i64::MAX.to_string()),
            Some(SLACK_SIGNATURE),
        );
        // THEN it is refused without panicking
        assert!(matches!(
            result,
            Err(VerifyError::FutureTimestamp {
                ahead_secs: i64::MAX,
                ..
            })
        ));
    }

    #[test]
    fn missing_signature_is_refused() {
        let result = verify_example(&verifier_at(SLACK_TIMESTAMP), Some("1531420618"), None);
        assert_eq!(result, Err(VerifyError::MissingSignature));
    }

    #[test]
    fn signature_without_v0_prefix_is_refused() {
        // GIVEN the right digest under another version tag
        let v1 = SLACK_SIGNATURE.replacen("v0=", "v1=", 1);
        // WHEN it is verified
        let result = verify_example(&verifier_at(SLACK_TIMESTAMP), Some("1531420618"), Some(&v1));
        // THEN the version is refused
        assert_eq!(result, Err(VerifyError::UnsupportedVersion));
    }

    #[test]
    fn non_hex_signature_is_malformed() {
        let bad = format!("v0={}", "zz".repeat(32));
        let result = verify_example(
            &verifier_at(SLACK_TIMESTAMP),
            Some("1531420618"),
            Some(&bad),
        );
        assert_eq!(result, Err(VerifyError::MalformedSignature));
    }

    #[test]
    fn wrong_length_signatures_are_malformed() {
        // GIVEN Slack's signature cut short, padded, or empty
        let short = &SLACK_SIGNATURE[..SLACK_SIGNATURE.len() - 2];
        let long = format!("{SLACK_SIGNATURE}00");
        for bad in [short, long.as_str(), "v0="] {
            // WHEN it is verified
            let result =
                verify_example(&verifier_at(SLACK_TIMESTAMP), Some("1531420618"), Some(bad));
            // THEN it is malformed, not a mismatch
            assert_eq!(
                result,
                Err(VerifyError::MalformedSignature),
                "signature {bad:?}"
            );
        }
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let verifier = verifier_at(0);
        assert_eq!(format!("{:?}", secret()), "SigningSecret(***)");
        assert!(!format!("{verifier:?}").contains(SLACK_SECRET));
    }
}
