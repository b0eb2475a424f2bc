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
//! audit [<@user>] [last <n>]                        recent audit records
//! ```
//!
//! Who may change whose roles is one pure function, [`may_grant`], asked by
//! `roles grant` and `roles revoke` when they run — directly, or once an approval
//! or a confirmation is given:
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

use std::fmt;
use std::sync::Arc;

use crate::access::{Access, Alternative, Grant, RoleSet};
use crate::config::Config;
use crate::engine::command::{Command, CommandError, Ctx, Script};
use crate::engine::registry::Resolution;
use crate::ids::{Role, UserId};
use crate::slack::{Block, Reply};
use crate::text::{one_line, tokenize};
use crate::timespec::{format_time, parse_start};

/// Who may use the guarded built-ins. Both default to `admin`.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Who may grant and revoke roles. Only an admin grants or revokes `admin`
    /// or a role named here (see [`may_grant`]).
    pub grant: Access,
    /// Who may read the audit trail.
    pub audit: Access,
    /// If set, `roles grant` waits for approval by a second person satisfying
    /// this. Only an admin grants or revokes a role named here.
    pub grant_approval: Option<Access>,
    /// Whether a granter may grant a role to themselves (default: no one may,
    /// admins included).
    pub allow_self_grant: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            grant: Access::role(Role::admin()),
            audit: Access::role(Role::admin()),
            grant_approval: None,
            allow_self_grant: false,
        }
    }
}

impl Policy {
    /// The policy of a deployment's settings: `grant_roles` grant besides `admin`
    /// (`OPKIT_GRANT_ROLES`), `audit_roles` read the audit trail besides `admin`
    /// (`OPKIT_AUDIT_ROLES`), and if `grant_approvers` is not empty, `roles grant`
    /// waits for a second person holding one of them (`OPKIT_GRANT_APPROVERS`).
    pub fn from_roles(
        grant_roles: &[Role],
        audit_roles: &[Role],
        grant_approvers: &[Role],
    ) -> Self {
        let any_of = |roles: &[Role]| {
            Access::AnyOf(roles.iter().map(|r| Alternative(vec![r.clone()])).collect())
        };
        Policy {
            grant: Policy::admin_or(grant_roles),
            audit: Policy::admin_or(audit_roles),
            grant_approval: (!grant_approvers.is_empty()).then(|| any_of(grant_approvers)),
            allow_self_grant: false,
        }
    }

    /// The policy of a deployment's configuration: [`Policy::from_roles`] with
    /// its three lists, and `OPKIT_ALLOW_SELF_GRANT`.
    pub fn from_config(config: &Config) -> Self {
        Policy {
            allow_self_grant: config.allow_self_grant,
            ..Policy::from_roles(
                &config.grant_roles,
                &config.audit_roles,
                &config.grant_approvers,
            )
        }
    }

    /// What holding `role` lets one do to grants, if anything: roles that only
    /// an admin may grant or revoke.
    pub fn power_of(&self, role: &Role) -> Option<Power> {
        let names = |access: &Access| match access {
            Access::Open => false,
            Access::AnyOf(alts) => alts.iter().any(|alt| alt.0.contains(role)),
        };
        if *role == Role::admin() {
            Some(Power::Admin)
        } else if names(&self.grant) {
            Some(Power::Grants)
        } else if self.grant_approval.as_ref().is_some_and(names) {
            Some(Power::Approves)
        } else {
            None
        }
    }

    /// `admin`, or any of `extra` on its own (e.g. `OPKIT_GRANT_ROLES=lead`).
    pub fn admin_or(extra: &[Role]) -> Access {
        let mut alts = vec![Alternative(vec![Role::admin()])];
        alts.extend(extra.iter().map(|r| Alternative(vec![r.clone()])));
        Access::AnyOf(alts)
    }
}

/// What a role lets its holders do to grants: why only an admin gives it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Power {
    /// `admin` itself.
    Admin,
    /// Its holders grant and revoke roles ([`Policy::grant`]).
    Grants,
    /// Its holders approve grants ([`Policy::grant_approval`]).
    Approves,
}

