//! `resource_metadata`: the labels and annotations of every resource, keyed by its guid.

use sqlx::AnyConnection;
use sqlx::Row as _;

use super::Select;
use crate::error::ApiResult;

/// One label or annotation: `(kind, key, value)`, kind `label` or `annotation`.
pub type Entry = (String, String, String);

/// Set (`Some`) or remove (`None`) each `(kind, key)` of a resource.
pub async fn put(
    c: &mut AnyConnection,
    guid: &str,
    entries: &[(&'static str, String, Option<String>)],
) -> ApiResult<()> {
    for (kind, key, value) in entries {
        sqlx::query(
            "DELETE FROM resource_metadata WHERE resource_guid = $1 AND kind = $2 AND key = $3",
        )
        .bind(guid)
        .bind(*kind)
        .bind(key)
        .execute(&mut *c)
        .await?;
        if let Some(v) = value {
            sqlx::query("INSERT INTO resource_metadata (resource_guid, kind, key, value) VALUES ($1, $2, $3, $4)")
                .bind(guid)
                .bind(*kind)
                .bind(key)
                .bind(v)
                .execute(&mut *c)
                .await?;
        }
    }
    Ok(())
}

/// `(resource guid, entry)` of every label and annotation of `guids`.
pub async fn of(db: &kit::db::Db, guids: &[String]) -> ApiResult<Vec<(String, Entry)>> {
    if guids.is_empty() {
        return Ok(Vec::new());
    }
    let mut sel = Select::from("resource_metadata");
    sel.any("resource_guid", guids);
    sel.all_unordered(db)
        .await?
        .iter()
        .map(|r| {
            Ok((
                r.try_get("resource_guid")?,
                (r.try_get("kind")?, r.try_get("key")?, r.try_get("value")?),
            ))
        })
        .collect()
}
