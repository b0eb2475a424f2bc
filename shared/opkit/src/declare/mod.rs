//! Declarative commands: a TOML file of commands that behave like built-in
//! ones — the same matching and "did you mean", `help`, access, confirmation and
//! approval, audit — without Rust.
//!
//! ```text
//! commands.toml ──Parsed::parse──> Parsed ──bind(settings, secrets)──> Declared
//!                  (TOML, usage,                (every env.NAME and       │
//!                   templates: each                secret.NAME set)         │ add_to(builder, Services)
//!                   error with its line)                                  ▼
//!                                                      one Command<()> per entry, in the registry
//! ```
//!
//! An entry's action is an HTTP call ([`format`]'s `[command.http]`), a Lambda
//! invocation (`[command.lambda]`, through a [`LambdaInvoker`]), or an alias
//! (`command = "ec2 reboot web all"`: that command run as the asker, authorized
//! and gated as itself). Templates are minijinja's, with one rule for what an
//! argument may do in each place (see [`template`]): settings and secrets are
//! trusted configuration; arguments are data — percent-encoded for their place
//! in a URL, JSON strings in a body, refused in a header if they hold a line
//! break, and Slack text in a reply. Secrets are never shown: a reply that reads
//! `secret.NAME` is refused at load, and every error and reply is scrubbed of
//! the secrets its command holds.
//!
//! Locally the file is `OPKIT_COMMANDS_FILE` ([`load_file`]: settings and
//! secrets from the environment); deployed it is stored in the table by `opkit
//! commands push` and loaded by the worker ([`stored`]).

mod call;
mod format;
pub mod lambda;
pub mod stored;

mod scrub;
mod template;
mod usage;

#[cfg(test)]
mod alias_tests;
#[cfg(test)]
mod bind_tests;
#[cfg(test)]
mod check_tests;
#[cfg(test)]
mod gains_tests;
#[cfg(test)]
mod secret_url_tests;
#[cfg(test)]
mod stored_tests;
#[cfg(test)]
mod template_tests;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use minijinja::Value;

use crate::engine::bot::Request;
use crate::engine::registry::{Registry, Resolution};
use crate::engine::{BotBuilder, Command, CommandError, CommandSpec, Ctx, Script};
use crate::mrkdwn;
use crate::secret::Secret;
use crate::slack::Reply;
use crate::slack::mrkdwn::{Code, CommandLine, UserText};

pub use format::{DEFAULT_TIMEOUT, LoadError, MAX_TIMEOUT};
pub use lambda::{Invoked, LambdaInvoker};

use format::{ActionSpec, Spec};
use template::Role;

/// The script declared commands belong to (they keep no state).
pub const SCRIPT: &str = "declared";
/// The script of declared aliases: an alias never runs another one.
const ALIAS_SCRIPT: &str = "declared-alias";

/// A commands file, read and checked, before its settings and secrets are looked up.
#[derive(Debug, Clone)]
pub struct Parsed {
    origin: String,
    specs: Vec<Spec>,
}

impl Parsed {
    /// Reads a commands file; `origin` (its path) names it in errors.
    ///
    /// # Errors
    /// A [`LoadError`] with the line and the reason: TOML that does not parse,
    /// an unknown key, a usage line or template that cannot be read, a template
    /// naming an argument the usage does not have, a reply that reads a secret,
    /// an alias with arguments, two actions or none.
    pub fn parse(origin: &str, text: &str) -> Result<Self, LoadError> {
        Ok(Self {
            origin: origin.to_string(),
            specs: format::parse(origin, text)?,
        })
    }

    /// The commands' names, in the file's order.
    pub fn names(&self) -> Vec<&str> {
        self.specs.iter().map(|s| s.name.as_str()).collect()
    }

    /// Checks the commands against the bot's own, `built` (its registry's
    /// commands without declared ones), as start-up registers them: no form of
    /// a built-in taken, begun or extended, no alias to a command the bot does
    /// not have ([`Registry::build`]). For `opkit commands push`, which has no
    /// secrets to bind; [`Declared::check_with`] once they are bound.
    ///
    /// # Errors
    /// A [`LoadError`] naming the file, the commands and the line.
    pub fn check_with(&self, built: &[Arc<CommandSpec>]) -> Result<(), LoadError> {
        let (mut actions, mut aliases) =
            (Script::<()>::new(SCRIPT), Script::<()>::new(ALIAS_SCRIPT));
        for spec in &self.specs {
            // Only its words, access and alias count here: it is never run.
            let command = command(spec, &self.origin).handler(|_| {
                Box::pin(async {
                    Err(CommandError::internal(
                        "a command read to be checked, not run",
                    ))
                })
            });
            if matches!(spec.action, ActionSpec::Alias(_)) {
                aliases = aliases.command(command);
            } else {
                actions = actions.command(command);
            }
        }
        check_registry(&self.origin, built, [actions, aliases])
    }

