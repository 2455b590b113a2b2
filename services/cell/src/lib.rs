//! The cell: runs app instances in containers on its host (our rep + executor + Garden +
//! route emitter), health-checks them, reports their state to the scheduler, registers their
//! routes with the routers and ships their output and metrics. Without root or runc it runs
//! them as plain processes instead (development only: nothing isolates them).
//!
//! It must never leave a container's resources behind (mounts, network namespace, port
//! mapping, cgroup, processes, directories) once the instance is gone.

mod api;
pub mod backend;
pub mod disk;
pub mod docker;
pub mod emitter;
pub mod env;
pub mod exec;
pub mod executor;
pub mod health;
pub mod image;
mod instance;
pub mod net;
pub mod procfs;
pub mod report;
pub mod shared;
mod ssh;
mod task;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
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
    /// Stacks this cell offers (those of them built in `stacks_dir`, for runc containers).
    pub stacks: Vec<String>,
    /// The scheduler: one URL, or every scheduler's separated by commas (reports go to the
    /// one that leads).
    pub scheduler_url: String,
    pub api_url: String,
    pub internal_client_id: String,
    pub internal_client_secret: String,
    /// `auto` (runc when root and runc are present, else process), `runc` or `process`.
    pub backend: String,
    /// Address routers reach this cell's host ports on.
    pub external_ip: String,
    /// Bridge the containers' veths hang on.
    pub bridge: String,
    /// A /24 for container addresses (its .1 is the bridge).
    pub subnet: Ipv4Addr,
    /// nftables table of this cell.
    pub nft_table: String,
    /// Host ports of instances (mapped to a container's 8080, or a process's own).
    pub host_port_min: u16,
    pub host_port_max: u16,
    pub heartbeat_secs: u64,
    /// Seconds between SIGTERM and SIGKILL when stopping an instance.
    pub graceful_stop_secs: u64,
    /// Milliseconds between unregistering a stopping instance's routes and its SIGTERM, so
    /// routers stop sending it requests before it goes and the ones under way finish.
    pub route_drain_ms: u64,
    /// Seconds between container metrics (cpu, memory, disk and quotas) of each instance.
    pub metrics_secs: u64,
    /// Seconds between measurements of each instance's disk use against its quota.
    pub disk_check_secs: u64,
    pub drain_secs: u64,
    /// On SIGTERM: how long to wait for the scheduler to re-place this cell's instances
    /// elsewhere before stopping the rest (0 = stop them at once).
    pub evacuation_timeout_secs: u64,
    /// How often a draining cell asks whether its instances were replaced.
    pub evacuation_polling_secs: u64,
    /// Seconds between bulk syncs with the scheduler: instances it has on this cell that the
    /// cell does not hold are removed (and placed again); the first runs at start.
    pub bulk_sync_secs: u64,
    /// Registries (`host[:port]`) pulled from over plain HTTP (loopback ones always are).
    pub docker_insecure_registries: Vec<String>,
    /// How long a docker image no instance uses stays cached (its layers with it).
    pub image_cache_ttl_secs: u64,
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
            stacks: stack::STACKS.iter().map(|s| (*s).to_owned()).collect(),
            scheduler_url: "http://127.0.0.1:9200".into(),
            api_url: "http://127.0.0.1:9000".into(),
            internal_client_id: "paas-internal".into(),
            internal_client_secret: String::new(),
            backend: "auto".into(),
            external_ip: "127.0.0.1".into(),
            bridge: "paas0".into(),
            subnet: Ipv4Addr::new(10, 254, 0, 0),
            nft_table: "paas_cell".into(),
            host_port_min: 61000,
            host_port_max: 61999,
            heartbeat_secs: 5,
            graceful_stop_secs: 10,
            route_drain_ms: 1000,
            metrics_secs: 15,
            disk_check_secs: 5,
            drain_secs: 10,
            evacuation_timeout_secs: 600,
            evacuation_polling_secs: 5,
            bulk_sync_secs: 30,
            docker_insecure_registries: Vec::new(),
            image_cache_ttl_secs: 3600,
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
    runtime: Runtime,
    verifier: Arc<auth::Verifier>,
}

