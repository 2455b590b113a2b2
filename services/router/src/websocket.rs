//! Websockets: the upgrade request goes to the backend on a fresh connection (no request
//! timeout applies); after the backend's `101 Switching Protocols` both connections are
//! taken over from hyper and their bytes copied both ways until either side closes.

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Request, StatusCode};
use axum::response::Response;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

use crate::pick::Lease;
use crate::proxy::{Leased, Proxy};

/// `endpoint_dial_timeout`, also used for websockets.
pub const DIAL_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a websocket could not be forwarded.
pub enum Failed {
    /// No connection to the backend; nothing was sent, another endpoint may be tried (the
    /// client's upgrade is handed back for that).
    Dial(OnUpgrade),
    /// The backend connection failed after the request was sent.
    Backend,
}

/// Forward the upgrade request `out` (already carrying CF's headers) to the leased endpoint.
pub async fn forward(
    p: &Proxy,
    mut out: Request<Body>,
    incoming: &HeaderMap,
    lease: Lease,
    client: OnUpgrade,
) -> Result<Response, Failed> {
    let h = out.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    for v in incoming.get_all(header::UPGRADE) {
        h.append(header::UPGRADE, v.clone());
    }
    let addr = lease.ep.addr.clone();
    let stream = match tokio::time::timeout(DIAL_TIMEOUT, tokio::net::TcpStream::connect(&addr))
        .await
    {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::warn!(backend = %addr, error = %e, "websocket dial failed; trying another");
            p.metrics.websocket_failures.inc();
            return Err(Failed::Dial(client));
        }
        Err(_) => {
            tracing::warn!(backend = %addr, "websocket dial timed out; trying another");
            p.metrics.websocket_failures.inc();
            return Err(Failed::Dial(client));
        }
    };
    let _ = stream.set_nodelay(true);
    let failed = |e: hyper::Error| {
        tracing::warn!(backend = %addr, error = %e, "websocket backend failed");
        p.metrics.websocket_failures.inc();
        Failed::Backend
    };
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(failed)?;
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    });
    let mut res = sender.send_request(out).await.map_err(failed)?;
    if res.status() != StatusCode::SWITCHING_PROTOCOLS {
        return Ok(res.map(|b| Body::new(Leased { inner: b, _lease: lease })));
    }
    p.metrics.websocket_upgrades.inc();
    let backend = hyper::upgrade::on(&mut res);
    let metrics = p.metrics.clone();
    tokio::spawn(async move {
        let _lease = lease;
        let (c, b) = match tokio::join!(client, backend) {
            (Ok(c), Ok(b)) => (c, b),
            (c, b) => {
                tracing::warn!(client = c.is_ok(), backend = b.is_ok(), "websocket upgrade failed");
                metrics.websocket_failures.inc();
                return;
            }
        };
        let (mut c, mut b) = (TokioIo::new(c), TokioIo::new(b));
        if let Err(e) = tokio::io::copy_bidirectional(&mut c, &mut b).await {
            tracing::debug!(error = %e, "websocket closed");
        }
    });
    let (parts, _) = res.into_parts();
    Ok(Response::from_parts(parts, Body::empty()))
}