    /// The settings (`env.NAME`) the templates read.
    pub fn settings(&self) -> BTreeSet<String> {
        format::referenced(&self.specs).0
    }

    /// The secrets (`secret.NAME`) the templates read.
    pub fn secrets(&self) -> BTreeSet<String> {
        format::referenced(&self.specs).1
    }

    /// What a deployed worker needs besides the file, read through `lookup` (the
    /// pusher's environment) to be stored with it: the value of every setting the
    /// templates read, and for every secret the ARN (or name) of the Secrets
    /// Manager secret holding it (`NAME_ARN`) — never a secret's value.
    ///
    /// # Errors
    /// A [`LoadError`] at the first line that reads a setting that is not set, or
    /// a secret without `NAME_ARN`.
    pub fn deployment(
        &self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Deployment, LoadError> {
        let mut settings = BTreeMap::new();
        let mut secret_ids = BTreeMap::new();
        let at = |line: usize, reason: String| LoadError {
            origin: self.origin.clone(),
            line: Some(line),
            reason,
        };
        for spec in &self.specs {
            for (name, &line) in &spec.settings {
                let value = crate::config::setting(&lookup, name).ok_or_else(|| {
                    at(line, format!("the setting `{name}` (env.{name}) is not set: set it to push it with the file"))
                })?;
                settings.insert(name.clone(), value);
            }
            for (name, &line) in &spec.secrets {
                let id =
                    crate::config::setting(&lookup, &format!("{name}_ARN")).ok_or_else(|| {
                        at(
                            line,
                            format!(
                                "the secret `{name}` (secret.{name}) is pushed as a reference: set \
                             {name}_ARN to the Secrets Manager secret that holds it (its value \
                             is never stored in the table)"
                            ),
                        )
                    })?;
                secret_ids.insert(name.clone(), id);
            }
        }
        Ok(Deployment {
            settings,
            secret_ids,
        })
    }

    /// Looks up every setting and secret the templates read, and checks each
    /// URL with them (an argument cannot be the host).
    ///
    /// # Errors
    /// A [`LoadError`] at the first line that reads a setting or secret that is
    /// not set, or whose URL cannot be built.
    pub fn bind(
        self,
        settings: impl Fn(&str) -> Option<String>,
        secrets: impl Fn(&str) -> Option<Secret>,
    ) -> Result<Declared, LoadError> {
        let mut commands = Vec::new();
        for spec in self.specs {
            let at = |line: usize, reason: String| LoadError {
                origin: self.origin.clone(),
                line: Some(line),
                reason,
            };
            let mut env = BTreeMap::new();
            for (name, &line) in &spec.settings {
                let value = settings(name).filter(|v| !v.is_empty()).ok_or_else(|| {
                    at(
                        line,
                        format!("the setting `{name}` (env.{name}) is not set"),
                    )
                })?;
                env.insert(name.clone(), value);
            }
            let mut held = BTreeMap::new();
            for (name, &line) in &spec.secrets {
                let value = secrets(name)
                    .filter(|v| !v.expose().is_empty())
                    .ok_or_else(|| {
                        at(
                            line,
                            format!(
                                "the secret `{name}` (secret.{name}) is not set: set {name}, or \
                             deployed {name}_ARN to a Secrets Manager secret"
                            ),
                        )
                    })?;
                // Every form it can be sent in: the logs never show any of them.
                for form in scrub::sent_forms(value.expose()) {
                    crate::secret::register(&form);
                }
                held.insert(name.clone(), value);
            }
            let command = Bound {
                spec,
                env,
                secrets: held,
            };
            command.probe().map_err(|(line, reason)| at(line, reason))?;
            commands.push(Arc::new(command));
        }
        Ok(Declared {
            origin: self.origin,
            commands,
        })
    }
}

/// What a pushed file carries besides its text ([`Parsed::deployment`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deployment {
    /// Each setting the file reads, and its value.
    pub settings: BTreeMap<String, String>,
    /// Each secret the file reads, and the Secrets Manager secret (ARN or name)
    /// that holds it.
    pub secret_ids: BTreeMap<String, String>,
}

