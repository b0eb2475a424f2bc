//! Tests of the two-person rule where someone tries to be both people: whoever
//! gains from a request cannot be its second person, and the first approver of a
//! deployment can be made.

use crate::engine::gate::Decision;
use crate::ids::{Role, UserId};
use crate::store::GrantStore;
use crate::testing::TestBot;

use super::Policy;

fn role(r: &str) -> Role {
    Role::parse(r).unwrap()
}

/// `OPKIT_GRANT_APPROVERS=approver OPKIT_ADMINS=UADMIN,UADMIN2`.
fn approvals() -> TestBot {
    let policy = Policy::from_roles(&[], &[], &[role("approver")]);
    TestBot::with_policy(policy, |b| b.admins([UserId::parse("UADMIN2").unwrap()]))
}

async fn roles_of(t: &TestBot, u: &str) -> Vec<String> {
    let grants = t
        .store
        .grants_for(&UserId::parse(u).unwrap())
        .await
        .unwrap();
    grants.iter().map(|g| g.role.as_str().to_string()).collect()
}

const NOT_YOURS: &str = "You cannot approve a request that gives you something; someone else must.";

#[tokio::test]
async fn the_grantee_cannot_approve_their_own_grant() {
    // GIVEN UEVE holds approver, and an admin asks to grant her ops
    let t = approvals();
    t.say("UADMIN", "roles grant <@UEVE> approver").await;
    let first = t.say("UADMIN", "roles grant <@UEVE> approver").await;
    assert!(
        t.click("UADMIN2", &first, Decision::Approve)
            .await
            .text
            .ends_with("<@UADMIN> granted *approver* to <@UEVE> until revoked."),
        "an admin approves the first approver"
    );
    let prompt = t.say("UADMIN", "roles grant <@UEVE> ops").await;
    assert!(
        prompt.text.contains("(not the asker nor <@UEVE>)"),
        "the prompt says who may not approve: {}",
        prompt.text
    );
    // WHEN she approves it, by click or typed
    let clicked = t.click("UEVE", &prompt, Decision::Approve).await;
    let id = crate::testing::pending_id(&prompt);
    let typed = t.text("UEVE", &format!("approve {}", &id[..8])).await;
    // THEN she is refused both ways, and holds nothing new
    assert_eq!(clicked.text, NOT_YOURS);
    assert_eq!(typed, NOT_YOURS);
    assert_eq!(roles_of(&t, "UEVE").await, ["approver"]);
    // AND a second approver who gains nothing may approve it
    t.say("UADMIN", "roles grant <@UFAY> approver").await;
    let fay = t.say("UADMIN", "roles grant <@UFAY> approver").await;
    t.click("UADMIN2", &fay, Decision::Approve).await;
    let approved = t.click("UFAY", &prompt, Decision::Approve).await;
    assert!(
        approved
            .text
            .ends_with("<@UADMIN> granted *ops* to <@UEVE> until revoked."),
        "{}",
        approved.text
    );
}

#[tokio::test]
async fn nobody_approves_a_grant_of_the_approving_role_to_themselves() {
    // GIVEN UEVE is an approver
    let t = approvals();
    let made = t.say("UADMIN", "roles grant <@UEVE> approver").await;
    t.click("UADMIN2", &made, Decision::Approve).await;
    // WHEN an admin asks to grant her approver (again, for a window): THEN
    // neither she nor the asker approves it
    let again = t.say("UADMIN", "roles grant <@UEVE> approver for 2h").await;
    assert_eq!(
        t.click("UEVE", &again, Decision::Approve).await.text,
        NOT_YOURS
    );
    assert_eq!(
        t.click("UADMIN", &again, Decision::Approve).await.text,
        "You cannot approve your own request."
    );
    assert_eq!(roles_of(&t, "UEVE").await, ["approver"]);
}

