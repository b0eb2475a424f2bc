//! The engine: resolve, then authorize, then execute — each a separate step.
//!
//! [`Bot::handle`] is what every front end calls (`opkit shell`, `opkit serve`,
//! the worker Lambda): it turns one [`Request`] into one [`Reply`], auditing each
//! step. State is loaded before and saved after the handler with an optimistic
//! version check; on a conflict the command is run again on fresh state, so
//! concurrent commands never lose an update. [`Bot::authorize`] is the single
//! authorization function used by dispatch, `help` and `can`.

use std::collections::BTreeMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Utc};
use tracing::Instrument;
use uuid::Uuid;

use crate::BoxFuture;
use crate::audit::{AuditRecord, Outcome};
use crate::clock::{SharedClock, SystemClock};
use crate::engine::command::{
    Bindings, Caller, CommandError, CommandSpec, Gate, Invocation, Notice, Ran, Script,
    ScriptState, TickerSpec,
};
use crate::engine::deferred;
use crate::engine::registry::{BuildError, Registry, Resolution};
use crate::groups::{GroupRoles, UserGroups};
use crate::ids::{Role, UserId};
use crate::mrkdwn;
use crate::slack::mrkdwn::{Code, CommandLine, Mrkdwn, UserText};
use crate::slack::{Directory, Reply, Visibility};
use crate::store::{GrantStore, StateSave, Store, StoreError};

pub use super::authorize::{Authorization, Authorizer, GrantAuthorizer, Holdings};
use crate::telemetry::ErrorChain;
use crate::text::tokenize;
use crate::zones::{FixedZone, ZoneSource};
use serde_json::Value;

/// How many times a command is run again after losing a state-save race. With
/// ten writers on one script each round has about one winner, so a writer loses
/// 40 rounds in a row about once in 70 commands (0.9^40) — which the 100-writer
/// emulator test met — but 200 rounds almost never (0.9^200 ≈ 7·10⁻¹⁰).
const MAX_ATTEMPTS: u32 = 200;

/// The longest a command keeps retrying a contended save, whatever the count: it
/// must end well inside a worker invocation (template.yaml's function timeout).
const MAX_CONFLICT_WAIT: StdDuration = StdDuration::from_secs(10);

/// Longest text a command line may have, in characters (Unicode scalar values,
/// as Slack counts), not bytes.
pub const MAX_TEXT_LEN: usize = 4000;

/// Why `text` is too long to be a command, if it is: more than [`MAX_TEXT_LEN`]
/// characters. The one check, asked by the ingress before it acknowledges (so a
/// too-long command never gets "Working…" first) and by the bot before it runs one.
pub fn command_too_long(text: &str) -> Option<Mrkdwn> {
    // Counting stops past the limit: a long text costs no more than a short one.
    text.chars().nth(MAX_TEXT_LEN)?;
    Some(mrkdwn!(
        "That is too long for a command ({} characters; the most is {}).",
        text.chars().count(),
        MAX_TEXT_LEN
    ))
}

tokio::task_local! {
    /// Set while [`Bot::handle_unattended`] runs: what its command runs in turn
    /// (a declared alias's target) is unattended too.
    static UNATTENDED: ();
}

/// Whether a person is there for a run (to click a confirmation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attended {
    Yes,
    No,
}

/// The answer of [`Bot::clearance`].
#[derive(Debug)]
pub enum Clearance {
    /// It may run (after its gate, if it has one).
    Cleared(Authorization),
    /// The user lacks the roles its access needs.
    Denied(Authorization),
    /// The access allows it, but the command's own rule refuses these
    /// arguments: the refusal as the user gets it.
    Refused(CommandError),
}

/// One command to run.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Request {
    /// Shared by every audit record and log line of this command.
    pub correlation_id: Uuid,
    /// Who asked, and where.
    pub caller: Caller,
    /// What they typed (after the slash command or the mention).
    pub text: String,
}

impl Request {
    /// A request with a fresh correlation id.
    pub fn new(caller: Caller, text: impl Into<String>) -> Self {
        Self {
            correlation_id: Uuid::new_v4(),
            caller,
            text: text.into(),
        }
    }
}

