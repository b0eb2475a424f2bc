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
    outln!("OPKIT_TABLE={table}");
    if queue == Some(QueueKind::Sqs) {
        eprintln!("creating queue {queue_name} and {queue_name}-dlq (if missing)…");
        let queues = sqs::create_queues(&aws_sdk_sqs::Client::new(sdk), queue_name)
            .await
            .map_err(|e| e.to_string())?;
        outln!("OPKIT_QUEUE_URL={}", queues.url);
        outln!("OPKIT_DLQ_URL={}", queues.dlq_url);
    }
    Ok(())
}

/// Receives batches of up to ten, runs them as the worker Lambda would (opening
/// each envelope with OPKIT_ENVELOPE_KEY), and deletes the messages that should
/// not come back. It starts with `store_line` (where state is kept); why a job
/// failed or comes back is in the log lines the runner writes (at warn and error,
/// shown by default). A batch stops taking records as its messages' visibility timeout
/// nears: the rest would be delivered again while still here.
///
/// With `notifications` (OPKIT_NOTIFY_QUEUE_ARN set), the notifications queue is
/// drained beside the jobs queue, its records handed to the same handler as the
/// worker Lambda's ([`opkit_worker::handle_messages`]): EventBridge events, told
/// apart by the queue they came from, never by what they say.
pub async fn worker(
    config: &Config,
    sdk: &SdkConfig,
    bot: Bot,
    store: Arc<dyn Store>,
    until_empty: bool,
    store_line: &str,
    notifications: Option<opkit_worker::Notifications>,
) -> Result<(), String> {
    let url = config.require_queue_url().map_err(|e| e.to_string())?;
    let key = config.require_envelope_key().map_err(|e| e.to_string())?;
    let client = aws_sdk_sqs::Client::new(sdk);
    let events_url = match &notifications {
        Some(n) => Some(queue_url_of(&client, &n.queue_arn).await?),
        None => None,
    };
    // Listening for a stop before saying where jobs come from: a signal from
    // then on finishes the batch under way.
    let requested = crate::stop::requested();
    // Where jobs come from and where state goes, before anything runs.
    match &events_url {
        Some(events) => eprintln!("{store_line}; jobs from {url}; events from {events}"),
        None => eprintln!("{store_line}; jobs from {url}"),
    }
    let http = reqwest::Client::new();
    let channels = catbot::channel_poster(config, http.clone());
    let worker = Worker::new(bot, Arc::new(HttpPoster::new(http)), channels);
    let runner = JobRunner::new(Arc::new(worker), store, key.clone());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        requested.await;
        let _ = stop.send(true);
        // Keep the sender: dropping it would read as a request to stop.
        std::future::pending::<()>().await;
    });
    let drain = |url: String, events: bool| Drain {
        client: &client,
        url,
        runner: &runner,
        notifications: notifications.as_ref(),
        events,
        until_empty,
        stopped: stopped.clone(),
    };
    let jobs = drain(url.to_string(), false).run();
    match events_url {
        Some(events) => tokio::try_join!(jobs, drain(events, true).run()).map(|_| ()),
        None => jobs.await,
    }
}

/// One queue `opkit worker` drains: the jobs queue, or the notifications queue
/// (`events`).
struct Drain<'a> {
    client: &'a aws_sdk_sqs::Client,
    url: String,
    runner: &'a JobRunner,
    notifications: Option<&'a opkit_worker::Notifications>,
    events: bool,
    until_empty: bool,
    /// Says when the process is asked to stop (SIGINT or SIGTERM).
    stopped: tokio::sync::watch::Receiver<bool>,
}

impl Drain<'_> {
    /// Receives and handles batches until the queue is empty (`until_empty`) or
    /// the process is asked to stop: a batch under way is finished first — its
    /// jobs were claimed, and one cut off would not run again — and a receive
    /// under way is dropped (what it took comes back after the visibility
    /// timeout, unclaimed).
    async fn run(mut self) -> Result<(), String> {
        let wait = if self.until_empty { 0 } else { 20 };
        let visibility =
            chrono::Duration::seconds(i64::from(opkit::timing::VISIBILITY_TIMEOUT_SECS));
        let what = if self.events { "event" } else { "job" };
        loop {
            let receive = sqs::receive(self.client, &self.url, 10, wait);
            let messages = tokio::select! {
                biased;
                _ = self.stopped.wait_for(|stop| *stop) => {
                    eprintln!("stopped: no {what} batch under way");
                    return Ok(());
                }
                received = receive => received.map_err(|e| e.to_string())?,
            };
            if messages.is_empty() {
                if self.until_empty {
                    return Ok(());
                }
                continue;
            }
            let deadline = self.runner.worker().bot().now() + visibility;
            let (jobs, events) = if self.events {
                (&[][..], &messages[..])
            } else {
                (&messages[..], &[][..])
            };
            let failed = opkit_worker::handle_messages(
                self.runner,
                self.notifications,
                jobs,
                events,
                deadline,
            )
            .await;
            for message in messages.iter().filter(|m| !failed.contains(&m.id)) {
                sqs::delete(self.client, &self.url, &message.receipt)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            eprintln!(
                "handled {} {what} message(s), {} to retry",
                messages.len(),
                failed.len()
            );
        }
    }
}

/// The URL of the queue `arn` (`arn:aws:sqs:<region>:<account>:<name>`):
/// GetQueueUrl by its name and owner.
async fn queue_url_of(client: &aws_sdk_sqs::Client, arn: &str) -> Result<String, String> {
    let mut parts = arn.split(':');
    let (account, name) = (parts.nth(4), parts.next());
    let (Some(account), Some(name)) = (account, name) else {
        return Err(format!(
            "OPKIT_NOTIFY_QUEUE_ARN: {arn} is not an SQS queue ARN"
        ));
    };
    let out = client
        .get_queue_url()
        .queue_name(name)
        .queue_owner_aws_account_id(account)
        .send()
        .await
        .map_err(|e| {
            format!(
                "OPKIT_NOTIFY_QUEUE_ARN: no queue {name}: {}",
                aws_sdk_sqs::error::DisplayErrorContext(e)
            )
        })?;
    out.queue_url()
        .map(str::to_string)
        .ok_or_else(|| format!("OPKIT_NOTIFY_QUEUE_ARN: SQS gave no URL for {name}"))
}

/// The AWS settings, read once: the standard environment and profile files, and
/// us-east-1 when neither names a region. Instance metadata (IMDS) is not asked
/// for a region: on a laptop it is absent, and asking costs a timeout and a warning.
/// Each AWS call gives up after 20 s ([`opkit::aws::call_timeouts`]).
pub async fn settings() -> SdkConfig {
    use aws_config::environment::EnvironmentVariableRegionProvider;
    use aws_config::meta::region::RegionProviderChain;
    use aws_config::profile::ProfileFileRegionProvider;
    let region = RegionProviderChain::first_try(EnvironmentVariableRegionProvider::new())
        .or_else(ProfileFileRegionProvider::new())
        .or_else(aws_config::Region::new("us-east-1"));
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(region)
        .timeout_config(opkit::aws::call_timeouts())
        .load()
        .await
}
