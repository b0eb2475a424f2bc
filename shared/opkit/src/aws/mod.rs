//! The AWS SDK's configuration, built once at cold start by each Lambda function.
//!
//! Three choices are made here, for every AWS client the functions build.
//!
//! **Which root certificates the SDK's HTTPS client trusts.** Every AWS service
//! endpoint presents a certificate issued by Amazon Trust Services, so by default the
//! clients trust the five roots Amazon Trust Services tells custom trust stores to
//! hold — Amazon Root CA 1 to 4 and Starfield Services Root Certificate Authority -
//! G2 (<https://www.amazontrust.com/repository/>, "Trust store and pinning
//! recommendations") — bundled in the binary. The platform's store is not read: on a
//! cold start, reading and parsing it (`/etc/ssl/certs`, about 150 certificates) took
//! 10 ms of the ingress's 15, two thirds of its cold ack. Behind a TLS-inspecting
//! proxy, or with an endpoint signed by another authority, set `SSL_CERT_FILE` or
//! `SSL_CERT_DIR` (the variables OpenSSL and the platform store already read): then
//! the platform's store is trusted instead, as the SDK does by default.
//!
//! **Which TLS stack.** rustls on ring through Opkit's own HTTP/1.1 client
//! ([`http1`], feature `tls-ring`), or rustls on aws-lc through the SDK's client
//! (feature `tls-aws-lc`, the SDK's own default, HTTP/1.1 and HTTP/2), chosen by the
//! crate that builds the binary: the ingress takes ring and HTTP/1.1, which links
//! about 1 MB less than aws-lc with its post-quantum key exchange, and none of
//! HTTP/2 (h2), which SQS and Secrets Manager do not need. With both features on (a
//! workspace build for tests), [`TlsProvider::CHOSEN`] is aws-lc and each provider
//! can still be asked for by name. Either way the provider is given to rustls
//! explicitly, never taken from rustls's process-wide default (which is ambiguous
//! when both are linked).
//!
//! **Where region, credentials and endpoint come from.** [`load_config`] runs the
//! SDK's whole default chain (profiles, SSO, web identity, the container and
//! instance metadata endpoints), for a process that may run anywhere.
//! [`lambda_config`] reads them from the environment alone, as Lambda provides
//! them: it links none of the chain's code (STS, SSO, IMDS), which the functions
//! never run.

use std::fmt;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use aws_types::service_config::{LoadServiceConfig, ServiceConfigKey};

use crate::config::ConfigError;

#[cfg(feature = "tls-ring")]
pub mod http1;
#[cfg(all(
    test,
    feature = "sqs",
    any(feature = "tls-ring", feature = "tls-aws-lc")
))]
mod test_server;
#[cfg(test)]
mod tests;

/// The five roots of Amazon Trust Services, PEM (each preceded by a `#` line
/// naming its subject).
pub const AMAZON_TRUST_SERVICES_ROOTS: &str = include_str!("amazon_trust_services.pem");

/// The settings that, when either is set, make the clients trust the platform's
/// store instead of [`AMAZON_TRUST_SERVICES_ROOTS`].
pub const NATIVE_ROOTS_SETTINGS: [&str; 2] = ["SSL_CERT_FILE", "SSL_CERT_DIR"];

/// Which root certificates the AWS clients trust.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Roots {
    /// [`AMAZON_TRUST_SERVICES_ROOTS`] only (the default).
    AmazonTrustServices,
    /// The platform's store (`SSL_CERT_FILE` or `SSL_CERT_DIR` is set).
    Platform,
}

impl Roots {
    /// The roots for an environment read through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        if NATIVE_ROOTS_SETTINGS
            .iter()
            .any(|name| lookup(name).is_some_and(|v| !v.is_empty()))
        {
            Roots::Platform
        } else {
            Roots::AmazonTrustServices
        }
    }

    #[cfg(any(feature = "tls-ring", feature = "tls-aws-lc"))]
    fn trusted(self) -> Trusted<'static> {
        match self {
            Roots::AmazonTrustServices => Trusted::Pem(AMAZON_TRUST_SERVICES_ROOTS.as_bytes()),
            Roots::Platform => Trusted::Platform,
        }
    }
}

/// The certificates a client trusts: PEM text, or the platform's store.
#[derive(Debug, Clone, Copy)]
#[cfg(any(feature = "tls-ring", feature = "tls-aws-lc"))]
enum Trusted<'a> {
    Pem(&'a [u8]),
    Platform,
}

