//! Tests of the built-in commands, driven as a user drives them.

use chrono::Duration;

use super::{Policy, Power, Refusal, RoleChange, may_grant};
use crate::access::RoleSet;
use crate::audit::Outcome;
use crate::ids::{Role, UserId};
use crate::store::{AuditLog, GrantStore};
use crate::testing::TestBot;

fn role(r: &str) -> Role {
    Role::parse(r).unwrap()
}

fn user(u: &str) -> UserId {
    UserId::parse(u).unwrap()
}

/// `OPKIT_GRANT_ROLES=lead`, and `OPKIT_GRANT_APPROVERS=approver` if `approvals`.
fn lead_policy(approvals: bool) -> Policy {
    let approvers = if approvals {
        vec![role("approver")]
    } else {
        vec![]
    };
    Policy::from_roles(&[role("lead")], &[], &approvers)
}

/// Stores a grant as if it had been given earlier.
async fn given(t: &TestBot, u: &str, r: &str) {
    let grant = crate::access::Grant {
        id: uuid::Uuid::now_v7(),
        user: user(u),
        role: role(r),
        granted_by: None,
        granted_at: t.now(),
        starts_at: None,
        ends_at: None,
        channel: None,
        start_announced: true,
    };
    t.store.put_grant(&grant).await.unwrap();
}

/// The rules of [`may_grant`], one case a line (`-`: no roles).
const CASES: &str = "
    # by     holding   change  role      whom     self-grants  answer
    # admins grant anything to others, granting and approving roles included
    UADMIN   admin     grant   ops       UBOB     off          ok
    UADMIN   admin     grant   lead      UBOB     off          ok
    UADMIN   admin     grant   approver  UBOB     off          ok
    UADMIN   admin     grant   admin     UBOB     off          ok
    # ...but nothing to themselves, unless the setting allows it
    UADMIN   admin     grant   ops       UADMIN   off          to-themselves
    UADMIN   admin     grant   admin     UADMIN   off          to-themselves
    UADMIN   admin     grant   ops       UADMIN   on           ok
    UADMIN   admin     grant   lead      UADMIN   on           ok
    # a lead grants ordinary roles to others
    ULEAD    lead      grant   ops       UBOB     off          ok
    ULEAD    lead      grant   oncall    UBOB     off          ok
    # ...not to themselves
    ULEAD    lead      grant   ops       ULEAD    off          to-themselves
    ULEAD    lead      grant   ops       ULEAD    on           ok
    # ...and mints no granters, approvers or admins, for anyone
    ULEAD    lead      grant   lead      UBOB     off          admin-only:grants
    ULEAD    lead      grant   approver  UBOB     off          admin-only:approves
    ULEAD    lead      grant   admin     UBOB     off          admin-only:admin
    ULEAD    lead      grant   admin     ULEAD    on           admin-only:admin
    ULEAD    lead,ops  grant   lead      ULEAD    on           admin-only:grants
    # revoking: the same roles are an admin's; giving up one's own is fine
    ULEAD    lead      revoke  ops       UBOB     off          ok
    ULEAD    lead      revoke  lead      ULEAD2   off          admin-only:grants
    ULEAD    lead      revoke  approver  UAPPR    off          admin-only:approves
    ULEAD    lead      revoke  admin     UADMIN   off          admin-only:admin
    ULEAD    lead,ops  revoke  ops       ULEAD    off          ok
    UADMIN   admin     revoke  lead      ULEAD    off          ok
    UADMIN   admin     revoke  ops       UADMIN   off          ok
    # someone who may not grant at all
    UBOB     ops       grant   ops       UCAROL   off          not-a-granter
    UBOB     -         grant   ops       UBOB     on           not-a-granter
    UBOB     approver  revoke  ops       UCAROL   off          not-a-granter
";