struct Inner {
    name: String,
    /// The commands now: the built ones, and the latest declared ones from
    /// `source` (swapped whole when a newer version is loaded).
    registry: std::sync::RwLock<Arc<Registry>>,
    /// The commands the bot was built with, which every registry starts from.
    built: Vec<Arc<CommandSpec>>,
    source: Option<SourceState>,
    tickers: Vec<TickerSpec>,
    store: Arc<dyn Store>,
    authorizer: Arc<dyn Authorizer>,
    clock: SharedClock,
    directory: Option<Arc<dyn Directory>>,
    groups: Arc<GroupRoles>,
    /// One lock per script (as many as the bot has scripts): see `update_state`.
    retry_turns: std::sync::Mutex<BTreeMap<String, Arc<tokio::sync::Mutex<()>>>>,
    zones: Arc<dyn ZoneSource>,
}

/// Where commands that can change while the bot runs come from (the declarative
/// commands stored in the table: [`crate::declare::stored`]).
pub trait CommandSource: Send + Sync {
    /// The commands of the version stored in `store` (the bot's) now, with that
    /// version, if it is not `known`; `Ok(None)` when `known` is current. An
    /// error is a reason for the log: the bot keeps the commands it has.
    fn newer<'a>(
        &'a self,
        store: &'a dyn crate::store::StateStore,
        known: u64,
    ) -> BoxFuture<'a, Result<Option<Versioned>, String>>;
}

/// A version of a [`CommandSource`]'s commands: its number and the commands.
pub type Versioned = (u64, Vec<CommandSpec>);

/// A [`CommandSource`], how often it is asked, and what it last said.
struct SourceState {
    source: Arc<dyn CommandSource>,
    every: chrono::Duration,
    /// When it was last asked, and the version the registry holds.
    seen: tokio::sync::Mutex<(Option<DateTime<Utc>>, u64)>,
    /// Whether the version stored last could not be loaded: an unknown
    /// command may be one of its commands, and users are told so.
    unloaded: std::sync::atomic::AtomicBool,
}

/// A bot: its commands and the services they run on. Cheap to clone.
#[derive(Clone)]
pub struct Bot(Arc<Inner>);

/// Builds a [`Bot`].
pub struct BotBuilder {
    name: String,
    specs: Vec<Result<Vec<CommandSpec>, BuildError>>,
    tickers: Vec<TickerSpec>,
    store: Arc<dyn Store>,
    authorizer: Option<Arc<dyn Authorizer>>,
    admins: Vec<UserId>,
    clock: SharedClock,
    directory: Option<Arc<dyn Directory>>,
    usergroups: Option<Arc<dyn UserGroups>>,
    zones: Arc<dyn ZoneSource>,
    source: Option<(Arc<dyn CommandSource>, chrono::Duration)>,
    unlinkable: Vec<Role>,
}

impl BotBuilder {
    /// Commands that can change while the bot runs: `source` is asked before
    /// the first command and then at most once per `every` (by the bot's clock)
    /// whether a newer version is stored; a newer one replaces the previous one
    /// whole. Its commands may not claim a built command's form (such a version
    /// is refused, logged, and the previous one kept).
    pub fn commands_source(
        mut self,
        source: Arc<dyn CommandSource>,
        every: chrono::Duration,
    ) -> Self {
        self.source = Some((source, every));
        self
    }

    /// The bot's name, used in greetings (default `opkit`).
    pub fn name(mut self, name: &str) -> Self {
        self.name = name.to_string();
        self
    }

    /// Adds a script's commands.
    pub fn script<S: ScriptState>(mut self, mut script: Script<S>) -> Self {
        self.tickers.extend(script.take_ticker());
        self.unlinkable.extend(script.take_unlinkable());
        self.specs.push(script.into_specs());
        self
    }

    /// Users who always hold `admin` (configuration's `OPKIT_ADMINS`). Ignored when
    /// a custom authorizer is set.
    pub fn admins(mut self, admins: impl IntoIterator<Item = UserId>) -> Self {
        self.admins.extend(admins);
        self
    }

