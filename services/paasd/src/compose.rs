//! Building, running and stopping services inside one process.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bus::{DynBus, InProcessBus, NatsBus, NatsOptions};
use kit::ready::Readiness;
use kit::Shutdown;
use tokio::task::JoinHandle;
use tracing::Instrument as _;

use crate::config::{BusKind, PaasdConfig, ServiceName};
use crate::{host, secrets};

/// A service running in this process.
struct Running {
    name: ServiceName,
    ready: Readiness,
    shutdown: Shutdown,
    task: JoinHandle<Result<(), String>>,
}

/// All services of this process.
pub struct Platform {
    running: Vec<Running>,
}

/// `paasd dev`: everything in one process on the embedded defaults.
pub async fn dev(mut cfg: PaasdConfig, may_install: bool) -> anyhow::Result<()> {
    let mut signals = kit::Signals::install()?;
    cfg.bus.kind = BusKind::Inprocess;
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("cannot create data directory {}", cfg.data_dir.display()))?;
    let secret = secrets::load_or_create(&cfg.data_dir.join("internal-client-secret"))?;
    if cfg.router.route_services_secret.is_empty() {
        let file = cfg.data_dir.join("route-services-secret");
        cfg.router.route_services_secret = secrets::load_or_create(&file)?;
    }
    if cfg.router.tls_addr.is_none() {
        // Route services send requests back to the forwarded URL; without a TLS listener
        // that is plain http.
        cfg.router.route_services_recommend_https = false;
    }
    resolve_ports(&mut cfg)?;
    wire_dev(&mut cfg, &secret);
    advertise_ssh(&mut cfg, &ServiceName::ALL)?;
    prepare_host(&mut cfg, may_install).await?;
    let runc = cell::uses_runc(&cfg.cell.backend);
    stage_like_the_cell(&mut cfg, runc);
    let bus: DynBus = Arc::new(InProcessBus::new());
    kit::telemetry::init(
        &cfg.telemetry,
        vec![Box::new(logs::shipper::ShipLayer::new(bus.clone()))],
    );
    ensure_stack(&cfg).await?;
    let started = Instant::now();
    let (platform, admin) = start(&cfg, bus, &ServiceName::ALL).await?;
    platform.wait_ready(Duration::from_secs(30)).await?;
    print_banner(&cfg, admin, started.elapsed(), runc);
    signals.wait().await;
    platform.stop(Duration::from_secs(cfg.shutdown_deadline_secs)).await;
    Ok(())
}

/// `paasd run`: the named services, joined to the others by the configured bus.
pub async fn run(mut cfg: PaasdConfig) -> anyhow::Result<()> {
    let mut signals = kit::Signals::install()?;
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("cannot create data directory {}", cfg.data_dir.display()))?;
    derive_paths(&mut cfg);
    let which = cfg.selected();
    advertise_ssh(&mut cfg, &which)?;
    let bus: DynBus = match cfg.bus.kind {
        BusKind::Nats => {
            let opts = NatsOptions {
                url: cfg.bus.url.clone(),
                name: format!("paasd-{}", cfg.services.join("-")),
                retry_on_initial_connect: true,
                ..Default::default()
            };
            Arc::new(NatsBus::connect(&opts).await?)
        }
        BusKind::Inprocess => Arc::new(InProcessBus::new()),
    };
    kit::telemetry::init(
        &cfg.telemetry,
        vec![Box::new(logs::shipper::ShipLayer::new(bus.clone()))],
    );
    let selected = cfg.selected();
    let (platform, admin) = start(&cfg, bus, &selected).await?;
    if let Some((user, password)) = admin {
        println!(
            "admin user created: {user} / {password} (stored in {})",
            cfg.data_dir.join("api").display()
        );
    }
    signals.wait().await;
    platform.stop(Duration::from_secs(cfg.shutdown_deadline_secs)).await;
    Ok(())
}

/// Install what runc containers need when missing (as root, with apt-get), or fall back to
/// plain processes saying why.
async fn prepare_host(cfg: &mut PaasdConfig, may_install: bool) -> anyhow::Result<()> {
    let probe = host::Probe::of_this_host(host::stack_built(&cfg.cell.stacks_dir));
    match host::plan(&probe, &cfg.cell.backend, may_install) {
        host::Plan::Ready => {}
        host::Plan::Install(packages) => host::install(&packages).await?,
        host::Plan::Processes(why) if cfg.cell.backend == "auto" => {
            println!("Apps will run as plain processes: {why}.\n{}.", host::PROCESS_HINT);
            cfg.cell.backend = "process".into();
        }
        host::Plan::Processes(why) => anyhow::bail!("the cell is configured for runc, but {why}"),
    }
    Ok(())
}

