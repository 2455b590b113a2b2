//! TLS termination: certificates from PEM files, chosen per handshake by SNI (the first
//! certificate valid for the requested name, wildcards included; the first one configured
//! when there is no SNI or no match), HTTP/2 and HTTP/1.1 offered by ALPN.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rustls::pki_types::{CertificateDer, ServerName};
use rustls::server::{ClientHello, ParsedCertificate, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use serde::{Deserialize, Serialize};

/// One certificate chain and its key (PEM files).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertPair {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("tls_certs is empty but tls_addr is set")]
    NoCerts,
    #[error("cannot read {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("{0}: no certificate or key in the PEM file")]
    Empty(PathBuf),
    #[error("{0}: {1}")]
    Invalid(PathBuf, rustls::Error),
}

#[derive(Debug)]
struct BySni {
    keys: Vec<Arc<CertifiedKey>>,
    /// SNI name → index in `keys`, filled as names are seen.
    chosen: Mutex<HashMap<String, usize>>,
}

impl BySni {
    fn index_for(&self, name: &str) -> usize {
        let name = name.to_ascii_lowercase();
        if let Some(i) = self.chosen.lock().unwrap_or_else(|e| e.into_inner()).get(&name) {
            return *i;
        }
        let found = ServerName::try_from(name.as_str()).ok().and_then(|sn| {
            self.keys.iter().position(|k| {
                k.end_entity_cert()
                    .and_then(ParsedCertificate::try_from)
                    .and_then(|c| rustls::client::verify_server_name(&c, &sn))
                    .is_ok()
            })
        });
        let i = found.unwrap_or(0);
        let mut chosen = self.chosen.lock().unwrap_or_else(|e| e.into_inner());
        if chosen.len() < 10_000 {
            chosen.insert(name, i);
        }
        i
    }
}

impl ResolvesServerCert for BySni {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let i = hello.server_name().map_or(0, |n| self.index_for(n));
        self.keys.get(i).cloned()
    }
}

fn load(pair: &CertPair) -> Result<CertifiedKey, TlsError> {
    let read = |p: &PathBuf| std::fs::read(p).map_err(|e| TlsError::Read(p.clone(), e));
    let certs: Vec<CertificateDer<'static>> =
        rustls_pemfile::certs(&mut read(&pair.cert)?.as_slice())
            .collect::<Result<_, _>>()
            .map_err(|e| TlsError::Read(pair.cert.clone(), e))?;
    if certs.is_empty() {
        return Err(TlsError::Empty(pair.cert.clone()));
    }
    let key = rustls_pemfile::private_key(&mut read(&pair.key)?.as_slice())
        .map_err(|e| TlsError::Read(pair.key.clone(), e))?
        .ok_or_else(|| TlsError::Empty(pair.key.clone()))?;
    let signer = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| TlsError::Invalid(pair.key.clone(), e))?;
    let ck = CertifiedKey::new(certs, signer);
    ck.keys_match().map_err(|e| TlsError::Invalid(pair.cert.clone(), e))?;
    Ok(ck)
}

/// A TLS acceptor serving `pairs` by SNI.
pub fn acceptor(pairs: &[CertPair]) -> Result<tokio_rustls::TlsAcceptor, TlsError> {
    if pairs.is_empty() {
        return Err(TlsError::NoCerts);
    }
    let keys = pairs.iter().map(|p| load(p).map(Arc::new)).collect::<Result<Vec<_>, _>>()?;
    let resolver = BySni { keys, chosen: Mutex::default() };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Invalid(pairs[0].cert.clone(), e))?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}
