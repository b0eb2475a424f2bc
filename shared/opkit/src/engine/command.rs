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
//!     Ok(Reply::text(format!("{} hits so far", ctx.state.hits)))
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

pub use crate::engine::error::CommandError;
use crate::ids::{ChannelId, IdError, TeamId, UserId};
use crate::slack::{Reply, Visibility};
use crate::text::{Token, one_line};
use crate::timespec;

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
}

impl Caller {
    /// A caller with only a user id.
    pub fn user(user: UserId) -> Self {
        Self {
            user,
            channel: None,
            team: None,
        }
    }
}

/// The words after the matched syntax form, with typed accessors whose errors
/// say what was expected.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Args {
    tokens: Vec<Token>,
}

impl Args {
    /// Wraps tokens.
    pub fn new(tokens: Vec<Token>) -> Self {
        Self { tokens }
    }

    /// The raw tokens.
    pub fn tokens(&self) -> &[Token] {
        &self.tokens
    }

    /// How many tokens there are.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The token at `i`, if any.
    pub fn get(&self, i: usize) -> Option<&Token> {
        self.tokens.get(i)
    }

    /// The plain word at `i`; `what` names it in the error ("an environment").
    pub fn word(&self, i: usize, what: &str) -> Result<&str, CommandError> {
        match self.tokens.get(i) {
            Some(Token::Word(w)) => Ok(w),
            // Slack turns what looks like a host name or an address into a link
            // whose label is what was typed: `staging.example.com` arrives as
            // `<http://staging.example.com|staging.example.com>`. That is a word.
            Some(Token::Link {
                url,
                label: Some(label),
            }) if ["http://", "https://", "mailto:"]
                .iter()
                .any(|scheme| url.strip_prefix(scheme) == Some(label.as_str())) =>
            {
                Ok(label)
            }
            Some(other) => Err(CommandError::usage(format!(
                "expected {what}, not {}",
                one_line(&other.to_string())
            ))),
            None => Err(CommandError::usage(format!("missing {what}"))),
        }
    }

    /// The user mentioned at `i`. A bare id such as `U123` is accepted too.
    pub fn user(&self, i: usize) -> Result<UserId, CommandError> {
        match self.tokens.get(i) {
            Some(Token::User { id, .. }) => Ok(id.clone()),
            Some(Token::Word(w)) => Ok(UserId::parse(w.trim_start_matches('@'))?),
            Some(other) => Err(IdError::User(other.to_string()).into()),
            None => Err(CommandError::usage(
                "missing a user: mention someone like @name",
            )),
        }
    }

    /// All the words from `i` on, joined by spaces (a free-text argument).
    pub fn rest(&self, i: usize) -> String {
        self.tokens
            .iter()
            .skip(i)
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Splits off trailing `keyword value` options such as `for 2h` or `from 22:00`,
    /// case-insensitively. Returns the positional tokens before the first option
    /// keyword and the options found. An option keyword without a value, or given
    /// twice, is a usage error.
    pub fn options(&self, keywords: &[&str]) -> Result<(Args, Options), CommandError> {
        let is_kw = |t: &Token| {
            t.as_word()
                .and_then(|w| keywords.iter().find(|k| k.eq_ignore_ascii_case(w)))
                .copied()
        };
        let first = self.tokens.iter().position(|t| is_kw(t).is_some());
        let split = first.unwrap_or(self.tokens.len());
        let mut options = Options::default();
        let mut rest = self.tokens[split..].iter();
        while let Some(token) = rest.next() {
            let Some(kw) = is_kw(token) else {
                return Err(CommandError::usage(format!(
                    "unexpected `{}`",
                    one_line(&token.to_string())
                )));
            };
            let value = rest
                .next()
                .ok_or_else(|| CommandError::usage(format!("`{kw}` needs a value")))?;
            if options.get(kw).is_some() {
                return Err(CommandError::usage(format!("`{kw}` is given twice")));
            }
            options.0.push((kw.to_string(), value.to_string()));
        }
        Ok((Args::new(self.tokens[..split].to_vec()), options))
    }
}

/// `keyword value` options split off by [`Args::options`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options(Vec<(String, String)>);

impl Options {
    /// The value given for `keyword`.
    pub fn get(&self, keyword: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == keyword)
            .map(|(_, v)| v.as_str())
    }

    /// The value for `keyword` parsed as a duration (`90m`, `2h`, `1d`).
    pub fn duration(&self, keyword: &str) -> Result<Option<chrono::Duration>, CommandError> {
        Ok(self
            .get(keyword)
            .map(timespec::parse_duration)
            .transpose()?)
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
    access: Access,
    visibility: Visibility,
    gate: Gate,
    handler: Option<Arc<dyn Handler<S>>>,
}

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
            access: Access::Open,
            visibility: Visibility::Ephemeral,
            gate: Gate::None,
            handler: None,
        }
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
    pub text: String,
}

impl<S: ScriptState> Script<S> {
    /// An empty script. `name` keys its state in the store: keep it stable.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            commands: Vec::new(),
            ticker: None,
        }
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
                    access: c.access,
                    visibility: c.visibility,
                    gate: c.gate,
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
    /// Who may run it.
    pub access: Access,
    /// Who sees its replies.
    pub visibility: Visibility,
    /// Confirmation or approval needed before it runs.
    pub gate: Gate,
    /// Whether its script has state to load and save.
    pub stateful: bool,
    pub(crate) runner: Arc<dyn ErasedHandler>,
}

impl CommandSpec {
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
}

/// The outcome of one run: the reply, and the new state if it changed.
pub(crate) type RunResult = Result<(Reply, Option<Value>), CommandError>;

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
            };
            let reply = self.0.call(&mut ctx).await?;
            let after = serde_json::to_value(&ctx.state).map_err(CommandError::internal)?;
            Ok((reply, (baseline != after).then_some(after)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_slack_turned_into_links_are_still_words() {
        let args = Args::new(crate::text::tokenize(
            "<http://staging.example.com|staging.example.com> <mailto:ops@example.com|ops@example.com> \
             <https://evil.example/x|staging.example.com> <http://a.example>",
        ));
        assert_eq!(
            args.word(0, "an environment").unwrap(),
            "staging.example.com"
        );
        assert_eq!(args.word(1, "an address").unwrap(), "ops@example.com");
        // a link whose label is not what it points to is not a word
        assert!(args.word(2, "an environment").is_err());
        assert!(args.word(3, "an environment").is_err());
    }
    use crate::text::tokenize;

    fn args(s: &str) -> Args {
        Args::new(tokenize(s))
    }

    #[test]
    fn typed_accessors_say_what_was_expected() {
        let a = args("<@U1|al> ops");
        assert_eq!(a.user(0).unwrap().as_str(), "U1");
        assert_eq!(a.word(1, "a role").unwrap(), "ops");
        assert_eq!(
            a.word(2, "a role").unwrap_err().to_string(),
            "missing a role"
        );
        assert_eq!(
            a.word(0, "a role").unwrap_err().to_string(),
            "expected a role, not <@U1>"
        );
        assert!(args("bob").user(0).is_err());
        assert_eq!(args("U77").user(0).unwrap().as_str(), "U77");
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
        assert_eq!(err("perf for 1h extra"), "unexpected `extra`");
        assert_eq!(
            err("perf for 1h \"x\n`y`\""),
            "unexpected `\"x⏎ˋyˋ\"`",
            "what was typed is quoted on one line"
        );
        let (_, opts) = args("perf for soon").options(&["for"]).unwrap();
        assert!(opts.duration("for").is_err());
    }
}
