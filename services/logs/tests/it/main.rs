//! The logs service over HTTP and the bus: reads with every filter, streams that lose nothing
//! between history and live, and 404 for anyone who may not read.

mod access_api;
mod drains;

use std::sync::Arc;
use std::time::Duration;

use bus::{BusExt as _, DynBus, InProcessBus};
use futures::future::BoxFuture;
use futures::StreamExt as _;
use logs::access::Access;
use wire::envelope::{Envelope, LogStream};

const APP: &str = "6f1c2c3e-8d34-4a9e-9a5e-1c0b2d3e4f50";

/// `bearer admin` reads everything, `bearer dev` reads only APP, anything else nothing.
struct FakeAccess;

impl Access for FakeAccess {
    fn may_read<'a>(&'a self, authorization: &'a str, source: &'a str) -> BoxFuture<'a, bool> {
        Box::pin(async move {
            match authorization {
                "bearer admin" => true,
                "bearer dev" => source == APP,
                _ => false,
            }
        })
    }
}

struct Running {
    bus: DynBus,
    url: String,
    _shutdown: kit::Shutdown,
}

async fn start() -> Running {
    start_with(logs::Config::default()).await
}

async fn start_with(config: logs::Config) -> Running {
    let bus: DynBus = Arc::new(InProcessBus::new());
    let config = logs::Config { addr: "127.0.0.1:0".parse().expect("addr"), ..config };
    let service =
        logs::build_with_access(config, logs::Deps { bus: bus.clone() }, Arc::new(FakeAccess))
            .await
            .expect("build");
    let url = format!("http://{}", service.local_addr());
    let shutdown = kit::Shutdown::new();
    tokio::spawn(service.run(shutdown.clone()));
    testkit::wait_http_ok(&format!("{url}/readyz"), Duration::from_secs(10)).await.expect("ready");
    Running { bus, url, _shutdown: shutdown }
}

fn line(source: &str, ts: i64, text: &str) -> Envelope {
    let mut e = Envelope::log(source, "0", "APP/PROC/WEB", text, LogStream::Out);
    e.timestamp = ts;
    e
}

async fn get(url: &str, token: &str) -> reqwest::Response {
    reqwest::Client::new().get(url).header("authorization", token).send().await.expect("request")
}

async fn texts(res: reqwest::Response) -> Vec<String> {
    let body: wire::envelope::ReadResponse = res.json().await.expect("json");
    body.envelopes.batch.iter().filter_map(Envelope::log_text).collect()
}

#[tokio::test]
async fn reads_in_order_with_every_filter() {
    let r = start().await;
    for (ts, t) in [(100, "a"), (300, "c"), (200, "b"), (400, "d")] {
        r.bus.publish_json(&line(APP, ts, t).subject(), &line(APP, ts, t)).await.expect("publish");
    }
    r.bus.publish_json("logs.metric", &Envelope::gauge(APP, "0", [])).await.expect("gauge");
    r.bus.publish_json("logs.app", &line("other-source", 150, "x")).await.expect("other");
    let base = format!("{}/api/v1/read/{APP}", r.url);
    testkit::eventually("ingested", Duration::from_secs(5), || {
        let base = base.clone();
        async move {
            (texts(get(&format!("{base}?envelope_types=LOG"), "bearer dev").await).await.len() == 4)
                .then_some(())
        }
    })
    .await
    .expect("all four lines");
    let cases = [
        ("?envelope_types=LOG", vec!["a", "b", "c", "d"]),
        ("?envelope_types=LOG&start_time=200&end_time=400", vec!["b", "c"]),
        ("?envelope_types=LOG&descending=true&limit=2", vec!["d", "c"]),
        ("?envelope_types=GAUGE", vec![]),
    ];
    for (q, want) in cases {
        assert_eq!(texts(get(&format!("{base}{q}"), "bearer dev").await).await, want, "{q}");
    }
    let all: wire::envelope::ReadResponse =
        get(&format!("{base}?envelope_types=LOG,GAUGE"), "bearer dev")
            .await
            .json()
            .await
            .expect("json");
    assert_eq!(all.envelopes.batch.len(), 5);
    assert_eq!(get(&format!("{base}?limit=5000"), "bearer dev").await.status(), 400);
    let meta: serde_json::Value =
        get(&format!("{}/api/v1/meta", r.url), "bearer admin").await.json().await.expect("meta");
    assert_eq!(meta["meta"][APP]["count"], "5");
    assert_eq!(meta["meta"]["other-source"]["count"], "1");
    let meta: serde_json::Value =
        get(&format!("{}/api/v1/meta", r.url), "bearer dev").await.json().await.expect("meta");
    assert!(meta["meta"].get("other-source").is_none(), "meta shows only readable sources");
}

