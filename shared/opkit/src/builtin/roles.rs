//! `roles grant`, `roles revoke`, `roles list` and `roles who`.

use std::sync::Arc;

use super::policy::{Policy, Power, RoleChange, may_grant};
use crate::BoxFuture;
use crate::access::{Access, Grant, MAX_GRANTS_PER_USER};
use crate::engine::Bot;
use crate::engine::command::{Args, CommandError, Ctx};
use crate::groups::{Membership, Unverified};
use crate::ids::{Role, UserId};
use crate::mrkdwn;
use crate::slack::Reply;
use crate::slack::mrkdwn::{Code, Mrkdwn, UserText, fit_list};
use crate::timespec::parse_start;

/// The rule of `roles grant` and `roles revoke` ([`Command::rule`]): asks
/// [`may_grant`] about the user who would run it, with the user and role of its
/// arguments. The engine asks it before each run, and `can` asks it too.
///
/// [`Command::rule`]: crate::engine::Command::rule
pub(super) fn change_rule(
    policy: Arc<Policy>,
    change: RoleChange,
) -> impl for<'a> Fn(&'a Bot, &'a UserId, &'a Args) -> BoxFuture<'a, Result<(), CommandError>>
+ Send
+ Sync
+ 'static {
    move |bot, by, args| {
        let policy = policy.clone();
        Box::pin(async move {
            let (whom, role) = match change {
                RoleChange::Grant => {
                    let (positional, _) = args.options(&["for", "from"])?;
                    user_and_role(bot, &positional).await?
                }
                RoleChange::Revoke => user_and_role(bot, args).await?,
            };
            check_change(bot, by, &policy, change, &whom, &role).await
        })
    }
}

/// The user at 0 and the role at 1, and nothing else.
async fn user_and_role(bot: &Bot, args: &Args) -> Result<(UserId, Role), CommandError> {
    if args.len() != 2 {
        return Err(CommandError::usage("give one user and one role"));
    }
    let user = bot.user_arg(args, 0).await?;
    let role = Role::parse(args.word(1, "a role")?)?;
    Ok((user, role))
}

/// The user and role of arguments [`change_rule`] has already read: a bare id
/// it confirmed with Slack moments ago is taken as it is, so a grant asks
/// `users.info` once. Only for the handlers of commands with that rule (the
/// engine asks a command's rule before every run of its handler).
fn ruled_user_and_role(args: &Args) -> Result<(UserId, Role), CommandError> {
    if args.len() != 2 {
        return Err(CommandError::usage("give one user and one role"));
    }
    let user = match args.user(0) {
        Ok(user) => user,
        Err(not_a_mention) => args
            .get(0)
            .and_then(crate::text::Token::as_typed)
            .and_then(|w| UserId::parse(w.strip_prefix('@').unwrap_or(w)).ok())
            .ok_or(not_a_mention)?,
    };
    let role = Role::parse(args.word(1, "a role")?)?;
    Ok((user, role))
}

/// Asks [`may_grant`] whether `by` may make this change.
async fn check_change(
    bot: &Bot,
    by: &UserId,
    policy: &Policy,
    change: RoleChange,
    whom: &UserId,
    role: &Role,
) -> Result<(), CommandError> {
    // Checked as dispatch checks: a granter whom grants or `OPKIT_ADMINS` allow
    // costs no user group lookup; `admin` is looked for only where it matters.
    let granter = bot.check_access(by, &policy.grant).await?;
    let mut by_roles = granter.roles;
    let mut unverified = granter.unverified;
    if policy.power_of(role).is_some() && !by_roles.contains(&Role::admin()) {
        let admin = bot.check_access(by, &Access::role(Role::admin())).await?;
        by_roles.extend(admin.roles);
        unverified.extend(admin.unverified);
    }
    may_grant(change, by, &by_roles, whom, role, policy).map_err(|refusal| {
        CommandError::user(mrkdwn!(
            "{}{}",
            UserText::new(refusal.to_string()),
            Unverified::explain(&unverified)
        ))
    })
}

