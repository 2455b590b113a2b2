//! The service: takes `staging.request` in queue group `stagers`, claims each build at the api
//! before anything else (a build another stager claimed, or no longer STAGING, is left), runs
//! up to `max_concurrent` stagings (more wait in a bounded local queue; beyond it they fail at
//! once as overloaded), heartbeats every claimed build by claiming it again every
//! `heartbeat_secs` and stops a staging whose claim the api no longer grants, and serves
//! `/readyz` and `/metrics`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::Instrument;
use wire::staging::{StagingOutcome, StagingRequest, StagingResult};

use crate::config::{Backend, Config};
use crate::error::{Error, StageError};
use crate::fetch::{Api, BuildpackCache};
use crate::report::{self, Claim};
use crate::stage::Stager;
use crate::Deps;
use oci::layout::ImageStore;

#[derive(Clone)]
struct StagerMetrics {
    started: Counter,
    failed: Counter,
    rejected: Counter,
    aborted: Counter,
    in_flight: Gauge,
    total: Histogram,
    scripts: Histogram,
}

impl Default for StagerMetrics {
    fn default() -> Self {
        let h = || Histogram::new(exponential_buckets(0.125, 2.0, 14));
        Self {
            started: Counter::default(),
            failed: Counter::default(),
            rejected: Counter::default(),
            aborted: Counter::default(),
            in_flight: Gauge::default(),
            total: h(),
            scripts: h(),
        }
    }
}

pub struct Service {
    listener: TcpListener,
    addr: SocketAddr,
    ready: kit::ready::Readiness,
    metrics: kit::metrics::Metrics,
    counters: StagerMetrics,
    stager: Arc<Stager>,
}

pub async fn build(config: Config, deps: Deps) -> Result<Service, Error> {
    config.validate().map_err(Error::Config)?;
    let work = &config.work_dir;
    std::fs::create_dir_all(work.join("builds"))
        .map_err(|source| Error::WorkDir { path: work.display().to_string(), source })?;
    // Scratch dirs of a previous run are garbage now.
    let _ = std::fs::remove_dir_all(work.join("builds"));
    let _ = std::fs::create_dir_all(work.join("builds"));
    let listener = kit::http::bind(config.status_addr)
        .await
        .map_err(|source| Error::Bind { addr: config.status_addr, source })?;
    let addr =
        listener.local_addr().map_err(|source| Error::Bind { addr: config.status_addr, source })?;
    let ready = kit::ready::Readiness::new();
    ready.register("bus");
    let metrics = kit::metrics::Metrics::new("stager");
    let counters = StagerMetrics::default();
    metrics.register("stagings_started", "Stagings started", counters.started.clone());
    metrics.register("stagings_failed", "Stagings that ended FAILED", counters.failed.clone());
    metrics.register(
        "stagings_rejected",
        "Requests refused as overloaded",
        counters.rejected.clone(),
    );
    metrics.register(
        "stagings_aborted",
        "Stagings stopped because the api no longer granted their claim",
        counters.aborted.clone(),
    );
    metrics.register("staging_seconds", "Wall time of whole stagings", counters.total.clone());
    metrics.register(
        "staging_buildpack_seconds",
        "Time spent inside buildpack scripts per staging",
        counters.scripts.clone(),
    );
    metrics.register(
        "stagings_in_flight",
        "Stagings running or queued",
        counters.in_flight.clone(),
    );
    let token = auth::ClientCredentials::new(
        format!("{}/oauth/token", config.api_url.trim_end_matches('/')),
        &config.internal_client_id,
        &config.internal_client_secret,
    );
    let api = Api { http: kit::http::client(), token: Arc::new(token) };
    let images =
        config.write_images.then(|| ImageStore::new(work.join("oci"), config.stacks_dir.clone()));
    let stager = Stager {
        id: uuid::Uuid::new_v4().to_string(),
        buildpacks: BuildpackCache::new(work.join("buildpacks")),
        config: Arc::new(config),
        api,
        images,
        bus: deps.bus,
        host: Arc::new(::container::RealHost),
    };
    Ok(Service { listener, addr, ready, metrics, counters, stager: Arc::new(stager) })
}

impl Service {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn readiness(&self) -> kit::ready::Readiness {
        self.ready.clone()
    }

