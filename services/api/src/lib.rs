//! The api service: our Cloud Controller (CF v3) and UAA-compatible token issuer. It owns the
//! api database and the blobstore, and is the only place that decides who may do what.
//!
//! It must never trust a client-supplied identity without a verified token, and never reveal
//! that another tenant's resource exists (404, not 403).

mod access;
mod domain;
mod error;
mod http;
mod store;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use kit::db::Db;
use kit::metrics::Metrics;
use kit::ready::Readiness;
use serde::{Deserialize, Serialize};

/// Configuration of the api (`[api]` in paasd.toml, `PAAS_API_*`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub addr: SocketAddr,
    /// Base URL clients use; every link and the token issuer (`<url>/oauth/token`) derive from it.
    pub external_url: String,
    /// The logs service, advertised as `log_cache` / `log_stream` in the root document.
    pub logs_url: String,
    pub data_dir: PathBuf,
    /// `sqlite://...` or `postgres://...`.
    pub database_url: String,
    pub max_db_connections: u32,
    /// Shared domain for app routes.
    pub apps_domain: String,
    /// Password for the `admin` user created on first start (else generated and printed).
    pub admin_password: Option<String>,
    /// Confidential client of the platform's own components.
    pub internal_client_id: String,
    pub internal_client_secret: String,
    /// Seconds in-flight requests get on shutdown.
    pub drain_secs: u64,
    /// URL other components use to reach the api (downloads, staging callbacks); empty: the
    /// external URL.
    pub internal_url: String,
    /// The scheduler's internal API (desired state, instances): one URL, or every scheduler's
    /// separated by commas; changes go to the one that leads (`kit::leader`).
    pub scheduler_url: String,
    /// Where blobs (packages, droplets, buildpacks, resource cache) live; empty: `<data_dir>/blobs`.
    pub blobstore_dir: PathBuf,
    /// Stacks offered, and the one apps get by default.
    pub stacks: Vec<String>,
    pub default_stack: String,
    /// Process defaults and bounds (MB).
    pub default_memory_mb: i64,
    pub default_disk_mb: i64,
    pub max_memory_mb: i64,
    pub max_disk_mb: i64,
    /// Staging resources and time limit.
    pub staging_memory_mb: i64,
    pub staging_disk_mb: i64,
    pub staging_timeout_secs: u64,
    /// Seconds a STAGING build's stager may go without a heartbeat (a claim again) before the
    /// build is failed: the stager is gone.
    pub staging_heartbeat_timeout_secs: u64,
    /// Seconds a STAGING build may stay unclaimed by any stager before its request is sent
    /// again (at most once that long, until the build's deadline).
    pub staging_claim_timeout_secs: u64,
    /// Upload limits: the zip as sent, the extracted package, its file count, its expansion.
    pub max_upload_bytes: u64,
    pub max_package_bytes: u64,
    pub max_package_files: u64,
    pub max_expansion_ratio: u64,
    pub max_droplet_bytes: u64,
    /// Files smaller than this are not kept in the resource cache.
    pub resource_cache_min_bytes: u64,
    /// Seconds between full desired-state resyncs with the scheduler.
    pub resync_secs: u64,
    /// Milliseconds between passes of the deployment updater (each advances every active
    /// deployment one step).
    pub deployment_tick_ms: u64,
    /// SSH into app instances for the whole platform (CC's `allow_app_ssh_access`).
    pub allow_app_ssh_access: bool,
    /// Where the SSH endpoint listens as clients reach it (`host:port`, `links.app_ssh`);
    /// empty: no SSH endpoint is advertised.
    pub ssh_endpoint: String,
    /// The SSH endpoint's host key fingerprint (`SHA256:...`), advertised with it.
    pub ssh_host_key_fingerprint: String,
    /// Seconds a one-time SSH code may wait to be redeemed (as CF: 120).
    pub ssh_code_ttl_secs: i64,
    /// Seconds a service broker gets to answer one request (then the request failed; a
    /// provision is undone with a deprovision).
    pub broker_timeout_secs: u64,
    /// Seconds an asynchronous broker operation may stay in progress before it is failed.
    pub broker_max_poll_secs: u64,
    /// Registries (`host[:port]`) reached over plain HTTP when resolving docker images
    /// (loopback registries always are).
    pub docker_insecure_registries: Vec<String>,
    /// Where stacks are built (`<stacks_dir>/<name>`): droplets exported as OCI images are
    /// put on them.
    pub stacks_dir: PathBuf,
    /// Milliseconds between heartbeats of the jobs an api runs.
    pub job_heartbeat_ms: u64,
    /// Milliseconds without a heartbeat after which a PROCESSING job is failed by any api (its
    /// api is gone); at least twice `job_heartbeat_ms`.
    pub job_stale_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        let data_dir = home().join(".local/share/paas/api");
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 9000)),
            external_url: "http://127.0.0.1:9000".into(),
            logs_url: "http://127.0.0.1:9100".into(),
            database_url: format!("sqlite://{}", data_dir.join("api.db").display()),
            data_dir,
            max_db_connections: 10,
            apps_domain: "apps.localhost".into(),
            admin_password: None,
            internal_client_id: "paas-internal".into(),
            internal_client_secret: String::new(),
            drain_secs: 10,
            internal_url: String::new(),
            scheduler_url: "http://127.0.0.1:9200".into(),
            blobstore_dir: PathBuf::new(),
            stacks: vec!["bookworm".into(), "trixie".into()],
            default_stack: "bookworm".into(),
            default_memory_mb: 1024,
            default_disk_mb: 1024,
            max_memory_mb: 32 * 1024,
            max_disk_mb: 64 * 1024,
            staging_memory_mb: 1024,
            staging_disk_mb: 4096,
            staging_timeout_secs: 900,
            staging_heartbeat_timeout_secs: 30,
            staging_claim_timeout_secs: 10,
            max_upload_bytes: 1 << 30,
            max_package_bytes: 2 << 30,
            max_package_files: 100_000,
            max_expansion_ratio: 100,
            max_droplet_bytes: 4 << 30,
            resource_cache_min_bytes: 1,
            resync_secs: 30,
            deployment_tick_ms: 1000,
            allow_app_ssh_access: true,
            ssh_endpoint: String::new(),
            ssh_host_key_fingerprint: String::new(),
            ssh_code_ttl_secs: wire::ssh::CODE_TTL_SECS,
            broker_timeout_secs: 60,
            broker_max_poll_secs: 3600,
            docker_insecure_registries: Vec::new(),
            stacks_dir: home().join(".local/share/paas/stacks"),
            job_heartbeat_ms: 10_000,
            job_stale_ms: 60_000,
        }
    }
}

