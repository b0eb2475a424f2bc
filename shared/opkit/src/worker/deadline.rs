//! The time limit of a job run in-process ([`InlineQueue`](super::InlineQueue)),
//! as Lambda's timeout limits the worker's: a job still running at its deadline —
//! an AWS call that never answers, a service that stalls — is abandoned, so that
//! it frees its runner and its user's place in the queue; the user is told what
//! that means, and it is logged, audited and counted.

use std::time::Duration;

use super::{JobRunner, Retry};
use crate::audit::Outcome;
use crate::engine::bot::short_ref;
use crate::engine::registry::Resolution;
use crate::job::{Job, Source};
use crate::slack::{Code, Reply};

/// How long a job of `opkit serve`'s in-process queue may run before it is
/// abandoned: the worker Lambda's timeout
/// ([`WORKER_TIMEOUT_SECS`](crate::timing::WORKER_TIMEOUT_SECS), 30 s), so a
/// command gets the same time locally as deployed.
pub const INLINE_TIME_LIMIT: Duration =
    Duration::from_secs(crate::timing::WORKER_TIMEOUT_SECS as u64);

/// What came of a job run with a time limit ([`JobRunner::open_and_run_within`]).
#[derive(Debug)]
pub(crate) enum Within {
    /// It ran to the end (or had run before, or its envelope was dropped).
    Done,
    /// It was not run: why (its claim held elsewhere, the store unreachable).
    NotRun(Retry),
    /// It was still running at its deadline and was abandoned: the job, for
    /// [`JobRunner::abandoned`].
    TimedOut(Box<Job>),
}

impl JobRunner {
    /// Opens `body` and runs its job once ([`JobRunner::run_once`], its last
    /// delivery: nothing will deliver it again), giving up after `limit`. Giving
    /// up drops the job's future: whatever it awaited (an AWS call, a service) is
    /// cancelled where it stands.
    pub(crate) async fn open_and_run_within(&self, body: &str, limit: Duration) -> Within {
        let Some(job) = self.open("in-process", body).await else {
            return Within::Done;
        };
        match tokio::time::timeout(limit, self.run_once(&job, true)).await {
            Ok(Ok(())) => Within::Done,
            Ok(Err(retry)) => Within::NotRun(retry),
            Err(_) => Within::TimedOut(Box::new(job)),
        }
    }

    /// After `job` was abandoned at its deadline `limit`: logs it, counts it
    /// ([`crate::metrics::job_timed_out`]), audits it as failed, marks it done
    /// (a half-done command is never started again, by a redelivery or Slack
    /// sending the event again) and tells its user — in plain words that it was
    /// stopped, and that it may have done some or all of its work. This is itself
    /// held to `limit`: a store or a Slack that does not answer cannot hold it.
    pub(crate) async fn abandoned(&self, job: &Job, limit: Duration) {
        let bot = self.worker.bot();
        let command = match bot.registry().resolve(&crate::text::tokenize(&job.text)) {
            Resolution::Matched { command, .. } => Some(command.name.clone()),
            _ => None,
        };
        tracing::error!(
            job_id = %job.id,
            user = %job.caller.user,
            command = command.as_deref().unwrap_or("unknown"),
            limit_s = limit.as_secs(),
            "job abandoned: still running at its time limit"
        );
        crate::metrics::job_timed_out(command.as_deref());
        let tell = async {
            let error = format!(
                "stopped after {} s, the time limit: it may have done some or all of its work",
                limit.as_secs()
            );
            bot.audit(
                &job.request(),
                command.as_deref(),
                Outcome::Failed { error },
            )
            .await;
            let id = job.id.to_string();
            if let Err(e) = self.claims.finish(&id, bot.now(), self.keep).await {
                tracing::error!(job_id = %id, error = %e, "could not mark the abandoned job done");
            }
            if let Err(e) = self.worker.deliver(job, &timed_out_reply(job, limit)).await {
                tracing::error!(job_id = %job.id, error = %e, "could not tell the user their job timed out");
            }
        };
        if tokio::time::timeout(limit, tell).await.is_err() {
            tracing::error!(job_id = %job.id, "could not tell the user their job timed out in time");
        }
    }
}

/// What the user hears of a job abandoned at `limit`: what was stopped, that it
/// may or may not have done its work, and what to do; a scheduled run's is
/// marked as scheduled, as its answers are.
pub(crate) fn timed_out_reply(job: &Job, limit: Duration) -> Reply {
    let text = crate::mrkdwn!(
        "Sorry, {} did not finish within {} s, so I stopped waiting for it (ref {}). \
         It may have done some or all of its work before it was stopped (a call it \
         made may still complete): check before you run it again.",
        Code::new(&job.text),
        limit.as_secs(),
        Code::new(&short_ref(job.id))
    );
    let reply = Reply::text(text);
    match &job.source {
        Source::Schedule { name } => crate::schedule::posted_reply(reply, name, &job.caller.user),
        _ => reply,
    }
}
