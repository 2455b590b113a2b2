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

#[tokio::test]
async fn a_pool_works_again_after_postgres_restarts() {
    let pg = testkit::Postgres::dedicated(std::net::Ipv4Addr::LOCALHOST).await.expect("postgres");
    let url = pg.fresh_database().await.expect("database");
    let db = kit::db::Db::connect(&url, 2).await.expect("connect");
    sqlx::query("CREATE TABLE kept (n INTEGER)").execute(&db.pool).await.expect("create");
    sqlx::query("INSERT INTO kept VALUES (7)").execute(&db.pool).await.expect("insert");
    pg.restart().await.expect("restart");
    // The pool's connections were cut; it makes new ones, and the data is still there.
    let (n,): (i32,) =
        sqlx::query_as("SELECT n FROM kept").fetch_one(&db.pool).await.expect("read");
    assert_eq!(n, 7);
}
