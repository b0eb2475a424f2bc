//! Tests of the HTTP/1.1 client: through the real SQS client against loopback
//! servers (plain and TLS), and its pure parts.

use super::*;

#[test]
fn the_host_header_carries_the_port_only_when_it_is_not_the_schemes() {
    let host = |uri: &str| host_header(&uri.parse().unwrap()).unwrap();
    assert_eq!(
        host("https://sqs.eu-west-1.amazonaws.com/"),
        "sqs.eu-west-1.amazonaws.com"
    );
    assert_eq!(host("https://sqs.example:443/"), "sqs.example");
    assert_eq!(host("https://sqs.example:8443/"), "sqs.example:8443");
    assert_eq!(host("http://sqs.example:80/"), "sqs.example");
    assert_eq!(host("http://127.0.0.1:5000/"), "127.0.0.1:5000");
    assert_eq!(host("http://127.0.0.1:443/"), "127.0.0.1:443");
}

#[test]
fn an_origin_is_scheme_host_and_port_with_the_schemes_default() {
    let origin = |uri: &str| Origin::of(&uri.parse().unwrap());
    assert_eq!(
        origin("https://sqs.eu-west-1.amazonaws.com/?a=b").unwrap(),
        Origin {
            https: true,
            host: "sqs.eu-west-1.amazonaws.com".into(),
            port: 443
        }
    );
    assert_eq!(
        origin("http://[::1]:5000/").unwrap(),
        Origin {
            https: false,
            host: "::1".into(),
            port: 5000
        }
    );
    assert_eq!(origin("http://localhost/").unwrap().port, 80);
    // Neither https nor http: the caller's mistake, not a connection failure.
    let refused = origin("ftp://sqs.example/").unwrap_err();
    assert!(refused.is_user(), "{refused:?}");
    assert!(format!("{refused:?}").contains("ftp"), "{refused:?}");
}

/// The connector's failure under an SDK error (what the SDK's retry decides on).
fn dispatch_failure<E, R: std::fmt::Debug>(
    failed: &aws_smithy_runtime_api::client::result::SdkError<E, R>,
) -> &aws_smithy_runtime_api::client::result::DispatchFailure {
    use aws_smithy_runtime_api::client::result::SdkError;
    match failed {
        SdkError::DispatchFailure(dispatch) => dispatch,
        _ => panic!("not a dispatch failure"),
    }
}

/// An SQS client on `http`, calling `endpoint`, without retries (so each call is
/// one request and a failure is this client's, not hidden by a retry).
fn sqs(http: Http1Client, endpoint: &str) -> aws_sdk_sqs::Client {
    use aws_sdk_sqs::config::{Builder, Credentials, Region, retry::RetryConfig};
    let config = Builder::new()
        .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
        .region(Region::new("eu-west-1"))
        .credentials_provider(Credentials::new(
            "AKIDEXAMPLE",
            "secret",
            None,
            None,
            "test",
        ))
        .http_client(http)
        .endpoint_url(endpoint)
        .retry_config(RetryConfig::disabled())
        .build();
    aws_sdk_sqs::Client::from_conf(config)
}

fn ring() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client trusting the test CA (fixtures/tls/ca.pem), on ring.
fn trusting_the_test_ca() -> Http1Client {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(include_bytes!("../../../fixtures/tls/ca.pem")) {
        roots.add(cert.unwrap()).unwrap();
    }
    Http1Client::new(roots, ring())
}

