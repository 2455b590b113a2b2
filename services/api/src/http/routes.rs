//! Routes and their destinations (contracts/ccapi.md §4.10, §3.5): host + domain + path,
//! unique platform-wide, owned by a space; destinations send a route's traffic to an app's
//! process. Every destination change reaches the scheduler as the process's new route list;
//! a route bound to a route service (`route_bindings`) carries the service's URL in it.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde_json::{json, Value};
use sqlx::any::AnyRow;
use sqlx::Row as _;

use crate::access::{Caller, Need};
use crate::domain::events::{self, Actor};
use crate::error::{ApiError, ApiResult};
use crate::http::domains::Domain;
use crate::http::extract::body;
use crate::http::paging::ListQuery;
use crate::http::util::{link, metadata, to_one, ts};
use crate::store::spaces::Space;
use crate::store::Select;
use crate::store::{is_unique_violation, new_guid, now_ms};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v3/routes", get(list).post(create))
        .route("/v3/routes/{guid}", get(show).delete(remove))
        .route(
            "/v3/routes/{guid}/destinations",
            get(destinations).post(add_destinations).patch(replace_destinations),
        )
        .route("/v3/routes/{guid}/destinations/{dest}", delete(remove_destination))
        .route("/v3/apps/{guid}/routes", get(app_routes))
}

#[derive(Debug, Clone)]
pub struct Route {
    pub guid: String,
    pub host: String,
    pub path: String,
    pub port: i64,
    pub domain_guid: String,
    pub space_guid: String,
    pub loadbalancing: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Route {
    fn from_row(r: &AnyRow) -> ApiResult<Self> {
        Ok(Self {
            guid: r.try_get("guid")?,
            host: r.try_get("host")?,
            path: r.try_get("path")?,
            port: r.try_get("port")?,
            domain_guid: r.try_get("domain_guid")?,
            space_guid: r.try_get("space_guid")?,
            loadbalancing: r.try_get("loadbalancing")?,
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
        })
    }

    /// `host.domain/path` (no scheme), as CF shows it.
    pub fn url(&self, domain: &str) -> String {
        let host = if self.host.is_empty() {
            domain.to_owned()
        } else {
            format!("{}.{domain}", self.host)
        };
        format!("{host}{}", self.path)
    }
}

pub async fn present(s: &AppState, r: &Route) -> ApiResult<Value> {
    let domain =
        crate::http::domains::find(s, &r.domain_guid).await?.map(|d| d.name).unwrap_or_default();
    let base = format!("{}/routes/{}", s.v3(), r.guid);
    let mut options = json!({});
    if !r.loadbalancing.is_empty() {
        options["loadbalancing"] = json!(r.loadbalancing);
    }
    Ok(json!({
        "guid": r.guid, "created_at": ts(r.created_at), "updated_at": ts(r.updated_at),
        "protocol": "http", "host": r.host, "path": r.path,
        "port": if r.port == 0 { Value::Null } else { json!(r.port) },
        "url": r.url(&domain),
        "destinations": destination_list(s, &r.guid).await?,
        "options": options,
        "relationships": {"space": to_one(&r.space_guid), "domain": to_one(&r.domain_guid)},
        "metadata": metadata(),
        "links": {
            "self": link(base.clone()),
            "space": link(format!("{}/spaces/{}", s.v3(), r.space_guid)),
            "domain": link(format!("{}/domains/{}", s.v3(), r.domain_guid)),
            "destinations": link(format!("{base}/destinations")),
        },
    }))
}

async fn destination_list(s: &AppState, route: &str) -> ApiResult<Vec<Value>> {
    let rows = sqlx::query(
        "SELECT * FROM route_destinations WHERE route_guid = $1 ORDER BY created_at, guid",
    )
    .bind(route)
    .fetch_all(&s.db.pool)
    .await?;
    rows.iter()
        .map(|d| {
            Ok(json!({
                "guid": d.try_get::<String, _>("guid")?,
                "app": {"guid": d.try_get::<String, _>("app_guid")?, "process": {"type": d.try_get::<String, _>("process_type")?}},
                "weight": null,
                "port": d.try_get::<i64, _>("port")?,
                "protocol": d.try_get::<String, _>("protocol")?,
                "created_at": ts(d.try_get("created_at")?), "updated_at": ts(d.try_get("updated_at")?),
            }))
        })
        .collect()
}

pub async fn find(s: &AppState, guid: &str) -> ApiResult<Option<Route>> {
    let row = sqlx::query("SELECT * FROM routes WHERE guid = $1")
        .bind(guid)
        .fetch_optional(&s.db.pool)
        .await?;
    row.as_ref().map(Route::from_row).transpose()
}

/// A route with its space, if the caller may read the space (else 404 "Route").
async fn readable(s: &AppState, c: &Caller, guid: &str, need: Need) -> ApiResult<(Route, Space)> {
    let route = find(s, guid).await?.ok_or(ApiError::NotFound("Route"))?;
    let space = crate::store::spaces::find(&s.db.pool, &route.space_guid)
        .await?
        .ok_or(ApiError::NotFound("Route"))?;
    c.require_space(&space.guid, &space.org_guid, "Route", need).await?;
    Ok((route, space))
}

/// Host label rules: letters, digits, hyphens; `*` alone for wildcard routes.
fn check_host(host: &str) -> ApiResult<()> {
    let ok = host.is_empty()
        || host == "*"
        || (host.len() <= 63
            && !host.starts_with('-')
            && host.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::Unprocessable(format!(
            "Host '{host}' must be a valid host name (letters, digits and hyphens)"
        )))
    }
}

