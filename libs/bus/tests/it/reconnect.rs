//! NATS reconnection: the client comes back on its own after the server restarts, the
//! connection epoch grows (routers re-announce themselves on it), and subscriptions resume.

use std::time::Duration;

use bus::{Bus, NatsBus, NatsOptions};
use bytes::Bytes;
use testkit::NatsServer;

#[tokio::test]
async fn nats_reconnects_and_resubscribes() {
    let mut server = NatsServer::start().await.expect("nats");
    let port = server.port();
    let opts = NatsOptions { url: server.url(), ..Default::default() };
    let bus = NatsBus::connect(&opts).await.expect("connect");
    let mut epoch = bus.connection_epoch();
    let first = *epoch.borrow_and_update();
    let mut sub = bus.subscribe("after.restart").await.expect("sub");

    server.kill();
    testkit::eventually("disconnect noticed", Duration::from_secs(10), || async {
        (!bus.is_connected()).then_some(())
    })
    .await
    .expect("disconnected");
    let _server = NatsServer::start_on(port).await.expect("restart");

    tokio::time::timeout(Duration::from_secs(20), async {
        while *epoch.borrow_and_update() <= first {
            epoch.changed().await.expect("epoch sender alive");
        }
    })
    .await
    .expect("epoch grows on reconnect");

    // The subscription made before the restart works again.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        bus.publish("after.restart", Bytes::from_static(b"x")).await.expect("publish");
        if let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(200), sub.next()).await {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no message after the restart");
    }
}

#[tokio::test]
async fn connecting_to_a_dead_server_fails_with_its_address() {
    let port = testkit::free_port();
    let opts = NatsOptions { url: format!("nats://127.0.0.1:{port}"), ..Default::default() };
    let err = NatsBus::connect(&opts).await.err().expect("must fail");
    assert!(err.to_string().contains(&port.to_string()), "{err}");
}
