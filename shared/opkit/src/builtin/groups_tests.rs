//! Roles from Slack user groups, driven as a user drives them: `roles link`,
//! `roles unlink`, and what a linked group's members may then run.

use chrono::Duration;

use crate::access::Access;
use crate::audit::Outcome;
use crate::engine::{Command, Script};
use crate::groups::{FAILED_LOOKUP_TTL, LINKS_SCRIPT, MEMBERSHIP_TTL, RoleLinks};
use crate::ids::Role;
use crate::slack::Reply;
use crate::store::GrantStore;
use crate::testing::TestBot;

/// How Slack sends `@ops-oncall` in a slash command's text.
const ONCALL: &str = "<!subteam^S0ONCALL1|@ops-oncall>";

/// `deploy` needs ops; `page` needs ops and oncall together.
fn deploys() -> Script<()> {
    let ops = || Role::parse("ops").unwrap();
    Script::new("deploys")
        .command(
            Command::new("deploy")
                .access(Access::role(ops()))
                .handler(|_| Box::pin(async { Ok(Reply::text("deployed")) })),
        )
        .command(
            Command::new("page")
                .access(Access::parse(&[&["ops", "oncall"]]).unwrap())
                .handler(|_| Box::pin(async { Ok(Reply::text("paged")) })),
        )
}

/// A bot with `deploys`, the group `S0ONCALL1` = {UAL, UBO}, and ops linked to it.
async fn linked() -> TestBot {
    let t = TestBot::with(|b| b.script(deploys()));
    t.groups.set_members("S0ONCALL1", &["UAL", "UBO"]);
    let reply = t.text("UADMIN", &format!("roles link ops {ONCALL}")).await;
    assert_eq!(
        reply,
        "<@UADMIN> linked *ops* to @ops-oncall: its members (2 members now) hold *ops* while they are in the group (I ask Slack about once a minute)."
    );
    t
}

#[tokio::test]
async fn members_of_a_linked_group_hold_the_role_and_others_do_not() {
    let t = linked().await;
    assert_eq!(t.text("UAL", "deploy").await, "deployed");
    assert_eq!(
        t.text("UCAROL", "deploy").await,
        "Sorry, you need ops to run `deploy`."
    );
    // AND the link is stored as the `role-links` script's state
    let links: RoleLinks = t.state(LINKS_SCRIPT).await;
    assert_eq!(links.links.len(), 1);
    assert_eq!(links.links[0].handle.as_deref(), Some("ops-oncall"));
    assert_eq!(links.links[0].linked_by.as_str(), "UADMIN");
}

#[tokio::test]
async fn a_member_taken_out_of_the_group_is_denied_once_the_cache_minute_is_up() {
    // GIVEN UBO ran a deploy as a member
    let t = linked().await;
    assert_eq!(t.text("UBO", "deploy").await, "deployed");
    // WHEN the rotation moves on without UBO
    t.groups.set_members("S0ONCALL1", &["UAL", "UCAROL"]);
    // THEN the minute-old answer still stands a moment
    t.advance(MEMBERSHIP_TTL - Duration::seconds(1));
    assert_eq!(t.text("UBO", "deploy").await, "deployed");
    // AND once the minute is up, UBO is denied and UCAROL allowed
    t.advance(Duration::seconds(1));
    assert_eq!(
        t.text("UBO", "deploy").await,
        "Sorry, you need ops to run `deploy`."
    );
    assert_eq!(t.text("UCAROL", "deploy").await, "deployed");
}

#[tokio::test]
async fn slack_down_denies_says_why_audits_it_and_spares_other_roles() {
    let t = linked().await;
    t.advance(MEMBERSHIP_TTL);
    t.groups.fail_with(Some("fatal_error"));
    // WHEN a member runs an ops command while Slack fails
    let reply = t.text("UAL", "deploy").await;
    // THEN it is denied (fails closed), with what could not be checked
    assert_eq!(
        reply,
        "Sorry, you need ops to run `deploy`. I could not ask Slack who is in @ops-oncall (for *ops*: `fatal_error`), so roles from those user groups do not count right now; try again in a minute."
    );
    // AND the denial's audit record names the group and the reason
    let denied = t.audit(5).await.into_iter().find_map(|r| match r.outcome {
        Outcome::Denied { needed } => Some(needed),
        _ => None,
    });
    assert_eq!(
        denied.as_deref(),
        Some("ops; could not check S0ONCALL1 (fatal_error)")
    );
    // AND the bootstrap admin, and open commands, do not depend on Slack
    assert!(t.text("UADMIN", "whoami").await.contains("holding admin"));
    assert!(t.text("UAL", "help").await.contains("whoami"));
    // AND once Slack answers again and the failure is forgotten, the member is back
    t.groups.fail_with(None);
    t.advance(FAILED_LOOKUP_TTL);
    assert_eq!(t.text("UAL", "deploy").await, "deployed");
}

