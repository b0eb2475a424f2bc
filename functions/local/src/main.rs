//! `opkit`: run an Opkit bot on this machine — no AWS, no Slack needed.
//!
//! ```text
//! opkit shell --user U123 [--roles admin,ops]     a REPL, like Hubot's shell
//! opkit say --user U123 "queue join perf"         one command, reply on stdout
//! opkit serve --addr 127.0.0.1:3000               Slack's HTTP routes, locally
//! ```
//!
//! State lives in files under `OPKIT_DATA_DIR` (default `.opkit`) unless
//! `--store memory` is given.

mod serve;
mod shell;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand, ValueEnum};
use opkit::bot::{Bot, GrantAuthorizer};
use opkit::catbot;
use opkit::config::Config;
use opkit::ids::{Role, UserId};
use opkit::store::Store;
use opkit::store::file::FileStore;
use opkit::store::memory::MemoryStore;

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
}

#[derive(Clone, Copy, ValueEnum)]
enum QueueKind {
    /// An in-process queue.
    Inline,
}

#[derive(Subcommand)]
enum Cmd {
    /// Talk to the bot in this terminal.
    Shell(Who),
    /// Run one command and print the reply.
    Say {
        #[command(flatten)]
        who: Who,
        /// The command text, e.g. "queue join perf".
        #[arg(required = true, num_args = 1..)]
        text: Vec<String>,
    },
    /// Serve Slack's routes over HTTP (POST /slack/commands, /slack/events,
    /// /slack/interactions; GET /healthz).
    Serve {
        /// Address to listen on (port 0 picks a free port).
        #[arg(long, default_value = "127.0.0.1:3000")]
        addr: SocketAddr,
        /// Where accepted commands wait for the worker.
        #[arg(long, value_enum, default_value_t = QueueKind::Inline)]
        queue: QueueKind,
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

fn parse_user(s: &str) -> Result<UserId, String> {
    UserId::parse(s).map_err(|e| e.to_string())
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s).map_err(|e| e.to_string())
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let verbose = matches!(cli.command, Cmd::Serve { .. });
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
    let default = if verbose { "info" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::env::var("OPKIT_LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn run(cli: Cli) -> Result<(), String> {
    let mut config = Config::from_env().map_err(|e| e.to_string())?;
    if let Some(dir) = cli.data_dir {
        config.data_dir = dir;
    }
    let store: Arc<dyn Store> = match cli.store {
        StoreKind::Memory => Arc::new(MemoryStore::new()),
        StoreKind::File => Arc::new(FileStore::open(&config.data_dir).map_err(|e| e.to_string())?),
    };
    match cli.command {
        Cmd::Shell(who) => {
            let bot = local_bot(&config, store, &who)?;
            shell::run(bot, &who.user, &who.channel).await
        }
        Cmd::Say { who, text } => {
            let bot = local_bot(&config, store, &who)?;
            let reply = shell::say(&bot, &who.user, &who.channel, &text.join(" ")).await?;
            println!("{}", reply.text);
            Ok(())
        }
        Cmd::Serve {
            addr,
            queue: QueueKind::Inline,
        } => {
            let bot = catbot::builder(&config, store).build()?;
            serve::run(config, bot, addr).await
        }
    }
}

/// Catbot, with the session's extra roles for the local user.
fn local_bot(config: &Config, store: Arc<dyn Store>, who: &Who) -> Result<Bot, String> {
    let authorizer = GrantAuthorizer::new(store.clone(), config.admins.iter().cloned())
        .with_fixed_roles(who.user.clone(), who.roles.iter().cloned());
    catbot::builder(config, store)
        .authorizer(Arc::new(authorizer))
        .build()
}
