//! The table, the jobs queue and the worker's event source.

use crate::cfn::*;
// The table's key design comes from the Rust store itself, so the template cannot
// drift from what `opkit init` creates and the persister reads.
use opkit::store::dynamodb::{GSI1, GSI1_PK, GSI1_SK, GSI2, GSI2_PK, GSI2_SK, PK, SK, TTL};
// The worker's time limits, from the one place that defines them.
use opkit::timing::{
    LEASE_SECS, MAX_RECEIVES, START_MARGIN_SECS, VISIBILITY_TIMEOUT_SECS, WORKER_TIMEOUT_SECS,
};

// ------------------------------------------------------------------ the table

pub(crate) fn table(t: &Value) -> &Value {
    get(
        only_resource_of_type(t, "AWS::DynamoDB::Table").1,
        "Properties",
    )
}

pub(crate) fn key_schema(v: &Value, what: &str) -> Vec<(String, String)> {
    seq(v, what)
        .iter()
        .map(|k| {
            (
                string(get(k, "AttributeName"), "AttributeName").to_string(),
                string(get(k, "KeyType"), "KeyType").to_string(),
            )
        })
        .collect()
}

fn hash_range(hash: &str, range: &str) -> Vec<(String, String)> {
    vec![
        (hash.to_string(), "HASH".to_string()),
        (range.to_string(), "RANGE".to_string()),
    ]
}

#[test]
fn table_keys_are_pk_hash_and_sk_range() {
    let t = template();
    let keys = key_schema(get(table(&t), "KeySchema"), "the table's KeySchema");
    assert_eq!(
        keys,
        hash_range(PK, SK),
        "the table's KeySchema must be {PK} (HASH) + {SK} (RANGE), as the Rust store expects"
    );
}

#[test]
fn every_key_attribute_is_a_string_and_nothing_else_is_defined() {
    let t = template();
    let defs: Vec<(String, String)> = seq(
        get(table(&t), "AttributeDefinitions"),
        "AttributeDefinitions",
    )
    .iter()
    .map(|d| {
        (
            string(get(d, "AttributeName"), "AttributeName").to_string(),
            string(get(d, "AttributeType"), "AttributeType").to_string(),
        )
    })
    .collect();
    let mut expected = vec![PK, SK, GSI1_PK, GSI1_SK, GSI2_PK, GSI2_SK];
    expected.sort_unstable();
    let mut names: Vec<&str> = defs.iter().map(|(n, _)| n.as_str()).collect();
    names.sort_unstable();
    assert_eq!(
        names, expected,
        "AttributeDefinitions must define exactly the table's and the indexes' key attributes"
    );
    for (name, ty) in &defs {
        assert_eq!(
            ty, "S",
            "key attribute {name} must be a string (S): the Rust store writes strings"
        );
    }
}

#[test]
fn both_indexes_have_their_keys_and_project_everything() {
    let t = template();
    let table = table(&t);
    let gsis = seq(
        get(table, "GlobalSecondaryIndexes"),
        "GlobalSecondaryIndexes",
    );
    let mut names: Vec<&str> = gsis
        .iter()
        .map(|g| string(get(g, "IndexName"), "IndexName"))
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [GSI1, GSI2],
        "the table must have exactly the indexes {GSI1} and {GSI2}"
    );
    for (name, hash, range) in [(GSI1, GSI1_PK, GSI1_SK), (GSI2, GSI2_PK, GSI2_SK)] {
        let gsi = gsis
            .iter()
            .find(|g| get(g, "IndexName").as_str() == Some(name))
            .unwrap();
        assert_eq!(
            key_schema(get(gsi, "KeySchema"), "an index's KeySchema"),
            hash_range(hash, range),
            "index {name} must be keyed {hash} (HASH) + {range} (RANGE)"
        );
        assert_eq!(
            get(get(gsi, "Projection"), "ProjectionType").as_str(),
            Some("ALL"),
            "index {name} must project ALL attributes: the store reads whole items from it"
        );
    }
}

#[test]
fn ttl_is_on_the_ttl_attribute() {
    let t = template();
    let ttl = get(table(&t), "TimeToLiveSpecification");
    assert_eq!(
        get(ttl, "AttributeName").as_str(),
        Some(TTL),
        "TimeToLiveSpecification.AttributeName must be `{TTL}`, the attribute the store sets"
    );
    assert_eq!(
        get(ttl, "Enabled").as_bool(),
        Some(true),
        "TTL must be enabled: it clears dedupe records, old audit and ended grants"
    );
}

#[test]
fn table_is_on_demand() {
    let t = template();
    assert_eq!(
        get(table(&t), "BillingMode").as_str(),
        Some("PAY_PER_REQUEST"),
        "the table must be on-demand (PAY_PER_REQUEST): no capacity to plan, nothing to pay idle"
    );
}

// ------------------------------------------------------------------ queue and worker