/// The machinery that runs instances.
struct Runtime {
    executor: executor::Executor,
    shared: Arc<shared::Shared>,
}

/// What `build` makes from the configuration; tests bring their own.
pub struct Parts {
    /// The host (mounts, runc, process groups, network).
    pub host: Arc<dyn ::container::Host>,
    pub reporter: Arc<dyn report::Reporter>,
    pub verifier: Arc<auth::Verifier>,
    pub token: Option<Arc<auth::ClientCredentials>>,
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines().any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// Whether this host can run runc containers (root, and `runc` on the PATH).
pub fn runc_usable() -> bool {
    let runc = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join("runc").is_file()))
        .unwrap_or(false);
    is_root() && runc
}

/// Whether a configuration resolves to the runc backend (`auto`: when runc is usable here).
pub fn uses_runc(backend: &str) -> bool {
    match backend {
        "runc" => true,
        "auto" => runc_usable(),
        _ => false,
    }
}

/// Check the configuration, prepare the data directory and bind the listener.
pub async fn build(config: Config, deps: Deps) -> Result<Service, Error> {
    let api = config.api_url.trim_end_matches('/').to_owned();
    let token = Arc::new(auth::ClientCredentials::new(
        format!("{api}/oauth/token"),
        &config.internal_client_id,
        &config.internal_client_secret,
    ));
    let scheduler = kit::leader::Leader::parse("scheduler", &config.scheduler_url)
        .map_err(|e| Error::Config(format!("scheduler_url: {e}")))?;
    let parts = Parts {
        host: Arc::new(::container::RealHost),
        reporter: Arc::new(report::HttpReporter::new(scheduler, token.clone())),
        verifier: Arc::new(auth::Verifier::from_url(
            format!("{api}/oauth/token"),
            None,
            format!("{api}/token_keys"),
        )),
        token: Some(token),
    };
    build_with(config, deps, parts).await
}

/// [`build`] with given OS access, scheduler reporter and token verifier.
pub async fn build_with(config: Config, deps: Deps, parts: Parts) -> Result<Service, Error> {
    if !matches!(config.backend.as_str(), "auto" | "runc" | "process") {
        return Err(Error::Config(format!(
            "backend: {:?} is not one of auto, runc, process",
            config.backend
        )));
    }
    if config.cell_id.is_empty() || config.cell_id.contains('/') {
        return Err(Error::Config("cell_id: must be non-empty and contain no '/'".into()));
    }
    if config.metrics_secs == 0 || config.disk_check_secs == 0 || config.bulk_sync_secs == 0 {
        return Err(Error::Config(
            "metrics_secs, disk_check_secs, bulk_sync_secs: must be at least 1".into(),
        ));
    }
    if config.host_port_min > config.host_port_max {
        return Err(Error::Config("host_port_min: must not exceed host_port_max".into()));
    }
    let instances = config.data_dir.join("instances");
    std::fs::create_dir_all(&instances)
        .map_err(|source| Error::DataDir { path: config.data_dir.display().to_string(), source })?;
    let runc = uses_runc(&config.backend);
    if !runc {
        process_backend_checks(&config, &instances)?;
    }
    let runtime = runtime(&config, &deps, &parts, runc);
    let listener = kit::http::bind(config.addr).await.map_err(Error::Listen)?;
    let ready = Readiness::new();
    ready.register("bus");
    Ok(Service {
        config,
        bus: deps.bus,
        listener,
        ready,
        metrics: Metrics::new("cell"),
        runtime,
        verifier: parts.verifier,
    })
}

