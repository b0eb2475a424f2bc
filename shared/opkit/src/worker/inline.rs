//! [`InlineQueue`]: the in-process stand-in for SQS that `opkit serve` uses.

use std::sync::Arc;

use tokio::sync::{mpsc, watch};

use super::{JobRunner, Retry};
use crate::BoxFuture;
use crate::job::{EnvelopeKey, Job, JobQueue, QueueError};

/// An in-process queue: jobs go to a background task that runs each on its own
/// task, as SQS's worker does — sealed with the runner's envelope key (a random
/// one per process is enough: nothing outside the process reads this queue),
/// opened by the runner, then claimed, so a job put on it twice (Slack retrying an
/// event) runs once. The local stand-in for SQS.
///
/// It is bounded, so that a burst the work cannot keep up with costs no more
/// memory than the bound: at most `limit` jobs are waiting or running at once, and
/// at most [`INLINE_CONCURRENCY`] of them run. A job put on a full queue is
/// refused with [`QueueError::Busy`] — the ack tells the user the bot is busy —
/// and never silently dropped.
#[derive(Clone)]
pub struct InlineQueue {
    tx: mpsc::Sender<String>,
    key: EnvelopeKey,
    limit: usize,
    /// Jobs queued or running.
    in_flight: Arc<watch::Sender<usize>>,
}

/// How many jobs of an [`InlineQueue`] run at once; the rest wait their turn.
pub const INLINE_CONCURRENCY: usize = 32;

/// How many jobs `opkit serve`'s [`InlineQueue`] holds (waiting or running)
/// before it answers that the bot is busy.
pub const INLINE_LIMIT: usize = 1024;

/// Counts a job out of [`InlineQueue::idle`]'s count when its task ends, however
/// it ends.
struct InFlight(Arc<watch::Sender<usize>>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}

impl InlineQueue {
    /// Starts the background task; at most `limit` jobs wait or run at once
    /// (at least one), [`INLINE_CONCURRENCY`] of them running. Jobs run on
    /// `runner`, claimed in its store.
    pub fn start(runner: Arc<JobRunner>, limit: usize) -> Self {
        let limit = limit.max(1);
        let (tx, mut rx) = mpsc::channel::<String>(limit);
        let in_flight = Arc::new(watch::Sender::new(0));
        let counter = in_flight.clone();
        let key = runner.key.clone();
        let running = Arc::new(tokio::sync::Semaphore::new(INLINE_CONCURRENCY));
        tokio::spawn(async move {
            while let Some(body) = rx.recv().await {
                let Ok(permit) = running.clone().acquire_owned().await else {
                    return;
                };
                let runner = runner.clone();
                let done = InFlight(counter.clone());
                tokio::spawn(async move {
                    let _done = done;
                    let _permit = permit;
                    // No queue will deliver it again: this is its last delivery.
                    match runner.open_and_run("in-process", false, &body, true).await {
                        Ok(()) => {}
                        Err(Retry::HeldElsewhere(id)) => {
                            tracing::info!(job_id = %id, "a second delivery of a running job ignored");
                        }
                        Err(e) => tracing::error!(error = %e, "job not run"),
                    }
                });
            }
        });
        Self {
            tx,
            key,
            limit,
            in_flight,
        }
    }

    /// How many jobs are waiting or running now.
    pub fn in_flight(&self) -> usize {
        *self.in_flight.borrow()
    }

    /// Waits until every job put on the queue so far has finished (tests; a
    /// graceful stop).
    pub async fn idle(&self) {
        let mut count = self.in_flight.subscribe();
        // The sender lives in `self`: the channel cannot close while we wait.
        let _ = count.wait_for(|n| *n == 0).await;
    }
}

impl JobQueue for InlineQueue {
    fn enqueue<'a>(&'a self, job: &'a Job) -> BoxFuture<'a, Result<(), QueueError>> {
        // Counted in before it is sent, and only below the limit: the channel
        // (of `limit` places) always has room for a job counted in.
        let limit = self.limit;
        let admitted = self.in_flight.send_if_modified(|n| {
            if *n >= limit {
                return false;
            }
            *n += 1;
            true
        });
        let result = if admitted {
            self.tx.try_send(job.encode(&self.key)).map_err(|e| {
                self.in_flight.send_modify(|n| *n -= 1);
                QueueError::Unavailable(e.to_string())
            })
        } else {
            Err(QueueError::Busy { limit })
        };
        Box::pin(std::future::ready(result))
    }
}
