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
use opkit::mrkdwn;
use opkit::slack::mrkdwn::{Code, Mrkdwn, UserText, fit_list};
use opkit::slack::{Block, Reply};

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
            thread_ts: None,
        }
    }

    /// The sentence announcing it.
    pub fn describe(&self) -> Mrkdwn {
        match &self.next {
            Some(next) => mrkdwn!(
                "{}'s time on {} is up; {} is up now.",
                self.ended.mention(),
                bold(&self.env),
                next.mention()
            ),
            None => mrkdwn!(
                "{}'s time on {} is up; {} is free.",
                self.ended.mention(),
                bold(&self.env),
                UserText::new(self.env.as_str())
            ),
        }
    }
}

/// An environment's name in bold, as text.
fn bold(env: &str) -> Mrkdwn {
    mrkdwn!("*{}*", UserText::new(env))
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
                .example("queue join perf for 2h")
                .example("queue join staging.example.com")
                .in_channel()
                .handler(|ctx| Box::pin(join(ctx))),
        )
        .command(
            Command::new("queue leave")
                .usage("<env>")
                .describe("Get out of line, or give the environment up to the next in line")
                .example("queue leave perf")
                .in_channel()
                .handler(|ctx| Box::pin(leave(ctx))),
        )
        .command(
            Command::new("queue kick")
                .usage("<env> <@user>")
                .describe("End someone else's hold or place in line (after a confirmation click)")
                .example("queue kick perf @alice")
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
                .example("queue status")
                .example("queue status perf")
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
        return Err(CommandError::usage(mrkdwn!(
            "{} is not an environment name: use up to 40 letters, digits, `-`, `_` or `.`",
            Code::new(&name)
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
        return Err(CommandError::user(mrkdwn!(
            "You already hold or wait for {} environments, the most one person may; \
             leave one first (`queue status` lists them).",
            mine
        )));
    }
    let is_new = state.envs.get(env).is_none_or(|line| line.is_empty());
    if is_new && lines().count() >= MAX_ENVS {
        return Err(CommandError::user(mrkdwn!(
            "There are already {} environments with a line, the most I keep; \
             join one of them or ask someone to leave one.",
            MAX_ENVS
        )));
    }
    let entries: usize = lines().map(|(_, line)| line.len()).sum();
    if entries >= MAX_ENTRIES {
        return Err(CommandError::user(mrkdwn!(
            "The lines hold {} places, the most I keep; try again when some have moved on.",
            entries
        )));
    }
    Ok(())
}

/// Settles ended holds and returns their announcements as the start of a reply.
fn settled_notes(ctx: &mut Ctx<QueueState>) -> Mrkdwn {
    let mut notes = Mrkdwn::new();
    for handover in settle(&mut ctx.state, ctx.now) {
        notes.push(handover.describe());
        notes.push("\n");
    }
    notes
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
        return Err(CommandError::user(mrkdwn!(
            "{}You are already {} for {}.",
            notes,
            place(pos),
            bold(&env)
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
            Some(d) => mrkdwn!(" for {}", d),
            None => Mrkdwn::from(" until you leave"),
        };
        mrkdwn!(
            "{}{} holds {} now{}.",
            notes,
            user.mention(),
            bold(&env),
            how_long
        )
    } else {
        let ahead = line[..line.len() - 1].iter().map(|e| e.user.mention());
        mrkdwn!(
            "{}{} is {} for {}, after {}.",
            notes,
            user.mention(),
            place(line.len() - 1),
            bold(&env),
            Mrkdwn::join(ahead, ", ")
        )
    };
    Ok(Reply::text(text))
}

async fn leave(ctx: &mut Ctx<QueueState>) -> Result<Reply, CommandError> {
    let env = env_name(&ctx.args)?;
    let user = ctx.caller.user.clone();
    remove(ctx, &env, &user, "You are".into())
}

async fn kick(ctx: &mut Ctx<QueueState>) -> Result<Reply, CommandError> {
    if ctx.args.len() != 2 {
        return Err(CommandError::usage("give an environment and a user"));
    }
    let env = env_name(&opkit::engine::command::Args::new(
        ctx.args.tokens()[..1].to_vec(),
    ))?;
    let user = ctx.bot.user_arg(&ctx.args, 1).await?;
    let who = mrkdwn!("{} is", user.mention());
    // It acts on the place its prompt showed or not at all: someone who left
    // and joined again, or a line that moved on, is asked about again.
    if let Some(place) = place_in_line(&ctx.state, &env, &user) {
        ctx.bind("their place in the line", place)?;
    }
    // Taken out on the loaded state first: someone not in line is told so, and
    // the prompt says what would happen. Asking discards the change.
    let reply = remove(ctx, &env, &user, who)?;
    ctx.confirm(mrkdwn!("It would go like this: {}", reply.text))?;
    Ok(Reply::text(mrkdwn!(
        "{} (ended by {})",
        reply.text,
        ctx.caller.user.mention()
    )))
}

/// Where `user` is in `env`'s line, as `queue kick` binds it
/// ([`Ctx::bind`]): holding it (and who is next), or their number in line.
fn place_in_line(state: &QueueState, env: &str, user: &UserId) -> Option<String> {
    let line = state.envs.get(env)?;
    let pos = line.iter().position(|e| &e.user == user)?;
    Some(match (pos, line.get(1)) {
        (0, Some(next)) => format!("holding it, with {} next", next.user.as_str()),
        (0, None) => "holding it, nobody waiting".to_string(),
        (n, _) => format!("number {} in line", n + 1),
    })
}

/// Takes `user` out of `env`'s line, handing over if they held it. `who` starts
/// the sentence when they were not in line ("You are" / "<@U1> is").
fn remove(
    ctx: &mut Ctx<QueueState>,
    env: &str,
    user: &UserId,
    who: Mrkdwn,
) -> Result<Reply, CommandError> {
    let notes = settled_notes(ctx);
    let env = env.to_string();
    let user = user.clone();
    let now = ctx.now;
    let Some(line) = ctx.state.envs.get_mut(&env) else {
        return Err(CommandError::user(mrkdwn!(
            "{}Nobody is in line for {}.",
            notes,
            bold(&env)
        )));
    };
    let Some(pos) = line.iter().position(|e| e.user == user) else {
        return Err(CommandError::user(mrkdwn!(
            "{}{} not in line for {}.",
            notes,
            who,
            bold(&env)
        )));
    };
    line.remove(pos);
    let text = match (pos, line.first_mut()) {
        (0, Some(next)) => {
            next.holding_since = Some(now);
            mrkdwn!(
                "{}{} gave up {}; {} is up now.",
                notes,
                user.mention(),
                bold(&env),
                next.user.mention()
            )
        }
        (0, None) => mrkdwn!(
            "{}{} gave up {}; it is free.",
            notes,
            user.mention(),
            bold(&env)
        ),
        _ => mrkdwn!(
            "{}{} left the line for {}.",
            notes,
            user.mention(),
            bold(&env)
        ),
    };
    ctx.state.envs.retain(|_, line| !line.is_empty());
    Ok(Reply::text(text))
}

async fn status(ctx: &mut Ctx<QueueState>) -> Result<Reply, CommandError> {
    let notes = settled_notes(ctx);
    let now = ctx.now;
    if ctx.args.is_empty() {
        if ctx.state.envs.is_empty() {
            return Ok(Reply::text(mrkdwn!("{}No environment is reserved.", notes)));
        }
        let lines: Vec<Mrkdwn> = ctx
            .state
            .envs
            .iter()
            .map(|(env, line)| describe_line(env, line, now))
            .collect();
        let hint = Mrkdwn::from("Ask about one with `queue status <environment>`.");
        // The blocks carry the whole answer: the notes too.
        let text = mrkdwn!("{}{}", notes, fit_list(lines, &hint));
        return Ok(Reply::text(text.clone()).block(Block::Section { text }));
    }
    let env = env_name(&ctx.args)?;
    let text = match ctx.state.envs.get(&env) {
        Some(line) => describe_line(&env, line, now),
        None => mrkdwn!("{} is free.", bold(&env)),
    };
    Ok(Reply::text(mrkdwn!("{}{}", notes, text)))
}

fn describe_line(env: &str, line: &[Entry], now: DateTime<Utc>) -> Mrkdwn {
    let Some(holder) = line.first() else {
        return mrkdwn!("{} is free.", bold(env));
    };
    let held = holder
        .ends_at()
        .map(|ends| mrkdwn!(" until {} ({} left)", ends, ends - now));
    let mut text = mrkdwn!("{}: {} holds it{}", bold(env), holder.user.mention(), held);
    if line.len() > 1 {
        let next = line[1..].iter().map(|e| e.user.mention());
        text.push(mrkdwn!("; next: {}", Mrkdwn::join(next, ", ")));
    }
    text
}

/// "first in line" / "2nd in line" for a zero-based position.
fn place(pos: usize) -> Mrkdwn {
    let n = pos + 1;
    let suffix = match (n % 10, n % 100) {
        (1, 11) | (2, 12) | (3, 13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    if n == 1 {
        "first in line".into()
    } else {
        mrkdwn!("{}{} in line", n, suffix)
    }
}

#[cfg(test)]
mod tests;
