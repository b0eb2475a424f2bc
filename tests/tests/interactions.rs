//! Confirmation buttons and two-person approval through the deployed path on the
//! emulator: slash command → prompt with buttons → signed `block_actions` click
//! → ingress → SQS → worker → outcome replacing the buttons.

use std::time::Duration;

use chrono::Duration as Span;
use opkit::store::GrantStore;
use opkit_tests::serverless::{ADMIN, Stack};
use opkit_tests::slash_command_body;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(10);

/// Runs a slash command through ingress → SQS → worker; returns what it posted.
async fn command(stack: &Stack, user: &str, text: &str) -> Value {
    let before = stack.slack.requests().len();
    let body = slash_command_body(user, text, &stack.slack.response_url("cmd"));
    assert_eq!(
        stack
            .ingress(stack.signed_event("/slack/commands", &body))
            .await
            .0,
        200
    );
    assert!(
        stack
            .work(&stack.drain().await)
            .await
            .batch_item_failures
            .is_empty()
    );
    stack.slack.wait_for(before + 1, WAIT).await[before]
        .json()
        .clone()
}

/// The pending id and action ids on a prompt's buttons.
fn buttons(prompt: &Value) -> Vec<(String, String)> {
    let actions = prompt["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "actions")
        .unwrap_or_else(|| panic!("no buttons in {prompt}"));
    actions["elements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action_id"].as_str().unwrap().to_string(),
                e["value"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn click_body(user: &str, action_id: &str, value: &str, response_url: &str) -> String {
    let payload = json!({
        "type": "block_actions",
        "user": {"id": user, "username": user.to_lowercase(), "team_id": "T0001"},
        "api_app_id": "A0001",
        "token": "unused",
        "container": {"type": "message", "message_ts": "1795000000.000300", "channel_id": "C0001", "is_ephemeral": false},
        "trigger_id": "13345224609.738474920.8088930838d88f008e0",
        "team": {"id": "T0001", "domain": "opkit-test"},
        "channel": {"id": "C0001", "name": "ops"},
        "response_url": response_url,
        "actions": [{"action_id": action_id, "block_id": "b1", "value": value,
                     "type": "button", "action_ts": "1795000001.000400"}]
    });
    serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap()
}

/// Clicks a button as `user` through ingress → SQS → worker; returns what was posted.
async fn click(stack: &Stack, user: &str, action_id: &str, value: &str) -> Value {
    let before = stack.slack.requests().len();
    let body = click_body(user, action_id, value, &stack.slack.response_url("click"));
    let (status, text) = stack
        .ingress(stack.signed_event("/slack/interactions", &body))
        .await;
    assert_eq!((status, text.as_str()), (200, ""));
    assert!(
        stack
            .work(&stack.drain().await)
            .await
            .batch_item_failures
            .is_empty()
    );
    stack.slack.wait_for(before + 1, WAIT).await[before]
        .json()
        .clone()
}

async fn grant_count(stack: &Stack) -> usize {
    stack.store.all_grants().await.unwrap().len()
}

#[tokio::test]
async fn a_confirmation_by_another_authorized_user_runs_once_double_click_or_not() {
    let stack = Stack::start_with(&[("OPKIT_ADMINS", "UADMIN,UCAROL")]).await;
    command(&stack, ADMIN, "roles grant <@UBOB> ops").await;
    let prompt = command(&stack, ADMIN, "roles revoke <@UBOB> ops").await;
    assert_eq!(prompt["response_type"], "ephemeral");
    let buttons = buttons(&prompt);
    assert_eq!(buttons[0].0, "opkit:confirm");
    let pending = buttons[0].1.clone();

    // an unauthorized user's click is refused, only to them, and nothing runs
    let refused = click(&stack, "UBOB", "opkit:confirm", &pending).await;
    assert_eq!(refused["text"], "You cannot confirm this: it needs admin.");
    assert_eq!(refused["replace_original"], Value::Null);
    assert_eq!(grant_count(&stack).await, 1);

    // another admin confirms: it runs, the buttons give way to the outcome
    let done = click(&stack, "UCAROL", "opkit:confirm", &pending).await;
    assert_eq!(done["replace_original"], true);
    let text = done["text"].as_str().unwrap();
    assert!(
        text.starts_with("<@UCAROL> confirmed `roles revoke <@UBOB> ops`"),
        "{text}"
    );
    assert!(
        text.ends_with("<@UCAROL> revoked *ops* from <@UBOB>, ending the grant until revoked."),
        "{text}"
    );
    assert_eq!(grant_count(&stack).await, 0);

    // a double click (or a replayed payload) runs nothing
    let again = click(&stack, "UCAROL", "opkit:confirm", &pending).await;
    assert_eq!(again["text"], "This request was already handled.");
    assert_eq!(grant_count(&stack).await, 0);
}

#[tokio::test]
async fn an_expired_confirmation_runs_nothing() {
    let stack = Stack::start().await;
    command(&stack, ADMIN, "roles grant <@UBOB> ops").await;
    let prompt = command(&stack, ADMIN, "roles revoke <@UBOB> ops").await;
    stack.clock.advance(Span::minutes(10));
    let late = click(&stack, ADMIN, "opkit:confirm", &buttons(&prompt)[0].1).await;
    assert!(
        late["text"]
            .as_str()
            .unwrap()
            .starts_with("This request expired at"),
        "{late}"
    );
    assert_eq!(late["replace_original"], true);
    assert_eq!(grant_count(&stack).await, 1);
}

#[tokio::test]
async fn approval_by_the_requester_is_refused_and_a_second_admin_approves() {
    let stack = Stack::start_with(&[
        ("OPKIT_ADMINS", "UADMIN,UADMIN2"),
        ("OPKIT_GRANT_APPROVERS", "admin"),
    ])
    .await;
    let prompt = command(&stack, ADMIN, "roles grant <@UBOB> ops for 2h").await;
    assert_eq!(prompt["response_type"], "in_channel");
    let buttons = buttons(&prompt);
    assert_eq!(buttons[0].0, "opkit:approve");
    let pending = buttons[0].1.clone();

    let own = click(&stack, ADMIN, "opkit:approve", &pending).await;
    assert_eq!(own["text"], "You cannot approve your own request.");
    assert_eq!(grant_count(&stack).await, 0);

    let approved = click(&stack, "UADMIN2", "opkit:approve", &pending).await;
    let text = approved["text"].as_str().unwrap();
    assert!(
        text.starts_with("<@UADMIN2> approved `roles grant <@UBOB> ops for 2h` at "),
        "{text}"
    );
    assert!(
        text.contains("<@UADMIN> granted *ops* to <@UBOB>"),
        "{text}"
    );
    assert_eq!(grant_count(&stack).await, 1);
}

#[tokio::test]
async fn bad_or_foreign_interactions_queue_nothing() {
    let stack = Stack::start().await;
    let url = stack.slack.response_url("x");
    let cases = [
        ("not json", "payload=%7Bnope".to_string(), 400),
        ("no payload", "foo=bar".to_string(), 400),
        // Slack's: acked with 200, nothing run
        (
            "unknown action",
            click_body("U1", "someone:else", "abc", &url),
            200,
        ),
        (
            "not a click",
            serde_urlencoded::to_string([(
                "payload",
                json!({"type": "view_submission", "user": {"id": "U1"}}).to_string(),
            )])
            .unwrap(),
            200,
        ),
        (
            "wrong team",
            click_body("U1", "opkit:confirm", "abc", &url).replace("T0001", "T0666"),
            200,
        ),
    ];
    for (name, body, expected) in cases {
        let (status, text) = stack
            .ingress(stack.signed_event("/slack/interactions", &body))
            .await;
        assert_eq!(status, expected, "{name}: {text}");
    }
    // a stale signature
    let body = click_body("U1", "opkit:confirm", "abc", &url);
    let headers = opkit_tests::signed_headers(
        &opkit::slack::SigningSecret::new(opkit_tests::serverless::SECRET),
        stack.now().timestamp() - 600,
        body.as_bytes(),
    );
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let request = opkit_tests::serverless::apigw_v2_event(
        "/slack/interactions",
        body.as_bytes(),
        &headers,
        true,
    );
    assert_eq!(stack.ingress(request).await.0, 401);
    assert!(stack.drain().await.is_empty(), "nothing was queued");
    assert!(stack.slack.requests().is_empty());
}

/// Interactions Slack really sends that Opkit has no part in
/// (shared/opkit/tests/fixtures/slack/README.md).
const NOT_OURS: [&str; 7] = [
    include_str!("../../shared/opkit/tests/fixtures/slack/shortcut.json"),
    include_str!("../../shared/opkit/tests/fixtures/slack/message_action.json"),
    include_str!("../../shared/opkit/tests/fixtures/slack/view_submission.json"),
    include_str!("../../shared/opkit/tests/fixtures/slack/view_closed.json"),
    include_str!("../../shared/opkit/tests/fixtures/slack/block_suggestion.json"),
    include_str!("../../shared/opkit/tests/fixtures/slack/block_actions_other_app.json"),
    include_str!("../../shared/opkit/tests/fixtures/slack/block_actions_stale.json"),
];

#[tokio::test]
async fn every_interaction_slack_sends_that_is_not_opkits_gets_an_empty_200_and_runs_nothing() {
    let stack = Stack::start().await;
    for payload in NOT_OURS {
        // GIVEN a shortcut, a modal's submission or closing, a menu asking for
        // options, or a click in another app's (or an older) message, signed
        let body = serde_urlencoded::to_string([("payload", payload)]).unwrap();
        // WHEN it reaches the deployed ingress
        let (status, text) = stack
            .ingress(stack.signed_event("/slack/interactions", &body))
            .await;
        // THEN Slack gets an empty 200
        let kind: Value = serde_json::from_str(payload).unwrap();
        assert_eq!((status, text.as_str()), (200, ""), "{}", kind["type"]);
    }
    // AND nothing was queued, and nothing sent to Slack
    assert!(stack.drain().await.is_empty());
    assert!(stack.slack.requests().is_empty());
}

#[tokio::test]
async fn a_click_from_a_workspace_not_allowed_is_told_why_with_a_200() {
    let stack = Stack::start().await;
    let url = stack.slack.response_url("x");
    let body = click_body("U1", "opkit:confirm", "abc", &url).replace("T0001", "T0666");
    let (status, text) = stack
        .ingress(stack.signed_event("/slack/interactions", &body))
        .await;
    assert_eq!(status, 200);
    let answer: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(answer["response_type"], "ephemeral");
    assert_eq!(
        answer["text"],
        "Sorry, I cannot run that: workspace T0666 is not allowed to use this bot"
    );
    assert!(stack.drain().await.is_empty());
}
