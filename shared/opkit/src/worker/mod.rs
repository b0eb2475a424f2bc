//! The work path: run a job and deliver its reply; and the queues that feed it.
//!
//! A job runs only if its envelope is authentic: [`JobRunner`] opens every
//! envelope with [`Job::decode`] and the envelope key, and an envelope that was not
//! sealed with it — whoever could send to the queue wrote it — is dropped, never
//! retried, logged, and audited as [`Outcome::Forged`] under the caller it claims;
//! nothing in it runs.
//!
//! A job runs once, whichever way it came and however often: every path that
//! runs jobs goes through [`run_claimed`], which first takes the job's claim in
//! the store ([`JobClaims`]). [`JobRunner::run_once`] is that, with a [`Worker`]
//! running the command and delivering its reply; the worker Lambda and
//! `opkit worker` call it for each message of a batch
//! ([`JobRunner::process_batch`], which also reports the messages worth a retry),
//! and [`InlineQueue`], the in-process stand-in for SQS that `opkit serve` uses,
//! for each job put on it. A redelivery — SQS's, or Slack sending an event again
//! (the job id comes from the `event_id`) — finds the claim and does not run.
//!
//! The records of a batch run side by side ([`JobRunner::process_batch`]); a
//! record is started only while its invocation's deadline is far enough
//! ([`crate::timing`]): the records not started go back to the queue untouched.

use crate::slack::web::post_or_tell_owner;
use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use tracing::Instrument;
use uuid::Uuid;

use crate::audit::Outcome;
use crate::engine::bot::{Bot, Request, short_ref};
use crate::job::{EnvelopeError, EnvelopeKey, Job, QueueMessage, ReplyTo, Source};
use crate::slack::{ChannelPoster, PostError, Reply, ReplyPoster, Visibility, WebApiError};
use crate::store::{Claim, JobClaims, Store};

