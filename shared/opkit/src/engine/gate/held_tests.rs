//! A held request is decided under the gate its prompt showed, or not at all
//! ([`HeldGate::check`]): a command changed while it waited (tightened from a
//! confirmation to an approval, its approvers changed, its gate dropped) is
//! asked again, and nothing runs.

use std::sync::Arc;

use super::*;
use crate::builtin::{self, Policy};
use crate::engine::command::{Command, Ctx, Script};
use crate::store::StateStore;
use crate::testing::{ADMIN, TestBot, pending_id};

fn user(id: &str) -> Caller {
    Caller::user(UserId::parse(id).unwrap())
}

/// Another bot on `t`'s store and clock, with the built-ins under `policy`:
/// the same deployment after its settings changed (a new worker). UADMIN2 is
/// an admin too.
fn redeployed(t: &TestBot, policy: Policy) -> Bot {
    Bot::builder(t.store.clone())
        .clock(Arc::new(t.clock.clone()))
        .admins([
            UserId::parse(ADMIN).unwrap(),
            UserId::parse("UADMIN2").unwrap(),
        ])
        .usergroups(t.groups.clone())
        .script(builtin::script(policy.clone()))
        .script(builtin::links_script(&policy))
        .build()
        .unwrap()
}

fn grants_approved_by(role: Option<&str>) -> Policy {
    Policy {
        grant_approval: role.map(|r| Access::role(Role::parse(r).unwrap())),
        ..Policy::default()
    }
}

async fn holds_ops(bot: &Bot) -> bool {
    let ops = Role::parse("ops").unwrap();
    let ux = UserId::parse("UX").unwrap();
    bot.roles_of(&ux).await.unwrap().contains(&ops)
}

#[tokio::test]
async fn a_grant_asked_under_one_approver_role_is_not_approved_under_another() {
    // GIVEN UAPP holds `approver` and ULEAD `lead`, granted with no approval
    let t = TestBot::new();
    for (who, role) in [("UAPP", "approver"), ("ULEAD", "lead")] {
        let done = t.text(ADMIN, &format!("roles grant <@{who}> {role}")).await;
        assert!(done.contains("granted"), "{done}");
    }
    // AND a grant asked while `roles grant` needs approval by `approver`
    let asked_under = redeployed(&t, grants_approved_by(Some("approver")));
    let caller = Caller::in_channel(
        UserId::parse(ADMIN).unwrap(),
        crate::ids::ChannelId::parse(crate::testing::CHANNEL).unwrap(),
    );
    let prompt = asked_under
        .handle(&Request::new(caller, "roles grant <@UX> ops"))
        .await;
    assert!(
        prompt.text.contains("approval by someone with approver"),
        "{}",
        prompt.text
    );
    let id = pending_id(&prompt);
    // WHEN the deployment now has `lead` approve grants, and a lead approves it
    let now_lead = redeployed(&t, grants_approved_by(Some("lead")));
    let refused = now_lead
        .decide_or_refuse(&user("ULEAD"), &id, Decision::Approve)
        .await
        .unwrap_err();
    // THEN it is refused, naming both gates, and nothing ran
    assert_eq!(
        refused.as_str(),
        "`roles grant` now needs approval by someone with lead since this was asked (it \
         needed approval by someone with approver); nothing was run. Ask again if you \
         still want it."
    );
    assert!(!holds_ops(&now_lead).await);
    // AND where grants need no approval any more, another admin's approval
    // runs nothing either
    let ungated = redeployed(&t, Policy::default());
    let refused = ungated
        .decide_or_refuse(&user("UADMIN2"), &id, Decision::Approve)
        .await
        .unwrap_err();
    assert!(
        refused
            .as_str()
            .contains("now needs no confirmation or approval since this was asked"),
        "{}",
        refused.as_str()
    );
    assert!(!holds_ops(&ungated).await);
    // AND under the gate it was asked under, its approver still approves it
    let done = asked_under
        .decide(&user("UAPP"), &id, Decision::Approve)
        .await;
    assert!(done.text.contains("granted *ops*"), "{}", done.text);
    assert!(holds_ops(&asked_under).await);
}

