//! State and its persisters.
//!
//! Narrow ports, one per capability, each with an in-memory implementation for
//! tests ([`memory`]) and real ones ([`mod@file`] locally; `dynamodb`, behind the
//! feature of that name, when deployed):
//!
//! - [`StateStore`]: each script's JSON state, saved with an optimistic version
//!   check so that concurrent commands never lose an update;
//! - [`GrantStore`]: who holds which role, and when;
//! - [`AuditLog`]: the audit trail;
//! - [`JobClaims`]: claims on queued jobs, so a redelivered message runs once;
//! - [`Commits`]: the writes that end a command — state, audit, the job done —
//!   in one go.

pub mod contract;
#[cfg(feature = "dynamodb")]
pub mod dynamodb;
pub mod file;
pub mod memory;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::BoxFuture;
use crate::access::Grant;
use crate::audit::AuditRecord;
use crate::ids::{Role, UserId};

/// A value and the version it was read at. Version 0 means "never saved".
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned<T> {
    /// The stored version; 0 when nothing is stored yet.
    pub version: u64,
    /// The value, if any was stored.
    pub value: Option<T>,
}

/// What can go wrong in a store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Someone else saved first; reload and try again.
    #[error("{what} was changed by someone else at the same time")]
    Conflict {
        /// What was being saved.
        what: String,
    },
    /// Stored data could not be read back. It is left as it is for a person to look at.
    #[error("{what} is corrupt and was left untouched: {detail}")]
    Corrupt {
        /// What (a file path, a key).
        what: String,
        /// The parser's complaint.
        detail: String,
    },
    /// The filesystem failed.
    #[error("could not access {what}: {source}")]
    Io {
        /// What (a file path).
        what: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A state would be larger than any persister may hold ([`MAX_STATE_BYTES`]);
    /// nothing was written.
    #[error(
        "the state of `{script}` would be {bytes} bytes, over the limit of {limit}: nothing was changed"
    )]
    TooLarge {
        /// The script.
        script: String,
        /// Its serialised size.
        bytes: usize,
        /// [`MAX_STATE_BYTES`].
        limit: usize,
    },
    /// A remote store failed (the detail is for the log, not for Slack).
    #[error("the store failed: {0}")]
    Backend(String),
}

impl StoreError {
    /// Whether this is an optimistic-concurrency conflict worth retrying.
    pub fn is_conflict(&self) -> bool {
        matches!(self, StoreError::Conflict { .. })
    }
}

/// The most a script's state may take, serialised as JSON: what fits one DynamoDB
/// item (400 KB in all, names and the other attributes included — "Service,
/// account, and table quotas in Amazon DynamoDB"), with room to spare. Every
/// persister enforces the same limit, because each only saves [`EncodedState`].
pub const MAX_STATE_BYTES: usize = 350 * 1024;

/// A script's state, serialised and known to be within [`MAX_STATE_BYTES`]: the
/// only thing a [`StateStore`] saves, so no persister can write, and no caller can
/// hand one, an oversized state.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedState {
    value: Value,
    json: String,
}

impl EncodedState {
    /// Serialises `value`, the state of `script`.
    ///
    /// # Errors
    /// [`StoreError::TooLarge`] over [`MAX_STATE_BYTES`].
    pub fn new(script: &str, value: Value) -> Result<Self, StoreError> {
        let json = value.to_string();
        if json.len() > MAX_STATE_BYTES {
            return Err(StoreError::TooLarge {
                script: script.to_string(),
                bytes: json.len(),
                limit: MAX_STATE_BYTES,
            });
        }
        Ok(Self { value, json })
    }

    /// The state.
    pub fn value(&self) -> &Value {
        &self.value
    }

    /// The state as a JSON string (what the DynamoDB item and files hold).
    pub fn json(&self) -> &str {
        &self.json
    }
}

/// Each script's JSON state, with optimistic versions.
pub trait StateStore: Send + Sync {
    /// Loads a script's state and its version.
    fn load<'a>(&'a self, script: &'a str) -> BoxFuture<'a, Result<Versioned<Value>, StoreError>>;

    /// Saves a script's state if its stored version is still `expected`; returns the
    /// new version, or [`StoreError::Conflict`] when someone else saved first.
    fn save<'a>(
        &'a self,
        script: &'a str,
        state: &'a EncodedState,
        expected: u64,
    ) -> BoxFuture<'a, Result<u64, StoreError>>;
}

