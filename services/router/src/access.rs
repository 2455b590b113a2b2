//! One `RTR` access-log envelope per proxied request, in gorouter's format
//! (contracts/runtime.md §2.10), published to the app's log stream by one background task:
//! the request path only writes the line and queues it, and drops it (counted) when the
//! queue is full rather than wait; the envelope (base64 payload, JSON) is made by the
//! publisher, off the request path.

use std::fmt::Write as _;

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

/// One access line waiting for the publisher.
struct Line {
    app: String,
    index: u32,
    line: String,
    timestamp: i64,
}

/// The sending side of the access-log queue; cheap to clone.
#[derive(Clone)]
pub struct AccessLog {
    tx: mpsc::Sender<Line>,
    dropped: prometheus_client::metrics::counter::Counter,
}

impl AccessLog {
    /// Start the publishing task (it ends when every sender is gone).
    pub fn start(bus: DynBus, dropped: prometheus_client::metrics::counter::Counter) -> Self {
        let (tx, mut rx) = mpsc::channel::<Line>(QUEUE);
        kit::spawn_named("router-access-log", async move {
            // The queue is drained on a tick rather than awaited: a waiting receiver would be
            // woken by every request, across threads (the workers run their own event loops).
            let mut tick = tokio::time::interval(DRAIN_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                loop {
                    match rx.try_recv() {
                        Ok(l) => {
                            let mut env = Envelope::log(
                                l.app,
                                l.index.to_string(),
                                "RTR",
                                l.line,
                                LogStream::Out,
                            );
                            env.timestamp = l.timestamp;
                            publish(&bus, &env).await;
                        }
                        Err(mpsc::error::TryRecvError::Empty) => break,
                        Err(mpsc::error::TryRecvError::Disconnected) => return,
                    }
                }
            }
        });
        Self { tx, dropped }
    }

    fn send(&self, line: Line) {
        if self.tx.try_send(line).is_err() {
            self.dropped.inc();
        }
    }
}

/// `2006-01-02T15:04:05.000000000Z`: the request's start in UTC, as gorouter writes it.
fn rfc3339(t: time::OffsetDateTime, out: &mut String) {
    let t = t.to_offset(time::UtcOffset::UTC);
    let _ = write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.nanosecond()
    );
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
    let get = |k: header::HeaderName| headers.get(k).and_then(|v| v.to_str().ok()).unwrap_or("-");
    let received = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).unwrap_or("0");
    let (total, own) = ctx.times();
    let remote = ctx.remote;
    let proto = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .unwrap_or(if ctx.https { "https" } else { "http" });
    let version = match req.version {
        axum::http::Version::HTTP_2 => "HTTP/2.0",
        axum::http::Version::HTTP_10 => "HTTP/1.0",
        _ => "HTTP/1.1",
    };
    let mut line = String::with_capacity(512);
    line.push_str(&ctx.host);
    line.push_str(" - [");
    rfc3339(ctx.start_wall, &mut line);
    let _ = write!(
        line,
        "] \"{} {} {version}\" {} {received} {} \"{}\" \"{}\" \"{remote}\" \"{}\" x_forwarded_for:\"",
        req.method,
        req.uri,
        status.as_u16(),
        sent.unwrap_or(0),
        get(header::REFERER),
        get(header::USER_AGENT),
        ep.addr,
    );
    if let Some(prev) = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        line.push_str(prev);
        line.push_str(", ");
    }
    let _ = write!(
        line,
        "{}\" x_forwarded_proto:\"{proto}\" vcap_request_id:\"{}\" response_time:{:.6} \
         gorouter_time:{:.6} app_id:\"{}\" app_index:\"{}\" instance_id:\"{}\" x_cf_routererror:\"-\"",
        remote.ip(),
        ctx.request_id,
        total.as_secs_f64(),
        own.as_secs_f64(),
        ep.app,
        ep.index,
        ep.instance_id,
    );
    let timestamp = i64::try_from(ctx.start_wall.unix_timestamp_nanos()).unwrap_or(i64::MAX);
    p.access.send(Line { app: ep.app.clone(), index: p.index, line, timestamp });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_written_as_gorouter_writes_them() {
        let t = time::OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_789)
            .expect("time");
        let mut s = String::new();
        rfc3339(t, &mut s);
        assert_eq!(s, "2023-11-14T22:13:20.123456789Z");
        let want = t.format(&time::format_description::well_known::Rfc3339).expect("format");
        assert_eq!(s, want);
    }
}
