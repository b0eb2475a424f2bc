//! Alarm and instance notifications: CloudWatch alarm state changes and EC2
//! instance state changes, pushed to the channels that subscribed, one thread
//! per incident.
//!
//! ```text
//! alarms subscribe <prefix|all> [alarm|ok|insufficient_data|all]
//!                                   this channel hears of matching alarms (default: alarm and ok)
//! alarms unsubscribe <prefix|all>   it no longer does
//! alarms subscriptions              this channel's subscriptions
//! alarms subscriptions all          every channel's (admins)
//! alarms ack <name> [in <account> [<region>]]
//!                                   "acknowledged by @you" on the incident's messages
//! alarms mute <name> [in …] for <duration>
//!                                   no notifications of it until then (the expiry pass ends it)
//! alarms unmute <name> [in …]       notifications again
//! ec2 subscribe / ec2 unsubscribe   this channel hears of managed instances' state changes
//! ```
//!
//! Events come from EventBridge ([`event`]); [`Notifier`] is the one handler the
//! worker Lambda, `opkit notify` and the tests call. What it keeps is this
//! script's state ([`NotifyState`]); what one change does is decided by
//! [`incident::apply`] alone. The buttons on a notification (Graph, Acknowledge,
//! Mute 1h / 4h) are command buttons ([`opkit::slack::Button::command`]): a
//! click runs `graph <name> in <account> <region>` ([`render::graph_place`]),
//! `alarms ack <name> in <account id> <region>`,
//! `alarms mute <name> in <account id> <region> for 1h` as the clicker,
//! authorized and audited exactly as if typed. The name is quoted
//! ([`opkit::text::quote`]), never spliced; the `in` words make the button act on
//! the incident it is on, not on every alarm of that name ([`scope`]). Typed
//! without `in`, a name several accounts or regions have gets "which one?".

pub mod event;
mod handler;
pub mod incident;
pub mod render;
pub mod scope;
pub mod state;

use std::sync::Arc;

use chrono::Duration;

use opkit::access::Access;
use opkit::engine::command::{Command, CommandError, Ctx, Notice, Script};
use opkit::ids::ChannelId;
use opkit::slack::{ChannelPoster, Mrkdwn, Reply, UserText};

use crate::accounts::AccountBook;
use scope::{Scope, split_scope};

pub use event::{AlarmState, EventError, Notification};
pub use handler::{AlarmTags, ManagedInstances, Notifier, NotifyError, Outcome};
pub use state::{NotifyState, Subscription};

/// The script whose state holds subscriptions, incidents and mutes.
pub const SCRIPT: &str = "notify";
/// Most subscriptions of one channel.
pub const MAX_PER_CHANNEL: usize = 20;
/// The longest mute.
pub const MAX_MUTE: Duration = Duration::days(7);
/// The shortest mute (the expiry pass runs once a minute).
pub const MIN_MUTE: Duration = Duration::minutes(1);

/// How the notifications' commands work in one deployment.
#[derive(Clone)]
pub struct NotifyOptions {
    /// Who may subscribe, unsubscribe, mute and unmute (default: ops or admin).
    pub manage: Access,
    /// Redraws the incident's messages after `alarms ack` and `alarms mute` (the
    /// bot token's Web API); `None`: only the reply says so.
    pub channels: Option<Arc<dyn ChannelPoster>>,
    /// The named accounts (`OPKIT_ACCOUNTS`), for `in <account>` by name.
    pub accounts: Arc<AccountBook>,
}

impl Default for NotifyOptions {
    fn default() -> Self {
        Self {
            manage: Access::parse(&[&["ops"], &["admin"]]).expect("valid role names"),
            channels: None,
            accounts: Arc::new(AccountBook::empty()),
        }
    }
}

type Handler =
    fn(&mut Ctx<NotifyState>, NotifyOptions) -> opkit::BoxFuture<'_, Result<Reply, CommandError>>;

