//! The writes a job's command holds back for its closing commit.
//!
//! While a job runs ([`crate::worker::run_claimed`] → [`Bot::run_deferred`]), its
//! audit records are logged at once but held here, not written one request each;
//! the job's "done" mark waits here too. The command's state save takes them all
//! into one [`Commit`] (DynamoDB: one `TransactWriteItems`), and whatever is left
//! when the job ends — a command that changed no state, a refusal — goes in one
//! commit then. So a stateful command costs four store requests: claim, grants,
//! state, commit.
//!
//! Nothing is lost by waiting: every record is in the log when it happens, a
//! state never changes without its records (they are one write), and a save that
//! loses its race puts them back for the next attempt. Outside a job (the shell,
//! the expiry pass's own ticks) there is nothing to hold: each write is made when
//! it happens, as before.
//!
//! The held writes live in a task-local: they belong to the job's own future,
//! which every step of the command runs inside (a batch's records, run side by
//! side, each have their own).
//!
//! [`Bot::run_deferred`]: crate::engine::bot::Bot::run_deferred
//! [`Commit`]: crate::store::Commit

use std::cell::RefCell;
use std::future::Future;

use chrono::Duration;

use crate::audit::AuditRecord;
use crate::engine::bot::Bot;
use crate::ids::UserId;
use crate::store::{Commit, JobDone, StateSave, StoreError};

tokio::task_local! {
    static HELD: RefCell<Held>;
}

/// What a running job holds back.
#[derive(Debug, Default)]
pub(crate) struct Held {
    /// Audit records, oldest first.
    pub(crate) audit: Vec<AuditRecord>,
    /// The job to mark done, and how long to remember it.
    pub(crate) finish: Option<(String, Duration)>,
}

impl Held {
    pub(crate) fn is_empty(&self) -> bool {
        self.audit.is_empty() && self.finish.is_none()
    }
}

/// Runs `run` holding its writes back; returns its output and what is still held
/// when it ends.
pub(crate) async fn holding<F: Future>(
    finish: Option<(String, Duration)>,
    run: F,
) -> (F::Output, Held) {
    let held = RefCell::new(Held {
        audit: Vec::new(),
        finish,
    });
    // On the heap: a job's future is large, and every layer that took it by
    // value (this one, the task-local's scope, the caller's) would otherwise
    // hold a copy in its stack frame while it is polled (a batch of jobs
    // overflowed a 2 MiB test thread's stack in a debug build).
    let run = Box::pin(run);
    HELD.scope(held, async move {
        let out = run.await;
        let rest = HELD.with(|held| std::mem::take(&mut *held.borrow_mut()));
        (out, rest)
    })
    .await
}

/// Holds `record` back if a job is running (`None`); gives it back to be written
/// now if not.
pub(crate) fn hold(record: AuditRecord) -> Option<AuditRecord> {
    let mut record = Some(record);
    let _ = HELD.try_with(|held| {
        if let Some(r) = record.take() {
            held.borrow_mut().audit.push(r);
        }
    });
    record
}

/// Takes everything held, to commit it with a state save; `None` outside a job.
pub(crate) fn take() -> Option<Held> {
    HELD.try_with(|held| std::mem::take(&mut *held.borrow_mut()))
        .ok()
}

/// A copy of the audit records held so far (none outside a job), oldest first.
pub(crate) fn held_audit() -> Vec<AuditRecord> {
    HELD.try_with(|held| held.borrow().audit.clone())
        .unwrap_or_default()
}

/// Takes the audit records held, not the job's finish (a save that does not end
/// the command); `None` outside a job.
pub(crate) fn take_audit() -> Option<Held> {
    HELD.try_with(|held| Held {
        audit: std::mem::take(&mut held.borrow_mut().audit),
        finish: None,
    })
    .ok()
}

/// Puts back what a commit that failed had taken, before anything held since.
pub(crate) fn put_back(mut taken: Held) {
    let _ = HELD.try_with(|held| {
        let mut held = held.borrow_mut();
        taken.audit.append(&mut held.audit);
        held.audit = taken.audit;
        if held.finish.is_none() {
            held.finish = taken.finish;
        }
    });
}