/// Why a reply could not be delivered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeliveryError {
    /// Posting to the response URL failed.
    #[error("posting to the response_url failed: {0}")]
    ResponseUrl(#[from] PostError),
    /// Posting with the Web API failed.
    #[error("posting to the channel failed: {0}")]
    Channel(#[from] WebApiError),
    /// The reply goes to a channel, but no bot token is configured.
    #[error("the reply goes to a channel, but SLACK_BOT_TOKEN is not set")]
    NoChannelPoster,
}

/// Runs jobs and delivers their replies.
pub struct Worker {
    bot: Bot,
    replies: Arc<dyn ReplyPoster>,
    channels: Option<Arc<dyn ChannelPoster>>,
    progress_after: std::time::Duration,
}

/// How long a command may take before a "working on it…" message is posted.
pub const PROGRESS_AFTER: std::time::Duration = std::time::Duration::from_secs(2);

impl Worker {
    /// A worker posting slash-command replies with `replies` and channel messages
    /// with `channels` (needs a bot token; `None` without one).
    pub fn new(
        bot: Bot,
        replies: Arc<dyn ReplyPoster>,
        channels: Option<Arc<dyn ChannelPoster>>,
    ) -> Self {
        Self {
            bot,
            replies,
            channels,
            progress_after: PROGRESS_AFTER,
        }
    }

    /// How long a command may run before a progress message is posted (default
    /// [`PROGRESS_AFTER`]; zero posts one before every command).
    pub fn with_progress_after(mut self, after: std::time::Duration) -> Self {
        self.progress_after = after;
        self
    }

    /// The bot.
    pub fn bot(&self) -> &Bot {
        &self.bot
    }

    /// Runs the job's command and delivers the reply. The command runs once: a
    /// delivery that fails after the poster's own retries is reported, not re-run.
    /// Only [`run_claimed`] calls it (through [`JobRunner`]): nothing runs a job
    /// without its claim.
    ///
    /// A command that takes longer than the progress threshold gets a "working on
    /// it…" message first, which the result then replaces (`chat.update` in a
    /// channel, `replace_original` on a button's `response_url`). A slash
    /// command needs none: its ack already says so.
    pub(crate) async fn process(&self, job: &Job) -> Result<Reply, DeliveryError> {
        let run = self.run(job);
        tokio::pin!(run);
        let placeholder = if self.progress_after.is_zero() {
            self.post_progress(job).await
        } else {
            tokio::select! {
                reply = &mut run => {
                    self.deliver(job, &reply).await?;
                    return Ok(reply);
                }
                () = tokio::time::sleep(self.progress_after) => self.post_progress(job).await,
            }
        };
        let reply = run.await;
        match placeholder {
            Some(Progress::Message { channel, ts }) => {
                self.finish_progress(job, &channel, &ts, &reply).await?
            }
            Some(Progress::Replaceable) => self.deliver(job, &reply.clone().replacing()).await?,
            None => self.deliver(job, &reply).await?,
        }
        Ok(reply)
    }

    async fn run(&self, job: &Job) -> Reply {
        match &job.source {
            Source::Interaction {
                decision,
                pending_id,
            } => self.bot.decide(&job.caller, pending_id, *decision).await,
            Source::Schedule { name } => {
                let (name, run_as) = (name.clone(), job.caller.user.clone());
                let present = move |reply| crate::schedule::posted_reply(reply, &name, &run_as);
                let request = job.request();
                let run = self.bot.handle_unattended(&request);
                crate::engine::deferred::presenting(present, run).await
            }
            _ => self.bot.handle(&job.request()).await,
        }
    }

    /// Posts "working on it…" where the reply will go; `None` when there is no
    /// point (a slash command was already acked) or it could not be posted.
    async fn post_progress(&self, job: &Job) -> Option<Progress> {
        let working = Reply::text("Working on it…");
        match (&job.source, &job.reply_to) {
            (Source::Interaction { .. }, ReplyTo::ResponseUrl { url }) => {
                let working = working.replacing();
                match self.replies.post(url, &working).await {
                    Ok(()) => Some(Progress::Replaceable),
                    Err(e) => {
                        tracing::warn!(error = %e, "could not post a progress message");
                        None
                    }
                }
            }
            (_, ReplyTo::Channel { channel, thread_ts }) => {
                let poster = self.channels.as_ref()?;
                let working = working.with_visibility(Visibility::InChannel);
                match poster
                    .post_message(channel.as_str(), &working, thread_ts.as_deref())
                    .await
                {
                    Ok(posted) => Some(Progress::Message {
                        channel: posted.channel,
                        ts: posted.ts,
                    }),
                    Err(e) => {
                        tracing::warn!(error = %e, "could not post a progress message");
                        None
                    }
                }
            }
            _ => None,
        }
    }

    /// Replaces the progress message with the result; an ephemeral result goes
    /// to the asker alone and the progress message just says it is done.
    async fn finish_progress(
        &self,
        job: &Job,
        channel: &str,
        ts: &str,
        reply: &Reply,
    ) -> Result<(), DeliveryError> {
        let poster = self
            .channels
            .as_ref()
            .ok_or(DeliveryError::NoChannelPoster)?;
        if reply.visibility == Visibility::Ephemeral && !channel.starts_with('D') {
            self.deliver(job, reply).await?;
            poster.update(channel, ts, &Reply::text("Done.")).await?;
        } else {
            poster.update(channel, ts, reply).await?;
        }
        Ok(())
    }

    /// Delivers a reply for `job`: to its `response_url`, or in its channel — only
    /// to the asker when the reply is ephemeral (a direct message is private anyway).
    /// Either way an in-channel reply goes into the thread it was asked in (the
    /// caller's [`thread_ts`](crate::engine::command::Caller::thread_ts); see
    /// [`Reply::in_thread`] for what stays out of it).
    pub async fn deliver(&self, job: &Job, reply: &Reply) -> Result<(), DeliveryError> {
        match &job.reply_to {
            ReplyTo::ResponseUrl { url } => {
                let reply = reply.clone().in_thread(job.caller.thread_ts.as_deref());
                Ok(self.replies.post(url, &reply).await?)
            }
            ReplyTo::Channel { channel, thread_ts } => {
                let poster = self
                    .channels
                    .as_ref()
                    .ok_or(DeliveryError::NoChannelPoster)?;
                let thread_ts = thread_ts.as_deref();
                let direct = channel.as_str().starts_with('D');
                if reply.visibility == Visibility::Ephemeral && !direct {
                    let user = job.caller.user.as_str();
                    poster
                        .post_ephemeral(channel.as_str(), user, reply, thread_ts)
                        .await?;
                } else if let Source::Schedule { name } = &job.source {
                    // A scheduled command's answer goes where the bot may not be:
                    // then its owner (who the job runs as) hears of it by DM,
                    // once for a streak of refused runs.
                    let owner = &job.caller.user;
                    crate::schedule::post_answer(&self.bot, &**poster, name, channel, reply, owner)
                        .await?;
                } else {
                    let owner = &job.caller.user;
                    post_or_tell_owner(&**poster, channel.as_str(), reply, thread_ts, owner)
                        .await?;
                }
                Ok(())
            }
        }
    }
}

/// A "working on it…" message that the result will replace.
enum Progress {
    /// A channel message, replaced with `chat.update`.
    Message {
        /// Where.
        channel: String,
        /// Its id.
        ts: String,
    },
    /// A `response_url` message, replaced with `replace_original`.
    Replaceable,
}

/// How long a claim keeps others off a job: [`crate::timing::LEASE_SECS`], longer
/// than every delivery SQS makes of its message, so a job whose runner died
/// half-way is not started again (it ends in the dead-letter queue).
pub const LEASE: Duration = Duration::seconds(crate::timing::LEASE_SECS as i64);

/// A batch starts a record only while at least this much time remains before its
/// deadline: [`crate::timing::START_MARGIN_SECS`].
pub const START_MARGIN: Duration = Duration::seconds(crate::timing::START_MARGIN_SECS as i64);

/// How long a finished job is remembered (at least the queue's retention, and
/// longer than Slack goes on retrying an event): four days.
pub const KEEP: Duration = Duration::days(4);

/// What came of [`run_claimed`] when nothing went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claimed<T> {
    /// The claim was ours: the job ran, and this is what it gave.
    Ran(T),
    /// The job had already run to the end: it did not run again.
    AlreadyDone,
}

