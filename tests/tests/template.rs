//! The rules `template.yaml` must keep, read from the template itself.
//!
//! cfn-lint and `sam validate` check that the template is valid CloudFormation/SAM; these
//! tests check that it is the Opkit the code expects: the table's keys and indexes, the
//! queue's redrive and visibility timeout against the worker's timeout and the claim's lease
//! (`opkit::timing`), partial batch failures, least-privilege roles, a queue only the ingress
//! and the expiry may send to, one generated envelope key for the three functions, and
//! secrets that never sit in the repository.
//!
//! The YAML is read with `serde_norway`, a maintained fork of `serde_yaml` that keeps
//! CloudFormation's short-form tags (`!Ref`, `!GetAtt`, `!Sub`) as tagged values instead of
//! rejecting them; the long forms (`Ref:`, `Fn::GetAtt:`) are understood too.

use std::path::PathBuf;

use serde_norway::{Mapping, Value};

// The table's key design comes from the Rust store itself, so the template cannot
// drift from what `opkit init` creates and the persister reads.
use opkit::store::dynamodb::{GSI1, GSI1_PK, GSI1_SK, GSI2, GSI2_PK, GSI2_SK, PK, SK, TTL};
// The worker's time limits, from the one place that defines them.
use opkit::timing::{
    LEASE_SECS, MAX_RECEIVES, START_MARGIN_SECS, VISIBILITY_TIMEOUT_SECS, WORKER_TIMEOUT_SECS,
};

/// The binaries (`BuildProperties: Binary`) of the three Lambda functions.
const INGRESS: &str = "ingress";
const WORKER: &str = "worker";
const EXPIRY: &str = "expiry";

/// Parameters that carry secrets: never echoed by CloudFormation, never in the repo.
const SECRET_PARAMETERS: [&str; 3] = ["SlackSigningSecret", "SlackBotToken", "WeatherApiKey"];

/// EC2 actions that change an instance: only on instances tagged to opt in.
const EC2_MUTATING: [&str; 3] = [
    "ec2:StartInstances",
    "ec2:StopInstances",
    "ec2:RebootInstances",
];
const OPT_IN_CONDITION_KEY: &str = "aws:ResourceTag/opkit:managed";

/// What a function needs to write its own logs (every role has this).
const LOG_ACTIONS: [&str; 2] = ["logs:CreateLogStream", "logs:PutLogEvents"];

// ------------------------------------------------------------------ reading the template

fn template() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("template.yaml is not YAML: {e}"))
}

/// The value with any short-form tag (`!Ref x`) taken off.
fn untag(v: &Value) -> &Value {
    match v {
        Value::Tagged(t) => &t.value,
        other => other,
    }
}

fn tag_name(v: &Value) -> Option<String> {
    match v {
        Value::Tagged(t) => Some(t.tag.to_string().trim_start_matches('!').to_string()),
        _ => None,
    }
}

/// `v[key]`, looking through tags; `Null` if absent.
fn get<'a>(v: &'a Value, key: &str) -> &'a Value {
    static NULL: Value = Value::Null;
    untag(v)
        .as_mapping()
        .and_then(|m| m.get(key))
        .unwrap_or(&NULL)
}

fn mapping<'a>(v: &'a Value, what: &str) -> &'a Mapping {
    untag(v)
        .as_mapping()
        .unwrap_or_else(|| panic!("{what} should be a mapping, found {v:?}"))
}

fn seq<'a>(v: &'a Value, what: &str) -> &'a [Value] {
    untag(v)
        .as_sequence()
        .map(Vec::as_slice)
        .unwrap_or_else(|| panic!("{what} should be a list, found {v:?}"))
}

fn string<'a>(v: &'a Value, what: &str) -> &'a str {
    untag(v)
        .as_str()
        .unwrap_or_else(|| panic!("{what} should be a string, found {v:?}"))
}

/// A number, written as a YAML number or a numeric string (both are valid CloudFormation).
fn number(v: &Value, what: &str) -> u64 {
    let v = untag(v);
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or_else(|| panic!("{what} should be a number, found {v:?}"))
}

