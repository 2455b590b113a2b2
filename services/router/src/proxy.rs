//! Proxying one request: find the route, pick an endpoint (round-robin or least-connection,
//! skipping benched ones), set CF's headers, forward with streaming bodies over pooled
//! keep-alive connections, retry another endpoint when the connection could not be made, and
//! log an `RTR` access line to the app's stream.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use bus::DynBus;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use wire::envelope::{Envelope, LogStream};

use crate::errors::{request_host, router_error};
use crate::table::{Endpoint, Pool, Shared};

const MAX_ATTEMPTS: usize = 3;
const BENCH: Duration = Duration::from_secs(30);
const HOP_BY_HOP: [&str; 7] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

#[derive(Clone)]
pub struct Proxy {
    pub table: Shared,
    pub client: Client<HttpConnector, Body>,
    pub bus: DynBus,
    pub index: u32,
    pub benched: Arc<Mutex<HashMap<String, Instant>>>,
    pub request_timeout: Duration,
}

impl Proxy {
    pub fn new(table: Shared, bus: DynBus, index: u32, request_timeout: Duration) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        connector.set_nodelay(true);
        let client = Client::builder(hyper_util::rt::TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(100)
            .build(connector);
        Self { table, client, bus, index, benched: Arc::default(), request_timeout }
    }

    fn pick(&self, pool: &Pool, tried: &[String]) -> Option<Arc<Endpoint>> {
        let benched = self.benched.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let usable = |e: &Endpoint| {
            !tried.contains(&e.addr) && benched.get(&e.addr).is_none_or(|until| *until <= now)
        };
        let n = pool.endpoints.len();
        if pool.endpoints.first().is_some_and(|e| e.least_connection) {
            return pool
                .endpoints
                .iter()
                .filter(|e| usable(e))
                .min_by_key(|e| (e.inflight.load(Ordering::Relaxed), rand::random::<u16>()))
                .cloned();
        }
        (0..n).find_map(|_| {
            let i = pool.next.fetch_add(1, Ordering::Relaxed) % n;
            let e = &pool.endpoints[i];
            usable(e).then(|| e.clone())
        })
    }

    fn bench(&self, addr: &str) {
        self.benched
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(addr.to_owned(), Instant::now() + BENCH);
    }
}

fn bodiless(req: &Request) -> bool {
    let h = req.headers();
    !h.contains_key(header::TRANSFER_ENCODING)
        && h.get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_none_or(|v| v.trim() == "0")
}

/// The router's request handler.
pub async fn handle(
    State(p): State<Proxy>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let started = Instant::now();
    let start_wall = time::OffsetDateTime::now_utc();
    let Some(host) = request_host(req.headers(), req.uri()) else {
        return router_error(
            StatusCode::BAD_REQUEST,
            "empty_host",
            "Request had empty Host header",
        );
    };
    let table = p.table.load();
    let Some(pool) = table.lookup(&host, req.uri().path()) else {
        return router_error(
            StatusCode::NOT_FOUND,
            "unknown_route",
            &format!("Requested route ('{host}') does not exist."),
        );
    };
    if pool.endpoints.is_empty() {
        return router_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "no_endpoints",
            &format!("Requested route ('{host}') has no available endpoints."),
        );
    }
    let request_id = uuid::Uuid::new_v4().to_string();
    let retryable = bodiless(&req);
    let (parts, body) = req.into_parts();
    let mut body = Some(body);
    let mut tried: Vec<String> = Vec::new();
    let attempts = MAX_ATTEMPTS.min(pool.endpoints.len());
    for attempt in 0..attempts {
        let Some(ep) = p.pick(&pool, &tried) else { break };
        tried.push(ep.addr.clone());
        let Some(b) = (if attempt == 0 {
            body.take()
        } else if retryable {
            Some(Body::empty())
        } else {
            None
        }) else {
            break;
        };
        let out = outgoing(&parts.method, &parts.uri, &parts.headers, &ep, remote, &request_id, b);
        ep.inflight.fetch_add(1, Ordering::Relaxed);
        let res = tokio::time::timeout(p.request_timeout, p.client.request(out)).await;
        ep.inflight.fetch_sub(1, Ordering::Relaxed);
        match res {
            Ok(Ok(res)) => {
                let status = res.status();
                let sent = res
                    .headers()
                    .get(header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("0")
                    .to_owned();
                access_log(
                    &p,
                    &parts.method,
                    &parts.uri,
                    &parts.headers,
                    &host,
                    remote,
                    &ep,
                    &request_id,
                    status,
                    &sent,
                    start_wall,
                    started,
                )
                .await;
                return res.map(Body::new).into_response();
            }
            Ok(Err(e)) if e.is_connect() => {
                tracing::warn!(backend = %ep.addr, error = %e, "backend connection failed; trying another");
                p.bench(&ep.addr);
            }
            Ok(Err(e)) => {
                tracing::warn!(backend = %ep.addr, error = %e, "backend failed");
                p.bench(&ep.addr);
                break;
            }
            Err(_) => {
                return router_error(
                    StatusCode::GATEWAY_TIMEOUT,
                    "endpoint_failure (request timeout)",
                    "Request timed out.",
                );
            }
        }
    }
    router_error(
        StatusCode::BAD_GATEWAY,
        "endpoint_failure",
        "Registered endpoint failed to handle the request.",
    )
}