/// The one way a job runs: claims `job` in `claims` for `lease`, runs `run` only
/// if the claim is ours, then marks the job done (remembered for `keep`), so
/// that no delivery of the same job — a queue's retry, Slack sending an event
/// again, a second process on the same store — runs it again. `bot` tells the
/// time.
///
/// The job's audit records and its "done" mark are held back for one closing
/// commit (`Bot::run_deferred`): with its state save, if it changes one, else
/// when it ends. A stateful command costs four store requests: this claim, the
/// caller's grants, the state, the commit.
///
/// A claim another runner holds is [`Retry::HeldElsewhere`]; a store that cannot
/// be reached is [`Retry::Claim`]. In both cases `run` is not started.
pub async fn run_claimed<T>(
    claims: &dyn JobClaims,
    bot: &Bot,
    job: &Job,
    lease: Duration,
    keep: Duration,
    run: impl Future<Output = T>,
) -> Result<Claimed<T>, Retry> {
    match run_delivered(claims, bot, job, None, lease, keep, run).await? {
        Delivered::Claimed(claimed) => Ok(claimed),
        // Only a delivery that names itself finds its own reply.
        Delivered::Unposted(_) => Ok(Claimed::AlreadyDone),
    }
}

/// What came of [`run_delivered`].
pub(crate) enum Delivered<T> {
    /// As [`run_claimed`].
    Claimed(Claimed<T>),
    /// This very queue message ran the job before, and its runner committed the
    /// reply but may have died before posting it: the reply, to post now.
    Unposted(Reply),
}

