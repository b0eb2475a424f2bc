//! Credentials: secrets of the stack, read at cold start; the envelope key; the queue's policy.

use crate::cfn::*;

// ------------------------------------------------------------------ credentials

/// The secret a function's `NAME_ARN` variable names: `!Ref Secret`, or
/// `!If [Condition, !Ref Secret, !Ref AWS::NoValue]` for an optional one.
fn referenced_secret(v: &Value) -> Option<String> {
    if let Some(target) = ref_target(v) {
        return Some(target.to_string());
    }
    let branches = if tag_name(v).as_deref() == Some("If") {
        untag(v)
    } else {
        get(v, "Fn::If")
    };
    match untag(branches) {
        Value::Sequence(parts) if parts.len() == 3 => {
            assert_eq!(
                ref_target(&parts[2]),
                Some("AWS::NoValue"),
                "an optional secret's ARN must be !If [Condition, !Ref Secret, !Ref AWS::NoValue]"
            );
            ref_target(&parts[1]).map(str::to_string)
        }
        _ => None,
    }
}

/// Each function's credential settings, mapped to the secret that holds each.
fn credentials_of(t: &Value, binary: &str) -> Vec<(String, String)> {
    let (id, f) = function(t, binary);
    let vars = get(function_setting(t, f, "Environment"), "Variables");
    let mut found = Vec::new();
    for name in CREDENTIALS {
        let arn = get(vars, &format!("{name}_ARN"));
        if arn.is_null() {
            continue;
        }
        let secret = referenced_secret(arn).unwrap_or_else(|| {
            panic!("{id}'s {name}_ARN must be !Ref to a secret of this stack, found {arn:?}")
        });
        assert_eq!(
            get(resource(t, &secret), "Type").as_str(),
            Some("AWS::SecretsManager::Secret"),
            "{id}'s {name}_ARN names {secret}, which must be an AWS::SecretsManager::Secret"
        );
        found.push((name.to_string(), secret));
    }
    found
}

#[test]
fn no_parameter_carries_a_credential() {
    let t = template();
    for (name, p) in mapping(get(&t, "Parameters"), "Parameters") {
        let name = name.as_str().unwrap_or_default();
        // A NoEcho parameter is a credential typed at deploy time: it ends up in the
        // function's environment, readable with lambda:GetFunctionConfiguration.
        assert!(
            get(p, "NoEcho").is_null(),
            "parameter {name} is NoEcho: credentials belong in the stack's secrets, not parameters"
        );
    }
}

#[test]
fn no_function_holds_a_credential_only_the_arn_of_its_secret() {
    let t = template();
    for (id, r) in resources(&t) {
        let id = id.as_str().unwrap_or_default();
        if get(r, "Type").as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let vars = get(function_setting(&t, r, "Environment"), "Variables");
        for name in CREDENTIALS {
            assert!(
                get(vars, name).is_null(),
                "{id} sets {name} in its environment: name its secret with {name}_ARN instead"
            );
        }
        // A dynamic reference is resolved by CloudFormation into the configuration.
        let text = serde_norway::to_string(vars).unwrap();
        assert!(
            !text.contains("{{resolve:"),
            "{id}'s environment resolves a dynamic reference: the value would sit in its \
             configuration. {text}"
        );
    }
    let names = |binary| -> Vec<String> {
        credentials_of(&t, binary)
            .into_iter()
            .map(|(name, _)| name)
            .collect()
    };
    assert_eq!(
        names(INGRESS),
        ["SLACK_SIGNING_SECRET", "OPKIT_ENVELOPE_KEY"]
    );
    assert_eq!(
        names(WORKER),
        ["SLACK_BOT_TOKEN", "OPKIT_ENVELOPE_KEY", "OPKIT_WEATHER_KEY"]
    );
    assert_eq!(names(EXPIRY), ["SLACK_BOT_TOKEN", "OPKIT_ENVELOPE_KEY"]);
}

#[test]
fn each_role_reads_exactly_the_secrets_its_function_names() {
    let t = template();
    for binary in [INGRESS, WORKER, EXPIRY] {
        let (role_id, role) = role_of(&t, binary);
        let mut named: Vec<String> = credentials_of(&t, binary)
            .into_iter()
            .map(|(_, secret)| secret)
            .collect();
        named.sort();
        let mut readable = Vec::new();
        for statement in statements(role) {
            let actions = strings(get(statement, "Action"));
            if !actions
                .iter()
                .any(|a| a.to_ascii_lowercase().starts_with("secretsmanager:") || a == "*")
            {
                continue;
            }
            assert!(
                allows(statement),
                "{role_id}: only Allow statements for secrets"
            );
            assert_eq!(
                actions,
                ["secretsmanager:GetSecretValue"],
                "{role_id} may only read secrets (GetSecretValue)"
            );
            // Declarative commands' secrets: exactly the operator's list, the
            // CommandSecretArns parameter, on the worker alone.
            if statement.get("Sid").and_then(Value::as_str) == Some("ReadCommandSecrets") {
                assert_eq!(
                    binary, WORKER,
                    "{role_id}: only the worker reads command secrets"
                );
                let resource = format!("{:?}", get(statement, "Resource"));
                assert!(
                    resource.contains("CommandSecretArns") && !resource.contains('*'),
                    "{role_id}: command secrets are exactly CommandSecretArns, found {resource}"
                );
                continue;
            }
            for r in seq_or_one(get(statement, "Resource")) {
                let secret = referenced_secret(r).unwrap_or_else(|| {
                    panic!("{role_id} must name each secret by !Ref (its ARN), found {r:?}")
                });
                readable.push(secret);
            }
        }
        readable.sort();
        assert_eq!(
            readable, named,
            "{role_id} ({binary}) must read exactly the secrets its function names"
        );
    }
}

/// A value that is one item or a list of them, as a list.
fn seq_or_one(v: &Value) -> Vec<&Value> {
    match untag(v) {
        Value::Sequence(items) => items.iter().collect(),
        _ => vec![v],
    }
}

#[test]
fn every_secret_is_generated_never_written_in_the_template() {
    let t = template();
    let mut count = 0;
    for (id, r) in resources(&t) {
        if get(r, "Type").as_str() != Some("AWS::SecretsManager::Secret") {
            continue;
        }
        count += 1;
        let props = get(r, "Properties");
        let generated = get(props, "GenerateSecretString");
        assert!(
            get(props, "SecretString").is_null() && !generated.is_null(),
            "{id:?} must be generated (GenerateSecretString), never written in the template"
        );
        assert!(
            get(generated, "SecretStringTemplate").is_null(),
            "{id:?}'s value must be the setting itself, not JSON"
        );
        assert!(
            number(get(generated, "PasswordLength"), "PasswordLength") >= 32,
            "{id:?}'s placeholder must be long enough that nobody can guess it (a placeholder \
             signing secret must verify no forged request)"
        );
    }
    assert!(
        count >= 3,
        "the signing secret, the bot token and the envelope key"
    );
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

// ------------------------------------------------------------------ the envelope key and the queue's policy

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
            "OPKIT_ENVELOPE_KEY_ARN",
        );
        if value.is_null() {
            continue;
        }
        let secret = referenced_secret(value)
            .unwrap_or_else(|| panic!("{id}'s OPKIT_ENVELOPE_KEY_ARN must be !Ref to a secret"));
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