    /// Replaces the built-in [`GrantAuthorizer`].
    pub fn authorizer(mut self, authorizer: Arc<dyn Authorizer>) -> Self {
        self.authorizer = Some(authorizer);
        self
    }

    /// The clock (default: the system clock).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Where users and channels are looked up (`users.info`, `conversations.info`):
    /// the bot token's [`crate::slack::SlackApi`] deployed, a
    /// [`crate::slack::MemoryDirectory`] in tests. Without one (no bot token), only
    /// what Slack's own mention and channel links say is known.
    pub fn directory(mut self, directory: Arc<dyn Directory>) -> Self {
        self.directory = Some(directory);
        self
    }

    /// Where the members of user groups linked to roles are looked up
    /// (`usergroups.users.list`): the bot token's [`crate::slack::SlackApi`]
    /// deployed, a [`crate::groups::MemoryUserGroups`] in tests. Without one (no
    /// bot token), a linked group gives nobody its role. See [`crate::groups`].
    pub fn usergroups(mut self, usergroups: Arc<dyn UserGroups>) -> Self {
        self.usergroups = Some(usergroups);
        self
    }

    /// Where askers' time zones come from (default: UTC for everyone; deployed,
    /// [`crate::zones::SlackZones`] over the directory). See [`crate::zones`].
    pub fn zones(mut self, zones: Arc<dyn ZoneSource>) -> Self {
        self.zones = zones;
        self
    }

    /// Builds the bot; fails if a command has no handler or two claim one form.
    pub fn build(self) -> Result<Bot, BuildError> {
        let mut all = Vec::new();
        for specs in self.specs {
            all.extend(specs?.into_iter().map(Arc::new));
        }
        let registry = Registry::build(all)?;
        let built = registry.commands().to_vec();
        let grants: Arc<dyn GrantStore> = self.store.clone();
        let authorizer = self
            .authorizer
            .unwrap_or_else(|| Arc::new(GrantAuthorizer::new(grants, self.admins)));
        let groups = Arc::new(
            GroupRoles::new(self.store.clone(), self.usergroups).never_giving(self.unlinkable),
        );
        Ok(Bot(Arc::new(Inner {
            name: self.name,
            registry: std::sync::RwLock::new(Arc::new(registry)),
            built,
            source: self.source.map(|(source, every)| SourceState {
                source,
                every,
                seen: tokio::sync::Mutex::new((None, 0)),
                unloaded: std::sync::atomic::AtomicBool::new(false),
            }),
            tickers: self.tickers,
            store: self.store,
            authorizer,
            clock: self.clock,
            directory: self.directory,
            groups,
            retry_turns: Default::default(),
            zones: self.zones,
        })))
    }
}

impl Bot {
    /// Starts building a bot on `store`.
    pub fn builder(store: Arc<dyn Store>) -> BotBuilder {
        BotBuilder {
            name: "opkit".to_string(),
            specs: Vec::new(),
            tickers: Vec::new(),
            store,
            authorizer: None,
            admins: Vec::new(),
            clock: Arc::new(SystemClock),
            directory: None,
            usergroups: None,
            zones: Arc::new(FixedZone(crate::timespec::Tz::UTC)),
            source: None,
            unlinkable: Vec::new(),
        }
    }

