//! The scheduler: our Diego (BBS + auctioneer + converger). It stores desired and actual
//! long-running processes, auctions instances to cells, and converges the two.
//!
//! It must never lose a desired instance: anything it is told over HTTP is persisted before it
//! answers.

mod api;
pub mod auction;
pub mod cells;
pub mod clock;
pub mod engine;
mod evacuate;
pub mod leader;
pub mod lifecycle;
pub mod repo;
mod tasks;

use std::net::SocketAddr;
use std::sync::Arc;
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
    /// An EVACUATING instance is stopped after this even without a running replacement.
    pub evacuation_timeout_secs: u64,
    /// How often a standby tries for the leader lock, and the leader checks its connection.
    pub leader_poll_ms: u64,
    /// Cap on container starts in flight over the whole cluster; 0 is no limit.
    pub starting_container_count_maximum: u32,
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
            evacuation_timeout_secs: 600,
            leader_poll_ms: 1000,
            starting_container_count_maximum: 0,
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
    engine: engine::Engine,
    verifier: Arc<auth::Verifier>,
    leadership: leader::Leadership,
}

/// What `build` makes from the configuration; tests bring their own.
pub struct Parts {
    pub clock: clock::DynClock,
    pub cells: cells::DynCellClient,
    pub verifier: Arc<auth::Verifier>,
}

/// Check the configuration, open the database and bind the listener.
pub async fn build(config: Config, deps: Deps) -> Result<Service, Error> {
    let api = config.api_url.trim_end_matches('/').to_owned();
    let token = Arc::new(auth::ClientCredentials::new(
        format!("{api}/oauth/token"),
        &config.internal_client_id,
        &config.internal_client_secret,
    ));
    let parts = Parts {
        clock: Arc::new(clock::SystemClock),
        cells: Arc::new(cells::HttpCells::new(token)),
        verifier: Arc::new(auth::Verifier::from_url(
            format!("{api}/oauth/token"),
            None,
            format!("{api}/token_keys"),
        )),
    };
    build_with(config, deps, parts).await
}

/// [`build`] with a given clock, cell client and token verifier.
pub async fn build_with(config: Config, deps: Deps, parts: Parts) -> Result<Service, Error> {
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
    let db = open_db(&config).await?;
    let repo = repo::Repo::new(db.clone());
    let engine =
        engine::Engine::new(repo, parts.clock, parts.cells, deps.bus.clone(), config.cell_ttl_secs)
            .with_evacuation_timeout(config.evacuation_timeout_secs)
            .with_start_limit(config.starting_container_count_maximum);
    let listener = kit::http::bind(config.addr).await.map_err(Error::Listen)?;
    let ready = Readiness::new();
    ready.register("database");
    ready.register("bus");
    let leadership = if db.engine == kit::db::Engine::Postgres {
        ready.register("leadership");
        leader::Leadership::default()
    } else {
        leader::Leadership::sole()
    };
    let metrics = Metrics::new("scheduler");
    metrics.register("leader", "1 while this scheduler leads", leadership.gauge());
    Ok(Service {
        config,
        bus: deps.bus,
        db,
        listener,
        ready,
        metrics,
        engine,
        verifier: parts.verifier,
        leadership,
    })
}

/// Connect to the scheduler database and apply its migrations.
pub async fn open_db(config: &Config) -> Result<Db, Error> {
    let db = Db::connect(&config.database_url, config.max_db_connections).await?;
    let (sqlite, postgres) = kit::migrations!(
        "scheduler",
        [(1, "init", "0001_init.sql"), (2, "tasks", "0002_tasks.sql")]
    );
    db.migrate(sqlite, postgres).await?;
    Ok(db)
}

impl Service {
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or(self.config.addr)
    }

    pub fn readiness(&self) -> Readiness {
        self.ready.clone()
    }

    /// Whether this scheduler leads (always with SQLite).
    pub fn leadership(&self) -> leader::Leadership {
        self.leadership.clone()
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
        let contend = (self.db.engine == kit::db::Engine::Postgres).then(|| {
            kit::spawn_named(
                "scheduler-leadership",
                leader::contend(
                    self.config.database_url.clone(),
                    self.leadership.clone(),
                    self.ready.clone(),
                    shutdown.clone(),
                    Duration::from_millis(self.config.leader_poll_ms.max(10)),
                ),
            )
        });
        let converge = kit::spawn_named(
            "scheduler-convergence",
            convergence_loop(
                self.engine.clone(),
                self.config.clone(),
                self.leadership.clone(),
                shutdown.clone(),
            ),
        );
        let api = api::Api {
            engine: self.engine.clone(),
            verifier: self.verifier.clone(),
            leadership: self.leadership.clone(),
        };
        let app =
            api::routes(api).merge(kit::http::ops_routes(self.ready.clone(), self.metrics.clone()));
        let drain = Duration::from_secs(self.config.drain_secs);
        let served = kit::http::serve(self.listener, app, shutdown, drain).await;
        follow.abort();
        db_health.abort();
        converge.abort();
        if let Some(c) = contend {
            // It closes its connection (and so releases the lock) once shutdown is seen.
            let _ = c.await;
        }
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

/// Converge every interval, and at once when a cell's presence expires.
async fn convergence_loop(
    engine: engine::Engine,
    config: Config,
    leadership: leader::Leadership,
    shutdown: kit::Shutdown,
) {
    let interval = Duration::from_secs(config.convergence_interval_secs);
    let ttl_ns = i64::try_from(config.cell_ttl_secs).unwrap_or(15) * clock::SECOND_NS;
    let mut last = tokio::time::Instant::now();
    let mut known_lost: std::collections::HashSet<String> = Default::default();
    let mut was_leader = false;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        let leading = leadership.is_leader();
        let took_over = leading && !was_leader;
        was_leader = leading;
        if !leading {
            continue;
        }
        let now = engine.now();
        let lost: std::collections::HashSet<String> = match engine.repo.list_cells().await {
            Ok(cells) => cells
                .into_iter()
                .filter(|(_, seen)| now - seen > ttl_ns)
                .map(|(p, _)| p.cell_id)
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read cells");
                continue;
            }
        };
        // Tasks wait for no interval: pending ones are placed, callbacks retried every second.
        if let Err(e) = engine.converge_tasks().await {
            tracing::warn!(error = %e, "task convergence failed");
        }
        let newly_lost = lost.difference(&known_lost).next().is_some();
        known_lost = lost;
        if took_over || newly_lost || last.elapsed() >= interval {
            last = tokio::time::Instant::now();
            if let Err(e) = engine.converge().await {
                tracing::error!(error = %e, "convergence failed");
            }
        }
    }
}
