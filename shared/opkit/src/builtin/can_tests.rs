//! `can` and the real run agree: for each built-in command guarded by a role, a
//! rule or a gate, and for users on either side of each rule, `can <user> …`
//! says yes (and names the gate) exactly when running it as that user gets
//! past authorization (and is held for that gate).

use std::collections::BTreeSet;

use crate::audit::Outcome;
use crate::engine::Gate;
use crate::ids::UserId;
use crate::testing::TestBot;

use super::Policy;

/// A bot where `ULEAD` grants (`OPKIT_GRANT_ROLES=lead`), `UOPS` holds ops and
/// `ULEAD2` holds lead, `UAPPR` approver, and the user group `S0ONCALL` has members, so that every
/// case below would run if allowed.
async fn setup(approval: bool) -> TestBot {
    let approvers = if approval {
        vec![role("approver")]
    } else {
        vec![]
    };
    let policy = Policy::from_roles(&[role("lead")], &[], &approvers);
    let t = TestBot::with_policy(policy, |b| b);
    t.groups.set_members("S0ONCALL", &["UCAT"]);
    for (user, role) in [
        ("ULEAD", "lead"),
        ("UOPS", "ops"),
        ("ULEAD2", "lead"),
        ("UAPPR", "approver"),
    ] {
        let grant = crate::access::Grant {
            id: uuid::Uuid::now_v7(),
            user: UserId::parse(user).unwrap(),
            role: self::role(role),
            granted_by: None,
            granted_at: t.now(),
            starts_at: None,
            ends_at: None,
            channel: None,
            start_announced: true,
        };
        crate::store::GrantStore::put_grant(&*t.store, &grant)
            .await
            .unwrap();
    }
    // A link for `roles unlink` to find.
    let linked = t.say("UADMIN", "roles link ops S0ONCALL").await;
    if approval {
        t.click("UAPPR", &linked, crate::engine::Decision::Approve)
            .await;
    }
    t
}

fn role(r: &str) -> crate::ids::Role {
    crate::ids::Role::parse(r).unwrap()
}

/// (who, what they run): the built-in guarded commands, each on both sides of
/// its access and of its rule.
const CASES: &[(&str, &str)] = &[
    ("ULEAD", "roles grant <@UBOB> ops"),
    ("ULEAD", "roles grant <@UBOB> ops for 2h"),
    ("ULEAD", "roles grant <@UBOB> admin"),
    ("ULEAD", "roles grant <@UBOB> lead"),
    ("ULEAD", "roles grant <@ULEAD> ops"),
    ("UADMIN", "roles grant <@UADMIN> ops"),
    ("UADMIN", "roles grant <@UBOB> admin"),
    ("UADMIN", "roles grant <@UBOB> lead"),
    ("UBOB", "roles grant <@UCAT> ops"),
    ("ULEAD", "roles grant <@UBOB>"),
    ("ULEAD", "roles revoke <@UOPS> ops"),
    ("ULEAD", "roles revoke <@ULEAD2> lead"),
    ("UADMIN", "roles revoke <@ULEAD2> lead"),
    ("ULEAD", "roles revoke <@ULEAD> lead"),
    ("UBOB", "roles revoke <@UOPS> ops"),
    ("UADMIN", "roles link oncall S0ONCALL"),
    ("UADMIN", "roles link admin S0ONCALL"),
    ("UADMIN", "roles link lead S0ONCALL"),
    ("ULEAD", "roles link oncall S0ONCALL"),
    ("UADMIN", "roles unlink ops S0ONCALL"),
    ("ULEAD", "roles unlink ops S0ONCALL"),
    ("UADMIN", "audit"),
    ("UBOB", "audit"),
];

/// What running `text` as `user` came to: whether it got past authorization
/// and the command's rule, and whether it was held for a gate.
async fn run(t: &TestBot, user: &str, text: &str) -> (bool, bool) {
    t.say(user, text).await;
    let last = t.audit(1).await.remove(0);
    assert_eq!(
        last.user.as_str(),
        user,
        "the run's outcome is the newest record"
    );
    match &last.outcome {
        Outcome::Held { .. } => (true, true),
        Outcome::Succeeded => (true, false),
        Outcome::Denied { .. } | Outcome::Failed { .. } => (false, false),
        other => panic!("`{text}` as {user}: unexpected outcome {other:?}"),
    }
}

/// What `can` says of it: yes or no, and whether it names a gate.
async fn can(t: &TestBot, user: &str, text: &str) -> (bool, bool, String) {
    let answer = t.text("UADMIN", &format!("can <@{user}> {text}")).await;
    let yes = answer.starts_with("Yes:");
    assert!(yes || answer.starts_with("No:"), "can answered: {answer}");
    let gated = answer.contains("confirmation first") || answer.contains("waits for approval");
    (yes, gated, answer)
}

async fn agree(approval: bool) {
    let mut covered = BTreeSet::new();
    for (user, text) in CASES {
        // GIVEN a fresh bot for each case (a run changes what the next would see)
        let t = setup(approval).await;
        // WHEN `can` is asked, and then the command is run as that user
        let (yes, named_gate, answer) = can(&t, user, text).await;
        let (ran, held) = run(&t, user, text).await;
        // THEN they agree
        assert_eq!(
            (yes, named_gate),
            (ran, held),
            "approval={approval}: `can <@{user}> {text}` said {answer:?}, but the run was (allowed, held) = {:?}",
            (ran, held)
        );
        covered.insert(
            text.split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join(" "),
        );
    }
    // AND every built-in command guarded by a role, a rule or a gate has cases
    let t = setup(approval).await;
    for command in t.bot.registry().commands() {
        let guarded =
            !command.access.is_open() || command.rule.is_some() || command.gate != Gate::None;
        let name = &command.name;
        let covered = covered.contains(name) || covered.contains(name.split(' ').next().unwrap());
        assert!(!guarded || covered, "no `can` case for {name}");
    }
}

#[tokio::test]
async fn can_and_the_run_agree_for_every_guarded_built_in() {
    agree(false).await;
}

#[tokio::test]
async fn can_and_the_run_agree_when_grants_wait_for_approval() {
    agree(true).await;
}

#[tokio::test]
async fn can_says_who_may_not_approve_a_link() {
    // GIVEN links that wait for an approval
    let t = setup(true).await;
    // WHEN `can` is asked about one
    let (yes, gated, answer) = can(&t, "UADMIN", "roles link ops S0ONCALL").await;
    // THEN it names who may not approve: the asker and the group's members,
    // who would gain the role (tester F15: it named the asker alone)
    assert!(yes && gated, "{answer}");
    assert!(
        answer.contains("not the asker, nor whoever it would give a role")
            && answer.contains("a linked group's members"),
        "{answer}"
    );
}

#[tokio::test]
async fn can_names_the_rule_that_refuses() {
    // GIVEN a granter who is not an admin (the tester's finding)
    let t = setup(false).await;
    // WHEN asked whether they may grant admin
    let answer = t
        .text("UADMIN", "can <@ULEAD> roles grant <@UBOB> admin")
        .await;
    // THEN no, with the rule's own words
    assert_eq!(
        answer,
        "No: <@ULEAD> may not run `roles grant <@UBOB> admin`: Only an admin can grant admin."
    );
    // AND a confirmation is named where one would be asked
    let revoke = t
        .text("UADMIN", "can <@ULEAD> roles revoke <@UOPS> ops")
        .await;
    assert!(
        revoke.ends_with(
            "It asks for a confirmation first (a Confirm button, or `confirm` and the request's id)."
        ),
        "{revoke}"
    );
}
