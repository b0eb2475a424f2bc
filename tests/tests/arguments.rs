//! Users and channels typed in a command, end to end: the ingress, SQS and the
//! worker on the emulator, with the bot token pointed at the fake Slack, whose
//! `users.info` and `conversations.info` know the users and channels a test adds.

use std::time::Duration;

use opkit::store::GrantStore;
use opkit_tests::serverless::{ADMIN, Stack};
use opkit_tests::slash_command_body;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(10);

/// Sends `text` as `ADMIN`'s slash command, runs the job, and returns the reply
/// posted to the response URL named `name`.
async fn answer(stack: &Stack, text: &str, name: &str) -> String {
    let body = slash_command_body(ADMIN, text, &stack.slack.response_url(name));
    let (status, ack) = stack
        .ingress(stack.signed_event("/slack/commands", &body))
        .await;
    assert_eq!(status, 200, "{ack}");
    let response = stack.work(&stack.drain().await).await;
    assert!(response.batch_item_failures.is_empty());
    let replies = stack
        .slack
        .wait_for_path(&format!("/response/{name}"), WAIT)
        .await;
    let reply: &Value = replies.last().expect("a reply").json();
    reply["text"].as_str().expect("a text reply").to_owned()
}

#[tokio::test]
async fn a_bare_id_is_granted_only_once_users_info_confirms_it() {
    // GIVEN a deployment whose Slack knows one user, U0BOB0001
    let stack = Stack::start().await;
    stack.slack.add_user(json!({
        "id": "U0BOB0001", "team_id": "T0001", "name": "bob", "deleted": false,
        "is_bot": false, "tz": "Europe/Paris", "tz_offset": 3600
    }));
    // WHEN an admin grants roles to names typed as text, and to ids
    let refused = [
        answer(&stack, "roles grant @BOB ops", "bob-name").await,
        answer(&stack, "roles grant BOB ops", "bob-bare").await,
        answer(&stack, "roles grant U0NOBODY1 ops", "nobody").await,
    ];
    let granted = answer(&stack, "roles grant U0BOB0001 ops", "bob-id").await;
    // THEN the names and the unknown id are refused, saying how to name a user
    assert!(
        refused[0].starts_with("Slack knows no user `BOB`: mention them like @name"),
        "{}",
        refused[0]
    );
    assert!(
        refused[1].starts_with("Slack knows no user `BOB`"),
        "{}",
        refused[1]
    );
    assert!(
        refused[2].starts_with("Slack knows no user `U0NOBODY1`"),
        "{}",
        refused[2]
    );
    // AND the confirmed id is granted
    assert_eq!(
        granted,
        "<@UADMIN> granted *ops* to <@U0BOB0001> until revoked."
    );
    let grants = stack.store.all_grants().await.unwrap();
    assert_eq!(grants.len(), 1);
    assert_eq!(grants[0].user.as_str(), "U0BOB0001");
    // AND each id was asked of users.info with the bot token
    let lookups = stack.slack.posts_to("/api/users.info");
    assert_eq!(lookups.len(), 4);
    assert_eq!(lookups[0].header("authorization"), Some("Bearer xoxb-test"));
}

#[tokio::test]
async fn a_channel_typed_as_text_is_refused_and_a_bare_id_confirmed() {
    // GIVEN a deployment whose Slack knows #ops, C0OPS0001
    let stack = Stack::start().await;
    stack.slack.add_conversation(json!({
        "id": "C0OPS0001", "name": "ops", "is_channel": true, "is_private": false,
        "is_archived": false
    }));
    // WHEN an admin schedules into `#ops` typed as text, then into its id
    let refused = answer(
        &stack,
        "schedule add standup \"daily 09:00\" #ops queue status",
        "hash",
    )
    .await;
    let added = answer(
        &stack,
        "schedule add standup \"daily 09:00\" C0OPS0001 queue status",
        "id",
    )
    .await;
    // THEN the text is refused with what to type, and the id accepted
    assert!(
        refused.starts_with("expected a #channel, not `#ops`: pick it from the list"),
        "{refused}"
    );
    assert!(added.contains("in <#C0OPS0001>"), "{added}");
    assert_eq!(stack.slack.posts_to("/api/conversations.info").len(), 1);
}
