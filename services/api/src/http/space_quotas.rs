//! Space quotas (`/v3/space_quotas`): bounds an org manager sets on some of the org's spaces,
//! checked together with the org's quota (see [`crate::http::quotas`]).

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde_json::Value;
use wire::v3::quota::{SpaceQuota, SpaceQuotaRelationships};
use wire::v3::{Link, Page, ToMany, ToOne};

use crate::access::Caller;
use crate::error::{ApiError, ApiResult};
use crate::http::extract::CfJson;
use crate::http::list::List;
use crate::http::quotas::{app_limits, parse_limits, relationship, route_limits, service_limits};
use crate::http::util::{check_name, created, links, ts};
use crate::store::quotas::Quota;
use crate::store::{self, new_guid, now_ms};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v3/space_quotas", get(list).post(create))
        .route("/v3/space_quotas/{guid}", get(show).patch(update).delete(remove))
        .route("/v3/space_quotas/{guid}/relationships/spaces", post(apply))
        .route("/v3/space_quotas/{guid}/relationships/spaces/{space}", delete(unapply))
}

async fn present(s: &AppState, q: &Quota) -> ApiResult<SpaceQuota> {
    let spaces = store::quotas::spaces_of(&s.db.pool, &q.guid).await?;
    Ok(SpaceQuota {
        guid: q.guid.clone(),
        created_at: ts(q.created_at),
        updated_at: ts(q.updated_at),
        name: q.name.clone(),
        apps: app_limits(&q.limits),
        services: service_limits(),
        routes: route_limits(&q.limits),
        relationships: SpaceQuotaRelationships {
            organization: ToOne::of(&q.org_guid),
            spaces: ToMany::of(spaces.iter().map(String::as_str)),
        },
        links: links([("self", Link::new(format!("{}/space_quotas/{}", s.v3(), q.guid)))]),
    })
}

/// The quota if the caller may read its org; writes need the org's manager.
async fn find(s: &AppState, c: &Caller, guid: &str, write: bool) -> ApiResult<Quota> {
    let q = store::quotas::find(&s.db.pool, true, guid)
        .await?
        .ok_or(ApiError::NotFound("Space quota"))?;
    if !c.org_readable(&q.org_guid).await? {
        return Err(ApiError::NotFound("Space quota"));
    }
    if write && !c.org_manager(&q.org_guid).await? {
        return Err(ApiError::NotAuthorized);
    }
    Ok(q)
}

async fn list(
    State(s): State<AppState>,
    c: Caller,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Page<SpaceQuota>>> {
    const FILTERS: [&str; 3] = ["guids", "names", "organization_guids"];
    let list = List::parse(&s, q.as_deref(), "space_quotas", "space_quotas", &FILTERS, &["name"])?
        .filter("guids", "guid")
        .filter("names", "name")
        .filter("organization_guids", "org_guid")
        .visible("org_guid", &c.visible_orgs().await?);
    let quotas = list.fetch(async |sel, w| store::quotas::page(&s.db, true, sel, w).await).await?;
    let s = &s;
    Ok(Json(quotas.present_async(|q| async move { present(s, &q).await }).await?))
}

async fn show(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Json<SpaceQuota>> {
    let q = find(&s, &c, &guid, false).await?;
    Ok(Json(present(&s, &q).await?))
}

async fn create(
    State(s): State<AppState>,
    c: Caller,
    CfJson(req): CfJson<Value>,
) -> ApiResult<Response> {
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
    let now = now_ms();
    let quota = Quota {
        guid: new_guid(),
        name,
        org_guid: o.guid,
        limits: parse_limits(&req)?,
        created_at: now,
        updated_at: now,
    };
    let spaces = req
        .pointer("/relationships/spaces/data")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut tx = store::begin(&s.db).await?;
    store::quotas::insert(&mut *tx, &quota, true).await?;
    assign(&mut tx, &quota, &spaces).await?;
    tx.commit().await?;
    Ok(created(present(&s, &quota).await?))
}

async fn assign(tx: &mut store::Tx, quota: &Quota, spaces: &[Value]) -> ApiResult<()> {
    for sp in spaces {
        let g = sp.get("guid").and_then(Value::as_str).unwrap_or_default();
        if !store::quotas::assign_space(&mut **tx, &quota.guid, &quota.org_guid, g, now_ms())
            .await?
        {
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
    CfJson(req): CfJson<Value>,
) -> ApiResult<Json<ToMany>> {
    let quota = find(&s, &c, &guid, true).await?;
    let spaces = req.get("data").and_then(Value::as_array).cloned().unwrap_or_default();
    let mut tx = store::begin(&s.db).await?;
    assign(&mut tx, &quota, &spaces).await?;
    tx.commit().await?;
    let href = format!("{}/space_quotas/{guid}/relationships/spaces", s.v3());
    Ok(Json(relationship(&spaces, href)))
}

async fn unapply(
    State(s): State<AppState>,
    c: Caller,
    Path((guid, space)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    find(&s, &c, &guid, true).await?;
    store::quotas::unassign_space(&s.db.pool, &guid, &space).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn update(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
    CfJson(req): CfJson<Value>,
) -> ApiResult<Json<SpaceQuota>> {
    let mut quota = find(&s, &c, &guid, true).await?;
    crate::http::quotas::change(&mut quota, &req)?;
    store::quotas::update(&s.db.pool, &quota, true).await?;
    Ok(Json(present(&s, &quota).await?))
}

async fn remove(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Response> {
    find(&s, &c, &guid, true).await?;
    let work = async {
        let mut tx = store::begin(&s.db).await?;
        store::quotas::delete_space_quota(&mut tx, &guid).await?;
        Ok(tx.commit().await?)
    };
    let job = crate::domain::jobs::run(&s, "space_quota.delete", "", "", work).await?;
    Ok(crate::http::jobs::accepted(&s, &job))
}
