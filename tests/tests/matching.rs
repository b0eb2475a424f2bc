//! Matching against Catbot's whole registry (built-ins, queue, schedule, weather
//! and the AWS packs): a near miss of any word of any form is suggested, never
//! taken as an argument of a shorter form. Nothing here calls AWS or Slack.

use std::sync::Arc;

use catbot::AwsPacksConfig;
use opkit::engine::{Bot, Caller, Registry, Request, Resolution};
use opkit::ids::UserId;
use opkit::store::memory::MemoryStore;
use opkit::text::tokenize;

const ADMIN: &str = "UADMIN";

/// Catbot as the worker builds it, its AWS clients pointed at a closed port.
async fn catbot() -> Bot {
    let config = opkit::config::Config::from_lookup(|name| match name {
        "OPKIT_ADMINS" => Some(ADMIN.to_owned()),
        _ => None,
    })
    .expect("config");
    let settings = catbot::Settings::from_lookup(|_| None).expect("default settings");
    let sdk = opkit_tests::aws::sdk_config_at("http://127.0.0.1:9", None).await;
    catbot::with_aws_packs(
        catbot::builder(&config, &settings, Arc::new(MemoryStore::new())),
        &sdk,
        &AwsPacksConfig::default(),
    )
    .build()
    .expect("build Catbot")
}

async fn reply(bot: &Bot, text: &str) -> String {
    let caller = Caller::user(UserId::parse(ADMIN).unwrap());
    bot.handle(&Request::new(caller, text))
        .await
        .text
        .into_string()
}

