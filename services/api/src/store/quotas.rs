//! Quotas: `org_quotas` and `space_quotas` (the same limits, a space quota belongs to an org),
//! and the usage counts the domain checks them against.

use sqlx::any::AnyRow;
use sqlx::Row as _;

use super::{unique_or, Exec, Select, Window};
use crate::error::{ApiError, ApiResult};
use crate::store::orgs::DEFAULT_QUOTA;

/// The bounds of a quota; `None` is unlimited.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    pub total_memory_mb: Option<i64>,
    pub instance_memory_mb: Option<i64>,
    pub total_instances: Option<i64>,
    pub total_routes: Option<i64>,
    pub total_apps: Option<i64>,
    /// Tasks one app may have pending or running at once.
    pub per_app_tasks: Option<i64>,
}

impl Limits {
    fn from_row(r: &AnyRow) -> ApiResult<Self> {
        Ok(Self {
            total_memory_mb: r.try_get("total_memory_mb")?,
            instance_memory_mb: r.try_get("instance_memory_mb")?,
            total_instances: r.try_get("total_instances")?,
            total_routes: r.try_get("total_routes")?,
            total_apps: r.try_get("total_apps")?,
            per_app_tasks: r.try_get("per_app_tasks")?,
        })
    }
}

/// An org quota (`org_guid` empty) or a space quota.
#[derive(Debug, Clone)]
pub struct Quota {
    pub guid: String,
    pub name: String,
    pub org_guid: String,
    pub limits: Limits,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Quota {
    fn from_row(r: &AnyRow, space_quota: bool) -> ApiResult<Self> {
        Ok(Self {
            guid: r.try_get("guid")?,
            name: r.try_get("name")?,
            org_guid: if space_quota { r.try_get("org_guid")? } else { String::new() },
            limits: Limits::from_row(r)?,
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
        })
    }
}

/// Whose usage a quota bounds.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    Org(&'a str),
    Space(&'a str),
}

impl Scope<'_> {
    fn guid(&self) -> &str {
        match self {
            Scope::Org(g) | Scope::Space(g) => g,
        }
    }

    /// Condition on `sp` (spaces) selecting this scope's spaces.
    fn spaces(&self) -> &'static str {
        match self {
            Scope::Org(_) => "sp.org_guid = $1",
            Scope::Space(_) => "sp.guid = $1",
        }
    }
}

/// The limits that apply to a scope: its org's quota, or its space's quota if it has one.
pub async fn limits<'e>(ex: impl Exec<'e>, scope: Scope<'_>) -> ApiResult<Option<Limits>> {
    let sql = match scope {
        Scope::Org(_) => "SELECT q.* FROM org_quotas q JOIN organizations o ON o.quota_guid = q.guid WHERE o.guid = $1",
        Scope::Space(_) => "SELECT q.* FROM space_quotas q JOIN spaces sp ON sp.quota_guid = q.guid WHERE sp.guid = $1",
    };
    let r = sqlx::query(sql).bind(scope.guid()).fetch_optional(ex).await?;
    r.as_ref().map(Limits::from_row).transpose()
}

async fn count<'e>(
    ex: impl Exec<'e>,
    sql: &str,
    scope: Scope<'_>,
    process: &str,
) -> ApiResult<i64> {
    let q = sqlx::query(sql).bind(scope.guid());
    let q = if sql.contains("$2") { q.bind(process) } else { q };
    let r = q.fetch_one(ex).await?;
    Ok(r.try_get::<Option<i64>, _>("n")?.unwrap_or(0))
}

pub async fn count_routes<'e>(ex: impl Exec<'e>, scope: Scope<'_>) -> ApiResult<i64> {
    let sql = format!(
        "SELECT COUNT(*) AS n FROM routes r JOIN spaces sp ON sp.guid = r.space_guid WHERE {}",
        scope.spaces()
    );
    count(ex, &sql, scope, "").await
}

pub async fn count_apps<'e>(ex: impl Exec<'e>, scope: Scope<'_>) -> ApiResult<i64> {
    let sql = format!(
        "SELECT COUNT(*) AS n FROM apps a JOIN spaces sp ON sp.guid = a.space_guid WHERE {}",
        scope.spaces()
    );
    count(ex, &sql, scope, "").await
}

fn started_except(scope: Scope<'_>) -> String {
    format!(
        "FROM processes p JOIN apps a ON a.guid = p.app_guid JOIN spaces sp ON sp.guid = a.space_guid \
         WHERE {} AND a.state = 'STARTED' AND p.guid <> $2",
        scope.spaces()
    )
}

/// Memory (MB) of the started processes of a scope, but `process`.
pub async fn started_memory<'e>(
    ex: impl Exec<'e> + Copy,
    scope: Scope<'_>,
    process: &str,
) -> ApiResult<i64> {
    let sql = format!(
        "SELECT CAST(SUM(p.instances * p.memory_mb) AS BIGINT) AS n {}",
        started_except(scope)
    );
    // Tasks count while they run.
    let tasks = format!(
        "SELECT CAST(SUM(t.memory_mb) AS BIGINT) AS n FROM tasks t JOIN apps a ON a.guid = t.app_guid \
         JOIN spaces sp ON sp.guid = a.space_guid WHERE {} AND t.state IN ('PENDING', 'RUNNING', 'CANCELING')",
        scope.spaces()
    );
    Ok(count(ex, &sql, scope, process).await? + count(ex, &tasks, scope, "").await?)
}

