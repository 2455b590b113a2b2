//! Feature flags an admin changed (`feature_flags`); a flag without a row has its default.

use sqlx::any::AnyRow;
use sqlx::Row as _;

use super::Exec;
use crate::error::ApiResult;

/// A flag as an admin set it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub name: String,
    pub enabled: bool,
    pub custom_error_message: Option<String>,
    pub updated_at: i64,
}

impl Stored {
    fn from_row(r: &AnyRow) -> ApiResult<Self> {
        Ok(Self {
            name: r.try_get("name")?,
            enabled: r.try_get::<i64, _>("enabled")? != 0,
            custom_error_message: r.try_get("custom_error_message")?,
            updated_at: r.try_get("updated_at")?,
        })
    }
}

/// Every flag that has a row.
pub async fn list<'e>(ex: impl Exec<'e>) -> ApiResult<Vec<Stored>> {
    let rows = sqlx::query("SELECT * FROM feature_flags ORDER BY name").fetch_all(ex).await?;
    rows.iter().map(Stored::from_row).collect()
}

pub async fn find<'e>(ex: impl Exec<'e>, name: &str) -> ApiResult<Option<Stored>> {
    let row = sqlx::query("SELECT * FROM feature_flags WHERE name = $1")
        .bind(name)
        .fetch_optional(ex)
        .await?;
    row.as_ref().map(Stored::from_row).transpose()
}

/// Insert or replace the flag's row.
pub async fn save<'e>(ex: impl Exec<'e>, f: &Stored) -> ApiResult<()> {
    sqlx::query(
        "INSERT INTO feature_flags (name, enabled, custom_error_message, updated_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO UPDATE SET enabled = $2, \
         custom_error_message = $3, updated_at = $4",
    )
    .bind(&f.name)
    .bind(i64::from(f.enabled))
    .bind(f.custom_error_message.as_deref())
    .bind(f.updated_at)
    .execute(ex)
    .await?;
    Ok(())
}