pub(super) async fn grant(ctx: &mut Ctx<()>, policy: Arc<Policy>) -> Result<Reply, CommandError> {
    // Who may grant what was asked already: `change_rule`, before this runs.
    let (positional, options) = ctx.args.options(&["for", "from"])?;
    let (user, role) = ruled_user_and_role(&positional)?;
    let granter = ctx.caller.user.clone();
    let duration = options.duration("for")?;
    // The window is worked out once, when asked, and held with the request: an
    // approval grants the window its prompt showed, not one read again at the
    // click (`from 05:35` approved at 05:36 was tomorrow's; `for 1h` ended an
    // hour after the approval).
    let (starts_at, ends_at, moved) = match ctx.bound_when_asked(WINDOW) {
        Some(asked) => {
            let asked = asked.to_string();
            let (starts_at, ends_at) = Window::parse(&asked)?;
            ctx.bind(WINDOW, asked)?;
            match starts_at {
                _ if ends_at.is_some_and(|end| end <= ctx.now) => {
                    return Err(CommandError::user(mrkdwn!(
                        "The window this grant was asked for ended at {} before it was \
                         approved; nothing was granted. Ask again for a new window.",
                        ends_at.unwrap_or(ctx.now)
                    )));
                }
                // Its start passed while it waited: it starts at the approval and
                // keeps the end the prompt showed.
                Some(start) if start <= ctx.now => (None, ends_at, Some(start)),
                _ => (starts_at, ends_at, None),
            }
        }
        None => {
            let starts_at = match options.get("from") {
                Some(s) => Some(parse_start(s, ctx.now, ctx.asker_zone().await)?),
                None => None,
            };
            let ends_at = duration.map(|d| starts_at.unwrap_or(ctx.now) + d);
            ctx.bind(WINDOW, Window::show(starts_at, ends_at))?;
            (starts_at, ends_at, None)
        }
    };
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
    let live = held.iter().filter(|g| !g.has_ended(ctx.now)).count();
    if live >= MAX_GRANTS_PER_USER {
        return Err(CommandError::user(mrkdwn!(
            "{} already has {} grants running or to come, the most one person may have; \
             revoke some first (`roles list` {} shows them). Nothing changed.",
            user.mention(),
            live,
            user.mention()
        )));
    }
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
        return Err(CommandError::user(mrkdwn!(
            "{} already holds *{}* until revoked; nothing changed.",
            user.mention(),
            role
        )));
    }
    // The grantee gains from it: they may not be its second person.
    ctx.benefits(&user, mrkdwn!("this would give you *{}*", role));
    // Nobody holds the approving role before its first grant; an admin may
    // approve that one, so a deployment can start (see the README).
    if policy.power_of(&role) == Some(Power::Approves) {
        ctx.also_approved_by(Role::admin());
    }
    ctx.confirm(mrkdwn!(
        "{} would get *{}* {}.",
        user.mention(),
        role,
        grant.describe_window(ctx.now)
    ))?;
    ctx.bot.store().put_grant(&grant).await?;
    // Grants of one role coexist: say which others still count, so nobody thinks
    // a window replaced a standing grant (or the other way round).
    let also = if others.is_empty() {
        Mrkdwn::new()
    } else {
        let windows = others.iter().map(|g| g.describe_window(ctx.now));
        mrkdwn!(
            " {} also keeps *{}* {}.",
            user.mention(),
            role,
            Mrkdwn::join(windows, "; and ")
        )
    };
    let moved = match moved {
        Some(start) => mrkdwn!(
            " It was asked from {}, which had passed when it was approved: it starts now \
             and ends as asked.",
            start
        ),
        None => Mrkdwn::new(),
    };
    Ok(Reply::text(mrkdwn!(
        "{} granted *{}* to {} {}.{}{}",
        granter.mention(),
        role,
        user.mention(),
        grant.describe_window(ctx.now),
        moved,
        also
    )))
}

/// Grants as `roles revoke` binds them ([`Ctx::bind`]): each one's window and
/// who granted it when, which tells apart two grants of the same window.
fn grant_set(grants: &[Grant]) -> String {
    let time =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut shown: Vec<String> = grants
        .iter()
        .map(|g| {
            let by = g.granted_by.as_ref().map_or("the bot", |u| u.as_str());
            format!(
                "{} (granted by {} at {})",
                Window::show(g.starts_at, g.ends_at),
                by,
                time(g.granted_at)
            )
        })
        .collect();
    shown.sort();
    shown.join("; ")
}

