//! Scheduled commands (Opkit's `addCron`): run a command on a schedule, as a named
//! identity, and post the answer to a channel.
//!
//! ```text
//! schedule add <name> "<when>" <#channel> <command…>   admin; runs as the one who added it
//! schedule remove <name>                               admin
//! schedules                                            everyone: what runs when, where
//! ```
//!
//! `<when>` is one of `every 15m` (any duration of at least a minute),
//! `daily 09:00`, `weekdays 09:00`, or days and a time such as `mon,wed,fri 17:30`,
//! in quotes. The time is local to the zone named after it (`"daily 09:00
//! Europe/Paris"`), else to the zone of whoever adds the schedule, and stays that
//! local time across DST. Deployed, the every-minute expiry function runs what is due (one
//! EventBridge schedule for all entries, the entries in the table); locally,
//! `opkit serve` does. The command is authorized as the identity at run time, so a
//! schedule whose owner lost the role posts the refusal instead of running.
//!
//! A schedule runs with nobody there to click, so it never runs a command that
//! asks for a confirmation or an approval, a decision (`confirm`, `approve`,
//! `deny`, `cancel`), or `schedule add`/`remove` itself
//! ([`CommandSpec::unattended`](opkit::engine::CommandSpec::unattended)):
//! refused when the schedule is added, with the reason, and again at each run
//! (a command may become gated later; the run's refusal is posted as any
//! refused run's is). An `every` interval is at least a minute
//! ([`opkit::schedule::MIN_INTERVAL`]).
//!
//! The command text is what an admin typed: every answer quotes it through
//! [`one_line`], so a listing keeps one schedule per line.

use opkit::access::Access;
use opkit::engine::{Command, CommandError, Ctx, Resolution, Script};
use opkit::ids::Role;
use opkit::mrkdwn;
use opkit::schedule::{Entry, SCRIPT, ScheduleState, When};
use opkit::slack::mrkdwn::{Code, CommandLine, Mrkdwn, UserText, fit_list};
use opkit::slack::{Block, Reply};
use opkit::text::{Token, tokenize};

/// The schedules script; `manage` says who may add and remove schedules.
pub fn script(manage: Access) -> Script<ScheduleState> {
    Script::new(SCRIPT)
        .command(
            Command::new("schedule add")
                .usage("<name> \"<when>\" <#channel> <command…>")
                .describe("Run a command on a schedule, as you, and post the answer to a channel")
                .example("schedule add standup \"weekdays 09:00\" #ops queue status")
                .access(manage.clone())
                .rule(|bot, _, args| Box::pin(async move { schedulable(bot, args) }))
                .attended("changes the schedules: a schedule does not make or remove schedules")
                .in_channel()
                .handler(|ctx| Box::pin(add(ctx))),
        )
        .command(
            Command::new("schedule remove")
                .usage("<name>")
                .describe("Stop a scheduled command")
                .example("schedule remove standup")
                .access(manage)
                .attended("changes the schedules: a schedule does not make or remove schedules")
                .in_channel()
                .handler(|ctx| Box::pin(remove(ctx))),
        )
        .command(
            Command::new("schedules")
                .describe("Scheduled commands: what runs when, where, and as whom")
                .example("schedules")
                .handler(|ctx| Box::pin(list(ctx))),
        )
}

/// Admins manage schedules by default.
pub fn default_managers() -> Access {
    Access::role(Role::admin())
}

fn schedule_name(s: &str) -> Result<String, CommandError> {
    let name = s.to_lowercase();
    let ok = !name.is_empty()
        && name.len() <= 40
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(name)
    } else {
        Err(CommandError::usage(mrkdwn!(
            "{} is not a schedule name: use up to 40 letters, digits, `-` or `_`",
            Code::new(s)
        )))
    }
}

/// The rule of `schedule add` (so `can` answers what the run does): once the
/// words before it are in place (a channel, as a link or a bare id, third), the
/// command it would schedule must pass [`scheduled_command`]. Words out of
/// place, or nothing after the channel: the handler says what is wrong (an
/// unquoted schedule).
fn schedulable(bot: &opkit::engine::Bot, args: &opkit::engine::Args) -> Result<(), CommandError> {
    let channel_third = match args.get(2) {
        Some(Token::Channel { .. }) => true,
        Some(token) => token
            .as_typed()
            .is_some_and(|w| opkit::ids::ChannelId::parse(w).is_ok()),
        None => false,
    };
    let text = args.rest(3);
    if !channel_third || text.is_empty() {
        return Ok(());
    }
    scheduled_command(bot, &text)
}