/// As root, apps run as vcap, which must reach the instance directories; and say loudly what
/// this backend does not do.
fn process_backend_checks(config: &Config, instances: &std::path::Path) -> Result<(), Error> {
    let root = is_root();
    if root {
        use std::os::unix::fs::PermissionsExt as _;
        let open = std::fs::Permissions::from_mode(0o755);
        std::fs::set_permissions(instances, open)
            .map_err(|source| Error::DataDir { path: instances.display().to_string(), source })?;
        if let Some(closed) = backend::process::closed_to_others(instances) {
            return Err(Error::Config(format!(
                "data_dir: apps run as vcap (uid {}) with backend process, and {} is closed to \
                 other users; choose a data_dir they can reach",
                stack::VCAP_UID,
                closed.display()
            )));
        }
    }
    tracing::warn!(
        cell_id = %config.cell_id,
        run_as = if root { "vcap" } else { "the cell's own user" },
        "this cell runs apps as plain processes (backend process): no isolation between apps \
         or from the host, memory checked only every few seconds, no CPU or PID limits; \
         for development only"
    );
    Ok(())
}

fn runtime(config: &Config, deps: &Deps, parts: &Parts, runc: bool) -> Runtime {
    let ports = (config.host_port_min, config.host_port_max);
    let backend = if runc {
        let net = net::Network::new(
            parts.host.clone(),
            net::NetConfig {
                bridge: config.bridge.clone(),
                subnet: config.subnet,
                table: config.nft_table.clone(),
                port_range: ports,
            },
        );
        backend::Backend::Runc(backend::runc::Runc {
            host: parts.host.clone(),
            net: Arc::new(net),
            stacks_dir: config.stacks_dir.clone(),
            ca_file: Some(PathBuf::from("/etc/ssl/certs/ca-certificates.crt"))
                .filter(|p| p.exists()),
        })
    } else {
        backend::Backend::Process(backend::process::Processes::new(
            parts.host.clone(),
            ports,
            is_root(),
        ))
    };
    let mut shared = shared::Shared::new(
        config.cell_id.clone(),
        config.external_ip.clone(),
        backend,
        image::Images::new(config.data_dir.join("layers"), parts.token.clone()),
        emitter::Emitter::new(deps.bus.clone()),
        parts.reporter.clone(),
        deps.bus.clone(),
        config.data_dir.join("instances"),
    );
    shared.zone = config.zone.clone();
    shared.docker = docker::DockerImages::new(
        config.data_dir.join("oci"),
        config.docker_insecure_registries.clone(),
        Duration::from_secs(config.image_cache_ttl_secs),
    );
    shared.grace = Duration::from_secs(config.graceful_stop_secs);
    shared.route_drain = Duration::from_millis(config.route_drain_ms);
    shared.metrics_interval = Duration::from_secs(config.metrics_secs);
    shared.disk_interval = Duration::from_secs(config.disk_check_secs);
    let shared = Arc::new(shared);
    let total = wire::lrp::Capacity {
        memory_mb: config.memory_mb,
        disk_mb: config.disk_mb,
        containers: config.max_containers,
    };
    Runtime { executor: executor::Executor::new(shared.clone(), total), shared }
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
        let mut loops = vec![follow];
        let background = kit::Shutdown::new();
        let mut app = kit::http::ops_routes(self.ready.clone(), self.metrics.clone());
        let rt = &self.runtime;
        let runc = matches!(rt.shared.backend, backend::Backend::Runc(_));
        if let Err(e) = rt.shared.backend.start(&self.config.data_dir.join("instances")).await {
            tracing::error!(error = %e, backend = rt.shared.backend.name(), "cannot set up this cell's backend; it takes no work");
        } else {
            let emitter = rt.shared.emitter.clone();
            let interval = Duration::from_secs(wire::routing::DEFAULT_REGISTER_INTERVAL_SECS);
            // Routes and presence go on while the cell evacuates, until it is empty.
            loops.push(kit::spawn_named(
                "cell-route-emitter",
                emitter.run(interval, background.clone()),
            ));
            loops.push(kit::spawn_named(
                "cell-presence",
                presence_loop(
                    self.config.clone(),
                    rt.shared.reporter.clone(),
                    rt.executor.clone(),
                    runc,
                    background.clone(),
                ),
            ));
            loops.push(kit::spawn_named(
                "cell-bulk-sync",
                sync_loop(
                    Duration::from_secs(self.config.bulk_sync_secs),
                    rt.shared.reporter.clone(),
                    rt.executor.clone(),
                    background.clone(),
                ),
            ));
            app = app.merge(api::routes(api::Api {
                executor: rt.executor.clone(),
                shared: rt.shared.clone(),
                verifier: self.verifier.clone(),
            }));
        }
        let drain = Duration::from_secs(self.config.drain_secs);
        // The API stays open until every instance is gone: while the cell evacuates, the
        // scheduler stops the instances it has placed elsewhere and sends route changes
        // (new work is refused: an evacuating cell reserves nothing).
        let api_stop = kit::Shutdown::new();
        let server = tokio::spawn(kit::http::serve(self.listener, app, api_stop.clone(), drain));
        shutdown.cancelled().await;
        if self.config.evacuation_timeout_secs > 0 {
            tracing::info!(cell_id = %self.config.cell_id, "evacuating: handing instances over to other cells");
            // Tell the scheduler at once that this cell takes no more work.
            rt.executor.mark_evacuating();
            send_presence(&self.config, rt.shared.reporter.as_ref(), &rt.executor, runc).await;
            rt.executor
                .evacuate(
                    rt.shared.reporter.as_ref(),
                    Duration::from_secs(self.config.evacuation_timeout_secs),
                    Duration::from_secs(self.config.evacuation_polling_secs.max(1)),
                )
                .await;
        }
        rt.executor.stop_all(Duration::from_secs(self.config.graceful_stop_secs + 10)).await;
        api_stop.cancel();
        let served = server.await.unwrap_or(Ok(()));
        background.cancel();
        for l in loops {
            l.abort();
        }
        served.map_err(Error::Listen)
    }
}

