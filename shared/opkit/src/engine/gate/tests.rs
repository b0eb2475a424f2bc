//! Tests of confirmations and approvals, clicked as users click them.

use super::*;
use crate::builtin::Policy;
use crate::slack::Visibility;
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

/// A bot with two gated commands that take free text: `shout <text>` (confirmed)
/// by an admin, and `shout everywhere <text>` (approved by an admin), by anyone.
/// Both ask only for a non-empty text.
fn shouting() -> TestBot {
    use crate::engine::command::{Command, Script};
    async fn shout(ctx: &mut crate::engine::command::Ctx<()>) -> Result<Reply, CommandError> {
        let text = ctx.args.rest(0);
        if text.is_empty() {
            return Err(CommandError::usage("say what to shout"));
        }
        ctx.confirm("It would shout it.")?;
        Ok(Reply::in_channel(crate::slack::UserText::new(
            ctx.args.rest_text(0),
        )))
    }
    let admin = crate::access::Access::role(crate::ids::Role::admin());
    let script = Script::<()>::new("shout")
        .command(
            Command::new("shout")
                .usage("<text>")
                .access(admin.clone())
                .confirm()
                .handler(|ctx| Box::pin(shout(ctx))),
        )
        .command(
            Command::new("shout everywhere")
                .usage("<text>")
                .approval(admin)
                .handler(|ctx| Box::pin(shout(ctx))),
        );
    TestBot::with(|b| {
        b.script(script)
            .admins([crate::ids::UserId::parse("UADMIN2").unwrap()])
    })
}

async fn grants(t: &TestBot) -> usize {
    t.store.all_grants().await.unwrap().len()
}

#[tokio::test]
async fn a_made_up_request_id_is_no_such_request_not_already_handled() {
    // GIVEN a request that was handled, and an id that never was one
    let t = TestBot::new();
    t.say("UADMIN", "roles grant <@UBOB> ops").await;
    let prompt = t.say("UADMIN", "roles revoke <@UBOB> ops").await;
    t.click("UADMIN", &prompt, Decision::Confirm).await;
    let caller = crate::engine::Caller::user(crate::ids::UserId::parse("UADMIN").unwrap());
    // WHEN each is clicked (approve, as the tester's made-up id was)
    let made_up = t
        .bot
        .decide(
            &caller,
            "0190f3a2000070008000000000000000",
            Decision::Approve,
        )
        .await;
    let handled = t.click("UADMIN", &prompt, Decision::Confirm).await;
    // THEN each says what it is
    assert_eq!(
        made_up.text,
        "There is no such request (it may have expired); nothing was run."
    );
    assert_eq!(handled.text, "This request was already handled.");
    // AND the handled one is forgotten once its time is up
    t.advance(super::PENDING_FOR + chrono::Duration::minutes(1));
    t.say("UADMIN", "roles revoke <@UBOB> ops").await;
    t.say("UADMIN", "roles grant <@UCAT> ops").await;
    t.say("UADMIN", "roles revoke <@UCAT> ops").await;
    let state: super::PendingState = t.state(super::PENDING_SCRIPT).await;
    assert!(state.settled.is_empty(), "{:?}", state.settled);
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
        "You cannot approve a request that gives you something; someone else must."
    );
    assert_eq!(
        t.click("UCAROL", &prompt, Decision::Approve).await.text,
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
            Block::Actions { buttons } => buttons[0].confirm.as_ref().map(|c| c.text.to_string()),
            _ => None,
        })
        .expect("a dialog on the first button")
}

