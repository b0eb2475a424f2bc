//! The command model: what a command author writes.
//!
//! A command belongs to a [`Script`]; the commands of one script share one
//! JSON-serialisable state, loaded before and saved after each command (only when
//! the handler changed it). A command has one or more syntax forms (`weather` and
//! `weather in`), a usage line, a description, an access requirement, a
//! visibility, and an async handler.
//!
//! ```
//! use opkit::prelude::*;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Default, Serialize, Deserialize)]
//! struct Counter {
//!     hits: u64,
//! }
//!
//! async fn count(ctx: &mut Ctx<Counter>) -> Result<Reply, CommandError> {
//!     ctx.state.hits += 1;
//!     Ok(Reply::text(mrkdwn!("{} hits so far", ctx.state.hits)))
//! }
//!
//! let script = Script::<Counter>::new("counter").command(
//!     Command::new("count")
//!         .alias("hit")
//!         .describe("Counts how often anyone asked")
//!         .handler(|ctx| Box::pin(count(ctx))),
//! );
//! # let _ = script;
//! ```

use std::any::TypeId;
use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;
use uuid::Uuid;

use crate::BoxFuture;
use crate::access::Access;
use crate::engine::bot::Bot;
use crate::engine::registry::BuildError;

pub use crate::engine::args::{Args, Options};
pub use crate::engine::error::CommandError;
use crate::ids::{ChannelId, Role, TeamId, UserId};
use crate::slack::mrkdwn::Mrkdwn;
use crate::slack::{Reply, Visibility};

/// Who is asking, and where.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Caller {
    /// The user.
    pub user: UserId,
    /// The channel, if the command came from one.
    #[serde(default)]
    pub channel: Option<ChannelId>,
    /// The workspace, if known.
    #[serde(default)]
    pub team: Option<TeamId>,
    /// The thread the command was asked in (its parent message's `ts`): a mention
    /// in a thread, a button on a message in a thread or one that starts it.
    /// What a command posts itself (a `graph` picture) goes there, and so does an
    /// in-channel reply. `None`: the channel itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_ts: Option<String>,
}

impl Caller {
    /// A caller with only a user id.
    pub fn user(user: UserId) -> Self {
        Self {
            user,
            channel: None,
            team: None,
            thread_ts: None,
        }
    }

    /// A caller in `channel`, outside any thread.
    pub fn in_channel(user: UserId, channel: ChannelId) -> Self {
        Self {
            channel: Some(channel),
            ..Self::user(user)
        }
    }
}

/// Everything a handler gets: its arguments, who asked, the script's state, the
/// time, and the bot (for services such as the store and the authorizer).
pub struct Ctx<S> {
    /// The arguments after the syntax form.
    pub args: Args,
    /// Who asked, and where.
    pub caller: Caller,
    /// The script's state; changes are saved after the handler returns `Ok`.
    pub state: S,
    /// The time the command runs at (from the bot's clock).
    pub now: DateTime<Utc>,
    /// Shared by every audit record and log line of this command.
    pub correlation_id: Uuid,
    /// The bot running the command.
    pub bot: Bot,
    /// Whether the command may act: it has no gate, or its gate was passed.
    gate_passed: bool,
    /// What a gated command asked to be confirmed (see [`Ctx::confirm`]).
    asked: Option<Mrkdwn>,
    /// Who gains from the request besides the asker (see [`Ctx::benefits`]).
    beneficiaries: Vec<UserId>,
    /// How each of them gains, said to one who approved it ([`Ctx::benefits`]).
    gains: Vec<(UserId, Mrkdwn)>,
    /// How the prompt names them instead ([`Ctx::name_beneficiaries`]).
    beneficiaries_named: Option<Mrkdwn>,
    /// Who approved the request, in its approved run; `None` otherwise.
    approved_by: Option<UserId>,
    /// Roles whose holders may approve this request besides the gate's
    /// approvers (see [`Ctx::also_approved_by`]).
    also_approved_by: Vec<Role>,
    /// What this run resolved its inputs to (see [`Ctx::bind`]).
    bound: Bindings,
    /// What the request's inputs were resolved to when it was asked, in its
    /// confirmed or approved run; empty otherwise.
    bound_when_asked: Bindings,
    /// Whether [`Ctx::confirm`] let this run act (its gate passed, and nothing
    /// it bound changed): until then a refusal means nothing was done.
    confirmed: bool,
}