/// Heartbeat the cell's presence to the scheduler (only with a stack to offer).
async fn presence_loop(
    config: Config,
    reporter: Arc<dyn report::Reporter>,
    executor: executor::Executor,
    runc: bool,
    shutdown: kit::Shutdown,
) {
    loop {
        send_presence(&config, reporter.as_ref(), &executor, runc).await;
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(config.heartbeat_secs.max(1))) => {}
        }
    }
}

/// Bulk sync with the scheduler every `every`, the first at once ([`executor::Executor::sync`]).
async fn sync_loop(
    every: Duration,
    reporter: Arc<dyn report::Reporter>,
    executor: executor::Executor,
    shutdown: kit::Shutdown,
) {
    loop {
        match executor.sync(reporter.as_ref()).await {
            Ok(executor::Synced { removed: 0, stopped: 0 }) => {}
            Ok(s) => tracing::info!(
                removed = s.removed,
                stopped = s.stopped,
                "bulk sync settled instances with the scheduler"
            ),
            Err(e) => tracing::warn!(error = %e, "bulk sync with the scheduler failed"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}

/// One presence heartbeat (only with a stack to offer: a built one for runc containers; apps
/// run as processes use the host's system in its place).
async fn send_presence(
    config: &Config,
    reporter: &dyn report::Reporter,
    executor: &executor::Executor,
    runc: bool,
) {
    let stacks: Vec<String> = config
        .stacks
        .iter()
        .filter(|s| !runc || stack::find(&config.stacks_dir, s).is_ok())
        .cloned()
        .collect();
    let mut stacks = stacks;
    if runc {
        // Docker images need no stack, only runc.
        stacks.push(wire::lrp::DOCKER_STACK.to_owned());
    }
    if stacks.is_empty() {
        tracing::warn!(stacks_dir = %config.stacks_dir.display(), "no stack built yet (paasd stack build); not offering this cell");
        return;
    }
    let state = executor.state();
    let p = wire::lrp::CellPresence {
        cell_id: config.cell_id.clone(),
        rep_url: format!("http://{}", advertised(config)),
        zone: config.zone.clone(),
        capacity: state.total,
        stacks,
        placement_tags: vec![],
        optional_placement_tags: vec![],
        evacuating: state.evacuating,
    };
    if let Err(e) = reporter.presence(&p).await {
        tracing::warn!(error = %e, "presence heartbeat failed");
    }
}

/// The address the scheduler reaches this cell's API on.
fn advertised(config: &Config) -> String {
    if config.addr.ip().is_unspecified() {
        format!("{}:{}", config.external_ip, config.addr.port())
    } else {
        config.addr.to_string()
    }
}