/// Instances of the started processes of a scope, but `process`.
pub async fn started_instances<'e>(
    ex: impl Exec<'e>,
    scope: Scope<'_>,
    process: &str,
) -> ApiResult<i64> {
    let sql = format!("SELECT CAST(SUM(p.instances) AS BIGINT) AS n {}", started_except(scope));
    count(ex, &sql, scope, process).await
}

/// What a scope uses, as CC's usage summaries count it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub started_instances: i64,
    /// Of started processes and unfinished tasks.
    pub memory_mb: i64,
    pub routes: i64,
    pub service_instances: i64,
    /// Private domains of the org.
    pub domains: i64,
    /// Unfinished tasks.
    pub tasks: i64,
    /// Service keys of the scope's instances.
    pub service_keys: i64,
}

pub async fn usage<'e>(ex: impl Exec<'e> + Copy, scope: Scope<'_>) -> ApiResult<Usage> {
    let w = scope.spaces();
    let instances =
        format!("SELECT CAST(SUM(p.instances) AS BIGINT) AS n {}", started_except(scope));
    let services = format!(
        "SELECT COUNT(*) AS n FROM service_instances si JOIN spaces sp ON sp.guid = si.space_guid \
         WHERE {w}"
    );
    let domains = match scope {
        Scope::Org(_) => "SELECT COUNT(*) AS n FROM domains WHERE org_guid = $1".to_owned(),
        Scope::Space(_) => "SELECT COUNT(*) AS n FROM domains d JOIN spaces sp \
                            ON sp.org_guid = d.org_guid WHERE sp.guid = $1"
            .to_owned(),
    };
    let tasks = format!(
        "SELECT COUNT(*) AS n FROM tasks t JOIN apps a ON a.guid = t.app_guid \
         JOIN spaces sp ON sp.guid = a.space_guid WHERE {w} \
         AND t.state IN ('PENDING', 'RUNNING', 'CANCELING')"
    );
    let keys = format!(
        "SELECT COUNT(*) AS n FROM service_bindings b JOIN service_instances si \
         ON si.guid = b.instance_guid JOIN spaces sp ON sp.guid = si.space_guid \
         WHERE {w} AND b.kind = 'key'"
    );
    Ok(Usage {
        started_instances: count(ex, &instances, scope, "").await?,
        memory_mb: started_memory(ex, scope, "").await?,
        routes: count_routes(ex, scope).await?,
        service_instances: count(ex, &services, scope, "").await?,
        domains: count(ex, &domains, scope, "").await?,
        tasks: count(ex, &tasks, scope, "").await?,
        service_keys: count(ex, &keys, scope, "").await?,
    })
}

/// Make sure the default org quota exists (unlimited).
pub async fn ensure_default<'e>(ex: impl Exec<'e> + Copy) -> ApiResult<()> {
    let exists = sqlx::query("SELECT guid FROM org_quotas WHERE guid = $1")
        .bind(DEFAULT_QUOTA)
        .fetch_optional(ex)
        .await?;
    if exists.is_none() {
        let res = sqlx::query(
            "INSERT INTO org_quotas (guid, name, created_at, updated_at) VALUES ($1, $1, $2, $2)",
        )
        .bind(DEFAULT_QUOTA)
        .bind(super::now_ms())
        .execute(ex)
        .await;
        // Another api starting at the same time may have made it.
        if let Err(e) = res {
            if !super::is_unique_violation(&e) {
                return Err(e.into());
            }
        }
    }
    Ok(())
}

fn table(space_quota: bool) -> &'static str {
    if space_quota {
        "space_quotas"
    } else {
        "org_quotas"
    }
}

pub async fn find<'e>(
    ex: impl Exec<'e>,
    space_quota: bool,
    guid: &str,
) -> ApiResult<Option<Quota>> {
    let sql = format!("SELECT * FROM {} WHERE guid = $1", table(space_quota));
    let r = sqlx::query(&sql).bind(guid).fetch_optional(ex).await?;
    r.as_ref().map(|r| Quota::from_row(r, space_quota)).transpose()
}

pub async fn page(
    db: &kit::db::Db,
    space_quota: bool,
    sel: &Select,
    w: &Window,
) -> ApiResult<(i64, Vec<Quota>)> {
    sel.page_of(db, w, |r| Quota::from_row(r, space_quota)).await
}