/// What a gated request's inputs were resolved to when it was asked
/// ([`Ctx::bind`]): input → value, as shown to people.
pub type Bindings = std::collections::BTreeMap<String, String>;

impl<S> Ctx<S> {
    /// The gate of a command declared with [`Command::confirm`] or
    /// [`Command::approval`]. Call it once the arguments are valid and the action
    /// would change something, before changing anything, with what it would do
    /// (one line of mrkdwn, user text escaped), and return its error with `?`:
    ///
    /// ```text
    /// asked      → Err: nothing is saved; the bot holds the request and its prompt
    ///              shows `summary` under the request
    /// confirmed  → Ok(()): the handler runs again from the start, on fresh state,
    ///   /approved  so it validates again before it acts
    /// no gate    → Ok(())
    /// ```
    ///
    /// Changes to [`Ctx::state`] made before asking are discarded with the ask, so
    /// a handler may work out its answer on the state first and show it as the
    /// summary. A gated handler that returns without calling it changes nothing and fails
    /// as an internal error: a command cannot skip its own gate.
    ///
    /// In an approved run, it refuses when the approver gains from the request
    /// as it is now ([`Ctx::benefits`], asked again as the handler runs): who
    /// gains may have changed since it was asked (someone who joined a linked
    /// group). Nothing runs.
    ///
    /// In a confirmed or approved run, it also refuses when the run did not
    /// bind again every input the prompt bound ([`Ctx::bind`]): the command
    /// now resolves the request through something its prompt did not show (a
    /// declared command changed from an HTTP call to another action). Nothing
    /// runs.
    pub fn confirm(&mut self, summary: impl Into<Mrkdwn>) -> Result<(), CommandError> {
        if self.gate_passed {
            if let Some(what) = self
                .bound_when_asked
                .keys()
                .find(|what| !self.bound.contains_key(*what))
            {
                return Err(CommandError::user(crate::mrkdwn!(
                    "This request no longer acts on {} its prompt showed ({}): the command \
                     changed since it was asked. Nothing was run; ask again if you still \
                     want it.",
                    crate::slack::mrkdwn::UserText::new(what),
                    shown_binding(&self.bound_when_asked[what])
                )));
            }
            if let Some(approver) = &self.approved_by
                && let Some((_, how)) = self.gains.iter().find(|(u, _)| u == approver)
            {
                return Err(CommandError::user(crate::mrkdwn!(
                    "{} may not approve this: {}. Nobody approves a request they gain \
                     from: nothing was run, and the request is dropped (an approval uses \
                     it up). Ask again for someone else to approve it.",
                    approver.mention(),
                    how.clone()
                )));
            }
            self.confirmed = true;
            return Ok(());
        }
        self.asked = Some(summary.into());
        Err(CommandError::user("waiting for a confirmation"))
    }

    /// Names `user` as gaining from this request besides the asker (the subject
    /// of `roles grant`, the members of a linked group). Call it before
    /// [`Ctx::confirm`]: nobody who gains from a request may be its second
    /// person, so none of them may approve it (see
    /// [`Pending::benefits`](crate::engine::gate::Pending::benefits)).
    ///
    /// `how` says what they gain, to them (`you are in @ops-oncall, which this
    /// would give *ops*`): the approved run calls it again on what is true by
    /// then, and [`Ctx::confirm`] refuses an approver it names with it.
    pub fn benefits(&mut self, user: &UserId, how: impl Into<Mrkdwn>) {
        if !self.beneficiaries.contains(user) {
            self.beneficiaries.push(user.clone());
            self.gains.push((user.clone(), how.into()));
        }
    }

    /// How the approval prompt names who gains besides the asker, in place of a
    /// mention of each: `the 2,000 members of @ops-oncall`. For a request whose
    /// beneficiaries are a group's members: the prompt is posted in the channel,
    /// and a mention of each would ping every one of them. They are still each
    /// named with [`Ctx::benefits`], and none of them may approve it.
    pub fn name_beneficiaries(&mut self, shown: impl Into<Mrkdwn>) {
        self.beneficiaries_named = Some(shown.into());
    }