/// The input `roles grant` binds ([`Ctx::bind`]): the window its prompt showed.
const WINDOW: &str = "the window";

/// A grant's window as held with its request: `from <start|now> until
/// <end|revoked>`, the times in RFC 3339 (UTC), read back by its approved run.
struct Window;

impl Window {
    fn show(
        starts_at: Option<chrono::DateTime<chrono::Utc>>,
        ends_at: Option<chrono::DateTime<chrono::Utc>>,
    ) -> String {
        let time =
            |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        format!(
            "from {} until {}",
            starts_at.map_or_else(|| "now".to_string(), time),
            ends_at.map_or_else(|| "revoked".to_string(), time)
        )
    }

    /// The start and end of a held window; an internal error for one this
    /// version did not write.
    #[allow(clippy::type_complexity)]
    fn parse(
        held: &str,
    ) -> Result<
        (
            Option<chrono::DateTime<chrono::Utc>>,
            Option<chrono::DateTime<chrono::Utc>>,
        ),
        CommandError,
    > {
        let bad = || CommandError::internal(format!("a held grant window does not parse: {held}"));
        let (start, end) = held
            .strip_prefix("from ")
            .and_then(|rest| rest.split_once(" until "))
            .ok_or_else(bad)?;
        let time = |t: &str, none: &str| match t {
            _ if t == none => Ok(None),
            _ => chrono::DateTime::parse_from_rfc3339(t)
                .map(|t| Some(t.with_timezone(&chrono::Utc)))
                .map_err(|_| bad()),
        };
        Ok((time(start, "now")?, time(end, "revoked")?))
    }
}

pub(super) async fn revoke(ctx: &mut Ctx<()>) -> Result<Reply, CommandError> {
    // Who may revoke what was asked already: `change_rule`, before this runs.
    let (user, role) = ruled_user_and_role(&ctx.args)?;
    let revoker = ctx.caller.user.clone();
    let configured = ctx.bot.configured_holders(&role).contains(&user);
    let no_grant = || {
        if configured {
            // `OPKIT_ADMINS` (or `--roles`) gives it, not a grant: say so, or
            // "no grant" reads as if they did not hold it.
            CommandError::user(mrkdwn!(
                "{} holds {} from the bot's configuration (`OPKIT_ADMINS`, or `--roles` locally), \
                 not from a grant: it cannot be revoked in chat. Change the configuration and \
                 restart (deployed: the stack's `AdminUserIds` parameter).",
                user.mention(),
                role
            ))
        } else {
            CommandError::user(mrkdwn!("{} has no grant of {}.", user.mention(), role))
        }
    };
    // Ask only when there is something to end.
    let mut live: Vec<Grant> = ctx.bot.store().grants_for(&user).await?;
    live.retain(|g| g.role == role && !g.has_ended(ctx.now));
    if live.is_empty() {
        return Err(no_grant());
    }
    // It ends the grants its prompt named or none: a grant made while it
    // waited (a standing one by another granter) is not taken by this click.
    ctx.bind("the grants it would end", grant_set(&live))?;
    ctx.confirm(mrkdwn!(
        "It would take *{}* from {}, ending {}.",
        role,
        user.mention(),
        grants_of(&mut live, ctx.now)
    ))?;
    let mut removed = ctx.bot.store().remove_grants(&user, &role).await?;
    if removed.is_empty() {
        return Err(no_grant());
    }
    let what = grants_of(&mut removed, ctx.now);
    Ok(Reply::text(mrkdwn!(
        "{} revoked *{}* from {}, ending {}.",
        revoker.mention(),
        role,
        user.mention(),
        what
    )))
}

/// `the grant until revoked`, or `2 grants: …; …`, in start order.
fn grants_of(grants: &mut [Grant], now: chrono::DateTime<chrono::Utc>) -> Mrkdwn {
    grants.sort_by_key(|g| (g.starts_at, g.granted_at));
    let windows: Vec<Mrkdwn> = grants.iter().map(|g| g.describe_window(now)).collect();
    match windows.len() {
        1 => mrkdwn!("the grant {}", windows[0]),
        n => mrkdwn!("{} grants: {}", n, Mrkdwn::join(windows, "; ")),
    }
}

