//! The work path: run a job and deliver its reply; and the in-process queue that
//! feeds it locally.
//!
//! [`Worker::process`] is shared by `opkit serve` (through [`InlineQueue`]) and by
//! the worker Lambda (through SQS), so what works locally works deployed.

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::BoxFuture;
use crate::bot::Bot;
use crate::job::{Job, ReplyTo};
use crate::slack::{ChannelPoster, PostError, Reply, ReplyPoster, WebApiError};

/// Why a job could not be put on the queue.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueueError {
    /// The queue is full or closed.
    #[error("the job queue is unavailable: {0}")]
    Unavailable(String),
    /// The queue service refused or failed (detail for the log).
    #[error("the job queue failed: {0}")]
    Backend(String),
}

/// Somewhere to put jobs: an in-process channel locally, SQS when deployed.
pub trait JobQueue: Send + Sync {
    /// Puts one job on the queue.
    fn enqueue<'a>(&'a self, job: &'a Job) -> BoxFuture<'a, Result<(), QueueError>>;
}

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
}

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
        }
    }

    /// The bot.
    pub fn bot(&self) -> &Bot {
        &self.bot
    }

    /// Runs the job's command and delivers the reply. The command runs once: a
    /// delivery that fails after the poster's own retries is reported, not re-run.
    pub async fn process(&self, job: &Job) -> Result<Reply, DeliveryError> {
        let reply = self.bot.handle(&job.request()).await;
        self.deliver(&job.reply_to, &reply).await?;
        Ok(reply)
    }

    /// Delivers a reply.
    pub async fn deliver(&self, to: &ReplyTo, reply: &Reply) -> Result<(), DeliveryError> {
        match to {
            ReplyTo::ResponseUrl { url } => Ok(self.replies.post(url, reply).await?),
            ReplyTo::Channel { channel, thread_ts } => {
                let poster = self
                    .channels
                    .as_ref()
                    .ok_or(DeliveryError::NoChannelPoster)?;
                poster
                    .post_message(channel.as_str(), reply, thread_ts.as_deref())
                    .await?;
                Ok(())
            }
        }
    }
}

/// An in-process queue: jobs go to a background task that runs each on its own
/// task. The local stand-in for SQS.
#[derive(Clone)]
pub struct InlineQueue {
    tx: mpsc::Sender<Job>,
}

impl InlineQueue {
    /// Starts the background task; at most `capacity` jobs wait at once.
    pub fn start(worker: Arc<Worker>, capacity: usize) -> Self {
        let (tx, mut rx) = mpsc::channel::<Job>(capacity);
        tokio::spawn(async move {
            while let Some(job) = rx.recv().await {
                let worker = worker.clone();
                tokio::spawn(async move {
                    if let Err(e) = worker.process(&job).await {
                        tracing::error!(job_id = %job.id, error = %e, "reply not delivered");
                    }
                });
            }
        });
        Self { tx }
    }
}

impl JobQueue for InlineQueue {
    fn enqueue<'a>(&'a self, job: &'a Job) -> BoxFuture<'a, Result<(), QueueError>> {
        let result = self
            .tx
            .try_send(job.clone())
            .map_err(|e| QueueError::Unavailable(e.to_string()));
        Box::pin(std::future::ready(result))
    }
}