    /// Lets the holders of `role` approve this request too, besides the
    /// approvers of the command's gate (still never someone who gains from it).
    /// For a request the gate's approvers may not be there for: the grant of the
    /// approving role itself, which an admin may approve.
    pub fn also_approved_by(&mut self, role: Role) {
        if !self.also_approved_by.contains(&role) {
            self.also_approved_by.push(role);
        }
    }
}

impl<S> Ctx<S> {
    /// Binds this request to `value`, what the handler resolved `what` to: an
    /// input read as it runs rather than typed, that may change between the
    /// prompt and the click (the account a channel default names, the
    /// instances a name matches). Call it before [`Ctx::confirm`], with the value
    /// the prompt shows:
    ///
    /// ```text
    /// asking     → Ok(()): kept with the held request
    /// confirmed  → Ok(()) when `what` resolves to the value it had when asked;
    ///   /approved  else Err (user): it changed since the request was asked,
    ///              then → now, and nothing runs — a confirmation never acts on
    ///              something its prompt did not name
    /// no gate    → Ok(())
    /// ```
    ///
    /// `what` names the input for people (`the AWS account and region`), and
    /// `value` is shown as written (escaped).
    pub fn bind(&mut self, what: &str, value: impl Into<String>) -> Result<(), CommandError> {
        let value = value.into();
        if let Some(then) = self.bound_when_asked.get(what)
            && *then != value
        {
            return Err(CommandError::user(crate::mrkdwn!(
                "{} changed since this request was asked: it was {}, it is now {}. Nothing \
                 was run; ask again if you still want it.",
                crate::slack::mrkdwn::UserText::new(capitalized(what)),
                shown_binding(then),
                shown_binding(&value)
            )));
        }
        self.bound.insert(what.to_string(), value);
        Ok(())
    }

    /// As [`Ctx::bind`], for a value that is not to be shown: a digest of what
    /// the request would send, secrets included (a declared command's URL,
    /// headers and body). A confirmed or approved run whose value differs is
    /// refused naming `what` only ("… changed since this request was asked
    /// (what it was is not shown: it may hold a secret). Nothing was run …"),
    /// and nothing runs. `digest` is kept with the held request as it is: it
    /// must not be reversible into what it digests.
    pub fn bind_unshown(
        &mut self,
        what: &str,
        digest: impl Into<String>,
    ) -> Result<(), CommandError> {
        let value = format!("{UNSHOWN}{}", digest.into());
        if let Some(then) = self.bound_when_asked.get(what)
            && *then != value
        {
            return Err(CommandError::user(crate::mrkdwn!(
                "{} changed since this request was asked (what it was is not shown: it may \
                 hold a secret). Nothing was run; ask again if you still want it.",
                crate::slack::mrkdwn::UserText::new(capitalized(what)),
            )));
        }
        self.bound.insert(what.to_string(), value);
        Ok(())
    }

    /// The value `what` was bound to ([`Ctx::bind`]) when this request was
    /// asked, in its confirmed or approved run; `None` otherwise. For a handler
    /// that acts on exactly what its prompt named rather than resolving the
    /// input again.
    pub fn bound_when_asked(&self, what: &str) -> Option<&str> {
        self.bound_when_asked.get(what).map(String::as_str)
    }

    /// The asker's time zone, for reading the times they type (`from 22:00`):
    /// their Slack zone where the bot can ask, else the deployment's default.
    /// Asked only when needed; see [`crate::zones`].
    pub async fn asker_zone(&self) -> crate::timespec::Tz {
        self.bot.zone_of(&self.caller.user).await
    }
}

/// What [`Ctx::bind_unshown`] puts before a digest it keeps, so that no
/// message shows the digest as if it were a value.
const UNSHOWN: &str = "unshown:";