#[tokio::test]
async fn grants_and_group_roles_combine() {
    // GIVEN UAL holds ops through the group, and a timed grant of oncall
    let t = linked().await;
    let granted = t.text("UADMIN", "roles grant <@UAL> oncall for 1h").await;
    assert!(granted.contains("granted *oncall*"), "{granted}");
    // THEN `page` (ops AND oncall) is allowed, and `can` says where each comes from
    assert_eq!(t.text("UAL", "page").await, "paged");
    let can = t.text("UBO", "can <@UAL> page").await;
    assert!(can.starts_with("Yes: <@UAL> may run `page`: "), "{can}");
    assert!(can.contains("*ops* as a member of @ops-oncall"), "{can}");
    assert!(can.contains("*oncall* by a grant until"), "{can}");
    // AND when the grant ends, the group alone is not enough
    t.advance(Duration::hours(1));
    assert_eq!(
        t.text("UAL", "page").await,
        "Sorry, you need ops and oncall to run `page`."
    );
    assert_eq!(t.text("UAL", "deploy").await, "deployed");
}

#[tokio::test]
async fn can_explains_which_source_applies() {
    let t = linked().await;
    assert_eq!(
        t.text("UBO", "can <@UAL> deploy").await,
        "Yes: <@UAL> may run `deploy`: *ops* as a member of @ops-oncall."
    );
    t.text("UADMIN", "roles grant <@UCAROL> ops").await;
    assert_eq!(
        t.text("UBO", "can <@UCAROL> deploy").await,
        "Yes: <@UCAROL> may run `deploy`: *ops* by a grant until revoked, granted by <@UADMIN>."
    );
    assert_eq!(
        t.text("UBO", "can <@UADMIN> roles link ops S1").await,
        "Yes: <@UADMIN> may run `roles link`: *admin* set in the configuration (`OPKIT_ADMINS`)."
    );
    assert_eq!(
        t.text("UBO", "can <@UDAN> whoami").await,
        "Yes: <@UDAN> may run `whoami`: it is open to everyone."
    );
    t.groups.fail_with(Some("ratelimited"));
    t.advance(MEMBERSHIP_TTL);
    let no = t.text("UBO", "can <@UAL> deploy").await;
    assert!(
        no.starts_with("No: <@UAL> may not run `deploy`; it needs ops. I could not ask Slack"),
        "{no}"
    );
}

#[tokio::test]
async fn who_and_whoami_show_the_group() {
    let t = linked().await;
    let who = t.text("UBO", "roles who ops").await;
    assert!(
        who.contains(
            "• members of @ops-oncall *ops* while in it (linked by <@UADMIN>): <@UAL>, <@UBO>"
        ),
        "{who}"
    );
    let me = t.text("UAL", "whoami").await;
    assert!(me.contains("holding ops now"), "{me}");
    assert!(me.contains("• ops as a member of @ops-oncall"), "{me}");
    t.groups.fail_with(Some("fatal_error"));
    t.advance(MEMBERSHIP_TTL);
    let who = t.text("UBO", "roles who ops").await;
    assert!(
        who.contains("unknown: I could not ask Slack who is in it (`fatal_error`)"),
        "{who}"
    );
    let me = t.text("UAL", "whoami").await;
    assert!(me.contains("holding no roles"), "{me}");
    assert!(
        me.contains("I could not ask Slack who is in @ops-oncall"),
        "{me}"
    );
}