/// Who holds which role, and when.
pub trait GrantStore: Send + Sync {
    /// Every grant of one user, active or not.
    fn grants_for<'a>(&'a self, user: &'a UserId) -> BoxFuture<'a, Result<Vec<Grant>, StoreError>>;

    /// Every grant of one role, active or not.
    fn grants_with_role<'a>(
        &'a self,
        role: &'a Role,
    ) -> BoxFuture<'a, Result<Vec<Grant>, StoreError>>;

    /// Every grant.
    fn all_grants(&self) -> BoxFuture<'_, Result<Vec<Grant>, StoreError>>;

    /// Adds a grant. A user may hold several grants of one role at once (standing,
    /// timed, future windows): they coexist, each identified by its user, role and
    /// `granted_at`, and each ends on its own. A grant never replaces another;
    /// one with the same identity is a [`StoreError::Conflict`].
    fn put_grant<'a>(&'a self, grant: &'a Grant) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Removes every grant of `role` that `user` holds; returns them (none: empty).
    fn remove_grants<'a>(
        &'a self,
        user: &'a UserId,
        role: &'a Role,
    ) -> BoxFuture<'a, Result<Vec<Grant>, StoreError>>;

    /// Replaces `old` with `new` (the same grant: same user, role and
    /// `granted_at`), or removes it when `new` is `None`, only if the stored grant
    /// is still exactly `old`; returns whether it did. The expiry pass claims each
    /// notice with it — ending a grant, announcing a window's start — so however
    /// many passes run at once, one of them wins and posts.
    fn replace_grant<'a>(
        &'a self,
        old: &'a Grant,
        new: Option<&'a Grant>,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// Grants whose window has closed at `now` (still stored: not yet ended).
    fn grants_ended_by(&self, now: DateTime<Utc>) -> BoxFuture<'_, Result<Vec<Grant>, StoreError>>;
}

/// How long the audit trail keeps a record (DynamoDB's TTL deletes it after; the
/// file persister drops it from its file), unless a persister is told otherwise.
/// The memory persister keeps a number of records instead
/// ([`memory::AUDIT_RECORDS`]).
pub const AUDIT_RETENTION: chrono::Duration = chrono::Duration::days(90);

/// The audit trail.
pub trait AuditLog: Send + Sync {
    /// Appends one record.
    fn append<'a>(&'a self, record: &'a AuditRecord) -> BoxFuture<'a, Result<(), StoreError>>;

    /// The newest records first, optionally only one user's, at most `limit`.
    fn recent<'a>(
        &'a self,
        user: Option<&'a UserId>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<AuditRecord>, StoreError>>;
}

/// A job's reply, committed with its "done" mark before it was posted
/// ([`JobDone::reply`]): if the runner dies between that commit and the post, the
/// next delivery of the same queue message finds it here and posts it
/// ([`Claim::Answered`]) — the command is not run again, and its answer is not lost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommittedReply {
    /// The queue message whose delivery ran the job (SQS's `MessageId`, the same
    /// on every delivery of one message).
    pub delivery: String,
    /// The reply as it was to be posted (JSON of [`crate::slack::Reply`]).
    pub reply: String,
}

/// The most bytes of a reply kept with its job ([`CommittedReply::reply`]): with
/// the key and the other attributes, well inside a DynamoDB item's 400 KB.
/// A reply past it is not kept, and is lost if its runner dies before posting it.
pub const MAX_COMMITTED_REPLY_BYTES: usize = 300 * 1024;

/// The answer to [`JobClaims::claim`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The caller holds the job now and should run it.
    Acquired,
    /// The job already ran to the end: drop the message.
    AlreadyDone,
    /// The job already ran to the end, and its reply was committed with it by the
    /// delivery it names; whether that reply was posted is not known. Only a
    /// later delivery of that same message posts it (the runner died between the
    /// commit and the post, or before the message was deleted); any other
    /// delivery treats it as [`Claim::AlreadyDone`].
    Answered(CommittedReply),
    /// Another worker is running the job; its lease lasts until `until`.
    HeldElsewhere {
        /// When the other worker's lease ends (to the millisecond).
        until: DateTime<Utc>,
    },
}

