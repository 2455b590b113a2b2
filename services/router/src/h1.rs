//! The HTTP/1.1 fast path of the plain listener: the common request (origin-form target, no
//! upgrade, no `Expect`, a body of known length or none) is parsed with `httparse` and
//! proxied by one task that owns both sockets, over a per-worker pool of idle backend
//! connections; response heads are rewritten in place and bodies copied as they arrive
//! (`Content-Length`, chunked or close-delimited), never buffered whole. Anything else — an
//! upgrade, a chunked request body, HTTP/1.0, HTTP/2 prior knowledge, a head that does not
//! parse — hands the connection, with the bytes already read, to hyper for the rest of its
//! life ([`crate::serve`]), which answers exactly as before.
//!
//! Routing, pinning, sticky sessions, endpoint choice, CF's headers, retries, benching,
//! error responses, metrics and the access log are the same code as the hyper path.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::http::{self, header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use bytes::{Buf as _, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::net::TcpStream;

use crate::errors::{error_body, request_host};
use crate::pick::NoPick;
use crate::proxy::{pinned, Ctx, Peer, Proxy, HOP_BY_HOP, MAX_ATTEMPTS};
use crate::table::{Endpoint, Table};
use crate::{access, sticky, websocket};

/// Largest request or response head read here; a bigger request goes to hyper (which
/// answers 431), a bigger response head is a backend failure.
const MAX_HEAD: usize = 64 * 1024;
/// Headers parsed here; a request with more goes to hyper.
const MAX_HEADERS: usize = 64;
/// Idle backend connections kept per backend and worker, and for how long.
const POOL_PER_BACKEND: usize = 100;
const POOL_IDLE: Duration = Duration::from_secs(90);
/// A pooled connection idle longer than this is checked (one non-blocking read) before use:
/// the backend may have closed it.
const POOL_CHECK_AFTER: Duration = Duration::from_millis(500);
const BUF: usize = 16 * 1024;

/// Idle keep-alive connections to backends, for one worker thread.
#[derive(Default)]
pub struct BackendPool {
    idle: Mutex<HashMap<String, Vec<(TcpStream, Instant)>>>,
}

impl BackendPool {
    /// A usable idle connection to `addr`, if one is kept.
    fn take(&self, addr: &str) -> Option<TcpStream> {
        loop {
            let (conn, since) = {
                let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
                idle.get_mut(addr)?.pop()?
            };
            let age = since.elapsed();
            if age > POOL_IDLE {
                continue;
            }
            if age > POOL_CHECK_AFTER {
                let mut probe = [0u8; 1];
                // Data or EOF on an idle connection: it cannot carry a request.
                match conn.try_read(&mut probe) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    _ => continue,
                }
            }
            return Some(conn);
        }
    }

    /// Drop connections idle longer than [`POOL_IDLE`].
    pub fn sweep(&self) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.retain(|_, list| {
            list.retain(|(_, since)| since.elapsed() <= POOL_IDLE);
            !list.is_empty()
        });
    }

    fn put(&self, addr: &str, conn: TcpStream) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        // Looked up before inserted: the key is copied only for a backend's first connection.
        match idle.get_mut(addr) {
            Some(list) if list.len() >= POOL_PER_BACKEND => {}
            Some(list) => list.push((conn, Instant::now())),
            None => {
                idle.insert(addr.to_owned(), vec![(conn, Instant::now())]);
            }
        }
    }
}

/// How a connection left the fast path.
pub enum Exit {
    /// Closed (by the client, an error, or a drain).
    Done,
    /// Not for the fast path: hyper takes the socket and the bytes already read.
    Handover(Prefixed),
}

/// A client socket with bytes already read in front of it.
pub struct Prefixed {
    pre: BytesMut,
    inner: TcpStream,
}

