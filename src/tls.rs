//! The server's TLS certificate: loaded from PEM files, checked (the key
//! must match the certificate), and reloaded without a restart on SIGHUP
//! or when either file changes, so that a renewal (certbot, cert-manager,
//! a copied file, a swapped symlink) takes effect on the next handshake.
//! A reload that fails keeps the certificate in use and says why.
//!
//! It makes the rustls acceptors of the gRPC/HTTP address (ALPN `h2` and
//! `http/1.1`) and of RTMPS (no ALPN), which share the one certificate,
//! and the client configuration with which a node calls the other nodes
//! at their `https://` advertise URLs ([`peer_client_config`]).

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::config::TlsFiles;

/// How often the files' modification times are compared.
const WATCH_EVERY: Duration = Duration::from_secs(2);

/// ALPN of the gRPC/HTTP address: HTTP/2 first, so browsers use it.
pub const ALPN_HTTP: &[&[u8]] = &[b"h2", b"http/1.1"];

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: no PEM certificate in it")]
    NoCertificate { path: PathBuf },
    #[error("{path}: not a PEM certificate chain: {reason}")]
    Certificate { path: PathBuf, reason: String },
    #[error("{path}: no PEM private key (PKCS#8, PKCS#1 or SEC1) in it: {reason}")]
    Key { path: PathBuf, reason: String },
    #[error("{key} does not go with {cert}: {reason}")]
    Mismatch {
        cert: PathBuf,
        key: PathBuf,
        reason: String,
    },
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
    #[error("{path}: no usable CA certificate in it")]
    NoCa { path: PathBuf },
}

/// The certificate in use, swapped whole by a reload.
#[derive(Debug)]
struct Current(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for Current {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0.read().expect("certificate lock")))
    }
}

/// The certificate of the server, with what reloads it.
#[derive(Clone)]
pub struct Certificate {
    files: TlsFiles,
    current: Arc<Current>,
    provider: Arc<CryptoProvider>,
}

impl Certificate {
    /// Loads the certificate chain and key; fails when either is missing,
    /// unreadable, or when they do not go together.
    pub fn load(files: &TlsFiles) -> Result<Certificate, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = load_pair(files, &provider)?;
        Ok(Certificate {
            files: files.clone(),
            current: Arc::new(Current(RwLock::new(Arc::new(key)))),
            provider,
        })
    }

    /// An acceptor offering `alpn` (most preferred first).
    pub fn acceptor(&self, alpn: &[&[u8]]) -> Result<TlsAcceptor, TlsError> {
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::clone(&self.provider))
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(Arc::clone(&self.current) as Arc<dyn ResolvesServerCert>);
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(TlsAcceptor::from(Arc::new(config)))
    }

    /// Loads the files again; on success the next handshakes use them.
    pub fn reload(&self) -> Result<(), TlsError> {
        let key = load_pair(&self.files, &self.provider)?;
        *self.current.0.write().expect("certificate lock") = Arc::new(key);
        Ok(())
    }

    /// Reloads on SIGHUP and whenever either file's modification time or
    /// size changes, until `stop`.
    pub async fn watch(self, stop: CancellationToken) {
        let mut hangups = match tokio::signal::unix::signal(
            tokio::signal::unix::SignalKind::hangup(),
        ) {
            Ok(signal) => Some(signal),
            Err(e) => {
                tracing::warn!(error = %e, "no SIGHUP handler: certificates reload on file changes only");
                None
            }
        };
        let mut seen = self.stamp();
        let mut ticks = tokio::time::interval(WATCH_EVERY);
        loop {
            let why = tokio::select! {
                _ = stop.cancelled() => return,
                _ = ticks.tick() => {
                    let now = self.stamp();
                    if now == seen {
                        continue;
                    }
                    seen = now;
                    "the files changed"
                }
                Some(()) = async {
                    match hangups.as_mut() {
                        Some(signal) => signal.recv().await,
                        None => std::future::pending().await,
                    }
                } => "SIGHUP",
            };
            match self.reload() {
                Ok(()) => tracing::info!(
                    cert = %self.files.cert.display(),
                    reason = why,
                    "TLS certificate reloaded"
                ),
                Err(e) => tracing::warn!(
                    error = %e,
                    reason = why,
                    "TLS certificate not reloaded; the one in use stays"
                ),
            }
        }
    }

    /// What changes when a file is replaced: modification time and size
    /// of each file (following symlinks).
    fn stamp(&self) -> [Option<(SystemTime, u64)>; 2] {
        let of = |path: &Path| {
            std::fs::metadata(path)
                .ok()
                .and_then(|m| Some((m.modified().ok()?, m.len())))
        };
        [of(&self.files.cert), of(&self.files.key)]
    }
}

