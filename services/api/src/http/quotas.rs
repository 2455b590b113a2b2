//! Organization quotas: bounds on total memory, per-instance memory, instances, routes and apps
//! of an org, checked whenever an action would exceed them (`/v3/organization_quotas`).

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use sqlx::any::AnyRow;
use sqlx::Row as _;

use crate::access::Caller;
use crate::error::{ApiError, ApiResult};
use crate::http::extract::body;
use crate::http::paging::ListQuery;
use crate::http::util::{check_name, link, ts};
use crate::store::Select;
use crate::store::{is_unique_violation, new_guid, now_ms};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v3/organization_quotas", get(list).post(create))
        .route("/v3/organization_quotas/{guid}", get(show).patch(update))
        .route("/v3/organization_quotas/{guid}/relationships/organizations", post(apply))
}

#[derive(Debug, Clone, Default)]
pub struct Limits {
    pub total_memory_mb: Option<i64>,
    pub instance_memory_mb: Option<i64>,
    pub total_instances: Option<i64>,
    pub total_routes: Option<i64>,
    pub total_apps: Option<i64>,
}

/// Whose usage a quota bounds.
#[derive(Debug, Clone, Copy)]
enum Scope<'a> {
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

    fn name(&self) -> &'static str {
        match self {
            Scope::Org(_) => "organization",
            Scope::Space(_) => "space",
        }
    }
}

async fn limits(s: &AppState, scope: Scope<'_>) -> ApiResult<Option<Limits>> {
    let sql = match scope {
        Scope::Org(_) => "SELECT q.* FROM org_quotas q JOIN organizations o ON o.quota_guid = q.guid WHERE o.guid = $1",
        Scope::Space(_) => "SELECT q.* FROM space_quotas q JOIN spaces sp ON sp.quota_guid = q.guid WHERE sp.guid = $1",
    };
    let r = sqlx::query(sql).bind(scope.guid()).fetch_optional(&s.db.pool).await?;
    let Some(r) = r else { return Ok(None) };
    Ok(Some(Limits {
        total_memory_mb: r.try_get("total_memory_mb")?,
        instance_memory_mb: r.try_get("instance_memory_mb")?,
        total_instances: r.try_get("total_instances")?,
        total_routes: r.try_get("total_routes")?,
        total_apps: r.try_get("total_apps")?,
    }))
}

async fn count(s: &AppState, sql: &str, scope: Scope<'_>, process: &str) -> ApiResult<i64> {
    let q = sqlx::query(sql).bind(scope.guid());
    let q = if sql.contains("$2") { q.bind(process) } else { q };
    let r = q.fetch_one(&s.db.pool).await?;
    Ok(r.try_get::<Option<i64>, _>("n")?.unwrap_or(0))
}

fn scopes<'a>(org: &'a str, space: &'a str) -> [Scope<'a>; 2] {
    [Scope::Org(org), Scope::Space(space)]
}

pub async fn check_routes(s: &AppState, org: &str, space: &str) -> ApiResult<()> {
    for scope in scopes(org, space) {
        let Some(max) = limits(s, scope).await?.and_then(|l| l.total_routes) else { continue };
        let sql = format!(
            "SELECT COUNT(*) AS n FROM routes r JOIN spaces sp ON sp.guid = r.space_guid WHERE {}",
            scope.spaces()
        );
        if count(s, &sql, scope, "").await? >= max {
            return Err(ApiError::Unprocessable(format!(
                "Routes quota exceeded for {}.",
                scope.name()
            )));
        }
    }
    Ok(())
}

pub async fn check_apps(s: &AppState, org: &str, space: &str) -> ApiResult<()> {
    for scope in scopes(org, space) {
        let Some(max) = limits(s, scope).await?.and_then(|l| l.total_apps) else { continue };
        let sql = format!(
            "SELECT COUNT(*) AS n FROM apps a JOIN spaces sp ON sp.guid = a.space_guid WHERE {}",
            scope.spaces()
        );
        if count(s, &sql, scope, "").await? >= max {
            return Err(ApiError::Unprocessable(format!(
                "Apps quota exceeded for {}.",
                scope.name()
            )));
        }
    }
    Ok(())
}

