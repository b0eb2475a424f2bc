//! The queue between the ack path and the work path, as a port: SQS when
//! deployed ([`crate::sqs`]), an in-process channel locally
//! ([`crate::worker::InlineQueue`]).

use crate::BoxFuture;
use crate::job::Job;

/// Why a job could not be put on the queue.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueueError {
    /// The queue is closed.
    #[error("the job queue is unavailable: {0}")]
    Unavailable(String),
    /// The queue holds as many jobs as it may ([`crate::worker::InlineQueue`]'s
    /// limit): the job was not taken, and the user is told the bot is busy.
    #[error("the job queue is full ({limit} jobs waiting or running)")]
    Busy {
        /// How many jobs the queue holds at most.
        limit: usize,
    },
    /// The caller already has `limit` jobs waiting or running
    /// ([`crate::worker::INLINE_PER_USER`]): this one was not taken, and they
    /// are told to wait for those.
    #[error("the caller already has {limit} jobs waiting or running")]
    UserBusy {
        /// How many of one user's jobs the queue holds at most.
        limit: usize,
    },
    /// The queue service refused or failed (detail for the log).
    #[error("the job queue failed: {0}")]
    Backend(String),
}

impl QueueError {
    /// Whether the job was refused because the queue is busy ([`QueueError::Busy`],
    /// [`QueueError::UserBusy`]) rather than because the queue failed: sending it
    /// again soon would be refused again, and the user is told
    /// ([`crate::worker::InlineQueue`] posts the refusal of a message or a click
    /// itself; a slash command's ack carries it).
    pub fn is_busy(&self) -> bool {
        matches!(self, QueueError::Busy { .. } | QueueError::UserBusy { .. })
    }

    /// What the user is told when their command or click was not queued: that the
    /// bot is busy when the queue is full, else that it could not be queued.
    /// `what` names it ("your command", "that click").
    pub fn tell_user(&self, what: &str) -> String {
        match self {
            QueueError::Busy { .. } => {
                format!(
                    "Sorry, I'm too busy to take {what} right now; please try again in a moment."
                )
            }
            QueueError::UserBusy { limit } => format!(
                "Sorry, you already have {limit} commands waiting or running; I did not take {what}. \
                 Please try again when one of them has finished."
            ),
            _ => format!("Sorry, I could not queue {what}; please try again in a moment."),
        }
    }
}

/// Somewhere to put jobs: an in-process channel locally, SQS when deployed.
pub trait JobQueue: Send + Sync {
    /// Puts one job on the queue.
    fn enqueue<'a>(&'a self, job: &'a Job) -> BoxFuture<'a, Result<(), QueueError>>;
}

/// One message as received from a queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueMessage {
    /// The queue's message id (what a partial batch failure names).
    pub id: String,
    /// The receipt handle, to delete the message (unused by the Lambda runtime).
    pub receipt: String,
    /// The body: a job envelope.
    pub body: String,
    /// How many times the message has been received, this time included.
    pub receive_count: u32,
}
