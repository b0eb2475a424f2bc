//! Fault injection at the store port: [`FaultyStore`] wraps any [`Store`], counts
//! every call by operation (and the optimistic-concurrency conflicts saves meet),
//! and fails — or crashes on — the calls a test picks.
//!
//! ```text
//! bot / runner / expiry ──> FaultyStore ──> the real store (DynamoDB on the emulator, memory, …)
//!                           counts calls, conflicts; fails the n-th call of an operation
//! ```
//!
//! A fault names an operation, optionally a key (the script of a load or save, the
//! job id of a claim or finish), how many matching calls to let through first, and
//! how many to fail after that:
//!
//! ```ignore
//! store.inject(Fault::on(Op::ReplaceGrant).skip(1).times(1)); // the 2nd replace fails
//! store.inject(Fault::on(Op::Claim).key(&job_id).always());  // a poison job
//! store.inject(Fault::on(Op::Finish).crash());                // the worker dies here
//! ```

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use opkit::BoxFuture;
use opkit::access::Grant;
use opkit::audit::AuditRecord;
use opkit::ids::{Role, UserId};
use opkit::store::{
    AuditLog, Claim, EncodedState, GrantStore, JobClaims, StateStore, Store, StoreError, Versioned,
};
use serde_json::Value;

/// One operation of the store ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Op {
    /// [`StateStore::load`] (key: the script).
    Load,
    /// [`StateStore::save`] (key: the script).
    Save,
    /// [`GrantStore::grants_for`] (key: the user).
    GrantsFor,
    /// [`GrantStore::grants_with_role`] (key: the role).
    GrantsWithRole,
    /// [`GrantStore::all_grants`].
    AllGrants,
    /// [`GrantStore::put_grant`] (key: the user).
    PutGrant,
    /// [`GrantStore::remove_grants`] (key: the user).
    RemoveGrants,
    /// [`GrantStore::replace_grant`] (key: the user).
    ReplaceGrant,
    /// [`GrantStore::grants_ended_by`].
    GrantsEndedBy,
    /// [`AuditLog::append`] (key: the user).
    Append,
    /// [`AuditLog::recent`].
    Recent,
    /// [`JobClaims::claim`] (key: the job id).
    Claim,
    /// [`JobClaims::finish`] (key: the job id).
    Finish,
    /// [`JobClaims::release`] (key: the job id).
    Release,
}

/// What an injected fault does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultKind {
    /// Fails the call with [`StoreError::Backend`] and this detail, without
    /// calling the real store.
    Fail(String),
    /// Panics: the process running the call dies there (a Lambda's `panic =
    /// "abort"`), without calling the real store.
    Crash,
}

/// The detail of a throttled DynamoDB request, as the DynamoDB persister words it
/// once the SDK has given up.
pub const THROTTLED: &str =
    "DynamoDB PutItem: ThrottlingException: Rate of requests exceeds the allowed throughput.";

/// One fault to inject.
#[derive(Debug)]
pub struct Fault {
    op: Op,
    key: Option<String>,
    skip: usize,
    times: usize,
    kind: FaultKind,
    seen: AtomicUsize,
}

impl Fault {
    /// A fault on `op`: the first matching call fails with a throttling error.
    pub fn on(op: Op) -> Self {
        Self {
            op,
            key: None,
            skip: 0,
            times: 1,
            kind: FaultKind::Fail(THROTTLED.to_string()),
            seen: AtomicUsize::new(0),
        }
    }

    /// Only calls about `key` match (a script, a user, a job id).
    pub fn key(mut self, key: &str) -> Self {
        self.key = Some(key.to_string());
        self
    }

    /// Lets the first `n` matching calls through.
    pub fn skip(mut self, n: usize) -> Self {
        self.skip = n;
        self
    }

    /// Fails `n` matching calls (after the skipped ones).
    pub fn times(mut self, n: usize) -> Self {
        self.times = n;
        self
    }

    /// Fails every matching call (after the skipped ones).
    pub fn always(self) -> Self {
        self.times(usize::MAX)
    }

    /// Fails with this detail instead.
    pub fn failing(mut self, detail: &str) -> Self {
        self.kind = FaultKind::Fail(detail.to_string());
        self
    }

    /// Crashes (panics) instead of failing.
    pub fn crash(mut self) -> Self {
        self.kind = FaultKind::Crash;
        self
    }

