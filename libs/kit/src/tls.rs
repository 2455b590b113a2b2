//! TLS client settings for outbound connections to places users name (syslog drains, route
//! services): the bundled web roots plus an operator's PEM file of more.

use std::sync::Arc;

/// A client configuration trusting the web roots and the certificates in `ca_file` (none when
/// empty). `setting` names the option in errors, so an operator knows which file is wrong.
pub fn client_config(ca_file: &str, setting: &str) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if !ca_file.is_empty() {
        let pem = std::fs::read(ca_file).map_err(|e| format!("{setting} {ca_file}: {e}"))?;
        let mut found = 0;
        for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
            let cert = cert.map_err(|e| format!("{setting} {ca_file}: {e}"))?;
            roots.add(cert).map_err(|e| format!("{setting} {ca_file}: {e}"))?;
            found += 1;
        }
        if found == 0 {
            return Err(format!("{setting} {ca_file}: no PEM certificate in it"));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())
        .map(|b| b.with_root_certificates(roots).with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_ca_file_is_named_in_the_error() {
        let e = client_config("/nonexistent/ca.pem", "drain_ca_file").expect_err("missing");
        assert!(e.starts_with("drain_ca_file /nonexistent/ca.pem: "), "{e}");
        let dir = tempfile::tempdir().expect("tempdir");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").expect("write");
        let e = client_config(empty.to_str().expect("utf8"), "route_services_ca_file")
            .expect_err("no certificate");
        assert!(e.ends_with("no PEM certificate in it"), "{e}");
        assert!(client_config("", "x").is_ok());
    }
}