/// A bound value as a message shows it: escaped, with each time in it drawn
/// as the bot draws times (a date token, in the reader's zone) — bindings write
/// times in RFC 3339 UTC (`2026-11-30T08:04:36Z`); a digest as "not shown".
fn shown_binding(value: &str) -> Mrkdwn {
    use crate::slack::mrkdwn::UserText;
    const TIME_LEN: usize = "2026-11-30T08:04:36Z".len();
    if value.starts_with(UNSHOWN) {
        return "not shown".into();
    }
    let mut out = Mrkdwn::new();
    let mut rest = value;
    loop {
        let time = rest.char_indices().find_map(|(i, _)| {
            let candidate = rest.get(i..i + TIME_LEN)?;
            let time = DateTime::parse_from_rfc3339(candidate).ok()?;
            candidate
                .ends_with('Z')
                .then(|| (i, time.with_timezone(&Utc)))
        });
        let Some((at, time)) = time else {
            out.push(UserText::new(rest));
            return out;
        };
        out.push(UserText::new(&rest[..at]));
        out.push(time);
        rest = &rest[at + TIME_LEN..];
    }
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The type of command handlers: an async function of the context.
///
/// Write handlers as `async fn f(ctx: &mut Ctx<State>) -> Result<Reply, CommandError>`
/// and register them with `.handler(|ctx| Box::pin(f(ctx)))`.
pub trait Handler<S>: Send + Sync + 'static {
    /// Runs the command.
    fn call<'a>(&'a self, ctx: &'a mut Ctx<S>) -> BoxFuture<'a, Result<Reply, CommandError>>;
}

impl<S, F> Handler<S> for F
where
    F: for<'a> Fn(&'a mut Ctx<S>) -> BoxFuture<'a, Result<Reply, CommandError>>
        + Send
        + Sync
        + 'static,
{
    fn call<'a>(&'a self, ctx: &'a mut Ctx<S>) -> BoxFuture<'a, Result<Reply, CommandError>> {
        self(ctx)
    }
}

/// A command, built with a small builder.
pub struct Command<S> {
    forms: Vec<String>,
    usage: String,
    description: String,
    examples: Vec<String>,
    access: Access,
    visibility: Visibility,
    gate: Gate,
    rule: Option<Arc<RuleFn>>,
    unattended: Option<String>,
    defined_at: Option<String>,
    runs: Option<String>,
    handler: Option<Arc<dyn Handler<S>>>,
}

/// A command's own rule of who may run it with which arguments, beyond its
/// [`Access`] (see [`Command::rule`]): `Ok(())`, or the refusal the user gets
/// ([`CommandError::user`], or [`CommandError::usage`] for arguments it cannot
/// read). Given the bot, the user who would run the command, and its arguments.
pub type RuleFn = dyn for<'a> Fn(&'a Bot, &'a UserId, &'a Args) -> BoxFuture<'a, Result<(), CommandError>>
    + Send
    + Sync;

/// What must happen between asking and running.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Gate {
    /// Runs at once.
    #[default]
    None,
    /// The asker (or anyone allowed to run it) confirms with a button first.
    Confirm,
    /// A second person satisfying this requirement approves first; never the asker.
    Approval(Access),
}

impl<S> Command<S> {
    /// A command whose main syntax form is `form` (one or more words, e.g. `queue join`).
    /// The form is also the command's name.
    pub fn new(form: &str) -> Self {
        Self {
            forms: vec![normalize_form(form)],
            usage: String::new(),
            description: String::new(),
            examples: Vec::new(),
            access: Access::Open,
            visibility: Visibility::Ephemeral,
            gate: Gate::None,
            rule: None,
            unattended: None,
            defined_at: None,
            runs: None,
            handler: None,
        }
    }

    /// Declared in a file, not built in: where (`commands.toml:12`). The
    /// registry keeps a declared command's words off every built-in's form (see
    /// [`Registry`](crate::engine::Registry)) and names the place in its errors.
    pub fn defined_at(mut self, place: &str) -> Self {
        self.defined_at = Some(place.to_string());
        self
    }

    /// An alias: its handler runs `text`, another command with fixed arguments,
    /// as the asker. The registry checks that `text` is a command that is not an
    /// alias, and gives this one that command's access (besides its own) and
    /// rule, so that `help`, `can` and dispatch answer for it as for `text`.
    pub fn runs(mut self, text: &str) -> Self {
        self.runs = Some(text.to_string());
        self
    }