#[tokio::test]
async fn prompts_and_outcomes_quote_the_request_on_one_line() {
    let typed = "shout ops\n• `forged` line";
    let shown = "shout ops • ˋforgedˋ line";
    let t = shouting();
    // the confirmation prompt, its dialog, and a withdrawal: the request is one
    // line, followed by the handler's summary and the typed alternative
    let prompt = t.say("UADMIN", typed).await;
    let lines: Vec<&str> = prompt.text.lines().collect();
    assert_eq!(lines.len(), 3, "{}", prompt.text);
    assert!(
        lines[0].starts_with(&format!("Run `{shown}`? Confirm by ")),
        "{}",
        prompt.text
    );
    assert_eq!(lines[1], "It would shout it.");
    assert!(
        lines[2].starts_with("Without buttons: `confirm "),
        "{}",
        lines[2]
    );
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
    let typed = "shout everywhere ops\n• `forged` line";
    let shown = "shout everywhere ops • ˋforgedˋ line";
    let prompt = t.say("UADMIN", typed).await;
    let lines: Vec<&str> = prompt.text.lines().collect();
    assert_eq!(lines.len(), 3, "{}", prompt.text);
    assert!(
        lines[0].starts_with(&format!(
            "<@UADMIN> asks to run `{shown}`. It needs approval"
        )),
        "{}",
        prompt.text
    );
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
    let t = shouting();
    let long_role = "r".repeat(PROMPT_MAX);
    let reply = t
        .say("UADMIN", &format!("shout everywhere {long_role}"))
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

/// The short id a prompt offers for typing (`confirm 1a2b3c4d`).
fn typed_id(prompt: &Reply) -> String {
    let last = prompt.text.lines().last().unwrap();
    let start = last.rfind(' ').unwrap() + 1;
    last[start..].trim_end_matches(['`', '.']).to_string()
}

#[tokio::test]
async fn asking_discards_what_the_handler_changed_and_a_handler_cannot_skip_its_gate() {
    use crate::engine::command::{Command, Script};
    async fn bump(ctx: &mut crate::engine::command::Ctx<u32>) -> Result<Reply, CommandError> {
        ctx.state += 1;
        ctx.confirm(crate::mrkdwn!("It would make it {}.", ctx.state))?;
        Ok(Reply::text(crate::mrkdwn!("now {}", ctx.state)))
    }
    async fn sneaky(ctx: &mut crate::engine::command::Ctx<u32>) -> Result<Reply, CommandError> {
        ctx.state += 100;
        Ok(Reply::text("changed without asking"))
    }
    let script = Script::<u32>::new("counter")
        .command(
            Command::new("bump")
                .usage("[<anything>]")
                .confirm()
                .handler(|ctx| Box::pin(bump(ctx))),
        )
        .command(
            Command::new("sneak")
                .usage("[<anything>]")
                .confirm()
                .handler(|ctx| Box::pin(sneaky(ctx))),
        );
    let t = TestBot::with(|b| b.script(script));
    // GIVEN a handler that changes its state, then asks
    let prompt = t.say("UADMIN", "bump").await;
    assert!(
        prompt.text.contains("\nIt would make it 1.\n"),
        "{}",
        prompt.text
    );
    assert_eq!(t.state::<u32>("counter").await, 0, "asking saved nothing");
    // WHEN it is confirmed THEN it runs once, on the stored state
    let done = t.click("UADMIN", &prompt, Decision::Confirm).await;
    assert!(done.text.ends_with("now 1"), "{}", done.text);
    assert_eq!(t.state::<u32>("counter").await, 1);
    // AND a gated handler that never asks fails and saves nothing
    let reply = t.say("UADMIN", "sneak").await;
    assert!(
        reply.text.starts_with("Something went wrong on my side"),
        "{}",
        reply.text
    );
    assert_eq!(t.state::<u32>("counter").await, 1);
    let pending: PendingState = t.state(PENDING_SCRIPT).await;
    assert!(pending.requests.is_empty());
}

#[tokio::test]
async fn typed_decisions_list_and_settle_requests_as_clicks_do() {
    let t = shouting();
    // GIVEN a confirmation and an approval, both asked by UADMIN
    let mine = t.say("UADMIN", "shout hello").await;
    let theirs = t.say("UADMIN", "shout everywhere hello").await;
    let (mine_id, theirs_id) = (typed_id(&mine), typed_id(&theirs));
    assert_eq!(mine_id.len(), 8);
    // WHEN each lists what waits for them
    let asker = t.text("UADMIN", "approvals").await;
    assert!(asker.starts_with("Waiting for a decision:\n"), "{asker}");
    assert!(
        asker.contains(&format!(
            "• `{mine_id}` you asked to run `shout hello`: waits for confirmation"
        )),
        "{asker}"
    );
    assert!(
        asker.contains(&format!(
            "`{theirs_id}` you asked to run `shout everywhere hello`"
        )),
        "{asker}"
    );
    let approver = t.text("UADMIN2", "approvals").await;
    assert!(
        approver.contains(&format!(
            "• `{theirs_id}` <@UADMIN> asked to run `shout everywhere hello`: waits for approval"
        )),
        "{approver}"
    );
    assert!(
        approver.contains(&format!(
            "• `{mine_id}` <@UADMIN> asked to run `shout hello`"
        )),
        "another admin may confirm it too, as with the button: {approver}"
    );
    assert!(approver.contains("— It would shout it."), "{approver}");
    assert_eq!(
        t.text("UBOB", "approvals").await,
        "Nothing is waiting for you to decide."
    );
    // THEN a typed approval follows the click's rules: not by the asker, not by
    // someone without the role (who learns nothing of it), not with the wrong verb
    assert_eq!(
        t.text("UADMIN", &format!("approve {theirs_id}")).await,
        "You cannot approve your own request."
    );
    assert_eq!(
        t.text("UBOB", &format!("approve {theirs_id}")).await,
        format!(
            "No pending request has the id `{theirs_id}`: it was decided, it expired, or the id \
             is mistyped. `approvals` lists what is waiting for you."
        )
    );
    assert_eq!(
        t.text("UADMIN2", &format!("confirm {theirs_id}")).await,
        format!("`{theirs_id}` waits for an approval: type `approve|deny {theirs_id}`.")
    );
    let refused = t
        .audit(6)
        .await
        .into_iter()
        .filter(|r| r.outcome.name() == "failed")
        .count();
    assert_eq!(refused, 3, "each refusal is audited as a failed command");
    // AND the approver's typed approval runs it as the asker, once
    let approved = t
        .say("UADMIN2", &format!("approve {}", theirs_id.to_uppercase()))
        .await;
    assert!(
        approved
            .text
            .starts_with("<@UADMIN2> approved `shout everywhere hello` at"),
        "{}",
        approved.text
    );
    assert!(!approved.replace_original, "typed: nothing to replace");
    assert_eq!(approved.visibility, Visibility::InChannel);
    assert!(
        t.text("UADMIN2", &format!("approve {theirs_id}"))
            .await
            .starts_with(&format!("No pending request has the id `{theirs_id}`")),
    );
    // AND the asker confirms their own by typing; the click finds it handled
    let confirmed = t.text("UADMIN", &format!("confirm {mine_id}")).await;
    assert!(
        confirmed.starts_with("<@UADMIN> confirmed `shout hello` at"),
        "{confirmed}"
    );
    assert!(confirmed.ends_with("\nhello"), "{confirmed}");
    assert_eq!(
        t.click("UADMIN", &mine, Decision::Confirm).await.text,
        "This request was already handled."
    );
    let decided = t
        .audit(20)
        .await
        .into_iter()
        .filter(|r| r.outcome.name() == "decided")
        .count();
    assert_eq!(decided, 2, "audited as clicks are");
}

#[tokio::test]
async fn a_typed_id_must_be_one_pending_request() {
    let t = shouting();
    for (typed, answer) in [
        (
            "deny",
            "give the id of one pending request (`approvals` lists them). Usage: `deny &lt;id&gt;`",
        ),
        (
            "deny 12",
            "`12` is not a request id: give the id the prompt shows, such as `deny 1a2b3c4d` (`approvals` lists them).",
        ),
        (
            "cancel xyz123",
            "`xyz123` is not a request id: give the id the prompt shows, such as `cancel 1a2b3c4d` (`approvals` lists them).",
        ),
        (
            "approve 0123abcd",
            "No pending request has the id `0123abcd`: it was decided, it expired, or the id is mistyped. `approvals` lists what is waiting for you.",
        ),
    ] {
        assert_eq!(t.text("UADMIN", typed).await, answer, "{typed}");
    }
    // an expired request is no longer there to decide
    let prompt = t.say("UADMIN", "shout late").await;
    t.advance(PENDING_FOR);
    assert!(
        t.text("UADMIN", &format!("confirm {}", typed_id(&prompt)))
            .await
            .starts_with("No pending request has the id")
    );
}

#[tokio::test]
async fn an_approval_prompt_mentions_a_few_beneficiaries_and_counts_the_rest() {
    use crate::engine::command::{Command, Script};
    // GIVEN a command whose handler names seven people who gain from it
    async fn gift(ctx: &mut crate::engine::command::Ctx<()>) -> Result<Reply, CommandError> {
        for n in 1..=7 {
            let user = crate::ids::UserId::parse(&format!("UG{n}")).unwrap();
            ctx.benefits(&user, "it is a gift to you");
        }
        ctx.confirm("It would hand out gifts.")?;
        Ok(Reply::text("gifts handed out"))
    }
    let admin = crate::access::Access::role(crate::ids::Role::admin());
    let script = Script::<()>::new("gifts").command(
        Command::new("gift")
            .approval(admin)
            .handler(|ctx| Box::pin(gift(ctx))),
    );
    let t = TestBot::with(|b| b.script(script));
    // WHEN someone asks for it
    let prompt = t.say("UBOB", "gift").await;
    // THEN the prompt (posted in the channel) mentions the first five, counts
    // the rest, and pings nobody else
    assert!(
        prompt.text.contains(
            "(not the asker nor <@UG1>, <@UG2>, <@UG3>, <@UG4>, <@UG5> and 2 others who would gain)"
        ),
        "{}",
        prompt.text
    );
    assert!(!prompt.text.contains("<@UG6>") && !prompt.text.contains("<@UG7>"));
    // AND the ones not mentioned still may not approve it
    let clicked = t.click("UG7", &prompt, Decision::Approve).await;
    assert_eq!(
        clicked.text,
        "You cannot approve a request that gives you something; someone else must."
    );
}
