//! TLS for tests: a self-signed certificate for `localhost` (glibc resolves that name without
//! help), made with openssl, and a rustls server configuration from it.

use std::path::PathBuf;
use std::sync::Arc;

/// A self-signed certificate for `localhost` and its key, in a directory of their own.
pub struct Cert {
    pub pem: PathBuf,
    pub key: PathBuf,
    _dir: tempfile::TempDir,
}

impl Cert {
    pub fn localhost() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let (pem, key) = (dir.path().join("rs.pem"), dir.path().join("rs.key"));
        let made = std::process::Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"])
            .args(["-nodes", "-days", "2", "-subj", "/CN=localhost"])
            .args(["-addext", "subjectAltName=DNS:localhost"])
            .args(["-addext", "basicConstraints=critical,CA:FALSE"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&pem)
            .output()
            .expect("openssl");
        assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
        Self { pem, key, _dir: dir }
    }

    /// The certificate's path as a string, for `route_services_ca_file`.
    pub fn ca_file(&self) -> String {
        self.pem.to_str().expect("utf8 path").to_owned()
    }
}

impl Cert {
    /// A rustls server configuration presenting this certificate.
    pub fn server_config(&self) -> rustls::ServerConfig {
        let chain: Vec<_> =
            rustls_pemfile::certs(&mut std::fs::read(&self.pem).expect("cert").as_slice())
                .collect::<Result<_, _>>()
                .expect("certs");
        let key =
            rustls_pemfile::private_key(&mut std::fs::read(&self.key).expect("key").as_slice())
                .expect("pem")
                .expect("a key");
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("server config")
    }
}