/// The notifications script.
pub fn script(opts: NotifyOptions) -> Script<NotifyState> {
    let command = |form: &str, usage: &str, text: &str, run: Handler| {
        let opts = opts.clone();
        Command::new(form)
            .usage(usage)
            .describe(text)
            .handler(move |ctx| run(ctx, opts.clone()))
    };
    let manage = opts.manage.clone();
    let admin = Access::parse(&[&["admin"]]).expect("a valid role name");
    Script::new(SCRIPT)
        .command(
            command(
                "alarms subscribe",
                "<prefix|all> [alarm|ok|insufficient_data|all]",
                "Post CloudWatch alarm state changes to this channel",
                |c, _| Box::pin(async move { subscribe(c) }),
            )
            .access(manage.clone())
            .example("alarms subscribe api- alarm")
            .example("alarms subscribe all"),
        )
        .command(
            command(
                "alarms unsubscribe",
                "<prefix|all>",
                "Stop posting an alarm subscription's changes to this channel",
                |c, _| Box::pin(async move { unsubscribe(c) }),
            )
            .access(manage.clone())
            .example("alarms unsubscribe api-"),
        )
        .command(
            command(
                "alarms subscriptions",
                "",
                "The alarm subscriptions of this channel",
                |c, _| Box::pin(async move { subscriptions(c, false) }),
            )
            .example("alarms subscriptions"),
        )
        .command(
            command(
                "alarms subscriptions all",
                "",
                "Every channel's alarm subscriptions",
                |c, _| Box::pin(async move { subscriptions(c, true) }),
            )
            .access(admin)
            .example("alarms subscriptions all"),
        )
        .command(
            command(
                "alarms ack",
                "<alarm name> [in <account> [<region>]]",
                "Acknowledge an alarm's open incident: its messages say who is on it",
                |c, o| Box::pin(ack(c, o)),
            )
            .example("alarms ack api-5xx")
            .example("alarms ack api-5xx in us-west-2"),
        )
        .command(
            command(
                "alarms mute",
                "<alarm name> [in <account> [<region>]] for <duration>",
                "No notifications of an alarm for a while",
                |c, o| Box::pin(mute(c, o)),
            )
            .access(manage.clone())
            .example("alarms mute api-5xx for 1h")
            .example("alarms mute api-5xx in 222222222222 us-west-2 for 4h"),
        )
        .command(
            command(
                "alarms unmute",
                "<alarm name> [in <account> [<region>]]",
                "Notifications of a muted alarm again",
                |c, o| Box::pin(unmute(c, o)),
            )
            .access(manage.clone())
            .example("alarms unmute api-5xx"),
        )
        .command(
            command(
                "ec2 subscribe",
                "",
                "Post state changes of instances tagged opkit:managed=true to this channel",
                |c, _| Box::pin(async move { ec2_subscribe(c, true) }),
            )
            .access(manage.clone())
            .example("ec2 subscribe"),
        )
        .command(
            command(
                "ec2 unsubscribe",
                "",
                "Stop posting instance state changes to this channel",
                |c, _| Box::pin(async move { ec2_subscribe(c, false) }),
            )
            .access(manage)
            .example("ec2 unsubscribe"),
        )
        .ticker(end_mutes)
}

/// Records that Opkit is about to move `instances` (of `region` and, when
/// known, `account` — as AWS names them, never a place's label) through
/// `states` (`ec2 start`: pending, running), asked by `by`: their state-change
/// events are then not posted ([`NotifyState::take_own_change`]) — the channel
/// already has the command's reply. A store that fails is logged, and the
/// changes are announced like anyone's.
pub async fn expect_own_changes(
    bot: &opkit::engine::Bot,
    account: Option<&str>,
    region: &str,
    instances: &[String],
    states: &[&str],
    by: &opkit::ids::UserId,
) {
    if instances.is_empty() {
        return;
    }
    let now = bot.now();
    let recorded = handler::update(bot, |state| {
        state.expect_own_changes(account, region, instances, states, by, now);
    })
    .await;
    if let Err(e) = recorded {
        tracing::warn!(error = %e, "could not record an instance state change Opkit asked for: its events will be posted");
    }
}

