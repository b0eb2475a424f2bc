//! Least privilege: what each role may do, on which resource; routes and builds.

use crate::cfn::*;
use crate::table::{key_schema, table};

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
                    LOG_ACTIONS.contains(&action.as_str())
                        || XRAY_ACTIONS.contains(&action.as_str())
                        || action == READ_SECRET,
                    "{role} (ingress) may only sqs:SendMessage (and write its logs and \
                     traces, and read its secrets), but it allows {action}"
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
                    // The jobs queue (scheduled commands) and its own OnFailure destination.
                    let destination = get(
                        get(
                            get(
                                get(
                                    get(function(&t, EXPIRY).1, "Properties"),
                                    "EventInvokeConfig",
                                ),
                                "DestinationConfig",
                            ),
                            "OnFailure",
                        ),
                        "Destination",
                    );
                    let sends_where_it_should = action == "sqs:SendMessage"
                        && ref_target(get(s, "Resource")).is_none()
                        && getatt_target(get(s, "Resource")).is_some_and(|(r, _)| {
                            r == jobs_queue(&t).0
                                || getatt_target(destination).is_some_and(|(d, _)| d == r)
                        });
                    assert!(
                        service == "dynamodb"
                            || LOG_ACTIONS.contains(&action.as_str())
                            || XRAY_ACTIONS.contains(&action.as_str())
                            || action == READ_SECRET
                            || sends_where_it_should,
                        "{role} (expiry) may only use the table, send to the jobs queue \
                         (scheduled commands) and its failure destination, write its logs \
                         and traces and read its secrets, but it allows {action}"
                    );
                }
            }
        }
    }
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
        ("OPKIT_TIME_ZONE", "TimeZone"),
        ("OPKIT_BOT_NAME", "BotName"),
        ("SLACK_API_URL", "SlackApiUrl"),
        ("OPKIT_WEATHER_URL", "WeatherApiUrl"),
        ("OPKIT_ACCOUNTS", "Accounts"),
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

/// `in <account>`: the worker may assume the roles the deployment lists
/// (`AccountRoleArns`) and no other; no other function may assume any.
#[test]
fn only_the_worker_assumes_roles_and_only_the_listed_ones() {
    let t = template();
    for binary in [INGRESS, WORKER, EXPIRY] {
        let (role, r) = role_of(&t, binary);
        for s in statements(r).into_iter().filter(|s| allows(s)) {
            if !strings(get(s, "Action"))
                .iter()
                .any(|a| action_matches(a, "sts:AssumeRole"))
            {
                continue;
            }
            assert_eq!(binary, WORKER, "{role} ({binary}) must not assume roles");
            assert_eq!(
                ref_target(get(s, "Resource")),
                Some("AccountRoleArns"),
                "{role} may assume exactly the roles of the AccountRoleArns parameter"
            );
        }
    }
    let (_, worker) = role_of(&t, WORKER);
    let statement = statements(worker)
        .into_iter()
        .find(|s| get(s, "Sid").as_str() == Some("AssumeAccountRoles"))
        .expect("the worker's AssumeAccountRoles statement");
    assert_eq!(get(statement, "Action").as_str(), Some("sts:AssumeRole"));
    let params = get(&t, "Parameters");
    assert_eq!(
        get(get(params, "AccountRoleArns"), "Type").as_str(),
        Some("CommaDelimitedList")
    );
    assert_eq!(
        get(get(params, "AccountRoleArns"), "Default").as_str(),
        Some(""),
        "no role unless the deployment lists one"
    );
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
        ref_target(get(vars, "OPKIT_ALLOW_EXTERNAL_USERS")),
        Some("AllowExternalUsers"),
        "{id} should take OPKIT_ALLOW_EXTERNAL_USERS from AllowExternalUsers"
    );
    assert_eq!(
        get(get(get(&t, "Parameters"), "AllowExternalUsers"), "Default").as_str(),
        Some("false"),
        "members of other organisations are refused unless the deployer says otherwise"
    );
}

// ------------------------------------------------------------------ builds

/// Each function is built from its own crate (`CodeUri` = the directory whose
/// Cargo.toml defines its binary), never from the workspace root: `sam build`
/// runs `cargo lambda build --bin <binary>` in `CodeUri`, and from the root cargo
/// would unify every member's features (the ingress would link the worker's
/// aws-lc beside its own ring, and lose the size it was built for).
#[test]
fn each_function_is_built_from_its_own_crate() {
    let t = template();
    assert_eq!(
        get(get(get(&t, "Globals"), "Function"), "CodeUri"),
        &Value::Null,
        "Globals.Function must not set a CodeUri: each function names its own crate"
    );
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for binary in [INGRESS, WORKER, EXPIRY] {
        let (id, f) = function(&t, binary);
        let uri = string(get(get(f, "Properties"), "CodeUri"), "CodeUri");
        assert_ne!(
            uri.trim_end_matches('/'),
            ".",
            "{id} is built from the workspace root"
        );
        let manifest = std::fs::read_to_string(root.join(uri).join("Cargo.toml"))
            .unwrap_or_else(|e| panic!("{id}: CodeUri {uri} has no Cargo.toml: {e}"));
        let defines = manifest.split("[[bin]]").skip(1).any(|section| {
            section
                .lines()
                .take_while(|l| !l.trim_start().starts_with('['))
                .any(|l| l.replace(' ', "") == format!("name=\"{binary}\""))
        });
        assert!(
            defines,
            "{id}: {uri}/Cargo.toml does not define the binary `{binary}`"
        );
    }
}
