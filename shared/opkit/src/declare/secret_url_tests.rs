//! A URL kept as a secret (a webhook, whose path is its credential) is never
//! shown: not in a confirmation's prompt, the pending request, the approvals
//! list or a reply (tester F17: the prompt showed host and path).

use super::scrub::sent_forms;
use super::tests::{Fake, bot, load};
use crate::engine::gate::Decision;

/// The webhook's credential: the path after its host.
const HOOK_PATH: &str = "/services/T0001/B0001/XyZsEcReTpArT123";

#[tokio::test]
async fn a_confirmation_never_shows_the_path_of_a_secret_url() {
    // GIVEN a command that posts to a webhook kept as a secret, and asks first
    let fake = Fake::start().await;
    let hook = format!("{}{HOOK_PATH}", fake.base);
    let file = r#"
[[command]]
name = "notify team"
usage = "<msg…>"
confirm = true
[command.http]
method = "POST"
url = "{{ secret.TEAM_WEBHOOK }}"
body = { text = "{{ msg }}" }
reply = "Sent."
"#;
    let t = bot(&load(file, &[("TEAM_WEBHOOK", &hook)]).unwrap());
    // WHEN it is asked for
    let prompt = t.say("UADMIN", "notify team hi").await;
    let shown = format!("{:?}", prompt);
    // THEN the prompt names the URL by its secret: no host, no path
    assert!(
        shown.contains("`call POST the URL in secret TEAM_WEBHOOK`"),
        "{shown}"
    );
    let host = fake.base.trim_start_matches("http://");
    assert!(!shown.contains(host), "{shown}");
    let pending = t.text("UADMIN", "approvals").await;
    for leak in ["XyZsEcReTpArT123", "/services/T0001"] {
        assert!(!shown.contains(leak), "{leak} in {shown}");
        assert!(!pending.contains(leak), "{leak} in {pending}");
    }
    // AND once confirmed, the webhook gets the call at its path
    let done = t.click("UADMIN", &prompt, Decision::Confirm).await;
    assert!(done.text.as_str().contains("Sent."), "{:?}", done.text);
    assert_eq!(fake.seen().len(), 1);
    assert_eq!(fake.seen()[0].uri, HOOK_PATH);
}

#[test]
fn a_secret_url_is_blanked_by_its_parts_and_a_short_path_is_not() {
    let forms = sent_forms("https://hooks.example.com/services/T0/B0/XyZ%20tok?sig=abcdef123456");
    for part in [
        "/services/T0/B0/XyZ%20tok",
        "/services/T0/B0/XyZ tok",
        "sig=abcdef123456",
    ] {
        assert!(forms.iter().any(|f| f == part), "{part} not in {forms:?}");
    }
    // a path too short to be a credential is left alone, so that `/api` in a
    // reply is not blanked
    let base = sent_forms("https://api.example.com/api");
    assert!(!base.iter().any(|f| f == "/api"), "{base:?}");
    // a secret that is not a URL is blanked as it is, as before
    assert!(sent_forms("plain-token-1234").contains(&"plain-token-1234".to_string()));
}

/// The answer of a service that repeats the path it was asked in `mode`'s form
/// (the tester's svc3.py): a 500 with that form, or for `ok` a 200 naming the
/// path and its last segment.
pub(super) fn echoed(
    mode: &str,
    uri: &axum::http::Uri,
    headers: &axum::http::HeaderMap,
) -> (axum::http::StatusCode, Vec<u8>) {
    use base64::Engine as _;
    use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
    let path = uri.path();
    let last = path
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default();
    let quoted = |s: &str| utf8_percent_encode(s, NON_ALPHANUMERIC).to_string();
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let text = match mode {
        "ok" => {
            let json = serde_json::json!({ "echo": path, "last": last });
            return (axum::http::StatusCode::OK, json.to_string().into_bytes());
        }
        "jsonesc" => serde_json::json!({ "error": "no such hook", "path": path })
            .to_string()
            .replace('/', "\\/"),
        "last" => format!("no such webhook {last}"),
        "upper" => format!("bad path {}", path.to_uppercase()),
        "lowerpct" => format!("bad path {}", quoted(path).to_lowercase()),
        "full" => format!("bad url http://{host}{uri}"),
        "html" => format!("bad path {}", path.replace('/', "&#x2F;")),
        "segs" => format!("bad: {}", path.split('/').collect::<Vec<_>>().join(" ")),
        "b64" => format!(
            "bad: {}",
            base64::engine::general_purpose::STANDARD.encode(path)
        ),
        "dblpct" => format!("bad: {}", quoted(&quoted(path))),
        "nopfx" => format!("bad: {}", &path[1..]),
        "mid" => format!("bad: {}", &path[3..]),
        "rev" => format!("bad: {}", path.chars().rev().collect::<String>()),
        "spaced" => format!("bad: {}", path.replace('/', " / ")),
        "nl" => format!("bad: {}\n{}", &path[..10], &path[10..]),
        other => panic!("no echo mode {other}"),
    };
    (
        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
        text.into_bytes(),
    )
}

