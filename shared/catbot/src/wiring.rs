//! The wiring every front end calls, so they all answer the same commands:
//! `opkit` (shell, say, serve, worker, expire), the worker and expiry Lambdas, and
//! the end-to-end tests. Teams add their own scripts to the returned builder.

use std::sync::Arc;

use opkit::builtin::{self, Policy};
use opkit::config::Config;
use opkit::engine::{Bot, BotBuilder};
use opkit::slack::{ChannelPoster, Directory, SlackApi};
use opkit::store::Store;

use crate::packs::{notify, queue, schedule, weather};
use crate::settings::Settings;

/// Who may use the guarded built-ins, from the deployment's settings
/// (`OPKIT_GRANT_ROLES`, `OPKIT_AUDIT_ROLES`, `OPKIT_GRANT_APPROVERS`,
/// `OPKIT_ALLOW_SELF_GRANT`).
pub fn policy(config: &Config) -> Policy {
    Policy::from_config(config)
}

/// A builder with Opkit's built-in commands, Catbot's packs, the
/// configuration's admins and policy, and, where a bot token is configured, the
/// Web API as the directory of users and channels, as the source of askers'
/// time zones (`users.info`, cached; `OPKIT_TIME_ZONE` or UTC for whoever Slack
/// cannot place, and for everyone without a token), and as the members of user
/// groups linked to roles (`usergroups.users.list`, cached a minute).
pub fn builder(config: &Config, settings: &Settings, store: Arc<dyn Store>) -> BotBuilder {
    let mut builder =
        Bot::builder(store).zones(Arc::new(opkit::zones::FixedZone(config.default_zone())));
    let http = reqwest::Client::new();
    if let Some(api) = slack_api(config, http.clone()) {
        let api = Arc::new(api);
        let directory: Arc<dyn Directory> = api.clone();
        let zones = opkit::zones::SlackZones::new(directory.clone(), config.default_zone());
        builder = builder
            .directory(directory)
            .zones(Arc::new(zones))
            .usergroups(api);
    }
    builder
        .name(&config.bot_name)
        .admins(config.admins.iter().cloned())
        .script(builtin::script(policy(config)))
        .script(builtin::links_script(&policy(config)))
        .script(queue::script())
        .script(schedule::script(schedule::default_managers()))
        .script(notify::script(notify::NotifyOptions {
            channels: channel_poster(config, http),
            accounts: Arc::new(settings.accounts.clone()),
            ..notify::NotifyOptions::default()
        }))
        .script(weather::script(weather::WeatherConfig::new(
            settings.weather_url.clone(),
            settings.weather_key.clone(),
        )))
}

/// The one handler of EventBridge events (alarm and instance state changes)
/// for `bot`, posting with the bot token: what the worker Lambda and `opkit
/// notify` call. `instances` tells managed instances (the EC2 client).
pub fn notifier(
    bot: &Bot,
    config: &Config,
    http: reqwest::Client,
    instances: Option<Arc<dyn notify::ManagedInstances>>,
) -> notify::Notifier {
    let notifier = notify::Notifier::new(bot.clone(), channel_poster(config, http));
    match instances {
        Some(instances) => notifier.with_instances(instances),
        None => notifier,
    }
}

/// [`notifier`] as deployed (the worker Lambda, `opkit notify`, `opkit worker`):
/// managed instances told by EC2 (DescribeInstances) and alarms' runbook tags
/// read from CloudWatch (ListTagsForResource), with clients of `sdk`'s region.
/// The accounts of `settings` name the alarms' accounts for the Graph button.
#[cfg(all(feature = "ec2", feature = "cloudwatch"))]
pub fn deployed_notifier(
    bot: &Bot,
    config: &Config,
    settings: &Settings,
    sdk: &aws_config::SdkConfig,
    http: reqwest::Client,
) -> notify::Notifier {
    let ec2 = Arc::new(aws_sdk_ec2::Client::new(sdk));
    notifier(bot, config, http, Some(ec2))
        .with_accounts(Arc::new(settings.accounts.clone()))
        .with_alarm_tags(Arc::new(aws_sdk_cloudwatch::Client::new(sdk)))
}

/// Adds the declarative commands of `OPKIT_COMMANDS_FILE`, if it is set, with
/// their settings and secrets read through `lookup` (the environment), calling
/// through `services`; unset, `builder` as it is.
///
/// # Errors
/// The file's [`opkit::declare::LoadError`]: its line and the reason.
pub fn with_commands_file(
    builder: BotBuilder,
    settings: &Settings,
    lookup: impl Fn(&str) -> Option<String>,
    services: &opkit::declare::Services,
) -> Result<BotBuilder, opkit::declare::LoadError> {
    match &settings.commands_file {
        Some(path) => opkit::declare::load_file(path, lookup)?.add_to(builder, services),
        None => Ok(builder),
    }
}

