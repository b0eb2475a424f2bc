//! `opkit notify`: one EventBridge event on standard input, handled as the worker
//! handles it (its AWS calls on the emulator), posting to the fake Slack through
//! `SLACK_API_URL`. Run through `bash infra/test.sh`. (Multi-threaded: the
//! test waits on the process while the fake Slack answers it.)

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use opkit_tests::FakeSlack;
use opkit_tests::eventbridge::ALARM_EVENT;

fn data_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("opkit-notify-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn opkit(dir: &PathBuf, slack: &FakeSlack, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_opkit"));
    command
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env_remove("OPKIT_ADMINS")
        .env_remove("OPKIT_DATA_DIR")
        .env("SLACK_BOT_TOKEN", "xoxb-test")
        .env("SLACK_API_URL", slack.api_url())
        // As the worker, it reads the alarm's tags (CloudWatch) and tells managed
        // instances (EC2): on the emulator, never anywhere else.
        .env("AWS_ENDPOINT_URL", opkit_tests::aws::emulator_endpoint())
        .env(
            "AWS_ENDPOINT_URL_CLOUDWATCH",
            opkit_tests::aws_packs::cloudwatch_endpoint(),
        );
    command
}

fn notify(dir: &PathBuf, slack: &FakeSlack, event: &str) -> Output {
    let mut child = opkit(dir, slack, &["notify"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(event.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_documented_event_posts_to_the_subscribed_channel_once() {
    let slack = FakeSlack::start().await;
    let dir = data_dir();
    let subscribed = opkit(
        &dir,
        &slack,
        &[
            "say",
            "--user",
            "UOPS",
            "--roles",
            "ops",
            "--channel",
            "C0ALARMS",
            "alarms subscribe Server",
        ],
    )
    .output()
    .unwrap();
    assert!(
        text(&subscribed.stdout).contains("will hear when"),
        "{}",
        text(&subscribed.stdout)
    );

    let first = notify(&dir, &slack, ALARM_EVENT);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));
    assert_eq!(text(&first.stdout).trim(), "posted 1, updated 0, failed 0");
    let posts = slack.posts_to("/api/chat.postMessage");
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].json()["channel"], "C0ALARMS");
    assert!(
        posts[0].json()["text"]
            .as_str()
            .unwrap()
            .contains("*ServerCpuTooHigh* is ALARM")
    );

    // the same event again: nothing
    let again = notify(&dir, &slack, ALARM_EVENT);
    assert_eq!(again.status.code(), Some(0));
    assert!(
        text(&again.stdout).starts_with("nothing posted: not newer"),
        "{}",
        text(&again.stdout)
    );
    assert_eq!(slack.posts_to("/api/chat.postMessage").len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_event_fails_naming_what_is_wrong_and_posts_nothing() {
    let slack = FakeSlack::start().await;
    let dir = data_dir();
    let out = notify(&dir, &slack, r#"{"source":"aws.cloudwatch"}"#);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("`detail-type` is missing or malformed"),
        "{}",
        text(&out.stderr)
    );
    assert!(slack.requests().is_empty());
}
