//! DynamoDB persister: the deployed default (`--store dynamodb`, `OPKIT_TABLE`).
//!
//! Everything lives in one table with string keys `pk` and `sk`, two global
//! secondary indexes (projection ALL) and TTL on `ttl` (epoch seconds):
//!
//! ```text
//! item          pk                  sk                        other attributes
//! ------------  ------------------  ------------------------  ------------------------------------
//! script state  STATE#<script>      STATE                     version (N), state (S, JSON), writer (S)
//! grant         USER#<user>         GRANT#<role>#<grant id>   grant (S, JSON), granted_at, announced (BOOL),
//!                                                             writer (S), ttl = ends_at + 7 d
//! audit record  AUDIT#<yyyy-mm-dd>  <at, ms>#<record id>      record (S, JSON), ttl = at + 90 d
//! job claim     JOB#<job id>        JOB                       status, held_until (N, ms), ttl
//!                                                             delivery (S), reply (S, JSON): a done job's reply,
//!                                                             committed before it was posted
//!
//! index  partition key              sort key                          serves
//! -----  -------------------------  --------------------------------  ---------------------
//! gsi1   gsi1pk = ROLE#<role>       gsi1sk = USER#<user>#<grant id>   grants by role
//! gsi1   gsi1pk = AUDITUSER#<user>  gsi1sk = the audit record's sk    audit records by user
//! gsi2   gsi2pk = GRANT             gsi2sk = <ends_at>#<user>#<role>#<grant id>
//!                                                                     grants by end time
//!
//! Times in keys are fixed-width RFC 3339 UTC, so they sort as text: "2027-01-15T08:00:00Z",
//! audit "2027-01-15T08:00:00.000Z"; an open-ended grant ends "9999-12-31T23:59:59Z".
//!
//! access pattern                  served by
//! ------------------------------  ------------------------------------------------------------
//! load / save a script's state    GetItem / PutItem if `version` is still the one loaded
//!                                 (a retried save that meets its own `writer` succeeded)
//! grants of a user                Query pk = USER#<user>, sk begins_with GRANT#
//! grants of a role                Query gsi1: gsi1pk = ROLE#<role>
//! all grants; grants ended by t   Query gsi2: gsi2pk = GRANT (and gsi2sk < the second after t)
//! newest audit records            Query AUDIT#<day> newest first: today, then back to 31 days
//! newest audit records of a user  Query gsi1: gsi1pk = AUDITUSER#<user> newest first
//! claim a job                     PutItem if absent or `held_until` has passed
//! end a command                   TransactWriteItems: its state (if changed, on the
//!                                 version loaded), its audit records, its job done
//! ```
//!
//! Every operation is one request (queries follow pagination), except the
//! unfiltered audit listing, which reads one day at a time. State reads are
//! strongly consistent, so a load followed by a save is a true version check; the
//! indexes are eventually consistent, so a grant just written may take a moment to
//! show up in the by-role and by-end-time lists (never in a user's own grants,
//! which authorization reads). TTL is a backstop that clears old items: timed
//! grants are judged by their window, and claims by `held_until`, before TTL runs.

mod commit;
mod keys;
mod table;

use std::error::Error;
use std::fmt;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use chrono::{DateTime, Days, Duration, Utc};
use serde_json::Value;

use super::{
    AuditLog, Claim, EncodedState, GrantStore, JobClaims, JobRecord, JobStatus, StateStore,
    StoreError, Versioned,
};
use crate::BoxFuture;
use crate::access::Grant;
use crate::audit::AuditRecord;
use crate::clock::SharedClock;
use crate::ids::{Role, UserId};
use keys::{
    ANNOUNCED, GRANT_SK_PREFIX, GRANTED_AT, GRANTS_PARTITION, HELD_UNTIL, Item, JOB_SK, RECORD,
    STATE, STATE_SK, STATUS, VERSION, WRITER, audit_item, audit_pk, audit_user_pk, grant_item,
    grant_role_prefix, grant_sk, job_item, job_pk, json, key, n, nano_key, number, parse_grant,
    parse_job, s, second_key, state_pk, status_name, user_pk,
};
pub use keys::{GSI1, GSI1_PK, GSI1_SK, GSI2, GSI2_PK, GSI2_SK, PK, SK, TTL};
pub use table::create_table;

