//! SQS: the queue between the ingress and the worker when deployed.
//!
//! [`SqsQueue`] puts jobs on the queue, sealed with the envelope key (the
//! ingress's only AWS call);
//! [`create_queues`] makes the queue and its dead-letter queue as `template.yaml`
//! defines them (for `opkit init` against the emulator or a dev account);
//! [`receive`] and [`delete`] let `opkit worker` drain it locally exactly as the
//! Lambda event source would.

use std::collections::HashMap;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};

use crate::BoxFuture;
use crate::job::{EnvelopeKey, Job};
use crate::job::{JobQueue, QueueError, QueueMessage};

pub use crate::timing::{MAX_RECEIVES, VISIBILITY_TIMEOUT_SECS};
/// How long the dead-letter queue keeps messages: 14 days, SQS's maximum.
pub const DLQ_RETENTION_SECS: u32 = 14 * 24 * 3600;
/// How long the jobs queue keeps messages: one day (a command older than that is moot).
pub const RETENTION_SECS: u32 = 24 * 3600;

/// Jobs go to an SQS queue, sealed with the envelope key.
#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: Client,
    url: String,
    key: EnvelopeKey,
}

impl SqsQueue {
    /// The queue at `url`; jobs are sealed with `key` (`OPKIT_ENVELOPE_KEY`, which
    /// the worker opens them with).
    pub fn new(client: Client, url: impl Into<String>, key: EnvelopeKey) -> Self {
        Self {
            client,
            url: url.into(),
            key,
        }
    }
}

impl JobQueue for SqsQueue {
    fn enqueue<'a>(&'a self, job: &'a Job) -> BoxFuture<'a, Result<(), QueueError>> {
        Box::pin(async move {
            self.client
                .send_message()
                .queue_url(&self.url)
                .message_body(job.encode(&self.key))
                .send()
                .await
                .map_err(|e| backend("SendMessage", e))?;
            Ok(())
        })
    }
}

/// The URLs of a jobs queue and its dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queues {
    /// The jobs queue.
    pub url: String,
    /// Its dead-letter queue.
    pub dlq_url: String,
}

/// Creates `name` and `name-dlq` if missing, with the redrive policy, visibility
/// timeout and retention of `template.yaml`. Safe to run again.
pub async fn create_queues(client: &Client, name: &str) -> Result<Queues, QueueError> {
    let dlq_url = create(
        client,
        &format!("{name}-dlq"),
        [(
            QueueAttributeName::MessageRetentionPeriod,
            DLQ_RETENTION_SECS.to_string(),
        )],
    )
    .await?;
    let dlq_arn = client
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| backend("GetQueueAttributes", e))?
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .ok_or_else(|| QueueError::Backend("the dead-letter queue has no ARN".into()))?;
    let redrive = serde_json::json!({
        "deadLetterTargetArn": dlq_arn,
        "maxReceiveCount": MAX_RECEIVES,
    })
    .to_string();
    let url = create(
        client,
        name,
        [
            (
                QueueAttributeName::VisibilityTimeout,
                VISIBILITY_TIMEOUT_SECS.to_string(),
            ),
            (
                QueueAttributeName::MessageRetentionPeriod,
                RETENTION_SECS.to_string(),
            ),
            (QueueAttributeName::RedrivePolicy, redrive),
        ],
    )
    .await?;
    Ok(Queues { url, dlq_url })
}

async fn create<const N: usize>(
    client: &Client,
    name: &str,
    attributes: [(QueueAttributeName, String); N],
) -> Result<String, QueueError> {
    let out = client
        .create_queue()
        .queue_name(name)
        .set_attributes(Some(HashMap::from(attributes)))
        .send()
        .await
        .map_err(|e| backend("CreateQueue", e))?;
    out.queue_url()
        .map(str::to_string)
        .ok_or_else(|| QueueError::Backend(format!("CreateQueue returned no URL for {name}")))
}

/// Receives up to `max` messages (1-10), waiting up to `wait_secs` for the first.
pub async fn receive(
    client: &Client,
    url: &str,
    max: i32,
    wait_secs: i32,
) -> Result<Vec<QueueMessage>, QueueError> {
    let out = client
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(max.clamp(1, 10))
        .wait_time_seconds(wait_secs.clamp(0, 20))
        .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
        .send()
        .await
        .map_err(|e| backend("ReceiveMessage", e))?;
    Ok(out
        .messages()
        .iter()
        .map(|m| QueueMessage {
            id: m.message_id().unwrap_or_default().to_string(),
            receipt: m.receipt_handle().unwrap_or_default().to_string(),
            body: m.body().unwrap_or_default().to_string(),
            receive_count: m
                .attributes()
                .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                .and_then(|n| n.parse().ok())
                .unwrap_or(1),
        })
        .collect())
}

/// Deletes a received message (it was handled).
pub async fn delete(client: &Client, url: &str, receipt: &str) -> Result<(), QueueError> {
    client
        .delete_message()
        .queue_url(url)
        .receipt_handle(receipt)
        .send()
        .await
        .map_err(|e| backend("DeleteMessage", e))?;
    Ok(())
}

/// One line for the log: the service's code and message, never a Debug dump.
fn backend<E: ProvideErrorMetadata, R>(operation: &str, err: SdkError<E, R>) -> QueueError {
    let detail = match (err.code(), err.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_string(),
        _ => match &err {
            SdkError::TimeoutError(_) => "timed out".to_string(),
            SdkError::DispatchFailure(_) => "could not connect".to_string(),
            _ => "request failed".to_string(),
        },
    };
    QueueError::Backend(format!("SQS {operation}: {detail}"))
}