/// Whether `text` may be put on a schedule: a command the bot knows, one that
/// may run with nobody there (no confirmation, approval or decision:
/// [`CommandSpec::unattended`], asked again at each run), with words the engine
/// takes ([`CommandSpec::check_args`]). Asked by the rule and again by the
/// handler, whatever form the channel took.
///
/// [`CommandSpec::unattended`]: opkit::engine::CommandSpec::unattended
/// [`CommandSpec::check_args`]: opkit::engine::CommandSpec::check_args
fn scheduled_command(bot: &opkit::engine::Bot, text: &str) -> Result<(), CommandError> {
    let Resolution::Matched { command, args } = bot.registry().resolve(&tokenize(text)) else {
        return Err(CommandError::user(mrkdwn!(
            "{} is not a command I know.",
            CommandLine::new(text)
        )));
    };
    let why = command
        .unattended()
        .err()
        .or_else(|| command.check_args(&args).err());
    match why {
        None => Ok(()),
        Some(why) => Err(CommandError::user(mrkdwn!(
            "{} cannot be scheduled: {}. Nothing was scheduled.",
            CommandLine::new(text),
            why
        ))),
    }
}

async fn add(ctx: &mut Ctx<ScheduleState>) -> Result<Reply, CommandError> {
    let name = schedule_name(ctx.args.word(0, "a schedule name")?)?;
    let zone = ctx.asker_zone().await;
    let typed = ctx
        .args
        .word(1, "a quoted schedule such as \"weekdays 09:00\"")?;
    let when = When::parse(typed, zone).map_err(|e| match unquoted(&ctx.args, &name, zone) {
        Some(hint) => CommandError::usage(hint),
        None => CommandError::usage(UserText::new(e.to_string())),
    })?;
    let channel = ctx.bot.channel_arg(&ctx.args, 2).await?;
    let text = ctx.args.rest(3);
    if text.is_empty() {
        return Err(CommandError::usage("missing the command to run"));
    }
    // The rule checked it when the channel was typed as one; asked again here
    // for every form the channel may take.
    scheduled_command(&ctx.bot, &text)?;
    if ctx.state.entries.contains_key(&name) {
        return Err(CommandError::user(mrkdwn!(
            "There is already a schedule {}; remove it first.",
            Code::new(&name)
        )));
    }
    let entry = Entry {
        name: name.clone(),
        next_at: when.next_after(ctx.now),
        when,
        channel,
        run_as: ctx.caller.user.clone(),
        text,
        owner_told: false,
    };
    let reply = mrkdwn!(
        "{} scheduled {} {} in {} as {}; first run {}.",
        ctx.caller.user.mention(),
        CommandLine::new(&entry.text),
        UserText::new(entry.when.to_string()),
        entry.channel.mention(),
        entry.run_as.mention(),
        entry.next_at
    );
    room_for(&ctx.state, &entry)?;
    ctx.state.entries.insert(name, entry);
    Ok(Reply::text(reply))
}

/// The most schedules one person runs as at once.
pub const MAX_SCHEDULES_PER_OWNER: usize = 25;
/// The most schedules in all.
pub const MAX_SCHEDULES: usize = 200;
/// The most bytes one schedule takes saved (JSON): its command text is the
/// part that varies. With [`MAX_SCHEDULES`], the schedules' state stays well
/// inside [`opkit::store::MAX_STATE_BYTES`] whatever anyone adds, so a run
/// (which saves each schedule's next time) always fits.
pub const MAX_SCHEDULE_BYTES: usize = 1_500;
// The caps together fit one state, with room for each entry's key.
const _: () = assert!(MAX_SCHEDULES * (MAX_SCHEDULE_BYTES + 50) < opkit::store::MAX_STATE_BYTES);