/// Reads `path` and binds it to the environment: settings and secrets are both
/// variables of `lookup` (the process environment, locally).
///
/// # Errors
/// A [`LoadError`] naming the file (and the line) when it cannot be read or used.
pub fn load_file(
    path: &Path,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Declared, LoadError> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| LoadError {
        origin: origin.clone(),
        line: None,
        reason: format!("cannot be read: {e}"),
    })?;
    Parsed::parse(&origin, &text)?.bind(&lookup, |name| lookup(name).map(Secret::new))
}

/// Commands from a file, ready to register.
#[derive(Debug, Clone)]
pub struct Declared {
    origin: String,
    commands: Vec<Arc<Bound>>,
}

/// The HTTP client `http` actions go through, and the only way to build one:
/// it follows no redirect. The host of a declared URL is fixed by the file and
/// its settings, and the request carries the command's secret headers; a 3xx
/// followed would send them to wherever `Location` names. A 3xx is an answer
/// like any other that is not a 2xx: the command fails naming the status, and
/// nothing is sent to `Location`.
#[derive(Clone, Debug)]
pub struct DeclaredHttp(reqwest::Client);

impl DeclaredHttp {
    /// A client that follows no redirect.
    ///
    /// # Panics
    /// When the TLS backend cannot be initialised, as `reqwest::Client::new`.
    pub fn new() -> Self {
        Self(
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("the HTTP client for declared commands could not be built"),
        )
    }

    pub(crate) fn client(&self) -> &reqwest::Client {
        &self.0
    }
}

impl Default for DeclaredHttp {
    fn default() -> Self {
        Self::new()
    }
}

/// What declared actions call through.
#[derive(Clone)]
pub struct Services {
    /// The HTTP client for `http` actions (one per process; it follows no redirect).
    pub http: DeclaredHttp,
    /// Invokes Lambda functions for `lambda` actions; `None`: a file with one is refused.
    pub lambda: Option<Arc<dyn LambdaInvoker>>,
}

impl Services {
    /// HTTP actions over a new [`DeclaredHttp`]; no Lambda.
    pub fn http() -> Self {
        Self {
            http: DeclaredHttp::new(),
            lambda: None,
        }
    }
}

impl Declared {
    /// Where the commands came from.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The commands' names, in the file's order.
    pub fn names(&self) -> Vec<&str> {
        self.commands.iter().map(|c| c.spec.name.as_str()).collect()
    }

    /// Checks the commands against the bot's own, `built`, as start-up
    /// registers them ([`Parsed::check_with`]): what `opkit commands check` and
    /// start-up refuse alike.
    ///
    /// # Errors
    /// A [`LoadError`] naming the file, the commands and the line.
    pub fn check_with(
        &self,
        built: &[Arc<CommandSpec>],
        services: &Services,
    ) -> Result<(), LoadError> {
        let (actions, aliases) = self.scripts(services)?;
        check_registry(&self.origin, built, [actions, aliases])
    }

    /// Adds the commands to `builder`.
    ///
    /// # Errors
    /// A [`LoadError`] when a command has a `lambda` action and `services` has no
    /// Lambda invoker.
    pub fn add_to(
        &self,
        builder: BotBuilder,
        services: &Services,
    ) -> Result<BotBuilder, LoadError> {
        let (actions, aliases) = self.scripts(services)?;
        Ok(builder.script(actions).script(aliases))
    }

    /// The commands as specs for the registry (see [`stored`]).
    pub(crate) fn specs(&self, services: &Services) -> Result<Vec<CommandSpec>, LoadError> {
        let (actions, aliases) = self.scripts(services)?;
        let internal = |e: crate::engine::BuildError| LoadError {
            origin: self.origin.clone(),
            line: None,
            reason: e.to_string(),
        };
        let mut specs = actions.into_specs().map_err(internal)?;
        specs.extend(aliases.into_specs().map_err(internal)?);
        Ok(specs)
    }

