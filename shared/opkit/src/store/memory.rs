//! In-memory persister, for tests and throwaway sessions. Nothing survives the process.
//!
//! What it keeps is bounded, so a long-running `opkit serve --store memory` does not
//! grow with what it has run:
//!
//! - **job claims** are kept as long as they decide something — a running claim
//!   until its lease ends, a finished job for its `keep` (4 days for the worker:
//!   [`crate::worker::KEEP`]) — and then dropped, as DynamoDB's TTL deletes them.
//!   Dropping is done on write, amortised ([`Claims`]): no timer thread.
//! - **the audit trail** keeps the newest [`AUDIT_RECORDS`] records (or the cap given
//!   to [`MemoryStore::with_audit_cap`]); older ones are dropped, oldest first, so
//!   `audit` (at most 100 records) reads from the newest ones: `audit <@user>`
//!   finds that user's records among them.
//! - states and grants are what the commands keep, each bounded by its own rules.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{
    AuditLog, Claim, EncodedState, GrantStore, JobClaims, JobRecord, JobStatus, StateStore,
    StoreError, Versioned, newest_first,
};
use crate::BoxFuture;
use crate::access::Grant;
use crate::audit::AuditRecord;
use crate::ids::{Role, UserId};

/// How many audit records a [`MemoryStore`] keeps unless
/// [`MemoryStore::with_audit_cap`] says otherwise: the newest; older ones are
/// dropped. About 3 MiB of records; `audit` shows at most 100.
pub const AUDIT_RECORDS: usize = 10_000;

/// Keeps everything in process memory.
#[derive(Debug)]
pub struct MemoryStore {
    states: Mutex<HashMap<String, (u64, Value)>>,
    grants: Mutex<Vec<Grant>>,
    audit: Mutex<VecDeque<AuditRecord>>,
    audit_cap: usize,
    jobs: Mutex<Claims>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self {
            states: Mutex::default(),
            grants: Mutex::default(),
            audit: Mutex::default(),
            audit_cap: AUDIT_RECORDS,
            jobs: Mutex::default(),
        }
    }
}

impl MemoryStore {
    /// An empty store, keeping the newest [`AUDIT_RECORDS`] audit records.
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps only the newest `cap` audit records (at least 1); older ones are
    /// dropped as new ones come.
    pub fn with_audit_cap(mut self, cap: usize) -> Self {
        self.audit_cap = cap.max(1);
        self
    }
}

/// The job claims of a [`MemoryStore`], dropped once their time is up.
///
/// Records whose time is up are removed on a write once the map has doubled
/// since the last sweep (and holds at least [`Claims::FIRST_SWEEP`]): a sweep
/// costs one pass over the map, paid for by the writes that doubled it, so a
/// write costs O(1) amortised; the map holds at most twice the records still
/// deciding something (or [`Claims::FIRST_SWEEP`]).
#[derive(Debug)]
struct Claims {
    records: HashMap<String, JobRecord>,
    /// The size at which the next write sweeps.
    sweep_at: usize,
}

impl Default for Claims {
    fn default() -> Self {
        Self {
            records: HashMap::new(),
            sweep_at: Self::FIRST_SWEEP,
        }
    }
}

impl Claims {
    /// No sweep before the map holds this many records.
    const FIRST_SWEEP: usize = 1024;

    /// Stores `record` for `job_id`, first dropping, when due, every record
    /// whose time is up at `now`.
    fn put(&mut self, job_id: &str, record: JobRecord, now: DateTime<Utc>) {
        if self.records.len() >= self.sweep_at {
            self.records.retain(|_, r| r.until > now);
            let live = self.records.len();
            self.sweep_at = (2 * live).max(Self::FIRST_SWEEP);
            if self.records.capacity() > 2 * self.sweep_at {
                self.records.shrink_to(self.sweep_at);
            }
        }
        match self.records.get_mut(job_id) {
            Some(existing) => *existing = record,
            None => {
                self.records.insert(job_id.to_string(), record);
            }
        }
    }
}

