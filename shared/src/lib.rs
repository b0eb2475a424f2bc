//! Opkit: a ChatOps framework for Slack.
#![warn(missing_docs)]

pub mod access;
pub mod audit;
pub mod bot;
pub mod catbot;
pub mod clock;
pub mod command;
pub mod config;
pub mod expiry;
pub mod gate;
pub mod ids;
pub mod ingress;
pub mod job;
pub mod packs;
pub mod registry;
pub mod slack;
#[cfg(feature = "sqs")]
pub mod sqs;
pub mod store;
pub mod telemetry;
pub mod text;
pub mod timespec;
pub mod worker;

/// A boxed, sendable future: the return type of Opkit's object-safe async traits.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// The README's Rust examples, compiled as doctests so they stay true.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
