//! Proxying one request: find the route, honour pinning (`X-CF-APP-INSTANCE`) and sticky
//! sessions, pick an endpoint, set CF's headers, forward with streaming bodies over pooled
//! keep-alive connections, retry another endpoint when the connection could not be made, and
//! log an `RTR` access line to the app's stream.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Request, Uri};
use axum::response::Response;
use bus::DynBus;
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;

use crate::access::{self, AccessLog};
use crate::errors::{request_host, RouterError};
use crate::h1::BackendPool;
use crate::metrics::RouterMetrics;
use crate::pick::{Lease, NoPick, Picker};
use crate::route_service::{self, RouteServices, Via};
use crate::table::{Endpoint, Local, Pool, Shared, Table};
use crate::{sticky, websocket};

pub(crate) const MAX_ATTEMPTS: usize = 3;
pub(crate) const HOP_BY_HOP: [&str; 7] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

// CF's request headers, named once: a lookup by a constant name skips parsing the name.
pub(crate) const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub(crate) const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub(crate) const X_REQUEST_START: HeaderName = HeaderName::from_static("x-request-start");
pub(crate) const X_VCAP_REQUEST_ID: HeaderName = HeaderName::from_static("x-vcap-request-id");
const X_CF_APP_INSTANCE: HeaderName = HeaderName::from_static("x-cf-app-instance");
const X_CF_PROCESS_INSTANCE: HeaderName = HeaderName::from_static("x-cf-process-instance");

/// Everything a request needs; cheap to clone.
#[derive(Clone)]
pub struct Proxy {
    pub table: Shared,
    /// This proxy's view of `table` (each worker has its own).
    pub local_table: Arc<Local>,
    pub client: Client<HttpConnector, Body>,
    /// For endpoints registered with `protocol: http2` (h2c, prior knowledge).
    pub h2_client: Client<HttpConnector, Body>,
    pub access: AccessLog,
    pub index: u32,
    pub picker: Arc<Picker>,
    pub metrics: RouterMetrics,
    pub request_timeout: Duration,
    /// Idle backend connections of the HTTP/1.1 fast path (one pool per worker).
    pub pool: Arc<BackendPool>,
    /// Off (`None`) without a route services secret.
    pub route_services: Option<Arc<RouteServices>>,
}

impl Proxy {
    pub fn new(
        table: Shared,
        bus: DynBus,
        index: u32,
        request_timeout: Duration,
        picker: Picker,
        metrics: RouterMetrics,
    ) -> Self {
        let picker = Arc::new(picker);
        let access = AccessLog::start(bus, metrics.access_logs_dropped.clone());
        let (client, h2_client) = (backend_client(false), backend_client(true));
        let pool = Arc::default();
        Self {
            local_table: Arc::new(table.local()),
            table,
            client,
            h2_client,
            access,
            index,
            picker,
            metrics,
            request_timeout,
            pool,
            route_services: None,
        }
    }

    /// The same proxy with its own backend connection pool, for one worker thread (pools
    /// are per thread so a request and its backend connection stay on one thread).
    pub fn for_worker(&self) -> Self {
        Self {
            local_table: Arc::new(self.table.local()),
            client: backend_client(false),
            h2_client: backend_client(true),
            pool: Arc::default(),
            ..self.clone()
        }
    }
}

fn backend_client(http2: bool) -> Client<HttpConnector, Body> {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(websocket::DIAL_TIMEOUT));
    connector.set_nodelay(true);
    Client::builder(hyper_util::rt::TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(100)
        .http2_only(http2)
        .build(connector)
}

/// The client end of a connection, with its texts made once per connection.
#[derive(Clone)]
pub struct Peer {
    /// `ip:port`, as the access log shows it.
    pub text: Arc<str>,
    /// The IP alone, as `X-Forwarded-For` carries it.
    pub ip: Arc<str>,
}

impl Peer {
    pub fn new(addr: SocketAddr) -> Self {
        Self { text: addr.to_string().into(), ip: addr.ip().to_string().into() }
    }
}

/// What the access log and the headers need to know about the request.
pub struct Ctx {
    pub host: String,
    pub remote: Peer,
    pub https: bool,
    pub request_id: RequestId,
    pub started: Instant,
    pub start_wall: time::OffsetDateTime,
    /// Nanoseconds spent waiting for backends (connect and response headers), all attempts.
    pub backend_ns: AtomicU64,
}

/// A request id: a random (version 4) UUID in its hyphenated lower-case text, kept inline so
/// that a request's id costs no allocation.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RequestId([u8; 36]);

impl RequestId {
    /// A new random id.
    pub fn new() -> Self {
        Self::from_random(rand::random())
    }