/// Every form the tester's service repeated a path in.
const ECHO_MODES: [&str; 15] = [
    "ok", "jsonesc", "last", "upper", "lowerpct", "full", "html", "segs", "b64", "dblpct", "nopfx",
    "mid", "rev", "spaced", "nl",
];

/// The webhook's token as it is, in any case, base64 inside its path, or reversed.
fn leaked(text: &str) -> bool {
    use base64::Engine as _;
    let lower = text.to_ascii_lowercase();
    lower.contains("xyzsecretpart123")
        || lower.contains("321trapterceszyx")
        || text.contains(&base64::engine::general_purpose::STANDARD.encode(HOOK_PATH))
}

#[tokio::test]
async fn a_secret_url_repeated_in_any_form_is_blanked_everywhere() {
    // GIVEN a webhook kept as a secret, and a service that repeats the path it
    // was called at in each form the tester's did (tester 6, G1: `no such
    // webhook XyZsEcReTpArT123` reached the asker, the audit and the log)
    let fake = Fake::start().await;
    let hook = format!("{}{HOOK_PATH}", fake.base);
    let file = r#"
[[command]]
name = "hook try"
usage = "<mode>"
[command.http]
method = "POST"
url = "{{ secret.HOOK }}"
headers = { X-Echo = "{{ mode }}" }
reply = "echo={{ json.echo }} last={{ json.last }}"
"#;
    let t = bot(&load(file, &[("HOOK", &hook)]).unwrap());
    for mode in ECHO_MODES {
        // WHEN the command runs and the service answers in that form
        let reply = t.text("UADMIN", &format!("hook try {mode}")).await;
        // THEN the asker sees the answer without the token
        assert!(!leaked(&reply), "{mode}: {reply}");
        if mode != "ok" {
            assert!(
                reply.starts_with("`hook try` failed: the service answered HTTP 500"),
                "{mode}: {reply}"
            );
        }
        // AND the log's redactor blanks it from the raw answer too
        let (_, raw) = echoed(mode, &HOOK_PATH.parse().unwrap(), &Default::default());
        let logged = crate::secret::redact(&String::from_utf8(raw).unwrap()).into_owned();
        assert!(!leaked(&logged), "{mode}: logged {logged}");
    }
    // the tester's two examples, exactly
    assert_eq!(
        t.text("UADMIN", "hook try last").await,
        "`hook try` failed: the service answered HTTP 500: no such webhook ***"
    );
    assert_eq!(t.text("UADMIN", "hook try ok").await, "echo=*** last=***");
    // AND the audit trail holds no form of it either
    for record in t.audit(50).await {
        let text = format!("{record:?}");
        assert!(!leaked(&text), "{text}");
    }
}

#[tokio::test]
async fn a_token_with_slashes_in_a_path_is_blanked_when_repeated_json_escaped() {
    // GIVEN a base64 token (with `/`) in a URL's path, and a service that
    // escapes `/` as `\/` in its JSON answer (PHP's json_encode)
    let fake = Fake::start().await;
    let file = r#"
[[command]]
name = "tok call"
usage = "<mode>"
[command.http]
url = "{{ env.BASE }}/api/{{ secret.TOK }}/status"
headers = { X-Echo = "{{ mode }}" }
"#;
    let token = "Ab3/Cd4+Ef5/Gh6IjK7";
    let t = bot(&load(file, &[("BASE", &fake.base), ("TOK", token)]).unwrap());
    for mode in [
        "jsonesc", "upper", "lowerpct", "html", "segs", "dblpct", "mid", "rev", "spaced",
    ] {
        // WHEN it repeats the path in that form
        let reply = t.text("UADMIN", &format!("tok call {mode}")).await;
        // THEN no piece of the token is shown
        let lower = reply.to_ascii_lowercase();
        for piece in ["cd4+ef5", "gh6ijk7", "7kji6hg", "cd4%252bef5"] {
            assert!(!lower.contains(piece), "{mode}: {reply}");
        }
    }
    assert_eq!(
        t.text("UADMIN", "tok call jsonesc").await,
        "`tok call` failed: the service answered HTTP 500: {\"error\":\"no such hook\",\"path\":\"\\/api\\/***\\/status\"}"
    );
}