#[tokio::test]
async fn the_first_approver_is_approved_by_a_second_admin() {
    // GIVEN nobody holds approver yet
    let t = approvals();
    // WHEN an admin asks to grant it
    let prompt = t.say("UADMIN", "roles grant <@UTHREE> approver").await;
    assert!(
        prompt
            .text
            .contains("needs approval by someone with approver, or admin"),
        "{}",
        prompt.text
    );
    // THEN neither the asker nor the grantee may approve it
    assert_eq!(
        t.click("UADMIN", &prompt, Decision::Approve).await.text,
        "You cannot approve your own request."
    );
    assert_eq!(
        t.click("UTHREE", &prompt, Decision::Approve).await.text,
        NOT_YOURS
    );
    // AND a second admin may
    let done = t.click("UADMIN2", &prompt, Decision::Approve).await;
    assert!(
        done.text
            .ends_with("<@UADMIN> granted *approver* to <@UTHREE> until revoked."),
        "{}",
        done.text
    );
    // AND an ordinary role still waits for an approver, not an admin
    let ops = t.say("UADMIN", "roles grant <@UBOB> ops").await;
    assert_eq!(
        t.click("UADMIN2", &ops, Decision::Approve).await.text,
        "You cannot approve this: it needs approver."
    );
    assert!(roles_of(&t, "UBOB").await.is_empty());
}

#[tokio::test]
async fn a_member_of_a_group_cannot_approve_linking_it_to_a_role() {
    // GIVEN UEVE is an approver and in the group S0ONCALL1
    let t = approvals();
    let made = t.say("UADMIN", "roles grant <@UEVE> approver").await;
    t.click("UADMIN2", &made, Decision::Approve).await;
    t.groups.set_members("S0ONCALL1", &["UEVE", "UBO"]);
    // WHEN an admin asks to link ops to the group
    let prompt = t
        .say("UADMIN", "roles link ops <!subteam^S0ONCALL1|@ops-oncall>")
        .await;
    // THEN she may not approve it: she would gain ops
    assert_eq!(
        t.click("UEVE", &prompt, Decision::Approve).await.text,
        NOT_YOURS
    );
    let links: crate::groups::RoleLinks = t.state(crate::groups::LINKS_SCRIPT).await;
    assert!(links.links.is_empty(), "nothing linked");
}

#[tokio::test]
async fn a_link_of_a_large_group_is_held_small_and_an_unlisted_member_still_cannot_approve() {
    // GIVEN UEVE is an approver, the last of a 2,000-member group
    let t = approvals();
    let made = t.say("UADMIN", "roles grant <@UEVE> approver").await;
    t.click("UADMIN2", &made, Decision::Approve).await;
    let mut members: Vec<String> = (0..1999).map(|i| format!("UA{i:07}")).collect();
    members.push("UEVE".into());
    let members: Vec<&str> = members.iter().map(String::as_str).collect();
    t.groups.set_members("S0ONCALL1", &members);
    // WHEN an admin asks to link ops to the group
    let prompt = t
        .say("UADMIN", "roles link ops <!subteam^S0ONCALL1|@ops-oncall>")
        .await;
    // THEN the held request lists a hundred of them and counts the rest (it
    // stored all 2,000: 26 KB in one entry of the shared pending state)
    let held: crate::engine::PendingState = t.state(crate::engine::gate::PENDING_SCRIPT).await;
    let pending = held.requests.values().next().expect("held");
    assert_eq!(
        pending.beneficiaries.len(),
        crate::engine::gate::MAX_HELD_BENEFICIARIES
    );
    assert_eq!(pending.beneficiaries_unlisted, 1900);
    assert!(serde_json::to_string(pending).unwrap().len() <= crate::engine::gate::MAX_HELD_BYTES);
    // AND the member it does not list still cannot approve: the approved run
    // names who gains again, and nothing is linked
    let approved = t.click("UEVE", &prompt, Decision::Approve).await;
    assert!(
        approved.text.as_str().contains("you are in"),
        "{}",
        approved.text
    );
    let links: crate::groups::RoleLinks = t.state(crate::groups::LINKS_SCRIPT).await;
    assert!(links.links.is_empty(), "nothing linked");
}

#[tokio::test]
async fn a_start_in_the_past_is_shown_as_a_time_not_as_escaped_markup() {
    // GIVEN an admin grants from a date long gone
    let t = TestBot::new();
    let reply = t
        .text("UADMIN", "roles grant <@UBOB> ops from 2020-01-01 10:00")
        .await;
    // THEN the time is Slack's date token, drawn in each reader's zone, not its
    // escaped source
    assert!(
        reply.starts_with(
            "<!date^1577872800^{date_short_pretty} at {time}|2020-01-01 10:00 UTC> is in the past"
        ),
        "{reply}"
    );
    assert!(!reply.contains("&lt;!date"), "{reply}");
    assert!(t.store.all_grants().await.unwrap().is_empty());
}

