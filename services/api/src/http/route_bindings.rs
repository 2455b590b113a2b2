//! Route services (`/v3/service_route_bindings`): a route bound to a user-provided service
//! instance that has a `route_service_url`, so the router sends the route's requests through
//! that URL first. Binding is synchronous (no broker, no job) and a route has at most one
//! binding. The URL is read from the instance whenever the route goes to the scheduler
//! (`routes::lrp_routes`), and every bind, unbind or change of the instance's URL resyncs the
//! apps mapped to the route at once, as map and unmap do.
//!
//! Who may do what follows CC: space developers and supporters bind and unbind, developers
//! change metadata, readers read; another tenant's bindings answer 404, and another tenant's
//! guids in a create answer 422 "could not be found".

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Map, Value};
use sqlx::any::AnyRow;
use sqlx::Row as _;

use crate::access::{Caller, Need};
use crate::domain::events::{self, Actor};
use crate::error::{ApiError, ApiResult};
use crate::http::extract::body;
use crate::http::paging::ListQuery;
use crate::http::services::Instance;
use crate::http::util::{link, metadata, to_one, ts};
use crate::store::spaces::Space;
use crate::store::Select;
use crate::store::{is_unique_violation, new_guid, now_ms};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v3/service_route_bindings", get(list).post(create))
        .route("/v3/service_route_bindings/{guid}", get(show).patch(update).delete(remove))
        .route("/v3/service_route_bindings/{guid}/parameters", get(parameters))
}

const WHAT: &str = "Service route binding";
const KIND: &str = "service_route_binding";

#[derive(Debug, Clone)]
struct Binding {
    guid: String,
    route_guid: String,
    instance_guid: String,
    created_at: i64,
    updated_at: i64,
}

impl Binding {
    fn from_row(r: &AnyRow) -> ApiResult<Self> {
        Ok(Self {
            guid: r.try_get("guid")?,
            route_guid: r.try_get("route_guid")?,
            instance_guid: r.try_get("service_instance_guid")?,
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
        })
    }

    /// CC's shape for a user-provided instance's binding: no `parameters` link (CC shows it for
    /// managed instances only) and a last operation without description.
    fn present(&self, s: &AppState, route_service_url: &str) -> Value {
        let url = if route_service_url.is_empty() { Value::Null } else { json!(route_service_url) };
        json!({
            "guid": self.guid,
            "route_service_url": url,
            "created_at": ts(self.created_at), "updated_at": ts(self.updated_at),
            "last_operation": {
                "type": "create", "state": "succeeded", "description": null,
                "created_at": ts(self.created_at), "updated_at": ts(self.updated_at),
            },
            "metadata": metadata(),
            "relationships": {
                "service_instance": to_one(&self.instance_guid),
                "route": to_one(&self.route_guid),
            },
            "links": {
                "self": link(format!("{}/service_route_bindings/{}", s.v3(), self.guid)),
                "service_instance": link(format!("{}/service_instances/{}", s.v3(), self.instance_guid)),
                "route": link(format!("{}/routes/{}", s.v3(), self.route_guid)),
            },
        })
    }
}

async fn find(s: &AppState, guid: &str) -> ApiResult<Option<Binding>> {
    let row = sqlx::query("SELECT * FROM service_route_bindings WHERE guid = $1")
        .bind(guid)
        .fetch_optional(&s.db.pool)
        .await?;
    row.as_ref().map(Binding::from_row).transpose()
}

async fn of_route(s: &AppState, route: &str) -> ApiResult<Option<Binding>> {
    let row = sqlx::query("SELECT * FROM service_route_bindings WHERE route_guid = $1")
        .bind(route)
        .fetch_optional(&s.db.pool)
        .await?;
    row.as_ref().map(Binding::from_row).transpose()
}

async fn of_instance(s: &AppState, instance: &str) -> ApiResult<Vec<Binding>> {
    let rows = sqlx::query(
        "SELECT * FROM service_route_bindings WHERE service_instance_guid = $1 ORDER BY created_at, guid",
    )
    .bind(instance)
    .fetch_all(&s.db.pool)
    .await?;
    rows.iter().map(Binding::from_row).collect()
}

/// The binding with its instance and space if the caller may read it (404 otherwise) and has
/// `need` in the space (403 otherwise).
async fn require(
    s: &AppState,
    c: &Caller,
    guid: &str,
    need: Need,
) -> ApiResult<(Binding, Instance, Space)> {
    let b = find(s, guid).await?.ok_or(ApiError::NotFound(WHAT))?;
    let i =
        crate::http::services::find(s, &b.instance_guid).await?.ok_or(ApiError::NotFound(WHAT))?;
    let space = crate::store::spaces::find(&s.db.pool, &i.space_guid)
        .await?
        .ok_or(ApiError::NotFound(WHAT))?;
    c.require_space(&space.guid, &space.org_guid, WHAT, need).await?;
    Ok((b, i, space))
}