    /// A rule of who may run it with which arguments, beyond [`Command::access`]
    /// (`roles grant`: only an admin grants `admin`). The engine asks it before
    /// the handler, every time the command would run (typed, after its
    /// confirmation or approval, on a schedule), and `can` asks the same rule:
    /// so `can` never says yes to what the run then refuses. A rule reads, it
    /// never changes anything.
    pub fn rule<F>(mut self, rule: F) -> Self
    where
        F: for<'a> Fn(&'a Bot, &'a UserId, &'a Args) -> BoxFuture<'a, Result<(), CommandError>>
            + Send
            + Sync
            + 'static,
    {
        self.rule = Some(Arc::new(rule));
        self
    }

    /// Never run on a schedule, and why (`"it decides someone's request"`): for
    /// commands that stand for a person's decision. Gated commands (confirm,
    /// approval) are never scheduled anyway ([`CommandSpec::unattended`]).
    pub fn attended(mut self, why: &str) -> Self {
        self.unattended = Some(why.to_string());
        self
    }

    /// Asks for a confirmation button before running (destructive commands).
    pub fn confirm(mut self) -> Self {
        self.gate = Gate::Confirm;
        self
    }

    /// Runs only once someone else satisfying `approvers` approves.
    pub fn approval(mut self, approvers: Access) -> Self {
        self.gate = Gate::Approval(approvers);
        self
    }

    /// Another syntax form for the same command (e.g. `weather in` beside `weather`).
    pub fn alias(mut self, form: &str) -> Self {
        self.forms.push(normalize_form(form));
        self
    }

    /// What follows the name in the usage line, e.g. `<env> [for <duration>]`.
    pub fn usage(mut self, args: &str) -> Self {
        self.usage = args.to_string();
        self
    }

    /// A one-line description for help.
    pub fn describe(mut self, text: &str) -> Self {
        self.description = text.to_string();
        self
    }

    /// An example of the whole command as a user types it in Slack, shown by
    /// `help <command>` (`queue join perf for 2h`; mentions as `@alice`). Call it
    /// again for more examples.
    pub fn example(mut self, text: &str) -> Self {
        self.examples.push(text.to_string());
        self
    }

    /// Who may run it (default: everyone).
    pub fn access(mut self, access: Access) -> Self {
        self.access = access;
        self
    }

    /// Replies go to the whole channel rather than only to the asker.
    pub fn in_channel(mut self) -> Self {
        self.visibility = Visibility::InChannel;
        self
    }

    /// The handler: `|ctx| Box::pin(my_handler(ctx))` for an
    /// `async fn my_handler(ctx: &mut Ctx<S>) -> Result<Reply, CommandError>`.
    pub fn handler<F>(mut self, handler: F) -> Self
    where
        F: for<'a> Fn(&'a mut Ctx<S>) -> BoxFuture<'a, Result<Reply, CommandError>>
            + Send
            + Sync
            + 'static,
    {
        self.handler = Some(Arc::new(handler));
        self
    }
}

fn normalize_form(form: &str) -> String {
    form.split_whitespace()
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}

/// State a script keeps between commands.
pub trait ScriptState: Default + Serialize + DeserializeOwned + Send + 'static {}

impl<T: Default + Serialize + DeserializeOwned + Send + 'static> ScriptState for T {}

/// A group of commands sharing one state `S`. Use `()` for a script without state:
/// nothing is then loaded or saved.
pub struct Script<S> {
    name: String,
    commands: Vec<Command<S>>,
    ticker: Option<Arc<TickFn<S>>>,
    unlinkable: Vec<Role>,
}

/// A script's periodic step: given its state and the time, end what is due and
/// say what happened. See [`Script::ticker`].
pub type TickFn<S> = dyn Fn(&mut S, DateTime<Utc>) -> Vec<Notice> + Send + Sync;

/// Something a script did by itself (a hold ran out), to announce in a channel
/// and record in the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// Whom it concerns.
    pub user: UserId,
    /// Where to announce it; `None`: only audit it.
    pub channel: Option<ChannelId>,
    /// The announcement.
    pub text: Mrkdwn,
    /// The thread to announce it in (`thread_ts`); `None`: the channel itself.
    pub thread_ts: Option<String>,
}