/// Where the cell runs apps as plain processes (no runc here, or asked to), stagings run as
/// processes too: a runc stager could not stage without runc, and droplets staged on the host
/// run on the host.
fn stage_like_the_cell(cfg: &mut PaasdConfig, cell_uses_runc: bool) {
    if !cell_uses_runc {
        cfg.stager.backend = stager::Backend::Process;
    }
}

/// With runc containers, apps and stagings need the stack: build it on the first start.
async fn ensure_stack(cfg: &PaasdConfig) -> anyhow::Result<()> {
    if !cell::uses_runc(&cfg.cell.backend)
        || stack::find(&cfg.cell.stacks_dir, stack::DEFAULT_STACK).is_ok()
    {
        return Ok(());
    }
    println!(
        "Building the {} stack in {} (first start only; about a minute)...",
        stack::DEFAULT_STACK,
        cfg.cell.stacks_dir.display()
    );
    stack::ensure(&cfg.cell.stacks_dir, &stack::StackSpec::default()).await.context(
        "building the stack (needs root and debootstrap; or run `paasd stack build` first)",
    )?;
    Ok(())
}

/// Replace port 0 with a concrete free port, so every service knows every other's URL before
/// any of them starts.
fn resolve_ports(cfg: &mut PaasdConfig) -> anyhow::Result<()> {
    for addr in [
        &mut cfg.api.addr,
        &mut cfg.router.addr,
        &mut cfg.router.status_addr,
        &mut cfg.logs.addr,
        &mut cfg.scheduler.addr,
        &mut cfg.cell.addr,
        &mut cfg.stager.status_addr,
        &mut cfg.ssh.addr,
        &mut cfg.dashboard.addr,
    ] {
        if addr.port() == 0 {
            let l = std::net::TcpListener::bind(*addr)
                .with_context(|| format!("cannot bind {addr}"))?;
            addr.set_port(l.local_addr()?.port());
        }
    }
    Ok(())
}

fn url_of(addr: SocketAddr) -> String {
    let host =
        if addr.ip().is_unspecified() { "127.0.0.1".to_owned() } else { addr.ip().to_string() };
    format!("http://{host}:{}", addr.port())
}

/// Every service's state under one data directory: settings still at their built-in default
/// are moved under `data_dir`; anything configured explicitly stays.
fn derive_paths(cfg: &mut PaasdConfig) {
    fn place<T: PartialEq>(value: &mut T, default: T, derived: T) {
        if *value == default {
            *value = derived;
        }
    }
    let d = cfg.data_dir.clone();
    let sqlite = |p: &str| format!("sqlite://{}", d.join(p).display());
    let (api, sch, cell, stager, ssh) = (
        api::Config::default(),
        scheduler::Config::default(),
        cell::Config::default(),
        stager::Config::default(),
        ssh::Config::default(),
    );
    place(&mut cfg.api.data_dir, api.data_dir, d.join("api"));
    place(&mut cfg.api.database_url, api.database_url, sqlite("api/api.db"));
    place(&mut cfg.scheduler.database_url, sch.database_url, sqlite("scheduler/scheduler.db"));
    place(&mut cfg.cell.data_dir, cell.data_dir, d.join("cell"));
    place(&mut cfg.cell.stacks_dir, cell.stacks_dir, d.join("stacks"));
    place(&mut cfg.stager.work_dir, stager.work_dir, d.join("stager"));
    place(&mut cfg.stager.stacks_dir, stager.stacks_dir, d.join("stacks"));
    // The api makes OCI images of droplets on the stacks the stager builds them on.
    let stager_stacks = cfg.stager.stacks_dir.clone();
    place(&mut cfg.api.stacks_dir, api.stacks_dir, stager_stacks);
    place(&mut cfg.ssh.host_key_file, ssh.host_key_file, d.join("ssh/host_key"));
}

/// The SSH endpoint's host key is made before anything starts, so the api can advertise its
/// fingerprint (`links.app_ssh`) along with the endpoint's address, when both run here or
/// share the data directory.
fn advertise_ssh(cfg: &mut PaasdConfig, which: &[ServiceName]) -> anyhow::Result<()> {
    if !which.contains(&ServiceName::Ssh) && !cfg.ssh.host_key_file.exists() {
        return Ok(());
    }
    if !which.contains(&ServiceName::Ssh) && !which.contains(&ServiceName::Api) {
        return Ok(());
    }
    let key = ssh::host_key::load_or_create(&cfg.ssh.host_key_file)?;
    if cfg.api.ssh_host_key_fingerprint.is_empty() {
        cfg.api.ssh_host_key_fingerprint = ssh::host_key::fingerprint(&key);
    }
    if cfg.api.ssh_endpoint.is_empty() {
        let a = cfg.ssh.addr;
        let host =
            if a.ip().is_unspecified() { "127.0.0.1".to_owned() } else { a.ip().to_string() };
        cfg.api.ssh_endpoint = format!("{host}:{}", a.port());
    }
    Ok(())
}