fn here(ctx: &Ctx<NotifyState>) -> Result<ChannelId, CommandError> {
    ctx.caller.channel.clone().ok_or_else(|| {
        CommandError::user(
            "Subscriptions belong to a channel: run this in the channel that should hear of it.",
        )
    })
}

/// `<prefix|all>`: `None` for every alarm.
fn prefix_arg(ctx: &Ctx<NotifyState>) -> Result<Option<String>, CommandError> {
    let word = ctx.args.word(0, "an alarm name prefix, or `all`")?;
    if word.chars().count() > event::ALARM_NAME_MAX {
        return Err(CommandError::usage("a prefix is at most 255 characters"));
    }
    Ok((!word.eq_ignore_ascii_case("all")).then(|| word.to_string()))
}

fn describe_prefix(prefix: Option<&str>) -> Mrkdwn {
    match prefix {
        // On one line, a backtick shown as `ˋ`: inside *…* it would open code.
        Some(p) => opkit::mrkdwn!("alarms named *{}…*", UserText::line(p)),
        None => "every alarm".into(),
    }
}

fn subscribe(ctx: &mut Ctx<NotifyState>) -> Result<Reply, CommandError> {
    let channel = here(ctx)?;
    if ctx.args.len() > 2 {
        return Err(CommandError::usage(
            "give a prefix (or `all`) and at most one state: `alarms subscribe api- alarm`",
        ));
    }
    let prefix = prefix_arg(ctx)?;
    let states: std::collections::BTreeSet<AlarmState> = match ctx.args.get(1) {
        None => [AlarmState::Alarm, AlarmState::Ok].into(),
        Some(_) => {
            let word = ctx.args.word(1, "a state")?;
            if word.eq_ignore_ascii_case("all") {
                AlarmState::ALL.into()
            } else {
                let state = AlarmState::parse(word).ok_or_else(|| {
                    CommandError::usage(opkit::mrkdwn!(
                        "{} is not a state: give `alarm`, `ok`, `insufficient_data` or `all`",
                        opkit::slack::Code::new(word)
                    ))
                })?;
                [state].into()
            }
        }
    };
    let subscription = Subscription {
        channel: channel.clone(),
        prefix: prefix.clone(),
        states: states.clone(),
        by: ctx.caller.user.clone(),
    };
    ctx.state
        .add_subscription(subscription)
        .map_err(CommandError::user)?;
    let names: Vec<&str> = states.iter().map(|s| s.as_str()).collect();
    // "every alarm goes", "alarms named *api-…* go"
    let go = if prefix.is_none() { "goes" } else { "go" };
    Ok(Reply::in_channel(opkit::mrkdwn!(
        "{} will hear when {} {} into {}.",
        channel.mention(),
        describe_prefix(prefix.as_deref()),
        UserText::new(go),
        UserText::new(names.join(" or "))
    )))
}

fn unsubscribe(ctx: &mut Ctx<NotifyState>) -> Result<Reply, CommandError> {
    let channel = here(ctx)?;
    if ctx.args.len() != 1 {
        return Err(CommandError::usage(
            "give the prefix (or `all`) to unsubscribe from",
        ));
    }
    let prefix = prefix_arg(ctx)?;
    let before = ctx.state.subscriptions.len();
    ctx.state
        .subscriptions
        .retain(|s| !(s.channel == channel && s.prefix == prefix));
    if ctx.state.subscriptions.len() == before {
        return Err(CommandError::user(opkit::mrkdwn!(
            "This channel is not subscribed to {}: `alarms subscriptions` lists what it is.",
            describe_prefix(prefix.as_deref())
        )));
    }
    Ok(Reply::in_channel(opkit::mrkdwn!(
        "{} no longer hears of {}.",
        channel.mention(),
        describe_prefix(prefix.as_deref())
    )))
}