/// Giving a role, or taking it away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleChange {
    /// `roles grant`.
    Grant,
    /// `roles revoke`.
    Revoke,
}

impl RoleChange {
    fn verb(self) -> &'static str {
        match self {
            RoleChange::Grant => "grant",
            RoleChange::Revoke => "revoke",
        }
    }
}

/// Why [`may_grant`] refuses a change; its `Display` is the answer the user gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The caller may not grant or revoke at all.
    NotAGranter {
        /// A grant or a revoke.
        change: RoleChange,
        /// What would allow it ([`Policy::grant`]).
        needed: String,
    },
    /// The caller would grant a role to themselves.
    ToThemselves,
    /// Only an admin gives or takes this role.
    AdminOnly {
        /// A grant or a revoke.
        change: RoleChange,
        /// The role.
        role: Role,
        /// What the role lets its holders do.
        power: Power,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::NotAGranter { change, needed } => {
                write!(f, "You need {needed} to {} roles.", change.verb())
            }
            Refusal::ToThemselves => f.write_str(
                "You cannot grant a role to yourself; ask someone else who can grant it.",
            ),
            Refusal::AdminOnly {
                change,
                role,
                power,
            } => {
                let why = match power {
                    Power::Admin => "",
                    Power::Grants => ": its holders can grant roles",
                    Power::Approves => ": its holders approve grants",
                };
                write!(f, "Only an admin can {} {role}{why}.", change.verb())
            }
        }
    }
}

impl std::error::Error for Refusal {}

/// Whether `by`, holding `by_roles`, may grant `role` to `whom` (or revoke it
/// from them) under `policy`. The one place these rules live:
///
/// | who | does | answer |
/// |---|---|---|
/// | anyone not satisfying [`Policy::grant`] | anything | [`Refusal::NotAGranter`] |
/// | anyone, admins included | grants a role to themselves | [`Refusal::ToThemselves`], unless [`Policy::allow_self_grant`] |
/// | anyone | revokes their own role | allowed (it only gives power up) |
/// | a granter who is not an admin | grants or revokes `admin`, a granting role or an approving role ([`Policy::power_of`]) | [`Refusal::AdminOnly`] |
/// | a granter | grants or revokes any other role, for someone else | allowed |
///
/// It is asked when the command runs: directly, or after its approval or
/// confirmation, with the roles the granter holds then.
pub fn may_grant(
    change: RoleChange,
    by: &UserId,
    by_roles: &RoleSet,
    whom: &UserId,
    role: &Role,
    policy: &Policy,
) -> Result<(), Refusal> {
    if !policy.grant.allows(by_roles) {
        return Err(Refusal::NotAGranter {
            change,
            needed: policy.grant.describe(),
        });
    }
    if change == RoleChange::Grant && by == whom && !policy.allow_self_grant {
        return Err(Refusal::ToThemselves);
    }
    if let Some(power) = policy.power_of(role)
        && !by_roles.contains(&Role::admin())
    {
        return Err(Refusal::AdminOnly {
            change,
            role: role.clone(),
            power,
        });
    }
    Ok(())
}

/// Asks [`may_grant`] about the caller of a `roles grant` or `roles revoke`.
async fn check_change(
    ctx: &Ctx<()>,
    policy: &Policy,
    change: RoleChange,
    whom: &UserId,
    role: &Role,
) -> Result<(), CommandError> {
    let by = &ctx.caller.user;
    let by_roles = ctx.bot.roles_of(by).await?;
    may_grant(change, by, &by_roles, whom, role, policy)
        .map_err(|refusal| CommandError::user(refusal.to_string()))
}

/// Most audit records `audit` shows at once.
const MAX_AUDIT: usize = 100;