#[tokio::test]
async fn a_command_a_grant_allows_asks_slack_nothing() {
    let t = linked().await;
    let asked = t.groups.lookups();
    t.text("UADMIN", "roles grant <@UCAROL> ops").await;
    t.advance(MEMBERSHIP_TTL * 5);
    assert_eq!(t.text("UCAROL", "deploy").await, "deployed");
    let help = t.text("UCAROL", "help deploy").await;
    assert!(help.contains("`deploy`"), "{help}");
    assert_eq!(t.groups.lookups(), asked);
}

#[tokio::test]
async fn only_an_admin_links_and_bad_links_change_nothing() {
    let t = TestBot::with(|b| b.script(deploys()));
    t.groups.set_members("S0ONCALL1", &["UAL"]);
    t.text("UADMIN", "roles grant <@UAL> ops").await;
    assert_eq!(
        t.text("UAL", &format!("roles link ops {ONCALL}")).await,
        "Sorry, you need admin to run `roles link`."
    );
    let unknown = t
        .text("UADMIN", "roles link ops <!subteam^S0GONE001|@gone>")
        .await;
    assert_eq!(
        unknown,
        "Slack does not know @gone (deleted or disabled?); nothing changed."
    );
    let typed = t.text("UADMIN", "roles link ops @ops-oncall").await;
    assert!(
        typed.starts_with("expected a user group: mention it like @oncall"),
        "{typed}"
    );
    let bad_role = t.text("UADMIN", &format!("roles link Ops! {ONCALL}")).await;
    assert!(bad_role.contains("is not a role name"), "{bad_role}");
    t.groups.fail_with(Some("missing_scope"));
    let down = t.text("UADMIN", &format!("roles link ops {ONCALL}")).await;
    assert_eq!(
        down,
        "I could not ask Slack who is in @ops-oncall (`missing_scope`), so I did not link it; nothing changed. The app needs the `usergroups:read` scope: reinstall it with the current manifest."
    );
    let links: RoleLinks = t.state(LINKS_SCRIPT).await;
    assert!(links.links.is_empty());
    // AND a second link of the same pair changes nothing either
    t.groups.fail_with(None);
    t.text("UADMIN", &format!("roles link ops {ONCALL}")).await;
    assert_eq!(
        t.text("UADMIN", "roles link ops S0ONCALL1").await,
        "*ops* is already linked to @ops-oncall (by <@UADMIN>); nothing changed."
    );
    let links: RoleLinks = t.state(LINKS_SCRIPT).await;
    assert_eq!(links.links.len(), 1);
}

#[tokio::test]
async fn unlinking_asks_then_takes_the_role_from_members_at_once_and_keeps_grants() {
    let t = linked().await;
    t.text("UADMIN", "roles grant <@UBO> ops").await;
    let prompt = t.say("UADMIN", &format!("roles unlink ops {ONCALL}")).await;
    assert!(
        prompt
            .text
            .to_string()
            .contains("The members of @ops-oncall would no longer hold *ops* through it"),
        "{}",
        prompt.text
    );
    let done = t
        .click("UADMIN", &prompt, crate::engine::Decision::Confirm)
        .await;
    assert!(
        done.text
            .to_string()
            .contains("<@UADMIN> unlinked *ops* from @ops-oncall"),
        "{}",
        done.text
    );
    // THEN a member without a grant is denied at once (this process forgot the links)
    assert_eq!(
        t.text("UAL", "deploy").await,
        "Sorry, you need ops to run `deploy`."
    );
    // AND a member with a grant keeps it
    assert_eq!(t.text("UBO", "deploy").await, "deployed");
    assert_eq!(
        t.store
            .grants_for(&crate::ids::UserId::parse("UBO").unwrap())
            .await
            .unwrap()
            .len(),
        1
    );
    // AND unlinking what is not linked says so
    assert_eq!(
        t.answered_at_once("UADMIN", &format!("roles unlink ops {ONCALL}"))
            .await,
        "*ops* is not linked to that user group; nothing changed. *ops* is linked to no user group."
    );
}

#[tokio::test]
async fn with_grant_approvals_a_link_waits_for_a_second_person() {
    let policy = super::Policy::from_roles(&[], &[], &[Role::parse("approver").unwrap()]);
    let t = TestBot::with_policy(policy, |b| b.script(deploys()));
    t.groups.set_members("S0ONCALL1", &["UAL"]);
    let prompt = t.say("UADMIN", &format!("roles link ops {ONCALL}")).await;
    assert!(!prompt.blocks.is_empty(), "{}", prompt.text);
    let links: RoleLinks = t.state(LINKS_SCRIPT).await;
    assert!(links.links.is_empty());
    assert_eq!(
        t.text("UAL", "deploy").await,
        "Sorry, you need ops to run `deploy`."
    );
}

