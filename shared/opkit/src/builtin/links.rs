//! `roles link` and `roles unlink`: a role held by the members of a Slack user
//! group, while they are in it (see [`crate::groups`]).
//!
//! ```text
//! roles link <role> <@usergroup>     everyone in the group holds the role (admin only;
//!                                    never `admin` nor a role that grants or approves)
//! roles unlink <role> <@usergroup>   no longer (admin only, after a confirmation)
//! ```
//!
//! The links are this script's state ([`RoleLinks`], saved with the engine's
//! version check and audited like every command). Linking asks Slack about the
//! group first, so a group Slack does not know, or a missing `usergroups:read`
//! scope, is found out at once rather than at the first denial.
//!
//! A role with power over grants (`admin`, a role of `OPKIT_GRANT_ROLES` or
//! `OPKIT_GRANT_APPROVERS`: [`Policy::power_of`]) is never linked: whoever
//! manages the group's members in Slack would decide who holds it, outside the
//! rules that keep a granter from minting granters ([`super::may_grant`]). It is
//! the rule of `roles link` ([`Command::rule`]), so `can` tells it too.

use std::sync::Arc;

use super::policy::{Policy, Power};
use crate::BoxFuture;
use crate::access::Access;
use crate::engine::Bot;
use crate::engine::command::{Args, Command, CommandError, Ctx, Script};
use crate::groups::{LINKS_SCRIPT, MAX_LINKS, Membership, RoleLink, RoleLinks, handle_from_label};
use crate::ids::{Role, UserGroupId, UserId};
use crate::mrkdwn;
use crate::slack::Reply;
use crate::slack::mrkdwn::Code;
use crate::text::Token;

/// The script of `roles link` and `roles unlink`, admin only; `roles link`
/// waits for a second person's approval when `policy` asks it of grants (a
/// link gives a role to a whole group).
pub fn script(policy: &Policy) -> Script<RoleLinks> {
    let admin = Access::role(Role::admin());
    let mut link_command = Command::new("roles link")
        .usage("<role> <@usergroup>")
        .describe("Give a role to everyone in a Slack user group, while they are in it")
        .example("roles link ops @ops-oncall")
        .access(admin.clone())
        .rule(link_rule(Arc::new(policy.clone())))
        .in_channel()
        .handler(|ctx| Box::pin(link(ctx)));
    if let Some(approvers) = &policy.grant_approval {
        link_command = link_command.approval(approvers.clone());
    }
    // Links stored before `roles link` refused these give nothing either.
    Script::new(LINKS_SCRIPT)
        .unlinkable(policy.roles_with_power())
        .command(link_command)
        .command(
            Command::new("roles unlink")
                .usage("<role> <@usergroup>")
                .describe("Stop giving a role to a user group's members (their grants stay)")
                .example("roles unlink ops @ops-oncall")
                .access(admin)
                .confirm()
                .in_channel()
                .handler(|ctx| Box::pin(unlink(ctx))),
        )
}

/// The rule of `roles link`: no role with power over grants.
fn link_rule(
    policy: Arc<Policy>,
) -> impl for<'a> Fn(&'a Bot, &'a UserId, &'a Args) -> BoxFuture<'a, Result<(), CommandError>>
+ Send
+ Sync
+ 'static {
    move |_, _, args| {
        let policy = policy.clone();
        Box::pin(async move {
            let (role, _, _) = role_and_group(args)?;
            let Some(power) = policy.power_of(&role) else {
                return Ok(());
            };
            let what = match power {
                Power::Admin => "",
                Power::Grants => " (its holders grant roles)",
                Power::Approves => " (its holders approve grants)",
            };
            Err(CommandError::user(mrkdwn!(
                "*{}*{} cannot be linked to a user group: whoever manages the group in Slack \
                 would decide who holds it. Grant it to each person with {}; nothing changed.",
                role,
                what,
                Code::new("roles grant @user <role>")
            )))
        })
    }
}

/// The role at 0 and the user group at 1: a mention (`<!subteam^S…|@handle>`),
/// or a bare group id (`S0614TZR7`, for the shell).
fn role_and_group(args: &Args) -> Result<(Role, UserGroupId, Option<String>), CommandError> {
    if args.len() != 2 {
        return Err(CommandError::usage("give one role and one user group"));
    }
    let role = Role::parse(args.word(0, "a role")?)?;
    let (group, handle) = match args.get(1) {
        Some(Token::UserGroup { id, label }) => (id.clone(), handle_from_label(label.as_deref())),
        Some(Token::Word(w)) if UserGroupId::parse(w).is_ok() => {
            (UserGroupId::parse(w).expect("checked"), None)
        }
        _ => (args.usergroup(1)?, None),
    };
    Ok((role, group, handle))
}

