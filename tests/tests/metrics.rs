//! The bot's metrics as CloudWatch will read them: every line the deployed path
//! writes (ingress → SQS → worker → Slack, and an expiry pass, on the emulator) is
//! valid embedded metric format, counts what happened, and carries no user id.
//!
//! This test binary installs the process-wide EMF sink with a capturing writer, so
//! it holds this one test.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Duration as Span;
use opkit::metrics::{Sink, install};
use opkit_tests::serverless::{ADMIN, Stack};
use opkit_tests::slash_command_body;
use serde_json::Value;

#[tokio::test]
async fn every_line_is_emf_counts_each_command_and_names_no_user() {
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = lines.clone();
    assert!(install(Sink::Emf {
        namespace: "Opkit/test".into(),
        level: "INFO",
        write: Box::new(move |line| sink.lock().unwrap().push(line.to_string())),
    }));
    let stack = Stack::start().await;
    // GIVEN commands that run, are denied, fail and are unknown, by several users,
    // and a timed grant that the expiry pass ends
    let users = ["UALICE01", "UBOB0002", "WCAROL03", ADMIN];
    let commands = [
        ("UALICE01", "queue join perf"),
        ("UBOB0002", "roles grant <@UALICE01> admin"),
        ("WCAROL03", "frobnicate <@UALICE01>"),
        ("UALICE01", "no-such-command at all"),
        (ADMIN, "roles grant <@UBOB0002> ops for 1m"),
    ];
    for (i, (user, text)) in commands.iter().enumerate() {
        let body = slash_command_body(user, text, &stack.slack.response_url(&format!("r{i}")));
        let (status, ack) = stack
            .ingress(stack.signed_event("/slack/commands", &body))
            .await;
        assert_eq!(status, 200, "{ack}");
        let messages = stack.drain().await;
        assert!(stack.work(&messages).await.batch_item_failures.is_empty());
    }
    stack
        .slack
        .wait_for(commands.len(), Duration::from_secs(10))
        .await;
    stack.clock.advance(Span::minutes(2));
    stack.expire().await;

    // THEN every line is EMF in the namespace, with no user id anywhere in it
    let lines = lines.lock().unwrap().clone();
    let mut seen: Vec<(String, Value)> = Vec::new();
    for line in &lines {
        assert!(line.ends_with('\n'), "{line:?}");
        let doc: Value = serde_json::from_str(line).expect("JSON");
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "Opkit/test");
        assert!(doc["_aws"]["Timestamp"].as_i64().is_some());
        for dims in directive["Dimensions"].as_array().unwrap() {
            for dim in dims.as_array().unwrap() {
                assert!(doc[dim.as_str().unwrap()].is_string(), "{line}");
            }
        }
        for metric in directive["Metrics"].as_array().unwrap() {
            let name = metric["Name"].as_str().unwrap();
            assert!(doc[name].is_number(), "{line}");
            seen.push((name.to_string(), doc.clone()));
        }
        for user in users {
            assert!(!line.contains(user), "a metric line names {user}: {line}");
        }
        assert!(
            !line.contains("perf") || line.contains("\"Command\""),
            "{line}"
        );
    }
    let count = |metric: &str, command: &str, outcome: &str| {
        seen.iter()
            .filter(|(name, doc)| {
                name == metric && doc["Command"] == command && doc["Outcome"] == outcome
            })
            .count()
    };
    // AND each command is counted by its registered name and outcome
    assert_eq!(count("Commands", "queue join", "ran"), 1, "{lines:#?}");
    assert_eq!(count("Commands", "roles grant", "denied"), 1, "{lines:#?}");
    assert_eq!(count("Commands", "roles grant", "ran"), 1, "{lines:#?}");
    assert_eq!(count("Commands", "unknown", "failed"), 2, "{lines:#?}");
    let named = |metric: &str| seen.iter().filter(|(n, _)| n == metric).count();
    assert_eq!(named("AckLatency"), commands.len(), "one per request");
    assert_eq!(
        named("QueueToReply"),
        commands.len(),
        "one per reply delivered"
    );
    assert!(named("CommandDuration") >= 2, "{lines:#?}");
    assert!(
        seen.iter()
            .any(|(n, doc)| n == "ExpiryActions" && doc["Action"] == "grants_ended"),
        "{lines:#?}"
    );
}
