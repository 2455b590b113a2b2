//! Organization quotas: bounds on total memory, per-instance memory, instances, routes and apps
//! of an org, checked whenever an action would exceed them (`/v3/organization_quotas`).

use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::Value;
use wire::v3::quota::{
    AppLimits, DomainLimits, OrganizationQuota, QuotaRelationships, RouteLimits, ServiceLimits,
};
use wire::v3::{Link, Page, ToMany};

use crate::access::Caller;
use crate::error::{ApiError, ApiResult};
use crate::http::extract::CfJson;
use crate::http::list::List;
use crate::http::util::{check_name, created, links, ts};
use crate::store::quotas::{Limits, Quota};
use crate::store::{self, new_guid, now_ms};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v3/organization_quotas", get(list).post(create))
        .route("/v3/organization_quotas/{guid}", get(show).patch(update).delete(remove))
        .route("/v3/organization_quotas/{guid}/relationships/organizations", post(apply))
}

pub(crate) fn app_limits(l: &Limits) -> AppLimits {
    AppLimits {
        total_memory_in_mb: l.total_memory_mb,
        per_process_memory_in_mb: l.instance_memory_mb,
        total_instances: l.total_instances,
        per_app_tasks: l.per_app_tasks,
        log_rate_limit_in_bytes_per_second: None,
    }
}

/// What the api does not bound: shown unlimited, paid services allowed.
pub(crate) fn service_limits() -> ServiceLimits {
    ServiceLimits {
        paid_services_allowed: true,
        total_service_instances: None,
        total_service_keys: None,
    }
}

pub(crate) fn route_limits(l: &Limits) -> RouteLimits {
    RouteLimits { total_routes: l.total_routes, total_reserved_ports: None }
}

fn present(s: &AppState, q: &Quota) -> OrganizationQuota {
    OrganizationQuota {
        guid: q.guid.clone(),
        created_at: ts(q.created_at),
        updated_at: ts(q.updated_at),
        name: q.name.clone(),
        apps: app_limits(&q.limits),
        services: service_limits(),
        routes: route_limits(&q.limits),
        domains: DomainLimits { total_domains: None },
        relationships: QuotaRelationships { organizations: ToMany::default() },
        links: links([("self", Link::new(format!("{}/organization_quotas/{}", s.v3(), q.guid)))]),
    }
}

async fn list(
    State(s): State<AppState>,
    _c: Caller,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Page<OrganizationQuota>>> {
    const FILTERS: [&str; 3] = ["guids", "names", "organization_guids"];
    let path = "organization_quotas";
    let list = List::parse(&s, q.as_deref(), path, "org_quotas", &FILTERS, &["name"])?
        .filter("guids", "guid")
        .filter("names", "name");
    let quotas = list.fetch(async |sel, w| store::quotas::page(&s.db, false, sel, w).await).await?;
    Ok(Json(quotas.present(|q| present(&s, q))))
}

async fn find(s: &AppState, guid: &str) -> ApiResult<Quota> {
    store::quotas::find(&s.db.pool, false, guid)
        .await?
        .ok_or(ApiError::NotFound("Organization quota"))
}

async fn show(
    State(s): State<AppState>,
    _c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Json<OrganizationQuota>> {
    Ok(Json(present(&s, &find(&s, &guid).await?)))
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
        per_app_tasks: limit(v, "/apps/per_app_tasks")?,
    })
}

async fn create(
    State(s): State<AppState>,
    c: Caller,
    CfJson(req): CfJson<Value>,
) -> ApiResult<Response> {
    if !c.admin() {
        return Err(ApiError::NotAuthorized);
    }
    let name = req.get("name").and_then(Value::as_str).unwrap_or_default().to_owned();
    check_name(&name, "Quota")?;
    let now = now_ms();
    let quota = Quota {
        guid: new_guid(),
        name,
        org_guid: String::new(),
        limits: parse_limits(&req)?,
        created_at: now,
        updated_at: now,
    };
    let relate = req
        .pointer("/relationships/organizations/data")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut tx = store::begin(&s.db).await?;
    store::quotas::insert(&mut *tx, &quota, false).await?;
    for o in relate {
        if let Some(g) = o.get("guid").and_then(Value::as_str) {
            assign(&mut tx, &quota.guid, g).await?;
        }
    }
    tx.commit().await?;
    Ok(created(present(&s, &quota)))
}