impl AsyncRead for Prefixed {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        if !me.pre.is_empty() {
            let n = me.pre.len().min(buf.remaining());
            buf.put_slice(&me.pre[..n]);
            me.pre.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut me.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Prefixed {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, b)
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        b: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, b)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// A parsed request head the fast path takes.
struct Head {
    parts: http::request::Parts,
    /// Length of the head in the buffer.
    len: usize,
    body: u64,
    close: bool,
}

enum Parsed {
    Fast(Box<Head>),
    Partial,
    /// Valid or not, hyper answers it.
    Hyper,
}

fn parse_request(buf: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => return Parsed::Partial,
        _ => return Parsed::Hyper,
    };
    let (Some(method), Some(path), Some(1)) = (req.method, req.path, req.version) else {
        return Parsed::Hyper;
    };
    if !path.starts_with('/') || method == "CONNECT" {
        return Parsed::Hyper;
    }
    let (Ok(method), Ok(uri)) = (Method::from_bytes(method.as_bytes()), path.parse::<Uri>()) else {
        return Parsed::Hyper;
    };
    let mut map = HeaderMap::with_capacity(req.headers.len() + 8);
    let mut body: Option<u64> = None;
    let mut close = false;
    for h in req.headers.iter() {
        let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(h.name.as_bytes()), HeaderValue::from_bytes(h.value))
        else {
            return Parsed::Hyper;
        };
        if name == header::TRANSFER_ENCODING
            || name == header::UPGRADE
            || name == header::EXPECT
            || (name == header::CONTENT_LENGTH && body.is_some())
        {
            return Parsed::Hyper;
        }
        if name == header::CONTENT_LENGTH {
            match std::str::from_utf8(h.value).ok().and_then(|v| v.trim().parse::<u64>().ok()) {
                Some(n) => body = Some(n),
                None => return Parsed::Hyper,
            }
        }
        if name == header::CONNECTION {
            for token in h.value.split(|b| *b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if token.eq_ignore_ascii_case(b"upgrade") {
                    return Parsed::Hyper;
                }
            }
        }
        map.append(name, value);
    }
    let mut parts = http::Request::new(()).into_parts().0;
    parts.method = method;
    parts.uri = uri;
    parts.version = http::Version::HTTP_11;
    parts.headers = map;
    Parsed::Fast(Box::new(Head { parts, len, body: body.unwrap_or(0), close }))
}

/// Serve one plain-HTTP client connection until it closes, or hand it over.
pub async fn serve_conn(
    p: Proxy,
    mut client: TcpStream,
    remote: Peer,
    stop: kit::Shutdown,
) -> Exit {
    let mut buf = BytesMut::with_capacity(BUF);
    let mut rbuf = BytesMut::with_capacity(BUF);
    loop {
        let head = loop {
            match parse_request(&buf) {
                Parsed::Fast(h) => break h,
                Parsed::Hyper => return Exit::Handover(Prefixed { pre: buf, inner: client }),
                Parsed::Partial => {}
            }
            if buf.capacity() - buf.len() < 1024 {
                buf.reserve(BUF);
            }
            let read = if buf.is_empty() {
                // Idle between requests: a drain closes it at once.
                tokio::select! {
                    r = client.read_buf(&mut buf) => r,
                    () = stop.cancelled() => return Exit::Done,
                }
            } else {
                client.read_buf(&mut buf).await
            };
            match read {
                Ok(0) | Err(_) => return Exit::Done,
                Ok(_) => {}
            }
        };
        let table = p.table.load();
        // A route with a route service or with HTTP/2 endpoints takes the hyper path (rare;
        // it signs, checks signatures and speaks TLS to route services, and HTTP/2).
        if needs_hyper(&table, &head.parts) {
            return Exit::Handover(Prefixed { pre: buf, inner: client });
        }
        buf.advance(head.len);
        match one(&p, &table, &mut client, &mut buf, &mut rbuf, head, &remote, &stop).await {
            Next::KeepAlive if !stop.is_cancelled() => {}
            _ => {
                let _ = client.shutdown().await;
                return Exit::Done;
            }
        }
    }
}

enum Next {
    KeepAlive,
    Close,
}

fn needs_hyper(table: &Table, parts: &http::request::Parts) -> bool {
    table.has_special_routes()
        && request_host(&parts.headers, &parts.uri)
            .and_then(|host| table.lookup(&host, parts.uri.path()))
            .is_some_and(|pool| {
                pool.route_service_url.is_some() || pool.endpoints.iter().any(|e| e.http2)
            })
}

