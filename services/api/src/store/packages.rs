//! The `packages` table: an app's source bits or docker image reference, with the state of its
//! upload ([`PackageState`]: AWAITING_UPLOAD → PROCESSING_UPLOAD → READY or FAILED).

use sqlx::any::AnyRow;
use sqlx::Row as _;

use wire::v3::PackageState;

use super::{state_col, Exec};
use crate::error::ApiResult;

#[derive(Debug, Clone)]
pub struct Package {
    pub guid: String,
    pub app_guid: String,
    pub kind: String,
    pub state: PackageState,
    pub sha256: String,
    pub size: i64,
    pub error: String,
    pub image: String,
    /// Registry credentials of a docker package (empty: anonymous).
    pub docker_username: String,
    pub docker_password: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Package {
    pub fn from_row(r: &AnyRow) -> ApiResult<Self> {
        Ok(Self {
            guid: r.try_get("guid")?,
            app_guid: r.try_get("app_guid")?,
            kind: r.try_get("type")?,
            state: state_col(r, "packages", "state", PackageState::parse)?,
            sha256: r.try_get("sha256")?,
            size: r.try_get("size")?,
            error: r.try_get("error")?,
            image: r.try_get("image")?,
            docker_username: r.try_get("docker_username")?,
            docker_password: r.try_get("docker_password")?,
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
        })
    }
}

pub async fn find<'e>(ex: impl Exec<'e>, guid: &str) -> ApiResult<Option<Package>> {
    let row =
        sqlx::query("SELECT * FROM packages WHERE guid = $1").bind(guid).fetch_optional(ex).await?;
    row.as_ref().map(Package::from_row).transpose()
}

pub async fn insert<'e>(ex: impl Exec<'e>, p: &Package) -> ApiResult<()> {
    sqlx::query(
        "INSERT INTO packages (guid, app_guid, type, state, sha256, size, error, image, docker_username, docker_password, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, '', $7, $8, $9, $10, $10)",
    )
    .bind(&p.guid)
    .bind(&p.app_guid)
    .bind(&p.kind)
    .bind(p.state.as_str())
    .bind(&p.sha256)
    .bind(p.size)
    .bind(&p.image)
    .bind(&p.docker_username)
    .bind(&p.docker_password)
    .bind(p.created_at)
    .execute(ex)
    .await?;
    Ok(())
}

/// Move the package from `from` to `to` (the caller checked the change); whether it was `from`.
pub async fn set_state<'e>(
    ex: impl Exec<'e>,
    guid: &str,
    from: PackageState,
    to: PackageState,
    now: i64,
) -> ApiResult<bool> {
    let r = sqlx::query(
        "UPDATE packages SET state = $1, updated_at = $2 WHERE guid = $3 AND state = $4",
    )
    .bind(to.as_str())
    .bind(now)
    .bind(guid)
    .bind(from.as_str())
    .execute(ex)
    .await?;
    Ok(r.rows_affected() > 0)
}

/// Record how an upload ended: the package goes from `from` to `to`; whether it was `from`.
#[allow(clippy::too_many_arguments)]
pub async fn set_upload<'e>(
    ex: impl Exec<'e>,
    guid: &str,
    from: PackageState,
    to: PackageState,
    error: &str,
    sha256: &str,
    size: i64,
    now: i64,
) -> ApiResult<bool> {
    let r = sqlx::query(
        "UPDATE packages SET state = $1, error = $2, sha256 = $3, size = $4, updated_at = $5 \
         WHERE guid = $6 AND state = $7",
    )
    .bind(to.as_str())
    .bind(error)
    .bind(sha256)
    .bind(size)
    .bind(now)
    .bind(guid)
    .bind(from.as_str())
    .execute(ex)
    .await?;
    Ok(r.rows_affected() > 0)
}

pub async fn delete<'e>(ex: impl Exec<'e>, guid: &str) -> ApiResult<()> {
    sqlx::query("DELETE FROM packages WHERE guid = $1").bind(guid).execute(ex).await?;
    Ok(())
}
