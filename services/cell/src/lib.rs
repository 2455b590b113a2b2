//! The cell: runs app instances in containers on its host (our rep + executor + Garden +
//! route emitter), health-checks them, reports their state to the scheduler, registers their
//! routes with the routers and ships their output and metrics.
//!
//! It must never leave a container's resources behind (mounts, network namespace, port
//! mapping, cgroup, directories) once the instance is gone.

pub mod container;
pub mod image;
pub mod net;
pub mod os;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use kit::metrics::Metrics;
use kit::ready::Readiness;
use serde::{Deserialize, Serialize};

/// Configuration of a cell (`[cell]`, `PAAS_CELL_*`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Internal API for the scheduler.
    pub addr: SocketAddr,
    /// Unique name of this cell (default: the host name).
    pub cell_id: String,
    pub zone: String,
    pub memory_mb: u64,
    pub disk_mb: u64,
    pub max_containers: u32,
    pub data_dir: PathBuf,
    pub stacks_dir: PathBuf,
    /// Stacks this cell offers.
    pub stacks: Vec<String>,
    pub scheduler_url: String,
    pub api_url: String,
    pub internal_client_id: String,
    pub internal_client_secret: String,
    /// `auto` (runc when root and runc are present, else process), `runc` or `process`.
    pub backend: String,
    /// Address routers reach this cell's mapped ports on.
    pub external_ip: String,
    pub drain_secs: u64,
}

impl Default for Config {
    fn default() -> Self {
        let share = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| "/root".into())
            .join(".local/share/paas");
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 9300)),
            cell_id: hostname(),
            zone: "z1".into(),
            memory_mb: 8192,
            disk_mb: 32768,
            max_containers: 250,
            data_dir: share.join("cell"),
            stacks_dir: share.join("stacks"),
            stacks: vec![stack::DEFAULT_STACK.into()],
            scheduler_url: "http://127.0.0.1:9200".into(),
            api_url: "http://127.0.0.1:9000".into(),
            internal_client_id: "paas-internal".into(),
            internal_client_secret: String::new(),
            backend: "auto".into(),
            external_ip: "127.0.0.1".into(),
            drain_secs: 10,
        }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "cell-0".into())
}

pub struct Deps {
    pub bus: bus::DynBus,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid configuration: cell.{0}")]
    Config(String),
    #[error("cell data directory {path}: {source}")]
    DataDir { path: String, source: std::io::Error },
    #[error("cell listener: {0}")]
    Listen(std::io::Error),
}

pub struct Service {
    config: Config,
    bus: bus::DynBus,
    listener: tokio::net::TcpListener,
    ready: Readiness,
    metrics: Metrics,
}

/// Check the configuration, prepare the data directory and bind the listener.
pub async fn build(config: Config, deps: Deps) -> Result<Service, Error> {
    if !matches!(config.backend.as_str(), "auto" | "runc" | "process") {
        return Err(Error::Config(format!(
            "backend: {:?} is not one of auto, runc, process",
            config.backend
        )));
    }
    if config.cell_id.is_empty() || config.cell_id.contains('/') {
        return Err(Error::Config("cell_id: must be non-empty and contain no '/'".into()));
    }
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|source| Error::DataDir { path: config.data_dir.display().to_string(), source })?;
    let listener = kit::http::bind(config.addr).await.map_err(Error::Listen)?;
    let ready = Readiness::new();
    ready.register("bus");
    Ok(Service { config, bus: deps.bus, listener, ready, metrics: Metrics::new("cell") })
}

impl Service {
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or(self.config.addr)
    }

    pub fn readiness(&self) -> Readiness {
        self.ready.clone()
    }

    /// The name this cell's logs carry (`cell/<id>`).
    pub fn cell_id(&self) -> &str {
        &self.config.cell_id
    }

    pub async fn run(self, shutdown: kit::Shutdown) -> Result<(), Error> {
        let follow = kit::spawn_named(
            "cell-bus-readiness",
            kit::ready::follow_bus(self.ready.clone(), self.bus.clone(), shutdown.clone()),
        );
        let app = kit::http::ops_routes(self.ready.clone(), self.metrics.clone());
        let drain = Duration::from_secs(self.config.drain_secs);
        let served = kit::http::serve(self.listener, app, shutdown, drain).await;
        follow.abort();
        served.map_err(Error::Listen)
    }
}
