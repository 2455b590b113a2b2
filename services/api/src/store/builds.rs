//! The `builds` table: one row per staging of a package, STAGING until the stager reports, its
//! deadline passes or its stager stops heartbeating, then STAGED or FAILED. The stager that
//! claimed a build and its last heartbeat are `stager_id` and `heartbeat_at`; an unclaimed
//! build's `heartbeat_at` is when its request was last sent again.

use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::Row as _;

use wire::v3::BuildState;

use super::{json_col, state_col, to_json, Exec};
use crate::error::ApiResult;

#[derive(Debug, Clone)]
pub struct Build {
    pub guid: String,
    pub app_guid: String,
    pub package_guid: String,
    pub droplet_guid: String,
    pub state: BuildState,
    pub error: String,
    pub buildpacks: Vec<String>,
    pub stack: String,
    pub memory_mb: i64,
    pub disk_mb: i64,
    pub created_by: Value,
    pub deadline: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Build {
    pub fn from_row(r: &AnyRow) -> ApiResult<Self> {
        Ok(Self {
            guid: r.try_get("guid")?,
            app_guid: r.try_get("app_guid")?,
            package_guid: r.try_get("package_guid")?,
            droplet_guid: r.try_get("droplet_guid")?,
            state: state_col(r, "builds", "state", BuildState::parse)?,
            error: r.try_get("error")?,
            buildpacks: json_col(r, "builds", "buildpacks")?,
            stack: r.try_get("stack")?,
            memory_mb: r.try_get("staging_memory_mb")?,
            disk_mb: r.try_get("staging_disk_mb")?,
            created_by: json_col(r, "builds", "created_by")?,
            deadline: r.try_get("deadline")?,
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
        })
    }
}

pub async fn find<'e>(ex: impl Exec<'e>, guid: &str) -> ApiResult<Option<Build>> {
    let row =
        sqlx::query("SELECT * FROM builds WHERE guid = $1").bind(guid).fetch_optional(ex).await?;
    row.as_ref().map(Build::from_row).transpose()
}

/// Whether the app has a build STAGING.
pub async fn staging_of_app<'e>(ex: impl Exec<'e>, app: &str) -> ApiResult<bool> {
    let row = sqlx::query("SELECT guid FROM builds WHERE app_guid = $1 AND state = $2")
        .bind(app)
        .bind(BuildState::Staging.as_str())
        .fetch_optional(ex)
        .await?;
    Ok(row.is_some())
}

/// A new build (STAGING).
pub async fn insert<'e>(ex: impl Exec<'e>, b: &Build) -> ApiResult<()> {
    sqlx::query(
        "INSERT INTO builds (guid, app_guid, package_guid, droplet_guid, state, error, buildpacks, stack, \
         staging_memory_mb, staging_disk_mb, created_by, deadline, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, '', $6, $7, $8, $9, $10, $11, $12, $12)",
    )
    .bind(&b.guid)
    .bind(&b.app_guid)
    .bind(&b.package_guid)
    .bind(&b.droplet_guid)
    .bind(b.state.as_str())
    .bind(to_json(&b.buildpacks))
    .bind(&b.stack)
    .bind(b.memory_mb)
    .bind(b.disk_mb)
    .bind(to_json(&b.created_by))
    .bind(b.deadline)
    .bind(b.created_at)
    .execute(ex)
    .await?;
    Ok(())
}

/// Move a build from `from` to `to` with `error` (the caller checked the change); whether it
/// was `from`.
pub async fn finish<'e>(
    ex: impl Exec<'e>,
    guid: &str,
    from: BuildState,
    to: BuildState,
    error: &str,
    now: i64,
) -> ApiResult<bool> {
    let r = sqlx::query(
        "UPDATE builds SET state = $1, error = $2, updated_at = $3 WHERE guid = $4 AND state = $5",
    )
    .bind(to.as_str())
    .bind(error)
    .bind(now)
    .bind(guid)
    .bind(from.as_str())
    .execute(ex)
    .await?;
    Ok(r.rows_affected() > 0)
}

