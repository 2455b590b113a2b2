//! One `RTR` access-log envelope per proxied request, in gorouter's format, published to the
//! app's log stream by one background task. The request path writes its line straight into
//! a buffer of its thread's shard (no allocation, no channel: a lock nobody else holds but the
//! publisher, for a swap, every [`DRAIN_EVERY`]) and drops it (counted) when that buffer is
//! full rather than wait. The publisher swaps each shard's buffer for an empty one and turns
//! the lines into envelopes (base64 payload, JSON), many to a bus message
//! (`{"batch":[...]}`, as Loggregator frames envelopes), off the request path.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::http::{header, StatusCode};
use bus::DynBus;

use crate::proxy::{Ctx, Proxy, X_FORWARDED_FOR, X_FORWARDED_PROTO};
use crate::table::Endpoint;

/// Bytes of lines a shard holds between two drains before new lines are dropped, across all
/// shards (each gets its share, at least [`MIN_SHARD_BYTES`]).
const QUEUE_BYTES: usize = 16 << 20;
const MIN_SHARD_BYTES: usize = 256 << 10;
/// How often queued lines are published.
const DRAIN_EVERY: std::time::Duration = std::time::Duration::from_millis(20);
/// A bus message is closed once it is this big (NATS refuses messages over 1 MiB by default).
const MESSAGE_BYTES: usize = 256 << 10;

/// Where one line is in its shard's text: the app's guid from the end of the line before
/// it to `app_end`, the line from there to `end`.
#[derive(Debug, Clone, Copy)]
struct Meta {
    app_end: usize,
    end: usize,
    index: u32,
    timestamp: i64,
}

/// Lines waiting for the publisher, back to back in one string.
#[derive(Default)]
struct Batch {
    text: String,
    lines: Vec<Meta>,
}

impl Batch {
    /// Each line as (app guid, line, router index, timestamp).
    fn iter(&self) -> impl Iterator<Item = (&str, &str, u32, i64)> {
        let mut start = 0;
        self.lines.iter().map(move |m| {
            let app = &self.text[start..m.app_end];
            let line = &self.text[m.app_end..m.end];
            start = m.end;
            (app, line, m.index, m.timestamp)
        })
    }

    fn clear(&mut self) {
        self.text.clear();
        self.lines.clear();
    }
}

/// Append one log envelope in JSON (what `Envelope::log` serialized gives, written directly:
/// the generic serializer's flattened message costs several times more).
fn write_envelope(out: &mut Vec<u8>, app: &str, line: &str, index: u32, timestamp: i64) {
    let mut digits = itoa::Buffer::new();
    out.extend_from_slice(b"{\"timestamp\":\"");
    out.extend_from_slice(digits.format(timestamp).as_bytes());
    out.extend_from_slice(b"\",\"source_id\":");
    // A JSON string with whatever escaping it needs.
    let _ = serde_json::to_writer(&mut *out, app);
    out.extend_from_slice(b",\"instance_id\":\"");
    out.extend_from_slice(digits.format(index).as_bytes());
    out.extend_from_slice(b"\",\"tags\":{\"source_type\":\"RTR\"},\"log\":{\"payload\":\"");
    // SIMD (SSSE3/AVX2 where the CPU has them): the payload is most of an envelope's bytes,
    // and a scalar encoder spent more on it than on everything else the publisher does.
    let b64 = base64_simd::STANDARD;
    let at = out.len();
    out.resize(at + b64.encoded_length(line.len()), 0);
    let _ = b64.encode(line.as_bytes(), base64_simd::Out::from_slice(&mut out[at..]));
    out.extend_from_slice(b"\",\"type\":\"OUT\"}}");
}

/// A shard on cache lines of its own: two threads writing to neighbouring shards would
/// otherwise take turns owning the line their locks share.
#[derive(Default)]
#[repr(align(128))]
struct Shard(Mutex<Batch>);

/// What the request paths and the publisher share.
struct Shards {
    shards: Box<[Shard]>,
    /// Bytes of text one shard may hold.
    cap: usize,
}

/// The writing side of the access log; cheap to clone.
#[derive(Clone)]
pub struct AccessLog {
    shared: Arc<Shards>,
    dropped: prometheus_client::metrics::counter::Counter,
}