async fn act(ctx: &mut Ctx<()>) -> Result<Reply, CommandError> {
    ctx.confirm("It would act.")?;
    Ok(Reply::text("acted"))
}

/// A bot on `t`'s store whose `act` command has `gate`.
fn acting(t: &TestBot, gate: Gate) -> Bot {
    let command = Command::new("act").handler(|ctx| Box::pin(act(ctx)));
    let command = match gate {
        Gate::None => command,
        Gate::Confirm => command.confirm(),
        Gate::Approval(access) => command.approval(access),
    };
    Bot::builder(t.store.clone())
        .clock(Arc::new(t.clock.clone()))
        .admins([UserId::parse(ADMIN).unwrap()])
        .script(Script::<()>::new("act").command(command))
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_request_held_for_a_confirmation_is_not_confirmed_once_it_needs_an_approval() {
    // GIVEN `act` is confirmed by its asker, and UOPS asks for it
    let t = TestBot::new();
    let before = acting(&t, Gate::Confirm);
    let prompt = before.handle(&Request::new(user("UOPS"), "act")).await;
    let id = pending_id(&prompt);
    // WHEN `act` is changed to need an admin's approval, and UOPS confirms
    let after = acting(&t, Gate::Approval(Access::role(Role::admin())));
    let refused = after
        .decide_or_refuse(&user("UOPS"), &id, Decision::Confirm)
        .await
        .unwrap_err();
    // THEN the asker's own click does not pass the two-person rule
    assert_eq!(
        refused.as_str(),
        "`act` now needs approval by someone with admin since this was asked (it needed a \
         confirmation); nothing was run. Ask again if you still want it."
    );
    let audit = t.audit(20).await;
    assert!(
        !audit
            .iter()
            .any(|r| matches!(r.outcome, crate::audit::Outcome::Succeeded)),
        "nothing ran: {audit:?}"
    );
    // AND asked again, it is held for the approval
    let again = after.handle(&Request::new(user("UOPS"), "act")).await;
    assert!(
        again.text.contains("needs approval by someone with admin"),
        "{}",
        again.text
    );
}

#[tokio::test]
async fn approvers_written_in_another_order_are_the_same_gate() {
    let t = TestBot::new();
    let gate = |alts: &[&[&str]]| Gate::Approval(Access::parse(alts).unwrap());
    let before = acting(&t, gate(&[&["admin"], &["lead"]]));
    let prompt = before.handle(&Request::new(user("UOPS"), "act")).await;
    let after = acting(&t, gate(&[&["lead"], &["admin"], &["admin"]]));
    let done = after
        .decide(&user(ADMIN), &pending_id(&prompt), Decision::Approve)
        .await;
    assert!(done.text.contains("acted"), "{}", done.text);
}

#[tokio::test]
async fn a_request_held_before_its_gate_was_recorded_is_refused() {
    // GIVEN a pending request as stored before the gate was kept with it
    let t = TestBot::new();
    let bot = acting(&t, Gate::Confirm);
    let prompt = bot.handle(&Request::new(user("UOPS"), "act")).await;
    let id = pending_id(&prompt);
    let stored = t.store.load(PENDING_SCRIPT).await.unwrap();
    let mut saved = stored.value.unwrap();
    let old = saved["requests"][&id].as_object_mut().unwrap();
    assert!(
        old.remove("gate").is_some(),
        "the gate is stored with the request"
    );
    let saved = crate::store::EncodedState::new(PENDING_SCRIPT, saved).unwrap();
    t.store
        .save(PENDING_SCRIPT, &saved, stored.version)
        .await
        .unwrap();
    // WHEN its asker confirms it
    let refused = bot
        .decide_or_refuse(&user("UOPS"), &id, Decision::Confirm)
        .await
        .unwrap_err();
    // THEN it is refused and asked again
    assert!(
        refused
            .as_str()
            .starts_with("This request was held without a record of its gate"),
        "{}",
        refused.as_str()
    );
    // AND cancelling it still works
    let cancelled = bot.decide(&user("UOPS"), &id, Decision::Cancel).await;
    assert!(cancelled.text.contains("withdrew"), "{}", cancelled.text);
}
