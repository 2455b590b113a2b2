//! TLS termination with two certificates chosen by SNI.

use std::path::PathBuf;

use bus::BusExt as _;

use crate::{backend, reg, start_with};

fn cert(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/certs").join(name)
}

#[tokio::test]
async fn tls_is_terminated_with_the_certificate_sni_asks_for() {
    let r = start_with(|c| {
        c.tls_addr = Some("127.0.0.1:0".parse().expect("addr"));
        c.tls_certs = vec![
            router::tls::CertPair { cert: cert("a.pem"), key: cert("a.key") },
            router::tls::CertPair { cert: cert("b.pem"), key: cert("b.key") },
        ];
    })
    .await;
    let tls = r.tls.expect("tls listener");
    let port = backend("secure").await;
    for host in ["a.example.test", "app.b.example.test"] {
        r.bus.publish_json("router.register", &reg(port, host, "0")).await.expect("pub");
    }
    let ca =
        reqwest::Certificate::from_pem(&std::fs::read(cert("ca.pem")).expect("ca")).expect("pem");
    let client = reqwest::Client::builder()
        .add_root_certificate(ca)
        .tls_built_in_root_certs(false)
        .resolve("a.example.test", tls)
        .resolve("app.b.example.test", tls)
        .build()
        .expect("client");
    for host in ["a.example.test", "app.b.example.test"] {
        let url = format!("https://{host}:{}/", tls.port());
        let body =
            testkit::eventually("routed over TLS", std::time::Duration::from_secs(5), || {
                let client = client.clone();
                let url = url.clone();
                async move {
                    let res = client.get(url).send().await.expect("TLS handshake and request");
                    assert_eq!(res.version(), reqwest::Version::HTTP_2, "h2 by ALPN");
                    (res.status() == 200).then_some(res.text().await.unwrap_or_default())
                }
            })
            .await
            .expect("200");
        assert!(body.starts_with("secure") && body.contains("proto=https"), "{body}");
    }
    // A name only the first certificate's issuer would vouch for fails verification: the
    // certificates really are chosen per name.
    let wrong = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(&std::fs::read(cert("ca.pem")).expect("ca"))
                .expect("pem"),
        )
        .tls_built_in_root_certs(false)
        .resolve("c.example.test", tls)
        .build()
        .expect("client");
    let err = wrong.get(format!("https://c.example.test:{}/", tls.port())).send().await;
    assert!(err.is_err(), "no certificate is valid for c.example.test");
}
