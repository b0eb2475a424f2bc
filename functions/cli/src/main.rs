//! `opkit`: run an Opkit bot on this machine — no AWS, no Slack needed.
//!
//! ```text
//! opkit shell --user U123 [--roles admin,ops]     a REPL, like Hubot's shell; asks
//!                                                  [y/N] where Slack shows Confirm
//! opkit say --user U123 [--yes] "queue join perf" one command, reply on stdout
//!                                                  (--yes: confirm if it asks)
//! opkit serve --addr 127.0.0.1:3000               Slack's HTTP routes, locally
//! opkit serve --socket-mode                        a real workspace over Socket Mode
//!                                                  (SLACK_APP_TOKEN), no public URL
//!
//! # the deployed path on one machine, against an AWS emulator or a dev account
//! opkit --store dynamodb init --queue sqs          create the table, queue and DLQ
//! opkit --store dynamodb serve --queue sqs         ingress: verify, ack, seal, SendMessage
//! opkit --store dynamodb worker                    drain the queue as the worker Lambda
//!                                                  (both need OPKIT_ENVELOPE_KEY)
//! opkit --store dynamodb expire                    one pass of the expiry function
//! opkit notify < event.json                        one EventBridge event, handled as the
//!                                                  worker does (posts via SLACK_API_URL)
//!
//! # declarative commands (OPKIT_COMMANDS_FILE names a file to load at start-up)
//! opkit commands check commands.toml               check it against this environment
//! opkit --store dynamodb commands push commands.toml   store it for the worker
//! ```
//!
//! State lives in files under `OPKIT_DATA_DIR` (default `.opkit`) unless
//! `--store memory` or `--store dynamodb` (`OPKIT_TABLE`) is given.

#[macro_use]
mod output;

mod aws;
mod serve;
mod shell;
mod socket;
mod stop;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand, ValueEnum};
use opkit::clock::{SharedClock, SystemClock};
use opkit::config::Config;
use opkit::engine::bot::{Bot, BotBuilder, GrantAuthorizer};
use opkit::expiry::Expiry;
use opkit::ids::{Role, UserId};
use opkit::store::Store;
use opkit::store::dynamodb::DynamoStore;
use opkit::store::file::FileStore;
use opkit::store::memory::MemoryStore;
use opkit::telemetry::ErrorChain;

