//! Alarm notifications through the deployed path on the emulator: an EventBridge
//! event on the notifications queue (real SQS client) → the worker handler, which
//! tells the queue by its ARN → the notify state in DynamoDB → the fake Slack's
//! `chat.postMessage` / `chat.update`; and the notification's buttons clicked
//! through the ingress (signed `block_actions`) → jobs queue → worker.

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::SqsBatchResponse;
use chrono::Duration as Span;
use opkit::engine::bot::Request;
use opkit::engine::command::Caller;
use opkit::ids::{ChannelId, UserId};
use opkit::store::AuditLog;
use opkit_tests::CannedResponse;
use opkit_tests::aws::{sdk_config, unique_name};
use opkit_tests::aws_packs::{
    FakeImages, cloudwatch_client, ec2_client, run_instance, say_confirmed, seed_alarm,
};
use opkit_tests::eventbridge::{alarm_change, instance_change};
use opkit_tests::serverless::{ADMIN, Stack, sqs_event_from};
use opkit_tests::slack_request::CHANNEL_ID;
use opkit_tests::{RecordedRequest, slash_command_body};
use opkit_worker::Notifications;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(10);

/// The emulator's region (the sample events' too).
fn region() -> String {
    std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into())
}

/// The notifications queue on the emulator, and the worker's way of reading it.
struct Events {
    url: String,
    arn: String,
    notifications: Notifications,
}

async fn events(stack: &Stack) -> Events {
    let created = stack
        .sqs
        .create_queue()
        .queue_name(unique_name("notify"))
        .send()
        .await
        .expect("create the notifications queue");
    let url = created.queue_url().expect("a queue url").to_string();
    let attributes = stack
        .sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("queue attributes");
    let arn = attributes
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
        .expect("a queue ARN")
        .clone();
    // As deployed: managed instances told by the real EC2 client, alarms' tags read
    // by the real CloudWatch client (on the emulator, through the bridge).
    let ec2 = Arc::new(aws_sdk_ec2::Client::new(&sdk_config().await));
    let notifier = catbot::notifier(&stack.bot, &stack.config, reqwest::Client::new(), Some(ec2))
        .with_alarm_tags(Arc::new(cloudwatch_client(&region()).await));
    Events {
        url,
        arn: arn.clone(),
        notifications: Notifications {
            queue_arn: arn,
            notifier,
        },
    }
}

impl Events {
    /// EventBridge puts `body` on the queue; the worker gets it as its mapping does.
    async fn deliver(&self, stack: &Stack, body: &str) -> SqsBatchResponse {
        stack
            .sqs
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .send()
            .await
            .expect("send an event");
        let messages = opkit::sqs::receive(&stack.sqs, &self.url, 10, 0)
            .await
            .expect("receive");
        assert_eq!(messages.len(), 1);
        let deadline = stack.now() + Span::seconds(30);
        let event = sqs_event_from(&messages, &self.arn);
        opkit_worker::handle_routed(&stack.runner, Some(&self.notifications), event, deadline).await
    }

    /// As [`Events::deliver`], expecting every record done with.
    async fn handled(&self, stack: &Stack, body: &str) {
        let response = self.deliver(stack, body).await;
        assert!(response.batch_item_failures.is_empty(), "{response:?}");
    }
}

/// Runs a slash command in [`CHANNEL_ID`] through ingress → SQS → worker.
async fn command(stack: &Stack, user: &str, text: &str) -> Value {
    let before = stack.slack.requests().len();
    let body = slash_command_body(user, text, &stack.slack.response_url("cmd"));
    let (status, _) = stack
        .ingress(stack.signed_event("/slack/commands", &body))
        .await;
    assert_eq!(status, 200);
    let response = stack.work(&stack.drain().await).await;
    assert!(response.batch_item_failures.is_empty());
    stack.slack.wait_for(before + 1, WAIT).await[before]
        .json()
        .clone()
}

/// `user` types `text` in `channel` (no response_url needed: the bot answers here).
async fn say_in(stack: &Stack, channel: &str, user: &str, text: &str) -> String {
    let caller = Caller::in_channel(
        UserId::parse(user).unwrap(),
        ChannelId::parse(channel).unwrap(),
    );
    stack
        .bot
        .handle(&Request::new(caller, text))
        .await
        .text
        .into_string()
}

