//! The router: our gorouter. It keeps a route table fed by `router.register` /
//! `router.unregister` on the bus and proxies HTTP for `<app>.<domain>` to app instances,
//! answering CF's error responses when it cannot.
//!
//! The request path must never wait on route-table updates, and the router must never
//! buffer whole request or response bodies.

mod access;
mod errors;
mod h1;
mod metrics;
mod pick;
mod proxy;
pub mod route_service;
mod serve;
mod sticky;
pub mod table;
pub mod tls;
mod updates;
mod websocket;
mod workers;

use std::net::SocketAddr;
use std::time::Duration;

use kit::metrics::Metrics;
use kit::ready::Readiness;
use serde::{Deserialize, Serialize};

/// A number of this thread's own, handed out in the order threads first ask: what picks a
/// thread's shard of the access log and of the metrics, so threads do not share one.
fn thread_slot() -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SLOT: usize = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    SLOT.with(|s| *s)
}

/// Configuration of the router (`[router]`, `PAAS_ROUTER_*`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// App traffic.
    pub addr: SocketAddr,
    /// `/readyz`, `/healthz`, `/metrics`.
    pub status_addr: SocketAddr,
    /// This router's index: `RTR/<index>` and `router/<index>` in logs.
    pub index: u32,
    /// A registration older than this is pruned.
    pub prune_threshold_secs: u64,
    pub prune_interval_secs: u64,
    /// What emitters are told to use (`router.start`, `router.greet`).
    pub register_interval_secs: u64,
    /// Longest a request may take, backend included.
    pub request_timeout_secs: u64,
    pub drain_secs: u64,
    /// Requests in flight per backend before it is skipped (0 = unlimited).
    pub max_conns_per_backend: usize,
    /// HTTPS traffic (TLS terminated here); off when absent.
    pub tls_addr: Option<SocketAddr>,
    /// Certificates for `tls_addr`, chosen by SNI; the first is the default.
    pub tls_certs: Vec<tls::CertPair>,
    /// Threads serving traffic, each with its own event loop and backend pools
    /// (0 = one per CPU).
    pub workers: usize,
    /// Secret every router shares to sign requests sent to route services; empty: routes
    /// bound to a route service answer 502 `route_service_unsupported`.
    pub route_services_secret: String,
    /// A previous secret still accepted (never used to sign), while the secret rotates.
    pub route_services_secret_decrypt_only: String,
    /// How long a request may take to come back from its route service.
    pub route_services_timeout_secs: u64,
    /// The scheme of the URL a route service sends the request on to (`X-CF-Forwarded-Url`):
    /// https when true.
    pub route_services_recommend_https: bool,
    /// PEM file of certificates to trust for route services besides the web roots.
    pub route_services_ca_file: String,
    /// The availability zone this router runs in.
    pub zone: String,
    /// `none`, or `locally-optimistic`: a request's first attempt goes to an instance in
    /// `zone` when one is usable (retries go anywhere).
    pub balancing_algorithm_az_preference: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            status_addr: SocketAddr::from(([127, 0, 0, 1], 8082)),
            index: 0,
            prune_threshold_secs: wire::routing::DEFAULT_PRUNE_THRESHOLD_SECS,
            prune_interval_secs: 30,
            register_interval_secs: wire::routing::DEFAULT_REGISTER_INTERVAL_SECS,
            request_timeout_secs: 900,
            drain_secs: 20,
            max_conns_per_backend: 500,
            tls_addr: None,
            tls_certs: Vec::new(),
            workers: 0,
            route_services_secret: String::new(),
            route_services_secret_decrypt_only: String::new(),
            route_services_timeout_secs: 60,
            route_services_recommend_https: true,
            route_services_ca_file: String::new(),
            zone: String::new(),
            balancing_algorithm_az_preference: "none".into(),
        }
    }
}

