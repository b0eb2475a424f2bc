//! The shell and `say`: the bot in a terminal, able to finish what Slack can.
//!
//! Where Slack would show *Confirm* / *Cancel* buttons, the shell asks `[y/N]` and
//! `say --yes` answers yes; either way the answer goes to [`Bot::decide`], the
//! function a click reaches, so it is authorized and audited as a click is.
//! Approvals (a second person's) are typed: `approvals`, `approve <id>`,
//! `deny <id>` (see `opkit::engine::gate`).
//!
//! A terminal gets line editing and a history kept in the data directory
//! (`shell_history`); replies are rendered for it ([`render`]) with a blank line
//! between them. A line that is not UTF-8 is reported and skipped.

mod input;
mod render;

use std::io::IsTerminal;
use std::path::PathBuf;

use opkit::engine::bot::{Bot, Request};
use opkit::engine::command::Caller;
use opkit::engine::gate::{Decision, actions};
use opkit::ids::{ChannelId, UserId};
use opkit::slack::{Block, Reply};

use input::{Input, Read, ask};
use render::Style;

/// The history file's name in the data directory.
pub const HISTORY_FILE: &str = "shell_history";

fn caller(user: &UserId, channel: &str) -> Result<Caller, String> {
    Ok(Caller::in_channel(
        user.clone(),
        ChannelId::parse(channel).map_err(|e| format!("--channel: {e}"))?,
    ))
}

/// The pending request a reply asks the asker to confirm: the value of its
/// *Confirm* button. Approval prompts have none (someone else decides).
fn confirmation(reply: &Reply) -> Option<&str> {
    reply.blocks.iter().find_map(|b| match b {
        Block::Actions { buttons } => buttons
            .iter()
            .find(|b| b.action_id == actions::CONFIRM)
            .map(|b| b.value.as_str()),
        _ => None,
    })
}

/// Runs one command and prints its reply. With `yes`, a confirmation it asks
/// for is given, and the outcome printed instead of the prompt.
pub async fn say(
    bot: &Bot,
    user: &UserId,
    channel: &str,
    text: &str,
    yes: bool,
) -> Result<(), String> {
    let caller = caller(user, channel)?;
    let style = Style::for_stdout(bot.zone_of(user).await);
    let reply = bot.handle(&Request::new(caller.clone(), text)).await;
    match confirmation(&reply) {
        Some(pending) if yes => {
            let outcome = bot.decide(&caller, pending, Decision::Confirm).await;
            outln!("{}", render::reply(&outcome, style));
        }
        Some(_) => {
            outln!("{}", render::reply(&reply, style));
            outln!("(Not run. `opkit say --yes …` confirms at once.)");
        }
        None => outln!("{}", render::reply(&reply, style)),
    }
    Ok(())
}

/// Reads commands until end of input or `exit`. `data_dir` holds the history.
pub async fn run(bot: Bot, user: &UserId, channel: &str, data_dir: PathBuf) -> Result<(), String> {
    let caller = caller(user, channel)?;
    let style = Style::for_stdout(bot.zone_of(user).await);
    let mut input = if std::io::stdin().is_terminal() {
        let history = std::fs::create_dir_all(&data_dir)
            .ok()
            .map(|()| data_dir.join(HISTORY_FILE));
        Input::terminal(history)?
    } else {
        Input::lines(std::io::BufReader::new(std::io::stdin()))
    };
    if input.is_terminal() {
        outln!(
            "{} shell as {user}. Type `help` for commands, `exit` to leave.\n",
            bot.name()
        );
    }
    let prompt = format!("{}> ", bot.name());
    loop {
        let line = match blocking(|| input.read(&prompt))? {
            Read::Line(line) => line,
            Read::Eof => break,
            Read::Interrupted => continue,
            Read::NotUtf8 => {
                outln!("That line is not valid UTF-8, so it was skipped; type it again.\n");
                continue;
            }
        };
        let line = line.trim();
        match line {
            "" => continue,
            "exit" | "quit" => break,
            _ => {}
        }
        input.remember(line);
        let reply = bot.handle(&Request::new(caller.clone(), line)).await;
        outln!("{}", render::reply(&reply, style));
        if let Some(pending) = confirmation(&reply) {
            let decision = blocking(|| confirm(&mut input))?;
            let outcome = bot.decide(&caller, pending, decision).await;
            outln!("{}", render::reply(&outcome, style));
        }
        outln!();
    }
    Ok(())
}

/// Asks `Run it? [y/N]`: only `y` or `yes` confirms; anything else, Ctrl-C, or
/// the end of input cancels.
fn confirm(input: &mut Input) -> Result<Decision, String> {
    let question = "Run it? [y/N] ";
    let answer = if input.is_terminal() {
        input.read(question)?
    } else {
        ask(question);
        let answer = input.read("")?;
        // Echo a piped answer, so the transcript reads as a dialogue.
        match &answer {
            Read::Line(line) => outln!("{line}"),
            _ => outln!(),
        }
        answer
    };
    Ok(match answer {
        Read::Line(line) if matches!(line.trim().to_lowercase().as_str(), "y" | "yes") => {
            Decision::Confirm
        }
        Read::Eof => {
            outln!("(end of input: not confirmed)");
            Decision::Cancel
        }
        Read::NotUtf8 => {
            outln!("(that answer is not valid UTF-8: not confirmed)");
            Decision::Cancel
        }
        _ => Decision::Cancel,
    })
}

/// Runs a blocking read without stalling the runtime's other tasks.
fn blocking<T>(read: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(read)
}
