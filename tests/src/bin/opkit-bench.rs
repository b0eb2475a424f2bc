//! `opkit-bench`: Opkit's whole-process benchmarks (see `opkit_tests::bench`).
//! Run through `bash infra/bench.sh`, which builds the release binaries, starts the
//! emulator and installs the peers; by hand:
//!
//! ```text
//! opkit-bench cold  [--release DIR [--runs 20] [--peers DIR]] [--log FILE]
//!                   [(--arm64 DIR | --sam-build DIR) --qemu PROGRAM --sysroot DIR [--arm64-runs 5]]
//! opkit-bench serve --opkit FILE [--wrk wrk] [--threads 2] [--connections 32]
//!                   [--seconds 8] [--pool 150000] [--text help]
//! opkit-bench work  --worker FILE [--commands 100] [--timeout 300] [--log FILE]
//! ```
//!
//! `--release` is cargo's x86_64 release directory (`target/release`); `--arm64` is
//! cargo's aarch64 one (`target/aarch64-unknown-linux-gnu/release`), `--sam-build`
//! the directory `sam build` wrote (`.aws-sam/build`), both run under qemu-user.
//! `cold` and `work` need the emulator (`AWS_ENDPOINT_URL`), as the end-to-end
//! tests do. `work` runs the worker `bootstrap` FILE warm (its `--commands` per
//! scenario; `--timeout` seconds for each half of a scenario to be answered) and
//! exits 1, saying why, if a command went unanswered or the state is not what the
//! commands should have left.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use opkit_tests::bench::arm64::Bootstraps;
use opkit_tests::bench::cold::Target;
use opkit_tests::bench::load_average;
use opkit_tests::bench::serve::{self, Load};
use opkit_tests::bench::suites::{Bench, Kind, Queue, Row, function_env, report};
use opkit_tests::bench::work::{self, WorkLoad};

const USAGE: &str = "usage: opkit-bench cold [--release DIR [--runs N] [--peers DIR]] [--log FILE] \
[(--arm64 DIR | --sam-build DIR) --qemu PROGRAM --sysroot DIR [--arm64-runs N]]\n       opkit-bench serve --opkit FILE \
[--wrk PROGRAM] [--threads N] [--connections N] [--seconds N] [--pool N] [--text TEXT]
       opkit-bench work --worker FILE [--commands N] [--timeout SECONDS] [--log FILE]";

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
        "work" => runtime.block_on(work(&flags)),
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
    let release = path(flags, "release");
    let arm64 = arm64_bootstraps(flags);
    if release.is_none() && arm64.is_none() {
        fail(&format!(
            "give --release, --arm64 or --sam-build: nothing to run\n{USAGE}"
        ));
    }
    if let Some((bootstraps, _)) = &arm64 {
        bootstraps.check_present().unwrap_or_else(|e| fail(&e));
    }
    let log = path(flags, "log").unwrap_or_else(|| std::env::temp_dir().join("opkit-bench.log"));
    let bench = Bench::start(&log, Duration::from_secs(60)).await;
    let emulator = opkit_tests::aws::emulator_endpoint();
    let stack = &bench.stack;
    let on_stub = function_env(stack, &bench.stub.url(), &bench.stub.queue_url());
    let on_ingress_queue = function_env(stack, &emulator, &bench.ingress_queue);
    let on_emulator = function_env(stack, &emulator, &stack.queues.url);

    println!("load average before: {}", load_average());
    if let Some(release) = release {
        let runs = number(flags, "runs", 20);
        let bin = |name: &str| release.join(name);
        let mut ack = vec![
            Row::new(
                Target::new("floor (bare lambda_http echo)", bin("examples/floor")),
                Kind::SlashCommand,
                Some(bin("examples/floor")),
            ),
            Row::new(
                Target::new("ingress, SQS stub", bin("ingress")).env(on_stub.clone()),
                Kind::Queued(Queue::Stub),
                Some(bin("ingress")),
            ),
            Row::new(
                Target::new("ingress, SQS on the emulator", bin("ingress"))
                    .env(on_ingress_queue.clone()),
                Kind::Queued(Queue::Emulator),
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
                Target::new("expiry, DynamoDB on the emulator", bin("expiry"))
                    .env(on_emulator.clone()),
                Kind::Schedule,
                Some(bin("expiry")),
            ),
        ];
        bench.run(&mut work, runs).await;
        println!("\n## Worker and expiry, cold ({runs} rounds)\n");
        println!("{}", report(&work, "", "", &[]));
    }

    if let Some((bootstraps, qemu)) = arm64 {
        let runs = number(flags, "arm64-runs", 5);
        let emulated = |name: &str, file: &Path, env: &[(String, String)]| {
            Target::new(name, &qemu.program)
                .args(["-L".to_string(), qemu.sysroot.display().to_string()])
                .args([file.display()])
                .env(env.iter().cloned())
        };
        let row = |name: &str, file: &Path, kind: Kind, env: &[(String, String)]| {
            Row::new(emulated(name, file, env), kind, Some(file.to_path_buf()))
        };
        let mut arm = Vec::new();
        if let Some(floor) = &bootstraps.floor {
            arm.push(row(ARM64_FLOOR, floor, Kind::SlashCommand, &[]));
        }
        arm.extend([
            row(
                ARM64_INGRESS,
                &bootstraps.ingress,
                Kind::Queued(Queue::Stub),
                &on_stub,
            ),
            row(
                "arm64 ingress under qemu, SQS on the emulator",
                &bootstraps.ingress,
                Kind::Queued(Queue::Emulator),
                &on_ingress_queue,
            ),
            row(
                "arm64 worker under qemu",
                &bootstraps.worker,
                Kind::Job,
                &on_emulator,
            ),
            row(
                "arm64 expiry under qemu",
                &bootstraps.expiry,
                Kind::Schedule,
                &on_emulator,
            ),
        ]);
        bench.run(&mut arm, runs).await;
        println!(
            "\n## arm64 (aarch64-unknown-linux-gnu, built by {}) under qemu-user ({runs} rounds; emulated, so slow: it proves they start and answer)\n",
            bootstraps.built_by
        );
        println!("{}", report(&arm, ARM64_FLOOR, ARM64_INGRESS, &[]));
        for file in bootstraps.files() {
            println!("- {}", file.display());
        }
    }
    println!("load average after: {}", load_average());
    println!("process output: {}", log.display());
}