#[test]
fn no_time_error_shows_escaped_markup() {
    use crate::engine::CommandError;
    use crate::timespec::{parse_duration, parse_start};
    let now = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
    let zone = chrono_tz::UTC;
    let errors = [
        parse_start("2020-01-01 10:00", now, zone).unwrap_err(),
        parse_start("2020-01-01T10:00Z", now, zone).unwrap_err(),
        parse_start("25:99", now, zone).unwrap_err(),
        parse_start("10:00 Mars/Olympus", now, zone).unwrap_err(),
        parse_duration("<!here>").unwrap_err(),
        parse_duration("0m").unwrap_err(),
        parse_duration("100d").unwrap_err(),
        parse_start("2099-01-01T10:00Z", now, zone).unwrap_err(),
    ];
    for e in errors {
        let shown = match CommandError::from(e) {
            CommandError::Usage(m) | CommandError::User(m) => m.into_string(),
            other => panic!("a time error is the user's: {other:?}"),
        };
        // User text is escaped (`&lt;!here&gt;`); the bot's own date tokens are not.
        assert!(!shown.contains("&lt;!date"), "{shown}");
        assert!(!shown.contains("<!here>"), "{shown}");
    }
}

#[tokio::test]
async fn the_bot_counts_a_commands_length_in_characters() {
    let t = TestBot::new();
    // 2,100 `é` are 4,200 bytes but 2,100 characters: not too long
    let accented = t
        .text("UADMIN", &format!("roles who {}", "é".repeat(2_100)))
        .await;
    assert!(!accented.contains("too long"), "{accented}");
    let over = t
        .text("UADMIN", &"é".repeat(crate::engine::bot::MAX_TEXT_LEN + 1))
        .await;
    assert_eq!(
        over,
        "That is too long for a command (4001 characters; the most is 4000)."
    );
}

#[tokio::test]
async fn a_request_someone_may_not_decide_answers_as_no_request_does() {
    // GIVEN an admin's revoke waits for its confirmation, and a grant for approval
    let t = approvals();
    t.say("UADMIN", "roles grant <@UADMIN2> ops").await;
    let grant = t.say("UADMIN", "roles grant <@UBOB> ops").await;
    let revoke = t.say("UADMIN", "roles revoke <@UBOB> approver").await;
    assert!(revoke.text.contains("has no grant"), "{}", revoke.text);
    let given = t.say("UADMIN", "roles grant <@UCAROL> approver").await;
    t.click("UADMIN2", &given, Decision::Approve).await;
    let revoke = t.say("UADMIN", "roles revoke <@UCAROL> approver").await;
    let none = |typed: &str| {
        format!(
            "No pending request has the id `{typed}`: it was decided, it expired, or the id is mistyped. `approvals` lists what is waiting for you."
        )
    };
    // WHEN someone who may decide neither types a start of their ids, with
    // every verb: THEN each answer is the answer for an id nobody has
    for prompt in [&grant, &revoke] {
        let id = crate::testing::pending_id(prompt);
        for len in [4, 8] {
            let typed = &id[..len];
            for verb in ["confirm", "cancel", "approve", "deny"] {
                let answer = t.text("UBOB", &format!("{verb} {typed}")).await;
                assert_eq!(answer, none(typed), "{verb} {typed}");
            }
        }
    }
    assert_eq!(
        t.text("UBOB", "approvals").await,
        "Nothing is waiting for you to decide."
    );
    // AND someone who may decide one still finds it
    let id = crate::testing::pending_id(&revoke);
    let answer = t.text("UADMIN2", &format!("deny {}", &id[..8])).await;
    assert!(answer.contains("waits for a confirmation"), "{answer}");
}

#[tokio::test]
async fn a_refused_cancel_says_cancel() {
    let t = TestBot::new();
    t.say("UADMIN", "roles grant <@UBOB> ops").await;
    let prompt = t.say("UADMIN", "roles revoke <@UBOB> ops").await;
    assert_eq!(
        t.click("UBOB", &prompt, Decision::Cancel).await.text,
        "You cannot cancel this: it needs admin."
    );
    assert_eq!(
        t.click("UBOB", &prompt, Decision::Confirm).await.text,
        "You cannot confirm this: it needs admin."
    );
}