/// A string or a list of strings (IAM `Action`, `Resource`), as a list.
fn strings(v: &Value) -> Vec<String> {
    match untag(v) {
        Value::String(s) => vec![s.clone()],
        Value::Sequence(items) => items
            .iter()
            .filter_map(|i| untag(i).as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

/// The logical id named by `!Ref X` / `{Ref: X}`.
fn ref_target(v: &Value) -> Option<&str> {
    if tag_name(v).as_deref() == Some("Ref") {
        return untag(v).as_str();
    }
    get(v, "Ref").as_str()
}

/// The (logical id, attribute) named by `!GetAtt X.Attr` / `{Fn::GetAtt: [X, Attr]}`.
fn getatt_target(v: &Value) -> Option<(String, String)> {
    let target = if tag_name(v).as_deref() == Some("GetAtt") {
        untag(v)
    } else {
        match get(v, "Fn::GetAtt") {
            Value::Null => return None,
            found => found,
        }
    };
    match untag(target) {
        Value::String(s) => s
            .split_once('.')
            .map(|(id, attr)| (id.to_string(), attr.to_string())),
        Value::Sequence(parts) if parts.len() == 2 => Some((
            untag(&parts[0]).as_str()?.to_string(),
            untag(&parts[1]).as_str()?.to_string(),
        )),
        _ => None,
    }
}

fn resources(t: &Value) -> &Mapping {
    mapping(get(t, "Resources"), "Resources")
}

fn resource<'a>(t: &'a Value, id: &str) -> &'a Value {
    resources(t)
        .get(id)
        .unwrap_or_else(|| panic!("template.yaml has no resource {id}"))
}

/// The one resource of `ty`, with its logical id.
fn only_resource_of_type<'a>(t: &'a Value, ty: &str) -> (&'a str, &'a Value) {
    let found: Vec<_> = resources(t)
        .iter()
        .filter(|(_, r)| get(r, "Type").as_str() == Some(ty))
        .map(|(id, r)| (id.as_str().expect("logical ids are strings"), r))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "template.yaml should have exactly one {ty}, found {}",
        found.len()
    );
    found[0]
}

/// The logical id and resource of the SAM function built from `binary`.
fn function<'a>(t: &'a Value, binary: &str) -> (&'a str, &'a Value) {
    let found: Vec<_> = resources(t)
        .iter()
        .filter(|(_, r)| {
            get(r, "Type").as_str() == Some("AWS::Serverless::Function")
                && get(get(get(r, "Metadata"), "BuildProperties"), "Binary").as_str()
                    == Some(binary)
        })
        .map(|(id, r)| (id.as_str().expect("logical ids are strings"), r))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "exactly one AWS::Serverless::Function should build the binary `{binary}` \
         (Metadata.BuildProperties.Binary), found {}",
        found.len()
    );
    found[0]
}

/// A function's property, or the one in `Globals.Function` (SAM's rule), or `Null`.
fn function_setting<'a>(t: &'a Value, function: &'a Value, key: &str) -> &'a Value {
    match get(get(function, "Properties"), key) {
        Value::Null => get(get(get(t, "Globals"), "Function"), key),
        own => own,
    }
}

/// A function's timeout in seconds, as Lambda will see it (3 s when nobody sets one).
fn timeout_seconds(t: &Value, function: &Value) -> u64 {
    match function_setting(t, function, "Timeout") {
        Value::Null => 3,
        v => number(v, "Timeout"),
    }
}

/// The explicit IAM role a function runs with; the rules below can only be checked (and
/// only hold) when the role is written out: SAM's generated role gets AWS managed policies.
fn role_of<'a>(t: &'a Value, binary: &str) -> (String, &'a Value) {
    let (id, f) = function(t, binary);
    let props = get(f, "Properties");
    for key in ["Policies", "PermissionsBoundary"] {
        assert!(
            get(props, key).is_null(),
            "{id} ({binary}) must not set {key}: its permissions live in its own AWS::IAM::Role"
        );
    }
    let (role, attr) = getatt_target(get(props, "Role")).unwrap_or_else(|| {
        panic!(
            "{id} ({binary}) must run with its own role (Role: !GetAtt SomeRole.Arn); \
             SAM's generated role attaches AWS managed policies with Resource \"*\""
        )
    });
    assert_eq!(attr, "Arn", "{id}'s Role should be !GetAtt {role}.Arn");
    let r = resource(t, &role);
    assert_eq!(
        get(r, "Type").as_str(),
        Some("AWS::IAM::Role"),
        "{id}'s role {role} should be an AWS::IAM::Role"
    );
    assert!(
        get(get(r, "Properties"), "ManagedPolicyArns").is_null(),
        "{role} ({binary}) must not attach managed policies: they grant more than it needs"
    );
    (role, r)
}

