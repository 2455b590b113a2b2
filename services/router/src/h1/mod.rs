//! The HTTP/1.1 path of the plain listener. Every request head read here passes strict
//! framing rules first (RFC 9112; [`framing`]): a request that could be framed two ways is
//! refused with 400 and its connection closed, and a backend response that could be is a
//! 502 and its backend connection dropped, so no client, backend or pooled connection is
//! ever read out of step. The common request (origin-form target, no upgrade, no `Expect`)
//! is then proxied by one task that owns both sockets, over a per-worker pool of idle
//! backend connections ([`pool`]); heads are rewritten in place and bodies both ways copied
//! as they arrive in their own framing (`Content-Length`, chunked — checked by [`chunked`] —
//! or, for responses, until close), never buffered whole. Anything else — an upgrade,
//! `Expect`, HTTP/1.0, HTTP/2 prior knowledge — hands the connection, with the bytes already
//! read, to hyper for the rest of its life ([`crate::serve`]).
//!
//! Routing, pinning, sticky sessions, endpoint choice, CF's headers, retries, benching,
//! error responses, metrics and the access log are the same code as the hyper path.

mod chunked;
mod framing;
#[cfg(test)]
mod fuzz;
mod pool;
mod request;
mod response;

use std::io;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::http::{self, Method};
use bytes::{Buf as _, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::net::TcpStream;
use tokio_util::sync::WaitForCancellationFuture;

pub use pool::BackendPool;

use crate::errors::{request_host, Origin, RouterError};
use crate::pick::NoPick;
use crate::proxy::{find_route, narrowed, Ctx, Peer, Proxy, MAX_ATTEMPTS};
use crate::table::{Endpoint, Table};
use crate::{sticky, websocket};
use request::{body_start, copy_body, parse_request_into, request_head, Head, Parsed, ReqBody};
use response::{read_response, respond, ReadErr, ResHead};

const BUF: usize = 16 * 1024;
/// After refusing a request or closing, unread bytes from the client are read and dropped
/// this long (at most [`LINGER_BYTES`]) so the answer is not lost to a reset.
const LINGER: Duration = Duration::from_millis(500);
const LINGER_BYTES: usize = 256 * 1024;
/// How long a request sent to a backend may stay unacknowledged before the connection counts
/// as dead (`TCP_USER_TIMEOUT`). A kept connection to an instance whose host was cut off
/// answers nothing and refuses nothing; without this a request sent on it would wait for the
/// client to give up. Disarmed while a request body is sent: an app that does not read its
/// body for a while (a zero window) is not dead.
const ACK_TIMEOUT: Duration = Duration::from_secs(5);

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

/// What to do with the client connection after a request.
enum Next {
    KeepAlive,
    Close,
}

/// How reading the next request head ended.
enum Read {
    Head(Box<Head>),
    Handover,
    Refused(RouterError),
    Closed,
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
    // Kept from request to request for their capacity: the request's fields, the head
    // written to the backend.
    let mut fields = http::HeaderMap::new();
    let mut out = Vec::new();
    // Made once for the connection, not per request: waiting on the drain between requests
    // registers with it once, and the request deadline is moved later (an atomic store) rather
    // than a timer added and removed for every request.
    let cancelled = stop.cancelled();
    tokio::pin!(cancelled);
    let deadline = tokio::time::sleep(p.request_timeout);
    tokio::pin!(deadline);
    loop {
        let head = match read_head(&mut client, &mut buf, &mut fields, cancelled.as_mut()).await {
            Read::Head(h) => h,
            Read::Handover => return Exit::Handover(Prefixed { pre: buf, inner: client }),
            Read::Closed => return Exit::Done,
            Read::Refused(e) => {
                tracing::debug!(remote = %remote.text, error = %e, "request refused");
                let started = Instant::now();
                let mut out = Vec::with_capacity(256);
                e.write_h1(&mut out, false);
                p.metrics.response(e.status().as_u16(), started.elapsed().as_secs_f64());
                if client.write_all(&out).await.is_ok() {
                    linger_close(&mut client, &stop).await;
                }
                return Exit::Done;
            }
        };
        let table = p.local_table.load();
        // A route with a route service or with HTTP/2 endpoints takes the hyper path (rare;
        // it signs, checks signatures and speaks TLS to route services, and HTTP/2).
        if needs_hyper(&table, &head.parts) {
            // The head was taken off the buffer: hyper reads it again, then the rest.
            let mut pre = BytesMut::with_capacity(head.raw.len() + buf.len());
            pre.extend_from_slice(&head.raw);
            pre.extend_from_slice(&buf);
            return Exit::Handover(Prefixed { pre, inner: client });
        }
        let bufs = Bufs {
            buf: &mut buf,
            rbuf: &mut rbuf,
            fields: &mut fields,
            out: &mut out,
            deadline: deadline.as_mut(),
        };
        match one(&p, &table, &mut client, bufs, head, &remote, &stop).await {
            Next::KeepAlive if !stop.is_cancelled() => {}
            _ => {
                linger_close(&mut client, &stop).await;
                return Exit::Done;
            }
        }
    }
}

/// Read until `buf` starts with a complete request head; parsing is tried at once and
/// then only when the bytes read may have ended the head.
async fn read_head(
    client: &mut TcpStream,
    buf: &mut BytesMut,
    fields: &mut http::HeaderMap,
    mut cancelled: Pin<&mut WaitForCancellationFuture<'_>>,
) -> Read {
    let mut tried: Option<usize> = None;
    loop {
        let worth = match tried {
            None => !buf.is_empty(),
            Some(at) => framing::may_end_head(buf, at) || buf.len() >= request::MAX_HEAD,
        };
        if worth {
            match parse_request_into(buf, fields) {
                Parsed::Fast(h) => return Read::Head(h),
                Parsed::Hyper => return Read::Handover,
                Parsed::Refused(e) => return Read::Refused(e),
                Parsed::Partial => tried = Some(buf.len()),
            }
        }
        if buf.capacity() - buf.len() < 1024 {
            buf.reserve(BUF);
        }
        let read = if buf.is_empty() {
            // Idle between requests: a drain closes it at once.
            tokio::select! {
                biased;
                r = client.read_buf(buf) => r,
                () = &mut cancelled => return Read::Closed,
            }
        } else {
            client.read_buf(buf).await
        };
        match read {
            Ok(0) | Err(_) => return Read::Closed,
            Ok(_) => {}
        }
    }
}

/// Close the client connection: stop writing, then read and drop what the client still
/// sends for a moment, so that a reset does not destroy the last answer in flight.
async fn linger_close(client: &mut TcpStream, stop: &kit::Shutdown) {
    if client.shutdown().await.is_err() {
        return;
    }
    let mut scratch = [0u8; 4096];
    let mut dropped = 0;
    let deadline = tokio::time::sleep(LINGER);
    tokio::pin!(deadline);
    while dropped < LINGER_BYTES {
        tokio::select! {
            r = client.read(&mut scratch) => match r {
                Ok(0) | Err(_) => return,
                Ok(n) => dropped += n,
            },
            () = &mut deadline => return,
            () = stop.cancelled() => return,
        }
    }
}

fn needs_hyper(table: &Table, parts: &http::request::Parts) -> bool {
    table.has_special_routes()
        && request_host(&parts.headers, &parts.uri)
            .and_then(|host| table.lookup(&host, parts.uri.path()))
            .is_some_and(|pool| {
                pool.route_service_url.is_some() || pool.endpoints.iter().any(|e| e.http2)
            })
}

/// A connection's buffers, lent to each of its requests.
struct Bufs<'a> {
    /// Bytes read from the client.
    buf: &'a mut BytesMut,
    /// Bytes read from the backend.
    rbuf: &'a mut BytesMut,
    /// The request's fields, handed back after the request (cleared) for the next one.
    fields: &'a mut http::HeaderMap,
    /// The request head written to the backend.
    out: &'a mut Vec<u8>,
    /// When the backend's answer is too late ([`Proxy::request_timeout`] after each attempt).
    deadline: Pin<&'a mut tokio::time::Sleep>,
}

