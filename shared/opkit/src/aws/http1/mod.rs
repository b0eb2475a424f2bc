//! An HTTPS client for the AWS SDK that speaks HTTP/1.1 alone: hyper's
//! `client::conn::http1` over tokio-rustls, with a small pool of kept-alive
//! connections.
//!
//! **Why not the SDK's own client.** `aws-smithy-http-client` always builds
//! hyper-util's client with HTTP/2 (its `default-client` feature turns on the `http2`
//! features of hyper and hyper-util, and it offers `h2` by ALPN), so the `h2` crate
//! and hyper's HTTP/2 paths are linked into every binary that uses it (about 0.4 MB
//! of the ingress) though SQS and Secrets Manager answer HTTP/1.1. This client offers
//! only `http/1.1` by ALPN and never builds an HTTP/2 connection, so nothing of
//! HTTP/2 is reachable from it.
//!
//! **What it keeps of the SDK's client.** The [`HttpConnectorSettings`] the SDK
//! gives it: the connect timeout covers TCP and the TLS handshake, the read timeout
//! runs from the call to the response's head (as `aws-smithy-http-client`'s
//! `HttpReadTimeout`); either elapsing is a [`ConnectorError::timeout`]. Connection
//! failures are [`ConnectorError::io`] (the SDK retries those), hyper's errors are
//! classified as the SDK's client classifies them. The `Host` header is the URI's
//! host, with its port when it is not the scheme's default (what SigV4 signed).
//! Kept-alive connections are reused per scheme, host and port, up to
//! [`MAX_IDLE_PER_ORIGIN`] each, for [`IDLE_TIMEOUT`]; a request that a reused
//! connection refused before sending anything (it had closed meanwhile) is sent once
//! on a new connection, as hyper-util's pool does.
//!
//! **What it does not do.** No proxy (`HTTPS_PROXY` is not read; neither does the
//! SDK's client unless a proxy is configured in code), no HTTP/2, no client
//! certificates.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::retry::ErrorKind;
use http::header::{HOST, HeaderValue};
use http::{Request, Uri};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;

#[cfg(all(test, feature = "sqs"))]
mod tests;

/// The most idle connections kept for one scheme, host and port.
pub const MAX_IDLE_PER_ORIGIN: usize = 8;

/// How long an idle connection is kept: hyper-util's pool default, the SDK's client's.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// The SDK's HTTPS client on HTTP/1.1 alone (see the [module](self) for what it does).
#[derive(Clone)]
pub struct Http1Client {
    tls: Arc<ClientConfig>,
    pool: Arc<Pool>,
}

impl fmt::Debug for Http1Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Http1Client").finish_non_exhaustive()
    }
}

impl Http1Client {
    /// A client trusting `roots`, with rustls on `provider` (TLS 1.3 and 1.2, the
    /// provider's default cipher suites), offering `http/1.1` by ALPN.
    ///
    /// # Panics
    ///
    /// When `provider` supports neither TLS 1.3 nor TLS 1.2 (every provider rustls
    /// ships supports both).
    pub fn new(roots: rustls::RootCertStore, provider: Arc<CryptoProvider>) -> Self {
        let mut tls = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("rustls's providers support its default protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        Self {
            tls: Arc::new(tls),
            pool: Arc::default(),
        }
    }

    /// How many idle connections the pool holds now (for tests).
    #[cfg(all(test, feature = "sqs"))]
    fn idle(&self) -> usize {
        self.pool.idle.lock().expect("pool lock").len()
    }
}

impl HttpClient for Http1Client {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(Http1Connector {
            client: self.clone(),
            connect_timeout: settings.connect_timeout(),
            read_timeout: settings.read_timeout(),
        })
    }
}

/// One [`Http1Client`] with the timeouts of one operation.
#[derive(Debug)]
struct Http1Connector {
    client: Http1Client,
    connect_timeout: Option<Duration>,
    read_timeout: Option<Duration>,
}

impl HttpConnector for Http1Connector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let request = match request.try_into_http1x() {
            Ok(request) => request,
            Err(e) => return HttpConnectorFuture::ready(Err(ConnectorError::user(e.into()))),
        };
        let client = self.client.clone();
        let connect_timeout = self.connect_timeout;
        let call = async move { client.send(request, connect_timeout).await };
        let read_timeout = self.read_timeout;
        HttpConnectorFuture::new(async move {
            let response = within(read_timeout, "the response's head", call).await??;
            HttpResponse::try_from(response.map(SdkBody::from_body_1_x))
                .map_err(|e| ConnectorError::other(e.into(), None))
        })
    }
}

/// `future`'s output, or a timeout error naming `what` when `limit` passes first.
async fn within<T>(
    limit: Option<Duration>,
    what: &'static str,
    future: impl Future<Output = T>,
) -> Result<T, ConnectorError> {
    match limit {
        None => Ok(future.await),
        Some(limit) => tokio::time::timeout(limit, future)
            .await
            .map_err(|_| ConnectorError::timeout(TimedOut { what, limit }.into())),
    }
}

/// A timeout of this client.
#[derive(Debug)]
struct TimedOut {
    what: &'static str,
    limit: Duration,
}

impl fmt::Display for TimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} did not come within {:?}", self.what, self.limit)
    }
}

impl std::error::Error for TimedOut {}

/// Where a connection goes: a pool key.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin {
    https: bool,
    host: String,
    port: u16,
}

impl Origin {
    fn of(uri: &Uri) -> Result<Self, ConnectorError> {
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            other => {
                return Err(ConnectorError::user(
                    format!("the scheme {other:?} is neither https nor http").into(),
                ));
            }
        };
        let host = uri
            .host()
            .ok_or_else(|| ConnectorError::user(format!("{uri} has no host").into()))?;
        // An IPv6 literal is bracketed in a URI, not in a socket address.
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        Ok(Self { https, host, port })
    }
}