/// Point every service at the others (dev: all in this process, addresses known).
fn wire_dev(cfg: &mut PaasdConfig, secret: &str) {
    derive_paths(cfg);
    let api = url_of(cfg.api.addr);
    let logs = url_of(cfg.logs.addr);
    let scheduler = url_of(cfg.scheduler.addr);
    cfg.api.external_url = api.clone();
    cfg.api.logs_url = logs;
    cfg.api.internal_client_secret = secret.to_owned();
    cfg.api.scheduler_url = scheduler.clone();
    cfg.logs.api_url = api.clone();
    cfg.logs.internal_client_secret = secret.to_owned();
    cfg.scheduler.api_url = api.clone();
    cfg.scheduler.internal_client_secret = secret.to_owned();
    cfg.cell.api_url = api.clone();
    cfg.cell.scheduler_url = scheduler;
    cfg.cell.internal_client_secret = secret.to_owned();
    // One process, one cell: nothing to hand instances over to on shutdown.
    cfg.cell.evacuation_timeout_secs = 0;
    cfg.stager.api_url = api.clone();
    cfg.stager.internal_client_secret = secret.to_owned();
    cfg.ssh.api_url = api.clone();
    cfg.ssh.scheduler_url = url_of(cfg.scheduler.addr);
    cfg.ssh.internal_client_secret = secret.to_owned();
    let d = &mut cfg.dashboard;
    d.api_url = api.clone();
    d.logs_url = url_of(cfg.logs.addr);
    d.scheduler_url = url_of(cfg.scheduler.addr);
    d.router_status_url = url_of(cfg.router.status_addr);
    d.internal_client_secret = secret.to_owned();
    d.health_checks = [
        ("api", cfg.api.addr),
        ("logs", cfg.logs.addr),
        ("scheduler", cfg.scheduler.addr),
        ("cell", cfg.cell.addr),
        ("stager", cfg.stager.status_addr),
        ("router", cfg.router.status_addr),
    ]
    .into_iter()
    .map(|(name, addr)| format!("{name}={}", url_of(addr)))
    .collect();
}

macro_rules! launch {
    ($name:expr, $component:expr, $krate:ident, $cfg:expr, $bus:expr) => {{
        let name: ServiceName = $name;
        let component: String = $component;
        let deps = $krate::Deps { bus: $bus.clone() };
        let service = $krate::build($cfg.clone(), deps)
            .await
            .map_err(|e| anyhow::anyhow!("{}: {e}", name.as_str()))?;
        let addr = service.local_addr();
        let ready = service.readiness();
        let shutdown = Shutdown::new();
        let span = kit::service_span(&component);
        span.in_scope(|| tracing::info!(%addr, "{} started", name.as_str()));
        let stop = shutdown.clone();
        let task = tokio::spawn(
            async move { service.run(stop).await.map_err(|e| e.to_string()) }.instrument(span),
        );
        Running { name, ready, shutdown, task }
    }};
}

