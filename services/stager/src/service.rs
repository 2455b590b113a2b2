//! The service: takes `staging.request` in queue group `stagers`, runs up to
//! `max_concurrent` stagings (more wait in a bounded local queue; beyond it they fail at once
//! as overloaded), and serves `/readyz` and `/metrics`.

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
use crate::report;
use crate::stage::Stager;
use crate::Deps;
use oci::layout::ImageStore;

#[derive(Clone)]
struct StagerMetrics {
    started: Counter,
    failed: Counter,
    rejected: Counter,
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
                    delete_caches(&cfg.work_dir, &m.payload).await;
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

/// One accepted request: wait for a slot, stage, report; on shutdown report FAILED.
async fn run_one(
    stager: Arc<Stager>,
    counters: StagerMetrics,
    slots: Arc<Semaphore>,
    stop: kit::Shutdown,
    req: StagingRequest,
) {
    let staged = async {
        let _permit = slots.acquire().await;
        counters.started.inc();
        stager.stage(&req).await
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
        _ = stop.cancelled() => {
            counters.failed.inc();
            fail(&stager, &req, StageError::platform("the stager shut down during staging")).await;
        }
    }
    counters.in_flight.dec();
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
