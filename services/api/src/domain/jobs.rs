//! Asynchronous operations: a job row per operation, settled with the operation's outcome. Work
//! that outlives its request runs on the api's task tracker, which shutdown drains, so no job
//! is cut off half-way by a graceful stop. A job never stays PROCESSING across an api restart:
//! those are failed at start-up with a reason.

use std::future::Future;

use serde_json::json;

use wire::v3::JobState;

use crate::error::{ApiError, ApiResult};
use crate::store::{self, new_guid, now_ms};
use crate::AppState;

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
    let guid = start(s, operation, resource_type, resource_guid).await?;
    let (s2, job) = (s.clone(), guid.clone());
    s.tasks.spawn(async move {
        let outcome = work.await;
        finish(&s2, &job, outcome).await;
    });
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
    let guid = start(s, operation, resource_type, resource_guid).await?;
    finish(s, &guid, work.await).await;
    Ok(guid)
}

async fn start(s: &AppState, operation: &str, rtype: &str, rguid: &str) -> ApiResult<String> {
    let guid = new_guid();
    store::jobs::insert(&s.db.pool, &guid, operation, rtype, rguid, now_ms()).await?;
    Ok(guid)
}

/// Settle a job with the operation's outcome.
async fn finish(s: &AppState, guid: &str, outcome: ApiResult<()>) {
    let (state, errors) = match &outcome {
        Ok(()) => (JobState::Complete, json!([])),
        Err(e) => {
            e.log();
            (JobState::Failed, json!(e.entries()))
        }
    };
    debug_assert!(wire::v3::job::allows(JobState::Processing, state));
    if let Err(e) = store::jobs::settle(&s.db.pool, guid, state, &errors, now_ms()).await {
        tracing::error!(error = %e, job = guid, "could not settle a job");
    }
}

/// Jobs left PROCESSING by a previous run can never finish: fail them.
pub async fn fail_orphans(db: &kit::db::Db) -> ApiResult<u64> {
    let mut entries = ApiError::Internal(String::new()).entries();
    for e in &mut entries {
        e.detail = "The api restarted while this job was running; run the operation again.".into();
    }
    store::jobs::fail_processing(&db.pool, &json!(entries), now_ms()).await
}
