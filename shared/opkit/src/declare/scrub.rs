//! What a secret contributes to the scrubber: every form in which it (or a part
//! of it that is a credential on its own) can leave in a request or come back in
//! an answer, to be blanked out of replies, errors, prompts, the audit trail
//! and logs ([`sent_forms`]; matched ignoring ASCII case by
//! [`crate::secret::blank`]).
//!
//! A service does not repeat a URL as it was sent: it names a webhook by its
//! last segment (`no such webhook XyZ…`), logs the path without its leading `/`,
//! escapes `/` as `\/` in JSON (PHP's `json_encode`), upper-cases it, encodes it
//! twice. So a secret is blanked as a whole *and* by each part that is a
//! credential on its own, each in every encoding below:
//!
//! ```text
//! secret (any)          the whole value; its `/`-separated pieces
//! secret that is a URL  + its path (with and without the leading `/`), each
//!                         path segment, the query, each query value, the
//!                         fragment and its pieces, the user name and password,
//!                         and the host's first label when it is the credential
//!                         (`eo9f8e….m.pipedream.net`, `<id>.lambda-url.…`)
//! each of them as it is; percent-encoded (as a query value, as a path, every
//!   character but letters and digits, as a URL parser leaves a query; hex in
//!   either case); percent-encoded twice; as a JSON string (`\/`, `\u002F`);
//!   with `/` as an HTML entity or a space; base64 (standard and URL-safe, with and
//!   without padding); reversed
//! ```
//!
//! A part is blanked on its own only when it can be a credential
//! ([`credential_like`]): [`SECRET_URL_PART_MIN`] characters or more, and not
//! plain words such as `services`, `Accounts` or `2010-04-01` (which would blank
//! ordinary words of every message). The whole secret is always blanked.

use base64::Engine as _;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::template::{COMPONENT, TRUSTED_PATH};

/// The shortest part of a secret that is blanked on its own ([`sent_forms`]):
/// shorter ones (`/`, `api`, `T0`) say nothing of the secret and would blank
/// ordinary words.
pub(crate) const SECRET_URL_PART_MIN: usize = 8;

/// A part of plain words ([`credential_like`]) shorter than this is words
/// (`services`, `lambda-url`, `index.html`), not a credential. A random token
/// that long of letters alone is treated as a credential.
const PLAIN_WORD_MAX: usize = 24;

/// Every form in which `secret` (or a part of it that is a credential on its
/// own) can leave in a request or come back in an answer, longest first, so
/// that no form is blanked half by a shorter one. See the module's table.
pub(crate) fn sent_forms(secret: &str) -> Vec<String> {
    let mut forms = encoded_forms(secret);
    for part in credential_parts(secret) {
        forms.extend(encoded_forms(&part));
    }
    forms.retain(|f| !f.is_empty());
    forms.sort();
    forms.dedup();
    forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
    forms
}

/// Whether `part` of a secret can be a credential on its own: long enough, and
/// not plain words. Plain: every piece between `-`, `_` and `.` a lower-case
/// word, a capitalised one (`Accounts`) or at most 4 digits (`2010-04-01`,
/// `us-east-1`, `v2`). Blanking matches ignoring case, so a capitalised word
/// taken for a credential would blank the word in every message and log line;
/// a random token (`XyZsEcReT1234`, an 18-digit id) is none of these.
fn credential_like(part: &str) -> bool {
    let len = part.chars().count();
    let word = |w: &str| {
        let mut chars = w.chars();
        match chars.next() {
            None => true,
            Some(c) if c.is_ascii_digit() => w.len() <= 4 && w.bytes().all(|b| b.is_ascii_digit()),
            Some(c) if c.is_ascii_alphabetic() => chars.all(|c| c.is_ascii_lowercase()),
            Some(_) => false,
        }
    };
    let plain_words = part.split(['-', '_', '.']).all(word);
    len >= SECRET_URL_PART_MIN && !(plain_words && len < PLAIN_WORD_MAX)
}