/// Clicks the command button `label` of the posted `notification` as `user`, as
/// Slack sends the click (the message's `ts` in `container` and `message`),
/// through ingress → SQS → worker; returns what was posted to the click's
/// response_url.
async fn press(stack: &Stack, user: &str, notification: &RecordedRequest, label: &str) -> Value {
    let message = notification.json();
    let ts = notification.answered_ts().expect("the notification's ts");
    let button = message["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["type"] == "actions")
        .flat_map(|b| b["elements"].as_array().unwrap().iter())
        .find(|e| e["text"]["text"] == label)
        .unwrap_or_else(|| panic!("no button {label} in {message}"))
        .clone();
    let url = stack.slack.response_url("click");
    let payload = json!({
        "type": "block_actions",
        "user": {"id": user, "username": user.to_lowercase(), "team_id": "T0001"},
        "api_app_id": "A0001",
        "token": "unused",
        "container": {"type": "message", "message_ts": ts, "channel_id": CHANNEL_ID, "is_ephemeral": false},
        "message": {"type": "message", "ts": ts, "text": message["text"], "blocks": message["blocks"]},
        "trigger_id": "13345224609.738474920.8088930838d88f008e0",
        "team": {"id": "T0001", "domain": "opkit-test"},
        "channel": {"id": CHANNEL_ID, "name": "ops"},
        "response_url": url,
        "actions": [{"action_id": button["action_id"], "block_id": "b1", "value": button["value"],
                     "type": "button", "action_ts": "1795000001.000400"}]
    });
    let body = serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap();
    let before = stack.slack.posts_to("/response/click").len();
    let (status, text) = stack
        .ingress(stack.signed_event("/slack/interactions", &body))
        .await;
    assert_eq!((status, text.as_str()), (200, ""));
    let response = stack.work(&stack.drain().await).await;
    assert!(response.batch_item_failures.is_empty());
    stack.slack.wait_for_path("/response/click", WAIT).await;
    stack.slack.posts_to("/response/click")[before]
        .json()
        .clone()
}

fn posts(stack: &Stack) -> Vec<RecordedRequest> {
    stack.slack.posts_to("/api/chat.postMessage")
}

fn updates(stack: &Stack) -> Vec<RecordedRequest> {
    stack.slack.posts_to("/api/chat.update")
}

#[tokio::test]
async fn a_state_change_is_posted_to_each_subscribed_channel_and_to_no_other() {
    let stack = Stack::start().await;
    let events = events(&stack).await;
    command(&stack, ADMIN, "alarms subscribe api-").await;
    say_in(&stack, "C0TWO", ADMIN, "alarms subscribe all alarm").await;
    say_in(&stack, "C0THREE", ADMIN, "alarms subscribe db-").await;
    events
        .handled(&stack, &alarm_change("api-5xx", "OK", "ALARM", stack.now()))
        .await;
    let mut channels: Vec<String> = posts(&stack)
        .iter()
        .map(|p| p.json()["channel"].as_str().unwrap().to_string())
        .collect();
    channels.sort();
    assert_eq!(channels, [CHANNEL_ID, "C0TWO"]);
    let message = posts(&stack)[0].json().clone();
    assert!(
        message["text"]
            .as_str()
            .unwrap()
            .contains("*api-5xx* is ALARM"),
        "{message}"
    );
    // an alarm nobody subscribed to posts nothing
    events
        .handled(
            &stack,
            &alarm_change("queue-depth", "ALARM", "OK", stack.now()),
        )
        .await;
    assert_eq!(posts(&stack).len(), 2);
}

#[tokio::test]
async fn recovery_updates_the_original_and_replies_in_its_thread() {
    let stack = Stack::start().await;
    let events = events(&stack).await;
    command(&stack, ADMIN, "alarms subscribe api-").await;
    let at = stack.now();
    events
        .handled(&stack, &alarm_change("api-5xx", "OK", "ALARM", at))
        .await;
    let recovered = at + Span::minutes(14);
    // (an event dated ahead of the clock is refused: it is that time now)
    stack.clock.advance(Span::minutes(14));
    events
        .handled(&stack, &alarm_change("api-5xx", "ALARM", "OK", recovered))
        .await;
    let all = posts(&stack);
    assert_eq!(all.len(), 2, "the opening message and one thread reply");
    let reply = all[1].json();
    let thread = reply["thread_ts"]
        .as_str()
        .expect("a reply in the thread")
        .to_string();
    assert!(
        reply["text"]
            .as_str()
            .unwrap()
            .contains("back to OK after 14m"),
        "{reply}"
    );
    let update = updates(&stack);
    assert_eq!(update.len(), 1);
    let update = update[0].json();
    assert_eq!(
        update["ts"].as_str(),
        Some(thread.as_str()),
        "the original is updated"
    );
    assert_eq!(update["channel"], CHANNEL_ID);
    assert!(
        update["text"]
            .as_str()
            .unwrap()
            .contains("is OK again: in ALARM for 14m"),
        "{update}"
    );
}

#[tokio::test]
async fn a_duplicate_or_an_older_event_posts_nothing_and_changes_nothing() {
    let stack = Stack::start().await;
    let events = events(&stack).await;
    command(&stack, ADMIN, "alarms subscribe all").await;
    let at = stack.now();
    let fired = alarm_change("api-5xx", "OK", "ALARM", at);
    events.handled(&stack, &fired).await;
    events.handled(&stack, &fired).await;
    assert_eq!(posts(&stack).len(), 1, "a repeated event posts once");
    // an OK from before the ALARM, delivered after it
    events
        .handled(
            &stack,
            &alarm_change("api-5xx", "ALARM", "OK", at - Span::minutes(2)),
        )
        .await;
    assert_eq!(posts(&stack).len(), 1);
    assert!(updates(&stack).is_empty(), "the incident is still open");
    // the newer recovery still ends it
    events
        .handled(
            &stack,
            &alarm_change("api-5xx", "ALARM", "OK", at + Span::minutes(1)),
        )
        .await;
    assert_eq!(updates(&stack).len(), 1);
}

#[tokio::test]
async fn a_malformed_event_is_dropped_with_no_post_and_no_retry() {
    let stack = Stack::start().await;
    let events = events(&stack).await;
    command(&stack, ADMIN, "alarms subscribe all").await;
    for body in [
        "{not json",
        r#"{"source":"aws.cloudwatch"}"#,
        &alarm_change("x", "OK", "ON_FIRE", stack.now()),
    ] {
        let response = events.deliver(&stack, body).await;
        assert!(
            response.batch_item_failures.is_empty(),
            "dropped, not retried: {body}"
        );
    }
    assert!(posts(&stack).is_empty());
}

#[tokio::test]
async fn an_event_put_on_the_jobs_queue_is_a_forged_job_not_a_notification() {
    // Records are told apart by their queue, never by their content.
    let stack = Stack::start().await;
    let events = events(&stack).await;
    command(&stack, ADMIN, "alarms subscribe all").await;
    stack
        .send_raw(&alarm_change("api-5xx", "OK", "ALARM", stack.now()))
        .await;
    let messages = stack.drain().await;
    let deadline = stack.now() + Span::seconds(30);
    let event = opkit_tests::serverless::sqs_event(&messages);
    let response =
        opkit_worker::handle_routed(&stack.runner, Some(&events.notifications), event, deadline)
            .await;
    assert!(response.batch_item_failures.is_empty());
    assert!(posts(&stack).is_empty(), "nothing posted");
    let audit = stack.store.recent(None, 5).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|r| format!("{:?}", r.outcome).contains("Forged")),
        "{audit:?}"
    );
}