#[tokio::test]
async fn without_a_bot_token_nothing_is_linked_and_the_answer_says_why() {
    let store = std::sync::Arc::new(crate::store::memory::MemoryStore::new());
    let bot = crate::engine::Bot::builder(store)
        .admins([crate::ids::UserId::parse("UADMIN").unwrap()])
        .script(super::script(super::Policy::default()))
        .script(super::links_script(&super::Policy::default()))
        .build()
        .unwrap();
    let caller = crate::engine::Caller::user(crate::ids::UserId::parse("UADMIN").unwrap());
    let reply = bot
        .handle(&crate::engine::Request::new(
            caller,
            format!("roles link ops {ONCALL}"),
        ))
        .await;
    assert_eq!(
        reply.text,
        "Roles from user groups need a bot token (`SLACK_BOT_TOKEN`) to ask Slack who is in a group; nothing changed."
    );
}

#[tokio::test]
async fn a_role_with_power_over_grants_is_never_linked_to_a_group() {
    // GIVEN OPKIT_GRANT_ROLES=lead and OPKIT_GRANT_APPROVERS=approver
    let policy = super::Policy::from_roles(
        &[Role::parse("lead").unwrap()],
        &[],
        &[Role::parse("approver").unwrap()],
    );
    let t = TestBot::with_policy(policy, |b| b.script(deploys()));
    t.groups.set_members("S0LEADS01", &["UAL"]);
    for (role, what) in [
        ("admin", ""),
        ("lead", " (its holders grant roles)"),
        ("approver", " (its holders approve grants)"),
    ] {
        // WHEN an admin links it to a user group (the tester's `roles link admin`)
        let refused = t
            .answered_at_once(
                "UADMIN",
                &format!("roles link {role} <!subteam^S0LEADS01|@leads>"),
            )
            .await;
        // THEN it is refused, saying why, and nothing is linked
        assert_eq!(
            refused,
            format!(
                "*{role}*{what} cannot be linked to a user group: whoever manages the group in \
                 Slack would decide who holds it. Grant it to each person with \
                 `roles grant @user &lt;role&gt;`; nothing changed."
            )
        );
        let links: RoleLinks = t.state(LINKS_SCRIPT).await;
        assert!(links.links.is_empty(), "{role} was linked");
        assert_eq!(
            t.text("UAL", "roles grant <@UBO> ops").await,
            "Sorry, you need admin, or lead to run `roles grant`."
        );
    }
}

