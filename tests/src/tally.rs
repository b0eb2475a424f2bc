//! `tally <name>`: a counter, the strictest check for lost updates — every
//! acknowledged `tally` adds exactly one, so the final count is the number of
//! commands that said they counted.

use std::collections::BTreeMap;

use opkit::engine::{Command, CommandError, Ctx, Script};
use opkit::slack::Reply;

/// The script (its state: a count per name).
pub fn script() -> Script<BTreeMap<String, u64>> {
    Script::new("tally").command(
        Command::new("tally")
            .usage("<name>")
            .describe("Count one more of something")
            .handler(|ctx| Box::pin(count(ctx))),
    )
}

async fn count(ctx: &mut Ctx<BTreeMap<String, u64>>) -> Result<Reply, CommandError> {
    let name = ctx.args.word(0, "a name")?.to_string();
    let n = ctx.state.entry(name.clone()).or_default();
    *n += 1;
    Ok(Reply::text(opkit::mrkdwn!(
        "{} counted *{}* ({}).",
        ctx.caller.user.mention(),
        opkit::slack::UserText::new(name),
        *n
    )))
}
