//! The scheduler: our Diego (BBS + auctioneer + converger). It stores desired and actual
//! long-running processes, auctions instances to cells, and converges the two.
//!
//! It must never lose a desired instance: anything it is told over HTTP is persisted before it
//! answers.

use std::net::SocketAddr;
use std::time::Duration;

use kit::db::Db;
use kit::metrics::Metrics;
use kit::ready::Readiness;
use serde::{Deserialize, Serialize};

/// Configuration of the scheduler (`[scheduler]`, `PAAS_SCHEDULER_*`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub addr: SocketAddr,
    /// `sqlite://...` or `postgres://...`.
    pub database_url: String,
    pub max_db_connections: u32,
    pub api_url: String,
    pub internal_client_id: String,
    pub internal_client_secret: String,
    pub convergence_interval_secs: u64,
    /// A cell whose presence is older than this is lost.
    pub cell_ttl_secs: u64,
    pub drain_secs: u64,
}

impl Default for Config {
    fn default() -> Self {
        let home = std::env::var_os("HOME")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| "/root".into());
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 9200)),
            database_url: format!(
                "sqlite://{}",
                home.join(".local/share/paas/scheduler/scheduler.db").display()
            ),
            max_db_connections: 10,
            api_url: "http://127.0.0.1:9000".into(),
            internal_client_id: "paas-internal".into(),
            internal_client_secret: String::new(),
            convergence_interval_secs: 30,
            cell_ttl_secs: 15,
            drain_secs: 10,
        }
    }
}

pub struct Deps {
    pub bus: bus::DynBus,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid configuration: scheduler.{0}")]
    Config(String),
    #[error("scheduler database: {0}")]
    Db(#[from] kit::db::DbError),
    #[error("scheduler listener: {0}")]
    Listen(std::io::Error),
}

pub struct Service {
    config: Config,
    bus: bus::DynBus,
    db: Db,
    listener: tokio::net::TcpListener,
    ready: Readiness,
    metrics: Metrics,
}

/// Check the configuration, open the database and bind the listener.
pub async fn build(config: Config, deps: Deps) -> Result<Service, Error> {
    if config.convergence_interval_secs == 0 {
        return Err(Error::Config("convergence_interval_secs: must be at least 1".into()));
    }
    if config.cell_ttl_secs == 0 {
        return Err(Error::Config("cell_ttl_secs: must be at least 1".into()));
    }
    if let Some(path) = config.database_url.strip_prefix("sqlite://") {
        if let Some(dir) = std::path::Path::new(path).parent() {
            let _ = std::fs::create_dir_all(dir);
        }
    }
    let db = Db::connect(&config.database_url, config.max_db_connections).await?;
    let listener = kit::http::bind(config.addr).await.map_err(Error::Listen)?;
    let ready = Readiness::new();
    ready.register("database");
    ready.register("bus");
    Ok(Service { config, bus: deps.bus, db, listener, ready, metrics: Metrics::new("scheduler") })
}

impl Service {
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or(self.config.addr)
    }

    pub fn readiness(&self) -> Readiness {
        self.ready.clone()
    }

    pub async fn run(self, shutdown: kit::Shutdown) -> Result<(), Error> {
        let follow = kit::spawn_named(
            "scheduler-bus-readiness",
            kit::ready::follow_bus(self.ready.clone(), self.bus.clone(), shutdown.clone()),
        );
        let db_health = kit::spawn_named(
            "scheduler-db-readiness",
            follow_db(self.db.clone(), self.ready.clone(), shutdown.clone()),
        );
        let app = kit::http::ops_routes(self.ready.clone(), self.metrics.clone());
        let drain = Duration::from_secs(self.config.drain_secs);
        let served = kit::http::serve(self.listener, app, shutdown, drain).await;
        follow.abort();
        db_health.abort();
        self.db.pool.close().await;
        served.map_err(Error::Listen)
    }
}

async fn follow_db(db: Db, ready: Readiness, shutdown: kit::Shutdown) {
    loop {
        ready.set("database", db.ping().await);
        let wait = if ready.is_ready() { 5000 } else { 50 };
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(Duration::from_millis(wait)) => {}
        }
    }
}