#[tokio::test]
async fn a_start_past_90_days_is_refused_and_nothing_is_granted() {
    // GIVEN an admin (the clock: 2027-01-15 08:00 UTC)
    let t = TestBot::new();
    // WHEN a grant is asked to start decades ahead
    let far = t
        .text(
            "UADMIN",
            "roles grant <@UBOB> ops from 2099-01-01T10:00Z for 1h",
        )
        .await;
    // THEN it is refused, saying the limit, and UBOB holds nothing
    assert!(
        far.contains("is too far ahead: a window starts within 90 days. Usage: `roles grant"),
        "{far}"
    );
    assert!(roles_of(&t, "UBOB").await.is_empty());
    // AND 89 days ahead is taken
    let near = t
        .text(
            "UADMIN",
            "roles grant <@UBOB> ops from 2027-04-14T08:00Z for 1h",
        )
        .await;
    assert!(
        near.starts_with("<@UADMIN> granted *ops* to <@UBOB>"),
        "{near}"
    );
}

#[tokio::test]
async fn one_user_holds_at_most_the_cap_of_grants() {
    use crate::access::MAX_GRANTS_PER_USER;
    // GIVEN UBOB already holds the most grants one person may
    let t = TestBot::new();
    for i in 0..MAX_GRANTS_PER_USER {
        let granted = t
            .text("UADMIN", &format!("roles grant <@UBOB> r{i} for 1h"))
            .await;
        assert!(granted.contains("granted"), "{granted}");
    }
    // WHEN one more is asked
    let refused = t
        .text("UADMIN", "roles grant <@UBOB> one-more for 1h")
        .await;
    // THEN it is refused, saying so, and nothing is added
    assert_eq!(
        refused,
        format!(
            "<@UBOB> already has {MAX_GRANTS_PER_USER} grants running or to come, the most one \
             person may have; revoke some first (`roles list` <@UBOB> shows them). Nothing changed."
        )
    );
    assert_eq!(roles_of(&t, "UBOB").await.len(), MAX_GRANTS_PER_USER);
    // AND once some have ended, there is room again
    t.advance(chrono::Duration::hours(2));
    let again = t
        .text("UADMIN", "roles grant <@UBOB> one-more for 1h")
        .await;
    assert!(again.contains("granted"), "{again}");
}

#[tokio::test]
async fn revoking_a_configured_admin_says_where_the_role_comes_from() {
    // GIVEN UADMIN is an admin by OPKIT_ADMINS, and a second admin by a grant
    let t = TestBot::new();
    t.say("UADMIN", "roles grant <@UAL> admin").await;
    // WHEN UAL revokes UADMIN's admin
    let answer = t.text("UAL", "roles revoke <@UADMIN> admin").await;
    // THEN the answer says it comes from the configuration, not "no grant"
    assert_eq!(
        answer,
        "<@UADMIN> holds admin from the bot's configuration (`OPKIT_ADMINS`, or `--roles` \
         locally), not from a grant: it cannot be revoked in chat. Change the configuration and \
         restart (deployed: the stack's `AdminUserIds` parameter)."
    );
    // AND someone without any grant still hears "no grant"
    assert_eq!(
        t.text("UAL", "roles revoke <@UBOB> admin").await,
        "<@UBOB> has no grant of admin."
    );
}

#[tokio::test]
async fn a_command_that_takes_no_arguments_refuses_extra_words() {
    // GIVEN the tester's `whoami extra words`
    let t = TestBot::new();
    assert_eq!(
        t.text("UBOB", "whoami extra words").await,
        "`whoami` takes no arguments, but was given `extra words`. Usage: `whoami`"
    );
    // AND every built-in whose usage names no arguments does the same
    for command in t.bot.registry().commands() {
        if !command.usage.is_empty() {
            continue;
        }
        let answer = t.text("UADMIN", &format!("{} extra", command.name)).await;
        assert!(
            answer.starts_with(&format!("`{}` takes no arguments", command.name)),
            "{}: {answer}",
            command.name
        );
    }
}

#[tokio::test]
async fn an_error_quoting_a_word_shows_its_invisible_characters() {
    // GIVEN a role typed with a zero-width space in it (the tester's finding)
    let t = TestBot::new();
    // WHEN it is granted, and named to `roles who`
    let granted = t.text("UADMIN", "roles grant <@UBOB> o\u{200B}ps").await;
    let who = t.text("UADMIN", "roles who o\u{200B}ps").await;
    // THEN each answer shows the character by its code, and nothing is granted
    for answer in [&granted, &who] {
        assert!(answer.contains("o⟨U+200B⟩ps"), "{answer}");
        assert!(!answer.contains('\u{200B}'), "{answer}");
    }
    assert!(roles_of(&t, "UBOB").await.is_empty());
}
