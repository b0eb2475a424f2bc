//! `audit`: recent audit records, newest first, one line each.

use crate::audit::Outcome;
use crate::engine::command::{CommandError, Ctx};
use crate::ids::UserId;
use crate::mrkdwn;
use crate::slack::Reply;
use crate::slack::mrkdwn::{Code, Mrkdwn, UserText, fit_list};

/// Most audit records `audit` shows at once.
const MAX_AUDIT: usize = 100;

pub(super) async fn audit(ctx: &mut Ctx<()>) -> Result<Reply, CommandError> {
    let (positional, options) = ctx.args.options(&["last"])?;
    let user: Option<UserId> = match positional.len() {
        0 => None,
        1 => Some(ctx.bot.user_arg(&positional, 0).await?),
        _ => return Err(CommandError::usage("give at most one user")),
    };
    let limit = match options.get("last") {
        None => 10,
        Some(n) => match n.parse::<usize>() {
            Ok(n @ 1..=MAX_AUDIT) => n,
            _ => {
                return Err(CommandError::usage(mrkdwn!(
                    "`last` takes a number from 1 to {}",
                    MAX_AUDIT
                )));
            }
        },
    };
    let records = ctx.bot.recent_audit(user.as_ref(), limit).await?;
    if records.is_empty() {
        return Ok(Reply::text("No audit records yet."));
    }
    let lines: Vec<Mrkdwn> = records
        .iter()
        .map(|r| {
            // One record, one line: what was typed, and any free text of the
            // outcome, are text on one line.
            let detail = match &r.outcome {
                Outcome::Denied { needed } => mrkdwn!(" (needs {})", UserText::line(needed)),
                Outcome::Failed { error } => mrkdwn!(" ({})", UserText::line(error)),
                Outcome::System { action } => mrkdwn!(" ({})", UserText::line(action)),
                Outcome::Forged { reason } => mrkdwn!(" ({})", UserText::line(reason)),
                Outcome::Held { awaiting } => mrkdwn!(" (awaiting {})", UserText::line(awaiting)),
                Outcome::Decided { decision, by } => {
                    mrkdwn!(" ({} by {})", UserText::line(decision), by.mention())
                }
                _ => Mrkdwn::new(),
            };
            mrkdwn!(
                "• {} {} {} {}{} · `{}`",
                r.at,
                r.user.mention(),
                Code::new(&r.text),
                UserText::line(r.outcome.name()),
                detail,
                UserText::new(crate::engine::bot::short_ref(r.correlation_id))
            )
        })
        .collect();
    let hint = Mrkdwn::from("Narrow it with `audit @user` or `audit last <n>`.");
    Ok(Reply::text(fit_list(lines, &hint)))
}