/// Send the routes of every app mapped to `route` to the scheduler again.
async fn resync_route(s: &AppState, route: &str) -> ApiResult<()> {
    for app in crate::http::routes::apps_of(s, route).await? {
        crate::domain::desired::sync_app_logged(s, &app).await;
    }
    Ok(())
}

/// After a change of an instance's `route_service_url`: resync the apps of its routes.
pub async fn resync_instance(s: &AppState, instance: &str) -> ApiResult<()> {
    for b in of_instance(s, instance).await? {
        resync_route(s, &b.route_guid).await?;
    }
    Ok(())
}

async fn delete_rows(s: &AppState, guid: &str) -> ApiResult<()> {
    crate::http::metadata::delete_resource(s, "service_route_bindings", guid).await
}

/// Unbind: rows gone, the audit event CC records, the route's apps resynced.
async fn unbind(s: &AppState, b: &Binding, space: &Space, actor: &Actor) -> ApiResult<()> {
    delete_rows(s, &b.guid).await?;
    events::record(
        s,
        "audit.service_route_binding.delete",
        actor,
        &space.target(&b.guid, KIND, ""),
        json!({"request": {"route_guid": b.route_guid, "service_instance_guid": b.instance_guid}}),
    )
    .await;
    resync_route(s, &b.route_guid).await
}

/// Every binding of an instance that is being deleted (CC deletes them with it).
pub async fn unbind_instance(s: &AppState, instance: &str, actor: &Actor) -> ApiResult<()> {
    let bindings = of_instance(s, instance).await?;
    let Some(i) = crate::http::services::find(s, instance).await? else { return Ok(()) };
    let Some(space) = crate::store::spaces::find(&s.db.pool, &i.space_guid).await? else {
        return Ok(());
    };
    for b in &bindings {
        unbind(s, b, &space, actor).await?;
    }
    Ok(())
}

/// The binding of a route that is being deleted (its apps are resynced by the deletion).
pub async fn forget_route(s: &AppState, route: &str) -> ApiResult<()> {
    if let Some(b) = of_route(s, route).await? {
        delete_rows(s, &b.guid).await?;
    }
    Ok(())
}

/// `Unknown field(s): 'a', 'b'` for keys of `req` outside `allowed`, as CC words it.
fn unknown_fields(req: &Value, allowed: &[&str]) -> Option<String> {
    let unknown: Vec<String> = req
        .as_object()?
        .keys()
        .filter(|k| !allowed.contains(&k.as_str()))
        .map(|k| format!("'{k}'"))
        .collect();
    (!unknown.is_empty()).then(|| format!("Unknown field(s): {}", unknown.join(", ")))
}

/// `(route guid, service instance guid)` of a create request, or every problem in CC's words.
fn create_request(req: &Value) -> ApiResult<(String, String)> {
    let mut problems: Vec<String> =
        unknown_fields(req, &["relationships", "parameters", "metadata"]).into_iter().collect();
    let guid = |name: &str| {
        req.pointer(&format!("/relationships/{name}/data/guid"))
            .and_then(Value::as_str)
            .filter(|g| !g.is_empty())
            .map(str::to_owned)
    };
    let (route, instance) = (guid("route"), guid("service_instance"));
    match req.get("relationships") {
        Some(Value::Object(_)) => {
            for (given, what, key) in
                [(&instance, "Service instance", "service_instance"), (&route, "Route", "route")]
            {
                if given.is_none() {
                    problems.push(format!(
                        "Relationships {what} must be structured like this: \"{key}: {{\"data\": {{\"guid\": \"valid-guid\"}}}}\""
                    ));
                }
            }
        }
        _ => problems.push("Relationships 'relationships' is not an object".into()),
    }
    if req.get("parameters").is_some_and(|p| !p.is_object() && !p.is_null()) {
        problems.push("Parameters must be an object".into());
    }
    match (route, instance) {
        (Some(r), Some(i)) if problems.is_empty() => Ok((r, i)),
        _ => Err(ApiError::Unprocessable(problems.join(", "))),
    }
}