/// Claims on jobs, so a redelivered queue message runs its command once.
///
/// A record holds until its time is up: a running claim until its lease ends, a
/// finished job until `keep` has passed. After that the job is forgotten, exactly
/// as if DynamoDB's TTL had deleted the record (which it does, later).
pub trait JobClaims: Send + Sync {
    /// Claims `job_id` for `lease`; a claim whose lease has passed may be taken
    /// again (the worker that held it died).
    fn claim<'a>(
        &'a self,
        job_id: &'a str,
        now: DateTime<Utc>,
        lease: chrono::Duration,
    ) -> BoxFuture<'a, Result<Claim, StoreError>>;

    /// Marks the job done: it never runs again (kept `keep` long, then TTL may
    /// delete it). [`JobClaims::finish_with_reply`] without a reply.
    fn finish<'a>(
        &'a self,
        job_id: &'a str,
        now: DateTime<Utc>,
        keep: chrono::Duration,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.finish_with_reply(job_id, now, keep, None)
    }

    /// Gives a claim up early (the job failed in a retryable way), so the next
    /// delivery can claim it at once. A finished job stays finished.
    fn release<'a>(&'a self, job_id: &'a str) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Marks the job done, keeping `reply` (if any) with it until it is posted
    /// (then [`JobClaims::finish`] drops it): later claims of the job answer
    /// [`Claim::Answered`]. Every store implements this one; `finish` is it
    /// without a reply, so a wrapper cannot forward one and drop the other.
    fn finish_with_reply<'a>(
        &'a self,
        job_id: &'a str,
        now: DateTime<Utc>,
        keep: chrono::Duration,
        reply: Option<&'a CommittedReply>,
    ) -> BoxFuture<'a, Result<(), StoreError>>;
}

/// A state save, as [`StateStore::save`] takes it.
#[derive(Debug, Clone, Copy)]
pub struct StateSave<'a> {
    /// The script.
    pub script: &'a str,
    /// Its new state.
    pub state: &'a EncodedState,
    /// The version it was loaded at; the save fails with [`StoreError::Conflict`]
    /// when the stored one is another.
    pub expected: u64,
}

/// A job marked done, as [`JobClaims::finish_with_reply`] takes it.
#[derive(Debug, Clone, Copy)]
pub struct JobDone<'a> {
    /// The job.
    pub job_id: &'a str,
    /// When it finished.
    pub now: DateTime<Utc>,
    /// How long it is remembered.
    pub keep: chrono::Duration,
    /// Its reply, when the commit comes before the reply is posted.
    pub reply: Option<&'a CommittedReply>,
}

/// The writes that end a command, made together ([`Commits::commit`]): its
/// state save, if any, its audit records, and its job's claim marked done.
#[derive(Debug, Clone, Copy, Default)]
pub struct Commit<'a> {
    /// The state save, if the command changed its state.
    pub save: Option<StateSave<'a>>,
    /// The audit records (oldest first).
    pub audit: &'a [AuditRecord],
    /// The job to mark done, if the command runs as one.
    pub finish: Option<JobDone<'a>>,
}

impl Commit<'_> {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.save.is_none() && self.audit.is_empty() && self.finish.is_none()
    }
}

/// Makes a command's closing writes in one go, so that a stateful command costs
/// one write request however many records it leaves (DynamoDB: one
/// `TransactWriteItems`).
pub trait Commits: Send + Sync {
    /// Writes `commit`. With a save: all or nothing — a save that meets another
    /// version is [`StoreError::Conflict`] and nothing is written (the caller
    /// runs the command again); returns the new version. Without one: the audit
    /// records and the finish, `None`.
    fn commit<'a>(&'a self, commit: Commit<'a>) -> BoxFuture<'a, Result<Option<u64>, StoreError>>;
}

/// [`Commits::commit`] as one write after another (the memory and file persisters,
/// whose writes are local): the save first — a conflict writes nothing — then each
/// audit record, then the finish. An audit record that cannot be written is
/// logged, as [`crate::engine::bot::Bot::audit`] does, and does not undo the save.
pub async fn commit_in_steps<S>(store: &S, commit: Commit<'_>) -> Result<Option<u64>, StoreError>
where
    S: StateStore + AuditLog + JobClaims + ?Sized,
{
    let version = match commit.save {
        Some(save) => Some(store.save(save.script, save.state, save.expected).await?),
        None => None,
    };
    for record in commit.audit {
        if let Err(e) = store.append(record).await {
            tracing::error!(error = %e, correlation_id = %record.correlation_id, "could not write the audit record");
        }
    }
    if let Some(done) = commit.finish {
        store
            .finish_with_reply(done.job_id, done.now, done.keep, done.reply)
            .await?;
    }
    Ok(version)
}

/// Everything a bot keeps, behind one handle: state, grants, the audit trail and
/// job claims.
pub trait Store: StateStore + GrantStore + AuditLog + JobClaims + Commits {}

impl<T: StateStore + GrantStore + AuditLog + JobClaims + Commits> Store for T {}

/// Whether a job is being run or has been run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum JobStatus {
    Running,
    Done,
}

