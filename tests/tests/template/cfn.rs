//! Reading `template.yaml`: short-form tags, references, functions, roles, statements.

use std::path::PathBuf;

pub(crate) use serde_norway::{Mapping, Value};

/// The binaries (`BuildProperties: Binary`) of the three Lambda functions.
pub(crate) const INGRESS: &str = "ingress";
pub(crate) const WORKER: &str = "worker";
pub(crate) const EXPIRY: &str = "expiry";

/// The credential settings: each function's environment may only name their secrets
/// (`NAME_ARN`), never hold them.
pub(crate) const CREDENTIALS: [&str; 4] = [
    "SLACK_SIGNING_SECRET",
    "SLACK_BOT_TOKEN",
    "OPKIT_ENVELOPE_KEY",
    "OPKIT_WEATHER_KEY",
];

/// EC2 actions that change an instance: only on instances tagged to opt in.
pub(crate) const EC2_MUTATING: [&str; 3] = [
    "ec2:StartInstances",
    "ec2:StopInstances",
    "ec2:RebootInstances",
];
pub(crate) const OPT_IN_CONDITION_KEY: &str = "aws:ResourceTag/opkit:managed";

/// What a function needs to write its own logs (every role has this).
pub(crate) const LOG_ACTIONS: [&str; 2] = ["logs:CreateLogStream", "logs:PutLogEvents"];

/// What a function needs to send X-Ray traces (every role has this; X-Ray has no
/// resource-level permissions).
pub(crate) const XRAY_ACTIONS: [&str; 2] = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"];

/// Reading a secret; which secrets each role may read is checked in `secrets.rs`.
pub(crate) const READ_SECRET: &str = "secretsmanager:GetSecretValue";

// ------------------------------------------------------------------ reading the template

pub(crate) fn template() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("template.yaml is not YAML: {e}"))
}

/// The value with any short-form tag (`!Ref x`) taken off.
pub(crate) fn untag(v: &Value) -> &Value {
    match v {
        Value::Tagged(t) => &t.value,
        other => other,
    }
}

pub(crate) fn tag_name(v: &Value) -> Option<String> {
    match v {
        Value::Tagged(t) => Some(t.tag.to_string().trim_start_matches('!').to_string()),
        _ => None,
    }
}

/// `v[key]`, looking through tags; `Null` if absent.
pub(crate) fn get<'a>(v: &'a Value, key: &str) -> &'a Value {
    static NULL: Value = Value::Null;
    untag(v)
        .as_mapping()
        .and_then(|m| m.get(key))
        .unwrap_or(&NULL)
}

pub(crate) fn mapping<'a>(v: &'a Value, what: &str) -> &'a Mapping {
    untag(v)
        .as_mapping()
        .unwrap_or_else(|| panic!("{what} should be a mapping, found {v:?}"))
}

pub(crate) fn seq<'a>(v: &'a Value, what: &str) -> &'a [Value] {
    untag(v)
        .as_sequence()
        .map(Vec::as_slice)
        .unwrap_or_else(|| panic!("{what} should be a list, found {v:?}"))
}

pub(crate) fn string<'a>(v: &'a Value, what: &str) -> &'a str {
    untag(v)
        .as_str()
        .unwrap_or_else(|| panic!("{what} should be a string, found {v:?}"))
}

/// A number, written as a YAML number or a numeric string (both are valid CloudFormation).
pub(crate) fn number(v: &Value, what: &str) -> u64 {
    let v = untag(v);
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or_else(|| panic!("{what} should be a number, found {v:?}"))
}

/// A string or a list of strings (IAM `Action`, `Resource`), as a list.
pub(crate) fn strings(v: &Value) -> Vec<String> {
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
pub(crate) fn ref_target(v: &Value) -> Option<&str> {
    if tag_name(v).as_deref() == Some("Ref") {
        return untag(v).as_str();
    }
    get(v, "Ref").as_str()
}

/// The (logical id, attribute) named by `!GetAtt X.Attr` / `{Fn::GetAtt: [X, Attr]}`.
pub(crate) fn getatt_target(v: &Value) -> Option<(String, String)> {
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

pub(crate) fn resources(t: &Value) -> &Mapping {
    mapping(get(t, "Resources"), "Resources")
}

pub(crate) fn resource<'a>(t: &'a Value, id: &str) -> &'a Value {
    resources(t)
        .get(id)
        .unwrap_or_else(|| panic!("template.yaml has no resource {id}"))
}

