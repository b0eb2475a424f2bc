//! Alarm and instance notifications: two EventBridge rules, their own queue (with a
//! dead-letter queue and an alarm on it) that only those rules may send to, read by the
//! worker through a second event source mapping that it tells apart by ARN.

use crate::cfn::*;

/// The EventBridge rules targeting `queue`, with their patterns' source and detail-type.
fn rules_targeting(t: &Value, queue: &str) -> Vec<(String, Vec<String>, Vec<String>)> {
    resources(t)
        .iter()
        .filter(|(_, r)| get(r, "Type").as_str() == Some("AWS::Events::Rule"))
        .filter(|(_, r)| {
            seq(get(get(r, "Properties"), "Targets"), "a rule's Targets")
                .iter()
                .any(|target| {
                    getatt_target(get(target, "Arn")) == Some((queue.to_string(), "Arn".into()))
                })
        })
        .map(|(id, r)| {
            let pattern = get(get(r, "Properties"), "EventPattern");
            (
                id.as_str().unwrap_or_default().to_string(),
                strings(get(pattern, "source")),
                strings(get(pattern, "detail-type")),
            )
        })
        .collect()
}

#[test]
fn alarm_and_instance_state_changes_go_to_the_notifications_queue() {
    let t = template();
    let (queue, _) = notifications_queue(&t);
    let mut rules = rules_targeting(&t, &queue);
    rules.sort();
    let kinds: Vec<(Vec<String>, Vec<String>)> = rules
        .iter()
        .map(|(_, s, d)| (s.clone(), d.clone()))
        .collect();
    assert_eq!(
        kinds,
        [
            (
                vec!["aws.cloudwatch".to_string()],
                vec!["CloudWatch Alarm State Change".to_string()]
            ),
            (
                vec!["aws.ec2".to_string()],
                vec!["EC2 Instance State-change Notification".to_string()]
            ),
        ],
        "{rules:?}"
    );
    let (jobs, _) = jobs_queue(&t);
    assert_ne!(jobs, queue, "events never go to the jobs queue");
    assert!(
        rules_targeting(&t, &jobs).is_empty(),
        "no rule may target the jobs queue"
    );
}

#[test]
fn only_the_two_rules_may_send_to_the_notifications_queue() {
    let t = template();
    let (queue, _) = notifications_queue(&t);
    let policies: Vec<&Value> = resources(&t)
        .values()
        .filter(|r| get(r, "Type").as_str() == Some("AWS::SQS::QueuePolicy"))
        .filter(|r| {
            seq(get(get(r, "Properties"), "Queues"), "Queues")
                .iter()
                .any(|q| ref_target(q) == Some(queue.as_str()))
        })
        .collect();
    assert_eq!(
        policies.len(),
        1,
        "{queue} should have exactly one queue policy"
    );
    let document = get(get(policies[0], "Properties"), "PolicyDocument");
    let statements = seq(get(document, "Statement"), "Statement");
    assert_eq!(statements.len(), 1);
    let s = &statements[0];
    assert!(allows(s));
    assert_eq!(strings(get(s, "Action")), ["sqs:SendMessage"]);
    assert_eq!(
        get(get(s, "Principal"), "Service").as_str(),
        Some("events.amazonaws.com"),
        "only EventBridge's service principal"
    );
    assert_eq!(
        getatt_target(get(s, "Resource")),
        Some((queue.clone(), "Arn".into()))
    );
    let sources: Vec<String> = seq(
        get(get(get(s, "Condition"), "ArnEquals"), "aws:SourceArn"),
        "aws:SourceArn",
    )
    .iter()
    .map(|arn| getatt_target(arn).expect("a rule's !GetAtt Arn").0)
    .collect();
    let mut rules: Vec<String> = rules_targeting(&t, &queue)
        .into_iter()
        .map(|r| r.0)
        .collect();
    let mut sources_sorted = sources.clone();
    sources_sorted.sort();
    rules.sort();
    assert_eq!(
        sources_sorted, rules,
        "the condition names exactly the rules that target it"
    );
}

#[test]
fn the_notifications_queue_has_a_dead_letter_queue_with_an_alarm() {
    let t = template();
    let (queue, q) = notifications_queue(&t);
    let redrive = get(get(q, "Properties"), "RedrivePolicy");
    let (dlq, _) = getatt_target(get(redrive, "deadLetterTargetArn"))
        .unwrap_or_else(|| panic!("{queue} needs a RedrivePolicy"));
    let (jobs_dlq, _) = getatt_target(get(
        get(get(jobs_queue(&t).1, "Properties"), "RedrivePolicy"),
        "deadLetterTargetArn",
    ))
    .expect("the jobs queue's DLQ");
    assert_ne!(dlq, jobs_dlq, "events and jobs keep separate dead letters");
    assert!(number(get(redrive, "maxReceiveCount"), "maxReceiveCount") >= 2);
    let alarmed = resources(&t).values().any(|r| {
        get(r, "Type").as_str() == Some("AWS::CloudWatch::Alarm")
            && seq(get(get(r, "Properties"), "Dimensions"), "Dimensions")
                .iter()
                .any(|d| getatt_target(get(d, "Value")) == Some((dlq.clone(), "QueueName".into())))
    });
    assert!(alarmed, "{dlq} needs an alarm");
}

#[test]
fn the_worker_is_told_which_queue_carries_events() {
    let t = template();
    let (queue, _) = notifications_queue(&t);
    let (_, worker) = function(&t, WORKER);
    let variables = get(get(get(worker, "Properties"), "Environment"), "Variables");
    let arn = get(variables, "OPKIT_NOTIFY_QUEUE_ARN");
    assert_eq!(getatt_target(arn), Some((queue.clone(), "Arn".into())));
    // and may consume it
    let (role, r) = role_of(&t, WORKER);
    let consumes = statements(r).iter().any(|s| {
        allows(s)
            && strings(get(s, "Action"))
                .iter()
                .any(|a| a == "sqs:DeleteMessage")
            && match untag(get(s, "Resource")) {
                Value::Sequence(items) => items
                    .iter()
                    .any(|i| getatt_target(i) == Some((queue.clone(), "Arn".into()))),
                one => getatt_target(one) == Some((queue.clone(), "Arn".into())),
            }
    });
    assert!(consumes, "{role} must consume {queue}");
}

#[test]
fn the_worker_reads_the_tags_of_this_accounts_alarms_and_of_nothing_else() {
    // A notification's runbook link comes from its alarm's `runbook` tag.
    let t = template();
    let (role, r) = role_of(&t, WORKER);
    let reads_tags = |s: &&Value| {
        strings(get(s, "Action"))
            .iter()
            .any(|a| action_matches(a, "cloudwatch:ListTagsForResource"))
    };
    let tagging: Vec<&Value> = statements(r)
        .into_iter()
        .filter(|s| allows(s))
        .filter(reads_tags)
        .collect();
    assert_eq!(
        tagging.len(),
        1,
        "{role}: one statement allows ListTagsForResource"
    );
    let resource = get(tagging[0], "Resource");
    assert_eq!(tag_name(resource).as_deref(), Some("Sub"), "{resource:?}");
    assert_eq!(
        untag(resource).as_str(),
        Some("arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:*"),
        "{role} may read the tags of alarms only"
    );
    assert_eq!(
        strings(get(tagging[0], "Action")),
        ["cloudwatch:ListTagsForResource"],
        "nothing else on those alarms"
    );
}
