//! A confirmed or approved declared call sends exactly the request its prompt
//! was asked for, or nothing (tester 6, G2 and G2b): the bind compared only the
//! shown, redacted target (`call POST ***` for a webhook kept as a secret), and
//! never the query, headers or body. Each test asks on one bot and decides on
//! another beside it (same store and clock): a second process, with other
//! settings, secrets or version of the file.

use super::tests::{Fake, load};
use super::{Declared, Services};
use crate::engine::gate::{Decision, PENDING_SCRIPT};
use crate::testing::TestBot;

const HOOK_FILE: &str = r#"
[[command]]
name = "hook confirm"
usage = "<msg…>"
confirm = true
[command.http]
method = "POST"
url = "{{ secret.HOOK }}"
body = { text = "{{ msg }}" }
reply = "Sent."
"#;

/// A bot beside `t` with `declared`'s commands.
fn beside(t: &TestBot, declared: &Declared) -> TestBot {
    let services = Services::http();
    t.beside(|b| declared.add_to(b, &services).unwrap())
}

fn bot(declared: &Declared) -> TestBot {
    super::tests::bot(declared)
}

/// The refusal of a click whose request changed: named, not shown, and alone
/// (not under "@x confirmed …": tester 6, G11).
fn refused_unshown(text: &str) {
    assert!(
        text.starts_with(
            "What the call sends (its URL with the query, headers, body or payload) changed \
             since this request was asked (what it was is not shown: it may hold a secret). \
             Nothing was run"
        ),
        "{text}"
    );
}

#[tokio::test]
async fn a_webhook_kept_as_a_secret_is_bound_though_its_prompt_shows_none_of_it() {
    // GIVEN `hook confirm hi` asked while HOOK is one webhook
    let asked_at = Fake::start().await;
    let other = Fake::start().await;
    let hook = format!("{}/services/T0001/B0001/XyZsEcReTpArT123", asked_at.base);
    let t = bot(&load(HOOK_FILE, &[("HOOK", &hook)]).unwrap());
    // WHEN it is confirmed where HOOK is another host, port and path (tester:
    // `HOOK=http://localhost:8796/attacker/collects/everything`), or the same
    // host's other webhook
    for now in [
        format!("{}/attacker/collects/everything", other.base),
        format!("{}/services/T0002/B0666/OtherChannelHook99", asked_at.base),
    ] {
        let prompt = t.say("UADMIN", "hook confirm hi").await;
        let clicker = beside(&t, &load(HOOK_FILE, &[("HOOK", &now)]).unwrap());
        let refused = clicker.click("UADMIN", &prompt, Decision::Confirm).await;
        // THEN it is refused, and neither webhook got anything
        refused_unshown(refused.text.as_str());
        assert!(asked_at.seen().is_empty() && other.seen().is_empty());
        // the refusal shows no secret
        assert!(!refused.text.as_str().contains("OtherChannelHook99"));
    }
    // AND the webhook it was asked for gets it when nothing changed
    let prompt = t.say("UADMIN", "hook confirm hi").await;
    let done = beside(&t, &load(HOOK_FILE, &[("HOOK", &hook)]).unwrap())
        .click("UADMIN", &prompt, Decision::Confirm)
        .await;
    assert!(done.text.as_str().contains("Sent."), "{}", done.text);
    assert_eq!(asked_at.seen().len(), 1);
}

#[tokio::test]
async fn the_held_request_keeps_a_digest_never_the_secret() {
    let fake = Fake::start().await;
    let hook = format!("{}/services/T0001/B0001/XyZsEcReTpArT123", fake.base);
    let t = bot(&load(HOOK_FILE, &[("HOOK", &hook)]).unwrap());
    t.say("UADMIN", "hook confirm hi").await;
    let held: serde_json::Value = t.state(PENDING_SCRIPT).await;
    let text = held.to_string();
    assert!(
        text.contains("unshown:"),
        "the digest is kept with the request: {text}"
    );
    for leak in ["XyZsEcReTpArT123", "/services/T0001"] {
        assert!(!text.contains(leak), "{leak} in {text}");
    }
}

#[tokio::test]
async fn a_secret_in_the_path_is_bound() {
    // GIVEN a tenant's secret in the path (tester: asked with TENANT=acme…,
    // confirmed with TENANT=globex… ran against the other tenant)
    let fake = Fake::start().await;
    let file = r#"
[[command]]
name = "svc restart"
usage = "<svc>"
confirm = true
[command.http]
method = "POST"
url = "{{ env.BASE }}/tenants/{{ secret.TENANT }}/services/{{ svc }}/restart"
"#;
    let base = fake.base.as_str();
    let t = bot(&load(file, &[("BASE", base), ("TENANT", "acme-prod-1234")]).unwrap());
    let prompt = t.say("UOPS", "svc restart web").await;
    assert!(
        prompt
            .text
            .as_str()
            .contains("/tenants/***/services/web/restart"),
        "{}",
        prompt.text
    );
    let other = load(file, &[("BASE", base), ("TENANT", "globex-prod-9876")]).unwrap();
    let refused = beside(&t, &other)
        .click("UOPS", &prompt, Decision::Confirm)
        .await;
    refused_unshown(refused.text.as_str());
    assert!(fake.seen().is_empty());
}

#[tokio::test]
async fn the_query_headers_and_body_are_bound() {
    // GIVEN a dry run asked (tester: `?dry_run=true`, body {mode="check"}
    // confirmed ran `?dry_run=false&drop=all` with {mode="drop-and-restore"})
    let fake = Fake::start().await;
    let restore = |query: &str, mode: &str, auth: &str| {
        format!(
            r#"
[[command]]
name = "db restore"
usage = "<db>"
confirm = true
[command.http]
method = "POST"
url = "{{{{ env.BASE }}}}/dbs/{{{{ db }}}}/restore?{query}"
headers = {{ Authorization = "{auth}" }}
body = {{ mode = "{mode}" }}
"#
        )
    };
    let base = fake.base.as_str();
    let asked = restore("dry_run=true", "check", "Bearer {{ secret.T }}");
    let t = bot(&load(&asked, &[("BASE", base), ("T", "tok-1-abcdefgh")]).unwrap());
    for (what, file, token) in [
        (
            "the query",
            restore("dry_run=false&drop=all", "check", "Bearer {{ secret.T }}"),
            "tok-1-abcdefgh",
        ),
        (
            "the body",
            restore("dry_run=true", "drop-and-restore", "Bearer {{ secret.T }}"),
            "tok-1-abcdefgh",
        ),
        (
            "a header (another secret in it)",
            restore("dry_run=true", "check", "Bearer {{ secret.T }}"),
            "tok-2-ijklmnop",
        ),
    ] {
        // WHEN the request's `what` changed between the ask and the click
        let prompt = t.say("UOPS", "db restore main").await;
        let clicker = beside(&t, &load(&file, &[("BASE", base), ("T", token)]).unwrap());
        let refused = clicker.click("UOPS", &prompt, Decision::Confirm).await;
        // THEN nothing is sent
        refused_unshown(refused.text.as_str());
        assert!(fake.seen().is_empty(), "{what}: {:?}", fake.seen());
    }
    // AND the request asked for is sent when nothing changed
    let prompt = t.say("UOPS", "db restore main").await;
    let same = load(&asked, &[("BASE", base), ("T", "tok-1-abcdefgh")]).unwrap();
    beside(&t, &same)
        .click("UOPS", &prompt, Decision::Confirm)
        .await;
    assert_eq!(fake.seen().len(), 1);
    assert_eq!(fake.seen()[0].uri, "/dbs/main/restore?dry_run=true");
}