/// How long audit records are kept unless [`DynamoStore::with_audit_retention`]
/// says otherwise.
pub const DEFAULT_AUDIT_RETENTION: Duration = super::AUDIT_RETENTION;
/// How long an ended grant stays in the table before TTL may delete it.
pub const ENDED_GRANT_RETENTION: Duration = Duration::days(7);
/// How many days before today [`AuditLog::recent`] looks for records.
pub const AUDIT_LOOKBACK_DAYS: u64 = 31;

/// Keeps everything in one DynamoDB table (see the [module docs](self)).
#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    clock: SharedClock,
    audit_retention: Duration,
}

impl fmt::Debug for DynamoStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DynamoStore")
            .field("table", &self.table)
            .field("audit_retention", &self.audit_retention)
            .finish_non_exhaustive()
    }
}

impl DynamoStore {
    /// A store over `table`, which must exist (see [`create_table`]). The clock
    /// tells which day's audit partition is the newest.
    pub fn new(client: Client, table: impl Into<String>, clock: SharedClock) -> Self {
        Self {
            client,
            table: table.into(),
            clock,
            audit_retention: DEFAULT_AUDIT_RETENTION,
        }
    }

    /// A store over `table` with a client configured from the environment
    /// (`AWS_REGION`, credentials, `AWS_ENDPOINT_URL` for an emulator), as
    /// [`crate::aws::load_config`].
    #[cfg(any(feature = "tls-ring", feature = "tls-aws-lc"))]
    pub async fn from_env(table: impl Into<String>, clock: SharedClock) -> Self {
        let config = crate::aws::load_config().await;
        Self::new(Client::new(&config), table, clock)
    }

    /// Keeps audit records `keep` long before TTL may delete them.
    pub fn with_audit_retention(mut self, keep: Duration) -> Self {
        self.audit_retention = keep;
        self
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// A query on one partition of the table (`index` `None`) or of an index.
    fn query(&self, index: Option<&str>, pk_attr: &str, pk: String) -> QueryFluentBuilder {
        self.client
            .query()
            .table_name(&self.table)
            .set_index_name(index.map(str::to_string))
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", pk_attr)
            .expression_attribute_values(":pk", s(pk))
    }

    /// A query on one partition, narrowed by `condition` on the sort key, which
    /// names it `#sk` and the value `:sk`.
    fn query_sorted(
        &self,
        index: Option<&str>,
        (pk_attr, pk): (&str, String),
        (sk_attr, condition, sk): (&str, &str, String),
    ) -> QueryFluentBuilder {
        self.query(index, pk_attr, pk)
            .key_condition_expression(format!("#pk = :pk AND {condition}"))
            .expression_attribute_names("#sk", sk_attr)
            .expression_attribute_values(":sk", s(sk))
    }

    async fn put(&self, item: Item) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| backend("PutItem", e))?;
        Ok(())
    }
}

// ---- script state ----

impl DynamoStore {
    async fn load_state(&self, script: &str) -> Result<Versioned<Value>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(state_pk(script), STATE_SK)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| backend("GetItem", e))?;
        let Some(item) = out.item() else {
            return Ok(Versioned {
                version: 0,
                value: None,
            });
        };
        Ok(Versioned {
            version: number(item, VERSION)?,
            value: Some(json(item, STATE)?),
        })
    }

    async fn save_state(
        &self,
        script: &str,
        state: &EncodedState,
        expected: u64,
    ) -> Result<u64, StoreError> {
        let version = expected + 1;
        let writer = s(uuid::Uuid::new_v4().simple().to_string());
        let mut item = key(state_pk(script), STATE_SK);
        item.insert(VERSION.into(), n(version));
        item.insert(STATE.into(), s(state.json().to_string()));
        item.insert(WRITER.into(), writer.clone());
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        let put = if expected == 0 {
            put.condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", PK)
        } else {
            put.condition_expression("#v = :expected")
                .expression_attribute_names("#v", VERSION)
                .expression_attribute_values(":expected", n(expected))
        };
        match put.send().await {
            Ok(_) => Ok(version),
            // The SDK retried a save whose first answer was lost (a 5xx, a timeout)
            // and the retry failed its condition against that first write: ours.
            Err(e) if written_by(&e, WRITER, &writer) => Ok(version),
            Err(e) if is_condition_failure(&e) => Err(StoreError::Conflict {
                what: format!("state of {script}"),
            }),
            Err(e) => Err(backend("PutItem", e)),
        }
    }
}

