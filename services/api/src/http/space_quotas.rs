//! Space quotas (`/v3/space_quotas`): bounds an org manager sets on some of the org's spaces,
//! checked together with the org's quota (see [`crate::http::quotas`]).

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use sqlx::any::AnyRow;
use sqlx::Row as _;

use crate::access::Caller;
use crate::error::{ApiError, ApiResult};
use crate::http::extract::body;
use crate::http::paging::ListQuery;
use crate::http::quotas::parse_limits;
use crate::http::util::{check_name, link, to_one, ts};
use crate::store::Select;
use crate::store::{is_unique_violation, new_guid, now_ms};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v3/space_quotas", get(list).post(create))
        .route("/v3/space_quotas/{guid}", get(show).delete(remove))
        .route("/v3/space_quotas/{guid}/relationships/spaces", post(apply))
        .route("/v3/space_quotas/{guid}/relationships/spaces/{space}", delete(unapply))
}

async fn present(s: &AppState, r: &AnyRow) -> ApiResult<Value> {
    let guid: String = r.try_get("guid")?;
    let spaces = sqlx::query("SELECT guid FROM spaces WHERE quota_guid = $1 ORDER BY created_at")
        .bind(&guid)
        .fetch_all(&s.db.pool)
        .await?
        .iter()
        .map(|row| row.try_get::<String, _>("guid").map(|g| json!({"guid": g})))
        .collect::<Result<Vec<_>, _>>()?;
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
        "relationships": {"organization": to_one(&r.try_get::<String, _>("org_guid")?), "spaces": {"data": spaces}},
        "links": {"self": link(format!("{}/space_quotas/{guid}", s.v3()))},
    }))
}

/// The quota if the caller may read its org; writes need the org's manager.
async fn find(s: &AppState, c: &Caller, guid: &str, write: bool) -> ApiResult<AnyRow> {
    let r = sqlx::query("SELECT * FROM space_quotas WHERE guid = $1")
        .bind(guid)
        .fetch_optional(&s.db.pool)
        .await?
        .ok_or(ApiError::NotFound("Space quota"))?;
    let org: String = r.try_get("org_guid")?;
    if !c.org_readable(&org).await? {
        return Err(ApiError::NotFound("Space quota"));
    }
    if write && !c.org_manager(&org).await? {
        return Err(ApiError::NotAuthorized);
    }
    Ok(r)
}

async fn list(
    State(s): State<AppState>,
    c: Caller,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Value>> {
    let q = ListQuery::parse(q.as_deref(), &["guids", "names", "organization_guids"], &["name"])?;
    let mut sel = Select::from("space_quotas");
    sel.filter(q.filter("guids"), "guid")
        .filter(q.filter("names"), "name")
        .filter(q.filter("organization_guids"), "org_guid");
    sel.visible("org_guid", &c.visible_orgs().await?);
    let (total, rows) = sel.page(&s.db, &q.window()).await?;
    let mut items = Vec::new();
    for r in &rows {
        items.push(present(&s, r).await?);
    }
    Ok(Json(q.envelope(&format!("{}/space_quotas", s.v3()), total, items)))
}

async fn show(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Json<Value>> {
    let r = find(&s, &c, &guid, false).await?;
    Ok(Json(present(&s, &r).await?))
}

async fn create(State(s): State<AppState>, c: Caller, raw: Bytes) -> ApiResult<Response> {
    let req: Value = body(&raw)?;
    let name = req.get("name").and_then(Value::as_str).unwrap_or_default().to_owned();
    check_name(&name, "Space quota")?;
    let org = req
        .pointer("/relationships/organization/data/guid")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let o = crate::http::orgs::readable(&s, &c, &org).await.map_err(|_| {
        ApiError::Unprocessable("Organization must exist and you must have access to it".into())
    })?;
    if !c.org_manager(&o.guid).await? {
        return Err(ApiError::NotAuthorized);
    }
    let l = parse_limits(&req)?;
    let guid = new_guid();
    let now = now_ms();
    let res = sqlx::query(
        "INSERT INTO space_quotas (guid, name, org_guid, total_memory_mb, instance_memory_mb, total_instances, total_routes, total_apps, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)",
    )
    .bind(&guid).bind(&name).bind(&o.guid).bind(l.total_memory_mb).bind(l.instance_memory_mb)
    .bind(l.total_instances).bind(l.total_routes).bind(l.total_apps).bind(now)
    .execute(&s.db.pool)
    .await;
    match res {
        Err(e) if is_unique_violation(&e) => {
            return Err(ApiError::Unprocessable(format!("Space Quota '{name}' already exists.")))
        }
        r => r?,
    };
    let spaces = req
        .pointer("/relationships/spaces/data")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    assign(&s, &guid, &o.guid, &spaces).await?;
    let r = find(&s, &c, &guid, false).await?;
    Ok((StatusCode::CREATED, Json(present(&s, &r).await?)).into_response())
}

async fn assign(s: &AppState, quota: &str, org: &str, spaces: &[Value]) -> ApiResult<()> {
    for sp in spaces {
        let g = sp.get("guid").and_then(Value::as_str).unwrap_or_default();
        let r = sqlx::query(
            "UPDATE spaces SET quota_guid = $1, updated_at = $2 WHERE guid = $3 AND org_guid = $4",
        )
        .bind(quota)
        .bind(now_ms())
        .bind(g)
        .bind(org)
        .execute(&s.db.pool)
        .await?;
        if r.rows_affected() == 0 {
            return Err(ApiError::Unprocessable(format!(
                "Space with guid '{g}' is not in the quota's organization."
            )));
        }
    }
    Ok(())
}

async fn apply(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
    raw: Bytes,
) -> ApiResult<Json<Value>> {
    let r = find(&s, &c, &guid, true).await?;
    let req: Value = body(&raw)?;
    let spaces = req.get("data").and_then(Value::as_array).cloned().unwrap_or_default();
    assign(&s, &guid, &r.try_get::<String, _>("org_guid")?, &spaces).await?;
    Ok(Json(
        json!({"data": spaces, "links": {"self": link(format!("{}/space_quotas/{guid}/relationships/spaces", s.v3()))}}),
    ))
}

async fn unapply(
    State(s): State<AppState>,
    c: Caller,
    Path((guid, space)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    find(&s, &c, &guid, true).await?;
    sqlx::query("UPDATE spaces SET quota_guid = '' WHERE guid = $1 AND quota_guid = $2")
        .bind(&space)
        .bind(&guid)
        .execute(&s.db.pool)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn remove(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Response> {
    find(&s, &c, &guid, true).await?;
    let res: ApiResult<()> = async {
        sqlx::query("UPDATE spaces SET quota_guid = '' WHERE quota_guid = $1")
            .bind(&guid)
            .execute(&s.db.pool)
            .await?;
        sqlx::query("DELETE FROM space_quotas WHERE guid = $1")
            .bind(&guid)
            .execute(&s.db.pool)
            .await?;
        Ok(())
    }
    .await;
    let job = crate::domain::jobs::run(&s, "space_quota.delete", "", "", async { res }).await?;
    Ok(crate::http::jobs::accepted(&s, &job))
}
