//! Backends registered with `protocol: http2` (`cf map-route --destination-protocol http2`,
//! gRPC apps) are spoken to in HTTP/2 over cleartext, whatever the client speaks, with
//! `TE: trailers` and the response's trailers carried end to end.

use std::convert::Infallible;
use std::time::Duration;

use bus::BusExt as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty, StreamBody};
use hyper::body::Frame;

use crate::{reg, start};

/// A backend that speaks only HTTP/2 (prior knowledge): it answers with the version, `TE`
/// and host it got, and a `grpc-status` trailer.
async fn h2_only_backend() -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = l.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = l.accept().await {
            tokio::spawn(async move {
                let svc =
                    hyper::service::service_fn(|req: hyper::Request<hyper::body::Incoming>| {
                        let h = |k: &str| {
                            req.headers()
                                .get(k)
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or("-")
                                .to_owned()
                        };
                        let text = format!(
                            "version={:?} te={} host={} app={}",
                            req.version(),
                            h("te"),
                            h("host"),
                            h("x-cf-applicationid")
                        );
                        let mut trailers = hyper::HeaderMap::new();
                        trailers.insert("grpc-status", "0".parse().expect("value"));
                        let frames: Vec<Result<Frame<Bytes>, Infallible>> =
                            vec![Ok(Frame::data(Bytes::from(text))), Ok(Frame::trailers(trailers))];
                        let body = StreamBody::new(futures::stream::iter(frames));
                        async move { Ok::<_, Infallible>(hyper::Response::new(body)) }
                    });
                let _ =
                    hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                        .serve_connection(hyper_util::rt::TokioIo::new(tcp), svc)
                        .await;
            });
        }
    });
    port
}

#[tokio::test]
async fn http2_backends_get_http2_with_trailers_from_any_client() {
    let r = start().await;
    let port = h2_only_backend().await;
    let mut m = reg(port, "grpc.example.com", "0");
    m.protocol = Some("http2".into());
    r.bus.publish_json("router.register", &m).await.expect("pub");

    // An HTTP/1.1 client (through the router's own HTTP/1.1 path, handed to hyper).
    let client = reqwest::Client::builder().http1_only().build().expect("client");
    let body = testkit::eventually("served over h2c", Duration::from_secs(5), || async {
        let res = client
            .get(format!("{}/svc/Method", r.url))
            .header("host", "grpc.example.com")
            .send()
            .await
            .ok()?;
        (res.status() == 200).then_some(res.text().await.ok()?)
    })
    .await
    .expect("200");
    assert!(body.starts_with("version=HTTP/2.0"), "{body}");
    assert!(body.contains("host=grpc.example.com") && body.contains("app=app-guid"), "{body}");

    // An HTTP/2 client as gRPC is (prior knowledge, TE: trailers): the trailers come back.
    let addr = r.url.trim_start_matches("http://").to_owned();
    let tcp = tokio::net::TcpStream::connect(&addr).await.expect("connect");
    let (mut send, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tcp),
    )
    .await
    .expect("h2 handshake");
    tokio::spawn(conn);
    let req = hyper::Request::builder()
        .method("POST")
        .uri("http://grpc.example.com/svc/Method")
        .header("te", "trailers")
        .header("content-type", "application/grpc")
        .body(Empty::<Bytes>::new())
        .expect("request");
    let res = send.send_request(req).await.expect("response");
    assert_eq!(res.status(), 200);
    let collected = res.into_body().collect().await.expect("body");
    let trailers = collected.trailers().cloned().expect("trailers reach the client");
    assert_eq!(trailers.get("grpc-status").map(|v| v.as_bytes()), Some(&b"0"[..]));
    let text = String::from_utf8(collected.to_bytes().to_vec()).expect("utf8");
    assert!(text.starts_with("version=HTTP/2.0 te=trailers"), "{text}");

    // The same backend registered as HTTP/1 gets HTTP/1.1, which it does not speak: 502.
    r.bus.publish_json("router.register", &reg(port, "h1.example.com", "0")).await.expect("pub");
    let (status, _, err) = testkit::eventually("registered", Duration::from_secs(5), || async {
        let got = crate::get(&r, "h1.example.com", "/").await;
        (got.0 != 404).then_some(got)
    })
    .await
    .expect("known");
    assert_eq!((status, err.as_str()), (502, "endpoint_failure"));
}
