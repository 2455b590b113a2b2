//! The `organizations` table.

use sqlx::any::AnyRow;
use sqlx::Row as _;

use super::{unique_or, Exec, Select, Window};
use crate::error::{ApiError, ApiResult};

/// The quota every org starts with (unlimited).
pub const DEFAULT_QUOTA: &str = "default";

#[derive(Debug, Clone)]
pub struct Org {
    pub guid: String,
    pub name: String,
    pub suspended: bool,
    pub quota_guid: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Org {
    fn from_row(r: &AnyRow) -> ApiResult<Self> {
        Ok(Self {
            guid: r.try_get("guid")?,
            name: r.try_get("name")?,
            suspended: r.try_get::<i64, _>("suspended")? != 0,
            quota_guid: r.try_get("quota_guid")?,
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
        })
    }
}

fn name_taken(name: &str) -> ApiError {
    ApiError::Unprocessable(format!("Organization '{name}' already exists."))
}

pub async fn find<'e>(ex: impl Exec<'e>, guid: &str) -> ApiResult<Option<Org>> {
    let row = sqlx::query("SELECT * FROM organizations WHERE guid = $1")
        .bind(guid)
        .fetch_optional(ex)
        .await?;
    row.as_ref().map(Org::from_row).transpose()
}

/// One page of the orgs `sel` selects.
pub async fn page(db: &kit::db::Db, sel: &Select, w: &Window) -> ApiResult<(i64, Vec<Org>)> {
    sel.page_of(db, w, Org::from_row).await
}

pub async fn insert<'e>(ex: impl Exec<'e>, org: &Org) -> ApiResult<()> {
    let res = sqlx::query(
        "INSERT INTO organizations (guid, name, suspended, quota_guid, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&org.guid)
    .bind(&org.name)
    .bind(i64::from(org.suspended))
    .bind(&org.quota_guid)
    .bind(org.created_at)
    .bind(org.updated_at)
    .execute(ex)
    .await;
    unique_or(res, || name_taken(&org.name)).map(|_| ())
}

pub async fn update<'e>(ex: impl Exec<'e>, org: &Org) -> ApiResult<()> {
    let res = sqlx::query(
        "UPDATE organizations SET name = $1, suspended = $2, updated_at = $3 WHERE guid = $4",
    )
    .bind(&org.name)
    .bind(i64::from(org.suspended))
    .bind(org.updated_at)
    .bind(&org.guid)
    .execute(ex)
    .await;
    unique_or(res, || name_taken(&org.name)).map(|_| ())
}
