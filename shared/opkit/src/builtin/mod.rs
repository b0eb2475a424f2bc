//! The commands every bot has: help, access checks, grants and the audit trail.
//!
//! ```text
//! help [<command>]                                  what you can run
//! can <@user> <command text>                        would that user be allowed?
//! whoami                                            your id, roles and grants
//! roles grant <@user> <role> [for <d>] [from <t>]   give a role, maybe for a window
//! roles revoke <@user> <role>                       take it away, now
//! roles list [<@user>]                              grants and their windows
//! roles who <role>                                  who holds a role
//! roles link <role> <@usergroup>                    the group's members hold it
//! roles unlink <role> <@usergroup>                  no longer
//! approvals                                         what waits for your decision
//! confirm|cancel|approve|deny <id>                  decide one, as its button would
//! audit [<@user>] [last <n>]                        recent audit records
//! ```
//!
//! Who may change whose roles is one pure function, [`may_grant`], asked by
//! `roles grant` and `roles revoke` when they run — before they ask for an
//! approval or a confirmation, and again once it is given:
//!
//! - only someone satisfying [`Policy::grant`] grants or revokes at all;
//! - nobody grants a role to themselves, admins included, unless
//!   [`Policy::allow_self_grant`] (`OPKIT_ALLOW_SELF_GRANT`) says so; giving up
//!   one's own role is always allowed;
//! - only an admin grants or revokes `admin`, a role that lets its holders grant
//!   (named in [`Policy::grant`]) or one that lets them approve grants (named in
//!   [`Policy::grant_approval`]): a granter cannot mint granters.
//!
//! Text a user typed is shown back through [`one_line`]: an audit line cannot be
//! forged by a command with a line break in it.

#[cfg(test)]
mod can_tests;
#[cfg(test)]
mod groups_tests;
mod help;
pub mod links;
mod policy;
mod roles;
#[cfg(test)]
mod tests;
mod trail;
#[cfg(test)]
mod trust_tests;

use help::help;
pub use links::script as links_script;
pub use policy::{Policy, Power, Refusal, RoleChange, may_grant};
use roles::{change_rule, grant, list, revoke, who};
use trail::audit;

use std::sync::Arc;

use crate::access::Source;
use crate::engine::Clearance;
use crate::engine::command::{Command, CommandError, Ctx, Gate, Script};
use crate::engine::gate::{Decision, typed};
use crate::engine::registry::Resolution;
use crate::groups::Unverified;
use crate::mrkdwn;
use crate::slack::Reply;
use crate::slack::mrkdwn::{Code, CommandLine, Mrkdwn};
use crate::text::tokenize;

/// The built-in script.
pub fn script(policy: Policy) -> Script<()> {
    let rules = Arc::new(policy.clone());
    let mut grant_command = Command::new("roles grant")
        .usage("<@user> <role> [for <duration>] [from <HH:MM|ISO time>]")
        .describe("Give someone a role, until revoked or for a (maintenance) window")
        .example("roles grant @alice ops for 2h from 22:00")
        .access(policy.grant.clone())
        .rule(change_rule(rules.clone(), RoleChange::Grant))
        .in_channel()
        .handler(move |ctx| Box::pin(grant(ctx, rules.clone())));
    if let Some(approvers) = policy.grant_approval.clone() {
        grant_command = grant_command.approval(approvers);
    }
    Script::new("opkit")
        .command(
            Command::new("help")
                .usage("[<command>]")
                .describe("What you can run here, or how to use one command")
                .example("help roles")
                .example("help roles grant")
                .handler(|ctx| Box::pin(help(ctx))),
        )
        .command(
            Command::new("can")
                .usage("<@user> <command text>")
                .describe("Whether someone may run a command, and what it needs (runs nothing)")
                .example("can @alice roles grant @bob ops")
                .handler(|ctx| Box::pin(can(ctx))),
        )
        .command(
            Command::new("whoami")
                .describe("Your user id, your roles and their windows")
                .example("whoami")
                .handler(|ctx| Box::pin(whoami(ctx))),
        )
        .command(grant_command)
        .command(
            Command::new("roles revoke")
                .usage("<@user> <role>")
                .describe("Take a role away, at once (after a confirmation click)")
                .example("roles revoke @alice ops")
                .access(policy.grant.clone())
                .rule(change_rule(Arc::new(policy.clone()), RoleChange::Revoke))
                .confirm()
                .in_channel()
                .handler(|ctx| Box::pin(revoke(ctx))),
        )
        .command(
            Command::new("roles list")
                .usage("[<@user>]")
                .describe("Grants and their windows, for everyone or one person")
                .example("roles list")
                .example("roles list @alice")
                .handler(|ctx| Box::pin(list(ctx))),
        )
        .command(
            Command::new("roles who")
                .usage("<role>")
                .describe("Who holds a role now, and who will")
                .example("roles who admin")
                .handler(|ctx| Box::pin(who(ctx))),
        )
        .command(
            Command::new("approvals")
                .describe("Requests waiting for you to confirm, approve or deny, with their ids")
                .example("approvals")
                .handler(|ctx| Box::pin(typed::list(ctx))),
        )
        .command(typed_decision(
            "confirm",
            Decision::Confirm,
            "Run your pending request (its Confirm button)",
        ))
        .command(typed_decision(
            "cancel",
            Decision::Cancel,
            "Drop your pending request (its Cancel button)",
        ))
        .command(typed_decision(
            "approve",
            Decision::Approve,
            "Approve someone else's request (its Approve button)",
        ))
        .command(typed_decision(
            "deny",
            Decision::Deny,
            "Refuse a request, or withdraw your own (its Deny button)",
        ))
        .command(
            Command::new("audit")
                .usage("[<@user>] [last <n>]")
                .describe("Recent commands: who asked for what, and what came of it")
                .example("audit @alice last 20")
                .access(policy.audit.clone())
                .handler(|ctx| Box::pin(audit(ctx))),
        )
}

