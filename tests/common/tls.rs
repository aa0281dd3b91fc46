//! TLS for the tests: a certificate authority and server certificates made
//! at test time (rcgen), written as the PEM files `--tls-cert` and
//! `--tls-key` take, and clients that trust that authority alone: gRPC
//! (tonic over tokio-rustls) and a bare handshake that shows which
//! certificate the server presents.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use sha2::Digest;
use tonic::transport::{Channel, Endpoint};

/// A certificate authority of the test's own.
pub struct TestCa {
    cert: rcgen::Certificate,
    key: rcgen::KeyPair,
    /// Its certificate, PEM: what clients trust.
    pub pem: String,
}

/// A server certificate and its key.
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
    /// The certificate, DER: what a handshake shows.
    pub der: Vec<u8>,
    /// base64(SHA-256(SubjectPublicKeyInfo)): what Chromium's
    /// `--ignore-certificate-errors-spki-list` takes.
    pub spki_sha256: String,
}

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let cert = params.self_signed(&key).unwrap();
        TestCa {
            pem: cert.pem(),
            cert,
            key,
        }
    }

    /// A server certificate for `localhost` and 127.0.0.1.
    pub fn issue(&self) -> Issued {
        let key = rcgen::KeyPair::generate().unwrap();
        let params =
            rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
                .unwrap();
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
            spki_sha256: base64::engine::general_purpose::STANDARD
                .encode(sha2::Sha256::digest(key.public_key_der())),
        }
    }

    /// Writes the CA's certificate to `dir`; returns its path.
    pub fn write(&self, dir: &Path) -> PathBuf {
        let path = dir.join("ca.pem");
        std::fs::write(&path, &self.pem).unwrap();
        path
    }
}

impl Issued {
    /// Writes `server.crt` and `server.key` in `dir`, each replaced whole
    /// (written aside, then renamed over), as a certificate renewal does.
    pub fn write(&self, dir: &Path) -> (PathBuf, PathBuf) {
        let cert = dir.join("server.crt");
        let key = dir.join("server.key");
        for (path, text) in [(&key, &self.key_pem), (&cert, &self.cert_pem)] {
            let aside = path.with_extension("new");
            std::fs::write(&aside, text).unwrap();
            std::fs::rename(&aside, path).unwrap();
        }
        (cert, key)
    }
}

/// A rustls client trusting `ca_pem` alone, offering `alpn`.
pub fn client_config(ca_pem: &str, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// A TLS connection to `addr` as `localhost`, checked against `ca_pem`.
pub async fn connect(
    addr: SocketAddr,
    ca_pem: &str,
    alpn: &[&[u8]],
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    tokio_rustls::TlsConnector::from(client_config(ca_pem, alpn))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
}

/// The certificate (DER) the server at `addr` presents now.
pub async fn served_certificate(addr: SocketAddr, ca_pem: &str) -> std::io::Result<Vec<u8>> {
    let stream = connect(addr, ca_pem, &[b"h2"]).await?;
    let (_, session) = stream.get_ref();
    Ok(session
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map(|cert| cert.to_vec())
        .unwrap_or_default())
}

/// A gRPC channel to `addr` over TLS (HTTP/2 by ALPN), trusting `ca_pem`.
pub async fn channel(addr: SocketAddr, ca_pem: &str) -> Channel {
    let ca = ca_pem.to_string();
    let connector = tower::service_fn(move |_: tonic::codegen::http::Uri| {
        let ca = ca.clone();
        async move {
            let stream = connect(addr, &ca, &[b"h2"]).await?;
            Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
        }
    });
    Endpoint::from_shared(format!("https://localhost:{}", addr.port()))
        .unwrap()
        .connect_with_connector(connector)
        .await
        .expect("connect over TLS")
}
