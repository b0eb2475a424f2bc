//! Tests of the AWS configuration: the bundled roots, the TLS providers, and the
//! environment-only configuration of the Lambda functions.

use super::*;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use sha2::{Digest, Sha256};

/// SHA-256 of each root's SubjectPublicKeyInfo, as Amazon Trust Services
/// publishes them (<https://www.amazontrust.com/repository/>).
const PUBLISHED_SPKI_SHA256: [&str; 5] = [
    "fbe3018031f9586bcbf41727e417b7d1c45c2f47f93be372a17b96b50757d5a2",
    "7f4296fc5b6a4e3b35d3c369623e364ab1af381d8fa7121533c9d6c633ea2461",
    "36abc32656acfc645c61b71613c4bf21c787f5cabbee48348d58597803d7abc9",
    "f7ecded5c66047d28ed6466b543c40e0743abe81d109254dcf845d4c2c7853c5",
    "2b071c59a0a0ae76b0eadb2bad23bad4580b69c3601b630c2eaf0613afa83f92",
];

/// A DER SEQUENCE header for `len` content bytes.
fn sequence_header(len: usize) -> Vec<u8> {
    match len {
        0..=0x7f => vec![0x30, len as u8],
        0x80..=0xff => vec![0x30, 0x81, len as u8],
        _ => vec![0x30, 0x82, (len >> 8) as u8, len as u8],
    }
}

#[test]
fn the_bundled_roots_are_the_five_amazon_trust_services_publishes() {
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(AMAZON_TRUST_SERVICES_ROOTS.as_bytes())
            .collect::<Result<_, _>>()
            .expect("the bundle parses as PEM");
    assert_eq!(certs.len(), 5);
    let hashes: Vec<String> = certs
        .iter()
        .map(|cert| {
            let anchor = webpki::anchor_from_trusted_cert(cert).expect("a trust anchor");
            // The anchor holds the SPKI's contents; the published hash is over the
            // whole DER structure.
            let spki = &anchor.subject_public_key_info;
            let mut der = sequence_header(spki.len());
            der.extend_from_slice(spki);
            hex::encode(Sha256::digest(&der))
        })
        .collect();
    assert_eq!(hashes, PUBLISHED_SPKI_SHA256);
}

#[test]
fn the_platform_store_only_when_the_environment_names_one() {
    assert_eq!(Roots::from_lookup(|_| None), Roots::AmazonTrustServices);
    let only = |name: &'static str, value: &'static str| {
        move |k: &str| (k == name).then(|| value.to_string())
    };
    assert_eq!(
        Roots::from_lookup(only("SSL_CERT_FILE", "/etc/pki/proxy.pem")),
        Roots::Platform
    );
    assert_eq!(
        Roots::from_lookup(only("SSL_CERT_DIR", "/etc/ssl/certs")),
        Roots::Platform
    );
    assert_eq!(
        Roots::from_lookup(only("SSL_CERT_FILE", "")),
        Roots::AmazonTrustServices,
        "an empty setting is no setting"
    );
}

/// A lookup over `vars`, as the environment would answer.
fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + Send + Sync + 'static {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name: &str| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
}

/// What Lambda sets for every function (the values are the tests' own).
const LAMBDA: [(&str, &str); 4] = [
    ("AWS_REGION", "eu-west-1"),
    ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
    (
        "AWS_SECRET_ACCESS_KEY",
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
    ),
    ("AWS_SESSION_TOKEN", "session-token"),
];

fn with(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    LAMBDA.iter().chain(extra).copied().collect()
}

#[cfg(any(feature = "tls-ring", feature = "tls-aws-lc"))]
fn client() -> SharedHttpClient {
    https_client(Roots::AmazonTrustServices, TlsProvider::CHOSEN)
}

