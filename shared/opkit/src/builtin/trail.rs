//! `audit`: recent audit records, newest first, one line each.

use crate::engine::command::{CommandError, Ctx};
use crate::ids::UserId;
use crate::slack::Reply;
use crate::text::one_line;
use crate::timespec::format_time;

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
