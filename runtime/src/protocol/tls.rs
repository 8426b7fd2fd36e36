//! TLS for SSL and SASL_SSL listeners: rustls server configuration from PEM files, optional
//! client-certificate verification, and reload without dropping connections.
//!
//! Crypto provider: `ring`. rustls 0.23 defaults to aws-lc-rs, whose aws-lc-sys build costs ~90 s
//! of a 2-core machine (shared/FACTS.md); ring compiled here in well under that as part of a
//! normal dependency build, and offers the suites Kafka clients use (TLS 1.3 AES-GCM/ChaCha20,
//! TLS 1.2 ECDHE-GCM). FIPS, the one reason to want aws-lc-rs, is not a goal.
//!
//! Reload (on SIGHUP or a change of the files: `tls_reload.rs`):
//! [`TlsAcceptorSource::reload`] re-reads the files and swaps the `ServerConfig` that
//! *new* handshakes use. Established connections keep the session keys they negotiated, so
//! nothing is dropped; a reload that fails (a half-written key file) keeps the old config and
//! says why.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::config::{ClientAuth, TlsConfig};

#[allow(missing_docs)] // fields are named for what they hold
/// Why the TLS configuration could not be (re)loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A PEM file could not be read or parsed.
    #[error("{path}: {reason}")]
    Pem { path: PathBuf, reason: String },
    /// The files parsed but rustls refused them (e.g. the key does not match the certificate).
    #[error("TLS configuration from {cert} and {key}: {source}")]
    Rustls { cert: PathBuf, key: PathBuf, source: rustls::Error },
    /// The client CA file holds no usable certificate.
    #[error("client CA file {path}: {reason}")]
    ClientCa { path: PathBuf, reason: String },
}

/// Hands out acceptors built from the current certificate files.
#[derive(Debug)]
pub struct TlsAcceptorSource {
    config: TlsConfig,
    current: RwLock<Arc<ServerConfig>>,
}

impl TlsAcceptorSource {
    /// Loads the files named in `config`.
    pub fn load(config: &TlsConfig) -> Result<Self, TlsError> {
        let server_config = build(config)?;
        Ok(TlsAcceptorSource { config: config.clone(), current: RwLock::new(server_config) })
    }

    /// An acceptor for one new connection.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(Arc::clone(&self.current.read()))
    }

    /// The files it reads: certificate, key and, when configured, the client CA.
    pub fn files(&self) -> Vec<PathBuf> {
        let mut files = vec![self.config.cert_file.clone(), self.config.key_file.clone()];
        files.extend(self.config.client_ca_file.clone());
        files
    }

    /// Re-reads the certificate files; on error the previous configuration stays in force.
    pub fn reload(&self) -> Result<(), TlsError> {
        let fresh = build(&self.config)?;
        *self.current.write() = fresh;
        Ok(())
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn build(config: &TlsConfig) -> Result<Arc<ServerConfig>, TlsError> {
    let certs = read_certs(&config.cert_file)?;
    let key = PrivateKeyDer::from_pem_file(&config.key_file)
        .map_err(|e| TlsError::Pem { path: config.key_file.clone(), reason: format!("no usable private key: {e}") })?;
    let rustls_error = |source| TlsError::Rustls { cert: config.cert_file.clone(), key: config.key_file.clone(), source };
    let builder = ServerConfig::builder_with_provider(provider()).with_safe_default_protocol_versions().map_err(rustls_error)?;
    let builder = match (config.client_auth, &config.client_ca_file) {
        (ClientAuth::None, _) | (_, None) => builder.with_no_client_auth(),
        (auth, Some(ca_file)) => {
            let mut roots = RootCertStore::empty();
            for cert in read_certs(ca_file)? {
                roots.add(cert).map_err(|e| TlsError::ClientCa { path: ca_file.clone(), reason: e.to_string() })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider());
            let verifier = if auth == ClientAuth::Requested { verifier.allow_unauthenticated() } else { verifier };
            let verifier = verifier.build().map_err(|e| TlsError::ClientCa { path: ca_file.clone(), reason: e.to_string() })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let server_config = builder.with_single_cert(certs, key).map_err(rustls_error)?;
    Ok(Arc::new(server_config))
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem_error = |reason: String| TlsError::Pem { path: path.to_path_buf(), reason };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_error(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(e.to_string()))?;
    if certs.is_empty() {
        return Err(pem_error("no CERTIFICATE block".into()));
    }
    Ok(certs)
}
