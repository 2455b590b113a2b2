//! One `RTR` access-log envelope per proxied request, in gorouter's format
//! (contracts/runtime.md §2.10), published to the app's log stream by one background task:
//! the request path only queues the line, and drops it (counted) when the queue is full
//! rather than wait.

use axum::http::{header, StatusCode};
use bus::DynBus;
use tokio::sync::mpsc;
use wire::envelope::{Envelope, LogStream};

use crate::proxy::{Ctx, Proxy};
use crate::table::Endpoint;

/// Lines waiting for the bus before new ones are dropped.
const QUEUE: usize = 16_384;
/// How often queued lines are published.
const DRAIN_EVERY: std::time::Duration = std::time::Duration::from_millis(20);

async fn publish(bus: &DynBus, env: &Envelope) {
    if let Ok(body) = serde_json::to_vec(env) {
        if let Err(e) = bus.publish(&env.subject(), body.into()).await {
            tracing::debug!(error = %e, "access log not published");
        }
    }
}

/// The sending side of the access-log queue; cheap to clone.
#[derive(Clone)]
pub struct AccessLog {
    tx: mpsc::Sender<Envelope>,
    dropped: prometheus_client::metrics::counter::Counter,
}

impl AccessLog {
    /// Start the publishing task (it ends when every sender is gone).
    pub fn start(bus: DynBus, dropped: prometheus_client::metrics::counter::Counter) -> Self {
        let (tx, mut rx) = mpsc::channel::<Envelope>(QUEUE);
        kit::spawn_named("router-access-log", async move {
            // The queue is drained on a tick rather than awaited: a waiting receiver would be
            // woken by every request, across threads (the workers run their own event loops).
            let mut tick = tokio::time::interval(DRAIN_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                loop {
                    match rx.try_recv() {
                        Ok(env) => publish(&bus, &env).await,
                        Err(mpsc::error::TryRecvError::Empty) => break,
                        Err(mpsc::error::TryRecvError::Disconnected) => return,
                    }
                }
            }
        });
        Self { tx, dropped }
    }

    fn send(&self, env: Envelope) {
        if self.tx.try_send(env).is_err() {
            self.dropped.inc();
        }
    }
}

/// Publish the access line for a response from `ep` (nothing for endpoints without an app).
pub fn log(
    p: &Proxy,
    req: &axum::http::request::Parts,
    ctx: &Ctx,
    ep: &Endpoint,
    status: StatusCode,
    sent: Option<u64>,
) {
    if ep.app.is_empty() {
        return;
    }
    let headers = &req.headers;
    let get = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).unwrap_or("-").to_owned();
    let received = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).unwrap_or("0");
    let sent = sent.unwrap_or(0);
    let when =
        ctx.start_wall.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
    let (total, own) = ctx.times();
    let (secs, router_secs) = (total.as_secs_f64(), own.as_secs_f64());
    let remote = ctx.remote;
    let xff = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(prev) => format!("{prev}, {}", remote.ip()),
        None => remote.ip().to_string(),
    };
    let proto = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .unwrap_or(if ctx.https { "https" } else { "http" });
    let version = match req.version {
        axum::http::Version::HTTP_2 => "HTTP/2.0",
        axum::http::Version::HTTP_10 => "HTTP/1.0",
        _ => "HTTP/1.1",
    };
    let line = format!(
        "{host} - [{when}] \"{method} {uri} {version}\" {status} {received} {sent} \"{referer}\" \"{ua}\" \"{remote}\" \"{backend}\" \
         x_forwarded_for:\"{xff}\" x_forwarded_proto:\"{proto}\" vcap_request_id:\"{id}\" response_time:{secs:.6} \
         gorouter_time:{router_secs:.6} app_id:\"{app}\" app_index:\"{index}\" instance_id:\"{inst}\" x_cf_routererror:\"-\"",
        host = ctx.host,
        method = req.method,
        uri = req.uri,
        status = status.as_u16(),
        referer = get("referer"),
        ua = get("user-agent"),
        backend = ep.addr,
        id = ctx.request_id,
        app = ep.app,
        index = ep.index,
        inst = ep.instance_id,
    );
    p.access.send(Envelope::log(&ep.app, p.index.to_string(), "RTR", line, LogStream::Out));
}
