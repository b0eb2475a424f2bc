//! HttpPoster and SlackApi against the fake Slack: delivery, retries and failures.

use std::time::Duration;

use opkit::slack::poster::{HttpPoster, PostError, ReplyPoster, RetryPolicy};
use opkit::slack::web::{
    BotToken, ChannelPoster, Directory, PostedMessage, SlackApi, SlackConversation, WebApiError,
};
use opkit::slack::{Block, Reply};
use opkit_tests::{CannedResponse, FakeSlack, RecordedBody};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(5);

/// Millisecond delays so retries do not slow the tests down.
fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        attempts: 3,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(50),
    }
}

fn poster() -> HttpPoster {
    HttpPoster::new(reqwest::Client::new()).with_retry_policy(fast_retries())
}

fn api(slack: &FakeSlack) -> SlackApi {
    SlackApi::new(BotToken::new("xoxb-test-token"), reqwest::Client::new())
        .with_base_url(slack.api_url())
        .with_retry_policy(fast_retries())
}

fn answered(slack: &FakeSlack) -> Vec<u16> {
    slack.requests().iter().map(|r| r.answered).collect()
}

#[tokio::test]
async fn reply_is_posted_to_the_response_url_as_slack_json() {
    // GIVEN a fake Slack and an in-channel reply with a block
    let slack = FakeSlack::start().await;
    let reply = Reply::in_channel("queue perf: <@U1>").block(Block::Divider);
    // WHEN it is posted to a response_url
    poster()
        .post(&slack.checked_response_url("cmd-1"), &reply)
        .await
        .unwrap();
    // THEN the fake received exactly Reply::to_response_json as JSON
    let posts = slack.posts_to("/response/cmd-1");
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].json(), &reply.to_response_json());
    assert!(
        posts[0]
            .header("content-type")
            .is_some_and(|v| v.starts_with("application/json"))
    );
}

#[tokio::test]
async fn server_error_is_retried_and_delivered_once() {
    // GIVEN a response_url that fails once with 500
    let slack = FakeSlack::start().await;
    slack.fail_next(1, 500);
    // WHEN a reply is posted
    let result = poster()
        .post(&slack.checked_response_url("cmd"), &Reply::text("hi"))
        .await;
    // THEN it succeeds on the retry: one failure, then exactly one delivery
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(answered(&slack), [500, 200]);
    assert_eq!(
        slack.requests().iter().filter(|r| r.was_accepted()).count(),
        1
    );
}

#[tokio::test]
async fn rate_limit_is_retried_after_retry_after() {
    // GIVEN a response_url that answers 429 with Retry-After: 0 once
    let slack = FakeSlack::start().await;
    slack.push_response(CannedResponse::rate_limited(0));
    // WHEN a reply is posted
    let result = poster()
        .post(&slack.checked_response_url("cmd"), &Reply::text("hi"))
        .await;
    // THEN it is retried and delivered
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(answered(&slack), [429, 200]);
}

#[tokio::test]
async fn rate_limit_waits_the_whole_retry_after_then_delivers_once() {
    // GIVEN a response_url that answers 429 with Retry-After: 1 once, and a policy
    // that allows waits of up to 2 s
    let slack = FakeSlack::start().await;
    slack.push_response(CannedResponse::rate_limited(1));
    let poster = poster().with_retry_policy(RetryPolicy {
        max_delay: Duration::from_secs(2),
        ..fast_retries()
    });
    // WHEN a reply is posted
    let started = std::time::Instant::now();
    let result = poster
        .post(&slack.checked_response_url("cmd"), &Reply::text("hi"))
        .await;
    // THEN the retry came no sooner than Slack asked, and the reply was delivered once
    assert!(result.is_ok(), "{result:?}");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(answered(&slack), [429, 200]);
}

#[tokio::test]
async fn a_retry_after_longer_than_the_policy_allows_is_not_cut_short() {
    // GIVEN a 429 asking for 30 s, and a policy that waits at most 50 ms
    let slack = FakeSlack::start().await;
    slack.push_response(CannedResponse::rate_limited(30));
    // WHEN a reply is posted
    let (poster, url, reply) = (
        poster(),
        slack.checked_response_url("cmd"),
        Reply::text("hi"),
    );
    let result = tokio::time::timeout(Duration::from_secs(10), poster.post(&url, &reply))
        .await
        .expect("it did not wait the 30 s");
    // THEN it gives up at once with the 429 instead of asking again too early
    let error = result.unwrap_err();
    assert!(
        matches!(error, PostError::Status { status: 429, .. }),
        "{error:?}"
    );
    assert!(error.is_transient());
    assert_eq!(answered(&slack), [429], "Slack was not asked again");
}

