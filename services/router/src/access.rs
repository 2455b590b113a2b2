//! One `RTR` access-log envelope per proxied request, in gorouter's format, published to the app's log stream by one background task:
//! the request path only writes the line and queues it, and drops it (counted) when the
//! queue is full rather than wait; the envelope (base64 payload, JSON) is made by the
//! publisher, off the request path.

use std::fmt::Write as _;

use axum::http::{header, StatusCode};
use base64::Engine as _;
use bus::DynBus;
use tokio::sync::mpsc;

use crate::proxy::{Ctx, Proxy};
use crate::table::Endpoint;

/// Lines waiting for the bus before new ones are dropped.
const QUEUE: usize = 16_384;
/// How often queued lines are published.
const DRAIN_EVERY: std::time::Duration = std::time::Duration::from_millis(20);

/// One access line waiting for the publisher: the app's guid and the line in one string
/// (one allocation per request).
struct Line {
    text: String,
    /// Where the app's guid ends and the line begins in `text`.
    app_end: usize,
    index: u32,
    timestamp: i64,
}

impl Line {
    #[cfg(test)]
    fn new(app: &str, line: &str, index: u32, timestamp: i64) -> Self {
        Self { text: format!("{app}{line}"), app_end: app.len(), index, timestamp }
    }

    fn app(&self) -> &str {
        &self.text[..self.app_end]
    }

    fn line(&self) -> &str {
        &self.text[self.app_end..]
    }