/// `text` as Slack must receive it to display it as typed: `&`, `<`, `>` escaped.
fn escaped(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[tokio::test]
async fn the_issues_typos_are_suggested_not_run() {
    let bot = catbot().await;
    for (typed, expected) in [
        (
            "queue statuss",
            "I don't know `queue statuss`. Did you mean `queue status [<env>]`? \
             To give `queue` the argument \"statuss\", quote it: `queue \"statuss\"`.",
        ),
        (
            "queue joni perf",
            "I don't know `queue joni`. Did you mean `queue join <env> [for <duration>]`? \
             To give `queue` the argument \"joni\", quote it: `queue \"joni\"`.",
        ),
        (
            "ec2 strat web",
            "I don't know `ec2 strat`. Did you mean `ec2 start <name|id> [all]`? \
             To give `ec2` the argument \"strat\", quote it: `ec2 \"strat\"`.",
        ),
        (
            "roles grnt <@U0BOB0001> ops",
            "I don't know `roles grnt`. Did you mean \
             `roles grant <@user> <role> [for <duration>] [from <HH:MM|ISO time>]`?",
        ),
    ] {
        // The grammar is shown as text: on the wire its angle brackets are escaped,
        // so Slack displays `<env>` and never reads it as markup.
        assert_eq!(reply(&bot, typed).await, escaped(expected), "{typed}");
    }
    // AND nothing ran: nobody is in line, nobody holds a grant
    assert!(bot.store().all_grants().await.unwrap().is_empty());
    assert_eq!(
        reply(&bot, "queue status").await,
        "No environment is reserved."
    );
}

/// Ways to mistype `word` by one keystroke: a doubled last letter, two
/// neighbours swapped, a letter left out.
fn mistypes(word: &str) -> Vec<String> {
    let chars: Vec<char> = word.chars().collect();
    let mut out = Vec::new();
    out.push(format!("{word}{}", chars[chars.len() - 1]));
    let mut swapped = chars.clone();
    swapped.swap(1, 2);
    out.push(swapped.into_iter().collect());
    let mut dropped = chars.clone();
    dropped.remove(1);
    out.push(dropped.into_iter().collect());
    out.retain(|typo| typo != word);
    out
}

#[tokio::test]
async fn every_form_with_one_word_mistyped_suggests_that_form() {
    // GIVEN every syntax form Catbot registers
    let bot = catbot().await;
    let registry: Arc<Registry> = bot.registry();
    let forms: Vec<String> = registry
        .commands()
        .iter()
        .flat_map(|c| c.forms.clone())
        .collect();
    assert!(forms.len() > 30, "{forms:?}");
    let mut checked = 0;
    let mut ties = Vec::new();
    for form in &forms {
        let words: Vec<&str> = form.split(' ').collect();
        for (i, word) in words.iter().enumerate() {
            // (words of one or two letters, such as `in`, must be typed exactly)
            if word.chars().count() < 3 {
                continue;
            }
            for typo in mistypes(word) {
                let mut typed: Vec<String> = words.iter().map(|w| (*w).to_owned()).collect();
                typed[i] = typo.clone();
                let text = format!("{} x", typed.join(" "));
                // WHEN it is resolved
                // THEN that form is suggested, with as many words as the form has
                match registry.resolve(&tokenize(&text)) {
                    Resolution::Unknown {
                        suggestion: Some(command),
                        typed_words,
                        ..
                    } => {
                        assert_eq!(typed_words, words.len(), "{text}");
                        if !command.forms.contains(form) {
                            // only a form the typo is just as near to may win
                            let near = |f: &str| -> usize {
                                f.split(' ')
                                    .zip(&typed)
                                    .map(|(w, t)| strsim::osa_distance(w, t))
                                    .sum()
                            };
                            let other = command
                                .forms
                                .iter()
                                .find(|f| f.split(' ').count() == words.len())
                                .unwrap_or_else(|| panic!("`{text}` suggested `{}`", command.name));
                            assert!(
                                near(other) <= near(form),
                                "`{text}` suggested `{other}`, nearer to `{form}`"
                            );
                            ties.push(text.clone());
                        }
                    }
                    other => panic!("`{text}` did not suggest `{form}`: {other:?}"),
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 100, "{checked} typos checked");
    eprintln!("{checked} typos checked, {} ties", ties.len());
    // (`alarms uwatch` is one keystroke from both `alarms watch` and `alarms unwatch`)
    assert!(
        ties.len() * 20 < checked,
        "{} ties of {checked}: {ties:?}",
        ties.len()
    );
}

#[tokio::test]
async fn every_command_has_an_example_that_runs_it() {
    // GIVEN every command Catbot registers
    let bot = catbot().await;
    for command in bot.registry().commands() {
        // THEN it has an example for `help <command>`
        assert!(
            !command.examples.is_empty(),
            "{} has no example",
            command.name
        );
        // AND each example, typed, is that command
        for example in &command.examples {
            match bot.registry().resolve(&tokenize(example)) {
                Resolution::Matched { command: c, .. } => {
                    assert_eq!(c.name, command.name, "`{example}`");
                }
                other => panic!("`{example}` does not run {}: {other:?}", command.name),
            }
        }
    }
}

#[tokio::test]
async fn help_for_a_group_lists_the_whole_group() {
    let bot = catbot().await;
    for (group, members) in [
        (
            "queue",
            &["queue join", "queue leave", "queue kick", "queue status"][..],
        ),
        (
            "schedule",
            &["schedule add", "schedule remove", "schedules"][..],
        ),
        (
            "roles",
            &[
                "roles grant",
                "roles revoke",
                "roles list",
                "roles who",
                "roles link",
                "roles unlink",
            ][..],
        ),
        (
            "ec2",
            &[
                "ec2 list",
                "ec2 status",
                "ec2 logs",
                "ec2 start",
                "ec2 stop",
                "ec2 reboot",
                "ec2 subscribe",
                "ec2 unsubscribe",
            ][..],
        ),
    ] {
        let help = reply(&bot, &format!("help {group}")).await;
        assert!(
            help.starts_with(&format!("The `{group}` commands you can run:")),
            "{help}"
        );
        let listed = help.lines().filter(|l| l.starts_with("• `")).count();
        assert_eq!(listed, members.len(), "{help}");
        for member in members {
            assert!(help.contains(&format!("• `{member}")), "{member}: {help}");
        }
    }
    // AND one command shows its formats and example
    let schedule = reply(&bot, "help schedule add").await;
    assert!(
        schedule.contains(&escaped(
            "• `\"<when>\"`: in double quotes: `\"every 15m\"`"
        )),
        "{schedule}"
    );
    assert!(
        schedule.contains("Example: `schedule add standup \"weekdays 09:00\" #ops queue status`"),
        "{schedule}"
    );
}

/// `example` as Slack sends it once typed in its message box: `@name` picked
/// from the list becomes a mention (`<@UNAME|name>`), `@group-name` a user group
/// mention, `#name` a channel link — what `help` shows is what a user types in
/// Slack, and the client turns these into entities.
fn as_slack_sends(example: &str) -> String {
    example
        .split(' ')
        .map(|word| {
            if let Some(name) = word.strip_prefix('@') {
                let id: String = name
                    .chars()
                    .filter(char::is_ascii_alphanumeric)
                    .collect::<String>()
                    .to_ascii_uppercase();
                if name.contains('-') {
                    format!("<!subteam^S{id}|@{name}>")
                } else {
                    format!("<@U{id}|{name}>")
                }
            } else if let Some(name) = word.strip_prefix('#') {
                format!("<#C{}|{name}>", name.to_ascii_uppercase())
            } else {
                word.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[tokio::test]
async fn every_example_in_help_parses_as_its_command() {
    // GIVEN every command Catbot registers, and each example `help` shows for it
    let bot = catbot().await;
    for command in bot.registry().commands() {
        for example in &command.examples {
            // WHEN an admin types it in Slack
            let typed = as_slack_sends(example);
            let answer = reply(&bot, &typed).await;
            // THEN its arguments are read: no usage error, whatever else comes of it
            assert!(
                !answer.contains(". Usage: `"),
                "`{example}` (help of {}) does not parse: {answer}",
                command.name
            );
            assert!(!answer.starts_with("I don't know"), "`{example}`: {answer}");
        }
    }
}