#[tokio::test]
async fn rate_limits_and_server_errors_in_a_row_still_deliver_once() {
    // GIVEN a response_url that answers 429 (Retry-After: 0), then 503, then accepts
    let slack = FakeSlack::start().await;
    slack.push_response(CannedResponse::rate_limited(0));
    slack.push_response(CannedResponse::status(503));
    // WHEN a reply is posted
    let result = poster()
        .post(&slack.checked_response_url("cmd"), &Reply::text("hi"))
        .await;
    // THEN the third try delivers it, and it was accepted once
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(answered(&slack), [429, 503, 200]);
    assert_eq!(
        slack.requests().iter().filter(|r| r.was_accepted()).count(),
        1
    );
}

#[tokio::test]
async fn client_error_is_not_retried() {
    // GIVEN a response_url that answers 404 (expired or unknown)
    let slack = FakeSlack::start().await;
    slack.push_response(CannedResponse::status(404).with_body("no_such_url"));
    // WHEN a reply is posted
    let error = poster()
        .post(&slack.checked_response_url("cmd"), &Reply::text("hi"))
        .await
        .unwrap_err();
    // THEN it fails at once with the status and body excerpt
    assert!(
        matches!(error, PostError::Status { status: 404, ref body } if body == "no_such_url"),
        "{error:?}"
    );
    assert!(!error.is_transient());
    assert_eq!(answered(&slack), [404]);
}

#[tokio::test]
async fn retries_are_bounded_by_the_policy() {
    // GIVEN a response_url that keeps failing with 503
    let slack = FakeSlack::start().await;
    slack.fail_next(5, 503);
    // WHEN a reply is posted with a 3-try policy
    let error = poster()
        .post(&slack.checked_response_url("cmd"), &Reply::text("hi"))
        .await
        .unwrap_err();
    // THEN it gives up after 3 tries with the last status
    assert!(
        matches!(error, PostError::Status { status: 503, .. }),
        "{error:?}"
    );
    assert!(error.is_transient());
    assert_eq!(answered(&slack), [503, 503, 503]);
}

#[tokio::test]
async fn slow_answer_times_out_without_a_retry() {
    // GIVEN a response_url that answers after 2 s, and a 200 ms client timeout
    let slack = FakeSlack::start().await;
    slack.push_response(CannedResponse::delayed(Duration::from_secs(2)));
    let poster = poster().with_timeout(Duration::from_millis(200));
    // WHEN a reply is posted
    let error = poster
        .post(&slack.checked_response_url("cmd"), &Reply::text("hi"))
        .await
        .unwrap_err();
    // THEN it is a timeout, not retried (the reply may have been delivered)
    assert!(matches!(error, PostError::Timeout { .. }), "{error:?}");
    assert_eq!(slack.requests().len(), 1);
}

#[tokio::test]
async fn unreachable_slack_is_a_transport_error_without_the_url() {
    // GIVEN a loopback port nobody listens on
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://{}/response/secret-path",
        listener.local_addr().unwrap()
    );
    drop(listener);
    opkit::slack::response_url::allow_origin_of(&url);
    let url = opkit::slack::ResponseUrl::parse(&url).unwrap();
    // WHEN a reply is posted there
    let error = poster().post(&url, &Reply::text("hi")).await.unwrap_err();
    // THEN it is a transient transport error that does not leak the response_url
    assert!(matches!(error, PostError::Transport { .. }), "{error:?}");
    assert!(error.is_transient());
    assert!(!format!("{error} {error:?}").contains("secret-path"));
}

#[tokio::test]
async fn post_message_sends_bearer_token_and_returns_the_message_id() {
    // GIVEN a fake Web API
    let slack = FakeSlack::start().await;
    // WHEN a message is posted in a thread
    let posted = api(&slack)
        .post_message("C0001", &Reply::text("deployed"), Some("1700000000.000001"))
        .await
        .unwrap();
    // THEN Slack's channel and ts come back
    assert_eq!(posted.channel, "C0001");
    assert!(!posted.ts.is_empty());
    // AND the call carried the token and the chat.postMessage arguments
    let calls = slack.posts_to("/api/chat.postMessage");
    assert_eq!(calls.len(), 1);
    assert_eq!(
        calls[0].header("authorization"),
        Some("Bearer xoxb-test-token")
    );
    assert_eq!(
        calls[0].json(),
        &json!({"channel": "C0001", "text": "deployed", "thread_ts": "1700000000.000001"})
    );
}

#[tokio::test]
async fn slack_refusal_becomes_a_slack_error_without_retry() {
    // GIVEN a Web API that answers ok:false
    let slack = FakeSlack::start().await;
    slack.push_response(CannedResponse::slack_error("channel_not_found"));
    // WHEN a message is posted
    let error = api(&slack)
        .post_message("C404", &Reply::text("hi"), None)
        .await
        .unwrap_err();
    // THEN the error carries the method and Slack's code, and nothing was retried
    assert!(
        matches!(
            error,
            WebApiError::Slack { method: "chat.postMessage", ref error } if error == "channel_not_found"
        ),
        "{error:?}"
    );
    assert_eq!(slack.requests().len(), 1);
}

