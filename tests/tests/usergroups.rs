//! Roles from Slack user groups on the deployed path: `roles link` through the
//! ingress and the worker, the link in DynamoDB on the emulator, members from the
//! fake Slack's `usergroups.users.list`, the minute-long cache on the manual clock.
//! Run through `bash infra/test.sh` (it starts the emulator).

use std::sync::{Arc, Mutex};

use opkit::audit::Outcome;
use opkit::groups::{FAILED_LOOKUP_TTL, LINKS_SCRIPT, MEMBERSHIP_TTL, RoleLinks};
use opkit::store::{AuditLog, StateStore};
use opkit_tests::faults::{FaultyStore, Op};
use opkit_tests::serverless::{ADMIN, Stack};
use opkit_tests::{CannedResponse, RecordedBody};

const LIST: &str = "usergroups.users.list";
const ONCALL: &str = "<!subteam^S0ONCALL1|@ops-oncall>";
/// `queue kick` needs admin or ops; with nobody in line, an allowed caller is
/// told so before any confirmation.
const KICK: &str = "queue kick perf <@UZED>";
const ALLOWED: &str = "Nobody is in line for *perf*.";
const DENIED: &str = "Sorry, you need admin, or ops to run `queue kick`.";

/// A stack whose Slack has `S0ONCALL1` = {UAL}, with ops linked to it.
async fn linked(stack: &Stack) {
    stack.slack.set_usergroup("S0ONCALL1", &["UAL"]);
    let reply = stack.text(ADMIN, &format!("roles link ops {ONCALL}")).await;
    assert!(
        reply.contains("linked *ops* to @ops-oncall: its members (1 member now)"),
        "{reply}"
    );
}

#[tokio::test]
async fn a_members_role_follows_the_rotation_after_the_cache_minute() {
    // GIVEN ops linked to @ops-oncall, whose only member is UAL
    let stack = Stack::start().await;
    linked(&stack).await;
    // THEN the link is the `role-links` state in the table
    let stored = stack.store.load(LINKS_SCRIPT).await.unwrap();
    let links: RoleLinks = serde_json::from_value(stored.value.unwrap()).unwrap();
    assert_eq!(links.links[0].group.as_str(), "S0ONCALL1");
    // AND UAL may kick, UBOB may not
    assert_eq!(stack.text("UAL", KICK).await, ALLOWED);
    assert_eq!(stack.text("UBOB", KICK).await, DENIED);
    // AND Slack was asked with a form-encoded usergroup and the bot token
    let asked = stack.slack.posts_to(&format!("/api/{LIST}"));
    let RecordedBody::Form(fields) = &asked[0].body else {
        panic!("not a form: {:?}", asked[0].body);
    };
    assert!(fields.contains(&("usergroup".into(), "S0ONCALL1".into())));
    assert_eq!(asked[0].header("authorization"), Some("Bearer xoxb-test"));
    // WHEN the rotation hands over from UAL to UBOB
    stack.slack.set_usergroup("S0ONCALL1", &["UBOB"]);
    // THEN the cached minute still stands...
    assert_eq!(stack.text("UAL", KICK).await, ALLOWED);
    // ...and once it is up, the role has moved
    stack.clock.advance(MEMBERSHIP_TTL);
    assert_eq!(stack.text("UAL", KICK).await, DENIED);
    assert_eq!(stack.text("UBOB", KICK).await, ALLOWED);
    // AND `can` says where UBOB's role comes from, and where the admin's does
    assert_eq!(
        stack.text("UAL", "can <@UBOB> queue kick").await,
        "Yes: <@UBOB> may run `queue kick`: *ops* as a member of @ops-oncall. It asks for a confirmation first (a Confirm button, or `confirm` and the request's id)."
    );
    assert_eq!(
        stack
            .text("UAL", &format!("can <@{ADMIN}> queue kick"))
            .await,
        format!(
            "Yes: <@{ADMIN}> may run `queue kick`: *admin* set in the configuration (`OPKIT_ADMINS`). It asks for a confirmation first (a Confirm button, or `confirm` and the request's id)."
        )
    );
}

#[tokio::test]
async fn slack_down_denies_with_a_clear_message_and_the_member_is_back_after() {
    let stack = Stack::start().await;
    linked(&stack).await;
    stack.clock.advance(MEMBERSHIP_TTL);
    // WHEN Slack's usergroups.users.list is down (503, after the client's retries)
    stack.slack.break_method(LIST, CannedResponse::status(503));
    // THEN the member is denied, told why
    assert_eq!(
        stack.text("UAL", KICK).await,
        format!(
            "{DENIED} I could not ask Slack who is in @ops-oncall (for *ops*: `Slack did not answer`), so roles from those user groups do not count right now; try again in a minute."
        )
    );
    // AND the denial is in the audit trail with the group
    let trail = stack.store.recent(None, 10).await.unwrap();
    assert!(
        trail.iter().any(|r| matches!(&r.outcome,
            Outcome::Denied { needed } if needed.contains("could not check S0ONCALL1"))),
        "{trail:?}"
    );
    // AND the bootstrap admin does not depend on Slack
    assert_eq!(stack.text(ADMIN, KICK).await, ALLOWED);
    // AND a Slack refusal (a missing scope) denies the same way
    stack.clock.advance(FAILED_LOOKUP_TTL);
    stack
        .slack
        .break_method(LIST, CannedResponse::slack_error("missing_scope"));
    let refused = stack.text("UAL", KICK).await;
    assert!(
        refused.contains("(for *ops*: `missing_scope`)"),
        "{refused}"
    );
    // AND once Slack answers again, the member is back after the failure is forgotten
    stack.slack.mend_method(LIST);
    stack.clock.advance(FAILED_LOOKUP_TTL);
    assert_eq!(stack.text("UAL", KICK).await, ALLOWED);
}

#[tokio::test]
async fn open_and_granted_commands_cost_no_link_read_and_no_slack_call() {
    // GIVEN a stack whose store counts its calls, ops linked, and UGRANT holding a grant
    let slot: Arc<Mutex<Option<Arc<FaultyStore>>>> = Arc::default();
    let keep = slot.clone();
    let stack = Stack::builder()
        .store(move |store| {
            let faulty = FaultyStore::new(store);
            *keep.lock().unwrap() = Some(faulty.clone());
            faulty
        })
        .start()
        .await;
    let store = slot.lock().unwrap().take().unwrap();
    linked(&stack).await;
    stack.text(ADMIN, "roles grant <@UGRANT> ops").await;
    // (and a minute on, so nothing read before is still cached)
    stack.clock.advance(MEMBERSHIP_TTL);
    let lookups = stack.slack.posts_to(&format!("/api/{LIST}")).len();
    // WHEN the grant holder kicks (a stateful command: one load, its own state's)
    let loads = store.calls(Op::Load);
    assert_eq!(stack.text("UGRANT", KICK).await, ALLOWED);
    // THEN no link was read and Slack was not asked
    assert_eq!(store.calls(Op::Load), loads + 1);
    // AND the same for a command open to all
    let loads = store.calls(Op::Load);
    stack.text("UBOB", "queue status").await;
    assert_eq!(store.calls(Op::Load), loads + 1);
    assert_eq!(stack.slack.posts_to(&format!("/api/{LIST}")).len(), lookups);
}
