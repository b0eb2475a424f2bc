//! The sample events in `events/` (what `sam local invoke` and `cargo lambda invoke
//! --data-file` feed the functions; infra/DEPLOY.md, "Invoking a function by hand")
//! are events the functions read as they read Lambda's: each parses as its
//! function's event type, and says what it claims to.

use std::sync::{Arc, Mutex};

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::sqs::SqsEvent;
use opkit::BoxFuture;
use opkit::clock::{ManualClock, SystemClock};
use opkit::config::Config;
use opkit::job::{EnvelopeKey, Job, JobQueue, QueueError, ReplyTo, Source};

const INGRESS: &str = include_str!("../../events/ingress-slash-command.json");
const WORKER: &str = include_str!("../../events/worker-sqs-batch.json");
const EXPIRY: &str = include_str!("../../events/expiry-schedule.json");
const ENV: &str = include_str!("../../events/env.json");
const LOCAL_ENV: &str = include_str!("../../events/local.env");

/// Slack's documented signing example ("Verifying requests from Slack"): the
/// secret, and the time its request was signed.
const SLACK_EXAMPLE_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
const SLACK_EXAMPLE_TIME: i64 = 1_531_420_618;

#[derive(Default)]
struct Recorded(Mutex<Vec<Job>>);

impl JobQueue for Recorded {
    fn enqueue<'a>(&'a self, job: &'a Job) -> BoxFuture<'a, Result<(), QueueError>> {
        self.0.lock().unwrap().push(job.clone());
        Box::pin(std::future::ready(Ok(())))
    }
}

/// A setting in events/local.env (`NAME=value` lines, `#` comments).
fn local(name: &str) -> Option<String> {
    LOCAL_ENV
        .lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| line.strip_prefix(name)?.strip_prefix('='))
        .map(str::to_owned)
}

/// The ingress's configuration from events/local.env, as `cargo lambda watch
/// --env-file` gives it.
fn config() -> Config {
    Config::from_lookup(local).unwrap()
}

#[test]
fn the_settings_files_agree_with_the_samples() {
    // local.env holds Slack's example secret, which signed the slash command
    assert_eq!(
        local("SLACK_SIGNING_SECRET").as_deref(),
        Some(SLACK_EXAMPLE_SECRET)
    );
    // env.json overrides only what the template declares: ARNs, never values
    let env: serde_json::Value = serde_json::from_str(ENV).unwrap();
    let template = include_str!("../../template.yaml");
    for (function, vars) in env.as_object().unwrap() {
        assert!(
            template.contains(&format!("\n  {function}:\n")),
            "{function}"
        );
        for name in vars.as_object().unwrap().keys() {
            assert!(
                template.contains(&format!(" {name}: ")),
                "{function}.{name}"
            );
            assert!(
                ![
                    "SLACK_SIGNING_SECRET",
                    "SLACK_BOT_TOKEN",
                    "OPKIT_ENVELOPE_KEY"
                ]
                .contains(&name.as_str())
            );
        }
    }
    assert_eq!(
        env["IngressFunction"]["OPKIT_TEAM_IDS"].as_str(),
        local("OPKIT_TEAM_IDS").as_deref()
    );
}

#[tokio::test]
async fn the_slash_command_sample_is_api_gateways_event_and_slacks_signed_request() {
    // GIVEN the sample as the runtime hands it to the ingress (HTTP API, payload 2.0)
    let request = lambda_http::request::from_str(INGRESS).expect("an API Gateway v2 event");
    assert_eq!(request.uri().path(), "/slack/commands");
    // WHEN the ingress answers it at the time Slack's example was signed
    let queue = Arc::new(Recorded::default());
    let clock = Arc::new(ManualClock::at_unix(SLACK_EXAMPLE_TIME));
    let ingress = opkit_ingress::ingress(&config(), clock, queue.clone()).unwrap();
    let response = opkit_ingress::handle(&ingress, request).await;
    // THEN the signature checks out and the command is queued
    assert_eq!(response.status(), 200);
    let jobs = queue.0.lock().unwrap().clone();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].caller.user.as_str(), "U2CERLKJA");
    // AND now, years later, the same request is stale: refused, nothing queued
    let queue = Arc::new(Recorded::default());
    let ingress = opkit_ingress::ingress(&config(), Arc::new(SystemClock), queue.clone()).unwrap();
    let request = lambda_http::request::from_str(INGRESS).unwrap();
    assert_eq!(opkit_ingress::handle(&ingress, request).await.status(), 401);
    assert!(queue.0.lock().unwrap().is_empty());
}

#[test]
fn the_sqs_sample_is_a_batch_of_one_sealed_job() {
    // GIVEN the sample as the runtime hands it to the worker
    let event: SqsEvent = serde_json::from_str(WORKER).expect("an SQS event");
    let messages = opkit_worker::messages(&event);
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].receive_count, 1);
    // WHEN its body is opened with the key of events/local.env
    let key = EnvelopeKey::new(&local("OPKIT_ENVELOPE_KEY").unwrap()).unwrap();
    let job = Job::decode(&messages[0].body, &key).expect("sealed with the sample key");
    // THEN it is the slash command of Slack's example, asking for help
    assert_eq!(job.text, "help");
    assert_eq!(job.caller.user.as_str(), "U2CERLKJA");
    assert!(
        matches!(job.source, Source::SlashCommand { ref command } if command == "/webhook-collect")
    );
    assert!(matches!(job.reply_to, ReplyTo::ResponseUrl { .. }));
    // AND another key does not open it
    let other = EnvelopeKey::new(&"x".repeat(40)).unwrap();
    assert!(
        Job::decode(&messages[0].body, &other)
            .unwrap_err()
            .is_forgery()
    );
}

#[test]
fn the_schedule_sample_is_eventbridges_scheduled_event() {
    let event: EventBridgeEvent = serde_json::from_str(EXPIRY).expect("an EventBridge event");
    assert_eq!(event.detail_type, "Scheduled Event");
    assert_eq!(event.source, "aws.events");
    // The expiry function takes any JSON: the schedule is only its clock.
    let _: serde_json::Value = serde_json::from_str(EXPIRY).unwrap();
}
