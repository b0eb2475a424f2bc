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
use crate::mrkdwn;
use crate::slack::Reply;
use crate::slack::mrkdwn::{Code, CommandLine, Mrkdwn, UserText, fit_list};

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

/// The pending requests the typist may decide at all: the only ones they learn
/// of. `approvals` lists them, and a typed decision looks its id up among them,
/// so a request someone may not decide answers exactly as no request does: its
/// id cannot be found by trying prefixes.
async fn decidable(ctx: &Ctx<()>) -> Result<Vec<(String, Pending)>, CommandError> {
    let user = &ctx.caller.user;
    let mut mine = Vec::new();
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
        if ctx.bot.may_settle(user, &p, &command, any).await?.is_ok() {
            mine.push((id, p));
        }
    }
    Ok(mine)
}

/// `approvals`: the pending requests the typist may decide.
pub(crate) async fn list(ctx: &mut Ctx<()>) -> Result<Reply, CommandError> {
    if !ctx.args.is_empty() {
        return Err(CommandError::usage("`approvals` takes no arguments"));
    }
    let user = ctx.caller.user.clone();
    let mut lines = Vec::new();
    for (id, p) in decidable(ctx).await? {
        let asker = if p.request.caller.user == user {
            Mrkdwn::from("you")
        } else {
            p.request.caller.user.mention()
        };
        let (kind, verbs) = if p.approval {
            ("approval", "approve|deny")
        } else {
            ("confirmation", "confirm|cancel")
        };
        let summary = if p.summary.is_empty() {
            Mrkdwn::new()
        } else {
            mrkdwn!(" — {}", p.summary)
        };
        lines.push(mrkdwn!(
            "• {} {} asked to run {}: waits for {} until {} (`{} {}`){}",
            Code::new(short_id(&id)),
            asker,
            CommandLine::new(&p.request.text),
            kind,
            p.expires_at,
            verbs,
            UserText::new(short_id(&id)),
            summary
        ));
    }
    if lines.is_empty() {
        return Ok(Reply::text("Nothing is waiting for you to decide."));
    }
    let hint = Mrkdwn::from("Decide the ones listed first.");
    Ok(Reply::text(mrkdwn!(
        "Waiting for a decision:\n{}",
        fit_list(lines, &hint)
    )))
}

/// `confirm|cancel|approve|deny <id>`: settles one pending request, as its
/// button would.
pub(crate) async fn decide(ctx: &mut Ctx<()>, decision: Decision) -> Result<Reply, CommandError> {
    let verb = decision.verb();
    if ctx.args.len() != 1 {
        return Err(CommandError::usage(
            "give the id of one pending request (`approvals` lists them)",
        ));
    }
    let typed = ctx.args.word(0, "a request id")?.to_ascii_lowercase();
    if typed.len() < MIN_ID_LEN || !typed.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(CommandError::user(mrkdwn!(
            "{} is not a request id: give the id the prompt shows, such as `{} 1a2b3c4d` \
             (`approvals` lists them).",
            Code::new(&typed),
            verb
        )));
    }
    let found: Vec<(String, Pending)> = decidable(ctx)
        .await?
        .into_iter()
        .filter(|(id, _)| id.starts_with(&typed))
        .collect();
    let (id, p) = match found.as_slice() {
        [one] => one.clone(),
        [] => {
            return Err(CommandError::user(mrkdwn!(
                "No pending request has the id {}: it was decided, it expired, or the id \
                 is mistyped. `approvals` lists what is waiting for you.",
                Code::new(&typed)
            )));
        }
        _ => {
            return Err(CommandError::user(mrkdwn!(
                "{} starts the id of {} pending requests; type more of it.",
                Code::new(&typed),
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
        return Err(CommandError::user(mrkdwn!(
            "{} waits for {}: type `{} {}`.",
            Code::new(short_id(&id)),
            kind,
            verbs,
            UserText::new(short_id(&id))
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
