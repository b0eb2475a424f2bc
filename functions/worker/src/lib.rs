//! The worker Lambda's handler: an SQS batch in, partial batch failures out.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use chrono::{DateTime, Utc};
use opkit::job::QueueMessage;
use opkit::worker::JobRunner;

/// The messages of an SQS event, as the job runner reads them.
pub fn messages(event: &SqsEvent) -> Vec<QueueMessage> {
    event
        .records
        .iter()
        .map(|record| QueueMessage {
            id: record.message_id.clone().unwrap_or_default(),
            receipt: record.receipt_handle.clone().unwrap_or_default(),
            body: record.body.clone().unwrap_or_default(),
            receive_count: record
                .attributes
                .get("ApproximateReceiveCount")
                .and_then(|n| n.parse().ok())
                .unwrap_or(1),
        })
        .collect()
}

/// Runs a batch; the messages worth a retry are reported as failures (the event
/// source mapping has `ReportBatchItemFailures`), the rest are deleted by SQS.
/// `deadline` is the invocation's (the Lambda context's): once little time is left,
/// the records not started are reported as failures too, untouched, and come back
/// later ([`opkit::timing`]).
pub async fn handle(
    runner: &JobRunner,
    event: SqsEvent,
    deadline: DateTime<Utc>,
) -> SqsBatchResponse {
    let failed = runner
        .process_batch(&messages(&event), Some(deadline))
        .await;
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