/// What a persister keeps about one job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct JobRecord {
    pub(crate) status: JobStatus,
    /// The end of the lease (running) or of the keep period (done).
    pub(crate) until: DateTime<Utc>,
    /// A done job's reply, committed before it was posted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) reply: Option<CommittedReply>,
}

impl JobRecord {
    /// What a claim at `now` meets: `None` once the record's time is up.
    pub(crate) fn blocks(&self, now: DateTime<Utc>) -> Option<Claim> {
        if self.until <= now {
            return None;
        }
        Some(match (self.status, &self.reply) {
            (JobStatus::Running, _) => Claim::HeldElsewhere { until: self.until },
            (JobStatus::Done, None) => Claim::AlreadyDone,
            (JobStatus::Done, Some(reply)) => Claim::Answered(reply.clone()),
        })
    }

    /// The outcome of claiming a job whose stored record is `existing`.
    pub(crate) fn claim_outcome(existing: Option<&JobRecord>, now: DateTime<Utc>) -> Claim {
        existing
            .and_then(|r| r.blocks(now))
            .unwrap_or(Claim::Acquired)
    }
}

/// [`GrantStore::replace_grant`] on a list of grants (memory and file persisters).
/// [`GrantStore::put_grant`] on a list (memory and file persisters).
pub(crate) fn add_in(grants: &mut Vec<Grant>, grant: &Grant) -> Result<(), StoreError> {
    if grants.iter().any(|g| g.same_grant(grant)) {
        return Err(StoreError::Conflict {
            what: format!("the grant of {} to {}", grant.role, grant.user),
        });
    }
    grants.push(grant.clone());
    Ok(())
}

/// [`GrantStore::remove_grants`] on a list.
pub(crate) fn remove_all_in(grants: &mut Vec<Grant>, user: &UserId, role: &Role) -> Vec<Grant> {
    let (removed, kept) = std::mem::take(grants)
        .into_iter()
        .partition(|g| &g.user == user && &g.role == role);
    *grants = kept;
    removed
}

/// [`GrantStore::replace_grant`] on a list: a compare-and-swap on the whole grant.
pub(crate) fn replace_in(grants: &mut Vec<Grant>, old: &Grant, new: Option<&Grant>) -> bool {
    debug_assert!(
        new.is_none_or(|n| n.same_grant(old)),
        "replace changes one grant"
    );
    let Some(i) = grants.iter().position(|g| g == old) else {
        return false;
    };
    match new {
        Some(new) => grants[i] = new.clone(),
        None => {
            grants.remove(i);
        }
    }
    true
}

/// Picks the newest `limit` records, optionally of one user, newest first.
pub(crate) fn newest_first<'a>(
    records: impl DoubleEndedIterator<Item = &'a AuditRecord>,
    user: Option<&UserId>,
    limit: usize,
) -> Vec<AuditRecord> {
    records
        .rev()
        .filter(|r| user.is_none_or(|u| &r.user == u))
        .take(limit)
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_over_the_limit_cannot_be_encoded_so_no_persister_writes_it() {
        let fits = Value::String("x".repeat(MAX_STATE_BYTES - 2));
        assert_eq!(
            EncodedState::new("s", fits).unwrap().json().len(),
            MAX_STATE_BYTES
        );
        let over = Value::String("x".repeat(MAX_STATE_BYTES - 1));
        let err = EncodedState::new("queue", over).unwrap_err();
        assert!(matches!(
            err,
            StoreError::TooLarge { bytes, limit: MAX_STATE_BYTES, .. } if bytes == MAX_STATE_BYTES + 1
        ));
        assert!(
            err.to_string().starts_with("the state of `queue` would be"),
            "{err}"
        );
    }
}