async fn create(State(s): State<AppState>, c: Caller, raw: Bytes) -> ApiResult<Response> {
    let req: Value = body(&raw)?;
    let (route_guid, instance_guid) = create_request(&req)?;
    let missing_instance = || {
        ApiError::Unprocessable(format!("The service instance could not be found: {instance_guid}"))
    };
    let i = crate::http::services::find(&s, &instance_guid).await?.ok_or_else(missing_instance)?;
    let space = crate::store::spaces::find(&s.db.pool, &i.space_guid)
        .await?
        .ok_or_else(missing_instance)?;
    if !c.space_readable(&space.guid, &space.org_guid).await? {
        return Err(missing_instance());
    }
    c.require_space(&space.guid, &space.org_guid, "Service instance", Need::AppManager).await?;
    let missing_route =
        || ApiError::Unprocessable(format!("The route could not be found: {route_guid}"));
    let route = crate::http::routes::find(&s, &route_guid).await?.ok_or_else(missing_route)?;
    let route_space = crate::store::spaces::find(&s.db.pool, &route.space_guid)
        .await?
        .ok_or_else(missing_route)?;
    if !c.space_readable(&route_space.guid, &route_space.org_guid).await? {
        return Err(missing_route());
    }
    if req.get("parameters").is_some() {
        return Err(ApiError::Unprocessable(
            "Binding parameters are not supported for user-provided service instances".into(),
        ));
    }
    if i.route_service_url.is_empty() {
        return Err(ApiError::Unprocessable(
            "This service instance does not support route binding".into(),
        ));
    }
    let domain = crate::http::domains::find(&s, &route.domain_guid).await?;
    if domain.is_some_and(|d| d.internal) {
        return Err(ApiError::Unprocessable(
            "Route services cannot be bound to internal routes".into(),
        ));
    }
    if route.space_guid != i.space_guid {
        return Err(ApiError::Unprocessable(
            "The service instance and the route are in different spaces".into(),
        ));
    }
    let b = insert(&s, &route.guid, &i.guid).await?;
    let request: Map<String, Value> = req
        .as_object()
        .map(|o| o.iter().filter(|(k, _)| *k != "parameters").map(|(k, v)| (k.clone(), v.clone())))
        .into_iter()
        .flatten()
        .collect();
    events::record(
        &s,
        "audit.service_route_binding.create",
        &Actor::of(&c),
        &space.target(&b.guid, KIND, ""),
        json!({"request": request}),
    )
    .await;
    resync_route(&s, &route.guid).await?;
    Ok((StatusCode::CREATED, Json(b.present(&s, &i.route_service_url))).into_response())
}

/// The one binding of a route: CC's two errors when the route already has one.
async fn insert(s: &AppState, route: &str, instance: &str) -> ApiResult<Binding> {
    let taken = |existing: Binding| {
        if existing.instance_guid == instance {
            ApiError::RouteAlreadyBound
        } else {
            ApiError::Unprocessable("A route may only be bound to a single service instance".into())
        }
    };
    if let Some(existing) = of_route(s, route).await? {
        return Err(taken(existing));
    }
    let now = now_ms();
    let b = Binding {
        guid: new_guid(),
        route_guid: route.to_owned(),
        instance_guid: instance.to_owned(),
        created_at: now,
        updated_at: now,
    };
    let res = sqlx::query(
        "INSERT INTO service_route_bindings (guid, route_guid, service_instance_guid, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $4)",
    )
    .bind(&b.guid)
    .bind(&b.route_guid)
    .bind(&b.instance_guid)
    .bind(now)
    .execute(&s.db.pool)
    .await;
    match res {
        // Another request bound the route in between.
        Err(e) if is_unique_violation(&e) => match of_route(s, route).await? {
            Some(existing) => Err(taken(existing)),
            None => Err(e.into()),
        },
        r => r.map(|_| b).map_err(Into::into),
    }
}