/// A typed stand-in for a button: `confirm <id>` and its kin. Open to everyone:
/// the decision itself is authorized as the click would be.
fn typed_decision(name: &str, decision: Decision, describe: &str) -> Command<()> {
    Command::new(name)
        .usage("<id>")
        .describe(describe)
        .example(&format!("{name} 0190f3a2"))
        .attended("decides a request, which only a person present may do")
        .handler(move |ctx| Box::pin(typed::decide(ctx, decision)))
}

/// `can <@user> <command text>`: what [`Bot::clearance`] (the decision dispatch
/// makes) answers for that user and those arguments, and the gate the command
/// would then ask for. Runs nothing.
///
/// [`Bot::clearance`]: crate::engine::Bot::clearance
async fn can(ctx: &mut Ctx<()>) -> Result<Reply, CommandError> {
    let who = ctx.bot.user_arg(&ctx.args, 0).await?;
    let text = ctx.args.rest(1);
    if text.is_empty() {
        return Err(CommandError::usage("missing the command to check"));
    }
    let bot = ctx.bot.clone();
    let (command, args) = match bot.registry().resolve(&tokenize(&text)) {
        Resolution::Matched { command, args } => (command, args),
        _ => {
            return Err(CommandError::user(mrkdwn!(
                "{} is not a command I know.",
                Code::new(&text)
            )));
        }
    };
    let name = Code::new(&command.name);
    // What a yes leads to: the gate the run would then ask for — for an alias,
    // its target's, which asks when the alias runs it.
    let target =
        command
            .runs
            .as_deref()
            .and_then(|text| match bot.registry().resolve(&tokenize(text)) {
                Resolution::Matched { command, .. } => Some(command),
                _ => None,
            });
    let gate_note = match &target.as_ref().unwrap_or(&command).gate {
        Gate::None => Mrkdwn::new(),
        Gate::Confirm => {
            " It asks for a confirmation first (a Confirm button, or `confirm` and the request's id).".into()
        }
        Gate::Approval(approvers) => mrkdwn!(
            " It then waits for approval by someone with {} who gains nothing from it \
             (not the asker, nor whoever it would give a role: a grant's grantee, a linked \
             group's members).",
            approvers.describe()
        ),
    };
    let no_gate = Mrkdwn::new();
    let (verdict, gate_note) = match bot.clearance(&who, &command, &args).await? {
        Clearance::Cleared(_) if command.access.is_open() => (
            mrkdwn!(
                "Yes: {} may run {}: it is open to everyone.",
                who.mention(),
                name
            ),
            gate_note,
        ),
        Clearance::Cleared(_) => {
            // Every source of the roles, linked groups too, for the answer.
            let decision = bot.explain(&who, &command.access).await?;
            let reasons = decision
                .reasons(&command.access)
                .into_iter()
                .map(|h| mrkdwn!("*{}* {}", h.role, h.describe_source(ctx.now)));
            let yes = mrkdwn!(
                "Yes: {} may run {}: {}.",
                who.mention(),
                name,
                Mrkdwn::join(reasons, "; ")
            );
            (yes, gate_note)
        }
        Clearance::Denied(decision) => (
            mrkdwn!(
                "No: {} may not run {}; it needs {}.{}",
                who.mention(),
                name,
                command.access.describe(),
                decision.unverified_note()
            ),
            no_gate,
        ),
        Clearance::Refused(CommandError::Usage(why)) => (
            mrkdwn!(
                "No: {} is not a valid {}: {}. Usage: {}",
                CommandLine::new(&text),
                name,
                why,
                Code::new(&command.usage_line())
            ),
            no_gate,
        ),
        Clearance::Refused(CommandError::User(why)) => (
            mrkdwn!(
                "No: {} may not run {}: {}",
                who.mention(),
                CommandLine::new(&text),
                why
            ),
            no_gate,
        ),
        Clearance::Refused(other) => return Err(other),
    };
    Ok(Reply::text(mrkdwn!("{}{}", verdict, gate_note)))
}

async fn whoami(ctx: &mut Ctx<()>) -> Result<Reply, CommandError> {
    let user = ctx.caller.user.clone();
    let holdings = ctx.bot.holdings(&user).await?;
    let roles = holdings.roles();
    let grants = ctx.bot.store().grants_for(&user).await?;
    let held = if roles.is_empty() {
        Mrkdwn::from("no roles")
    } else {
        Mrkdwn::join(roles.iter().map(|r| Mrkdwn::new().and(r)), ", ")
    };
    let mut text = mrkdwn!(
        "You are {} (`{}`), holding {} now.",
        user.mention(),
        user,
        held
    );
    for g in grants.iter().filter(|g| !g.has_ended(ctx.now)) {
        text.push(mrkdwn!("\n• {} {}", g.role, g.describe_window(ctx.now)));
    }
    for h in &holdings.held {
        if let Source::Group(_) = h.source {
            text.push(mrkdwn!("\n• {} {}", h.role, h.describe_source(ctx.now)));
        }
    }
    for link in &holdings.ignored {
        text.push(mrkdwn!(
            "\n• not {} as a member of {}: ignored, *{}* cannot come from a user group (an admin may {})",
            link.role,
            link.group_name(),
            link.role,
            Code::new(&format!("roles unlink {} {}", link.role, link.group))
        ));
    }
    text.push(Unverified::explain(&holdings.unverified));
    Ok(Reply::text(text))
}
