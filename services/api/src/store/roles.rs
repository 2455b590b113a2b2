//! The `roles` table: who holds which org or space role.

use sqlx::any::AnyRow;
use sqlx::AnyConnection;
use sqlx::Row as _;

use super::{unique_or, Exec, Select, Window};
use crate::error::{ApiError, ApiResult};

#[derive(Debug, Clone)]
pub struct Role {
    pub guid: String,
    pub kind: String,
    pub user_guid: String,
    pub org_guid: String,
    /// Empty for an org role.
    pub space_guid: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Role {
    fn from_row(r: &AnyRow) -> ApiResult<Self> {
        Ok(Self {
            guid: r.try_get("guid")?,
            kind: r.try_get("type")?,
            user_guid: r.try_get("user_guid")?,
            org_guid: r.try_get("org_guid")?,
            space_guid: r.try_get("space_guid")?,
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
        })
    }
}

/// `(type, org guid, space guid)` of every role a user holds.
pub async fn held_by<'e>(
    ex: impl Exec<'e>,
    user: &str,
) -> ApiResult<Vec<(String, String, String)>> {
    let rows = sqlx::query("SELECT type, org_guid, space_guid FROM roles WHERE user_guid = $1")
        .bind(user)
        .fetch_all(ex)
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("type")?, r.try_get("org_guid")?, r.try_get("space_guid")?)))
        .collect()
}

/// Whether the user holds an org role in `org`.
pub async fn in_org<'e>(ex: impl Exec<'e>, user: &str, org: &str) -> ApiResult<bool> {
    let row = sqlx::query(
        "SELECT guid FROM roles WHERE user_guid = $1 AND org_guid = $2 AND space_guid = ''",
    )
    .bind(user)
    .bind(org)
    .fetch_optional(ex)
    .await?;
    Ok(row.is_some())
}

/// A new role; `taken` is the error when the user already holds it.
pub async fn insert<'e>(
    ex: impl Exec<'e>,
    r: &Role,
    taken: impl FnOnce() -> ApiError,
) -> ApiResult<()> {
    let res = sqlx::query(
        "INSERT INTO roles (guid, type, user_guid, org_guid, space_guid, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&r.guid)
    .bind(&r.kind)
    .bind(&r.user_guid)
    .bind(&r.org_guid)
    .bind(&r.space_guid)
    .bind(r.created_at)
    .bind(r.updated_at)
    .execute(ex)
    .await;
    unique_or(res, taken).map(|_| ())
}

pub async fn page(db: &kit::db::Db, sel: &Select, w: &Window) -> ApiResult<(i64, Vec<Role>)> {
    sel.page_of(db, w, Role::from_row).await
}

pub async fn all(db: &kit::db::Db, sel: &Select) -> ApiResult<Vec<Role>> {
    sel.all(db).await?.iter().map(Role::from_row).collect()
}

/// Delete a role. Losing the last org role in an org also loses the user's roles in its
/// spaces, as in CF.
pub async fn delete(c: &mut AnyConnection, role: &Role) -> ApiResult<()> {
    if role.space_guid.is_empty() {
        let others = sqlx::query(
            "SELECT guid FROM roles WHERE user_guid = $1 AND org_guid = $2 AND space_guid = '' AND guid <> $3",
        )
        .bind(&role.user_guid)
        .bind(&role.org_guid)
        .bind(&role.guid)
        .fetch_all(&mut *c)
        .await?;
        if others.is_empty() {
            sqlx::query(
                "DELETE FROM roles WHERE user_guid = $1 AND org_guid = $2 AND space_guid <> ''",
            )
            .bind(&role.user_guid)
            .bind(&role.org_guid)
            .execute(&mut *c)
            .await?;
        }
    }
    sqlx::query("DELETE FROM roles WHERE guid = $1").bind(&role.guid).execute(&mut *c).await?;
    Ok(())
}

/// Users with a role in an org (`column` = `org_guid`) or a space (`space_guid`).
pub async fn users_within<'e>(
    ex: impl Exec<'e>,
    space: bool,
    guid: &str,
) -> ApiResult<Vec<String>> {
    let col = if space { "space_guid" } else { "org_guid" };
    let rows = sqlx::query(&format!("SELECT DISTINCT user_guid FROM roles WHERE {col} = $1"))
        .bind(guid)
        .fetch_all(ex)
        .await?;
    rows.iter().map(|r| Ok(r.try_get("user_guid")?)).collect()
}