/// The built-in script.
pub fn script(policy: Policy) -> Script<()> {
    let rules = Arc::new(policy.clone());
    let for_revoke = rules.clone();
    let mut grant_command = Command::new("roles grant")
        .usage("<@user> <role> [for <duration>] [from <HH:MM|ISO time>]")
        .describe("Give someone a role, until revoked or for a (maintenance) window")
        .access(policy.grant.clone())
        .in_channel()
        .handler(move |ctx| Box::pin(grant(ctx, rules.clone())));
    if let Some(approvers) = policy.grant_approval {
        grant_command = grant_command.approval(approvers);
    }
    Script::new("opkit")
        .command(
            Command::new("help")
                .usage("[<command>]")
                .describe("What you can run here, or how to use one command")
                .handler(|ctx| Box::pin(help(ctx))),
        )
        .command(
            Command::new("can")
                .usage("<@user> <command text>")
                .describe("Whether someone may run a command, and what it needs (runs nothing)")
                .handler(|ctx| Box::pin(can(ctx))),
        )
        .command(
            Command::new("whoami")
                .describe("Your user id, your roles and their windows")
                .handler(|ctx| Box::pin(whoami(ctx))),
        )
        .command(grant_command)
        .command(
            Command::new("roles revoke")
                .usage("<@user> <role>")
                .describe("Take a role away, at once (after a confirmation click)")
                .access(policy.grant)
                .confirm()
                .in_channel()
                .handler(move |ctx| Box::pin(revoke(ctx, for_revoke.clone()))),
        )
        .command(
            Command::new("roles list")
                .usage("[<@user>]")
                .describe("Grants and their windows, for everyone or one person")
                .handler(|ctx| Box::pin(list(ctx))),
        )
        .command(
            Command::new("roles who")
                .usage("<role>")
                .describe("Who holds a role now, and who will")
                .handler(|ctx| Box::pin(who(ctx))),
        )
        .command(
            Command::new("audit")
                .usage("[<@user>] [last <n>]")
                .describe("Recent commands: who asked for what, and what came of it")
                .access(policy.audit)
                .handler(|ctx| Box::pin(audit(ctx))),
        )
}

async fn help(ctx: &mut Ctx<()>) -> Result<Reply, CommandError> {
    let bot = ctx.bot.clone();
    let user = &ctx.caller.user;
    if !ctx.args.is_empty() {
        let wanted = ctx.args.rest(0);
        let Some(command) = bot.registry().find(&wanted).cloned() else {
            return Err(CommandError::user(format!(
                "There is no command `{}`. Type `help` for the list.",
                one_line(&wanted)
            )));
        };
        let decision = bot.authorize(user, &command).await?;
        let mut text = format!("`{}`\n{}", command.usage_line(), command.description);
        if command.forms.len() > 1 {
            text.push_str(&format!("\nAlso: `{}`", command.forms[1..].join("`, `")));
        }
        if !command.access.is_open() {
            text.push_str(&format!("\nNeeds: {}", command.access.describe()));
        }
        if !decision.allowed {
            text.push_str("\nYou cannot run it now.");
        }
        return Ok(Reply::text(text));
    }
    let mut lines = Vec::new();
    for command in bot.registry().commands() {
        if bot.authorize(user, command).await?.allowed {
            lines.push(format!(
                "• `{}` — {}",
                command.usage_line(),
                command.description
            ));
        }
    }
    let body = lines.join("\n");
    Ok(Reply::text(format!("Here is what you can run:\n{body}"))
        .block(Block::Section {
            text: "*Here is what you can run:*".to_string(),
        })
        .block(Block::Section { text: body })
        .block(Block::Context {
            text: "`help <command>` for details.".to_string(),
        }))
}

async fn can(ctx: &mut Ctx<()>) -> Result<Reply, CommandError> {
    let who = ctx.args.user(0)?;
    let text = ctx.args.rest(1);
    if text.is_empty() {
        return Err(CommandError::usage("missing the command to check"));
    }
    let bot = ctx.bot.clone();
    let command = match bot.registry().resolve(&tokenize(&text)) {
        Resolution::Matched { command, .. } => command,
        _ => {
            return Err(CommandError::user(format!(
                "`{}` is not a command I know.",
                one_line(&text)
            )));
        }
    };
    let decision = bot.authorize(&who, &command).await?;
    let verdict = if decision.allowed {
        format!("Yes: {} may run `{}`.", who.mention(), command.name)
    } else {
        format!(
            "No: {} may not run `{}`; it needs {}.",
            who.mention(),
            command.name,
            command.access.describe()
        )
    };
    Ok(Reply::text(verdict))
}

