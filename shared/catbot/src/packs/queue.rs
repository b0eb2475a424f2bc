//! Environment reservation queues: Catbot's "who's on perf?".
//!
//! ```text
//! queue join <env> [for <duration>]   get in line; first in line holds the environment
//! queue leave <env>                   get out of line (or give the environment up)
//! queue status [<env>]                who holds what, for how long, and who is next
//! queue kick <env> <@user>            take someone out of line (admin or ops; confirmed)
//! ```
//!
//! A holder's time can be limited (`for 2h`). When it ends, or the holder leaves,
//! the next in line is up and is named in the reply. Ended holds are settled
//! whenever the queue is touched; [`settle`] is also what a scheduled pass calls
//! to end them on time.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use opkit::access::Access;
use opkit::engine::command::{Command, CommandError, Ctx, Notice, Script};
use opkit::ids::{ChannelId, UserId};
use opkit::slack::{Block, Reply};
use opkit::text::one_line;
use opkit::timespec::{format_duration, format_time};

/// Every environment's line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueState {
    /// Lines by environment name.
    #[serde(default)]
    pub envs: BTreeMap<String, Vec<Entry>>,
}

/// One person in one line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Who.
    pub user: UserId,
    /// When they joined the line.
    pub joined_at: DateTime<Utc>,
    /// How long they may hold the environment once up; `None`: until they leave.
    #[serde(default)]
    pub limit_secs: Option<i64>,
    /// Since when they hold it (set when they reach the front).
    #[serde(default)]
    pub holding_since: Option<DateTime<Utc>>,
    /// Where they joined, for announcements.
    #[serde(default)]
    pub channel: Option<ChannelId>,
}

impl Entry {
    /// When the hold ends, if it is limited and has started.
    pub fn ends_at(&self) -> Option<DateTime<Utc>> {
        Some(self.holding_since? + Duration::seconds(self.limit_secs?))
    }
}

/// Something that happened to a line by itself: a hold ran out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handover {
    /// The environment.
    pub env: String,
    /// Whose time ended.
    pub ended: UserId,
    /// Who is up now, if anyone.
    pub next: Option<UserId>,
    /// Where the ended holder joined.
    pub channel: Option<ChannelId>,
}

impl Handover {
    /// The announcement for the channel where the ended holder joined.
    pub fn notice(&self) -> Notice {
        Notice {
            user: self.ended.clone(),
            channel: self.channel.clone(),
            text: self.describe(),
        }
    }

    /// The sentence announcing it.
    pub fn describe(&self) -> String {
        match &self.next {
            Some(next) => format!(
                "{}'s time on *{}* is up; {} is up now.",
                self.ended.mention(),
                self.env,
                next.mention()
            ),
            None => format!(
                "{}'s time on *{}* is up; {} is free.",
                self.ended.mention(),
                self.env,
                self.env
            ),
        }
    }
}

/// Ends every hold whose time has passed at `now`, moving each line on; returns
/// what changed. The next holder's time starts when the previous one's ended.
pub fn settle(state: &mut QueueState, now: DateTime<Utc>) -> Vec<Handover> {
    let mut handovers = Vec::new();
    for (env, line) in state.envs.iter_mut() {
        if let Some(first) = line.first_mut()
            && first.holding_since.is_none()
        {
            first.holding_since = Some(now);
        }
        while let Some(ends) = line.first().and_then(Entry::ends_at).filter(|e| *e <= now) {
            let ended = line.remove(0);
            if let Some(next) = line.first_mut() {
                next.holding_since = Some(ends);
            }
            handovers.push(Handover {
                env: env.clone(),
                ended: ended.user,
                next: line.first().map(|e| e.user.clone()),
                channel: ended.channel,
            });
        }
    }
    state.envs.retain(|_, line| !line.is_empty());
    handovers
}

/// The earliest time a hold will end, if any is limited: when to settle next.
pub fn next_deadline(state: &QueueState) -> Option<DateTime<Utc>> {
    state
        .envs
        .values()
        .filter_map(|line| line.first().and_then(Entry::ends_at))
        .min()
}