impl<S: ScriptState> Script<S> {
    /// An empty script. `name` keys its state in the store: keep it stable.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            commands: Vec::new(),
            ticker: None,
            unlinkable: Vec::new(),
        }
    }

    /// Roles no user group link may give (besides `admin`, which none ever
    /// does): the bot ignores a stored link of one when it works out who holds
    /// what ([`crate::groups::GroupRoles::gives`]). The links script's, from its
    /// policy: a link stored before `roles link` refused such roles gives nothing.
    pub fn unlinkable(mut self, roles: impl IntoIterator<Item = Role>) -> Self {
        self.unlinkable.extend(roles);
        self
    }

    /// Takes the roles no link may give out ([`Script::unlinkable`]).
    pub(crate) fn take_unlinkable(&mut self) -> Vec<Role> {
        std::mem::take(&mut self.unlinkable)
    }

    /// A step run on a schedule (every minute deployed, by the expiry function;
    /// every few seconds under `opkit serve`) to end what is due on time rather
    /// than when someone next types a command. The state is saved if it changed.
    pub fn ticker(
        mut self,
        tick: impl Fn(&mut S, DateTime<Utc>) -> Vec<Notice> + Send + Sync + 'static,
    ) -> Self {
        self.ticker = Some(Arc::new(tick));
        self
    }

    /// Takes the script's ticker out, type-erased.
    pub(crate) fn take_ticker(&mut self) -> Option<TickerSpec> {
        let tick = self.ticker.take()?;
        Some(TickerSpec {
            script: self.name.as_str().into(),
            run: Arc::new(TypedTicker(tick)),
        })
    }

    /// Adds a command.
    pub fn command(mut self, command: Command<S>) -> Self {
        self.commands.push(command);
        self
    }

    /// Type-erases the script into command specs for the registry.
    pub(crate) fn into_specs(self) -> Result<Vec<CommandSpec>, BuildError> {
        let stateful = TypeId::of::<S>() != TypeId::of::<()>();
        let script: Arc<str> = self.name.into();
        self.commands
            .into_iter()
            .map(|c| {
                let name = c.forms[0].clone();
                let handler = c.handler.ok_or_else(|| BuildError::NoHandler {
                    command: name.clone(),
                })?;
                Ok(CommandSpec {
                    name,
                    script: script.clone(),
                    forms: c.forms,
                    usage: c.usage,
                    description: c.description,
                    examples: c.examples,
                    access: c.access,
                    visibility: c.visibility,
                    gate: c.gate,
                    rule: c.rule,
                    attended: c.unattended,
                    defined_at: c.defined_at,
                    runs: c.runs,
                    stateful,
                    runner: Arc::new(Typed(handler)),
                })
            })
            .collect()
    }
}

/// A registered ticker, its state type erased.
pub(crate) struct TickerSpec {
    pub script: Arc<str>,
    pub run: Arc<dyn ErasedTicker>,
}

/// The outcome of one tick: the notices, and the new state if it changed.
pub(crate) type TickResult = Result<(Vec<Notice>, Option<Value>), CommandError>;

pub(crate) trait ErasedTicker: Send + Sync {
    fn tick(&self, state: Option<Value>, now: DateTime<Utc>) -> TickResult;
}

struct TypedTicker<S>(Arc<TickFn<S>>);

impl<S: ScriptState> ErasedTicker for TypedTicker<S> {
    fn tick(&self, state: Option<Value>, now: DateTime<Utc>) -> TickResult {
        let (mut typed, baseline) = decode_state::<S>(state)?;
        let notices = (self.0)(&mut typed, now);
        let after = serde_json::to_value(&typed).map_err(CommandError::internal)?;
        Ok((notices, (baseline != after).then_some(after)))
    }
}

/// Reads a script's stored state (or its default) and the JSON it started from.
/// Unsaved state counts as the default, so leaving it alone causes no write.
fn decode_state<S: ScriptState>(state: Option<Value>) -> Result<(S, Value), CommandError> {
    match state {
        Some(value) => {
            let typed = serde_json::from_value(value.clone()).map_err(|e| {
                CommandError::internal_with("stored state does not match the script", e)
            })?;
            Ok((typed, value))
        }
        None => {
            let typed = S::default();
            let value = serde_json::to_value(&typed).map_err(CommandError::internal)?;
            Ok((typed, value))
        }
    }
}

