//! Mentions and direct messages through the deployed path on the emulator:
//! Events API → ingress → SQS → worker → chat.postMessage / chat.postEphemeral.

use std::time::Duration;

use opkit_tests::serverless::Stack;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(10);

fn event(event_id: &str, inner: Value) -> String {
    json!({
        "token": "unused",
        "team_id": "T0001",
        "api_app_id": "A0001",
        "event": inner,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": 1_795_000_000,
        "authorizations": [{"team_id": "T0001", "user_id": "UBOT", "is_bot": true, "is_enterprise_install": false}],
        "is_ext_shared_channel": false
    })
    .to_string()
}

fn mention(event_id: &str, user: &str, text: &str) -> String {
    event(
        event_id,
        json!({"type": "app_mention", "user": user, "text": format!("<@UBOT> {text}"),
               "ts": "1795000000.000100", "channel": "C0001", "event_ts": "1795000000.000100"}),
    )
}

async fn deliver(stack: &Stack, body: &str) -> u16 {
    let (status, text) = stack
        .ingress(stack.signed_event("/slack/events", body))
        .await;
    assert_eq!(text, "", "events are acked with an empty body");
    status
}

async fn work_all(stack: &Stack) -> usize {
    let messages = stack.drain().await;
    let n = messages.len();
    if n > 0 {
        assert!(stack.work(&messages).await.batch_item_failures.is_empty());
    }
    n
}

#[tokio::test]
async fn a_mention_is_answered_in_its_thread() {
    let stack = Stack::start().await;
    assert_eq!(
        deliver(&stack, &mention("Ev1", "U1", "queue join perf")).await,
        200
    );
    assert_eq!(work_all(&stack).await, 1);
    let posts = stack.slack.wait_for(1, WAIT).await;
    assert_eq!(posts[0].path, "/api/chat.postMessage");
    let body = posts[0].json();
    assert_eq!(body["channel"], "C0001");
    assert_eq!(body["thread_ts"], "1795000000.000100");
    assert_eq!(body["text"], "<@U1> holds *perf* now until you leave.");
}

#[tokio::test]
async fn an_ephemeral_answer_to_a_mention_goes_only_to_the_asker() {
    let stack = Stack::start().await;
    deliver(&stack, &mention("Ev2", "U1", "whoami")).await;
    work_all(&stack).await;
    let posts = stack.slack.wait_for(1, WAIT).await;
    assert_eq!(posts[0].path, "/api/chat.postEphemeral");
    assert_eq!(posts[0].json()["user"], "U1");
    assert_eq!(posts[0].json()["thread_ts"], "1795000000.000100");
}

#[tokio::test]
async fn a_direct_message_is_answered_in_the_conversation() {
    let stack = Stack::start().await;
    let dm = event(
        "Ev3",
        json!({"type": "message", "channel_type": "im", "user": "U1", "text": "whoami",
               "ts": "1795000000.000200", "channel": "D0001", "event_ts": "1795000000.000200"}),
    );
    deliver(&stack, &dm).await;
    work_all(&stack).await;
    let posts = stack.slack.wait_for(1, WAIT).await;
    assert_eq!(posts[0].path, "/api/chat.postMessage");
    assert_eq!(posts[0].json()["channel"], "D0001");
    assert_eq!(posts[0].json()["thread_ts"], Value::Null);
    assert_eq!(
        posts[0].json()["text"],
        "You are <@U1> (`U1`), holding no roles now."
    );
}

#[tokio::test]
async fn a_retried_event_runs_once() {
    let stack = Stack::start().await;
    let body = mention("Ev4", "U1", "queue join perf");
    // Slack retries (X-Slack-Retry-Num) when an ack is slow: same event_id
    for _ in 0..3 {
        assert_eq!(deliver(&stack, &body).await, 200);
    }
    assert_eq!(work_all(&stack).await, 3, "each delivery is queued …");
    stack.slack.wait_for(1, WAIT).await;
    assert_eq!(
        stack.slack.requests().len(),
        1,
        "… but the command runs once"
    );
    use opkit::store::StateStore;
    assert_eq!(stack.store.load("queue").await.unwrap().version, 1);
}