fn home() -> PathBuf {
    std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/root"))
}

/// Handles the api gets from whoever runs it.
pub struct Deps {
    pub bus: bus::DynBus,
    /// Buildpacks installed on start: `(name, position, zip)`.
    pub bundled_buildpacks: Vec<(String, u32, Vec<u8>)>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid configuration: api.{0}")]
    Config(String),
    #[error("api database: {0}")]
    Db(#[from] kit::db::DbError),
    #[error("api database: {0}")]
    Store(String),
    #[error("api data directory {path}: {source}")]
    DataDir { path: String, source: std::io::Error },
    #[error("api listener: {0}")]
    Listen(std::io::Error),
    #[error("api blobstore: {0}")]
    Blobstore(String),
}

/// Everything request handlers share.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub db: Db,
    pub bus: bus::DynBus,
    pub metrics: Metrics,
    pub uaa: Arc<http::uaa::Uaa>,
    pub blobs: blobstore::DynBlobstore,
    pub http: reqwest::Client,
    /// The schedulers, and which of them leads.
    pub scheduler: kit::leader::Leader,
    /// Background work of jobs; shutdown waits for it (within the drain time).
    pub tasks: tokio_util::task::TaskTracker,
    /// This api process as the runner of its jobs (a guid of its own, taken at start).
    pub runner: Arc<domain::jobs::Runner>,
    /// Resolves docker images for builds of docker packages.
    pub registry: oci::Registry,
    /// The image layout droplets are exported from (`<data_dir>/oci`).
    pub images: oci::layout::ImageStore,
}