impl StateStore for DynamoStore {
    fn load<'a>(&'a self, script: &'a str) -> BoxFuture<'a, Result<Versioned<Value>, StoreError>> {
        Box::pin(self.load_state(script))
    }

    fn save<'a>(
        &'a self,
        script: &'a str,
        state: &'a EncodedState,
        expected: u64,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(self.save_state(script, state, expected))
    }
}

// ---- grants ----

impl DynamoStore {
    async fn query_grants(&self, query: QueryFluentBuilder) -> Result<Vec<Grant>, StoreError> {
        all_items(query).await?.iter().map(parse_grant).collect()
    }

    async fn ended_grants(&self, now: DateTime<Utc>) -> Result<Vec<Grant>, StoreError> {
        // Keys hold whole seconds: everything ending before the next second is a
        // candidate, and the exact check drops the few that end later in this one.
        let bound = second_key(now + Duration::seconds(1));
        let query = self.query_sorted(
            Some(GSI2),
            (GSI2_PK, GRANTS_PARTITION.into()),
            (GSI2_SK, "#sk < :sk", bound),
        );
        let candidates = self.query_grants(query).await?;
        Ok(candidates
            .into_iter()
            .filter(|g| g.has_ended(now))
            .collect())
    }

    /// Deletes every grant of `role` the user holds (a strongly consistent query of
    /// the `GRANT#<role>#` items, then one delete each); returns those it deleted.
    async fn delete_grants(&self, user: &UserId, role: &Role) -> Result<Vec<Grant>, StoreError> {
        let query = self
            .query_sorted(
                None,
                (PK, user_pk(user)),
                (SK, "begins_with(#sk, :sk)", grant_role_prefix(role)),
            )
            .consistent_read(true);
        let mut removed = Vec::new();
        for grant in self.query_grants(query).await? {
            let out = self
                .client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(key(user_pk(user), grant_sk(role, grant.id))))
                .return_values(ReturnValue::AllOld)
                .send()
                .await
                .map_err(|e| backend("DeleteItem", e))?;
            // Gone already (the expiry pass ended it meanwhile): not ours to report.
            if let Some(item) = out.attributes() {
                removed.push(parse_grant(item)?);
            }
        }
        Ok(removed)
    }

    /// Adds a grant; never overwrites one with the same identity.
    async fn add_grant(&self, grant: &Grant) -> Result<(), StoreError> {
        let writer = s(uuid::Uuid::new_v4().simple().to_string());
        let mut item = grant_item(grant)?;
        item.insert(WRITER.into(), writer.clone());
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        match put.send().await {
            Ok(_) => Ok(()),
            // The SDK retried a put whose first answer was lost: it meets itself.
            Err(e) if written_by(&e, WRITER, &writer) => Ok(()),
            Err(e) if is_condition_failure(&e) => Err(StoreError::Conflict {
                what: format!("the grant of {} to {}", grant.role, grant.user),
            }),
            Err(e) => Err(backend("PutItem", e)),
        }
    }
}

impl DynamoStore {
    /// Conditional on the stored grant being `old`: it still exists (its key is its
    /// user, role and `granted_at`) and its start is announced or not as in `old`
    /// (the one field a grant changes). Items written before `announced` existed
    /// count as not announced.
    async fn replace_grant_if_unchanged(
        &self,
        old: &Grant,
        new: Option<&Grant>,
    ) -> Result<bool, StoreError> {
        let condition = if old.start_announced {
            "#ga = :ga AND #ann = :ann"
        } else {
            "#ga = :ga AND (#ann = :ann OR attribute_not_exists(#ann))"
        };
        let granted_at = s(nano_key(old.granted_at));
        let announced = AttributeValue::Bool(old.start_announced);
        let result = match new {
            Some(new) => self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(grant_item(new)?))
                .condition_expression(condition)
                .expression_attribute_names("#ga", GRANTED_AT)
                .expression_attribute_names("#ann", ANNOUNCED)
                .expression_attribute_values(":ga", granted_at)
                .expression_attribute_values(":ann", announced)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| (is_condition_failure(&e), backend("PutItem", e))),
            None => self
                .client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(key(user_pk(&old.user), grant_sk(&old.role, old.id))))
                .condition_expression(condition)
                .expression_attribute_names("#ga", GRANTED_AT)
                .expression_attribute_names("#ann", ANNOUNCED)
                .expression_attribute_values(":ga", granted_at)
                .expression_attribute_values(":ann", announced)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| (is_condition_failure(&e), backend("DeleteItem", e))),
        };
        match result {
            Ok(()) => Ok(true),
            Err((true, _)) => Ok(false),
            Err((false, e)) => Err(e),
        }
    }
}

