//! The `spaces` table.

use sqlx::any::AnyRow;
use sqlx::Row as _;

use super::{unique_or, Exec, Select, Window};
use crate::error::{ApiError, ApiResult};

#[derive(Debug, Clone)]
pub struct Space {
    pub guid: String,
    pub name: String,
    pub org_guid: String,
    pub quota_guid: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Space {
    fn from_row(r: &AnyRow) -> ApiResult<Self> {
        Ok(Self {
            guid: r.try_get("guid")?,
            name: r.try_get("name")?,
            org_guid: r.try_get("org_guid")?,
            quota_guid: r.try_get("quota_guid")?,
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
        })
    }
}

fn name_taken() -> ApiError {
    ApiError::Unprocessable("Name must be unique per organization".into())
}

pub async fn find<'e>(ex: impl Exec<'e>, guid: &str) -> ApiResult<Option<Space>> {
    let row =
        sqlx::query("SELECT * FROM spaces WHERE guid = $1").bind(guid).fetch_optional(ex).await?;
    row.as_ref().map(Space::from_row).transpose()
}

/// Guids of an org's spaces.
pub async fn guids_of_org<'e>(ex: impl Exec<'e>, org: &str) -> ApiResult<Vec<String>> {
    let rows =
        sqlx::query("SELECT guid FROM spaces WHERE org_guid = $1").bind(org).fetch_all(ex).await?;
    rows.iter().map(|r| Ok(r.try_get("guid")?)).collect()
}

/// One page of the spaces `sel` selects.
pub async fn page(db: &kit::db::Db, sel: &Select, w: &Window) -> ApiResult<(i64, Vec<Space>)> {
    sel.page_of(db, w, Space::from_row).await
}

/// A new space; a name taken in the org is a 422.
pub async fn insert<'e>(ex: impl Exec<'e>, sp: &Space) -> ApiResult<()> {
    let res = sqlx::query(
        "INSERT INTO spaces (guid, name, org_guid, created_at, updated_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&sp.guid)
    .bind(&sp.name)
    .bind(&sp.org_guid)
    .bind(sp.created_at)
    .bind(sp.updated_at)
    .execute(ex)
    .await;
    unique_or(res, name_taken).map(|_| ())
}

pub async fn rename<'e>(ex: impl Exec<'e>, sp: &Space) -> ApiResult<()> {
    let res = sqlx::query("UPDATE spaces SET name = $1, updated_at = $2 WHERE guid = $3")
        .bind(&sp.name)
        .bind(sp.updated_at)
        .bind(&sp.guid)
        .execute(ex)
        .await;
    unique_or(res, name_taken).map(|_| ())
}
