//! Route services: a request of a bound route goes to the route service first (over TLS, with
//! the forwarded URL and a signature), comes back through the router with that signature, and
//! only then reaches the app; forged, expired and misplaced signatures are refused.

use std::time::Duration;

use axum::http::{HeaderMap, Method, Uri};
use bus::BusExt as _;
use testkit::route_service::Cert;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::{reg, start_with, Router};

/// An app that says which route-service headers reached it, and echoes the body's length.
async fn app() -> u16 {
    let app = axum::Router::new().fallback(
        |uri: Uri, headers: HeaderMap, body: axum::body::Bytes| async move {
            let has = |k: &str| headers.contains_key(k);
            format!(
                "app path={uri} checked={} signature={} forwarded={} bytes={}",
                headers.get("x-checked-by").and_then(|v| v.to_str().ok()).unwrap_or("-"),
                has("x-cf-proxy-signature"),
                has("x-cf-forwarded-url"),
                body.len()
            )
        },
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = l.local_addr().expect("addr").port();
    tokio::spawn(async move { axum::serve(l, app).await });
    port
}

async fn bound(r: &Router, app_port: u16, uri: &str, url: &str) {
    let mut m = reg(app_port, uri, "0");
    m.route_service_url = Some(url.to_owned());
    r.bus.publish_json("router.register", &m).await.expect("pub");
}

fn settings(secret: &str) -> router::route_service::Settings {
    router::route_service::Settings {
        secret: secret.into(),
        secret_decrypt_only: String::new(),
        timeout: Duration::from_secs(60),
        recommend_https: true,
        ca_file: String::new(),
    }
}

async fn send(
    client: &reqwest::Client,
    r: &Router,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, String, String, bool) {
    let mut req = client.get(format!("{}{path}", r.url)).header("host", host);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = req.send().await.expect("request");
    let h = |k: &str| res.headers().get(k).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let (err, via) = (h("x-cf-routererror"), h("x-route-service") == "yes");
    (res.status().as_u16(), res.text().await.expect("body"), err, via)
}

#[tokio::test]
async fn requests_of_a_bound_route_pass_through_its_route_service_first() {
    // The router trusts the service's certificate through `route_services_ca_file`.
    let cert = Cert::localhost();
    let r = start_with(|c| {
        c.route_services_secret = "shared-secret".into();
        c.route_services_ca_file = cert.ca_file();
    })
    .await;
    let (rs_port, seen) = testkit::route_service::start(&cert, r.url.clone()).await;
    let app_port = app().await;
    let plain = app().await;
    r.bus
        .publish_json("router.register", &reg(plain, "plain.example.com", "0"))
        .await
        .expect("pub");
    let rs_url = format!("https://localhost:{rs_port}/auth?svc=1");
    bound(&r, app_port, "guarded.example.com", &rs_url).await;
    let client = reqwest::Client::new();
    crate::wait_routed(&r, "plain.example.com").await;

    // A plain route first and then the bound one on the same kept-alive connection: the
    // request goes to the service (its URL's path and host), signed, then back to the app.
    let (st, body, _, _) = send(&client, &r, "plain.example.com", "/", &[]).await;
    assert_eq!((st, body.starts_with("app path=/")), (200, true), "{body}");
    let (st, body, err, via) =
        testkit::eventually("through the route service", Duration::from_secs(5), || async {
            let got = send(&client, &r, "guarded.example.com", "/private/x?y=2", &[]).await;
            (got.0 == 200).then_some(got)
        })
        .await
        .expect("served");
    assert_eq!((st, err.as_str(), via), (200, "", true));
    assert_eq!(
        body,
        "app path=/private/x?y=2 checked=route-service signature=false forwarded=false bytes=0",
        "the app gets the request the service sent, without the route-service headers"
    );
    let s = seen.lock().expect("lock").last().cloned().expect("the service saw it");
    assert_eq!((s.method, s.path.as_str()), (Method::GET, "/auth?svc=1"));
    assert_eq!(s.host, format!("localhost:{rs_port}"));
    assert_eq!(s.forwarded_url, "https://guarded.example.com/private/x?y=2");
    assert!(s.signed, "signature and metadata headers");

    // A body travels to the service and on to the app.
    let res = client
        .post(format!("{}/upload", r.url))
        .header("host", "guarded.example.com")
        .body(vec![b'x'; 100_000])
        .send()
        .await
        .expect("post");
    assert_eq!(res.status(), 200);
    assert!(res.text().await.expect("body").ends_with("bytes=100000"));
    let s = seen.lock().expect("lock").last().cloned().expect("seen");
    assert_eq!((s.method, s.body.len()), (Method::POST, 100_000));

    // Signatures the router did not make, or made for another route, or too old, are refused.
    let (st, body, err, _) = send(
        &client,
        &r,
        "guarded.example.com",
        "/",
        &[("x-cf-proxy-signature", "Zm9yZ2Vk"), ("x-cf-proxy-metadata", "e30=")],
    )
    .await;
    assert_eq!((st, err.as_str()), (502, "invalid_route_service_signature"), "{body}");
    assert!(body.starts_with("502 Bad Gateway: Failed to validate Route Service Signature"));
    let same = router::route_service::RouteServices::new(&settings("shared-secret"))
        .expect("settings")
        .expect("on");
    let now = time::OffsetDateTime::now_utc();
    let signed = |url: &'static str, at: time::OffsetDateTime| {
        let (sig, meta) = same.sign(url, at);
        let (r, client) = (&r, &client);
        async move {
            let headers = [("x-cf-proxy-signature", &*sig), ("x-cf-proxy-metadata", &*meta)];
            send(client, r, "guarded.example.com", "/", &headers).await
        }
    };
    let (st, _, err, _) = signed("https://plain.example.com/", now).await;
    assert_eq!((st, err.as_str()), (502, "invalid_route_service_signature"), "another route");
    let old = now - time::Duration::seconds(61);
    let (st, body, err, _) = signed("https://guarded.example.com/", old).await;
    assert_eq!((st, err.as_str()), (504, "expired_route_service_signature"), "{body}");
    // A fresh signature for the route, made with the shared secret, goes straight to the app.
    let (st, body, _, via) = signed("https://guarded.example.com/", now).await;
    assert_eq!((st, via), (200, false), "{body}");
    assert!(body.starts_with("app path=/ checked=-"), "{body}");

    // Websockets are not supported on routes with a route service.
    let addr = r.url.trim_start_matches("http://").to_owned();
    let mut s = tokio::net::TcpStream::connect(&addr).await.expect("connect");
    s.write_all(
        b"GET /ws HTTP/1.1\r\nHost: guarded.example.com\r\nUpgrade: websocket\r\n\
          Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
          Sec-WebSocket-Version: 13\r\n\r\n",
    )
    .await
    .expect("write");
    let mut head = vec![0u8; 1024];
    let n = s.read(&mut head).await.expect("read");
    let head = String::from_utf8_lossy(&head[..n]).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 503"), "{head}");
    assert!(head.contains("x-cf-routererror: route_service_unsupported"), "{head}");

    // A route service that is down: 502 after the attempts, as for a dead app.
    bound(&r, app_port, "down.example.com", &format!("https://localhost:{}/", free_port())).await;
    let (st, _, err, _) = testkit::eventually("registered", Duration::from_secs(5), || async {
        let got = send(&client, &r, "down.example.com", "/", &[]).await;
        (got.0 != 404).then_some(got)
    })
    .await
    .expect("known");
    assert_eq!((st, err.as_str()), (502, "endpoint_failure"));

    // Unbound again (the next registration has no route service): straight to the app.
    r.bus
        .publish_json("router.register", &reg(app_port, "guarded.example.com", "0"))
        .await
        .expect("pub");
    testkit::eventually("unbound", Duration::from_secs(5), || async {
        let got = send(&client, &r, "guarded.example.com", "/", &[]).await;
        (got.0 == 200 && !got.3).then_some(())
    })
    .await
    .expect("straight to the app");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

#[tokio::test]
async fn without_a_secret_a_bound_route_answers_that_route_services_are_off() {
    let r = start_with(|_| {}).await;
    let app_port = app().await;
    bound(&r, app_port, "guarded.example.com", "https://localhost:1/").await;
    let client = reqwest::Client::new();
    let (st, body, err, _) = testkit::eventually("registered", Duration::from_secs(5), || async {
        let got = send(&client, &r, "guarded.example.com", "/", &[]).await;
        (got.0 != 404).then_some(got)
    })
    .await
    .expect("known");
    assert_eq!((st, err.as_str()), (502, "route_service_unsupported"));
    assert_eq!(body, "502 Bad Gateway: Support for route services is disabled.\n");
}
