//! The shell and `say`: the bot in a terminal.

use std::io::{IsTerminal, Write};

use opkit::engine::bot::{Bot, Request};
use opkit::engine::command::Caller;
use opkit::ids::{ChannelId, UserId};
use opkit::slack::Reply;
use tokio::io::{AsyncBufReadExt, BufReader};

fn caller(user: &UserId, channel: &str) -> Result<Caller, String> {
    Ok(Caller {
        user: user.clone(),
        channel: Some(ChannelId::parse(channel).map_err(|e| format!("--channel: {e}"))?),
        team: None,
    })
}

/// Runs one command.
pub async fn say(bot: &Bot, user: &UserId, channel: &str, text: &str) -> Result<Reply, String> {
    Ok(bot
        .handle(&Request::new(caller(user, channel)?, text))
        .await)
}

/// Reads commands from stdin until EOF or `exit`.
pub async fn run(bot: Bot, user: &UserId, channel: &str) -> Result<(), String> {
    let caller = caller(user, channel)?;
    let interactive = std::io::stdin().is_terminal();
    if interactive {
        println!(
            "{} shell as {user}. Type `help` for commands, `exit` to leave.",
            bot.name()
        );
    }
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    loop {
        if interactive {
            print!("{}> ", bot.name());
            std::io::stdout().flush().map_err(|e| e.to_string())?;
        }
        let Some(line) = lines.next_line().await.map_err(|e| e.to_string())? else {
            break;
        };
        let line = line.trim();
        match line {
            "" => continue,
            "exit" | "quit" => break,
            _ => {
                let reply = bot.handle(&Request::new(caller.clone(), line)).await;
                println!("{}", reply.text);
            }
        }
    }
    Ok(())
}
