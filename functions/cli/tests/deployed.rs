//! The deployed path on one machine through the `opkit` binary, against the AWS
//! emulator: `init` creates the table and queues, `worker` drains the queue as the
//! worker Lambda would, `expire` runs one expiry pass. Run through `bash infra/test.sh`.

use std::process::Output;
use std::time::Duration;

use opkit::job::{EnvelopeKey, JOB_VERSION, Job, ReplyTo, Source};
use opkit_tests::FakeSlack;
use opkit_tests::aws::{sdk_config, unique_name};
use tokio::process::Command;

fn opkit(table: &str, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_opkit"));
    command
        .args(["--store", "dynamodb"])
        .args(args)
        .env("OPKIT_TABLE", table)
        .env_remove("OPKIT_QUEUE_URL")
        .env("RUST_LOG", "error");
    command
}

/// The key `opkit worker` opens envelopes with in these tests.
const KEY: &str = "cli-test-envelope-key-0123456789abcdef";

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "exit {:?}: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

/// A `response_url` of the test's fake Slack, taken as the `opkit` under test
/// takes it (its `SLACK_API_URL` is that fake Slack).
fn fake_slacks(response_url: &str) -> opkit::slack::ResponseUrl {
    opkit::slack::response_url::allow_origin_of(response_url);
    opkit::slack::ResponseUrl::parse(response_url).unwrap()
}

fn job(user: &str, text: &str, response_url: String) -> Job {
    Job {
        v: JOB_VERSION,
        id: uuid::Uuid::new_v4(),
        received_at: chrono::Utc::now(),
        source: Source::Local,
        caller: opkit::engine::command::Caller::user(opkit::ids::UserId::parse(user).unwrap()),
        text: text.into(),
        reply_to: ReplyTo::ResponseUrl {
            url: fake_slacks(&response_url),
        },
        trigger_id: None,
    }
}

#[tokio::test]
async fn init_worker_and_expire_run_the_deployed_path_on_the_emulator() {
    let _ = sdk_config().await; // fails clearly without the emulator
    let table = unique_name("cli");
    let queue_name = unique_name("cli-jobs");

    // init creates the table and queues, and is safe to run twice
    let init = || {
        opkit(
            &table,
            &["init", "--queue", "sqs", "--queue-name", &queue_name],
        )
        .output()
    };
    let first = stdout(&init().await.unwrap());
    let again = stdout(&init().await.unwrap());
    assert_eq!(first, again);
    assert!(first.contains(&format!("OPKIT_TABLE={table}\n")), "{first}");
    let queue_url = first
        .lines()
        .find_map(|l| l.strip_prefix("OPKIT_QUEUE_URL="))
        .expect("init prints the queue URL")
        .to_string();
    assert!(first.contains("OPKIT_DLQ_URL="), "{first}");

    // two jobs on the queue, one delivered twice, and a forged one
    let slack = FakeSlack::start().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk_config().await);
    let key = EnvelopeKey::new(KEY).unwrap();
    let join = job("U1", "queue join perf", slack.response_url("one"));
    let forged = job("U3", "queue join perf", slack.response_url("three"));
    for body in [
        join.encode(&key),
        join.encode(&key),
        job("U2", "queue join perf", slack.response_url("two")).encode(&key),
        forged.encode(&EnvelopeKey::random()),
    ] {
        sqs.send_message()
            .queue_url(&queue_url)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }

    // without the envelope key, the worker does not start
    let out = opkit(&table, &["worker", "--until-empty"])
        .env("OPKIT_QUEUE_URL", &queue_url)
        .env_remove("OPKIT_ENVELOPE_KEY")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "opkit: OPKIT_ENVELOPE_KEY is not set"
    );

    // worker --until-empty drains them: each genuine job runs once, the forged one
    // not at all, and the queue ends empty (its replies go to the fake Slack,
    // whose origin SLACK_API_URL makes a response_url it takes)
    let out = opkit(&table, &["worker", "--until-empty"])
        .env("OPKIT_QUEUE_URL", &queue_url)
        .env("OPKIT_ENVELOPE_KEY", KEY)
        .env("SLACK_API_URL", slack.api_url())
        .output()
        .await
        .unwrap();
    stdout(&out);
    let posts = slack.wait_for(2, Duration::from_secs(10)).await;
    let mut texts: Vec<String> = posts
        .iter()
        .map(|p| p.json()["text"].as_str().unwrap().to_string())
        .collect();
    texts.sort();
    // The worker runs a batch's records side by side: either join may come first.
    let order = |first: &str, second: &str| {
        let mut both = vec![
            format!("<@{first}> holds *perf* now until you leave."),
            format!("<@{second}> is 2nd in line for *perf*, after <@{first}>."),
        ];
        both.sort();
        both
    };
    assert!(
        texts == order("U1", "U2") || texts == order("U2", "U1"),
        "{texts:?}"
    );
    assert_eq!(
        slack.requests().len(),
        2,
        "the duplicate and the forgery ran nothing"
    );
    let left = opkit::sqs::receive(&sqs, &queue_url, 10, 0).await.unwrap();
    assert!(left.is_empty(), "handled messages are deleted");

    // expire runs one pass and prints its report
    let report = stdout(&opkit(&table, &["expire"]).output().await.unwrap());
    let report: serde_json::Value = serde_json::from_str(report.trim()).unwrap();
    assert_eq!(report["grants_ended"], 0);
    assert_eq!(report["scheduled_runs"], 0);
}

