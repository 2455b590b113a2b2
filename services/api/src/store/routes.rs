//! The `routes` and `route_destinations` tables: host + domain + path, unique platform-wide
//! and owned by a space; a destination sends a route's traffic to an app's process.

use sqlx::any::AnyRow;
use sqlx::Row as _;

use super::{decode, unique_or, Exec, Select, Window};
use crate::error::{ApiError, ApiResult};

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

/// One destination of a route: an app's process on a port.
#[derive(Debug, Clone)]
pub struct Destination {
    pub guid: String,
    pub route_guid: String,
    pub app_guid: String,
    pub process_type: String,
    pub port: i64,
    pub protocol: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Destination {
    fn from_row(r: &AnyRow) -> ApiResult<Self> {
        Ok(Self {
            guid: r.try_get("guid")?,
            route_guid: r.try_get("route_guid")?,
            app_guid: r.try_get("app_guid")?,
            process_type: r.try_get("process_type")?,
            port: r.try_get("port")?,
            protocol: r.try_get("protocol")?,
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
        })
    }
}

/// A route of an app's process as the scheduler needs it: the route's address, the
/// destination's port and protocol, and the URL of a route service bound to the route (empty
/// without one).
#[derive(Debug, Clone)]
pub struct ProcessRoute {
    pub host: String,
    pub domain: String,
    pub path: String,
    pub loadbalancing: String,
    pub port: i64,
    pub protocol: String,
    pub route_service_url: String,
}

pub async fn find<'e>(ex: impl Exec<'e>, guid: &str) -> ApiResult<Option<Route>> {
    let row =
        sqlx::query("SELECT * FROM routes WHERE guid = $1").bind(guid).fetch_optional(ex).await?;
    row.as_ref().map(Route::from_row).transpose()
}

/// The route at `host` + domain + `path` + `port`.
pub async fn find_by_address<'e>(
    ex: impl Exec<'e>,
    domain: &str,
    host: &str,
    path: &str,
    port: i64,
) -> ApiResult<Option<Route>> {
    let row = sqlx::query(
        "SELECT * FROM routes WHERE host = $1 AND domain_guid = $2 AND path = $3 AND port = $4",
    )
    .bind(host)
    .bind(domain)
    .bind(path)
    .bind(port)
    .fetch_optional(ex)
    .await?;
    row.as_ref().map(Route::from_row).transpose()
}

/// Whether any route uses the domain.
pub async fn any_of_domain<'e>(ex: impl Exec<'e>, domain: &str) -> ApiResult<bool> {
    let row = sqlx::query("SELECT guid FROM routes WHERE domain_guid = $1 LIMIT 1")
        .bind(domain)
        .fetch_optional(ex)
        .await?;
    Ok(row.is_some())
}

/// Whether a space of the org has a route on the domain.
pub async fn any_of_domain_in_org<'e>(
    ex: impl Exec<'e>,
    domain: &str,
    org: &str,
) -> ApiResult<bool> {
    let row = sqlx::query(
        "SELECT r.guid FROM routes r JOIN spaces sp ON sp.guid = r.space_guid \
         WHERE r.domain_guid = $1 AND sp.org_guid = $2 LIMIT 1",
    )
    .bind(domain)
    .bind(org)
    .fetch_optional(ex)
    .await?;
    Ok(row.is_some())
}

/// A list of routes: `routes.*` columns, filters named `routes.<column>`.
pub fn select() -> Select {
    Select::from("routes")
}

/// Only routes with a destination of one of `apps` (a route may come once per destination).
pub fn with_apps(sel: Select, apps: &[String]) -> Select {
    let mut sel = sel.join("JOIN route_destinations rd ON rd.route_guid = routes.guid");
    sel.any("rd.app_guid", apps);
    sel
}

/// Only routes of spaces in one of `orgs`.
pub fn in_orgs(sel: Select, orgs: &[String]) -> Select {
    let mut sel = sel.join("JOIN spaces sp ON sp.guid = routes.space_guid");
    sel.any("sp.org_guid", orgs);
    sel
}

/// One page of a list of routes.
pub async fn page(db: &kit::db::Db, sel: &Select, window: &Window) -> ApiResult<(i64, Vec<Route>)> {
    sel.page_of(db, window, Route::from_row).await
}

/// A new route; `taken()` when its address is in use.
pub async fn insert<'e>(
    ex: impl Exec<'e>,
    r: &Route,
    taken: impl FnOnce() -> ApiError,
) -> ApiResult<()> {
    let res = sqlx::query(
        "INSERT INTO routes (guid, host, path, port, domain_guid, space_guid, loadbalancing, \
         created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&r.guid)
    .bind(&r.host)
    .bind(&r.path)
    .bind(r.port)
    .bind(&r.domain_guid)
    .bind(&r.space_guid)
    .bind(&r.loadbalancing)
    .bind(r.created_at)
    .bind(r.updated_at)
    .execute(ex)
    .await;
    unique_or(res, taken).map(|_| ())
}

/// Set a route's load-balancing algorithm (empty: the router's default).
pub async fn set_loadbalancing<'e>(
    ex: impl Exec<'e>,
    guid: &str,
    loadbalancing: &str,
    now: i64,
) -> ApiResult<()> {
    sqlx::query("UPDATE routes SET loadbalancing = $2, updated_at = $3 WHERE guid = $1")
        .bind(guid)
        .bind(loadbalancing)
        .bind(now)
        .execute(ex)
        .await?;
    Ok(())
}