#[tokio::test]
async fn acknowledge_and_mute_clicks_are_authorized_audited_and_the_mute_ends_on_time() {
    let stack = Stack::start().await;
    let events = events(&stack).await;
    command(&stack, ADMIN, "alarms subscribe api-").await;
    events
        .handled(&stack, &alarm_change("api-5xx", "OK", "ALARM", stack.now()))
        .await;
    let message = posts(&stack)[0].clone();
    let thread = message.answered_ts().unwrap();

    // anyone may acknowledge: the click runs `alarms ack "api-5xx" in <account>
    // <region>` (the sample event's: this incident, no other) as the clicker, and
    // says so in the incident's thread
    let acked = press(&stack, "UBOB", &message, "Acknowledge").await;
    assert_eq!(
        acked["text"],
        ":eyes: <@UBOB> acknowledged *api-5xx* (account 123456789012, us-east-1)."
    );
    assert_eq!(acked["response_type"], "in_channel");
    assert_eq!(acked["thread_ts"], thread.as_str());
    let redrawn = updates(&stack).last().unwrap().json().clone();
    assert!(
        redrawn["blocks"]
            .to_string()
            .contains("acknowledged by <@UBOB>"),
        "{redrawn}"
    );

    // muting needs ops or admin: Bob's click is refused and changes nothing
    let refused = press(&stack, "UBOB", &message, "Mute 1h").await;
    assert!(
        !refused["text"].as_str().unwrap().contains("muted"),
        "{refused}"
    );
    // (told to Bob alone, outside the thread: Slack shows no ephemeral message
    // in a thread that is not open)
    assert_eq!(refused["response_type"], "ephemeral");
    assert_eq!(refused.get("thread_ts"), None);
    let muted = press(&stack, ADMIN, &message, "Mute 1h").await;
    assert!(
        muted["text"]
            .as_str()
            .unwrap()
            .contains("muted *api-5xx* (account 123456789012, us-east-1) until"),
        "{muted}"
    );

    // each click is in the audit trail as the command it stands for, by its clicker
    let audit = stack.store.recent(None, 20).await.unwrap();
    let line = |user: &str, text: &str| {
        audit
            .iter()
            .any(|r| r.user.as_str() == user && r.text == text)
    };
    let here = "in 123456789012 us-east-1";
    assert!(
        line("UBOB", &format!("alarms ack \"api-5xx\" {here}")),
        "{audit:#?}"
    );
    assert!(
        line("UBOB", &format!("alarms mute \"api-5xx\" {here} for 1h")),
        "the refusal is audited"
    );
    assert!(line(
        ADMIN,
        &format!("alarms mute \"api-5xx\" {here} for 1h")
    ));

    // muted: a change is recorded, not posted
    let before = posts(&stack).len();
    events
        .handled(
            &stack,
            &alarm_change(
                "api-5xx",
                "ALARM",
                "INSUFFICIENT_DATA",
                stack.now() + Span::minutes(5),
            ),
        )
        .await;
    assert_eq!(posts(&stack).len(), before);

    // the expiry pass ends the mute on time, in the incident's thread
    stack.clock.advance(Span::minutes(59));
    stack.expire().await;
    assert_eq!(posts(&stack).len(), before, "not yet");
    stack.clock.advance(Span::minutes(1));
    stack.expire().await;
    let all = posts(&stack);
    assert_eq!(all.len(), before + 1);
    let notice = all.last().unwrap().json();
    assert!(
        notice["text"].as_str().unwrap().contains("no longer muted"),
        "{notice}"
    );
    assert!(
        notice["thread_ts"].is_string(),
        "in the incident's thread: {notice}"
    );
}