#[tokio::test]
async fn a_batch_message_is_stored_envelope_by_envelope() {
    let r = start().await;
    // A broken batch first: refused whole, nothing of it stored, the service reads on.
    let broken = br#"{"batch":[{"timestamp":"1","source_id":"x"},{"oops"#;
    r.bus.publish("logs.rtr", bytes::Bytes::from_static(broken)).await.expect("publish");
    let batch = wire::envelope::EnvelopeBatch {
        batch: vec![line(APP, 100, "a"), line("other-source", 150, "x"), line(APP, 200, "b")],
    };
    r.bus.publish_json("logs.rtr", &batch).await.expect("publish");
    r.bus.publish_json("logs.app", &line(APP, 300, "c")).await.expect("publish");
    let url = format!("{}/api/v1/read/{APP}?envelope_types=LOG", r.url);
    testkit::eventually("ingested", Duration::from_secs(5), || {
        let url = url.clone();
        async move { (texts(get(&url, "bearer dev").await).await.len() == 3).then_some(()) }
    })
    .await
    .expect("the batch's lines and the single one");
    assert_eq!(texts(get(&url, "bearer dev").await).await, ["a", "b", "c"]);
    let other = format!("{}/api/v1/read/other-source", r.url);
    assert_eq!(texts(get(&other, "bearer admin").await).await, ["x"]);
}

#[tokio::test]
async fn readers_without_access_get_404() {
    let r = start().await;
    let base = format!("{}/api/v1/read", r.url);
    assert_eq!(get(&format!("{base}/{APP}"), "").await.status(), 404);
    assert_eq!(get(&format!("{base}/{APP}"), "bearer stranger").await.status(), 404);
    assert_eq!(
        get(&format!("{base}/api"), "bearer dev").await.status(),
        404,
        "platform logs are for operators"
    );
    assert_eq!(get(&format!("{base}/api"), "bearer admin").await.status(), 200);
    assert_eq!(
        get(&format!("{}/api/v1/stream/{APP}", r.url), "bearer stranger").await.status(),
        404
    );
}

/// A platform source with a slash (`cell/<id>`, `router/<index>`) is one path segment,
/// percent-encoded (`cell%2Fabc`), as the dashboard sends it.
#[tokio::test]
async fn a_source_with_a_slash_is_read_percent_encoded() {
    let r = start().await;
    r.bus.publish_json("logs.app", &line("cell/abc", 100, "placed")).await.expect("publish");
    let url = format!("{}/api/v1/read/cell%2Fabc", r.url);
    testkit::eventually("ingested", Duration::from_secs(5), || {
        let url = url.clone();
        async move { (texts(get(&url, "bearer admin").await).await == ["placed"]).then_some(()) }
    })
    .await
    .expect("the cell's line");
    assert_eq!(get(&url, "bearer dev").await.status(), 404, "platform logs are for operators");
    let res = get(&format!("{}/api/v1/stream/cell%2Fabc", r.url), "bearer admin").await;
    assert_eq!(res.status(), 200);
    let mut body = res.bytes_stream();
    let chunk = tokio::time::timeout(Duration::from_secs(5), body.next())
        .await
        .expect("history in time")
        .expect("a chunk")
        .expect("chunk");
    assert!(String::from_utf8_lossy(&chunk).contains("\"source_id\":\"cell/abc\""));
    // Unencoded, it is two segments and no source at all.
    assert_eq!(get(&format!("{}/api/v1/read/cell/abc", r.url), "bearer admin").await.status(), 404);
}

