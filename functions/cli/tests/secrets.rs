//! No credential reaches a log line or a reply: `opkit` runs with every secret set
//! and the most verbose logging, through a command that fails on an HTTP call whose
//! URL carries a key, and its whole output is searched for each secret.

use std::process::Command;

const SECRETS: [(&str, &str); 4] = [
    ("SLACK_SIGNING_SECRET", "signing-secret-never-logged-0001"),
    ("SLACK_BOT_TOKEN", "xoxb-bot-token-never-logged-0002"),
    ("SLACK_APP_TOKEN", "xapp-1-app-token-never-logged-0003"),
    ("OPKIT_WEATHER_KEY", "weather-key-never-logged-0004"),
];

#[test]
fn trace_logs_of_a_failing_http_call_hold_no_secret() {
    // A port that was just free: the weather call fails to connect.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = listener.local_addr().unwrap();
    drop(listener);
    let dir = std::env::temp_dir().join(format!(
        "opkit-secrets-{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    let mut command = Command::new(env!("CARGO_BIN_EXE_opkit"));
    command
        .arg("--data-dir")
        .arg(&dir)
        .args(["say", "--user", "U1", "weather", "Paris"])
        .env("OPKIT_WEATHER_URL", format!("http://{closed}"))
        .env("RUST_LOG", "trace");
    for (name, value) in SECRETS {
        command.env(name, value);
    }
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert_eq!(
        stdout.trim(),
        "The weather service did not answer; try again in a moment."
    );
    assert!(
        stderr.contains("weather service unreachable"),
        "the failure was logged: {stderr}"
    );
    for (name, value) in SECRETS {
        assert!(!stdout.contains(value), "{name} in the reply: {stdout}");
        assert!(!stderr.contains(value), "{name} in the logs: {stderr}");
    }
}
