use std::sync::Arc;
use std::time::Duration;

use bus::{BusError, BusExt as _, DynBus, InProcessBus, NatsBus, NatsOptions, Subscription};
use bytes::Bytes;
use testkit::NatsServer;

/// A bus under test, keeping its server alive.
struct Fixture {
    buses: Vec<DynBus>,
    _server: Option<NatsServer>,
}

/// `n` handles on the same bus: one shared in-process bus, or `n` separate NATS connections
/// (as separate processes would have).
async fn fixture(nats: bool, n: usize) -> Fixture {
    if nats {
        let server = NatsServer::start().await.expect("nats-server");
        let mut buses: Vec<DynBus> = Vec::new();
        for i in 0..n {
            let opts =
                NatsOptions { url: server.url(), name: format!("test-{i}"), ..Default::default() };
            buses.push(Arc::new(NatsBus::connect(&opts).await.expect("connect")));
        }
        Fixture { buses, _server: Some(server) }
    } else {
        let bus: DynBus = Arc::new(InProcessBus::new());
        Fixture { buses: vec![bus; n], _server: None }
    }
}

async fn recv(sub: &mut Subscription) -> Option<bus::Message> {
    tokio::time::timeout(Duration::from_secs(5), sub.next()).await.ok().flatten()
}

/// Nothing arrives within a short window (used only to assert absence).
async fn silent(sub: &mut Subscription) -> bool {
    tokio::time::timeout(Duration::from_millis(300), sub.next()).await.is_err()
}