/// One line per live grant, in a stable order.
fn describe_grants(grants: &[Grant], now: chrono::DateTime<chrono::Utc>) -> Vec<Mrkdwn> {
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
                .map(|u| mrkdwn!(", granted by {}", u.mention()));
            mrkdwn!(
                "• {} *{}* {}{}",
                g.user.mention(),
                g.role,
                g.describe_window(now),
                by
            )
        })
        .collect()
}

pub(super) async fn list(ctx: &mut Ctx<()>) -> Result<Reply, CommandError> {
    let store = ctx.bot.store().clone();
    let (grants, none) = match ctx.args.len() {
        0 => (
            store.all_grants().await?,
            Mrkdwn::from("There are no grants."),
        ),
        1 => {
            let user = ctx.bot.user_arg(&ctx.args, 0).await?;
            (
                store.grants_for(&user).await?,
                mrkdwn!("{} has no grants.", user.mention()),
            )
        }
        _ => return Err(CommandError::usage("give at most one user")),
    };
    let lines = describe_grants(&grants, ctx.now);
    if lines.is_empty() {
        return Ok(Reply::text(none));
    }
    let hint = Mrkdwn::from("Narrow it with `roles list @user` or `roles who <role>`.");
    Ok(Reply::text(mrkdwn!("Grants:\n{}", fit_list(lines, &hint))))
}

pub(super) async fn who(ctx: &mut Ctx<()>) -> Result<Reply, CommandError> {
    if ctx.args.len() != 1 {
        return Err(CommandError::usage("give one role"));
    }
    let role = Role::parse(ctx.args.word(0, "a role")?)?;
    let grants = ctx.bot.store().grants_with_role(&role).await?;
    // Holders by configuration (`OPKIT_ADMINS`, `opkit shell --roles`) hold it
    // without a grant: list them first, or `roles who admin` leaves out the admins.
    let mut lines: Vec<Mrkdwn> = ctx
        .bot
        .configured_holders(&role)
        .iter()
        .map(|user| {
            mrkdwn!(
                "• {} *{}* always (set in the configuration)",
                user.mention(),
                role
            )
        })
        .collect();
    lines.extend(describe_grants(&grants, ctx.now));
    lines.extend(group_lines(ctx, &role).await?);
    if lines.is_empty() {
        return Ok(Reply::text(mrkdwn!("Nobody holds {}.", role)));
    }
    let hint = Mrkdwn::from("See one person's with `roles list @user`.");
    Ok(Reply::text(mrkdwn!(
        "*{}*:\n{}",
        role,
        fit_list(lines, &hint)
    )))
}

/// Most members listed per linked group in `roles who`.
const MEMBERS_SHOWN: usize = 20;

/// One line per user group linked to `role`: its members now (from the
/// minute-long cache), or why they are not known.
async fn group_lines(ctx: &Ctx<()>, role: &Role) -> Result<Vec<Mrkdwn>, CommandError> {
    let groups = ctx.bot.group_roles();
    let links = groups.links(ctx.now).await?;
    let mut lines = Vec::new();
    for link in links.of_role(role) {
        if !groups.gives(role) {
            lines.push(mrkdwn!(
                "• members of {}: ignored, *{}* cannot come from a user group (linked by {}; an admin may {})",
                link.group_name(),
                role,
                link.linked_by.mention(),
                Code::new(&format!("roles unlink {} {}", role, link.group))
            ));
            continue;
        }
        let members = match groups.membership(&link.group, ctx.now).await {
            Membership::Members(members) if members.is_empty() => Mrkdwn::from("nobody now"),
            Membership::Members(members) => {
                let shown = members.iter().take(MEMBERS_SHOWN).map(|u| u.mention());
                let more = members.len().saturating_sub(MEMBERS_SHOWN);
                let more = (more > 0).then(|| mrkdwn!(" and {} more", more));
                mrkdwn!("{}{}", Mrkdwn::join(shown, ", "), more)
            }
            Membership::NoSuchGroup => Mrkdwn::from("nobody: Slack knows no such group now"),
            Membership::Unknown(reason) => mrkdwn!(
                "unknown: I could not ask Slack who is in it ({})",
                Code::new(&reason)
            ),
        };
        lines.push(mrkdwn!(
            "• members of {} *{}* while in it (linked by {}): {}",
            link.group_name(),
            role,
            link.linked_by.mention(),
            members
        ));
    }
    Ok(lines)
}