/// The queue script.
pub fn script() -> Script<QueueState> {
    Script::new("queue")
        .command(
            Command::new("queue join")
                .usage("<env> [for <duration>]")
                .describe("Get in line for an environment; the first in line holds it")
                .in_channel()
                .handler(|ctx| Box::pin(join(ctx))),
        )
        .command(
            Command::new("queue leave")
                .usage("<env>")
                .describe("Get out of line, or give the environment up to the next in line")
                .in_channel()
                .handler(|ctx| Box::pin(leave(ctx))),
        )
        .command(
            Command::new("queue kick")
                .usage("<env> <@user>")
                .describe("End someone else's hold or place in line (after a confirmation click)")
                .access(Access::parse(&[&["admin"], &["ops"]]).expect("valid roles"))
                .confirm()
                .in_channel()
                .handler(|ctx| Box::pin(kick(ctx))),
        )
        .command(
            Command::new("queue status")
                .alias("queue")
                .usage("[<env>]")
                .describe("Who holds which environment, for how long, and who is next")
                .handler(|ctx| Box::pin(status(ctx))),
        )
        .ticker(|state, now| settle(state, now).iter().map(Handover::notice).collect())
}

fn env_name(positional: &opkit::engine::command::Args) -> Result<String, CommandError> {
    if positional.len() > 1 {
        return Err(CommandError::usage("give one environment"));
    }
    let name = positional.word(0, "an environment")?.to_lowercase();
    let valid = name.len() <= 40
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !valid {
        return Err(CommandError::usage(format!(
            "`{}` is not an environment name: use up to 40 letters, digits, `-`, `_` or `.`",
            one_line(&name)
        )));
    }
    Ok(name)
}

/// Most environments one user holds or waits for at once.
pub const MAX_PER_USER: usize = 20;
/// Most environments with a line at once.
pub const MAX_ENVS: usize = 200;
/// Most places in all lines together: with names of at most 40 characters this
/// keeps the queue's state well inside Opkit's state limit
/// ([`opkit::store::MAX_STATE_BYTES`]), whatever anyone does.
pub const MAX_ENTRIES: usize = 1_000;

/// Whether `user` may join `env`'s line: the state is shared by everyone, so no
/// one user may take more than a small part of it, and it has a bound in all.
fn check_room(state: &QueueState, env: &str, user: &UserId) -> Result<(), CommandError> {
    let lines = || state.envs.iter().filter(|(_, line)| !line.is_empty());
    let mine = lines()
        .filter(|(_, line)| line.iter().any(|e| &e.user == user))
        .count();
    if mine >= MAX_PER_USER {
        return Err(CommandError::user(format!(
            "You already hold or wait for {mine} environments, the most one person may; \
             leave one first (`queue status` lists them)."
        )));
    }
    let is_new = state.envs.get(env).is_none_or(|line| line.is_empty());
    if is_new && lines().count() >= MAX_ENVS {
        return Err(CommandError::user(format!(
            "There are already {MAX_ENVS} environments with a line, the most I keep; \
             join one of them or ask someone to leave one."
        )));
    }
    let entries: usize = lines().map(|(_, line)| line.len()).sum();
    if entries >= MAX_ENTRIES {
        return Err(CommandError::user(format!(
            "The lines hold {entries} places, the most I keep; try again when some have moved on."
        )));
    }
    Ok(())
}

/// Settles ended holds and returns their announcements as the start of a reply.
fn settled_notes(ctx: &mut Ctx<QueueState>) -> String {
    settle(&mut ctx.state, ctx.now)
        .iter()
        .map(|h| h.describe() + "\n")
        .collect()
}

