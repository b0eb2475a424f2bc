//! The job envelope: everything the worker needs, as it crosses the queue.
//!
//! The ingress turns a verified Slack request into one [`Job`]; the worker turns
//! it back into a [`Request`] for the bot and delivers the reply to
//! [`ReplyTo`]. The envelope is sealed (an HMAC under [`EnvelopeKey`], see
//! [`Job::encode`]) and versioned: a worker refuses (and does not retry) an
//! envelope it cannot verify or cannot read.

mod queue;
mod seal;

pub use queue::{JobQueue, QueueError, QueueMessage};
pub use seal::{EnvelopeKey, EnvelopeKeyError};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::engine::bot::Request;
use crate::engine::command::Caller;
use crate::engine::gate::{Decision, actions};
use crate::ids::{ChannelId, IdError, TeamId, UserId};
use crate::slack::{
    BlockActions, ChatKind, ChatMessage, EventCallback, ResponseUrl, ResponseUrlError, SlashCommand,
};
use crate::text::{Token, tokenize};

/// The longest command a command button carries, in characters: Slack caps a
/// button's `value` at 2,000 (Block Kit reference, "Button element").
pub const BUTTON_COMMAND_MAX: usize = 2_000;

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
    /// A click on a pending request's button.
    Interaction {
        /// What the click says.
        decision: Decision,
        /// The pending request it settles.
        pending_id: String,
    },
    /// A click on a command button ([`crate::engine::gate::actions::RUN`]): the
    /// job's text is the button's command, run as the clicker.
    Button,
}