    pub async fn run(self, shutdown: kit::Shutdown) -> Result<(), Error> {
        let cfg = self.stager.config.clone();
        if cfg.backend == Backend::Process {
            tracing::warn!("stager backend: process — staging runs on the host without isolation or memory limits; not for multi-tenant use");
        }
        let mut sub = self
            .stager
            .bus
            .queue_subscribe(wire::subjects::STAGING_REQUEST, wire::subjects::STAGING_QUEUE)
            .await?;
        // Every stager (not one of the queue) drops the caches it keeps.
        let mut cache_deletes =
            self.stager.bus.subscribe(wire::subjects::BUILDPACK_CACHE_DELETE).await?;
        self.ready.set("bus", true);
        tracing::info!(stager_id = %self.stager.id, "taking staging requests");
        if let Some(store) = self.stager.images.clone() {
            kit::spawn_named(
                "stager-warm-image",
                async move { store.warm(stack::DEFAULT_STACK).await },
            );
        }
        let ops = kit::http::ops_routes(self.ready.clone(), self.metrics.clone());
        let server = kit::spawn_named(
            "stager-status",
            kit::http::serve(self.listener, ops, shutdown.clone(), Duration::from_secs(5)),
        );
        let slots = Arc::new(Semaphore::new(cfg.max_concurrent));
        let bound = (cfg.max_concurrent + cfg.max_queued) as i64;
        let mut tasks = tokio::task::JoinSet::new();
        loop {
            let msg = tokio::select! {
                _ = shutdown.cancelled() => break,
                m = sub.next() => match m { Some(m) => m, None => break },
                Some(m) = cache_deletes.next() => {
                    // Off the loop: deleting every app's cache may take a while.
                    let work_dir = cfg.work_dir.clone();
                    tokio::spawn(async move { delete_caches(&work_dir, &m.payload).await });
                    continue;
                }
            };
            while tasks.try_join_next().is_some() {}
            let req: StagingRequest = match serde_json::from_slice(&msg.payload) {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(error = %e, "ignoring a malformed staging request");
                    continue;
                }
            };
            let (stager, counters, slots, stop) =
                (self.stager.clone(), self.counters.clone(), slots.clone(), shutdown.clone());
            if counters.in_flight.get() >= bound {
                counters.rejected.inc();
                tasks.spawn(async move {
                    // Only a build this stager holds is failed: another may be staging it.
                    if !claim_first(&stager, &req, &stop).await {
                        return;
                    }
                    let msg = format!(
                        "the stager is overloaded ({bound} stagings running or queued); try again"
                    );
                    fail(&stager, &req, StageError::platform(msg)).await;
                });
                continue;
            }
            counters.in_flight.inc();
            let span =
                tracing::info_span!("staging", app_guid = %req.app_guid, build = %req.build_guid);
            tasks.spawn(run_one(stager, counters, slots, stop, req).instrument(span));
        }
        self.ready.set("bus", false);
        drop(sub);
        let drain = tokio::time::timeout(Duration::from_secs(20), async {
            while tasks.join_next().await.is_some() {}
        });
        if drain.await.is_err() {
            tasks.abort_all();
        }
        server
            .await
            .map_err(|e| Error::Serve(e.to_string()))?
            .map_err(|e| Error::Serve(e.to_string()))
    }
}

/// A `staging.cache.delete` message: drop the buildpack caches it names.
async fn delete_caches(work_dir: &std::path::Path, payload: &[u8]) {
    let what: wire::staging::BuildpackCacheDelete = match serde_json::from_slice(payload) {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(error = %e, "ignoring a malformed buildpack cache deletion");
            return;
        }
    };
    let app = what.app_guid.as_deref();
    match crate::stage::delete_caches(work_dir, app).await {
        Ok(had) => {
            tracing::info!(app_guid = app.unwrap_or("(all)"), had, "buildpack cache deleted")
        }
        Err(e) => {
            tracing::warn!(app_guid = app.unwrap_or("(all)"), error = %e, "buildpack cache not deleted")
        }
    }
}

/// Attempts at the first claim of a build before it is left to the api to send again.
const CLAIM_ATTEMPTS: u32 = 5;

