//! Throughput: `opkit serve --store memory` acking signed slash commands on
//! loopback under `wrk`, with the work (the in-process queue running each command,
//! replies posted to a `response_url` served by the harness: [`ReplySink`]) beside
//! it.
//!
//! `wrk` sends a pool of pre-signed commands, each with its own `trigger_id` (so
//! each is its own job), read by its Lua script from a file. After the load the
//! harness waits for the server's queue to drain and counts the replies the fake
//! Slack received: with a pool at least as large as the requests, one per acked
//! command, so an acked command that never ran shows. The server's peak RSS and
//! CPU time are read from `/proc` before it is stopped.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::{StatusCode, Uri};

use opkit::slack::SigningSecret;

use super::cold::peak_rss_kib;
use crate::serverless::{ADMIN, SECRET};
use crate::slack_request::{TEAM_ID, signed_headers, slash_command_body};

/// The load: `wrk -t{threads} -c{connections} -d{seconds}s` over `pool` commands.
#[derive(Debug, Clone)]
pub struct Load {
    /// The `opkit` binary (release).
    pub opkit: PathBuf,
    /// The `wrk` binary.
    pub wrk: PathBuf,
    /// wrk's threads.
    pub threads: u32,
    /// Open connections.
    pub connections: u32,
    /// Seconds of load.
    pub seconds: u32,
    /// Distinct signed commands cycled through.
    pub pool: usize,
    /// The text of each command.
    pub text: String,
}

/// What `wrk` reported, and the server's memory.
#[derive(Debug, Clone, PartialEq)]
pub struct Figures {
    /// Requests completed.
    pub requests: u64,
    /// Of them, answered other than 2xx/3xx.
    pub non_2xx: u64,
    /// Of them, answered 200 with [`BUSY`]: not taken.
    pub busy: u64,
    /// Requests per second.
    pub per_second: f64,
    /// Median latency, as wrk prints it (e.g. `9.30ms`).
    pub p50: String,
    /// 99th percentile latency.
    pub p99: String,
    /// The server's peak resident set, KiB.
    pub peak_rss_kib: u64,
    /// Replies the work posted to the [`ReplySink`]'s `response_url`s, counted after
    /// the load once the server's queue had drained: with a pool at least as large
    /// as the requests, every acked command's reply — so `acked - replies` is
    /// what was acked and not run. It may pass the acks by as many as there are
    /// connections: requests in flight when `wrk` stopped, acked by the server
    /// but not counted by `wrk`.
    pub replies: u64,
    /// CPU the server used under the load (user + system), seconds.
    pub server_cpu_secs: f64,
    /// Requests the server made to Slack other than replies (none expected).
    pub other_slack_calls: u64,
}

/// What the ack says when `opkit serve`'s in-process queue is full: a 200 that is
/// not an ack of the command, so it is counted apart.
pub const BUSY: &str = "too busy";

