//! The work path's time limits, defined once: the worker Lambda's timeout, the jobs
//! queue's visibility timeout and redrive count, how long a job's claim holds, and how
//! much time an invocation must have left to start another record.
//!
//! `template.yaml` cannot read Rust, so it repeats the three numbers it needs
//! (`WorkerFunction.Timeout`, `JobsQueue.VisibilityTimeout`, `maxReceiveCount`);
//! `tests/tests/template.rs` checks that it repeats these, and the relations below.
//! `opkit init` creates the queue from these constants.
//!
//! ```text
//! receive #1   claim ── run ──X (timeout: the job stops half-way, its claim stays)
//! |<- timeout ->|
//! |<------- visibility ------->| receive #2: claim held, retry later
//!                              |<------- visibility ------->| receive #3: held → DLQ
//! |<------------------------------ lease ----------------------------------------->|
//! ```
//!
//! The relations, each checked at compile time here (and, with the template's
//! numbers, in `tests/tests/template.rs`):
//!
//! 1. **lease ≥ worker timeout**: an invocation's claim never lapses while the
//!    invocation can still be running its job, so no other delivery of the same job
//!    (an SQS redelivery, Slack sending an event again) runs it alongside.
//! 2. **visibility ≥ 6 × worker timeout**: AWS's advice for a queue that is a Lambda
//!    event source, so that the event source mapping's own retries and throttling do
//!    not make a message visible while a batch holding it is still running.
//! 3. **lease ≥ max receives × visibility**: a job whose invocation died half-way (a
//!    timeout, a crash) is never started again by SQS: every redelivery finds its claim
//!    still held and gives the message back, until the last one moves it to the
//!    dead-letter queue, whose alarm tells a human. A half-done command is not repeated
//!    behind anyone's back.
//! 4. **start margin < worker timeout**: an invocation stops taking new records of its
//!    batch when less than [`START_MARGIN_SECS`] remain, so that a job is only started
//!    with time to finish; the records it did not start go back to the queue
//!    untouched (batch item failures) and run in a later invocation. A fresh
//!    invocation always has the time to start its first record.

/// The worker Lambda's timeout, in seconds (`WorkerFunction.Timeout`).
pub const WORKER_TIMEOUT_SECS: u32 = 30;

/// The jobs queue's visibility timeout, in seconds: 6 × the worker's timeout
/// (`JobsQueue.VisibilityTimeout`).
pub const VISIBILITY_TIMEOUT_SECS: u32 = 6 * WORKER_TIMEOUT_SECS;

/// How many times a message is received before it moves to the dead-letter queue
/// (`maxReceiveCount`).
pub const MAX_RECEIVES: u32 = 3;

/// How long a job's claim keeps every other delivery off it, in seconds: as long as
/// all the deliveries SQS will make of its message (relation 3), nine minutes.
pub const LEASE_SECS: u32 = MAX_RECEIVES * VISIBILITY_TIMEOUT_SECS;

/// A record of a batch is started only while at least this many seconds remain
/// before the invocation's deadline: the time a command is expected to need. (A
/// command that takes longer than what is left is cut off by Lambda, and relation 3
/// keeps it from running twice.)
pub const START_MARGIN_SECS: u32 = 10;

/// How long one AWS call — every attempt of it, its retries included — may take
/// before it fails as "could not reach" ([`crate::aws::call_timeouts`]): less than
/// the worker's timeout (and `opkit serve`'s per-job time limit, the same), so an
/// AWS endpoint that never answers fails its command with a reason while there is
/// still time to say it, rather than cutting the job off.
pub const AWS_CALL_TIMEOUT_SECS: u32 = 20;

/// How long an AWS call may take to connect (the SDK's own default, kept when the
/// call's whole time is limited).
pub const AWS_CONNECT_TIMEOUT_MILLIS: u32 = 3_100;

const _: () = assert!(AWS_CALL_TIMEOUT_SECS < WORKER_TIMEOUT_SECS);
const _: () = assert!(AWS_CONNECT_TIMEOUT_MILLIS < AWS_CALL_TIMEOUT_SECS * 1000);
const _: () = assert!(LEASE_SECS >= WORKER_TIMEOUT_SECS, "relation 1");
const _: () = assert!(
    VISIBILITY_TIMEOUT_SECS >= 6 * WORKER_TIMEOUT_SECS,
    "relation 2"
);
const _: () = assert!(
    LEASE_SECS >= MAX_RECEIVES * VISIBILITY_TIMEOUT_SECS,
    "relation 3"
);
const _: () = assert!(START_MARGIN_SECS < WORKER_TIMEOUT_SECS, "relation 4");
// SQS allows visibility timeouts up to 12 hours.
const _: () = assert!(VISIBILITY_TIMEOUT_SECS <= 12 * 3600);
