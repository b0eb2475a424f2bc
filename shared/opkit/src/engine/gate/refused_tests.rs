//! A confirmed or approved run that is refused did nothing: the refusal is the
//! whole outcome in place of the buttons, never under "@x confirmed …" or
//! "@x approved …" (tester F14 for approvals; tester 6, G11 for confirmations).
//! One rule: a handler's refusal before [`Ctx::confirm`] let it act
//! ([`Ran::Refused`]), and the engine's own refusals as the run starts.
//!
//! [`Ctx::confirm`]: crate::engine::command::Ctx::confirm
//! [`Ran::Refused`]: crate::engine::command::Ran

use std::sync::Mutex;

use super::*;
use crate::access::{Access, Grant};
use crate::engine::command::{Command, Script};
use crate::ids::{Role, UserId};
use crate::store::GrantStore;
use crate::testing::TestBot;

/// `flip` (confirmed, by ops) and `flip approved` (approved by an admin): each
/// binds "the target" to what `target` holds as it runs, then asks; after the
/// gate it fails when the target is `fail`, else answers "Flipped".
async fn flip(
    ctx: &mut crate::engine::command::Ctx<()>,
    target: Arc<Mutex<String>>,
) -> Result<Reply, CommandError> {
    let now = target.lock().unwrap().clone();
    ctx.bind("the target", now.clone())?;
    ctx.confirm("It would flip it.")?;
    if now == "fail" {
        return Err(CommandError::user("The switch did not answer."));
    }
    Ok(Reply::text("Flipped."))
}

fn flipping(target: Arc<Mutex<String>>) -> TestBot {
    let other = target.clone();
    let script = Script::<()>::new("flip")
        .command(
            Command::new("flip")
                .access(Access::role(Role::parse("ops").unwrap()))
                .confirm()
                .handler(move |ctx| Box::pin(flip(ctx, target.clone()))),
        )
        .command(
            Command::new("flip approved")
                .approval(Access::role(Role::admin()))
                .handler(move |ctx| Box::pin(flip(ctx, other.clone()))),
        );
    TestBot::with(|b| b.script(script).admins([UserId::parse("UADMIN2").unwrap()]))
}

async fn give_ops(t: &TestBot, user: &str) -> Grant {
    let grant = Grant {
        id: uuid::Uuid::now_v7(),
        user: UserId::parse(user).unwrap(),
        role: Role::parse("ops").unwrap(),
        granted_by: None,
        granted_at: t.now(),
        starts_at: None,
        ends_at: None,
        channel: None,
        start_announced: true,
    };
    t.store.put_grant(&grant).await.unwrap();
    grant
}

const CHANGED: &str = "The target changed since this request was asked: it was a, it is \
                       now b. Nothing was run; ask again if you still want it.";

#[tokio::test]
async fn a_confirm_refused_by_a_changed_binding_says_only_the_refusal() {
    // GIVEN `flip` asked while its target is `a`
    let target = Arc::new(Mutex::new("a".to_string()));
    let t = flipping(target.clone());
    give_ops(&t, "UOPS").await;
    let prompt = t.say("UOPS", "flip").await;
    // WHEN the target changes, then it is confirmed
    *target.lock().unwrap() = "b".into();
    let refused = t.click("UOPS", &prompt, Decision::Confirm).await;
    // THEN the refusal alone replaces the buttons: nobody "confirmed" anything
    assert_eq!(refused.text.as_str(), CHANGED);
    assert!(refused.replace_original);
}

#[tokio::test]
async fn an_approval_refused_by_a_changed_binding_says_only_the_refusal() {
    let target = Arc::new(Mutex::new("a".to_string()));
    let t = flipping(target.clone());
    let prompt = t.say("UBOB", "flip approved").await;
    *target.lock().unwrap() = "b".into();
    let refused = t.click("UADMIN2", &prompt, Decision::Approve).await;
    assert_eq!(refused.text.as_str(), CHANGED);
}

#[tokio::test]
async fn a_run_that_acted_and_failed_keeps_the_decision_above_its_failure() {
    // GIVEN a target that fails only once the gate let it act
    let target = Arc::new(Mutex::new("fail".to_string()));
    let t = flipping(target);
    give_ops(&t, "UOPS").await;
    let prompt = t.say("UOPS", "flip").await;
    let failed = t.click("UOPS", &prompt, Decision::Confirm).await;
    // THEN who confirmed it is said, above what went wrong
    let text = failed.text.as_str();
    assert!(text.starts_with("<@UOPS> confirmed `flip` at "), "{text}");
    assert!(text.ends_with("\nThe switch did not answer."), "{text}");
}

#[tokio::test]
async fn an_asker_who_lost_access_is_refused_alone() {
    // GIVEN UOPS asked `flip` with ops, then lost ops
    let target = Arc::new(Mutex::new("a".to_string()));
    let t = flipping(target);
    give_ops(&t, "UOPS").await;
    let prompt = t.say("UOPS", "flip").await;
    let user = UserId::parse("UOPS").unwrap();
    t.store
        .remove_grants(&user, &Role::parse("ops").unwrap())
        .await
        .unwrap();
    // WHEN they confirm it
    let refused = t.click("UOPS", &prompt, Decision::Confirm).await;
    // THEN the refusal alone
    assert_eq!(
        refused.text.as_str(),
        "<@UOPS> may no longer run `flip` (it needs ops); nothing was run."
    );
}