/// Proxy one request whose head was parsed; its body (if any) follows in `buf`/`client`.
#[allow(clippy::too_many_arguments)]
async fn one(
    p: &Proxy,
    table: &Table,
    client: &mut TcpStream,
    buf: &mut BytesMut,
    rbuf: &mut BytesMut,
    head: Box<Head>,
    remote: &Peer,
    stop: &kit::Shutdown,
) -> Next {
    let started = Instant::now();
    let start_wall = time::OffsetDateTime::now_utc();
    let Head { parts, body, close, .. } = *head;
    // An answer of the router's own: the request body is not read, so the connection closes
    // unless there was none.
    let reject = |status: StatusCode, kind: &'static str, message: String| {
        let keep = !close && body == 0;
        (status, kind, message, keep)
    };
    let answer = 'route: {
        let Some(host) = request_host(&parts.headers, &parts.uri) else {
            break 'route reject(
                StatusCode::BAD_REQUEST,
                "empty_host",
                "Request had empty Host header".into(),
            );
        };
        let Some(mut pool) = table.lookup(&host, parts.uri.path()) else {
            break 'route reject(
                StatusCode::NOT_FOUND,
                "unknown_route",
                format!("Requested route ('{host}') does not exist."),
            );
        };
        if pool.endpoints.is_empty() {
            break 'route reject(
                StatusCode::SERVICE_UNAVAILABLE,
                "no_endpoints",
                format!("Requested route ('{host}') has no available endpoints."),
            );
        }
        match pinned(&pool, &parts.headers, &host) {
            Ok(Some(only)) => pool = Arc::new(only),
            Ok(None) => {}
            Err((kind, message)) => break 'route reject(StatusCode::BAD_REQUEST, kind, message),
        }
        let sticky = sticky::requested_instance(&parts.headers);
        let ctx = Ctx {
            host,
            remote: remote.clone(),
            https: false,
            request_id: uuid::Builder::from_random_bytes(rand::random()).into_uuid().to_string(),
            started,
            start_wall,
            backend_ns: AtomicU64::new(0),
        };
        // Endpoints tried and failed (allocated only when one fails).
        let mut tried: Vec<String> = Vec::new();
        let mut attempted = false;
        let mut last = NoPick::Exhausted;
        for _ in 0..MAX_ATTEMPTS.min(pool.endpoints.len()) {
            let lease = match p.picker.pick(&pool, &tried, sticky.as_deref()) {
                Ok(l) => l,
                Err(why) => {
                    last = why;
                    break;
                }
            };
            let ep = &*lease.ep;
            attempted = true;
            let waited = Instant::now();
            let sent = tokio::time::timeout(
                p.request_timeout,
                exchange(p, client, buf, rbuf, &parts, body, ep, &ctx),
            )
            .await;
            let ns = u64::try_from(waited.elapsed().as_nanos()).unwrap_or(u64::MAX);
            ctx.backend_ns.fetch_add(ns, Ordering::Relaxed);
            match sent {
                Ok(Ok((backend, res))) => {
                    let keep = !close && !stop.is_cancelled();
                    let next =
                        respond(p, client, backend, rbuf, res, &parts, &ctx, ep, sticky, keep)
                            .await;
                    drop(lease);
                    return next;
                }
                Ok(Err(Failure::Connect(e))) => {
                    tracing::warn!(backend = %ep.addr, error = %e, "backend connection failed; trying another");
                    p.picker.bench(&ep.addr);
                    tried.push(ep.addr.clone());
                }
                Ok(Err(Failure::Backend(e))) => {
                    tracing::warn!(backend = %ep.addr, error = %e, "backend failed");
                    p.picker.bench(&ep.addr);
                    break;
                }
                Ok(Err(Failure::Client)) => return Next::Close,
                Err(_) => {
                    break 'route (
                        StatusCode::GATEWAY_TIMEOUT,
                        "endpoint_failure (request timeout)",
                        "Request timed out.".to_owned(),
                        false,
                    );
                }
            }
        }
        if !attempted && last == NoPick::AtLimit {
            p.metrics.backend_exhausted_conns.inc();
            break 'route (
                StatusCode::SERVICE_UNAVAILABLE,
                "Connection Limit Reached",
                format!("Requested route ('{}') has reached the connection limit.", ctx.host),
                false,
            );
        }
        // The body may be partly sent: the connection cannot carry another request.
        (
            StatusCode::BAD_GATEWAY,
            "endpoint_failure",
            "Registered endpoint failed to handle the request.".to_owned(),
            false,
        )
    };
    let (status, kind, message, keep) = answer;
    let keep = keep && !stop.is_cancelled();
    let body = error_body(status, &message);
    let mut out = Vec::with_capacity(256 + body.len());
    out.extend_from_slice(
        format!(
            "HTTP/1.1 {} {}\r\ncontent-type: text/plain; charset=utf-8\r\nx-cf-routererror: {kind}\r\ncontent-length: {}\r\n{}\r\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or(""),
            body.len(),
            if keep { "" } else { "connection: close\r\n" },
        )
        .as_bytes(),
    );
    out.extend_from_slice(body.as_bytes());
    let total = started.elapsed().as_secs_f64();
    p.metrics.response(status.as_u16(), total);
    p.metrics.router_latency.observe(total);
    match client.write_all(&out).await {
        Ok(()) if keep => Next::KeepAlive,
        _ => Next::Close,
    }
}

enum Failure {
    /// Nothing reached the backend: another endpoint may be tried.
    Connect(io::Error),
    /// The backend failed after the request (or part of it) was sent.
    Backend(String),
    /// The client went away while its body was copied.
    Client,
}

