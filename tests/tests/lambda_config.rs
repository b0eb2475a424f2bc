//! The Lambda functions' SDK configuration from the environment alone
//! (`opkit::aws::lambda_config_from`: region, credentials and endpoints as Lambda's
//! variables give them, none of the SDK's credential chain), through the real SDK
//! clients the ingress uses, on the emulator, with each HTTPS client a function may
//! be built with.

use opkit::aws::{Roots, TlsProvider, https_client, lambda_config_from};
use opkit::secret::secrets_manager::secret_string;
use opkit_tests::aws::{emulator_endpoint, sdk_config, unique_name};
use opkit_tests::serverless::create_secret;

/// A lookup over `vars`, as the process's environment would answer.
fn env(vars: Vec<(&'static str, String)>) -> impl Fn(&str) -> Option<String> + Send + Sync {
    move |name: &str| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
    }
}

#[tokio::test]
async fn a_lambda_config_reaches_sqs_and_secrets_manager_by_the_endpoint_variables() {
    let emulator = emulator_endpoint();
    // GIVEN a queue and a secret on the emulator
    let admin = sdk_config().await;
    let admin_sqs = aws_sdk_sqs::Client::new(&admin);
    let queue_url = admin_sqs
        .create_queue()
        .queue_name(unique_name("lambda-config"))
        .send()
        .await
        .expect("create a queue")
        .queue_url
        .expect("a queue URL");
    let admin_secrets = aws_sdk_secretsmanager::Client::new(&admin);
    let secret = create_secret(&admin_secrets, "SLACK_SIGNING_SECRET", "from-the-emulator").await;
    // The emulator named once for all clients, or per service while the global
    // variable names a port nobody listens on: the service's own wins.
    let closed = "http://127.0.0.1:9".to_string();
    let endpoints = [
        vec![("AWS_ENDPOINT_URL", emulator.clone())],
        vec![
            ("AWS_ENDPOINT_URL", closed),
            ("AWS_ENDPOINT_URL_SQS", emulator.clone()),
            ("AWS_ENDPOINT_URL_SECRETS_MANAGER", emulator.clone()),
        ],
    ];
    // Each HTTPS client a function may be built with: Opkit's HTTP/1.1 client on ring
    // (the ingress's) and the SDK's on aws-lc (the worker's and the expiry's).
    let rounds = endpoints.into_iter().flat_map(|vars| {
        [
            (TlsProvider::Ring, vars.clone()),
            (TlsProvider::AwsLc, vars),
        ]
    });
    for (round, (provider, endpoint_vars)) in rounds.enumerate() {
        let round = format!("{round} ({provider:?})");
        // WHEN a function's configuration is built from Lambda's variables alone
        let mut vars = vec![
            ("AWS_REGION", "us-east-1".to_string()),
            ("AWS_ACCESS_KEY_ID", "test".to_string()),
            ("AWS_SECRET_ACCESS_KEY", "test".to_string()),
            ("AWS_SESSION_TOKEN", "test".to_string()),
        ];
        vars.extend(endpoint_vars);
        let http = https_client(Roots::AmazonTrustServices, provider);
        let sdk = lambda_config_from(env(vars), http).expect("a configuration");
        // THEN the ingress's two calls reach the emulator: GetSecretValue at cold start…
        let value = secret_string(&aws_sdk_secretsmanager::Client::new(&sdk), &secret).await;
        assert_eq!(value.as_deref(), Ok("from-the-emulator"), "round {round}");
        // …and SendMessage
        let body = format!("job {round}");
        aws_sdk_sqs::Client::new(&sdk)
            .send_message()
            .queue_url(&queue_url)
            .message_body(&body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("round {round}: {e:?}"));
        let received = admin_sqs
            .receive_message()
            .queue_url(&queue_url)
            .wait_time_seconds(5)
            .send()
            .await
            .expect("receive");
        let messages = received.messages();
        assert_eq!(messages.len(), 1, "round {round}");
        assert_eq!(messages[0].body(), Some(body.as_str()));
        admin_sqs
            .delete_message()
            .queue_url(&queue_url)
            .receipt_handle(messages[0].receipt_handle().expect("a receipt handle"))
            .send()
            .await
            .expect("delete");
    }
}

#[tokio::test]
async fn a_secret_is_read_in_the_region_its_arn_names() {
    // GIVEN a secret created in a region other than the reader's
    let reader = sdk_config().await;
    let home = reader.region().expect("a region").to_string();
    let elsewhere = if home == "eu-west-1" {
        "us-west-2"
    } else {
        "eu-west-1"
    };
    let there = reader
        .to_builder()
        .region(aws_config::Region::new(elsewhere))
        .build();
    let arn = create_secret(
        &aws_sdk_secretsmanager::Client::new(&there),
        "DEPLOYS_TOKEN",
        "from-elsewhere",
    )
    .await;
    assert!(arn.contains(&format!(":{elsewhere}:")), "{arn}");
    let client = aws_sdk_secretsmanager::Client::new(&reader);
    // the defect: looked up in the reader's region, where there is no such secret
    let missing = client.get_secret_value().secret_id(&arn).send().await;
    assert!(missing.is_err(), "the emulator keeps regions apart");
    // WHEN it is read by its ARN with the reader's client
    let value = secret_string(&client, &arn).await;
    // THEN it is found there
    assert_eq!(value.as_deref(), Ok("from-elsewhere"));
}