/// Whether `entry` may be added to `state`: the state is shared by every
/// schedule, so each bound refuses the one who would pass it, naming it.
fn room_for(state: &ScheduleState, entry: &Entry) -> Result<(), CommandError> {
    let bytes = serde_json::to_string(entry).map_or(usize::MAX, |s| s.len());
    if bytes > MAX_SCHEDULE_BYTES {
        return Err(CommandError::user(mrkdwn!(
            "That schedule is too long to keep ({} bytes saved; at most {}): shorten \
             its command. Nothing was scheduled.",
            bytes,
            MAX_SCHEDULE_BYTES
        )));
    }
    let owner = &entry.run_as;
    let theirs = state
        .entries
        .values()
        .filter(|e| &e.run_as == owner)
        .count();
    if theirs >= MAX_SCHEDULES_PER_OWNER {
        return Err(CommandError::user(mrkdwn!(
            "{} already runs {} schedules, the most one person may; remove one first \
             ({}). Nothing was scheduled.",
            owner.mention(),
            theirs,
            Code::new("schedule remove <name>")
        )));
    }
    if state.entries.len() >= MAX_SCHEDULES {
        return Err(CommandError::user(mrkdwn!(
            "There are already {} schedules, the most there may be; remove one first \
             ({}). Nothing was scheduled.",
            state.entries.len(),
            Code::new("schedule remove <name>")
        )));
    }
    Ok(())
}

/// A schedule typed without its quotes (`schedule add standup weekdays 09:00
/// #ops …`) arrives as several words: if some of the words after the name make
/// a schedule, say to quote them.
fn unquoted(args: &opkit::engine::Args, name: &str, zone: opkit::timespec::Tz) -> Option<Mrkdwn> {
    let words: Vec<&str> = (1..args.len())
        .map_while(|i| args.get(i).and_then(Token::as_word))
        .collect();
    (2..=words.len().min(3)).rev().find_map(|n| {
        let when = words[..n].join(" ");
        When::parse(&when, zone).ok().map(|_| {
            mrkdwn!(
                "put the schedule in quotes: {}",
                Code::new(&format!("schedule add {name} \"{when}\" #channel command…"))
            )
        })
    })
}

async fn remove(ctx: &mut Ctx<ScheduleState>) -> Result<Reply, CommandError> {
    let name = schedule_name(ctx.args.word(0, "a schedule name")?)?;
    match ctx.state.entries.remove(&name) {
        Some(entry) => Ok(Reply::text(mrkdwn!(
            "{} removed the schedule {} ({} {}).",
            ctx.caller.user.mention(),
            Code::new(&name),
            CommandLine::new(&entry.text),
            UserText::new(entry.when.to_string())
        ))),
        None => Err(CommandError::user(mrkdwn!(
            "There is no schedule {}.",
            Code::new(&name)
        ))),
    }
}

