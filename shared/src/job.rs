//! The job envelope: everything the worker needs, as it crosses the queue.
//!
//! The ingress turns a verified Slack request into one [`Job`]; the worker turns
//! it back into a [`Request`] for the bot and delivers the reply to
//! [`ReplyTo`]. The envelope is versioned: a worker refuses (and does not retry)
//! an envelope it cannot read.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::bot::Request;
use crate::command::Caller;
use crate::ids::{ChannelId, IdError, TeamId, UserId};
use crate::slack::SlashCommand;

/// The envelope version this build writes and reads.
pub const JOB_VERSION: u32 = 1;

/// Where a job came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    /// A slash command such as `/catbot`.
    SlashCommand {
        /// The command, with its slash.
        command: String,
    },
    /// A mention or a direct message (Events API).
    Event {
        /// Slack's event id, unique per event (retries share it).
        event_id: String,
    },
    /// A scheduled run.
    Schedule {
        /// The schedule's name.
        name: String,
    },
    /// Typed locally (`opkit shell`, `opkit say`).
    Local,
}

/// Where the reply goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ReplyTo {
    /// A slash command's `response_url`.
    ResponseUrl {
        /// The URL.
        url: String,
    },
    /// A channel, optionally in a thread (`chat.postMessage`).
    Channel {
        /// The channel.
        channel: ChannelId,
        /// The thread to answer in.
        #[serde(default)]
        thread_ts: Option<String>,
    },
}

/// One command to run, as queued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// Envelope version ([`JOB_VERSION`]).
    pub v: u32,
    /// Unique per job; also the command's correlation id.
    pub id: Uuid,
    /// When the ingress accepted it.
    pub received_at: DateTime<Utc>,
    /// Where it came from.
    pub source: Source,
    /// Who asked, and where.
    pub caller: Caller,
    /// The command text.
    pub text: String,
    /// Where the reply goes.
    pub reply_to: ReplyTo,
    /// Slack's trigger id, valid for 3 s after the request (for opening modals).
    #[serde(default)]
    pub trigger_id: Option<String>,
}

/// Why an envelope is unusable. Never worth a retry.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// Not JSON, or not a job.
    #[error("the job envelope does not parse: {0}")]
    Malformed(#[from] serde_json::Error),
    /// Written by a newer or older build.
    #[error("job envelope version {0} is not supported (this build reads {JOB_VERSION})")]
    Version(u32),
    /// A field holds an invalid id.
    #[error("the request carries an invalid id: {0}")]
    Id(#[from] IdError),
}

impl Job {
    /// The job for a verified slash command.
    pub fn from_slash_command(
        cmd: &SlashCommand,
        now: DateTime<Utc>,
    ) -> Result<Self, EnvelopeError> {
        Ok(Self {
            v: JOB_VERSION,
            id: Uuid::new_v4(),
            received_at: now,
            source: Source::SlashCommand {
                command: cmd.command.clone(),
            },
            caller: Caller {
                user: UserId::parse(&cmd.user_id)?,
                channel: Some(ChannelId::parse(&cmd.channel_id)?),
                team: Some(TeamId::parse(&cmd.team_id)?),
            },
            text: cmd.text.clone(),
            reply_to: ReplyTo::ResponseUrl {
                url: cmd.response_url.clone(),
            },
            trigger_id: Some(cmd.trigger_id.clone()),
        })
    }

    /// Serialises the envelope for the queue.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).expect("a job always serialises")
    }

    /// Reads an envelope from the queue, checking its version.
    pub fn decode(body: &str) -> Result<Self, EnvelopeError> {
        #[derive(Deserialize)]
        struct Versioned {
            v: u32,
        }
        let Versioned { v } = serde_json::from_str(body)?;
        if v != JOB_VERSION {
            return Err(EnvelopeError::Version(v));
        }
        Ok(serde_json::from_str(body)?)
    }

    /// The bot request this job carries.
    pub fn request(&self) -> Request {
        Request {
            correlation_id: self.id,
            caller: self.caller.clone(),
            text: self.text.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slash() -> SlashCommand {
        let body = "token=t&team_id=T1&team_domain=d&channel_id=C1&channel_name=ops&user_id=U1\
                    &user_name=al&command=%2Fcatbot&text=queue+join+perf\
                    &response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2F1&trigger_id=9.9.9";
        SlashCommand::parse(body.as_bytes()).unwrap()
    }

    #[test]
    fn a_slash_command_becomes_a_job_that_round_trips() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let job = Job::from_slash_command(&slash(), now).unwrap();
        assert_eq!(job.text, "queue join perf");
        assert_eq!(job.caller.user.as_str(), "U1");
        assert_eq!(
            job.reply_to,
            ReplyTo::ResponseUrl {
                url: "https://hooks.slack.com/commands/1".into()
            }
        );
        let decoded = Job::decode(&job.encode()).unwrap();
        assert_eq!(decoded, job);
        assert_eq!(decoded.request().correlation_id, job.id);
    }

    #[test]
    fn unusable_envelopes_are_refused_with_a_reason() {
        assert!(matches!(
            Job::decode("nope"),
            Err(EnvelopeError::Malformed(_))
        ));
        assert!(matches!(
            Job::decode("{\"v\":1}"),
            Err(EnvelopeError::Malformed(_))
        ));
        let now = DateTime::from_timestamp(0, 0).unwrap();
        let mut job = Job::from_slash_command(&slash(), now).unwrap();
        job.v = 2;
        assert!(matches!(
            Job::decode(&job.encode()),
            Err(EnvelopeError::Version(2))
        ));
    }

    #[test]
    fn invalid_ids_from_slack_are_refused() {
        let mut cmd = slash();
        cmd.user_id = "not-a-user".into();
        let now = DateTime::from_timestamp(0, 0).unwrap();
        assert!(matches!(
            Job::from_slash_command(&cmd, now),
            Err(EnvelopeError::Id(_))
        ));
    }
}
