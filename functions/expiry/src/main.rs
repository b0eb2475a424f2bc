//! Expiry Lambda: one expiry pass per scheduled event (every minute); due
//! scheduled commands are queued for the worker.

use std::sync::Arc;

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use opkit::config::Config;
use opkit::expiry::Expiry;
use opkit::secret::secrets_manager::resolve_env;
use opkit::sqs::SqsQueue;
use opkit::telemetry::ErrorChain;

#[tokio::main]
async fn main() -> Result<(), Error> {
    opkit::telemetry::init_traced_json_logs();
    opkit::metrics::install_emf_from_env();
    // Region, credentials and endpoints from the environment Lambda sets.
    let sdk = opkit::aws::lambda_config()?;
    // Credentials named by `…_ARN` come from Secrets Manager, read once, here.
    let env = resolve_env(&sdk, &opkit::config::SECRET_SETTINGS).await?;
    let config = Config::from_lookup(|name| env.get(name))?;
    let settings = catbot::Settings::from_lookup(|name| env.get(name))?;
    let (bot, _) = catbot::deployed(&config, &settings, &sdk, None)?;
    let channels = catbot::channel_poster(&config, reqwest::Client::new());
    // Due scheduled commands go to the worker, which has their permissions.
    // Sealed with the key the worker verifies them with.
    let queue = SqsQueue::new(
        aws_sdk_sqs::Client::new(&sdk),
        config.require_queue_url()?,
        config.require_envelope_key()?.clone(),
    );
    let expiry = Expiry::new(bot, channels).with_queue(Arc::new(queue));
    let expiry = &expiry;
    run(service_fn(
        move |_event: LambdaEvent<serde_json::Value>| async move {
            // The whole chain, so that the invocation's error says what failed.
            let report = expiry
                .run_once()
                .await
                .map_err(|e| ErrorChain(&e).to_string())?;
            Ok::<_, Error>(report)
        },
    ))
    .await
}