/// Where the reply goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ReplyTo {
    /// A slash command's or a click's `response_url`.
    ResponseUrl {
        /// The URL, checked to be Slack's ([`ResponseUrl`]): a job carrying any
        /// other does not decode.
        url: ResponseUrl,
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
    /// No MAC: not a sealed envelope at all (see [`EnvelopeError::is_forgery`]).
    #[error("the job envelope is not sealed: it carries no MAC")]
    Unsealed,
    /// A MAC that is not ours for these bytes: forged, or altered after sealing.
    #[error("the job envelope's MAC does not match: forged, or altered after sealing")]
    WrongMac,
    /// Sealed with our key, but not a job this build can read.
    #[error("the job envelope does not parse: {0}")]
    Malformed(#[from] serde_json::Error),
    /// Written by a newer or older build.
    #[error("job envelope version {0} is not supported (this build reads {JOB_VERSION})")]
    Version(u32),
    /// A field holds an invalid id.
    #[error("the request carries an invalid id: {0}")]
    Id(#[from] IdError),
    /// An interaction that is not a click on one of Opkit's buttons.
    #[error("{0}")]
    Interaction(String),
    /// A `response_url` that is not Slack's: nothing will be posted to it.
    #[error(transparent)]
    ResponseUrl(#[from] ResponseUrlError),
}

impl EnvelopeError {
    /// Whether the envelope failed authentication ([`EnvelopeError::Unsealed`],
    /// [`EnvelopeError::WrongMac`]): it was not written by a holder of the key, so
    /// nothing in it can be believed, the caller it names least of all.
    pub fn is_forgery(&self) -> bool {
        matches!(self, EnvelopeError::Unsealed | EnvelopeError::WrongMac)
    }
}

impl Job {
    /// The job for a verified slash command. Its id is derived from the
    /// command's `trigger_id` (Slack makes one per invocation) with its team, user
    /// and text, so the same signed request sent again — a replay inside the
    /// signature's five minutes — is the same job, and its claim lets it run once,
    /// while two different commands never share an id.
    pub fn from_slash_command(
        cmd: &SlashCommand,
        now: DateTime<Utc>,
    ) -> Result<Self, EnvelopeError> {
        Ok(Self {
            v: JOB_VERSION,
            id: Uuid::new_v5(
                &Uuid::NAMESPACE_URL,
                format!(
                    "slack-command:{}:{}:{}:{}:{}",
                    cmd.team_id, cmd.trigger_id, cmd.user_id, cmd.command, cmd.text
                )
                .as_bytes(),
            ),
            received_at: now,
            source: Source::SlashCommand {
                command: cmd.command.clone(),
            },
            caller: Caller {
                user: UserId::parse(&cmd.user_id)?,
                channel: Some(ChannelId::parse(&cmd.channel_id)?),
                team: Some(TeamId::parse(&cmd.team_id)?),
                // Slack does not say which thread a slash command was typed in.
                thread_ts: None,
            },
            text: cmd.text.clone(),
            reply_to: ReplyTo::ResponseUrl {
                url: ResponseUrl::parse(&cmd.response_url)?,
            },
            trigger_id: Some(cmd.trigger_id.clone()),
        })
    }

    /// The job for a message to the bot (a mention or a direct message). Its id is
    /// derived from Slack's `event_id`, so a retried event is the same job and
    /// runs once. A mention's reply goes in the mention's thread.
    pub fn from_chat_message(
        event: &EventCallback,
        message: &ChatMessage,
        now: DateTime<Utc>,
    ) -> Result<Self, EnvelopeError> {
        let channel = ChannelId::parse(&message.channel)?;
        let thread_ts = match message.kind {
            ChatKind::Mention => Some(message.thread_ts.clone().unwrap_or(message.ts.clone())),
            ChatKind::Direct => message.thread_ts.clone(),
        };
        Ok(Self {
            v: JOB_VERSION,
            id: Uuid::new_v5(
                &Uuid::NAMESPACE_URL,
                format!("slack-event:{}", event.event_id).as_bytes(),
            ),
            received_at: now,
            source: Source::Event {
                event_id: event.event_id.clone(),
            },
            caller: Caller {
                user: UserId::parse(&message.user)?,
                channel: Some(channel.clone()),
                team: event.team_id.as_deref().map(TeamId::parse).transpose()?,
                thread_ts: thread_ts.clone(),
            },
            text: strip_leading_mentions(&message.text),
            reply_to: ReplyTo::Channel { channel, thread_ts },
            trigger_id: None,
        })
    }

    /// The job for a click on one of the bot's buttons. A decision's
    /// `action_id` says the [`Decision`] and its `value` names the pending
    /// request; a command button's ([`actions::RUN`]) `value` is the command,
    /// which runs as the clicker, exactly as if typed (at most
    /// [`BUTTON_COMMAND_MAX`] characters: Slack's limit on a button's value).
    /// An error for an action id that is not Opkit's, and for a click without a
    /// value or a `response_url` (one in a modal).
    ///
    /// The caller's thread ([`Caller::thread_ts`]): for a command button, the
    /// thread its message is in, or the one the message starts
    /// ([`BlockActions::reply_thread_ts`]: an alarm's notification opens its
    /// incident's thread, and what the Graph button draws goes there); for a
    /// decision, only the thread its prompt is in (a decision answers the prompt,
    /// it starts no conversation under it).
    pub fn from_block_actions(
        click: &BlockActions,
        now: DateTime<Utc>,
    ) -> Result<Self, EnvelopeError> {
        let missing =
            |what: &str| EnvelopeError::Interaction(format!("the interaction has no {what}"));
        let action = click.action().ok_or_else(|| missing("action"))?;
        let value = action.value.as_deref().filter(|v| !v.is_empty());
        let (source, text, thread_ts) = if action.action_id == actions::RUN {
            let command = value
                .filter(|v| v.chars().count() <= BUTTON_COMMAND_MAX)
                .ok_or_else(|| missing("command"))?;
            (Source::Button, command.to_string(), click.reply_thread_ts())
        } else {
            let decision = Decision::from_action(&action.action_id).ok_or_else(|| {
                EnvelopeError::Interaction(format!("unknown action `{}`", action.action_id))
            })?;
            let pending_id = value
                .filter(|v| v.len() <= 64)
                .ok_or_else(|| missing("request id"))?;
            let source = Source::Interaction {
                decision,
                pending_id: pending_id.to_string(),
            };
            (source, String::new(), click.thread_ts())
        };
        let url = click
            .response_url
            .as_deref()
            .ok_or_else(|| missing("response_url"))?;
        let url = ResponseUrl::parse(url)?;
        Ok(Self {
            v: JOB_VERSION,
            id: Uuid::new_v4(),
            received_at: now,
            source,
            caller: Caller {
                user: UserId::parse(&click.user.id)?,
                channel: click
                    .channel
                    .as_ref()
                    .map(|c| ChannelId::parse(&c.id))
                    .transpose()?,
                team: click.team_id().map(TeamId::parse).transpose()?,
                thread_ts: thread_ts.map(str::to_string),
            },
            text,
            reply_to: ReplyTo::ResponseUrl { url },
            trigger_id: click.trigger_id.clone(),
        })
    }

    /// The job for a scheduled command due at `due`: run as the schedule's
    /// identity, answered in its channel. Its id is derived from the schedule and
    /// the due time, so a pass that runs twice queues it once.
    pub fn scheduled(entry: &crate::schedule::Entry, due: DateTime<Utc>) -> Self {
        let key = format!("schedule:{}:{}", entry.name, due.timestamp());
        Self {
            v: JOB_VERSION,
            id: Uuid::new_v5(&Uuid::NAMESPACE_URL, key.as_bytes()),
            received_at: due,
            source: Source::Schedule {
                name: entry.name.clone(),
            },
            caller: Caller::in_channel(entry.run_as.clone(), entry.channel.clone()),
            text: entry.text.clone(),
            reply_to: ReplyTo::Channel {
                channel: entry.channel.clone(),
                thread_ts: None,
            },
            trigger_id: None,
        }
    }

    /// The envelope for the queue, sealed with `key`: the job's JSON and an
    /// HMAC-SHA256 of exactly those bytes. The one place a job is written for a
    /// queue ([`crate::sqs::SqsQueue`], [`crate::worker::InlineQueue`]).
    pub fn encode(&self, key: &EnvelopeKey) -> String {
        seal::seal(
            serde_json::to_string(self).expect("a job always serialises"),
            key,
        )
    }

    /// Reads an envelope from the queue: checks its MAC against `key` (in constant
    /// time, before reading anything else), then its version. The one place a job
    /// is read from a queue ([`crate::worker::JobRunner`]).
    pub fn decode(body: &str, key: &EnvelopeKey) -> Result<Self, EnvelopeError> {
        let job = seal::open(body, key).map_err(|e| match e {
            seal::Unsealed::NoMac => EnvelopeError::Unsealed,
            seal::Unsealed::WrongMac => EnvelopeError::WrongMac,
        })?;
        #[derive(Deserialize)]
        struct Versioned {
            v: u32,
        }
        let Versioned { v } = serde_json::from_str(job)?;
        if v != JOB_VERSION {
            return Err(EnvelopeError::Version(v));
        }
        Ok(serde_json::from_str(job)?)
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

/// `<@U0BOT> queue join perf` → `queue join perf`: the mention that addressed
/// the bot is not part of the command.
fn strip_leading_mentions(text: &str) -> String {
    let mut rest = text.trim_start();
    while let Some(after) = rest.strip_prefix("<@")
        && let Some(end) = after.find('>')
        && matches!(tokenize(&rest[..end + 3]).as_slice(), [Token::User { .. }])
    {
        rest = after[end + 1..].trim_start();
    }
    rest.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slash_command_sent_again_is_the_same_job() {
        let body = "token=t&team_id=T1&team_domain=x&channel_id=C1&channel_name=ops&user_name=al&user_id=U1&command=%2Fcatbot&text=whoami\
                    &response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2F1&trigger_id=1.2.abc";
        let cmd = SlashCommand::parse(body.as_bytes()).unwrap();
        let now = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let first = Job::from_slash_command(&cmd, now).unwrap();
        let replayed = Job::from_slash_command(&cmd, now + chrono::Duration::minutes(4)).unwrap();
        assert_eq!(first.id, replayed.id, "a replay is claimed as the same job");
        let other = SlashCommand::parse(body.replace("1.2.abc", "1.2.abd").as_bytes()).unwrap();
        assert_ne!(Job::from_slash_command(&other, now).unwrap().id, first.id);
        let same_trigger = SlashCommand::parse(body.replace("whoami", "help").as_bytes()).unwrap();
        assert_ne!(
            Job::from_slash_command(&same_trigger, now).unwrap().id,
            first.id,
            "another command is never taken for a replay"
        );
    }

    fn slash() -> SlashCommand {
        let body = "token=t&team_id=T1&team_domain=d&channel_id=C1&channel_name=ops&user_id=U1\
                    &user_name=al&command=%2Fcatbot&text=queue+join+perf\
                    &response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2F1&trigger_id=9.9.9";
        SlashCommand::parse(body.as_bytes()).unwrap()
    }

    /// A key for tests.
    pub(crate) fn key() -> EnvelopeKey {
        EnvelopeKey::new("test-envelope-key-0123456789abcdef").unwrap()
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
                url: ResponseUrl::parse("https://hooks.slack.com/commands/1").unwrap()
            }
        );
        let decoded = Job::decode(&job.encode(&key()), &key()).unwrap();
        assert_eq!(decoded, job);
        assert_eq!(decoded.request().correlation_id, job.id);
    }

    #[test]
    fn unusable_envelopes_are_refused_with_a_reason() {
        let sealed = |json: &str| seal::seal(json.into(), &key());
        assert!(matches!(
            Job::decode(&sealed("\"nope\""), &key()),
            Err(EnvelopeError::Malformed(_))
        ));
        assert!(matches!(
            Job::decode(&sealed("{\"v\":1}"), &key()),
            Err(EnvelopeError::Malformed(_))
        ));
        let now = DateTime::from_timestamp(0, 0).unwrap();
        let mut job = Job::from_slash_command(&slash(), now).unwrap();
        job.v = 2;
        let err = Job::decode(&job.encode(&key()), &key()).unwrap_err();
        assert!(matches!(err, EnvelopeError::Version(2)), "{err}");
        assert!(!err.is_forgery(), "ours, from another build");
    }

    #[test]
    fn envelopes_not_sealed_with_our_key_are_forgeries() {
        // GIVEN a genuine job from UEVE, and the same job made to name an admin
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let mut cmd = slash();
        cmd.user_id = "UEVE".into();
        cmd.text = "roles grant <@UEVE> admin".into();
        let job = Job::from_slash_command(&cmd, now).unwrap();
        let genuine = job.encode(&key());
        let mut as_admin = job.clone();
        as_admin.caller.user = crate::ids::UserId::parse("UADMIN").unwrap();
        let other_key = EnvelopeKey::new(&"k".repeat(32)).unwrap();
        let cases = [
            // valid JSON naming the admin, with no MAC
            (
                "no MAC",
                serde_json::to_string(&as_admin).unwrap(),
                "not sealed",
            ),
            ("junk", "{not json".to_string(), "not sealed"),
            // the sealed form, with a MAC under another key
            ("wrong key", as_admin.encode(&other_key), "does not match"),
            // a genuine envelope whose caller was changed after sealing
            (
                "tampered caller",
                genuine.replace(r#""user":"UEVE""#, r#""user":"UADMIN""#),
                "does not match",
            ),
            (
                "tampered text",
                genuine.replace("<@UEVE> admin", "<@UEVE> ops"),
                "does not match",
            ),
        ];
        for (name, body, says) in cases {
            assert_ne!(body, genuine, "{name}: the case changes something");
            // THEN each is refused as a forgery, before its job is read
            let err = Job::decode(&body, &key()).unwrap_err();
            assert!(err.is_forgery(), "{name}: {err}");
            assert!(err.to_string().contains(says), "{name}: {err}");
        }
        // AND the genuine one still opens
        assert_eq!(Job::decode(&genuine, &key()).unwrap(), job);
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

#[cfg(test)]
mod event_tests {
    use serde_json::json;

    use super::*;
    use crate::slack::EventRequest;

    fn callback(event: serde_json::Value) -> EventCallback {
        let body = json!({
            "team_id": "T1", "api_app_id": "A1", "event_id": "Ev1", "event_time": 1,
            "type": "event_callback", "event": event,
            "authorizations": [{"team_id": "T1", "user_id": "UBOT", "is_bot": true}]
        });
        match EventRequest::parse(body.to_string().as_bytes()).unwrap() {
            EventRequest::EventCallback(c) => c,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_mention_becomes_a_job_answered_in_its_thread_with_a_stable_id() {
        let cb = callback(
            json!({"type": "app_mention", "user": "U1", "text": "<@UBOT|catbot>  queue join perf",
            "channel": "C1", "ts": "100.1", "event_ts": "100.1"}),
        );
        let now = DateTime::from_timestamp(0, 0).unwrap();
        let job = Job::from_chat_message(&cb, &cb.chat_message().unwrap().unwrap(), now).unwrap();
        assert_eq!(job.text, "queue join perf");
        assert_eq!(
            job.reply_to,
            ReplyTo::Channel {
                channel: ChannelId::parse("C1").unwrap(),
                thread_ts: Some("100.1".into())
            }
        );
        assert_eq!(job.caller.thread_ts.as_deref(), Some("100.1"));
        let again = Job::from_chat_message(&cb, &cb.chat_message().unwrap().unwrap(), now).unwrap();
        assert_eq!(job.id, again.id, "a retried event is the same job");
    }

    #[test]
    fn a_direct_message_is_answered_in_place_and_keeps_later_mentions() {
        let cb = callback(
            json!({"type": "message", "channel_type": "im", "user": "U1",
            "text": "can <@U2> roles grant", "channel": "D1", "ts": "5.5"}),
        );
        let now = DateTime::from_timestamp(0, 0).unwrap();
        let job = Job::from_chat_message(&cb, &cb.chat_message().unwrap().unwrap(), now).unwrap();
        assert_eq!(job.text, "can <@U2> roles grant");
        assert_eq!(
            job.reply_to,
            ReplyTo::Channel {
                channel: ChannelId::parse("D1").unwrap(),
                thread_ts: None
            }
        );
    }

    #[test]
    fn only_leading_well_formed_mentions_are_stripped() {
        assert_eq!(strip_leading_mentions("<@U1> <@U2> help"), "help");
        assert_eq!(strip_leading_mentions("<@nope> help"), "<@nope> help");
        assert_eq!(strip_leading_mentions("<@U1>"), "");
    }
}

#[cfg(test)]
mod interaction_tests {
    use serde_json::json;

    use super::*;
    use crate::slack::Interaction;

    fn click(action_id: &str, value: &str) -> BlockActions {
        let payload = json!({
            "type": "block_actions",
            "user": {"id": "U0CA5", "username": "al", "team_id": "T3MDE"},
            "team": {"id": "T3MDE", "domain": "example"},
            "channel": {"id": "C0CA5", "name": "ops"},
            "container": {"type": "message", "message_ts": "1.2", "channel_id": "C0CA5"},
            "response_url": "https://hooks.slack.com/actions/T3MDE/1/abc",
            "trigger_id": "1.2.3",
            "actions": [{"action_id": action_id, "block_id": "b1", "type": "button",
                         "value": value, "action_ts": "1795000001.000400"}]
        });
        match Interaction::from_json(payload).unwrap() {
            Interaction::BlockActions(click) => click,
            other => panic!("{other:?}"),
        }
    }

    /// A click's envelope exactly as the ingress writes it (and wrote it before the
    /// interaction was typed): the worker must keep reading it.
    const CLICK_ENVELOPE: &str = r#"{"v":1,"id":"0191f3c2-7d4e-4cc1-9d0e-2b1c3a4d5e6f","received_at":"2026-11-15T08:00:00Z","source":{"kind":"interaction","decision":"confirm","pending_id":"p-42"},"caller":{"user":"U0CA5","channel":"C0CA5","team":"T3MDE"},"text":"","reply_to":{"kind":"response_url","url":"https://hooks.slack.com/actions/T3MDE/1/abc"},"trigger_id":"1.2.3"}"#;

    #[test]
    fn a_click_becomes_the_same_envelope_as_before() {
        // GIVEN a typed click on a confirm button
        let now = DateTime::from_timestamp(1_794_729_600, 0).unwrap();
        let mut job = Job::from_block_actions(&click("opkit:confirm", "p-42"), now).unwrap();
        // WHEN it is encoded (with the id fixed, as it is random)
        job.id = Uuid::parse_str("0191f3c2-7d4e-4cc1-9d0e-2b1c3a4d5e6f").unwrap();
        // THEN its job is byte for byte the one the worker reads, sealed
        let key = super::tests::key();
        let sealed = super::seal::seal(CLICK_ENVELOPE.into(), &key);
        assert_eq!(job.encode(&key), sealed);
        assert_eq!(Job::decode(&sealed, &key).unwrap(), job);
        assert_eq!(
            job.source,
            Source::Interaction {
                decision: Decision::Confirm,
                pending_id: "p-42".into()
            }
        );
    }

    #[test]
    fn clicks_that_are_not_opkits_are_refused_with_a_reason() {
        let now = DateTime::from_timestamp(0, 0).unwrap();
        let refused = |click: BlockActions| match Job::from_block_actions(&click, now) {
            Err(EnvelopeError::Interaction(why)) => why,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            refused(click("someone:else", "p-1")),
            "unknown action `someone:else`"
        );
        assert_eq!(
            refused(click("opkit:deny", "")),
            "the interaction has no request id"
        );
        assert_eq!(
            refused(click("opkit:deny", &"x".repeat(65))),
            "the interaction has no request id"
        );
        let mut no_url = click("opkit:deny", "p-1");
        no_url.response_url = None;
        assert_eq!(refused(no_url), "the interaction has no response_url");
        let mut no_action = click("opkit:deny", "p-1");
        no_action.actions.clear();
        assert_eq!(refused(no_action), "the interaction has no action");
        let mut bad_user = click("opkit:deny", "p-1");
        bad_user.user.id = "bob".into();
        assert!(matches!(
            Job::from_block_actions(&bad_user, now),
            Err(EnvelopeError::Id(_))
        ));
    }

    #[test]
    fn a_command_button_runs_its_value_as_the_clicker() {
        // GIVEN a click on a command button
        let now = DateTime::from_timestamp(0, 0).unwrap();
        let job =
            Job::from_block_actions(&click("opkit:run", "alarms ack \"api 5xx\""), now).unwrap();
        // THEN the job is that command, as the clicker, answered at the response_url
        assert_eq!(job.source, Source::Button);
        assert_eq!(job.text, "alarms ack \"api 5xx\"");
        assert_eq!(job.caller.user.as_str(), "U0CA5");
        assert_eq!(job.caller.channel.as_ref().unwrap().as_str(), "C0CA5");
        assert!(matches!(job.reply_to, ReplyTo::ResponseUrl { .. }));
        // AND its thread is the one its message starts
        assert_eq!(job.caller.thread_ts.as_deref(), Some("1.2"));
        let key = super::tests::key();
        assert_eq!(Job::decode(&job.encode(&key), &key).unwrap(), job);
    }

    #[test]
    fn a_click_in_a_thread_keeps_its_thread_and_a_decision_starts_none() {
        let now = DateTime::from_timestamp(0, 0).unwrap();
        let mut in_thread = click("opkit:run", "graph api-5xx");
        let container = in_thread.container.as_mut().unwrap();
        container.thread_ts = Some("1.1".into());
        let job = Job::from_block_actions(&in_thread, now).unwrap();
        assert_eq!(job.caller.thread_ts.as_deref(), Some("1.1"));
        // a decision on a prompt outside a thread answers it where it is
        let decision = Job::from_block_actions(&click("opkit:confirm", "p-1"), now).unwrap();
        assert_eq!(decision.caller.thread_ts, None);
        // a button on an ephemeral message: no thread can hang off it
        let mut ephemeral = click("opkit:run", "graph api-5xx");
        ephemeral.container.as_mut().unwrap().is_ephemeral = Some(true);
        let job = Job::from_block_actions(&ephemeral, now).unwrap();
        assert_eq!(job.caller.thread_ts, None);
    }

    #[test]
    fn a_command_button_without_a_command_or_with_too_long_a_one_is_refused() {
        let now = DateTime::from_timestamp(0, 0).unwrap();
        for value in [String::new(), "x".repeat(BUTTON_COMMAND_MAX + 1)] {
            match Job::from_block_actions(&click("opkit:run", &value), now) {
                Err(EnvelopeError::Interaction(why)) => {
                    assert_eq!(why, "the interaction has no command");
                }
                other => panic!("{other:?}"),
            }
        }
        let longest = "x".repeat(BUTTON_COMMAND_MAX);
        assert!(Job::from_block_actions(&click("opkit:run", &longest), now).is_ok());
    }
}
