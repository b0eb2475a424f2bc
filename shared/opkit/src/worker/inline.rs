//! [`InlineQueue`]: the in-process stand-in for SQS that `opkit serve` uses.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};

use super::deadline::{INLINE_TIME_LIMIT, Within};
use super::{JobRunner, Retry};
use crate::BoxFuture;
use crate::ids::UserId;
use crate::job::{EnvelopeKey, Job, JobQueue, QueueError, Source};
use crate::slack::{Reply, UserText};
use uuid::Uuid;

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
///
/// It is fair: at most [`INLINE_PER_USER`] of one user's jobs wait or run at
/// once, so one user's slow commands (a declared command's 30 s timeout, an AWS
/// call that hangs) cannot hold every runner while everyone else's wait; past it
/// that user is told [`QueueError::UserBusy`], and everyone else is served.
///
/// A refused job's user is always told: a slash command's by the ack, which
/// the ingress builds from the error; a message's (a mention, a DM) or a click's
/// by the queue itself, which posts the refusal where the job's answer would
/// have gone — their ack shows nothing (see [`InlineQueue::enqueue`]). A job
/// already waiting or running here (Slack sending an event again while it is)
/// is taken without being queued again: it runs once, and its user is not told
/// they are busy for it.
///
/// Scheduled runs have a lane of their own: they never count against their
/// owner's places (an owner's due schedules do not refuse what the owner types,
/// nor are they refused for it) and are never refused for a per-user limit; at
/// most [`INLINE_SCHEDULED_RUNNING`] run at once — the rest wait their turn — and
/// the lane holds at most [`INLINE_SCHEDULED_LIMIT`], past which a run is refused
/// with [`QueueError::Busy`] (the expiry pass then says it did not run).
///
/// Every job has a time limit, [`INLINE_TIME_LIMIT`] (the worker Lambda's
/// timeout): one still running then is abandoned — its runner and its user's
/// place freed, its user told that it was stopped and may have done part of its
/// work — so a call that never answers cannot lock its user out, or, with a few
/// users, stop the bot.
#[derive(Clone)]
pub struct InlineQueue {
    tx: mpsc::Sender<Queued>,
    key: EnvelopeKey,
    limit: usize,
    /// Jobs queued or running.
    in_flight: Arc<watch::Sender<usize>>,
    user_limit: usize,
    /// Each user's jobs queued or running (a user with none has no entry).
    per_user: Arc<Mutex<HashMap<UserId, usize>>>,
    /// How long each job may run.
    time_limit: Duration,
    /// Scheduled runs queued or running.
    scheduled: Arc<AtomicUsize>,
    /// The ids of the jobs queued or running.
    held: Arc<Mutex<HashSet<Uuid>>>,
    /// Delivers the refusals the ack cannot show ([`InlineQueue::enqueue`]).
    runner: Arc<JobRunner>,
    /// Places for those deliveries, at most [`INLINE_CONCURRENCY`] at once.
    telling: Arc<Semaphore>,
}

/// A job on its way to a runner: its sealed envelope, its place, and how long
/// it may run.
struct Queued {
    body: String,
    place: Place,
    time_limit: Duration,
    _id: HeldId,
}

/// Takes a job's id out of [`InlineQueue`]'s held ids when its task ends.
struct HeldId {
    id: Uuid,
    held: Arc<Mutex<HashSet<Uuid>>>,
}

impl Drop for HeldId {
    fn drop(&mut self) {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        held.remove(&self.id);
    }
}

/// Whose count a queued job is in; dropping it counts the job out.
enum Place {
    /// A job someone sent (a command, a message, a click): its user's.
    Sent { _user: PerUser },
    /// A scheduled run: the scheduled lane's.
    Scheduled { _lane: ScheduledPlace },
}

/// How many scheduled runs of an [`InlineQueue`] run at once (as many as one
/// user's jobs may); the others wait for one of them to end.
pub const INLINE_SCHEDULED_RUNNING: usize = INLINE_PER_USER;

/// How many scheduled runs an [`InlineQueue`] holds (waiting or running) before
/// it refuses one as busy: a quarter of [`INLINE_LIMIT`].
pub const INLINE_SCHEDULED_LIMIT: usize = INLINE_LIMIT / 4;

/// Counts a scheduled run out of the scheduled lane's count when its task ends.
struct ScheduledPlace(Arc<AtomicUsize>);

