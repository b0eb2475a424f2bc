//! Ingress Lambda: builds the SQS client and the ingress once, then serves.
//!
//! A deployed ingress needs `OPKIT_TEAM_IDS` chosen explicitly (team and Enterprise
//! Grid ids, or `any`): unset or empty, it does not start, and says so in its log.

use std::sync::Arc;

use lambda_http::{Error, run, service_fn};
use opkit::clock::SystemClock;
use opkit::config::{Config, ConfigError, SECRET_SETTINGS};
use opkit::ingress::Ingress;
use opkit::secret::secrets_manager::resolve_env;
use opkit::sqs::SqsQueue;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    opkit::telemetry::init_json_logs();
    opkit::metrics::install_emf_from_env();
    let ingress = match build().await {
        Ok(ingress) => ingress,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the ingress");
            return Err(e.to_string().into());
        }
    };
    let ingress = &ingress;
    run(service_fn(move |request| async move {
        Ok::<_, Error>(opkit_ingress::Answered(
            opkit_ingress::handle(ingress, request).await,
        ))
    }))
    .await
}

/// The ingress from the environment, or the setting that stops it.
async fn build() -> Result<Ingress, ConfigError> {
    // Region, credentials and endpoint from the environment Lambda sets: none of the
    // SDK's credential chain (STS, SSO, IMDS) is linked.
    let sdk = opkit::aws::lambda_config()?;
    // SLACK_SIGNING_SECRET_ARN, OPKIT_ENVELOPE_KEY_ARN: read once, here.
    let env = resolve_env(&sdk, &SECRET_SETTINGS).await?;
    let config = Config::from_lookup(|name| env.get(name))?;
    let queue_url = config.require_queue_url()?.to_string();
    // Jobs are sealed with the key the worker verifies them with.
    let key = config.require_envelope_key()?.clone();
    let queue = Arc::new(SqsQueue::new(
        aws_sdk_sqs::Client::new(&sdk),
        queue_url,
        key,
    ));
    opkit_ingress::ingress(&config, Arc::new(SystemClock), queue)
}
