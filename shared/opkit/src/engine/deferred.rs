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
//! The closing commit marks the job done before its reply is posted, so it keeps
//! the reply too ([`crate::store::CommittedReply`]), as the user is to see it:
//! each layer between the command and the post that changes the reply (a
//! decision's line above it, a scheduled post's note) does so through
//! [`presenting`], which the commit applies as well. A runner that dies between
//! the commit and the post leaves the message on the queue, and its next
//! delivery posts that reply ([`crate::worker::run_claimed`]).
//!
//! The held writes live in a task-local: they belong to the job's own future,
//! which every step of the command runs inside (a batch's records, run side by
//! side, each have their own).
//!
//! [`Bot::run_deferred`]: crate::engine::bot::Bot::run_deferred
//! [`Commit`]: crate::store::Commit

use std::cell::RefCell;
use std::future::Future;
use std::sync::Arc;

use chrono::Duration;

use crate::audit::AuditRecord;
use crate::engine::bot::Bot;
use crate::ids::UserId;
use crate::slack::Reply;
use crate::store::{
    Commit, CommittedReply, JobDone, MAX_COMMITTED_REPLY_BYTES, StateSave, StoreError,
};

tokio::task_local! {
    static HELD: RefCell<Held>;
}

/// A change a layer makes to the reply of the command it runs ([`presenting`]).
type Presenter = Arc<dyn Fn(Reply) -> Reply + Send + Sync>;

/// The job a closing commit marks done.
#[derive(Debug, Clone)]
pub(crate) struct Finish {
    /// The job.
    pub(crate) job_id: String,
    /// How long it is remembered.
    pub(crate) keep: Duration,
    /// The queue message being run, when the queue will deliver it again if the
    /// runner dies: the reply is then committed with the job.
    pub(crate) delivery: Option<String>,
}

/// What a running job holds back.
#[derive(Default)]
pub(crate) struct Held {
    /// Audit records, oldest first.
    pub(crate) audit: Vec<AuditRecord>,
    /// The job to mark done.
    pub(crate) finish: Option<Finish>,
    /// The layers around the running command that change its reply, outermost
    /// first.
    presenters: Vec<Presenter>,
}

impl Held {
    pub(crate) fn is_empty(&self) -> bool {
        self.audit.is_empty() && self.finish.is_none()
    }
}

/// Runs `run` holding its writes back; returns its output and what is still held
/// when it ends.
pub(crate) async fn holding<F: Future>(finish: Option<Finish>, run: F) -> (F::Output, Held) {
    let held = RefCell::new(Held {
        finish,
        ..Held::default()
    });
    // On the heap: a job's future is large, and every layer that took it by
    // value (this one, the task-local's scope, the caller's) would otherwise
    // hold a copy in its stack frame while it is polled (a batch of jobs
    // overflowed a 2 MiB test thread's stack in a debug build).
    let run = Box::pin(run);
    HELD.scope(held, async move {
        let out = run.await;
        let rest = take().unwrap_or_default();
        (out, rest)
    })
    .await
}

/// Runs `inner`, and gives its reply as `present` makes it: in a job, a closing
/// commit made inside `inner` keeps the reply so made, the one the user sees.
/// Every layer between a command and the post that changes its reply goes
/// through here, so the reply a later delivery posts is the same.
pub(crate) async fn presenting<F>(
    present: impl Fn(Reply) -> Reply + Send + Sync + 'static,
    inner: F,
) -> Reply
where
    F: Future<Output = Reply>,
{
    let present: Presenter = Arc::new(present);
    let pushed = HELD
        .try_with(|held| held.borrow_mut().presenters.push(present.clone()))
        .is_ok();
    let reply = Box::pin(inner).await;
    if pushed {
        HELD.with(|held| held.borrow_mut().presenters.pop());
    }
    present(reply)
}

