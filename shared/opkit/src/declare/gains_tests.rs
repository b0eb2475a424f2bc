//! `gains`: the user arguments of a declared approval command whose people
//! gain from a request. Like the asker, none of them may approve it: refused at
//! the click, and again when the approved request runs (tester 6, G19).

use super::tests::{Fake, bot, load};
use super::*;
use crate::engine::gate::Decision;
use crate::testing::TestBot;

/// The tester's `t/jit.toml`, with `gains` and the fake service's URL.
fn jit(gains: &str) -> String {
    format!(
        r#"
[[command]]
name = "jit grant"
usage = "<@who> <target>"
describe = "give someone just-in-time access to a database"
access = [["lead"]]
approval = [["lead"]]
{gains}
[command.http]
method = "POST"
url = "{{{{ env.BASE }}}}/jit/{{{{ target }}}}"
body = {{ user = "{{{{ who }}}}" }}
"#
    )
}

/// Three leads, each with a stored grant.
async fn leads(t: &TestBot) {
    for lead in ["ULEAD1", "ULEAD2", "ULEAD3"] {
        let granted = t
            .text("UADMIN", &format!("roles grant <@{lead}> lead"))
            .await;
        assert!(granted.contains("granted *lead*"), "{granted}");
    }
}

#[tokio::test]
async fn the_person_a_request_names_as_gaining_cannot_approve_it() {
    // GIVEN jit grant declaring that <@who> gains, and three leads
    let fake = Fake::start().await;
    let file = jit(r#"gains = ["who"]"#);
    let t = bot(&load(&file, &[("BASE", &fake.base)]).unwrap());
    leads(&t).await;
    // WHEN ULEAD1 asks to give ULEAD2 access
    let prompt = t.say("ULEAD1", "jit grant <@ULEAD2> prod-db").await;
    // THEN the prompt names ULEAD2 as one who may not approve, like a grant's
    assert!(
        prompt
            .text
            .as_str()
            .contains("someone with lead (not the asker nor <@ULEAD2>)"),
        "{}",
        prompt.text.as_str()
    );
    // AND ULEAD2 cannot approve it: nothing is sent, the request still waits
    let refused = t.click("ULEAD2", &prompt, Decision::Approve).await;
    assert_eq!(
        refused.text.as_str(),
        "You cannot approve a request that gives you something; someone else must."
    );
    assert!(fake.seen().is_empty());
    // AND a third lead can
    let done = t.click("ULEAD3", &prompt, Decision::Approve).await;
    assert!(
        done.text.as_str().contains("Done: HTTP 200."),
        "{}",
        done.text.as_str()
    );
    assert_eq!(fake.seen().len(), 1);
    assert_eq!(fake.seen()[0].uri, "/jit/prod-db");
}

#[tokio::test]
async fn the_approved_run_refuses_an_approver_who_gains_as_the_command_is_now() {
    // GIVEN a request held by a version of the file without `gains`
    let fake = Fake::start().await;
    let vars = [("BASE", fake.base.as_str())];
    let before = bot(&load(&jit(""), &vars).unwrap());
    leads(&before).await;
    let prompt = before.say("ULEAD1", "jit grant <@ULEAD2> prod-db").await;
    assert!(!prompt.text.as_str().contains("nor <@ULEAD2>"));
    // WHEN ULEAD2 approves it where the file now says who gains
    let services = Services::http();
    let now = load(&jit(r#"gains = ["who"]"#), &vars).unwrap();
    let after = before.beside(|b| now.add_to(b, &services).unwrap());
    let refused = after.click("ULEAD2", &prompt, Decision::Approve).await;
    // THEN the run refuses: nothing is sent, and the refusal is the whole outcome
    assert!(fake.seen().is_empty());
    let text = refused.text.as_str();
    assert!(
        text.starts_with(
            "<@ULEAD2> may not approve this: `jit grant` names you as its `who`, who \
             gains from it."
        ),
        "{text}"
    );
    assert!(!text.contains("approved `jit grant"), "{text}");
}

#[tokio::test]
async fn without_gains_the_subject_may_approve_as_before() {
    // GIVEN the tester's file as it was (no `gains`)
    let fake = Fake::start().await;
    let t = bot(&load(&jit(""), &[("BASE", &fake.base)]).unwrap());
    leads(&t).await;
    let prompt = t.say("ULEAD1", "jit grant <@ULEAD2> prod-db").await;
    // THEN ULEAD2 is only a lead who is not the asker: the file's author decides
    let done = t.click("ULEAD2", &prompt, Decision::Approve).await;
    assert!(
        done.text.as_str().contains("Done: HTTP 200."),
        "{}",
        done.text.as_str()
    );
}

#[test]
fn gains_names_only_user_arguments_of_an_approval_command() {
    let error = |gains: &str| {
        load(&jit(gains), &[("BASE", "http://127.0.0.1:1")])
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        error(r#"gains = ["whom"]"#),
        "commands.toml:8: `gains`: `whom` is not an argument of this command; `gains` \
         names user arguments (it has: who)"
    );
    assert_eq!(
        error(r#"gains = ["target"]"#),
        "commands.toml:8: `gains`: `<target>` is not a user argument (<@target>); `gains` \
         names user arguments (it has: who)"
    );
    assert_eq!(
        error(r#"gains = ["who", "who"]"#),
        "commands.toml:8: `gains`: `who` is named twice"
    );
    let confirm = jit(r#"gains = ["who"]"#).replace(r#"approval = [["lead"]]"#, "confirm = true");
    assert_eq!(
        load(&confirm, &[("BASE", "http://127.0.0.1:1")])
            .unwrap_err()
            .to_string(),
        "commands.toml:8: `gains` names who may not approve a request: it needs `approval`"
    );
    assert!(load(&jit(r#"gains = ["who"]"#), &[("BASE", "http://x.example")]).is_ok());
}