#[cfg(any(feature = "tls-ring", feature = "tls-aws-lc"))]
#[tokio::test]
async fn a_lambda_config_takes_region_and_credentials_from_the_environment() {
    use aws_credential_types::provider::ProvideCredentials;
    // GIVEN the variables Lambda sets
    // WHEN the configuration is built from them
    let sdk = lambda_config_from(env(&LAMBDA), client()).unwrap();
    // THEN the region and the execution role's credentials are theirs
    assert_eq!(sdk.region().map(|r| r.as_ref()), Some("eu-west-1"));
    let credentials = sdk
        .credentials_provider()
        .expect("a credentials provider")
        .provide_credentials()
        .await
        .unwrap();
    assert_eq!(credentials.access_key_id(), "AKIDEXAMPLE");
    assert_eq!(
        credentials.secret_access_key(),
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
    );
    assert_eq!(credentials.session_token(), Some("session-token"));
    assert!(sdk.http_client().is_some());
    // AND every call's time is limited (tester G15: a call that never answered
    // held its job for ever)
    let timeouts = sdk.timeout_config().expect("time limits");
    assert_eq!(
        timeouts.operation_timeout(),
        Some(std::time::Duration::from_secs(20))
    );
    assert_eq!(
        timeouts.connect_timeout(),
        Some(std::time::Duration::from_millis(3_100))
    );
    // AWS_DEFAULT_REGION when AWS_REGION is not set, as the SDK reads them
    let vars = [
        ("AWS_DEFAULT_REGION", "ap-south-1"),
        ("AWS_ACCESS_KEY_ID", "a"),
        ("AWS_SECRET_ACCESS_KEY", "b"),
    ];
    let sdk = lambda_config_from(env(&vars), client()).unwrap();
    assert_eq!(sdk.region().map(|r| r.as_ref()), Some("ap-south-1"));
}

#[cfg(any(feature = "tls-ring", feature = "tls-aws-lc"))]
#[test]
fn a_lambda_config_names_the_first_variable_it_misses() {
    for missing in ["AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] {
        let unset: Vec<_> = LAMBDA
            .iter()
            .filter(|(k, _)| *k != missing)
            .copied()
            .collect();
        let empty: Vec<_> = LAMBDA
            .iter()
            .map(|&(k, v)| (k, if k == missing { "" } else { v }))
            .collect();
        for vars in [unset, empty] {
            match lambda_config_from(env(&vars), client()) {
                Err(ConfigError::Missing(name)) => assert_eq!(name, missing),
                other => panic!("{missing} missing: {other:?}"),
            }
        }
    }
}

/// The endpoint an SQS and a Secrets Manager client built from `vars` are given:
/// what each asks the configuration's service config for (the generated clients'
/// `From<&SdkConfig>`: `AWS_ENDPOINT_URL` with the service id, "SQS" and "Secrets
/// Manager"). The end-to-end test `lambda_config` calls the emulator this way.
#[cfg(any(feature = "tls-ring", feature = "tls-aws-lc"))]
fn endpoints(vars: &[(&'static str, &'static str)]) -> (Option<String>, Option<String>) {
    let sdk = lambda_config_from(env(&with(vars)), client()).unwrap();
    let asked = |service_id: &str| {
        let key = ServiceConfigKey::builder()
            .service_id(service_id)
            .env("AWS_ENDPOINT_URL")
            .profile("endpoint_url")
            .build()
            .unwrap();
        sdk.service_config()
            .expect("a service config")
            .load_config(key)
    };
    (asked("SQS"), asked("Secrets Manager"))
}

#[cfg(any(feature = "tls-ring", feature = "tls-aws-lc"))]
#[test]
fn endpoints_follow_the_sdks_variables_service_first() {
    // No endpoint variable: each client resolves AWS's own endpoint.
    assert_eq!(endpoints(&[]), (None, None));
    // AWS_ENDPOINT_URL (an emulator) for every client…
    let emulator = Some("http://127.0.0.1:5000".to_string());
    assert_eq!(
        endpoints(&[("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")]),
        (emulator.clone(), emulator.clone())
    );
    // …unless a service has its own (the service id upper-cased, spaces as `_`).
    assert_eq!(
        endpoints(&[
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
            ("AWS_ENDPOINT_URL_SECRETS_MANAGER", "http://127.0.0.1:6000"),
        ]),
        (emulator, Some("http://127.0.0.1:6000".to_string()))
    );
    assert_eq!(
        endpoints(&[("AWS_ENDPOINT_URL_SQS", "http://127.0.0.1:7000")]),
        (Some("http://127.0.0.1:7000".to_string()), None)
    );
    // AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true ignores them all.
    assert_eq!(
        endpoints(&[
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
            ("AWS_ENDPOINT_URL_SQS", "http://127.0.0.1:7000"),
            ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true"),
        ]),
        (None, None)
    );
}

/// Every TLS provider this build has, by name.
#[cfg(any(feature = "tls-ring", feature = "tls-aws-lc"))]
fn providers() -> Vec<TlsProvider> {
    vec![
        #[cfg(feature = "tls-ring")]
        TlsProvider::Ring,
        #[cfg(feature = "tls-aws-lc")]
        TlsProvider::AwsLc,
    ]
}