/// A new org quota (empty `org_guid`) or space quota; a taken name is a 422 saying so.
pub async fn insert<'e>(ex: impl Exec<'e>, q: &Quota, space_quota: bool) -> ApiResult<()> {
    let l = &q.limits;
    let sql = if space_quota {
        "INSERT INTO space_quotas (guid, name, total_memory_mb, instance_memory_mb, total_instances, \
         total_routes, total_apps, per_app_tasks, created_at, updated_at, org_guid) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
    } else {
        "INSERT INTO org_quotas (guid, name, total_memory_mb, instance_memory_mb, total_instances, \
         total_routes, total_apps, per_app_tasks, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
    };
    let res = sqlx::query(sql)
        .bind(&q.guid)
        .bind(&q.name)
        .bind(l.total_memory_mb)
        .bind(l.instance_memory_mb)
        .bind(l.total_instances)
        .bind(l.total_routes)
        .bind(l.total_apps)
        .bind(l.per_app_tasks)
        .bind(q.created_at)
        .bind(q.updated_at);
    let res = if space_quota { res.bind(&q.org_guid) } else { res }.execute(ex).await;
    let what = if space_quota { "Space Quota" } else { "Organization Quota" };
    unique_or(res, || ApiError::Unprocessable(format!("{what} '{}' already exists.", q.name)))
        .map(|_| ())
}

/// Name and limits of an org quota or a space quota; a taken name is a 422 saying so.
pub async fn update<'e>(ex: impl Exec<'e>, q: &Quota, space_quota: bool) -> ApiResult<()> {
    let l = &q.limits;
    let table = if space_quota { "space_quotas" } else { "org_quotas" };
    let sql = format!(
        "UPDATE {table} SET name = $1, total_memory_mb = $2, instance_memory_mb = $3, \
         total_instances = $4, total_routes = $5, total_apps = $6, per_app_tasks = $7, \
         updated_at = $8 WHERE guid = $9"
    );
    let res = sqlx::query(&sql)
        .bind(&q.name)
        .bind(l.total_memory_mb)
        .bind(l.instance_memory_mb)
        .bind(l.total_instances)
        .bind(l.total_routes)
        .bind(l.total_apps)
        .bind(l.per_app_tasks)
        .bind(q.updated_at)
        .bind(&q.guid)
        .execute(ex)
        .await;
    let what = if space_quota { "Space Quota" } else { "Organization Quota" };
    unique_or(res, || ApiError::Unprocessable(format!("{what} '{}' already exists.", q.name)))
        .map(|_| ())
}

/// How many orgs have the org quota.
pub async fn orgs_using<'e>(ex: impl Exec<'e>, quota: &str) -> ApiResult<i64> {
    let r = sqlx::query("SELECT COUNT(*) AS n FROM organizations WHERE quota_guid = $1")
        .bind(quota)
        .fetch_one(ex)
        .await?;
    Ok(r.try_get("n")?)
}

/// Remove an org quota no org has.
pub async fn delete_org_quota<'e>(ex: impl Exec<'e>, quota: &str) -> ApiResult<()> {
    sqlx::query("DELETE FROM org_quotas WHERE guid = $1").bind(quota).execute(ex).await?;
    Ok(())
}

/// Give an org the quota; whether the org exists.
pub async fn assign_org<'e>(
    ex: impl Exec<'e>,
    quota: &str,
    org: &str,
    now: i64,
) -> ApiResult<bool> {
    let r =
        sqlx::query("UPDATE organizations SET quota_guid = $1, updated_at = $2 WHERE guid = $3")
            .bind(quota)
            .bind(now)
            .bind(org)
            .execute(ex)
            .await?;
    Ok(r.rows_affected() > 0)
}

/// Give a space of `org` the space quota; whether there was such a space.
pub async fn assign_space<'e>(
    ex: impl Exec<'e>,
    quota: &str,
    org: &str,
    space: &str,
    now: i64,
) -> ApiResult<bool> {
    let r = sqlx::query(
        "UPDATE spaces SET quota_guid = $1, updated_at = $2 WHERE guid = $3 AND org_guid = $4",
    )
    .bind(quota)
    .bind(now)
    .bind(space)
    .bind(org)
    .execute(ex)
    .await?;
    Ok(r.rows_affected() > 0)
}

/// Take the space quota off one space.
pub async fn unassign_space<'e>(ex: impl Exec<'e>, quota: &str, space: &str) -> ApiResult<()> {
    sqlx::query("UPDATE spaces SET quota_guid = '' WHERE guid = $1 AND quota_guid = $2")
        .bind(space)
        .bind(quota)
        .execute(ex)
        .await?;
    Ok(())
}

/// Guids of the spaces a space quota applies to.
pub async fn spaces_of<'e>(ex: impl Exec<'e>, quota: &str) -> ApiResult<Vec<String>> {
    let rows = sqlx::query("SELECT guid FROM spaces WHERE quota_guid = $1 ORDER BY created_at")
        .bind(quota)
        .fetch_all(ex)
        .await?;
    rows.iter().map(|r| Ok(r.try_get("guid")?)).collect()
}

/// A space quota, taken off its spaces first.
pub async fn delete_space_quota(c: &mut sqlx::AnyConnection, quota: &str) -> ApiResult<()> {
    sqlx::query("UPDATE spaces SET quota_guid = '' WHERE quota_guid = $1")
        .bind(quota)
        .execute(&mut *c)
        .await?;
    sqlx::query("DELETE FROM space_quotas WHERE guid = $1").bind(quota).execute(&mut *c).await?;
    Ok(())
}
