//! Alarms, tracing, logs and metrics: a stack that tells its operators.

use crate::cfn::*;

/// Every alarm of the template, by logical id.
fn alarms(t: &Value) -> Vec<(&str, &Value)> {
    resources(t)
        .iter()
        .filter(|(_, r)| get(r, "Type").as_str() == Some("AWS::CloudWatch::Alarm"))
        .map(|(id, r)| (id.as_str().unwrap_or_default(), get(r, "Properties")))
        .collect()
}

/// The alarm on `namespace`/`metric` whose dimension `dimension` is `target` (a `!Ref` or
/// `!GetAtt X.Attr` of that logical id); panics naming what is missing.
fn alarm_on<'a>(
    t: &'a Value,
    namespace: &str,
    metric: &str,
    dimension: &str,
    target: &str,
) -> (&'a str, &'a Value) {
    let found: Vec<_> = alarms(t)
        .into_iter()
        .filter(|(_, p)| {
            get(p, "Namespace").as_str() == Some(namespace)
                && untag(get(p, "MetricName")).as_str() == Some(metric)
                && seq(get(p, "Dimensions"), "Dimensions").iter().any(|d| {
                    get(d, "Name").as_str() == Some(dimension) && {
                        let v = get(d, "Value");
                        ref_target(v) == Some(target)
                            || getatt_target(v).is_some_and(|(id, _)| id == target)
                    }
                })
        })
        .collect();
    assert_eq!(
        found.len(),
        1,
        "template.yaml should have one alarm on {namespace} {metric} of {target} ({dimension})"
    );
    found[0]
}

/// The alarm fires on the first occurrence in its period.
fn fires_on_any(id: &str, alarm: &Value) {
    assert_eq!(number(get(alarm, "Threshold"), "Threshold"), 0, "{id}");
    assert_eq!(
        get(alarm, "ComparisonOperator").as_str(),
        Some("GreaterThanThreshold"),
        "{id} must fire on the first one"
    );
    assert_eq!(get(alarm, "EvaluationPeriods").as_u64(), Some(1), "{id}");
}

/// `[!Ref AlarmTopic]` when the topic exists (`!If [HasAlarmEmail, [...], NoValue]`).
fn notifies_the_topic(actions: &Value) -> bool {
    let branches = match untag(actions) {
        Value::Sequence(parts) if tag_name(actions).as_deref() == Some("If") => parts.clone(),
        _ => match untag(get(actions, "Fn::If")) {
            Value::Sequence(parts) => parts.clone(),
            _ => return false,
        },
    };
    branches.len() == 3
        && untag(&branches[0]).as_str() == Some("HasAlarmEmail")
        && untag(&branches[1])
            .as_sequence()
            .is_some_and(|s| s.len() == 1 && ref_target(&s[0]) == Some("AlarmTopic"))
        && ref_target(&branches[2]) == Some("AWS::NoValue")
}

#[test]
fn every_alarm_tells_the_alarm_topic_when_it_fires_and_when_it_recovers() {
    let t = template();
    let all = alarms(&t);
    assert!(all.len() >= 10, "found only {} alarms", all.len());
    for (id, alarm) in all {
        for key in ["AlarmActions", "OKActions"] {
            assert!(
                notifies_the_topic(get(alarm, key)),
                "{id}'s {key} must be !If [HasAlarmEmail, [!Ref AlarmTopic], !Ref AWS::NoValue]"
            );
        }
        assert_eq!(
            get(alarm, "TreatMissingData").as_str(),
            Some("notBreaching"),
            "{id}: no data is no failure (a quiet bot is not a broken one)"
        );
        assert!(
            !get(alarm, "AlarmDescription").is_null(),
            "{id} must say what went wrong and what to do"
        );
    }
    let topic = resource(&t, "AlarmTopic");
    assert_eq!(get(topic, "Condition").as_str(), Some("HasAlarmEmail"));
    let subscription = &seq(
        get(get(topic, "Properties"), "Subscription"),
        "Subscription",
    )[0];
    assert_eq!(get(subscription, "Protocol").as_str(), Some("email"));
    assert_eq!(
        ref_target(get(subscription, "Endpoint")),
        Some("AlarmEmail")
    );
}

#[test]
fn every_function_alarms_on_its_errors_and_throttles() {
    let t = template();
    for binary in [INGRESS, WORKER, EXPIRY] {
        let (function_id, _) = function(&t, binary);
        for metric in ["Errors", "Throttles"] {
            let (id, alarm) = alarm_on(&t, "AWS/Lambda", metric, "FunctionName", function_id);
            fires_on_any(id, alarm);
            assert_eq!(get(alarm, "Statistic").as_str(), Some("Sum"), "{id}");
        }
    }
}

