//! The AWS SDK's configuration, built once at cold start by each Lambda function.
//!
//! One choice made here, for every AWS client the functions build: which root
//! certificates the SDK's HTTPS client trusts. Every AWS service endpoint presents a
//! certificate issued by Amazon Trust Services, so by default the clients trust the
//! five roots Amazon Trust Services tells custom trust stores to hold — Amazon Root
//! CA 1 to 4 and Starfield Services Root Certificate Authority - G2
//! (<https://www.amazontrust.com/repository/>, "Trust store and pinning
//! recommendations") — bundled in the binary. The platform's store is not read: on
//! a cold start, reading and parsing it (`/etc/ssl/certs`, about 150 certificates)
//! took 10 ms of the ingress's 15, two thirds of its cold ack.
//!
//! Behind a TLS-inspecting proxy, or with an endpoint signed by another
//! authority, set `SSL_CERT_FILE` or `SSL_CERT_DIR` (the variables OpenSSL and the
//! platform store already read): then the platform's store is trusted instead, as
//! the SDK does by default.

use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};

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

    fn trust_store(self) -> TrustStore {
        match self {
            Roots::AmazonTrustServices => {
                TrustStore::empty().with_pem_certificate(AMAZON_TRUST_SERVICES_ROOTS.as_bytes())
            }
            Roots::Platform => TrustStore::default(),
        }
    }
}

/// The SDK configuration from the environment (region, credentials, endpoint — as
/// `aws_config::load_from_env`), its HTTPS client (rustls on aws-lc, as the SDK's
/// default) trusting the roots the environment asks for ([`Roots::from_lookup`]).
pub async fn load_config() -> SdkConfig {
    let roots = Roots::from_lookup(|name| std::env::var(name).ok());
    let context = TlsContext::builder()
        .with_trust_store(roots.trust_store())
        .build()
        .expect("a TLS context from a trust store always builds");
    let https = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::AwsLc,
        ))
        .tls_context(context)
        .build_https();
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(https)
        .load()
        .await
}

#[cfg(test)]
mod tests {
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
}