async fn list(ctx: &mut Ctx<ScheduleState>) -> Result<Reply, CommandError> {
    if ctx.state.entries.is_empty() {
        return Ok(Reply::text("Nothing is scheduled."));
    }
    let lines: Vec<Mrkdwn> = ctx
        .state
        .entries
        .values()
        .map(|e| {
            let refused = e
                .owner_told
                .then_some(" (its channel does not take my posts: invite me there)");
            mrkdwn!(
                "• {}: {} {} in {} as {}; next {}{}",
                Code::new(&e.name),
                CommandLine::new(&e.text),
                UserText::new(e.when.to_string()),
                e.channel.mention(),
                e.run_as.mention(),
                e.next_at,
                refused
            )
        })
        .collect();
    let hint = Mrkdwn::from("Remove the ones no longer needed with `schedule remove <name>`.");
    let mut body = fit_list(lines, &hint);
    if let Some(suspended) = &ctx.state.suspended {
        body = mrkdwn!(
            "*Suspended* since {}: Slack refused my token ({}), so none of these runs; next try {}.\n{}",
            suspended.since,
            Code::new(&suspended.error),
            suspended.retry_at,
            body
        );
    }
    Ok(Reply::text(body.clone()).block(Block::Section { text: body }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use opkit::testing::TestBot;

    fn bot() -> TestBot {
        TestBot::with(|b| {
            b.script(crate::packs::queue::script())
                .script(script(default_managers()))
        })
    }

    #[tokio::test]
    async fn one_owner_holds_at_most_the_cap_of_schedules_and_a_long_one_is_refused() {
        // GIVEN an admin with the most schedules one person may run
        let t = bot();
        for i in 0..MAX_SCHEDULES_PER_OWNER {
            let added = t
                .text(
                    "UADMIN",
                    &format!("schedule add s{i} \"daily 09:00\" <#C9|ops> queue status"),
                )
                .await;
            assert!(added.contains("scheduled"), "{added}");
        }
        // WHEN they add one more
        let refused = t
            .text(
                "UADMIN",
                "schedule add one-more \"daily 09:00\" <#C9|ops> queue status",
            )
            .await;
        // THEN it is refused, naming the cap and the way out, and nothing changed
        assert!(refused.contains("already runs 25 schedules"), "{refused}");
        assert!(refused.contains("schedule remove"), "{refused}");
        let state: ScheduleState = t.state(opkit::schedule::SCRIPT).await;
        assert_eq!(state.entries.len(), MAX_SCHEDULES_PER_OWNER);
        // AND a schedule whose command is too long to keep is refused too
        let long = format!(
            "schedule add long \"daily 09:00\" <#C9|ops> queue status {}",
            "x".repeat(MAX_SCHEDULE_BYTES)
        );
        let t = bot();
        let refused = t.text("UADMIN", &long).await;
        assert!(refused.contains("too long to keep"), "{refused}");
        let state: ScheduleState = t.state(opkit::schedule::SCRIPT).await;
        assert!(state.entries.is_empty());
    }

    #[tokio::test]
    async fn the_list_says_when_schedules_are_suspended_or_refused() {
        // GIVEN a schedule whose channel refused the bot, and the schedules suspended
        let t = bot();
        t.say(
            "UADMIN",
            "schedule add standup \"daily 09:00\" <#C9|ops> queue status",
        )
        .await;
        use opkit::store::StateStore;
        let mut state: ScheduleState = t.state(opkit::schedule::SCRIPT).await;
        state.entries.get_mut("standup").unwrap().owner_told = true;
        state.suspended = Some(opkit::schedule::Suspension {
            since: t.now(),
            error: "account_inactive".into(),
            retry_at: t.now() + chrono::Duration::hours(1),
        });
        let version = t.store.load(opkit::schedule::SCRIPT).await.unwrap().version;
        let state = serde_json::to_value(&state).unwrap();
        let state = opkit::store::EncodedState::new(opkit::schedule::SCRIPT, state).unwrap();
        t.store
            .save(opkit::schedule::SCRIPT, &state, version)
            .await
            .unwrap();
        // WHEN anyone lists them
        let list = t.text("UBOB", "schedules").await;
        // THEN both are said
        assert!(list.starts_with("*Suspended* since "), "{list}");
        assert!(
            list.contains("Slack refused my token (`account_inactive`)"),
            "{list}"
        );
        assert!(
            list.contains("(its channel does not take my posts: invite me there)"),
            "{list}"
        );
    }

    #[tokio::test]
    async fn what_needs_a_person_is_never_scheduled_and_the_answer_says_why() {
        // GIVEN an admin and a command for each thing nobody can do on a schedule
        let t = bot();
        for (command, why) in [
            (
                "roles revoke <@UBOB> ops",
                "`roles revoke` asks for a confirmation, and nobody is there to click it on a schedule",
            ),
            (
                "approve 0190f3a2",
                "`approve` decides a request, which only a person present may do",
            ),
            (
                "deny 0190f3a2",
                "`deny` decides a request, which only a person present may do",
            ),
            (
                "schedule add inner \"daily 09:00\" <#C9|ops> queue status",
                "`schedule add` changes the schedules: a schedule does not make or remove schedules",
            ),
            (
                "schedule remove standup",
                "`schedule remove` changes the schedules: a schedule does not make or remove schedules",
            ),
            // words the engine refuses at every run (tester F15: it was scheduled,
            // to fail every minute)
            (
                "schedules extra",
                "`schedules` takes no arguments, but was given `extra`",
            ),
        ] {
            // WHEN an admin schedules it
            let refused = t
                .text(
                    "UADMIN",
                    &format!("schedule add sneaky \"every 1h\" <#C9|ops> {command}"),
                )
                .await;
            // THEN it is refused with the reason, and nothing is scheduled
            assert!(
                refused.ends_with(&format!(
                    "` cannot be scheduled: {why}. Nothing was scheduled."
                )),
                "{refused}"
            );
            assert_eq!(t.text("UBOB", "schedules").await, "Nothing is scheduled.");
        }
    }

    #[tokio::test]
    async fn can_says_no_to_a_schedule_the_run_refuses() {
        // GIVEN an admin (tester 6, G10: `can` said yes, the run refused)
        let t = bot();
        for (text, yes) in [
            ("roles revoke <@UBOB> ops", false),
            ("schedules extra", false),
            ("no such command", false),
            ("queue status", true),
        ] {
            // WHEN `can` is asked about scheduling it, and the admin then does
            let line = format!("schedule add s{} \"every 1h\" <#C9|ops> {text}", yes as u8);
            let can = t.text("UBOB", &format!("can <@UADMIN> {line}")).await;
            let ran = t.text("UADMIN", &line).await;
            // THEN they agree
            assert_eq!(can.starts_with("Yes:"), yes, "{text}: {can}");
            assert_eq!(ran.contains(" scheduled "), yes, "{text}: {ran}");
            if !yes {
                assert!(can.starts_with("No:"), "{can}");
            }
        }
    }

    #[tokio::test]
    async fn a_channel_typed_as_a_bare_id_does_not_slip_a_gated_command_past() {
        // GIVEN a bot that can confirm a bare channel id with Slack
        let dir = opkit::slack::MemoryDirectory::new()
            .with_conversation(opkit::slack::SlackConversation::channel("C0OPS0001", "ops"));
        let t = TestBot::with(|b| {
            b.directory(std::sync::Arc::new(dir))
                .script(crate::packs::queue::script())
                .script(script(default_managers()))
        });
        // WHEN a gated command is scheduled in a channel given by its bare id
        let refused = t
            .text(
                "UADMIN",
                "schedule add sneaky \"every 1h\" C0OPS0001 roles revoke <@UBOB> ops",
            )
            .await;
        // THEN it is refused as with a channel link (the rule judges links; the
        // handler asks the same question for every form)
        assert!(refused.contains("cannot be scheduled"), "{refused}");
        assert_eq!(t.text("UBOB", "schedules").await, "Nothing is scheduled.");
        // AND a command that may run unattended is scheduled there
        let ok = t
            .text(
                "UADMIN",
                "schedule add fine \"every 1h\" C0OPS0001 queue status",
            )
            .await;
        assert!(ok.contains(" scheduled "), "{ok}");
    }

    #[tokio::test]
    async fn an_interval_under_a_minute_is_refused_with_the_minimum() {
        let t = bot();
        let refused = t
            .text(
                "UADMIN",
                "schedule add spam \"every 10s\" <#C9|ops> queue status",
            )
            .await;
        assert_eq!(
            refused,
            "`every 10s` is too often: the shortest interval is one minute (`every 1m`), as often as schedules are checked. Usage: `schedule add &lt;name&gt; \"&lt;when&gt;\" &lt;#channel&gt; &lt;command…&gt;`"
        );
        assert_eq!(t.text("UBOB", "schedules").await, "Nothing is scheduled.");
    }

    #[tokio::test]
    async fn admins_add_and_remove_schedules_and_everyone_lists_them() {
        let t = bot();
        let denied = t
            .text(
                "UBOB",
                "schedule add standup \"weekdays 09:00\" <#C9|ops> queue status",
            )
            .await;
        assert_eq!(denied, "Sorry, you need admin to run `schedule add`.");
        let added = t
            .text(
                "UADMIN",
                "schedule add standup \"weekdays 09:00\" <#C9|ops> queue status",
            )
            .await;
        assert_eq!(
            added,
            "<@UADMIN> scheduled `queue status` weekdays 09:00 UTC in <#C9> as <@UADMIN>; first run <!date^1800003600^{date_short_pretty} at {time}|2027-01-15 09:00 UTC>."
        );
        assert_eq!(
            t.text("UBOB", "schedules").await,
            "• `standup`: `queue status` weekdays 09:00 UTC in <#C9> as <@UADMIN>; next <!date^1800003600^{date_short_pretty} at {time}|2027-01-15 09:00 UTC>"
        );
        assert!(
            t.text("UADMIN", "schedule remove standup")
                .await
                .contains("removed the schedule `standup`")
        );
        assert_eq!(t.text("UBOB", "schedules").await, "Nothing is scheduled.");
    }

    #[tokio::test]
    async fn a_command_text_with_line_breaks_stays_on_its_line() {
        // GIVEN a schedule whose command carries a made-up line in a quoted word
        let t = bot();
        let added = t
            .text(
                "UADMIN",
                "schedule add sneaky \"daily 09:00\" <#C9|ops> queue status \"x\n• `fake`: `roles grant` daily 09:00 UTC\"",
            )
            .await;
        let shown = "queue status \"x⏎• ˋfakeˋ: ˋroles grantˋ daily 09:00 UTC\"";
        assert!(
            added.starts_with(&format!("<@UADMIN> scheduled `{shown}` daily")),
            "{added}"
        );
        t.say(
            "UADMIN",
            "schedule add standup \"weekdays 09:00\" <#C9|ops> queue status",
        )
        .await;
        // WHEN anyone lists the schedules
        let listed = t.text("UBOB", "schedules").await;
        // THEN there is one line per schedule
        let lines: Vec<&str> = listed.lines().collect();
        assert_eq!(lines.len(), 2, "{listed}");
        assert!(
            lines[0].starts_with(&format!("• `sneaky`: `{shown}` daily 09:00 UTC in <#C9>")),
            "{listed}"
        );
        assert!(
            lines[1].starts_with("• `standup`: `queue status`"),
            "{listed}"
        );
        // AND removing it quotes it the same way
        assert!(
            t.text("UADMIN", "schedule remove sneaky")
                .await
                .contains(&format!("(`{shown}` daily 09:00 UTC)"))
        );
        // AND what is not a name or a command is quoted on one line too
        assert!(
            t.text("UADMIN", "schedule remove \"a\nb\"")
                .await
                .starts_with("`a⏎b` is not a schedule name")
        );
        assert!(
            t.text(
                "UADMIN",
                "schedule add x \"daily 09:00\" <#C9> \"fly\n`away`\""
            )
            .await
            .starts_with("`\"fly⏎ˋawayˋ\"` is not a command I know.")
        );
    }

    #[tokio::test]
    async fn bad_schedules_get_specific_errors() {
        let t = bot();
        for (text, expected) in [
            (
                "schedule add x \"sometimes\" <#C9> queue",
                "`sometimes` is not a schedule",
            ),
            (
                "schedule add x \"daily 09:00\" ops queue",
                "expected a #channel, not `ops`",
            ),
            (
                "schedule add x \"daily 09:00\" #ops queue",
                "expected a #channel, not `#ops`: pick it from the list Slack shows",
            ),
            (
                "schedule add x \"daily 09:00\" <#C9>",
                "missing the command to run",
            ),
            (
                "schedule add x \"daily 09:00\" <#C9> fly",
                "`fly` is not a command I know.",
            ),
            (
                "schedule add a/b \"daily 09:00\" <#C9> queue",
                "`a/b` is not a schedule name",
            ),
            ("schedule remove nope", "There is no schedule `nope`."),
        ] {
            let reply = t.text("UADMIN", text).await;
            assert!(reply.starts_with(expected), "{text}: {reply}");
        }
    }

    fn bot_in(zone: &str) -> TestBot {
        let zone = opkit::timespec::parse_zone(zone).unwrap();
        TestBot::with(|b| {
            b.script(crate::packs::queue::script())
                .script(script(default_managers()))
                .zones(std::sync::Arc::new(opkit::zones::FixedZone(zone)))
        })
    }

    #[tokio::test]
    async fn a_schedule_keeps_the_zone_of_whoever_added_it_unless_it_names_one() {
        // GIVEN an admin in Paris (the harness's clock: 2027-01-15 08:00 UTC, 09:00 in Paris)
        let t = bot_in("Europe/Paris");
        // WHEN they schedule a daily 09:30 and a daily 09:30 in New York
        let added = t
            .text(
                "UADMIN",
                "schedule add paris \"daily 09:30\" <#C9> queue status",
            )
            .await;
        t.say(
            "UADMIN",
            "schedule add ny \"daily 09:30 America/New_York\" <#C9> queue status",
        )
        .await;
        // THEN Paris's runs at 08:30 UTC today, New York's at 14:30 UTC
        assert!(
            added.contains("daily 09:30 Europe/Paris in <#C9>")
                && added.ends_with("first run <!date^1800001800^{date_short_pretty} at {time}|2027-01-15 08:30 UTC>."),
            "{added}"
        );
        let listed = t.text("UBOB", "schedules").await;
        assert!(
            listed.contains("`ny`: `queue status` daily 09:30 America/New_York in <#C9> as <@UADMIN>; next <!date^1800023400^"),
            "{listed}"
        );
    }

    #[tokio::test]
    async fn an_unquoted_schedule_gets_a_hint_to_quote_it() {
        let t = bot();
        for (typed, hint) in [
            (
                "schedule add standup weekdays 09:00 <#C9|ops> queue status",
                "put the schedule in quotes: `schedule add standup \"weekdays 09:00\" #channel command…`",
            ),
            (
                "schedule add poll every 15m <#C9> queue status",
                "put the schedule in quotes: `schedule add poll \"every 15m\" #channel command…`",
            ),
            (
                "schedule add poll every 1 hour <#C9> queue status",
                "put the schedule in quotes: `schedule add poll \"every 1 hour\" #channel command…`",
            ),
            (
                "schedule add tokyo daily 09:00 Asia/Tokyo <#C9> queue status",
                "put the schedule in quotes: `schedule add tokyo \"daily 09:00 Asia/Tokyo\" #channel command…`",
            ),
        ] {
            let reply = t.text("UADMIN", typed).await;
            assert!(reply.starts_with(hint), "{typed}: {reply}");
        }
        // AND nothing was added
        assert_eq!(t.text("UBOB", "schedules").await, "Nothing is scheduled.");
        // AND words that make no schedule get the schedule error, not the hint
        let reply = t
            .text("UADMIN", "schedule add x sometimes soon <#C9> queue")
            .await;
        assert!(
            reply.starts_with("`sometimes` is not a schedule"),
            "{reply}"
        );
    }

    #[tokio::test]
    async fn a_paris_standup_runs_at_09_00_paris_time_on_both_sides_of_dst() {
        // GIVEN an admin in Paris, the Friday before DST begins (2027-03-28)
        let t = bot_in("Europe/Paris");
        t.clock.set("2027-03-26T00:00:00Z".parse().unwrap());
        t.say(
            "UADMIN",
            "schedule add standup \"daily 09:00\" <#C9|ops> queue status",
        )
        .await;
        let poster = std::sync::Arc::new(opkit::slack::MemoryChannelPoster::new());
        let expiry = opkit::expiry::Expiry::new(t.bot.clone(), Some(poster.clone()));
        // WHEN the every-minute pass runs (every quarter of an hour here) to Tuesday
        let mut ran_at = Vec::new();
        let until: chrono::DateTime<chrono::Utc> = "2027-03-30T12:00:00Z".parse().unwrap();
        while t.now() < until {
            if expiry.run_once().await.unwrap().scheduled_runs > 0 {
                ran_at.push(t.now().to_rfc3339());
            }
            t.advance(chrono::Duration::minutes(15));
        }
        // THEN the standup ran at 09:00 in Paris each day: 08:00 UTC, then 07:00 UTC
        assert_eq!(
            ran_at,
            [
                "2027-03-26T08:00:00+00:00",
                "2027-03-27T08:00:00+00:00",
                "2027-03-28T07:00:00+00:00",
                "2027-03-29T07:00:00+00:00",
                "2027-03-30T07:00:00+00:00",
            ]
        );
        // AND each answer was posted to the channel
        assert_eq!(poster.posts().len(), 5);
        assert!(poster.posts().iter().all(|p| p.channel == "C9"));
    }
}