fn check_path(path: &str) -> ApiResult<()> {
    if path.is_empty()
        || (path.starts_with('/') && path != "/" && !path.contains('?') && !path.contains(".."))
    {
        Ok(())
    } else {
        Err(ApiError::Unprocessable(format!(
            "Path '{path}' must begin with a '/', not be '/' alone, and contain no '?'"
        )))
    }
}

/// Find the route or create it in `space` (checks: domain usable, uniqueness, route quota).
pub async fn find_or_create(
    s: &AppState,
    space: &Space,
    domain: &Domain,
    host: &str,
    path: &str,
    actor: &Actor,
) -> ApiResult<Route> {
    let host = host.to_ascii_lowercase();
    let existing = sqlx::query(
        "SELECT * FROM routes WHERE host = $1 AND domain_guid = $2 AND path = $3 AND port = 0",
    )
    .bind(&host)
    .bind(&domain.guid)
    .bind(path)
    .fetch_optional(&s.db.pool)
    .await?;
    if let Some(r) = existing {
        let r = Route::from_row(&r)?;
        if r.space_guid != space.guid {
            return Err(ApiError::Unprocessable(format!(
                "Route '{}' already exists in another space and cannot be used here.",
                r.url(&domain.name)
            )));
        }
        return Ok(r);
    }
    create_route(s, space, domain, &host, path, "", actor).await
}