macro_rules! both {
    ($($name:ident),* $(,)?) => {
        mod inproc {
            $(#[tokio::test] async fn $name() { super::$name(false).await })*
        }
        mod nats {
            $(#[tokio::test] async fn $name() { super::$name(true).await })*
        }
    };
}

both!(
    publish_reaches_every_subscriber,
    wildcards_match_tokens,
    queue_groups_deliver_to_exactly_one_member,
    request_reply_round_trips,
    request_without_responder_fails_fast,
    request_times_out,
    dropping_a_subscription_unsubscribes,
    invalid_subjects_are_refused,
    order_is_kept_per_publisher,
);

async fn publish_reaches_every_subscriber(nats: bool) {
    let f = fixture(nats, 3).await;
    let mut a = f.buses[0].subscribe("router.register").await.expect("sub a");
    let mut b = f.buses[1].subscribe("router.register").await.expect("sub b");
    f.buses[2].publish("router.register", Bytes::from_static(b"{}")).await.expect("publish");
    for sub in [&mut a, &mut b] {
        let m = recv(sub).await.expect("delivered");
        assert_eq!(m.subject, "router.register");
        assert_eq!(&m.payload[..], b"{}");
    }
}

async fn wildcards_match_tokens(nats: bool) {
    let f = fixture(nats, 2).await;
    let mut all = f.buses[0].subscribe("logs.>").await.expect("sub");
    let mut one = f.buses[0].subscribe("logs.*").await.expect("sub");
    let mut mid = f.buses[0].subscribe("a.*.c").await.expect("sub");
    for s in ["logs.app", "logs.app.extra", "a.b.c", "a.b.d"] {
        f.buses[1].publish(s, Bytes::from(s.to_owned())).await.expect("publish");
    }
    assert_eq!(recv(&mut all).await.expect("1").subject, "logs.app");
    assert_eq!(recv(&mut all).await.expect("2").subject, "logs.app.extra");
    assert_eq!(recv(&mut one).await.expect("3").subject, "logs.app");
    assert_eq!(recv(&mut mid).await.expect("4").subject, "a.b.c");
    assert!(silent(&mut one).await, "logs.* must not match logs.app.extra");
    assert!(silent(&mut mid).await, "a.*.c must not match a.b.d");
}

async fn queue_groups_deliver_to_exactly_one_member(nats: bool) {
    let f = fixture(nats, 4).await;
    let mut members = Vec::new();
    for bus in &f.buses[..3] {
        members.push(bus.queue_subscribe("staging.request", "stagers").await.expect("qsub"));
    }
    let mut watcher = f.buses[0].subscribe("staging.request").await.expect("plain sub");
    let n = 60;
    for i in 0..n {
        f.buses[3].publish("staging.request", Bytes::from(i.to_string())).await.expect("publish");
    }
    // The plain subscriber sees all of them...
    for _ in 0..n {
        recv(&mut watcher).await.expect("watcher gets every message");
    }
    // ...and the group together sees each exactly once.
    let mut seen = Vec::new();
    let mut per_member = Vec::new();
    for m in &mut members {
        let mut count = 0;
        while let Ok(Some(msg)) = tokio::time::timeout(Duration::from_millis(500), m.next()).await {
            seen.push(String::from_utf8(msg.payload.to_vec()).expect("utf8"));
            count += 1;
        }
        per_member.push(count);
    }
    seen.sort_by_key(|s| s.parse::<u32>().unwrap_or(u32::MAX));
    let want: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    assert_eq!(seen, want, "each message exactly once across the group");
    assert!(per_member.iter().filter(|c| **c > 0).count() >= 2, "load is shared: {per_member:?}");
}

async fn request_reply_round_trips(nats: bool) {
    let f = fixture(nats, 2).await;
    let mut greet = f.buses[0].subscribe("router.greet").await.expect("sub");
    let responder = f.buses[0].clone();
    let task = tokio::spawn(async move {
        let msg = greet.next().await.expect("request");
        responder.respond(&msg, Bytes::from_static(b"hello")).await.expect("respond");
    });
    let reply = f.buses[1]
        .request("router.greet", Bytes::new(), Duration::from_secs(5))
        .await
        .expect("reply");
    assert_eq!(&reply.payload[..], b"hello");
    task.await.expect("responder");
}

async fn request_without_responder_fails_fast(nats: bool) {
    let f = fixture(nats, 1).await;
    let started = std::time::Instant::now();
    let err = f.buses[0]
        .request("nobody.home", Bytes::new(), Duration::from_secs(10))
        .await
        .expect_err("no responder");
    assert!(matches!(err, BusError::NoResponders(_)), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5), "must not wait for the timeout");
}

async fn request_times_out(nats: bool) {
    let f = fixture(nats, 2).await;
    let _silent_listener = f.buses[0].subscribe("slow.service").await.expect("sub");
    let err = f.buses[1]
        .request("slow.service", Bytes::new(), Duration::from_millis(200))
        .await
        .expect_err("timeout");
    assert!(matches!(err, BusError::Timeout { .. }), "{err:?}");
}

async fn dropping_a_subscription_unsubscribes(nats: bool) {
    let f = fixture(nats, 2).await;
    let sub = f.buses[0].subscribe("gone").await.expect("sub");
    drop(sub);
    let mut other = f.buses[0].subscribe("still.here").await.expect("sub");
    // Give an unsubscribe time to reach the server by round-tripping through it.
    f.buses[1].publish("still.here", Bytes::new()).await.expect("publish");
    recv(&mut other).await.expect("bus works");
    let err =
        f.buses[1].request("gone", Bytes::new(), Duration::from_secs(2)).await.expect_err("no one");
    assert!(matches!(err, BusError::NoResponders(_)), "{err:?}");
}

async fn invalid_subjects_are_refused(nats: bool) {
    let f = fixture(nats, 1).await;
    for bad in ["", "a..b", "a.*", "has space"] {
        assert!(
            matches!(
                f.buses[0].publish(bad, Bytes::new()).await,
                Err(BusError::InvalidSubject(..))
            ),
            "publish {bad:?}"
        );
    }
    assert!(f.buses[0].subscribe("a.>.b").await.is_err());
}

async fn order_is_kept_per_publisher(nats: bool) {
    let f = fixture(nats, 2).await;
    let mut sub = f.buses[0].subscribe("seq").await.expect("sub");
    for i in 0..500u32 {
        f.buses[1].publish_json("seq", &i).await.expect("publish");
    }
    for i in 0..500u32 {
        let m = recv(&mut sub).await.expect("message");
        let got: u32 = serde_json::from_slice(&m.payload).expect("json");
        assert_eq!(got, i);
    }
    assert!(f.buses[1].is_connected());
    assert!(*f.buses[1].connection_epoch().borrow() >= 1);
}
