//! Asynchronous operations: a job row per operation, settled with the operation's outcome. Work
//! that outlives its request runs on the api's task tracker, which shutdown drains, so no job
//! is cut off half-way by a graceful stop.
//!
//! Several apis may share one database, so each api process is a [`Runner`] with a guid of its
//! own, written on the jobs it starts. While a job runs, its runner refreshes the job's
//! heartbeat every `job_heartbeat_ms` ([`run_heartbeat`]); a PROCESSING job whose heartbeat is
//! older than `job_stale_ms` (one from before heartbeats: whose last change is) belongs to an
//! api that is gone, and any api fails it with a reason ([`sweep`], also once at start). So a
//! starting api leaves the jobs of the others alone, and the jobs of an api that died fail
//! within `job_stale_ms` without waiting for a restart. A job whose work was dropped without
//! finishing (a panic, a request cut off) is no longer refreshed and fails the same way.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::{json, Value};
use tracing::Instrument as _;

use wire::v3::JobState;

use crate::error::{ApiError, ApiResult};
use crate::store::{self, new_guid, now_ms};
use crate::AppState;

/// Why a job was failed by [`sweep`] or at the end of the drain.
pub const STOPPED: &str =
    "The api running this job stopped before it finished; run the operation again.";

/// Jobs refreshed by one heartbeat statement.
const BEAT_CHUNK: usize = 200;

/// This api process as the runner of jobs: its guid, and the jobs whose work it runs now.
#[derive(Debug)]
pub struct Runner {
    pub id: String,
    live: Mutex<BTreeSet<String>>,
}

impl Runner {
    /// A runner with a new guid, running nothing yet.
    pub fn new() -> Self {
        Self { id: new_guid(), live: Mutex::new(BTreeSet::new()) }
    }

    fn live(&self) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for Runner {
    fn default() -> Self {
        Self::new()
    }
}

/// A job whose work this api runs: refreshed by the heartbeat until dropped.
struct Running {
    runner: Arc<Runner>,
    guid: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.runner.live().remove(&self.guid);
    }
}

/// Run `work` as the job `operation` on a resource in the background; the job's guid.
pub async fn spawn<F>(
    s: &AppState,
    operation: &str,
    resource_type: &str,
    resource_guid: &str,
    work: F,
) -> ApiResult<String>
where
    F: Future<Output = ApiResult<()>> + Send + 'static,
{
    let job = start(s, operation, resource_type, resource_guid).await?;
    let (s2, guid) = (s.clone(), job.guid.clone());
    // In the request's span (and its service's), so the job's logs are the api's.
    s.tasks.spawn(
        async move {
            let outcome = work.await;
            finish(&s2, job, outcome).await;
        }
        .instrument(tracing::Span::current()),
    );
    Ok(guid)
}

/// Run `work` as a job to its end before answering; the job's guid (the job may have FAILED).
pub async fn run<F>(
    s: &AppState,
    operation: &str,
    resource_type: &str,
    resource_guid: &str,
    work: F,
) -> ApiResult<String>
where
    F: Future<Output = ApiResult<()>>,
{
    let job = start(s, operation, resource_type, resource_guid).await?;
    let guid = job.guid.clone();
    finish(s, job, work.await).await;
    Ok(guid)
}

async fn start(s: &AppState, operation: &str, rtype: &str, rguid: &str) -> ApiResult<Running> {
    let guid = new_guid();
    let runner = s.runner.clone();
    store::jobs::insert(&s.db.pool, &guid, operation, rtype, rguid, &runner.id, now_ms()).await?;
    runner.live().insert(guid.clone());
    Ok(Running { runner, guid })
}

/// Settle a job with the operation's outcome.
async fn finish(s: &AppState, job: Running, outcome: ApiResult<()>) {
    let (state, errors) = match &outcome {
        Ok(()) => (JobState::Complete, json!([])),
        Err(e) => {
            e.log();
            (JobState::Failed, json!(e.entries()))
        }
    };
    debug_assert!(wire::v3::job::allows(JobState::Processing, state));
    if let Err(e) = store::jobs::settle(&s.db.pool, &job.guid, state, &errors, now_ms()).await {
        tracing::error!(error = %e, job = job.guid, "could not settle a job");
    }
}

/// The errors of a job failed because its api stopped.
fn stopped() -> Value {
    let mut entries = ApiError::Internal(String::new()).entries();
    for e in &mut entries {
        e.detail = STOPPED.into();
    }
    json!(entries)
}

/// Fail the PROCESSING jobs whose heartbeat is older than `stale` (whose api is gone); how
/// many there were.
pub async fn sweep(db: &kit::db::Db, stale: Duration) -> ApiResult<u64> {
    let now = now_ms();
    let cutoff = now.saturating_sub(i64::try_from(stale.as_millis()).unwrap_or(i64::MAX));
    store::jobs::fail_stale(&db.pool, &stopped(), now, cutoff).await
}

/// Refresh the heartbeat of the jobs this api runs now.
async fn beat(s: &AppState) -> ApiResult<()> {
    let live: Vec<String> = s.runner.live().iter().cloned().collect();
    let now = now_ms();
    for chunk in live.chunks(BEAT_CHUNK) {
        store::jobs::beat(&s.db.pool, &s.runner.id, chunk, now).await?;
    }
    Ok(())
}

/// Every `job_heartbeat_ms` until `stop`: refresh this api's jobs, then fail those of apis that
/// are gone. Stop it once the jobs' work has drained, not before: a draining job still runs.
pub async fn run_heartbeat(s: AppState, stop: kit::Shutdown) {
    let every = Duration::from_millis(s.config.job_heartbeat_ms.max(1));
    let stale = Duration::from_millis(s.config.job_stale_ms);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        if let Err(e) = beat(&s).await {
            // Without a fresh heartbeat of our own, failing others' jobs may wait a round.
            tracing::warn!(error = %e.detail(), "could not refresh the heartbeat of running jobs");
            continue;
        }
        match sweep(&s.db, stale).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(jobs = n, "failed jobs whose api stopped before they finished"),
            Err(e) => {
                tracing::warn!(error = %e.detail(), "could not fail the jobs of stopped apis")
            }
        }
    }
}

/// At the end of the drain: fail this api's jobs still running, which stop with it.
pub async fn fail_unfinished(s: &AppState) -> ApiResult<u64> {
    store::jobs::fail_of_runner(&s.db.pool, &s.runner.id, &stopped(), now_ms()).await
}