#[test]
fn who_may_grant_what_to_whom() {
    let mut checked = 0;
    for line in CASES.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let [by, holding, change, r, whom, self_grants, answer] = line
            .split_whitespace()
            .collect::<Vec<_>>()
            .try_into()
            .unwrap_or_else(|_| panic!("seven columns: {line}"));
        let change = match change {
            "grant" => RoleChange::Grant,
            "revoke" => RoleChange::Revoke,
            other => panic!("{other}"),
        };
        let held: RoleSet = holding.split(',').filter(|h| *h != "-").map(role).collect();
        let expected = match answer {
            "ok" => Ok(()),
            "to-themselves" => Err(Refusal::ToThemselves),
            "not-a-granter" => Err(Refusal::NotAGranter {
                change,
                needed: "admin, or lead".into(),
            }),
            power => {
                let power = match power {
                    "admin-only:admin" => Power::Admin,
                    "admin-only:grants" => Power::Grants,
                    "admin-only:approves" => Power::Approves,
                    other => panic!("{other}"),
                };
                Err(Refusal::AdminOnly {
                    change,
                    role: role(r),
                    power,
                })
            }
        };
        let policy = Policy {
            allow_self_grant: self_grants == "on",
            ..lead_policy(true)
        };
        let answer = may_grant(change, &user(by), &held, &user(whom), &role(r), &policy);
        assert_eq!(answer, expected, "{line}");
        checked += 1;
    }
    assert_eq!(checked, 27, "every case was read");
}

#[test]
fn refusals_say_why() {
    assert_eq!(
        Refusal::ToThemselves.to_string(),
        "You cannot grant a role to yourself; ask someone else who can grant it."
    );
    let lead = Refusal::AdminOnly {
        change: RoleChange::Grant,
        role: role("lead"),
        power: Power::Grants,
    };
    assert_eq!(
        lead.to_string(),
        "Only an admin can grant lead: its holders can grant roles."
    );
    let approver = Refusal::AdminOnly {
        change: RoleChange::Revoke,
        role: role("approver"),
        power: Power::Approves,
    };
    assert_eq!(
        approver.to_string(),
        "Only an admin can revoke approver: its holders approve grants."
    );
    let not = Refusal::NotAGranter {
        change: RoleChange::Grant,
        needed: "admin, or lead".into(),
    };
    assert_eq!(not.to_string(), "You need admin, or lead to grant roles.");
}

#[tokio::test]
async fn a_lead_grants_others_ordinary_roles_but_not_themselves_nor_granters() {
    // GIVEN OPKIT_GRANT_ROLES=lead and a lead
    let t = TestBot::with_policy(lead_policy(false), |b| b);
    t.say("UADMIN", "roles grant <@ULEAD> lead").await;
    // WHEN the lead grants themselves ops, or lead to a friend, or admin
    for (text, refusal) in [
        (
            "roles grant <@ULEAD> ops",
            "You cannot grant a role to yourself; ask someone else who can grant it.",
        ),
        (
            "roles grant <@UFRIEND> lead for 1h",
            "Only an admin can grant lead: its holders can grant roles.",
        ),
        (
            "roles grant <@UFRIEND> admin",
            "Only an admin can grant admin.",
        ),
    ] {
        // THEN each is refused, saying why
        assert_eq!(t.text("ULEAD", text).await, refusal, "{text}");
    }
    assert!(t.text("ULEAD", "whoami").await.contains("holding lead now"));
    assert!(
        t.text("UFRIEND", "whoami")
            .await
            .contains("holding no roles")
    );
    // AND the refusals are in the audit trail
    let failed = t.store.recent(Some(&user("ULEAD")), 10).await.unwrap();
    assert_eq!(
        failed
            .iter()
            .filter(|r| r.outcome.name() == "failed")
            .count(),
        3
    );
    // WHILE an ordinary role for someone else is granted
    assert_eq!(
        t.text("ULEAD", "roles grant <@UFRIEND> ops").await,
        "<@ULEAD> granted *ops* to <@UFRIEND> until revoked."
    );
    // AND only an admin takes a granting role away: refused at once, no prompt
    let refused = t.say("ULEAD", "roles revoke <@ULEAD2> lead").await;
    assert_eq!(
        refused.text,
        "Only an admin can revoke lead: its holders can grant roles."
    );
    assert!(refused.blocks.is_empty(), "nothing to click");
}

#[tokio::test]
async fn even_an_admin_may_not_grant_themselves_unless_allowed() {
    let t = TestBot::new();
    assert_eq!(
        t.text("UADMIN", "roles grant <@UADMIN> ops").await,
        "You cannot grant a role to yourself; ask someone else who can grant it."
    );
    assert!(t.store.all_grants().await.unwrap().is_empty());
    let allowed = TestBot::with_policy(
        Policy {
            allow_self_grant: true,
            ..Policy::default()
        },
        |b| b,
    );
    assert_eq!(
        allowed.text("UADMIN", "roles grant <@UADMIN> ops").await,
        "<@UADMIN> granted *ops* to <@UADMIN> until revoked."
    );
}