#[test]
fn each_part_of_a_secret_url_that_can_be_a_credential_is_blanked_in_every_form() {
    use crate::secret::blank;
    // the kind: the credential of a webhook is a part of its URL — a path
    // segment (Slack, Discord, Teams), a query value, the password, the host's
    // first label (Pipedream, Lambda function URLs)
    for (url, credentials, words) in [
        (
            "https://hooks.slack.com/services/T0ABCDEFG/B0ABCDEFG/XyZsEcReTpArT1234567890",
            &["T0ABCDEFG", "B0ABCDEFG", "XyZsEcReTpArT1234567890"][..],
            &["services", "hooks.slack.com"][..],
        ),
        (
            "https://discord.com/api/webhooks/123456789012345678/AbC-dEf_GhIjKlMn",
            &["123456789012345678", "AbC-dEf_GhIjKlMn"],
            &["webhooks", "discord.com"],
        ),
        (
            "https://api.example.com/hook?token=abcdEFGH1234&channel=operations",
            &["abcdEFGH1234"],
            &["operations", "channel", "api.example.com"],
        ),
        (
            "https://bot:pa55w0rd-xyz@hooks.example.com/x",
            &["pa55w0rd-xyz"],
            &["hooks.example.com"],
        ),
        (
            "https://eo9f8e7d6c5b4a3f2e1.m.pipedream.net",
            &["eo9f8e7d6c5b4a3f2e1"],
            &["pipedream"],
        ),
        (
            "https://abcdefghij0123456789abcdefghij01.lambda-url.us-east-1.on.aws/",
            &["abcdefghij0123456789abcdefghij01"],
            &["lambda-url", "us-east-1"],
        ),
        // capitalised words and dates stay words (review: blanking ignores case,
        // so `Accounts` taken for a credential blanked "accounts" everywhere)
        (
            "https://api.twilio.com/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages.json",
            &["AC0123456789abcdef0123456789abcdef"],
            &["Accounts", "accounts", "2010-04-01", "Messages.json"],
        ),
    ] {
        let forms = sent_forms(url);
        for credential in credentials {
            let json_path = format!("{{\"p\":\"\\/x\\/{credential}\"}}");
            for shown in [
                credential.to_string(),
                credential.to_ascii_uppercase(),
                credential.to_ascii_lowercase(),
                format!("no such hook {credential}."),
                json_path,
            ] {
                let blanked = blank(&shown, &forms);
                assert!(
                    !blanked
                        .to_ascii_lowercase()
                        .contains(&credential.to_ascii_lowercase()),
                    "{url}: {shown} → {blanked}"
                );
            }
        }
        // AND the words around it stay: they are no credential
        for word in words {
            let text = format!("the {word} answered");
            assert_eq!(blank(&text, &forms), text, "{url}");
        }
    }
}

#[tokio::test]
async fn a_url_kept_as_a_secret_is_named_by_its_secret_in_prompts_and_errors() {
    // GIVEN webhooks kept as a secret whose host is the credential (tester 6,
    // G8: Pipedream's `eo….m.pipedream.net`, Lambda function URLs)
    let file = r#"
[[command]]
name = "hook post"
usage = "<msg…>"
[command.http]
method = "POST"
url = "{{ secret.HOOK }}"
body = { text = "{{ msg }}" }

[[command]]
name = "hook confirm"
usage = "<msg…>"
confirm = true
[command.http]
method = "POST"
url = "{{ secret.HOOK }}"

[[command]]
name = "hook sub"
usage = "<what>"
confirm = true
[command.http]
method = "POST"
url = "{{ secret.HOOK }}/{{ what }}?x=1"
"#;
    let pipedream = "https://eo9f8e7d6c5b4a3f2e1.m.pipedream.net";
    let t = bot(&load(file, &[("HOOK", pipedream)]).unwrap());
    // WHEN a confirmation is asked
    let prompt = t.say("UADMIN", "hook confirm hi").await;
    let sub = t.say("UADMIN", "hook sub web").await;
    // THEN the prompt names it by its secret, and what the template adds
    assert!(
        prompt
            .text
            .as_str()
            .contains("It would `call POST the URL in secret HOOK`"),
        "{}",
        prompt.text
    );
    assert!(
        sub.text
            .as_str()
            .contains("It would `call POST the URL in secret HOOK + /web`"),
        "{}",
        sub.text
    );
    // AND no part of it is in the prompts, `approvals` or the held requests
    let approvals = t.text("UADMIN", "approvals").await;
    let held: serde_json::Value = t.state(crate::engine::gate::PENDING_SCRIPT).await;
    for text in [
        format!("{prompt:?}"),
        format!("{sub:?}"),
        approvals,
        held.to_string(),
    ] {
        for leak in ["eo9f8e7d6c5b4a3f2e1", "pipedream"] {
            assert!(!text.contains(leak), "{leak} in {text}");
        }
    }
    // AND an error names it by its secret, never its host
    let down = "http://127.0.0.1:1/services/T0001/B0001/XyZsEcReTpArT123";
    let t = bot(&load(file, &[("HOOK", down)]).unwrap());
    let failed = t.text("UADMIN", "hook post hi").await;
    assert!(
        failed.starts_with(
            "`hook post` failed: the service at the URL in secret HOOK could not be reached"
        ),
        "{failed}"
    );
    assert!(!failed.contains("127.0.0.1"), "{failed}");
}
