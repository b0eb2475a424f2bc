//! The test harness itself: signed requests verify, command bodies parse, the fake
//! records and reports clearly.

use std::sync::Arc;
use std::time::Duration;

use opkit::clock::ManualClock;
use opkit::slack::signing::{SIGNATURE_HEADER, SigningSecret, TIMESTAMP_HEADER, Verifier};
use opkit::slack::{CommandRequest, SlashCommand};
use opkit_tests::{FakeSlack, RecordedBody, signed_headers, slash_command_body};

#[test]
fn signed_headers_pass_verification() {
    // GIVEN a command body signed at a fixed time
    let secret = SigningSecret::new("test-secret");
    let body = slash_command_body("U0001", "queue join perf", "http://127.0.0.1:1/response/x");
    let [(ts_name, ts), (sig_name, sig)] = signed_headers(&secret, 1_700_000_000, body.as_bytes());
    // WHEN it is verified at that time
    let verifier = Verifier::new(secret, Arc::new(ManualClock::at_unix(1_700_000_000)));
    let result = verifier.verify(Some(&ts), Some(&sig), body.as_bytes());
    // THEN it is accepted, under Slack's header names
    assert_eq!(result, Ok(()));
    assert_eq!((ts_name, sig_name), (TIMESTAMP_HEADER, SIGNATURE_HEADER));
}

#[test]
fn slash_command_body_parses_as_a_full_command() {
    // GIVEN a built body with text that needs escaping
    let body = slash_command_body("U0042", "say \"hi\" & bye", "http://fake/response/1");
    // WHEN the product parses it
    let command = SlashCommand::parse(body.as_bytes()).unwrap();
    // THEN every field comes through
    assert_eq!(command.user_id, "U0042");
    assert_eq!(command.text, "say \"hi\" & bye");
    assert_eq!(command.response_url, "http://fake/response/1");
    assert_eq!(command.team_id, "T0001");
    assert_eq!(command.channel_id, "C0001");
    assert_eq!(command.command, "/opkit");
    assert_eq!(command.enterprise_id, None);
    assert_eq!(command.is_enterprise_install, Some(false));
    assert!(matches!(
        CommandRequest::parse(body.as_bytes()),
        Ok(CommandRequest::Command(_))
    ));
}

#[tokio::test]
async fn fake_records_form_posts_and_unknown_routes() {
    // GIVEN a fake Slack
    let slack = FakeSlack::start().await;
    let client = reqwest::Client::new();
    // WHEN a form is posted to the Web API and something to an unknown route
    let api = client
        .post(format!("{}/chat.postMessage", slack.api_url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("channel=C9&text=hi")
        .send()
        .await
        .unwrap();
    let answer: serde_json::Value = api.json().await.unwrap();
    let unknown = client
        .post(format!("{}/nope", slack.url()))
        .send()
        .await
        .unwrap();
    // THEN both are recorded, the form decoded and the channel echoed back
    assert_eq!(answer["ok"], true);
    assert_eq!(answer["channel"], "C9");
    assert_eq!(unknown.status(), 404);
    let requests = slack.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[0].body,
        RecordedBody::Form(vec![
            ("channel".into(), "C9".into()),
            ("text".into(), "hi".into())
        ])
    );
    assert_eq!(requests[1].path, "/nope");
    assert_eq!(requests[1].answered, 404);
}

#[tokio::test]
async fn web_api_ts_values_increase() {
    let slack = FakeSlack::start().await;
    let client = reqwest::Client::new();
    let mut ts = Vec::new();
    for _ in 0..2 {
        let answer: serde_json::Value = client
            .post(format!("{}/chat.postMessage", slack.api_url()))
            .json(&serde_json::json!({"channel": "C1", "text": "x"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        ts.push(answer["ts"].as_str().unwrap().to_owned());
    }
    assert!(ts[1] > ts[0], "{ts:?}");
}

#[tokio::test]
#[should_panic(
    expected = "fake Slack expected 2 request(s) within 50ms, got 1:\n  POST /response/only"
)]
async fn wait_for_names_what_arrived_when_it_times_out() {
    // GIVEN a fake that receives one request
    let slack = FakeSlack::start().await;
    reqwest::Client::new()
        .post(slack.response_url("only"))
        .send()
        .await
        .unwrap();
    // WHEN a test waits for two
    // THEN it panics, listing the one that came
    slack.wait_for(2, Duration::from_millis(50)).await;
}