    /// The id made of these random bytes, with the version and variant bits of a v4 UUID.
    pub fn from_random(mut b: [u8; 16]) -> Self {
        /// Where each byte's two hex digits go in `8-4-4-4-12`.
        const AT: [usize; 16] = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];
        const HEX: &[u8; 16] = b"0123456789abcdef";
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        let mut text = [b'-'; 36];
        for (byte, at) in b.into_iter().zip(AT) {
            text[at] = HEX[usize::from(byte >> 4)];
            text[at + 1] = HEX[usize::from(byte & 0x0f)];
        }
        Self(text)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn as_str(&self) -> &str {
        // Only hex digits and hyphens: always UTF-8.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl Default for RequestId {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Ctx {
    /// A request's context, with a new request id.
    pub fn new(
        host: String,
        remote: Peer,
        https: bool,
        started: Instant,
        start_wall: time::OffsetDateTime,
    ) -> Self {
        Self {
            host,
            remote,
            https,
            request_id: RequestId::new(),
            started,
            start_wall,
            backend_ns: AtomicU64::new(0),
        }
    }

    /// Time since the request came in, and the router's own share of it.
    pub fn times(&self) -> (Duration, Duration) {
        let total = self.started.elapsed();
        let backend = Duration::from_nanos(self.backend_ns.load(Ordering::Relaxed));
        (total, total.saturating_sub(backend))
    }
}

/// The router's request handler.
pub async fn handle(p: Proxy, remote: Peer, https: bool, req: Request<Incoming>) -> Response {
    let started = Instant::now();
    let res = route(&p, remote, https, req, started).await;
    let total = started.elapsed().as_secs_f64();
    p.metrics.response(res.status().as_u16(), total);
    if res.headers().contains_key("x-cf-routererror") {
        // The router answered itself: all of it was router time.
        p.metrics.router_latency.observe(total);
    }
    res
}

/// Whether a request with these headers has no body (so it may be sent again).
pub(crate) fn bodiless(h: &HeaderMap) -> bool {
    !h.contains_key(header::TRANSFER_ENCODING)
        && h.get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_none_or(|v| v.trim() == "0")
}

/// The routing phase both HTTP paths share: the request's host and its route's endpoints.
pub(crate) fn find_route(
    table: &Table,
    headers: &HeaderMap,
    uri: &Uri,
) -> Result<(String, Arc<Pool>), RouterError> {
    let host = request_host(headers, uri).ok_or(RouterError::EmptyHost)?;
    let Some(pool) = table.lookup(&host, uri.path()) else {
        return Err(RouterError::UnknownRoute(host));
    };
    if pool.endpoints.is_empty() {
        return Err(RouterError::NoEndpoints(host));
    }
    Ok((host, pool))
}

/// `X-CF-APP-INSTANCE: <app guid>:<index>` narrows the pool to that instance; a bad header
/// or an unknown instance is a 400.
pub(crate) fn pinned(
    pool: &Pool,
    headers: &HeaderMap,
    host: &str,
) -> Result<Option<Pool>, RouterError> {
    let Some(v) = headers.get(X_CF_APP_INSTANCE).or_else(|| headers.get(X_CF_PROCESS_INSTANCE))
    else {
        return Ok(None);
    };
    let parsed =
        v.to_str().ok().and_then(|v| v.trim().split_once(':')).filter(|(g, i)| {
            !g.is_empty() && !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit())
        });
    let Some((guid, index)) = parsed else {
        return Err(RouterError::InvalidPin);
    };
    let found: Vec<Arc<Endpoint>> =
        pool.endpoints.iter().filter(|e| e.app == guid && e.index == index).cloned().collect();
    if found.is_empty() {
        return Err(RouterError::UnknownInstance {
            index: index.to_owned(),
            guid: guid.to_owned(),
            host: host.to_owned(),
        });
    }
    Ok(Some(Pool { endpoints: found, ..Default::default() }))
}

/// The pinned instance's pool when the request names one, else `pool` itself.
pub(crate) fn narrowed(
    pool: Arc<Pool>,
    headers: &HeaderMap,
    host: &str,
) -> Result<Arc<Pool>, RouterError> {
    Ok(pinned(&pool, headers, host)?.map_or(pool, Arc::new))
}

fn is_websocket<B>(req: &Request<B>) -> bool {
    req.headers()
        .get_all(header::UPGRADE)
        .iter()
        .any(|v| v.to_str().is_ok_and(|v| v.to_ascii_lowercase().contains("websocket")))
}