#[derive(Parser)]
#[command(name = "opkit", version, about = "Run an Opkit ChatOps bot locally")]
struct Cli {
    /// Where state, grants and the audit trail are kept.
    #[arg(long, value_enum, default_value_t = StoreKind::File, global = true)]
    store: StoreKind,
    /// The file store's directory (overrides OPKIT_DATA_DIR).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Clone, Copy, ValueEnum)]
enum StoreKind {
    /// In memory: gone when the process ends.
    Memory,
    /// Files under the data directory.
    File,
    /// The DynamoDB table named by OPKIT_TABLE.
    Dynamodb,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum QueueKind {
    /// An in-process queue.
    Inline,
    /// The SQS queue at OPKIT_QUEUE_URL, jobs sealed with OPKIT_ENVELOPE_KEY (drain it
    /// with `opkit worker`).
    Sqs,
}

#[derive(Subcommand)]
enum Cmd {
    /// Talk to the bot in this terminal.
    Shell(Who),
    /// Run one command and print the reply.
    Say {
        #[command(flatten)]
        who: Who,
        /// Confirm the command if it asks for a confirmation (as its Confirm
        /// button would); without it, such a command is only held.
        #[arg(long, short = 'y')]
        yes: bool,
        /// The command text, e.g. "queue join perf".
        #[arg(required = true, num_args = 1..)]
        text: Vec<String>,
    },
    /// Serve Slack's routes over HTTP (POST /slack/commands, /slack/events,
    /// /slack/interactions; GET /healthz), or take the same payloads over a
    /// Socket Mode connection with `--socket-mode`.
    Serve {
        /// Address to listen on (port 0 picks a free port).
        #[arg(long, default_value = "127.0.0.1:3000")]
        addr: SocketAddr,
        /// Where accepted commands wait for the worker.
        #[arg(long, value_enum, default_value_t = QueueKind::Inline)]
        queue: QueueKind,
        /// Connect to Slack over Socket Mode (needs SLACK_APP_TOKEN, an `xapp-` token)
        /// instead of listening for HTTP: no public URL, no signing secret.
        #[arg(long, conflicts_with = "addr")]
        socket_mode: bool,
    },
    /// Drain the SQS queue (OPKIT_QUEUE_URL) exactly as the worker Lambda does: only
    /// jobs sealed with OPKIT_ENVELOPE_KEY run.
    Worker {
        /// Stop when a receive finds the queue empty, instead of waiting for more.
        #[arg(long)]
        until_empty: bool,
    },
    /// Run one pass of the expiry function: end due grants and holds, announce them.
    Expire,
    /// Handle one EventBridge event read from standard input (an alarm or EC2
    /// instance state change, as the console shows it) exactly as the worker
    /// does: post to the subscribed channels through SLACK_API_URL.
    Notify,
    /// Declarative commands: check a TOML file, or push it to the store.
    #[command(subcommand)]
    Commands(CommandsCmd),
    /// Create the DynamoDB table (OPKIT_TABLE) and, with `--queue sqs`, the queue
    /// and its dead-letter queue, if missing.
    Init {
        /// Also create the SQS queue and DLQ.
        #[arg(long, value_enum)]
        queue: Option<QueueKind>,
        /// The queue's name.
        #[arg(long, default_value = "opkit-jobs")]
        queue_name: String,
    },
}

#[derive(Subcommand)]
enum CommandsCmd {
    /// Check a commands file as the bot would load it: the TOML, the usage lines,
    /// the templates, and every setting and secret it reads set in this
    /// environment. Stores nothing.
    Check {
        /// The TOML file.
        file: PathBuf,
    },
    /// Check a commands file and store it as the current version (with `--store
    /// dynamodb`, for the worker, which picks it up within a minute). Audited.
    Push {
        /// The TOML file.
        file: PathBuf,
        /// Who pushes it, for the audit trail.
        #[arg(long, default_value = "ULOCAL", value_parser = parse_user)]
        user: UserId,
    },
}

#[derive(Args)]
struct Who {
    /// Your Slack user id.
    #[arg(long, default_value = "ULOCAL", value_parser = parse_user)]
    user: UserId,
    /// Roles to hold for this session, comma-separated (e.g. admin,ops).
    #[arg(long, value_delimiter = ',', value_parser = parse_role)]
    roles: Vec<Role>,
    /// The channel id commands seem to come from.
    #[arg(long, default_value = "CLOCAL")]
    channel: String,
}

/// `--user`: a user id (`U012ABCDEF`), or a mention of one as Slack writes it
/// (`<@U012ABCDEF>`, `<@U012ABCDEF|alice>`).
fn parse_user(s: &str) -> Result<UserId, String> {
    let id = s
        .strip_prefix("<@")
        .and_then(|rest| rest.strip_suffix('>'))
        .map_or(s, |inner| inner.split('|').next().unwrap_or(inner));
    UserId::parse(id).map_err(|_| {
        format!(
            "`{}` is not a Slack user id: give one such as U012ABCDEF, or its mention <@U012ABCDEF> \
             (in Slack, a profile's ⋮ menu > Copy member ID)",
            opkit::text::one_line(s)
        )
    })
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s).map_err(|e| e.to_string())
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // The long-running and deployed-path commands log what they do (at info), so
    // that a job that fails, or comes back for a retry, says why.
    let verbose = matches!(
        cli.command,
        Cmd::Serve { .. } | Cmd::Worker { .. } | Cmd::Expire
    );
    init_tracing(verbose);
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("opkit: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(verbose: bool) {
    // The shell and `say` print answers on stdout; keep stderr for real trouble
    // there (RUST_LOG=warn shows more). AWS credential probing is noisy at warn.
    let default = if verbose {
        "info,aws_config=error"
    } else {
        "error"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(opkit::telemetry::Redacting::new(std::io::stderr));
    if std::env::var("OPKIT_LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn run(cli: Cli) -> Result<(), String> {
    let mut config = Config::from_env().map_err(|e| e.to_string())?;
    let settings = catbot::Settings::from_env().map_err(|e| e.to_string())?;
    if let Some(dir) = cli.data_dir {
        config.data_dir = dir;
    }
    let clock: SharedClock = Arc::new(SystemClock);
    // Read once; nothing is called until a command needs AWS.
    let sdk = aws::settings().await;
    let http = reqwest::Client::new();
    let services = opkit::declare::Services {
        http: opkit::declare::DeclaredHttp::new(),
        lambda: Some(Arc::new(opkit::declare::lambda::SdkLambda::new(&sdk))),
    };
    // The bot's own commands, as start-up registers them before declared ones:
    // what `commands check|push` check a file against.
    let built_ins = || -> Result<Vec<Arc<opkit::engine::CommandSpec>>, String> {
        let bot = catbot::with_configured_aws_packs(
            catbot::builder(&config, &settings, Arc::new(MemoryStore::new())),
            &config,
            &settings,
            &sdk,
            http.clone(),
        )
        .build()
        .map_err(|e| e.to_string())?;
        Ok(bot.registry().commands().to_vec())
    };
    if let Cmd::Commands(CommandsCmd::Check { file }) = &cli.command {
        return check_commands(file, &built_ins()?, &services);
    }
    let store = open_store(cli.store, &config, &sdk, clock).await?;
    if let Cmd::Commands(CommandsCmd::Push { file, user }) = &cli.command {
        return push_commands(store.as_ref(), &built_ins()?, file, user).await;
    }
    // Declarative commands: OPKIT_COMMANDS_FILE, checked now (a bad file stops
    // here, with its line), else those pushed to the store.
    let env = |name: &str| std::env::var(name).ok();
    let from_file = match &settings.commands_file {
        Some(path) => Some(opkit::declare::load_file(path, env).map_err(|e| e.to_string())?),
        None => None,
    };
    let catbot_on = |store| {
        let builder = catbot::with_configured_aws_packs(
            catbot::builder(&config, &settings, store),
            &config,
            &settings,
            &sdk,
            http.clone(),
        );
        match &from_file {
            Some(declared) => declared
                .add_to(builder, &services)
                .expect("the file was checked with these services"),
            None => builder.commands_source(
                Arc::new(opkit::declare::stored::deployed(
                    &sdk,
                    services.http.clone(),
                )),
                opkit::declare::stored::REFRESH,
            ),
        }
    };
    match cli.command {
        Cmd::Shell(who) => {
            let bot = local_bot(catbot_on(store.clone()), &config, store, &who)?;
            shell::run(bot, &who.user, &who.channel, config.data_dir.clone()).await
        }
        Cmd::Say { who, yes, text } => {
            let bot = local_bot(catbot_on(store.clone()), &config, store, &who)?;
            shell::say(&bot, &who.user, &who.channel, &text.join(" "), yes).await
        }
        Cmd::Serve {
            addr,
            queue,
            socket_mode,
        } => {
            let sqs = (queue == QueueKind::Sqs).then(|| sdk.clone());
            if socket_mode {
                // Fail on a missing token before building anything.
                config.require_app_token().map_err(|e| e.to_string())?;
                let bot = catbot_on(store).build().map_err(|e| e.to_string())?;
                socket::run(config, bot, sqs).await
            } else {
                let bot = catbot_on(store).build().map_err(|e| e.to_string())?;
                serve::run(config, bot, addr, sqs).await
            }
        }
        Cmd::Worker { until_empty } => {
            let bot = catbot_on(store.clone())
                .build()
                .map_err(|e| e.to_string())?;
            let store_line = store_line("worker", cli.store, &config);
            // The notifications queue too, when there is one, as the worker Lambda.
            let notifications = opkit_worker::Notifications::configured(
                &settings,
                &bot,
                &config,
                &sdk,
                http.clone(),
            );
            aws::worker(
                &config,
                &sdk,
                bot,
                store,
                until_empty,
                &store_line,
                notifications,
            )
            .await
        }
        Cmd::Expire => {
            eprintln!("{}", store_line("expire", cli.store, &config));
            let bot = catbot_on(store).build().map_err(|e| e.to_string())?;
            let channels = catbot::channel_poster(&config, http.clone());
            let report = Expiry::new(bot, channels)
                .run_once()
                .await
                .map_err(|e| ErrorChain(&e).to_string())?;
            outln!(
                "{}",
                serde_json::to_string(&report).map_err(|e| e.to_string())?
            );
            Ok(())
        }
        Cmd::Notify => {
            let bot = catbot_on(store).build().map_err(|e| e.to_string())?;
            let notifier = catbot::deployed_notifier(&bot, &config, &settings, &sdk, http.clone());
            notify(&notifier).await
        }
        Cmd::Init { queue, queue_name } => {
            aws::init(&config, &sdk, cli.store, queue, &queue_name).await
        }
        Cmd::Commands(_) => unreachable!("handled before the bot is built"),
    }
}

/// The largest event `opkit notify` reads: EventBridge's limit on an event
/// (256 KB, "Amazon EventBridge quotas").
const EVENT_MAX: u64 = 256 * 1024;

/// `opkit notify`: one event from standard input through the worker's handler;
/// what it did on standard output.
async fn notify(notifier: &catbot::packs::notify::Notifier) -> Result<(), String> {
    use std::io::Read;
    let mut body = String::new();
    std::io::stdin()
        .take(EVENT_MAX + 1)
        .read_to_string(&mut body)
        .map_err(|e| format!("could not read the event from standard input: {e}"))?;
    if body.len() as u64 > EVENT_MAX {
        return Err(format!("the event is over EventBridge's {EVENT_MAX} bytes"));
    }
    let outcome = notifier
        .handle(&body)
        .await
        .map_err(|e| ErrorChain(&e).to_string())?;
    match outcome.quiet {
        Some(why) => outln!("nothing posted: {why}"),
        None => outln!(
            "posted {}, updated {}, failed {}",
            outcome.posted,
            outcome.updated,
            outcome.failed
        ),
    }
    Ok(())
}

/// `opkit commands check FILE`: loads it as `OPKIT_COMMANDS_FILE` would be, and
/// registers it after the bot's own commands, `built`, as start-up does.
fn check_commands(
    file: &std::path::Path,
    built: &[Arc<opkit::engine::CommandSpec>],
    services: &opkit::declare::Services,
) -> Result<(), String> {
    let declared = opkit::declare::load_file(file, |name| std::env::var(name).ok())
        .map_err(|e| e.to_string())?;
    declared
        .check_with(built, services)
        .map_err(|e| e.to_string())?;
    outln!(
        "{}: {} commands: {}",
        declared.origin(),
        declared.names().len(),
        declared.names().join(", ")
    );
    Ok(())
}

/// `opkit commands push FILE`: checks it and stores it as the current version.
async fn push_commands(
    store: &dyn Store,
    built: &[Arc<opkit::engine::CommandSpec>],
    file: &std::path::Path,
    user: &UserId,
) -> Result<(), String> {
    use opkit::declare::{Parsed, stored};
    let origin = file.display().to_string();
    let text =
        std::fs::read_to_string(file).map_err(|e| format!("{origin}: cannot be read: {e}"))?;
    let parsed = Parsed::parse(&origin, &text).map_err(|e| e.to_string())?;
    let env = |name: &str| std::env::var(name).ok();
    let version = stored::push(store, built, &origin, &text, env, user, chrono::Utc::now())
        .await
        .map_err(|e| ErrorChain(&e).to_string())?;
    outln!(
        "{origin}: stored as version {version}: {} commands",
        parsed.names().len()
    );
    let list = |names: std::collections::BTreeSet<String>| {
        names.into_iter().collect::<Vec<_>>().join(", ")
    };
    let (settings, secrets) = (parsed.settings(), parsed.secrets());
    if !settings.is_empty() {
        outln!("settings stored with it: {}", list(settings));
    }
    if !secrets.is_empty() {
        outln!(
            "secrets it reads from Secrets Manager (NAME_ARN): {}",
            list(secrets)
        );
    }
    Ok(())
}

/// The line `worker` and `expire` start with, on standard error: where this
/// process keeps its state. Off the deployed path's store (DynamoDB), it also says
/// that the ingress and the Lambda functions keep theirs in the table, so that a
/// forgotten `--store dynamodb` (grants, claims and state in local files the rest
/// of the deployment never sees) cannot go unnoticed.
fn store_line(command: &str, kind: StoreKind, config: &Config) -> String {
    let store = match kind {
        StoreKind::Memory => "in memory (--store memory), gone when it ends".to_owned(),
        StoreKind::File => format!(
            "in files under {} (--store file)",
            config.data_dir.display()
        ),
        StoreKind::Dynamodb => {
            let table = config.table.as_deref().unwrap_or("(OPKIT_TABLE)");
            return format!("opkit {command}: state in DynamoDB table {table} (--store dynamodb)");
        }
    };
    format!(
        "opkit {command}: state {store}; warning: the deployed path (the Lambda functions, \
         `opkit --store dynamodb serve --queue sqs`) keeps it in DynamoDB: \
         run `opkit --store dynamodb {command}` to share it"
    )
}

async fn open_store(
    kind: StoreKind,
    config: &Config,
    sdk: &aws_config::SdkConfig,
    clock: SharedClock,
) -> Result<Arc<dyn Store>, String> {
    Ok(match kind {
        StoreKind::Memory => Arc::new(MemoryStore::new()),
        StoreKind::File => Arc::new(FileStore::open(&config.data_dir).map_err(|e| e.to_string())?),
        StoreKind::Dynamodb => {
            let table = config.require_table().map_err(|e| e.to_string())?;
            Arc::new(DynamoStore::new(
                aws_sdk_dynamodb::Client::new(sdk),
                table,
                clock,
            ))
        }
    })
}

/// The bot, with the session's extra roles for the local user, reading and
/// showing times in `OPKIT_TIME_ZONE` or else the machine's zone.
fn local_bot(
    builder: BotBuilder,
    config: &Config,
    store: Arc<dyn Store>,
    who: &Who,
) -> Result<Bot, String> {
    let authorizer = GrantAuthorizer::new(store, config.admins.iter().cloned())
        .with_fixed_roles(who.user.clone(), who.roles.iter().cloned());
    let zone = config.time_zone.unwrap_or_else(opkit::timespec::local_zone);
    builder
        .authorizer(Arc::new(authorizer))
        .zones(Arc::new(opkit::zones::FixedZone(zone)))
        .build()
        .map_err(|e| e.to_string())
}