/// Proxy one request whose head was parsed; its body (if any) follows in `buf`/`client`.
async fn one(
    p: &Proxy,
    table: &Table,
    client: &mut TcpStream,
    bufs: Bufs<'_>,
    head: Box<Head>,
    remote: &Peer,
    stop: &kit::Shutdown,
) -> Next {
    let started = Instant::now();
    let Bufs { buf, rbuf, fields, out, deadline } = bufs;
    let req = Req { parts: head.parts, body: head.body, close: head.close };
    let sent = proxy(p, table, client, buf, rbuf, out, deadline, &req, remote, stop, started).await;
    let next = match sent {
        Ok(next) => next,
        Err(e) => own_answer(p, client, &req, e, stop, started).await,
    };
    // Emptied now, not when the next head is parsed: the values share the head's bytes, and
    // with none left the connection's buffer can take its space back.
    *fields = req.parts.headers;
    fields.clear();
    next
}

/// An answer of the router's own. Before a backend was tried the request body was not read,
/// so the connection stays open only if there was none; after, the body may be partly sent
/// and the connection closes.
async fn own_answer(
    p: &Proxy,
    client: &mut TcpStream,
    req: &Req,
    e: RouterError,
    stop: &kit::Shutdown,
    started: Instant,
) -> Next {
    let keep = !req.close && req.body.is_empty() && e.origin() != Origin::Backend;
    let keep = keep && !stop.is_cancelled();
    let mut out = Vec::with_capacity(320);
    e.write_h1(&mut out, keep);
    let total = started.elapsed().as_secs_f64();
    p.metrics.response(e.status().as_u16(), total);
    p.metrics.router_latency.observe(total);
    match client.write_all(&out).await {
        Ok(()) if keep => Next::KeepAlive,
        _ => Next::Close,
    }
}

