//! `opkit say` and `opkit shell` as a user runs them: exit codes, output, and many
//! processes sharing one data directory.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn data_dir(name: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = std::env::temp_dir().join(format!("opkit-cli-{name}-{nanos:x}"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn opkit(dir: &PathBuf, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_opkit"));
    command
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env_remove("OPKIT_ADMINS")
        .env_remove("OPKIT_DATA_DIR");
    command
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

#[test]
fn say_prints_the_reply_and_exits_zero_even_when_denied() {
    let dir = data_dir("say");
    let ok = opkit(&dir, &["say", "--user", "U1", "queue", "join", "perf"])
        .output()
        .unwrap();
    assert_eq!(ok.status.code(), Some(0));
    assert_eq!(stdout(&ok), "<@U1> holds *perf* now until you leave.\n");
    let denied = opkit(&dir, &["say", "--user", "U1", "audit"])
        .output()
        .unwrap();
    assert_eq!(denied.status.code(), Some(0));
    assert_eq!(stdout(&denied), "Sorry, you need admin to run `audit`.\n");
    let admin = opkit(
        &dir,
        &[
            "say", "--user", "U1", "--roles", "admin", "audit", "last", "1",
        ],
    )
    .output()
    .unwrap();
    assert!(
        stdout(&admin).contains("`audit last 1` requested"),
        "{}",
        stdout(&admin)
    );
}

#[test]
fn bad_flags_exit_two_and_bad_config_exits_one_naming_the_setting() {
    let dir = data_dir("flags");
    let bad_flag = opkit(&dir, &["say", "--frobnicate", "help"])
        .output()
        .unwrap();
    assert_eq!(bad_flag.status.code(), Some(2));
    let bad_user = opkit(&dir, &["say", "--user", "bob", "help"])
        .output()
        .unwrap();
    assert_eq!(bad_user.status.code(), Some(2));
    let bad_config = opkit(&dir, &["say", "help"])
        .env("OPKIT_ADMINS", "U1,not-a-user")
        .output()
        .unwrap();
    assert_eq!(bad_config.status.code(), Some(1));
    let stderr = String::from_utf8(bad_config.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("opkit: OPKIT_ADMINS is invalid"),
        "{stderr}"
    );
}

#[test]
fn a_corrupt_state_file_is_reported_and_left_alone() {
    let dir = data_dir("corrupt");
    std::fs::create_dir_all(dir.join("state")).unwrap();
    std::fs::write(dir.join("state").join("queue.json"), "{oops").unwrap();
    let out = opkit(&dir, &["say", "--user", "U1", "queue", "join", "perf"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stdout(&out).contains("queue.json is corrupt and was left untouched"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("state").join("queue.json")).unwrap(),
        "{oops"
    );
}

#[test]
fn the_shell_reads_commands_until_exit() {
    let dir = data_dir("shell");
    let mut child = opkit(&dir, &["shell", "--user", "U7"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"queue join perf\n\nwhoami\nexit\nqueue leave perf\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        stdout(&out),
        "<@U7> holds *perf* now until you leave.\nYou are <@U7> (`U7`), holding no roles now.\n"
    );
}

#[test]
fn many_processes_joining_at_once_lose_no_one() {
    // GIVEN one data directory and 24 users, each in their own `opkit` process
    let dir = data_dir("race");
    let users: Vec<String> = (0..24).map(|i| format!("U{i:03}")).collect();
    // WHEN they all join the same queue at once
    let children: Vec<_> = users
        .iter()
        .map(|u| {
            opkit(&dir, &["say", "--user", u, "queue", "join", "perf"])
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    // THEN every one of them is in line, once
    let state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("state").join("queue.json")).unwrap(),
    )
    .unwrap();
    let mut in_line: Vec<String> = state["state"]["envs"]["perf"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["user"].as_str().unwrap().to_string())
        .collect();
    in_line.sort();
    assert_eq!(in_line, users);
    assert_eq!(state["version"], 24);
}

#[tokio::test]
async fn the_shell_answers_aws_commands_against_the_emulator() {
    // GIVEN an alarm in the emulator (the test script exports AWS_ENDPOINT_URL and
    // the CloudWatch bridge's endpoint)
    let region = "us-east-2";
    let prefix = opkit_tests::aws::unique_name("cli");
    let cw = opkit_tests::aws_packs::cloudwatch_client(region).await;
    opkit_tests::aws_packs::seed_alarm(&cw, &format!("{prefix}-disk"), "ALARM", "Disk 97% full")
        .await;
    // WHEN `opkit say` asks for it, as a user would from the shell
    let dir = data_dir("aws");
    let out = opkit(
        &dir,
        &[
            "--store", "memory", "say", "--user", "U1", "alarms", "prefix", &prefix,
        ],
    )
    .env("AWS_REGION", region)
    .output()
    .unwrap();
    // THEN the alarm is listed, with its reason and region
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(text.contains(&format!("{prefix}-disk")), "{text}");
    assert!(
        text.contains("Disk 97% full") && text.contains(region),
        "{text}"
    );
}