#[test]
fn jobs_go_to_a_dead_letter_queue_after_three_receives() {
    let t = template();
    let (id, q) = jobs_queue(&t);
    let redrive = get(get(q, "Properties"), "RedrivePolicy");
    assert_eq!(
        number(get(redrive, "maxReceiveCount"), "maxReceiveCount"),
        u64::from(MAX_RECEIVES),
        "{id}'s RedrivePolicy.maxReceiveCount must be {MAX_RECEIVES}, as `opkit init` creates it \
         (the worker tells the user on the last try)"
    );
    let (dlq, attr) = getatt_target(get(redrive, "deadLetterTargetArn"))
        .expect("RedrivePolicy.deadLetterTargetArn should be !GetAtt DeadLetterQueue.Arn");
    assert_eq!(attr, "Arn");
    assert_eq!(
        get(resource(&t, &dlq), "Type").as_str(),
        Some("AWS::SQS::Queue"),
        "the dead-letter target {dlq} must be an SQS queue of this stack"
    );
}

/// The jobs queue's visibility timeout, as SQS will see it (30 s when nobody sets one).
fn visibility_seconds(q: &Value) -> u64 {
    match get(get(q, "Properties"), "VisibilityTimeout") {
        Value::Null => 30, // SQS's default
        v => number(v, "VisibilityTimeout"),
    }
}

#[test]
fn visibility_timeout_is_at_least_six_worker_timeouts() {
    let t = template();
    let (id, q) = jobs_queue(&t);
    let visibility = visibility_seconds(q);
    assert_eq!(
        visibility,
        u64::from(VISIBILITY_TIMEOUT_SECS),
        "{id}'s VisibilityTimeout must be what `opkit init` creates (opkit::timing)"
    );
    let (_, worker) = function(&t, WORKER);
    let timeout = timeout_seconds(&t, worker);
    assert!(
        visibility >= 6 * timeout,
        "{id}'s VisibilityTimeout ({visibility} s) must be at least 6 x the worker's Timeout \
         ({timeout} s, from the function or Globals), so a batch in progress is not redelivered"
    );
}

/// The relations `opkit::timing` documents, between the template's numbers and the claim's
/// lease, which the template cannot hold.
#[test]
fn the_claims_lease_outlasts_the_worker_and_every_redelivery() {
    let t = template();
    let (worker_id, worker) = function(&t, WORKER);
    let timeout = timeout_seconds(&t, worker);
    assert_eq!(
        timeout,
        u64::from(WORKER_TIMEOUT_SECS),
        "{worker_id}'s Timeout must be opkit::timing::WORKER_TIMEOUT_SECS: the worker stops \
         starting records by that deadline, and the lease is sized from it"
    );
    let (queue, q) = jobs_queue(&t);
    let visibility = visibility_seconds(q);
    let receives = number(
        get(
            get(get(q, "Properties"), "RedrivePolicy"),
            "maxReceiveCount",
        ),
        "maxReceiveCount",
    );
    let lease = u64::from(LEASE_SECS);
    let lease_in_worker = opkit::worker::LEASE.num_seconds();
    assert_eq!(
        u64::try_from(lease_in_worker).ok(),
        Some(lease),
        "the runner's lease is opkit::timing's"
    );
    assert!(
        lease >= timeout,
        "the claim's lease ({lease} s) must be at least the worker's Timeout ({timeout} s): a \
         claim must not lapse while its invocation may still run the job"
    );
    assert!(
        lease >= receives * visibility,
        "the claim's lease ({lease} s) must outlast every delivery of {queue}'s messages \
         ({receives} x {visibility} s): otherwise a redelivery runs a job again whose \
         invocation was cut off half-way"
    );
    assert!(
        u64::from(START_MARGIN_SECS) < timeout,
        "the start margin ({START_MARGIN_SECS} s) must leave a fresh invocation time to \
         start its first record ({timeout} s)"
    );
}

#[test]
fn worker_reports_partial_batch_failures() {
    let t = template();
    let (worker, _) = function(&t, WORKER);
    let events = worker_sqs_events(&t);
    assert!(!events.is_empty(), "{worker} should have an SQS event");
    for (name, sqs) in events {
        let id = format!("{worker}.{name}");
        batch_failures_reported(&id, get(sqs, "Properties"));
    }
}

fn batch_failures_reported(id: &str, props: &Value) {
    assert!(
        strings(get(props, "FunctionResponseTypes"))
            .iter()
            .any(|r| r == "ReportBatchItemFailures"),
        "{id}'s SQS event must have FunctionResponseTypes: [ReportBatchItemFailures], or one \
         failed job makes the whole batch run again"
    );
    let batch = number(get(props, "BatchSize"), "BatchSize");
    assert!(
        (1..=10).contains(&batch),
        "{id}'s BatchSize ({batch}) must be 1-10: more needs a batching window, which delays replies"
    );
    assert!(
        batch <= opkit::worker::BATCH_CONCURRENCY as u64,
        "{id}'s BatchSize ({batch}) is more than the worker runs at once \
         (opkit::worker::BATCH_CONCURRENCY): the rest would wait behind the first records"
    );
}