/// Build and start `which` (in start order). Returns the admin credentials when the api
/// created the admin user just now.
async fn start(
    cfg: &PaasdConfig,
    bus: DynBus,
    which: &[ServiceName],
) -> anyhow::Result<(Platform, Option<(String, String)>)> {
    let mut running = Vec::new();
    let mut admin = None;
    for name in ServiceName::ALL.into_iter().filter(|n| which.contains(n)) {
        let r = match name {
            ServiceName::Logs => launch!(name, "logs".into(), logs, cfg.logs, bus),
            ServiceName::Api => {
                let deps = api::Deps {
                    bus: bus.clone(),
                    bundled_buildpacks: stager::buildpacks::bundled(),
                };
                let service = api::build(cfg.api.clone(), deps)
                    .await
                    .map_err(|e| anyhow::anyhow!("api: {e}"))?;
                admin = service.admin_credentials();
                let addr = service.local_addr();
                let ready = service.readiness();
                let shutdown = Shutdown::new();
                let span = kit::service_span("api");
                span.in_scope(|| tracing::info!(%addr, "api started"));
                let stop = shutdown.clone();
                let task = tokio::spawn(
                    async move { service.run(stop).await.map_err(|e| e.to_string()) }
                        .instrument(span),
                );
                Running { name, ready, shutdown, task }
            }
            ServiceName::Scheduler => {
                launch!(name, "scheduler".into(), scheduler, cfg.scheduler, bus)
            }
            ServiceName::Cell => {
                launch!(name, format!("cell/{}", cfg.cell.cell_id), cell, cfg.cell, bus)
            }
            ServiceName::Stager => launch!(name, "stager".into(), stager, cfg.stager, bus),
            ServiceName::Router => {
                launch!(name, format!("router/{}", cfg.router.index), router, cfg.router, bus)
            }
            ServiceName::Ssh => launch!(name, "ssh".into(), ssh, cfg.ssh, bus),
            ServiceName::Dashboard => {
                let service = dashboard::build(cfg.dashboard.clone(), dashboard::Deps::default())
                    .await
                    .map_err(|e| anyhow::anyhow!("dashboard: {e}"))?;
                let addr = service.local_addr();
                let ready = service.readiness();
                let shutdown = Shutdown::new();
                let span = kit::service_span("dashboard");
                span.in_scope(|| tracing::info!(%addr, "dashboard started"));
                let stop = shutdown.clone();
                let task = tokio::spawn(
                    async move { service.run(stop).await.map_err(|e| e.to_string()) }
                        .instrument(span),
                );
                Running { name, ready, shutdown, task }
            }
        };
        running.push(r);
    }
    Ok((Platform { running }, admin))
}

impl Platform {
    /// Wait until every service reports ready, or say which are not.
    async fn wait_ready(&self, deadline: Duration) -> anyhow::Result<()> {
        let until = Instant::now() + deadline;
        loop {
            let pending: Vec<String> = self
                .running
                .iter()
                .filter(|r| !r.ready.is_ready())
                .map(|r| format!("{} ({})", r.name.as_str(), r.ready.pending().join(", ")))
                .collect();
            if pending.is_empty() {
                return Ok(());
            }
            if let Some(dead) = self.running.iter().find(|r| r.task.is_finished()) {
                anyhow::bail!("{} stopped during start-up", dead.name.as_str());
            }
            if Instant::now() > until {
                anyhow::bail!("not ready after {deadline:?}: {}", pending.join("; "));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stop in reverse start order, each with its share of the deadline.
    async fn stop(self, deadline: Duration) {
        tracing::info!("shutting down");
        for r in self.running.into_iter().rev() {
            r.shutdown.cancel();
            match tokio::time::timeout(deadline, r.task).await {
                Ok(Ok(Ok(()))) => tracing::info!(service = r.name.as_str(), "stopped"),
                Ok(Ok(Err(e))) => {
                    tracing::error!(service = r.name.as_str(), error = %e, "stopped with an error")
                }
                Ok(Err(e)) => tracing::error!(service = r.name.as_str(), error = %e, "task failed"),
                Err(_) => {
                    tracing::warn!(service = r.name.as_str(), "did not stop within the deadline")
                }
            }
        }
    }
}

fn print_banner(cfg: &PaasdConfig, admin: Option<(String, String)>, took: Duration, runc: bool) {
    let api = url_of(cfg.api.addr);
    println!("paas is ready ({} ms)", took.as_millis());
    if !runc {
        println!("  apps and stagings run as plain processes, without isolation: development only");
    }
    println!("  api:    {api}");
    println!(
        "  router: http://{} (apps at http://<app>.{}:{})",
        cfg.router.addr,
        cfg.api.apps_domain,
        cfg.router.addr.port()
    );
    println!("  logs:   {}", url_of(cfg.logs.addr));
    println!("  ssh:    {} (host key {})", cfg.api.ssh_endpoint, cfg.api.ssh_host_key_fingerprint);
    println!("  dashboard: {}", url_of(cfg.dashboard.addr));
    println!("  data:   {}", cfg.data_dir.display());
    match admin {
        Some((user, password)) => {
            println!("  admin user created: {user} / {password}");
            println!(
                "  (the password is also stored in {})",
                cfg.data_dir.join("api/admin-password").display()
            );
        }
        None => println!(
            "  admin password: see {} (or PAAS_ADMIN_PASSWORD)",
            cfg.data_dir.join("api/admin-password").display()
        ),
    }
    println!("Log in with:  paas login -a {api} -u admin");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_runc_for_the_cell_the_stager_stages_as_a_process_too() {
        let mut cfg = PaasdConfig::default();
        cfg.stager.backend = stager::Backend::Runc;
        stage_like_the_cell(&mut cfg, true);
        assert_eq!(cfg.stager.backend, stager::Backend::Runc);
        stage_like_the_cell(&mut cfg, false);
        assert_eq!(cfg.stager.backend, stager::Backend::Process);
    }
}