impl Drop for ScheduledPlace {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// How many jobs of an [`InlineQueue`] run at once; the rest wait their turn.
pub const INLINE_CONCURRENCY: usize = 32;

/// How many jobs `opkit serve`'s [`InlineQueue`] holds (waiting or running)
/// before it answers that the bot is busy.
pub const INLINE_LIMIT: usize = 1024;

/// How many of one user's jobs an [`InlineQueue`] holds (waiting or running)
/// before it tells that user to wait for them: a quarter of the runners, so one
/// user can never hold more than a quarter of them.
pub const INLINE_PER_USER: usize = INLINE_CONCURRENCY / 4;

/// Counts a job out of its user's count when its task ends, however it ends.
struct PerUser {
    user: UserId,
    counts: Arc<Mutex<HashMap<UserId, usize>>>,
}

impl Drop for PerUser {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = counts.get_mut(&self.user) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.user);
            }
        }
    }
}

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
        let (tx, mut rx) = mpsc::channel::<Queued>(limit);
        let in_flight = Arc::new(watch::Sender::new(0));
        let counter = in_flight.clone();
        let key = runner.key.clone();
        let teller = runner.clone();
        let running = Arc::new(Semaphore::new(INLINE_CONCURRENCY));
        let scheduled_running = Arc::new(Semaphore::new(INLINE_SCHEDULED_RUNNING));
        tokio::spawn(async move {
            while let Some(queued) = rx.recv().await {
                let runner = runner.clone();
                let done = InFlight(counter.clone());
                if matches!(queued.place, Place::Scheduled { .. }) {
                    // It waits for its lane on its own task: the jobs sent after
                    // it do not wait behind it.
                    let (lane, running) = (scheduled_running.clone(), running.clone());
                    tokio::spawn(async move {
                        let (Ok(lane), Ok(permit)) =
                            (lane.acquire_owned().await, running.acquire_owned().await)
                        else {
                            return;
                        };
                        run(&runner, queued, [permit, lane], done).await;
                    });
                    continue;
                }
                let Ok(permit) = running.clone().acquire_owned().await else {
                    return;
                };
                tokio::spawn(async move { run(&runner, queued, [permit], done).await });
            }
        });
        Self {
            tx,
            key,
            limit,
            in_flight,
            user_limit: INLINE_PER_USER,
            per_user: Arc::default(),
            time_limit: INLINE_TIME_LIMIT,
            scheduled: Arc::default(),
            held: Arc::default(),
            runner: teller,
            telling: Arc::new(Semaphore::new(INLINE_CONCURRENCY)),
        }
    }

    /// The same queue, its jobs abandoned after `limit` instead of
    /// [`INLINE_TIME_LIMIT`].
    #[must_use]
    pub fn time_limit(mut self, limit: Duration) -> Self {
        self.time_limit = limit;
        self
    }

    /// The same queue, holding at most `limit` jobs of one user (at least one)
    /// instead of [`INLINE_PER_USER`].
    #[must_use]
    pub fn per_user(mut self, limit: usize) -> Self {
        self.user_limit = limit.max(1);
        self
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
    /// Takes `job`, or refuses it ([`QueueError::Busy`], [`QueueError::UserBusy`])
    /// and — for a job whose ack cannot show a refusal ([`told_by_the_queue`]: a
    /// mention or DM, a click) — posts the refusal to its user where its answer
    /// would have gone, in the background (the ack does not wait for Slack).
    fn enqueue<'a>(&'a self, job: &'a Job) -> BoxFuture<'a, Result<(), QueueError>> {
        let admitted = self.admit(job);
        if let Err(refused) = &admitted {
            self.tell_refused(job, refused);
        }
        Box::pin(std::future::ready(admitted))
    }
}

/// Whether the queue itself tells the user of a refused job of `source`: a
/// message (mention, DM) or a click, whose ack Slack does not show. A slash
/// command's ack carries its refusal; a scheduled run's is said by the expiry
/// pass; a local one has no Slack to tell.
fn told_by_the_queue(source: &Source) -> bool {
    matches!(
        source,
        Source::Event { .. } | Source::Interaction { .. } | Source::Button
    )
}

