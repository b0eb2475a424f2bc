//! In-memory persister, for tests and throwaway sessions. Nothing survives the process.

use std::collections::HashMap;
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

/// Keeps everything in process memory.
#[derive(Debug, Default)]
pub struct MemoryStore {
    states: Mutex<HashMap<String, (u64, Value)>>,
    grants: Mutex<Vec<Grant>>,
    audit: Mutex<Vec<AuditRecord>>,
    jobs: Mutex<HashMap<String, JobRecord>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
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
        self.audit.lock().expect("audit lock").push(record.clone());
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
        let outcome = JobRecord::claim_outcome(jobs.get(job_id), now);
        if outcome == Claim::Acquired {
            let record = JobRecord {
                status: JobStatus::Running,
                until: now + lease,
                reply: None,
            };
            jobs.insert(job_id.to_string(), record);
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
        let mut jobs = self.jobs.lock().expect("job lock");
        jobs.insert(job_id.to_string(), record);
        ready(Ok(()))
    }

    fn release<'a>(&'a self, job_id: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        let mut jobs = self.jobs.lock().expect("job lock");
        if jobs
            .get(job_id)
            .is_some_and(|r| r.status == JobStatus::Running)
        {
            jobs.remove(job_id);
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

    #[tokio::test]
    async fn memory_store_honours_the_store_contract() {
        crate::store::contract::check_all(&MemoryStore::new()).await;
    }
}