#[tokio::test]
async fn an_approval_runs_the_same_rules_when_asked_and_when_given() {
    // GIVEN grants wait for an approver
    let t = TestBot::with_policy(lead_policy(true), |b| b);
    given(&t, "ULEAD", "lead").await;
    given(&t, "UAPPROVER", "approver").await;
    // WHEN a lead asks for a self-grant or a granting role: THEN the rules refuse
    // at once, and nothing waits for an approver
    let to_self = t.say("ULEAD", "roles grant <@ULEAD> ops").await;
    assert_eq!(
        to_self.text,
        "You cannot grant a role to yourself; ask someone else who can grant it."
    );
    let a_granter = t.say("ULEAD", "roles grant <@UFRIEND> lead").await;
    assert_eq!(
        a_granter.text,
        "Only an admin can grant lead: its holders can grant roles."
    );
    assert!(to_self.blocks.is_empty() && a_granter.blocks.is_empty());
    assert_eq!(
        t.text("UAPPROVER", "approvals").await,
        "Nothing is waiting for you to decide."
    );
    // WHEN a valid grant is asked for twice and the first is approved
    let fine = t.say("ULEAD", "roles grant <@UFRIEND> ops").await;
    assert!(
        fine.text
            .contains("<@UFRIEND> would get *ops* until revoked."),
        "the prompt says what would happen: {}",
        fine.text
    );
    let twice = t.say("ULEAD", "roles grant <@UFRIEND> ops").await;
    let approve = |prompt| t.click("UAPPROVER", prompt, crate::engine::gate::Decision::Approve);
    let fine = approve(&fine).await;
    assert!(
        fine.text
            .ends_with("<@ULEAD> granted *ops* to <@UFRIEND> until revoked."),
        "{}",
        fine.text
    );
    // THEN the second is validated again when approved, on what is true by then
    let twice = approve(&twice).await;
    assert!(
        twice
            .text
            .ends_with("<@UFRIEND> already holds *ops* until revoked; nothing changed."),
        "{}",
        twice.text
    );
    let grants = t.store.all_grants().await.unwrap();
    let of = |u: &str| {
        grants
            .iter()
            .filter(|g| g.user == user(u))
            .map(|g| g.role.as_str().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(of("ULEAD"), ["lead"]);
    assert_eq!(of("UFRIEND"), ["ops"]);
}

#[tokio::test]
async fn a_line_break_cannot_forge_an_audit_record() {
    // GIVEN someone runs whoami with a made-up record on a second line
    let t = crate::fixtures::bot();
    let forged =
        "• 2027-01-15 08:00 UTC <@UADMIN> `roles grant <@UEVE> admin` succeeded · `0badc0de`";
    t.say("UEVE", &format!("whoami\n{forged}")).await;
    // WHEN an admin reads the audit trail
    let shown = t.text("UADMIN", "audit last 3").await;
    // THEN there is one line per record, and the made-up one is not among them
    let lines: Vec<&str> = shown.lines().collect();
    assert_eq!(lines.len(), 3, "{shown}");
    assert!(lines.iter().all(|l| l.starts_with("• ")), "{shown}");
    assert!(!lines.contains(&forged), "{shown}");
    assert!(
        lines[1].contains(
            "<@UEVE> `whoami⏎• 2027-01-15 08:00 UTC &lt;@UADMIN&gt; ˋroles grant &lt;@UEVE&gt; adminˋ succeeded · ˋ0badc0deˋ` failed (ˋwhoamiˋ takes no arguments"
        ),
        "{shown}"
    );
}

#[tokio::test]
async fn the_audit_listing_keeps_an_error_with_line_breaks_on_its_line() {
    use crate::engine::{Command, CommandError, Ctx, Script};
    async fn broken(_: &mut Ctx<()>) -> Result<crate::slack::Reply, CommandError> {
        Err(CommandError::user("first\n• `second`"))
    }
    let t = TestBot::with(|b| {
        b.script(
            Script::<()>::new("broken")
                .command(Command::new("broken").handler(|ctx| Box::pin(broken(ctx)))),
        )
    });
    t.say("UBOB", "broken").await;
    let shown = t.text("UADMIN", "audit <@UBOB> last 1").await;
    assert!(
        shown.starts_with("• ") && shown.contains("`broken` failed (first⏎• ˋsecondˋ) · `"),
        "{shown}"
    );
    assert_eq!(shown.lines().count(), 1, "{shown}");
}

#[tokio::test]
async fn help_can_and_unknown_commands_quote_what_was_typed_on_one_line() {
    let t = TestBot::new();
    assert_eq!(
        t.text("UBOB", "\"fly\n`away`\" now").await,
        "I don't know `\"fly⏎ˋawayˋ\"`. Type `help` to see what you can run."
    );
    assert_eq!(
        t.text("UBOB", "help \"fly\n`away`\"").await,
        "There is no command `\"fly⏎ˋawayˋ\"`. Type `help` for the list."
    );
    assert_eq!(
        t.text("UBOB", "can <@UBOB> \"fly\n`away`\"").await,
        "`\"fly⏎ˋawayˋ\"` is not a command I know."
    );
}

#[tokio::test]
async fn only_admins_grant_and_grants_authorize() {
    // GIVEN a bot with bootstrap admin UADMIN
    let t = crate::fixtures::bot();
    // WHEN a non-admin tries to grant
    let denied = t.text("UBOB", "roles grant <@UBOB> ops").await;
    // THEN they are told what they need, and nothing is granted
    assert_eq!(denied, "Sorry, you need admin to run `roles grant`.");
    assert!(t.text("UBOB", "whoami").await.contains("holding no roles"));
    // WHEN the admin grants ops to bob
    let granted = t.say("UADMIN", "roles grant <@UBOB|bob> ops").await;
    assert_eq!(
        granted.text,
        "<@UADMIN> granted *ops* to <@UBOB> until revoked."
    );
    assert_eq!(granted.visibility, crate::slack::Visibility::InChannel);
    // THEN bob holds it, and roles who/list show it with the granter
    assert!(t.text("UBOB", "whoami").await.contains("holding ops now"));
    let who = t.text("UBOB", "roles who ops").await;
    assert!(
        who.contains("<@UBOB> *ops* until revoked, granted by <@UADMIN>"),
        "{who}"
    );
    assert!(t.text("UBOB", "roles list <@UBOB>").await.contains("*ops*"));
}

#[tokio::test]
async fn timed_grant_expires_on_the_clock_not_on_deletion() {
    let t = crate::fixtures::bot();
    t.say("UADMIN", "roles grant <@UBOB> admin for 2h").await;
    assert!(t.text("UBOB", "audit").await.contains("roles grant"));
    // WHEN two hours pass (the grant is still stored)
    t.advance(Duration::hours(2));
    // THEN it no longer authorizes
    assert_eq!(
        t.text("UBOB", "audit").await,
        "Sorry, you need admin to run `audit`."
    );
    assert_eq!(t.store.all_grants().await.unwrap().len(), 1);
}

#[tokio::test]
async fn maintenance_window_counts_only_inside_it() {
    let t = crate::fixtures::bot();
    // GIVEN it is 2027-01-15 08:00 UTC and a window from 22:00 for 2h
    let reply = t
        .text("UADMIN", "roles grant <@UBOB> admin from 22:00 for 2h")
        .await;
    assert!(
        reply.contains(
            "from <!date^1800050400^{date_short_pretty} at {time}|2027-01-15 22:00 UTC> for 2h"
        ),
        "{reply}"
    );
    let denied = "Sorry, you need admin to run `audit`.";
    assert_eq!(t.text("UBOB", "audit last 1").await, denied);
    t.advance(Duration::hours(14));
    assert_ne!(t.text("UBOB", "audit last 1").await, denied);
    t.advance(Duration::hours(2));
    assert_eq!(t.text("UBOB", "audit last 1").await, denied);
}

#[tokio::test]
async fn bad_grants_get_specific_errors_and_change_nothing() {
    let t = crate::fixtures::bot();
    // The grammar's angle brackets are text, escaped as Slack expects.
    let usage = "Usage: `roles grant &lt;@user&gt; &lt;role&gt; [for &lt;duration&gt;] [from &lt;HH:MM|ISO time&gt;]`";
    for (text, expected) in [
        (
            "roles grant bob ops",
            "expected a user: mention them like @name (Slack turns it into a link), not `bob`",
        ),
        (
            "roles grant @BOB ops",
            "expected a user: mention them like @name (Slack turns it into a link), not `BOB`",
        ),
        (
            "roles grant BOB ops",
            "expected a user: mention them like @name (Slack turns it into a link), not `BOB`",
        ),
        (
            "roles grant #ops ops",
            "expected a user: mention them like @name (Slack turns it into a link), not `#ops`",
        ),
        (
            "roles grant <@UBOB> Bad!Role",
            "`Bad!Role` is not a role name",
        ),
        (
            "roles grant <@UBOB> ops for soon",
            "`soon` is not a duration",
        ),
        (
            "roles grant <@UBOB> ops for 2h from noon",
            "`noon` is not a time",
        ),
        ("roles grant <@UBOB>", "give one user and one role"),
        ("roles grant <@UBOB> ops for", "`for` needs a value"),
    ] {
        let reply = t.text("UADMIN", text).await;
        assert!(reply.starts_with(expected), "{text}: {reply}");
        assert!(reply.ends_with(usage), "{text}: {reply}");
    }
    assert_eq!(t.text("UADMIN", "roles list").await, "There are no grants.");
    assert_eq!(
        t.text("UADMIN", "roles list <@UBOB>").await,
        "<@UBOB> has no grants."
    );
}

#[tokio::test]
async fn only_admins_grant_admin_even_with_a_grant_role() {
    let policy = super::Policy {
        grant: super::Policy::admin_or(&[crate::ids::Role::parse("lead").unwrap()]),
        ..super::Policy::default()
    };
    let store = std::sync::Arc::new(crate::store::memory::MemoryStore::new());
    let bot = crate::engine::bot::Bot::builder(store)
        .admins([crate::ids::UserId::parse("UADMIN").unwrap()])
        .script(super::script(policy))
        .build()
        .unwrap();
    let say = |u: &str, text: &str| {
        let caller = crate::engine::command::Caller::user(crate::ids::UserId::parse(u).unwrap());
        let bot = bot.clone();
        let text = text.to_string();
        async move {
            bot.handle(&crate::engine::bot::Request::new(caller, text))
                .await
                .text
        }
    };
    say("UADMIN", "roles grant <@ULEAD> lead").await;
    assert!(
        say("ULEAD", "roles grant <@UBOB> ops")
            .await
            .contains("granted *ops*")
    );
    assert_eq!(
        say("ULEAD", "roles grant <@UBOB> admin").await,
        "Only an admin can grant admin."
    );
}

#[tokio::test]
async fn revoke_asks_for_a_click_then_is_immediate() {
    let t = crate::fixtures::bot();
    t.say("UADMIN", "roles grant <@UBOB> ops").await;
    let prompt = t.say("UADMIN", "roles revoke <@UBOB> ops").await;
    assert!(
        prompt.text.starts_with("Run `roles revoke <@UBOB> ops`?"),
        "{}",
        prompt.text
    );
    assert!(
        t.text("UBOB", "whoami").await.contains("holding ops"),
        "not yet"
    );
    let done = t
        .click("UADMIN", &prompt, crate::engine::gate::Decision::Confirm)
        .await;
    assert!(
        done.text
            .ends_with("<@UADMIN> revoked *ops* from <@UBOB>, ending the grant until revoked."),
        "{}",
        done.text
    );
    assert!(t.text("UBOB", "whoami").await.contains("holding no roles"));
    // nothing left to revoke: told at once, no prompt
    let again = t.say("UADMIN", "roles revoke <@UBOB> ops").await;
    assert_eq!(again.text, "<@UBOB> has no grant of ops.");
    assert!(again.blocks.is_empty());
}

#[tokio::test]
async fn revoke_asks_only_when_its_arguments_are_valid_and_a_grant_would_end() {
    let t = crate::fixtures::bot();
    t.say("UADMIN", "roles grant <@UBOB> ops").await;
    for (typed, answer) in [
        (
            "roles revoke <@UBOB>",
            "give one user and one role. Usage: `roles revoke &lt;@user&gt; &lt;role&gt;`",
        ),
        (
            "roles revoke <@UBOB> deploy",
            "<@UBOB> has no grant of deploy.",
        ),
        (
            "roles revoke <@UCAROL> ops",
            "<@UCAROL> has no grant of ops.",
        ),
    ] {
        assert_eq!(t.answered_at_once("UADMIN", typed).await, answer, "{typed}");
    }
    // a valid one says what it would end
    let prompt = t.say("UADMIN", "roles revoke <@UBOB> ops").await;
    assert!(
        prompt
            .text
            .contains("\nIt would take *ops* from <@UBOB>, ending the grant until revoked.\n"),
        "{}",
        prompt.text
    );
}

#[tokio::test]
async fn help_lists_only_what_the_asker_may_run() {
    let t = crate::fixtures::bot();
    let bob = t.text("UBOB", "help").await;
    assert!(bob.contains("`tally &lt;name&gt;`"), "{bob}");
    assert!(!bob.contains("roles grant"), "{bob}");
    assert!(!bob.contains("`audit"), "{bob}");
    let admin = t.text("UADMIN", "help").await;
    assert!(admin.contains("roles grant"), "{admin}");
    assert!(admin.contains("`audit"), "{admin}");
    // AND every command help lists for bob, bob may really run
    for command in t.bot.registry().commands() {
        let usage = crate::mrkdwn!("{}", crate::slack::Code::new(&command.usage_line()));
        let listed = bob.contains(usage.as_str());
        let allowed = t
            .bot
            .authorize(&crate::ids::UserId::parse("UBOB").unwrap(), command)
            .await
            .unwrap()
            .allowed;
        assert_eq!(listed, allowed, "{}", command.name);
    }
    let detail = t.text("UBOB", "help roles grant").await;
    assert!(
        detail.contains("Needs: admin") && detail.contains("You cannot run it now."),
        "{detail}"
    );
    let detail = t.text("UBOB", "help weather in").await;
    assert_eq!(
        detail,
        "There is no command `weather in`. Type `help` for the list."
    );
}

#[tokio::test]
async fn can_answers_without_running_anything() {
    let t = crate::fixtures::bot();
    let reply = t
        .text("UBOB", "can <@UBOB> roles grant <@UBOB> admin")
        .await;
    assert_eq!(
        reply,
        "No: <@UBOB> may not run `roles grant`; it needs admin."
    );
    assert_eq!(
        t.text("UBOB", "can <@UADMIN> roles grant <@UBOB> admin")
            .await,
        "Yes: <@UADMIN> may run `roles grant`: *admin* set in the configuration (`OPKIT_ADMINS`)."
    );
    assert!(t.text("UBOB", "whoami").await.contains("holding no roles"));
    assert_eq!(
        t.text("UBOB", "can <@UBOB> fly").await,
        "`fly` is not a command I know."
    );
}

#[tokio::test]
async fn every_step_is_audited_with_one_correlation_id() {
    let t = crate::fixtures::bot();
    t.say("UBOB", "roles grant <@UBOB> admin").await;
    t.say("UBOB", "tally perf").await;
    let records = t.store.recent(None, 10).await.unwrap();
    let outcomes: Vec<&str> = records.iter().map(|r| r.outcome.name()).collect();
    assert_eq!(outcomes, ["succeeded", "requested", "denied", "requested"]);
    assert_eq!(records[0].correlation_id, records[1].correlation_id);
    assert_ne!(records[1].correlation_id, records[2].correlation_id);
    assert_eq!(
        records[2].outcome,
        Outcome::Denied {
            needed: "admin".into()
        }
    );
    assert_eq!(records[0].command.as_deref(), Some("tally"));
    let shown = t.text("UADMIN", "audit <@UBOB> last 2").await;
    assert!(shown.contains("`tally perf` succeeded"), "{shown}");
    assert!(
        t.text("UADMIN", "audit last 0")
            .await
            .contains("`last` takes a number")
    );
}

#[tokio::test]
async fn roles_who_admin_includes_the_configured_admins() {
    // GIVEN a bot whose configuration makes UADMIN an admin, and a granted admin
    let t = crate::fixtures::bot();
    assert_eq!(
        t.text("UBOB", "roles who admin").await,
        "*admin*:\n• <@UADMIN> *admin* always (set in the configuration)"
    );
    t.say("UADMIN", "roles grant <@UCAROL> admin for 2h").await;
    // WHEN anyone asks who holds admin
    let who = t.text("UBOB", "roles who admin").await;
    // THEN both are listed, the configured one first
    let lines: Vec<&str> = who.lines().collect();
    assert_eq!(lines.len(), 3, "{who}");
    assert_eq!(
        lines[1],
        "• <@UADMIN> *admin* always (set in the configuration)"
    );
    assert!(
        lines[2].starts_with("• <@UCAROL> *admin* until ")
            && lines[2].ends_with("granted by <@UADMIN>"),
        "{who}"
    );
    // AND a role nobody holds says so
    assert_eq!(t.text("UBOB", "roles who ops").await, "Nobody holds ops.");
}

#[tokio::test]
async fn eighty_grants_make_a_roles_list_that_fits_and_says_how_to_narrow_it() {
    // GIVEN 80 grants (the example: 7,000 characters of text before)
    let t = crate::fixtures::bot();
    for i in 0..80 {
        given(&t, &format!("U{i:08}"), "ops").await;
    }
    // WHEN an admin lists them
    let shown = t.say("UADMIN", "roles list").await;
    let text = shown.text.as_str();
    // THEN the answer fits one section, in characters
    assert!(
        text.chars().count() <= crate::slack::reply::SECTION_TEXT_MAX,
        "{}",
        text.len()
    );
    // AND every line kept is a whole grant, and the last says what was left out
    let lines: Vec<&str> = text.lines().collect();
    let kept = lines.len() - 2;
    assert!(kept > 10, "{text}");
    assert!(
        lines[1..=kept]
            .iter()
            .all(|l| l.starts_with("• <@U") && l.ends_with("until revoked"))
    );
    assert_eq!(
        lines[kept + 1],
        format!(
            "…and {} more. Narrow it with `roles list @user` or `roles who &lt;role&gt;`.",
            80 - kept
        )
    );
    // AND `roles who` cuts the same way
    let who = t.text("UADMIN", "roles who ops").await;
    assert!(who.chars().count() <= crate::slack::reply::SECTION_TEXT_MAX);
    assert!(who.lines().last().unwrap().starts_with("…and "), "{who}");
}

#[tokio::test]
async fn from_22_00_is_22_00_for_the_asker_and_for_2_hours_is_two_hours() {
    // GIVEN an admin whose Slack zone is Paris (2027-01-15 08:00 UTC is 09:00 there)
    let paris = crate::timespec::parse_zone("Europe/Paris").unwrap();
    let t = TestBot::with(|b| b.zones(std::sync::Arc::new(crate::zones::FixedZone(paris))));
    // WHEN they grant a window from 22:00 for 2 hours (long unit names, issue #10)
    let reply = t
        .text("UADMIN", "roles grant <@UBOB> ops from 22:00 for 2 hours")
        .await;
    // THEN it opens at 22:00 Paris time, 21:00 UTC, and lasts two hours
    assert!(
        reply.contains(
            "from <!date^1800046800^{date_short_pretty} at {time}|2027-01-15 21:00 UTC> for 2h"
        ),
        "{reply}"
    );
    // AND an explicit zone wins over the asker's
    let reply = t
        .text(
            "UADMIN",
            "roles grant <@UCAROL> ops from 22:00 America/New_York for 90 minutes",
        )
        .await;
    assert!(
        reply.contains("|2027-01-16 03:00 UTC> for 1h 30m"),
        "{reply}"
    );
    // AND a zone that is not one is refused, and nothing is granted
    let reply = t
        .text("UADMIN", "roles grant <@UDAN> ops from 22:00 Paris")
        .await;
    assert!(reply.starts_with("`Paris` is not a time zone"), "{reply}");
    assert!(
        t.store
            .grants_for(&UserId::parse("UDAN").unwrap())
            .await
            .unwrap()
            .is_empty()
    );
}

/// ULEAD (a lead) asks `ask` under `OPKIT_GRANT_APPROVERS=approver`; UAPP (an
/// approver) approves it `later`. The approval's reply, and UW's grants of ops.
async fn approved_later(ask: &str, later: Duration) -> (String, Vec<crate::access::Grant>) {
    let t = TestBot::with_policy(lead_policy(true), |b| b);
    given(&t, "ULEAD", "lead").await;
    given(&t, "UAPP", "approver").await;
    let prompt = t.say("ULEAD", ask).await;
    assert!(
        prompt.text.as_str().contains("needs approval"),
        "{}",
        prompt.text
    );
    t.advance(later);
    let done = t
        .click("UAPP", &prompt, crate::engine::gate::Decision::Approve)
        .await;
    let mut grants = t.store.grants_for(&user("UW")).await.unwrap();
    grants.retain(|g| g.role == role("ops"));
    (done.text.into_string(), grants)
}

#[tokio::test]
async fn an_approved_window_is_the_one_its_prompt_showed() {
    // The test clock starts at 2027-01-15 08:00 UTC.
    let at = |hh: u32, mm: u32| {
        chrono::NaiveDate::from_ymd_opt(2027, 1, 15)
            .unwrap()
            .and_hms_opt(hh, mm, 0)
            .unwrap()
            .and_utc()
    };
    // `from 08:05` approved at 08:03 starts at 08:05, today
    let (done, grants) = approved_later(
        "roles grant <@UW> ops for 1h from 08:05",
        Duration::minutes(3),
    )
    .await;
    assert!(done.contains("granted *ops*"), "{done}");
    assert_eq!(
        (grants[0].starts_at, grants[0].ends_at),
        (Some(at(8, 5)), Some(at(9, 5)))
    );
    // `from 08:05` approved at 08:06: it starts at the approval (not tomorrow,
    // F13) and ends at 09:05, as the prompt said, and the reply says so
    let (done, grants) = approved_later(
        "roles grant <@UW> ops for 1h from 08:05",
        Duration::minutes(6),
    )
    .await;
    assert_eq!(
        (grants[0].starts_at, grants[0].ends_at),
        (None, Some(at(9, 5)))
    );
    assert!(
        done.contains("which had passed when it was approved: it starts now and ends as asked"),
        "{done}"
    );
    // `for 1h` asked at 08:00 and approved at 08:06 ends at 09:00 (F3)
    let (done, grants) = approved_later("roles grant <@UW> ops for 1h", Duration::minutes(6)).await;
    assert_eq!(grants[0].ends_at, Some(at(9, 0)), "{done}");
    assert!(!done.contains("had passed"), "{done}");
    // a window that ended before its approval grants nothing
    let (done, grants) = approved_later(
        "roles grant <@UW> ops for 5m from 08:01",
        Duration::minutes(7),
    )
    .await;
    assert!(grants.is_empty(), "{grants:?}");
    // the refusal alone: nobody "approved" a grant that was not made (G11)
    assert!(
        done.starts_with("The window this grant was asked for ended at"),
        "{done}"
    );
    assert!(
        done.contains("|2027-01-15 08:06 UTC> before it was approved; nothing was granted"),
        "{done}"
    );
}

#[tokio::test]
async fn a_confirmed_revoke_ends_only_the_grants_its_prompt_named() {
    // GIVEN UBOB holds ops for 2h, and a revoke is asked
    let t = crate::fixtures::bot();
    t.say("UADMIN", "roles grant <@UBOB> ops for 2h").await;
    let prompt = t.say("UADMIN", "roles revoke <@UBOB> ops").await;
    assert!(
        prompt.text.contains("ending the grant until"),
        "{}",
        prompt.text
    );
    // WHEN a standing grant is made before the click (F1)
    given(&t, "UBOB", "ops").await;
    let done = t
        .click("UADMIN", &prompt, crate::engine::gate::Decision::Confirm)
        .await;
    // THEN the click ends nothing, and says only that (not "@UADMIN confirmed
    // …" above it: tester 6, G11), naming the grants then and now, their times
    // as the bot shows times
    let ten = "<!date^1800007200^{date_short_pretty} at {time}|2027-01-15 10:00 UTC>";
    let eight = "<!date^1800000000^{date_short_pretty} at {time}|2027-01-15 08:00 UTC>";
    assert_eq!(
        done.text.as_str(),
        format!(
            "The grants it would end changed since this request was asked: it was from now \
             until {ten} (granted by UADMIN at {eight}), it is now from now until {ten} \
             (granted by UADMIN at {eight}); from now until revoked (granted by the bot at \
             {eight}). Nothing was run; ask again if you still want it."
        )
    );
    assert_eq!(t.store.grants_for(&user("UBOB")).await.unwrap().len(), 2);
    // AND asked again, it names both and ends both
    let again = t.say("UADMIN", "roles revoke <@UBOB> ops").await;
    let done = t
        .click("UADMIN", &again, crate::engine::gate::Decision::Confirm)
        .await;
    assert!(
        done.text.as_str().contains("ending 2 grants"),
        "{}",
        done.text
    );
    assert!(t.store.grants_for(&user("UBOB")).await.unwrap().is_empty());
}