/// [`run_claimed`] for a job that `delivery` — a queue message's id, the same
/// on each of its deliveries — brings, when the queue will deliver it again if
/// this runner dies. A stateful command's closing commit marks its job done
/// before the reply is posted, so it keeps the reply with the job, naming the
/// message ([`crate::store::CommittedReply`]); when a later delivery of that same
/// message finds it, the runner died between the commit and the post (or before
/// the message was deleted): [`Delivered::Unposted`], and the caller posts it.
/// Another message of the same job (Slack sending an event again) finds the job
/// done, as ever.
pub(crate) async fn run_delivered<T>(
    claims: &dyn JobClaims,
    bot: &Bot,
    job: &Job,
    delivery: Option<&str>,
    lease: Duration,
    keep: Duration,
    run: impl Future<Output = T>,
) -> Result<Delivered<T>, Retry> {
    let id = job.id.to_string();
    match claims.claim(&id, bot.now(), lease).await {
        Ok(Claim::Acquired) => {}
        Ok(Claim::AlreadyDone) => return Ok(Delivered::Claimed(Claimed::AlreadyDone)),
        Ok(Claim::Answered(committed)) => {
            if delivery != Some(committed.delivery.as_str()) {
                return Ok(Delivered::Claimed(Claimed::AlreadyDone));
            }
            return match serde_json::from_str::<Reply>(&committed.reply) {
                Ok(reply) => Ok(Delivered::Unposted(reply)),
                Err(e) => {
                    tracing::error!(job_id = %id, error = %e, "a committed reply does not read back");
                    Ok(Delivered::Claimed(Claimed::AlreadyDone))
                }
            };
        }
        Ok(Claim::HeldElsewhere { .. }) => return Err(Retry::HeldElsewhere(id)),
        Err(e) => {
            return Err(Retry::Claim {
                job: id,
                error: e.to_string(),
            });
        }
    }
    // The claim is in the bot's own store (always so but in tests): the "done"
    // mark goes in the command's closing commit, with its state and audit.
    let same_store = std::ptr::addr_eq(claims as *const dyn JobClaims, Arc::as_ptr(bot.store()));
    if same_store {
        let finish = crate::engine::deferred::Finish {
            job_id: id,
            keep,
            delivery: delivery.map(str::to_string),
        };
        let out = bot.run_deferred(Some(finish), run).await;
        return Ok(Delivered::Claimed(Claimed::Ran(out)));
    }
    let out = bot.run_deferred(None, run).await;
    if let Err(e) = claims.finish(&id, bot.now(), keep).await {
        tracing::error!(job_id = %id, error = %e, "could not mark the job done");
    }
    Ok(Delivered::Claimed(Claimed::Ran(out)))
}

/// Why a message should come back later.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Retry {
    /// Another worker holds the job's claim (it may have died; its lease will run out).
    #[error("job {0} is being run by another worker")]
    HeldElsewhere(String),
    /// The store could not be reached to claim the job.
    #[error("could not claim job {job}: {error}")]
    Claim {
        /// The job.
        job: String,
        /// What the store said.
        error: String,
    },
}

/// What came of one record of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Record {
    /// Done with: SQS may delete it.
    Done,
    /// Its job's claim is held (maybe by another record of the batch).
    Held,
    /// Not started, or worth a retry: it goes back to the queue.
    Retry,
}

/// Runs queued jobs exactly once each, whatever the queue redelivers — and only
/// jobs whose envelope was sealed with its key.
pub struct JobRunner {
    worker: Arc<Worker>,
    claims: Arc<dyn Store>,
    key: EnvelopeKey,
    /// How long a claim keeps every other delivery off a job ([`LEASE`]); a job
    /// whose runner died mid-way can run again only when this runs out.
    pub lease: Duration,
    /// How long a finished job is remembered (at least the queue's retention).
    pub keep: Duration,
    /// The receive count of a message's last delivery before the dead-letter queue.
    pub max_receives: u32,
    /// How many records of a batch run at once ([`BATCH_CONCURRENCY`]).
    pub concurrency: usize,
}

/// How many records of a batch run at once: the worker's whole batch
/// (`BatchSize` in `template.yaml`), so no record waits behind another's slow API.
pub const BATCH_CONCURRENCY: usize = 10;

impl JobRunner {
    /// A runner opening envelopes with `key` and claiming jobs in `claims` (the
    /// bot's store): the lease of [`LEASE`], finished jobs remembered four days,
    /// [`crate::timing::MAX_RECEIVES`] deliveries.
    pub fn new(worker: Arc<Worker>, claims: Arc<dyn Store>, key: EnvelopeKey) -> Self {
        Self {
            worker,
            claims,
            key,
            lease: LEASE,
            keep: KEEP,
            max_receives: crate::timing::MAX_RECEIVES,
            concurrency: BATCH_CONCURRENCY,
        }
    }

    /// The worker.
    pub fn worker(&self) -> &Worker {
        &self.worker
    }