async fn link(ctx: &mut Ctx<RoleLinks>) -> Result<Reply, CommandError> {
    let (role, group, handle) = role_and_group(&ctx.args)?;
    let new = RoleLink {
        role: role.clone(),
        group: group.clone(),
        handle,
        linked_by: ctx.caller.user.clone(),
        linked_at: ctx.now,
    };
    if let Some(old) = ctx.state.find(&role, &group) {
        return Err(CommandError::user(mrkdwn!(
            "*{}* is already linked to {} (by {}); nothing changed.",
            role,
            old.group_name(),
            old.linked_by.mention()
        )));
    }
    if ctx.state.links.len() >= MAX_LINKS {
        return Err(CommandError::user(mrkdwn!(
            "There are already {} links, the most there may be; unlink one first. Nothing changed.",
            MAX_LINKS
        )));
    }
    let groups = ctx.bot.group_roles().clone();
    let members = match groups.look_up(&group, ctx.now).await {
        Membership::Members(members) => {
            // Its members gain the role: none of them may be the second person,
            // as they are when it is asked and when it is approved (asked again).
            for member in members.iter() {
                ctx.benefits(
                    member,
                    mrkdwn!(
                        "you are in {}, which this would give *{}*",
                        new.group_name(),
                        role
                    ),
                );
            }
            // The prompt names the group and counts them: a mention of each,
            // posted in the channel, would ping them all (the finding F12).
            if !members.is_empty() {
                ctx.name_beneficiaries(mrkdwn!(
                    "the {} of {}",
                    members_count(members.len()),
                    new.group_name()
                ));
            }
            members.len()
        }
        Membership::NoSuchGroup => {
            return Err(CommandError::user(mrkdwn!(
                "Slack does not know {} (deleted or disabled?); nothing changed.",
                new.group_name()
            )));
        }
        Membership::Unknown(_) if !groups.can_look_up() => {
            return Err(CommandError::user(
                "Roles from user groups need a bot token (`SLACK_BOT_TOKEN`) to ask Slack who is in a group; nothing changed.",
            ));
        }
        Membership::Unknown(reason) => {
            let hint = (reason == "missing_scope").then_some(
                " The app needs the `usergroups:read` scope: reinstall it with the current manifest.",
            );
            return Err(CommandError::user(mrkdwn!(
                "I could not ask Slack who is in {} ({}), so I did not link it; nothing changed.{}",
                new.group_name(),
                Code::new(&reason),
                hint
            )));
        }
    };
    ctx.confirm(mrkdwn!(
        "Everyone in {} ({} now) would hold *{}* while they are in it.",
        new.group_name(),
        members_count(members),
        role
    ))?;
    let shown = new.group_name();
    ctx.state.links.push(new);
    groups.forget_links();
    Ok(Reply::text(mrkdwn!(
        "{} linked *{}* to {}: its members ({} now) hold *{}* while they are in the group (I ask Slack about once a minute).",
        ctx.caller.user.mention(),
        role,
        shown,
        members_count(members),
        role
    )))
}

async fn unlink(ctx: &mut Ctx<RoleLinks>) -> Result<Reply, CommandError> {
    let (role, group, _) = role_and_group(&ctx.args)?;
    let Some(old) = ctx.state.find(&role, &group).cloned() else {
        let linked: Vec<_> = ctx.state.of_role(&role).map(RoleLink::group_name).collect();
        let hint = if linked.is_empty() {
            mrkdwn!("*{}* is linked to no user group.", role)
        } else {
            mrkdwn!(
                "*{}* is linked to {}.",
                role,
                crate::slack::Mrkdwn::join(linked, ", ")
            )
        };
        return Err(CommandError::user(mrkdwn!(
            "*{}* is not linked to that user group; nothing changed. {}",
            role,
            hint
        )));
    };
    ctx.confirm(mrkdwn!(
        "The members of {} would no longer hold *{}* through it (grants of *{}* stay).",
        old.group_name(),
        role,
        role
    ))?;
    ctx.state
        .links
        .retain(|l| !(l.role == role && l.group == group));
    ctx.bot.group_roles().forget_links();
    Ok(Reply::text(mrkdwn!(
        "{} unlinked *{}* from {}: its members no longer hold *{}* through it (every worker sees it within a minute).",
        ctx.caller.user.mention(),
        role,
        old.group_name(),
        role
    )))
}

fn members_count(n: usize) -> crate::slack::Mrkdwn {
    match n {
        1 => "1 member".into(),
        n => mrkdwn!("{} members", n),
    }
}