/// The Lua script `wrk` runs: it reads `data` (one `signature TAB body` a line,
/// all signed at `timestamp`) and posts them in turn, each of the `threads`
/// threads from the start of its own share of the pool (so that no command is
/// sent twice until a thread has sent its whole share); it counts the answers
/// that say [`BUSY`] and prints `busy: N` at the end.
pub fn wrk_script(data: &Path, timestamp: i64, threads: u32) -> String {
    format!(
        r#"local pool = {{}}
for line in io.lines("{data}") do
  local tab = line:find("\t", 1, true)
  pool[#pool + 1] = {{ line:sub(1, tab - 1), line:sub(tab + 1) }}
end
local threads = {{}}
setup = function(thread)
  table.insert(threads, thread)
  thread:set("share", #threads - 1)
end
local i = 0
busy = 0
init = function(args) i = share * math.floor(#pool / {threads}) end
response = function(status, headers, body)
  if body:find("{busy}", 1, true) then busy = busy + 1 end
end
done = function(summary, latency, requests)
  local n = 0
  for _, thread in ipairs(threads) do n = n + thread:get("busy") end
  io.write("busy: " .. n .. "\n")
end
request = function()
  i = i % #pool + 1
  return wrk.format("POST", "/slack/commands", {{
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["X-Slack-Request-Timestamp"] = "{timestamp}",
    ["X-Slack-Signature"] = pool[i][1],
  }}, pool[i][2])
end
"#,
        data = data.display(),
        busy = BUSY
    )
}

/// Reads wrk's report (run with `--latency`).
pub fn parse_wrk(output: &str) -> Result<Figures, String> {
    let after = |prefix: &str| {
        output
            .lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(prefix))
            .map(|rest| rest.split_whitespace().next().unwrap_or("").to_string())
    };
    let missing = |what: &str| format!("wrk printed no {what}:\n{output}");
    let requests = output
        .lines()
        .find(|l| l.contains(" requests in "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| missing("request count"))?;
    Ok(Figures {
        requests,
        non_2xx: after("Non-2xx or 3xx responses:")
            .and_then(|n| n.parse().ok())
            .unwrap_or(0),
        per_second: after("Requests/sec:")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| missing("Requests/sec"))?,
        p50: after("50%").ok_or_else(|| missing("median (run it with --latency)"))?,
        p99: after("99%").ok_or_else(|| missing("99th percentile"))?,
        busy: after("busy:")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| missing("busy count"))?,
        peak_rss_kib: 0,
        replies: 0,
        server_cpu_secs: 0.0,
        other_slack_calls: 0,
    })
}

/// Where the work's replies go under load: Slack's `response_url`s
/// (`POST /response/{name}`), each read to its end, answered 200 `ok` as Slack
/// answers, and counted; anything else is answered 404 and counted apart.
///
/// It is not [`FakeSlack`](crate::fake_slack::FakeSlack), which records every
/// request with its parsed body for the tests to read: at thousands of replies a
/// second that recording, in the harness's unoptimised build and on the same two
/// cores, took more than half as much CPU as the server it measured. The real Slack's
/// work is not on our cores; this sink keeps its stand-in's share small.
pub struct ReplySink {
    addr: SocketAddr,
    counts: Arc<[AtomicU64; 2]>,
    server: tokio::task::JoinHandle<()>,
}

impl ReplySink {
    /// Starts the sink on a free loopback port.
    pub async fn start() -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let counts: Arc<[AtomicU64; 2]> = Arc::default();
        let seen = counts.clone();
        let app = Router::new().fallback(move |uri: Uri, body: Bytes| {
            let seen = seen.clone();
            async move {
                drop(body);
                if uri.path().starts_with("/response/") {
                    seen[0].fetch_add(1, Ordering::Relaxed);
                    (StatusCode::OK, "ok")
                } else {
                    seen[1].fetch_add(1, Ordering::Relaxed);
                    (StatusCode::NOT_FOUND, "not a response_url")
                }
            }
        });
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            addr,
            counts,
            server,
        })
    }

    /// A `response_url` of the sink: `http://{addr}/response/{name}`.
    pub fn response_url(&self, name: &str) -> String {
        format!("http://{}/response/{name}", self.addr)
    }

    /// The base of the Web API (`SLACK_API_URL`): answered 404 and counted apart.
    pub fn api_url(&self) -> String {
        format!("http://{}/api", self.addr)
    }

    /// Replies received on a `response_url` so far.
    pub fn replies(&self) -> u64 {
        self.counts[0].load(Ordering::Relaxed)
    }

    /// Requests received anywhere else so far.
    pub fn others(&self) -> u64 {
        self.counts[1].load(Ordering::Relaxed)
    }
}