    /// Handles a batch, its records side by side (at most [`JobRunner::concurrency`]
    /// at once); returns the ids of the messages to retry, in the batch's order.
    ///
    /// Running records together is safe: each job runs under its own claim, and
    /// two commands on one script's state meet at the optimistic save, where the
    /// loser runs again on fresh state. Ten commands each waiting a second on a
    /// slow API take about a second together, not ten.
    ///
    /// With a `deadline` (the Lambda invocation's, by the bot's clock), a record is
    /// started only while at least [`START_MARGIN`] remains: a record not started
    /// by then is returned for retry as it is — not opened, not claimed — and runs
    /// in a later invocation.
    pub async fn process_batch(
        &self,
        messages: &[QueueMessage],
        deadline: Option<DateTime<Utc>>,
    ) -> Vec<String> {
        use futures_util::stream::{self, StreamExt};
        // By index, not by reference: a closure taking a `&QueueMessage` would
        // make the batch's future not `Send` for every lifetime (`tokio::spawn`).
        let mut outcomes: Vec<(usize, Record)> = stream::iter(0..messages.len())
            .map(|i| async move { (i, self.start_in_time(&messages[i], deadline).await) })
            .buffer_unordered(self.concurrency.max(1))
            .collect()
            .await;
        outcomes.sort_unstable_by_key(|&(i, _)| i);
        // A job held elsewhere may be held by another record of this very batch (a
        // replayed slash command is the same job twice): once the others are
        // done, each is tried once more, and a job done meanwhile is dropped.
        for (i, outcome) in &mut outcomes {
            if *outcome == Record::Held {
                *outcome = self.start_in_time(&messages[*i], deadline).await;
            }
        }
        outcomes
            .into_iter()
            .filter(|(_, outcome)| *outcome != Record::Done)
            .map(|(i, _)| messages[i].id.clone())
            .collect()
    }

    /// Runs one record of a batch if there is still time to.
    async fn start_in_time(
        &self,
        message: &QueueMessage,
        deadline: Option<DateTime<Utc>>,
    ) -> Record {
        if let Some(deadline) = deadline {
            let left = deadline - self.worker.bot().now();
            if left < START_MARGIN {
                tracing::warn!(
                    message_id = %message.id,
                    left_ms = left.num_milliseconds(),
                    "too little time left to start: the record goes back to the queue"
                );
                return Record::Retry;
            }
        }
        let span = tracing::info_span!("message", message_id = %message.id);
        match self.process_message(message).instrument(span).await {
            Ok(()) => Record::Done,
            Err(e) => {
                tracing::warn!(message_id = %message.id, error = %e, receive_count = message.receive_count, "will retry");
                match e {
                    Retry::HeldElsewhere(_) => Record::Held,
                    _ => Record::Retry,
                }
            }
        }
    }

    /// Handles one message. `Ok` means "delete it": done, a duplicate, a forged
    /// envelope (audited), or one that can never succeed (logged, not retried
    /// forever).
    pub async fn process_message(&self, message: &QueueMessage) -> Result<(), Retry> {
        let last_delivery = message.receive_count >= self.max_receives;
        self.open_and_run(&message.id, true, &message.body, last_delivery)
            .await
    }

    /// Opens `body` with the key, then runs its job through [`JobRunner::run_once`].
    /// A forged envelope is audited and dropped; an unreadable one is dropped.
    /// `redelivered`: the queue delivers the message again if this runner dies
    /// (SQS does; the in-process queue does not).
    async fn open_and_run(
        &self,
        message_id: &str,
        redelivered: bool,
        body: &str,
        last_delivery: bool,
    ) -> Result<(), Retry> {
        let Some(job) = self.open(message_id, body).await else {
            return Ok(());
        };
        let delivery = redelivered.then_some(message_id);
        self.run_once_delivered(&job, delivery, last_delivery).await
    }

    /// Opens `body` with the key: `None` for a forged envelope (audited and
    /// dropped) or an unreadable one (logged and dropped).
    async fn open(&self, message_id: &str, body: &str) -> Option<Job> {
        match Job::decode(body, &self.key) {
            Ok(job) => Some(job),
            Err(e) if e.is_forgery() => {
                self.refuse_forgery(message_id, body, &e).await;
                None
            }
            Err(e) => {
                tracing::error!(message_id, error = %e, "unusable job envelope dropped");
                None
            }
        }
    }

    /// Logs and audits a forged envelope. The record names what the envelope
    /// claims — its caller, text and job id, believed by nobody — so that
    /// `audit <@them>` shows who was impersonated; the command is not run.
    async fn refuse_forgery(&self, message_id: &str, body: &str, error: &EnvelopeError) {
        let claims = claims::Claims::read(body);
        tracing::error!(
            message_id,
            error = %error,
            claimed_user = %claims.caller.user,
            claimed_job = claims.job_id.as_deref().unwrap_or("none"),
            "forged job envelope dropped: nothing ran"
        );
        let claimed_job = claims
            .job_id
            .map(|id| format!(", claiming to be job {id}"))
            .unwrap_or_default();
        let request = Request {
            correlation_id: Uuid::new_v4(),
            caller: claims.caller,
            text: claims.text,
        };
        let reason = format!("{error} (queue message {message_id}{claimed_job}); not run");
        self.worker
            .bot()
            .audit(&request, None, Outcome::Forged { reason })
            .await;
    }