fn subscriptions(ctx: &mut Ctx<NotifyState>, all: bool) -> Result<Reply, CommandError> {
    if !ctx.args.is_empty() {
        return Err(CommandError::usage(
            "`alarms subscriptions` takes no arguments (but `all`)",
        ));
    }
    let channel = if all { None } else { Some(here(ctx)?) };
    let lines: Vec<Mrkdwn> = ctx
        .state
        .subscriptions
        .iter()
        .filter(|s| channel.as_ref().is_none_or(|c| &s.channel == c))
        .map(|s| {
            let states: Vec<&str> = s.states.iter().map(|s| s.as_str()).collect();
            opkit::mrkdwn!(
                "• {}: {} ({}), by {}",
                s.channel.mention(),
                describe_prefix(s.prefix.as_deref()),
                UserText::new(states.join(", ")),
                s.by.mention()
            )
        })
        .collect();
    let instances: Vec<&ChannelId> = ctx
        .state
        .instance_channels
        .iter()
        .filter(|c| channel.as_ref().is_none_or(|here| here == *c))
        .collect();
    let mut text = if lines.is_empty() {
        Mrkdwn::from("No alarm subscriptions. `alarms subscribe <prefix|all>` adds one.")
    } else {
        opkit::mrkdwn!(
            "{} alarm subscription(s):\n{}",
            lines.len(),
            opkit::slack::mrkdwn::fit_list(lines, &Mrkdwn::from(""))
        )
    };
    if !instances.is_empty() {
        let list = Mrkdwn::join(instances.iter().map(|c| c.mention()), ", ");
        text = opkit::mrkdwn!("{}\nInstance state changes go to {}.", text, list);
    }
    Ok(Reply::text(text))
}

fn ec2_subscribe(ctx: &mut Ctx<NotifyState>, on: bool) -> Result<Reply, CommandError> {
    let channel = here(ctx)?;
    if !ctx.args.is_empty() {
        return Err(CommandError::usage(
            "takes no arguments: it is about this channel",
        ));
    }
    let changed = if on {
        if !ctx.state.instance_channels.contains(&channel)
            && ctx.state.instance_channels.len() >= state::MAX_INSTANCE_CHANNELS
        {
            return Err(CommandError::user(opkit::mrkdwn!(
                "{} channels hear of instances already, the most the bot keeps: `ec2 unsubscribe` one first.",
                state::MAX_INSTANCE_CHANNELS
            )));
        }
        ctx.state.instance_channels.insert(channel.clone())
    } else {
        ctx.state.instance_channels.remove(&channel)
    };
    let text = match (on, changed) {
        (true, true) => opkit::mrkdwn!(
            "{} will hear when instances tagged opkit:managed=true start, stop or end.",
            channel.mention()
        ),
        (true, false) => opkit::mrkdwn!(
            "{} already hears of instance state changes.",
            channel.mention()
        ),
        (false, true) => opkit::mrkdwn!(
            "{} no longer hears of instance state changes.",
            channel.mention()
        ),
        (false, false) => {
            return Err(CommandError::user(
                "This channel is not subscribed to instance state changes.",
            ));
        }
    };
    Ok(Reply::in_channel(text))
}

fn one_name(args: &opkit::engine::Args) -> Result<String, CommandError> {
    if args.len() != 1 {
        return Err(CommandError::usage(
            "give one alarm name (quote it if it has spaces)",
        ));
    }
    let name = args.word(0, "an alarm name")?;
    if name.chars().count() > event::ALARM_NAME_MAX {
        return Err(CommandError::usage(
            "alarm names are at most 255 characters",
        ));
    }
    Ok(name.to_string())
}

