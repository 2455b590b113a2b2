//! Routes and their destinations (docs/api.md): host + domain + path, unique platform-wide,
//! owned by a space; destinations send a route's traffic to an app's process. Every
//! destination change reaches the scheduler as the process's new route list; a route bound to
//! a route service (`route_bindings`) carries the service's URL in it.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde_json::{json, Value};
use wire::v3::route::{DestinationApp, ProcessType, RouteOptions, RouteRelationships};
use wire::v3::{self, Link, Metadata, Page, ToOne};

use crate::access::{Caller, Need};
use crate::domain::events::{self, Actor};
use crate::domain::feature_flags::{self as flags, Flag};
use crate::domain::routing;
use crate::error::{ApiError, ApiResult};
use crate::http::extract::{body, CfJson};
use crate::http::list::{List, Table};
use crate::http::util::{created, links, ts};
use crate::store;
use crate::store::routes::Route;
use crate::store::spaces::Space;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v3/routes", get(list).post(create))
        .route("/v3/routes/{guid}", get(show).patch(update).delete(remove))
        .route(
            "/v3/routes/{guid}/destinations",
            get(destinations).post(add_destinations).patch(replace_destinations),
        )
        .route(
            "/v3/routes/{guid}/destinations/{dest}",
            delete(remove_destination).patch(update_destination),
        )
        .route("/v3/apps/{guid}/routes", get(app_routes))
        .route("/v3/spaces/{guid}/routes", delete(delete_unmapped))
}

pub async fn present(s: &AppState, r: &Route) -> ApiResult<v3::Route> {
    let domain =
        store::domains::find(&s.db.pool, &r.domain_guid).await?.map(|d| d.name).unwrap_or_default();
    let base = format!("{}/routes/{}", s.v3(), r.guid);
    Ok(v3::Route {
        guid: r.guid.clone(),
        created_at: ts(r.created_at),
        updated_at: ts(r.updated_at),
        protocol: "http".into(),
        host: r.host.clone(),
        path: r.path.clone(),
        port: (r.port != 0).then_some(r.port),
        url: r.url(&domain),
        destinations: destination_list(s, &r.guid).await?,
        options: RouteOptions {
            loadbalancing: (!r.loadbalancing.is_empty()).then(|| r.loadbalancing.clone()),
        },
        relationships: RouteRelationships {
            space: ToOne::of(&r.space_guid),
            domain: ToOne::of(&r.domain_guid),
        },
        metadata: Metadata::default(),
        links: links([
            ("self", Link::new(base.clone())),
            ("space", Link::new(format!("{}/spaces/{}", s.v3(), r.space_guid))),
            ("domain", Link::new(format!("{}/domains/{}", s.v3(), r.domain_guid))),
            ("destinations", Link::new(format!("{base}/destinations"))),
        ]),
    })
}

fn present_destination(d: store::routes::Destination) -> v3::Destination {
    v3::Destination {
        guid: d.guid,
        app: DestinationApp {
            guid: d.app_guid,
            process: Some(ProcessType { kind: d.process_type }),
        },
        weight: None,
        port: Some(d.port),
        protocol: Some(d.protocol),
        created_at: Some(ts(d.created_at)),
        updated_at: Some(ts(d.updated_at)),
    }
}

async fn destination_list(s: &AppState, route: &str) -> ApiResult<Vec<v3::Destination>> {
    let dests = store::routes::destinations(&s.db.pool, route).await?;
    Ok(dests.into_iter().map(present_destination).collect())
}

/// A route with its space, if the caller may read the space (else 404 "Route").
async fn readable(s: &AppState, c: &Caller, guid: &str, need: Need) -> ApiResult<(Route, Space)> {
    let route = store::routes::find(&s.db.pool, guid).await?.ok_or(ApiError::NotFound("Route"))?;
    let space = crate::store::spaces::find(&s.db.pool, &route.space_guid)
        .await?
        .ok_or(ApiError::NotFound("Route"))?;
    c.require_space(&space.guid, &space.org_guid, "Route", need).await?;
    Ok((route, space))
}

/// Send the routes of every app in `apps` to the scheduler again (after the change).
pub async fn resync(s: &AppState, apps: &[String]) {
    for app in apps {
        crate::domain::desired::sync_app_logged(s, app).await;
    }
}