#[tokio::test]
async fn the_graph_button_posts_the_graph_in_the_incidents_thread() {
    // GIVEN an alarm in CloudWatch (moto, through the bridge), a graph renderer
    // (moto has no GetMetricWidgetImage), and the alarm's notification posted
    let images = Arc::new(FakeImages::default());
    let stack = Stack::builder().graph_images(images.clone()).start().await;
    let name = unique_name("graph-5xx");
    let region = region();
    seed_alarm(
        &cloudwatch_client(&region).await,
        &name,
        "ALARM",
        "5xx high",
    )
    .await;
    let events = events(&stack).await;
    command(&stack, ADMIN, &format!("alarms subscribe {name}")).await;
    events
        .handled(&stack, &alarm_change(&name, "OK", "ALARM", stack.now()))
        .await;
    let notification = posts(&stack)[0].clone();
    let thread = notification.answered_ts().unwrap();
    // and Slack handing out an upload URL
    let upload_url = stack.slack.response_url("graph-upload");
    stack.slack.break_method(
        "files.getUploadURLExternal",
        CannedResponse::status(200)
            .with_header("Content-Type", "application/json")
            .with_body(
                json!({"ok": true, "upload_url": upload_url, "file_id": "F0GRAPH"}).to_string(),
            ),
    );

    // WHEN someone clicks Graph on the notification
    let answer = press(&stack, "UBOB", &notification, "Graph").await;

    // THEN the alarm's metric is drawn and shared in the incident's thread
    assert_eq!(images.widgets()[0]["metrics"][0][3], name.as_str());
    let shared = stack.slack.posts_to("/api/files.completeUploadExternal");
    assert_eq!(shared.len(), 1, "{answer}: {:?}", stack.slack.requests());
    assert_eq!(shared[0].field("channel_id").as_deref(), Some(CHANNEL_ID));
    assert_eq!(shared[0].field("thread_ts"), Some(thread));
    // AND the word that it was posted is Bob's alone
    assert_eq!(answer["response_type"], "ephemeral");
    assert_eq!(answer.get("thread_ts"), None);
    assert!(
        answer["text"]
            .as_str()
            .unwrap()
            .starts_with("Posted a graph of"),
        "{answer}"
    );
}