/// The one resource of `ty`, with its logical id.
pub(crate) fn only_resource_of_type<'a>(t: &'a Value, ty: &str) -> (&'a str, &'a Value) {
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
pub(crate) fn function<'a>(t: &'a Value, binary: &str) -> (&'a str, &'a Value) {
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
pub(crate) fn function_setting<'a>(t: &'a Value, function: &'a Value, key: &str) -> &'a Value {
    match get(get(function, "Properties"), key) {
        Value::Null => get(get(get(t, "Globals"), "Function"), key),
        own => own,
    }
}

/// A function's timeout in seconds, as Lambda will see it (3 s when nobody sets one).
pub(crate) fn timeout_seconds(t: &Value, function: &Value) -> u64 {
    match function_setting(t, function, "Timeout") {
        Value::Null => 3,
        v => number(v, "Timeout"),
    }
}

/// The explicit IAM role a function runs with; the rules below can only be checked (and
/// only hold) when the role is written out: SAM's generated role gets AWS managed policies.
pub(crate) fn role_of<'a>(t: &'a Value, binary: &str) -> (String, &'a Value) {
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
/// A role's statements, those under a condition (`!If [Has…, statement,
/// !Ref AWS::NoValue]`) included: what the role may do when it holds.
pub(crate) fn statements(role: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    if let Value::Sequence(policies) = untag(get(get(role, "Properties"), "Policies")) {
        for p in policies {
            match untag(get(get(p, "PolicyDocument"), "Statement")) {
                Value::Sequence(s) => out.extend(s.iter().flat_map(branches)),
                Value::Null => {}
                single => out.push(single),
            }
        }
    }
    out
}

/// A statement, or both branches of an `!If` (without `!Ref AWS::NoValue`).
fn branches(statement: &Value) -> Vec<&Value> {
    match (tag_name(statement).as_deref(), untag(statement)) {
        (Some("If"), Value::Sequence(parts)) if parts.len() == 3 => parts[1..]
            .iter()
            .filter(|b| ref_target(b) != Some("AWS::NoValue"))
            .collect(),
        _ => vec![statement],
    }
}

pub(crate) fn allows(statement: &Value) -> bool {
    get(statement, "Effect").as_str() == Some("Allow")
}

/// IAM's action matching: case-insensitive, `*` and `?` as wildcards.
pub(crate) fn action_matches(pattern: &str, action: &str) -> bool {
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

/// The jobs queue: the one the worker's SQS event `Jobs` reads.
pub(crate) fn jobs_queue(t: &Value) -> (String, &Value) {
    worker_queue(t, "Jobs")
}

/// The notifications queue: the one the worker's SQS event `Notifications` reads.
pub(crate) fn notifications_queue(t: &Value) -> (String, &Value) {
    worker_queue(t, "Notifications")
}

/// The queue the worker's SQS event `event` reads.
pub(crate) fn worker_queue<'a>(t: &'a Value, event: &str) -> (String, &'a Value) {
    let sqs = worker_sqs_events(t);
    let (_, e) = sqs
        .iter()
        .find(|(name, _)| name == event)
        .unwrap_or_else(|| panic!("the worker should have an SQS event `{event}`"));
    let (queue, attr) = getatt_target(get(get(e, "Properties"), "Queue"))
        .expect("the worker's SQS event should name its queue as !GetAtt Queue.Arn");
    assert_eq!(attr, "Arn");
    let q = resource(t, &queue);
    (queue, q)
}

/// The worker's SQS events (its event source mappings), by name.
pub(crate) fn worker_sqs_events(t: &Value) -> Vec<(String, &Value)> {
    let (_, worker) = function(t, WORKER);
    let events = mapping(
        get(get(worker, "Properties"), "Events"),
        "the worker's Events",
    );
    events
        .iter()
        .filter(|(_, e)| get(e, "Type").as_str() == Some("SQS"))
        .map(|(name, e)| (name.as_str().unwrap_or_default().to_string(), e))
        .collect()
}