impl AppState {
    /// Base of every v3 link.
    pub fn v3(&self) -> String {
        format!("{}/v3", self.config.external_url.trim_end_matches('/'))
    }

    /// Base URL for other components.
    pub fn internal_url(&self) -> String {
        let u = if self.config.internal_url.is_empty() {
            &self.config.external_url
        } else {
            &self.config.internal_url
        };
        u.trim_end_matches('/').to_owned()
    }
}

/// A built api, listening but not yet serving.
pub struct Service {
    state: AppState,
    listener: tokio::net::TcpListener,
    ready: Readiness,
    admin: Option<(String, String)>,
}

/// Validate the configuration, open the database (running migrations), settle the admin
/// credentials and bind the listener.
pub async fn build(config: Config, deps: Deps) -> Result<Service, Error> {
    let scheduler = kit::leader::Leader::parse("scheduler", &config.scheduler_url)
        .map_err(|e| Error::Config(format!("scheduler_url: {e}")))?;
    if !config.external_url.starts_with("http://") && !config.external_url.starts_with("https://") {
        return Err(Error::Config("external_url: must start with http:// or https://".into()));
    }
    if !config.stacks.contains(&config.default_stack) {
        return Err(Error::Config(format!(
            "default_stack: '{}' is not one of stacks",
            config.default_stack
        )));
    }
    if config.job_heartbeat_ms == 0 {
        return Err(Error::Config("job_heartbeat_ms: must be more than 0".into()));
    }
    if config.job_stale_ms < config.job_heartbeat_ms.saturating_mul(2) {
        return Err(Error::Config("job_stale_ms: must be at least twice job_heartbeat_ms".into()));
    }
    if config.staging_heartbeat_timeout_secs == 0 {
        return Err(Error::Config("staging_heartbeat_timeout_secs: must be more than 0".into()));
    }
    if config.staging_claim_timeout_secs == 0 {
        return Err(Error::Config("staging_claim_timeout_secs: must be more than 0".into()));
    }
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|source| Error::DataDir { path: config.data_dir.display().to_string(), source })?;
    let db = Db::connect(&config.database_url, config.max_db_connections).await?;
    let (sqlite, postgres) = kit::migrations!(
        "api",
        [
            (1, "init", "0001_init.sql"),
            (2, "identity", "0002_identity.sql"),
            (3, "platform", "0003_platform.sql"),
            (4, "metadata", "0004_metadata.sql"),
            (5, "space_quotas", "0005_space_quotas.sql"),
            (6, "services", "0006_services.sql"),
            (7, "route_bindings", "0007_route_bindings.sql"),
            (8, "deployments", "0008_deployments.sql"),
            (9, "tasks", "0009_tasks.sql"),
            (10, "ssh", "0010_ssh.sql"),
            (11, "feature_flags", "0011_feature_flags.sql"),
            (12, "app_task_limits", "0012_app_task_limits.sql"),
            (13, "env_var_groups", "0013_env_var_groups.sql"),
            (14, "brokers", "0014_brokers.sql"),
            (15, "service_shares", "0015_service_shares.sql"),
            (16, "usage_events", "0016_usage_events.sql"),
            (17, "service_plan_lifecycle", "0017_service_plan_lifecycle.sql"),
            (18, "docker", "0018_docker.sql"),
            (19, "domain_shares", "0019_domain_shares.sql"),
            (20, "job_runners", "0020_job_runners.sql"),
            (21, "build_claims", "0021_build_claims.sql")
        ]
    );
    db.migrate(sqlite, postgres).await?;
    store::quotas::ensure_default(&db.pool).await.map_err(|e| Error::Store(e.detail()))?;
    store::domains::ensure_shared(
        &db.pool,
        &store::new_guid(),
        &config.apps_domain,
        store::now_ms(),
    )
    .await
    .map_err(|e| Error::Db(e.into()))?;
    let stale = Duration::from_millis(config.job_stale_ms);
    let orphans = domain::jobs::sweep(&db, stale).await.map_err(|e| Error::Store(e.detail()))?;
    if orphans > 0 {
        tracing::warn!(jobs = orphans, "failed jobs whose api stopped before they finished");
    }
    let blob_dir = if config.blobstore_dir.as_os_str().is_empty() {
        config.data_dir.join("blobs")
    } else {
        config.blobstore_dir.clone()
    };
    let blobs: blobstore::DynBlobstore = Arc::new(
        blobstore::FsBlobstore::new(&blob_dir).map_err(|e| Error::Blobstore(e.to_string()))?,
    );
    let admin = domain::admin::settle_password(&config.data_dir, config.admin_password.as_deref())
        .map_err(|source| Error::DataDir { path: config.data_dir.display().to_string(), source })?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64 / 1_000_000;
    let users = domain::users::Users::new(db.clone());
    let password = domain::admin::stored_password(&config.data_dir)
        .ok_or_else(|| Error::Config("admin_password: could not be settled".into()))?;
    users.ensure_admin(&password, now).await.map_err(|e| Error::Db(e.into()))?;
    let key = store::keys::load_or_create(&db, now)
        .await
        .map_err(|e| Error::Config(format!("token signing key: {e}")))?;
    let uaa = Arc::new(http::uaa::Uaa::new(
        users,
        key,
        &config.external_url,
        &config.internal_client_id,
        &config.internal_client_secret,
    ));
    let listener = kit::http::bind(config.addr).await.map_err(Error::Listen)?;
    let ready = Readiness::new();
    ready.register("database");
    ready.register("bus");
    let registry = oci::Registry::new(config.docker_insecure_registries.clone());
    let images =
        oci::layout::ImageStore::new(config.data_dir.join("oci"), config.stacks_dir.clone());
    let state = AppState {
        registry,
        images,
        config: Arc::new(config),
        db,
        bus: deps.bus,
        metrics: Metrics::new("api"),
        uaa,
        blobs,
        http: kit::http::client(),
        scheduler,
        tasks: tokio_util::task::TaskTracker::new(),
        runner: Arc::new(domain::jobs::Runner::new()),
    };
    domain::staging::install_bundled(&state, &deps.bundled_buildpacks)
        .await
        .map_err(|e| Error::Blobstore(format!("installing the bundled buildpacks: {e}")))?;
    Ok(Service { state, listener, ready, admin })
}