async fn whoami(ctx: &mut Ctx<()>) -> Result<Reply, CommandError> {
    let user = ctx.caller.user.clone();
    let roles = ctx.bot.roles_of(&user).await?;
    let grants = ctx.bot.store().grants_for(&user).await?;
    let held = if roles.is_empty() {
        "no roles".to_string()
    } else {
        roles
            .iter()
            .map(Role::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut text = format!("You are {} (`{user}`), holding {held} now.", user.mention());
    for g in grants.iter().filter(|g| !g.has_ended(ctx.now)) {
        text.push_str(&format!("\n• {} {}", g.role, g.describe_window(ctx.now)));
    }
    Ok(Reply::text(text))
}

async fn grant(ctx: &mut Ctx<()>, policy: Arc<Policy>) -> Result<Reply, CommandError> {
    let (positional, options) = ctx.args.options(&["for", "from"])?;
    if positional.len() != 2 {
        return Err(CommandError::usage("give one user and one role"));
    }
    let user = positional.user(0)?;
    let role = Role::parse(positional.word(1, "a role")?)?;
    let granter = ctx.caller.user.clone();
    check_change(ctx, &policy, RoleChange::Grant, &user, &role).await?;
    let duration = options.duration("for")?;
    let starts_at = options
        .get("from")
        .map(|s| parse_start(s, ctx.now))
        .transpose()?;
    let ends_at = duration.map(|d| starts_at.unwrap_or(ctx.now) + d);
    let grant = Grant {
        id: uuid::Uuid::now_v7(),
        user: user.clone(),
        role: role.clone(),
        granted_by: Some(granter.clone()),
        granted_at: ctx.now,
        starts_at,
        ends_at,
        channel: ctx.caller.channel.clone(),
        // A grant that starts now is announced by this very reply.
        start_announced: starts_at.is_none(),
    };
    let held = ctx.bot.store().grants_for(&user).await?;
    let others: Vec<&Grant> = held
        .iter()
        .filter(|g| g.role == role && !g.has_ended(ctx.now))
        .collect();
    if grant.starts_at.is_none()
        && grant.ends_at.is_none()
        && others
            .iter()
            .any(|g| g.starts_at.is_none() && g.ends_at.is_none())
    {
        return Err(CommandError::user(format!(
            "{} already holds *{role}* until revoked; nothing changed.",
            user.mention()
        )));
    }
    ctx.bot.store().put_grant(&grant).await?;
    // Grants of one role coexist: say which others still count, so nobody thinks
    // a window replaced a standing grant (or the other way round).
    let also = if others.is_empty() {
        String::new()
    } else {
        let windows: Vec<String> = others.iter().map(|g| g.describe_window(ctx.now)).collect();
        format!(
            " {} also keeps *{role}* {}.",
            user.mention(),
            windows.join("; and ")
        )
    };
    Ok(Reply::text(format!(
        "{} granted *{role}* to {} {}.{also}",
        granter.mention(),
        user.mention(),
        grant.describe_window(ctx.now)
    )))
}

async fn revoke(ctx: &mut Ctx<()>, policy: Arc<Policy>) -> Result<Reply, CommandError> {
    if ctx.args.len() != 2 {
        return Err(CommandError::usage("give one user and one role"));
    }
    let user = ctx.args.user(0)?;
    let role = Role::parse(ctx.args.word(1, "a role")?)?;
    let revoker = ctx.caller.user.clone();
    check_change(ctx, &policy, RoleChange::Revoke, &user, &role).await?;
    let mut removed = ctx.bot.store().remove_grants(&user, &role).await?;
    if removed.is_empty() {
        return Err(CommandError::user(format!(
            "{} has no grant of {role}.",
            user.mention()
        )));
    }
    removed.sort_by_key(|g| (g.starts_at, g.granted_at));
    let ended: Vec<String> = removed.iter().map(|g| g.describe_window(ctx.now)).collect();
    let what = match ended.as_slice() {
        [one] => format!("the grant {one}"),
        many => format!("{} grants: {}", many.len(), many.join("; ")),
    };
    Ok(Reply::text(format!(
        "{} revoked *{role}* from {}, ending {what}.",
        revoker.mention(),
        user.mention()
    )))
}

fn describe_grants(grants: &[Grant], now: chrono::DateTime<chrono::Utc>) -> String {
    let mut live: Vec<&Grant> = grants.iter().filter(|g| !g.has_ended(now)).collect();
    live.sort_by(|a, b| {
        (&a.user, &a.role, a.starts_at, a.granted_at).cmp(&(
            &b.user,
            &b.role,
            b.starts_at,
            b.granted_at,
        ))
    });
    live.iter()
        .map(|g| {
            let by = g
                .granted_by
                .as_ref()
                .map(|u| format!(", granted by {}", u.mention()))
                .unwrap_or_default();
            format!(
                "• {} *{}* {}{by}",
                g.user.mention(),
                g.role,
                g.describe_window(now)
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

async fn list(ctx: &mut Ctx<()>) -> Result<Reply, CommandError> {
    let store = ctx.bot.store().clone();
    let (grants, whose) = match ctx.args.len() {
        0 => (store.all_grants().await?, "Nobody has".to_string()),
        1 => {
            let user = ctx.args.user(0)?;
            (
                store.grants_for(&user).await?,
                format!("{} has", user.mention()),
            )
        }
        _ => return Err(CommandError::usage("give at most one user")),
    };
    let body = describe_grants(&grants, ctx.now);
    if body.is_empty() {
        return Ok(Reply::text(format!("{whose} no grants.")));
    }
    Ok(Reply::text(format!("Grants:\n{body}")))
}

async fn who(ctx: &mut Ctx<()>) -> Result<Reply, CommandError> {
    if ctx.args.len() != 1 {
        return Err(CommandError::usage("give one role"));
    }
    let role = Role::parse(ctx.args.word(0, "a role")?)?;
    let grants = ctx.bot.store().grants_with_role(&role).await?;
    let body = describe_grants(&grants, ctx.now);
    if body.is_empty() {
        return Ok(Reply::text(format!("Nobody holds {role}.")));
    }
    Ok(Reply::text(format!("*{role}*:\n{body}")))
}

async fn audit(ctx: &mut Ctx<()>) -> Result<Reply, CommandError> {
    let (positional, options) = ctx.args.options(&["last"])?;
    let user: Option<UserId> = match positional.len() {
        0 => None,
        1 => Some(positional.user(0)?),
        _ => return Err(CommandError::usage("give at most one user")),
    };
    let limit = match options.get("last") {
        None => 10,
        Some(n) => match n.parse::<usize>() {
            Ok(n @ 1..=MAX_AUDIT) => n,
            _ => {
                return Err(CommandError::usage(format!(
                    "`last` takes a number from 1 to {MAX_AUDIT}"
                )));
            }
        },
    };
    let records = ctx.bot.store().recent(user.as_ref(), limit).await?;
    if records.is_empty() {
        return Ok(Reply::text("No audit records yet."));
    }
    let lines: Vec<String> = records
        .iter()
        .map(|r| {
            // One record, one line: what was typed, and any free text of the
            // outcome, go through `one_line`.
            let detail = match &r.outcome {
                crate::audit::Outcome::Denied { needed } => format!(" (needs {needed})"),
                crate::audit::Outcome::Failed { error } => format!(" ({})", one_line(error)),
                crate::audit::Outcome::System { action } => format!(" ({})", one_line(action)),
                crate::audit::Outcome::Forged { reason } => format!(" ({})", one_line(reason)),
                crate::audit::Outcome::Held { awaiting } => format!(" (awaiting {awaiting})"),
                crate::audit::Outcome::Decided { decision, by } => {
                    format!(" ({decision} by {})", by.mention())
                }
                _ => String::new(),
            };
            format!(
                "• {} {} `{}` {}{detail} · `{}`",
                format_time(r.at),
                r.user.mention(),
                one_line(&r.text),
                r.outcome.name(),
                crate::engine::bot::short_ref(r.correlation_id)
            )
        })
        .collect();
    Ok(Reply::text(lines.join("\n")))
}

#[cfg(test)]
mod tests {
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
        // AND only an admin takes a granting role away
        let prompt = t.say("ULEAD", "roles revoke <@ULEAD2> lead").await;
        let done = t
            .click("ULEAD", &prompt, crate::engine::gate::Decision::Confirm)
            .await;
        assert!(
            done.text
                .ends_with("Only an admin can revoke lead: its holders can grant roles."),
            "{}",
            done.text
        );
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
    async fn an_approval_runs_the_same_rules_when_it_is_given() {
        // GIVEN grants wait for an approver, and a lead asks for a self-grant
        let t = TestBot::with_policy(lead_policy(true), |b| b);
        given(&t, "ULEAD", "lead").await;
        given(&t, "UAPPROVER", "approver").await;
        let to_self = t.say("ULEAD", "roles grant <@ULEAD> ops").await;
        let a_granter = t.say("ULEAD", "roles grant <@UFRIEND> lead").await;
        let fine = t.say("ULEAD", "roles grant <@UFRIEND> ops").await;
        // WHEN someone with the approver role approves all three
        let approve = |prompt| t.click("UAPPROVER", prompt, crate::engine::gate::Decision::Approve);
        let to_self = approve(&to_self).await;
        let a_granter = approve(&a_granter).await;
        let fine = approve(&fine).await;
        // THEN the rules decide when it runs: two refused, one granted
        assert!(
            to_self.text.ends_with(
                "You cannot grant a role to yourself; ask someone else who can grant it."
            ),
            "{}",
            to_self.text
        );
        assert!(
            a_granter
                .text
                .ends_with("Only an admin can grant lead: its holders can grant roles."),
            "{}",
            a_granter.text
        );
        assert!(
            fine.text
                .ends_with("<@ULEAD> granted *ops* to <@UFRIEND> until revoked."),
            "{}",
            fine.text
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
                "<@UEVE> `whoami⏎• 2027-01-15 08:00 UTC <@UADMIN> ˋroles grant <@UEVE> adminˋ succeeded · ˋ0badc0deˋ` succeeded"
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
            reply.contains("from 2027-01-15 22:00 UTC for 2h"),
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
        let usage = "Usage: `roles grant <@user> <role> [for <duration>] [from <HH:MM|ISO time>]`";
        for (text, expected) in [
            ("roles grant bob ops", "`bob` is not a Slack user"),
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
        assert!(
            t.text("UADMIN", "roles list")
                .await
                .contains("Nobody has no grants")
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
            let caller =
                crate::engine::command::Caller::user(crate::ids::UserId::parse(u).unwrap());
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
        let again = t.say("UADMIN", "roles revoke <@UBOB> ops").await;
        let done = t
            .click("UADMIN", &again, crate::engine::gate::Decision::Confirm)
            .await;
        assert!(
            done.text.ends_with("<@UBOB> has no grant of ops."),
            "{}",
            done.text
        );
    }

    #[tokio::test]
    async fn help_lists_only_what_the_asker_may_run() {
        let t = crate::fixtures::bot();
        let bob = t.text("UBOB", "help").await;
        assert!(bob.contains("`tally <name>`"), "{bob}");
        assert!(!bob.contains("roles grant"), "{bob}");
        assert!(!bob.contains("`audit"), "{bob}");
        let admin = t.text("UADMIN", "help").await;
        assert!(admin.contains("roles grant"), "{admin}");
        assert!(admin.contains("`audit"), "{admin}");
        // AND every command help lists for bob, bob may really run
        for command in t.bot.registry().commands() {
            let listed = bob.contains(&format!("`{}`", command.usage_line()));
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
            "Yes: <@UADMIN> may run `roles grant`."
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
}
