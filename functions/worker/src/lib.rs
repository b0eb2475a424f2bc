//! The worker Lambda's handler: an SQS batch in, partial batch failures out.
//!
//! The worker reads two queues through two event source mappings: the jobs
//! queue (sealed job envelopes, from the ingress and the expiry function) and
//! the notifications queue (EventBridge events: alarm and instance state
//! changes, which only the template's two rules may send there — its queue
//! policy). A record is told apart by the queue it came from (`eventSourceARN`
//! against `OPKIT_NOTIFY_QUEUE_ARN`), never by what it says: a record of the jobs
//! queue is a job, opened with the envelope key or refused, whatever its body
//! claims to be.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use catbot::packs::notify::Notifier;
use chrono::{DateTime, Utc};
use opkit::job::QueueMessage;
use opkit::worker::{JobRunner, START_MARGIN};

/// The notifications queue and the handler of its events.
pub struct Notifications {
    /// The queue's ARN (`OPKIT_NOTIFY_QUEUE_ARN`): its records are events.
    pub queue_arn: String,
    /// The one handler of an event.
    pub notifier: Notifier,
}

impl Notifications {
    /// A deployment's notifications, as the worker Lambda and `opkit worker` set
    /// them up: the queue `OPKIT_NOTIFY_QUEUE_ARN` names, and
    /// [`catbot::deployed_notifier`] for `bot`. `None` when the setting is unset.
    pub fn configured(
        settings: &catbot::Settings,
        bot: &opkit::engine::Bot,
        config: &opkit::config::Config,
        sdk: &aws_config::SdkConfig,
        http: reqwest::Client,
    ) -> Option<Self> {
        let queue_arn = settings.notify_queue_arn.clone()?;
        Some(Self {
            queue_arn,
            notifier: catbot::deployed_notifier(bot, config, settings, sdk, http),
        })
    }
}

/// The messages of an SQS event, as the job runner reads them.
pub fn messages(event: &SqsEvent) -> Vec<QueueMessage> {
    event.records.iter().map(message).collect()
}

fn message(record: &SqsMessage) -> QueueMessage {
    QueueMessage {
        id: record.message_id.clone().unwrap_or_default(),
        receipt: record.receipt_handle.clone().unwrap_or_default(),
        body: record.body.clone().unwrap_or_default(),
        receive_count: record
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|n| n.parse().ok())
            .unwrap_or(1),
    }
}

/// Runs a batch of the jobs queue; the messages worth a retry are reported as
/// failures (the event source mapping has `ReportBatchItemFailures`), the rest
/// are deleted by SQS. `deadline` is the invocation's (the Lambda context's):
/// once little time is left, the records not started are reported as failures
/// too, untouched, and come back later ([`opkit::timing`]).
pub async fn handle(
    runner: &JobRunner,
    event: SqsEvent,
    deadline: DateTime<Utc>,
) -> SqsBatchResponse {
    handle_routed(runner, None, event, deadline).await
}

/// [`handle`] for a worker that also reads the notifications queue: the records
/// from `notifications.queue_arn` go to its [`Notifier`], the others to the job
/// runner. An event that cannot be read is logged and dropped (the same bytes
/// would fail again); one whose handling failed in a way worth a retry (the
/// store) is reported as a failure, and SQS's redrive policy moves it to the
/// notifications' dead-letter queue after a few tries.
pub async fn handle_routed(
    runner: &JobRunner,
    notifications: Option<&Notifications>,
    event: SqsEvent,
    deadline: DateTime<Utc>,
) -> SqsBatchResponse {
    let is_event = |record: &SqsMessage| {
        notifications.is_some_and(|n| record.event_source_arn.as_deref() == Some(&n.queue_arn))
    };
    let (events, jobs): (Vec<&SqsMessage>, Vec<&SqsMessage>) =
        event.records.iter().partition(|r| is_event(r));
    let jobs: Vec<QueueMessage> = jobs.into_iter().map(message).collect();
    let events: Vec<QueueMessage> = events.into_iter().map(message).collect();
    let failed = handle_messages(runner, notifications, &jobs, &events, deadline).await;
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failed
        .into_iter()
        .map(|id| {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            failure
        })
        .collect();
    response
}

/// The work of [`handle_routed`] once its records are told apart: `jobs` (of
/// the jobs queue) to the job runner, `events` (of the notifications queue) to
/// the [`Notifier`] — side by side. Returns the message ids worth a retry.
/// `opkit worker`, which receives from each queue itself, calls it directly.
pub async fn handle_messages(
    runner: &JobRunner,
    notifications: Option<&Notifications>,
    jobs: &[QueueMessage],
    events: &[QueueMessage],
    deadline: DateTime<Utc>,
) -> Vec<String> {
    let (mut failed, event_failures) =
        tokio::join!(runner.process_batch(jobs, Some(deadline)), async {
            match notifications {
                Some(n) => notify_batch(n, events, runner, deadline).await,
                None => Vec::new(),
            }
        });
    failed.extend(event_failures);
    failed
}

/// Handles the events of a batch side by side; returns the ids to retry.
async fn notify_batch(
    notifications: &Notifications,
    events: &[QueueMessage],
    runner: &JobRunner,
    deadline: DateTime<Utc>,
) -> Vec<String> {
    use futures_util::stream::{self, StreamExt};
    // By index, as the job runner does: a closure taking a `&QueueMessage` would
    // make the batch's future not `Send` for every lifetime (`tokio::spawn`).
    stream::iter(0..events.len())
        .map(|i| notify_one(notifications, &events[i], runner, deadline))
        .buffer_unordered(opkit::worker::BATCH_CONCURRENCY)
        .filter_map(|failed| async move { failed })
        .collect()
        .await
}

/// Handles one event; its message id when it is worth a retry.
async fn notify_one(
    notifications: &Notifications,
    message: &QueueMessage,
    runner: &JobRunner,
    deadline: DateTime<Utc>,
) -> Option<String> {
    if deadline - runner.worker().bot().now() < START_MARGIN {
        tracing::warn!(message_id = %message.id, "too little time left to start: the event goes back to the queue");
        return Some(message.id.clone());
    }
    match notifications.notifier.handle(&message.body).await {
        Ok(outcome) => {
            tracing::info!(message_id = %message.id, ?outcome, "event handled");
            None
        }
        Err(e) if e.is_retryable() => {
            tracing::warn!(message_id = %message.id, error = %e, receive_count = message.receive_count, "event will be retried");
            Some(message.id.clone())
        }
        Err(e) => {
            tracing::error!(message_id = %message.id, error = %e, "unusable event dropped: nothing posted");
            None
        }
    }
}