async fn route(
    p: &Proxy,
    remote: Peer,
    https: bool,
    mut req: Request<Incoming>,
    started: Instant,
) -> Response {
    let start_wall = time::OffsetDateTime::now_utc();
    let table = p.local_table.load();
    let (host, pool) = match find_route(&table, req.headers(), req.uri()) {
        Ok(found) => found,
        Err(e) => return e.response(),
    };
    let websocket = is_websocket(&req);
    let service = match route_service::decide(p, &table, &pool, req.headers(), websocket) {
        Via::App => None,
        Via::Service(url) => Some(url),
        Via::Answer(res) => return res,
    };
    let pool = match narrowed(pool, req.headers(), &host) {
        Ok(pool) => pool,
        Err(e) => return e.response(),
    };
    let sticky = sticky::requested_instance(req.headers());
    let ctx = Ctx::new(host, remote, https, started, start_wall);
    if let Some(url) = service {
        let (parts, body) = req.into_parts();
        return route_service::forward(p, &url, &ctx, &parts, body, &pool).await;
    }
    let mut upgrade = websocket.then(|| hyper::upgrade::on(&mut req));
    let retryable = bodiless(req.headers());
    let (parts, body) = req.into_parts();
    let mut body = Some(body);
    let mut tried: Vec<String> = Vec::new();
    let mut last = NoPick::Exhausted;
    let attempts = MAX_ATTEMPTS.min(pool.endpoints.len());
    for _ in 0..attempts {
        let lease = match p.picker.pick(&pool, &tried, sticky.as_deref()) {
            Ok(l) => l,
            Err(why) => {
                last = why;
                break;
            }
        };
        tried.push(lease.ep.addr.clone());
        let b = match body.take() {
            Some(b) => Body::new(b),
            None if retryable => Body::empty(),
            None => break,
        };
        let ep = lease.ep.clone();
        let mut out = outgoing(&parts.method, &parts.uri, &parts.headers, &ep, &ctx, b);
        if let Some(on) = upgrade.take() {
            let waited = Instant::now();
            let forwarded = websocket::forward(p, out, &parts.headers, lease, on).await;
            let ns = u64::try_from(waited.elapsed().as_nanos()).unwrap_or(u64::MAX);
            ctx.backend_ns.fetch_add(ns, Ordering::Relaxed);
            match forwarded {
                Ok(res) => return finish(p, &parts, &ctx, sticky.as_deref(), &ep, res),
                Err(websocket::Failed::Dial(again)) => {
                    p.picker.bench(&ep.addr);
                    upgrade = Some(again);
                    continue;
                }
                Err(websocket::Failed::Backend) => {
                    p.picker.bench(&ep.addr);
                    break;
                }
            }
        }
        *out.uri_mut() = absolute(&ep.addr, &parts.uri);
        let waited = Instant::now();
        let client = if ep.http2 { &p.h2_client } else { &p.client };
        let res = tokio::time::timeout(p.request_timeout, client.request(out)).await;
        let ns = u64::try_from(waited.elapsed().as_nanos()).unwrap_or(u64::MAX);
        ctx.backend_ns.fetch_add(ns, Ordering::Relaxed);
        match res {
            Ok(Ok(res)) => {
                let res = res.map(|b| Body::new(Leased { inner: b, _lease: lease }));
                return finish(p, &parts, &ctx, sticky.as_deref(), &ep, res);
            }
            Ok(Err(e)) if e.is_connect() => {
                tracing::warn!(backend = %ep.addr, error = %e, "backend connection failed; trying another");
                p.picker.bench(&ep.addr);
            }
            Ok(Err(e)) => {
                tracing::warn!(backend = %ep.addr, error = %e, "backend failed");
                p.picker.bench(&ep.addr);
                break;
            }
            Err(_) => return RouterError::Timeout.response(),
        }
    }
    if tried.is_empty() && last == NoPick::AtLimit {
        p.metrics.backend_exhausted_conns.inc();
        return RouterError::ConnectionLimit(ctx.host).response();
    }
    RouterError::EndpointFailure.response()
}

/// The backend answered: sticky cookie, access log.
fn finish(
    p: &Proxy,
    parts: &axum::http::request::Parts,
    ctx: &Ctx,
    requested: Option<&str>,
    ep: &Endpoint,
    mut res: Response,
) -> Response {
    sticky::add_cookie(res.headers_mut(), &ep.instance_id, requested, false);
    p.metrics.router_latency.observe(ctx.times().1.as_secs_f64());
    let sent = res
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    access::log(p, parts, ctx, ep, res.status(), sent, ctx.times());
    res
}

fn absolute(addr: &str, uri: &Uri) -> Uri {
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    format!("http://{addr}{path}").parse().unwrap_or_else(|_| uri.clone())
}