impl GrantStore for DynamoStore {
    fn grants_for<'a>(&'a self, user: &'a UserId) -> BoxFuture<'a, Result<Vec<Grant>, StoreError>> {
        let query = self
            .query_sorted(
                None,
                (PK, user_pk(user)),
                (SK, "begins_with(#sk, :sk)", GRANT_SK_PREFIX.into()),
            )
            .consistent_read(true);
        Box::pin(self.query_grants(query))
    }

    fn grants_with_role<'a>(
        &'a self,
        role: &'a Role,
    ) -> BoxFuture<'a, Result<Vec<Grant>, StoreError>> {
        let query = self.query(Some(GSI1), GSI1_PK, format!("ROLE#{role}"));
        Box::pin(self.query_grants(query))
    }

    fn all_grants(&self) -> BoxFuture<'_, Result<Vec<Grant>, StoreError>> {
        let query = self.query(Some(GSI2), GSI2_PK, GRANTS_PARTITION.into());
        Box::pin(self.query_grants(query))
    }

    fn put_grant<'a>(&'a self, grant: &'a Grant) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.add_grant(grant))
    }

    fn remove_grants<'a>(
        &'a self,
        user: &'a UserId,
        role: &'a Role,
    ) -> BoxFuture<'a, Result<Vec<Grant>, StoreError>> {
        Box::pin(self.delete_grants(user, role))
    }

    fn replace_grant<'a>(
        &'a self,
        old: &'a Grant,
        new: Option<&'a Grant>,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(self.replace_grant_if_unchanged(old, new))
    }

    fn grants_ended_by(&self, now: DateTime<Utc>) -> BoxFuture<'_, Result<Vec<Grant>, StoreError>> {
        Box::pin(self.ended_grants(now))
    }
}

// ---- audit ----

impl DynamoStore {
    async fn recent_records(
        &self,
        user: Option<&UserId>,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        if let Some(user) = user {
            let query = self.query(Some(GSI1), GSI1_PK, audit_user_pk(user));
            return newest_records(query, limit).await;
        }
        let today = self.clock.now().date_naive();
        let mut records = Vec::new();
        for day in
            (0..=AUDIT_LOOKBACK_DAYS).filter_map(|back| today.checked_sub_days(Days::new(back)))
        {
            if records.len() >= limit {
                break;
            }
            let query = self.query(None, PK, audit_pk(day));
            records.extend(newest_records(query, limit - records.len()).await?);
        }
        Ok(records)
    }
}

impl AuditLog for DynamoStore {
    fn append<'a>(&'a self, record: &'a AuditRecord) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let item = audit_item(record, self.audit_retention)?;
            self.put(item).await
        })
    }

    fn recent<'a>(
        &'a self,
        user: Option<&'a UserId>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<AuditRecord>, StoreError>> {
        Box::pin(self.recent_records(user, limit))
    }
}

// ---- job claims ----