impl AccessLog {
    /// Start the publishing task; it publishes what is left and ends once every handle is
    /// gone.
    pub fn start(bus: DynBus, dropped: prometheus_client::metrics::counter::Counter) -> Self {
        // One shard per thread that may write (the workers and the runtime's threads), so
        // writers do not meet on a lock.
        let n = std::thread::available_parallelism().map_or(2, usize::from) + 2;
        let shared = Arc::new(Shards {
            shards: (0..n).map(|_| Shard::default()).collect(),
            cap: (QUEUE_BYTES / n).max(MIN_SHARD_BYTES),
        });
        let publisher = shared.clone();
        kit::spawn_named("router-access-log", async move {
            // The shards are drained on a tick rather than on a wake-up per line: that would
            // wake this task from every request, across threads.
            let subject = format!("{}.rtr", wire::subjects::LOGS_PREFIX);
            let mut spares: Vec<Batch> =
                publisher.shards.iter().map(|_| Batch::default()).collect();
            let mut tick = tokio::time::interval(DRAIN_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                // Checked before draining, so the lines of the last handle are published.
                let last = Arc::strong_count(&publisher) == 1;
                let mut messages = Messages::default();
                for (shard, spare) in publisher.shards.iter().zip(&mut spares) {
                    std::mem::swap(
                        &mut *shard.0.lock().unwrap_or_else(PoisonError::into_inner),
                        spare,
                    );
                    // Envelopes take about a third more than their lines (base64) and
                    // some 150 bytes of JSON each; known for all shards before the first
                    // message is sized, so that it is not grown (and copied) line by line.
                    messages.expect(spare.text.len() * 4 / 3 + spare.lines.len() * 160);
                }
                for spare in &mut spares {
                    for (app, line, index, timestamp) in spare.iter() {
                        messages.add(app, line, index, timestamp);
                    }
                    spare.clear();
                }
                for m in messages {
                    if let Err(e) = bus.publish(&subject, m.into()).await {
                        tracing::debug!(error = %e, "access log not published");
                    }
                }
                if last {
                    return;
                }
            }
        });
        Self { shared, dropped }
    }

    /// Write one line into this thread's shard with `write` (after the app's guid), or drop
    /// it when the shard is full.
    fn write(&self, app: &str, index: u32, timestamp: i64, write: impl FnOnce(&mut String)) {
        let shards = &self.shared.shards;
        let shard = &shards[crate::thread_slot() % shards.len()];
        let mut b = shard.0.lock().unwrap_or_else(PoisonError::into_inner);
        if b.text.len() >= self.shared.cap {
            drop(b);
            self.dropped.inc();
            return;
        }
        b.text.push_str(app);
        let app_end = b.text.len();
        write(&mut b.text);
        let end = b.text.len();
        b.lines.push(Meta { app_end, end, index, timestamp });
    }
}

/// Bus messages of envelopes, each a batch closed at [`MESSAGE_BYTES`].
#[derive(Default)]
struct Messages {
    open: Vec<u8>,
    done: Vec<Vec<u8>>,
    /// Bytes of envelopes still to come, to size the next message.
    expected: usize,
}

impl Messages {
    fn expect(&mut self, bytes: usize) {
        self.expected += bytes;
    }

    fn add(&mut self, app: &str, line: &str, index: u32, timestamp: i64) {
        if self.open.is_empty() {
            let size = self.expected.clamp(1024, MESSAGE_BYTES + MESSAGE_BYTES / 4);
            self.open.reserve(size);
            self.open.extend_from_slice(b"{\"batch\":[");
        } else {
            self.open.push(b',');
        }
        let before = self.open.len();
        write_envelope(&mut self.open, app, line, index, timestamp);
        self.expected = self.expected.saturating_sub(self.open.len() - before);
        if self.open.len() >= MESSAGE_BYTES {
            self.close();
        }
    }

    fn close(&mut self) {
        if !self.open.is_empty() {
            self.open.extend_from_slice(b"]}");
            self.done.push(std::mem::take(&mut self.open));
        }
    }
}

impl IntoIterator for Messages {
    type Item = Vec<u8>;
    type IntoIter = std::vec::IntoIter<Vec<u8>>;