/// How this node checks the other nodes' certificates: against the CA
/// certificates of `ca_file` (PEM) when given, else the system's roots.
/// Offers HTTP/2 alone (the nodes call each other over gRPC).
pub fn peer_client_config(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let pem = read(path)?;
            for cert in CertificateDer::pem_slice_iter(&pem).flatten() {
                roots.add(cert)?;
            }
            if roots.is_empty() {
                return Err(TlsError::NoCa {
                    path: path.to_path_buf(),
                });
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for error in &found.errors {
                tracing::warn!(%error, "a system CA certificate could not be read");
            }
            roots.add_parsable_certificates(found.certs);
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn load_pair(files: &TlsFiles, provider: &CryptoProvider) -> Result<CertifiedKey, TlsError> {
    let pem = read(&files.cert)?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Certificate {
            path: files.cert.clone(),
            reason: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: files.cert.clone(),
        });
    }
    let key = PrivateKeyDer::from_pem_slice(&read(&files.key)?).map_err(|e| TlsError::Key {
        path: files.key.clone(),
        reason: e.to_string(),
    })?;
    CertifiedKey::from_der(chain, key, provider).map_err(|e| TlsError::Mismatch {
        cert: files.cert.clone(),
        key: files.key.clone(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate for `localhost` and its key, written to `dir`.
    fn write_pair(dir: &Path, name: &str) -> (TlsFiles, Vec<u8>) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let files = TlsFiles {
            cert: dir.join(format!("{name}.crt")),
            key: dir.join(format!("{name}.key")),
        };
        std::fs::write(&files.cert, cert.pem()).unwrap();
        std::fs::write(&files.key, key.serialize_pem()).unwrap();
        (files, cert.der().to_vec())
    }

    fn served(certificate: &Certificate) -> Vec<u8> {
        certificate.current.0.read().unwrap().cert[0].to_vec()
    }

    #[test]
    fn a_matching_pair_loads_and_a_mismatched_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (a, a_der) = write_pair(dir.path(), "a");
        let (b, _) = write_pair(dir.path(), "b");
        let certificate = Certificate::load(&a).unwrap();
        assert_eq!(served(&certificate), a_der);
        certificate.acceptor(ALPN_HTTP).unwrap();
        let mixed = TlsFiles {
            cert: a.cert.clone(),
            key: b.key.clone(),
        };
        let error = Certificate::load(&mixed)
            .err()
            .expect("a mismatch is refused");
        assert!(matches!(error, TlsError::Mismatch { .. }), "{error}");
    }

    #[test]
    fn missing_or_empty_files_are_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let (a, _) = write_pair(dir.path(), "a");
        let gone = TlsFiles {
            cert: dir.path().join("gone.crt"),
            key: a.key.clone(),
        };
        let error = Certificate::load(&gone).err().unwrap().to_string();
        assert!(error.contains("gone.crt"), "{error}");
        std::fs::write(dir.path().join("empty.crt"), "").unwrap();
        let empty = TlsFiles {
            cert: dir.path().join("empty.crt"),
            key: a.key,
        };
        let error = Certificate::load(&empty).err().unwrap();
        assert!(matches!(error, TlsError::NoCertificate { .. }), "{error}");
    }

    #[test]
    fn a_reload_swaps_the_pair_and_a_failed_one_keeps_the_old() {
        let dir = tempfile::tempdir().unwrap();
        let (live, first) = write_pair(dir.path(), "live");
        let certificate = Certificate::load(&live).unwrap();
        std::fs::write(&live.key, "not a key").unwrap();
        assert!(certificate.reload().is_err());
        assert_eq!(
            served(&certificate),
            first,
            "a failed reload keeps the pair"
        );
        let (next, second) = write_pair(dir.path(), "next");
        std::fs::rename(&next.cert, &live.cert).unwrap();
        std::fs::rename(&next.key, &live.key).unwrap();
        certificate.reload().unwrap();
        assert_eq!(served(&certificate), second);
    }
}