async fn create(
    State(s): State<AppState>,
    c: Caller,
    CfJson(req): CfJson<Value>,
) -> ApiResult<Response> {
    let space_guid =
        req.pointer("/relationships/space/data/guid").and_then(Value::as_str).unwrap_or_default();
    let domain_guid =
        req.pointer("/relationships/domain/data/guid").and_then(Value::as_str).unwrap_or_default();
    let space =
        crate::http::spaces::require(&s, &c, space_guid, Need::AppManager).await.map_err(|e| {
            match e {
                ApiError::NotFound(_) => ApiError::Unprocessable(
                    "Invalid space. Ensure that the space exists and you have access to it.".into(),
                ),
                e => e,
            }
        })?;
    flags::require(&s, &c, Flag::RouteCreation).await?;
    let invalid = || {
        ApiError::Unprocessable(
            "Invalid domain. Ensure that the domain exists and you have access to it.".into(),
        )
    };
    let domain = store::domains::find(&s.db.pool, domain_guid).await?.ok_or_else(invalid)?;
    if !routing::usable_by(&s, &domain, &space.org_guid).await? {
        return Err(invalid());
    }
    if req.get("port").is_some_and(|p| !p.is_null()) {
        return Err(ApiError::Unprocessable(
            "Routes with ports need a TCP domain; this platform has HTTP domains only.".into(),
        ));
    }
    let host = req.get("host").and_then(Value::as_str).unwrap_or_default().to_ascii_lowercase();
    let path = req.get("path").and_then(Value::as_str).unwrap_or_default();
    let lb = match req.get("options") {
        Some(o) => loadbalancing(o)?.flatten().unwrap_or_default(),
        None => String::new(),
    };
    let lb = lb.as_str();
    let r = routing::create_route(&s, &space, &domain, &host, path, lb, &Actor::of(&c)).await?;
    Ok(created(present(&s, &r).await?))
}

const FILTERS: [&str; 10] = [
    "app_guids",
    "domain_guids",
    "hosts",
    "organization_guids",
    "paths",
    "ports",
    "space_guids",
    "label_selector",
    "include",
    "guids",
];

/// A page of routes, each once (a route comes once per destination of a filtered app).
async fn list_with(s: &AppState, c: &Caller, list: List) -> ApiResult<Json<Page<v3::Route>>> {
    let list = list
        .filter("guids", "routes.guid")
        .filter("domain_guids", "routes.domain_guid")
        .filter("hosts", "routes.host")
        .filter("paths", "routes.path")
        .filter("space_guids", "routes.space_guid")
        .filter_with("app_guids", store::routes::with_apps)
        .filter_with("organization_guids", store::routes::in_orgs)
        .visible("routes.space_guid", &c.visible_spaces().await?);
    let routes = list
        .fetch(async |sel, w| {
            let (total, mut routes) = store::routes::page(&s.db, sel, w).await?;
            let mut seen = std::collections::HashSet::new();
            routes.retain(|r| seen.insert(r.guid.clone()));
            Ok((total, routes))
        })
        .await?;
    Ok(Json(routes.present_async(|r| async move { present(s, &r).await }).await?))
}

fn parse(s: &AppState, q: Option<&str>, path: &str) -> ApiResult<List> {
    List::parse(s, q, path, Table::with("routes", store::routes::select()), &FILTERS, &[])
}