/// A registered command, its state type erased.
#[derive(Clone)]
pub struct CommandSpec {
    /// The main form, e.g. `queue join`.
    pub name: String,
    /// The script it belongs to.
    pub script: Arc<str>,
    /// Every syntax form, lower case, words separated by one space.
    pub forms: Vec<String>,
    /// Arguments part of the usage line.
    pub usage: String,
    /// One-line description.
    pub description: String,
    /// Examples as a user types them ([`Command::example`]).
    pub examples: Vec<String>,
    /// Who may run it.
    pub access: Access,
    /// Who sees its replies.
    pub visibility: Visibility,
    /// Confirmation or approval needed before it runs.
    pub gate: Gate,
    /// Its own rule of who may run it with which arguments ([`Command::rule`]).
    pub(crate) rule: Option<Arc<RuleFn>>,
    /// Why it is never run on a schedule, besides a gate ([`Command::attended`]).
    pub(crate) attended: Option<String>,
    /// Where it was declared, if it was ([`Command::defined_at`]); `None`: built in.
    pub defined_at: Option<String>,
    /// For an alias, the command text it runs ([`Command::runs`]).
    pub runs: Option<String>,
    /// Whether its script has state to load and save.
    pub stateful: bool,
    pub(crate) runner: Arc<dyn ErasedHandler>,
}

impl CommandSpec {
    /// Whether it may run with nobody there to click (on a schedule): `Err` says
    /// why not — it asks for a confirmation, it waits for an approval, or it
    /// stands for a person's decision ([`Command::attended`]). Asked when a
    /// schedule is added and again at each of its runs: a command that becomes
    /// gated later is refused then.
    pub fn unattended(&self) -> Result<(), Mrkdwn> {
        match self.why_attended() {
            None => Ok(()),
            Some(why) => Err(crate::mrkdwn!(
                "{} {}",
                crate::slack::mrkdwn::Code::new(&self.name),
                crate::slack::mrkdwn::UserText::new(why.as_str())
            )),
        }
    }

    /// Why it needs a person there, as [`CommandSpec::unattended`] says it but
    /// without its name and as plain text ("asks for a confirmation, …");
    /// `None` when it may run unattended.
    pub(crate) fn why_attended(&self) -> Option<String> {
        match (&self.gate, &self.attended) {
            (Gate::Confirm, _) => Some(
                "asks for a confirmation, and nobody is there to click it on a schedule".into(),
            ),
            (Gate::Approval(_), _) => {
                Some("waits for a second person's approval, which a schedule cannot give".into())
            }
            (Gate::None, why) => why.clone(),
        }
    }

    /// The engine's own check of `args`, made before any handler runs: a command
    /// whose usage line names no arguments takes none, so extra words are refused
    /// ("`whoami` takes no arguments, but was given `extra`") rather than ignored.
    /// Asked at each run and when a schedule is added, so a schedule that would
    /// fail every run is refused when it is made.
    /// `Err` holds the reason, for the caller to show with its own usage line.
    pub fn check_args(&self, args: &Args) -> Result<(), Mrkdwn> {
        if self.usage.is_empty() && !args.is_empty() {
            return Err(crate::mrkdwn!(
                "{} takes no arguments, but was given {}",
                crate::slack::mrkdwn::Code::new(&self.name),
                crate::slack::mrkdwn::CommandLine::new(&crate::text::canonical(args.tokens()))
            ));
        }
        Ok(())
    }

    /// The full usage line, e.g. `queue join <env> [for <duration>]`.
    pub fn usage_line(&self) -> String {
        if self.usage.is_empty() {
            self.name.clone()
        } else {
            format!("{} {}", self.name, self.usage)
        }
    }
}

impl fmt::Debug for CommandSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommandSpec")
            .field("name", &self.name)
            .field("script", &self.script)
            .field("forms", &self.forms)
            .finish_non_exhaustive()
    }
}

