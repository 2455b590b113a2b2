//! The web dashboard: a small single-page app served by the platform itself. The browser talks
//! only to this service; it signs users in at the token issuer, keeps their tokens in
//! server-side sessions and forwards `/api/v3/...` to the api with the session's bearer token,
//! so a user sees exactly what the api lets them see. Live logs come from the logs service as
//! server-sent events; operators also see cells, the router's route table and component health.

mod admin;
mod assets;
mod logs;
mod proxy;
pub mod session;
mod web;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use kit::metrics::Metrics;
use kit::ready::Readiness;
use serde::{Deserialize, Serialize};

/// Configuration of the dashboard (`[dashboard]`, `PAAS_DASHBOARD_*`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub addr: SocketAddr,
    /// The api (Cloud Controller v3 and the token issuer).
    pub api_url: String,
    /// The logs service (live streams).
    pub logs_url: String,
    /// The scheduler's internal API (cells and instances, for operators): one URL, or every
    /// scheduler's separated by commas.
    pub scheduler_url: String,
    /// The router's status listener (`/routes`, for operators).
    pub router_status_url: String,
    /// Components whose `/readyz` the health page shows, as `name=url`.
    pub health_checks: Vec<String>,
    /// Client of the password and refresh-token grants (empty secret).
    pub client_id: String,
    /// Component credentials for the scheduler (operators' cell page).
    pub internal_client_id: String,
    pub internal_client_secret: String,
    /// Issuer of accepted tokens; empty means `<api_url>/oauth/token`.
    pub token_issuer: String,
    /// Mark the session cookie `Secure` (set it when the dashboard is reached over https).
    pub secure_cookies: bool,
    /// A session unused this long is signed out.
    pub session_idle_secs: u64,
    /// A session is signed out this long after sign-in, whatever its use.
    pub session_max_secs: u64,
    pub drain_secs: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 9700)),
            api_url: "http://127.0.0.1:9000".into(),
            logs_url: "http://127.0.0.1:9100".into(),
            scheduler_url: "http://127.0.0.1:9200".into(),
            router_status_url: "http://127.0.0.1:8082".into(),
            health_checks: vec![
                "api=http://127.0.0.1:9000".into(),
                "logs=http://127.0.0.1:9100".into(),
                "scheduler=http://127.0.0.1:9200".into(),
                "cell=http://127.0.0.1:9300".into(),
                "stager=http://127.0.0.1:9400".into(),
                "router=http://127.0.0.1:8082".into(),
            ],
            client_id: "cf".into(),
            internal_client_id: "paas-internal".into(),
            internal_client_secret: String::new(),
            token_issuer: String::new(),
            secure_cookies: false,
            session_idle_secs: 3600,
            session_max_secs: 12 * 3600,
            drain_secs: 5,
        }
    }
}

/// Nothing from the platform beyond configuration: the dashboard reaches others over HTTP.
#[derive(Default)]
pub struct Deps {}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("dashboard listener: {0}")]
    Listen(std::io::Error),
    #[error("invalid configuration: dashboard.{0}")]
    Config(String),
}

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct AppState {
    pub cfg: Arc<Config>,
    pub sessions: session::Sessions,
    /// Calls with a deadline (tokens, api, admin pages).
    pub http: reqwest::Client,
    /// Long-lived streams (no overall timeout).
    pub streams: reqwest::Client,
    pub verifier: Arc<auth::Verifier>,
    pub components: Option<Arc<auth::ClientCredentials>>,
    /// The schedulers, and which of them answers.
    pub scheduler: kit::leader::Leader,
    /// One token refresh at a time, so a refresh token is never spent twice.
    pub refreshing: Arc<tokio::sync::Mutex<()>>,
}

impl AppState {
    pub fn new(cfg: Config) -> Result<Self, Error> {
        let scheduler = kit::leader::Leader::parse("scheduler", &cfg.scheduler_url)
            .map_err(|e| Error::Config(format!("scheduler_url: {e}")))?;
        let api = cfg.api_url.trim_end_matches('/').to_owned();
        let issuer = if cfg.token_issuer.is_empty() {
            format!("{api}/oauth/token")
        } else {
            cfg.token_issuer.clone()
        };
        let verifier =
            Arc::new(auth::Verifier::from_url(issuer, None, format!("{api}/token_keys")));
        let components = (!cfg.internal_client_secret.is_empty()).then(|| {
            Arc::new(auth::ClientCredentials::new(
                format!("{api}/oauth/token"),
                cfg.internal_client_id.clone(),
                cfg.internal_client_secret.clone(),
            ))
        });
        let streams = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .no_proxy()
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        let sessions = session::Sessions::new(
            Duration::from_secs(cfg.session_idle_secs.max(1)),
            Duration::from_secs(cfg.session_max_secs.max(1)),
        );
        Ok(Self {
            cfg: Arc::new(cfg),
            sessions,
            http: kit::http::client(),
            streams,
            verifier,
            components,
            scheduler,
            refreshing: Arc::default(),
        })
    }

    pub fn api(&self) -> &str {
        self.cfg.api_url.trim_end_matches('/')
    }
}

pub struct Service {
    config: Config,
    listener: tokio::net::TcpListener,
    ready: Readiness,
    metrics: Metrics,
    state: AppState,
}

/// Bind the listener.
pub async fn build(config: Config, _deps: Deps) -> Result<Service, Error> {
    let listener = kit::http::bind(config.addr).await.map_err(Error::Listen)?;
    let state = AppState::new(config.clone())?;
    Ok(Service {
        config,
        listener,
        ready: Readiness::new(),
        metrics: Metrics::new("dashboard"),
        state,
    })
}

impl Service {
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or(self.config.addr)
    }

    pub fn readiness(&self) -> Readiness {
        self.ready.clone()
    }

    pub async fn run(self, shutdown: kit::Shutdown) -> Result<(), Error> {
        let app = web::routes(self.state)
            .merge(kit::http::ops_routes(self.ready.clone(), self.metrics.clone()));
        let drain = Duration::from_secs(self.config.drain_secs);
        kit::http::serve(self.listener, app, shutdown, drain).await.map_err(Error::Listen)
    }
}