/// Would running the started processes with `process` changed to `instances` × `memory_mb`
/// stay within the org's and the space's quotas?
pub async fn check_memory(
    s: &AppState,
    org: &str,
    space: &str,
    process: &str,
    instances: i64,
    memory_mb: i64,
) -> ApiResult<()> {
    for scope in scopes(org, space) {
        let Some(l) = limits(s, scope).await? else { continue };
        let who = scope.name();
        if let Some(max) = l.instance_memory_mb {
            if memory_mb > max {
                return Err(ApiError::Unprocessable(format!("Memory quota exceeded: the {who}'s instance memory limit of {max}M is exceeded by {memory_mb}M.")));
            }
        }
        let from = format!(
            "FROM processes p JOIN apps a ON a.guid = p.app_guid JOIN spaces sp ON sp.guid = a.space_guid \
             WHERE {} AND a.state = 'STARTED' AND p.guid <> $2",
            scope.spaces()
        );
        if let Some(max) = l.total_memory_mb {
            let sql = format!("SELECT CAST(SUM(p.instances * p.memory_mb) AS BIGINT) AS n {from}");
            if count(s, &sql, scope, process).await? + instances * memory_mb > max {
                return Err(ApiError::Unprocessable(format!(
                    "Memory quota exceeded: the {who}'s memory limit of {max}M would be exceeded."
                )));
            }
        }
        if let Some(max) = l.total_instances {
            let sql = format!("SELECT CAST(SUM(p.instances) AS BIGINT) AS n {from}");
            if count(s, &sql, scope, process).await? + instances > max {
                return Err(ApiError::Unprocessable(format!("Instances quota exceeded: the {who}'s limit of {max} instances would be exceeded.")));
            }
        }
    }
    Ok(())
}

fn present(s: &AppState, r: &AnyRow) -> ApiResult<Value> {
    let guid: String = r.try_get("guid")?;
    let orgs = Value::Array(vec![]);
    Ok(json!({
        "guid": guid, "created_at": ts(r.try_get("created_at")?), "updated_at": ts(r.try_get("updated_at")?),
        "name": r.try_get::<String, _>("name")?,
        "apps": {
            "total_memory_in_mb": r.try_get::<Option<i64>, _>("total_memory_mb")?,
            "per_process_memory_in_mb": r.try_get::<Option<i64>, _>("instance_memory_mb")?,
            "total_instances": r.try_get::<Option<i64>, _>("total_instances")?,
            "per_app_tasks": null, "log_rate_limit_in_bytes_per_second": null,
        },
        "services": {"paid_services_allowed": true, "total_service_instances": null, "total_service_keys": null},
        "routes": {"total_routes": r.try_get::<Option<i64>, _>("total_routes")?, "total_reserved_ports": null},
        "domains": {"total_domains": null},
        "relationships": {"organizations": {"data": orgs}},
        "links": {"self": link(format!("{}/organization_quotas/{guid}", s.v3()))},
    }))
}

async fn list(
    State(s): State<AppState>,
    _c: Caller,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Value>> {
    let q = ListQuery::parse(q.as_deref(), &["guids", "names", "organization_guids"], &["name"])?;
    let mut sel = Select::from("org_quotas");
    crate::http::metadata::select(&mut sel, &q, "org_quotas.guid")?;
    sel.filter(q.filter("guids"), "guid").filter(q.filter("names"), "name");
    let (total, rows) = sel.page(&s.db, &q.window()).await?;
    let items = rows.iter().map(|r| present(&s, r)).collect::<ApiResult<Vec<_>>>()?;
    Ok(Json(q.envelope(&format!("{}/organization_quotas", s.v3()), total, items)))
}

async fn find(s: &AppState, guid: &str) -> ApiResult<AnyRow> {
    sqlx::query("SELECT * FROM org_quotas WHERE guid = $1")
        .bind(guid)
        .fetch_optional(&s.db.pool)
        .await?
        .ok_or(ApiError::NotFound("Organization quota"))
}

async fn show(
    State(s): State<AppState>,
    _c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(present(&s, &find(&s, &guid).await?)?))
}

pub(crate) fn limit(v: &Value, ptr: &str) -> ApiResult<Option<i64>> {
    match v.pointer(ptr) {
        None | Some(Value::Null) => Ok(None),
        Some(x) => match x.as_i64() {
            Some(n) if n >= 0 => Ok(Some(n)),
            _ => Err(ApiError::Unprocessable(format!(
                "{} must be a non-negative integer or null",
                ptr.trim_start_matches('/').replace('/', ".")
            ))),
        },
    }
}