/// Every statement of a role's inline policies.
fn statements(role: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    if let Value::Sequence(policies) = untag(get(get(role, "Properties"), "Policies")) {
        for p in policies {
            match untag(get(get(p, "PolicyDocument"), "Statement")) {
                Value::Sequence(s) => out.extend(s.iter()),
                Value::Null => {}
                single => out.push(single),
            }
        }
    }
    out
}

fn allows(statement: &Value) -> bool {
    get(statement, "Effect").as_str() == Some("Allow")
}

/// IAM's action matching: case-insensitive, `*` and `?` as wildcards.
fn action_matches(pattern: &str, action: &str) -> bool {
    fn glob(p: &[u8], a: &[u8]) -> bool {
        match (p.first(), a.first()) {
            (None, None) => true,
            (Some(b'*'), _) => glob(&p[1..], a) || (!a.is_empty() && glob(p, &a[1..])),
            (Some(b'?'), Some(_)) => glob(&p[1..], &a[1..]),
            (Some(x), Some(y)) if x.eq_ignore_ascii_case(y) => glob(&p[1..], &a[1..]),
            _ => false,
        }
    }
    glob(pattern.as_bytes(), action.as_bytes())
}

/// The jobs queue: the one the worker's SQS event reads.
fn jobs_queue(t: &Value) -> (String, &Value) {
    let (id, worker) = function(t, WORKER);
    let events = mapping(
        get(get(worker, "Properties"), "Events"),
        "the worker's Events",
    );
    let sqs: Vec<_> = events
        .values()
        .filter(|e| get(e, "Type").as_str() == Some("SQS"))
        .collect();
    assert_eq!(
        sqs.len(),
        1,
        "{id} should have exactly one SQS event (the jobs queue)"
    );
    let (queue, attr) = getatt_target(get(get(sqs[0], "Properties"), "Queue"))
        .expect("the worker's SQS event should name its queue as !GetAtt Queue.Arn");
    assert_eq!(attr, "Arn");
    let q = resource(t, &queue);
    (queue, q)
}

// ------------------------------------------------------------------ the table

fn table(t: &Value) -> &Value {
    get(
        only_resource_of_type(t, "AWS::DynamoDB::Table").1,
        "Properties",
    )
}

