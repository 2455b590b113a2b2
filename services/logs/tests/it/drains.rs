//! Syslog drains into a real rsyslog (Debian's `rsyslogd`, TCP input with octet-counted
//! framing): RFC 5424 lines as CF writes them, only the bound app's logs, unbinding stops the
//! flow; an unreachable drain is reported in the app's stream, retried with back-off, its
//! overflow counted and reported, and its queue delivered once the server is up.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::routing::{get, post};
use bus::BusExt as _;
use testkit::syslog::Rsyslog;
use wire::drains::{SyslogDrain, SyslogDrains};
use wire::envelope::{Envelope, LogStream};

use crate::{start_with, Running, APP};

const OTHER: &str = "0a1b2c3d-0000-4000-8000-000000000001";

type Bindings = Arc<Mutex<Vec<SyslogDrain>>>;

/// A stand-in api: client-credentials tokens and the drain bindings in `bindings`.
async fn fake_api(bindings: Bindings) -> String {
    let app = axum::Router::new()
        .route(
            "/oauth/token",
            post(|| async {
                axum::Json(serde_json::json!({"access_token": "component", "expires_in": 3600}))
            }),
        )
        .route(
            "/internal/v1/syslog_drains",
            get(move |headers: axum::http::HeaderMap| {
                let bindings = bindings.clone();
                async move {
                    let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
                    if auth != Some("Bearer component") {
                        return Err(axum::http::StatusCode::UNAUTHORIZED);
                    }
                    let drains = bindings.lock().expect("lock").clone();
                    Ok(axum::Json(SyslogDrains { drains }))
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

async fn start_logs(api: String, buffer: usize) -> Running {
    start_with(logs::Config {
        api_url: api,
        internal_client_secret: "secret".into(),
        drain_refresh_secs: 1,
        drain_buffer: buffer,
        ..Default::default()
    })
    .await
}

fn log(app: &str, source_type: &str, text: &str, stream: LogStream) -> Envelope {
    Envelope::log(app, "0", source_type, text, stream)
}

async fn publish(r: &Running, e: &Envelope) {
    r.bus.publish_json(&e.subject(), e).await.expect("publish");
}

async fn drain_count(r: &Running) -> u64 {
    let text = reqwest::get(format!("{}/metrics", r.url))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    text.lines()
        .find(|l| l.starts_with("paas_logs_drain_messages_sent_total "))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0)
}

/// Is `ts` an RFC 3339 UTC timestamp with at most microseconds?
fn rfc3339_micros(ts: &str) -> bool {
    let Some(body) = ts.strip_suffix("+00:00") else { return false };
    let (secs, frac) = body.split_once('.').unwrap_or((body, ""));
    time::PrimitiveDateTime::parse(secs, &time::format_description::well_known::Iso8601::DEFAULT)
        .is_ok()
        && frac.len() <= 6
        && frac.bytes().all(|b| b.is_ascii_digit())
}

#[tokio::test]
async fn a_bound_apps_logs_reach_rsyslog_in_rfc5424() {
    let port = testkit::free_port();
    let syslog = Rsyslog::start(port).await;
    let bindings: Bindings = Arc::default();
    bindings.lock().expect("lock").push(SyslogDrain {
        binding_guid: "b1".into(),
        app_guid: APP.into(),
        url: format!("syslog://127.0.0.1:{port}"),
        hostname: "my-org.dev.drained".into(),
    });
    let r = start_logs(fake_api(bindings.clone()).await, 10_000).await;
    // The binding is read from the api within a refresh.
    let probe = log(APP, "APP/PROC/WEB", "probe", LogStream::Out);
    testkit::eventually("drain running", Duration::from_secs(10), || async {
        publish(&r, &probe).await;
        (drain_count(&r).await > 0).then_some(())
    })
    .await
    .expect("drain started");
    let before = syslog.wait_for("probe", 1).await.len();

    publish(&r, &log(APP, "APP/PROC/WEB", "hello drain", LogStream::Out)).await;
    publish(&r, &log(APP, "APP/PROC/WEB", "oops on stderr", LogStream::Err)).await;
    publish(&r, &log(APP, "APP/PROC/WEB", "first\nsecond", LogStream::Out)).await;
    publish(&r, &log(APP, "RTR", "GET / 200", LogStream::Out)).await;
    publish(&r, &log(OTHER, "APP/PROC/WEB", "not bound", LogStream::Out)).await;
    let gauge = Envelope::gauge(
        APP,
        "0",
        [("cpu".to_owned(), wire::envelope::GaugeValue { unit: "percentage".into(), value: 1.5 })],
    );
    publish(&r, &gauge).await;
    let lines = syslog.wait_for("four more messages", before + 4).await;
    let new = &lines[before..];
    let hello = new.iter().find(|l| l.contains("hello drain")).expect("hello");
    let fields: Vec<&str> = hello.splitn(8, ' ').collect();
    assert_eq!(fields[0], "<14>1", "{hello}");
    assert!(rfc3339_micros(fields[1]), "timestamp {}", fields[1]);
    assert_eq!(&fields[2..6], ["my-org.dev.drained", APP, "[APP/PROC/WEB/0]", "-"], "{hello}");
    assert_eq!(
        fields[6..].join(" "),
        "[tags@47450 source_type=\"APP/PROC/WEB\"] hello drain",
        "{hello}"
    );
    let err = new.iter().find(|l| l.contains("oops on stderr")).expect("stderr line");
    assert!(err.starts_with("<11>1 "), "{err}");
    // Octet counting keeps a multi-line message whole (rsyslog shows the LF as #012).
    let multi = new.iter().find(|l| l.contains("first")).expect("multi-line message");
    assert!(multi.contains("second"), "one message, not two: {multi}");
    assert!(new.iter().any(|l| l.contains("[RTR/0]") && l.contains("GET / 200")), "{new:?}");
    assert!(!lines.iter().any(|l| l.contains("not bound")), "another app's logs stay out");
    assert!(
        !lines.iter().any(|l| l.contains("gauge@47450")),
        "metrics only with drain-data=metrics|all"
    );

    // Unbound: nothing more is forwarded.
    bindings.lock().expect("lock").clear();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let count = syslog.lines().len();
    publish(&r, &log(APP, "APP/PROC/WEB", "after unbinding", LogStream::Out)).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(syslog.lines().len(), count, "{:?}", syslog.lines());
}

async fn lgr_lines(r: &Running) -> Vec<String> {
    let res = reqwest::Client::new()
        .get(format!("{}/api/v1/read/{APP}?envelope_types=LOG&limit=1000", r.url))
        .header("authorization", "bearer admin")
        .send()
        .await
        .expect("read");
    let body: wire::envelope::ReadResponse = res.json().await.expect("json");
    body.envelopes
        .batch
        .iter()
        .filter(|e| e.source_type() == Some("LGR"))
        .filter_map(Envelope::log_text)
        .collect()
}

#[tokio::test]
async fn an_unreachable_drain_is_reported_retried_and_caught_up() {
    let port = testkit::free_port();
    let bindings: Bindings = Arc::default();
    bindings.lock().expect("lock").push(SyslogDrain {
        binding_guid: "b1".into(),
        app_guid: APP.into(),
        url: format!("syslog://127.0.0.1:{port}?drain-data=all"),
        hostname: "o.s.a".into(),
    });
    let r = start_logs(fake_api(bindings).await, 50).await;
    let shown = format!("syslog://127.0.0.1:{port}");
    let unreachable =
        testkit::eventually("unreachable reported", Duration::from_secs(15), || async {
            publish(&r, &log(APP, "APP/PROC/WEB", "early", LogStream::Out)).await;
            lgr_lines(&r).await.into_iter().find(|l| l.contains("unreachable"))
        })
        .await
        .expect("an LGR line says the drain is unreachable");
    assert!(unreachable.contains(&shown), "{unreachable}");
    // Overflow while it is down: counted and reported, producers not slowed.
    for i in 0..300 {
        publish(&r, &log(APP, "APP/PROC/WEB", &format!("queued {i}"), LogStream::Out)).await;
    }
    let lost = testkit::eventually("losses reported", Duration::from_secs(10), || async {
        lgr_lines(&r).await.into_iter().find(|l| l.contains("messages lost"))
    })
    .await
    .expect("an LGR line counts the lost messages");
    assert!(
        lost.ends_with(&format!(
            "messages lost for application {APP} in user provided syslog drain with url {shown}"
        )),
        "{lost}"
    );
    let n: u64 = lost.split(' ').next().and_then(|n| n.parse().ok()).expect("count");
    assert!(n > 0 && n <= 300, "{lost}");
    // The server comes up: the retry (back-off at most 60 s, here a few seconds) delivers the queue.
    let syslog = Rsyslog::start(port).await;
    let lines = syslog.wait_for("queued messages delivered", 40).await;
    assert!(lines.iter().all(|l| l.starts_with("<14>1 ")), "{lines:?}");
    testkit::eventually("reachable again", Duration::from_secs(10), || async {
        lgr_lines(&r).await.into_iter().find(|l| l.contains("reachable again"))
    })
    .await
    .expect("the app is told the drain works again");
}

/// A TLS syslog server with a certificate made for the test: what it received, raw.
async fn tls_server() -> (u16, testkit::tls::Cert, Arc<Mutex<Vec<u8>>>) {
    let cert = testkit::tls::Cert::localhost();
    let config = cert.server_config();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = got.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            let (acceptor, sink) = (acceptor.clone(), sink.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(s).await else { return };
                let mut buf = [0u8; 4096];
                while let Ok(n) = tokio::io::AsyncReadExt::read(&mut tls, &mut buf).await {
                    if n == 0 {
                        break;
                    }
                    sink.lock().expect("lock").extend_from_slice(&buf[..n]);
                }
            });
        }
    });
    (port, cert, got)
}