impl DynamoStore {
    async fn claim_job(
        &self,
        job_id: &str,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<Claim, StoreError> {
        let running = JobRecord {
            status: JobStatus::Running,
            until: now + lease,
            reply: None,
        };
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(job_item(job_id, &running)))
            .condition_expression("attribute_not_exists(#pk) OR #until <= :now")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#until", HELD_UNTIL)
            .expression_attribute_values(":now", n(now.timestamp_millis()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let err = match result {
            Ok(_) => return Ok(Claim::Acquired),
            Err(err) => err,
        };
        let Some(PutItemError::ConditionalCheckFailedException(failed)) = err.as_service_error()
        else {
            return Err(backend("PutItem", err));
        };
        let Some(item) = failed.item() else {
            return Err(StoreError::Backend(format!(
                "DynamoDB PutItem: the claim on job {job_id} failed its condition but the \
                 table returned no item"
            )));
        };
        let record = parse_job(item)?;
        // The condition compared whole milliseconds, as `blocks` does here, so the
        // record blocks; should it not, refusing is the safe answer.
        let now_ms = DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now);
        Ok(record.blocks(now_ms).unwrap_or(Claim::HeldElsewhere {
            until: record.until,
        }))
    }

    async fn release_job(&self, job_id: &str) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(job_pk(job_id), JOB_SK)))
            .condition_expression("#status = :running")
            .expression_attribute_names("#status", STATUS)
            .expression_attribute_values(":running", s(status_name(JobStatus::Running)))
            .send()
            .await;
        match result {
            // Absent or finished: nothing to give up.
            Err(e) if is_condition_failure(&e) => Ok(()),
            Err(e) => Err(backend("DeleteItem", e)),
            Ok(_) => Ok(()),
        }
    }
}

impl JobClaims for DynamoStore {
    fn claim<'a>(
        &'a self,
        job_id: &'a str,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> BoxFuture<'a, Result<Claim, StoreError>> {
        Box::pin(self.claim_job(job_id, now, lease))
    }

    fn finish_with_reply<'a>(
        &'a self,
        job_id: &'a str,
        now: DateTime<Utc>,
        keep: Duration,
        reply: Option<&'a super::CommittedReply>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let done = JobRecord {
            status: JobStatus::Done,
            until: now + keep,
            reply: reply.cloned(),
        };
        Box::pin(self.put(job_item(job_id, &done)))
    }

    fn release<'a>(&'a self, job_id: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.release_job(job_id))
    }
}

impl super::Commits for DynamoStore {
    fn commit<'a>(
        &'a self,
        commit: super::Commit<'a>,
    ) -> BoxFuture<'a, Result<Option<u64>, StoreError>> {
        Box::pin(self.commit_all(commit))
    }
}

// ---- queries ----

/// Every item the query matches, following pagination.
async fn all_items(query: QueryFluentBuilder) -> Result<Vec<Item>, StoreError> {
    query
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| backend("Query", e))
}

/// The first `limit` audit records the query matches, newest first.
async fn newest_records(
    query: QueryFluentBuilder,
    limit: usize,
) -> Result<Vec<AuditRecord>, StoreError> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let page = i32::try_from(limit).unwrap_or(i32::MAX);
    let mut items = query
        .scan_index_forward(false)
        .into_paginator()
        .page_size(page)
        .items()
        .send();
    let mut records = Vec::new();
    while records.len() < limit {
        match items.try_next().await.map_err(|e| backend("Query", e))? {
            Some(item) => records.push(json(&item, RECORD)?),
            None => break,
        }
    }
    Ok(records)
}

// ---- errors ----

/// Whether a conditional put failed against an item whose `attribute` is `value`:
/// an earlier attempt of the same put, which DynamoDB applied but whose answer
/// was lost, so the SDK sent it again.
fn written_by<R>(err: &SdkError<PutItemError, R>, attribute: &str, value: &AttributeValue) -> bool {
    let Some(PutItemError::ConditionalCheckFailedException(failed)) = err.as_service_error() else {
        return false;
    };
    failed
        .item()
        .and_then(|item| item.get(attribute))
        .is_some_and(|stored| stored == value)
}

fn is_condition_failure<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    err.as_service_error()
        .is_some_and(|e| e.code() == Some("ConditionalCheckFailedException"))
}

/// One line for the log: the service's error code and message when there is
/// one, else the chain of causes (never a Debug dump).
fn backend<E, R>(operation: &str, err: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + Error + 'static,
    R: fmt::Debug,
{
    let detail = match (err.code(), err.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_string(),
        _ => chain(&err),
    };
    StoreError::Backend(format!("DynamoDB {operation}: {}", one_line(&detail)))
}

/// An error and its sources, joined with ": ".
fn chain(err: &dyn Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    one_line(&out)
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn build_error(err: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::Backend(format!("DynamoDB request could not be built: {err}"))
}