#[cfg(any(feature = "tls-ring", feature = "tls-aws-lc"))]
impl Trusted<'_> {
    /// For the SDK's client.
    #[cfg(feature = "tls-aws-lc")]
    fn trust_store(self) -> aws_smithy_http_client::tls::TrustStore {
        use aws_smithy_http_client::tls::TrustStore;
        match self {
            Trusted::Pem(pem) => TrustStore::empty().with_pem_certificate(pem),
            Trusted::Platform => TrustStore::default(),
        }
    }

    /// For rustls directly: the PEM's certificates, or those `rustls-native-certs`
    /// finds (it reads `SSL_CERT_FILE` and `SSL_CERT_DIR`, else the platform's
    /// usual places). A certificate that does not parse is left out, as the SDK's
    /// client leaves it out.
    #[cfg(feature = "tls-ring")]
    fn root_store(self) -> rustls::RootCertStore {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        match self {
            Trusted::Pem(pem) => {
                roots.add_parsable_certificates(
                    CertificateDer::pem_slice_iter(pem).filter_map(Result::ok),
                );
            }
            Trusted::Platform => {
                roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
            }
        }
        roots
    }
}

/// The AWS clients' HTTPS client and the cryptography under its rustls: one variant
/// per TLS feature enabled (`tls-ring`, `tls-aws-lc`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsProvider {
    /// Opkit's HTTP/1.1 client ([`http1::Http1Client`]) on ring (feature `tls-ring`).
    #[cfg(feature = "tls-ring")]
    Ring,
    /// The SDK's client on aws-lc, through aws-lc-rs (feature `tls-aws-lc`); prefers
    /// the post-quantum X25519MLKEM768 key exchange, as the SDK does.
    #[cfg(feature = "tls-aws-lc")]
    AwsLc,
}

#[cfg(any(feature = "tls-ring", feature = "tls-aws-lc"))]
impl TlsProvider {
    /// The provider the build chose: aws-lc when its feature is on, ring otherwise.
    #[cfg(feature = "tls-aws-lc")]
    pub const CHOSEN: TlsProvider = TlsProvider::AwsLc;
    /// The provider the build chose: aws-lc when its feature is on, ring otherwise.
    #[cfg(not(feature = "tls-aws-lc"))]
    pub const CHOSEN: TlsProvider = TlsProvider::Ring;
}

/// The AWS clients' HTTPS client for `provider`, trusting `roots`.
#[cfg(any(feature = "tls-ring", feature = "tls-aws-lc"))]
pub fn https_client(roots: Roots, provider: TlsProvider) -> SharedHttpClient {
    https_client_trusting(roots.trusted(), provider)
}

#[cfg(any(feature = "tls-ring", feature = "tls-aws-lc"))]
fn https_client_trusting(trust: Trusted<'_>, provider: TlsProvider) -> SharedHttpClient {
    match provider {
        #[cfg(feature = "tls-ring")]
        TlsProvider::Ring => SharedHttpClient::new(http1::Http1Client::new(
            trust.root_store(),
            std::sync::Arc::new(rustls::crypto::ring::default_provider()),
        )),
        #[cfg(feature = "tls-aws-lc")]
        TlsProvider::AwsLc => {
            use aws_smithy_http_client::tls::{self, TlsContext};
            let context = TlsContext::builder()
                .with_trust_store(trust.trust_store())
                .build()
                .expect("a TLS context from a trust store always builds");
            aws_smithy_http_client::Builder::new()
                .tls_provider(tls::Provider::Rustls(
                    tls::rustls_provider::CryptoMode::AwsLc,
                ))
                .tls_context(context)
                .build_https()
        }
    }
}

/// The time limits of every AWS call the bot makes, in each of its SDK
/// configurations ([`load_config`], [`lambda_config_from`], the CLI's): a call —
/// all its attempts — fails after [`AWS_CALL_TIMEOUT_SECS`](crate::timing::AWS_CALL_TIMEOUT_SECS)
/// (20 s) as a timeout, which the packs tell as "could not reach"; connecting
/// keeps the SDK's 3.1 s. Without it a call whose endpoint accepts and never
/// answers (a blackholed address, a stalled proxy) waited for ever: the SDK sets
/// no read timeout.
pub fn call_timeouts() -> aws_config::timeout::TimeoutConfig {
    use std::time::Duration;
    aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_millis(
            crate::timing::AWS_CONNECT_TIMEOUT_MILLIS.into(),
        ))
        .operation_timeout(Duration::from_secs(
            crate::timing::AWS_CALL_TIMEOUT_SECS.into(),
        ))
        .build()
}

/// The SDK configuration from the SDK's whole default chain (region, credentials,
/// endpoint — as `aws_config::load_from_env`), with the HTTPS client of
/// [`https_client`]: the build's [`TlsProvider::CHOSEN`], trusting the roots the
/// environment asks for ([`Roots::from_lookup`]).
#[cfg(any(feature = "tls-ring", feature = "tls-aws-lc"))]
pub async fn load_config() -> SdkConfig {
    let roots = Roots::from_lookup(|name| std::env::var(name).ok());
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(https_client(roots, TlsProvider::CHOSEN))
        .timeout_config(call_timeouts())
        .load()
        .await
}