#[tokio::test]
async fn stream_loses_nothing_between_history_and_live() {
    let r = start().await;
    let total = 400i64;
    for i in 0..200 {
        r.bus.publish_json("logs.app", &line(APP, i + 1, &i.to_string())).await.expect("publish");
    }
    let history_url = format!("{}/api/v1/read/{APP}?limit=1000", r.url);
    testkit::eventually("history ingested", Duration::from_secs(5), || {
        let u = history_url.clone();
        async move { (texts(get(&u, "bearer dev").await).await.len() == 200).then_some(()) }
    })
    .await
    .expect("history");
    // Keep publishing while the stream connects.
    let bus = r.bus.clone();
    let publisher = tokio::spawn(async move {
        for i in 200..total {
            bus.publish_json("logs.app", &line(APP, i + 1, &i.to_string())).await.expect("publish");
            tokio::task::yield_now().await;
        }
    });
    let res = get(&format!("{}/api/v1/stream/{APP}?limit=1000", r.url), "bearer dev").await;
    assert_eq!(res.status(), 200);
    let mut body = res.bytes_stream();
    let mut seen = Vec::new();
    let mut buf = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while (seen.len() as i64) < total && tokio::time::Instant::now() < deadline {
        let Ok(Some(chunk)) = tokio::time::timeout(Duration::from_secs(5), body.next()).await
        else {
            break;
        };
        buf.push_str(&String::from_utf8_lossy(&chunk.expect("chunk")));
        while let Some(end) = buf.find("\n\n") {
            let frame: String = buf.drain(..end + 2).collect();
            for data in frame.lines().filter_map(|l| l.strip_prefix("data: ")) {
                if let Ok(batch) = serde_json::from_str::<wire::envelope::EnvelopeBatch>(data) {
                    seen.extend(batch.batch.iter().filter_map(Envelope::log_text));
                }
            }
        }
    }
    publisher.await.expect("publisher");
    let want: Vec<String> = (0..total).map(|i| i.to_string()).collect();
    assert_eq!(seen, want, "every line exactly once, in order");
}

#[tokio::test]
async fn overload_drops_are_counted_and_reported_to_the_app() {
    let r = start_with(logs::Config { ingest_queue: 4, ..Default::default() }).await;
    for i in 0..5000 {
        r.bus.publish_json("logs.app", &line(APP, i + 1, "spam")).await.expect("publish");
    }
    let metrics_url = format!("{}/metrics", r.url);
    let dropped = testkit::eventually("drops counted", Duration::from_secs(10), || {
        let u = metrics_url.clone();
        async move {
            let text = reqwest::get(&u).await.ok()?.text().await.ok()?;
            let n: u64 = text
                .lines()
                .find(|l| l.starts_with("paas_logs_envelopes_dropped_total "))?
                .rsplit(' ')
                .next()?
                .parse()
                .ok()?;
            (n > 0).then_some(n)
        }
    })
    .await
    .expect("dropped counter");
    let read = format!("{}/api/v1/read/{APP}?envelope_types=LOG&descending=true&limit=1000", r.url);
    let notice =
        testkit::eventually("LGR line in the app's stream", Duration::from_secs(10), || {
            let u = read.clone();
            async move {
                let body: wire::envelope::ReadResponse =
                    get(&u, "bearer dev").await.json().await.ok()?;
                body.envelopes.batch.into_iter().find(|e| e.source_type() == Some("LGR"))
            }
        })
        .await
        .expect("notice");
    let text = notice.log_text().expect("text");
    assert!(text.contains("messages dropped"), "{text}");
    assert!(dropped > 0);
}
