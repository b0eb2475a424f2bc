//! Slack request verification (v0, HMAC-SHA256): any headers and body are refused
//! or accepted without a panic, and a body is accepted only with its own signature.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use opkit::clock::ManualClock;
use opkit::slack::{SigningSecret, Verifier, sign};

const NOW: i64 = 1_800_000_000;

fuzz_target!(|data: &[u8]| {
    let secret = SigningSecret::new("8f742231b10e8888abcd99yyyzzz85a5");
    let verifier = Verifier::new(secret.clone(), Arc::new(ManualClock::at_unix(NOW)));
    // The input is "<timestamp>\n<signature>\n<body>"; missing parts are missing headers.
    let mut parts = data.splitn(3, |b| *b == b'\n');
    let timestamp = parts.next().and_then(|t| std::str::from_utf8(t).ok());
    let signature = parts.next().and_then(|s| std::str::from_utf8(s).ok());
    let body = parts.next().unwrap_or_default();
    if verifier.verify(timestamp, signature, body).is_ok() {
        let ts: i64 = timestamp.unwrap().trim().parse().unwrap();
        assert_eq!(signature, Some(sign(&secret, ts, body).as_str()));
    }
    // A genuine signature over this body is always accepted.
    let genuine = sign(&secret, NOW, body);
    assert!(verifier.verify(Some(&NOW.to_string()), Some(&genuine), body).is_ok());
});
