//! [`Ctx::bind`](crate::engine::command::Ctx::bind): a confirmed or approved
//! request acts on what its prompt named, or is refused when that changed.

use std::sync::{Arc, Mutex};

use super::*;
use crate::engine::command::{Command, Ctx, Script};
use crate::slack::UserText;
use crate::testing::TestBot;

/// What the handlers resolve at run time (a channel's default, say), and how
/// often they acted.
#[derive(Clone, Default)]
struct World {
    target: Arc<Mutex<String>>,
    acted: Arc<Mutex<Vec<String>>>,
}

impl World {
    fn point_at(&self, target: &str) {
        *self.target.lock().unwrap() = target.to_string();
    }

    fn acted(&self) -> Vec<String> {
        self.acted.lock().unwrap().clone()
    }
}

async fn point(ctx: &mut Ctx<()>, world: World) -> Result<Reply, CommandError> {
    let target = world.target.lock().unwrap().clone();
    ctx.bind("the target", target.clone())?;
    ctx.confirm(mrkdwn!("It would point at {}.", UserText::new(&target)))?;
    let asked = ctx
        .bound_when_asked("the target")
        .unwrap_or("-")
        .to_string();
    world.acted.lock().unwrap().push(target.clone());
    Ok(Reply::text(mrkdwn!(
        "pointed at {} (asked: {})",
        UserText::new(&target),
        UserText::new(&asked)
    )))
}

/// `point` (confirmed by anyone), `point approved` (approved by an admin),
/// `point now` (no gate): each binds the world's target.
fn pointing(world: &World) -> TestBot {
    let command = |form: &str| {
        let world = world.clone();
        Command::new(form).handler(move |ctx| Box::pin(point(ctx, world.clone())))
    };
    let admin = Access::role(Role::admin());
    let script = Script::<()>::new("point")
        .command(command("point").confirm())
        .command(command("point approved").approval(admin))
        .command(command("point now"));
    TestBot::with(|b| b.script(script))
}

#[tokio::test]
async fn an_input_unchanged_since_the_prompt_runs_and_is_readable_as_asked() {
    let world = World::default();
    world.point_at("prod");
    let t = pointing(&world);
    let prompt = t.say("UOPS", "point").await;
    assert!(
        prompt.text.contains("It would point at prod."),
        "{}",
        prompt.text
    );
    assert!(world.acted().is_empty(), "asking acts on nothing");
    let done = t.click("UOPS", &prompt, Decision::Confirm).await.text;
    assert!(done.contains("pointed at prod (asked: prod)"), "{done}");
    assert_eq!(world.acted(), ["prod"]);
}

#[tokio::test]
async fn an_input_changed_since_the_prompt_is_refused_and_nothing_runs() {
    let world = World::default();
    world.point_at("prod");
    let t = pointing(&world);
    // GIVEN a confirmation asked for prod, and an approval asked for prod
    let confirm = t.say("UOPS", "point").await;
    let approve = t.say("UOPS", "point approved").await;
    // WHEN the target changes before the clicks
    world.point_at("tools");
    // THEN neither acts on tools: each says what changed, then and now
    for (prompt, decision, who) in [
        (&confirm, Decision::Confirm, "UOPS"),
        (&approve, Decision::Approve, "UADMIN"),
    ] {
        let done = t.click(who, prompt, decision).await.text;
        assert!(
            done.contains(
                "The target changed since this request was asked: it was prod, it is now \
                 tools. Nothing was run; ask again if you still want it."
            ),
            "{done}"
        );
    }
    assert!(world.acted().is_empty(), "{:?}", world.acted());
    // AND the refusal is in the audit trail as the run's failure
    let failed = t
        .audit(20)
        .await
        .into_iter()
        .filter(
            |r| matches!(&r.outcome, Outcome::Failed { error } if error.contains("changed since")),
        )
        .count();
    assert_eq!(failed, 2);
    // AND asked again, the request names the new target and runs on it
    let again = t.say("UOPS", "point").await;
    assert!(
        again.text.contains("It would point at tools."),
        "{}",
        again.text
    );
    let done = t.click("UOPS", &again, Decision::Confirm).await.text;
    assert!(done.contains("pointed at tools (asked: tools)"), "{done}");
}

#[tokio::test]
async fn the_bindings_are_kept_with_the_held_request_and_a_command_without_gate_ignores_them() {
    let world = World::default();
    world.point_at("prod");
    let t = pointing(&world);
    t.say("UOPS", "point").await;
    let held: PendingState = t.state(PENDING_SCRIPT).await;
    let pending = held.requests.values().next().unwrap();
    assert_eq!(
        pending.bound.get("the target").map(String::as_str),
        Some("prod")
    );
    // A command without a gate runs at once: nothing is bound, nothing compared
    let now = t.text("UOPS", "point now").await;
    assert_eq!(now, "pointed at prod (asked: -)");
}

/// Binds the target unless it is `unbound`: a command that came to resolve its
/// request through something else.
async fn point_if_bound(ctx: &mut Ctx<()>, world: World) -> Result<Reply, CommandError> {
    let target = world.target.lock().unwrap().clone();
    if target != "unbound" {
        ctx.bind("the target", target.clone())?;
    }
    ctx.confirm("It would point.")?;
    world.acted.lock().unwrap().push(target);
    Ok(Reply::text("pointed"))
}

#[tokio::test]
async fn a_confirmed_run_that_no_longer_binds_what_its_prompt_bound_runs_nothing() {
    // GIVEN a request asked while it bound its target to prod
    let world = World::default();
    world.point_at("prod");
    let handler_world = world.clone();
    let script = Script::<()>::new("point").command(
        Command::new("point")
            .confirm()
            .handler(move |ctx| Box::pin(point_if_bound(ctx, handler_world.clone()))),
    );
    let t = TestBot::with(|b| b.script(script));
    let prompt = t.say("UOPS", "point").await;
    // WHEN the confirmed run resolves it without binding the target
    world.point_at("unbound");
    let done = t.click("UOPS", &prompt, Decision::Confirm).await.text;
    // THEN nothing acts, and the refusal names what the prompt showed
    assert!(
        done.contains(
            "This request no longer acts on the target its prompt showed (prod): the \
             command changed since it was asked. Nothing was run"
        ),
        "{done}"
    );
    assert!(world.acted().is_empty(), "{:?}", world.acted());
}