#[cfg(any(feature = "tls-ring", feature = "tls-aws-lc"))]
#[test]
fn the_chosen_provider_is_aws_lc_when_both_are_built() {
    let expected = if cfg!(feature = "tls-aws-lc") {
        "AwsLc"
    } else {
        "Ring"
    };
    assert_eq!(format!("{:?}", TlsProvider::CHOSEN), expected);
    assert!(providers().contains(&TlsProvider::CHOSEN));
}

#[cfg(all(feature = "sqs", any(feature = "tls-ring", feature = "tls-aws-lc")))]
#[tokio::test]
async fn each_tls_provider_speaks_tls_to_a_server_its_roots_trust() {
    use super::test_server::{Conduct, QUEUE_URL, serve, tls_config};
    let (port, mut seen) = serve(Some(tls_config(&[])), Conduct::KeepAlive).await;
    let endpoint = format!("https://localhost:{port}");
    for provider in providers() {
        // GIVEN an SQS client on the provider, trusting the test CA
        let trust = Trusted::Pem(include_bytes!("../../fixtures/tls/ca.pem"));
        let http = https_client_trusting(trust, provider);
        let sdk = lambda_config_from(env(&LAMBDA), http).unwrap();
        let sqs = aws_sdk_sqs::Client::from_conf(
            aws_sdk_sqs::config::Builder::from(&sdk)
                .endpoint_url(&endpoint)
                .build(),
        );
        // WHEN it calls the server over TLS
        let queues = sqs.list_queues().send().await;
        // THEN the handshake and the call succeed, signed with the environment's key
        let queues = queues.unwrap_or_else(|e| panic!("{provider:?}: {e:?}"));
        assert_eq!(queues.queue_urls(), [QUEUE_URL], "{provider:?}");
        let head = seen.heads.recv().await.unwrap().to_ascii_lowercase();
        assert!(
            head.contains("x-amz-target: amazonsqs.listqueues"),
            "{head}"
        );
        assert!(head.contains("credential=akidexample/"), "{head}");
    }
    // AND the bundled Amazon roots do not trust the test CA: the same call fails.
    for provider in providers() {
        let http = https_client(Roots::AmazonTrustServices, provider);
        let sdk = lambda_config_from(env(&LAMBDA), http).unwrap();
        let sqs = aws_sdk_sqs::Client::from_conf(
            aws_sdk_sqs::config::Builder::from(&sdk)
                .endpoint_url(&endpoint)
                .retry_config(aws_sdk_sqs::config::retry::RetryConfig::disabled())
                .build(),
        );
        let refused = sqs.list_queues().send().await;
        assert!(refused.is_err(), "{provider:?}: {refused:?}");
    }
    assert!(
        seen.heads.try_recv().is_err(),
        "no request may reach an untrusted server"
    );
}

#[cfg(all(feature = "sqs", any(feature = "tls-ring", feature = "tls-aws-lc")))]
#[tokio::test(start_paused = true)]
async fn a_call_to_an_endpoint_that_never_answers_gives_up_at_its_time_limit() {
    use super::test_server::{Conduct, serve};
    use aws_sdk_sqs::error::SdkError;
    // GIVEN an endpoint that reads each request and never answers (tester G15:
    // `ec2 list` waited for ever on one), and the bot's SDK configuration
    let (port, _seen) = serve(None, Conduct::Silent).await;
    let sdk = lambda_config_from(env(&LAMBDA), client()).unwrap();
    let sqs = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::config::Builder::from(&sdk)
            .endpoint_url(format!("http://127.0.0.1:{port}"))
            .build(),
    );
    // WHEN a call is made (tokio's clock is paused: it moves when all else waits)
    let started = tokio::time::Instant::now();
    let hour = std::time::Duration::from_secs(3600);
    let failed = tokio::time::timeout(hour, sqs.list_queues().send())
        .await
        .expect("the call gives up by itself")
        .unwrap_err();
    // THEN it fails as a timeout after the call's time limit, retries included
    assert!(matches!(failed, SdkError::TimeoutError(_)), "{failed:?}");
    assert_eq!(
        started.elapsed().as_secs(),
        u64::from(crate::timing::AWS_CALL_TIMEOUT_SECS)
    );
}
