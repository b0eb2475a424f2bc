//! A request whose `response_url` is not Slack's is refused at the ingress with a
//! log line, and nothing is queued (so nothing is ever posted to it).

use super::Route;
use super::tests::{Logs, click_json, form_of, ingress, post, queued};

/// A slash command form in Slack's shape, answering to `response_url`.
fn command(response_url: &str) -> String {
    serde_urlencoded::to_string([
        ("token", "t"),
        ("team_id", "T0001"),
        ("team_domain", "example"),
        ("channel_id", "C0001"),
        ("channel_name", "ops"),
        ("user_id", "U0001"),
        ("user_name", "al"),
        ("command", "/opkit"),
        ("text", "whoami"),
        ("response_url", response_url),
        ("trigger_id", "1.2.3"),
    ])
    .unwrap()
}

const ELSEWHERE: [&str; 4] = [
    "http://hooks.slack.com/commands/T0001/1/abc",
    "https://evil.example/commands/T0001/1/abc",
    "https://hooks.slack.com@evil.example/commands/T0001/1/abc",
    "https://10.0.0.1/commands/T0001/1/abc",
];

#[tokio::test]
async fn a_slash_command_answering_elsewhere_is_refused_logged_and_not_queued() {
    for url in ELSEWHERE {
        // GIVEN a signed slash command whose response_url is not Slack's
        let (ingress, queue) = ingress("T0001");
        let logs = Logs::default();
        let _guard = logs.capture();
        // WHEN it arrives
        let answer = post(&ingress, Route::Commands, &command(url)).await;
        // THEN it is refused, logged without the URL, and nothing is queued
        assert_eq!(answer.status, http::StatusCode::BAD_REQUEST, "{url}");
        assert_eq!(queued(&queue), 0, "{url}");
        let logged = logs.text();
        assert!(logged.contains("refused: slash command"), "{logged}");
        assert!(logged.contains("response_url"), "{logged}");
        assert!(
            !logged.contains("/commands/T0001"),
            "the URL is a credential: {logged}"
        );
    }
    // AND Slack's own is taken
    let (ingress, queue) = ingress("T0001");
    let ok = post(
        &ingress,
        Route::Commands,
        &command("https://hooks.slack.com/commands/T0001/1/abc"),
    )
    .await;
    assert_eq!(ok.status, http::StatusCode::OK);
    assert_eq!(queued(&queue), 1);
}

#[tokio::test]
async fn a_click_answering_elsewhere_is_refused_and_not_queued() {
    for url in ELSEWHERE {
        let (ingress, queue) = ingress("T0001");
        let mut click = click_json("T0001", "opkit:confirm");
        click["response_url"] = url.into();
        let answer = post(&ingress, Route::Interactions, &form_of(&click.to_string())).await;
        assert_eq!(answer.status, http::StatusCode::BAD_REQUEST, "{url}");
        assert_eq!(queued(&queue), 0, "{url}");
    }
}