/// The request to the backend: origin-form URI, hop-by-hop and incoming `X-CF-*` headers
/// dropped, CF's headers set from the endpoint.
pub fn outgoing(
    method: &axum::http::Method,
    uri: &Uri,
    headers: &HeaderMap,
    ep: &Endpoint,
    ctx: &Ctx,
    body: Body,
) -> Request<Body> {
    let mut out = forwarded(method, uri, headers, ctx, body);
    let h = out.headers_mut();
    let set = |h: &mut HeaderMap, k: &'static str, v: &str| {
        if let Ok(v) = HeaderValue::from_str(v) {
            h.insert(HeaderName::from_static(k), v);
        }
    };
    set(h, "x-cf-applicationid", &ep.app);
    set(h, "x-cf-instanceindex", &ep.index);
    set(h, "x-cf-instanceid", &ep.instance_id);
    out
}

/// The request as the router forwards it anywhere (a backend or a route service):
/// origin-form URI, hop-by-hop and incoming `X-CF-*` headers dropped, the forwarding headers
/// set.
pub fn forwarded(
    method: &axum::http::Method,
    uri: &Uri,
    headers: &HeaderMap,
    ctx: &Ctx,
    body: Body,
) -> Request<Body> {
    let mut out = Request::new(body);
    *out.method_mut() = method.clone();
    *out.uri_mut() = uri.path_and_query().map_or_else(
        || Uri::from_static("/"),
        |p| p.as_str().parse().unwrap_or_else(|_| Uri::from_static("/")),
    );
    let h = out.headers_mut();
    h.reserve(headers.len() + 8);
    for (k, v) in headers {
        if !HOP_BY_HOP.contains(&k.as_str()) && !k.as_str().starts_with("x-cf-") {
            h.append(k.clone(), v.clone());
        }
    }
    if !h.contains_key(header::HOST) {
        if let Ok(v) = HeaderValue::from_str(&ctx.host) {
            h.insert(header::HOST, v);
        }
    }
    if wants_trailers(headers) {
        h.insert(header::TE, HeaderValue::from_static("trailers"));
    }
    let xff = match headers.get(X_FORWARDED_FOR).and_then(|v| v.to_str().ok()) {
        Some(prev) => format!("{prev}, {}", ctx.remote.ip),
        None => ctx.remote.ip.to_string(),
    };
    let set = |h: &mut HeaderMap, k: &'static str, v: &str| {
        if let Ok(v) = HeaderValue::from_str(v) {
            h.insert(HeaderName::from_static(k), v);
        }
    };
    set(h, "x-forwarded-for", &xff);
    if !h.contains_key(X_FORWARDED_PROTO) {
        set(h, "x-forwarded-proto", if ctx.https { "https" } else { "http" });
    }
    if !h.contains_key(X_REQUEST_START) {
        let ms = ctx.start_wall.unix_timestamp_nanos() / 1_000_000;
        set(h, "x-request-start", &ms.to_string());
    }
    set(h, "x-vcap-request-id", ctx.request_id.as_str());
    out
}

/// `TE` is hop-by-hop, but `TE: trailers` says the client takes trailers, which gRPC needs
/// end to end: it is passed on (as Go's reverse proxy, under gorouter, does).
pub(crate) fn wants_trailers(h: &HeaderMap) -> bool {
    h.get_all(header::TE).iter().any(says_trailers)
}

/// Whether one `TE` value lists `trailers`.
pub(crate) fn says_trailers(v: &HeaderValue) -> bool {
    v.to_str().is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("trailers")))
}

/// A response body that keeps its endpoint counted as in flight until it is done.
pub struct Leased<B> {
    pub inner: B,
    pub _lease: Lease,
}

impl<B: http_body::Body + Unpin> http_body::Body for Leased<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::RequestId;

    #[test]
    fn request_ids_are_v4_uuids_in_lower_case() {
        let fixed = RequestId::from_random([0xab; 16]);
        assert_eq!(fixed.as_str(), "abababab-abab-4bab-abab-abababababab");
        for _ in 0..1000 {
            let bytes: [u8; 16] = rand::random();
            let id = RequestId::from_random(bytes);
            let parsed = uuid::Uuid::parse_str(id.as_str()).expect("a uuid");
            assert_eq!(parsed.get_version_num(), 4);
            assert_eq!(parsed.get_variant(), uuid::Variant::RFC4122);
            let mut want = [0u8; uuid::fmt::Hyphenated::LENGTH];
            let want = uuid::Builder::from_random_bytes(bytes)
                .into_uuid()
                .hyphenated()
                .encode_lower(&mut want)
                .to_owned();
            assert_eq!(id.as_str(), want);
        }
        assert_ne!(RequestId::new(), RequestId::new());
    }
}
