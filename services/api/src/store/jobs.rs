//! The `jobs` table: one row per asynchronous operation. A PROCESSING job names the api
//! process running it (`runner`) and when that process last vouched for it (`heartbeat_at`).

use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::Row as _;
use wire::v3::job::Warning;
use wire::v3::{ErrorEntry, JobState};

use super::{json_col, state_col, Exec};
use crate::error::ApiResult;

#[derive(Debug, Clone)]
pub struct Job {
    pub guid: String,
    pub operation: String,
    pub state: JobState,
    pub errors: Vec<ErrorEntry>,
    pub warnings: Vec<Warning>,
    pub resource_type: String,
    pub resource_guid: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Job {
    fn from_row(r: &AnyRow) -> ApiResult<Self> {
        Ok(Self {
            guid: r.try_get("guid")?,
            operation: r.try_get("operation")?,
            state: state_col(r, "jobs", "state", JobState::parse)?,
            errors: json_col(r, "jobs", "errors")?,
            warnings: json_col(r, "jobs", "warnings")?,
            resource_type: r.try_get("resource_type")?,
            resource_guid: r.try_get("resource_guid")?,
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
        })
    }
}

pub async fn find<'e>(ex: impl Exec<'e>, guid: &str) -> ApiResult<Option<Job>> {
    let row =
        sqlx::query("SELECT * FROM jobs WHERE guid = $1").bind(guid).fetch_optional(ex).await?;
    row.as_ref().map(Job::from_row).transpose()
}

/// A new PROCESSING job of `runner`, its heartbeat `now`.
pub async fn insert<'e>(
    ex: impl Exec<'e>,
    guid: &str,
    operation: &str,
    resource_type: &str,
    resource_guid: &str,
    runner: &str,
    now: i64,
) -> ApiResult<()> {
    sqlx::query(
        "INSERT INTO jobs (guid, operation, state, errors, warnings, resource_type, resource_guid, \
         runner, heartbeat_at, created_at, updated_at) \
         VALUES ($1, $2, 'PROCESSING', '[]', '[]', $3, $4, $5, $6, $6, $6)",
    )
    .bind(guid)
    .bind(operation)
    .bind(resource_type)
    .bind(resource_guid)
    .bind(runner)
    .bind(now)
    .execute(ex)
    .await?;
    Ok(())
}

/// Move a PROCESSING job to `state` with `errors`.
pub async fn settle<'e>(
    ex: impl Exec<'e>,
    guid: &str,
    state: JobState,
    errors: &Value,
    now: i64,
) -> ApiResult<()> {
    sqlx::query(
        "UPDATE jobs SET state = $1, errors = $2, updated_at = $3 WHERE guid = $4 AND state = 'PROCESSING'",
    )
        .bind(state.as_str())
        .bind(errors.to_string())
        .bind(now)
        .bind(guid)
        .execute(ex)
        .await?;
    Ok(())
}

/// Set the heartbeat of those of `runner`'s jobs `guids` still PROCESSING to `now`; how many
/// there were. One parameter per guid: pass at most a few hundred.
pub async fn beat<'e>(
    ex: impl Exec<'e>,
    runner: &str,
    guids: &[String],
    now: i64,
) -> ApiResult<u64> {
    if guids.is_empty() {
        return Ok(0);
    }
    let list = (0..guids.len()).map(|i| format!("${}", i + 3)).collect::<Vec<_>>().join(", ");
    let sql = format!(
        "UPDATE jobs SET heartbeat_at = $1 \
         WHERE runner = $2 AND state = 'PROCESSING' AND guid IN ({list})"
    );
    let mut q = sqlx::query(&sql).bind(now).bind(runner);
    for g in guids {
        q = q.bind(g);
    }
    Ok(q.execute(ex).await?.rows_affected())
}

/// Fail with `errors` every PROCESSING job whose heartbeat is older than `cutoff` (a job from
/// before heartbeats: whose last change is); how many there were.
pub async fn fail_stale<'e>(
    ex: impl Exec<'e>,
    errors: &Value,
    now: i64,
    cutoff: i64,
) -> ApiResult<u64> {
    let r = sqlx::query(
        "UPDATE jobs SET state = 'FAILED', errors = $1, updated_at = $2 \
         WHERE state = 'PROCESSING' AND COALESCE(heartbeat_at, updated_at) < $3",
    )
    .bind(errors.to_string())
    .bind(now)
    .bind(cutoff)
    .execute(ex)
    .await?;
    Ok(r.rows_affected())
}

/// Fail with `errors` every job of `runner` still PROCESSING; how many there were.
pub async fn fail_of_runner<'e>(
    ex: impl Exec<'e>,
    runner: &str,
    errors: &Value,
    now: i64,
) -> ApiResult<u64> {
    let r = sqlx::query(
        "UPDATE jobs SET state = 'FAILED', errors = $1, updated_at = $2 \
         WHERE runner = $3 AND state = 'PROCESSING'",
    )
    .bind(errors.to_string())
    .bind(now)
    .bind(runner)
    .execute(ex)
    .await?;
    Ok(r.rows_affected())
}
