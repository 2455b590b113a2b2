//! The HTTP side every service shares: binding, the operational routes (`/readyz`,
//! `/metrics`, `/healthz`), the request id carried across hops (`X-Vcap-Request-Id`), and
//! serving with a graceful drain bounded by a deadline.

use std::future::IntoFuture as _;
use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tracing::Instrument as _;

use crate::metrics::Metrics;
use crate::ready::Readiness;
use crate::Shutdown;

/// The header CF uses for request ids across components.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-vcap-request-id");

tokio::task_local! {
    static CURRENT_REQUEST_ID: String;
}

/// The request id of the request being handled, if any.
pub fn current_request_id() -> Option<String> {
    CURRENT_REQUEST_ID.try_with(Clone::clone).ok()
}

/// Bind a listener; port 0 picks a free port.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))
}

#[derive(Clone)]
struct Ops {
    ready: Readiness,
    metrics: Metrics,
}

/// `/readyz` (200 only when every check is ready), `/healthz` (alive), `/metrics`.
pub fn ops_routes(ready: Readiness, metrics: Metrics) -> Router {
    Router::new()
        .route("/readyz", get(readyz))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics_text))
        .with_state(Ops { ready, metrics })
}

async fn readyz(State(ops): State<Ops>) -> Response {
    let pending = ops.ready.pending();
    if pending.is_empty() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, format!("waiting for: {}\n", pending.join(", ")))
            .into_response()
    }
}

async fn metrics_text(State(ops): State<Ops>) -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        ops.metrics.encode(),
    )
        .into_response()
}

/// Middleware: take or make the request id, log the request in a span carrying it, and echo
/// it on the response.
pub async fn request_id(req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128)
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let span = tracing::info_span!(
        "http",
        request_id = %id,
        method = %req.method(),
        path = %req.uri().path(),
    );
    let probe = req.uri().path() == "/readyz";
    let started = std::time::Instant::now();
    let mut res =
        CURRENT_REQUEST_ID.scope(id.clone(), next.run(req).instrument(span.clone())).await;
    let status = res.status();
    span.in_scope(|| {
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        if status.is_server_error() && !probe {
            tracing::error!(status = status.as_u16(), ms, "request failed");
        } else {
            tracing::debug!(status = status.as_u16(), ms, "request");
        }
    });
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(REQUEST_ID, v);
    }
    res
}

/// Serve `app` until `shutdown`, then stop accepting and give in-flight requests up to
/// `drain` to finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: Shutdown,
    drain: Duration,
) -> std::io::Result<()> {
    // Requests are served on tasks of their own: carry the span of the service that serves
    // them (its logs are shipped under that component's name), and a request span inside it.
    let service = tracing::Span::current();
    let app = app.layer(axum::middleware::from_fn(request_id)).layer(axum::middleware::from_fn(
        move |req: Request, next: Next| next.run(req).instrument(service.clone()),
    ));
    let signal = shutdown.clone();
    let server = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(async move { signal.cancelled().await });
    let server = std::pin::pin!(server.into_future());
    tokio::select! {
        res = server => res,
        () = async { shutdown.cancelled().await; tokio::time::sleep(drain).await } => {
            tracing::warn!(?drain, "drain deadline passed; closing remaining connections");
            Ok(())
        }
    }
}

/// An HTTP client for calls between services: bounded timeouts, no proxy surprises.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(60))
        .pool_idle_timeout(Duration::from_secs(60))
        .no_proxy()
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

/// Add the current request id to an outgoing request.
pub fn propagate(req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    match current_request_id() {
        Some(id) => req.header(REQUEST_ID.as_str(), id),
        None => req,
    }
}
