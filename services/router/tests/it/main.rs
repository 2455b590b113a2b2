//! The router with real TCP backends on random ports and the in-process bus.

mod basics;
mod churn;
mod http2;
mod limits;
mod listeners;
mod protocol;
mod route_services;
mod sessions;
mod smuggling;
mod tls;
mod websockets;

use std::sync::Arc;
use std::time::Duration;

use bus::{DynBus, InProcessBus};
use wire::routing::RegistryMessage;

pub struct Router {
    pub url: String,
    pub status: String,
    pub tls: Option<std::net::SocketAddr>,
    pub bus: DynBus,
    _shutdown: kit::Shutdown,
}

impl Drop for Router {
    fn drop(&mut self) {
        self._shutdown.cancel();
    }
}

pub async fn start() -> Router {
    start_with(|_| {}).await
}

pub async fn start_with(tune: impl FnOnce(&mut router::Config)) -> Router {
    let bus: DynBus = Arc::new(InProcessBus::new());
    let mut config = router::Config {
        addr: "127.0.0.1:0".parse().expect("addr"),
        status_addr: "127.0.0.1:0".parse().expect("addr"),
        index: 4,
        prune_interval_secs: 1,
        ..Default::default()
    };
    tune(&mut config);
    let service = router::build(config, router::Deps { bus: bus.clone() }).await.expect("build");
    let url = format!("http://{}", service.local_addr());
    let status = format!("http://{}", service.status_addr());
    let tls = service.tls_addr();
    let shutdown = kit::Shutdown::new();
    tokio::spawn(service.run(shutdown.clone()));
    testkit::wait_http_ok(&format!("{status}/readyz"), Duration::from_secs(10))
        .await
        .expect("ready");
    Router { url, status, tls, bus, _shutdown: shutdown }
}

/// A backend answering with its name and the CF headers it received; `/login` also sets a
/// `JSESSIONID` cookie.
pub async fn backend(name: &'static str) -> u16 {
    backend_on("127.0.0.1", name).await
}

/// [`backend`] listening on `ip` (another loopback address stands for another host).
pub async fn backend_on(ip: &str, name: &'static str) -> u16 {
    let app = axum::Router::new().fallback(
        move |uri: axum::http::Uri, headers: axum::http::HeaderMap| async move {
            let h = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
            let body = format!(
                "{name} index={} app={} xff={} proto={} pin={}",
                h("x-cf-instanceindex"),
                h("x-cf-applicationid"),
                h("x-forwarded-for"),
                h("x-forwarded-proto"),
                h("x-cf-app-instance"),
            );
            let mut res = axum::response::IntoResponse::into_response(body);
            if uri.path() == "/login" {
                res.headers_mut().insert(
                    "set-cookie",
                    axum::http::HeaderValue::from_static("JSESSIONID=s1; Path=/; SameSite=Lax"),
                );
            }
            res
        },
    );
    let l = tokio::net::TcpListener::bind((ip, 0)).await.expect("bind");
    let port = l.local_addr().expect("addr").port();
    tokio::spawn(async move { axum::serve(l, app).await });
    port
}

pub fn reg(port: u16, uri: &str, index: &str) -> RegistryMessage {
    RegistryMessage {
        host: "127.0.0.1".into(),
        port,
        uris: vec![uri.into()],
        app: "app-guid".into(),
        private_instance_id: format!("inst-{index}"),
        private_instance_index: index.into(),
        ..Default::default()
    }
}

pub async fn get(r: &Router, host: &str, path: &str) -> (u16, String, String) {
    let res = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
        .get(format!("{}{path}", r.url))
        .header("host", host)
        .send()
        .await
        .expect("request");
    let status = res.status().as_u16();
    let err = res
        .headers()
        .get("x-cf-routererror")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    (status, res.text().await.expect("body"), err)
}

pub async fn wait_routed(r: &Router, host: &str) {
    testkit::eventually("route registered", Duration::from_secs(5), || async {
        (get(r, host, "/").await.0 == 200).then_some(())
    })
    .await
    .expect("routed");
}