    /// Whether this call (of `op`, about `key`) is one to break; counts it.
    fn hits(&self, op: Op, key: Option<&str>) -> bool {
        if op != self.op || (self.key.is_some() && self.key.as_deref() != key) {
            return false;
        }
        let n = self.seen.fetch_add(1, Ordering::SeqCst);
        n >= self.skip && n - self.skip < self.times
    }
}

/// A store that counts calls and conflicts and injects [`Fault`]s; see the
/// [module docs](self).
pub struct FaultyStore {
    inner: Arc<dyn Store>,
    calls: Mutex<BTreeMap<Op, usize>>,
    conflicts: AtomicUsize,
    injected: AtomicUsize,
    faults: Mutex<Vec<Arc<Fault>>>,
}

impl FaultyStore {
    /// Wraps `inner`; no fault until one is injected.
    pub fn new(inner: Arc<dyn Store>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            calls: Mutex::new(BTreeMap::new()),
            conflicts: AtomicUsize::new(0),
            injected: AtomicUsize::new(0),
            faults: Mutex::new(Vec::new()),
        })
    }

    /// Adds a fault (it applies from the next call on).
    pub fn inject(&self, fault: Fault) {
        self.faults.lock().expect("faults").push(Arc::new(fault));
    }

    /// Removes every fault.
    pub fn heal(&self) {
        self.faults.lock().expect("faults").clear();
    }

    /// How many calls of `op` were made (failed ones included).
    pub fn calls(&self, op: Op) -> usize {
        self.calls
            .lock()
            .expect("calls")
            .get(&op)
            .copied()
            .unwrap_or(0)
    }

    /// How many saves met an optimistic-concurrency conflict (each one is a command
    /// run again on fresh state).
    pub fn conflicts(&self) -> usize {
        self.conflicts.load(Ordering::SeqCst)
    }

    /// How many calls were failed or crashed on purpose.
    pub fn injected(&self) -> usize {
        self.injected.load(Ordering::SeqCst)
    }

    /// Counts the call; the fault to apply, if one hits it.
    fn before(&self, op: Op, key: Option<&str>) -> Result<(), StoreError> {
        *self.calls.lock().expect("calls").entry(op).or_default() += 1;
        let faults = self.faults.lock().expect("faults").clone();
        let Some(fault) = faults.iter().find(|f| f.hits(op, key)) else {
            return Ok(());
        };
        self.injected.fetch_add(1, Ordering::SeqCst);
        match &fault.kind {
            FaultKind::Fail(detail) => Err(StoreError::Backend(detail.clone())),
            FaultKind::Crash => panic!("injected crash in {op:?} ({key:?})"),
        }
    }

    fn call<'a, T: Send + 'a>(
        &'a self,
        op: Op,
        key: Option<&'a str>,
        run: impl FnOnce() -> BoxFuture<'a, Result<T, StoreError>> + Send + 'a,
    ) -> BoxFuture<'a, Result<T, StoreError>> {
        Box::pin(async move {
            self.before(op, key)?;
            run().await
        })
    }
}

impl StateStore for FaultyStore {
    fn load<'a>(&'a self, script: &'a str) -> BoxFuture<'a, Result<Versioned<Value>, StoreError>> {
        self.call(Op::Load, Some(script), move || self.inner.load(script))
    }

    fn save<'a>(
        &'a self,
        script: &'a str,
        state: &'a EncodedState,
        expected: u64,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(async move {
            self.before(Op::Save, Some(script))?;
            let saved = self.inner.save(script, state, expected).await;
            if saved.as_ref().is_err_and(StoreError::is_conflict) {
                self.conflicts.fetch_add(1, Ordering::SeqCst);
            }
            saved
        })
    }
}

impl GrantStore for FaultyStore {
    fn grants_for<'a>(&'a self, user: &'a UserId) -> BoxFuture<'a, Result<Vec<Grant>, StoreError>> {
        self.call(Op::GrantsFor, Some(user.as_str()), move || {
            self.inner.grants_for(user)
        })
    }