/// `reply` as the layers around the running command will present it.
fn presented(reply: Reply) -> Reply {
    HELD.try_with(|held| {
        held.borrow()
            .presenters
            .iter()
            .rev()
            .fold(reply.clone(), |reply, present| present(reply))
    })
    .unwrap_or(reply)
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

/// Takes the audit records and the finish held, to commit them with a state
/// save; `None` outside a job.
pub(crate) fn take() -> Option<Held> {
    HELD.try_with(|held| {
        let mut held = held.borrow_mut();
        Held {
            audit: std::mem::take(&mut held.audit),
            finish: held.finish.take(),
            presenters: Vec::new(),
        }
    })
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
        ..Held::default()
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

/// The reply to keep with a job marked done before it is posted: when a queue
/// will deliver its message again, and the reply fits an item.
fn committed_reply(finish: &Finish, reply: Option<Reply>) -> Option<CommittedReply> {
    let delivery = finish.delivery.clone()?;
    let reply = serde_json::to_string(&presented(reply?)).ok()?;
    if reply.len() > MAX_COMMITTED_REPLY_BYTES {
        tracing::warn!(job_id = %finish.job_id, bytes = reply.len(), "reply too large to keep with its job");
        return None;
    }
    Some(CommittedReply { delivery, reply })
}

impl Bot {
    /// Saves a state: in a job, as its closing commit with what it holds and
    /// `closing` (then `true`: `closing`'s record is written); outside one, alone.
    /// `closing` is the command's outcome and its reply, when this save ends it.
    pub(super) async fn commit_save(
        &self,
        save: StateSave<'_>,
        closing: Option<(AuditRecord, Option<Reply>)>,
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
        let (record, reply) = match closing {
            Some((record, reply)) => (Some(record), reply),
            None => (None, None),
        };
        let mut audit = held.audit.clone();
        audit.extend(record.iter().cloned());
        let committed_reply = held
            .finish
            .as_ref()
            .and_then(|finish| committed_reply(finish, reply));
        let commit = Commit {
            save: Some(save),
            audit: &audit,
            finish: held.finish.as_ref().map(|finish| JobDone {
                job_id: &finish.job_id,
                now: self.now(),
                keep: finish.keep,
                reply: committed_reply.as_ref(),
            }),
        };
        let turn = self.commit_turn(save.script);
        let committed = {
            let _turn = turn.lock().await;
            store.commit(commit).await
        };
        match committed {
            Ok(_) => {
                if let Some(record) = &record {
                    crate::metrics::command_outcome(record.command.as_deref(), &record.outcome);
                    record.log();
                }
                Ok(record.is_some())
            }
            Err(e) => {
                put_back(held);
                Err(e)
            }
        }
    }

    /// Runs `run`, a job's work, holding its writes back for one closing commit
    /// ([the module docs](self)); `finish` is the job to mark done with it, when
    /// the bot's store holds its claim. What the work left is committed when it
    /// ends — after its reply was posted; a commit that fails is logged (every
    /// record is in the log already), as a failed audit write always was.
    pub(crate) async fn run_deferred<T>(
        &self,
        finish: Option<Finish>,
        run: impl std::future::Future<Output = T>,
    ) -> T {
        let (out, rest) = holding(finish, run).await;
        if rest.is_empty() {
            return out;
        }
        let commit = Commit {
            save: None,
            audit: &rest.audit,
            finish: rest.finish.as_ref().map(|finish| JobDone {
                job_id: &finish.job_id,
                now: self.now(),
                keep: finish.keep,
                reply: None,
            }),
        };
        if let Err(e) = self.store().commit(commit).await {
            let job = rest.finish.as_ref().map_or("none", |f| f.job_id.as_str());
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
        let finish = Finish {
            job_id: "job".into(),
            keep: Duration::days(1),
            delivery: None,
        };
        let ((), rest) = holding(Some(finish), async {
            assert!(hold(record("a")).is_none());
            let taken = take().unwrap();
            assert_eq!(taken.audit.len(), 1);
            assert!(hold(record("b")).is_none());
            put_back(taken);
        })
        .await;
        let texts: Vec<&str> = rest.audit.iter().map(|r| r.text.as_str()).collect();
        assert_eq!(texts, ["a", "b"]);
        assert_eq!(rest.finish.unwrap().job_id, "job");
    }
}