#[tokio::test]
async fn bots_edits_joins_and_other_events_queue_nothing() {
    let stack = Stack::start().await;
    let ignored = [
        event(
            "Ev5",
            json!({"type": "app_mention", "user": "U1", "bot_id": "B1", "text": "<@UBOT> help",
                            "ts": "1.1", "channel": "C0001", "event_ts": "1.1"}),
        ),
        event(
            "Ev6",
            json!({"type": "message", "channel_type": "im", "subtype": "message_changed",
                            "channel": "D0001", "ts": "1.2", "text": ""}),
        ),
        event(
            "Ev7",
            json!({"type": "message", "channel_type": "channel", "subtype": "channel_join",
                            "user": "U1", "channel": "C0001", "ts": "1.3", "text": "joined"}),
        ),
        event(
            "Ev8",
            json!({"type": "message", "channel_type": "im", "user": "UBOT", "text": "my own reply",
                            "channel": "D0001", "ts": "1.4"}),
        ),
        event(
            "Ev9",
            json!({"type": "reaction_added", "user": "U1", "reaction": "tada",
                            "item": {"type": "message", "channel": "C0001", "ts": "1.5"}}),
        ),
    ];
    for body in &ignored {
        assert_eq!(deliver(&stack, body).await, 200);
    }
    assert!(stack.drain().await.is_empty());
    // From a workspace that is not on the list: acked, so that Slack does not
    // retry it (nor turn the subscription off), and not run.
    let wrong_team =
        mention("Ev10", "U1", "help").replace("\"team_id\":\"T0001\"", "\"team_id\":\"T0666\"");
    assert_eq!(deliver(&stack, &wrong_team).await, 200);
    let (status, _) = stack
        .ingress(stack.signed_event("/slack/events", "{\"type\":\"event_callback\"}"))
        .await;
    assert_eq!(status, 400);
    assert!(stack.drain().await.is_empty());
    assert!(stack.slack.requests().is_empty());
}

/// Payloads in the shapes Slack sends (shared/opkit/tests/fixtures/slack/README.md).
const CONNECT_MENTION: &str =
    include_str!("../../shared/opkit/tests/fixtures/slack/connect_mention.json");
const CONNECT_DM: &str = include_str!("../../shared/opkit/tests/fixtures/slack/connect_dm.json");
const GRID_MENTION: &str =
    include_str!("../../shared/opkit/tests/fixtures/slack/grid_mention.json");
const GRID_DM: &str = include_str!("../../shared/opkit/tests/fixtures/slack/grid_dm.json");

#[tokio::test]
async fn a_member_of_another_organisation_in_a_shared_channel_is_not_answered() {
    // GIVEN the deployed bot, allowed for its own workspace
    let stack = Stack::start().await;
    // WHEN a Slack Connect user of another organisation mentions it and DMs it
    // (the envelopes name our workspace; their own team is theirs)
    for body in [CONNECT_MENTION, CONNECT_DM] {
        // THEN Slack gets its 200
        assert_eq!(deliver(&stack, body).await, 200);
    }
    // AND nothing is queued, run or said
    assert!(stack.drain().await.is_empty());
    assert!(stack.slack.requests().is_empty());
}

#[tokio::test]
async fn members_of_other_organisations_are_answered_when_the_deployment_allows_them() {
    let stack = Stack::start_with(&[("OPKIT_ALLOW_EXTERNAL_USERS", "true")]).await;
    assert_eq!(deliver(&stack, CONNECT_DM).await, 200);
    assert_eq!(work_all(&stack).await, 1);
    let posts = stack.slack.wait_for(1, WAIT).await;
    assert_eq!(posts[0].json()["channel"], "D0SHARED");
}

#[tokio::test]
async fn an_enterprise_grid_organisation_on_the_list_is_answered_in_mentions_and_dms() {
    // GIVEN the bot allowed for an Enterprise Grid organisation by its E… id
    let stack = Stack::start_with(&[("OPKIT_TEAM_IDS", "E0001")]).await;
    // WHEN one of its members mentions the bot and DMs it
    assert_eq!(deliver(&stack, GRID_MENTION).await, 200);
    assert_eq!(deliver(&stack, GRID_DM).await, 200);
    // THEN both are run and answered
    assert_eq!(work_all(&stack).await, 2);
    let posts = stack.slack.wait_for(2, WAIT).await;
    let texts: Vec<&str> = posts
        .iter()
        .map(|p| p.json()["text"].as_str().unwrap_or_default())
        .collect();
    assert!(
        texts.iter().all(|text| text.contains("<@W0001>")),
        "{texts:?}"
    );
}

/// Events about the app itself, some organisation-level without `team_id`
/// (shared/opkit/tests/fixtures/slack/README.md).
const APP_EVENTS: [&str; 4] = [
    include_str!("../../shared/opkit/tests/fixtures/slack/app_uninstalled.json"),
    include_str!("../../shared/opkit/tests/fixtures/slack/tokens_revoked.json"),
    include_str!("../../shared/opkit/tests/fixtures/slack/team_access_granted.json"),
    include_str!("../../shared/opkit/tests/fixtures/slack/grid_app_uninstalled.json"),
];

#[tokio::test]
async fn uninstalls_revocations_and_organisation_level_events_are_acked_and_run_nothing() {
    for allowed in ["T0001,E0001", "T0666"] {
        let stack = Stack::start_with(&[("OPKIT_TEAM_IDS", allowed)]).await;
        for body in APP_EVENTS {
            assert_eq!(deliver(&stack, body).await, 200, "{allowed}: {body}");
        }
        assert!(stack.drain().await.is_empty(), "{allowed}");
        assert!(stack.slack.requests().is_empty(), "{allowed}");
    }
}