const ARM64_FLOOR: &str = "arm64 floor under qemu";
const ARM64_INGRESS: &str = "arm64 ingress under qemu, SQS stub";

/// How the arm64 binaries are run: `qemu-aarch64 -L SYSROOT FILE`.
struct Qemu {
    program: PathBuf,
    sysroot: PathBuf,
}

/// The arm64 bootstraps from `--arm64 DIR` (cargo's layout) or `--sam-build DIR`
/// (`sam build`'s), with the qemu to run them; `None` when neither is given.
fn arm64_bootstraps(flags: &HashMap<String, String>) -> Option<(Bootstraps, Qemu)> {
    let bootstraps = match (path(flags, "arm64"), path(flags, "sam-build")) {
        (None, None) => return None,
        (Some(dir), None) => Bootstraps::cargo(&dir),
        (None, Some(dir)) => Bootstraps::sam_build(&dir),
        (Some(_), Some(_)) => fail(&format!("give --arm64 or --sam-build, not both\n{USAGE}")),
    };
    let qemu = Qemu {
        program: require(flags, "qemu"),
        sysroot: require(flags, "sysroot"),
    };
    Some((bootstraps, qemu))
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

async fn work(flags: &HashMap<String, String>) {
    let load = WorkLoad {
        worker: require(flags, "worker"),
        commands: number(flags, "commands", 100),
        log: path(flags, "log")
            .unwrap_or_else(|| std::env::temp_dir().join("opkit-bench-work.log")),
        timeout: Duration::from_secs(number(flags, "timeout", 300) as u64),
    };
    if load.commands < 2 || !load.commands.is_multiple_of(2) {
        fail(&format!(
            "--commands must be an even number of at least 2 (half join, half leave), not {}\n{USAGE}",
            load.commands
        ));
    }
    println!("load average before: {}", load_average());
    match work::run(&load).await {
        Ok((scenarios, process)) => {
            println!(
                "\n## Work path: {} stateful commands a scenario through the warm worker ({}), SQS and DynamoDB on the emulator\n",
                load.commands,
                load.worker.display()
            );
            println!("{}", work::report(&scenarios, &process));
        }
        Err(e) => {
            eprintln!(
                "work path: {e}\n(the worker's output: {})",
                load.log.display()
            );
            std::process::exit(1);
        }
    }
    println!("load average after: {}", load_average());
    println!("worker output: {}", load.log.display());
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