async fn create_route(
    s: &AppState,
    space: &Space,
    domain: &Domain,
    host: &str,
    path: &str,
    lb: &str,
    actor: &Actor,
) -> ApiResult<Route> {
    check_host(host)?;
    check_path(path)?;
    if !crate::http::domains::usable_by(domain, &space.org_guid) {
        return Err(ApiError::Unprocessable(format!(
            "Domain '{}' is not available in the space's organization.",
            domain.name
        )));
    }
    if host.is_empty() && domain.org_guid.is_empty() {
        return Err(ApiError::Unprocessable(
            "Missing host. Routes in shared domains must have a host defined.".into(),
        ));
    }
    crate::domain::quotas::check_routes(s, &space.org_guid, &space.guid).await?;
    let now = now_ms();
    let r = Route {
        guid: new_guid(),
        host: host.to_owned(),
        path: path.to_owned(),
        port: 0,
        domain_guid: domain.guid.clone(),
        space_guid: space.guid.clone(),
        loadbalancing: lb.to_owned(),
        created_at: now,
        updated_at: now,
    };
    let res = sqlx::query(
        "INSERT INTO routes (guid, host, path, port, domain_guid, space_guid, loadbalancing, created_at, updated_at) \
         VALUES ($1, $2, $3, 0, $4, $5, $6, $7, $7)",
    )
    .bind(&r.guid)
    .bind(&r.host)
    .bind(&r.path)
    .bind(&r.domain_guid)
    .bind(&r.space_guid)
    .bind(&r.loadbalancing)
    .bind(now)
    .execute(&s.db.pool)
    .await;
    match res {
        Err(e) if is_unique_violation(&e) => {
            return Err(ApiError::Unprocessable(format!(
                "Route already exists for '{}'.",
                r.url(&domain.name)
            )))
        }
        r => r?,
    };
    let url = r.url(&domain.name);
    let t = space.target(&r.guid, "route", &url);
    events::record(
        s,
        "audit.route.create",
        actor,
        &t,
        json!({"request": {"host": host, "path": path}}),
    )
    .await;
    Ok(r)
}

/// Map `app`'s process to the route (idempotent); the scheduler learns at once.
pub async fn map(
    s: &AppState,
    route: &Route,
    app: &str,
    process_type: &str,
    protocol: &str,
) -> ApiResult<()> {
    let now = now_ms();
    let res = sqlx::query(
        "INSERT INTO route_destinations (guid, route_guid, app_guid, process_type, port, protocol, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, 8080, $5, $6, $6)",
    )
    .bind(new_guid())
    .bind(&route.guid)
    .bind(app)
    .bind(process_type)
    .bind(protocol)
    .bind(now)
    .execute(&s.db.pool)
    .await;
    match res {
        Err(e) if is_unique_violation(&e) => Ok(()),
        r => r.map(|_| ()).map_err(Into::into),
    }
}

/// Apps whose destinations a change touched, to resync them with the scheduler.
pub async fn apps_of(s: &AppState, route: &str) -> ApiResult<Vec<String>> {
    let rows =
        sqlx::query("SELECT DISTINCT app_guid FROM route_destinations WHERE route_guid = $1")
            .bind(route)
            .fetch_all(&s.db.pool)
            .await?;
    Ok(rows.iter().map(|r| r.try_get("app_guid")).collect::<Result<Vec<String>, _>>()?)
}

