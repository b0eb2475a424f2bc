//! Worker Lambda: builds the store, the bot and the Slack clients once, then
//! runs SQS batches.

use std::sync::Arc;

use aws_lambda_events::event::sqs::SqsEvent;
use chrono::{DateTime, Utc};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use opkit::config::Config;
use opkit::secret::secrets_manager::resolve_env;
use opkit::slack::HttpPoster;
use opkit::worker::{JobRunner, Worker};

#[tokio::main]
async fn main() -> Result<(), Error> {
    opkit::telemetry::init_traced_json_logs();
    opkit::metrics::install_emf_from_env();
    // Region, credentials and endpoints from the environment Lambda sets.
    let sdk = opkit::aws::lambda_config()?;
    // Credentials named by `…_ARN` come from Secrets Manager, read once, here.
    let env = resolve_env(&sdk, &credentials()).await?;
    let config = Config::from_lookup(|name| env.get(name))?;
    let settings = catbot::Settings::from_lookup(|name| env.get(name))?;
    // One HTTP client for every Slack call (replies, channel posts, uploads).
    let http = reqwest::Client::new();
    // The declarative commands pushed to the table (`opkit commands push`).
    let commands = opkit::declare::stored::deployed(&sdk, opkit::declare::DeclaredHttp::new());
    let (bot, store) = catbot::deployed_with_commands(
        &config,
        &settings,
        &sdk,
        Some(http.clone()),
        Some(Arc::new(commands)),
    )?;
    let channels = catbot::channel_poster(&config, http.clone());
    // EventBridge events from the notifications queue, told apart by its ARN.
    let notifications =
        opkit_worker::Notifications::configured(&settings, &bot, &config, &sdk, http.clone());
    let worker = Worker::new(bot, Arc::new(HttpPoster::new(http)), channels);
    // Only envelopes sealed with this key (the ingress's and the expiry's) run.
    let key = config.require_envelope_key()?.clone();
    let runner = JobRunner::new(Arc::new(worker), store, key);
    let (runner, notifications) = (&runner, notifications.as_ref());
    run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let deadline = DateTime::<Utc>::from(event.context.deadline());
        let response =
            opkit_worker::handle_routed(runner, notifications, event.payload, deadline).await;
        Ok::<_, Error>(response)
    }))
    .await
}

/// Opkit's credential settings and Catbot's.
fn credentials() -> Vec<&'static str> {
    let mut all = opkit::config::SECRET_SETTINGS.to_vec();
    all.extend(catbot::settings::SECRET_SETTINGS);
    all
}