pub struct Deps {
    pub bus: bus::DynBus,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("router listener: {0}")]
    Listen(std::io::Error),
    #[error("router bus: {0}")]
    Bus(#[from] bus::BusError),
    #[error("router worker thread: {0}")]
    Worker(std::io::Error),
    #[error("router tls: {0}")]
    Tls(#[from] tls::TlsError),
    #[error("router route services: {0}")]
    RouteServices(String),
    #[error("router config: {0}")]
    Config(String),
}

pub struct Service {
    config: Config,
    bus: bus::DynBus,
    listener: tokio::net::TcpListener,
    status: tokio::net::TcpListener,
    tls: Option<(tokio::net::TcpListener, tokio_rustls::TlsAcceptor)>,
    route_services: Option<std::sync::Arc<route_service::RouteServices>>,
    ready: Readiness,
    metrics: Metrics,
    router_metrics: metrics::RouterMetrics,
}

/// Bind the traffic and status listeners.
pub async fn build(config: Config, deps: Deps) -> Result<Service, Error> {
    let listener = workers::bind(config.addr).and_then(tokio::net::TcpListener::from_std);
    let listener = listener.map_err(Error::Listen)?;
    let status = kit::http::bind(config.status_addr).await.map_err(Error::Listen)?;
    let tls = match config.tls_addr {
        Some(addr) => {
            let acceptor = tls::acceptor(&config.tls_certs)?;
            let l = workers::bind(addr).and_then(tokio::net::TcpListener::from_std);
            Some((l.map_err(Error::Listen)?, acceptor))
        }
        None => None,
    };
    match config.balancing_algorithm_az_preference.as_str() {
        "none" => {}
        "locally-optimistic" if !config.zone.is_empty() => {}
        "locally-optimistic" => {
            return Err(Error::Config(
                "balancing_algorithm_az_preference locally-optimistic needs the router's zone"
                    .into(),
            ));
        }
        other => {
            return Err(Error::Config(format!(
                "balancing_algorithm_az_preference must be none or locally-optimistic, not {other:?}"
            )));
        }
    }
    let route_services = route_service::RouteServices::new(&route_service::Settings {
        secret: config.route_services_secret.clone(),
        secret_decrypt_only: config.route_services_secret_decrypt_only.clone(),
        timeout: Duration::from_secs(config.route_services_timeout_secs),
        recommend_https: config.route_services_recommend_https,
        ca_file: config.route_services_ca_file.clone(),
    })
    .map_err(Error::RouteServices)?;
    let ready = Readiness::new();
    ready.register("bus");
    ready.register("routes");
    let metrics = Metrics::new("router");
    let router_metrics = metrics::RouterMetrics::new(&metrics);
    Ok(Service {
        config,
        bus: deps.bus,
        listener,
        status,
        tls,
        route_services,
        ready,
        metrics,
        router_metrics,
    })
}

impl Service {
    /// Where app traffic is accepted.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or(self.config.addr)
    }

    /// Where `/readyz` and `/metrics` answer.
    pub fn status_addr(&self) -> SocketAddr {
        self.status.local_addr().unwrap_or(self.config.status_addr)
    }

    /// Where HTTPS traffic is accepted, when `tls_addr` is set.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls.as_ref().and_then(|(l, _)| l.local_addr().ok())
    }

    pub fn readiness(&self) -> Readiness {
        self.ready.clone()
    }

    pub async fn run(self, shutdown: kit::Shutdown) -> Result<(), Error> {
        let drain = Duration::from_secs(self.config.drain_secs);
        let follow = kit::spawn_named(
            "router-bus-readiness",
            kit::ready::follow_bus(self.ready.clone(), self.bus.clone(), shutdown.clone()),
        );
        let table = table::Shared::default();
        let dump = table.clone();
        let ops = kit::http::ops_routes(self.ready.clone(), self.metrics.clone()).route(
            "/routes",
            axum::routing::get(move || {
                let t = dump.load();
                async move { axum::Json(t.dump()) }
            }),
        );
        let status = kit::spawn_named(
            "router-status",
            kit::http::serve(self.status, ops, shutdown.clone(), drain),
        );
        let start = wire::routing::RouterStart {
            id: format!("{}-{}", self.config.index, uuid::Uuid::new_v4()),
            hosts: vec![],
            minimum_register_interval_in_seconds: self.config.register_interval_secs,
            prune_threshold_in_seconds: self.config.prune_threshold_secs,
        };
        let updater = updates::Updater {
            bus: self.bus.clone(),
            table: table.clone(),
            start,
            prune_interval: Duration::from_secs(self.config.prune_interval_secs.max(1)),
            default_ttl: Duration::from_secs(self.config.prune_threshold_secs),
            metrics: self.router_metrics.clone(),
        };
        let updates =
            kit::spawn_named("router-updates", updater.run(self.ready.clone(), shutdown.clone()));
        let mut proxy = proxy::Proxy::new(
            table,
            self.bus.clone(),
            self.config.index,
            Duration::from_secs(self.config.request_timeout_secs),
            pick::Picker::new(self.config.max_conns_per_backend).with_local_zone(
                (self.config.balancing_algorithm_az_preference == "locally-optimistic")
                    .then(|| self.config.zone.as_str().into()),
            ),
            self.router_metrics.clone(),
        );
        proxy.route_services = self.route_services;
        let workers = match self.config.workers {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        };
        let served =
            workers::run(workers, self.listener, self.tls, proxy, shutdown.clone(), drain).await;
        follow.abort();
        updates.abort();
        let _ = status.await;
        served
    }
}