/// A request the fast path proxies.
struct Req {
    parts: http::request::Parts,
    body: ReqBody,
    /// The client asked to close after it.
    close: bool,
}

/// The request phases after the head: route, pin, choose an endpoint (retrying another
/// when nothing was sent), exchange, respond.
#[allow(clippy::too_many_arguments)]
async fn proxy(
    p: &Proxy,
    table: &Table,
    client: &mut TcpStream,
    buf: &mut BytesMut,
    rbuf: &mut BytesMut,
    out: &mut Vec<u8>,
    mut deadline: Pin<&mut tokio::time::Sleep>,
    req: &Req,
    remote: &Peer,
    stop: &kit::Shutdown,
    started: Instant,
) -> Result<Next, RouterError> {
    let start_wall = time::OffsetDateTime::now_utc();
    let parts = &req.parts;
    let (host, pool) = find_route(table, &parts.headers, &parts.uri)?;
    let pool = narrowed(pool, &parts.headers, &host)?;
    let sticky = sticky::requested_instance(&parts.headers);
    let ctx = Ctx::new(host, remote.clone(), false, started, start_wall);
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
        let waited = tokio::time::Instant::now();
        deadline.as_mut().reset(waited + p.request_timeout);
        let sent = tokio::select! {
            biased;
            r = exchange(p, client, buf, rbuf, out, parts, req.body, ep, &ctx) => Ok(r),
            () = deadline.as_mut() => Err(()),
        };
        let ns = u64::try_from(waited.elapsed().as_nanos()).unwrap_or(u64::MAX);
        ctx.backend_ns.fetch_add(ns, Ordering::Relaxed);
        match sent {
            Ok(Ok((backend, res))) => {
                let keep = !req.close && !stop.is_cancelled();
                let next =
                    respond(p, client, backend, rbuf, res, parts, &ctx, ep, sticky, keep, out)
                        .await;
                drop(lease);
                return Ok(next);
            }
            Ok(Err(Failure::Connect(e))) => {
                tracing::warn!(backend = %ep.addr, error = %e, "backend connection failed; trying another");
                p.picker.bench(&ep.addr);
                tried.push(ep.addr.clone());
                if e.kind() == io::ErrorKind::TimedOut {
                    // No answer at all: the host may be unreachable. This request's next
                    // attempt goes to another host (others are not kept from this one: an
                    // instance whose backlog is full times out on its own).
                    if let Some((host, _)) = ep.addr.rsplit_once(':') {
                        tried.push(host.to_owned());
                    }
                }
            }
            Ok(Err(Failure::Backend(e))) => {
                tracing::warn!(backend = %ep.addr, error = %e, "backend failed");
                p.picker.bench(&ep.addr);
                break;
            }
            Ok(Err(Failure::Client)) => return Ok(Next::Close),
            Ok(Err(Failure::Malformed(why))) => return Err(RouterError::Malformed(why)),
            Err(_) => return Err(RouterError::Timeout),
        }
    }
    if !attempted && last == NoPick::AtLimit {
        p.metrics.backend_exhausted_conns.inc();
        return Err(RouterError::ConnectionLimit(ctx.host));
    }
    Err(RouterError::EndpointFailure)
}

