//! What one command costs in DynamoDB, counted at the client: the bot's and the
//! worker's SDK client calls the emulator through a [`FaultProxy`] that records
//! every request (no fault injected), so the count is what the real SDK sent.
//!
//! Capacity: moto's `ConsumedCapacity` is not size-based and it returns none for
//! `TransactWriteItems`, so the write units are reckoned here from the items the
//! client sent, by DynamoDB's documented rules ("Read/write capacity mode",
//! "Item sizes"): 1 write unit per KB of an item, twice that in a transaction.

use std::time::Duration;

use opkit::store::{AuditLog, StateStore};
use opkit_tests::fault_proxy::{FaultProxy, Seen};
use opkit_tests::serverless::Stack;
use opkit_tests::slash_command_body;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(10);

/// The DynamoDB operations among what the proxy saw (the bot's AWS clients also
/// go through it, but a queue command calls none of them).
fn dynamodb(seen: &[Seen]) -> Vec<Seen> {
    const OPS: [&str; 8] = [
        "GetItem",
        "PutItem",
        "Query",
        "TransactWriteItems",
        "DeleteItem",
        "UpdateItem",
        "BatchWriteItem",
        "BatchGetItem",
    ];
    seen.iter()
        .filter(|s| OPS.contains(&s.operation.as_str()))
        .cloned()
        .collect()
}

/// An item's size as DynamoDB counts it: each attribute's name plus its value
/// (strings and binary by their bytes; numbers about one byte per two digits,
/// plus one; booleans and nulls one byte).
fn item_bytes(item: &serde_json::Map<String, Value>) -> usize {
    item.iter()
        .map(|(name, value)| {
            let value = match value.as_object().and_then(|v| v.iter().next()) {
                Some((kind, v)) if kind == "S" || kind == "B" => v.as_str().map_or(0, str::len),
                Some((kind, v)) if kind == "N" => v.as_str().map_or(0, |n| n.len().div_ceil(2) + 1),
                _ => 1,
            };
            name.len() + value
        })
        .sum()
}

/// The write units a request consumes: each item put, rounded up to the KB;
/// doubled in a transaction.
fn write_units(seen: &Seen) -> usize {
    let body: Value = serde_json::from_str(&seen.body).expect("a JSON request");
    let units = |item: &Value| item.as_object().map_or(0, item_bytes).div_ceil(1024).max(1);
    match seen.operation.as_str() {
        "PutItem" => units(&body["Item"]),
        "TransactWriteItems" => body["TransactItems"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| 2 * units(&t["Put"]["Item"]))
            .sum(),
        _ => 0,
    }
}

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
        let writes: Vec<usize> = calls.iter().map(write_units).collect();
        let body: Value = serde_json::from_str(&calls[3].body).unwrap();
        let items = body["TransactItems"].as_array().unwrap();
        // the state, "requested", "succeeded", the job done
        assert_eq!(items.len(), 4, "{body}");
        println!(
            "command {nth}: {ops:?}, write units {writes:?} = {} in all",
            writes.iter().sum::<usize>()
        );
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
    let units: Vec<usize> = calls.iter().map(write_units).collect();
    println!(
        "whoami: {:?}, write units {units:?}",
        calls.iter().map(|s| &s.operation).collect::<Vec<_>>()
    );
    let records = stack.store.recent(None, 10).await.unwrap();
    assert_eq!(records.len(), 2, "requested and succeeded: {records:?}");
}