async fn update(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
    CfJson(req): CfJson<Value>,
) -> ApiResult<Json<OrganizationQuota>> {
    if !c.admin() {
        return Err(ApiError::NotAuthorized);
    }
    let mut quota = find(&s, &guid).await?;
    change(&mut quota, &req)?;
    store::quotas::update(&s.db.pool, &quota, false).await?;
    Ok(Json(present(&s, &quota)))
}

/// A PATCH body applied to an org or space quota: the limits given (`null`: unlimited), the
/// others kept.
pub(crate) fn change(quota: &mut Quota, req: &Value) -> ApiResult<()> {
    let pick = |ptr: &str, cur: Option<i64>| -> ApiResult<Option<i64>> {
        if req.pointer(ptr).is_some() {
            limit(req, ptr)
        } else {
            Ok(cur)
        }
    };
    let l = quota.limits.clone();
    quota.limits = Limits {
        total_memory_mb: pick("/apps/total_memory_in_mb", l.total_memory_mb)?,
        instance_memory_mb: pick("/apps/per_process_memory_in_mb", l.instance_memory_mb)?,
        total_instances: pick("/apps/total_instances", l.total_instances)?,
        total_routes: pick("/routes/total_routes", l.total_routes)?,
        total_apps: pick("/apps/total_apps", l.total_apps)?,
        per_app_tasks: pick("/apps/per_app_tasks", l.per_app_tasks)?,
    };
    match req.get("name") {
        None => {}
        Some(Value::String(n)) => {
            check_name(n, "Quota")?;
            quota.name = n.clone();
        }
        Some(_) => return Err(ApiError::Unprocessable("Name must be a string".into())),
    }
    quota.updated_at = now_ms();
    Ok(())
}

/// CC's `DELETE /v3/organization_quotas/:guid`: a job; a quota still applied to an org, or
/// the platform's default, stays.
async fn remove(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Response> {
    if !c.admin() {
        return Err(ApiError::NotAuthorized);
    }
    let quota = find(&s, &guid).await?;
    if quota.guid == store::orgs::DEFAULT_QUOTA {
        return Err(ApiError::Unprocessable(
            "The default organization quota cannot be deleted.".into(),
        ));
    }
    if store::quotas::orgs_using(&s.db.pool, &quota.guid).await? > 0 {
        return Err(ApiError::Unprocessable(format!(
            "Organization quota '{}' is applied to one or more organizations; \
             give them another quota before deleting it.",
            quota.name
        )));
    }
    let work = async { store::quotas::delete_org_quota(&s.db.pool, &quota.guid).await };
    let job = crate::domain::jobs::run(&s, "organization_quota.delete", "", "", work).await?;
    Ok(crate::http::jobs::accepted(&s, &job))
}

async fn assign(tx: &mut store::Tx, quota: &str, org: &str) -> ApiResult<()> {
    if !store::quotas::assign_org(&mut **tx, quota, org, now_ms()).await? {
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
    CfJson(req): CfJson<Value>,
) -> ApiResult<Json<ToMany>> {
    if !c.admin() {
        return Err(ApiError::NotAuthorized);
    }
    find(&s, &guid).await?;
    let orgs = req.get("data").and_then(Value::as_array).cloned().unwrap_or_default();
    let mut tx = store::begin(&s.db).await?;
    for o in &orgs {
        let g = o.get("guid").and_then(Value::as_str).unwrap_or_default();
        assign(&mut tx, &guid, g).await?;
    }
    tx.commit().await?;
    let href = format!("{}/organization_quotas/{guid}/relationships/organizations", s.v3());
    Ok(Json(relationship(&orgs, href)))
}

/// A relationship endpoint's answer: the guids of the request's `data`, and its own link.
pub(crate) fn relationship(data: &[Value], href: String) -> ToMany {
    let guids = data.iter().map(|d| d.get("guid").and_then(Value::as_str).unwrap_or_default());
    let mut to_many = ToMany::of(guids);
    to_many.links = links([("self", Link::new(href))]);
    to_many
}