    fn grants_with_role<'a>(
        &'a self,
        role: &'a Role,
    ) -> BoxFuture<'a, Result<Vec<Grant>, StoreError>> {
        self.call(Op::GrantsWithRole, Some(role.as_str()), move || {
            self.inner.grants_with_role(role)
        })
    }

    fn all_grants(&self) -> BoxFuture<'_, Result<Vec<Grant>, StoreError>> {
        self.call(Op::AllGrants, None, move || self.inner.all_grants())
    }

    fn put_grant<'a>(&'a self, grant: &'a Grant) -> BoxFuture<'a, Result<(), StoreError>> {
        self.call(Op::PutGrant, Some(grant.user.as_str()), move || {
            self.inner.put_grant(grant)
        })
    }

    fn remove_grants<'a>(
        &'a self,
        user: &'a UserId,
        role: &'a Role,
    ) -> BoxFuture<'a, Result<Vec<Grant>, StoreError>> {
        self.call(Op::RemoveGrants, Some(user.as_str()), move || {
            self.inner.remove_grants(user, role)
        })
    }

    fn replace_grant<'a>(
        &'a self,
        old: &'a Grant,
        new: Option<&'a Grant>,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        self.call(Op::ReplaceGrant, Some(old.user.as_str()), move || {
            self.inner.replace_grant(old, new)
        })
    }

    fn grants_ended_by(&self, now: DateTime<Utc>) -> BoxFuture<'_, Result<Vec<Grant>, StoreError>> {
        self.call(Op::GrantsEndedBy, None, move || {
            self.inner.grants_ended_by(now)
        })
    }
}

impl AuditLog for FaultyStore {
    fn append<'a>(&'a self, record: &'a AuditRecord) -> BoxFuture<'a, Result<(), StoreError>> {
        self.call(Op::Append, Some(record.user.as_str()), move || {
            self.inner.append(record)
        })
    }

    fn recent<'a>(
        &'a self,
        user: Option<&'a UserId>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<AuditRecord>, StoreError>> {
        self.call(Op::Recent, user.map(UserId::as_str), move || {
            self.inner.recent(user, limit)
        })
    }
}

impl JobClaims for FaultyStore {
    fn claim<'a>(
        &'a self,
        job_id: &'a str,
        now: DateTime<Utc>,
        lease: chrono::Duration,
    ) -> BoxFuture<'a, Result<Claim, StoreError>> {
        self.call(Op::Claim, Some(job_id), move || {
            self.inner.claim(job_id, now, lease)
        })
    }

    fn finish_with_reply<'a>(
        &'a self,
        job_id: &'a str,
        now: DateTime<Utc>,
        keep: chrono::Duration,
        reply: Option<&'a opkit::store::CommittedReply>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.call(Op::Finish, Some(job_id), move || {
            self.inner.finish_with_reply(job_id, now, keep, reply)
        })
    }

    fn release<'a>(&'a self, job_id: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        self.call(Op::Release, Some(job_id), move || {
            self.inner.release(job_id)
        })
    }
}

// One step after another, so that each step's own faults (Save, Append,
// Finish) still fire where a test injects them.
impl opkit::store::Commits for FaultyStore {
    fn commit<'a>(
        &'a self,
        commit: opkit::store::Commit<'a>,
    ) -> BoxFuture<'a, Result<Option<u64>, StoreError>> {
        Box::pin(opkit::store::commit_in_steps(self, commit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opkit::store::memory::MemoryStore;

    #[tokio::test]
    async fn faults_hit_the_chosen_calls_and_every_call_is_counted() {
        let store = FaultyStore::new(Arc::new(MemoryStore::new()));
        store.inject(Fault::on(Op::Load).key("queue").skip(1).times(2));
        let outcomes: Vec<bool> = [
            store.load("queue").await.is_ok(),
            store.load("other").await.is_ok(),
            store.load("queue").await.is_ok(),
            store.load("queue").await.is_ok(),
            store.load("queue").await.is_ok(),
        ]
        .to_vec();
        assert_eq!(outcomes, [true, true, false, false, true]);
        assert_eq!((store.calls(Op::Load), store.injected()), (5, 2));
        let err = store.load("queue").await;
        assert!(err.is_ok());
        store.inject(Fault::on(Op::Load).always().failing("down"));
        assert!(matches!(store.load("x").await, Err(StoreError::Backend(d)) if d == "down"));
        store.heal();
        assert!(store.load("x").await.is_ok());
    }

    #[tokio::test]
    async fn without_faults_it_keeps_the_store_contract() {
        // Every call is forwarded as it came (a reply committed with a job's
        // finish included), so a test through the wrapper sees the store's own
        // behaviour.
        let store = FaultyStore::new(Arc::new(MemoryStore::new()));
        opkit::store::contract::check_all(&*store).await;
    }

    #[tokio::test]
    async fn conflicts_are_counted() {
        let store = FaultyStore::new(Arc::new(MemoryStore::new()));
        let state = EncodedState::new("s", serde_json::json!({"n": 1})).unwrap();
        assert_eq!(store.save("s", &state, 0).await.unwrap(), 1);
        assert!(store.save("s", &state, 0).await.unwrap_err().is_conflict());
        assert_eq!(store.conflicts(), 1);
    }
}