/// The alarm a command means: the one called `name` in `scope` that `wanted`
/// keeps (an open incident, a mute). Several: none is picked, and the error
/// lists each with the `in` words that pick it. `Err(None)`: no alarm of that
/// name in scope is `wanted` (the caller says why).
fn pick(
    state: &NotifyState,
    book: &AccountBook,
    name: &str,
    scope: &Scope,
    wanted: impl Fn(&state::AlarmRecord) -> bool,
    example: impl Fn(&str) -> String,
) -> Result<String, Option<CommandError>> {
    let named: Vec<(&String, &state::AlarmRecord)> = state
        .alarms
        .iter()
        .filter(|(_, r)| r.facts.name == name)
        .collect();
    if named.is_empty() {
        return Err(Some(unknown(name)));
    }
    let mut keys: Vec<(&String, &state::AlarmRecord)> = named
        .into_iter()
        .filter(|(_, r)| scope.covers(&r.facts) && wanted(r))
        .collect();
    match keys.len() {
        0 => {
            Err(scope.unknown_region(book, state.alarms.values().map(|r| r.facts.region.as_str())))
        }
        1 => Ok(keys.remove(0).0.clone()),
        n => {
            let lines = keys.iter().map(|(_, r)| {
                opkit::mrkdwn!(
                    "• account {}, {}: {}",
                    UserText::flat(&r.facts.account),
                    UserText::flat(&r.facts.region),
                    opkit::slack::Code::new(&example(&scope::words(&r.facts).unwrap_or_default()))
                )
            });
            Err(Some(CommandError::user(opkit::mrkdwn!(
                "*{}* is an alarm in {} places; I changed nothing. Say which:\n{}",
                UserText::flat(name),
                n,
                Mrkdwn::join(lines, "\n")
            ))))
        }
    }
}

/// Where an alarm is, for a reply: `(account 222222222222, us-west-2)`.
fn place_of(record: &state::AlarmRecord) -> Mrkdwn {
    opkit::mrkdwn!(
        "(account {}, {})",
        UserText::flat(&record.facts.account),
        UserText::flat(&record.facts.region)
    )
}

/// Redraws the incident messages of the alarm kept under `key`.
async fn redraw(ctx: &Ctx<NotifyState>, opts: &NotifyOptions, key: &str) {
    let Some(poster) = &opts.channels else {
        return;
    };
    let Some(record) = ctx.state.alarms.get(key) else {
        return;
    };
    let Some(incident) = &record.incident else {
        return;
    };
    let message = render::incident_message(record, incident, &opts.accounts);
    for post in &incident.posts {
        if let Err(e) = poster
            .update(post.channel.as_str(), &post.ts, &message)
            .await
        {
            tracing::warn!(channel = %post.channel, error = %e, "could not redraw a notification");
        }
    }
}

fn unknown(name: &str) -> CommandError {
    CommandError::user(opkit::mrkdwn!(
        "No notification of an alarm called *{}* has been seen (names are case-sensitive).",
        UserText::flat(name)
    ))
}

/// The words after `for`, as typed.
fn duration_typed(args: &opkit::engine::Args) -> String {
    let tokens = args.tokens();
    tokens
        .iter()
        .position(|t| t.as_word().is_some_and(|w| w.eq_ignore_ascii_case("for")))
        .and_then(|i| tokens.get(i + 1))
        .and_then(opkit::text::Token::as_typed)
        .unwrap_or_default()
        .to_string()
}

/// The command line that picks the alarm `name` with `place` (`in …` words).
fn typed(verb: &str, name: &str, place: &str, tail: &str) -> String {
    let name = opkit::text::quote(name).unwrap_or_else(|| name.to_string());
    format!("{verb} {name} {place} {tail}")
        .trim_end()
        .to_string()
}

async fn ack(ctx: &mut Ctx<NotifyState>, opts: NotifyOptions) -> Result<Reply, CommandError> {
    let (args, scope) = split_scope(&ctx.args, &opts.accounts)?;
    let name = one_name(&args)?;
    let open = |r: &state::AlarmRecord| r.incident.as_ref().is_some_and(|i| i.ended_at.is_none());
    let key = pick(&ctx.state, &opts.accounts, &name, &scope, open, |place| {
        typed("alarms ack", &name, place, "")
    })
    .map_err(|e| {
        e.unwrap_or_else(|| {
            CommandError::user(opkit::mrkdwn!(
                "*{}* has no open incident to acknowledge{}.",
                UserText::flat(&name),
                if scope.is_everywhere() { "" } else { " there" }
            ))
        })
    })?;
    let user = ctx.caller.user.clone();
    let record = ctx.state.alarms.get_mut(&key).expect("picked");
    if let Some(incident) = record.incident.as_mut() {
        incident.acked_by = Some(user.clone());
    }
    let place = place_of(record);
    redraw(ctx, &opts, &key).await;
    Ok(Reply::in_channel(opkit::mrkdwn!(
        ":eyes: {} acknowledged *{}* {}.",
        user.mention(),
        UserText::flat(&name),
        place
    )))
}

