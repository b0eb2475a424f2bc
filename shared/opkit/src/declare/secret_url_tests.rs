//! A URL kept as a secret (a webhook, whose path is its credential) is never
//! shown: not in a confirmation's prompt, the pending request, the approvals
//! list or a reply (tester F17: the prompt showed host and path).

use super::template::sent_forms;
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
    // THEN the prompt names the host, not the path
    let host = fake.base.trim_start_matches("http://");
    assert!(shown.contains(&format!("call POST {host}")), "{shown}");
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
