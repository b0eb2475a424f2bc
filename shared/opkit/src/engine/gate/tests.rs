//! Tests of confirmations and approvals, clicked as users click them.

use super::*;
use crate::builtin::Policy;
use crate::store::{AuditLog, GrantStore};
use crate::testing::TestBot;

fn approvals() -> TestBot {
    let policy = Policy {
        grant_approval: Some(crate::access::Access::role(crate::ids::Role::admin())),
        ..Policy::default()
    };
    TestBot::with_policy(policy, |b| {
        b.admins([crate::ids::UserId::parse("UADMIN2").unwrap()])
    })
}

async fn grants(t: &TestBot) -> usize {
    t.store.all_grants().await.unwrap().len()
}

#[tokio::test]
async fn a_confirmed_request_runs_once_however_often_it_is_clicked() {
    let t = TestBot::new();
    t.say("UADMIN", "roles grant <@UBOB> ops").await;
    let prompt = t.say("UADMIN", "roles revoke <@UBOB> ops").await;
    assert_eq!(prompt.visibility, Visibility::Ephemeral);
    let first = t.click("UADMIN", &prompt, Decision::Confirm).await;
    assert!(first.replace_original);
    let second = t.click("UADMIN", &prompt, Decision::Confirm).await;
    assert_eq!(second.text, "This request was already handled.");
    assert!(!second.replace_original, "the outcome stays on screen");
    let audit = t.store.recent(None, 20).await.unwrap();
    let ran = audit
        .iter()
        .filter(|r| r.outcome == Outcome::Succeeded && r.command.as_deref() == Some("roles revoke"))
        .count();
    assert_eq!(ran, 1);
    assert!(audit.iter().any(|r| r.outcome.name() == "held"));
}

#[tokio::test]
async fn another_allowed_user_may_confirm_but_an_unauthorized_one_changes_nothing() {
    let t = TestBot::new();
    t.say("UADMIN", "roles grant <@UBOB> ops").await;
    let prompt = t.say("UADMIN", "roles revoke <@UBOB> ops").await;
    let refused = t.click("UBOB", &prompt, Decision::Confirm).await;
    assert_eq!(refused.text, "You cannot confirm this: it needs admin.");
    assert_eq!(grants(&t).await, 1, "nothing ran");
    t.say("UADMIN", "roles grant <@UCAROL> admin").await;
    let done = t.click("UCAROL", &prompt, Decision::Confirm).await;
    assert!(
        done.text
            .starts_with("<@UCAROL> confirmed `roles revoke <@UBOB> ops`"),
        "{}",
        done.text
    );
    assert!(
        done.text
            .ends_with("<@UCAROL> revoked *ops* from <@UBOB>, ending the grant until revoked."),
        "runs as the clicker: {}",
        done.text
    );
}

#[tokio::test]
async fn cancel_and_expiry_run_nothing() {
    let t = TestBot::new();
    t.say("UADMIN", "roles grant <@UBOB> ops").await;
    let prompt = t.say("UADMIN", "roles revoke <@UBOB> ops").await;
    let cancelled = t.click("UADMIN", &prompt, Decision::Cancel).await;
    assert_eq!(
        cancelled.text,
        "<@UADMIN> withdrew `roles revoke <@UBOB> ops`; nothing was run."
    );
    let late = t.say("UADMIN", "roles revoke <@UBOB> ops").await;
    t.advance(PENDING_FOR);
    let expired = t.click("UADMIN", &late, Decision::Confirm).await;
    assert!(
        expired.text.starts_with("This request expired at"),
        "{}",
        expired.text
    );
    assert!(expired.replace_original);
    assert_eq!(grants(&t).await, 1);
    assert_eq!(
        t.click("UADMIN", &late, Decision::Confirm).await.text,
        "This request was already handled."
    );
}

#[tokio::test]
async fn approval_needs_a_second_person_with_the_role() {
    let t = approvals();
    let prompt = t.say("UADMIN", "roles grant <@UBOB> ops for 2h").await;
    assert_eq!(prompt.visibility, Visibility::InChannel);
    assert!(
        prompt.text.contains("needs approval by someone with admin"),
        "{}",
        prompt.text
    );
    assert_eq!(grants(&t).await, 0, "nothing granted yet");
    assert_eq!(
        t.click("UADMIN", &prompt, Decision::Approve).await.text,
        "You cannot approve your own request."
    );
    assert_eq!(
        t.click("UBOB", &prompt, Decision::Approve).await.text,
        "You cannot approve this: it needs admin."
    );
    assert_eq!(grants(&t).await, 0);
    let approved = t.click("UADMIN2", &prompt, Decision::Approve).await;
    assert!(
        approved
            .text
            .starts_with("<@UADMIN2> approved `roles grant <@UBOB> ops for 2h` at"),
        "{}",
        approved.text
    );
    assert!(
        approved.text.contains("<@UADMIN> granted *ops* to <@UBOB>"),
        "runs as the asker: {}",
        approved.text
    );
    assert_eq!(grants(&t).await, 1);
    let audit = t.store.recent(None, 30).await.unwrap();
    assert!(audit.iter().any(|r| r.outcome
        == Outcome::Decided {
            decision: "approved".into(),
            by: crate::ids::UserId::parse("UADMIN2").unwrap()
        }));
    let approval = audit
        .iter()
        .find(|r| r.outcome.name() == "decided")
        .unwrap();
    let held = audit.iter().find(|r| r.outcome.name() == "held").unwrap();
    assert_eq!(
        approval.correlation_id, held.correlation_id,
        "one trail per request"
    );
}