/// A response head from the backend.
struct ResHead {
    status: u16,
    /// The head as the client gets it (without the final CRLF).
    head: Vec<u8>,
    framing: Framing,
    /// Whether the backend connection may carry another request afterwards.
    reusable: bool,
    sent: Option<u64>,
    set_cookies: Vec<HeaderValue>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    None,
    Length(u64),
    Chunked,
    /// Until the backend closes.
    Close,
}

async fn connect(addr: &str) -> io::Result<TcpStream> {
    let s = tokio::time::timeout(websocket::DIAL_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "dial timeout"))??;
    let _ = s.set_nodelay(true);
    Ok(s)
}

#[allow(clippy::too_many_arguments)]
/// Send the request to `ep` and read the response head (interim 1xx heads are passed on to
/// the client). A pooled connection that turns out closed before any byte of the response
/// is replaced by a fresh one when the request has no body.
async fn exchange(
    p: &Proxy,
    client: &mut TcpStream,
    buf: &mut BytesMut,
    rbuf: &mut BytesMut,
    parts: &http::request::Parts,
    body: u64,
    ep: &Endpoint,
    ctx: &Ctx,
) -> Result<(TcpStream, ResHead), Failure> {
    let mut head = Vec::with_capacity(512);
    request_head(&mut head, parts, ep, ctx);
    let mut fresh = false;
    let mut backend = match p.pool.take(&ep.addr) {
        Some(c) => c,
        None => {
            fresh = true;
            connect(&ep.addr).await.map_err(Failure::Connect)?
        }
    };
    loop {
        // Head and what of the body is already here in one write.
        let first = usize::try_from(body).unwrap_or(usize::MAX).min(buf.len());
        let wrote = if first > 0 {
            let mut w = head.clone();
            w.extend_from_slice(&buf[..first]);
            backend.write_all(&w).await
        } else {
            backend.write_all(&head).await
        };
        rbuf.clear();
        let read = match wrote {
            Ok(()) => {
                if first > 0 {
                    buf.advance(first);
                }
                copy_body(client, buf, &mut backend, body - first as u64).await?;
                read_response(client, &mut backend, rbuf, parts.method == Method::HEAD).await
            }
            Err(e) if !fresh => {
                // A kept connection the backend had closed: nothing of the request was taken
                // from the client yet, so a fresh connection carries it.
                tracing::debug!(backend = %ep.addr, error = %e, "kept backend connection closed");
                fresh = true;
                backend = connect(&ep.addr).await.map_err(Failure::Connect)?;
                continue;
            }
            Err(e) => Err(ReadErr::Closed(e.to_string())),
        };
        match read {
            Ok(res) => return Ok((backend, res)),
            Err(ReadErr::Closed(_)) if !fresh && body == 0 => {
                // A kept connection the backend had closed: the request was not taken.
                fresh = true;
                backend = connect(&ep.addr).await.map_err(Failure::Connect)?;
            }
            Err(ReadErr::Closed(e)) | Err(ReadErr::Bad(e)) => return Err(Failure::Backend(e)),
            Err(ReadErr::Client) => return Err(Failure::Client),
        }
    }
}