impl InlineQueue {
    /// Counts `job` in — into its place (its user's count, or the scheduled
    /// lane's), then the queue's — and sends it.
    fn admit(&self, job: &Job) -> Result<(), QueueError> {
        let Some(id) = self.hold_id(job.id) else {
            tracing::info!(job_id = %job.id, "a second delivery of a job still waiting or running here ignored");
            return Ok(());
        };
        let place = match &job.source {
            Source::Schedule { .. } => Place::Scheduled {
                _lane: self.scheduled_place()?,
            },
            _ => Place::Sent {
                _user: self.user_place(&job.caller.user)?,
            },
        };
        // Counted in before it is sent, and only below the limit: the channel
        // (of `limit` places) always has room for a job counted in. A job not
        // taken drops `place`, which counts it out again.
        let limit = self.limit;
        let admitted = self.in_flight.send_if_modified(|n| {
            if *n >= limit {
                return false;
            }
            *n += 1;
            true
        });
        if !admitted {
            return Err(QueueError::Busy { limit });
        }
        self.tx
            .try_send(Queued {
                body: job.encode(&self.key),
                place,
                time_limit: self.time_limit,
                _id: id,
            })
            .map_err(|e| {
                self.in_flight.send_modify(|n| *n -= 1);
                QueueError::Unavailable(e.to_string())
            })
    }

    /// Holds `id` as queued or running; `None` if it is already.
    fn hold_id(&self, id: Uuid) -> Option<HeldId> {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        held.insert(id).then(|| HeldId {
            id,
            held: self.held.clone(),
        })
    }

    /// Posts `refused` to `job`'s user if its ack cannot show it
    /// ([`told_by_the_queue`]): at most [`INLINE_CONCURRENCY`] such posts at
    /// once — past that, a burst of refusals is logged, not posted.
    fn tell_refused(&self, job: &Job, refused: &QueueError) {
        if !told_by_the_queue(&job.source) {
            return;
        }
        let Ok(place) = self.telling.clone().try_acquire_owned() else {
            tracing::warn!(job_id = %job.id, "too many refusals being told at once: this one is only logged");
            return;
        };
        let what = match job.source {
            Source::Event { .. } => "your message",
            _ => "that click",
        };
        let reply = Reply::text(UserText::new(refused.tell_user(what)));
        let (runner, job) = (self.runner.clone(), job.clone());
        tokio::spawn(async move {
            let _place = place;
            if let Err(e) = runner.worker().deliver(&job, &reply).await {
                tracing::error!(job_id = %job.id, error = %e, "could not tell the user their job was refused");
            }
        });
    }

    /// One of `user`'s places, or [`QueueError::UserBusy`] when they hold all.
    fn user_place(&self, user: &UserId) -> Result<PerUser, QueueError> {
        let mut counts = self.per_user.lock().unwrap_or_else(|e| e.into_inner());
        let held = counts.entry(user.clone()).or_insert(0);
        if *held >= self.user_limit {
            return Err(QueueError::UserBusy {
                limit: self.user_limit,
            });
        }
        *held += 1;
        Ok(PerUser {
            user: user.clone(),
            counts: self.per_user.clone(),
        })
    }

    /// A place in the scheduled lane, or [`QueueError::Busy`] when it holds
    /// [`INLINE_SCHEDULED_LIMIT`] runs.
    fn scheduled_place(&self) -> Result<ScheduledPlace, QueueError> {
        let limit = INLINE_SCHEDULED_LIMIT;
        self.scheduled
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .map_err(|_| QueueError::Busy { limit })?;
        Ok(ScheduledPlace(self.scheduled.clone()))
    }
}

/// Runs one queued job on `runner`, holding `permits` (its runner's, and its
/// lane's) and its place until it ends — or, if it is abandoned at its time
/// limit, only until then: its user is told with both free.
async fn run<const N: usize>(
    runner: &JobRunner,
    queued: Queued,
    permits: [OwnedSemaphorePermit; N],
    done: InFlight,
) {
    // Counted out of `idle` last: a graceful stop waits for the user to be told
    // of a job abandoned at its deadline.
    let _done = done;
    // Its id stays held to the end: a delivery of it meanwhile is not queued.
    let Queued {
        body,
        place,
        time_limit,
        _id: _held,
    } = queued;
    match runner.open_and_run_within(&body, time_limit).await {
        Within::Done => {}
        Within::NotRun(Retry::HeldElsewhere(id)) => {
            tracing::info!(job_id = %id, "a second delivery of a running job ignored");
        }
        Within::NotRun(e) => tracing::error!(error = %e, "job not run"),
        Within::TimedOut(job) => {
            drop(permits);
            drop(place);
            runner.abandoned(&job, time_limit).await;
        }
    }
}
