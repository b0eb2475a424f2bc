//! What one command costs in DynamoDB, counted at the client: the bot's and the
//! worker's SDK client calls the emulator through a [`FaultProxy`] that records
//! every request (no fault injected), so the count is what the real SDK sent.
//!
//! Capacity: moto's `ConsumedCapacity` is not size-based and it returns none for
//! `TransactWriteItems`, so the units are reckoned from the items the client sent
//! and received, by DynamoDB's documented rules ([`opkit_tests::capacity`], which
//! `opkit-bench work` uses too).

use std::time::Duration;

use opkit::store::{AuditLog, StateStore};
use opkit_tests::capacity::{Units, dynamodb, units};
use opkit_tests::fault_proxy::{FaultProxy, Seen};
use opkit_tests::serverless::Stack;
use opkit_tests::slash_command_body;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(10);

async fn run_one(stack: &Stack, proxy: &FaultProxy, user: &str, text: &str) -> Vec<Seen> {
    let before = proxy.seen().len();
    let replies = stack.slack.requests().len();
    let body = slash_command_body(user, text, &stack.slack.response_url("r"));
    let (status, _) = stack
        .ingress(stack.signed_event("/slack/commands", &body))
        .await;
    assert_eq!(status, 200);
    let messages = stack.drain().await;
    assert_eq!(messages.len(), 1);
    assert!(stack.work(&messages).await.batch_item_failures.is_empty());
    stack.slack.wait_for(replies + 1, WAIT).await;
    dynamodb(&proxy.seen()[before..])
}

#[tokio::test]
async fn a_stateful_command_costs_four_dynamodb_requests() {
    // GIVEN the deployed path, its DynamoDB client counted at the wire
    let proxy = FaultProxy::start().await;
    let stack = Stack::builder().aws_endpoint(proxy.url()).start().await;
    // WHEN a stateful command runs through the worker (twice: a first save and a
    // later one, on a version)
    for (user, nth) in [("UANN", 1), ("UBOB", 2)] {
        let calls = run_one(&stack, &proxy, user, "queue join perf").await;
        // THEN it cost four requests: claim, the caller's grants, the state, and
        // one transaction of the state, its audit records and the job done
        let ops: Vec<&str> = calls.iter().map(|s| s.operation.as_str()).collect();
        assert_eq!(
            ops,
            ["PutItem", "Query", "GetItem", "TransactWriteItems"],
            "command {nth}"
        );
        let body: Value = serde_json::from_str(&calls[3].body).unwrap();
        let items = body["TransactItems"].as_array().unwrap();
        // the state, "requested", "succeeded", the job done
        assert_eq!(items.len(), 4, "{body}");
        // AND README's figures: 2 read units (two strongly consistent reads under
        // 4 KB), 9 write units to the table (the claim, and four items in a
        // transaction at twice the price) and 2 to the index (the audit records)
        let each: Vec<Units> = calls.iter().map(units).collect();
        let total: Units = each.iter().copied().sum();
        assert_eq!(
            total,
            Units {
                read: 2.0,
                write: 9,
                index_write: 2
            },
            "command {nth}: {each:?}"
        );
        println!("command {nth}: {ops:?}, units {each:?} = {total:?} in all");
    }
    // AND everything the seven requests used to write is there
    let state = stack.store.load("queue").await.unwrap();
    assert_eq!(state.version, 2);
    let records = stack.store.recent(None, 10).await.unwrap();
    assert_eq!(records.len(), 4, "{records:?}");
}

#[tokio::test]
async fn a_command_that_changes_no_state_writes_once_after_its_claim() {
    // GIVEN the deployed path, counted at the wire
    let proxy = FaultProxy::start().await;
    let stack = Stack::builder().aws_endpoint(proxy.url()).start().await;
    // WHEN a command that reads (`whoami` reads the caller's grants itself too) runs
    let calls = run_one(&stack, &proxy, "UANN", "whoami").await;
    // THEN its writes are the claim and one commit of its audit records and the job done
    let writes: Vec<&str> = calls
        .iter()
        .map(|s| s.operation.as_str())
        .filter(|op| *op != "Query" && *op != "GetItem")
        .collect();
    assert_eq!(writes, ["PutItem", "TransactWriteItems"], "{calls:?}");
    let each: Vec<Units> = calls.iter().map(units).collect();
    println!(
        "whoami: {:?}, units {each:?}",
        calls.iter().map(|s| &s.operation).collect::<Vec<_>>()
    );
    let records = stack.store.recent(None, 10).await.unwrap();
    assert_eq!(records.len(), 2, "requested and succeeded: {records:?}");
}
