//! `help`: what the asker can run — every command, a group (`help roles`: the
//! commands whose first word is `roles`), or one command in full: its grammar,
//! the formats its arguments accept, its examples, and who may run it.
//!
//! Help is filtered by the same authorize function as dispatch: it never lists
//! a command that would then be denied (one command asked for by name is shown
//! with "You cannot run it now." instead).

use std::sync::Arc;

use crate::engine::command::{CommandError, CommandSpec, Ctx};
use crate::engine::registry::Resolution;
use crate::mrkdwn;
use crate::slack::mrkdwn::{Code, CommandLine, Mrkdwn, UserText};
use crate::slack::{Block, Reply};
use crate::text::canonical;

/// What each placeholder of a usage line accepts, shown by `help <command>`
/// under the grammar for the placeholders its usage line has.
const FORMATS: &[(&str, &str)] = &[
    (
        "<@user>",
        "a person: type @ and pick them, so Slack makes it a mention (a name typed as \
         text is refused)",
    ),
    (
        "<#channel>",
        "a channel: type # and pick it, so Slack makes it a link (`#name` typed as text \
         is refused)",
    ),
    (
        "<role>",
        "a role name: 1 to 32 lowercase letters, digits, `-` or `_`, such as `ops`",
    ),
    (
        "<duration>",
        "a number and a unit — `45s`, `90m`, `2h`, `1d`, `1w` — or several, such as \
         `1h30m`; at most 90 days",
    ),
    (
        "<HH:MM|ISO time>",
        "`HH:MM`, the next time that clock time comes round, or an ISO-8601 time such \
         as `2026-11-30T22:00:00Z`",
    ),
    (
        "\"<when>\"",
        "in double quotes: `\"every 15m\"` (a minute or more), `\"daily 09:00\"`, \
         `\"weekdays 09:00\"`, or days and a time such as `\"mon,wed,fri 17:30\"`",
    ),
    ("<command", "a command as you would type it to me"),
    ("<id>", "a request's id, as `approvals` lists it"),
];

pub(super) async fn help(ctx: &mut Ctx<()>) -> Result<Reply, CommandError> {
    if ctx.args.is_empty() {
        // Decided at every call; rendered once per set of commands allowed.
        let registry = ctx.bot.registry();
        let all = registry.commands();
        let may = ctx.bot.authorize_each(&ctx.caller.user, all).await?;
        return Ok(registry.listing(&may, || {
            let commands: Vec<Arc<CommandSpec>> = all
                .iter()
                .zip(&may)
                .filter(|(_, may)| **may)
                .map(|(c, _)| c.clone())
                .collect();
            listing(
                "Here is what you can run:".into(),
                &commands,
                "`help <command>` shows its grammar, formats and an example; `help roles` \
                 (or another first word) shows a group.",
            )
        }));
    }
    let words: Vec<String> = ctx
        .args
        .tokens()
        .iter()
        .map_while(|t| t.as_word().map(str::to_lowercase))
        .collect();
    let wanted = canonical(ctx.args.tokens());
    if let [group] = words.as_slice()
        && ctx.args.len() == 1
    {
        let members: Vec<Arc<CommandSpec>> = ctx
            .bot
            .registry()
            .commands()
            .iter()
            .filter(|c| in_group(c, group))
            .cloned()
            .collect();
        if members.len() > 1 {
            let commands = allowed(ctx, &members).await?;
            if commands.is_empty() {
                return Ok(Reply::text(mrkdwn!(
                    "You cannot run any {} command here.",
                    CommandLine::new(&wanted)
                )));
            }
            return Ok(listing(
                mrkdwn!("The {} commands you can run:", CommandLine::new(&wanted)),
                &commands,
                "`help <command>` shows its grammar, formats and an example.",
            ));
        }
    }
    let command = match ctx.bot.registry().resolve(ctx.args.tokens()) {
        Resolution::Matched { command, .. } => command,
        Resolution::Unknown {
            suggestion: Some(suggestion),
            ..
        } if allowed(ctx, std::slice::from_ref(&suggestion)).await?.len() == 1 => {
            return Err(CommandError::user(mrkdwn!(
                "There is no command {}. Did you mean {}?",
                CommandLine::new(&wanted),
                Code::new(&format!("help {}", suggestion.name))
            )));
        }
        _ => {
            return Err(CommandError::user(mrkdwn!(
                "There is no command {}. Type `help` for the list.",
                CommandLine::new(&wanted)
            )));
        }
    };
    let decision = ctx.bot.authorize(&ctx.caller.user, &command).await?;
    Ok(Reply::text(describe(&command, decision.allowed)))
}

/// Whether `command` belongs to the group `group` (its first word), or its
/// plural (`schedules` is with `schedule add`).
fn in_group(command: &CommandSpec, group: &str) -> bool {
    let stem = group.strip_suffix('s').unwrap_or(group);
    command.forms.iter().any(|form| {
        let first = form.split(' ').next().unwrap_or_default();
        first == group || first.strip_suffix('s').unwrap_or(first) == stem
    })
}

/// The commands of `commands` the asker may run.
async fn allowed(
    ctx: &Ctx<()>,
    commands: &[Arc<CommandSpec>],
) -> Result<Vec<Arc<CommandSpec>>, CommandError> {
    let may = ctx.bot.authorize_each(&ctx.caller.user, commands).await?;
    Ok(commands
        .iter()
        .zip(may)
        .filter(|(_, may)| *may)
        .map(|(c, _)| c.clone())
        .collect())
}