/// Claim `req` for this stager, retrying failures a few times; whether the build is this
/// stager's to stage. A build another stager claimed or that is no longer wanted is left
/// quietly; one that could not be claimed is left too (the api sends its request again). A
/// request from an api without claims (no `claim_url`) is always staged.
async fn claim_first(stager: &Stager, req: &StagingRequest, stop: &kit::Shutdown) -> bool {
    if req.claim_url.is_empty() {
        return true;
    }
    let mut delay = Duration::from_millis(250);
    for n in 1..=CLAIM_ATTEMPTS {
        let error = match report::claim(&stager.api, &req.claim_url, &stager.id).await {
            Ok(Claim::Held) => return true,
            Ok(Claim::Lost(why)) => {
                tracing::debug!(build = %req.build_guid, answer = %why, "build claimed by another stager or no longer staging: left");
                return false;
            }
            Err(e) => e,
        };
        if n == CLAIM_ATTEMPTS {
            tracing::warn!(build = %req.build_guid, error = %error, attempts = n, "could not claim the build: left to the api to send again");
            break;
        }
        tracing::debug!(build = %req.build_guid, error = %error, attempt = n, "claim failed, retrying");
        tokio::select! {
            () = stop.cancelled() => return false,
            () = tokio::time::sleep(delay) => {}
        }
        delay *= 2;
    }
    false
}

/// Claim `req` again every `heartbeat_secs` (a failed heartbeat is logged and the next one
/// tries again); ends, with the api's answer, once the api no longer grants the claim.
async fn heartbeat(stager: &Stager, req: &StagingRequest) -> String {
    if req.claim_url.is_empty() {
        return std::future::pending().await;
    }
    let every = Duration::from_secs(stager.config.heartbeat_secs.max(1));
    loop {
        tokio::time::sleep(every).await;
        match report::claim(&stager.api, &req.claim_url, &stager.id).await {
            Ok(Claim::Held) => {}
            Ok(Claim::Lost(why)) => return why,
            Err(e) => {
                tracing::warn!(error = %e, "staging heartbeat failed; the next one tries again")
            }
        }
    }
}

/// One accepted request: claim it, wait for a slot, stage, report, heartbeating meanwhile; a
/// claim the api no longer grants stops the staging (its container too) with nothing uploaded
/// or reported; on shutdown report FAILED.
async fn run_one(
    stager: Arc<Stager>,
    counters: StagerMetrics,
    slots: Arc<Semaphore>,
    stop: kit::Shutdown,
    req: StagingRequest,
) {
    if claim_first(&stager, &req, &stop).await {
        stage_claimed(&stager, &counters, &slots, &stop, &req).await;
    }
    counters.in_flight.dec();
}

async fn stage_claimed(
    stager: &Stager,
    counters: &StagerMetrics,
    slots: &Semaphore,
    stop: &kit::Shutdown,
    req: &StagingRequest,
) {
    let staged = async {
        let _permit = slots.acquire().await;
        counters.started.inc();
        stager.stage(req).await
    };
    tokio::select! {
        (result, timings) = staged => {
            counters.total.observe(timings.total.as_secs_f64());
            counters.scripts.observe(timings.scripts.as_secs_f64());
            if matches!(result.outcome, StagingOutcome::Failed(_)) {
                counters.failed.inc();
            }
            tracing::info!(
                total_ms = timings.total.as_millis() as u64,
                builder_ms = timings.builder.as_millis() as u64,
                scripts_ms = timings.scripts.as_millis() as u64,
                "staging finished"
            );
            if let Err(e) = report::complete(&stager.api, &req.completion_url, &result).await {
                tracing::error!(error = %e, "cannot report the staging result");
            }
        }
        why = heartbeat(stager, req) => {
            counters.aborted.inc();
            tracing::info!(answer = %why, "the api no longer grants this staging's claim: stopped, nothing uploaded or reported");
            crate::logs::StgLog::new(stager.bus.clone(), &req.app_guid)
                .err("Staging stopped: this build is no longer staged by this stager")
                .await;
        }
        _ = stop.cancelled() => {
            counters.failed.inc();
            fail(stager, req, StageError::platform("the stager shut down during staging")).await;
        }
    }
}

async fn fail(stager: &Stager, req: &StagingRequest, e: StageError) {
    crate::logs::StgLog::new(stager.bus.clone(), &req.app_guid)
        .err(&format!("Staging failed: {e}"))
        .await;
    let result = StagingResult {
        build_guid: req.build_guid.clone(),
        outcome: StagingOutcome::Failed(e.to_failure()),
    };
    if let Err(e) = report::complete(&stager.api, &req.completion_url, &result).await {
        tracing::error!(app_guid = %req.app_guid, error = %e, "cannot report the staging result");
    }
}
