//! The kit's own dependencies really start.

use testkit::{Engine, TestDb};

#[tokio::test]
async fn both_engines_give_a_working_database() {
    for engine in Engine::ALL {
        let db = TestDb::new(engine).await.expect("database");
        let pool = db.connect().await.expect("connect");
        let (one,): (i32,) = sqlx::query_as("SELECT 1").fetch_one(&pool.pool).await.expect("query");
        assert_eq!(one, 1, "{engine:?}");
    }
}

#[tokio::test]
async fn nats_server_accepts_connections() {
    let nats = testkit::NatsServer::start().await.expect("nats");
    tokio::net::TcpStream::connect(("127.0.0.1", nats.port())).await.expect("connect");
}
