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
    Ok(Reply::text(crate::mrkdwn!(
        "{} counted *{}* ({}).",
        ctx.caller.user.mention(),
        crate::slack::UserText::new(name),
        *n
    )))
}

/// A [`TestBot`] with the built-ins and `tally`.
pub(crate) fn bot() -> TestBot {
    TestBot::with(|b| b.script(tally()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_command_that_would_outgrow_the_store_changes_nothing_and_says_so() {
        // GIVEN a tally filled with long names until the state limit is reached
        let t = bot();
        let mut refused = None;
        for i in 0..200 {
            let name = format!("{i:03}{}", "x".repeat(3_900));
            let reply = t.text("UA", &format!("tally {name}")).await;
            if !reply.contains("counted") {
                refused = Some((i, reply));
                break;
            }
        }
        // THEN the write that would pass the limit is refused with a clear message
        let (i, reply) = refused.expect("the limit was reached");
        assert!(i > 80, "about 350 KB of names fit: refused at {i}");
        assert!(reply.contains("too large"), "{reply}");
        assert!(reply.contains("nothing was changed"), "{reply}");
        // AND the saved state is the one before it
        let state: BTreeMap<String, u64> = t.state("tally").await;
        assert_eq!(state.len(), i);
    }
}
