//! Route services (`/v3/service_route_bindings`): a route bound to a user-provided service
//! instance that has a `route_service_url`, so the router sends the route's requests through
//! that URL first. Binding is synchronous (no broker, no job) and a route has at most one
//! binding. The URL is read from the instance whenever the route goes to the scheduler
//! (`domain::routing::lrp_routes`), and every bind, unbind or change of the instance's URL resyncs the
//! apps mapped to the route at once, as map and unmap do.
//!
//! Who may do what follows CC: space developers and supporters bind and unbind, developers
//! change metadata, readers read; another tenant's bindings answer 404, and another tenant's
//! guids in a create answer 422 "could not be found".

use std::collections::HashMap;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Map, Value};
use wire::v3::service_binding::RouteBindingRelationships;
use wire::v3::{self, Included, LastOperation, Link, Metadata, OperationType, Page, ToOne};

use crate::access::{Caller, Need};
use crate::domain::events::{self, Actor};
use crate::domain::routing;
use crate::error::{ApiError, ApiResult};
use crate::http::extract::CfJson;
use crate::http::list::{List, Table};
use crate::http::routes::resync;
use crate::http::util::{created, links, ts};
use crate::store::route_bindings::RouteBinding;
use crate::store::services::Instance;
use crate::store::spaces::Space;
use crate::store::{self, now_ms};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v3/service_route_bindings", get(list).post(create))
        .route("/v3/service_route_bindings/{guid}", get(show).patch(update).delete(remove))
        .route("/v3/service_route_bindings/{guid}/parameters", get(parameters))
}

const WHAT: &str = "Service route binding";
const KIND: &str = "service_route_binding";

impl RouteBinding {
    /// CC's shape for a user-provided instance's binding: no `parameters` link (CC shows it for
    /// managed instances only) and a last operation without description.
    pub fn present(&self, s: &AppState, route_service_url: &str) -> v3::RouteBinding {
        v3::RouteBinding {
            guid: self.guid.clone(),
            route_service_url: (!route_service_url.is_empty())
                .then(|| route_service_url.to_owned()),
            created_at: ts(self.created_at),
            updated_at: ts(self.updated_at),
            last_operation: Some(LastOperation::succeeded(
                OperationType::Create,
                None,
                ts(self.created_at),
                ts(self.updated_at),
            )),
            metadata: Metadata::default(),
            relationships: RouteBindingRelationships {
                service_instance: ToOne::of(&self.instance_guid),
                route: ToOne::of(&self.route_guid),
            },
            links: links([
                ("self", Link::new(format!("{}/service_route_bindings/{}", s.v3(), self.guid))),
                (
                    "service_instance",
                    Link::new(format!("{}/service_instances/{}", s.v3(), self.instance_guid)),
                ),
                ("route", Link::new(format!("{}/routes/{}", s.v3(), self.route_guid))),
            ]),
        }
    }
}

/// The binding with its instance and space if the caller may read it (404 otherwise) and has
/// `need` in the space (403 otherwise).
async fn require(
    s: &AppState,
    c: &Caller,
    guid: &str,
    need: Need,
) -> ApiResult<(RouteBinding, Instance, Space)> {
    let b = store::route_bindings::find(&s.db.pool, guid).await?.ok_or(ApiError::NotFound(WHAT))?;
    let i = store::services::find(&s.db.pool, &b.instance_guid)
        .await?
        .ok_or(ApiError::NotFound(WHAT))?;
    let space = crate::store::spaces::find(&s.db.pool, &i.space_guid)
        .await?
        .ok_or(ApiError::NotFound(WHAT))?;
    c.require_space(&space.guid, &space.org_guid, WHAT, need).await?;
    Ok((b, i, space))
}

/// The audit event of an unbinding, as CC records it.
pub async fn record_unbind(s: &AppState, b: &RouteBinding, space: &Space, actor: &Actor) {
    events::record(
        s,
        "audit.service_route_binding.delete",
        actor,
        &space.target(&b.guid, KIND, ""),
        json!({"request": {"route_guid": b.route_guid, "service_instance_guid": b.instance_guid}}),
    )
    .await;
}