/// The guids of the STAGING builds whose deadline is before `now`.
pub async fn overdue<'e>(ex: impl Exec<'e>, now: i64) -> ApiResult<Vec<String>> {
    let rows = sqlx::query("SELECT guid FROM builds WHERE state = $1 AND deadline < $2")
        .bind(BuildState::Staging.as_str())
        .bind(now)
        .fetch_all(ex)
        .await?;
    rows.iter().map(|r| Ok(r.try_get("guid")?)).collect()
}

/// `stager` claims the STAGING build `guid` (nobody else has) or heartbeats its claim: its
/// heartbeat becomes `now`. Whether it holds the claim now; a build claimed by another
/// stager, finished or gone is left as it is.
pub async fn claim<'e>(ex: impl Exec<'e>, guid: &str, stager: &str, now: i64) -> ApiResult<bool> {
    let r = sqlx::query(
        "UPDATE builds SET stager_id = $1, heartbeat_at = $2 \
         WHERE guid = $3 AND state = $4 AND (stager_id IS NULL OR stager_id = $1)",
    )
    .bind(stager)
    .bind(now)
    .bind(guid)
    .bind(BuildState::Staging.as_str())
    .execute(ex)
    .await?;
    Ok(r.rows_affected() > 0)
}

/// The guids of the claimed STAGING builds whose heartbeat is older than `cutoff`.
pub async fn stale_claims<'e>(ex: impl Exec<'e>, cutoff: i64) -> ApiResult<Vec<String>> {
    let rows = sqlx::query(
        "SELECT guid FROM builds \
         WHERE state = $1 AND stager_id IS NOT NULL AND heartbeat_at < $2",
    )
    .bind(BuildState::Staging.as_str())
    .bind(cutoff)
    .fetch_all(ex)
    .await?;
    rows.iter().map(|r| Ok(r.try_get("guid")?)).collect()
}

/// Fail with `error` the build `guid` if it is still STAGING and claimed with a heartbeat
/// older than `cutoff` (a heartbeat since keeps it); whether it was.
pub async fn fail_stale_claim<'e>(
    ex: impl Exec<'e>,
    guid: &str,
    cutoff: i64,
    error: &str,
    now: i64,
) -> ApiResult<bool> {
    let r = sqlx::query(
        "UPDATE builds SET state = $1, error = $2, updated_at = $3 \
         WHERE guid = $4 AND state = $5 AND stager_id IS NOT NULL AND heartbeat_at < $6",
    )
    .bind(BuildState::Failed.as_str())
    .bind(error)
    .bind(now)
    .bind(guid)
    .bind(BuildState::Staging.as_str())
    .bind(cutoff)
    .execute(ex)
    .await?;
    Ok(r.rows_affected() > 0)
}

/// The STAGING builds no stager claimed whose request was last sent (at creation, or again)
/// before `cutoff` and whose deadline is not past `now`; those on `skip_stack` (docker
/// builds, which the api stages itself) aside.
pub async fn unclaimed<'e>(
    ex: impl Exec<'e>,
    skip_stack: &str,
    cutoff: i64,
    now: i64,
) -> ApiResult<Vec<Build>> {
    let rows = sqlx::query(
        "SELECT * FROM builds \
         WHERE state = $1 AND stager_id IS NULL AND stack <> $2 \
         AND COALESCE(heartbeat_at, created_at) < $3 AND deadline >= $4",
    )
    .bind(BuildState::Staging.as_str())
    .bind(skip_stack)
    .bind(cutoff)
    .bind(now)
    .fetch_all(ex)
    .await?;
    rows.iter().map(Build::from_row).collect()
}

/// Record that the request of the unclaimed STAGING build `guid` is sent again at `now`,
/// unless that was done since `cutoff` or the build was claimed or finished meanwhile;
/// whether it was recorded (so only one api sends it).
pub async fn mark_resent<'e>(
    ex: impl Exec<'e>,
    guid: &str,
    cutoff: i64,
    now: i64,
) -> ApiResult<bool> {
    let r = sqlx::query(
        "UPDATE builds SET heartbeat_at = $1 \
         WHERE guid = $2 AND state = $3 AND stager_id IS NULL \
         AND COALESCE(heartbeat_at, created_at) < $4",
    )
    .bind(now)
    .bind(guid)
    .bind(BuildState::Staging.as_str())
    .bind(cutoff)
    .execute(ex)
    .await?;
    Ok(r.rows_affected() > 0)
}