    /// Runs one job through [`run_claimed`]: claimed, run by the worker (the
    /// reply delivered), marked done. `Ok` when it ran or had already run; an
    /// `Err` says why it should come back later. On the `last_delivery` (no
    /// retry will follow), a store that cannot be reached is told to the user.
    pub async fn run_once(&self, job: &Job, last_delivery: bool) -> Result<(), Retry> {
        self.run_once_delivered(job, None, last_delivery).await
    }

    /// [`JobRunner::run_once`] for the queue message `delivery` (its id), which
    /// the queue delivers again if this runner dies ([`run_delivered`]): a reply
    /// that an earlier delivery of it committed but may not have posted is
    /// posted now, and the command is not run again.
    async fn run_once_delivered(
        &self,
        job: &Job,
        delivery: Option<&str>,
        last_delivery: bool,
    ) -> Result<(), Retry> {
        let run = async {
            if let Err(e) =
                crate::metrics::job_done(self.worker.bot(), job, self.worker.process(job).await)
            {
                // The command ran; running it again to re-deliver would repeat its effect.
                tracing::error!(job_id = %job.id, error = %e, "reply not delivered");
            }
        };
        let claims: &dyn JobClaims = &*self.claims;
        let bot = self.worker.bot();
        let (lease, keep) = (self.lease, self.keep);
        // On the heap: the whole job's future, which each caller's frame would
        // otherwise hold (and, in a debug build, copy) while polling it.
        let claimed = Box::pin(run_delivered(claims, bot, job, delivery, lease, keep, run));
        match claimed.await {
            Ok(Delivered::Claimed(Claimed::Ran(()))) => Ok(()),
            Ok(Delivered::Claimed(Claimed::AlreadyDone)) => {
                tracing::info!(job_id = %job.id, "duplicate delivery of a finished job ignored");
                Ok(())
            }
            Ok(Delivered::Unposted(reply)) => {
                self.post_unposted(job, &reply).await;
                Ok(())
            }
            Err(retry @ Retry::Claim { .. }) => {
                if last_delivery {
                    self.tell_unavailable(job).await;
                }
                Err(retry)
            }
            Err(retry) => Err(retry),
        }
    }

    /// Posts a reply that an earlier delivery of the job's message committed and
    /// may not have posted (its runner died), then drops it from the job's record,
    /// so a further delivery does not post it again. A post that fails is logged,
    /// as a first one is: the command is not run again to answer.
    async fn post_unposted(&self, job: &Job, reply: &Reply) {
        tracing::warn!(job_id = %job.id, "posting the reply of a job whose runner stopped after committing it");
        if let Err(e) = self.worker.deliver(job, reply).await {
            tracing::error!(job_id = %job.id, error = %e, "reply not delivered");
            return;
        }
        let id = job.id.to_string();
        let bot = self.worker.bot();
        if let Err(e) = self.claims.finish(&id, bot.now(), self.keep).await {
            tracing::error!(job_id = %id, error = %e, "could not mark the reply posted");
        }
    }

    /// Tells the user their command could not be run.
    async fn tell_unavailable(&self, job: &Job) {
        let reply = Reply::text(crate::mrkdwn!(
            "Sorry, I could not run {}: the bot's store is unavailable. Please try again later (ref {}).",
            crate::slack::Code::new(&job.text),
            crate::slack::Code::new(&short_ref(job.id))
        ));
        if let Err(e) = self.worker.deliver(job, &reply).await {
            tracing::error!(job_id = %job.id, error = %e, "could not tell the user their job failed");
        }
    }
}

mod claims;
mod deadline;
mod inline;
pub use deadline::INLINE_TIME_LIMIT;
pub use inline::{
    INLINE_CONCURRENCY, INLINE_LIMIT, INLINE_PER_USER, INLINE_SCHEDULED_LIMIT,
    INLINE_SCHEDULED_RUNNING, InlineQueue,
};

#[cfg(test)]
mod inline_tests;
#[cfg(test)]
mod redelivery_tests;
#[cfg(test)]
mod refusal_tests;
#[cfg(test)]
mod scheduled_tests;
#[cfg(test)]
mod tests;