/// What a run needs besides the state.
pub(crate) struct Invocation {
    pub args: Args,
    pub caller: Caller,
    pub now: DateTime<Utc>,
    pub correlation_id: Uuid,
    pub bot: Bot,
    /// Whether the handler may act (no gate, or it was passed).
    pub gate_passed: bool,
    /// What the request was bound to when asked ([`Ctx::bind`]): empty unless
    /// this is its confirmed or approved run.
    pub bound_when_asked: Bindings,
    /// Who approved the request, in its approved run ([`Ctx::benefits`]).
    pub approved_by: Option<UserId>,
}

/// What a run came to.
pub(crate) enum Ran {
    /// It ran: the reply.
    Done(Reply),
    /// A gated command's handler validated its request and asked for the gate.
    /// Nothing changed.
    Asked(Asked),
    /// Its handler refused before [`Ctx::confirm`] let it act (in a confirmed
    /// or approved run: what it bound changed, the approver gains from it, its
    /// window passed): nothing was done, and the refusal is the whole outcome
    /// of the decision (tester F14, G11). Answered as any error.
    Refused(CommandError),
}

/// What a gated handler asked for its gate.
pub(crate) struct Asked {
    /// What it would do.
    pub summary: Mrkdwn,
    /// Who gains from it besides the asker ([`Ctx::benefits`]).
    pub beneficiaries: Vec<UserId>,
    /// How the prompt names them, if not one by one ([`Ctx::name_beneficiaries`]).
    pub beneficiaries_named: Option<Mrkdwn>,
    /// Roles that may approve it besides the gate's approvers
    /// ([`Ctx::also_approved_by`]).
    pub also_approved_by: Vec<Role>,
    /// What its inputs were resolved to ([`Ctx::bind`]).
    pub bound: Bindings,
}

/// The outcome of one run, and the new state if it changed.
pub(crate) type RunResult = Result<(Ran, Option<Value>), CommandError>;

pub(crate) trait ErasedHandler: Send + Sync {
    fn run(&self, state: Option<Value>, inv: Invocation) -> BoxFuture<'_, RunResult>;
}

struct Typed<S>(Arc<dyn Handler<S>>);

impl<S: ScriptState> ErasedHandler for Typed<S> {
    fn run(&self, state: Option<Value>, inv: Invocation) -> BoxFuture<'_, RunResult> {
        Box::pin(async move {
            let (state, baseline) = decode_state::<S>(state)?;
            let mut ctx = Ctx {
                args: inv.args,
                caller: inv.caller,
                state,
                now: inv.now,
                correlation_id: inv.correlation_id,
                bot: inv.bot,
                gate_passed: inv.gate_passed,
                asked: None,
                beneficiaries: Vec::new(),
                gains: Vec::new(),
                beneficiaries_named: None,
                approved_by: inv.approved_by,
                also_approved_by: Vec::new(),
                bound: Bindings::new(),
                bound_when_asked: inv.bound_when_asked,
                confirmed: false,
            };
            let outcome = self.0.call(&mut ctx).await;
            // Whatever the handler returned after asking, the request is held and
            // nothing is saved.
            if let Some(summary) = ctx.asked.take() {
                let beneficiaries = std::mem::take(&mut ctx.beneficiaries);
                let asked = Asked {
                    summary,
                    beneficiaries,
                    beneficiaries_named: ctx.beneficiaries_named.take(),
                    also_approved_by: std::mem::take(&mut ctx.also_approved_by),
                    bound: std::mem::take(&mut ctx.bound),
                };
                return Ok((Ran::Asked(asked), None));
            }
            let reply = match outcome {
                Ok(reply) => reply,
                // A person's decision led here, and the handler said no before
                // it did anything: the refusal alone is the outcome.
                Err(e @ (CommandError::User(_) | CommandError::Usage(_)))
                    if ctx.gate_passed && !ctx.confirmed =>
                {
                    return Ok((Ran::Refused(e), None));
                }
                Err(e) => return Err(e),
            };
            if !ctx.gate_passed {
                return Err(CommandError::internal(
                    "a gated command returned without asking for its gate (Ctx::confirm); \
                     its state was not saved",
                ));
            }
            let after = serde_json::to_value(&ctx.state).map_err(CommandError::internal)?;
            Ok((Ran::Done(reply), (baseline != after).then_some(after)))
        })
    }
}