async fn create(State(s): State<AppState>, c: Caller, raw: Bytes) -> ApiResult<Response> {
    let req: Value = body(&raw)?;
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
    let domain = crate::http::domains::find(&s, domain_guid)
        .await?
        .filter(|d| crate::http::domains::usable_by(d, &space.org_guid))
        .ok_or_else(|| {
            ApiError::Unprocessable(
                "Invalid domain. Ensure that the domain exists and you have access to it.".into(),
            )
        })?;
    if req.get("port").is_some_and(|p| !p.is_null()) {
        return Err(ApiError::Unprocessable(
            "Routes with ports need a TCP domain; this platform has HTTP domains only.".into(),
        ));
    }
    let host = req.get("host").and_then(Value::as_str).unwrap_or_default().to_ascii_lowercase();
    let path = req.get("path").and_then(Value::as_str).unwrap_or_default();
    let lb = req.pointer("/options/loadbalancing").and_then(Value::as_str).unwrap_or_default();
    if !lb.is_empty() && lb != "round-robin" && lb != "least-connection" {
        return Err(ApiError::Unprocessable(
            "Loadbalancing must be 'round-robin' or 'least-connection'".into(),
        ));
    }
    let r = create_route(&s, &space, &domain, &host, path, lb, &Actor::of(&c)).await?;
    Ok((StatusCode::CREATED, Json(present(&s, &r).await?)).into_response())
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

async fn list_with(
    s: &AppState,
    c: &Caller,
    q: ListQuery,
    mut sel: Select,
    base: String,
) -> ApiResult<Json<Value>> {
    crate::http::metadata::select(&mut sel, &q, "routes.guid")?;
    sel.filter(q.filter("guids"), "routes.guid")
        .filter(q.filter("domain_guids"), "routes.domain_guid")
        .filter(q.filter("hosts"), "routes.host")
        .filter(q.filter("paths"), "routes.path")
        .filter(q.filter("space_guids"), "routes.space_guid");
    if let Some(apps) = q.filter("app_guids") {
        let apps = apps.to_vec();
        sel = sel.join("JOIN route_destinations rd ON rd.route_guid = routes.guid");
        sel.any("rd.app_guid", &apps);
    }
    if let Some(orgs) = q.filter("organization_guids") {
        let orgs = orgs.to_vec();
        sel = sel.join("JOIN spaces sp ON sp.guid = routes.space_guid");
        sel.any("sp.org_guid", &orgs);
    }
    sel.visible("routes.space_guid", &c.visible_spaces().await?);
    let (total, rows) = sel.page(&s.db, &q.window()).await?;
    let mut items = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for r in &rows {
        let route = Route::from_row(r)?;
        if seen.insert(route.guid.clone()) {
            items.push(present(s, &route).await?);
        }
    }
    Ok(Json(q.envelope(&base, total, items)))
}

async fn list(
    State(s): State<AppState>,
    c: Caller,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Value>> {
    let q = ListQuery::parse(q.as_deref(), &FILTERS, &[])?;
    list_with(&s, &c, q, Select::from("routes"), format!("{}/routes", s.v3())).await
}

async fn app_routes(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Value>> {
    let app = crate::http::apps::require(&s, &c, &guid, Need::Read).await?;
    let mut q = ListQuery::parse(q.as_deref(), &FILTERS, &[])?;
    q.filters.insert("app_guids".into(), vec![app.guid.clone()]);
    list_with(&s, &c, q, Select::from("routes"), format!("{}/apps/{guid}/routes", s.v3())).await
}

async fn show(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Json<Value>> {
    let (r, _) = readable(&s, &c, &guid, Need::Read).await?;
    Ok(Json(present(&s, &r).await?))
}

async fn remove(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Response> {
    let (r, space) = readable(&s, &c, &guid, Need::AppManager).await?;
    let apps = apps_of(&s, &r.guid).await?;
    let res: ApiResult<()> = async {
        crate::http::route_bindings::forget_route(&s, &r.guid).await?;
        sqlx::query("DELETE FROM route_destinations WHERE route_guid = $1")
            .bind(&r.guid)
            .execute(&s.db.pool)
            .await?;
        sqlx::query("DELETE FROM routes WHERE guid = $1").bind(&r.guid).execute(&s.db.pool).await?;
        Ok(())
    }
    .await;
    let job = crate::domain::jobs::run(&s, "route.delete", "", "", async { res }).await?;
    let t = space.target(&r.guid, "route", &r.host);
    events::record(&s, "audit.route.delete-request", &Actor::of(&c), &t, json!({})).await;
    for app in apps {
        crate::domain::desired::sync_app_logged(&s, &app).await;
    }
    Ok(crate::http::jobs::accepted(&s, &job))
}

async fn destinations_body(s: &AppState, r: &Route) -> ApiResult<Json<Value>> {
    let base = format!("{}/routes/{}", s.v3(), r.guid);
    Ok(Json(json!({
        "destinations": destination_list(s, &r.guid).await?,
        "links": {"self": link(format!("{base}/destinations")), "route": link(base)},
    })))
}

async fn destinations(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Json<Value>> {
    let (r, _) = readable(&s, &c, &guid, Need::Read).await?;
    destinations_body(&s, &r).await
}

/// Validate `{"destinations":[{app:{guid, process:{type}}, port?, protocol?}]}`.
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
        let a = crate::http::apps::require(s, c, app, Need::Read).await.map_err(|_| {
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
) -> ApiResult<Json<Value>> {
    let (r, space) = readable(&s, &c, &guid, Need::AppManager).await?;
    let dests = parse_destinations(&s, &c, &space, &raw).await?;
    for (app, ptype, proto) in &dests {
        map(&s, &r, app, ptype, proto).await?;
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
) -> ApiResult<Json<Value>> {
    let (r, space) = readable(&s, &c, &guid, Need::AppManager).await?;
    let dests = parse_destinations(&s, &c, &space, &raw).await?;
    let mut touched = apps_of(&s, &r.guid).await?;
    sqlx::query("DELETE FROM route_destinations WHERE route_guid = $1")
        .bind(&r.guid)
        .execute(&s.db.pool)
        .await?;
    for (app, ptype, proto) in &dests {
        map(&s, &r, app, ptype, proto).await?;
        touched.push(app.clone());
    }
    touched.sort();
    touched.dedup();
    for app in touched {
        crate::domain::desired::sync_app_logged(&s, &app).await;
    }
    destinations_body(&s, &r).await
}

async fn remove_destination(
    State(s): State<AppState>,
    c: Caller,
    Path((guid, dest)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let (r, space) = readable(&s, &c, &guid, Need::AppManager).await?;
    let row =
        sqlx::query("SELECT app_guid FROM route_destinations WHERE guid = $1 AND route_guid = $2")
            .bind(&dest)
            .bind(&r.guid)
            .fetch_optional(&s.db.pool)
            .await?
            .ok_or(ApiError::NotFound("Destination"))?;
    let app: String = row.try_get("app_guid")?;
    sqlx::query("DELETE FROM route_destinations WHERE guid = $1")
        .bind(&dest)
        .execute(&s.db.pool)
        .await?;
    let t = space.target(&app, "app", "");
    events::record(&s, "audit.app.unmap-route", &Actor::of(&c), &t, json!({"route_guid": r.guid}))
        .await;
    crate::domain::desired::sync_app_logged(&s, &app).await;
    Ok(StatusCode::NO_CONTENT)
}

/// The routes of an app's process, as the scheduler and router take them; a route bound to a
/// route service carries the bound instance's current `route_service_url`.
pub async fn lrp_routes(
    s: &AppState,
    app: &str,
    process_type: &str,
) -> ApiResult<Vec<wire::lrp::Route>> {
    let rows = sqlx::query(
        "SELECT r.host, r.path, r.loadbalancing, d.name AS domain, rd.port, rd.protocol, \
         COALESCE(si.route_service_url, '') AS route_service_url \
         FROM route_destinations rd JOIN routes r ON r.guid = rd.route_guid \
         JOIN domains d ON d.guid = r.domain_guid \
         LEFT JOIN service_route_bindings srb ON srb.route_guid = r.guid \
         LEFT JOIN service_instances si ON si.guid = srb.service_instance_guid \
         WHERE rd.app_guid = $1 AND rd.process_type = $2 ORDER BY rd.created_at, rd.guid",
    )
    .bind(app)
    .bind(process_type)
    .fetch_all(&s.db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            let host: String = r.try_get("host")?;
            let domain: String = r.try_get("domain")?;
            let path: String = r.try_get("path")?;
            let lb: String = r.try_get("loadbalancing")?;
            let proto: String = r.try_get("protocol")?;
            let port: i64 = r.try_get("port")?;
            let route_service: String = r.try_get("route_service_url")?;
            let fqdn = if host.is_empty() { domain } else { format!("{host}.{domain}") };
            Ok(wire::lrp::Route {
                uri: format!("{fqdn}{path}"),
                port: u16::try_from(port).unwrap_or(8080),
                protocol: Some(proto).filter(|p| !p.is_empty()),
                loadbalancing: Some(lb).filter(|l| !l.is_empty()),
                route_service_url: Some(route_service).filter(|u| !u.is_empty()),
            })
        })
        .collect()
}
