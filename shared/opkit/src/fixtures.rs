//! A small stateful script for the framework's own tests (Opkit ships no pack
//! but its built-ins; Catbot's packs are tested in their own crate).

use std::collections::BTreeMap;

use crate::engine::{Command, CommandError, Ctx, Script};
use crate::slack::Reply;
use crate::testing::TestBot;

/// `tally <name>`: counts, in channel, in the state of the script `tally`.
pub(crate) fn tally() -> Script<BTreeMap<String, u64>> {
    Script::new("tally").command(
        Command::new("tally")
            .usage("<name>")
            .describe("Count one more of something")
            .in_channel()
            .handler(|ctx| Box::pin(count(ctx))),
    )
}

async fn count(ctx: &mut Ctx<BTreeMap<String, u64>>) -> Result<Reply, CommandError> {
    let name = ctx.args.word(0, "a name")?.to_string();
    let n = ctx.state.entry(name.clone()).or_default();
    *n += 1;
    Ok(Reply::text(format!(
        "{} counted *{name}* ({n}).",
        ctx.caller.user.mention()
    )))
}

/// A [`TestBot`] with the built-ins and `tally`.
pub(crate) fn bot() -> TestBot {
    TestBot::with(|b| b.script(tally()))
}
