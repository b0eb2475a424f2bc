//! Room for held requests: one user's requests never stop another's.
//!
//! Every held request shares one state item ([`PENDING_SCRIPT`](super::PENDING_SCRIPT)),
//! of at most [`MAX_STATE_BYTES`]. One user asking and asking again (540 prompts
//! in three minutes) filled it, and from then on every confirmation and approval
//! of everyone was refused. [`PendingState::admit`], the one place a request is
//! added, keeps it fair:
//!
//! ```text
//! one request     at most MAX_HELD_BYTES serialised        else refused, to its asker
//! one user        at most MAX_HELD_PER_USER held at once   else refused, naming the cap,
//!                                                          `approvals` and `cancel <id>`
//! all together    at most PENDING_BUDGET bytes             else the oldest request of
//!                                                          whoever holds the most is
//!                                                          dropped; if that is the asker
//!                                                          (or nobody holds more), the
//!                                                          asker is refused
//! settled ids     at most MAX_REMEMBERED each of settled and dropped (the soonest
//!                 forgotten go first)
//! ```
//!
//! A dropped request is remembered as dropped ([`PendingState::dropped`]): a
//! click on it says why nothing ran.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};

use super::{PENDING_FOR, Pending, PendingState};
use crate::ids::UserId;
use crate::mrkdwn;
use crate::slack::mrkdwn::{Code, Mrkdwn};
use crate::store::MAX_STATE_BYTES;

/// The most requests one user holds waiting for a confirmation or an approval
/// at once; the next is refused until one is decided, cancelled or expires.
pub const MAX_HELD_PER_USER: usize = 10;

/// The most bytes one held request takes, as JSON (its text is at most
/// [`PROMPT_MAX`](super::PROMPT_MAX) characters; the rest is what its handler
/// said and bound). A larger one is refused, never cut.
pub const MAX_HELD_BYTES: usize = 8 * 1024;

/// The most users a held request lists as gaining from it
/// ([`Pending::beneficiaries`]); the rest are counted
/// ([`Pending::beneficiaries_unlisted`]). A 2,000-member group took 26 KB.
pub const MAX_HELD_BENEFICIARIES: usize = 100;

/// The most bytes all held requests take together, as JSON: well under
/// [`MAX_STATE_BYTES`], so that a decision (which only removes) and the ids it
/// remembers always fit.
pub const PENDING_BUDGET: usize = MAX_STATE_BYTES - 30 * 1024;

/// The most ids each of [`PendingState::settled`] and [`PendingState::dropped`]
/// remembers; past it, those forgotten soonest go first (a click on one is then
/// told there is no such request, which is still true).
pub const MAX_REMEMBERED: usize = 1_000;

/// What [`PendingState::admit`] did: the requests it dropped to make room, by id.
pub(crate) type Dropped = Vec<(String, Pending)>;

impl PendingState {
    /// Adds `pending` (id `id`) at `now`: first forgets what has expired, then
    /// applies the caps of [this module](self). `Ok`: held, with the requests of
    /// others dropped to make room; `Err`: refused, why, for the asker — and
    /// nothing in `self` that the caller should save.
    pub(crate) fn admit(
        &mut self,
        id: String,
        pending: Pending,
        now: DateTime<Utc>,
    ) -> Result<Dropped, Mrkdwn> {
        self.requests.retain(|_, p| p.expires_at > now);
        self.settled.retain(|_, until| *until > now);
        self.dropped.retain(|_, until| *until > now);
        let bytes = json_len(&pending);
        if bytes > MAX_HELD_BYTES {
            return Err(mrkdwn!(
                "This request is too large to hold for a confirmation or an approval \
                 ({} bytes with what it would do; at most {}), so nothing was held or run.",
                bytes,
                MAX_HELD_BYTES
            ));
        }
        let asker = pending.request.caller.user.clone();
        let held = self.held_by(&asker);
        if held >= MAX_HELD_PER_USER {
            return Err(mrkdwn!(
                "You already have {} requests waiting for a confirmation or an approval, \
                 the most one person may have, so nothing was held or run. `approvals` \
                 lists them; {} (or {}) drops one, and each expires {} minutes after it \
                 was asked.",
                held,
                Code::new("cancel <id>"),
                Code::new("deny <id>"),
                PENDING_FOR.num_minutes()
            ));
        }
        self.requests.insert(id.clone(), pending);
        let mut dropped = Vec::new();
        while json_len(self) > PENDING_BUDGET {
            let most = self.holding_most(&asker);
            if most == asker {
                self.requests.remove(&id);
                return Err(full(self.held_by(&asker) + 1));
            }
            let oldest = self
                .requests
                .iter()
                .filter(|(_, p)| p.request.caller.user == most)
                .min_by_key(|(k, p)| (p.expires_at, k.as_str()))
                .map(|(k, _)| k.clone())
                .expect("who holds the most holds one");
            let p = self.requests.remove(&oldest).expect("just found");
            remember(&mut self.dropped, &oldest, now);
            dropped.push((oldest, p));
        }
        Ok(dropped)
    }

    /// Records that request `id` was decided at `now`, so that a second click
    /// hears it was handled.
    pub(crate) fn remember_settled(&mut self, id: &str, now: DateTime<Utc>) {
        self.settled.retain(|_, until| *until > now);
        remember(&mut self.settled, id, now);
    }

    /// How many requests `user` holds.
    fn held_by(&self, user: &UserId) -> usize {
        self.requests
            .values()
            .filter(|p| &p.request.caller.user == user)
            .count()
    }

    /// Who holds the most requests; `asker` when nobody holds more than they
    /// do (so that a tie refuses the newcomer rather than dropping another's).
    fn holding_most(&self, asker: &UserId) -> UserId {
        let mut counts: HashMap<&UserId, usize> = HashMap::new();
        for p in self.requests.values() {
            *counts.entry(&p.request.caller.user).or_default() += 1;
        }
        let theirs = counts.get(asker).copied().unwrap_or(0);
        match counts
            .into_iter()
            .max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(a.0)))
        {
            Some((user, most)) if most > theirs => user.clone(),
            _ => asker.clone(),
        }
    }
}

/// The refusal when all held requests together are at [`PENDING_BUDGET`] and the
/// asker holds as many as anyone (`holding`, this one included).
fn full(holding: usize) -> Mrkdwn {
    mrkdwn!(
        "The requests waiting for a confirmation or an approval fill the room they \
         share, and nobody holds more of them than you ({} with this one), so nothing \
         was held or run. `approvals` lists yours; {} (or {}) drops one, and each \
         expires {} minutes after it was asked.",
        holding,
        Code::new("cancel <id>"),
        Code::new("deny <id>"),
        PENDING_FOR.num_minutes()
    )
}

/// Remembers `id` until [`PENDING_FOR`] after `now`, keeping at most
/// [`MAX_REMEMBERED`] ids (the soonest forgotten go first).
fn remember(ids: &mut BTreeMap<String, DateTime<Utc>>, id: &str, now: DateTime<Utc>) {
    ids.insert(id.to_string(), now + PENDING_FOR);
    while ids.len() > MAX_REMEMBERED {
        let soonest = ids
            .iter()
            .min_by_key(|(k, until)| (**until, k.as_str()))
            .map(|(k, _)| k.clone())
            .expect("not empty");
        ids.remove(&soonest);
    }
}

/// How many bytes `value` takes as JSON (what the store measures).
fn json_len<T: serde::Serialize>(value: &T) -> usize {
    serde_json::to_string(value).map_or(usize::MAX, |s| s.len())
}

#[cfg(test)]
#[path = "room_tests.rs"]
mod tests;
