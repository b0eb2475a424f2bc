//! The engine: commands, the registry that matches them, the bot that runs them,
//! and the gate that holds back confirmed and approved ones.
//!
//! These four modules need each other (a [`Command`]'s handler gets a [`Ctx`]
//! holding the [`Bot`]; the bot owns the [`Registry`] of command specs; the gate
//! is more of the bot's methods), so they live in this one folder, and everything
//! outside it imports from here:
//!
//! ```text
//! text ──tokens──> registry::resolve ──> Bot::authorize ──> gate (confirm / approval?)
//!                                                      └──> Command handler (Ctx<S>)
//!                                                           state load → run → save, audit
//! ```
//!
//! - [`command`]: what a command author writes — [`Script`], [`Command`], [`Ctx`],
//!   [`Args`], [`CommandError`] (its own file, `error.rs`: internal errors keep
//!   their causes);
//! - `args` (re-exported from [`command`]): [`Args`], each argument read as the
//!   kind of Slack entity it is, and [`Bot::user_arg`] / [`Bot::channel_arg`],
//!   which take a bare id only once the Web API confirms it;
//! - [`registry`]: syntax forms and matching (longest form wins; a near miss of
//!   any word of a longer form is "did you mean");
//! - [`bot`]: [`Bot::handle`], optimistic state; `authorize.rs`: the one authorize
//!   function, [`Bot::authorize`], over grants, configuration and linked user groups;
//! - [`gate`]: pending confirmations and two-person approvals, settled by clicks.

mod args;
mod authorize;
pub mod bot;
pub mod command;
pub(crate) mod deferred;
mod error;
pub mod gate;
pub mod registry;

pub use bot::{
    Authorization, Authorizer, Bot, BotBuilder, Clearance, CommandSource, GrantAuthorizer,
    Holdings, Request,
};
pub use command::{
    Args, Caller, Command, CommandError, CommandSpec, Ctx, Gate, Handler, Notice, Options, RuleFn,
    Script, ScriptState,
};
pub use gate::{Decision, Pending, PendingState};
pub use registry::{BuildError, Registry, Resolution};