async fn show(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Json<Value>> {
    let (b, i, _) = require(&s, &c, &guid, Need::Read).await?;
    Ok(Json(b.present(&s, &i.route_service_url)))
}

/// Metadata only (labels and annotations are stored by the metadata middleware).
async fn update(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
    raw: Bytes,
) -> ApiResult<Json<Value>> {
    let req: Value = body(&raw)?;
    let (mut b, i, space) = require(&s, &c, &guid, Need::Developer).await?;
    if let Some(problem) = unknown_fields(&req, &["metadata"]) {
        return Err(ApiError::Unprocessable(problem));
    }
    b.updated_at = now_ms().max(b.created_at);
    sqlx::query("UPDATE service_route_bindings SET updated_at = $1 WHERE guid = $2")
        .bind(b.updated_at)
        .bind(&b.guid)
        .execute(&s.db.pool)
        .await?;
    events::record(
        &s,
        "audit.service_route_binding.update",
        &Actor::of(&c),
        &space.target(&b.guid, KIND, ""),
        json!({"request": req}),
    )
    .await;
    Ok(Json(b.present(&s, &i.route_service_url)))
}

async fn remove(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<StatusCode> {
    let (b, _, space) = require(&s, &c, &guid, Need::AppManager).await?;
    unbind(&s, &b, &space, &Actor::of(&c)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// CC keeps no parameters for user-provided instances and says so with a 400 to those who may
/// write in the space.
async fn parameters(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Json<Value>> {
    require(&s, &c, &guid, Need::Developer).await?;
    Err(ApiError::BadRequest(
        "user provided service instances do not support fetching route bindings parameters.".into(),
    ))
}

const INCLUDES: [&str; 2] = ["route", "service_instance"];

async fn list(
    State(s): State<AppState>,
    c: Caller,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Value>> {
    let q = ListQuery::parse(
        q.as_deref(),
        &[
            "guids",
            "route_guids",
            "service_instance_guids",
            "service_instance_names",
            "label_selector",
            "include",
        ],
        &[],
    )?;
    let include: Vec<String> = q.filter("include").map(<[String]>::to_vec).unwrap_or_default();
    if let Some(bad) = include.iter().find(|i| !INCLUDES.contains(&i.as_str())) {
        return Err(ApiError::BadQuery(format!(
            "Invalid included resource: '{bad}'. Valid included resources are: 'route', 'service_instance'"
        )));
    }
    let mut sel = Select::from("service_route_bindings").join(
        "JOIN service_instances si ON si.guid = service_route_bindings.service_instance_guid",
    );
    crate::http::metadata::select(&mut sel, &q, "service_route_bindings.guid")?;
    sel.filter(q.filter("guids"), "service_route_bindings.guid")
        .filter(q.filter("route_guids"), "service_route_bindings.route_guid")
        .filter(q.filter("service_instance_guids"), "service_route_bindings.service_instance_guid")
        .filter(q.filter("service_instance_names"), "si.name");
    sel.visible("si.space_guid", &c.visible_spaces().await?);
    let (total, rows) = sel.page(&s.db, &q.window()).await?;
    let bindings = rows.iter().map(Binding::from_row).collect::<ApiResult<Vec<_>>>()?;
    let instances = instances_of(&s, &bindings).await?;
    let url = |b: &Binding| {
        instances.get(&b.instance_guid).map(|i| i.route_service_url.as_str()).unwrap_or("")
    };
    let items = bindings.iter().map(|b| b.present(&s, url(b))).collect();
    let mut env = q.envelope(&format!("{}/service_route_bindings", s.v3()), total, items);
    if !include.is_empty() {
        let mut included = Map::new();
        if include.iter().any(|i| i == "route") {
            let mut routes: Vec<Value> = Vec::new();
            for b in &bindings {
                if routes.iter().any(|r| r["guid"] == b.route_guid.as_str()) {
                    continue;
                }
                if let Some(r) = crate::http::routes::find(&s, &b.route_guid).await? {
                    routes.push(crate::http::routes::present(&s, &r).await?);
                }
            }
            included.insert("routes".into(), Value::Array(routes));
        }
        if include.iter().any(|i| i == "service_instance") {
            let mut seen = Vec::new();
            let mut list = Vec::new();
            for b in &bindings {
                if let Some(i) = instances.get(&b.instance_guid) {
                    if !seen.contains(&i.guid) {
                        seen.push(i.guid.clone());
                        list.push(i.present(&s));
                    }
                }
            }
            included.insert("service_instances".into(), Value::Array(list));
        }
        env["included"] = Value::Object(included);
    }
    Ok(Json(env))
}

/// The instances of a page of bindings, by guid (one query).
async fn instances_of(s: &AppState, bindings: &[Binding]) -> ApiResult<HashMap<String, Instance>> {
    let mut guids: Vec<String> = bindings.iter().map(|b| b.instance_guid.clone()).collect();
    guids.sort();
    guids.dedup();
    if guids.is_empty() {
        return Ok(HashMap::new());
    }
    let mut sel = Select::from("service_instances");
    sel.any("guid", &guids);
    let mut out = HashMap::new();
    for r in sel.all_unordered(&s.db).await? {
        let i = Instance::from_row(&r)?;
        out.insert(i.guid.clone(), i);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_requests_name_every_problem_as_cc_does() {
        let ok = json!({"relationships": {"route": {"data": {"guid": "r"}}, "service_instance": {"data": {"guid": "i"}}}});
        assert_eq!(create_request(&ok).ok(), Some(("r".into(), "i".into())));
        let e = create_request(&json!({"foo": 1})).expect_err("invalid").to_string();
        assert_eq!(e, "Unknown field(s): 'foo', Relationships 'relationships' is not an object");
        let e = create_request(&json!({"relationships": {"route": {"data": {"guid": "r"}}}}))
            .expect_err("invalid")
            .to_string();
        assert!(e.starts_with("Relationships Service instance must be structured"), "{e}");
        let mut with_params = ok.clone();
        with_params["parameters"] = json!("text");
        assert_eq!(
            create_request(&with_params).expect_err("invalid").to_string(),
            "Parameters must be an object"
        );
    }
}
