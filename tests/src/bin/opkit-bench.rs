//! `opkit-bench`: Opkit's whole-process benchmarks (see `opkit_tests::bench`).
//! Run through `bash infra/bench.sh`, which builds the release binaries, starts the
//! emulator and installs the peers; by hand:
//!
//! ```text
//! opkit-bench cold  --release DIR [--runs 20] [--peers DIR] [--log FILE]
//!                   [--arm64 DIR --qemu PROGRAM --sysroot DIR [--arm64-runs 5]]
//! opkit-bench serve --opkit FILE [--wrk wrk] [--threads 2] [--connections 32]
//!                   [--seconds 8] [--pool 150000] [--text help]
//! ```
//!
//! `cold` needs the emulator (`AWS_ENDPOINT_URL`), as the end-to-end tests do.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use opkit_tests::bench::cold::Target;
use opkit_tests::bench::load_average;
use opkit_tests::bench::serve::{self, Load};
use opkit_tests::bench::suites::{Bench, Kind, Row, function_env, report};

const USAGE: &str = "usage: opkit-bench cold --release DIR [--runs N] [--peers DIR] [--log FILE] \
[--arm64 DIR --qemu PROGRAM --sysroot DIR [--arm64-runs N]]\n       opkit-bench serve --opkit FILE \
[--wrk PROGRAM] [--threads N] [--connections N] [--seconds N] [--pool N] [--text TEXT]";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((mode, rest)) = args.split_first() else {
        fail(USAGE);
    };
    let flags = flags(rest).unwrap_or_else(|e| fail(&format!("{e}\n{USAGE}")));
    let runtime = tokio::runtime::Runtime::new().expect("a Tokio runtime");
    match mode.as_str() {
        "cold" => runtime.block_on(cold(&flags)),
        "serve" => runtime.block_on(serve(&flags)),
        _ => fail(USAGE),
    }
}

fn fail(message: &str) -> ! {
    eprintln!("{message}");
    std::process::exit(2)
}

/// `--name value` pairs.
fn flags(args: &[String]) -> Result<HashMap<String, String>, String> {
    let mut flags = HashMap::new();
    let mut args = args.iter();
    while let Some(name) = args.next() {
        let name = name
            .strip_prefix("--")
            .ok_or_else(|| format!("unexpected argument {name:?}"))?;
        let value = args
            .next()
            .ok_or_else(|| format!("--{name} needs a value"))?;
        flags.insert(name.to_string(), value.clone());
    }
    Ok(flags)
}

fn number(flags: &HashMap<String, String>, name: &str, default: usize) -> usize {
    flags.get(name).map_or(default, |v| {
        v.parse()
            .unwrap_or_else(|_| fail(&format!("--{name} must be a whole number, not {v:?}")))
    })
}

fn path(flags: &HashMap<String, String>, name: &str) -> Option<PathBuf> {
    flags.get(name).map(PathBuf::from)
}

fn require(flags: &HashMap<String, String>, name: &str) -> PathBuf {
    path(flags, name).unwrap_or_else(|| fail(&format!("--{name} is required\n{USAGE}")))
}