/// The api's HTTP surface, grouped by audience: the public CF v3 API and the token issuer,
/// the internal API of the platform's own components, and the operational endpoints.
pub fn routes(state: AppState, ready: Readiness) -> Router {
    Router::new()
        .merge(http::uaa::routes(state.uaa.clone()))
        .merge(http::root::routes(state.clone()))
        .merge(
            public_routes(&state.config)
                .layer(axum::middleware::from_fn_with_state(state.clone(), http::metadata::layer))
                .with_state(state.clone()),
        )
        .merge(http::ssh::oauth_routes().with_state(state.clone()))
        .merge(internal_routes(&state.config).with_state(state.clone()))
        .merge(kit::http::ops_routes(ready, state.metrics.clone()))
        .fallback(not_found)
}

/// The CF v3 surface (`/v3`).
fn public_routes(config: &Config) -> Router<AppState> {
    Router::new()
        .merge(http::orgs::routes())
        .merge(http::spaces::routes())
        .merge(http::roles::routes())
        .merge(http::quotas::routes())
        .merge(http::space_quotas::routes())
        .merge(http::domains::routes())
        .merge(http::services::routes())
        .merge(http::brokers::routes())
        .merge(http::sharing::routes())
        .merge(http::route_bindings::routes())
        .merge(http::routes::routes())
        .merge(http::apps::routes())
        .merge(http::processes::routes())
        .merge(http::packages::routes(config.max_upload_bytes))
        .merge(http::builds::routes())
        .merge(http::deployments::routes())
        .merge(http::tasks::routes())
        .merge(http::droplets::routes(config.max_upload_bytes))
        .merge(http::buildpacks::routes())
        .merge(http::manifest::routes())
        .merge(http::jobs::routes())
        .merge(http::events::routes())
        .merge(http::ssh::routes())
        .merge(http::feature_flags::routes())
        .merge(http::isolation_segments::routes())
        .merge(http::env_groups::routes())
        .merge(http::usage_summary::routes())
        .merge(http::usage_events::routes())
}

