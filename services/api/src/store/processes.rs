//! The `processes` table: one row per app and process type (`web` shares the app's guid), with
//! its scale, command, health check (JSON text column `health_check`) and `version`. The
//! scheduler's process guid is `<guid>-<version>`.

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::Row as _;

use super::{json_col, to_json, Exec};
use crate::error::ApiResult;

/// Health check settings as stored and shown (`health_check.data`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Health {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default)]
    pub timeout: Option<i64>,
    #[serde(default)]
    pub invocation_timeout: Option<i64>,
    #[serde(default)]
    pub interval: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct Process {
    pub guid: String,
    pub app_guid: String,
    pub kind: String,
    pub command: Option<String>,
    pub instances: i64,
    pub memory_mb: i64,
    pub disk_mb: i64,
    pub log_rate: i64,
    pub health: Health,
    pub version: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Process {
    pub fn from_row(r: &AnyRow) -> ApiResult<Self> {
        Ok(Self {
            guid: r.try_get("guid")?,
            app_guid: r.try_get("app_guid")?,
            kind: r.try_get("type")?,
            command: r.try_get("command")?,
            instances: r.try_get("instances")?,
            memory_mb: r.try_get("memory_mb")?,
            disk_mb: r.try_get("disk_mb")?,
            log_rate: r.try_get("log_rate")?,
            health: json_col(r, "processes", "health_check")?,
            version: r.try_get("version")?,
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
        })
    }

    /// The scheduler's process guid for the current version.
    pub fn lrp_guid(&self) -> String {
        format!("{}-{}", self.guid, self.version)
    }
}

pub async fn find<'e>(ex: impl Exec<'e>, guid: &str) -> ApiResult<Option<Process>> {
    let row = sqlx::query("SELECT * FROM processes WHERE guid = $1")
        .bind(guid)
        .fetch_optional(ex)
        .await?;
    row.as_ref().map(Process::from_row).transpose()
}

/// The app's processes, oldest first.
pub async fn of_app<'e>(ex: impl Exec<'e>, app: &str) -> ApiResult<Vec<Process>> {
    let rows = sqlx::query("SELECT * FROM processes WHERE app_guid = $1 ORDER BY created_at, guid")
        .bind(app)
        .fetch_all(ex)
        .await?;
    super::decode(&rows, Process::from_row)
}

/// The app's process of one type.
pub async fn find_by_type<'e>(
    ex: impl Exec<'e>,
    app: &str,
    kind: &str,
) -> ApiResult<Option<Process>> {
    let row = sqlx::query("SELECT * FROM processes WHERE app_guid = $1 AND type = $2")
        .bind(app)
        .bind(kind)
        .fetch_optional(ex)
        .await?;
    row.as_ref().map(Process::from_row).transpose()
}

/// The type of the app's process whose scheduler process guid is `lrp_guid`, if any.
pub async fn type_of_lrp<'e>(
    ex: impl Exec<'e>,
    app: &str,
    lrp_guid: &str,
) -> ApiResult<Option<String>> {
    let row =
        sqlx::query("SELECT type FROM processes WHERE app_guid = $1 AND $2 LIKE guid || '-%'")
            .bind(app)
            .bind(lrp_guid)
            .fetch_optional(ex)
            .await?;
    Ok(row.map(|r| r.try_get::<String, _>("type")).transpose()?)
}

pub async fn insert<'e>(ex: impl Exec<'e>, p: &Process) -> ApiResult<()> {
    sqlx::query(
        "INSERT INTO processes (guid, app_guid, type, command, instances, memory_mb, disk_mb, log_rate, health_check, \
         version, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(&p.guid)
    .bind(&p.app_guid)
    .bind(&p.kind)
    .bind(p.command.clone())
    .bind(p.instances)
    .bind(p.memory_mb)
    .bind(p.disk_mb)
    .bind(p.log_rate)
    .bind(to_json(&p.health))
    .bind(&p.version)
    .bind(p.created_at)
    .bind(p.updated_at)
    .execute(ex)
    .await?;
    Ok(())
}

/// Write the process's command, scale, health check, version and `updated_at`.
pub async fn update<'e>(ex: impl Exec<'e>, p: &Process) -> ApiResult<()> {
    sqlx::query(
        "UPDATE processes SET command = $1, instances = $2, memory_mb = $3, disk_mb = $4, log_rate = $5, \
         health_check = $6, version = $7, updated_at = $8 WHERE guid = $9",
    )
    .bind(p.command.clone())
    .bind(p.instances)
    .bind(p.memory_mb)
    .bind(p.disk_mb)
    .bind(p.log_rate)
    .bind(to_json(&p.health))
    .bind(&p.version)
    .bind(p.updated_at)
    .bind(&p.guid)
    .execute(ex)
    .await?;
    Ok(())
}