fn ready<'a, T: Send + 'a>(value: T) -> BoxFuture<'a, T> {
    Box::pin(std::future::ready(value))
}

impl StateStore for MemoryStore {
    fn load<'a>(&'a self, script: &'a str) -> BoxFuture<'a, Result<Versioned<Value>, StoreError>> {
        let states = self.states.lock().expect("state lock");
        let found = states.get(script).cloned();
        ready(Ok(match found {
            Some((version, value)) => Versioned {
                version,
                value: Some(value),
            },
            None => Versioned {
                version: 0,
                value: None,
            },
        }))
    }

    fn save<'a>(
        &'a self,
        script: &'a str,
        state: &'a EncodedState,
        expected: u64,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        let mut states = self.states.lock().expect("state lock");
        let current = states.get(script).map_or(0, |(v, _)| *v);
        if current != expected {
            return ready(Err(StoreError::Conflict {
                what: format!("state of {script}"),
            }));
        }
        states.insert(script.to_string(), (current + 1, state.value().clone()));
        ready(Ok(current + 1))
    }
}

impl GrantStore for MemoryStore {
    fn grants_for<'a>(&'a self, user: &'a UserId) -> BoxFuture<'a, Result<Vec<Grant>, StoreError>> {
        ready(Ok(self.filtered(|g| &g.user == user)))
    }

    fn grants_with_role<'a>(
        &'a self,
        role: &'a Role,
    ) -> BoxFuture<'a, Result<Vec<Grant>, StoreError>> {
        ready(Ok(self.filtered(|g| &g.role == role)))
    }

    fn all_grants(&self) -> BoxFuture<'_, Result<Vec<Grant>, StoreError>> {
        ready(Ok(self.filtered(|_| true)))
    }

    fn put_grant<'a>(&'a self, grant: &'a Grant) -> BoxFuture<'a, Result<(), StoreError>> {
        let mut grants = self.grants.lock().expect("grant lock");
        ready(super::add_in(&mut grants, grant))
    }

    fn remove_grants<'a>(
        &'a self,
        user: &'a UserId,
        role: &'a Role,
    ) -> BoxFuture<'a, Result<Vec<Grant>, StoreError>> {
        let mut grants = self.grants.lock().expect("grant lock");
        ready(Ok(super::remove_all_in(&mut grants, user, role)))
    }

    fn replace_grant<'a>(
        &'a self,
        old: &'a Grant,
        new: Option<&'a Grant>,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        let mut grants = self.grants.lock().expect("grant lock");
        ready(Ok(super::replace_in(&mut grants, old, new)))
    }

    fn grants_ended_by(&self, now: DateTime<Utc>) -> BoxFuture<'_, Result<Vec<Grant>, StoreError>> {
        ready(Ok(self.filtered(|g| g.has_ended(now))))
    }
}

impl MemoryStore {
    fn filtered(&self, keep: impl Fn(&Grant) -> bool) -> Vec<Grant> {
        let grants = self.grants.lock().expect("grant lock");
        grants.iter().filter(|g| keep(g)).cloned().collect()
    }
}

impl AuditLog for MemoryStore {
    fn append<'a>(&'a self, record: &'a AuditRecord) -> BoxFuture<'a, Result<(), StoreError>> {
        let mut audit = self.audit.lock().expect("audit lock");
        while audit.len() >= self.audit_cap {
            audit.pop_front();
        }
        audit.push_back(record.clone());
        ready(Ok(()))
    }

    fn recent<'a>(
        &'a self,
        user: Option<&'a UserId>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<AuditRecord>, StoreError>> {
        let audit = self.audit.lock().expect("audit lock");
        ready(Ok(newest_first(audit.iter(), user, limit)))
    }
}

