//! The per-backend connection limit and the metrics on the status listener.

use std::sync::Arc;
use std::time::Duration;

use bus::BusExt as _;
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinHandle;

use wire::routing::RegistryMessage;

use crate::{get, reg, start_with, wait_routed, Router};

/// A backend whose `/slow` waits until `release` is notified; `entered` gets a permit per
/// `/slow` request received.
async fn slow_backend(entered: Arc<Semaphore>, release: Arc<Notify>) -> u16 {
    let app = axum::Router::new()
        .route(
            "/slow",
            axum::routing::get(move || {
                let (entered, release) = (entered.clone(), release.clone());
                async move {
                    let wait = release.notified();
                    entered.add_permits(1);
                    wait.await;
                    "slow done"
                }
            }),
        )
        .fallback(|| async { "fast" });
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = l.local_addr().expect("addr").port();
    tokio::spawn(async move { axum::serve(l, app).await });
    port
}

/// One request held at a slow backend.
struct Held {
    router: Router,
    /// The backend's registration for `host`.
    registration: RegistryMessage,
    /// Notified, the backend answers the held request.
    release: Arc<Notify>,
    /// The held request's body, once answered.
    answer: JoinHandle<String>,
}

/// A router with a limit of one request in flight per backend, `host` routed to a slow
/// backend, and one request to it held there.
async fn one_request_held(host: &'static str) -> Held {
    let router = start_with(|c| c.max_conns_per_backend = 1).await;
    let entered = Arc::new(Semaphore::new(0));
    let release = Arc::new(Notify::new());
    let port = slow_backend(entered.clone(), release.clone()).await;
    let registration = reg(port, host, "0");
    router.bus.publish_json("router.register", &registration).await.expect("pub");
    wait_routed(&router, host).await;
    let url = format!("{}/slow", router.url);
    let answer = tokio::spawn(async move {
        let res = reqwest::Client::new().get(url).header("host", host).send().await;
        res.expect("slow request").text().await.expect("body")
    });
    entered.acquire().await.expect("the slow request reached the backend").forget();
    Held { router, registration, release, answer }
}

/// Let the held request end, then wait until `host` is served by the instance it held.
async fn end_held(r: &Router, host: &str, release: &Notify, answer: JoinHandle<String>, why: &str) {
    release.notify_one();
    assert_eq!(answer.await.expect("join"), "slow done");
    testkit::eventually("freed", Duration::from_secs(5), || async {
        (get(r, host, "/").await.1 == "fast").then_some(())
    })
    .await
    .expect(why);
}

#[tokio::test]
async fn a_backend_at_its_limit_is_skipped_and_all_at_limit_is_503() {
    let host = "limited.apps.localhost";
    let Held { router: r, release, answer: slow, .. } = one_request_held(host).await;
    let (status, body, err) = get(&r, host, "/").await;
    assert_eq!((status, err.as_str()), (503, "Connection Limit Reached"));
    assert_eq!(
        body,
        "503 Service Unavailable: Requested route ('limited.apps.localhost') has reached the connection limit.\n"
    );
    // A second instance takes the traffic while the first is busy.
    let other = crate::backend("other").await;
    r.bus.publish_json("router.register", &reg(other, host, "1")).await.expect("pub");
    testkit::eventually("spill over", Duration::from_secs(5), || async {
        get(&r, host, "/").await.1.starts_with("other").then_some(())
    })
    .await
    .expect("the free instance serves");
    end_held(&r, host, &release, slow, "the first instance serves again once free").await;
    let metrics = reqwest::get(format!("{}/metrics", r.status))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    for want in [
        "paas_router_responses_total{status_group=\"2xx\"}",
        "paas_router_responses_total{status_group=\"5xx\"}",
        "paas_router_backend_exhausted_conns_total 1",
        "paas_router_total_routes 1",
        "paas_router_registry_message_total{action=\"register\"} 2",
        "paas_router_latency_seconds_count",
        "paas_router_router_latency_seconds_count",
    ] {
        assert!(metrics.contains(want), "{want} missing in:\n{metrics}");
    }
}

/// A cell re-registers its instances every 20 s, and a registration may change while requests
/// are in flight (a zone, a route service bound): a request in flight across either must not
/// leave its instance counted busy once it ends (with a limit of one, every request after it
/// would be refused).
#[tokio::test]
async fn registrations_during_a_request_leave_no_count_behind() {
    let host = "heartbeat.apps.localhost";
    let Held { router: r, registration: heartbeat, release, answer: slow } =
        one_request_held(host).await;
    let mut changed = heartbeat.clone();
    changed.availability_zone = Some("z1".into());
    for m in [&heartbeat, &changed] {
        r.bus.publish_json("router.register", m).await.expect("pub");
    }
    let metrics = format!("{}/metrics", r.status);
    testkit::eventually("registrations taken", Duration::from_secs(5), || async {
        let text = reqwest::get(&metrics).await.ok()?.text().await.ok()?;
        text.contains("paas_router_registry_message_total{action=\"register\"} 3").then_some(())
    })
    .await
    .expect("the router took the heartbeat and the change");
    assert_eq!(get(&r, host, "/").await.2, "Connection Limit Reached", "still in flight");
    end_held(&r, host, &release, slow, "the instance serves again once its request ended").await;
    for _ in 0..5 {
        assert_eq!(get(&r, host, "/").await.0, 200);
    }
}
