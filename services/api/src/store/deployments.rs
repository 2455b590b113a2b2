//! The `deployments` table: one row per deployment of an app, ACTIVE until its rollout ends.
//! `options` and `retiring` are JSON text columns. A change is written only if the row is
//! as it was read (`updated_at`), so two api replicas never both advance one rollout.

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::Row as _;
use wire::v3::{DeploymentReason, DeploymentValue};

use super::{json_col, state_col, to_json, Exec, Select};
use crate::error::ApiResult;

/// What the deployment was asked for, as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Options {
    pub max_in_flight: i64,
    #[serde(default)]
    pub web_instances: Option<i64>,
    #[serde(default)]
    pub memory_in_mb: Option<i64>,
    #[serde(default)]
    pub disk_in_mb: Option<i64>,
    #[serde(default)]
    pub log_rate: Option<i64>,
    /// Canary steps' instance weights (percent); empty for a rolling deployment.
    #[serde(default)]
    pub canary_steps: Vec<i64>,
}

/// A version of the web process being replaced, and how many instances it still has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retiring {
    pub lrp_guid: String,
    pub instances: i64,
}

#[derive(Debug, Clone)]
pub struct Deployment {
    pub guid: String,
    pub app_guid: String,
    pub reason: DeploymentReason,
    pub strategy: String,
    pub droplet_guid: String,
    pub previous_droplet_guid: String,
    pub revision_guid: String,
    pub previous_revision_guid: String,
    /// The web process being deployed.
    pub process_guid: String,
    /// The web process's version before the deployment (what a cancel goes back to).
    pub previous_version: String,
    pub options: Options,
    /// Web instances when the rollout is done.
    pub target: i64,
    /// Instances the new version has now.
    pub new_instances: i64,
    /// Index of the canary step reached (the first pause is step 0).
    pub canary_step: i64,
    pub retiring: Vec<Retiring>,
    /// Unix ms when a new instance was last seen healthy; 0 never.
    pub last_healthy: i64,
    pub last_status_change: i64,
    pub error: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Deployment {
    pub fn from_row(r: &AnyRow) -> ApiResult<Self> {
        Ok(Self {
            guid: r.try_get("guid")?,
            app_guid: r.try_get("app_guid")?,
            reason: state_col(r, "deployments", "status_reason", DeploymentReason::parse)?,
            strategy: r.try_get("strategy")?,
            droplet_guid: r.try_get("droplet_guid")?,
            previous_droplet_guid: r.try_get("previous_droplet_guid")?,
            revision_guid: r.try_get("revision_guid")?,
            previous_revision_guid: r.try_get("previous_revision_guid")?,
            process_guid: r.try_get("process_guid")?,
            previous_version: r.try_get("previous_version")?,
            options: json_col(r, "deployments", "options")?,
            target: r.try_get("target_instances")?,
            new_instances: r.try_get("new_instances")?,
            canary_step: r.try_get("canary_step")?,
            retiring: json_col(r, "deployments", "retiring")?,
            last_healthy: r.try_get("last_healthy")?,
            last_status_change: r.try_get("last_status_change")?,
            error: r.try_get("error")?,
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
        })
    }

    pub fn is_active(&self) -> bool {
        self.reason.value() == DeploymentValue::Active
    }
}

/// The select of a deployments list.
pub fn select() -> Select {
    Select::from("deployments")
}

pub async fn insert<'e>(ex: impl Exec<'e>, d: &Deployment) -> ApiResult<()> {
    sqlx::query(
        "INSERT INTO deployments (guid, app_guid, status_value, status_reason, strategy, \
         droplet_guid, previous_droplet_guid, revision_guid, previous_revision_guid, process_guid, \
         previous_version, options, target_instances, new_instances, canary_step, retiring, \
         last_healthy, last_status_change, error, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, \
         $19, $20, $21)",
    )
    .bind(&d.guid)
    .bind(&d.app_guid)
    .bind(d.reason.value().as_str())
    .bind(d.reason.as_str())
    .bind(&d.strategy)
    .bind(&d.droplet_guid)
    .bind(&d.previous_droplet_guid)
    .bind(&d.revision_guid)
    .bind(&d.previous_revision_guid)
    .bind(&d.process_guid)
    .bind(&d.previous_version)
    .bind(to_json(&d.options))
    .bind(d.target)
    .bind(d.new_instances)
    .bind(d.canary_step)
    .bind(to_json(&d.retiring))
    .bind(d.last_healthy)
    .bind(d.last_status_change)
    .bind(&d.error)
    .bind(d.created_at)
    .bind(d.updated_at)
    .execute(ex)
    .await?;
    Ok(())
}

/// Write `d` if the row still has `updated_at = seen`; whether it did.
pub async fn update_if<'e>(ex: impl Exec<'e>, d: &Deployment, seen: i64) -> ApiResult<bool> {
    let res = sqlx::query(
        "UPDATE deployments SET status_value = $1, status_reason = $2, new_instances = $3, \
         canary_step = $4, retiring = $5, last_healthy = $6, last_status_change = $7, error = $8, \
         updated_at = $9 WHERE guid = $10 AND updated_at = $11",
    )
    .bind(d.reason.value().as_str())
    .bind(d.reason.as_str())
    .bind(d.new_instances)
    .bind(d.canary_step)
    .bind(to_json(&d.retiring))
    .bind(d.last_healthy)
    .bind(d.last_status_change)
    .bind(&d.error)
    .bind(d.updated_at)
    .bind(&d.guid)
    .bind(seen)
    .execute(ex)
    .await?;
    Ok(res.rows_affected() == 1)
}

pub async fn find<'e>(ex: impl Exec<'e>, guid: &str) -> ApiResult<Option<Deployment>> {
    let row = sqlx::query("SELECT * FROM deployments WHERE guid = $1")
        .bind(guid)
        .fetch_optional(ex)
        .await?;
    row.as_ref().map(Deployment::from_row).transpose()
}

/// The app's ACTIVE deployment, if it has one (the newest, should there be several).
pub async fn active_of_app<'e>(ex: impl Exec<'e>, app: &str) -> ApiResult<Option<Deployment>> {
    let row = sqlx::query(
        "SELECT * FROM deployments WHERE app_guid = $1 AND status_value = 'ACTIVE' \
         ORDER BY created_at DESC, guid DESC LIMIT 1",
    )
    .bind(app)
    .fetch_optional(ex)
    .await?;
    row.as_ref().map(Deployment::from_row).transpose()
}

/// Every ACTIVE deployment, oldest first.
pub async fn active<'e>(ex: impl Exec<'e>) -> ApiResult<Vec<Deployment>> {
    let rows = sqlx::query(
        "SELECT * FROM deployments WHERE status_value = 'ACTIVE' ORDER BY created_at, guid",
    )
    .fetch_all(ex)
    .await?;
    super::decode(&rows, Deployment::from_row)
}

/// End the app's active deployment, if any, with `reason` (a stop, or a restart that replaces
/// every instance at once): its retiring versions go with the next sync.
pub async fn end_active(
    c: &mut sqlx::AnyConnection,
    app: &str,
    reason: DeploymentReason,
) -> ApiResult<()> {
    if let Some(d) = active_of_app(&mut *c, app).await? {
        let mut next = d.clone();
        next.reason = reason;
        next.retiring.clear();
        let now = super::now_ms();
        next.last_status_change = now;
        next.updated_at = now.max(d.updated_at + 1);
        update_if(&mut *c, &next, d.updated_at).await?;
    }
    Ok(())
}
