//! `opkit-bench`: whole-process figures, measured the way a user meets them.
//!
//! - **Cold start** ([`cold`], [`suites`]): each Lambda's release `bootstrap`
//!   started cold under a minimal Runtime API ([`runtime_api`]), one event, exec →
//!   the invocation's response; the ingress with SQS answered by a stub
//!   ([`sqs_stub`]) and by the emulator; the worker and the expiry on the emulator;
//!   beside them a bare `lambda_http` echo (the floor) and the peers, Bolt for Python
//!   and bolt-js, as cold processes in the same run.
//! - **arm64** ([`arm64`]): the same three `bootstrap`s built for
//!   `aarch64-unknown-linux-gnu` (by cargo, or by `sam build` as deployed), run under
//!   qemu-user through the same Runtime API.
//! - **Throughput** ([`serve`]): `opkit serve` acking signed slash commands on
//!   loopback under `wrk`.
//! - **Work path** ([`work`]): stateful commands through the release worker, warm
//!   under a Runtime API that hands one process invocation after invocation
//!   ([`warm_api`]), fed by the harness playing SQS's event source mapping; from
//!   SendMessage to the reply posted, and the DynamoDB requests and capacity units
//!   per command counted at the client ([`crate::capacity`]).
//!
//! Not a test and not in CI: `bash infra/bench.sh` builds what it needs, starts the
//! emulator, installs the peers outside the clone, and runs it. Figures are only
//! comparable within one run (the machine is shared): the report gives ratios to
//! the floor and the peers measured in the same rounds, and the load average.

pub mod arm64;
pub mod cold;
pub mod runtime_api;
pub mod serve;
pub mod sqs_stub;
pub mod suites;
pub mod warm_api;
pub mod work;

/// The 1-, 5- and 15-minute load averages (`/proc/loadavg`), for the report.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_string())
}
