use std::sync::Arc;

use super::*;
use crate::slack::{MemoryDirectory, SlackConversation, SlackUser};
use crate::testing::TestBot;
use crate::text::tokenize;

fn args(s: &str) -> Args {
    Args::new(tokenize(s))
}

fn err<T: std::fmt::Debug>(r: Result<T, CommandError>) -> String {
    r.unwrap_err().to_string()
}

#[test]
fn words_slack_turned_into_links_are_still_words() {
    let args = args(
        "<http://staging.example.com|staging.example.com> <mailto:ops@example.com|ops@example.com> \
         <https://evil.example/x|staging.example.com> <http://a.example>",
    );
    assert_eq!(
        args.word(0, "an environment").unwrap(),
        "staging.example.com"
    );
    assert_eq!(args.word(1, "an address").unwrap(), "ops@example.com");
    // a link whose label is not what it points to is not a word
    assert_eq!(
        err(args.word(2, "an environment")),
        "expected an environment, not `&lt;https://evil.example/x&gt;` (a link)"
    );
    assert!(args.word(3, "an environment").is_err());
}

#[test]
fn free_text_and_option_values_read_word_links_as_the_words_typed() {
    let a = args("deploy <http://staging.example.com|staging.example.com> now");
    assert_eq!(a.rest(1), "staging.example.com now");
    let (pos, opts) = args("perf on <http://web.example.com|web.example.com>")
        .options(&["on"])
        .unwrap();
    assert_eq!(pos.len(), 1);
    assert_eq!(opts.get("on"), Some("web.example.com"));
    let (_, opts) = args("perf from \"22:00 Europe/Paris\" for \"2h\"")
        .options(&["from", "for"])
        .unwrap();
    assert_eq!(opts.get("from"), Some("22:00 Europe/Paris"));
    assert_eq!(opts.get("for"), Some("2h"));
    // a quoted keyword is an argument, not an option
    let (pos, opts) = args("\"for\" for 2h").options(&["for"]).unwrap();
    assert_eq!(pos.len(), 1);
    assert_eq!(opts.get("for"), Some("2h"));
}

#[test]
fn typed_accessors_say_what_was_expected() {
    let a = args("<@U1|al> ops");
    assert_eq!(a.user(0).unwrap().as_str(), "U1");
    assert_eq!(a.word(1, "a role").unwrap(), "ops");
    assert_eq!(err(a.word(2, "a role")), "missing a role");
    assert_eq!(
        err(a.word(0, "a role")),
        "expected a role, not `&lt;@U1&gt;` (a mention of a user)"
    );
}

#[test]
fn a_user_must_be_a_mention_not_a_name_typed_as_text() {
    // GIVEN the ways a user is named without Slack's mention link
    for typed in ["bob", "@BOB", "BOB", "U0BOB1234", "<#C1|ops>"] {
        // WHEN read as a user
        let message = err(args(typed).user(0));
        // THEN it is refused, saying how to name a user
        assert!(
            message.starts_with(
                "expected a user: mention them like @name (Slack turns it into a link), not `"
            ),
            "{typed}: {message}"
        );
    }
    assert_eq!(
        err(args("").user(0)),
        "missing a user: mention them like @name (Slack turns it into a link)"
    );
}

#[test]
fn a_channel_must_be_slacks_channel_link() {
    let a = args("<#C0OPS0001|ops> #ops <#C0OPS0002|>");
    assert_eq!(a.channel(0).unwrap().as_str(), "C0OPS0001");
    assert_eq!(a.channel(2).unwrap().as_str(), "C0OPS0002");
    let message = err(a.channel(1));
    assert!(
        message.starts_with("expected a #channel, not `#ops`: pick it from the list Slack shows"),
        "{message}"
    );
    assert!(err(a.channel(3)).starts_with("missing a #channel"));
}

#[test]
fn user_groups_and_links_have_accessors_of_their_own() {
    let a = args(
        "<!subteam^S0ONCALL1|@oncall> @oncall <https://example.com/runbook|runbook> https://x.example/a nope",
    );
    assert_eq!(a.usergroup(0).unwrap().as_str(), "S0ONCALL1");
    assert_eq!(
        err(a.usergroup(1)),
        "expected a user group: mention it like @oncall (Slack turns it into a link), not `@oncall`"
    );
    assert_eq!(a.link(2).unwrap(), "https://example.com/runbook");
    assert_eq!(a.link(3).unwrap(), "https://x.example/a");
    assert_eq!(
        err(a.link(4)),
        "expected a link such as https://example.com, not `nope`"
    );
    assert_eq!(err(a.link(5)), "missing a link such as https://example.com");
}

#[test]
fn trailing_options_split_off() {
    let (pos, opts) = args("<@U1> ops FOR 2h from 22:00")
        .options(&["for", "from"])
        .unwrap();
    assert_eq!(pos.len(), 2);
    assert_eq!(opts.get("for"), Some("2h"));
    assert_eq!(opts.get("from"), Some("22:00"));
    assert_eq!(
        opts.duration("for").unwrap(),
        Some(chrono::Duration::hours(2))
    );
}

