//! The test kit: real dependencies on free ports in temporary directories, started by the test
//! that needs them — a NATS server, a PostgreSQL cluster with a fresh database per test, a
//! SQLite file — and helpers to poll with a deadline instead of sleeping.
//!
//! Tests never rely on a server started by hand, and never on fixed ports. This crate is only
//! for tests and benchmarks; no shipped binary may depend on it.

pub mod broker;
pub mod nats;
pub mod pg;
pub mod route_service;
pub mod syslog;
pub mod tls;
pub mod tokens;

use std::future::Future;
use std::net::TcpListener;
use std::time::Duration;

pub use nats::NatsServer;
pub use pg::Postgres;

/// Ports handed out by [`free_port`]: below Linux's ephemeral range (32768–60999), so an
/// outgoing connection of some other test cannot take the port between the pick and the bind.
const PORTS: std::ops::Range<u16> = 20_000..32_000;

/// A port nobody listens on right now, picked at random below the ephemeral range (not one
/// the kernel hands to outgoing connections, which port 0 would give), and never handed out
/// twice in this process: tests running side by side pick ports before their servers bind them.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    for _ in 0..1000 {
        let port = rand::Rng::gen_range(&mut rand::thread_rng(), PORTS);
        if !given.contains(&port) && TcpListener::bind(("127.0.0.1", port)).is_ok() {
            given.push(port);
            return port;
        }
    }
    panic!("no free port on loopback in {PORTS:?}")
}

/// Which SQL engine a test runs against; tests loop over [`Engine::ALL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

impl Engine {
    pub const ALL: [Engine; 2] = [Engine::Sqlite, Engine::Postgres];
}

/// A fresh, empty database of either engine. Keep it alive as long as the test uses it.
pub struct TestDb {
    pub url: String,
    pub engine: Engine,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub async fn new(engine: Engine) -> anyhow::Result<Self> {
        match engine {
            Engine::Sqlite => {
                let dir = tempfile::tempdir()?;
                let url = format!("sqlite://{}", dir.path().join("test.db").display());
                Ok(Self { url, engine, _dir: Some(dir) })
            }
            Engine::Postgres => {
                let url = pg::shared().await?.fresh_database().await?;
                Ok(Self { url, engine, _dir: None })
            }
        }
    }

    /// Connected pool on this database.
    pub async fn connect(&self) -> anyhow::Result<kit::db::Db> {
        Ok(kit::db::Db::connect(&self.url, 5).await?)
    }
}

/// Poll `check` every 50 ms until it yields `Some`, or fail after `deadline`.
pub async fn eventually<T, F, Fut>(
    what: &str,
    deadline: Duration,
    mut check: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let until = tokio::time::Instant::now() + deadline;
    loop {
        if let Some(v) = check().await {
            return Ok(v);
        }
        if tokio::time::Instant::now() >= until {
            anyhow::bail!("timed out after {deadline:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Wait until `url` answers 200.
pub async fn wait_http_ok(url: &str, deadline: Duration) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    eventually(url, deadline, || {
        let req = client.get(url).timeout(Duration::from_secs(1)).send();
        async move { req.await.ok().filter(|r| r.status().is_success()).map(|_| ()) }
    })
    .await
}
