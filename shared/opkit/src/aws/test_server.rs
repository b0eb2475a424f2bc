//! A loopback server for the tests of the AWS clients' HTTPS clients: answers each
//! HTTP/1.1 request with SQS's answer to ListQueues, over TLS (the test certificate
//! for `localhost`, fixtures/tls) or plain TCP, and reports what it saw.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

/// The queue URL every answer lists.
pub const QUEUE_URL: &str = "https://sqs.eu-west-1.amazonaws.com/1/jobs";

/// How the server treats a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conduct {
    /// Answers requests on the connection for as long as the client keeps it.
    KeepAlive,
    /// Answers one request, with `connection: close`, and closes.
    CloseAfterOne,
    /// Reads the request and never answers.
    Silent,
}

/// What the server saw.
pub struct Seen {
    /// Each request's head (request line and headers), in arrival order.
    pub heads: mpsc::UnboundedReceiver<String>,
    /// Connections accepted (TCP), counted when accepted.
    pub connections: Arc<AtomicUsize>,
    /// The ALPN protocol each TLS connection agreed (`None`: none agreed).
    pub alpn: mpsc::UnboundedReceiver<Option<Vec<u8>>>,
}

impl Seen {
    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// A TLS server config for `localhost` (signed by fixtures/tls/ca.pem) offering `alpn`.
pub fn tls_config(alpn: &[&[u8]]) -> rustls::ServerConfig {
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(include_bytes!("../../fixtures/tls/localhost.pem"))
            .collect::<Result<_, _>>()
            .unwrap();
    let key =
        PrivateKeyDer::from_pem_slice(include_bytes!("../../fixtures/tls/localhost.key")).unwrap();
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config
}

/// Starts the server on a free loopback port, TLS when `tls` is given.
pub async fn serve(tls: Option<rustls::ServerConfig>, conduct: Conduct) -> (u16, Seen) {
    let acceptor = tls.map(|c| tokio_rustls::TlsAcceptor::from(Arc::new(c)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (heads, heads_rx) = mpsc::unbounded_channel();
    let (alpn, alpn_rx) = mpsc::unbounded_channel();
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = connections.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            let heads = heads.clone();
            match &acceptor {
                None => {
                    tokio::spawn(answer(tcp, heads, conduct));
                }
                Some(acceptor) => {
                    let acceptor = acceptor.clone();
                    let alpn = alpn.clone();
                    tokio::spawn(async move {
                        let Ok(tls) = acceptor.accept(tcp).await else {
                            return;
                        };
                        let _ = alpn.send(tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec));
                        answer(tls, heads, conduct).await;
                    });
                }
            }
        }
    });
    let seen = Seen {
        heads: heads_rx,
        connections,
        alpn: alpn_rx,
    };
    (port, seen)
}

/// Reads requests (each head, then the body its `content-length` announces) and
/// answers them as `conduct` says, until the client closes.
async fn answer<S>(mut io: S, heads: mpsc::UnboundedSender<String>, conduct: Conduct)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut pending = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let Some((head, used)) = request_in(&pending) else {
            match io.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => pending.extend_from_slice(&buf[..n]),
            }
            continue;
        };
        pending.drain(..used);
        let _ = heads.send(head);
        if conduct == Conduct::Silent {
            // Keep the connection open, unanswered, until the client gives up.
            while matches!(io.read(&mut buf).await, Ok(n) if n > 0) {}
            return;
        }
        let body = format!(r#"{{"QueueUrls":["{QUEUE_URL}"]}}"#);
        let close = if conduct == Conduct::CloseAfterOne {
            "connection: close\r\n"
        } else {
            ""
        };
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.0\r\n\
             content-length: {}\r\nx-amzn-requestid: r1\r\n{close}\r\n{body}",
            body.len()
        );
        if io.write_all(response.as_bytes()).await.is_err() {
            return;
        }
        if conduct == Conduct::CloseAfterOne {
            let _ = io.shutdown().await;
            return;
        }
    }
}

/// The first whole request in `bytes`: its head and how many bytes it took.
fn request_in(bytes: &[u8]) -> Option<(String, usize)> {
    let text = String::from_utf8_lossy(bytes);
    let end = text.find("\r\n\r\n")?;
    let length = text[..end]
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let used = end + 4 + length;
    (bytes.len() >= used).then(|| (text[..end].to_string(), used))
}
