//! What a forged job envelope claims ([`Claims`]), read for the audit record of
//! its refusal: nothing in it is believed, and nothing in it runs.

use crate::engine::command::Caller;
use crate::ids::{ChannelId, TeamId, UserId};

/// The user an audit record of a forged envelope names when the envelope names
/// no valid one.
pub(super) const UNNAMED_SENDER: &str = "UNKNOWN";

/// What an unauthenticated envelope claims, for the audit record of its refusal:
/// read leniently (a sealed or a bare job), each id checked, the text cut short.
pub(super) struct Claims {
    pub(super) caller: Caller,
    pub(super) text: String,
    pub(super) job_id: Option<String>,
}

impl Claims {
    /// At most this many characters of claimed text and job id are kept.
    const MAX_TEXT: usize = 200;
    const MAX_ID: usize = 64;

    pub(super) fn read(body: &str) -> Self {
        let value: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
        let job = match value.get("job") {
            Some(job) if job.is_object() => job,
            _ => &value,
        };
        let caller = &job["caller"];
        let field = |v: &serde_json::Value| v.as_str().map(str::to_string);
        let cut = |s: String, n: usize| s.chars().take(n).collect::<String>();
        let user = field(&caller["user"])
            .and_then(|u| UserId::parse(&u).ok())
            .unwrap_or_else(|| UserId::parse(UNNAMED_SENDER).expect("a valid user id"));
        Self {
            caller: Caller {
                user,
                channel: field(&caller["channel"]).and_then(|c| ChannelId::parse(&c).ok()),
                team: field(&caller["team"]).and_then(|t| TeamId::parse(&t).ok()),
                thread_ts: None,
            },
            text: field(&job["text"])
                .map(|t| cut(t, Self::MAX_TEXT))
                .unwrap_or_default(),
            job_id: field(&job["id"]).map(|id| cut(id, Self::MAX_ID)),
        }
    }
}
