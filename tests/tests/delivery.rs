//! Delivery on the deployed path (emulator): SQS delivers at least once, a worker
//! may die mid-job, a message may never succeed — and each command still has one
//! effect, and each user hears once.
//! Run through `bash infra/test.sh` (it starts the emulator).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_sqs::types::MessageSystemAttributeName;
use chrono::Duration as Span;
use opkit::audit::Outcome;
use opkit::job::{Job, QueueMessage};
use opkit::store::{AuditLog, StateStore};
use opkit::worker::LEASE;
use opkit_tests::fault_proxy::FaultProxy;
use opkit_tests::faults::{Fault, FaultyStore, Op};
use opkit_tests::serverless::{ADMIN, Stack};
use opkit_tests::slash_command_body;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(10);

/// A stack whose bot has `tally`, its store wrapped for fault injection, its AWS
/// calls going through `proxy` if given.
async fn stack(proxy: Option<&FaultProxy>) -> (Stack, Arc<FaultyStore>) {
    let slot = Arc::new(Mutex::new(None));
    let keep = slot.clone();
    let mut builder = Stack::builder()
        .bot(|b| b.script(opkit_tests::tally::script()))
        .store(move |store| {
            let faulty = FaultyStore::new(store);
            *keep.lock().unwrap() = Some(faulty.clone());
            faulty
        });
    if let Some(proxy) = proxy {
        builder = builder.aws_endpoint(proxy.url());
    }
    let stack = builder.start().await;
    let faulty = slot.lock().unwrap().take().unwrap();
    (stack, faulty)
}

/// The requests the fake Slack got on one `response_url`.
fn replies_to(stack: &Stack, name: &str) -> Vec<Value> {
    stack
        .slack
        .posts_to(&format!("/response/{name}"))
        .iter()
        .map(|r| r.json().clone())
        .collect()
}

/// A click on a prompt's button, as Slack posts it to the interactions route.
fn click_body(user: &str, action_id: &str, value: &str, response_url: &str) -> String {
    let payload = json!({
        "type": "block_actions",
        "user": {"id": user, "username": user.to_lowercase(), "team_id": "T0001"},
        "api_app_id": "A0001",
        "container": {"type": "message", "message_ts": "1795000000.000300", "channel_id": "C0001"},
        "trigger_id": "13345224609.738474920.8088930838d88f008e0",
        "team": {"id": "T0001", "domain": "opkit-test"},
        "channel": {"id": "C0001", "name": "ops"},
        "response_url": response_url,
        "actions": [{"action_id": action_id, "block_id": "b1", "value": value,
                     "type": "button", "action_ts": "1795000001.000400"}]
    });
    serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap()
}

fn delivery(message: &QueueMessage, receive_count: u32) -> QueueMessage {
    QueueMessage {
        receive_count,
        ..message.clone()
    }
}

