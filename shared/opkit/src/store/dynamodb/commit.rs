//! A command's closing writes in one request: `TransactWriteItems` of its state
//! (conditional on the version it loaded), its audit records and its job marked
//! done — so a stateful command costs four requests in all (claim, grants, state,
//! this), and its state never changes without its audit records and its job's
//! claim changing with it.
//!
//! A transaction is all or nothing: a state save that meets another version
//! cancels the whole write (`TransactionCanceledException`, reason
//! `ConditionalCheckFailed` on the state item), which is a
//! [`StoreError::Conflict`]; the engine runs the command again on fresh state and
//! commits again, audit records and all. A transaction whose answer was lost and
//! that the SDK sends again carries the same `ClientRequestToken`, and DynamoDB
//! applies it once ("TransactWriteItems", idempotency: ten minutes).

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem};

use super::keys::{
    Item, STATE, STATE_SK, VERSION, WRITER, audit_item, job_item, key, n, s, state_pk,
};
use super::{DynamoStore, PK, backend, build_error};
use crate::store::{Commit, JobRecord, JobStatus, StoreError};

/// The most items one `TransactWriteItems` may hold (DynamoDB's quota).
const MAX_ITEMS: usize = 100;

impl DynamoStore {
    pub(super) async fn commit_all(&self, commit: Commit<'_>) -> Result<Option<u64>, StoreError> {
        if commit.is_empty() {
            return Ok(None);
        }
        let count = usize::from(commit.save.is_some())
            + commit.audit.len()
            + usize::from(commit.finish.is_some());
        if count > MAX_ITEMS {
            // Never met by a command (it leaves a handful of records); kept correct.
            return crate::store::commit_in_steps(self, commit).await;
        }
        let token = uuid::Uuid::new_v4().simple().to_string();
        let mut items = Vec::with_capacity(count);
        let mut version = None;
        if let Some(save) = commit.save {
            let next = save.expected + 1;
            let mut item = key(state_pk(save.script), STATE_SK);
            item.insert(VERSION.into(), n(next));
            item.insert(STATE.into(), s(save.state.json().to_string()));
            item.insert(WRITER.into(), s(token.clone()));
            let put = self.put_request(item);
            let put = if save.expected == 0 {
                put.condition_expression("attribute_not_exists(#pk)")
                    .expression_attribute_names("#pk", PK)
            } else {
                put.condition_expression("#v = :expected")
                    .expression_attribute_names("#v", VERSION)
                    .expression_attribute_values(":expected", n(save.expected))
            };
            items.push(put);
            version = Some(next);
        }
        for record in commit.audit {
            items.push(self.put_request(audit_item(record, self.audit_retention)?));
        }
        if let Some(done) = commit.finish {
            let record = JobRecord {
                status: JobStatus::Done,
                until: done.now + done.keep,
            };
            items.push(self.put_request(job_item(done.job_id, &record)));
        }
        let items = items
            .into_iter()
            .map(|put| {
                put.build()
                    .map(|put| TransactWriteItem::builder().put(put).build())
                    .map_err(build_error)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let sent = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .client_request_token(token)
            .send()
            .await;
        match sent {
            Ok(_) => Ok(version),
            Err(e) if commit.save.is_some() && lost_the_state_race(&e) => {
                let script = commit.save.map(|s| s.script).unwrap_or_default();
                Err(StoreError::Conflict {
                    what: format!("state of {script}"),
                })
            }
            Err(e) => Err(backend("TransactWriteItems", e)),
        }
    }

    fn put_request(&self, item: Item) -> aws_sdk_dynamodb::types::builders::PutBuilder {
        Put::builder().table_name(&self.table).set_item(Some(item))
    }
}

/// Whether the transaction was cancelled because the state item (the first) failed
/// its version condition, or another transaction was writing it at the same time
/// (`TransactionConflict`): either way, someone else is changing that state.
fn lost_the_state_race<R>(
    err: &aws_sdk_dynamodb::error::SdkError<TransactWriteItemsError, R>,
) -> bool {
    let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) =
        err.as_service_error()
    else {
        return false;
    };
    cancelled
        .cancellation_reasons()
        .first()
        .and_then(|reason| reason.code())
        .is_some_and(|code| matches!(code, "ConditionalCheckFailed" | "TransactionConflict"))
}