impl JobClaims for MemoryStore {
    fn claim<'a>(
        &'a self,
        job_id: &'a str,
        now: DateTime<Utc>,
        lease: chrono::Duration,
    ) -> BoxFuture<'a, Result<Claim, StoreError>> {
        let mut jobs = self.jobs.lock().expect("job lock");
        let outcome = JobRecord::claim_outcome(jobs.records.get(job_id), now);
        if outcome == Claim::Acquired {
            let record = JobRecord {
                status: JobStatus::Running,
                until: now + lease,
                reply: None,
            };
            jobs.put(job_id, record, now);
        }
        ready(Ok(outcome))
    }

    fn finish_with_reply<'a>(
        &'a self,
        job_id: &'a str,
        now: DateTime<Utc>,
        keep: chrono::Duration,
        reply: Option<&'a super::CommittedReply>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let record = JobRecord {
            status: JobStatus::Done,
            until: now + keep,
            reply: reply.cloned(),
        };
        self.jobs.lock().expect("job lock").put(job_id, record, now);
        ready(Ok(()))
    }

    fn release<'a>(&'a self, job_id: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        let mut jobs = self.jobs.lock().expect("job lock");
        if jobs
            .records
            .get(job_id)
            .is_some_and(|r| r.status == JobStatus::Running)
        {
            jobs.records.remove(job_id);
        }
        ready(Ok(()))
    }
}

