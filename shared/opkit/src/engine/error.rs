//! [`CommandError`]: why a command did not succeed — a usage mistake, something to
//! tell the user, or an internal error that keeps its causes for the log.

use crate::ids::IdError;
use crate::slack::mrkdwn::{Mrkdwn, UserText};
use crate::store::StoreError;
use crate::timespec::TimeError;

/// Why a command did not succeed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// The arguments were wrong; the message is shown with the command's usage.
    #[error("{0}")]
    Usage(Mrkdwn),
    /// Something the user should be told, as it is ("perf is not reserved").
    #[error("{0}")]
    User(Mrkdwn),
    /// Something went wrong inside; the user sees a reference, the log the whole
    /// chain of causes ([`ErrorChain`](crate::telemetry::ErrorChain)), which this
    /// error keeps as its [`source`](std::error::Error::source).
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl CommandError {
    /// An error to show the user with the usage line. Anything the user typed
    /// goes in through [`UserText`] or [`Code`](crate::slack::Code) (see
    /// [`mrkdwn!`](crate::mrkdwn!)).
    pub fn usage(msg: impl Into<Mrkdwn>) -> Self {
        CommandError::Usage(msg.into())
    }

    /// An error to show the user as it is.
    pub fn user(msg: impl Into<Mrkdwn>) -> Self {
        CommandError::User(msg.into())
    }

    /// An error to show the user whose message was not written as markup — it
    /// quotes what someone typed or what a service answered: it is shown escaped.
    pub fn user_text(msg: impl std::fmt::Display) -> Self {
        CommandError::User(UserText::new(msg.to_string()).into())
    }

    /// An internal error: logged in full, never shown in Slack. Takes an error,
    /// which is kept with its own sources, or a message (`&str`, `String`).
    pub fn internal(err: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        CommandError::Internal(err.into())
    }

    /// An internal error that says what was being done, caused by `source`:
    /// `internal_with("stored state does not match the script", e)` is logged as
    /// `internal error: stored state does not match the script: <e and its sources>`.
    pub fn internal_with(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        CommandError::Internal(Box::new(Context {
            context: context.into(),
            source: source.into(),
        }))
    }
}

/// What was being done when an internal error happened, and the error.
#[derive(Debug, thiserror::Error)]
#[error("{context}")]
struct Context {
    context: String,
    #[source]
    source: Box<dyn std::error::Error + Send + Sync>,
}

// These errors quote what the user typed: the whole message is shown as text.
impl From<IdError> for CommandError {
    fn from(e: IdError) -> Self {
        CommandError::Usage(UserText::new(e.to_string()).into())
    }
}

impl From<TimeError> for CommandError {
    fn from(e: TimeError) -> Self {
        match e {
            // A time the bot renders: markup, drawn in each reader's zone.
            TimeError::InThePast(at) => {
                CommandError::Usage(crate::mrkdwn!("{} is in the past", at))
            }
            TimeError::TooFarAhead(at) => CommandError::Usage(crate::mrkdwn!(
                "{} is too far ahead: a window starts within 90 days",
                at
            )),
            e => CommandError::Usage(UserText::new(e.to_string()).into()),
        }
    }
}

impl From<StoreError> for CommandError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Corrupt { .. } => CommandError::user_text(e),
            StoreError::TooLarge { .. } => CommandError::User(crate::mrkdwn!(
                "That would make this command's saved state too large, so nothing was changed ({}).",
                UserText::new(e.to_string())
            )),
            other => CommandError::Internal(Box::new(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;
    use crate::engine::{Command, Script};
    use crate::telemetry::ErrorChain;
    use crate::testing::TestBot;

    #[test]
    fn an_internal_error_keeps_its_source_and_says_nothing_itself() {
        // GIVEN internal errors made from a message, an error, and both
        let io = || std::io::Error::other("disk full");
        let from_message = CommandError::internal("the queue is stuck");
        let from_error = CommandError::internal(io());
        let with_context = CommandError::internal_with("could not save the queue", io());
        // THEN each shows only "internal error", and the chain holds the detail
        for error in [&from_message, &from_error, &with_context] {
            assert_eq!(error.to_string(), "internal error");
            assert!(error.source().is_some());
        }
        assert_eq!(
            ErrorChain(&from_message).to_string(),
            "internal error: the queue is stuck"
        );
        assert_eq!(
            ErrorChain(&from_error).to_string(),
            "internal error: disk full"
        );
        assert_eq!(
            ErrorChain(&with_context).to_string(),
            "internal error: could not save the queue: disk full"
        );
        let io_source = with_context.source().and_then(|context| context.source());
        assert!(io_source.is_some_and(|e| e.is::<std::io::Error>()));
    }

    #[test]
    fn a_store_failure_is_internal_with_the_store_error_as_its_source() {
        let failed = CommandError::from(StoreError::Backend("throttled".into()));
        assert!(matches!(failed, CommandError::Internal(_)));
        let source = failed.source().unwrap();
        assert!(matches!(
            source.downcast_ref::<StoreError>(),
            Some(StoreError::Backend(detail)) if detail == "throttled"
        ));
        let corrupt = CommandError::from(StoreError::Corrupt {
            what: "state".into(),
            detail: "bad".into(),
        });
        assert!(matches!(corrupt, CommandError::User(_)));
    }

    #[tokio::test]
    async fn the_user_sees_a_reference_and_the_audit_the_chain() {
        // GIVEN a command that fails inside
        let t = TestBot::with(|b| {
            b.script(
                Script::<()>::new("broken").command(Command::new("break").handler(|_| {
                    Box::pin(async {
                        Err(CommandError::internal_with(
                            "the backend answered nonsense",
                            std::io::Error::other("expected value at line 1"),
                        ))
                    })
                })),
            )
        });
        // WHEN it runs
        let shown = t.text("U1", "break").await;
        // THEN the user sees a reference, not the detail
        assert!(
            shown.starts_with("Something went wrong on my side (ref `"),
            "{shown}"
        );
        assert!(!shown.contains("nonsense"), "{shown}");
        // AND the audit trail keeps the whole chain, as it kept the detail before
        let records = t.audit(1).await;
        let failed = format!("{:?}", records[0].outcome);
        assert!(
            failed.contains(
                "internal error: the backend answered nonsense: expected value at line 1"
            ),
            "{failed}"
        );
    }
}