async fn join(ctx: &mut Ctx<QueueState>) -> Result<Reply, CommandError> {
    let (positional, options) = ctx.args.options(&["for"])?;
    let env = env_name(&positional)?;
    let limit = options.duration("for")?;
    let notes = settled_notes(ctx);
    let user = ctx.caller.user.clone();
    check_room(&ctx.state, &env, &user)?;
    let line = ctx.state.envs.entry(env.clone()).or_default();
    if let Some(pos) = line.iter().position(|e| e.user == user) {
        return Err(CommandError::user(format!(
            "{notes}You are already {} for *{env}*.",
            place(pos)
        )));
    }
    line.push(Entry {
        user: user.clone(),
        joined_at: ctx.now,
        limit_secs: limit.map(|d| d.num_seconds()),
        holding_since: line.is_empty().then_some(ctx.now),
        channel: ctx.caller.channel.clone(),
    });
    let text = if line.len() == 1 {
        let how_long = match limit {
            Some(d) => format!(" for {}", format_duration(d)),
            None => " until you leave".to_string(),
        };
        format!("{notes}{} holds *{env}* now{how_long}.", user.mention())
    } else {
        let ahead: Vec<String> = line[..line.len() - 1]
            .iter()
            .map(|e| e.user.mention())
            .collect();
        format!(
            "{notes}{} is {} for *{env}*, after {}.",
            user.mention(),
            place(line.len() - 1),
            ahead.join(", ")
        )
    };
    Ok(Reply::text(text))
}

async fn leave(ctx: &mut Ctx<QueueState>) -> Result<Reply, CommandError> {
    let env = env_name(&ctx.args)?;
    let user = ctx.caller.user.clone();
    remove(ctx, &env, &user, "You are")
}

async fn kick(ctx: &mut Ctx<QueueState>) -> Result<Reply, CommandError> {
    if ctx.args.len() != 2 {
        return Err(CommandError::usage("give an environment and a user"));
    }
    let env = env_name(&opkit::engine::command::Args::new(
        ctx.args.tokens()[..1].to_vec(),
    ))?;
    let user = ctx.args.user(1)?;
    let who = format!("{} is", user.mention());
    let reply = remove(ctx, &env, &user, &who)?;
    Ok(Reply::text(format!(
        "{} (ended by {})",
        reply.text,
        ctx.caller.user.mention()
    )))
}

/// Takes `user` out of `env`'s line, handing over if they held it. `who` starts
/// the sentence when they were not in line ("You are" / "<@U1> is").
fn remove(
    ctx: &mut Ctx<QueueState>,
    env: &str,
    user: &UserId,
    who: &str,
) -> Result<Reply, CommandError> {
    let notes = settled_notes(ctx);
    let env = env.to_string();
    let user = user.clone();
    let now = ctx.now;
    let Some(line) = ctx.state.envs.get_mut(&env) else {
        return Err(CommandError::user(format!(
            "{notes}Nobody is in line for *{env}*."
        )));
    };
    let Some(pos) = line.iter().position(|e| e.user == user) else {
        return Err(CommandError::user(format!(
            "{notes}{who} not in line for *{env}*."
        )));
    };
    line.remove(pos);
    let text = match (pos, line.first_mut()) {
        (0, Some(next)) => {
            next.holding_since = Some(now);
            format!(
                "{notes}{} gave up *{env}*; {} is up now.",
                user.mention(),
                next.user.mention()
            )
        }
        (0, None) => format!("{notes}{} gave up *{env}*; it is free.", user.mention()),
        _ => format!("{notes}{} left the line for *{env}*.", user.mention()),
    };
    ctx.state.envs.retain(|_, line| !line.is_empty());
    Ok(Reply::text(text))
}

async fn status(ctx: &mut Ctx<QueueState>) -> Result<Reply, CommandError> {
    let notes = settled_notes(ctx);
    let now = ctx.now;
    if ctx.args.is_empty() {
        if ctx.state.envs.is_empty() {
            return Ok(Reply::text(format!("{notes}No environment is reserved.")));
        }
        let lines: Vec<String> = ctx
            .state
            .envs
            .iter()
            .map(|(env, line)| describe_line(env, line, now))
            .collect();
        let body = lines.join("\n");
        return Ok(Reply::text(format!("{notes}{body}")).block(Block::Section { text: body }));
    }
    let env = env_name(&ctx.args)?;
    let text = match ctx.state.envs.get(&env) {
        Some(line) => describe_line(&env, line, now),
        None => format!("*{env}* is free."),
    };
    Ok(Reply::text(format!("{notes}{text}")))
}

