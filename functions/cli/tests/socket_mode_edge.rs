//! `opkit serve --socket-mode` acknowledges every envelope type Slack really sends,
//! as the HTTP routes answer them with a 200 (issue #10 §1): the real binary, the
//! fake Socket Mode server, and payloads in Slack's shapes
//! (shared/opkit/tests/fixtures/slack/README.md). Nothing sleeps.

mod socket_harness;

use serde_json::{Value, json};
use socket_harness::*;

/// What Slack sends that Opkit has no part in, by envelope type, and whether
/// Slack accepts a response payload for it.
const NOT_OURS: [(&str, bool, &str); 11] = [
    (
        "interactive",
        false,
        include_str!("../../../shared/opkit/tests/fixtures/slack/shortcut.json"),
    ),
    (
        "interactive",
        false,
        include_str!("../../../shared/opkit/tests/fixtures/slack/message_action.json"),
    ),
    (
        "interactive",
        true,
        include_str!("../../../shared/opkit/tests/fixtures/slack/view_submission.json"),
    ),
    (
        "interactive",
        false,
        include_str!("../../../shared/opkit/tests/fixtures/slack/view_closed.json"),
    ),
    (
        "interactive",
        true,
        include_str!("../../../shared/opkit/tests/fixtures/slack/block_suggestion.json"),
    ),
    (
        "interactive",
        false,
        include_str!("../../../shared/opkit/tests/fixtures/slack/block_actions_other_app.json"),
    ),
    (
        "interactive",
        false,
        include_str!("../../../shared/opkit/tests/fixtures/slack/block_actions_stale.json"),
    ),
    (
        "events_api",
        false,
        include_str!("../../../shared/opkit/tests/fixtures/slack/app_uninstalled.json"),
    ),
    (
        "events_api",
        false,
        include_str!("../../../shared/opkit/tests/fixtures/slack/tokens_revoked.json"),
    ),
    (
        "events_api",
        false,
        include_str!("../../../shared/opkit/tests/fixtures/slack/team_access_granted.json"),
    ),
    (
        "events_api",
        false,
        include_str!("../../../shared/opkit/tests/fixtures/slack/grid_app_uninstalled.json"),
    ),
];

#[tokio::test]
async fn every_envelope_opkit_has_no_part_in_is_acked_with_its_id_alone_and_runs_nothing() {
    // GIVEN the bot, allowed for its workspace and its organisation
    let Connected {
        slack,
        mut connection,
        bot: _bot,
        ..
    } = connected_with(&[("OPKIT_TEAM_IDS", "T0001,E0001")], false).await;
    for (i, (kind, accepts, payload)) in NOT_OURS.into_iter().enumerate() {
        // WHEN Slack sends a shortcut, a modal's submission, a menu's options
        // request, another app's click, an uninstall, an organisation-level event…
        let id = format!("edge-{i}");
        let payload: Value = serde_json::from_str(payload).unwrap();
        connection
            .send(json!({"envelope_id": id, "type": kind,
                         "accepts_response_payload": accepts, "payload": payload}))
            .await;
        // THEN it is acked with its id and nothing else
        assert_eq!(
            connection.receive().await,
            json!({"envelope_id": id}),
            "{kind} {}",
            payload["type"]
        );
    }
    // AND nothing ran: the next request Slack sees is the answer to a member's command
    join_queue(&slack, &mut connection, "member", "perf", 2).await;
    assert!(slack.posts_to("/api/chat.postMessage").is_empty());
}

#[tokio::test]
async fn a_refused_slash_command_is_acked_with_the_reason_for_the_user() {
    // GIVEN the bot allowed for another workspace than the caller's
    let Connected {
        slack,
        mut connection,
        bot: _bot,
        ..
    } = connected_with(&[("OPKIT_TEAM_IDS", "T0002")], false).await;
    // WHEN a slash command arrives from T0001
    let url = slack.response_url("refused");
    connection
        .send(slash_envelope("refused-1", "U1", "queue join perf", &url))
        .await;
    // THEN the ack carries an ephemeral refusal that says why, and nothing runs
    assert_eq!(
        connection.receive().await,
        json!({"envelope_id": "refused-1", "payload": {
            "response_type": "ephemeral",
            "replace_original": false,
            "text": "Sorry, I cannot run that: workspace T0001 is not allowed to use this bot",
        }})
    );
    assert_eq!(slack.requests().len(), 1, "only apps.connections.open");
}