/// The request head for the backend: what [`outgoing`] makes for the hyper path (origin-form
/// target, hop-by-hop and incoming `X-CF-*` headers dropped, CF's headers set), written
/// straight into `out`.
fn request_head(out: &mut Vec<u8>, parts: &http::request::Parts, ep: &Endpoint, ctx: &Ctx) {
    let line = |out: &mut Vec<u8>, k: &[u8], v: &[u8]| {
        out.extend_from_slice(k);
        out.extend_from_slice(b": ");
        out.extend_from_slice(v);
        out.extend_from_slice(b"\r\n");
    };
    out.extend_from_slice(parts.method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(parts.uri.path_and_query().map_or("/", |q| q.as_str()).as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let h = &parts.headers;
    for (k, v) in h {
        let name = k.as_str();
        if HOP_BY_HOP.contains(&name)
            || name.starts_with("x-cf-")
            || name == "x-forwarded-for"
            || name == "x-vcap-request-id"
        {
            continue;
        }
        line(out, name.as_bytes(), v.as_bytes());
    }
    if !h.contains_key(header::HOST) {
        line(out, b"host", ctx.host.as_bytes());
    }
    if crate::proxy::wants_trailers(h) {
        line(out, b"te", b"trailers");
    }
    let ip = &ctx.remote.ip;
    match h.get("x-forwarded-for") {
        Some(prev) => {
            out.extend_from_slice(b"x-forwarded-for: ");
            out.extend_from_slice(prev.as_bytes());
            out.extend_from_slice(b", ");
            out.extend_from_slice(ip.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        None => line(out, b"x-forwarded-for", ip.as_bytes()),
    }
    if !h.contains_key("x-forwarded-proto") {
        line(out, b"x-forwarded-proto", if ctx.https { b"https" } else { b"http" });
    }
    if !h.contains_key("x-request-start") {
        let ms = ctx.start_wall.unix_timestamp_nanos() / 1_000_000;
        line(out, b"x-request-start", ms.to_string().as_bytes());
    }
    line(out, b"x-vcap-request-id", ctx.request_id.as_bytes());
    line(out, b"x-cf-applicationid", ep.app.as_bytes());
    line(out, b"x-cf-instanceindex", ep.index.as_bytes());
    line(out, b"x-cf-instanceid", ep.instance_id.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Copy `left` more request-body bytes from the client to the backend.
async fn copy_body(
    client: &mut TcpStream,
    buf: &mut BytesMut,
    backend: &mut TcpStream,
    mut left: u64,
) -> Result<(), Failure> {
    while left > 0 {
        buf.clear();
        if buf.capacity() < BUF {
            buf.reserve(BUF);
        }
        let n = match client.read_buf(buf).await {
            Ok(0) | Err(_) => return Err(Failure::Client),
            Ok(n) => n,
        };
        let take = usize::try_from(left).unwrap_or(usize::MAX).min(n);
        backend
            .write_all(&buf[..take])
            .await
            .map_err(|e| Failure::Backend(format!("sending the request body: {e}")))?;
        buf.advance(take);
        left -= take as u64;
    }
    Ok(())
}

enum ReadErr {
    /// The connection closed (or failed) before a response head.
    Closed(String),
    /// Not a valid HTTP/1.x response.
    Bad(String),
    Client,
}

async fn read_response(
    client: &mut TcpStream,
    backend: &mut TcpStream,
    rbuf: &mut BytesMut,
    head_request: bool,
) -> Result<ResHead, ReadErr> {
    loop {
        if let Some(res) = parse_response(rbuf, head_request)? {
            if (100..200).contains(&res.status) {
                // 1xx interim (not 101, refused in parsing): pass on and read on.
                let mut h = res.head;
                h.extend_from_slice(b"\r\n");
                client.write_all(&h).await.map_err(|_| ReadErr::Client)?;
                continue;
            }
            return Ok(res);
        }
        if rbuf.len() >= MAX_HEAD {
            return Err(ReadErr::Bad("response head too large".into()));
        }
        if rbuf.capacity() - rbuf.len() < 1024 {
            rbuf.reserve(BUF);
        }
        match backend.read_buf(rbuf).await {
            Ok(0) => return Err(ReadErr::Closed("connection closed before a response".into())),
            Err(e) => return Err(ReadErr::Closed(e.to_string())),
            Ok(_) => {}
        }
    }
}

/// Parse (and consume) a complete response head at the start of `rbuf`.
fn parse_response(rbuf: &mut BytesMut, head_request: bool) -> Result<Option<ResHead>, ReadErr> {
    let mut headers = [httparse::EMPTY_HEADER; 100];
    let mut res = httparse::Response::new(&mut headers);
    let len = match res.parse(rbuf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(ReadErr::Bad(format!("invalid response: {e}"))),
    };
    let status = res.code.unwrap_or(0);
    if status == 101 || !(100..=999).contains(&status) {
        return Err(ReadErr::Bad(format!("unexpected status {status}")));
    }
    let version = res.version.unwrap_or(1);
    let mut head = Vec::with_capacity(len + 64);
    head.extend_from_slice(b"HTTP/1.1 ");
    head.extend_from_slice(&itoa3(status));
    head.push(b' ');
    head.extend_from_slice(res.reason.unwrap_or("").as_bytes());
    head.extend_from_slice(b"\r\n");
    let mut length: Option<u64> = None;
    let mut chunked = false;
    let mut keep_alive = version == 1;
    let mut listed: Vec<&[u8]> = Vec::new();
    for h in res.headers.iter() {
        if h.name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|b| *b == b',').map(<[u8]>::trim_ascii) {
                if token.eq_ignore_ascii_case(b"close") {
                    keep_alive = false;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    keep_alive = true;
                } else if !token.is_empty() {
                    listed.push(token);
                }
            }
        }
    }
    let mut set_cookies = Vec::new();
    for h in res.headers.iter() {
        let name = h.name;
        if ["connection", "keep-alive", "proxy-connection"]
            .iter()
            .any(|n| name.eq_ignore_ascii_case(n))
            || listed.iter().any(|l| l.eq_ignore_ascii_case(name.as_bytes()))
        {
            continue;
        }
        if name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(h.value).ok().and_then(|v| v.trim().parse::<u64>().ok());
            match (n, length) {
                (Some(n), None) => length = Some(n),
                (Some(n), Some(m)) if n == m => continue,
                _ => return Err(ReadErr::Bad("invalid content-length".into())),
            }
        }
        if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = h
                .value
                .rsplit(|b| *b == b',')
                .next()
                .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
            if !chunked {
                return Err(ReadErr::Bad("unsupported transfer-encoding".into()));
            }
        }
        if name.eq_ignore_ascii_case("set-cookie") {
            if let Ok(v) = HeaderValue::from_bytes(h.value) {
                set_cookies.push(v);
            }
        }
        head.extend_from_slice(name.as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(h.value);
        head.extend_from_slice(b"\r\n");
    }
    let framing = if head_request || status < 200 || status == 204 || status == 304 {
        Framing::None
    } else if chunked {
        Framing::Chunked
    } else if let Some(n) = length {
        Framing::Length(n)
    } else {
        Framing::Close
    };
    let sent = match framing {
        Framing::Length(n) => Some(n),
        _ => length,
    };
    rbuf.advance(len);
    Ok(Some(ResHead {
        status,
        head,
        framing,
        reusable: keep_alive && framing != Framing::Close,
        sent,
        set_cookies,
    }))
}

/// A status code (100..=999) as its three digits.
fn itoa3(n: u16) -> [u8; 3] {
    [b'0' + (n / 100 % 10) as u8, b'0' + (n / 10 % 10) as u8, b'0' + (n % 10) as u8]
}

/// Write the response to the client: head (with the sticky cookie), then the body as it
/// comes; the backend connection goes back to the pool when it can carry another request.
#[allow(clippy::too_many_arguments)]
async fn respond(
    p: &Proxy,
    client: &mut TcpStream,
    backend: TcpStream,
    rbuf: &mut BytesMut,
    res: ResHead,
    parts: &http::request::Parts,
    ctx: &Ctx,
    ep: &Endpoint,
    sticky: Option<String>,
    keep: bool,
) -> Next {
    let mut head = res.head;
    if !res.set_cookies.is_empty() || sticky.is_some() {
        let mut cookies = HeaderMap::new();
        for v in &res.set_cookies {
            cookies.append(header::SET_COOKIE, v.clone());
        }
        let before = cookies.len();
        sticky::add_cookie(&mut cookies, &ep.instance_id, sticky.as_deref(), false);
        for v in cookies.get_all(header::SET_COOKIE).iter().skip(before) {
            head.extend_from_slice(b"set-cookie: ");
            head.extend_from_slice(v.as_bytes());
            head.extend_from_slice(b"\r\n");
        }
    }
    let keep = keep && res.framing != Framing::Close;
    if !keep {
        head.extend_from_slice(b"connection: close\r\n");
    }
    head.extend_from_slice(b"\r\n");
    let status = StatusCode::from_u16(res.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let (total, own) = ctx.times();
    p.metrics.response(res.status, total.as_secs_f64());
    p.metrics.router_latency.observe(own.as_secs_f64());
    access::log(p, parts, ctx, ep, status, res.sent);
    // Body bytes that came with the head go out in the same write.
    let (end, rest) = match res.framing {
        Framing::None => (0, None),
        Framing::Length(n) => {
            let have = usize::try_from(n).unwrap_or(usize::MAX).min(rbuf.len());
            (have, ((have as u64) < n).then(|| Body::Length(n - have as u64)))
        }
        Framing::Chunked => {
            let mut scan = Chunks::default();
            match scan.feed(rbuf) {
                Some(end) => (end, None),
                None => (rbuf.len(), Some(Body::Chunked(scan))),
            }
        }
        Framing::Close => (rbuf.len(), Some(Body::UntilClose)),
    };
    head.extend_from_slice(&rbuf[..end]);
    rbuf.advance(end);
    if client.write_all(&head).await.is_err() {
        return Next::Close;
    }
    let Some(rest) = rest else {
        if res.reusable && rbuf.is_empty() {
            p.pool.put(&ep.addr, backend);
        }
        return if keep { Next::KeepAlive } else { Next::Close };
    };
    match finish_body(client, backend, rbuf, rest, p, ep, res.reusable).await {
        Next::KeepAlive if keep => Next::KeepAlive,
        _ => Next::Close,
    }
}

enum Body {
    Length(u64),
    Chunked(Chunks),
    UntilClose,
}

/// Copy the rest of a response body; `KeepAlive` when it ended cleanly (the backend
/// connection pooled when `reusable`).
async fn finish_body(
    client: &mut TcpStream,
    mut backend: TcpStream,
    rbuf: &mut BytesMut,
    mut body: Body,
    p: &Proxy,
    ep: &Endpoint,
    reusable: bool,
) -> Next {
    loop {
        rbuf.clear();
        if rbuf.capacity() < BUF {
            rbuf.reserve(BUF);
        }
        let n = match backend.read_buf(rbuf).await {
            Ok(0) => return Next::Close,
            Ok(n) => n,
            Err(_) => return Next::Close,
        };
        let (take, done) = match &mut body {
            Body::Length(left) => {
                let take = usize::try_from(*left).unwrap_or(usize::MAX).min(n);
                *left -= take as u64;
                (take, *left == 0)
            }
            Body::Chunked(scan) => match scan.feed(rbuf) {
                Some(end) => (end, true),
                None => (n, false),
            },
            Body::UntilClose => (n, false),
        };
        if client.write_all(&rbuf[..take]).await.is_err() {
            return Next::Close;
        }
        if done {
            if reusable && take == n {
                p.pool.put(&ep.addr, backend);
            }
            return Next::KeepAlive;
        }
    }
}

/// Finds the end of a chunked body (RFC 9112 §7.1) in the bytes fed to it, across reads.
#[derive(Debug, Default)]
struct Chunks {
    state: ChunkState,
    size: u64,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    #[default]
    Size,
    /// Chunk extension up to the line end.
    Ext,
    SizeLf,
    Data,
    DataCr,
    DataLf,
    /// At the start of a trailer line (or the final empty line).
    TrailerStart,
    Trailer,
    TrailerLf,
    EndLf,
    Done,
}

impl Chunks {
    /// Feed the next bytes; `Some(n)` when the body ends after `n` of them.
    fn feed(&mut self, data: &[u8]) -> Option<usize> {
        use ChunkState::*;
        let mut i = 0;
        while i < data.len() {
            let b = data[i];
            match self.state {
                Size => match b {
                    b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                        let d = (b as char).to_digit(16).unwrap_or(0) as u64;
                        self.size = self.size.saturating_mul(16).saturating_add(d);
                    }
                    b';' | b' ' | b'\t' => self.state = Ext,
                    b'\r' => self.state = SizeLf,
                    _ => self.state = Ext,
                },
                Ext => {
                    if b == b'\r' {
                        self.state = SizeLf;
                    }
                }
                SizeLf => {
                    self.state = if self.size == 0 { TrailerStart } else { Data };
                }
                Data => {
                    let take = usize::try_from(self.size).unwrap_or(usize::MAX).min(data.len() - i);
                    self.size -= take as u64;
                    i += take;
                    if self.size == 0 {
                        self.state = DataCr;
                    }
                    continue;
                }
                DataCr => self.state = DataLf,
                DataLf => {
                    self.state = Size;
                    self.size = 0;
                }
                TrailerStart => {
                    self.state = if b == b'\r' { EndLf } else { Trailer };
                }
                Trailer => {
                    if b == b'\r' {
                        self.state = TrailerLf;
                    }
                }
                TrailerLf => self.state = TrailerStart,
                EndLf => {
                    self.state = Done;
                    return Some(i + 1);
                }
                Done => return Some(i),
            }
            i += 1;
        }
        (self.state == Done).then_some(data.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies_end_where_they_end_whatever_the_reads() {
        let body = b"4\r\nWiki\r\n5;ext=1\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-Trailer: 1\r\n\r\n";
        let mut with_next = body.to_vec();
        with_next.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
        assert_eq!(Chunks::default().feed(&with_next), Some(body.len()));
        for split in 1..body.len() {
            let mut c = Chunks::default();
            assert_eq!(c.feed(&body[..split]), None, "split at {split}");
            assert_eq!(c.feed(&body[split..]), Some(body.len() - split), "split at {split}");
        }
        let mut c = Chunks::default();
        let ends: Vec<Option<usize>> = b"0\r\n\r\n".chunks(1).map(|b| c.feed(b)).collect();
        assert_eq!(ends, vec![None, None, None, None, Some(1)]);
    }

    #[test]
    fn simple_requests_take_the_fast_path_and_the_rest_goes_to_hyper() {
        let fast = |raw: &[u8]| matches!(parse_request(raw), Parsed::Fast(_));
        let hyper = |raw: &[u8]| matches!(parse_request(raw), Parsed::Hyper);
        assert!(fast(b"GET /a?b=1 HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert!(fast(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"));
        assert!(matches!(parse_request(b"GET / HTTP/1.1\r\nHost: x\r\n"), Parsed::Partial));
        assert!(hyper(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n"));
        assert!(hyper(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"));
        assert!(hyper(b"GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert!(hyper(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"));
        assert!(hyper(
            b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
        ));
        assert!(hyper(
            b"PUT / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n"
        ));
        assert!(hyper(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"
        ));
        assert!(hyper(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n"));
        assert!(hyper(b"garbage\r\n\r\n"));
        let Parsed::Fast(h) =
            parse_request(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, close\r\n\r\n")
        else {
            panic!("fast");
        };
        assert!(h.close);
    }

    #[test]
    fn the_fast_path_sends_the_headers_the_hyper_path_sends() {
        let raw = b"GET /p?q=1 HTTP/1.1\r\nHost: a.apps.localhost\r\nUser-Agent: t\r\n\
            X-Forwarded-For: 10.0.0.1\r\nX-CF-InstanceID: spoofed\r\nX-Vcap-Request-Id: old\r\n\
            TE: trailers\r\nConnection: keep-alive\r\nX-Request-Start: 1\r\nCookie: a=1\r\n\r\n";
        let Parsed::Fast(head) = parse_request(raw) else { panic!("fast") };
        let ep = Endpoint {
            addr: "127.0.0.1:1".into(),
            app: "app-guid".into(),
            instance_id: "inst".into(),
            index: "2".into(),
            updated: Instant::now(),
            ttl: Duration::from_secs(120),
            least_connection: false,
            route_service_url: None,
            http2: false,
            zone: None,
            inflight: Default::default(),
        };
        let ctx = Ctx {
            host: "a.apps.localhost".into(),
            remote: Peer::new("192.0.2.7:4000".parse().expect("addr")),
            https: false,
            request_id: "req-id".into(),
            started: Instant::now(),
            start_wall: time::OffsetDateTime::now_utc(),
            backend_ns: AtomicU64::new(0),
        };
        let p = &head.parts;
        let hyper = crate::proxy::outgoing(
            &p.method,
            &p.uri,
            &p.headers,
            &ep,
            &ctx,
            axum::body::Body::empty(),
        );
        let mut want: Vec<(String, String)> = hyper
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().expect("ascii").to_owned()))
            .collect();
        want.sort();
        let mut out = Vec::new();
        request_head(&mut out, p, &ep, &ctx);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        assert!(req.parse(&out).expect("parses").is_complete());
        assert_eq!(
            (req.method, req.path),
            (Some("GET"), hyper.uri().path_and_query().map(|q| q.as_str()))
        );
        let mut got: Vec<(String, String)> = req
            .headers
            .iter()
            .map(|h| (h.name.to_owned(), String::from_utf8_lossy(h.value).into_owned()))
            .collect();
        got.sort();
        assert_eq!(got, want);
        assert!(got.contains(&("x-forwarded-for".into(), "10.0.0.1, 192.0.2.7".into())));
        assert!(got.contains(&("x-cf-instanceid".into(), "inst".into())));
    }

    #[test]
    fn response_heads_lose_hop_by_hop_headers_and_say_how_the_body_ends() {
        let mut b = BytesMut::from(
            &b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\nSet-Cookie: JSESSIONID=a\r\n\r\nhiNEXT"[..],
        );
        let Ok(Some(r)) = parse_response(&mut b, false) else { panic!("parsed") };
        assert_eq!(r.framing, Framing::Length(2));
        assert!(r.reusable);
        assert_eq!(&b[..], b"hiNEXT");
        let head = String::from_utf8(r.head).expect("utf8");
        assert_eq!(head, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nSet-Cookie: JSESSIONID=a\r\n");
        assert_eq!(r.set_cookies.len(), 1);

        let mut b = BytesMut::from(&b"HTTP/1.0 200 OK\r\n\r\nbody"[..]);
        let Ok(Some(r)) = parse_response(&mut b, false) else { panic!("parsed") };
        assert_eq!((r.framing, r.reusable), (Framing::Close, false));
        let mut b = BytesMut::from(&b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n"[..]);
        let Ok(Some(r)) = parse_response(&mut b, true) else { panic!("parsed") };
        assert_eq!((r.framing, r.sent), (Framing::None, Some(9)));
        let mut b = BytesMut::from(&b"HTTP/1.1 204 No Content\r\n\r\n"[..]);
        assert!(matches!(
            parse_response(&mut b, false),
            Ok(Some(ResHead { framing: Framing::None, .. }))
        ));
        let mut b = BytesMut::from(&b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"[..]);
        assert!(matches!(
            parse_response(&mut b, false),
            Ok(Some(ResHead { framing: Framing::Chunked, .. }))
        ));
        let mut b = BytesMut::from(
            &b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"[..],
        );
        assert!(matches!(parse_response(&mut b, false), Err(ReadErr::Bad(_))));
        let mut b = BytesMut::from(&b"HTTP/1.1 200 OK\r\nContent-"[..]);
        assert!(matches!(parse_response(&mut b, false), Ok(None)));
    }
}