#[test]
fn jobs_waiting_too_long_on_the_queue_raise_an_alarm() {
    let t = template();
    let (queue, _) = jobs_queue(&t);
    let (id, alarm) = alarm_on(
        &t,
        "AWS/SQS",
        "ApproximateAgeOfOldestMessage",
        "QueueName",
        &queue,
    );
    assert_eq!(get(alarm, "Statistic").as_str(), Some("Maximum"), "{id}");
    let parameter = ref_target(get(alarm, "Threshold"))
        .unwrap_or_else(|| panic!("{id}'s Threshold should be a parameter"));
    let p = get(get(&t, "Parameters"), parameter);
    let default = number(get(p, "Default"), "the threshold's default");
    // A response_url lives 30 minutes: the alarm must come well before replies are lost.
    assert!(
        (60..=600).contains(&default),
        "{parameter}'s default ({default} s) should page within minutes"
    );
}

#[test]
fn the_api_alarms_on_5xx() {
    let t = template();
    let (api, _) = only_resource_of_type(&t, "AWS::Serverless::HttpApi");
    let (id, alarm) = alarm_on(&t, "AWS/ApiGateway", "5xx", "ApiId", api);
    fires_on_any(id, alarm);
}

#[test]
fn a_failed_expiry_pass_is_recorded_and_raises_an_alarm() {
    let t = template();
    let (id, expiry) = function(&t, EXPIRY);
    // EventBridge invokes it asynchronously: without a destination a failure vanishes.
    let config = get(get(expiry, "Properties"), "EventInvokeConfig");
    let on_failure = get(get(config, "DestinationConfig"), "OnFailure");
    assert_eq!(
        get(on_failure, "Type").as_str(),
        Some("SQS"),
        "{id} needs an OnFailure destination (EventInvokeConfig.DestinationConfig)"
    );
    let (queue, attr) = getatt_target(get(on_failure, "Destination"))
        .expect("the destination should be !GetAtt Queue.Arn");
    assert_eq!(attr, "Arn");
    assert_eq!(
        get(resource(&t, &queue), "Type").as_str(),
        Some("AWS::SQS::Queue")
    );
    // Lambda sends to the destination with the function's role.
    let (role_id, role) = role_of(&t, EXPIRY);
    assert!(
        statements(role).iter().any(|s| allows(s)
            && strings(get(s, "Action")) == ["sqs:SendMessage"]
            && getatt_target(get(s, "Resource")) == Some((queue.clone(), "Arn".into()))),
        "{role_id} must allow sqs:SendMessage on {queue}, the destination"
    );
    let (alarm_id, alarm) = alarm_on(
        &t,
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        "QueueName",
        &queue,
    );
    fires_on_any(alarm_id, alarm);
}

#[test]
fn tracing_is_a_parameter_on_by_default_and_every_role_may_write_traces() {
    let t = template();
    let p = get(get(&t, "Parameters"), "Tracing");
    assert_eq!(get(p, "Default").as_str(), Some("Active"));
    for binary in [INGRESS, WORKER, EXPIRY] {
        let (id, f) = function(&t, binary);
        assert_eq!(
            ref_target(function_setting(&t, f, "Tracing")),
            Some("Tracing"),
            "{id}'s Tracing should be the Tracing parameter"
        );
        let (role_id, role) = role_of(&t, binary);
        for action in ["xray:PutTraceSegments", "xray:PutTelemetryRecords"] {
            assert!(
                statements(role)
                    .iter()
                    .any(|s| allows(s) && strings(get(s, "Action")).iter().any(|a| a == action)),
                "{role_id} must allow {action}: its own role gets no AWS managed policy"
            );
        }
    }
}

#[test]
fn api_access_logs_carry_the_request_id() {
    let t = template();
    let (api, r) = only_resource_of_type(&t, "AWS::Serverless::HttpApi");
    let settings = get(get(r, "Properties"), "AccessLogSettings");
    let (group, _) = getatt_target(get(settings, "DestinationArn"))
        .unwrap_or_else(|| panic!("{api} needs AccessLogSettings.DestinationArn"));
    let log_group = resource(&t, &group);
    assert_eq!(get(log_group, "Type").as_str(), Some("AWS::Logs::LogGroup"));
    assert_eq!(
        ref_target(get(get(log_group, "Properties"), "RetentionInDays")),
        Some("LogRetentionDays")
    );
    let format = string(get(settings, "Format"), "Format");
    let line: serde_json::Value = serde_json::from_str(format)
        .unwrap_or_else(|e| panic!("{api}'s access log format should be one JSON object: {e}"));
    assert_eq!(line["requestId"], "$context.requestId");
    assert_eq!(line["status"], "$context.status");
}