#[tokio::test]
async fn a_confirmed_ec2_reboot_reboots_once_through_a_crash_and_two_redeliveries() {
    // GIVEN an instance Opkit may act on, and the bot's AWS calls counted by a proxy
    let proxy = FaultProxy::start().await;
    let (stack, store) = stack(Some(&proxy)).await;
    let ec2 = opkit_tests::aws_packs::ec2_client("us-east-1").await;
    let name = opkit_tests::aws::unique_name("reboot");
    let id = opkit_tests::aws_packs::run_instance(&ec2, &name, &[("opkit:managed", "true")]).await;
    // AND an admin's `ec2 reboot`, answered with a confirmation prompt
    let asked = stack
        .queue_command(ADMIN, &format!("ec2 reboot {name}"), "ask")
        .await;
    assert!(stack.work(&[asked]).await.batch_item_failures.is_empty());
    let prompt = stack.slack.wait_for(1, WAIT).await[0].json().clone();
    let pending = prompt["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "actions")
        .and_then(|b| b["elements"][0]["value"].as_str())
        .unwrap_or_else(|| panic!("no buttons in {prompt}"))
        .to_string();
    assert_eq!(
        proxy.calls("RebootInstances", &id).len(),
        0,
        "not before the click"
    );
    // AND the confirm click, queued as an interaction job
    let click = click_body(
        ADMIN,
        "opkit:confirm",
        &pending,
        &stack.slack.response_url("click"),
    );
    let (status, _) = stack
        .ingress(stack.signed_event("/slack/interactions", &click))
        .await;
    assert_eq!(status, 200);
    let message = stack.drain().await.remove(0);
    let job = Job::decode(&message.body, &stack.envelope_key())
        .unwrap()
        .id
        .to_string();

    // WHEN the first delivery reboots and answers, and the worker dies before it
    // marks the job done (so SQS never hears it succeeded)
    store.inject(Fault::on(Op::Finish).key(&job).crash());
    let first = delivery(&message, 1);
    let stack = Arc::new(stack);
    let worker = stack.clone();
    let crashed = tokio::spawn(async move { worker.work(&[first]).await }).await;
    assert!(crashed.unwrap_err().is_panic(), "the worker died");
    store.heal();
    assert_eq!(proxy.calls("RebootInstances", &id).len(), 1);
    let outcome = &replies_to(&stack, "click")[0];
    assert!(
        outcome["text"]
            .as_str()
            .unwrap()
            .contains("reboot requested"),
        "{outcome}"
    );
    // AND SQS delivers it again at once (another worker): the claim is still held
    let second = stack.work(&[delivery(&message, 2)]).await;
    assert_eq!(second.batch_item_failures.len(), 1, "to be retried later");
    // AND again after the visibility timeout, when the dead worker's lease is over
    stack.clock.advance(LEASE + Span::seconds(1));
    let third = stack.work(&[delivery(&message, 3)]).await;
    assert!(third.batch_item_failures.is_empty());

    // THEN the instance was rebooted once: one RebootInstances call, one audited reboot
    assert_eq!(proxy.calls("RebootInstances", &id).len(), 1);
    let audit = stack.store.recent(None, 50).await.unwrap();
    let reboots: Vec<&String> = audit
        .iter()
        .filter_map(|r| match &r.outcome {
            // (not the records of where each run looked: `ec2 reboot: looked at …`)
            Outcome::System { action }
                if action.contains("reboot") && !action.contains("looked at") =>
            {
                Some(action)
            }
            _ => None,
        })
        .collect();
    assert_eq!(reboots, [&format!("ec2 reboot {id} in us-east-1")]);
    let instance = ec2
        .describe_instances()
        .instance_ids(&id)
        .send()
        .await
        .unwrap();
    let state = instance.reservations()[0].instances()[0].state().unwrap();
    assert_eq!(state.name().unwrap().as_str(), "running");
    // AND the last delivery only says so, to the clicker
    let replies = replies_to(&stack, "click");
    assert_eq!(replies.len(), 2, "{replies:?}");
    assert_eq!(replies[1]["text"], "This request was already handled.");
}

#[tokio::test]
async fn a_message_whose_delete_was_lost_runs_once_and_answers_at_most_twice() {
    // GIVEN a count run to the end, whose message SQS never deleted (the worker
    // returned, then the delete was lost, or the visibility timeout passed first)
    let (stack, _) = stack(None).await;
    let message = stack.queue_command("U1", "tally hits", "t").await;
    for receive_count in 1..=3 {
        // WHEN it is delivered three times
        let response = stack.work(&[delivery(&message, receive_count)]).await;
        assert!(response.batch_item_failures.is_empty());
    }
    // THEN it counted once
    let state = stack.store.load("tally").await.unwrap();
    assert_eq!(state.value.unwrap()["hits"], 1);
    // AND its reply came twice, the same both times: the second delivery of the
    // message cannot tell a lost delete from a runner that died between its
    // commit and its post, so it posts the committed reply and drops it; the
    // third finds nothing to post (README, "Reliability": at most twice, the
    // price of a stateful command's four DynamoDB requests)
    let replies = replies_to(&stack, "t");
    assert_eq!(replies.len(), 2, "{replies:?}");
    assert_eq!(replies[0], replies[1]);
}

/// Receives every visible message; for each batch, runs the worker, deletes what
/// succeeded (as the event source does) and makes the failures visible again at
/// once (as if the visibility timeout had passed). Stops when the queue is empty;
/// returns how many times each message body was received.
async fn run_queue_like_lambda(stack: &Stack) -> Vec<(String, u32)> {
    let mut received: Vec<(String, u32)> = Vec::new();
    for _round in 0..10 {
        let out = stack
            .sqs
            .receive_message()
            .queue_url(&stack.queues.url)
            .max_number_of_messages(10)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .unwrap();
        let batch: Vec<QueueMessage> = out
            .messages()
            .iter()
            .map(|m| QueueMessage {
                id: m.message_id().unwrap().to_string(),
                receipt: m.receipt_handle().unwrap().to_string(),
                body: m.body().unwrap().to_string(),
                receive_count: m
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|n| n.parse().ok())
                    .unwrap(),
            })
            .collect();
        if batch.is_empty() {
            return received;
        }
        for m in &batch {
            received.push((m.body.clone(), m.receive_count));
        }
        let failed = stack.work(&batch).await.batch_item_failures;
        for m in &batch {
            if failed.iter().any(|f| f.item_identifier == m.id) {
                stack
                    .sqs
                    .change_message_visibility()
                    .queue_url(&stack.queues.url)
                    .receipt_handle(&m.receipt)
                    .visibility_timeout(0)
                    .send()
                    .await
                    .unwrap();
            } else {
                opkit::sqs::delete(&stack.sqs, &stack.queues.url, &m.receipt)
                    .await
                    .unwrap();
            }
        }
    }
    panic!("the queue did not empty in ten rounds: {received:?}");
}

