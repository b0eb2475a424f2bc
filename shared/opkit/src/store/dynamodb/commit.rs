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
//! applies it once ("TransactWriteItems", idempotency: ten minutes); past that
//! window, the state item's `writer` (this transaction's token, returned with the
//! failed condition) tells the SDK's resend of our own applied write from
//! someone else's save. The cancellation reasons come one per item, in the order
//! sent: only the state item's own reason is a conflict; any other item failing
//! is an error, never taken for a race on the state.

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    CancellationReason, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
};

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
            // On a failed condition the cancellation reason carries the stored
            // item: its `writer` tells our own earlier attempt from someone else.
            let put = put.return_values_on_condition_check_failure(
                ReturnValuesOnConditionCheckFailure::AllOld,
            );
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
                reply: done.reply.cloned(),
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
            .client_request_token(token.clone())
            .send()
            .await;
        let Err(e) = sent else {
            return Ok(version);
        };
        let reasons = match e.as_service_error() {
            Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => {
                cancelled.cancellation_reasons()
            }
            _ => return Err(backend("TransactWriteItems", e)),
        };
        match commit
            .save
            .map(|save| (save, read_cancellation(reasons, &token)))
        {
            Some((_, Cancelled::AppliedBefore)) => Ok(version),
            Some((save, Cancelled::StateConflict)) => Err(StoreError::Conflict {
                what: format!("state of {}", save.script),
            }),
            _ => Err(StoreError::Backend(format!(
                "DynamoDB TransactWriteItems cancelled: {}",
                describe(reasons)
            ))),
        }
    }

    fn put_request(&self, item: Item) -> aws_sdk_dynamodb::types::builders::PutBuilder {
        Put::builder().table_name(&self.table).set_item(Some(item))
    }
}

/// What a cancelled commit with a state save means, read from its cancellation
/// reasons — one per item, in the order sent, the state's first.
#[derive(Debug, PartialEq, Eq)]
enum Cancelled {
    /// The state's version condition failed against another writer's save, or
    /// another transaction was writing that item (`TransactionConflict`): someone
    /// else is changing the state; load it again and run the command again.
    StateConflict,
    /// The state's condition failed against our own write: an earlier attempt of
    /// this very transaction was applied (whole: a transaction is all or
    /// nothing) and its answer lost, and the SDK sent it again past DynamoDB's
    /// idempotency window, or to a store that has none.
    AppliedBefore,
    /// Something else failed (an audit record's or the job's item): not a race
    /// on the state, and nothing was written.
    Other,
}

fn read_cancellation(reasons: &[CancellationReason], token: &str) -> Cancelled {
    let Some(state) = reasons.first() else {
        return Cancelled::Other;
    };
    match state.code() {
        Some("ConditionalCheckFailed") => {
            let ours = state
                .item()
                .and_then(|item| item.get(WRITER))
                .and_then(|writer| writer.as_s().ok())
                .is_some_and(|writer| writer == token);
            if ours {
                Cancelled::AppliedBefore
            } else {
                Cancelled::StateConflict
            }
        }
        Some("TransactionConflict") => Cancelled::StateConflict,
        _ => Cancelled::Other,
    }
}

/// The cancellation reasons, for the log: each item's code, in order.
fn describe(reasons: &[CancellationReason]) -> String {
    reasons
        .iter()
        .enumerate()
        .map(|(i, r)| format!("item {i}: {}", r.code().unwrap_or("None")))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::types::AttributeValue;

    fn reason(code: &str, writer: Option<&str>) -> CancellationReason {
        let mut reason = CancellationReason::builder().code(code);
        if let Some(writer) = writer {
            reason = reason.item(WRITER, AttributeValue::S(writer.into()));
        }
        reason.build()
    }

    #[test]
    fn each_items_reason_is_read_where_it_stands() {
        let none = || reason("None", None);
        // GIVEN the state's condition failing against another writer's save
        let theirs = [
            reason("ConditionalCheckFailed", Some("other")),
            none(),
            none(),
        ];
        assert_eq!(read_cancellation(&theirs, "mine"), Cancelled::StateConflict);
        // a transaction on the state item at the same time
        let racing = [reason("TransactionConflict", None), none()];
        assert_eq!(read_cancellation(&racing, "mine"), Cancelled::StateConflict);
        // our own earlier attempt, applied
        let ours = [reason("ConditionalCheckFailed", Some("mine")), none()];
        assert_eq!(read_cancellation(&ours, "mine"), Cancelled::AppliedBefore);
        // THEN a failure on another item (the job's, an audit record's) is not a
        // state conflict, even when the state's own reason is fine
        let job = [
            none(),
            none(),
            reason("ConditionalCheckFailed", Some("other")),
        ];
        assert_eq!(read_cancellation(&job, "mine"), Cancelled::Other);
        let audit = [none(), reason("TransactionConflict", None)];
        assert_eq!(read_cancellation(&audit, "mine"), Cancelled::Other);
        assert_eq!(read_cancellation(&[], "mine"), Cancelled::Other);
        assert_eq!(
            describe(&audit),
            "item 0: None, item 1: TransactionConflict"
        );
    }
}
