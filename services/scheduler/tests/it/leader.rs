//! Two schedulers on one PostgreSQL database: one leads, the other stands by (503 on changes)
//! and takes over when the leader goes away or loses its connection.

use std::sync::Arc;
use std::time::Duration;

use testkit::tokens::Issuer;
use tokio::task::JoinHandle;

use crate::fake::{desired, FakeCells};

struct Node {
    url: String,
    leadership: scheduler::leader::Leadership,
    shutdown: kit::Shutdown,
    handle: JoinHandle<Result<(), scheduler::Error>>,
}

async fn node(db_url: &str, issuer: &Issuer) -> Node {
    let config = scheduler::Config {
        addr: "127.0.0.1:0".parse().expect("addr"),
        database_url: db_url.to_owned(),
        leader_poll_ms: 50,
        ..Default::default()
    };
    let parts = scheduler::Parts {
        clock: Arc::new(scheduler::clock::SystemClock),
        cells: Arc::new(FakeCells::default()),
        verifier: Arc::new(issuer.verifier()),
    };
    let bus: bus::DynBus = Arc::new(bus::InProcessBus::new());
    let service =
        scheduler::build_with(config, scheduler::Deps { bus }, parts).await.expect("build");
    let url = format!("http://{}", service.local_addr());
    let leadership = service.leadership();
    let shutdown = kit::Shutdown::new();
    let handle = tokio::spawn(service.run(shutdown.clone()));
    testkit::wait_http_ok(&format!("{url}/readyz"), Duration::from_secs(10)).await.expect("ready");
    Node { url, leadership, shutdown, handle }
}

async fn put(node: &Node, token: &str, guid: &str) -> u16 {
    reqwest::Client::new()
        .put(format!("{}/v1/desired_lrps/{guid}", node.url))
        .header("authorization", token)
        .json(&desired(guid, 1, 128))
        .send()
        .await
        .expect("send")
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_standby_takes_over_when_the_leader_stops() {
    let db = testkit::TestDb::new(testkit::Engine::Postgres).await.expect("db");
    let issuer = Issuer::new("k1", "http://api.test/oauth/token");
    let token = issuer.token(&[auth::SCOPE_INTERNAL], 600);
    let a = node(&db.url, &issuer).await;
    assert!(a.leadership.is_leader(), "the first scheduler leads");
    let b = node(&db.url, &issuer).await;
    assert!(!b.leadership.is_leader(), "the second stands by");
    assert_eq!(put(&b, &token, "p-1").await, 503, "a standby refuses changes");
    assert_eq!(put(&a, &token, "p-1").await, 201);

    a.shutdown.cancel();
    a.handle.await.expect("join").expect("run");
    testkit::eventually("standby takes over", Duration::from_secs(10), || async {
        b.leadership.is_leader().then_some(())
    })
    .await
    .expect("take over");
    assert_eq!(put(&b, &token, "p-2").await, 201, "the new leader accepts changes");
    b.shutdown.cancel();
}

#[tokio::test]
async fn leadership_moves_when_the_leaders_connection_dies() {
    let db = testkit::TestDb::new(testkit::Engine::Postgres).await.expect("db");
    let issuer = Issuer::new("k1", "http://api.test/oauth/token");
    let a = node(&db.url, &issuer).await;
    let b = node(&db.url, &issuer).await;
    assert!(a.leadership.is_leader() && !b.leadership.is_leader());
    let admin = db.connect().await.expect("connect");
    let killed = sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .fetch_all(&admin.pool)
    .await
    .expect("terminate");
    assert_eq!(killed.len(), 1, "one lock holder");
    testkit::eventually("a new leader", Duration::from_secs(10), || async {
        let leaders = [a.leadership.is_leader(), b.leadership.is_leader()];
        let held: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND granted \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        .fetch_one(&admin.pool)
        .await
        .ok()?;
        (leaders.iter().filter(|l| **l).count() == 1 && held == 1).then_some(())
    })
    .await
    .expect("one leader again");
    a.shutdown.cancel();
    b.shutdown.cancel();
}