impl Bot {
    /// Saves a state: in a job, as its closing commit with what it holds and
    /// `closing` (then `true`: `closing` is written); outside one, alone.
    pub(super) async fn commit_save(
        &self,
        save: StateSave<'_>,
        closing: Option<AuditRecord>,
    ) -> Result<bool, StoreError> {
        let store = self.store();
        // Only the save that ends the command (the one writing its outcome) marks
        // its job done: a save on the way — a confirmation's pending entry taken
        // before the command runs — must not, or a crash after it would leave a
        // job marked done that never ran.
        let held = if closing.is_some() {
            take()
        } else {
            take_audit()
        };
        let Some(held) = held else {
            store.save(save.script, save.state, save.expected).await?;
            return Ok(false);
        };
        let mut audit = held.audit.clone();
        audit.extend(closing.iter().cloned());
        let commit = Commit {
            save: Some(save),
            audit: &audit,
            finish: held.finish.as_ref().map(|(job_id, keep)| JobDone {
                job_id,
                now: self.now(),
                keep: *keep,
            }),
        };
        let turn = self.commit_turn(save.script);
        let committed = {
            let _turn = turn.lock().await;
            store.commit(commit).await
        };
        match committed {
            Ok(_) => {
                if let Some(record) = &closing {
                    crate::metrics::command_outcome(record.command.as_deref(), &record.outcome);
                    record.log();
                }
                Ok(closing.is_some())
            }
            Err(e) => {
                put_back(held);
                Err(e)
            }
        }
    }

    /// Runs `run`, a job's work, holding its writes back for one closing commit
    /// ([the module docs](self)); `finish` is the job to mark done with it (its id,
    /// how long to remember it), when the bot's store holds its claim. What the
    /// work left is committed when it ends; a commit that fails is logged (every
    /// record is in the log already), as a failed audit write always was.
    pub(crate) async fn run_deferred<T>(
        &self,
        finish: Option<(String, chrono::Duration)>,
        run: impl std::future::Future<Output = T>,
    ) -> T {
        let (out, rest) = holding(finish, run).await;
        if rest.is_empty() {
            return out;
        }
        let commit = Commit {
            save: None,
            audit: &rest.audit,
            finish: rest.finish.as_ref().map(|(job_id, keep)| JobDone {
                job_id,
                now: self.now(),
                keep: *keep,
            }),
        };
        if let Err(e) = self.store().commit(commit).await {
            let job = rest.finish.as_ref().map_or("none", |(id, _)| id.as_str());
            tracing::error!(error = %e, job_id = job, records = rest.audit.len(), "could not write the job's audit records and mark it done");
        }
        out
    }

    /// The newest audit records first, optionally only `user`'s, at most `limit`:
    /// the store's, after the records the running job still holds for its
    /// closing commit (so `audit` shows its own "requested").
    pub async fn recent_audit(
        &self,
        user: Option<&UserId>,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let held = held_audit();
        let mut records = crate::store::newest_first(held.iter(), user, limit);
        if records.len() < limit {
            let stored = self.store().recent(user, limit - records.len()).await?;
            records.extend(stored);
        }
        Ok(records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Outcome;

    fn record(text: &str) -> AuditRecord {
        AuditRecord {
            id: uuid::Uuid::now_v7(),
            correlation_id: uuid::Uuid::new_v4(),
            at: chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
            user: crate::ids::UserId::parse("UA").unwrap(),
            channel: None,
            team: None,
            text: text.into(),
            command: None,
            outcome: Outcome::Requested,
        }
    }

    #[tokio::test]
    async fn outside_a_job_nothing_is_held() {
        assert!(hold(record("a")).is_some());
        assert!(take().is_none());
    }

    #[tokio::test]
    async fn a_failed_commit_puts_back_what_it_took_in_order() {
        let ((), rest) = holding(Some(("job".into(), Duration::days(1))), async {
            assert!(hold(record("a")).is_none());
            let taken = take().unwrap();
            assert_eq!(taken.audit.len(), 1);
            assert!(hold(record("b")).is_none());
            put_back(taken);
        })
        .await;
        let texts: Vec<&str> = rest.audit.iter().map(|r| r.text.as_str()).collect();
        assert_eq!(texts, ["a", "b"]);
        assert_eq!(rest.finish.unwrap().0, "job");
    }
}
