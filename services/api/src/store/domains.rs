//! The `domains` table: the shared app domain made at start (no org) and the private domains
//! of orgs; `domain_shares`: private domains shared with other orgs.

use sqlx::any::AnyRow;
use sqlx::Row as _;

use super::{is_unique_violation, unique_or, Exec, Select, Window};
use crate::error::{ApiError, ApiResult};

#[derive(Debug, Clone)]
pub struct Domain {
    pub guid: String,
    pub name: String,
    pub internal: bool,
    /// Empty for shared domains.
    pub org_guid: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Domain {
    fn from_row(r: &AnyRow) -> ApiResult<Self> {
        Ok(Self {
            guid: r.try_get("guid")?,
            name: r.try_get("name")?,
            internal: r.try_get::<i64, _>("internal")? != 0,
            org_guid: r.try_get("org_guid")?,
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
        })
    }
}

pub async fn find<'e>(ex: impl Exec<'e>, guid: &str) -> ApiResult<Option<Domain>> {
    let row =
        sqlx::query("SELECT * FROM domains WHERE guid = $1").bind(guid).fetch_optional(ex).await?;
    row.as_ref().map(Domain::from_row).transpose()
}

/// The domain named exactly `name`.
pub async fn find_by_name<'e>(ex: impl Exec<'e>, name: &str) -> ApiResult<Option<Domain>> {
    let row =
        sqlx::query("SELECT * FROM domains WHERE name = $1").bind(name).fetch_optional(ex).await?;
    row.as_ref().map(Domain::from_row).transpose()
}

/// The first non-internal shared domain, else the org's first private domain.
pub async fn default_for<'e>(ex: impl Exec<'e>, org: &str) -> ApiResult<Option<Domain>> {
    let row = sqlx::query(
        "SELECT * FROM domains WHERE internal = 0 AND (org_guid = '' OR org_guid = $1) \
         ORDER BY CASE WHEN org_guid = '' THEN 0 ELSE 1 END, created_at, guid LIMIT 1",
    )
    .bind(org)
    .fetch_optional(ex)
    .await?;
    row.as_ref().map(Domain::from_row).transpose()
}

/// One page of a list of domains.
pub async fn page(
    db: &kit::db::Db,
    sel: &Select,
    window: &Window,
) -> ApiResult<(i64, Vec<Domain>)> {
    sel.page_of(db, window, Domain::from_row).await
}

/// A new domain; `taken()` when its name is in use.
pub async fn insert<'e>(
    ex: impl Exec<'e>,
    d: &Domain,
    taken: impl FnOnce() -> ApiError,
) -> ApiResult<()> {
    let res = sqlx::query(
        "INSERT INTO domains (guid, name, internal, org_guid, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&d.guid)
    .bind(&d.name)
    .bind(i64::from(d.internal))
    .bind(&d.org_guid)
    .bind(d.created_at)
    .bind(d.updated_at)
    .execute(ex)
    .await;
    unique_or(res, taken).map(|_| ())
}

/// A shared domain named `name` unless one exists (start-up; errors as the database gave them).
pub async fn ensure_shared<'e>(
    ex: impl Exec<'e>,
    guid: &str,
    name: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    let res = sqlx::query(
        "INSERT INTO domains (guid, name, internal, org_guid, created_at, updated_at) \
         VALUES ($1, $2, 0, '', $3, $3)",
    )
    .bind(guid)
    .bind(name)
    .bind(now)
    .execute(ex)
    .await;
    match res {
        Err(e) if is_unique_violation(&e) => Ok(()),
        r => r.map(|_| ()),
    }
}

/// A domain and its shares, in one transaction.
pub async fn delete(db: &kit::db::Db, guid: &str) -> ApiResult<()> {
    let mut tx = super::begin(db).await?;
    sqlx::query("DELETE FROM domain_shares WHERE domain_guid = $1")
        .bind(guid)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM domains WHERE guid = $1").bind(guid).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}

/// The orgs a private domain is shared with, oldest share first.
pub async fn shared_orgs<'e>(ex: impl Exec<'e>, domain: &str) -> ApiResult<Vec<String>> {
    let rows = sqlx::query(
        "SELECT org_guid FROM domain_shares WHERE domain_guid = $1 ORDER BY created_at, org_guid",
    )
    .bind(domain)
    .fetch_all(ex)
    .await?;
    rows.iter().map(|r| Ok(r.try_get("org_guid")?)).collect()
}

/// Whether the domain is shared with the org.
pub async fn is_shared_with<'e>(ex: impl Exec<'e>, domain: &str, org: &str) -> ApiResult<bool> {
    let row =
        sqlx::query("SELECT 1 AS one FROM domain_shares WHERE domain_guid = $1 AND org_guid = $2")
            .bind(domain)
            .bind(org)
            .fetch_optional(ex)
            .await?;
    Ok(row.is_some())
}

/// Share the domain with the org (sharing twice is one share).
pub async fn share<'e>(ex: impl Exec<'e>, domain: &str, org: &str, now: i64) -> ApiResult<()> {
    sqlx::query(
        "INSERT INTO domain_shares (domain_guid, org_guid, created_at) VALUES ($1, $2, $3)          ON CONFLICT DO NOTHING",
    )
    .bind(domain)
    .bind(org)
    .bind(now)
    .execute(ex)
    .await?;
    Ok(())
}

/// Take a share away; whether there was one.
pub async fn unshare<'e>(ex: impl Exec<'e>, domain: &str, org: &str) -> ApiResult<bool> {
    let res = sqlx::query("DELETE FROM domain_shares WHERE domain_guid = $1 AND org_guid = $2")
        .bind(domain)
        .bind(org)
        .execute(ex)
        .await?;
    Ok(res.rows_affected() > 0)
}

/// The sub-select of domains shared with any org of `{}` (for [`Select::any_or_sub`]).
pub const SHARED_WITH: &str = "SELECT domain_guid FROM domain_shares WHERE org_guid IN ({})";
