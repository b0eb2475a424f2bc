//! The deployed path on one machine: `opkit init` and `opkit worker`, against an
//! AWS emulator (`AWS_ENDPOINT_URL`) or a dev account.

use std::sync::Arc;

use opkit::bot::Bot;
use opkit::catbot;
use opkit::config::Config;
use opkit::slack::HttpPoster;
use opkit::sqs;
use opkit::store::Store;
use opkit::store::dynamodb::create_table;
use opkit::worker::{JobRunner, Worker};

use crate::{QueueKind, StoreKind};

/// Creates the table and, if asked, the queue and DLQ; prints what it made.
pub async fn init(
    config: &Config,
    store: StoreKind,
    queue: Option<QueueKind>,
    queue_name: &str,
) -> Result<(), String> {
    if !matches!(store, StoreKind::Dynamodb) {
        return Err("init creates AWS resources: use `opkit --store dynamodb init`".into());
    }
    let table = config.require_table().map_err(|e| e.to_string())?;
    let sdk = aws_config::load_from_env().await;
    eprintln!("creating table {table} (if missing)…");
    create_table(&aws_sdk_dynamodb::Client::new(&sdk), table)
        .await
        .map_err(|e| e.to_string())?;
    println!("OPKIT_TABLE={table}");
    if queue == Some(QueueKind::Sqs) {
        eprintln!("creating queue {queue_name} and {queue_name}-dlq (if missing)…");
        let queues = sqs::create_queues(&aws_sdk_sqs::Client::new(&sdk), queue_name)
            .await
            .map_err(|e| e.to_string())?;
        println!("OPKIT_QUEUE_URL={}", queues.url);
        println!("OPKIT_DLQ_URL={}", queues.dlq_url);
    }
    Ok(())
}

/// Receives batches of up to ten, runs them as the worker Lambda would, and
/// deletes the messages that should not come back.
pub async fn worker(
    config: &Config,
    bot: Bot,
    store: Arc<dyn Store>,
    until_empty: bool,
) -> Result<(), String> {
    let url = config.require_queue_url().map_err(|e| e.to_string())?;
    let sdk = aws_config::load_from_env().await;
    let client = aws_sdk_sqs::Client::new(&sdk);
    let http = reqwest::Client::new();
    let channels = catbot::channel_poster(config, http.clone());
    let worker = Worker::new(bot, Arc::new(HttpPoster::new(http)), channels);
    let runner = JobRunner::new(Arc::new(worker), store);
    let wait = if until_empty { 0 } else { 20 };
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
        let failed = runner.process_batch(&messages).await;
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