#[tokio::test]
async fn web_api_rate_limit_is_retried() {
    // GIVEN a Web API that rate-limits the first call
    let slack = FakeSlack::start().await;
    slack.push_response(CannedResponse::rate_limited(0));
    // WHEN a message is posted
    let result = api(&slack)
        .post_message("C0001", &Reply::text("hi"), None)
        .await;
    // THEN it is retried and succeeds
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(answered(&slack), [429, 200]);
}

#[tokio::test]
async fn web_api_rate_limit_longer_than_allowed_is_not_retried_early() {
    // GIVEN a Web API that rate-limits chat.postMessage for a minute
    let slack = FakeSlack::start().await;
    slack.push_response(CannedResponse::rate_limited(60));
    // WHEN a message is posted
    let error = api(&slack)
        .post_message("C0001", &Reply::text("hi"), None)
        .await
        .unwrap_err();
    // THEN it fails with the 429, having asked once
    assert!(
        matches!(
            error,
            WebApiError::Http {
                source: PostError::Status { status: 429, .. },
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(answered(&slack), [429]);
}

#[tokio::test]
async fn web_api_that_keeps_failing_is_an_http_error() {
    let slack = FakeSlack::start().await;
    slack.fail_next(3, 502);
    let error = api(&slack)
        .post_message("C0001", &Reply::text("hi"), None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            WebApiError::Http {
                method: "chat.postMessage",
                source: PostError::Status { status: 502, .. }
            }
        ),
        "{error:?}"
    );
    assert_eq!(slack.requests().len(), 3);
}

#[tokio::test]
async fn web_api_answer_that_is_not_json_is_invalid() {
    let slack = FakeSlack::start().await;
    slack.push_response(CannedResponse::status(200).with_body("<html>"));
    let error = api(&slack)
        .post_message("C0001", &Reply::text("hi"), None)
        .await
        .unwrap_err();
    assert!(
        matches!(error, WebApiError::InvalidResponse { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn ephemeral_and_update_calls_carry_their_arguments() {
    // GIVEN a fake Web API
    let slack = FakeSlack::start().await;
    let api = api(&slack);
    // WHEN an ephemeral message is posted and a message updated
    api.post_ephemeral("C0001", "U0001", &Reply::text("only you"), None)
        .await
        .unwrap();
    let updated = api
        .update("C0001", "1700000000.000009", &Reply::text("edited"))
        .await
        .unwrap();
    // THEN each method got its arguments
    let ephemeral = slack.posts_to("/api/chat.postEphemeral");
    assert_eq!(
        ephemeral[0].json(),
        &json!({"channel": "C0001", "user": "U0001", "text": "only you"})
    );
    let update = slack.posts_to("/api/chat.update");
    assert_eq!(
        update[0].json(),
        &json!({"channel": "C0001", "ts": "1700000000.000009", "text": "edited"})
    );
    assert_eq!(updated.channel, "C0001");
}

#[tokio::test]
async fn slack_api_serves_as_a_channel_poster() {
    // GIVEN the Web API client behind the narrow port
    let slack = FakeSlack::start().await;
    let api = api(&slack);
    let port: &dyn ChannelPoster = &api;
    // WHEN two messages are posted through it
    let first = port
        .post_message("C0001", &Reply::text("a"), None)
        .await
        .unwrap();
    let second = port
        .post_message("C0001", &Reply::text("b"), None)
        .await
        .unwrap();
    // THEN both reach Slack and get distinct ids
    assert_eq!(slack.posts_to("/api/chat.postMessage").len(), 2);
    assert_ne!(first, second);
    assert!(matches!(first, PostedMessage { ref channel, .. } if channel == "C0001"));
}

#[tokio::test]
async fn wait_for_sees_posts_made_by_a_background_task() {
    // GIVEN a reply posted from another task (as a worker would)
    let slack = FakeSlack::start().await;
    let url = slack.checked_response_url("bg");
    let task = tokio::spawn(async move { poster().post(&url, &Reply::text("later")).await });
    // WHEN the test waits for it
    let requests = slack.wait_for(1, WAIT).await;
    // THEN it is there
    assert_eq!(requests[0].path, "/response/bg");
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn users_info_is_asked_with_the_token_and_gives_the_time_zone() {
    // GIVEN a fake Slack that knows one user, in Paris
    let slack = FakeSlack::start().await;
    slack.add_user(json!({
        "id": "U0PARIS01", "team_id": "T0TEAM001", "name": "camille",
        "real_name": "Camille Martin", "deleted": false, "is_bot": false,
        "tz": "Europe/Paris", "tz_label": "Central European Time", "tz_offset": 3600,
        "profile": {"display_name": "camille"}
    }));
    let api = api(&slack);
    let directory: &dyn Directory = &api;
    // WHEN the bot looks up that user and one Slack does not know
    let known = directory.user_info("U0PARIS01").await.unwrap();
    let unknown = directory.user_info("U0NOBODY1").await.unwrap();
    // THEN the first has its time zone, the second is None (not an error)
    let known = known.expect("a known user");
    assert_eq!(known.tz.as_deref(), Some("Europe/Paris"));
    assert_eq!(known.tz_offset, Some(3600));
    assert_eq!(unknown, None);
    // AND the call was a form-encoded POST with the bot token
    let calls = slack.posts_to("/api/users.info");
    assert_eq!(calls.len(), 2);
    assert_eq!(
        calls[0].header("authorization"),
        Some("Bearer xoxb-test-token")
    );
    assert_eq!(
        calls[0].header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        calls[0].body,
        RecordedBody::Form(vec![("user".into(), "U0PARIS01".into())])
    );
}

#[tokio::test]
async fn conversations_info_finds_a_channel_and_other_refusals_are_errors() {
    // GIVEN a fake Slack that knows #ops
    let slack = FakeSlack::start().await;
    slack.add_conversation(json!({
        "id": "C0OPS0001", "name": "ops", "is_channel": true, "is_private": false,
        "is_archived": false, "is_im": false
    }));
    let api = api(&slack);
    // WHEN it is looked up, then an unknown one, then with a missing scope
    let ops = api.conversation_info("C0OPS0001").await.unwrap();
    let unknown = api.conversation_info("C0NONE001").await.unwrap();
    slack.push_response(CannedResponse::slack_error("missing_scope"));
    let refused = api.conversation_info("C0OPS0001").await.unwrap_err();
    // THEN: found, None, and Slack's refusal as an error naming the method
    assert_eq!(ops, Some(SlackConversation::channel("C0OPS0001", "ops")));
    assert_eq!(unknown, None);
    assert!(
        matches!(refused, WebApiError::Slack { method: "conversations.info", ref error } if error == "missing_scope"),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_notice_the_channel_refuses_is_told_to_the_granter_once_by_dm() {
    use std::sync::Arc;

    use opkit::expiry::Expiry;
    use opkit::testing::TestBot;

    // GIVEN a grant for an hour, given in a channel the bot is not in
    let slack = FakeSlack::start().await;
    let t = TestBot::new();
    t.say("UADMIN", "roles grant <@UBOB> ops for 1h").await;
    t.advance(chrono::Duration::hours(1));
    // AND Slack refuses the channel post as it does there
    slack.push_response(CannedResponse::slack_error("not_in_channel"));
    // WHEN the expiry pass ends the grant
    let expiry = Expiry::new(t.bot.clone(), Some(Arc::new(api(&slack))));
    let report = expiry.run_once().await.unwrap();
    // THEN the channel post was tried, and the granter got one DM instead
    let posts = slack.posts_to("/api/chat.postMessage");
    assert_eq!(posts.len(), 2, "{posts:?}");
    assert_eq!(posts[0].json()["channel"], "C0PS");
    let dm = posts[1].json();
    assert_eq!(dm["channel"], "UADMIN");
    let text = dm["text"].as_str().unwrap();
    assert!(
        text.starts_with("I could not post this in <#C0PS> (Slack said `not_in_channel`)"),
        "{text}"
    );
    assert!(text.contains("*ops* role for <@UBOB> ended"), "{text}");
    // AND its blocks carry the note and the notice both
    let blocks = dm["blocks"].as_array().unwrap();
    assert_eq!(blocks.len(), 2);
    assert!(
        blocks[1]["text"]["text"]
            .as_str()
            .unwrap()
            .contains("ended")
    );
    assert_eq!(
        (report.posted, report.not_posted, report.owners_told),
        (0, 1, 1)
    );
}

#[tokio::test]
async fn another_refusal_of_a_notice_is_logged_not_told() {
    use std::sync::Arc;

    use opkit::expiry::Expiry;
    use opkit::testing::TestBot;

    let slack = FakeSlack::start().await;
    let t = TestBot::new();
    t.say("UADMIN", "roles grant <@UBOB> ops for 1h").await;
    t.advance(chrono::Duration::hours(1));
    slack.push_response(CannedResponse::slack_error("invalid_blocks"));
    let expiry = Expiry::new(t.bot.clone(), Some(Arc::new(api(&slack))));
    let report = expiry.run_once().await.unwrap();
    assert_eq!(slack.posts_to("/api/chat.postMessage").len(), 1);
    assert_eq!(
        (report.posted, report.not_posted, report.owners_told),
        (0, 1, 0)
    );
}