async fn cold(flags: &HashMap<String, String>) {
    let release = require(flags, "release");
    let runs = number(flags, "runs", 20);
    let log = path(flags, "log").unwrap_or_else(|| std::env::temp_dir().join("opkit-bench.log"));
    let bench = Bench::start(&log, Duration::from_secs(60)).await;
    let emulator = opkit_tests::aws::emulator_endpoint();
    let stack = &bench.stack;
    let on_stub = function_env(stack, &bench.stub.url(), &bench.stub.queue_url());
    let on_emulator = function_env(stack, &emulator, &stack.queues.url);
    let bin = |name: &str| release.join(name);

    println!("load average before: {}", load_average());
    let mut ack = vec![
        Row::new(
            Target::new("floor (bare lambda_http echo)", bin("examples/floor")),
            Kind::SlashCommand,
            Some(bin("examples/floor")),
        ),
        Row::new(
            Target::new("ingress, SQS stub", bin("ingress")).env(on_stub.clone()),
            Kind::SlashCommand,
            Some(bin("ingress")),
        ),
        Row::new(
            Target::new("ingress, SQS on the emulator", bin("ingress")).env(function_env(
                stack,
                &emulator,
                &bench.ingress_queue,
            )),
            Kind::SlashCommand,
            Some(bin("ingress")),
        ),
    ];
    let mut peers = Vec::new();
    if let Some(dir) = path(flags, "peers") {
        let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers");
        let secret = [("SLACK_SIGNING_SECRET", opkit_tests::serverless::SECRET)];
        ack.push(Row::new(
            Target::new(
                "Bolt for Python (SlackRequestHandler)",
                dir.join("py/bin/python"),
            )
            .args([scripts.join("bolt_python.py").display()])
            .env(secret),
            Kind::SlashCommand,
            None,
        ));
        ack.push(Row::new(
            Target::new("bolt-js (AwsLambdaReceiver)", which("node"))
                .args([scripts.join("bolt_js.js").display()])
                .env(secret)
                .env([("NODE_PATH", dir.join("js/node_modules").display())]),
            Kind::SlashCommand,
            None,
        ));
        peers = vec![
            "Bolt for Python (SlackRequestHandler)",
            "bolt-js (AwsLambdaReceiver)",
        ];
    }
    bench.run(&mut ack, runs).await;
    println!("\n## Ack path, cold ({runs} rounds)\n");
    println!(
        "{}",
        report(
            &ack,
            "floor (bare lambda_http echo)",
            "ingress, SQS stub",
            &peers
        )
    );
    println!(
        "SendMessage calls answered by the stub: {}",
        bench.stub.sent()
    );

    let mut work = vec![
        Row::new(
            Target::new("worker, one job, DynamoDB on the emulator", bin("worker"))
                .env(on_emulator.clone()),
            Kind::Job,
            Some(bin("worker")),
        ),
        Row::new(
            Target::new("expiry, DynamoDB on the emulator", bin("expiry")).env(on_emulator.clone()),
            Kind::Schedule,
            Some(bin("expiry")),
        ),
    ];
    bench.run(&mut work, runs).await;
    println!("\n## Worker and expiry, cold ({runs} rounds)\n");
    println!("{}", report(&work, "", "", &[]));

    if let Some(dir) = path(flags, "arm64") {
        let qemu = require(flags, "qemu");
        let sysroot = require(flags, "sysroot");
        let runs = number(flags, "arm64-runs", 5);
        let emulated = |name: &str, file: &str, env: &[(String, String)]| {
            Target::new(name, &qemu)
                .args(["-L".to_string(), sysroot.display().to_string()])
                .args([dir.join(file).display()])
                .env(env.iter().cloned())
        };
        let mut arm = vec![
            Row::new(
                emulated("arm64 floor under qemu", "examples/floor", &[]),
                Kind::SlashCommand,
                Some(dir.join("examples/floor")),
            ),
            Row::new(
                emulated("arm64 ingress under qemu, SQS stub", "ingress", &on_stub),
                Kind::SlashCommand,
                Some(dir.join("ingress")),
            ),
            Row::new(
                emulated("arm64 worker under qemu", "worker", &on_emulator),
                Kind::Job,
                Some(dir.join("worker")),
            ),
            Row::new(
                emulated("arm64 expiry under qemu", "expiry", &on_emulator),
                Kind::Schedule,
                Some(dir.join("expiry")),
            ),
        ];
        bench.run(&mut arm, runs).await;
        println!(
            "\n## arm64 (aarch64-unknown-linux-gnu) under qemu-user ({runs} rounds; emulated, so slow: it proves they start and answer)\n"
        );
        println!(
            "{}",
            report(
                &arm,
                "arm64 floor under qemu",
                "arm64 ingress under qemu, SQS stub",
                &[]
            )
        );
    }
    println!("load average after: {}", load_average());
    println!("process output: {}", log.display());
}

async fn serve(flags: &HashMap<String, String>) {
    let load = Load {
        opkit: require(flags, "opkit"),
        wrk: path(flags, "wrk").unwrap_or_else(|| which("wrk")),
        threads: number(flags, "threads", 2) as u32,
        connections: number(flags, "connections", 32) as u32,
        seconds: number(flags, "seconds", 8) as u32,
        pool: number(flags, "pool", 150_000),
        text: flags.get("text").cloned().unwrap_or_else(|| "help".into()),
    };
    println!("load average before: {}", load_average());
    let workdir = std::env::temp_dir();
    match serve::run(&load, &workdir).await {
        Ok(f) => {
            println!(
                "\n## opkit serve --store memory under wrk -t{} -c{} -d{}s ({} distinct signed `/opkit {}`)\n",
                load.threads, load.connections, load.seconds, load.pool, load.text
            );
            let acked = f.requests.saturating_sub(f.non_2xx + f.busy);
            println!(
                "| requests | non-2xx | \"too busy\" | acked | acked/s | replies posted | p50 | p99 | peak RSS MiB | server CPU µs/request |"
            );
            println!("|---|---|---|---|---|---|---|---|---|---|");
            println!(
                "| {} | {} | {} | {acked} | {:.0} | {} | {} | {} | {:.1} | {:.0} |",
                f.requests,
                f.non_2xx,
                f.busy,
                f.per_second * acked as f64 / f.requests.max(1) as f64,
                f.replies,
                f.p50,
                f.p99,
                f.peak_rss_kib as f64 / 1024.0,
                f.server_cpu_secs * 1e6 / f.requests.max(1) as f64,
            );
            if f.other_slack_calls > 0 {
                println!(
                    "\nthe server also called the Slack Web API {} times",
                    f.other_slack_calls
                );
            }
            if f.requests > load.pool as u64 {
                println!(
                    "\nthe pool of {} commands was sent more than once: {} requests were replays (acked, run once), so fewer replies than acks are expected; raise --pool",
                    load.pool,
                    f.requests - load.pool as u64
                );
            } else if f.replies < acked {
                println!("\n{} acked commands posted no reply", acked - f.replies);
            }
        }
        Err(e) => fail(&e),
    }
    println!("load average after: {}", load_average());
}

/// A program found on `PATH`, or its bare name (so the error names it).
fn which(program: &str) -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(program))
                .find(|candidate| candidate.is_file())
        })
        .unwrap_or_else(|| PathBuf::from(program))
}