/// The SDK configuration of a Lambda function, from the process's environment
/// alone: [`lambda_config_from`] with `std::env::var` and the HTTPS client of
/// [`https_client`] ([`TlsProvider::CHOSEN`], the roots [`Roots::from_lookup`] picks).
///
/// # Errors
///
/// [`ConfigError::Missing`] naming the first variable it needs that is not set.
#[cfg(any(feature = "tls-ring", feature = "tls-aws-lc"))]
pub fn lambda_config() -> Result<SdkConfig, ConfigError> {
    let lookup = |name: &str| std::env::var(name).ok();
    let http = https_client(Roots::from_lookup(lookup), TlsProvider::CHOSEN);
    lambda_config_from(lookup, http)
}

/// The SDK configuration from the variables Lambda sets for every function
/// (<https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html>,
/// "Defined runtime environment variables"), read through `lookup`, with `http` as
/// the HTTPS client:
///
/// - region: `AWS_REGION`, else `AWS_DEFAULT_REGION`;
/// - credentials: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and, when set,
///   `AWS_SESSION_TOKEN` (the execution role's, valid for the execution environment);
/// - endpoint: `AWS_ENDPOINT_URL_<SERVICE>` (e.g. `AWS_ENDPOINT_URL_SQS`), else
///   `AWS_ENDPOINT_URL`, both ignored when `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS` is
///   `true` — the SDK's own rules for these variables, without its shared config files
///   (<https://docs.aws.amazon.com/sdkref/latest/guide/feature-ss-endpoints.html>).
///
/// Nothing else is read: no profile file, SSO, web identity token, container or
/// instance metadata endpoint. Retries are the SDK's defaults for
/// [`BehaviorVersion::latest`]; each call's time is limited ([`call_timeouts`]).
///
/// # Errors
///
/// [`ConfigError::Missing`] naming `AWS_REGION`, `AWS_ACCESS_KEY_ID` or
/// `AWS_SECRET_ACCESS_KEY` when it is not set (or empty).
pub fn lambda_config_from(
    lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    http: SharedHttpClient,
) -> Result<SdkConfig, ConfigError> {
    let get = |name: &str| lookup(name).filter(|value| !value.is_empty());
    let region = get("AWS_REGION")
        .or_else(|| get("AWS_DEFAULT_REGION"))
        .ok_or(ConfigError::Missing("AWS_REGION"))?;
    let key = get("AWS_ACCESS_KEY_ID").ok_or(ConfigError::Missing("AWS_ACCESS_KEY_ID"))?;
    let secret =
        get("AWS_SECRET_ACCESS_KEY").ok_or(ConfigError::Missing("AWS_SECRET_ACCESS_KEY"))?;
    let credentials = Credentials::new(key, secret, get("AWS_SESSION_TOKEN"), None, "environment");
    let ignore = get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
        .is_some_and(|value| value.eq_ignore_ascii_case("true"));
    let endpoints = EnvEndpoints {
        lookup: Box::new(lookup),
        ignore,
    };
    Ok(SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region))
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .http_client(http)
        .timeout_config(call_timeouts())
        .service_config(endpoints)
        .build())
}

/// How the configuration reads a variable: the process's environment, or a test's.
type Lookup = Box<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// The endpoint variables, read when an SDK client is built (it asks its
/// [`LoadServiceConfig`] for `AWS_ENDPOINT_URL` with its service id).
struct EnvEndpoints {
    lookup: Lookup,
    /// `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS` is `true`.
    ignore: bool,
}

impl EnvEndpoints {
    fn get(&self, name: &str) -> Option<String> {
        if self.ignore {
            return None;
        }
        (self.lookup)(name).filter(|value| !value.is_empty())
    }
}

impl fmt::Debug for EnvEndpoints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnvEndpoints")
            .field("ignore", &self.ignore)
            .finish_non_exhaustive()
    }
}

impl LoadServiceConfig for EnvEndpoints {
    /// `{env}_{SERVICE ID}` (upper case, spaces as `_`: `AWS_ENDPOINT_URL_SECRETS_MANAGER`),
    /// else `{env}`: the SDK's order for environment variables.
    fn load_config(&self, key: ServiceConfigKey<'_>) -> Option<String> {
        let service = key.service_id().to_uppercase().replace(' ', "_");
        self.get(&format!("{}_{service}", key.env()))
            .or_else(|| self.get(key.env()))
    }
}