    fn scripts(&self, services: &Services) -> Result<(Script<()>, Script<()>), LoadError> {
        let services = Arc::new(services.clone());
        let mut actions = Script::<()>::new(SCRIPT);
        let mut aliases = Script::<()>::new(ALIAS_SCRIPT);
        for bound in &self.commands {
            let spec = &bound.spec;
            if matches!(spec.action, ActionSpec::Lambda(_)) && services.lambda.is_none() {
                return Err(LoadError {
                    origin: self.origin.clone(),
                    line: None,
                    reason: format!(
                        "`{}` invokes a Lambda function, and this process has no Lambda client",
                        spec.name
                    ),
                });
            }
            let (bound, services) = (bound.clone(), services.clone());
            let command = command(spec, &self.origin)
                .handler(move |ctx| Box::pin(run(ctx, bound.clone(), services.clone())));
            if matches!(spec.action, ActionSpec::Alias(_)) {
                aliases = aliases.command(command);
            } else {
                actions = actions.command(command);
            }
        }
        Ok((actions, aliases))
    }
}

/// The command `spec` declares (from the file `origin`), without its handler.
fn command(spec: &Spec, origin: &str) -> Command<()> {
    let mut command = Command::<()>::new(&spec.name)
        .usage(&spec.usage_text)
        .describe(&spec.describe)
        .access(spec.access.clone())
        .defined_at(&format!("{origin}:{}", spec.line));
    for alias in &spec.aliases {
        command = command.alias(alias);
    }
    for example in &spec.examples {
        command = command.example(example);
    }
    if spec.confirm {
        command = command.confirm();
    }
    if let Some(approvers) = &spec.approval {
        command = command.approval(approvers.clone());
    }
    if spec.in_channel {
        command = command.in_channel();
    }
    if let ActionSpec::Alias(text) = &spec.action {
        command = command.runs(text);
    }
    command
}

/// Builds the registry start-up would: `built`, then the declared scripts.
fn check_registry(
    origin: &str,
    built: &[Arc<CommandSpec>],
    scripts: [Script<()>; 2],
) -> Result<(), LoadError> {
    let refuse = |e: crate::engine::BuildError| LoadError {
        origin: origin.to_string(),
        line: None,
        reason: e.to_string(),
    };
    let mut all: Vec<Arc<CommandSpec>> = built.to_vec();
    for script in scripts {
        all.extend(
            script
                .into_specs()
                .map_err(refuse)?
                .into_iter()
                .map(Arc::new),
        );
    }
    Registry::build(all).map(drop).map_err(refuse)
}

/// One command with the settings and secrets it reads.
#[derive(Debug)]
struct Bound {
    spec: Spec,
    env: BTreeMap<String, String>,
    secrets: BTreeMap<String, Secret>,
}

impl Bound {
    /// The templates' context: the arguments as data, `env` trusted, `secret`
    /// trusted (not for replies), and the answer for a reply.
    fn context(
        &self,
        values: &BTreeMap<String, Option<String>>,
        with_secrets: bool,
        answer: Option<(&serde_json::Value, u16)>,
    ) -> Value {
        let mut map: Vec<(String, Value)> = values
            .iter()
            .map(|(k, v)| (k.clone(), v.as_deref().map_or(Value::from(()), Value::from)))
            .collect();
        let env = self
            .env
            .iter()
            .map(|(k, v)| (k.clone(), template::trusted(v)));
        map.push(("env".into(), Value::from_iter(env)));
        if with_secrets {
            let secrets = self
                .secrets
                .iter()
                .map(|(k, v)| (k.clone(), template::trusted(v.expose())));
            map.push(("secret".into(), Value::from_iter(secrets)));
        }
        if let Some((json, status)) = answer {
            map.push(("json".into(), Value::from_serialize(json)));
            map.push(("status".into(), Value::from(status)));
        }
        Value::from_iter(map)
    }

    /// `text` with every secret this command holds blanked out, and each part
    /// of one that is a credential on its own, in every form it can be sent in
    /// or come back in ([`scrub::sent_forms`]), ignoring ASCII case (a service
    /// may upper-case what it repeats).
    fn redact(&self, text: &str) -> String {
        let mut forms: Vec<String> = self
            .secrets
            .values()
            .flat_map(|secret| scrub::sent_forms(secret.expose()))
            .collect();
        // The longest first across secrets too: no form is blanked half by a
        // shorter one of another secret.
        forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
        crate::secret::blank(text, &forms)
    }