    /// The bot's name.
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// The registered commands, as they are now (see
    /// [`BotBuilder::commands_source`]).
    pub fn registry(&self) -> Arc<Registry> {
        self.0
            .registry
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Asks the [`CommandSource`], if there is one and it was not asked within
    /// its period, for a newer version of its commands, and swaps them in. A
    /// failure is logged and the commands stay as they are.
    pub async fn refresh_commands(&self) {
        let Some(state) = &self.0.source else {
            return;
        };
        let now = self.now();
        let mut seen = state.seen.lock().await;
        if seen.0.is_some_and(|at| now - at < state.every) {
            return;
        }
        seen.0 = Some(now);
        match state.source.newer(self.0.store.as_ref(), seen.1).await {
            Ok(None) => {}
            Ok(Some((version, specs))) => {
                let all = self.0.built.iter().cloned();
                match Registry::build(all.chain(specs.into_iter().map(Arc::new))) {
                    Ok(registry) => {
                        *self.0.registry.write().unwrap_or_else(|e| e.into_inner()) =
                            Arc::new(registry);
                        state.unloaded.store(false, Ordering::Relaxed);
                        tracing::info!(version, "loaded a new version of the declared commands");
                    }
                    Err(error) => {
                        tracing::error!(version, %error, "the declared commands were not loaded");
                        state.unloaded.store(true, Ordering::Relaxed);
                    }
                }
                // Either way, this version is not asked for again.
                seen.1 = version;
            }
            Err(error) => {
                tracing::error!(%error, "the declared commands could not be read");
                state.unloaded.store(true, Ordering::Relaxed);
            }
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.0.store
    }

    /// Where users and channels are looked up, if a bot token is configured
    /// (see [`BotBuilder::directory`]).
    pub fn directory(&self) -> Option<&Arc<dyn Directory>> {
        self.0.directory.as_ref()
    }

    /// Where roles from linked user groups are worked out (see [`crate::groups`]).
    pub fn group_roles(&self) -> &Arc<GroupRoles> {
        &self.0.groups
    }

    pub(super) fn authorizer(&self) -> &Arc<dyn Authorizer> {
        &self.0.authorizer
    }

    /// The current time by the bot's clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.0.clock.now()
    }

    /// Who holds `role` by configuration rather than by a grant
    /// ([`Authorizer::configured_holders`]), sorted.
    pub fn configured_holders(&self, role: &Role) -> Vec<UserId> {
        self.0.authorizer.configured_holders(role)
    }

    /// The time zone `user`'s typed times are read in (see [`crate::zones`]).
    pub async fn zone_of(&self, user: &UserId) -> crate::timespec::Tz {
        self.0.zones.zone_of(user, self.now()).await
    }

    /// Runs one request to its reply. Never fails: errors become replies, and every
    /// step is audited.
    pub async fn handle(&self, request: &Request) -> Reply {
        // A command run by one that nobody is there for (an alias on a
        // schedule) is unattended too.
        let attended = match UNATTENDED.try_with(|()| ()) {
            Ok(()) => Attended::No,
            Err(_) => Attended::Yes,
        };
        self.handle_as(request, attended).await
    }

    /// [`Bot::handle`] for a run nobody is there for (a schedule's): a command
    /// that needs a person ([`CommandSpec::unattended`]: it asks for a
    /// confirmation or an approval, or decides a request) is refused and
    /// audited, and runs nothing. Checked at each run, as well as when the
    /// schedule is added: a command may have become gated since.
    pub async fn handle_unattended(&self, request: &Request) -> Reply {
        UNATTENDED
            .scope((), self.handle_as(request, Attended::No))
            .await
    }

    async fn handle_as(&self, request: &Request, attended: Attended) -> Reply {
        let span = tracing::info_span!(
            "command",
            correlation_id = %request.correlation_id,
            user = %request.caller.user
        );
        self.handle_in_span(request, attended)
            .instrument(span)
            .await
    }

    async fn handle_in_span(&self, request: &Request, attended: Attended) -> Reply {
        self.refresh_commands().await;
        if let Some(refusal) = command_too_long(&request.text) {
            return Reply::text(refusal);
        }
        let tokens = tokenize(&request.text);
        match self.registry().resolve(&tokens) {
            Resolution::Empty => Reply::text(mrkdwn!(
                "Hi {}! I'm {}. Type `help` to see what I can do for you.",
                request.caller.user.mention(),
                UserText::line(self.name())
            )),
            Resolution::Unknown {
                suggestion,
                typed_words,
                exact_words,
            } => {
                self.unknown(request, &tokens, suggestion, typed_words, exact_words)
                    .await
            }
            Resolution::Matched { command, args } => {
                if attended == Attended::No
                    && let Err(why) = command.unattended()
                {
                    let name = Some(command.name.as_str());
                    self.audit(request, name, Outcome::Requested).await;
                    let refusal = mrkdwn!(
                        "Not run: {}. A schedule never runs it; remove the schedule.",
                        why
                    );
                    return self
                        .failed(request, name, CommandError::user(refusal))
                        .await;
                }
                self.dispatch(request, &command, args).await
            }
        }
    }

    async fn unknown(
        &self,
        request: &Request,
        tokens: &[crate::text::Token],
        suggestion: Option<Arc<CommandSpec>>,
        typed_words: usize,
        exact_words: usize,
    ) -> Reply {
        // What was typed, in canonical form: mentions stay mentions, nothing live.
        let typed = CommandLine::new(&crate::text::canonical(
            &tokens[..typed_words.clamp(1, tokens.len())],
        ));
        let mut suggestion = suggestion;
        if let Some(s) = &suggestion
            && !matches!(self.authorize(&request.caller.user, s).await, Ok(d) if d.allowed)
        {
            suggestion = None;
        }
        // How to mean the shorter form, with the near-miss word as its argument.
        let quote_it = match tokens.get(exact_words).and_then(|t| t.as_word()) {
            Some(word) if exact_words > 0 => {
                let form = crate::text::canonical(&tokens[..exact_words]);
                let quoted = crate::text::canonical(&[crate::text::Token::Quoted(word.into())]);
                mrkdwn!(
                    " To give {} the argument {}, quote it: {}.",
                    CommandLine::new(&form),
                    UserText::new(quoted.as_str()),
                    CommandLine::new(&format!("{form} {quoted}"))
                )
            }
            _ => Mrkdwn::new(),
        };
        // A declared command whose version could not be loaded is unknown too:
        // the user learns that much, and who can help; the log has why.
        let unloaded = self
            .0
            .source
            .as_ref()
            .is_some_and(|s| s.unloaded.load(Ordering::Relaxed));
        let (error, unloaded) = if unloaded {
            (
                "unknown command (the declared commands could not be loaded)",
                mrkdwn!(" The commands declared for this bot could not be loaded; ask an admin."),
            )
        } else {
            ("unknown command", Mrkdwn::new())
        };
        self.audit(
            request,
            None,
            Outcome::Failed {
                error: error.into(),
            },
        )
        .await;
        match suggestion {
            Some(s) => Reply::text(mrkdwn!(
                "I don't know {}. Did you mean {}?{}{}",
                typed,
                Code::new(&s.usage_line()),
                quote_it,
                unloaded
            )),
            None => Reply::text(mrkdwn!(
                "I don't know {}. Type `help` to see what you can run.{}",
                typed,
                unloaded
            )),
        }
    }

    async fn dispatch(
        &self,
        request: &Request,
        command: &Arc<CommandSpec>,
        args: crate::engine::command::Args,
    ) -> Reply {
        let name = Some(command.name.as_str());
        self.audit(request, name, Outcome::Requested).await;
        match self.clearance(&request.caller.user, command, &args).await {
            Ok(Clearance::Cleared(_)) => {}
            Ok(Clearance::Denied(decision)) => {
                return self.denied(request, command, &decision).await;
            }
            Ok(Clearance::Refused(e)) => return self.answer_error(request, command, e).await,
            Err(e) => return self.failed(request, name, e).await,
        }
        // A gated command runs too, to validate its request and ask for its gate
        // (`Ctx::confirm`) before it changes anything: bad arguments, or an action
        // that would do nothing, get their answer instead of a prompt.
        let gate_passed = matches!(command.gate, Gate::None);
        self.run_reporting(request, command, args, gate_passed, Bindings::new(), None)
            .await
            .0
    }

    /// Answers and audits a denial by access.
    async fn denied(
        &self,
        request: &Request,
        command: &CommandSpec,
        decision: &Authorization,
    ) -> Reply {
        let needed = command.access.describe();
        // A linked group Slack did not answer for is in the trail too: the
        // denial may be the outage's, not the user's.
        let unchecked = decision
            .unverified
            .iter()
            .map(|u| format!("; could not check {} ({})", u.link.group, u.reason))
            .collect::<String>();
        self.audit(
            request,
            Some(command.name.as_str()),
            Outcome::Denied {
                needed: format!("{needed}{unchecked}"),
            },
        )
        .await;
        Reply::text(mrkdwn!(
            "Sorry, you need {} to run {}.{}",
            needed,
            Code::new(&command.name),
            decision.unverified_note()
        ))
    }

    /// Whether `user` may run `command` with `args` now: its access
    /// ([`Bot::authorize`]), then its own rule ([`Command::rule`](crate::engine::Command::rule)).
    /// The one decision: dispatch asks it, a confirmed or approved request asks
    /// it again as it runs, and `can` asks it — so `can` says yes exactly to what
    /// would run (after the command's gate, which `can` names).
    pub async fn clearance(
        &self,
        user: &UserId,
        command: &CommandSpec,
        args: &crate::engine::command::Args,
    ) -> Result<Clearance, CommandError> {
        let decision = self.authorize(user, command).await?;
        if !decision.allowed {
            return Ok(Clearance::Denied(decision));
        }
        if let Some(rule) = &command.rule {
            match rule(self, user, args).await {
                Ok(()) => {}
                Err(e @ (CommandError::User(_) | CommandError::Usage(_))) => {
                    return Ok(Clearance::Refused(e));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(Clearance::Cleared(decision))
    }

    /// Runs a command whose caller has been authorized, auditing the outcome.
    /// `gate_passed`: it has no gate, or its confirmation or approval was given;
    /// otherwise a handler that asks for its gate gets the request held.
    /// `bound_when_asked`: what a passed gate's request was bound to when asked
    /// ([`Ctx::bind`](crate::engine::command::Ctx::bind)). `approved_by`: who
    /// approved it, in its approved run ([`Ctx::benefits`](crate::engine::command::Ctx::benefits)).
    /// Returns the reply and whether it was refused before it did
    /// anything (`true`: the handler refused before [`Ctx::confirm`] let it
    /// act, or the engine refused its arguments): a decision's outcome is then
    /// the refusal alone.
    ///
    /// [`Ctx::confirm`]: crate::engine::Ctx::confirm
    pub(crate) async fn run_reporting(
        &self,
        request: &Request,
        command: &CommandSpec,
        args: crate::engine::command::Args,
        gate_passed: bool,
        bound_when_asked: Bindings,
        approved_by: Option<UserId>,
    ) -> (Reply, bool) {
        let name = Some(command.name.as_str());
        // Checked here, once for every command (`CommandSpec::check_args`).
        if let Err(why) = command.check_args(&args) {
            let refusal = CommandError::usage(why);
            return (self.answer_error(request, command, refusal).await, true);
        }
        match crate::metrics::time_command(
            &command.name,
            self.execute(
                request,
                command,
                args,
                gate_passed,
                bound_when_asked,
                approved_by,
            ),
        )
        .await
        {
            Ok((Ran::Asked(asked), _)) => (self.hold(request, command, asked).await, false),
            Ok((Ran::Done(reply), audited)) => {
                if !audited {
                    self.audit(request, name, Outcome::Succeeded).await;
                }
                (shown(command, reply), false)
            }
            Ok((Ran::Refused(e), _)) => (self.answer_error(request, command, e).await, true),
            Err(e) => (self.answer_error(request, command, e).await, false),
        }
    }

    /// Answers and audits a command's error: a usage error with the usage line.
    pub(crate) async fn answer_error(
        &self,
        request: &Request,
        command: &CommandSpec,
        error: CommandError,
    ) -> Reply {
        let name = Some(command.name.as_str());
        match error {
            CommandError::Usage(msg) => {
                let error = msg.to_string();
                self.audit(request, name, Outcome::Failed { error }).await;
                Reply::text(mrkdwn!(
                    "{}. Usage: {}",
                    msg,
                    Code::new(&command.usage_line())
                ))
            }
            e => self.failed(request, name, e).await,
        }
    }

    pub(crate) async fn failed(
        &self,
        request: &Request,
        command: Option<&str>,
        error: CommandError,
    ) -> Reply {
        // The whole chain: for the log, and for the audit trail (which read the
        // same detail when internal errors were plain strings).
        let detail = ErrorChain(&error).to_string();
        let shown = match &error {
            // A store that does not answer (throttled, 5xx, unreachable, after the
            // SDK's own retries) is worth another try; say so.
            CommandError::Internal(source)
                if matches!(
                    source.downcast_ref::<StoreError>(),
                    Some(StoreError::Backend(_) | StoreError::Io { .. })
                ) =>
            {
                tracing::error!(correlation_id = %request.correlation_id, error = %detail, "the store failed");
                mrkdwn!(
                    "Sorry, the bot's store is not answering right now; please try again in a moment (ref {}).",
                    Code::new(&short_ref(request.correlation_id))
                )
            }
            CommandError::Internal(_) => {
                tracing::error!(correlation_id = %request.correlation_id, error = %detail, "command failed");
                mrkdwn!(
                    "Something went wrong on my side (ref {}). The details are in the log.",
                    Code::new(&short_ref(request.correlation_id))
                )
            }
            CommandError::Usage(shown) | CommandError::User(shown) => shown.clone(),
        };
        self.audit(request, command, Outcome::Failed { error: detail })
            .await;
        Reply::text(shown)
    }

    /// Load, run, save; on a version conflict, again on fresh state. `true` with
    /// the result when its "succeeded" audit record was written with the state.
    async fn execute(
        &self,
        request: &Request,
        command: &CommandSpec,
        args: crate::engine::command::Args,
        gate_passed: bool,
        bound_when_asked: Bindings,
        approved_by: Option<UserId>,
    ) -> Result<(Ran, bool), CommandError> {
        // The save that ends a command that ran keeps its "succeeded" record and
        // the reply as it will be shown.
        let succeeded = |ran: &Ran| match ran {
            Ran::Done(reply) => Some((
                self.record(request, Some(&command.name), Outcome::Succeeded),
                Some(shown(command, reply.clone())),
            )),
            Ran::Asked(_) | Ran::Refused(_) => None,
        };
        self.update_state_closing(&command.script, command.stateful, succeeded, |state| {
            let invocation = Invocation {
                args: args.clone(),
                caller: request.caller.clone(),
                now: self.now(),
                correlation_id: request.correlation_id,
                bot: self.clone(),
                gate_passed,
                bound_when_asked: bound_when_asked.clone(),
                approved_by: approved_by.clone(),
            };
            command.runner.run(state, invocation)
        })
        .await
    }

    /// [`Bot::update_state`] with no record of its own to write with the save.
    pub(crate) async fn update_state<'a, T>(
        &'a self,
        script: &'a str,
        stateful: bool,
        step: impl FnMut(Option<Value>) -> BoxFuture<'a, Result<(T, Option<Value>), CommandError>>,
    ) -> Result<T, CommandError> {
        let none = |_: &T| None;
        Ok(self
            .update_state_closing(script, stateful, none, step)
            .await?
            .0)
    }

    /// Runs `step` on a script's stored state and saves what it returns, if
    /// anything, at the version it read. When someone else saved first, runs the
    /// step again on the fresh state: no update is ever lost.
    ///
    /// In a job, the save is its closing commit ([`super::deferred`]): the audit
    /// records held so far, the job's "done" mark, and the record and reply
    /// `closing` makes of the step's result go with it; `true` when that record
    /// was written so.
    async fn update_state_closing<'a, T>(
        &'a self,
        script: &'a str,
        stateful: bool,
        closing: impl Fn(&T) -> Option<(AuditRecord, Option<Reply>)>,
        mut step: impl FnMut(Option<Value>) -> BoxFuture<'a, Result<(T, Option<Value>), CommandError>>,
    ) -> Result<(T, bool), CommandError> {
        let store = &self.0.store;
        let started = tokio::time::Instant::now();
        // Held from the first lost race on: the commands of this process that
        // lost a save on one script retry in turn, not all against each other
        // (a batch runs its records side by side); other processes still race.
        let mut turn = None;
        for attempt in 1..=MAX_ATTEMPTS {
            let loaded = if stateful {
                store.load(script).await?
            } else {
                crate::store::Versioned {
                    version: 0,
                    value: None,
                }
            };
            let (out, changed) = step(loaded.value).await?;
            let Some(state) = changed.filter(|_| stateful) else {
                return Ok((out, false));
            };
            // The one place every state write goes through: an oversized state is
            // refused here, before any persister sees it.
            let state = crate::store::EncodedState::new(script, state)?;
            let save = StateSave {
                script,
                state: &state,
                expected: loaded.version,
            };
            match self.commit_save(save, closing(&out)).await {
                Ok(audited) => return Ok((out, audited)),
                Err(e) if e.is_conflict() && started.elapsed() < MAX_CONFLICT_WAIT => {
                    tracing::debug!(attempt, script, "state conflict, running again");
                    if turn.is_none() {
                        turn = Some(self.retry_turn(script).lock_owned().await);
                    } else {
                        tokio::time::sleep(backoff(attempt)).await;
                    }
                }
                Err(e) if e.is_conflict() => break,
                Err(e) => return Err(e.into()),
            }
        }
        Err(CommandError::user(
            "Too many people are changing this at once; please try again.",
        ))
    }

    /// The lock the commands of this process take turns on to retry a lost save
    /// of `script`'s state.
    fn retry_turn(&self, script: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut turns = self
            .0
            .retry_turns
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        turns.entry(script.to_string()).or_default().clone()
    }

    /// The lock the closing commits of one script's state take turns on in this
    /// process (held for the request only).
    pub(crate) fn commit_turn(&self, script: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut turns = self
            .0
            .retry_turns
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        turns.entry(format!("commit {script}")).or_default().clone()
    }

    /// Runs every script's ticker once: ends what is due, saves, audits each
    /// notice, and returns the notices for the caller to announce.
    pub async fn tick(&self) -> Result<Vec<Notice>, CommandError> {
        let mut all = Vec::new();
        for ticker in &self.0.tickers {
            let notices = self
                .update_state(&ticker.script, true, |state| {
                    Box::pin(std::future::ready(ticker.run.tick(state, self.now())))
                })
                .await?;
            for notice in &notices {
                let request = Request::new(Caller::user(notice.user.clone()), String::new());
                self.audit(
                    &request,
                    None,
                    Outcome::System {
                        action: notice.text.to_string(),
                    },
                )
                .await;
            }
            all.extend(notices);
        }
        Ok(all)
    }

    /// Writes an audit record to the store and the log. A failing audit store is
    /// logged, but does not cost the user their answer.
    /// In a job, the record waits for the job's closing commit
    /// ([`super::deferred`]); it is logged at once either way.
    pub async fn audit(&self, request: &Request, command: Option<&str>, outcome: Outcome) {
        crate::metrics::command_outcome(command, &outcome);
        let record = self.record(request, command, outcome);
        record.log();
        let Some(record) = deferred::hold(record) else {
            return;
        };
        if let Err(e) = self.0.store.append(&record).await {
            tracing::error!(error = %e, correlation_id = %request.correlation_id, "could not write the audit record");
        }
    }

    /// The audit record of `outcome`, now.
    pub(crate) fn record(
        &self,
        request: &Request,
        command: Option<&str>,
        outcome: Outcome,
    ) -> AuditRecord {
        AuditRecord {
            // Time-ordered: records of one process written in the same millisecond keep
            // their order in the store's sort key.
            id: Uuid::now_v7(),
            correlation_id: request.correlation_id,
            at: self.now(),
            user: request.caller.user.clone(),
            channel: request.caller.channel.clone(),
            team: request.caller.team.clone(),
            text: request.text.clone(),
            command: command.map(str::to_string),
            outcome,
        }
    }
}

/// A command's reply as its caller sees it: in the channel when the command says so.
fn shown(command: &CommandSpec, mut reply: Reply) -> Reply {
    if command.visibility == Visibility::InChannel {
        reply.visibility = Visibility::InChannel;
    }
    reply
}

/// A short, quotable form of a correlation id.
pub fn short_ref(id: Uuid) -> String {
    id.simple().to_string()[..8].to_string()
}

/// Randomised, growing delay between attempts, so racing writers spread out.
fn backoff(attempt: u32) -> StdDuration {
    let ceiling = 2u64.pow(attempt.min(7)); // up to 128 ms
    let jitter = RandomState::new().hash_one(attempt) % ceiling;
    StdDuration::from_millis(1 + jitter)
}
