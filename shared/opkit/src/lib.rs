//! Opkit: a ChatOps framework for Slack, built to run serverless on AWS Lambda.
#![warn(missing_docs)]

pub mod access;
pub mod audit;
pub mod builtin;
pub mod clock;
pub mod config;
pub mod engine;
pub mod expiry;
#[cfg(test)]
mod fixtures;
pub mod ids;
pub mod ingress;
pub mod job;
pub mod prelude;
pub mod schedule;
pub mod secret;
pub mod slack;
#[cfg(feature = "sqs")]
pub mod sqs;
pub mod store;
pub mod telemetry;
pub mod testing;
pub mod text;
pub mod timespec;
pub mod worker;

/// A boxed, sendable future: the return type of Opkit's object-safe async traits.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// The README's Rust examples, compiled as doctests so they stay true.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