#[test]
fn malformed_options_are_usage_errors() {
    let err = |s: &str| args(s).options(&["for"]).unwrap_err().to_string();
    assert_eq!(err("perf for"), "`for` needs a value");
    assert_eq!(err("perf for 1h for 2h"), "`for` is given twice");
    assert_eq!(err("perf for for 2h"), "`for` needs a value");
    let (_, opts) = args("perf for soon").options(&["for"]).unwrap();
    assert!(opts.duration("for").is_err());
    // what follows a value is part of it, and quoted on one line if wrong
    let (_, opts) = args("perf for 1h \"x\n`y`\"").options(&["for"]).unwrap();
    assert_eq!(
        opts.duration("for").unwrap_err().to_string(),
        "`1h x⏎ˋyˋ` is not a duration: use a number and a unit, like 90m, 2h, 1d, 1h30m or 2 hours"
    );
}

#[test]
fn option_values_may_be_several_words() {
    // issue #10: `for 2 hours` split into the value `2` and a stray `hours`
    let (pos, opts) = args("<@U1> ops for 2 hours from 22:00 Europe/Paris")
        .options(&["for", "from"])
        .unwrap();
    assert_eq!(pos.len(), 2);
    assert_eq!(opts.get("for"), Some("2 hours"));
    assert_eq!(opts.get("from"), Some("22:00 Europe/Paris"));
    assert_eq!(
        opts.duration("for").unwrap(),
        Some(chrono::Duration::hours(2))
    );
    let (_, opts) = args("perf FOR 1 hour 30 minutes")
        .options(&["for"])
        .unwrap();
    assert_eq!(
        opts.duration("for").unwrap(),
        Some(chrono::Duration::minutes(90))
    );
}

fn directory() -> Arc<MemoryDirectory> {
    let mut gone = SlackUser::named("U0GONE001", "gone");
    gone.deleted = true;
    let mut old = SlackConversation::channel("C0OLD0001", "old");
    old.is_archived = true;
    Arc::new(
        MemoryDirectory::new()
            .with_user(SlackUser::named("U0BOB0001", "bob"))
            .with_user(gone)
            .with_conversation(SlackConversation::channel("C0OPS0001", "ops"))
            .with_conversation(old),
    )
}

#[tokio::test]
async fn a_bare_user_id_is_taken_only_once_slack_confirms_it() {
    // GIVEN a bot whose directory knows U0BOB0001 and a deactivated U0GONE001
    let dir = directory();
    let t = TestBot::with(|b| b.directory(dir.clone()));
    let bot = &t.bot;
    // THEN mentions need no lookup, confirmed ids pass, the rest is refused
    assert_eq!(
        bot.user_arg(&args("<@U0ANY0001>"), 0)
            .await
            .unwrap()
            .as_str(),
        "U0ANY0001"
    );
    assert_eq!(dir.lookups(), 0, "a mention is Slack's own word");
    assert_eq!(
        bot.user_arg(&args("U0BOB0001"), 0).await.unwrap().as_str(),
        "U0BOB0001"
    );
    assert_eq!(
        bot.user_arg(&args("@U0BOB0001"), 0).await.unwrap().as_str(),
        "U0BOB0001"
    );
    assert_eq!(
        err(bot.user_arg(&args("@BOB"), 0).await),
        "Slack knows no user `BOB`: mention them like @name (Slack turns it into a link)"
    );
    assert_eq!(
        err(bot.user_arg(&args("U0GONE001"), 0).await),
        "`U0GONE001` is a deactivated Slack account."
    );
    assert!(err(bot.user_arg(&args("bob"), 0).await).starts_with("expected a user: mention them"));
}

#[tokio::test]
async fn without_a_directory_a_bare_id_is_refused() {
    // GIVEN a bot without a bot token (the shell)
    let t = TestBot::new();
    // WHEN a user is named by a bare id
    let message = err(t.bot.user_arg(&args("U0BOB0001"), 0).await);
    // THEN it is refused (fail closed), saying why and what to type
    assert_eq!(
        message,
        "expected a user: mention them like @name (Slack turns it into a link), not \
         `U0BOB0001` (without a bot token, a bare id cannot be checked with Slack)"
    );
    assert!(
        err(t.bot.channel_arg(&args("C0OPS0001"), 0).await)
            .starts_with("expected a #channel, not `C0OPS0001` (without a bot token")
    );
}

#[tokio::test]
async fn a_bare_channel_id_is_taken_only_once_slack_confirms_it() {
    let t = TestBot::with(|b| b.directory(directory()));
    let bot = &t.bot;
    assert_eq!(
        bot.channel_arg(&args("<#C0ANY0001|any>"), 0)
            .await
            .unwrap()
            .as_str(),
        "C0ANY0001"
    );
    assert_eq!(
        bot.channel_arg(&args("C0OPS0001"), 0)
            .await
            .unwrap()
            .as_str(),
        "C0OPS0001"
    );
    assert!(
        err(bot.channel_arg(&args("C0NONE001"), 0).await)
            .starts_with("Slack knows no channel `C0NONE001` that I can see")
    );
    assert_eq!(
        err(bot.channel_arg(&args("C0OLD0001"), 0).await),
        "<#C0OLD0001> is archived: nothing can be posted there."
    );
    assert!(
        err(bot.channel_arg(&args("#ops"), 0).await).starts_with("expected a #channel, not `#ops`")
    );
}