    /// The line as a log envelope in JSON (what `Envelope::log` serialized gives, written
    /// directly: the generic serializer's flattened message costs several times more).
    fn envelope(&self) -> Vec<u8> {
        let (app, line) = (self.app(), self.line());
        let mut out = Vec::with_capacity(line.len() * 4 / 3 + app.len() + 160);
        out.extend_from_slice(b"{\"timestamp\":\"");
        out.extend_from_slice(self.timestamp.to_string().as_bytes());
        out.extend_from_slice(b"\",\"source_id\":");
        // A JSON string with whatever escaping it needs.
        let _ = serde_json::to_writer(&mut out, app);
        out.extend_from_slice(b",\"instance_id\":\"");
        out.extend_from_slice(self.index.to_string().as_bytes());
        out.extend_from_slice(b"\",\"tags\":{\"source_type\":\"RTR\"},\"log\":{\"payload\":\"");
        let mut b64 = String::with_capacity(line.len() * 4 / 3 + 4);
        base64::engine::general_purpose::STANDARD.encode_string(line, &mut b64);
        out.extend_from_slice(b64.as_bytes());
        out.extend_from_slice(b"\",\"type\":\"OUT\"}}");
        out
    }
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
            let subject = format!("{}.rtr", wire::subjects::LOGS_PREFIX);
            let mut tick = tokio::time::interval(DRAIN_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                loop {
                    match rx.try_recv() {
                        Ok(l) => {
                            if let Err(e) = bus.publish(&subject, l.envelope().into()).await {
                                tracing::debug!(error = %e, "access log not published");
                            }
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

thread_local! {
    /// The date and time to the second last written on this thread, for the next line in the
    /// same second.
    static SECOND: std::cell::RefCell<(i64, String)> = const { std::cell::RefCell::new((i64::MIN, String::new())) };
}

/// `2006-01-02T15:04:05.000000000Z`: the request's start in UTC, as gorouter writes it.
fn rfc3339(t: time::OffsetDateTime, out: &mut String) {
    let t = t.to_offset(time::UtcOffset::UTC);
    SECOND.with(|cached| {
        let mut cached = cached.borrow_mut();
        if cached.0 != t.unix_timestamp() {
            cached.1.clear();
            let _ = write!(
                cached.1,
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second(),
            );
            cached.0 = t.unix_timestamp();
        }
        out.push_str(&cached.1);
    });
    out.push('.');
    push_padded(out, u64::from(t.nanosecond()), 9);
    out.push('Z');
}

/// `n` in decimal, zero-padded to `width` digits.
fn push_padded(out: &mut String, n: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let start = i.min(digits.len().saturating_sub(width));
    out.push_str(std::str::from_utf8(&digits[start..]).unwrap_or("0"));
}

fn push_all(out: &mut String, parts: &[&str]) {
    for part in parts {
        out.push_str(part);
    }
}

/// Seconds with six decimals (`0.001234`), from a duration, without float formatting.
fn push_secs(out: &mut String, d: std::time::Duration) {
    let micros = d.as_micros();
    push_padded(out, u64::try_from(micros / 1_000_000).unwrap_or(u64::MAX), 1);
    out.push('.');
    push_padded(out, (micros % 1_000_000) as u64, 6);
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
    let mut text = String::with_capacity(ep.app.len() + 512);
    text.push_str(&ep.app);
    write_line(&mut text, req, ctx, ep, status, sent);
    let timestamp = i64::try_from(ctx.start_wall.unix_timestamp_nanos()).unwrap_or(i64::MAX);
    p.access.send(Line { text, app_end: ep.app.len(), index: p.index, timestamp });
}

/// The access line of a request, in gorouter's format.
#[cfg(test)]
fn line(
    req: &axum::http::request::Parts,
    ctx: &Ctx,
    ep: &Endpoint,
    status: StatusCode,
    sent: Option<u64>,
) -> String {
    let mut line = String::new();
    write_line(&mut line, req, ctx, ep, status, sent);
    line
}

/// Append the access line of a request to `line`.
fn write_line(
    line: &mut String,
    req: &axum::http::request::Parts,
    ctx: &Ctx,
    ep: &Endpoint,
    status: StatusCode,
    sent: Option<u64>,
) {
    let headers = &req.headers;
    let get = |k: header::HeaderName| headers.get(k).and_then(|v| v.to_str().ok()).unwrap_or("-");
    let received = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).unwrap_or("0");
    let (total, own) = ctx.times();
    let proto = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .unwrap_or(if ctx.https { "https" } else { "http" });
    let version = match req.version {
        axum::http::Version::HTTP_2 => "HTTP/2.0",
        axum::http::Version::HTTP_10 => "HTTP/1.0",
        _ => "HTTP/1.1",
    };
    push_all(line, &[&ctx.host, " - ["]);
    rfc3339(ctx.start_wall, line);
    push_all(line, &["] \"", req.method.as_str(), " "]);
    match req.uri.path_and_query() {
        Some(pq) => push_all(line, &[pq.as_str()]),
        None => push_all(line, &["/"]),
    }
    push_all(line, &[" ", version, "\" "]);
    push_padded(line, u64::from(status.as_u16()), 3);
    push_all(line, &[" ", received, " "]);
    push_padded(line, sent.unwrap_or(0), 1);
    let xff_prev = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok());
    push_all(
        line,
        &[
            " \"",
            get(header::REFERER),
            "\" \"",
            get(header::USER_AGENT),
            "\" \"",
            &ctx.remote.text,
            "\" \"",
            &ep.addr,
            "\" x_forwarded_for:\"",
        ],
    );
    if let Some(prev) = xff_prev {
        push_all(line, &[prev, ", "]);
    }
    push_all(
        line,
        &[
            &ctx.remote.ip,
            "\" x_forwarded_proto:\"",
            proto,
            "\" vcap_request_id:\"",
            &ctx.request_id,
            "\" response_time:",
        ],
    );
    push_secs(line, total);
    line.push_str(" gorouter_time:");
    push_secs(line, own);
    push_all(
        line,
        &[
            " app_id:\"",
            &ep.app,
            "\" app_index:\"",
            &ep.index,
            "\" instance_id:\"",
            &ep.instance_id,
            "\" x_cf_routererror:\"-\"",
        ],
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use wire::envelope::{Envelope, LogStream};

    #[test]
    fn times_are_written_as_gorouter_writes_them() {
        let t = time::OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_789)
            .expect("time");
        let mut s = String::new();
        rfc3339(t, &mut s);
        assert_eq!(s, "2023-11-14T22:13:20.123456789Z");
        let want = t.format(&time::format_description::well_known::Rfc3339).expect("format");
        assert_eq!(s, want);
        // The second is cached per thread; the next line in it differs only in the fraction.
        let mut s = String::new();
        rfc3339(t + time::Duration::nanoseconds(1_000), &mut s);
        assert_eq!(s, "2023-11-14T22:13:20.123457789Z");
        let mut s = String::new();
        rfc3339(t + time::Duration::seconds(61), &mut s);
        assert_eq!(s, "2023-11-14T22:14:21.123456789Z");
    }

    #[test]
    fn lines_have_gorouters_fields_in_gorouters_order() {
        let req = axum::http::Request::get("/p?q=1")
            .header("user-agent", "curl/8")
            .header("x-forwarded-for", "10.1.1.1")
            .body(())
            .expect("request")
            .into_parts()
            .0;
        let ctx = Ctx {
            host: "a.apps.localhost".into(),
            remote: crate::proxy::Peer::new("192.0.2.7:4000".parse().expect("addr")),
            https: true,
            request_id: "rid".into(),
            started: std::time::Instant::now(),
            start_wall: time::OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_000_000_001)
                .expect("time"),
            backend_ns: std::sync::atomic::AtomicU64::new(0),
        };
        let ep = Endpoint {
            addr: "10.0.0.5:61001".into(),
            app: "app-guid".into(),
            instance_id: "inst".into(),
            index: "3".into(),
            updated: std::time::Instant::now(),
            ttl: std::time::Duration::from_secs(120),
            least_connection: false,
            route_service_url: None,
            http2: false,
            zone: None,
            inflight: Default::default(),
        };
        let l = line(&req, &ctx, &ep, StatusCode::CREATED, Some(12));
        let (head, tail) = l.split_once(" response_time:").expect("response_time");
        assert_eq!(
            head,
            "a.apps.localhost - [2023-11-14T22:13:20.000000001Z] \"GET /p?q=1 HTTP/1.1\" 201 0 12 \
             \"-\" \"curl/8\" \"192.0.2.7:4000\" \"10.0.0.5:61001\" \
             x_forwarded_for:\"10.1.1.1, 192.0.2.7\" x_forwarded_proto:\"https\" vcap_request_id:\"rid\""
        );
        let (secs, rest) = tail.split_once(" gorouter_time:").expect("gorouter_time");
        assert!(secs.len() == 8 && secs.parse::<f64>().is_ok(), "{secs}");
        let (own, rest) = rest.split_once(' ').expect("after gorouter_time");
        assert!(own.parse::<f64>().is_ok(), "{own}");
        assert_eq!(
            rest,
            "app_id:\"app-guid\" app_index:\"3\" instance_id:\"inst\" x_cf_routererror:\"-\""
        );
    }

    #[test]
    fn envelopes_are_what_the_generic_serializer_makes() {
        let l = Line::new(
            "app \"guid\"",
            "a.apps.localhost - [x] \"GET / HTTP/1.1\" 200 é",
            3,
            1_700_000_000_000_000_001,
        );
        let json = l.envelope();
        let got: Envelope = serde_json::from_slice(&json).expect("an envelope");
        let mut want = Envelope::log(l.app(), "3", "RTR", l.line(), LogStream::Out);
        want.timestamp = l.timestamp;
        assert_eq!(got, want);
        let generic: serde_json::Value = serde_json::to_value(&want).expect("value");
        let direct: serde_json::Value = serde_json::from_slice(&json).expect("value");
        assert_eq!(direct, generic);
        assert_eq!(want.subject(), format!("{}.rtr", wire::subjects::LOGS_PREFIX));
    }

    #[test]
    fn numbers_are_written_without_float_formatting() {
        let mut s = String::new();
        push_secs(&mut s, std::time::Duration::from_nanos(1_234_567_890));
        s.push(' ');
        push_secs(&mut s, std::time::Duration::from_micros(42));
        s.push(' ');
        push_padded(&mut s, 7, 3);
        s.push(' ');
        push_padded(&mut s, 0, 1);
        s.push(' ');
        push_padded(&mut s, 123_456, 1);
        assert_eq!(s, "1.234567 0.000042 007 0 123456");
    }
}
