//! The audit trail: who asked for what, and what came of it.
//!
//! The trail is data, not a log line: every command yields records (requested,
//! then denied, succeeded or failed) sharing one correlation id. They are written
//! to the store, where `audit` reads them back, and to the JSON log.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ids::{ChannelId, TeamId, UserId};

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// The command was asked for.
    Requested,
    /// The caller lacked the roles; `needed` says what would have allowed it.
    Denied {
        /// A description of the roles that would have allowed it.
        needed: String,
    },
    /// The command ran and answered.
    Succeeded,
    /// The command ran and failed.
    Failed {
        /// What went wrong, as told to the user.
        error: String,
    },
    /// The command waits for a confirmation or an approval.
    Held {
        /// What it waits for ("approval by ops").
        awaiting: String,
    },
    /// Someone clicked: confirmed, cancelled, approved or denied.
    Decided {
        /// `confirmed`, `cancelled`, `approved` or `denied`.
        decision: String,
        /// Who clicked.
        by: UserId,
    },
    /// Something the system did by itself, such as ending a timed grant.
    System {
        /// What was done.
        action: String,
    },
    /// A job envelope on the queue was not sealed with the envelope key: nothing
    /// ran. The record names the caller and the text the envelope claimed, which
    /// nobody vouches for.
    Forged {
        /// Why it was refused, and which message it was.
        reason: String,
    },
}

impl Outcome {
    /// A short name for the outcome: `requested`, `denied`, …
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Requested => "requested",
            Outcome::Denied { .. } => "denied",
            Outcome::Succeeded => "succeeded",
            Outcome::Failed { .. } => "failed",
            Outcome::Held { .. } => "held",
            Outcome::Decided { .. } => "decided",
            Outcome::System { .. } => "system",
            Outcome::Forged { .. } => "forged",
        }
    }
}

/// One event in the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Unique id of this record.
    pub id: Uuid,
    /// Shared by every record of one command.
    pub correlation_id: Uuid,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// Who asked (or on whose behalf the system acted).
    pub user: UserId,
    /// Where.
    #[serde(default)]
    pub channel: Option<ChannelId>,
    /// In which workspace.
    #[serde(default)]
    pub team: Option<TeamId>,
    /// The command text as typed.
    pub text: String,
    /// The matched command's name, if one matched.
    #[serde(default)]
    pub command: Option<String>,
    /// What came of it.
    #[serde(flatten)]
    pub outcome: Outcome,
}

impl AuditRecord {
    /// Writes the record to the structured log.
    pub fn log(&self) {
        let channel = self.channel.as_ref().map(ChannelId::as_str);
        let command = self.command.as_deref();
        tracing::info!(
            target: "opkit::audit",
            record_id = %self.id,
            correlation_id = %self.correlation_id,
            user = %self.user,
            channel,
            command,
            text = %self.text,
            outcome = self.outcome.name(),
            detail = ?self.outcome,
            "audit"
        );
    }
}