/// The API stagers, cells and the logs service call (`/internal`).
fn internal_routes(config: &Config) -> Router<AppState> {
    http::internal::routes(config.max_droplet_bytes).merge(http::ssh::internal_routes())
}

/// CF's answer for a path the api does not know.
async fn not_found() -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let body = serde_json::json!({"errors": [{"code": 10000, "title": "CF-NotFound", "detail": "Unknown request"}]});
    (axum::http::StatusCode::NOT_FOUND, axum::Json(body)).into_response()
}

impl Service {
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or(self.state.config.addr)
    }

    pub fn readiness(&self) -> Readiness {
        self.ready.clone()
    }

    /// `("admin", password)` when this start created the admin password (print it once).
    pub fn admin_credentials(&self) -> Option<(String, String)> {
        self.admin.clone()
    }

    /// Serve until `shutdown`, then drain.
    pub async fn run(self, shutdown: kit::Shutdown) -> Result<(), Error> {
        let health = kit::spawn_named(
            "api-health",
            health_loop(self.state.clone(), self.ready.clone(), shutdown.clone()),
        );
        let resync = kit::spawn_named(
            "api-resync",
            domain::resync::run(
                self.state.clone(),
                Duration::from_secs(self.state.config.resync_secs.max(1)),
                shutdown.clone(),
            ),
        );
        let updater = kit::spawn_named(
            "api-deployment-updater",
            domain::deployments::run_updater(
                self.state.clone(),
                Duration::from_millis(self.state.config.deployment_tick_ms.max(100)),
                shutdown.clone(),
            ),
        );
        let sweeper = kit::spawn_named(
            "api-staging-sweeper",
            domain::staging_requests::run_sweeper(
                self.state.clone(),
                domain::staging_requests::sweep_every(&self.state.config),
                shutdown.clone(),
            ),
        );
        // Stopped after the drain, not at `shutdown`: draining jobs still need their heartbeat.
        let beats = kit::Shutdown::new();
        let heartbeat = kit::spawn_named(
            "api-job-heartbeat",
            domain::jobs::run_heartbeat(self.state.clone(), beats.clone()),
        );
        let app_events = kit::spawn_named(
            "api-app-events",
            http::internal::run_app_events(self.state.clone(), shutdown.clone()),
        );
        let take_over = kit::spawn_named(
            "api-service-take-over",
            domain::managed::run_take_over(self.state.clone(), shutdown.clone()),
        );
        let drain = Duration::from_secs(self.state.config.drain_secs);
        let app = routes(self.state.clone(), self.ready.clone());
        let served = kit::http::serve(self.listener, app, shutdown, drain).await;
        self.state.tasks.close();
        if tokio::time::timeout(drain, self.state.tasks.wait()).await.is_err() {
            tracing::warn!(
                jobs = self.state.tasks.len(),
                "jobs still running at the end of the drain"
            );
        }
        beats.cancel();
        let _ = heartbeat.await;
        match domain::jobs::fail_unfinished(&self.state).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(jobs = n, "failed jobs cut off by the end of the drain"),
            Err(e) => tracing::error!(error = %e.detail(), "could not fail the jobs cut off"),
        }
        health.abort();
        resync.abort();
        sweeper.abort();
        updater.abort();
        app_events.abort();
        take_over.abort();
        self.state.db.pool.close().await;
        served.map_err(Error::Listen)
    }
}

/// Keep readiness in step with the database and the bus.
async fn health_loop(state: AppState, ready: Readiness, shutdown: kit::Shutdown) {
    loop {
        ready.set("database", state.db.ping().await);
        ready.set("bus", state.bus.is_connected());
        let wait =
            if ready.is_ready() { Duration::from_secs(5) } else { Duration::from_millis(100) };
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
    }
}