    /// Renders each template once with sample arguments, so that a URL that
    /// cannot be built (an argument in the host) fails at load, not at use.
    fn probe(&self) -> Result<(), (usize, String)> {
        let values: BTreeMap<String, Option<String>> = self
            .spec
            .usage
            .params
            .iter()
            .map(|p| (p.name.clone(), Some("sample".to_string())))
            .collect();
        let ctx = self.context(&values, true, None);
        let check = |role: Role, tpl: &format::Tpl| {
            template::render(role, &tpl.source, &ctx)
                .map(drop)
                .map_err(|e| (tpl.line, self.redact(&e.reason)))
        };
        match &self.spec.action {
            ActionSpec::Http(h) => check(Role::Url, &h.url),
            ActionSpec::Lambda(l) => check(Role::Function, &l.function),
            ActionSpec::Alias(_) => Ok(()),
        }
    }

    /// An error for the asker, scrubbed of secrets.
    fn refuse(&self, what: &str, reason: &str) -> CommandError {
        CommandError::user_text(self.redact(&format!("`{}` {what}: {reason}", self.spec.name)))
    }

    /// The reply from `reply` over the answer, as Slack text.
    fn reply(
        &self,
        reply: &format::Tpl,
        values: &BTreeMap<String, Option<String>>,
        json: &serde_json::Value,
        status: u16,
    ) -> Result<Reply, CommandError> {
        let ctx = self.context(values, false, Some((json, status)));
        let text = template::render(Role::Reply, &reply.source, &ctx)
            .map_err(|e| self.refuse("could not write its reply", &e.reason))?;
        Ok(Reply::text(UserText::new(self.redact(&text))))
    }
}

/// Renders every string of a JSON template as its own template: the body is
/// built as JSON, whatever the strings hold.
fn render_json(
    value: &serde_json::Value,
    ctx: &Value,
) -> Result<serde_json::Value, template::TemplateError> {
    use serde_json::Value as J;
    Ok(match value {
        J::String(s) => J::String(template::render(Role::Body, s, ctx)?),
        J::Array(items) => J::Array(
            items
                .iter()
                .map(|v| render_json(v, ctx))
                .collect::<Result<_, _>>()?,
        ),
        J::Object(map) => J::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), render_json(v, ctx)?)))
                .collect::<Result<_, template::TemplateError>>()?,
        ),
        other => other.clone(),
    })
}

async fn run(
    ctx: &mut Ctx<()>,
    bound: Arc<Bound>,
    services: Arc<Services>,
) -> Result<Reply, CommandError> {
    let values = bound.spec.usage.bind(&ctx.args)?;
    // Before any action asks for its gate: who gains may not approve, at the
    // click and again as the approved request runs (Ctx::confirm).
    for name in &bound.spec.gains {
        if let Some(Some(user)) = values.get(name) {
            let user = crate::ids::UserId::parse(user).map_err(CommandError::from)?;
            ctx.benefits(
                &user,
                mrkdwn!(
                    "{} names you as its {}, who gains from it",
                    Code::new(&bound.spec.name),
                    Code::new(name)
                ),
            );
        }
    }
    match &bound.spec.action {
        ActionSpec::Alias(text) => alias(ctx, text).await,
        ActionSpec::Http(h) => call::http(ctx, &bound, h, &values, services.http.client()).await,
        ActionSpec::Lambda(l) => {
            let invoker = services
                .lambda
                .as_ref()
                .ok_or_else(|| CommandError::internal("a lambda action without a Lambda client"))?;
            call::lambda(ctx, &bound, l, &values, invoker.as_ref()).await
        }
    }
}

/// Runs the alias's command as the asker: matched, authorized, gated and
/// audited as that command (under this command's correlation id).
async fn alias(ctx: &mut Ctx<()>, text: &str) -> Result<Reply, CommandError> {
    // The registry checked this when it was built; a registry swapped since
    // (a new version of the file) may lack it.
    match ctx.bot.registry().resolve(&crate::text::tokenize(text)) {
        Resolution::Matched { command, .. } if command.runs.is_none() => {}
        _ => {
            return Err(CommandError::user(mrkdwn!(
                "This alias runs {}, which is not a command I have.",
                CommandLine::new(text)
            )));
        }
    }
    let request = Request {
        correlation_id: ctx.correlation_id,
        caller: ctx.caller.clone(),
        text: text.to_string(),
    };
    let bot = ctx.bot.clone();
    Ok(Box::pin(async move { bot.handle(&request).await }).await)
}

/// A one-line description of a request for a confirmation prompt.
fn summary(what: &str) -> crate::slack::mrkdwn::Mrkdwn {
    mrkdwn!("It would {}", Code::new(what))
}
