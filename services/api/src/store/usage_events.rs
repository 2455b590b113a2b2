//! The `usage_events` table: app and service usage events (`kind` `app` or `service`), each
//! with its body as JSON.

use sqlx::any::AnyRow;
use sqlx::Row as _;

use super::{Exec, Select};
use crate::error::{ApiError, ApiResult};

#[derive(Debug, Clone)]
pub struct Event {
    pub guid: String,
    pub kind: String,
    pub data: serde_json::Value,
    pub created_at: i64,
}

impl Event {
    pub fn from_row(r: &AnyRow) -> ApiResult<Self> {
        let guid: String = r.try_get("guid")?;
        let text: String = r.try_get("data")?;
        let data = serde_json::from_str(&text).map_err(|e| ApiError::Corrupt {
            table: "usage_events",
            id: guid.clone(),
            detail: format!("data is not JSON: {e}"),
        })?;
        Ok(Self { guid, kind: r.try_get("kind")?, data, created_at: r.try_get("created_at")? })
    }
}

/// The select of a list of one kind.
pub fn select(kind: &str) -> Select {
    let mut sel = Select::from("usage_events");
    sel.eq("usage_events.kind", kind);
    sel
}

/// Record an event; its `created_at` is `e.created_at`, or just after the newest event when
/// that is later, so events list in the order they were recorded.
pub async fn insert<'e>(ex: impl Exec<'e>, e: &Event) -> ApiResult<()> {
    sqlx::query(
        "INSERT INTO usage_events (guid, kind, data, created_at) VALUES ($1, $2, $3, \
         (SELECT CASE WHEN MAX(created_at) >= $4 THEN MAX(created_at) + 1 ELSE $4 END \
         FROM usage_events))",
    )
    .bind(&e.guid)
    .bind(&e.kind)
    .bind(e.data.to_string())
    .bind(e.created_at)
    .execute(ex)
    .await?;
    Ok(())
}

pub async fn find<'e>(ex: impl Exec<'e>, kind: &str, guid: &str) -> ApiResult<Option<Event>> {
    let row = sqlx::query("SELECT * FROM usage_events WHERE guid = $1 AND kind = $2")
        .bind(guid)
        .bind(kind)
        .fetch_optional(ex)
        .await?;
    row.as_ref().map(Event::from_row).transpose()
}

/// Remove every event of `kind`.
pub async fn purge<'e>(ex: impl Exec<'e>, kind: &str) -> ApiResult<()> {
    sqlx::query("DELETE FROM usage_events WHERE kind = $1").bind(kind).execute(ex).await?;
    Ok(())
}