/// A list of commands with a title and a closing hint.
fn listing(title: Mrkdwn, commands: &[Arc<CommandSpec>], hint: &'static str) -> Reply {
    // Commands may come from a declarative file: their words are text too.
    let lines = commands.iter().map(|c| {
        mrkdwn!(
            "• {} — {}",
            Code::new(&c.usage_line()),
            UserText::line(&c.description)
        )
    });
    let body = Mrkdwn::join(lines, "\n");
    Reply::text(mrkdwn!("{}\n{}", title, body))
        .block(Block::Section {
            text: mrkdwn!("*{}*", title),
        })
        .block(Block::Section { text: body })
        .block(Block::Context { text: hint.into() })
}

/// One command in full: grammar, description, other forms, formats, examples,
/// who may run it.
fn describe(command: &CommandSpec, allowed: bool) -> Mrkdwn {
    let mut text = format!("`{}`\n{}", command.usage_line(), command.description);
    if command.forms.len() > 1 {
        text.push_str(&format!("\nAlso: `{}`", command.forms[1..].join("`, `")));
    }
    for (placeholder, format) in FORMATS {
        if command.usage.contains(placeholder) {
            let shown = placeholder.trim_end_matches('…');
            let shown = if shown.ends_with('>') || shown.ends_with('"') {
                shown.to_string()
            } else {
                format!("{shown}…>")
            };
            text.push_str(&format!("\n• `{shown}`: {format}"));
        }
    }
    match command.examples.as_slice() {
        [] => {}
        [one] => text.push_str(&format!("\nExample: `{one}`")),
        many => text.push_str(&format!("\nExamples: `{}`", many.join("`, `"))),
    }
    if !command.access.is_open() {
        text.push_str(&format!("\nNeeds: {}", command.access.describe()));
    }
    if !allowed {
        text.push_str("\nYou cannot run it now.");
    }
    // Grammars, descriptions and examples (which may come from a declarative
    // file) have no mention or link: all of it is text, `<placeholders>` included.
    UserText::new(text).into()
}

#[cfg(test)]
mod tests {
    use crate::testing::TestBot;

    #[tokio::test]
    async fn help_for_a_group_lists_every_command_of_it() {
        // GIVEN the built-ins, and an admin and a user who may not grant
        let t = TestBot::new();
        // WHEN each asks for the `roles` group
        let admin = t.text("UADMIN", "help roles").await;
        let user = t.text("UBOB", "help roles").await;
        // THEN the admin sees all six, the user only those they may run
        let lines = |s: &str| s.lines().filter(|l| l.starts_with("• ")).count();
        assert!(
            admin.starts_with("The `roles` commands you can run:"),
            "{admin}"
        );
        assert_eq!(lines(&admin), 6, "{admin}");
        for name in [
            "roles grant",
            "roles revoke",
            "roles list",
            "roles who",
            "roles link",
            "roles unlink",
        ] {
            assert!(admin.contains(&format!("• `{name}")), "{name}: {admin}");
        }
        assert_eq!(lines(&user), 2, "{user}");
        assert!(!user.contains("roles grant"), "{user}");
    }

    #[tokio::test]
    async fn help_for_a_command_shows_grammar_formats_and_an_example() {
        let t = TestBot::new();
        let help = t.text("UADMIN", "help roles grant").await;
        let expected = [
            "`roles grant <@user> <role> [for <duration>] [from <HH:MM|ISO time>]`",
            "• `<@user>`: a person: type @ and pick them",
            "• `<role>`: a role name",
            "• `<duration>`: a number and a unit",
            "• `<HH:MM|ISO time>`: `HH:MM`, the next time",
            "Example: `roles grant @alice ops for 2h from 22:00`",
            "Needs: admin",
        ];
        for part in expected {
            // The grammar is text: its angle brackets reach Slack escaped.
            let part = part.replace('<', "&lt;").replace('>', "&gt;");
            assert!(help.contains(&part), "{part}\n---\n{help}");
        }
        // AND what a user may not run says so
        assert!(
            t.text("UBOB", "help roles grant")
                .await
                .ends_with("You cannot run it now.")
        );
    }

    #[tokio::test]
    async fn help_for_a_near_miss_suggests_and_for_nonsense_says_so() {
        let t = TestBot::new();
        assert_eq!(
            t.text("UADMIN", "help roles grnt").await,
            "There is no command `roles grnt`. Did you mean `help roles grant`?"
        );
        assert_eq!(
            t.text("UADMIN", "help fly away").await,
            "There is no command `fly away`. Type `help` for the list."
        );
        // a single command is not a group: `help whoami` is that command
        assert!(
            t.text("UADMIN", "help whoami")
                .await
                .starts_with("`whoami`\n")
        );
    }

    #[tokio::test]
    async fn every_built_in_has_an_example_that_runs_it() {
        let t = TestBot::new();
        for command in t.bot.registry().commands() {
            assert!(
                !command.examples.is_empty(),
                "{} has no example",
                command.name
            );
            for example in &command.examples {
                match t.bot.registry().resolve(&crate::text::tokenize(example)) {
                    crate::engine::registry::Resolution::Matched { command: c, .. } => {
                        assert_eq!(c.name, command.name, "`{example}`");
                    }
                    other => panic!("`{example}` does not run {}: {other:?}", command.name),
                }
            }
        }
    }
}