#[tokio::test]
async fn one_who_joined_the_group_after_the_link_was_asked_cannot_approve_it() {
    // GIVEN OPKIT_GRANT_APPROVERS=approver, UCAROL holds approver, and an admin
    // asks to link ops to @ops-oncall = {UAL, UBO} (the tester's F4)
    let policy = super::Policy::from_roles(&[], &[], &[Role::parse("approver").unwrap()]);
    let t = TestBot::with_policy(policy, |b| {
        b.script(deploys())
            .admins([crate::ids::UserId::parse("UADMIN2").unwrap()])
    });
    let first = t.say("UADMIN", "roles grant <@UCAROL> approver").await;
    t.click("UADMIN2", &first, crate::engine::gate::Decision::Approve)
        .await;
    t.groups.set_members("S0ONCALL1", &["UAL", "UBO"]);
    let prompt = t.say("UADMIN", &format!("roles link ops {ONCALL}")).await;
    assert!(
        prompt
            .text
            .contains("(not the asker nor the 2 members of @ops-oncall)"),
        "{}",
        prompt.text
    );
    // WHEN UCAROL joins the group, then approves the link
    t.groups.set_members("S0ONCALL1", &["UAL", "UBO", "UCAROL"]);
    let approved = t
        .click("UCAROL", &prompt, crate::engine::gate::Decision::Approve)
        .await;
    // THEN she is refused, saying why and that the request is dropped, never
    // that she approved it (the finding F14), and nothing is linked
    assert_eq!(
        approved.text,
        "<@UCAROL> may not approve this: you are in the user group `S0ONCALL1`, which this \
         would give *ops*. Nobody approves a request they gain from: nothing was run, and the \
         request is dropped (an approval uses it up). Ask again for someone else to approve it."
    );
    assert!(approved.replace_original, "it replaces the prompt");
    let again = t
        .click("UADMIN2", &prompt, crate::engine::gate::Decision::Approve)
        .await;
    assert_eq!(again.text, "This request was already handled.", "dropped");
    let links: RoleLinks = t.state(LINKS_SCRIPT).await;
    assert!(links.links.is_empty());
    assert_eq!(
        t.text("UCAROL", "deploy").await,
        "Sorry, you need ops to run `deploy`."
    );
    // AND when Slack cannot say who is in the group at approval, nothing is linked
    t.groups.set_members("S0ONCALL1", &["UAL"]);
    let prompt = t.say("UADMIN", &format!("roles link ops {ONCALL}")).await;
    t.groups.fail_with(Some("fatal_error"));
    let approved = t
        .click("UCAROL", &prompt, crate::engine::gate::Decision::Approve)
        .await;
    assert!(
        approved
            .text
            .ends_with("I could not ask Slack who is in the user group `S0ONCALL1` (`fatal_error`), so I did not link it; nothing changed."),
        "{}",
        approved.text
    );
    let links: RoleLinks = t.state(LINKS_SCRIPT).await;
    assert!(links.links.is_empty());
    // AND one who is not in the group approves it once Slack answers
    t.groups.fail_with(None);
    let prompt = t.say("UADMIN", &format!("roles link ops {ONCALL}")).await;
    let approved = t
        .click("UCAROL", &prompt, crate::engine::gate::Decision::Approve)
        .await;
    assert!(approved.text.contains("linked *ops*"), "{}", approved.text);
}

#[tokio::test]
async fn links_stored_before_the_refusal_of_powerful_roles_give_nothing() {
    // GIVEN OPKIT_GRANT_ROLES=lead, OPKIT_GRANT_APPROVERS=approver, and links of
    // admin, lead, approver and ops to @ops-oncall = {UAL} stored by an earlier
    // version, which linked any role
    use crate::store::{EncodedState, StateStore};
    let policy = super::Policy::from_roles(
        &[Role::parse("lead").unwrap()],
        &[],
        &[Role::parse("approver").unwrap()],
    );
    let t = TestBot::with_policy(policy, |b| b.script(deploys()));
    t.groups.set_members("S0ONCALL1", &["UAL"]);
    let link = |role: &str| crate::groups::RoleLink {
        role: Role::parse(role).unwrap(),
        group: crate::ids::UserGroupId::parse("S0ONCALL1").unwrap(),
        handle: Some("ops-oncall".into()),
        linked_by: crate::ids::UserId::parse("UADMIN").unwrap(),
        linked_at: t.now(),
    };
    let links = RoleLinks {
        links: ["admin", "lead", "approver", "ops"].map(link).to_vec(),
    };
    let state = EncodedState::new(LINKS_SCRIPT, serde_json::to_value(links).unwrap()).unwrap();
    t.store.save(LINKS_SCRIPT, &state, 0).await.unwrap();
    // WHEN a member of the group asks for what those roles allow
    // THEN only ops counts
    assert_eq!(t.text("UAL", "deploy").await, "deployed");
    assert_eq!(
        t.text("UAL", "roles grant <@UBO> ops").await,
        "Sorry, you need admin, or lead to run `roles grant`."
    );
    // AND whoami and roles who say the others are ignored, and why
    let me = t.text("UAL", "whoami").await;
    assert!(me.contains("holding ops now"), "{me}");
    for role in ["admin", "lead", "approver"] {
        assert!(
            me.contains(&format!(
                "• not {role} as a member of @ops-oncall: ignored, *{role}* cannot come from a \
                 user group (an admin may `roles unlink {role} S0ONCALL1`)"
            )),
            "{me}"
        );
    }
    let who = t.text("UBO", "roles who lead").await;
    assert!(
        who.contains(
            "• members of @ops-oncall: ignored, *lead* cannot come from a user group (linked by \
             <@UADMIN>; an admin may `roles unlink lead S0ONCALL1`)"
        ),
        "{who}"
    );
    assert!(!who.contains("<@UAL>"), "{who}");
    // AND an admin unlinks one
    let asked = t.say("UADMIN", "roles unlink lead S0ONCALL1").await;
    let done = t
        .click("UADMIN", &asked, crate::engine::gate::Decision::Confirm)
        .await;
    assert!(done.text.contains("unlinked *lead*"), "{}", done.text);
}