#[tokio::test]
async fn an_approver_may_deny_and_the_asker_may_withdraw() {
    let t = approvals();
    let prompt = t.say("UADMIN", "roles grant <@UBOB> ops").await;
    let denied = t.click("UADMIN2", &prompt, Decision::Deny).await;
    assert_eq!(
        denied.text,
        "<@UADMIN2> denied `roles grant <@UBOB> ops`; nothing was run."
    );
    let prompt = t.say("UADMIN", "roles grant <@UBOB> ops").await;
    assert_eq!(
        t.click("UBOB", &prompt, Decision::Deny).await.text,
        "You cannot deny this: it needs admin."
    );
    let withdrawn = t.click("UADMIN", &prompt, Decision::Deny).await;
    assert!(withdrawn.text.contains("withdrew"), "{}", withdrawn.text);
    assert_eq!(grants(&t).await, 0);
}

/// The text of the "are you sure?" dialog on a prompt's first button.
fn dialog(prompt: &Reply) -> String {
    prompt
        .blocks
        .iter()
        .find_map(|b| match b {
            Block::Actions { buttons } => buttons[0].confirm.as_ref().map(|c| c.text.clone()),
            _ => None,
        })
        .expect("a dialog on the first button")
}

#[tokio::test]
async fn prompts_and_outcomes_quote_the_request_on_one_line() {
    let typed = "roles revoke <@UBOB> ops\n• `forged` line";
    let shown = "roles revoke <@UBOB> ops • ˋforgedˋ line";
    let t = TestBot::new();
    // the confirmation prompt, its dialog, and a withdrawal
    let prompt = t.say("UADMIN", typed).await;
    assert!(
        prompt
            .text
            .starts_with(&format!("Run `{shown}`? Confirm by ")),
        "{}",
        prompt.text
    );
    assert!(!prompt.text.contains('\n'), "{}", prompt.text);
    assert_eq!(dialog(&prompt), format!("Run `{shown}`"));
    let withdrawn = t.click("UADMIN", &prompt, Decision::Cancel).await;
    assert_eq!(
        withdrawn.text,
        format!("<@UADMIN> withdrew `{shown}`; nothing was run.")
    );
    // the line that says who confirmed what
    let prompt = t.say("UADMIN", typed).await;
    let done = t.click("UADMIN", &prompt, Decision::Confirm).await;
    let first = done.text.lines().next().unwrap();
    assert!(
        first.starts_with(&format!("<@UADMIN> confirmed `{shown}` at ")),
        "{}",
        done.text
    );
    // the approval prompt and a denial
    let t = approvals();
    let typed = "roles grant <@UBOB> ops\n• `forged` line";
    let shown = "roles grant <@UBOB> ops • ˋforgedˋ line";
    let prompt = t.say("UADMIN", typed).await;
    assert!(
        prompt.text.starts_with(&format!(
            "<@UADMIN> asks to run `{shown}`. It needs approval"
        )),
        "{}",
        prompt.text
    );
    assert!(!prompt.text.contains('\n'), "{}", prompt.text);
    assert_eq!(dialog(&prompt), format!("Approve `{shown}`"));
    let denied = t.click("UADMIN2", &prompt, Decision::Deny).await;
    assert_eq!(
        denied.text,
        format!("<@UADMIN2> denied `{shown}`; nothing was run.")
    );
}

#[tokio::test]
async fn padding_cannot_hide_what_an_approval_grants() {
    // the defect: 3,200 line breaks pushed `admin` past the cut prompt
    let t = approvals();
    let typed = format!("roles grant <@UBOB> {} admin", "\n".repeat(3_200));
    let prompt = t.say("UADMIN", &typed).await;
    assert!(
        prompt
            .text
            .starts_with("<@UADMIN> asks to run `roles grant <@UBOB> admin`."),
        "{}",
        prompt.text
    );
    assert_eq!(dialog(&prompt), "Approve `roles grant <@UBOB> admin`");
    // what runs is what was shown
    let done = t.click("UADMIN2", &prompt, Decision::Approve).await;
    assert!(
        done.text.contains("granted *admin* to <@UBOB>"),
        "{}",
        done.text
    );
}

#[tokio::test]
async fn a_request_too_long_to_show_in_full_is_refused_not_cut() {
    let t = approvals();
    let long_role = "r".repeat(PROMPT_MAX);
    let reply = t
        .say("UADMIN", &format!("roles grant <@UBOB> {long_role}"))
        .await;
    assert!(
        reply
            .text
            .starts_with("This request is too long to show in full for approval"),
        "{}",
        reply.text
    );
    assert!(
        reply
            .blocks
            .iter()
            .all(|b| !matches!(b, Block::Actions { .. }))
    );
    let pending: PendingState = t.state(PENDING_SCRIPT).await;
    assert!(pending.requests.is_empty());
    let trail = t.audit(1).await;
    assert_eq!(trail[0].outcome.name(), "failed");
}

#[tokio::test]
async fn a_confirm_button_cannot_settle_an_approval() {
    let t = approvals();
    let prompt = t.say("UADMIN", "roles grant <@UBOB> ops").await;
    assert_eq!(
        t.click("UADMIN2", &prompt, Decision::Confirm).await.text,
        "That button does not belong to this request."
    );
    assert_eq!(grants(&t).await, 0);
}
