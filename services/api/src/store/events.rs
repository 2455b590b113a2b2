//! The `audit_events` table.

use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::Row as _;

use super::{json_col, Exec, Select, Window};
use crate::error::ApiResult;

#[derive(Debug, Clone)]
pub struct Event {
    pub guid: String,
    pub kind: String,
    pub actor_guid: String,
    pub actor_type: String,
    pub actor_name: String,
    pub target_guid: String,
    pub target_type: String,
    pub target_name: String,
    pub data: Value,
    pub space_guid: String,
    pub org_guid: String,
    pub created_at: i64,
}

impl Event {
    fn from_row(r: &AnyRow) -> ApiResult<Self> {
        Ok(Self {
            guid: r.try_get("guid")?,
            kind: r.try_get("type")?,
            actor_guid: r.try_get("actor_guid")?,
            actor_type: r.try_get("actor_type")?,
            actor_name: r.try_get("actor_name")?,
            target_guid: r.try_get("target_guid")?,
            target_type: r.try_get("target_type")?,
            target_name: r.try_get("target_name")?,
            data: json_col(r, "audit_events", "data")?,
            space_guid: r.try_get("space_guid")?,
            org_guid: r.try_get("org_guid")?,
            created_at: r.try_get("created_at")?,
        })
    }
}

pub async fn insert<'e>(ex: impl Exec<'e>, e: &Event) -> ApiResult<()> {
    sqlx::query(
        "INSERT INTO audit_events (guid, type, actor_guid, actor_type, actor_name, target_guid, \
         target_type, target_name, data, space_guid, org_guid, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(&e.guid)
    .bind(&e.kind)
    .bind(&e.actor_guid)
    .bind(&e.actor_type)
    .bind(&e.actor_name)
    .bind(&e.target_guid)
    .bind(&e.target_type)
    .bind(&e.target_name)
    .bind(e.data.to_string())
    .bind(&e.space_guid)
    .bind(&e.org_guid)
    .bind(e.created_at)
    .execute(ex)
    .await?;
    Ok(())
}

pub async fn page(db: &kit::db::Db, sel: &Select, w: &Window) -> ApiResult<(i64, Vec<Event>)> {
    sel.page_of(db, w, Event::from_row).await
}

pub async fn all(db: &kit::db::Db, sel: &Select) -> ApiResult<Vec<Event>> {
    sel.all(db).await?.iter().map(Event::from_row).collect()
}