#[tokio::test]
async fn a_poison_message_goes_to_the_dlq_after_three_receives_the_user_told_once() {
    // GIVEN three counts in one batch; the middle one can never be claimed (its
    // claim record in the table is corrupt: the store answers with an error each time)
    let (stack, _) = stack(None).await;
    let send =
        |user: &str, text: &str| slash_command_body(user, text, &stack.slack.response_url(user));
    let (status, _) = stack
        .ingress(stack.signed_event("/slack/commands", &send("UA", "tally a")))
        .await;
    assert_eq!(status, 200);
    // (the poison is queued as the ingress queues it, so that its job id is known)
    let command = match opkit::slack::CommandRequest::parse(send("UP", "tally p").as_bytes()) {
        Ok(opkit::slack::CommandRequest::Command(command)) => command,
        other => panic!("{other:?}"),
    };
    let poison = Job::from_slash_command(&command, stack.now()).unwrap();
    let queue = opkit::sqs::SqsQueue::new(
        stack.sqs.clone(),
        stack.queues.url.clone(),
        stack.envelope_key(),
    );
    opkit::job::JobQueue::enqueue(&queue, &poison)
        .await
        .unwrap();
    let (status, _) = stack
        .ingress(stack.signed_event("/slack/commands", &send("UB", "tally b")))
        .await;
    assert_eq!(status, 200);
    let dynamo = aws_sdk_dynamodb::Client::new(&opkit_tests::aws::sdk_config().await);
    let s = |v: &str| aws_sdk_dynamodb::types::AttributeValue::S(v.to_string());
    dynamo
        .put_item()
        .table_name(stack.config.table.clone().unwrap())
        .item("pk", s(&format!("JOB#{}", poison.id)))
        .item("sk", s("JOB"))
        .item("status", s("running"))
        .send()
        .await
        .unwrap();

    // WHEN the queue is worked as the Lambda event source works it
    let received = run_queue_like_lambda(&stack).await;

    // THEN the poison was received three times and then moved to the DLQ
    let times = |text: &str| {
        received
            .iter()
            .filter(|(body, _)| Job::decode(body, &stack.envelope_key()).unwrap().text == text)
            .map(|(_, n)| *n)
            .collect::<Vec<_>>()
    };
    assert_eq!(times("tally p"), [1, 2, 3]);
    let dlq = opkit::sqs::receive(&stack.sqs, &stack.queues.dlq_url, 10, 0)
        .await
        .unwrap();
    assert_eq!(dlq.len(), 1);
    assert_eq!(
        Job::decode(&dlq[0].body, &stack.envelope_key()).unwrap().id,
        poison.id
    );
    // AND its user was told once, on the last delivery, to try again
    let told = replies_to(&stack, "UP");
    assert_eq!(told.len(), 1, "{told:?}");
    let text = told[0]["text"].as_str().unwrap();
    assert!(
        text.starts_with(
            "Sorry, I could not run `tally p`: the bot's store is unavailable. Please try again later"
        ),
        "{text}"
    );
    // AND the rest of the batch ran once, on its first delivery
    assert_eq!((times("tally a"), times("tally b")), (vec![1], vec![1]));
    let state = stack.store.load("tally").await.unwrap().value.unwrap();
    assert_eq!(state, json!({"a": 1, "b": 1}));
    assert_eq!(replies_to(&stack, "UA").len(), 1);
    assert_eq!(replies_to(&stack, "UB").len(), 1);
}