/// The Web API poster for channel messages, if a bot token is configured.
pub fn channel_poster(config: &Config, http: reqwest::Client) -> Option<Arc<dyn ChannelPoster>> {
    Some(Arc::new(slack_api(config, http)?))
}

/// The Web API with the configured bot token, if there is one.
fn slack_api(config: &Config, http: reqwest::Client) -> Option<SlackApi> {
    let token = config.bot_token.clone()?;
    Some(SlackApi::new(token, http).with_base_url(&config.slack_api_url))
}

/// The Web API as the directory of users and channels (`users.info`,
/// `conversations.info`), if a bot token is configured.
pub fn directory(config: &Config, http: reqwest::Client) -> Option<Arc<dyn Directory>> {
    Some(Arc::new(slack_api(config, http)?))
}

/// Why the deployed bot could not be set up at cold start.
#[cfg(feature = "dynamodb")]
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeployError {
    /// A setting the deployed bot needs is missing or malformed.
    #[error(transparent)]
    Config(#[from] opkit::config::ConfigError),
    /// The scripts do not make a bot (a programming error).
    #[error("the bot's commands do not fit together: {0}")]
    Build(#[from] opkit::engine::BuildError),
}

/// The deployed bot, as the worker and expiry functions build it at cold start:
/// Catbot on the DynamoDB table `OPKIT_TABLE`, on the system clock, with the AWS
/// packs compiled in when `aws_packs` carries the process's HTTP client (the
/// worker's; the expiry function needs none). `sdk` is loaded once from the
/// environment by the caller. Returns the store too (job claims).
#[cfg(feature = "dynamodb")]
pub fn deployed(
    config: &Config,
    settings: &Settings,
    sdk: &aws_config::SdkConfig,
    aws_packs: Option<reqwest::Client>,
) -> Result<(Bot, Arc<opkit::store::dynamodb::DynamoStore>), DeployError> {
    deployed_with_commands(config, settings, sdk, aws_packs, None)
}

/// [`deployed`], with the commands that `commands` holds beside the compiled
/// ones, asked for a newer version once a minute (the worker: the declarative
/// commands pushed to the table, [`opkit::declare::stored`]).
#[cfg(feature = "dynamodb")]
pub fn deployed_with_commands(
    config: &Config,
    settings: &Settings,
    sdk: &aws_config::SdkConfig,
    aws_packs: Option<reqwest::Client>,
    commands: Option<Arc<dyn opkit::engine::CommandSource>>,
) -> Result<(Bot, Arc<opkit::store::dynamodb::DynamoStore>), DeployError> {
    use opkit::store::dynamodb::DynamoStore;
    let clock: opkit::clock::SharedClock = Arc::new(opkit::clock::SystemClock);
    let table = config.require_table()?;
    let client = aws_sdk_dynamodb::Client::new(sdk);
    let store = Arc::new(DynamoStore::new(client, table, clock.clone()));
    let mut bot = builder(config, settings, store.clone()).clock(clock);
    if let Some(source) = commands {
        bot = bot.commands_source(source, opkit::declare::stored::REFRESH);
    }
    if let Some(http) = aws_packs {
        bot = with_configured_aws_packs(bot, config, settings, sdk, http);
    }
    Ok((bot.build()?, store))
}

/// [`with_aws_packs`] with the deployment's settings: the accounts of
/// `OPKIT_ACCOUNTS` (their roles assumed with `sdk`'s credentials), and `graph`
/// uploading with the bot token, if there is one, over `http` (share the
/// process's client). Without any AWS pack compiled in, `builder` as is.
#[cfg(any(
    feature = "dynamodb",
    feature = "sqs",
    feature = "ec2",
    feature = "cloudwatch"
))]
pub fn with_configured_aws_packs(
    builder: BotBuilder,
    config: &Config,
    settings: &Settings,
    sdk: &aws_config::SdkConfig,
    http: reqwest::Client,
) -> BotBuilder {
    #[cfg(any(feature = "cloudwatch", feature = "ec2", feature = "sqs"))]
    {
        let opts = aws_packs_config(config, settings, sdk, http);
        with_aws_packs(builder, sdk, &opts)
    }
    #[cfg(not(any(feature = "cloudwatch", feature = "ec2", feature = "sqs")))]
    {
        let _ = (config, settings, sdk, http);
        builder
    }
}

