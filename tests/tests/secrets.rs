//! Credentials read from AWS Secrets Manager at cold start, on the emulator: what the
//! three Lambdas do with `SLACK_SIGNING_SECRET_ARN`, `SLACK_BOT_TOKEN_ARN`,
//! `OPKIT_ENVELOPE_KEY_ARN` and `OPKIT_WEATHER_KEY_ARN` (template.yaml), through the
//! real SDK client. Every [`Stack`] is built this way too.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_secretsmanager::primitives::Blob;
use opkit::config::{Config, ConfigError, SECRET_SETTINGS};
use opkit::secret::secrets_manager::resolve;
use opkit_tests::aws::{sdk_config, unique_name};
use opkit_tests::serverless::{ENVELOPE_KEY, SECRET, Stack, create_secret};
use opkit_tests::slack_request::TEAM_ID;
use opkit_tests::slash_command_body;

fn lookup(vars: Vec<(&str, String)>) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = vars.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    move |k: &str| map.get(k).cloned()
}

async fn client() -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::new(&sdk_config().await)
}

#[tokio::test]
async fn a_deployed_stack_verifies_signs_and_posts_with_credentials_from_secrets_manager() {
    // GIVEN a stack whose signing secret, bot token and envelope key are secrets
    let stack = Stack::start().await;
    // THEN the configuration holds their values…
    assert!(stack.config.require_signing_secret().is_ok());
    assert!(stack.config.require_bot_token().is_ok());
    // …and a signed slash command is verified, sealed, opened and answered with them.
    let body = slash_command_body("U1", "whoami", &stack.slack.response_url("who"));
    let (status, ack) = stack
        .ingress(stack.signed_event("/slack/commands", &body))
        .await;
    assert_eq!(status, 200, "{ack}");
    let messages = stack.drain().await;
    assert_eq!(messages.len(), 1);
    let response = stack.work(&messages).await;
    assert!(response.batch_item_failures.is_empty());
    let posts = stack.slack.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(posts[0].path, "/response/who");
}

#[tokio::test]
async fn each_reference_is_read_once_and_the_values_registered() {
    let client = client().await;
    let signing = create_secret(&client, "SLACK_SIGNING_SECRET", SECRET).await;
    let key = create_secret(&client, "OPKIT_ENVELOPE_KEY", ENVELOPE_KEY).await;
    // GIVEN the ingress's environment as the template writes it
    let env = lookup(vec![
        ("SLACK_SIGNING_SECRET_ARN", signing.clone()),
        ("OPKIT_ENVELOPE_KEY_ARN", key),
        ("OPKIT_TEAM_IDS", TEAM_ID.to_string()),
    ]);
    // WHEN it is resolved at cold start
    let resolved = resolve(&client, env, &SECRET_SETTINGS).await.unwrap();
    // THEN the values are settings like any other, and never reach a log line
    assert_eq!(
        resolved.resolved_names(),
        ["OPKIT_ENVELOPE_KEY", "SLACK_SIGNING_SECRET"]
    );
    let config = Config::from_lookup(|k| resolved.get(k)).unwrap();
    assert!(config.require_envelope_key().is_ok());
    assert_eq!(opkit::secret::redact(&format!("k={ENVELOPE_KEY}")), "k=***");
    // A rotated value reaches new execution environments, not this one: the values
    // were read once.
    client
        .put_secret_value()
        .secret_id(&signing)
        .secret_string("rotated-signing-secret-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(
        resolved.get("SLACK_SIGNING_SECRET").as_deref(),
        Some(SECRET)
    );
    let fresh = resolve(
        &client,
        lookup(vec![("SLACK_SIGNING_SECRET_ARN", signing)]),
        &SECRET_SETTINGS,
    )
    .await
    .unwrap();
    assert_eq!(
        fresh.get("SLACK_SIGNING_SECRET").as_deref(),
        Some("rotated-signing-secret-0123456789")
    );
}

#[tokio::test]
async fn an_unreadable_secret_stops_start_up_with_one_line_naming_its_variable() {
    let client = client().await;
    // A secret that does not exist.
    let missing = format!(
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:{}",
        unique_name("gone")
    );
    let err = resolve(
        &client,
        lookup(vec![("SLACK_BOT_TOKEN_ARN", missing.clone())]),
        &SECRET_SETTINGS,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            ConfigError::Secret {
                name: "SLACK_BOT_TOKEN",
                ..
            }
        ),
        "{err:?}"
    );
    let line = err.to_string();
    assert!(
        line.starts_with(&format!(
            "SLACK_BOT_TOKEN_ARN: cannot read the secret {missing}: "
        )),
        "{line}"
    );
    assert!(!line.contains('\n'), "{line}");
    // A binary secret cannot hold a setting.
    let binary = client
        .create_secret()
        .name(unique_name("binary"))
        .secret_binary(Blob::new(b"\x00\x01".to_vec()))
        .send()
        .await
        .unwrap()
        .arn
        .unwrap();
    let err = resolve(
        &client,
        lookup(vec![("OPKIT_ENVELOPE_KEY_ARN", binary)]),
        &SECRET_SETTINGS,
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string()
            .ends_with("it has no SecretString (a binary secret cannot hold a setting)"),
        "{err}"
    );
    // A value and a reference together: refused before any call.
    let err = resolve(
        &client,
        lookup(vec![
            ("SLACK_BOT_TOKEN_ARN", missing),
            ("SLACK_BOT_TOKEN", "xoxb-1".into()),
        ]),
        &SECRET_SETTINGS,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            ConfigError::Invalid {
                name: "SLACK_BOT_TOKEN",
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn without_references_nothing_is_called() {
    // GIVEN a client that points nowhere (a closed loopback port)
    let sdk = opkit_tests::aws::sdk_config_at("http://127.0.0.1:9", None).await;
    let client = aws_sdk_secretsmanager::Client::new(&sdk);
    // WHEN settings hold their values directly (local use)
    let resolved = resolve(
        &client,
        lookup(vec![("SLACK_BOT_TOKEN", "xoxb-local".into())]),
        &SECRET_SETTINGS,
    )
    .await
    .unwrap();
    // THEN they are read as they are, with no call made
    assert!(resolved.resolved_names().is_empty());
    assert_eq!(
        resolved.get("SLACK_BOT_TOKEN").as_deref(),
        Some("xoxb-local")
    );
}