pub(crate) fn parse_limits(v: &Value) -> ApiResult<Limits> {
    Ok(Limits {
        total_memory_mb: limit(v, "/apps/total_memory_in_mb")?,
        instance_memory_mb: limit(v, "/apps/per_process_memory_in_mb")?,
        total_instances: limit(v, "/apps/total_instances")?,
        total_routes: limit(v, "/routes/total_routes")?,
        total_apps: limit(v, "/apps/total_apps")?,
    })
}

async fn create(State(s): State<AppState>, c: Caller, raw: Bytes) -> ApiResult<Response> {
    if !c.admin() {
        return Err(ApiError::NotAuthorized);
    }
    let req: Value = body(&raw)?;
    let name = req.get("name").and_then(Value::as_str).unwrap_or_default().to_owned();
    check_name(&name, "Quota")?;
    let l = parse_limits(&req)?;
    let guid = new_guid();
    let now = now_ms();
    let res = sqlx::query(
        "INSERT INTO org_quotas (guid, name, total_memory_mb, instance_memory_mb, total_instances, total_routes, total_apps, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
    )
    .bind(&guid).bind(&name).bind(l.total_memory_mb).bind(l.instance_memory_mb).bind(l.total_instances)
    .bind(l.total_routes).bind(l.total_apps).bind(now)
    .execute(&s.db.pool)
    .await;
    match res {
        Err(e) if is_unique_violation(&e) => {
            return Err(ApiError::Unprocessable(format!(
                "Organization Quota '{name}' already exists."
            )))
        }
        r => r?,
    };
    let relate = req
        .pointer("/relationships/organizations/data")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for o in relate {
        if let Some(g) = o.get("guid").and_then(Value::as_str) {
            assign(&s, &guid, g).await?;
        }
    }
    Ok((StatusCode::CREATED, Json(present(&s, &find(&s, &guid).await?)?)).into_response())
}

async fn update(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
    raw: Bytes,
) -> ApiResult<Json<Value>> {
    if !c.admin() {
        return Err(ApiError::NotAuthorized);
    }
    let row = find(&s, &guid).await?;
    let req: Value = body(&raw)?;
    let cur = |col: &str| row.try_get::<Option<i64>, _>(col);
    let pick = |ptr: &str, col: &str| -> ApiResult<Option<i64>> {
        if req.pointer(ptr).is_some() {
            limit(&req, ptr)
        } else {
            Ok(cur(col)?)
        }
    };
    let name =
        req.get("name").and_then(Value::as_str).map(str::to_owned).unwrap_or(row.try_get("name")?);
    sqlx::query(
        "UPDATE org_quotas SET name = $1, total_memory_mb = $2, instance_memory_mb = $3, total_instances = $4, \
         total_routes = $5, total_apps = $6, updated_at = $7 WHERE guid = $8",
    )
    .bind(&name)
    .bind(pick("/apps/total_memory_in_mb", "total_memory_mb")?)
    .bind(pick("/apps/per_process_memory_in_mb", "instance_memory_mb")?)
    .bind(pick("/apps/total_instances", "total_instances")?)
    .bind(pick("/routes/total_routes", "total_routes")?)
    .bind(pick("/apps/total_apps", "total_apps")?)
    .bind(now_ms())
    .bind(&guid)
    .execute(&s.db.pool)
    .await?;
    Ok(Json(present(&s, &find(&s, &guid).await?)?))
}

async fn assign(s: &AppState, quota: &str, org: &str) -> ApiResult<()> {
    let r =
        sqlx::query("UPDATE organizations SET quota_guid = $1, updated_at = $2 WHERE guid = $3")
            .bind(quota)
            .bind(now_ms())
            .bind(org)
            .execute(&s.db.pool)
            .await?;
    if r.rows_affected() == 0 {
        return Err(ApiError::Unprocessable(format!(
            "Organization with guid '{org}' does not exist."
        )));
    }
    Ok(())
}

async fn apply(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
    raw: Bytes,
) -> ApiResult<Json<Value>> {
    if !c.admin() {
        return Err(ApiError::NotAuthorized);
    }
    find(&s, &guid).await?;
    let req: Value = body(&raw)?;
    let orgs = req.get("data").and_then(Value::as_array).cloned().unwrap_or_default();
    for o in &orgs {
        let g = o.get("guid").and_then(Value::as_str).unwrap_or_default();
        assign(&s, &guid, g).await?;
    }
    Ok(Json(
        json!({"data": orgs, "links": {"self": link(format!("{}/organization_quotas/{guid}/relationships/organizations", s.v3()))}}),
    ))
}
