//! Decisions typed instead of clicked: for the shell, `opkit say --yes`, and Slack
//! clients where buttons fail.
//!
//! ```text
//! approvals               what is waiting for you to decide (yours, and what you may approve)
//! confirm <id>            run your pending request           (the Confirm button)
//! cancel <id>             drop it                            (the Cancel button)
//! approve <id>            approve someone else's request     (the Approve button)
//! deny <id>               refuse it, or withdraw your own    (the Deny button)
//! ```
//!
//! `<id>` is the short id a prompt shows (`approve 1a2b3c4d`), or any longer start
//! of the request's id. A typed decision goes through [`Bot::decide`], the function
//! a click calls: the same rules, the same audit records, the same single use.

use crate::engine::command::{CommandError, Ctx};
use crate::engine::gate::{Decision, PENDING_SCRIPT, Pending, pending_state, short_id};
use crate::slack::Reply;
use crate::text::one_line;
use crate::timespec::format_time;

/// The shortest id prefix accepted: long enough that a typo does not land on
/// another request.
const MIN_ID_LEN: usize = 4;

/// The pending requests, by id, that have not expired.
async fn pending(ctx: &Ctx<()>) -> Result<Vec<(String, Pending)>, CommandError> {
    let loaded = ctx.bot.store().load(PENDING_SCRIPT).await?;
    let state = pending_state(loaded.value)?;
    Ok(state
        .requests
        .into_iter()
        .filter(|(_, p)| p.expires_at > ctx.now)
        .collect())
}

/// `approvals`: the pending requests the typist may decide.
pub(crate) async fn list(ctx: &mut Ctx<()>) -> Result<Reply, CommandError> {
    if !ctx.args.is_empty() {
        return Err(CommandError::usage("`approvals` takes no arguments"));
    }
    let user = ctx.caller.user.clone();
    let mut lines = Vec::new();
    for (id, p) in pending(ctx).await? {
        let Some(command) = ctx.bot.registry().find(&p.command).cloned() else {
            continue;
        };
        // Deny (approvals) and Cancel (confirmations) are open to everyone who
        // may decide the request at all.
        let any = if p.approval {
            Decision::Deny
        } else {
            Decision::Cancel
        };
        if ctx.bot.may_settle(&user, &p, &command, any).await?.is_err() {
            continue;
        }
        let asker = if p.request.caller.user == user {
            "you".to_string()
        } else {
            p.request.caller.user.mention()
        };
        let (kind, verbs) = if p.approval {
            ("approval", "approve|deny")
        } else {
            ("confirmation", "confirm|cancel")
        };
        let summary = if p.summary.is_empty() {
            String::new()
        } else {
            format!(" — {}", p.summary)
        };
        lines.push(format!(
            "• `{}` {asker} asked to run `{}`: waits for {kind} until {} (`{verbs} {}`){summary}",
            short_id(&id),
            p.request.text,
            format_time(p.expires_at),
            short_id(&id),
        ));
    }
    if lines.is_empty() {
        return Ok(Reply::text("Nothing is waiting for you to decide."));
    }
    Ok(Reply::text(format!(
        "Waiting for a decision:\n{}",
        lines.join("\n")
    )))
}

/// `confirm|cancel|approve|deny <id>`: settles one pending request, as its
/// button would.
pub(crate) async fn decide(ctx: &mut Ctx<()>, decision: Decision) -> Result<Reply, CommandError> {
    let verb = match decision {
        Decision::Confirm => "confirm",
        Decision::Cancel => "cancel",
        Decision::Approve => "approve",
        Decision::Deny => "deny",
    };
    if ctx.args.len() != 1 {
        return Err(CommandError::usage(
            "give the id of one pending request (`approvals` lists them)",
        ));
    }
    let typed = ctx.args.word(0, "a request id")?.to_ascii_lowercase();
    if typed.len() < MIN_ID_LEN || !typed.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(CommandError::user(format!(
            "`{}` is not a request id: give the id the prompt shows, such as `{verb} 1a2b3c4d` \
             (`approvals` lists them).",
            one_line(&typed)
        )));
    }
    let found: Vec<(String, Pending)> = pending(ctx)
        .await?
        .into_iter()
        .filter(|(id, _)| id.starts_with(&typed))
        .collect();
    let (id, p) = match found.as_slice() {
        [one] => one.clone(),
        [] => {
            return Err(CommandError::user(format!(
                "No pending request has the id `{typed}`: it was decided, it expired, or the id \
                 is mistyped. `approvals` lists what is waiting for you."
            )));
        }
        _ => {
            return Err(CommandError::user(format!(
                "`{typed}` starts the id of {} pending requests; type more of it.",
                found.len()
            )));
        }
    };
    let fits = match decision {
        Decision::Confirm | Decision::Cancel => !p.approval,
        Decision::Approve | Decision::Deny => p.approval,
    };
    if !fits {
        let (kind, verbs) = if p.approval {
            ("an approval", "approve|deny")
        } else {
            ("a confirmation", "confirm|cancel")
        };
        return Err(CommandError::user(format!(
            "`{}` waits for {kind}: type `{verbs} {}`.",
            short_id(&id),
            short_id(&id)
        )));
    }
    let mut reply = ctx
        .bot
        .decide_or_refuse(&ctx.caller, &id, decision)
        .await
        .map_err(CommandError::user)?;
    // A typed decision answers where it was typed; there is no message of
    // buttons to replace.
    reply.replace_original = false;
    Ok(reply)
}