/// The `Host` header for `uri`: its host, with its port unless it is the scheme's
/// default (as hyper-util's client sets it, and as SigV4 signs it).
fn host_header(uri: &Uri) -> Option<HeaderValue> {
    let host = uri.host()?;
    let default = match uri.scheme_str() {
        Some("https") => 443,
        _ => 80,
    };
    let value = match uri.port_u16() {
        Some(port) if port != default => format!("{host}:{port}"),
        _ => host.to_string(),
    };
    HeaderValue::from_str(&value).ok()
}

impl Http1Client {
    /// Sends `request` on a kept-alive connection to its origin, or a new one.
    async fn send(
        &self,
        mut request: Request<SdkBody>,
        connect_timeout: Option<Duration>,
    ) -> Result<http::Response<hyper::body::Incoming>, ConnectorError> {
        let origin = Origin::of(request.uri())?;
        if !request.headers().contains_key(HOST)
            && let Some(host) = host_header(request.uri())
        {
            request.headers_mut().insert(HOST, host);
        }
        // HTTP/1.1 to an origin server: the request target in origin form.
        let target = request
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .parse::<Uri>()
            .map_err(|e| ConnectorError::user(e.into()))?;
        *request.uri_mut() = target;

        if let Some(mut sender) = self.pool.checkout(&origin) {
            match sender.try_send_request(request).await {
                Ok(response) => {
                    self.pool.checkin(origin, sender);
                    return Ok(response);
                }
                Err(mut refused) => match refused.take_message() {
                    // Closed before anything was sent: once more on a new connection.
                    Some(again) => request = again,
                    None => return Err(classify(refused.into_error())),
                },
            }
        }
        let mut sender = within(connect_timeout, "the connection", self.connect(&origin)).await??;
        let response = sender.send_request(request).await.map_err(classify)?;
        self.pool.checkin(origin, sender);
        Ok(response)
    }

    /// A new HTTP/1.1 connection to `origin` (TLS when it is `https`), its driver
    /// spawned on the runtime.
    async fn connect(&self, origin: &Origin) -> Result<SendRequest<SdkBody>, ConnectorError> {
        let tcp = TcpStream::connect((origin.host.as_str(), origin.port))
            .await
            .map_err(|e| ConnectorError::io(e.into()))?;
        // Requests are small and written whole: no reason to wait for more.
        let _ = tcp.set_nodelay(true);
        if origin.https {
            let name = ServerName::try_from(origin.host.clone())
                .map_err(|e| ConnectorError::user(e.into()))?;
            let tls = tokio_rustls::TlsConnector::from(self.tls.clone())
                .connect(name, tcp)
                .await
                .map_err(|e| ConnectorError::io(e.into()))?;
            handshake(tls).await
        } else {
            handshake(tcp).await
        }
    }
}

/// HTTP/1.1 over `io`; the connection is driven by a task of its own until it closes.
async fn handshake<T>(io: T) -> Result<SendRequest<SdkBody>, ConnectorError>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(classify)?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "an AWS connection closed");
        }
    });
    sender.ready().await.map_err(classify)?;
    Ok(sender)
}

/// A hyper error as the SDK's own client classifies it (`aws-smithy-http-client`,
/// `to_connector_error`): timeouts, the caller's mistakes, closed connections and
/// I/O errors (retried), a response cut short (transient), anything else unknown.
fn classify(e: hyper::Error) -> ConnectorError {
    if e.is_timeout() {
        ConnectorError::timeout(e.into())
    } else if e.is_user() {
        ConnectorError::user(e.into())
    } else if e.is_closed() || e.is_canceled() || has_io_source(&e) {
        ConnectorError::io(e.into())
    } else if e.is_incomplete_message() {
        ConnectorError::other(e.into(), Some(ErrorKind::TransientError))
    } else {
        ConnectorError::other(e.into(), None)
    }
}

fn has_io_source(e: &hyper::Error) -> bool {
    let mut next = std::error::Error::source(e);
    while let Some(source) = next {
        if source.is::<std::io::Error>() {
            return true;
        }
        next = source.source();
    }
    false
}

/// Kept-alive connections, newest last.
#[derive(Default)]
struct Pool {
    idle: Mutex<Vec<Idle>>,
}

struct Idle {
    origin: Origin,
    sender: SendRequest<SdkBody>,
    since: Instant,
}

impl Pool {
    /// A connection to `origin` ready for a request, if one is kept. Closed and
    /// expired connections are dropped; busy ones (their response still being
    /// read) stay.
    fn checkout(&self, origin: &Origin) -> Option<SendRequest<SdkBody>> {
        let mut idle = self.idle.lock().expect("pool lock");
        idle.retain(|c| !c.sender.is_closed() && c.since.elapsed() < IDLE_TIMEOUT);
        let found = idle
            .iter()
            .rposition(|c| &c.origin == origin && c.sender.is_ready())?;
        Some(idle.remove(found).sender)
    }

    /// Keeps `sender` for `origin`: it is reused once the response it carries has
    /// been read. Past [`MAX_IDLE_PER_ORIGIN`] it is dropped (and closes).
    fn checkin(&self, origin: Origin, sender: SendRequest<SdkBody>) {
        let mut idle = self.idle.lock().expect("pool lock");
        if idle.iter().filter(|c| c.origin == origin).count() < MAX_IDLE_PER_ORIGIN {
            idle.push(Idle {
                origin,
                sender,
                since: Instant::now(),
            });
        }
    }
}