async fn list(
    State(s): State<AppState>,
    c: Caller,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Page<v3::Route>>> {
    list_with(&s, &c, parse(&s, q.as_deref(), "routes")?).await
}

async fn app_routes(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Page<v3::Route>>> {
    let app = require_app(&s, &c, &guid, Need::Read).await?;
    let list = parse(&s, q.as_deref(), &format!("apps/{guid}/routes"))?
        .set("app_guids", vec![app.guid.clone()]);
    list_with(&s, &c, list).await
}

/// A route's `options` as CC checks them: an object of known keys; `loadbalancing` is
/// `round-robin`, `least-connection` or `null` (unset). `None`: not given; `Some(None)`: unset.
fn loadbalancing(options: &Value) -> ApiResult<Option<Option<String>>> {
    let Some(o) = options.as_object() else {
        return Err(ApiError::Unprocessable("Options 'options' is not a valid object".into()));
    };
    let unknown: Vec<String> =
        o.keys().filter(|k| *k != "loadbalancing").map(|k| format!("'{k}'")).collect();
    if !unknown.is_empty() {
        return Err(ApiError::Unprocessable(format!(
            "Options Unknown field(s): {}",
            unknown.join(", ")
        )));
    }
    match o.get("loadbalancing") {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::String(lb)) if lb == "round-robin" || lb == "least-connection" => {
            Ok(Some(Some(lb.clone())))
        }
        Some(_) => Err(ApiError::Unprocessable(
            "Options Loadbalancing must be one of 'round-robin, least-connection' if present"
                .into(),
        )),
    }
}

/// Labels and annotations, and `options` (`loadbalancing`), which the route's apps' cells
/// register with the routers again.
async fn update(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
    CfJson(req): CfJson<serde_json::Value>,
) -> ApiResult<Json<v3::Route>> {
    let mut rest = req.clone();
    let options = rest.as_object_mut().and_then(|o| o.remove("options"));
    crate::http::metadata::only_metadata(&rest)?;
    let lb = options.as_ref().map(loadbalancing).transpose()?.flatten();
    let need = if lb.is_some() { Need::AppManager } else { Need::Developer };
    let (mut r, space) = readable(&s, &c, &guid, need).await?;
    if let Some(lb) = lb {
        let lb = lb.unwrap_or_default();
        if lb != r.loadbalancing {
            let apps = routing::set_loadbalancing(&s, &mut r, &space, &lb, &Actor::of(&c)).await?;
            resync(&s, &apps).await;
        }
    }
    Ok(Json(present(&s, &r).await?))
}

async fn show(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Json<v3::Route>> {
    let (r, _) = readable(&s, &c, &guid, Need::Read).await?;
    Ok(Json(present(&s, &r).await?))
}

async fn remove(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Response> {
    let (r, space) = readable(&s, &c, &guid, Need::AppManager).await?;
    let apps = routing::apps_of(&s, &r.guid).await?;
    let res = routing::delete_route(&s, &r.guid).await;
    let job = crate::domain::jobs::run(&s, "route.delete", "", "", async { res }).await?;
    let t = space.target(&r.guid, "route", &r.host);
    events::record(&s, "audit.route.delete-request", &Actor::of(&c), &t, json!({})).await;
    resync(&s, &apps).await;
    Ok(crate::http::jobs::accepted(&s, &job))
}

/// CC's `DELETE /v3/spaces/:guid/routes?unmapped=true`: a job deleting the space's routes
/// that have no destination (cf's `delete-orphaned-routes`).
async fn delete_unmapped(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let space = crate::http::spaces::require(&s, &c, &guid, Need::Developer).await?;
    let unmapped = q.as_deref().is_some_and(|q| {
        form_urlencoded::parse(q.as_bytes()).any(|(k, v)| k == "unmapped" && v == "true")
    });
    if !unmapped {
        return Err(ApiError::Unprocessable(
            "Mass delete not supported for routes. Use 'unmapped=true' parameter to delete all \
             unmapped routes."
                .into(),
        ));
    }
    let res = routing::delete_unmapped(&s, &space.guid).await.map(|_| ());
    let job =
        crate::domain::jobs::run(&s, "space.delete_unmapped_routes", "", "", async { res }).await?;
    let t = space.target(&space.guid, "space", &space.name);
    events::record(&s, "audit.space.delete-unmapped-routes", &Actor::of(&c), &t, json!({})).await;
    Ok(crate::http::jobs::accepted(&s, &job))
}

async fn destinations_body(s: &AppState, r: &Route) -> ApiResult<Json<v3::RouteDestinations>> {
    let base = format!("{}/routes/{}", s.v3(), r.guid);
    Ok(Json(v3::RouteDestinations {
        destinations: destination_list(s, &r.guid).await?,
        links: links([
            ("self", Link::new(format!("{base}/destinations"))),
            ("route", Link::new(base)),
        ]),
    }))
}

async fn destinations(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Json<v3::RouteDestinations>> {
    let (r, _) = readable(&s, &c, &guid, Need::Read).await?;
    destinations_body(&s, &r).await
}

/// Validate `{"destinations":[{app:{guid, process:{type}}, port?, protocol?}]}`. Read after the
/// route's access check (an unknown route is a 404 whatever the body), hence the raw bytes.
async fn parse_destinations(
    s: &AppState,
    c: &Caller,
    space: &Space,
    raw: &Bytes,
) -> ApiResult<Vec<(String, String, String)>> {
    let req: Value = body(raw)?;
    let list = req.get("destinations").and_then(Value::as_array).ok_or_else(|| {
        ApiError::Unprocessable("Destinations must be an array of destination objects".into())
    })?;
    let mut out = Vec::new();
    for d in list {
        let app = d.pointer("/app/guid").and_then(Value::as_str).unwrap_or_default();
        let ptype = d.pointer("/app/process/type").and_then(Value::as_str).unwrap_or("web");
        let protocol = d.get("protocol").and_then(Value::as_str).unwrap_or("http1");
        if protocol != "http1" && protocol != "http2" {
            return Err(ApiError::Unprocessable(
                "Destinations protocol must be 'http1' or 'http2'".into(),
            ));
        }
        let a = require_app(s, c, app, Need::Read).await.map_err(|_| {
            ApiError::Unprocessable(format!(
                "App(s) with guid(s) \"{app}\" do not exist or you do not have access."
            ))
        })?;
        if a.space_guid != space.guid {
            return Err(ApiError::Unprocessable(
                "Routes cannot be mapped to destinations in different spaces.".into(),
            ));
        }
        out.push((a.guid, ptype.to_owned(), protocol.to_owned()));
    }
    Ok(out)
}

async fn add_destinations(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
    raw: Bytes,
) -> ApiResult<Json<v3::RouteDestinations>> {
    let (r, space) = readable(&s, &c, &guid, Need::AppManager).await?;
    let dests = parse_destinations(&s, &c, &space, &raw).await?;
    routing::add_destinations(&s, &r.guid, &dests).await?;
    for (app, _, _) in &dests {
        let t = space.target(app, "app", "");
        events::record(
            &s,
            "audit.app.map-route",
            &Actor::of(&c),
            &t,
            json!({"route_guid": r.guid}),
        )
        .await;
        crate::domain::desired::sync_app_logged(&s, app).await;
    }
    destinations_body(&s, &r).await
}

async fn replace_destinations(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
    raw: Bytes,
) -> ApiResult<Json<v3::RouteDestinations>> {
    let (r, space) = readable(&s, &c, &guid, Need::AppManager).await?;
    let dests = parse_destinations(&s, &c, &space, &raw).await?;
    resync(&s, &routing::replace_destinations(&s, &r.guid, &dests).await?).await;
    destinations_body(&s, &r).await
}

async fn remove_destination(
    State(s): State<AppState>,
    c: Caller,
    Path((guid, dest)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let (r, space) = readable(&s, &c, &guid, Need::AppManager).await?;
    let app = routing::remove_destination(&s, &r.guid, &dest).await?;
    let t = space.target(&app, "app", "");
    events::record(&s, "audit.app.unmap-route", &Actor::of(&c), &t, json!({"route_guid": r.guid}))
        .await;
    crate::domain::desired::sync_app_logged(&s, &app).await;
    Ok(StatusCode::NO_CONTENT)
}

/// `PATCH /v3/routes/:g/destinations/:d {protocol}`: `http1` or `http2`, the app's routes
/// registered again with it (`cf update-destination`).
async fn update_destination(
    State(s): State<AppState>,
    c: Caller,
    Path((guid, dest)): Path<(String, String)>,
    CfJson(req): CfJson<Value>,
) -> ApiResult<Json<v3::Destination>> {
    let Some(body) = req.as_object() else {
        return Err(ApiError::Unprocessable("The request body must be an object".into()));
    };
    let unknown: Vec<String> =
        body.keys().filter(|k| *k != "protocol").map(|k| format!("'{k}'")).collect();
    if !unknown.is_empty() {
        return Err(ApiError::Unprocessable(format!("Unknown field(s): {}", unknown.join(", "))));
    }
    let protocol = match body.get("protocol") {
        Some(Value::String(p)) if p == "http1" || p == "http2" => p.clone(),
        _ => return Err(ApiError::Unprocessable("Protocol must be 'http1' or 'http2'".into())),
    };
    let (r, space) = readable(&s, &c, &guid, Need::AppManager).await?;
    let d = routing::set_destination_protocol(&s, &r.guid, &dest, &protocol).await?;
    let t = space.target(&r.guid, "route", "");
    let request = json!({"destination_guid": d.guid, "protocol": protocol});
    events::record(&s, "audit.route.update", &Actor::of(&c), &t, json!({"request": request})).await;
    crate::domain::desired::sync_app_logged(&s, &d.app_guid).await;
    Ok(Json(present_destination(d)))
}

/// The app if the caller may read it (404 "App" otherwise) and has `need` in its space.
async fn require_app(
    s: &AppState,
    c: &Caller,
    guid: &str,
    need: Need,
) -> ApiResult<crate::store::apps::App> {
    let app = crate::store::apps::find(&s.db.pool, guid).await?.ok_or(ApiError::NotFound("App"))?;
    let space = crate::store::spaces::find(&s.db.pool, &app.space_guid)
        .await?
        .ok_or(ApiError::NotFound("App"))?;
    c.require_space(&space.guid, &space.org_guid, "App", need).await?;
    Ok(app)
}
