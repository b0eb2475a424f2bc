//! The deployed path on one machine: `opkit init` and `opkit worker`, against an
//! AWS emulator (`AWS_ENDPOINT_URL`) or a dev account.

use std::sync::Arc;

use aws_config::SdkConfig;
use opkit::config::Config;
use opkit::engine::bot::Bot;
use opkit::slack::HttpPoster;
use opkit::sqs;
use opkit::store::Store;
use opkit::store::dynamodb::create_table;
use opkit::worker::{JobRunner, Worker};

use crate::{QueueKind, StoreKind};

/// Creates the table and, if asked, the queue and DLQ; prints what it made.
pub async fn init(
    config: &Config,
    sdk: &SdkConfig,
    store: StoreKind,
    queue: Option<QueueKind>,
    queue_name: &str,
) -> Result<(), String> {
    if !matches!(store, StoreKind::Dynamodb) {
        return Err("init creates AWS resources: use `opkit --store dynamodb init`".into());
    }
    let table = config.require_table().map_err(|e| e.to_string())?;
    eprintln!("creating table {table} (if missing)…");
    create_table(&aws_sdk_dynamodb::Client::new(sdk), table)
        .await
        .map_err(|e| e.to_string())?;
    println!("OPKIT_TABLE={table}");
    if queue == Some(QueueKind::Sqs) {
        eprintln!("creating queue {queue_name} and {queue_name}-dlq (if missing)…");
        let queues = sqs::create_queues(&aws_sdk_sqs::Client::new(sdk), queue_name)
            .await
            .map_err(|e| e.to_string())?;
        println!("OPKIT_QUEUE_URL={}", queues.url);
        println!("OPKIT_DLQ_URL={}", queues.dlq_url);
    }
    Ok(())
}

/// Receives batches of up to ten, runs them as the worker Lambda would (opening
/// each envelope with OPKIT_ENVELOPE_KEY), and deletes the messages that should
/// not come back. It starts with `store_line` (where state is kept); why a job
/// failed or comes back is in the log lines the runner writes (at warn and error,
/// shown by default). A batch stops taking records as its messages' visibility timeout
/// nears: the rest would be delivered again while still here.
pub async fn worker(
    config: &Config,
    sdk: &SdkConfig,
    bot: Bot,
    store: Arc<dyn Store>,
    until_empty: bool,
    store_line: &str,
) -> Result<(), String> {
    let url = config.require_queue_url().map_err(|e| e.to_string())?;
    let key = config.require_envelope_key().map_err(|e| e.to_string())?;
    // Where jobs come from and where state goes, before anything runs.
    eprintln!("{store_line}; jobs from {url}");
    let client = aws_sdk_sqs::Client::new(sdk);
    let http = reqwest::Client::new();
    let channels = catbot::channel_poster(config, http.clone());
    let worker = Worker::new(bot, Arc::new(HttpPoster::new(http)), channels);
    let runner = JobRunner::new(Arc::new(worker), store, key.clone());
    let wait = if until_empty { 0 } else { 20 };
    let visibility = chrono::Duration::seconds(i64::from(opkit::timing::VISIBILITY_TIMEOUT_SECS));
    loop {
        let messages = sqs::receive(&client, url, 10, wait)
            .await
            .map_err(|e| e.to_string())?;
        if messages.is_empty() {
            if until_empty {
                return Ok(());
            }
            continue;
        }
        let deadline = runner.worker().bot().now() + visibility;
        let failed = runner.process_batch(&messages, Some(deadline)).await;
        for message in messages.iter().filter(|m| !failed.contains(&m.id)) {
            sqs::delete(&client, url, &message.receipt)
                .await
                .map_err(|e| e.to_string())?;
        }
        eprintln!(
            "handled {} message(s), {} to retry",
            messages.len(),
            failed.len()
        );
    }
}

/// The AWS settings, read once: the standard environment and profile files, and
/// us-east-1 when neither names a region. Instance metadata (IMDS) is not asked
/// for a region: on a laptop it is absent, and asking costs a timeout and a warning.
pub async fn settings() -> SdkConfig {
    use aws_config::environment::EnvironmentVariableRegionProvider;
    use aws_config::meta::region::RegionProviderChain;
    use aws_config::profile::ProfileFileRegionProvider;
    let region = RegionProviderChain::first_try(EnvironmentVariableRegionProvider::new())
        .or_else(ProfileFileRegionProvider::new())
        .or_else(aws_config::Region::new("us-east-1"));
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(region)
        .load()
        .await
}