#[tokio::test]
async fn a_watched_alarm_sends_its_watcher_a_direct_message() {
    // GIVEN an alarm in CloudWatch that Bob watches, and no channel subscribed
    let stack = Stack::start().await;
    let events = events(&stack).await;
    let name = unique_name("watched-db");
    let region = region();
    seed_alarm(&cloudwatch_client(&region).await, &name, "OK", "fine").await;
    let watching = say_in(&stack, CHANNEL_ID, "UBOB", &format!("alarms watch {name}")).await;
    assert!(watching.starts_with("Watching *"), "{watching}");

    // WHEN the alarm fires
    events
        .handled(&stack, &alarm_change(&name, "OK", "ALARM", stack.now()))
        .await;

    // THEN Bob, and nobody else, gets a direct message from the app
    let all = posts(&stack);
    assert_eq!(all.len(), 1, "{all:?}");
    let dm = all[0].json();
    assert_eq!(dm["channel"], "UBOB");
    let text = dm["text"].as_str().unwrap();
    assert!(
        text.contains(&format!("*{name}* is ALARM (was OK)")),
        "{text}"
    );
    assert!(
        dm["blocks"].to_string().contains("alarms unwatch"),
        "it says how to stop: {dm}"
    );
}

#[tokio::test]
async fn only_managed_instances_are_news_and_opkits_own_stop_is_not() {
    // GIVEN a channel that hears of managed instances, one managed instance and one
    // that is not (the real EC2 client tells them apart on the emulator)
    let stack = Stack::start().await;
    let events = events(&stack).await;
    let region = region();
    let ec2 = ec2_client(&region).await;
    let managed = run_instance(&ec2, &unique_name("web"), &[("opkit:managed", "true")]).await;
    let other = run_instance(&ec2, &unique_name("db"), &[]).await;
    say_in(&stack, CHANNEL_ID, ADMIN, "ec2 subscribe").await;
    let at = stack.now();

    // an instance not tagged opkit:managed=true is nobody's news
    events
        .handled(&stack, &instance_change(&region, &other, "stopped", at))
        .await;
    assert!(posts(&stack).is_empty());

    // WHEN Opkit stops the managed one (confirmed, as the command asks)
    let stopped = say_confirmed(&stack.bot, ADMIN, &format!("ec2 stop {managed}")).await;
    assert!(
        stopped.text.as_str().contains("Stopping 1 instance"),
        "{}",
        stopped.text
    );
    // THEN the stopping and stopped events EC2 sends for it post nothing
    for (state, after) in [("stopping", 1), ("stopped", 30)] {
        let when = at + Span::seconds(after);
        events
            .handled(&stack, &instance_change(&region, &managed, state, when))
            .await;
    }
    assert!(posts(&stack).is_empty(), "{:?}", posts(&stack));

    // AND someone outside Opkit starting it again is posted
    events
        .handled(
            &stack,
            &instance_change(&region, &managed, "running", at + Span::minutes(3)),
        )
        .await;
    let all = posts(&stack);
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].json()["channel"], CHANNEL_ID);
    let text = all[0].json()["text"].as_str().unwrap().to_string();
    assert!(
        text.contains(&format!("Instance {managed} is running")),
        "{text}"
    );
}

#[tokio::test]
async fn a_tagged_alarms_notification_carries_its_runbook_link() {
    // GIVEN two alarms in CloudWatch: one tagged with a runbook link, one whose
    // `runbook` tag is not a link
    let stack = Stack::start().await;
    let events = events(&stack).await;
    let cw = cloudwatch_client(&region()).await;
    let (tagged, bad) = (unique_name("tagged"), unique_name("badtag"));
    for (name, runbook) in [
        (&tagged, "https://runbooks.example.com/api-5xx"),
        (&bad, "javascript:alert(1)"),
    ] {
        seed_alarm(&cw, name, "OK", "fine").await;
        cw.tag_resource()
            .resource_arn(format!(
                "arn:aws:cloudwatch:{}:123456789012:alarm:{name}",
                region()
            ))
            .tags(
                aws_sdk_cloudwatch::types::Tag::builder()
                    .key("runbook")
                    .value(runbook)
                    .build(),
            )
            .send()
            .await
            .expect("tag the alarm");
    }
    command(&stack, ADMIN, "alarms subscribe all").await;

    // WHEN both fire
    for name in [&tagged, &bad] {
        events
            .handled(&stack, &alarm_change(name, "OK", "ALARM", stack.now()))
            .await;
    }

    // THEN the tagged one links its runbook; the other falls back to the link in its
    // description (the sample's), and its tag is shown nowhere
    let all = posts(&stack);
    assert_eq!(all.len(), 2);
    let blocks = |i: usize| all[i].json()["blocks"].to_string();
    assert!(
        blocks(0).contains("<https://runbooks.example.com/api-5xx|Runbook>"),
        "{}",
        blocks(0)
    );
    assert!(
        blocks(1).contains("<https://wiki.example.com/runbooks/cpu|Runbook>"),
        "{}",
        blocks(1)
    );
    assert!(!blocks(1).contains("javascript"), "{}", blocks(1));
}
