//! Ingest throughput and publish-to-stream delay of the logs service, in-process on the
//! in-process bus. Throughput: log envelopes from 100 apps offered at 50k, 100k and 200k per
//! second for 3 s each (`INGEST_RATES=a,b,..` to change), timed until the service has taken
//! them all in, with what was lost on the bus and in the aggregator and the envelopes per
//! CPU-second of the whole process (goal ≥ 100,000 envelopes/s per core, loss < 0.1 %).
//! Delay: 2,000 envelopes published 1 ms apart while a reader follows the app's stream;
//! p50/p99 from publish to arrival (goal p99 ≤ 250 ms).
//! Run: `cargo bench -p logs --bench ingest`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use testkit::tokens::Issuer;
use wire::envelope::{Envelope, LogStream};

async fn fake_api(issuer: Arc<Issuer>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let app = axum::Router::new()
        .route("/token_keys", axum::routing::get(move || async move { axum::Json(issuer.jwks()) }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

async fn metric(http: &reqwest::Client, url: &str, name: &str) -> u64 {
    let text = http
        .get(format!("{url}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    text.lines()
        .filter(|l| {
            !l.starts_with('#') && l.split(['{', ' ']).next().is_some_and(|m| m.contains(name))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// Messages the in-process bus dropped because the aggregator's subscription was full.
fn bus_dropped(bus: &Arc<bus::InProcessBus>) -> u64 {
    bus.dropped()
}

/// CPU time (user + system) of this process so far.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 (utime, stime) are the 12th and 13th after the command name.
    (ticks(11) + ticks(12)) / 100.0
}

#[tokio::main]
async fn main() {
    let issuer_url = "http://bench.invalid/oauth/token";
    let issuer = Arc::new(Issuer::new("k1", issuer_url));
    let api = fake_api(issuer.clone()).await;
    let inproc = Arc::new(bus::InProcessBus::new());
    let bus: bus::DynBus = inproc.clone();
    let config = logs::Config {
        addr: "127.0.0.1:0".parse().expect("addr"),
        api_url: api,
        token_issuer: issuer_url.into(),
        ..Default::default()
    };
    let service = logs::build(config, logs::Deps { bus: bus.clone() }).await.expect("logs");
    let url = format!("http://{}", service.local_addr());
    let stop = kit::Shutdown::new();
    tokio::spawn(service.run(stop.clone()));
    testkit::wait_http_ok(&format!("{url}/readyz"), Duration::from_secs(10)).await.expect("ready");
    let http = reqwest::Client::new();

    // Throughput.
    let apps: Vec<String> = (0..100).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    let payloads: Vec<bytes::Bytes> = apps
        .iter()
        .map(|a| {
            let e = Envelope::log(
                a.as_str(),
                "0",
                "APP/PROC/WEB",
                "GET /index.html 200 a typical access line of an app",
                LogStream::Out,
            );
            bytes::Bytes::from(serde_json::to_vec(&e).expect("json"))
        })
        .collect();
    let mut offered_rates = vec![50_000u64, 100_000, 200_000];
    if let Ok(r) = std::env::var("INGEST_RATES") {
        offered_rates = r.split(',').filter_map(|x| x.trim().parse().ok()).collect();
    }
    for rate in offered_rates {
        let n = rate * 3;
        let before = metric(&http, &url, "envelopes_ingested").await;
        let dropped_before = metric(&http, &url, "envelopes_dropped").await;
        let bus_dropped_before = bus_dropped(&inproc);
        let cpu_before = cpu_seconds();
        let started = Instant::now();
        // Offered load: `rate` envelopes per second in 1 ms slices.
        let per_slice = rate / 1000;
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let mut sent = 0u64;
        while sent < n {
            tick.tick().await;
            for _ in 0..per_slice.min(n - sent) {
                let p = payloads[(sent % 100) as usize].clone();
                bus.publish("logs.APP", p).await.expect("publish");
                sent += 1;
            }
        }
        let published = started.elapsed();
        let deadline = Instant::now() + Duration::from_secs(30);
        let (ingested, dropped, lost_on_bus) = loop {
            let ingested = metric(&http, &url, "envelopes_ingested").await - before;
            let dropped = metric(&http, &url, "envelopes_dropped").await - dropped_before;
            let lost_on_bus = bus_dropped(&inproc) - bus_dropped_before;
            if ingested + lost_on_bus >= n || Instant::now() > deadline {
                break (ingested, dropped, lost_on_bus);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let secs = started.elapsed().as_secs_f64();
        let cpu = cpu_seconds() - cpu_before;
        let lost = dropped + lost_on_bus;
        println!(
            "ingest at {rate}/s offered: {n} envelopes from 100 apps, published in {:.2} s, all in after {secs:.2} s; \
             {:.0} envelopes/s; {:.0} envelopes per CPU-second (whole process: publisher, bus, ingest, store); \
             lost {lost} ({:.3} %: {dropped} by the aggregator, {lost_on_bus} on the bus), stored {}",
            published.as_secs_f64(),
            ingested as f64 / secs,
            ingested as f64 / cpu.max(1e-9),
            lost as f64 * 100.0 / n as f64,
            ingested - dropped,
        );
    }

    // Publish-to-stream delay.
    let source = uuid::Uuid::new_v4().to_string();
    let token = issuer.token(&[auth::SCOPE_LOGS_ADMIN], 3600);
    let res = http
        .get(format!("{url}/api/v1/stream/{source}"))
        .header("authorization", token)
        .send()
        .await
        .expect("stream");
    assert!(res.status().is_success(), "stream answered {}", res.status());
    let mut body = res.bytes_stream();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Duration>();
    let reader = tokio::spawn(async move {
        let mut buf = String::new();
        while let Some(Ok(chunk)) = body.next().await {
            buf.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buf.find("\n\n") {
                let event: String = buf.drain(..end + 2).collect();
                for line in event.lines() {
                    let Some(data) = line.strip_prefix("data:") else { continue };
                    let Ok(v) = serde_json::from_str::<serde_json::Value>(data.trim()) else {
                        continue;
                    };
                    for e in v["batch"].as_array().cloned().unwrap_or_default() {
                        let sent: i64 =
                            e["timestamp"].as_str().and_then(|t| t.parse().ok()).unwrap_or(0);
                        let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64;
                        let _ = tx.send(Duration::from_nanos((now - sent).max(0) as u64));
                    }
                }
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let count = 2000;
    for _ in 0..count {
        let e =
            Envelope::log(source.as_str(), "0", "APP/PROC/WEB", "a line to follow", LogStream::Out);
        bus.publish("logs.APP", bytes::Bytes::from(serde_json::to_vec(&e).expect("json")))
            .await
            .expect("publish");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let mut delays = Vec::new();
    while delays.len() < count {
        match tokio::time::timeout(Duration::from_secs(5), rx.recv()).await {
            Ok(Some(d)) => delays.push(d),
            _ => break,
        }
    }
    reader.abort();
    delays.sort();
    let pct = |p: f64| {
        delays.get(((delays.len().max(1) - 1) as f64 * p) as usize).copied().unwrap_or_default()
    };
    println!(
        "stream delay: {} of {count} envelopes seen; publish to arrival p50 {:.2} ms, p99 {:.2} ms",
        delays.len(),
        pct(0.5).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3
    );
    stop.cancel();
}