/// The deployment's [`AwsPacksConfig`]: the accounts of `OPKIT_ACCOUNTS`, `graph`
/// uploading with the bot token (if there is one) over `http`, and `sqs peek`
/// kept off Opkit's own queue. [`with_configured_aws_packs`] uses it as it is;
/// a test changes a part (a fake graph renderer) and calls [`with_aws_packs`].
#[cfg(any(feature = "cloudwatch", feature = "ec2", feature = "sqs"))]
pub fn aws_packs_config(
    config: &Config,
    settings: &Settings,
    sdk: &aws_config::SdkConfig,
    http: reqwest::Client,
) -> AwsPacksConfig {
    let uploader = config.bot_token.clone().map(|token| {
        let api = SlackApi::new(token, http).with_base_url(&config.slack_api_url);
        Arc::new(api) as Arc<dyn opkit::slack::web::FileUploader>
    });
    let accounts = crate::packs::aws::targets::Accounts::new(settings.accounts.clone(), sdk);
    AwsPacksConfig {
        uploader,
        accounts: Arc::new(accounts),
        // `sqs peek` never reads Opkit's own queues.
        #[cfg(feature = "sqs")]
        sqs: crate::packs::aws::sqs::SqsOptions::default().protecting(config.queue_url.clone()),
        ..AwsPacksConfig::default()
    }
}

/// How [`with_aws_packs`] sets up Catbot's AWS commands in one deployment.
#[cfg(any(feature = "cloudwatch", feature = "ec2", feature = "sqs"))]
#[derive(Clone, Default)]
pub struct AwsPacksConfig {
    /// Who may start/stop/reboot, and how long to wait for the new state.
    #[cfg(feature = "ec2")]
    pub ec2: crate::packs::aws::ec2::Ec2Options,
    /// Who may `sqs peek` (the CloudWatch client for message ages is added here).
    #[cfg(feature = "sqs")]
    pub sqs: crate::packs::aws::sqs::SqsOptions,
    /// Draws graphs instead of GetMetricWidgetImage (tests).
    #[cfg(feature = "cloudwatch")]
    pub images: Option<Arc<dyn crate::packs::aws::cloudwatch::MetricImages>>,
    /// Posts `graph` pictures (the bot token's [`opkit::slack::web::SlackApi`]).
    pub uploader: Option<Arc<dyn opkit::slack::web::FileUploader>>,
    /// The named accounts every pack's `in <account>` may name (default: none).
    pub accounts: Arc<crate::packs::aws::targets::Accounts>,
}

/// Adds the AWS packs compiled in (features `cloudwatch`, `ec2`, `sqs`) and the
/// `accounts` commands to `builder`, with clients built from `sdk` (its region
/// is the one the commands look at unless an account or a region is named;
/// [`AwsPacksConfig::accounts`] sets which accounts may be).
#[cfg(any(feature = "cloudwatch", feature = "ec2", feature = "sqs"))]
pub fn with_aws_packs(
    builder: BotBuilder,
    sdk: &aws_config::SdkConfig,
    opts: &AwsPacksConfig,
) -> BotBuilder {
    let home_region = sdk.region().map_or("an unknown region", |r| r.as_ref());
    let mut builder = builder.script(crate::accounts::script(
        opts.accounts.book().clone(),
        home_region,
    ));
    #[cfg(feature = "cloudwatch")]
    let cloudwatch = aws_sdk_cloudwatch::Client::new(sdk);
    #[cfg(feature = "cloudwatch")]
    {
        use crate::packs::aws::cloudwatch;
        let cw_opts = cloudwatch::CloudWatchOptions {
            images: opts.images.clone(),
            uploader: opts.uploader.clone(),
            accounts: opts.accounts.clone(),
        };
        builder = builder.script(cloudwatch::script(cloudwatch.clone(), cw_opts));
    }
    #[cfg(feature = "ec2")]
    {
        use crate::packs::aws::ec2;
        let ec2_opts = ec2::Ec2Options {
            accounts: opts.accounts.clone(),
            ..opts.ec2.clone()
        };
        builder = builder.script(ec2::script(aws_sdk_ec2::Client::new(sdk), ec2_opts));
    }
    #[cfg(feature = "sqs")]
    {
        use crate::packs::aws::sqs;
        let mut sqs_opts = opts.sqs.clone();
        sqs_opts.accounts = opts.accounts.clone();
        #[cfg(feature = "cloudwatch")]
        let sqs_opts = sqs_opts.with_cloudwatch(cloudwatch.clone());
        builder = builder.script(sqs::script(aws_sdk_sqs::Client::new(sdk), sqs_opts));
    }
    builder
}
