//! Sealed envelopes: a job on the queue carries an HMAC-SHA256 of its exact bytes,
//! under a key only the ingress, the expiry pass and the worker hold
//! (`OPKIT_ENVELOPE_KEY`).
//!
//! Sending to the queue is not the same as being allowed to run commands: any
//! principal the account lets send to the queue could otherwise write an envelope
//! naming any caller — an admin — and the worker would run it as them. The worker
//! runs only envelopes it can verify.
//!
//! On the queue a sealed envelope is one JSON object: the job as it was encoded,
//! and the MAC of exactly those bytes, in hexadecimal:
//!
//! ```text
//! {"job":{"v":1,"id":"…","caller":{"user":"U1",…},…},"mac":"3f9c…(64 hex digits)"}
//! ```
//!
//! The MAC is checked over the job's bytes as they appear in the body (not over a
//! re-encoding), in constant time, before anything in the job is read.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// An HMAC-SHA256 tag is 32 bytes.
const TAG_LEN: usize = 32;

/// The key that seals job envelopes. Its `Debug` never shows it.
#[derive(Clone)]
pub struct EnvelopeKey(Vec<u8>);

/// Why a configured envelope key is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeKeyError {
    /// Too short to be a secret.
    #[error("must be at least {min} characters long (it has {len})", min = EnvelopeKey::MIN_LEN)]
    TooShort {
        /// How long it is.
        len: usize,
    },
}

impl EnvelopeKey {
    /// The shortest key accepted, in bytes: 32, as many as the MAC. The template's
    /// generated key has 64 letters and digits.
    pub const MIN_LEN: usize = 32;

    /// A key from its configured text (every byte counts, none is decoded).
    pub fn new(secret: &str) -> Result<Self, EnvelopeKeyError> {
        if secret.len() < Self::MIN_LEN {
            return Err(EnvelopeKeyError::TooShort { len: secret.len() });
        }
        Ok(Self(secret.as_bytes().to_vec()))
    }

    /// A fresh random key (32 bytes from the operating system), for a queue that
    /// lives and dies with one process: `opkit serve`'s in-process queue.
    ///
    /// # Panics
    /// If the operating system has no randomness to give.
    pub fn random() -> Self {
        let mut key = vec![0; Self::MIN_LEN];
        getrandom::fill(&mut key).expect("the operating system's random number generator");
        Self(key)
    }

    fn mac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(&self.0).expect("HMAC accepts keys of any length")
    }

    /// The MAC of `bytes`.
    fn tag(&self, bytes: &[u8]) -> [u8; TAG_LEN] {
        let mut mac = self.mac();
        mac.update(bytes);
        let mut tag = [0; TAG_LEN];
        tag.copy_from_slice(&mac.finalize().into_bytes());
        tag
    }
}

impl fmt::Debug for EnvelopeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EnvelopeKey(***)")
    }
}

/// Why a body is not an authentic envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unsealed {
    /// Not `{"job": …, "mac": "<64 hex digits>"}`: no MAC at all.
    NoMac,
    /// A MAC that is not the key's MAC of the job: forged, or altered after sealing.
    WrongMac,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Sealed<'a> {
    #[serde(borrow)]
    job: &'a RawValue,
    mac: String,
}

/// `job` (a JSON object) sealed with `key`.
pub(crate) fn seal(job: String, key: &EnvelopeKey) -> String {
    let mac = hex::encode(key.tag(job.as_bytes()));
    let job = RawValue::from_string(job).expect("an encoded job is JSON");
    serde_json::to_string(&Sealed { job: &job, mac }).expect("a sealed envelope serialises")
}

/// The job's bytes inside `body`, once its MAC is checked against `key`.
pub(crate) fn open<'a>(body: &'a str, key: &EnvelopeKey) -> Result<&'a str, Unsealed> {
    let sealed: Sealed<'a> = serde_json::from_str(body).map_err(|_| Unsealed::NoMac)?;
    let mut claimed = [0u8; TAG_LEN];
    hex::decode_to_slice(&sealed.mac, &mut claimed).map_err(|_| Unsealed::NoMac)?;
    let job = sealed.job.get();
    if bool::from(key.tag(job.as_bytes()).ct_eq(&claimed)) {
        Ok(job)
    } else {
        Err(Unsealed::WrongMac)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(c: char) -> EnvelopeKey {
        EnvelopeKey::new(&c.to_string().repeat(40)).unwrap()
    }

    #[test]
    fn a_sealed_job_opens_with_its_key_only() {
        let body = seal(r#"{"v":1,"x":"y"}"#.into(), &key('a'));
        assert_eq!(open(&body, &key('a')), Ok(r#"{"v":1,"x":"y"}"#));
        assert_eq!(open(&body, &key('b')), Err(Unsealed::WrongMac));
    }

    #[test]
    fn any_change_to_the_job_or_the_mac_is_refused() {
        let k = key('a');
        let body = seal(r#"{"user":"U1"}"#.into(), &k);
        let tampered = body.replace("U1", "U2");
        assert_eq!(open(&tampered, &k), Err(Unsealed::WrongMac));
        // whitespace is bytes too: the MAC is over the job as sent
        let spaced = body.replace(r#"{"user""#, r#"{ "user""#);
        assert_eq!(open(&spaced, &k), Err(Unsealed::WrongMac));
        let flipped = {
            let at = body.find("\"mac\":\"").unwrap() + 7;
            let c = if &body[at..=at] == "0" { "1" } else { "0" };
            format!("{}{c}{}", &body[..at], &body[at + 1..])
        };
        assert_eq!(open(&flipped, &k), Err(Unsealed::WrongMac));
    }

    #[test]
    fn bodies_without_a_well_formed_mac_are_unsealed() {
        let k = key('a');
        for body in [
            "nope",
            r#"{"v":1,"user":"UADMIN"}"#,
            r#"{"job":{"v":1}}"#,
            r#"{"job":{"v":1},"mac":"abc"}"#,
            r#"{"job":{"v":1},"mac":"zz"}"#,
            r#"{"job":{"v":1},"mac":7}"#,
        ] {
            assert_eq!(open(body, &k), Err(Unsealed::NoMac), "{body}");
        }
        // a second job beside the sealed one is not read past
        let body = seal(r#"{"v":1}"#.into(), &k);
        let doubled = body.replacen('{', r#"{"job":{"v":2},"#, 1);
        assert_eq!(open(&doubled, &k), Err(Unsealed::NoMac));
        let extra = body.replacen('{', r#"{"also":1,"#, 1);
        assert_eq!(open(&extra, &k), Err(Unsealed::NoMac));
    }

    #[test]
    fn keys_are_long_random_and_never_shown() {
        assert_eq!(
            EnvelopeKey::new("short").unwrap_err().to_string(),
            "must be at least 32 characters long (it has 5)"
        );
        let (a, b) = (EnvelopeKey::random(), EnvelopeKey::random());
        assert_ne!(a.0, b.0);
        assert_eq!(a.0.len(), EnvelopeKey::MIN_LEN);
        assert_eq!(format!("{a:?}"), "EnvelopeKey(***)");
        let body = seal("{}".into(), &a);
        assert_eq!(open(&body, &b), Err(Unsealed::WrongMac));
    }
}
