//! A route service for tests, as CF's example route services are: over TLS with a
//! certificate for `localhost` ([`Cert`]), it notes each request
//! and sends it on to the forwarded URL through the router, with the signature headers and a
//! header of its own (`x-checked-by: route-service`), answering what came back
//! (`x-route-service: yes`).

use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, Method, Uri};

pub use crate::tls::Cert;

/// What the route service saw of each request.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: Method,
    pub path: String,
    pub host: String,
    pub forwarded_url: String,
    pub signed: bool,
    pub body: Vec<u8>,
}

/// Serve with `cert` on a free port; requests go back to the router at `router`
/// (`http://127.0.0.1:port`). Returns the port and what the service has seen.
pub async fn start(cert: &Cert, router: String) -> (u16, Arc<Mutex<Vec<Seen>>>) {
    let mut tls = cert.server_config();
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let app = axum::Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: axum::body::Bytes| {
            let (log, router) = (log.clone(), router.clone());
            async move {
                let h =
                    |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                let forwarded_url = h("x-cf-forwarded-url");
                log.lock().expect("lock").push(Seen {
                    method: method.clone(),
                    path: uri.to_string(),
                    host: h("host"),
                    forwarded_url: forwarded_url.clone(),
                    signed: !h("x-cf-proxy-signature").is_empty()
                        && !h("x-cf-proxy-metadata").is_empty(),
                    body: body.to_vec(),
                });
                let target: Uri = forwarded_url.parse().expect("forwarded URL");
                let path = target.path_and_query().map_or("/", |p| p.as_str());
                let res = reqwest::Client::new()
                    .request(method, format!("{router}{path}"))
                    .header("host", target.host().expect("host"))
                    .header("x-cf-proxy-signature", h("x-cf-proxy-signature"))
                    .header("x-cf-proxy-metadata", h("x-cf-proxy-metadata"))
                    .header("x-cf-forwarded-url", &forwarded_url)
                    .header("x-checked-by", "route-service")
                    .body(body)
                    .send()
                    .await
                    .expect("back through the router");
                let status = res.status();
                let err = res.headers().get("x-cf-routererror").cloned();
                let text = res.text().await.expect("body");
                let mut out = axum::response::IntoResponse::into_response((status, text));
                out.headers_mut().insert("x-route-service", "yes".parse().expect("value"));
                if let Some(e) = err {
                    out.headers_mut().insert("x-cf-routererror", e);
                }
                out
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, app) = (acceptor.clone(), app.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else { return };
                let service = hyper_util::service::TowerToHyperService::new(app);
                let _ = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                .await;
            });
        }
    });
    (port, seen)
}