async fn mute(ctx: &mut Ctx<NotifyState>, opts: NotifyOptions) -> Result<Reply, CommandError> {
    let (args, scope) = split_scope(&ctx.args, &opts.accounts)?;
    let (positional, options) = args.options(&["for"])?;
    let name = one_name(&positional)?;
    let Some(length) = options.duration("for")? else {
        return Err(CommandError::usage(
            "say for how long: `alarms mute <name> for 1h`",
        ));
    };
    if length < MIN_MUTE || length > MAX_MUTE {
        return Err(CommandError::usage(opkit::mrkdwn!(
            "a mute lasts from {} to {}",
            MIN_MUTE,
            MAX_MUTE
        )));
    }
    // The duration as typed, for the "which one?" examples.
    let tokens = duration_typed(&args);
    let tail = format!("for {tokens}");
    let key = pick(
        &ctx.state,
        &opts.accounts,
        &name,
        &scope,
        |_| true,
        |place| typed("alarms mute", &name, place, &tail),
    )
    .map_err(|e| {
        e.unwrap_or_else(|| {
            CommandError::user(opkit::mrkdwn!(
                "No alarm called *{}* has been seen there.",
                UserText::flat(&name)
            ))
        })
    })?;
    let until = ctx.now + length;
    let by = ctx.caller.user.clone();
    let channel = ctx.caller.channel.clone();
    let record = ctx.state.alarms.get_mut(&key).expect("picked");
    let thread_ts = record.incident.as_ref().and_then(|i| {
        i.posts
            .iter()
            .find(|p| Some(&p.channel) == channel.as_ref())
            .map(|p| p.ts.clone())
    });
    record.muted = Some(state::Mute {
        until,
        by: by.clone(),
        channel: channel.clone(),
        thread_ts,
    });
    let place = place_of(record);
    redraw(ctx, &opts, &key).await;
    Ok(Reply::in_channel(opkit::mrkdwn!(
        ":no_bell: {} muted *{}* {} until {}.",
        by.mention(),
        UserText::flat(&name),
        place,
        until
    )))
}

async fn unmute(ctx: &mut Ctx<NotifyState>, opts: NotifyOptions) -> Result<Reply, CommandError> {
    let (args, scope) = split_scope(&ctx.args, &opts.accounts)?;
    let name = one_name(&args)?;
    let muted = |r: &state::AlarmRecord| r.muted.is_some();
    let key = pick(&ctx.state, &opts.accounts, &name, &scope, muted, |place| {
        typed("alarms unmute", &name, place, "")
    })
    .map_err(|e| {
        e.unwrap_or_else(|| {
            CommandError::user(opkit::mrkdwn!("*{}* is not muted.", UserText::flat(&name)))
        })
    })?;
    let record = ctx.state.alarms.get_mut(&key).expect("picked");
    record.muted = None;
    let place = place_of(record);
    redraw(ctx, &opts, &key).await;
    Ok(Reply::in_channel(opkit::mrkdwn!(
        ":bell: *{}* {} is no longer muted.",
        UserText::flat(&name),
        place
    )))
}

/// The ticker: ends mutes whose time has come, and says so where they were
/// set (in the incident's thread when muted from its message).
fn end_mutes(state: &mut NotifyState, now: chrono::DateTime<chrono::Utc>) -> Vec<Notice> {
    let mut notices = Vec::new();
    for record in state.alarms.values_mut() {
        let Some(mute) = record.muted.take_if(|m| m.until <= now) else {
            continue;
        };
        notices.push(Notice {
            user: mute.by,
            channel: mute.channel,
            text: render::mute_ended(&record.facts.name, place_of(record), mute.until),
            thread_ts: mute.thread_ts,
        });
    }
    notices
}

#[cfg(test)]
mod budget_tests;
#[cfg(test)]
mod place_tests;
#[cfg(test)]
mod quiet_tests;
#[cfg(test)]
mod tests;
