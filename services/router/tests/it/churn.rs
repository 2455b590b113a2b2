//! Route-table updates while requests flow: none may fail.

use std::time::Duration;

use bus::BusExt as _;

use crate::{backend, get, reg, start, wait_routed};

#[tokio::test]
async fn table_updates_under_load_drop_no_request() {
    let r = std::sync::Arc::new(start().await);
    let host = "churn.apps.localhost";
    let (a, b, c) = (backend("a").await, backend("b").await, backend("c").await);
    for (port, i) in [(a, "0"), (b, "1")] {
        r.bus.publish_json("router.register", &reg(port, host, i)).await.expect("pub");
    }
    wait_routed(&r, host).await;
    let load: Vec<_> = (0..4)
        .map(|_| {
            let r = r.clone();
            tokio::spawn(async move {
                let mut bad = Vec::new();
                for _ in 0..60 {
                    let (status, body, err) = get(&r, host, "/").await;
                    if status != 200 {
                        bad.push(format!("{status} {err} {body}"));
                    }
                }
                bad
            })
        })
        .collect();
    let dead = testkit::free_port();
    for round in 0..40 {
        let (port, index) = if round % 2 == 0 { (c, "2") } else { (dead, "3") };
        r.bus.publish_json("router.register", &reg(port, host, index)).await.expect("pub");
        // Re-registering live endpoints must keep them (and their in-flight counts).
        r.bus.publish_json("router.register", &reg(a, host, "0")).await.expect("pub");
        r.bus.publish_json("router.unregister", &reg(port, host, index)).await.expect("pub");
        // Another app's route changing alongside.
        let other = format!("other{round}.apps.localhost");
        r.bus.publish_json("router.register", &reg(b, &other, "0")).await.expect("pub");
        // Pacing so the churn overlaps the load (not synchronisation).
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for task in load {
        let bad = task.await.expect("join");
        assert!(bad.is_empty(), "failed during churn: {bad:?}");
    }
}
