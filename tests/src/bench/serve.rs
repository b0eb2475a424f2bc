//! Throughput: `opkit serve --store memory` acking signed slash commands on
//! loopback under `wrk`, with the work (the in-process queue running each command,
//! replies posted to a fake Slack's `response_url`) beside it.
//!
//! `wrk` sends a pool of pre-signed commands, each with its own `trigger_id` (so
//! each is its own job), read by its Lua script from a file; the server's peak RSS
//! is read from `/proc` before it is stopped.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use opkit::slack::SigningSecret;

use super::cold::peak_rss_kib;
use crate::fake_slack::FakeSlack;
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
}

/// What the ack says when `opkit serve`'s in-process queue is full: a 200 that is
/// not an ack of the command, so it is counted apart.
pub const BUSY: &str = "too busy";

/// The Lua script `wrk` runs: it reads `data` (one `signature TAB body` a line,
/// all signed at `timestamp`) and posts them in turn, each thread from its own
/// starting point; it counts the answers that say [`BUSY`] and prints
/// `busy: N` at the end.
pub fn wrk_script(data: &Path, timestamp: i64) -> String {
    format!(
        r#"local pool = {{}}
for line in io.lines("{data}") do
  local tab = line:find("\t", 1, true)
  pool[#pool + 1] = {{ line:sub(1, tab - 1), line:sub(tab + 1) }}
end
local threads = {{}}
setup = function(thread) table.insert(threads, thread) end
local i = 0
busy = 0
init = function(args) i = math.random(#pool) end
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
    })
}

/// Starts `opkit serve`, loads it with `wrk`, and stops it.
pub async fn run(load: &Load, workdir: &Path) -> Result<Figures, String> {
    let slack = FakeSlack::start().await;
    let timestamp = chrono::Utc::now().timestamp();
    let secret = SigningSecret::new(SECRET);
    let mut data = String::new();
    for n in 0..load.pool {
        let body = slash_command_body(ADMIN, &load.text, &slack.response_url(&format!("r{n}")));
        let [_, (_, signature)] = signed_headers(&secret, timestamp, body.as_bytes());
        data.push_str(&format!("{signature}\t{body}\n"));
    }
    let data_path = workdir.join("serve-requests.tsv");
    let script_path = workdir.join("serve.lua");
    std::fs::write(&data_path, data).map_err(|e| e.to_string())?;
    std::fs::write(&script_path, wrk_script(&data_path, timestamp)).map_err(|e| e.to_string())?;

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
    let peak = server.id().map(peak_rss_kib).unwrap_or(0);
    let _ = server.start_kill();
    let _ = server.wait().await;
    let text = String::from_utf8_lossy(&output.stdout);
    let mut figures = parse_wrk(&text)?;
    figures.peak_rss_kib = peak;
    Ok(figures)
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
    fn the_script_reads_the_pool_and_signs_with_its_timestamp() {
        let script = wrk_script(Path::new("/tmp/pool.tsv"), 1_800_000_000);
        assert!(script.contains(r#"io.lines("/tmp/pool.tsv")"#));
        assert!(script.contains(r#"["X-Slack-Request-Timestamp"] = "1800000000""#));
        assert!(script.contains("wrk.format(\"POST\", \"/slack/commands\""));
        assert!(script.contains(r#"body:find("too busy", 1, true)"#));
    }
}