fn outgoing(
    method: &axum::http::Method,
    uri: &Uri,
    headers: &HeaderMap,
    ep: &Endpoint,
    remote: SocketAddr,
    request_id: &str,
    body: Body,
) -> axum::http::Request<Body> {
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut out = axum::http::Request::builder()
        .method(method.clone())
        .uri(format!("http://{}{path}", ep.addr))
        .body(body)
        .unwrap_or_default();
    let h = out.headers_mut();
    for (k, v) in headers {
        if !HOP_BY_HOP.contains(&k.as_str()) && !k.as_str().starts_with("x-cf-") {
            h.append(k.clone(), v.clone());
        }
    }
    let xff = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(prev) => format!("{prev}, {}", remote.ip()),
        None => remote.ip().to_string(),
    };
    let set = |h: &mut HeaderMap, k: &'static str, v: &str| {
        if let Ok(v) = HeaderValue::from_str(v) {
            h.insert(HeaderName::from_static(k), v);
        }
    };
    set(h, "x-forwarded-for", &xff);
    if !h.contains_key("x-forwarded-proto") {
        set(h, "x-forwarded-proto", "http");
    }
    if !h.contains_key("x-request-start") {
        let ms = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
        set(h, "x-request-start", &ms.to_string());
    }
    set(h, "x-vcap-request-id", request_id);
    set(h, "x-cf-applicationid", &ep.app);
    set(h, "x-cf-instanceindex", &ep.index);
    set(h, "x-cf-instanceid", &ep.instance_id);
    out
}

#[allow(clippy::too_many_arguments)]
async fn access_log(
    p: &Proxy,
    method: &axum::http::Method,
    uri: &Uri,
    headers: &HeaderMap,
    host: &str,
    remote: SocketAddr,
    ep: &Endpoint,
    request_id: &str,
    status: StatusCode,
    sent: &str,
    start: time::OffsetDateTime,
    started: Instant,
) {
    if ep.app.is_empty() {
        return;
    }
    let get = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).unwrap_or("-").to_owned();
    let received = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).unwrap_or("0");
    let when = start.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
    let secs = started.elapsed().as_secs_f64();
    let line = format!(
        "{host} - [{when}] \"{method} {uri} HTTP/1.1\" {} {received} {sent} \"{}\" \"{}\" \"{remote}\" \"{}\" \
         x_forwarded_for:\"{}\" x_forwarded_proto:\"{}\" vcap_request_id:\"{request_id}\" response_time:{secs:.6} \
         gorouter_time:{secs:.6} app_id:\"{}\" app_index:\"{}\" instance_id:\"{}\" x_cf_routererror:\"-\"",
        status.as_u16(),
        get("referer"),
        get("user-agent"),
        ep.addr,
        get("x-forwarded-for").replace('-', &remote.ip().to_string()),
        headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok()).unwrap_or("http"),
        ep.app,
        ep.index,
        ep.instance_id,
    );
    let env = Envelope::log(&ep.app, p.index.to_string(), "RTR", line, LogStream::Out);
    if let Ok(body) = serde_json::to_vec(&env) {
        let _ = p.bus.publish(&env.subject(), body.into()).await;
    }
}