/// The parts of `secret` that carry a credential on their own (each as it is
/// in the secret and percent-decoded): see the module's table.
fn credential_parts(secret: &str) -> Vec<String> {
    fn pieces(text: &str, separators: &[char], parts: &mut Vec<String>) {
        parts.extend(
            text.split(separators)
                .filter(|p| credential_like(p))
                .map(str::to_string),
        );
    }
    let mut parts = Vec::new();
    let trimmed = secret.trim();
    match reqwest::Url::parse(trimmed) {
        Ok(url) if url.host_str().is_some() => {
            let path = url.path();
            // The whole path, query and fragment carry the credential even
            // when no one segment is long: a service may echo them whole.
            for whole in [Some(path), url.query(), url.fragment()]
                .into_iter()
                .flatten()
            {
                if whole.chars().count() >= SECRET_URL_PART_MIN {
                    parts.push(whole.to_string());
                    parts.push(whole.trim_start_matches('/').to_string());
                }
            }
            pieces(path, &['/'], &mut parts);
            if let Some(query) = url.query() {
                pieces(query, &['&', '=', ';'], &mut parts);
            }
            if let Some(fragment) = url.fragment() {
                pieces(fragment, &['&', '=', '/', ';'], &mut parts);
            }
            if let Some(password) = url.password()
                && !password.is_empty()
            {
                parts.push(password.to_string());
            }
            if credential_like(url.username()) {
                parts.push(url.username().to_string());
            }
            if let Some(label) = credential_host_label(&url) {
                parts.push(label);
            }
        }
        _ => pieces(trimmed, &['/'], &mut parts),
    }
    // As the URL parser wrote them, and as they were typed into the secret.
    let decoded: Vec<String> = parts
        .iter()
        .filter_map(|p| percent_encoding::percent_decode_str(p).decode_utf8().ok())
        .map(|p| p.into_owned())
        .collect();
    parts.extend(decoded);
    parts
}

/// The first label of a URL's host when it can be the credential: a host name
/// of three labels or more (`eo9f8e7d.m.pipedream.net`,
/// `abc….lambda-url.us-east-1.on.aws`) whose first label is
/// [`credential_like`]; never an IP address.
pub(crate) fn credential_host_label(url: &reqwest::Url) -> Option<String> {
    let labels: Vec<&str> = url.domain()?.split('.').collect();
    let first = labels.first()?;
    (labels.len() >= 3 && credential_like(first)).then(|| (*first).to_string())
}

/// `text` as it is and in each encoding of the module's table.
fn encoded_forms(text: &str) -> Vec<String> {
    /// What a URL parser encodes in a query (WHATWG URL's query percent-encode set).
    const PARSER_QUERY: &AsciiSet = &percent_encoding::CONTROLS
        .add(b' ')
        .add(b'"')
        .add(b'#')
        .add(b'<')
        .add(b'>')
        .add(b'\'');
    let mut forms = vec![text.to_string()];
    for set in [COMPONENT, NON_ALPHANUMERIC, TRUSTED_PATH, PARSER_QUERY] {
        let form: String = utf8_percent_encode(text, set).collect();
        // Encoded twice: `%` becomes `%25` (a proxy that encodes a path again).
        forms.push(utf8_percent_encode(&form, COMPONENT).collect());
        forms.push(form);
    }
    // A JSON string's body, as serde writes it and with `/` escaped as PHP does.
    if let Ok(json) = serde_json::to_string(text) {
        let json = json[1..json.len() - 1].to_string();
        forms.push(json.replace('/', "\\/"));
        forms.push(json.replace('/', "\\u002f"));
        forms.push(json);
    }
    if text.chars().count() < SECRET_URL_PART_MIN {
        return forms;
    }
    if text.contains('/') {
        // `/` as an HTML entity, and the pieces laid out with spaces.
        for entity in ["&#x2f;", "&#47;", "&sol;", " ", " / "] {
            forms.push(text.replace('/', entity));
        }
    }
    for engine in [
        &base64::engine::general_purpose::STANDARD,
        &base64::engine::general_purpose::STANDARD_NO_PAD,
        &base64::engine::general_purpose::URL_SAFE,
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ] {
        forms.push(engine.encode(text));
    }
    forms.push(text.chars().rev().collect());
    forms
}