#[tokio::test]
async fn init_without_the_dynamodb_store_or_a_table_says_what_is_missing() {
    let out = Command::new(env!("CARGO_BIN_EXE_opkit"))
        .args(["--store", "memory", "init"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("use `opkit --store dynamodb init`"));
    let out = Command::new(env!("CARGO_BIN_EXE_opkit"))
        .args(["--store", "dynamodb", "init"])
        .env_remove("OPKIT_TABLE")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "opkit: OPKIT_TABLE is not set"
    );
}

#[tokio::test]
async fn the_worker_names_its_store_and_says_why_a_job_failed() {
    let _ = sdk_config().await; // fails clearly without the emulator
    let slack = FakeSlack::start().await;
    let table = unique_name("cli-why");
    let queue_name = unique_name("cli-why-jobs");
    let init = stdout(
        &opkit(
            &table,
            &["init", "--queue", "sqs", "--queue-name", &queue_name],
        )
        .output()
        .await
        .unwrap(),
    );
    let queue_url = init
        .lines()
        .find_map(|l| l.strip_prefix("OPKIT_QUEUE_URL="))
        .unwrap()
        .to_string();
    let worker = |store: &str, table: &str| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_opkit"));
        command
            .args(["--store", store, "worker", "--until-empty"])
            .env("OPKIT_TABLE", table)
            .env("OPKIT_QUEUE_URL", &queue_url)
            .env("OPKIT_ENVELOPE_KEY", KEY)
            .env("SLACK_API_URL", slack.api_url())
            .env_remove("RUST_LOG");
        command
    };

    // GIVEN a worker started without `--store dynamodb` (the walk-through's old slip)
    let data = std::env::temp_dir().join(unique_name("opkit-cli-why"));
    let out = worker("file", &table)
        .env("OPKIT_DATA_DIR", &data)
        .output()
        .await
        .unwrap();
    // THEN its first line says where its state goes, and that the deployment's is elsewhere
    let stderr = String::from_utf8_lossy(&out.stderr);
    let first = stderr.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("opkit worker: state in files under")
            && first.contains("run `opkit --store dynamodb worker`"),
        "{stderr}"
    );
    // AND with the table, it names the table
    let out = worker("dynamodb", &table).output().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(&format!(
            "opkit worker: state in DynamoDB table {table} (--store dynamodb); jobs from {queue_url}"
        )),
        "{stderr}"
    );

    // GIVEN a job, and a worker whose table cannot be reached
    let sqs = aws_sdk_sqs::Client::new(&sdk_config().await);
    let key = EnvelopeKey::new(KEY).unwrap();
    sqs.send_message()
        .queue_url(&queue_url)
        .message_body(job("U1", "queue join perf", slack.response_url("why")).encode(&key))
        .send()
        .await
        .unwrap();
    let out = worker("dynamodb", "no-such-table").output().await.unwrap();
    // THEN it says the job comes back, and why
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("will retry") && stderr.contains("could not claim job"),
        "{stderr}"
    );
    assert!(stderr.contains("1 to retry"), "{stderr}");
}