/// Unbind: rows gone, the audit event CC records, the route's apps resynced.
async fn unbind(s: &AppState, b: &RouteBinding, space: &Space, actor: &Actor) -> ApiResult<()> {
    let apps = routing::unbind_route_service(s, b).await?;
    record_unbind(s, b, space, actor).await;
    resync(s, &apps).await;
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

async fn create(
    State(s): State<AppState>,
    c: Caller,
    CfJson(req): CfJson<Value>,
) -> ApiResult<Response> {
    let (route_guid, instance_guid) = create_request(&req)?;
    let missing_instance = || {
        ApiError::Unprocessable(format!("The service instance could not be found: {instance_guid}"))
    };
    let i =
        store::services::find(&s.db.pool, &instance_guid).await?.ok_or_else(missing_instance)?;
    let space = crate::store::spaces::find(&s.db.pool, &i.space_guid)
        .await?
        .ok_or_else(missing_instance)?;
    if !c.space_readable(&space.guid, &space.org_guid).await? {
        return Err(missing_instance());
    }
    c.require_space(&space.guid, &space.org_guid, "Service instance", Need::AppManager).await?;
    let missing_route =
        || ApiError::Unprocessable(format!("The route could not be found: {route_guid}"));
    let route = store::routes::find(&s.db.pool, &route_guid).await?.ok_or_else(missing_route)?;
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
    let domain = store::domains::find(&s.db.pool, &route.domain_guid).await?;
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
    let b = routing::bind_route_service(&s, &route.guid, &i.guid).await?;
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
    resync(&s, &routing::apps_of(&s, &route.guid).await?).await;
    Ok(created(b.present(&s, &i.route_service_url)))
}

async fn show(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Json<v3::RouteBinding>> {
    let (b, i, _) = require(&s, &c, &guid, Need::Read).await?;
    Ok(Json(b.present(&s, &i.route_service_url)))
}

/// Metadata only (labels and annotations are stored by the metadata middleware).
async fn update(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
    CfJson(req): CfJson<Value>,
) -> ApiResult<Json<v3::RouteBinding>> {
    let (mut b, i, space) = require(&s, &c, &guid, Need::Developer).await?;
    if let Some(problem) = unknown_fields(&req, &["metadata"]) {
        return Err(ApiError::Unprocessable(problem));
    }
    b.updated_at = now_ms().max(b.created_at);
    store::route_bindings::set_updated_at(&s.db.pool, &b.guid, b.updated_at).await?;
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
) -> ApiResult<Json<Page<v3::RouteBinding>>> {
    const FILTERS: [&str; 6] = [
        "guids",
        "route_guids",
        "service_instance_guids",
        "service_instance_names",
        "label_selector",
        "include",
    ];
    let table = Table::with("service_route_bindings", store::route_bindings::select());
    let list = List::parse(&s, q.as_deref(), "service_route_bindings", table, &FILTERS, &[])?;
    let include = list.query().filter("include").unwrap_or_default();
    if let Some(bad) = include.iter().find(|i| !INCLUDES.contains(&i.as_str())) {
        return Err(ApiError::BadQuery(format!(
            "Invalid included resource: '{bad}'. Valid included resources are: 'route', 'service_instance'"
        )));
    }
    let list = list
        .filter("guids", "service_route_bindings.guid")
        .filter("route_guids", "service_route_bindings.route_guid")
        .filter("service_instance_guids", "service_route_bindings.service_instance_guid")
        .filter("service_instance_names", "si.name")
        .visible("si.space_guid", &c.visible_spaces().await?);
    let bindings =
        list.fetch(async |sel, w| store::route_bindings::page(&s.db, sel, w).await).await?;
    let instances = instances_of(&s, bindings.rows()).await?;
    let bindings =
        bindings.include(async |b, inc| include_bound(&s, &instances, b, inc).await).await?;
    let url = |b: &RouteBinding| {
        instances.get(&b.instance_guid).map(|i| i.route_service_url.as_str()).unwrap_or("")
    };
    Ok(Json(bindings.present(|b| b.present(&s, url(b)))))
}

/// `include=route` and `include=service_instance`: the bindings' routes and instances, each
/// once.
async fn include_bound(
    s: &AppState,
    instances: &HashMap<String, Instance>,
    bindings: &[RouteBinding],
    include: &[String],
) -> ApiResult<Option<Included>> {
    let mut included = Included::default();
    if include.iter().any(|i| i == "route") {
        let mut routes: Vec<v3::Route> = Vec::new();
        for b in bindings {
            if routes.iter().any(|r| r.guid == b.route_guid) {
                continue;
            }
            if let Some(r) = store::routes::find(&s.db.pool, &b.route_guid).await? {
                routes.push(crate::http::routes::present(s, &r).await?);
            }
        }
        included.routes = Some(routes);
    }
    if include.iter().any(|i| i == "service_instance") {
        let versions = crate::domain::managed::plan_versions(s).await?;
        let mut list: Vec<v3::ServiceInstance> = Vec::new();
        for b in bindings {
            if let Some(i) = instances.get(&b.instance_guid) {
                if !list.iter().any(|x| x.guid == i.guid) {
                    list.push(i.present(s, &versions));
                }
            }
        }
        included.service_instances = Some(list);
    }
    Ok(Some(included))
}

/// The instances of a page of bindings, by guid (one query).
async fn instances_of(
    s: &AppState,
    bindings: &[RouteBinding],
) -> ApiResult<HashMap<String, Instance>> {
    let mut guids: Vec<String> = bindings.iter().map(|b| b.instance_guid.clone()).collect();
    guids.sort();
    guids.dedup();
    let instances = store::services::find_all(&s.db, &guids).await?;
    Ok(instances.into_iter().map(|i| (i.guid.clone(), i)).collect())
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