#[tokio::test]
async fn calls_to_one_origin_share_one_kept_alive_connection() {
    use crate::aws::test_server::{Conduct, QUEUE_URL, serve};
    // GIVEN a plain-HTTP server that keeps connections alive (an emulator's way)
    let (port, mut seen) = serve(None, Conduct::KeepAlive).await;
    let http = Http1Client::new(rustls::RootCertStore::empty(), ring());
    let client = sqs(http.clone(), &format!("http://127.0.0.1:{port}"));
    // WHEN three calls are made one after another
    for _ in 0..3 {
        let queues = client.list_queues().send().await.unwrap();
        assert_eq!(queues.queue_urls(), [QUEUE_URL]);
    }
    // THEN they went over one connection, kept for the next call
    assert_eq!(seen.connections(), 1);
    assert_eq!(http.idle(), 1);
    // AND each is HTTP/1.1 to the origin, its Host the signed one (with the port)
    for _ in 0..3 {
        let head = seen.heads.recv().await.unwrap().to_ascii_lowercase();
        assert!(head.starts_with("post / http/1.1\r\n"), "{head}");
        let host = format!("host: 127.0.0.1:{port}");
        assert!(head.lines().any(|line| line == host), "{head}");
        assert!(head.contains(";host;"), "host is signed: {head}");
    }
}

#[tokio::test]
async fn a_server_that_prefers_http2_is_spoken_to_in_http_1_1() {
    use crate::aws::test_server::{Conduct, QUEUE_URL, serve, tls_config};
    // GIVEN a TLS server offering h2 before http/1.1
    let (port, mut seen) = serve(Some(tls_config(&[b"h2", b"http/1.1"])), Conduct::KeepAlive).await;
    // WHEN the client calls it over TLS
    let client = sqs(trusting_the_test_ca(), &format!("https://localhost:{port}"));
    let queues = client.list_queues().send().await.unwrap();
    // THEN the call succeeds, and the agreed protocol is HTTP/1.1
    assert_eq!(queues.queue_urls(), [QUEUE_URL]);
    assert_eq!(
        seen.alpn.recv().await.unwrap().as_deref(),
        Some(&b"http/1.1"[..])
    );
    let head = seen.heads.recv().await.unwrap().to_ascii_lowercase();
    let host = format!("host: localhost:{port}");
    assert!(head.lines().any(|line| line == host), "{head}");
}

#[tokio::test]
async fn a_connection_the_server_closes_is_not_reused() {
    use crate::aws::test_server::{Conduct, serve};
    // GIVEN a server that answers `connection: close` and closes each connection
    let (port, seen) = serve(None, Conduct::CloseAfterOne).await;
    let http = Http1Client::new(rustls::RootCertStore::empty(), ring());
    let client = sqs(http.clone(), &format!("http://127.0.0.1:{port}"));
    // WHEN three calls are made, without retries
    for call in 0..3 {
        let answered = client.list_queues().send().await;
        // THEN each succeeds, on a connection of its own
        assert!(answered.is_ok(), "call {call}: {answered:?}");
    }
    assert_eq!(seen.connections(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_server_that_never_answers_is_a_timeout() {
    use crate::aws::test_server::{Conduct, serve};
    use aws_sdk_sqs::config::timeout::TimeoutConfig;
    // GIVEN a server that reads the request and never answers, and a read timeout
    let (port, _seen) = serve(None, Conduct::Silent).await;
    let http = Http1Client::new(rustls::RootCertStore::empty(), ring());
    let client = aws_sdk_sqs::Client::from_conf(
        sqs(http, &format!("http://127.0.0.1:{port}"))
            .config()
            .to_builder()
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(1))
                    .read_timeout(Duration::from_secs(5))
                    .build(),
            )
            .build(),
    );
    // WHEN a call is made (tokio's clock is paused: it moves when all else waits)
    let failed = client.list_queues().send().await.unwrap_err();
    // THEN it fails as a timeout, which the SDK knows to retry
    let dispatch = dispatch_failure(&failed);
    assert!(dispatch.is_timeout(), "{failed:?}");
}

#[tokio::test]
async fn a_closed_port_is_an_io_error() {
    // GIVEN a port nobody listens on (bound, then released)
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let client = sqs(
        Http1Client::new(rustls::RootCertStore::empty(), ring()),
        &format!("http://127.0.0.1:{port}"),
    );
    // WHEN a call is made
    let failed = client.list_queues().send().await.unwrap_err();
    // THEN it is an I/O failure (which the SDK retries), not a timeout or the caller's
    let dispatch = dispatch_failure(&failed);
    assert!(dispatch.is_io(), "{failed:?}");
}
