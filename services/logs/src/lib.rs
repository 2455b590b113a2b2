//! The logs service: our Loggregator + log-cache. It ingests every log and metric envelope
//! from the bus (`logs.>`) and serves them to developers (their apps) and operators
//! (everything, including the platform's own logs shipped by [`shipper::ShipLayer`]).
//!
//! It must never slow a producer down: under overload it drops and counts instead.

pub mod access;
pub mod drains;
mod http;
mod ingest;
pub mod shipper;
pub mod store;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use kit::metrics::Metrics;
use kit::ready::Readiness;
use serde::{Deserialize, Serialize};

/// Configuration of the logs service (`[logs]`, `PAAS_LOGS_*`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub addr: SocketAddr,
    /// The api: token keys and log access decisions.
    pub api_url: String,
    pub internal_client_id: String,
    pub internal_client_secret: String,
    /// Envelopes kept per source id.
    pub max_per_source: usize,
    /// Approximate bytes kept over all sources.
    pub max_total_bytes: usize,
    /// Envelopes waiting for storage before new ones are dropped (and counted).
    pub ingest_queue: usize,
    /// How long a log-access answer from the api is reused.
    pub access_cache_secs: u64,
    /// Issuer of accepted tokens; empty means `<api_url>/oauth/token`.
    pub token_issuer: String,
    pub drain_secs: u64,
    /// How often the syslog drain bindings are re-read from the api.
    pub drain_refresh_secs: u64,
    /// Messages queued per syslog drain before new ones are dropped (and reported).
    pub drain_buffer: usize,
    /// PEM file of extra CA certificates trusted for `syslog-tls://` drains (`https://` drains
    /// use the bundled web roots only).
    pub drain_ca_file: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 9100)),
            api_url: "http://127.0.0.1:9000".into(),
            internal_client_id: "paas-internal".into(),
            internal_client_secret: String::new(),
            max_per_source: 100_000,
            max_total_bytes: 512 * 1024 * 1024,
            ingest_queue: 65_536,
            access_cache_secs: 10,
            token_issuer: String::new(),
            drain_secs: 10,
            drain_refresh_secs: 15,
            drain_buffer: 10_000,
            drain_ca_file: String::new(),
        }
    }
}

pub struct Deps {
    pub bus: bus::DynBus,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("logs listener: {0}")]
    Listen(std::io::Error),
    #[error("logs bus: {0}")]
    Bus(#[from] bus::BusError),
    #[error("logs drains: {0}")]
    Drains(String),
}

pub struct Service {
    config: Config,
    bus: bus::DynBus,
    listener: tokio::net::TcpListener,
    ready: Readiness,
    metrics: Metrics,
    ingest: ingest::Ingest,
    http: http::Http,
    drains: Arc<drains::Drains>,
}

/// Subscribe to the bus and bind the listener; readers are checked against the api.
pub async fn build(config: Config, deps: Deps) -> Result<Service, Error> {
    let api = config.api_url.trim_end_matches('/').to_owned();
    let issuer = if config.token_issuer.is_empty() {
        format!("{api}/oauth/token")
    } else {
        config.token_issuer.clone()
    };
    let verifier = auth::Verifier::from_url(issuer, None, format!("{api}/token_keys"));
    let ttl = Duration::from_secs(config.access_cache_secs);
    let access = Arc::new(access::ApiAccess::new(&api, verifier, ttl));
    build_with_access(config, deps, access).await
}

/// [`build`] with another access decision (tests).
pub async fn build_with_access(
    config: Config,
    deps: Deps,
    access: Arc<dyn access::Access>,
) -> Result<Service, Error> {
    let listener = kit::http::bind(config.addr).await.map_err(Error::Listen)?;
    let ready = Readiness::new();
    ready.register("bus");
    let metrics = Metrics::new("logs");
    let store = Arc::new(store::Store::new(config.max_per_source, config.max_total_bytes));
    let tls = drains::tls_config(&config.drain_ca_file).map_err(Error::Drains)?;
    let settings = drains::Settings {
        api_url: config.api_url.trim_end_matches('/').to_owned(),
        refresh: Duration::from_secs(config.drain_refresh_secs.max(1)),
        buffer: config.drain_buffer,
        tls: Arc::new(tls),
    };
    let drains = Arc::new(drains::Drains::new(settings, store.clone(), &metrics));
    let ingest = ingest::Ingest::subscribe(
        &deps.bus,
        &metrics,
        store.clone(),
        drains.clone(),
        config.ingest_queue,
    )
    .await?;
    let http = http::Http { store, access };
    Ok(Service { config, bus: deps.bus, listener, ready, metrics, ingest, http, drains })
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
            "logs-bus-readiness",
            kit::ready::follow_bus(self.ready.clone(), self.bus.clone(), shutdown.clone()),
        );
        let ingest = kit::spawn_named("logs-ingest", self.ingest.run(shutdown.clone()));
        let drains = if self.config.internal_client_secret.is_empty() {
            tracing::warn!("no internal client secret: syslog drains are off");
            None
        } else {
            let api = self.config.api_url.trim_end_matches('/');
            let tokens = Arc::new(auth::ClientCredentials::new(
                format!("{api}/oauth/token"),
                self.config.internal_client_id.clone(),
                self.config.internal_client_secret.clone(),
            ));
            Some(kit::spawn_named(
                "logs-drains",
                self.drains.clone().follow(tokens, shutdown.clone()),
            ))
        };
        let app = http::routes(self.http.clone())
            .merge(kit::http::ops_routes(self.ready.clone(), self.metrics.clone()));
        let drain = Duration::from_secs(self.config.drain_secs);
        let served = kit::http::serve(self.listener, app, shutdown, drain).await;
        follow.abort();
        let _ = ingest.await;
        if let Some(d) = drains {
            let _ = d.await;
        }
        served.map_err(Error::Listen)
    }
}
