//! Services in separate `paasd run` processes, joined by a real NATS server: the router's own
//! log lines travel over NATS into the logs process, which counts them by component.

use std::time::Duration;

use crate::{Paasd, Ports};

#[tokio::test]
async fn processes_exchange_messages_over_nats() {
    let nats = testkit::NatsServer::start().await.expect("nats");
    let dir = tempfile::tempdir().expect("tempdir");
    let ports = Ports::free();
    let mut env = ports.env();
    env.push(("PAAS_BUS_KIND", "nats".into()));
    env.push(("PAAS_BUS_URL", nats.url()));
    env.push(("PAAS_ROUTER_INDEX", "7".into()));
    env.push(("RUST_LOG", "info".into()));

    let _logs = Paasd::spawn(&["run", "--services", "logs"], &env, &dir.path().join("a"));
    let logs = format!("http://127.0.0.1:{}", ports.logs);
    testkit::wait_http_ok(&format!("{logs}/readyz"), Duration::from_secs(30))
        .await
        .expect("logs ready");
    let _router = Paasd::spawn(&["run", "--services", "router"], &env, &dir.path().join("b"));
    let status = format!("http://127.0.0.1:{}/readyz", ports.router_status);
    testkit::wait_http_ok(&status, Duration::from_secs(30)).await.expect("router ready");

    let client = reqwest::Client::new();
    let found = testkit::eventually(
        "router logs counted by the logs process",
        Duration::from_secs(20),
        || {
            let req = client.get(format!("{logs}/metrics")).send();
            async move {
                let text = req.await.ok()?.text().await.ok()?;
                text.lines()
                    .any(|l| l.contains("platform_envelopes") && l.contains("source=\"router/7\""))
                    .then_some(())
            }
        },
    )
    .await;
    assert!(found.is_ok(), "{found:?}");
}