#[tokio::test]
async fn help_lists_what_each_may_run_as_groups_and_grants_change() {
    // GIVEN ops linked to @ops-oncall = {UAL, UBO}
    let t = linked().await;
    let listed = |help: &str, name: &str| help.contains(&format!("• `{name}`"));
    let al = t.text("UAL", "help").await;
    assert!(listed(&al, "deploy") && !listed(&al, "page"), "{al}");
    let carol = t.text("UCAROL", "help").await;
    assert!(
        !listed(&carol, "deploy") && !listed(&carol, "page"),
        "{carol}"
    );
    // WHEN UCAROL joins the group (seen once the membership cache's minute is
    // up) and is granted oncall
    t.groups.set_members("S0ONCALL1", &["UAL", "UBO", "UCAROL"]);
    t.advance(MEMBERSHIP_TTL + Duration::seconds(1));
    let grant = crate::access::Grant {
        id: uuid::Uuid::now_v7(),
        user: crate::ids::UserId::parse("UCAROL").unwrap(),
        role: Role::parse("oncall").unwrap(),
        granted_by: None,
        granted_at: t.now(),
        starts_at: None,
        ends_at: None,
        channel: None,
        start_announced: true,
    };
    t.store.put_grant(&grant).await.unwrap();
    // THEN her help lists both, though a listing without them was shown before
    let carol = t.text("UCAROL", "help").await;
    assert!(
        listed(&carol, "deploy") && listed(&carol, "page"),
        "{carol}"
    );
    // AND for everyone, help lists exactly what the one check allows
    for who in ["UAL", "UBO", "UCAROL", "UADMIN", "UDAVE"] {
        let help = t.text(who, "help").await;
        let user = crate::ids::UserId::parse(who).unwrap();
        let commands = t.bot.registry().commands().to_vec();
        let each = t.bot.authorize_each(&user, &commands).await.unwrap();
        for (command, may) in commands.iter().zip(each) {
            let one = t.bot.authorize(&user, command).await.unwrap().allowed;
            assert_eq!(may, one, "{who}: {}", command.name);
            let usage = crate::mrkdwn!("• {}", crate::slack::Code::new(&command.usage_line()));
            assert_eq!(
                help.contains(usage.as_str()),
                one,
                "{who}: {}",
                command.name
            );
        }
    }
}

#[tokio::test]
async fn a_link_prompt_names_the_group_and_counts_its_members_never_mentioning_them() {
    // GIVEN grant approvals, and a user group of 2,000 members (the finding F12:
    // the prompt, posted in the channel, mentioned every one of them — pinging
    // them all — in ten sections of `<@U…>`)
    let policy = super::Policy::from_roles(&[], &[], &[Role::parse("approver").unwrap()]);
    let t = TestBot::with_policy(policy, |b| b.script(deploys()));
    let members: Vec<String> = (0..2000).map(|n| format!("U{n:08}")).collect();
    let ids: Vec<&str> = members.iter().map(String::as_str).collect();
    t.groups.set_members("S0ONCALL1", &ids);
    // WHEN an admin asks to link a role to it
    let prompt = t.say("UADMIN", &format!("roles link ops {ONCALL}")).await;
    // THEN the prompt names the group and counts its members, and mentions
    // nobody but the asker
    assert!(
        prompt
            .text
            .contains("(not the asker nor the 2000 members of @ops-oncall)"),
        "{}",
        prompt.text
    );
    let everything = format!("{}{:?}", prompt.text, prompt.blocks);
    assert_eq!(everything.matches("<@U0").count(), 0, "{everything}");
    assert!(prompt.text.chars() < 1_000, "{}", prompt.text);
    // AND its members still may not approve it
    let member = t
        .click("U00000007", &prompt, crate::engine::gate::Decision::Approve)
        .await;
    assert_eq!(
        member.text,
        "You cannot approve a request that gives you something; someone else must."
    );
}
