//! Expiry Lambda: one expiry pass per scheduled event (every minute).

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use opkit::catbot;
use opkit::config::Config;
use opkit::expiry::Expiry;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_current_span(false)
        .without_time()
        .init();
    let config = Config::from_env()?;
    let (bot, _) = catbot::deployed(&config).await?;
    let channels = catbot::channel_poster(&config, reqwest::Client::new());
    let expiry = Expiry::new(bot, channels);
    let expiry = &expiry;
    run(service_fn(
        move |_event: LambdaEvent<serde_json::Value>| async move {
            Ok::<_, Error>(expiry.run_once().await?)
        },
    ))
    .await
}
