//! Declarative commands on the deployed path: pushed to the table on the
//! emulator's DynamoDB, run by the worker handler through ingress → SQS →
//! worker, calling a fake service on loopback with a token read from the
//! emulator's Secrets Manager, and a newer version picked up within a minute of
//! the stack's manual clock. The `lambda` action goes to [`FakeLambda`] (moto's
//! Lambda `Invoke` needs docker, which is not here): the real aws-sdk-lambda
//! client, pointed at a fake of the `Invoke` operation, not Lambda itself.
//! Run through `bash infra/test.sh`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use opkit::declare::Services;
use opkit::declare::lambda::SdkLambda;
use opkit::declare::stored::{self, REFRESH, SecretsManagerSecrets, StoredCommands};
use opkit::ids::UserId;
use opkit_tests::aws::{sdk_config, sdk_config_at};
use opkit_tests::serverless::{ADMIN, Stack, create_secret};
use opkit_tests::{FakeLambda, FakeService};

const WAIT: Duration = Duration::from_secs(10);
const TOKEN: &str = "deploys-token-from-secrets-manager";

const V1: &str = r#"
[[command]]
name = "deploys status"
usage = "<service>"
describe = "Which version of a service is deployed"
access = [["ops"], ["admin"]]

[command.http]
method = "GET"
url = "{{ env.DEPLOYS_URL }}/services/{{ service }}/version"
headers = { Authorization = "Bearer {{ secret.DEPLOYS_TOKEN }}" }
reply = "*{{ service }}* runs `{{ json.version }}`, deployed {{ json.deployed_at }}"

[[command]]
name = "runbook restart"
usage = "<service>"
[command.lambda]
function = "{{ env.RUNBOOK_FUNCTION }}"
payload = { action = "restart", service = "{{ service }}" }
reply = "{{ json.function }} restarted {{ json.echo.service }}"

[[command]]
name = "runbook broken"
[command.lambda]
function = "broken"
"#;

/// Runs a slash command through ingress, SQS and the worker; the reply.
async fn run(stack: &Stack, user: &str, text: &str, reply_to: &str) -> String {
    let message = stack.queue_command(user, text, reply_to).await;
    let before = stack.slack.count();
    assert!(stack.work(&[message]).await.batch_item_failures.is_empty());
    let posted = stack.slack.wait_for(before + 1, WAIT).await;
    posted[before].json()["text"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn pushed_commands_run_through_the_worker_and_a_new_version_within_a_minute() {
    // GIVEN a deploys service, a fake Lambda, the token in Secrets Manager
    let service = FakeService::start().await;
    let lambda = FakeLambda::start().await;
    let sdk = sdk_config().await;
    let secrets = aws_sdk_secretsmanager::Client::new(&sdk);
    let arn = create_secret(&secrets, "DEPLOYS_TOKEN", TOKEN).await;
    let env: HashMap<String, String> = [
        ("DEPLOYS_URL", service.base.as_str()),
        ("DEPLOYS_TOKEN_ARN", arn.as_str()),
        (
            "RUNBOOK_FUNCTION",
            "arn:aws:lambda:us-east-1:123456789012:function:restart",
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let lambda_sdk = sdk_config_at(&lambda.endpoint, None).await;
    // the worker's environment has none of them: they are pushed with the file;
    // a value of its own for the secret is not "both set": the pushed one is used
    let source = StoredCommands::new(
        |_: &str| None,
        Arc::new(SecretsManagerSecrets {
            client: secrets,
            lookup: |name: &str| (name == "DEPLOYS_TOKEN").then(|| "a-local-value".to_string()),
        }),
        Services {
            http: opkit::declare::DeclaredHttp::new(),
            lambda: Some(Arc::new(SdkLambda::new(&lambda_sdk))),
        },
    );
    // AND a worker whose bot asks the table for them, as the worker Lambda's does
    let stack = Stack::builder()
        .bot(move |b| b.commands_source(Arc::new(source), REFRESH))
        .start()
        .await;
    let admin = UserId::parse(ADMIN).unwrap();
    // the bot's own commands (before it loads a version), which push checks against
    let built = stack.bot.registry().commands().to_vec();
    let version = stored::push(
        stack.store.as_ref(),
        &built,
        "commands.toml",
        V1,
        |n| env.get(n).cloned(),
        &admin,
        stack.now(),
    )
    .await
    .unwrap();
    assert_eq!(version, 1);

    // WHEN an admin runs the HTTP command
    let reply = run(&stack, ADMIN, "deploys status web", "one").await;
    // THEN the service was called with the secret, and answered in Slack
    assert_eq!(reply, "*web* runs `1.4.2`, deployed 2026-11-29");
    let seen = service.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].uri, "/services/web/version");
    assert_eq!(
        seen[0].headers["authorization"],
        format!("Bearer {TOKEN}").as_str()
    );
    // AND an argument cannot leave its path segment
    run(&stack, ADMIN, "deploys status \"../admin?x=1&y\"", "two").await;
    assert_eq!(
        service.seen()[1].uri,
        "/services/..%2Fadmin%3Fx%3D1%26y/version"
    );
    // AND someone without the role is refused
    assert_eq!(
        run(&stack, "UBOB", "deploys status web", "three").await,
        "Sorry, you need ops, or admin to run `deploys status`."
    );

    // WHEN the Lambda command runs
    let reply = run(&stack, ADMIN, "runbook restart web", "four").await;
    // THEN the SDK invoked the function by its ARN with the payload built as JSON
    assert_eq!(
        reply,
        "arn:aws:lambda:us-east-1:123456789012:function:restart restarted web"
    );
    let invoked = lambda.seen();
    assert_eq!(invoked.len(), 1);
    assert_eq!(
        invoked[0].uri,
        "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Arestart/invocations"
    );
    let payload: serde_json::Value = serde_json::from_slice(&invoked[0].body).unwrap();
    assert_eq!(
        payload,
        serde_json::json!({"action": "restart", "service": "web"})
    );
    // AND a function that fails is reported as such
    assert_eq!(
        run(&stack, ADMIN, "runbook broken", "five").await,
        "`runbook broken` failed: the function failed (Unhandled): boom"
    );

    // WHEN version 2 is pushed
    let v2 = V1.replace("runs `{{ json.version }}`", "is at `{{ json.version }}`");
    stored::push(
        stack.store.as_ref(),
        &built,
        "commands.toml",
        &v2,
        |n| env.get(n).cloned(),
        &admin,
        stack.now(),
    )
    .await
    .unwrap();
    // THEN the worker keeps version 1 until a minute has passed since its last look
    stack.clock.advance(chrono::Duration::seconds(30));
    assert!(
        run(&stack, ADMIN, "deploys status web", "six")
            .await
            .contains(" runs ")
    );
    stack.clock.advance(chrono::Duration::seconds(31));
    assert_eq!(
        run(&stack, ADMIN, "deploys status web", "seven").await,
        "*web* is at `1.4.2`, deployed 2026-11-29"
    );
}