/// Guids of the space's routes with no destination.
pub async fn unmapped_of_space<'e>(ex: impl Exec<'e>, space: &str) -> ApiResult<Vec<String>> {
    let rows = sqlx::query(
        "SELECT r.guid FROM routes r WHERE r.space_guid = $1 AND NOT EXISTS \
         (SELECT 1 FROM route_destinations d WHERE d.route_guid = r.guid) ORDER BY r.created_at",
    )
    .bind(space)
    .fetch_all(ex)
    .await?;
    rows.iter().map(|r| Ok(r.try_get("guid")?)).collect()
}

pub async fn delete<'e>(ex: impl Exec<'e>, guid: &str) -> ApiResult<()> {
    sqlx::query("DELETE FROM routes WHERE guid = $1").bind(guid).execute(ex).await?;
    Ok(())
}

/// A route's destinations in the order they were made.
pub async fn destinations<'e>(ex: impl Exec<'e>, route: &str) -> ApiResult<Vec<Destination>> {
    let rows = sqlx::query(
        "SELECT * FROM route_destinations WHERE route_guid = $1 ORDER BY created_at, guid",
    )
    .bind(route)
    .fetch_all(ex)
    .await?;
    decode(&rows, Destination::from_row)
}

/// The destination `guid` of `route`.
pub async fn find_destination<'e>(
    ex: impl Exec<'e>,
    route: &str,
    guid: &str,
) -> ApiResult<Option<Destination>> {
    let row = sqlx::query("SELECT * FROM route_destinations WHERE guid = $1 AND route_guid = $2")
        .bind(guid)
        .bind(route)
        .fetch_optional(ex)
        .await?;
    row.as_ref().map(Destination::from_row).transpose()
}

/// Set a destination's protocol (`http1`, `http2`).
pub async fn set_destination_protocol<'e>(
    ex: impl Exec<'e>,
    guid: &str,
    protocol: &str,
    now: i64,
) -> ApiResult<()> {
    sqlx::query("UPDATE route_destinations SET protocol = $2, updated_at = $3 WHERE guid = $1")
        .bind(guid)
        .bind(protocol)
        .bind(now)
        .execute(ex)
        .await?;
    Ok(())
}

/// A destination unless the route has the same one already; whether it was new.
pub async fn insert_destination<'e>(ex: impl Exec<'e>, d: &Destination) -> ApiResult<bool> {
    let res = sqlx::query(
        "INSERT INTO route_destinations (guid, route_guid, app_guid, process_type, port, \
         protocol, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT DO NOTHING",
    )
    .bind(&d.guid)
    .bind(&d.route_guid)
    .bind(&d.app_guid)
    .bind(&d.process_type)
    .bind(d.port)
    .bind(&d.protocol)
    .bind(d.created_at)
    .bind(d.updated_at)
    .execute(ex)
    .await?;
    Ok(res.rows_affected() > 0)
}

pub async fn delete_destination<'e>(ex: impl Exec<'e>, guid: &str) -> ApiResult<()> {
    sqlx::query("DELETE FROM route_destinations WHERE guid = $1").bind(guid).execute(ex).await?;
    Ok(())
}

/// Every destination of a route.
pub async fn delete_destinations<'e>(ex: impl Exec<'e>, route: &str) -> ApiResult<()> {
    sqlx::query("DELETE FROM route_destinations WHERE route_guid = $1")
        .bind(route)
        .execute(ex)
        .await?;
    Ok(())
}

/// The apps with a destination on the route.
pub async fn apps_of<'e>(ex: impl Exec<'e>, route: &str) -> ApiResult<Vec<String>> {
    let rows =
        sqlx::query("SELECT DISTINCT app_guid FROM route_destinations WHERE route_guid = $1")
            .bind(route)
            .fetch_all(ex)
            .await?;
    Ok(rows.iter().map(|r| r.try_get("app_guid")).collect::<Result<Vec<String>, _>>()?)
}

/// The routes of an app's process, in the order they were mapped, each with the current
/// `route_service_url` of the instance bound to it.
pub async fn of_process<'e>(
    ex: impl Exec<'e>,
    app: &str,
    process_type: &str,
) -> ApiResult<Vec<ProcessRoute>> {
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
    .fetch_all(ex)
    .await?;
    decode(&rows, |r| {
        Ok(ProcessRoute {
            host: r.try_get("host")?,
            domain: r.try_get("domain")?,
            path: r.try_get("path")?,
            loadbalancing: r.try_get("loadbalancing")?,
            port: r.try_get("port")?,
            protocol: r.try_get("protocol")?,
            route_service_url: r.try_get("route_service_url")?,
        })
    })
}

/// Whether any route is mapped to the app.
pub async fn app_has_routes<'e>(ex: impl Exec<'e>, app: &str) -> ApiResult<bool> {
    let r = sqlx::query("SELECT guid FROM route_destinations WHERE app_guid = $1 LIMIT 1")
        .bind(app)
        .fetch_optional(ex)
        .await?;
    Ok(r.is_some())
}

/// Unmap every route from the app.
pub async fn unmap_app<'e>(ex: impl Exec<'e>, app: &str) -> ApiResult<()> {
    sqlx::query("DELETE FROM route_destinations WHERE app_guid = $1").bind(app).execute(ex).await?;
    Ok(())
}
