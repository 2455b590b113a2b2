//! The `droplets` table: what staging produced — process types, buildpacks, stack and the
//! checksum cells verify.

use std::collections::BTreeMap;

use sqlx::any::AnyRow;
use sqlx::Row as _;
use wire::v3::droplet::DropletBuildpack;
use wire::v3::DropletState;

use super::{json_col, state_col, Exec};
use crate::error::ApiResult;

#[derive(Debug, Clone)]
pub struct Droplet {
    pub guid: String,
    pub app_guid: String,
    pub package_guid: String,
    pub build_guid: String,
    pub state: DropletState,
    pub error: String,
    pub sha256: String,
    pub size: i64,
    pub buildpacks: Vec<DropletBuildpack>,
    pub process_types: BTreeMap<String, String>,
    pub execution_metadata: String,
    pub stack: String,
    /// A docker droplet's image, pinned to its digest (empty for buildpack droplets).
    pub image: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Droplet {
    pub fn from_row(r: &AnyRow) -> ApiResult<Self> {
        Ok(Self {
            guid: r.try_get("guid")?,
            app_guid: r.try_get("app_guid")?,
            package_guid: r.try_get("package_guid")?,
            build_guid: r.try_get("build_guid")?,
            state: state_col(r, "droplets", "state", DropletState::parse)?,
            error: r.try_get("error")?,
            sha256: r.try_get("sha256")?,
            size: r.try_get("size")?,
            buildpacks: json_col(r, "droplets", "buildpacks")?,
            process_types: json_col(r, "droplets", "process_types")?,
            execution_metadata: r.try_get("execution_metadata")?,
            stack: r.try_get("stack")?,
            image: r.try_get("image")?,
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
        })
    }
}

/// The droplet; none for an empty guid (an app without a current droplet).
pub async fn find<'e>(ex: impl Exec<'e>, guid: &str) -> ApiResult<Option<Droplet>> {
    if guid.is_empty() {
        return Ok(None);
    }
    let row =
        sqlx::query("SELECT * FROM droplets WHERE guid = $1").bind(guid).fetch_optional(ex).await?;
    row.as_ref().map(Droplet::from_row).transpose()
}

/// Move a droplet from `from` to `to` (the caller checked the move); whether it was in `from`.
pub async fn set_state<'e>(
    ex: impl Exec<'e>,
    guid: &str,
    from: DropletState,
    to: DropletState,
    now: i64,
) -> ApiResult<bool> {
    let res = sqlx::query(
        "UPDATE droplets SET state = $1, updated_at = $2 WHERE guid = $3 AND state = $4",
    )
    .bind(to.as_str())
    .bind(now)
    .bind(guid)
    .bind(from.as_str())
    .execute(ex)
    .await?;
    Ok(res.rows_affected() > 0)
}

/// The end of an upload: state, error, checksum, size and process types at once.
pub async fn set_upload<'e>(
    ex: impl Exec<'e>,
    d: &Droplet,
    from: DropletState,
    now: i64,
) -> ApiResult<bool> {
    let res = sqlx::query(
        "UPDATE droplets SET state = $1, error = $2, sha256 = $3, size = $4, process_types = $5, \
         updated_at = $6 WHERE guid = $7 AND state = $8",
    )
    .bind(d.state.as_str())
    .bind(&d.error)
    .bind(&d.sha256)
    .bind(d.size)
    .bind(super::to_json(&d.process_types))
    .bind(now)
    .bind(&d.guid)
    .bind(from.as_str())
    .execute(ex)
    .await?;
    Ok(res.rows_affected() > 0)
}

/// A new droplet, created with `created_at` as its `updated_at` too.
pub async fn insert<'e>(ex: impl Exec<'e>, d: &Droplet) -> ApiResult<()> {
    sqlx::query(
        "INSERT INTO droplets (guid, app_guid, package_guid, build_guid, state, error, sha256, size, buildpacks, \
         process_types, execution_metadata, stack, image, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14)",
    )
    .bind(&d.guid)
    .bind(&d.app_guid)
    .bind(&d.package_guid)
    .bind(&d.build_guid)
    .bind(d.state.as_str())
    .bind(&d.error)
    .bind(&d.sha256)
    .bind(d.size)
    .bind(super::to_json(&d.buildpacks))
    .bind(super::to_json(&d.process_types))
    .bind(&d.execution_metadata)
    .bind(&d.stack)
    .bind(&d.image)
    .bind(d.created_at)
    .execute(ex)
    .await?;
    Ok(())
}
