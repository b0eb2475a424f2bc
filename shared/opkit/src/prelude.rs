//! What a command author needs, in one import: `use opkit::prelude::*;`.
//!
//! A script, its commands and their handler context ([`Script`], [`Command`],
//! [`Ctx`], [`Args`], [`CommandError`]); who may run them ([`Access`], [`Role`]);
//! the ids Slack sends ([`UserId`], [`ChannelId`]); what a command answers
//! ([`Reply`], [`Block`]) in [`Mrkdwn`], quoting what a user typed with [`UserText`]
//! and [`Code`] (or [`one_line`] for plain text); and the
//! time types state and handlers use ([`DateTime`], [`Utc`], [`Duration`]).

pub use crate::BoxFuture;
pub use crate::access::Access;
pub use crate::engine::{Args, Caller, Command, CommandError, Ctx, Script};
pub use crate::ids::{ChannelId, Role, UserId};
pub use crate::mrkdwn;
pub use crate::slack::{Block, Code, Mrkdwn, Reply, UserText};
pub use crate::text::one_line;
pub use chrono::{DateTime, Duration, Utc};