fn key_schema(v: &Value, what: &str) -> Vec<(String, String)> {
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
    let (id, worker) = function(&t, WORKER);
    let events = mapping(get(get(worker, "Properties"), "Events"), "Events");
    let sqs = events
        .values()
        .find(|e| get(e, "Type").as_str() == Some("SQS"))
        .expect("the worker should have an SQS event");
    let props = get(sqs, "Properties");
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

// ------------------------------------------------------------------ IAM

#[test]
fn ingress_may_only_send_to_the_jobs_queue() {
    let t = template();
    let (queue, _) = jobs_queue(&t);
    let (role, r) = role_of(&t, INGRESS);
    let stmts = statements(r);
    assert!(!stmts.is_empty(), "{role} should have an inline policy");
    let mut sends = 0;
    for s in stmts {
        assert!(allows(s), "{role} should only have Allow statements");
        for action in strings(get(s, "Action")) {
            if action == "sqs:SendMessage" {
                sends += 1;
                let targets: Vec<_> = match get(s, "Resource") {
                    Value::Sequence(items) => items.iter().collect(),
                    one => vec![one], // keeps its tag (!GetAtt)
                };
                for target in targets {
                    assert_eq!(
                        getatt_target(target),
                        Some((queue.clone(), "Arn".to_string())),
                        "{role} may send only to the jobs queue ({queue}), not to {target:?}"
                    );
                }
            } else {
                assert!(
                    LOG_ACTIONS.contains(&action.as_str()),
                    "{role} (ingress) may only sqs:SendMessage (and write its logs), \
                     but it allows {action}"
                );
            }
        }
        assert!(
            get(s, "NotAction").is_null(),
            "{role} must not use NotAction: it allows everything else"
        );
    }
    assert!(
        sends > 0,
        "{role} must allow sqs:SendMessage to the jobs queue"
    );
}

#[test]
fn ec2_start_stop_reboot_only_on_opted_in_instances() {
    let t = template();
    for (id, r) in resources(&t) {
        let id = id.as_str().unwrap_or_default();
        if get(r, "Type").as_str() != Some("AWS::IAM::Role") {
            continue;
        }
        for s in statements(r).into_iter().filter(|s| allows(s)) {
            let actions = strings(get(s, "Action"));
            let mutating: Vec<&str> = EC2_MUTATING
                .into_iter()
                .filter(|m| actions.iter().any(|a| action_matches(a, m)))
                .collect();
            if mutating.is_empty() {
                continue;
            }
            let tag = get(
                get(get(s, "Condition"), "StringEquals"),
                OPT_IN_CONDITION_KEY,
            );
            assert_eq!(
                untag(tag).as_str(),
                Some("true"),
                "{id} allows {mutating:?} without Condition: StringEquals: \
                 {OPT_IN_CONDITION_KEY}: \"true\" - only opted-in instances may be changed"
            );
        }
    }
    let (role, r) = role_of(&t, WORKER);
    let granted: Vec<&str> = EC2_MUTATING
        .into_iter()
        .filter(|m| {
            statements(r).iter().any(|s| {
                strings(get(s, "Action"))
                    .iter()
                    .any(|a| action_matches(a, m))
            })
        })
        .collect();
    assert_eq!(
        granted, EC2_MUTATING,
        "{role} (worker) should allow start/stop/reboot of opted-in instances"
    );
}

#[test]
fn only_the_worker_touches_ec2_cloudwatch_or_other_queues() {
    let t = template();
    for binary in [INGRESS, EXPIRY] {
        let (role, r) = role_of(&t, binary);
        for s in statements(r) {
            for action in strings(get(s, "Action")) {
                let service = action.split(':').next().unwrap_or_default();
                assert!(
                    !matches!(service, "ec2" | "cloudwatch") && action != "*",
                    "{role} ({binary}) must not allow {action}: only the worker uses EC2 and CloudWatch"
                );
                if binary == EXPIRY {
                    let queues_jobs = action == "sqs:SendMessage"
                        && ref_target(get(s, "Resource")).is_none()
                        && getatt_target(get(s, "Resource"))
                            .is_some_and(|(r, _)| r == jobs_queue(&t).0);
                    assert!(
                        service == "dynamodb"
                            || LOG_ACTIONS.contains(&action.as_str())
                            || queues_jobs,
                        "{role} (expiry) may only use the table, send to the jobs queue \
                         (scheduled commands) and write its logs, but it allows {action}"
                    );
                }
            }
        }
    }
}

// ------------------------------------------------------------------ secrets and routes

#[test]
fn secrets_are_noecho_parameters() {
    let t = template();
    let params = get(&t, "Parameters");
    for name in SECRET_PARAMETERS {
        let p = get(params, name);
        assert!(
            !p.is_null(),
            "template.yaml should have the parameter {name}"
        );
        assert_eq!(
            get(p, "NoEcho").as_bool(),
            Some(true),
            "parameter {name} carries a secret: it must be NoEcho: true"
        );
        if let Some(default) = get(p, "Default").as_str() {
            assert!(
                default.is_empty(),
                "secret parameter {name} must not have a default value in the repository"
            );
        }
    }
}

#[test]
fn secret_variables_come_from_noecho_parameters() {
    let t = template();
    let params = get(&t, "Parameters");
    for (id, r) in resources(&t) {
        let id = id.as_str().unwrap_or_default();
        if get(r, "Type").as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let vars = get(get(get(r, "Properties"), "Environment"), "Variables");
        for name in [
            "SLACK_SIGNING_SECRET",
            "SLACK_BOT_TOKEN",
            "OPKIT_WEATHER_KEY",
        ] {
            let v = get(vars, name);
            if v.is_null() {
                continue;
            }
            let param = ref_target(v).unwrap_or_else(|| {
                panic!("{id}'s {name} must be !Ref to a NoEcho parameter, never a literal")
            });
            assert_eq!(
                get(get(params, param), "NoEcho").as_bool(),
                Some(true),
                "{id}'s {name} comes from {param}, which must be NoEcho: true"
            );
        }
    }
}

#[test]
fn ingress_serves_the_three_slack_routes() {
    let t = template();
    let (id, ingress) = function(&t, INGRESS);
    let events = mapping(get(get(ingress, "Properties"), "Events"), "Events");
    let mut routes: Vec<(String, String)> = events
        .values()
        .filter(|e| get(e, "Type").as_str() == Some("HttpApi"))
        .map(|e| {
            let p = get(e, "Properties");
            (
                string(get(p, "Method"), "Method").to_uppercase(),
                string(get(p, "Path"), "Path").to_string(),
            )
        })
        .collect();
    routes.sort();
    assert_eq!(
        routes,
        [
            ("POST".to_string(), "/slack/commands".to_string()),
            ("POST".to_string(), "/slack/events".to_string()),
            ("POST".to_string(), "/slack/interactions".to_string()),
        ],
        "{id} must serve exactly the routes of `opkit serve` and the Slack app manifest"
    );
}

#[test]
fn every_function_is_a_cargo_lambda_build_on_provided_al2023() {
    let t = template();
    for binary in [INGRESS, WORKER, EXPIRY] {
        let (id, f) = function(&t, binary);
        assert_eq!(
            get(get(f, "Metadata"), "BuildMethod").as_str(),
            Some("rust-cargolambda"),
            "{id} must be built by SAM's rust-cargolambda builder"
        );
        assert_eq!(
            untag(function_setting(&t, f, "Runtime")).as_str(),
            Some("provided.al2023"),
            "{id} must run on provided.al2023"
        );
        assert_eq!(
            untag(function_setting(&t, f, "Handler")).as_str(),
            Some("bootstrap"),
            "{id}'s Handler must be bootstrap (the name cargo lambda gives the binary)"
        );
    }
}

#[test]
fn action_matching_follows_iam() {
    assert!(action_matches("ec2:StartInstances", "ec2:StartInstances"));
    assert!(action_matches("EC2:start*", "ec2:StartInstances"));
    assert!(action_matches("ec2:*", "ec2:RebootInstances"));
    assert!(action_matches("*", "ec2:StopInstances"));
    assert!(action_matches("ec2:?topInstances", "ec2:StopInstances"));
    assert!(!action_matches("ec2:Describe*", "ec2:StopInstances"));
    assert!(!action_matches("ec2:StartInstance", "ec2:StartInstances"));
}

// ------------------------------------------------------------------ against `opkit init`

/// `opkit init` (i.e. `create_table`) makes, on the emulator, the table the template
/// declares: the same keys, indexes, projections and TTL attribute.
#[tokio::test]
async fn opkit_init_creates_the_table_the_template_declares() {
    use aws_sdk_dynamodb::types::{KeyType, ProjectionType};
    let sdk = opkit_tests::aws::sdk_config().await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let name = opkit_tests::aws::unique_name("init");
    opkit::store::dynamodb::create_table(&client, &name)
        .await
        .unwrap();
    let described = client
        .describe_table()
        .table_name(&name)
        .send()
        .await
        .unwrap();
    let created = described.table().unwrap();
    let schema = |keys: &[aws_sdk_dynamodb::types::KeySchemaElement]| -> Vec<(String, String)> {
        keys.iter()
            .map(|k| {
                let kind = match k.key_type() {
                    KeyType::Hash => "HASH",
                    _ => "RANGE",
                };
                (k.attribute_name().to_string(), kind.to_string())
            })
            .collect()
    };
    let t = template();
    let declared = table(&t);
    assert_eq!(
        schema(created.key_schema()),
        key_schema(get(declared, "KeySchema"), "KeySchema"),
        "the table's keys differ between opkit init and template.yaml"
    );
    for gsi in seq(
        get(declared, "GlobalSecondaryIndexes"),
        "GlobalSecondaryIndexes",
    ) {
        let index = string(get(gsi, "IndexName"), "IndexName");
        let made = created
            .global_secondary_indexes()
            .iter()
            .find(|g| g.index_name() == Some(index))
            .unwrap_or_else(|| panic!("opkit init made no index {index}"));
        assert_eq!(
            schema(made.key_schema()),
            key_schema(get(gsi, "KeySchema"), "an index's KeySchema"),
            "index {index}'s keys differ between opkit init and template.yaml"
        );
        assert_eq!(
            made.projection().and_then(|p| p.projection_type()),
            Some(&ProjectionType::All),
            "index {index} must project ALL"
        );
    }
    let ttl = client
        .describe_time_to_live()
        .table_name(&name)
        .send()
        .await
        .unwrap();
    assert_eq!(
        ttl.time_to_live_description()
            .and_then(|d| d.attribute_name()),
        get(get(declared, "TimeToLiveSpecification"), "AttributeName").as_str(),
        "the TTL attribute differs between opkit init and template.yaml"
    );
}

#[test]
fn the_worker_may_never_read_its_own_dead_letter_queue() {
    let t = template();
    let (queue, q) = jobs_queue(&t);
    let redrive = get(get(q, "Properties"), "RedrivePolicy");
    let (dlq, _) = getatt_target(get(redrive, "deadLetterTargetArn"))
        .unwrap_or_else(|| panic!("{queue}'s redrive target should be a !GetAtt"));
    let (role, r) = role_of(&t, WORKER);
    let denied = statements(r).into_iter().any(|s| {
        get(s, "Effect").as_str() == Some("Deny")
            && strings(get(s, "Action"))
                .iter()
                .any(|a| action_matches(a, "sqs:ReceiveMessage"))
            && getatt_target(get(s, "Resource")) == Some((dlq.clone(), "Arn".to_string()))
    });
    assert!(
        denied,
        "{role} must deny sqs:ReceiveMessage on {dlq}: `sqs peek` would show job envelopes \
         with their response_urls"
    );
}

#[test]
fn every_setting_the_worker_reads_is_a_parameter() {
    let t = template();
    let (id, worker) = function(&t, WORKER);
    let params = mapping(get(&t, "Parameters"), "Parameters");
    for (variable, parameter) in [
        ("OPKIT_GRANT_APPROVERS", "GrantApprovers"),
        ("OPKIT_ALLOW_SELF_GRANT", "AllowSelfGrant"),
        ("OPKIT_GRANT_ROLES", "GrantRoles"),
        ("OPKIT_AUDIT_ROLES", "AuditRoles"),
        ("OPKIT_ADMINS", "AdminUserIds"),
    ] {
        let env = get(
            get(function_setting(&t, worker, "Environment"), "Variables"),
            variable,
        );
        assert_eq!(
            ref_target(env),
            Some(parameter),
            "{id} should take {variable} from the {parameter} parameter"
        );
        assert!(params.keys().any(|k| k.as_str() == Some(parameter)));
    }
}

#[test]
fn who_may_call_is_chosen_at_deploy_time_never_defaulted_to_everyone() {
    let t = template();
    let p = get(get(&t, "Parameters"), "AllowedTeamIds");
    assert!(
        !p.is_null(),
        "template.yaml should have the AllowedTeamIds parameter"
    );
    // No default at all: an empty one would let any workspace call without anyone
    // having chosen it (the deployed ingress would not even start).
    assert!(
        get(p, "Default").is_null(),
        "AllowedTeamIds must have no default; deployers name their team ids or `any`, \
         found Default: {:?}",
        get(p, "Default")
    );
    assert!(
        get(p, "MinLength").as_u64().is_some_and(|n| n >= 1),
        "AllowedTeamIds must refuse an empty value (MinLength: 1)"
    );
    let pattern = string(get(p, "AllowedPattern"), "AllowedPattern");
    assert!(
        pattern.contains("any"),
        "AllowedTeamIds' AllowedPattern must take `any` as well as ids: {pattern}"
    );
    // The ingress reads it, and says whether other organisations' users may call.
    let (id, ingress) = function(&t, INGRESS);
    let vars = get(function_setting(&t, ingress, "Environment"), "Variables");
    assert_eq!(
        ref_target(get(vars, "OPKIT_TEAM_IDS")),
        Some("AllowedTeamIds"),
        "{id} should take OPKIT_TEAM_IDS from AllowedTeamIds"
    );
    assert_eq!(
        get(vars, "OPKIT_ALLOW_EXTERNAL_USERS").as_str(),
        Some("false"),
        "{id} should refuse members of other organisations unless told otherwise"
    );
}

// ------------------------------------------------------------------ the envelope key and the queue's policy

/// The text of a `!Sub "..."` (or `Fn::Sub: "..."`) value.
fn sub_text(v: &Value) -> Option<&str> {
    if tag_name(v).as_deref() == Some("Sub") {
        return untag(v).as_str();
    }
    get(v, "Fn::Sub").as_str()
}

#[test]
fn the_envelope_key_is_one_generated_secret_that_only_the_three_functions_hold() {
    let t = template();
    let mut holders = Vec::new();
    let mut secrets = Vec::new();
    for (id, r) in resources(&t) {
        let id = id.as_str().unwrap_or_default();
        if get(r, "Type").as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let value = get(
            get(function_setting(&t, r, "Environment"), "Variables"),
            "OPKIT_ENVELOPE_KEY",
        );
        if value.is_null() {
            continue;
        }
        let text = sub_text(value).unwrap_or_else(|| {
            panic!(
                "{id}'s OPKIT_ENVELOPE_KEY must be !Sub \"{{{{resolve:secretsmanager:${{Secret}}:SecretString}}}}\", \
                 never a literal"
            )
        });
        let secret = text
            .strip_prefix("{{resolve:secretsmanager:${")
            .and_then(|rest| rest.strip_suffix("}:SecretString}}"))
            .unwrap_or_else(|| {
                panic!("{id}'s OPKIT_ENVELOPE_KEY should resolve a whole secret, not {text}")
            });
        holders.push(id.to_string());
        secrets.push(secret.to_string());
    }
    let mut expected: Vec<String> = [INGRESS, WORKER, EXPIRY]
        .iter()
        .map(|b| function(&t, b).0.to_string())
        .collect();
    expected.sort();
    holders.sort();
    assert_eq!(
        holders, expected,
        "exactly the ingress and the expiry (which seal) and the worker (which verifies) \
         hold OPKIT_ENVELOPE_KEY"
    );
    secrets.dedup();
    assert_eq!(
        secrets.len(),
        1,
        "the three must hold the same key: {secrets:?}"
    );
    let secret = resource(&t, &secrets[0]);
    assert_eq!(
        get(secret, "Type").as_str(),
        Some("AWS::SecretsManager::Secret"),
        "{} must be a secret of this stack",
        secrets[0]
    );
    let generated = get(get(secret, "Properties"), "GenerateSecretString");
    assert!(
        get(get(secret, "Properties"), "SecretString").is_null() && !generated.is_null(),
        "{} must be generated (GenerateSecretString), never written in the template",
        secrets[0]
    );
    assert!(
        get(generated, "SecretStringTemplate").is_null(),
        "{}'s value must be the key itself, not JSON",
        secrets[0]
    );
    let length = number(get(generated, "PasswordLength"), "PasswordLength");
    assert!(
        length >= opkit::job::EnvelopeKey::MIN_LEN as u64,
        "{}'s PasswordLength ({length}) must be at least the {} characters the functions require",
        secrets[0],
        opkit::job::EnvelopeKey::MIN_LEN
    );
}

#[test]
fn only_the_ingress_and_the_expiry_may_send_to_the_jobs_queue() {
    let t = template();
    let (queue, _) = jobs_queue(&t);
    let policies: Vec<&Value> = resources(&t)
        .values()
        .filter(|r| get(r, "Type").as_str() == Some("AWS::SQS::QueuePolicy"))
        .filter(|r| {
            seq(
                get(get(r, "Properties"), "Queues"),
                "a QueuePolicy's Queues",
            )
            .iter()
            .any(|q| ref_target(q) == Some(queue.as_str()))
        })
        .collect();
    assert_eq!(
        policies.len(),
        1,
        "{queue} should have exactly one AWS::SQS::QueuePolicy"
    );
    let document = get(get(policies[0], "Properties"), "PolicyDocument");
    let statements: Vec<&Value> = match untag(get(document, "Statement")) {
        Value::Sequence(s) => s.iter().collect(),
        single => vec![single],
    };
    // The roles the template allows to send to the queue: the policy must let exactly
    // these through.
    let mut senders: Vec<String> = Vec::new();
    for (id, r) in resources(&t) {
        if get(r, "Type").as_str() != Some("AWS::IAM::Role") {
            continue;
        }
        let sends = statements_of_role_allowing(r, "sqs:SendMessage")
            .iter()
            .any(|s| getatt_target(get(s, "Resource")).is_some_and(|(q, _)| q == queue));
        if sends {
            senders.push(id.as_str().unwrap_or_default().to_string());
        }
    }
    senders.sort();
    let mut expected = vec![role_of(&t, INGRESS).0, role_of(&t, EXPIRY).0];
    expected.sort();
    assert_eq!(
        senders, expected,
        "only the ingress's and the expiry's roles may allow sqs:SendMessage to {queue}"
    );
    let deny = statements
        .iter()
        .find(|s| {
            get(s, "Effect").as_str() == Some("Deny")
                && strings(get(s, "Action"))
                    .iter()
                    .any(|a| action_matches(a, "sqs:SendMessage"))
        })
        .unwrap_or_else(|| panic!("{queue}'s policy must Deny sqs:SendMessage"));
    let principal = get(deny, "Principal");
    assert!(
        untag(principal).as_str() == Some("*") || get(principal, "AWS").as_str() == Some("*"),
        "the Deny must apply to every principal (Principal: \"*\"), found {principal:?}"
    );
    let resource = get(deny, "Resource");
    assert!(
        resource.is_null() || getatt_target(resource) == Some((queue.clone(), "Arn".into())),
        "the Deny must be on {queue} itself"
    );
    let condition = mapping(get(deny, "Condition"), "the Deny's Condition");
    assert_eq!(
        condition.len(),
        1,
        "the Deny must have one condition operator, ArnNotEquals (a second one would narrow it)"
    );
    let not_equals = get(get(deny, "Condition"), "ArnNotEquals");
    let mapping = mapping(not_equals, "ArnNotEquals");
    assert_eq!(
        mapping.len(),
        1,
        "ArnNotEquals must test aws:PrincipalArn alone"
    );
    let allowed = match untag(get(not_equals, "aws:PrincipalArn")) {
        Value::Sequence(items) => items.iter().collect::<Vec<_>>(),
        Value::Null => panic!("the Deny's ArnNotEquals must test aws:PrincipalArn"),
        one => vec![one],
    };
    let mut allowed: Vec<String> = allowed
        .iter()
        .map(|v| match getatt_target(v) {
            Some((role, attr)) if attr == "Arn" => role,
            _ => panic!("aws:PrincipalArn values must be !GetAtt Role.Arn, found {v:?}"),
        })
        .collect();
    allowed.sort();
    assert_eq!(
        allowed, expected,
        "the Deny must spare exactly the roles that send: the ingress's and the expiry's"
    );
}

/// The Allow statements of a role that grant `action`.
fn statements_of_role_allowing<'a>(role: &'a Value, action: &str) -> Vec<&'a Value> {
    statements(role)
        .into_iter()
        .filter(|s| allows(s))
        .filter(|s| {
            strings(get(s, "Action"))
                .iter()
                .any(|a| action_matches(a, action))
        })
        .collect()
}