enum Failure {
    /// Nothing reached the backend: another endpoint may be tried.
    Connect(io::Error),
    /// The backend failed after the request (or part of it) was sent, or answered in a way
    /// that cannot be framed.
    Backend(String),
    /// The client went away while its body was copied.
    Client,
    /// The client's chunked body broke its framing (the backend got none of the bad bytes).
    Malformed(&'static str),
}

async fn connect(addr: &str) -> io::Result<TcpStream> {
    let s = tokio::time::timeout(websocket::DIAL_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "dial timeout"))??;
    let _ = s.set_nodelay(true);
    ack_deadline(&s, true);
    Ok(s)
}

/// Arm or disarm [`ACK_TIMEOUT`] on a backend connection.
fn ack_deadline(s: &TcpStream, armed: bool) {
    if let Err(e) = socket2::SockRef::from(s).set_tcp_user_timeout(armed.then_some(ACK_TIMEOUT)) {
        tracing::debug!(error = %e, "TCP_USER_TIMEOUT not set");
    }
}

/// Send the request to `ep` and read the response head (interim 1xx heads are passed on to
/// the client). A pooled connection that turns out closed before any byte of the response
/// is replaced by a fresh one when the request has no body. On any failure the backend
/// connection is dropped, never pooled.
#[allow(clippy::too_many_arguments)]
async fn exchange(
    p: &Proxy,
    client: &mut TcpStream,
    buf: &mut BytesMut,
    rbuf: &mut BytesMut,
    head: &mut Vec<u8>,
    parts: &http::request::Parts,
    body: ReqBody,
    ep: &Endpoint,
    ctx: &Ctx,
) -> Result<(TcpStream, ResHead), Failure> {
    head.clear();
    request_head(head, parts, body, ep, ctx);
    let head_len = head.len();
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
        let (first, rest) = body_start(body, buf)?;
        let wrote = if first > 0 {
            // Appended once; a retry on a fresh connection sends the same bytes.
            head.truncate(head_len);
            head.extend_from_slice(&buf[..first]);
            backend.write_all(head).await
        } else {
            backend.write_all(head).await
        };
        rbuf.clear();
        let read = match wrote {
            Ok(()) => {
                if first > 0 {
                    buf.advance(first);
                }
                if let Some(rest) = rest {
                    ack_deadline(&backend, false);
                    copy_body(client, buf, &mut backend, rest).await?;
                    ack_deadline(&backend, true);
                }
                let head_req = parts.method == Method::HEAD;
                read_response(client, &mut backend, rbuf, head_req, head).await
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
            Err(ReadErr::Unacknowledged(e)) if body.is_empty() => {
                // Nothing of the request reached the instance: its host is gone. Another
                // endpoint takes the request.
                return Err(Failure::Connect(e));
            }
            Err(ReadErr::Unacknowledged(e)) => return Err(Failure::Backend(e.to_string())),
            Err(ReadErr::Closed(_)) if !fresh && body.is_empty() => {
                // A kept connection the backend had closed: the request was not taken.
                fresh = true;
                backend = connect(&ep.addr).await.map_err(Failure::Connect)?;
            }
            Err(ReadErr::Closed(e)) | Err(ReadErr::Bad(e)) => return Err(Failure::Backend(e)),
            Err(ReadErr::Client) => return Err(Failure::Client),
        }
    }
}