fn describe_line(env: &str, line: &[Entry], now: DateTime<Utc>) -> String {
    let Some(holder) = line.first() else {
        return format!("*{env}* is free.");
    };
    let held = match holder.ends_at() {
        Some(ends) => format!(
            " until {} ({} left)",
            format_time(ends),
            format_duration(ends - now)
        ),
        None => String::new(),
    };
    let mut text = format!("*{env}*: {} holds it{held}", holder.user.mention());
    if line.len() > 1 {
        let next: Vec<String> = line[1..].iter().map(|e| e.user.mention()).collect();
        text.push_str(&format!("; next: {}", next.join(", ")));
    }
    text
}

/// "first in line" / "2nd in line" for a zero-based position.
fn place(pos: usize) -> String {
    let n = pos + 1;
    let suffix = match (n % 10, n % 100) {
        (1, 11) | (2, 12) | (3, 13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    if n == 1 {
        "first in line".to_string()
    } else {
        format!("{n}{suffix} in line")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_dotted_name_slack_sent_as_a_link_is_the_environment() {
        let t = TestBot::with(|b| b.script(script()));
        let reply = t
            .text(
                "UA",
                "queue join <http://staging.example.com|staging.example.com>",
            )
            .await;
        assert_eq!(
            reply,
            "<@UA> holds *staging.example.com* now until you leave."
        );
    }

    #[tokio::test]
    async fn one_user_cannot_fill_the_shared_state() {
        // the defect: one user's 2,400 joins grew the state past DynamoDB's item
        // limit and broke `queue join` for everyone
        let t = TestBot::with(|b| b.script(script()));
        for n in 0..MAX_PER_USER {
            let reply = t.text("UHOG", &format!("queue join env-{n}")).await;
            assert!(reply.contains("holds *env-"), "{reply}");
        }
        let refused = t.text("UHOG", "queue join env-999").await;
        assert!(
            refused.starts_with("You already hold or wait for 20 environments"),
            "{refused}"
        );
        let state: QueueState = t.state("queue").await;
        assert_eq!(state.envs.len(), MAX_PER_USER, "nothing was added");
        // everyone else is unaffected
        let second = t.text("UB", "queue join env-0").await;
        assert!(second.contains("2nd in line"), "{second}");
        assert!(
            t.text("UB", "queue join perf")
                .await
                .contains("holds *perf*")
        );
    }

    #[tokio::test]
    async fn the_number_of_environments_and_places_is_bounded() {
        let t = TestBot::with(|b| b.script(script()));
        let mut users = (0..).map(|i| format!("U{i:05}"));
        let mut joined = 0;
        'fill: for _ in 0..(MAX_ENVS / MAX_PER_USER) {
            let user = users.next().unwrap();
            for _ in 0..MAX_PER_USER {
                let reply = t.text(&user, &format!("queue join env-{joined}")).await;
                if !reply.contains("holds") {
                    break 'fill;
                }
                joined += 1;
            }
        }
        assert_eq!(joined, MAX_ENVS);
        let refused = t.text("UNEW", "queue join one-more").await;
        assert!(
            refused.starts_with("There are already 200 environments"),
            "{refused}"
        );
        assert!(
            t.text("UNEW", "queue join env-3").await.contains("in line"),
            "existing lines still take people"
        );
        // places in all: fill existing lines until the bound
        let mut places = MAX_ENVS + 1;
        'more: loop {
            let user = users.next().unwrap();
            for env in 0..MAX_PER_USER {
                if places == MAX_ENTRIES {
                    break 'more;
                }
                let reply = t.text(&user, &format!("queue join env-{env}")).await;
                assert!(reply.contains("in line"), "{reply}");
                places += 1;
            }
        }
        let refused = t.text("ULAST", "queue join env-7").await;
        assert!(
            refused.starts_with("The lines hold 1000 places"),
            "{refused}"
        );
        let bytes = serde_json::to_string(&t.state::<QueueState>("queue").await)
            .unwrap()
            .len();
        assert!(
            bytes < opkit::store::MAX_STATE_BYTES / 2,
            "{bytes} bytes at the bound"
        );
    }
    use opkit::testing::TestBot;

    #[tokio::test]
    async fn first_in_line_holds_and_the_next_is_named_on_leave() {
        let t = TestBot::with(|b| b.script(script()));
        let reply = t.say("UA", "queue join perf").await;
        assert_eq!(reply.text, "<@UA> holds *perf* now until you leave.");
        assert_eq!(reply.visibility, opkit::slack::Visibility::InChannel);
        assert_eq!(
            t.text("UB", "queue join PERF").await,
            "<@UB> is 2nd in line for *perf*, after <@UA>."
        );
        t.say("UC", "queue join perf").await;
        assert_eq!(
            t.text("UB", "queue status perf").await,
            "*perf*: <@UA> holds it; next: <@UB>, <@UC>"
        );
        assert_eq!(
            t.text("UA", "queue leave perf").await,
            "<@UA> gave up *perf*; <@UB> is up now."
        );
        assert_eq!(
            t.text("UC", "queue leave perf").await,
            "<@UC> left the line for *perf*."
        );
        assert_eq!(
            t.text("UB", "queue leave perf").await,
            "<@UB> gave up *perf*; it is free."
        );
        assert_eq!(t.text("UB", "queue").await, "No environment is reserved.");
    }

    #[tokio::test]
    async fn a_limited_hold_ends_on_time_and_the_next_is_up() {
        let t = TestBot::with(|b| b.script(script()));
        assert_eq!(
            t.text("UA", "queue join perf for 2h").await,
            "<@UA> holds *perf* now for 2h."
        );
        t.say("UB", "queue join perf for 30m").await;
        t.advance(Duration::minutes(90));
        let status = t.text("UC", "queue status").await;
        assert_eq!(
            status,
            "*perf*: <@UA> holds it until 2027-01-15 10:00 UTC (30m left); next: <@UB>"
        );
        // WHEN A's two hours and then B's thirty minutes have passed
        t.advance(Duration::minutes(45));
        assert_eq!(
            t.text("UC", "queue status perf").await,
            "<@UA>'s time on *perf* is up; <@UB> is up now.\n*perf*: <@UB> holds it until 2027-01-15 10:30 UTC (15m left)"
        );
        t.advance(Duration::minutes(15));
        assert_eq!(
            t.text("UC", "queue join perf").await,
            "<@UB>'s time on *perf* is up; perf is free.\n<@UC> holds *perf* now until you leave."
        );
    }

    #[tokio::test]
    async fn mistakes_get_clear_answers_and_change_nothing() {
        let t = TestBot::with(|b| b.script(script()));
        t.say("UA", "queue join perf").await;
        assert_eq!(
            t.text("UA", "queue join perf").await,
            "You are already first in line for *perf*."
        );
        assert_eq!(
            t.text("UB", "queue leave perf").await,
            "You are not in line for *perf*."
        );
        assert_eq!(
            t.text("UB", "queue leave staging").await,
            "Nobody is in line for *staging*."
        );
        assert_eq!(
            t.text("UB", "queue join").await,
            "missing an environment. Usage: `queue join <env> [for <duration>]`"
        );
        assert!(
            t.text("UB", "queue join a/b")
                .await
                .starts_with("`a/b` is not an environment name")
        );
        assert!(
            t.text("UB", "queue join \"perf\n• `x`\"")
                .await
                .starts_with("`perf⏎• ˋxˋ` is not an environment name"),
            "what was typed is quoted on one line"
        );
        assert!(
            t.text("UB", "queue join perf for 0m")
                .await
                .starts_with("a duration must be longer")
        );
        assert_eq!(t.text("UB", "queue status").await, "*perf*: <@UA> holds it");
    }

    #[test]
    fn settle_hands_over_in_a_chain_and_reports_each_step() {
        let t0 = DateTime::from_timestamp(0, 0).unwrap();
        let entry = |u: &str, mins: i64| Entry {
            user: UserId::parse(u).unwrap(),
            joined_at: t0,
            limit_secs: Some(mins * 60),
            holding_since: None,
            channel: None,
        };
        let mut state = QueueState::default();
        state.envs.insert(
            "perf".into(),
            vec![entry("UA", 10), entry("UB", 10), entry("UC", 60)],
        );
        assert!(settle(&mut state, t0).is_empty());
        assert_eq!(next_deadline(&state), Some(t0 + Duration::minutes(10)));
        let handovers = settle(&mut state, t0 + Duration::minutes(25));
        let told: Vec<String> = handovers.iter().map(Handover::describe).collect();
        assert_eq!(
            told,
            [
                "<@UA>'s time on *perf* is up; <@UB> is up now.",
                "<@UB>'s time on *perf* is up; <@UC> is up now."
            ]
        );
        assert_eq!(
            state.envs["perf"][0].holding_since,
            Some(t0 + Duration::minutes(20))
        );
    }

    #[tokio::test]
    async fn the_ticker_ends_holds_on_time_and_announces_them_where_they_began() {
        use opkit::store::{AuditLog, StateStore};
        let t = TestBot::with(|b| b.script(script()));
        t.say("UA", "queue join perf for 1h").await;
        t.say("UB", "queue join perf").await;
        // nothing is due yet: no notice, no write
        assert!(t.bot.tick().await.unwrap().is_empty());
        assert_eq!(t.store.load("queue").await.unwrap().version, 2);
        // WHEN the hour is up and the scheduled pass runs (nobody typed anything)
        t.advance(Duration::hours(1));
        let notices = t.bot.tick().await.unwrap();
        // THEN A's hold ends, B is named, in the channel A joined from, and it is audited
        assert_eq!(notices.len(), 1);
        assert_eq!(
            notices[0].text,
            "<@UA>'s time on *perf* is up; <@UB> is up now."
        );
        assert_eq!(
            notices[0].channel.as_ref().map(|c| c.as_str()),
            Some("C0PS")
        );
        let audit = t.store.recent(None, 1).await.unwrap();
        assert_eq!(audit[0].outcome.name(), "system");
        assert_eq!(audit[0].user.as_str(), "UA");
        assert_eq!(t.text("UC", "queue status").await, "*perf*: <@UB> holds it");
        // AND a second pass has nothing more to say
        assert!(t.bot.tick().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn an_ops_user_can_end_someone_elses_hold_after_confirming() {
        let t = TestBot::with(|b| b.script(script()));
        t.say("UA", "queue join perf").await;
        t.say("UB", "queue join perf").await;
        assert_eq!(
            t.text("UB", "queue kick perf <@UA>").await,
            "Sorry, you need admin, or ops to run `queue kick`."
        );
        let prompt = t.say("UADMIN", "queue kick perf <@UA>").await;
        assert_eq!(
            t.text("UC", "queue status perf").await,
            "*perf*: <@UA> holds it; next: <@UB>"
        );
        let done = t
            .click("UADMIN", &prompt, opkit::engine::gate::Decision::Confirm)
            .await;
        assert!(
            done.text
                .ends_with("<@UA> gave up *perf*; <@UB> is up now. (ended by <@UADMIN>)"),
            "{}",
            done.text
        );
        let prompt = t.say("UADMIN", "queue kick perf <@UZ>").await;
        let done = t
            .click("UADMIN", &prompt, opkit::engine::gate::Decision::Confirm)
            .await;
        assert!(
            done.text.ends_with("<@UZ> is not in line for *perf*."),
            "{}",
            done.text
        );
    }

    #[tokio::test]
    async fn state_is_saved_only_when_changed() {
        use opkit::store::StateStore;
        let t = TestBot::with(|b| b.script(script()));
        t.say("UA", "queue status").await;
        assert_eq!(t.store.load("queue").await.unwrap().version, 0);
        t.say("UA", "queue join perf").await;
        t.say("UA", "queue status").await;
        assert_eq!(t.store.load("queue").await.unwrap().version, 1);
    }
}
