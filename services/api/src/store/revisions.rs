//! The `revisions` table: what an app ran at a deployment, numbered per app. `processes`
//! (`{type: command or null}`) and `env` are JSON text columns.

use std::collections::BTreeMap;

use sqlx::any::AnyRow;
use sqlx::Row as _;

use super::{json_col, to_json, Exec, Select};
use crate::error::ApiResult;

/// How many revisions an app keeps (the oldest go first), as CC.
pub const KEEP: i64 = 100;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revision {
    pub guid: String,
    pub app_guid: String,
    pub version: i64,
    pub droplet_guid: String,
    pub processes: BTreeMap<String, Option<String>>,
    pub env: BTreeMap<String, String>,
    pub description: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Revision {
    pub fn from_row(r: &AnyRow) -> ApiResult<Self> {
        Ok(Self {
            guid: r.try_get("guid")?,
            app_guid: r.try_get("app_guid")?,
            version: r.try_get("version")?,
            droplet_guid: r.try_get("droplet_guid")?,
            processes: json_col(r, "revisions", "processes")?,
            env: json_col(r, "revisions", "env")?,
            description: r.try_get("description")?,
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
        })
    }
}

/// The select of a revisions list.
pub fn select() -> Select {
    Select::from("revisions")
}

pub async fn insert<'e>(ex: impl Exec<'e>, r: &Revision) -> ApiResult<()> {
    sqlx::query(
        "INSERT INTO revisions (guid, app_guid, version, droplet_guid, processes, env, \
         description, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
    )
    .bind(&r.guid)
    .bind(&r.app_guid)
    .bind(r.version)
    .bind(&r.droplet_guid)
    .bind(to_json(&r.processes))
    .bind(to_json(&r.env))
    .bind(&r.description)
    .bind(r.created_at)
    .execute(ex)
    .await?;
    Ok(())
}

pub async fn find<'e>(ex: impl Exec<'e>, guid: &str) -> ApiResult<Option<Revision>> {
    if guid.is_empty() {
        return Ok(None);
    }
    let row = sqlx::query("SELECT * FROM revisions WHERE guid = $1")
        .bind(guid)
        .fetch_optional(ex)
        .await?;
    row.as_ref().map(Revision::from_row).transpose()
}

/// The app's newest revision.
pub async fn latest<'e>(ex: impl Exec<'e>, app: &str) -> ApiResult<Option<Revision>> {
    let row = sqlx::query(
        "SELECT * FROM revisions WHERE app_guid = $1 ORDER BY created_at DESC, version DESC LIMIT 1",
    )
    .bind(app)
    .fetch_optional(ex)
    .await?;
    row.as_ref().map(Revision::from_row).transpose()
}

/// Remove the app's revisions beyond the newest [`KEEP`].
pub async fn prune<'e>(ex: impl Exec<'e>, app: &str) -> ApiResult<()> {
    sqlx::query(
        "DELETE FROM revisions WHERE app_guid = $1 AND guid NOT IN (SELECT guid FROM revisions \
         WHERE app_guid = $1 ORDER BY created_at DESC, version DESC LIMIT $2)",
    )
    .bind(app)
    .bind(KEEP)
    .execute(ex)
    .await?;
    Ok(())
}