impl super::Commits for MemoryStore {
    fn commit<'a>(
        &'a self,
        commit: super::Commit<'a>,
    ) -> BoxFuture<'a, Result<Option<u64>, StoreError>> {
        Box::pin(super::commit_in_steps(self, commit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Outcome;
    use chrono::Duration;

    fn t(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
    }

    fn held(store: &MemoryStore) -> usize {
        store.jobs.lock().unwrap().records.len()
    }

    async fn run_job(store: &MemoryStore, job: &str, at: DateTime<Utc>, keep: Duration) {
        assert_eq!(
            store.claim(job, at, Duration::minutes(5)).await.unwrap(),
            Claim::Acquired,
            "{job}"
        );
        store.finish(job, at, keep).await.unwrap();
    }

    #[tokio::test]
    async fn memory_store_honours_the_store_contract() {
        crate::store::contract::check_all(&MemoryStore::new()).await;
    }

    #[tokio::test]
    async fn a_finished_job_is_refused_for_its_keep_time_and_dropped_after() {
        // GIVEN 3,000 jobs finished at t(0), kept a day
        let store = MemoryStore::new();
        let keep = Duration::days(1);
        for i in 0..3000 {
            run_job(&store, &format!("old-{i}"), t(0), keep).await;
        }
        // WHEN 3,000 more run a second before the day is up (sweeps happen)
        let late = t(0) + keep - Duration::seconds(1);
        for i in 0..3000 {
            run_job(&store, &format!("new-{i}"), late, keep).await;
        }
        // THEN every old job is still refused: a sweep drops only what is over
        for i in 0..3000 {
            let again = store
                .claim(&format!("old-{i}"), late, Duration::minutes(5))
                .await
                .unwrap();
            assert_eq!(again, Claim::AlreadyDone, "old-{i}");
        }
        assert_eq!(held(&store), 6000);
        // WHEN the day is up for the old ones, and enough writes come for a sweep
        let after = t(0) + keep;
        for i in 0..6000 {
            run_job(&store, &format!("later-{i}"), after, keep).await;
        }
        // THEN the old claims are gone, the others held
        let jobs = store.jobs.lock().unwrap();
        assert!(!jobs.records.keys().any(|k| k.starts_with("old-")));
        assert_eq!(
            jobs.records
                .keys()
                .filter(|k| k.starts_with("new-"))
                .count(),
            3000
        );
        assert_eq!(
            jobs.records
                .keys()
                .filter(|k| k.starts_with("later-"))
                .count(),
            6000
        );
    }

    #[tokio::test]
    async fn a_long_run_holds_at_most_twice_the_claims_still_deciding() {
        // GIVEN one job a second for 100,000 seconds, each kept 1,000 seconds
        let store = MemoryStore::new();
        let keep = Duration::seconds(1000);
        let mut most = 0;
        for i in 0..100_000 {
            run_job(&store, &format!("job-{i}"), t(i), keep).await;
            most = most.max(held(&store));
        }
        // THEN never more than twice the 1,000 live ones (or the first sweep's size)
        assert!(
            most <= 2 * Claims::FIRST_SWEEP.max(1000),
            "held {most} claims"
        );
        // AND the newest are all still refused
        for i in 100_000 - 999..100_000 {
            let again = store
                .claim(&format!("job-{i}"), t(100_000), Duration::minutes(5))
                .await
                .unwrap();
            assert_eq!(again, Claim::AlreadyDone, "job-{i}");
        }
    }

    #[tokio::test]
    async fn a_running_claim_past_its_lease_is_dropped_and_a_live_one_kept() {
        // GIVEN a claim whose lease ends at t(300), never finished
        let store = MemoryStore::new();
        store
            .claim("stuck", t(0), Duration::minutes(5))
            .await
            .unwrap();
        store
            .claim("running", t(250), Duration::minutes(5))
            .await
            .unwrap();
        // WHEN enough jobs run at t(300) to sweep
        for i in 0..Claims::FIRST_SWEEP {
            run_job(&store, &format!("job-{i}"), t(300), Duration::days(4)).await;
        }
        // THEN the lapsed claim is gone, the running one still held
        let jobs = store.jobs.lock().unwrap();
        assert!(!jobs.records.contains_key("stuck"));
        assert_eq!(jobs.records["running"].status, JobStatus::Running);
    }

    fn record(user: &str, n: usize) -> AuditRecord {
        AuditRecord {
            id: uuid::Uuid::new_v4(),
            correlation_id: uuid::Uuid::new_v4(),
            at: t(n as i64),
            user: UserId::parse(user).unwrap(),
            channel: None,
            team: None,
            text: format!("cmd {n}"),
            command: None,
            outcome: Outcome::Succeeded,
        }
    }

    #[tokio::test]
    async fn the_audit_keeps_the_newest_records_up_to_its_cap() {
        // GIVEN a store keeping 3 audit records
        let store = MemoryStore::new().with_audit_cap(3);
        // WHEN 5 are written, by two users
        for (n, user) in ["UA", "UB", "UA", "UB", "UA"].iter().enumerate() {
            store.append(&record(user, n)).await.unwrap();
        }
        // THEN the newest 3 are kept, newest first
        let texts = |records: Vec<AuditRecord>| -> Vec<String> {
            records.into_iter().map(|r| r.text).collect()
        };
        assert_eq!(
            texts(store.recent(None, 10).await.unwrap()),
            ["cmd 4", "cmd 3", "cmd 2"]
        );
        // AND a user's records are found among them
        let ua = UserId::parse("UA").unwrap();
        assert_eq!(
            texts(store.recent(Some(&ua), 10).await.unwrap()),
            ["cmd 4", "cmd 2"]
        );
        assert_eq!(store.audit.lock().unwrap().len(), 3);
    }

    #[tokio::test]
    async fn the_default_audit_cap_holds_under_many_writes() {
        let store = MemoryStore::new();
        for n in 0..AUDIT_RECORDS + 500 {
            store.append(&record("UA", n)).await.unwrap();
        }
        assert_eq!(store.audit.lock().unwrap().len(), AUDIT_RECORDS);
        let newest = store.recent(None, 1).await.unwrap();
        assert_eq!(newest[0].text, format!("cmd {}", AUDIT_RECORDS + 499));
    }

    #[test]
    fn an_audit_cap_of_zero_keeps_one() {
        assert_eq!(MemoryStore::new().with_audit_cap(0).audit_cap, 1);
    }
}