    fn into_iter(mut self) -> Self::IntoIter {
        self.close();
        self.done.into_iter()
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
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(n);
    for _ in digits.len()..width {
        out.push('0');
    }
    out.push_str(digits);
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

/// Publish the access line for a response from `ep` (nothing for endpoints without an app);
/// `times` are the request's total and the router's own share ([`Ctx::times`]) when the
/// response head was ready.
pub fn log(
    p: &Proxy,
    req: &axum::http::request::Parts,
    ctx: &Ctx,
    ep: &Endpoint,
    status: StatusCode,
    sent: Option<u64>,
    times: (Duration, Duration),
) {
    if ep.app.is_empty() {
        return;
    }
    let timestamp = i64::try_from(ctx.start_wall.unix_timestamp_nanos()).unwrap_or(i64::MAX);
    p.access.write(&ep.app, p.index, timestamp, |text| {
        write_line(text, req, ctx, ep, status, sent, times);
    });
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
    write_line(&mut line, req, ctx, ep, status, sent, ctx.times());
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
    (total, own): (Duration, Duration),
) {
    // The fields the line shows, found in one pass (the first of each, as a lookup would).
    let (mut received, mut referer, mut agent, mut proto, mut xff_prev) =
        (None, None, None, None, None);
    for (k, v) in &req.headers {
        let slot = if *k == header::CONTENT_LENGTH {
            &mut received
        } else if *k == header::REFERER {
            &mut referer
        } else if *k == header::USER_AGENT {
            &mut agent
        } else if *k == X_FORWARDED_PROTO {
            &mut proto
        } else if *k == X_FORWARDED_FOR {
            &mut xff_prev
        } else {
            continue;
        };
        if slot.is_none() {
            *slot = Some(v.to_str().ok());
        }
    }
    let received = received.flatten().unwrap_or("0");
    let (referer, agent) = (referer.flatten().unwrap_or("-"), agent.flatten().unwrap_or("-"));
    let proto = proto.flatten().unwrap_or(if ctx.https { "https" } else { "http" });
    let xff_prev = xff_prev.flatten();
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
    push_all(
        line,
        &[
            " \"",
            referer,
            "\" \"",
            agent,
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
            ctx.request_id.as_str(),
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
            .header("x-forwarded-for", "10.9.9.9")
            .header("referer", "http://r/")
            .header("content-length", "5")
            .header("x-forwarded-proto", "http")
            .body(())
            .expect("request")
            .into_parts()
            .0;
        let ctx = Ctx {
            host: "a.apps.localhost".into(),
            remote: crate::proxy::Peer::new("192.0.2.7:4000".parse().expect("addr")),
            https: true,
            request_id: crate::proxy::RequestId::from_random([0x11; 16]),
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
            heard: Default::default(),
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
            "a.apps.localhost - [2023-11-14T22:13:20.000000001Z] \"GET /p?q=1 HTTP/1.1\" 201 5 12 \
             \"http://r/\" \"curl/8\" \"192.0.2.7:4000\" \"10.0.0.5:61001\" \
             x_forwarded_for:\"10.1.1.1, 192.0.2.7\" x_forwarded_proto:\"http\" vcap_request_id:\"11111111-1111-4111-9111-111111111111\""
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
    fn batches_are_what_the_generic_serializer_makes() {
        let lines = [
            (
                "app \"guid\"",
                "a.apps.localhost - [x] \"GET / HTTP/1.1\" 200 é",
                3,
                1_700_000_000_000_000_001,
            ),
            ("other", "b.apps.localhost - [y] \"POST /p HTTP/1.1\" 201", 0, -5),
        ];
        let mut messages = Messages::default();
        for (app, line, index, ts) in lines {
            messages.add(app, line, index, ts);
        }
        let out: Vec<Vec<u8>> = messages.into_iter().collect();
        assert_eq!(out.len(), 1);
        let got = wire::envelope::decode(&out[0]).expect("a batch");
        let want: Vec<Envelope> = lines
            .iter()
            .map(|(app, line, index, ts)| {
                let mut e = Envelope::log(*app, index.to_string(), "RTR", *line, LogStream::Out);
                e.timestamp = *ts;
                e
            })
            .collect();
        assert_eq!(got, want);
        let generic = serde_json::to_value(wire::envelope::EnvelopeBatch { batch: want.clone() })
            .expect("value");
        let direct: serde_json::Value = serde_json::from_slice(&out[0]).expect("value");
        assert_eq!(direct, generic);
        assert_eq!(want[0].subject(), format!("{}.rtr", wire::subjects::LOGS_PREFIX));
    }

    #[test]
    fn payloads_of_every_length_and_alignment_decode_to_their_lines() {
        // The encoder takes whole blocks with SIMD and the rest in scalar code:
        // every length up to a few blocks past a typical line, at every offset in the buffer.
        let text: String = (0..600u32).map(|i| char::from(b' ' + (i * 7 % 95) as u8)).collect();
        for len in 0..=520 {
            for skew in [0, 1, 5] {
                let line = &text[skew..skew + len];
                let mut out = b"{\"batch\":[".to_vec();
                write_envelope(&mut out, "app", line, 0, 1);
                out.extend_from_slice(b"]}");
                let got = wire::envelope::decode(&out).expect("a batch");
                assert_eq!(got.len(), 1);
                let mut want = Envelope::log("app", "0", "RTR", line, LogStream::Out);
                want.timestamp = 1;
                assert_eq!(got[0], want, "line of {len} bytes at {skew}");
            }
        }
    }

    #[test]
    fn messages_are_closed_at_their_size_and_lose_nothing() {
        let line = "l".repeat(10_000);
        let mut messages = Messages::default();
        for i in 0..100 {
            messages.add("app", &line, 0, i);
        }
        let out: Vec<Vec<u8>> = messages.into_iter().collect();
        assert!(out.len() > 1, "{} messages", out.len());
        let mut stamps = Vec::new();
        for m in &out {
            // A message closes at the first line that takes it past the size.
            assert!(m.len() < MESSAGE_BYTES + 14_000, "{}", m.len());
            stamps.extend(wire::envelope::decode(m).expect("a batch").iter().map(|e| e.timestamp));
        }
        assert_eq!(stamps, (0..100).collect::<Vec<i64>>());
        assert_eq!(Messages::default().into_iter().count(), 0, "no lines, no message");
    }

    #[test]
    fn a_full_shard_drops_and_counts_and_keeps_what_it_has() {
        let dropped = prometheus_client::metrics::counter::Counter::default();
        let log = AccessLog {
            shared: Arc::new(Shards { shards: vec![Shard::default()].into(), cap: 100 }),
            dropped: dropped.clone(),
        };
        let mut wrote = 0;
        while dropped.get() == 0 {
            log.write("app", 1, wrote, |t| t.push_str(&"x".repeat(30)));
            wrote += 1;
        }
        let batch = log.shared.shards[0].0.lock().expect("lock");
        let kept: Vec<_> = batch.iter().collect();
        assert_eq!(kept.len() as i64, wrote - 1);
        assert!(kept
            .iter()
            .all(|(app, line, index, _)| *app == "app" && line.len() == 30 && *index == 1));
        assert_eq!(
            kept.iter().map(|l| l.3).collect::<Vec<_>>(),
            (0..wrote - 1).collect::<Vec<_>>()
        );
    }

    #[tokio::test]
    async fn lines_from_many_threads_are_published_in_batches_losing_none() {
        let bus: DynBus = Arc::new(bus::InProcessBus::new());
        let mut sub = bus.subscribe("logs.rtr").await.expect("sub");
        let log = AccessLog::start(bus.clone(), Default::default());
        let writers: Vec<_> = (0..4)
            .map(|t| {
                let log = log.clone();
                std::thread::spawn(move || {
                    for i in 0..250 {
                        log.write("app", t, i, |s| s.push_str(&format!("line {t} {i}")));
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().expect("writer");
        }
        drop(log);
        let mut seen = Vec::new();
        let mut messages = 0;
        while let Ok(Some(m)) =
            tokio::time::timeout(std::time::Duration::from_secs(2), sub.next()).await
        {
            messages += 1;
            for e in wire::envelope::decode(&m.payload).expect("a batch") {
                seen.push(e.log_text().expect("a line"));
            }
        }
        assert!(messages < 1000, "{messages} messages for 1000 lines");
        seen.sort();
        let mut want: Vec<String> =
            (0..4).flat_map(|t| (0..250).map(move |i| format!("line {t} {i}"))).collect();
        want.sort();
        assert_eq!(seen, want);
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
        s.push(' ');
        push_secs(&mut s, std::time::Duration::new(3601, 999_999_999));
        s.push(' ');
        push_secs(&mut s, std::time::Duration::ZERO);
        assert_eq!(s, "1.234567 0.000042 007 0 123456 3601.999999 0.000000");
    }
}