impl Drop for ReplySink {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// How many users the load's commands come from, in turn.
pub const BENCH_USERS: usize = 4096;

/// The user who sends the `n`th command of the load: `U` and eight hex digits.
fn bench_user(n: usize) -> String {
    format!("U{:08X}", n % BENCH_USERS)
}

/// Starts `opkit serve`, loads it with `wrk`, and stops it.
pub async fn run(load: &Load, workdir: &Path) -> Result<Figures, String> {
    let slack = ReplySink::start()
        .await
        .map_err(|e| format!("cannot start the reply sink: {e}"))?;
    let timestamp = chrono::Utc::now().timestamp();
    let secret = SigningSecret::new(SECRET);
    let mut data = String::new();
    for n in 0..load.pool {
        // A team, not one user: the in-process queue holds at most
        // `INLINE_PER_USER` jobs of one user, so one user's burst is refused.
        let user = bench_user(n);
        let body = slash_command_body(&user, &load.text, &slack.response_url(&format!("r{n}")));
        let [_, (_, signature)] = signed_headers(&secret, timestamp, body.as_bytes());
        data.push_str(&format!("{signature}\t{body}\n"));
    }
    let data_path = workdir.join("serve-requests.tsv");
    let script_path = workdir.join("serve.lua");
    std::fs::write(&data_path, data).map_err(|e| e.to_string())?;
    std::fs::write(
        &script_path,
        wrk_script(&data_path, timestamp, load.threads),
    )
    .map_err(|e| e.to_string())?;

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut server = tokio::process::Command::new(&load.opkit)
        .args(["--store", "memory", "serve", "--addr", &addr])
        .env_clear()
        .envs([
            ("SLACK_SIGNING_SECRET", SECRET),
            ("SLACK_BOT_TOKEN", "xoxb-test"),
            ("OPKIT_ADMINS", ADMIN),
            ("OPKIT_TEAM_IDS", TEAM_ID),
            ("PATH", "/usr/bin:/bin"),
            ("RUST_LOG", "error"),
        ])
        .env("SLACK_API_URL", slack.api_url())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", load.opkit.display()))?;
    let client = reqwest::Client::new();
    let health = format!("http://{addr}/healthz");
    let mut up = false;
    for _ in 0..200 {
        if client
            .get(&health)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if !up {
        return Err(format!("opkit serve did not answer {health}"));
    }
    let output = tokio::process::Command::new(&load.wrk)
        .arg(format!("-t{}", load.threads))
        .arg(format!("-c{}", load.connections))
        .arg(format!("-d{}s", load.seconds))
        .arg("--latency")
        .arg("-s")
        .arg(&script_path)
        .arg(format!("http://{addr}/slack/commands"))
        .output()
        .await
        .map_err(|e| format!("cannot run {}: {e}", load.wrk.display()))?;
    let cpu = server.id().map(cpu_secs).unwrap_or(0.0);
    let text = String::from_utf8_lossy(&output.stdout);
    let mut figures = parse_wrk(&text)?;
    // The work still queued when the load stops is owed its reply: wait for the
    // count to reach the acks, or to stop moving for a few seconds.
    let acked = figures
        .requests
        .saturating_sub(figures.non_2xx + figures.busy);
    let mut replies = slack.replies();
    let mut still = 0;
    while replies < acked && still < 50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = slack.replies();
        still = if now == replies { still + 1 } else { 0 };
        replies = now;
    }
    figures.peak_rss_kib = server.id().map(peak_rss_kib).unwrap_or(0);
    figures.server_cpu_secs = cpu;
    figures.replies = replies;
    figures.other_slack_calls = slack.others();
    let _ = server.start_kill();
    let _ = server.wait().await;
    Ok(figures)
}

/// CPU a live process has used so far (user + system, all its threads), seconds;
/// 0 if it cannot be read.
pub fn cpu_secs(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| stat_cpu_ticks(&stat))
        // Linux reports these in USER_HZ, 100 a second on every architecture it
        // exposes to user space (times(2)).
        .map_or(0.0, |ticks| ticks as f64 / 100.0)
}

/// utime + stime (fields 14 and 15) of a `/proc/PID/stat` line, in ticks. The
/// command name (field 2) may hold spaces: fields are counted after its `)`.
fn stat_cpu_ticks(stat: &str) -> Option<u64> {
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    const WRK: &str = "Running 8s test @ http://127.0.0.1:3000/slack/commands
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    10.42ms    7.01ms  80.12ms   88.10%
    Req/Sec     1.50k   210.33     2.01k    70.00%
  Latency Distribution
     50%    9.30ms
     75%   12.01ms
     90%   17.50ms
     99%   38.00ms
  23800 requests in 8.00s, 5.00MB read
  Non-2xx or 3xx responses: 5
Requests/sec:   2975.12
Transfer/sec:    640.00KB
busy: 7
";

    #[test]
    fn reads_wrk_report() {
        let f = parse_wrk(WRK).unwrap();
        assert_eq!(f.requests, 23_800);
        assert_eq!(f.non_2xx, 5);
        assert_eq!(f.busy, 7);
        assert!((f.per_second - 2975.12).abs() < 1e-9);
        assert_eq!((f.p50.as_str(), f.p99.as_str()), ("9.30ms", "38.00ms"));
        let clean = WRK.replace("  Non-2xx or 3xx responses: 5\n", "");
        assert_eq!(parse_wrk(&clean).unwrap().non_2xx, 0);
        let err = parse_wrk("Running 8s test\n  0 requests in 8.00s\n").unwrap_err();
        assert!(err.contains("Requests/sec"), "{err}");
    }

    #[test]
    fn reads_cpu_ticks_past_a_command_name_with_spaces() {
        let stat = "4242 (opkit serve) S 1 4242 4242 0 -1 4194560 900 0 0 0 1234 567 0 0 20 0 4 0";
        assert_eq!(stat_cpu_ticks(stat), Some(1234 + 567));
        assert_eq!(stat_cpu_ticks("4242 (opkit"), None);
    }

    #[test]
    fn the_script_reads_the_pool_and_signs_with_its_timestamp() {
        let script = wrk_script(Path::new("/tmp/pool.tsv"), 1_800_000_000, 2);
        assert!(script.contains("i = share * math.floor(#pool / 2)"));
        assert!(script.contains(r#"io.lines("/tmp/pool.tsv")"#));
        assert!(script.contains(r#"["X-Slack-Request-Timestamp"] = "1800000000""#));
        assert!(script.contains("wrk.format(\"POST\", \"/slack/commands\""));
        assert!(script.contains(r#"body:find("too busy", 1, true)"#));
    }
}