#[test]
fn the_workers_concurrency_is_capped_by_a_parameter() {
    let t = template();
    let (id, _) = function(&t, WORKER);
    let events = worker_sqs_events(&t);
    assert!(!events.is_empty(), "{id} should read its queues");
    for (name, sqs) in events {
        let cap = get(
            get(get(sqs, "Properties"), "ScalingConfig"),
            "MaximumConcurrency",
        );
        let parameter = ref_target(cap).unwrap_or_else(|| {
            panic!("{id}'s {name}: ScalingConfig.MaximumConcurrency should be a parameter")
        });
        let p = get(get(&t, "Parameters"), parameter);
        // Lambda's limits for an SQS event source: 2 to 1000.
        assert!(number(get(p, "MinValue"), "MinValue") >= 2);
        assert!(number(get(p, "MaxValue"), "MaxValue") <= 1000);
        let default = number(get(p, "Default"), "Default");
        assert!((2..=1000).contains(&default));
    }
}

#[test]
fn the_table_uses_the_aws_owned_key_unless_the_managed_key_is_chosen() {
    let t = template();
    let (table_id, table) = only_resource_of_type(&t, "AWS::DynamoDB::Table");
    let p = get(get(&t, "Parameters"), "TableEncryption");
    assert_eq!(get(p, "Default").as_str(), Some("AWS_OWNED_KEY"));
    let sse = get(get(table, "Properties"), "SSESpecification");
    assert_eq!(
        tag_name(sse).as_deref(),
        Some("If"),
        "{table_id}'s SSESpecification"
    );
    let parts = seq(sse, "the SSESpecification's !If");
    let condition = string(&parts[0], "the condition");
    let test = seq(get(get(&t, "Conditions"), condition), condition);
    assert_eq!(ref_target(&test[0]), Some("TableEncryption"));
    assert_eq!(untag(&test[1]).as_str(), Some("AWS_MANAGED_KEY"));
    assert_eq!(get(&parts[1], "SSEEnabled").as_bool(), Some(true));
    assert_eq!(get(&parts[1], "SSEType").as_str(), Some("KMS"));
    // No KMSMasterKeyId: the AWS managed key aws/dynamodb, not a customer key.
    assert!(get(&parts[1], "KMSMasterKeyId").is_null());
    // SSEEnabled false is DynamoDB's encryption with an AWS owned key.
    assert_eq!(get(&parts[2], "SSEEnabled").as_bool(), Some(false));
}

#[test]
fn the_log_level_is_lambdas_so_the_console_can_change_it() {
    let t = template();
    let logging = get(get(get(&t, "Globals"), "Function"), "LoggingConfig");
    assert_eq!(get(logging, "LogFormat").as_str(), Some("JSON"));
    assert_eq!(
        ref_target(get(logging, "ApplicationLogLevel")),
        Some("LogLevel")
    );
    for binary in [INGRESS, WORKER, EXPIRY] {
        let (id, f) = function(&t, binary);
        assert!(
            environment_variable(&t, f, "RUST_LOG").is_null(),
            "{id}: RUST_LOG would override the console's log level"
        );
    }
}

#[test]
fn every_function_writes_metrics_to_the_stacks_namespace() {
    let t = template();
    for binary in [INGRESS, WORKER, EXPIRY] {
        let (id, f) = function(&t, binary);
        let namespace = environment_variable(&t, f, opkit::metrics::NAMESPACE_VAR);
        assert_eq!(
            tag_name(namespace).as_deref(),
            Some("Sub"),
            "{id} should set {} to !Sub Opkit/${{AWS::StackName}}",
            opkit::metrics::NAMESPACE_VAR
        );
        assert!(string(namespace, "the namespace").contains("${AWS::StackName}"));
    }
}

/// A function's environment variable as Lambda will see it: its own, or `Globals`'
/// (SAM merges the two maps).
fn environment_variable<'a>(t: &'a Value, function: &'a Value, name: &str) -> &'a Value {
    let own = get(
        get(get(get(function, "Properties"), "Environment"), "Variables"),
        name,
    );
    if !own.is_null() {
        return own;
    }
    get(
        get(
            get(get(get(t, "Globals"), "Function"), "Environment"),
            "Variables",
        ),
        name,
    )
}