#[tokio::test]
async fn a_syslog_tls_drain_verifies_the_server_and_counts_octets() {
    let (port, ca, got) = tls_server().await;
    let bindings: Bindings = Arc::default();
    bindings.lock().expect("lock").push(SyslogDrain {
        binding_guid: "b1".into(),
        app_guid: APP.into(),
        url: format!("syslog-tls://localhost:{port}"),
        hostname: "o.s.tls".into(),
    });
    let r = start_with(logs::Config {
        api_url: fake_api(bindings).await,
        internal_client_secret: "secret".into(),
        drain_refresh_secs: 1,
        drain_ca_file: ca.ca_file(),
        ..Default::default()
    })
    .await;
    let frame = testkit::eventually("a frame over TLS", Duration::from_secs(15), || async {
        publish(&r, &log(APP, "APP/PROC/WEB", "over tls", LogStream::Out)).await;
        let raw = got.lock().expect("lock").clone();
        let text = String::from_utf8(raw).ok()?;
        let (len, rest) = text.split_once(' ')?;
        let len: usize = len.parse().ok()?;
        (rest.len() >= len).then(|| rest[..len].to_owned())
    })
    .await
    .expect("the drain delivers over TLS");
    assert!(frame.starts_with("<14>1 ") && frame.contains(" o.s.tls "), "{frame}");
    assert!(frame.ends_with("over tls\n"), "the frame is exactly one message: {frame:?}");

    // A server the drain cannot verify gets nothing, and the app is told.
    let (port2, _other, got2) = tls_server().await;
    let bindings: Bindings = Arc::default();
    bindings.lock().expect("lock").push(SyslogDrain {
        binding_guid: "b2".into(),
        app_guid: APP.into(),
        url: format!("syslog-tls://localhost:{port2}"),
        hostname: "o.s.tls".into(),
    });
    let r2 = start_with(logs::Config {
        api_url: fake_api(bindings).await,
        internal_client_secret: "secret".into(),
        drain_refresh_secs: 1,
        ..Default::default()
    })
    .await;
    let told = testkit::eventually("TLS failure reported", Duration::from_secs(15), || async {
        publish(&r2, &log(APP, "APP/PROC/WEB", "not for strangers", LogStream::Out)).await;
        lgr_lines(&r2).await.into_iter().find(|l| l.contains("unreachable"))
    })
    .await
    .expect("an LGR line says the drain failed");
    assert!(told.contains("TLS"), "{told}");
    assert!(got2.lock().expect("lock").is_empty(), "nothing sent to an unverified server");
}