#[tokio::test]
async fn the_worker_drains_the_notifications_queue_as_the_worker_lambda_does() {
    // GIVEN the table, the jobs queue, and a notifications queue with an alarm event
    // and a job body on it (a job is refused there: records are told apart by queue)
    let sdk = sdk_config().await;
    let table = unique_name("cli-notify");
    let jobs = unique_name("cli-jobs");
    let init = opkit(&table, &["init", "--queue", "sqs", "--queue-name", &jobs])
        .output()
        .await
        .unwrap();
    let jobs_url = stdout(&init)
        .lines()
        .find_map(|l| l.strip_prefix("OPKIT_QUEUE_URL="))
        .expect("init prints the queue URL")
        .to_string();
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let events_url = sqs
        .create_queue()
        .queue_name(unique_name("cli-events"))
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_string();
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&events_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
        .unwrap()
        .clone();
    let name = unique_name("cli-alarm");
    let at = chrono::Utc::now();
    let event = opkit_tests::eventbridge::alarm_change(&name, "OK", "ALARM", at);
    let slack = FakeSlack::start().await;
    let key = EnvelopeKey::new(KEY).unwrap();
    for body in [
        event,
        job("U1", "alarms subscribe all", slack.response_url("x")).encode(&key),
    ] {
        sqs.send_message()
            .queue_url(&events_url)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }
    // and a channel subscribed to every alarm
    let said = opkit(&table, &["say", "--user", "UOPS", "--roles", "ops"])
        .args(["--channel", "C0ALARMS", "alarms subscribe all"])
        .output()
        .await
        .unwrap();
    assert!(
        stdout(&said).contains("will hear when"),
        "{}",
        stdout(&said)
    );

    // WHEN the worker runs with OPKIT_NOTIFY_QUEUE_ARN
    let worker = opkit(&table, &["worker", "--until-empty"])
        .env("OPKIT_QUEUE_URL", &jobs_url)
        .env("OPKIT_ENVELOPE_KEY", KEY)
        .env("OPKIT_NOTIFY_QUEUE_ARN", &arn)
        .env("SLACK_BOT_TOKEN", "xoxb-test")
        .env("SLACK_API_URL", slack.api_url())
        .output()
        .await
        .unwrap();
    let err = String::from_utf8_lossy(&worker.stderr).to_string();
    stdout(&worker);
    assert!(err.contains(&format!("events from {events_url}")), "{err}");

    // THEN the alarm is posted to the subscribed channel, the job body on the events
    // queue ran nothing, and the queue ends empty
    let posts = slack.posts_to("/api/chat.postMessage");
    assert_eq!(posts.len(), 1, "{:?}", slack.requests());
    assert_eq!(posts[0].json()["channel"], "C0ALARMS");
    assert!(
        posts[0].json()["text"]
            .as_str()
            .unwrap()
            .contains(&format!("*{name}* is ALARM")),
        "{:?}",
        posts[0].json()
    );
    assert!(slack.posts_to("/response/x").is_empty());
    let left = opkit::sqs::receive(&sqs, &events_url, 10, 0).await.unwrap();
    assert!(left.is_empty(), "handled and dropped events are deleted");
}

#[tokio::test]
async fn sigterm_stops_the_worker_between_batches_and_it_exits_cleanly() {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
    let _ = sdk_config().await; // fails clearly without the emulator
    let table = unique_name("cli-stop");
    let queue_name = unique_name("cli-stop-jobs");
    let init = stdout(
        &opkit(
            &table,
            &["init", "--queue", "sqs", "--queue-name", &queue_name],
        )
        .output()
        .await
        .unwrap(),
    );
    let queue_url = init
        .lines()
        .find_map(|l| l.strip_prefix("OPKIT_QUEUE_URL="))
        .unwrap()
        .to_string();
    // GIVEN `opkit worker` waiting for jobs on an empty queue
    let mut worker = opkit(&table, &["worker"])
        .env("OPKIT_QUEUE_URL", &queue_url)
        .env("OPKIT_ENVELOPE_KEY", KEY)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(worker.stderr.take().unwrap());
    let mut first = String::new();
    tokio::time::timeout(Duration::from_secs(10), stderr.read_line(&mut first))
        .await
        .expect("the worker says where jobs come from")
        .unwrap();
    assert!(first.contains(&format!("jobs from {queue_url}")), "{first}");
    // WHEN it is sent SIGTERM (kill, docker stop, systemd)
    let pid = worker.id().unwrap().to_string();
    let sent = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(sent.success());
    // THEN it stops by itself, saying no batch was under way
    let status = tokio::time::timeout(Duration::from_secs(10), worker.wait())
        .await
        .expect("the worker stops in time")
        .unwrap();
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).await.unwrap();
    assert_eq!(status.code(), Some(0), "{rest}");
    assert!(rest.contains("stopped: no job batch under way"), "{rest}");
}
