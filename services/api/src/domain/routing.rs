//! Routing: which routes a space may create, the destinations that send a route's traffic to
//! apps' processes, route services bound to routes, and the route list each process gets at
//! the scheduler (with the bound route service's current URL). Every change answers which
//! apps it touched; the caller resyncs those with the scheduler after the commit.

use serde_json::json;

use crate::domain::events::{self, Actor};
use crate::error::{ApiError, ApiResult};
use crate::store::domains::Domain;
use crate::store::route_bindings::RouteBinding;
use crate::store::routes::{Destination, Route};
use crate::store::spaces::Space;
use crate::store::{self, new_guid, now_ms};
use crate::AppState;

/// The port every destination gets (HTTP routes only).
const APP_PORT: i64 = 8080;

/// Whether an org may use the domain for routes: a shared domain, its own private domain, or
/// a private domain shared with it.
pub async fn usable_by(s: &AppState, d: &Domain, org: &str) -> ApiResult<bool> {
    if d.org_guid.is_empty() || d.org_guid == org {
        return Ok(true);
    }
    store::domains::is_shared_with(&s.db.pool, &d.guid, org).await
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

/// The checks of a new route in a space of `org`, before the route quota's.
async fn check_new_route(
    s: &AppState,
    domain: &Domain,
    org: &str,
    host: &str,
    path: &str,
) -> ApiResult<()> {
    check_host(host)?;
    check_path(path)?;
    if !usable_by(s, domain, org).await? {
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
    Ok(())
}

/// Store a new route (checked with [`check_new_route`]) in `space`.
async fn insert_route(
    s: &AppState,
    space: &str,
    domain: &Domain,
    host: &str,
    path: &str,
    loadbalancing: &str,
) -> ApiResult<Route> {
    let now = now_ms();
    let r = Route {
        guid: new_guid(),
        host: host.to_owned(),
        path: path.to_owned(),
        port: 0,
        domain_guid: domain.guid.clone(),
        space_guid: space.to_owned(),
        loadbalancing: loadbalancing.to_owned(),
        created_at: now,
        updated_at: now,
    };
    store::routes::insert(&s.db.pool, &r, || {
        ApiError::Unprocessable(format!("Route already exists for '{}'.", r.url(&domain.name)))
    })
    .await?;
    Ok(r)
}

/// Change a route's load-balancing algorithm (`""`: back to the router's default), with the
/// audit event CC records; the apps mapped to it, whose routes the cells register again.
pub async fn set_loadbalancing(
    s: &AppState,
    r: &mut Route,
    space: &Space,
    loadbalancing: &str,
    actor: &Actor,
) -> ApiResult<Vec<String>> {
    let now = now_ms();
    store::routes::set_loadbalancing(&s.db.pool, &r.guid, loadbalancing, now).await?;
    r.loadbalancing = loadbalancing.to_owned();
    r.updated_at = now;
    let domain = store::domains::find(&s.db.pool, &r.domain_guid).await?;
    let url = domain.map(|d| r.url(&d.name)).unwrap_or_else(|| r.host.clone());
    let t = space.target(&r.guid, "route", &url);
    let lb = if loadbalancing.is_empty() { serde_json::Value::Null } else { json!(loadbalancing) };
    events::record(
        s,
        "audit.route.update",
        actor,
        &t,
        json!({"request": {"options": {"loadbalancing": lb}}}),
    )
    .await;
    store::routes::apps_of(&s.db.pool, &r.guid).await
}

/// Create a route in `space` (host lower-cased by the caller): the checks of a new route, the
/// route quota of the space and its org, the row, and the audit event CC records.
pub async fn create_route(
    s: &AppState,
    space: &Space,
    domain: &Domain,
    host: &str,
    path: &str,
    loadbalancing: &str,
    actor: &Actor,
) -> ApiResult<Route> {
    check_new_route(s, domain, &space.org_guid, host, path).await?;
    crate::domain::quotas::check_routes(s, &space.org_guid, &space.guid).await?;
    let r = insert_route(s, &space.guid, domain, host, path, loadbalancing).await?;
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

/// The route at `host` + domain + `path` in `space`, created (as [`create_route`] does) when
/// there is none; 422 when it belongs to another space.
pub async fn find_or_create_route(
    s: &AppState,
    space: &Space,
    domain: &Domain,
    host: &str,
    path: &str,
    actor: &Actor,
) -> ApiResult<Route> {
    let host = host.to_ascii_lowercase();
    if let Some(r) = existing_route(s, &space.guid, domain, &host, path).await? {
        return Ok(r);
    }
    create_route(s, space, domain, &host, path, "", actor).await
}

/// The HTTP route at `host` + domain + `path` if it exists and belongs to `space` (422 if it
/// belongs to another space).
async fn existing_route(
    s: &AppState,
    space: &str,
    domain: &Domain,
    host: &str,
    path: &str,
) -> ApiResult<Option<Route>> {
    let Some(r) = store::routes::find_by_address(&s.db.pool, &domain.guid, host, path, 0).await?
    else {
        return Ok(None);
    };
    if r.space_guid != space {
        return Err(ApiError::Unprocessable(format!(
            "Route '{}' already exists in another space and cannot be used here.",
            r.url(&domain.name)
        )));
    }
    Ok(Some(r))
}

fn destination(route: &str, app: &str, process_type: &str, protocol: &str) -> Destination {
    let now = now_ms();
    Destination {
        guid: new_guid(),
        route_guid: route.to_owned(),
        app_guid: app.to_owned(),
        process_type: process_type.to_owned(),
        port: APP_PORT,
        protocol: protocol.to_owned(),
        created_at: now,
        updated_at: now,
    }
}

/// Map `app`'s process to the route (idempotent). The caller resyncs the app after its commit
/// (the manifest apply does once, after all of the app's changes): `domain::desired` reads
/// this module, so the resync cannot start here.
pub async fn map_route(
    s: &AppState,
    route: &Route,
    app: &str,
    process_type: &str,
    protocol: &str,
) -> ApiResult<()> {
    let d = destination(&route.guid, app, process_type, protocol);
    store::routes::insert_destination(&s.db.pool, &d).await.map(|_| ())
}

/// Map every `(app, process type, protocol)` to the route at once. The caller resyncs the apps.
pub async fn add_destinations(
    s: &AppState,
    route: &str,
    dests: &[(String, String, String)],
) -> ApiResult<()> {
    let mut tx = store::begin(&s.db).await?;
    for (app, ptype, proto) in dests {
        store::routes::insert_destination(&mut *tx, &destination(route, app, ptype, proto)).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Make `dests` the route's only destinations; the apps it had and has now, to resync.
pub async fn replace_destinations(
    s: &AppState,
    route: &str,
    dests: &[(String, String, String)],
) -> ApiResult<Vec<String>> {
    let mut tx = store::begin(&s.db).await?;
    let mut touched = store::routes::apps_of(&mut *tx, route).await?;
    store::routes::delete_destinations(&mut *tx, route).await?;
    for (app, ptype, proto) in dests {
        store::routes::insert_destination(&mut *tx, &destination(route, app, ptype, proto)).await?;
        touched.push(app.clone());
    }
    tx.commit().await?;
    touched.sort();
    touched.dedup();
    Ok(touched)
}

/// Remove one destination of the route; its app, to resync.
pub async fn remove_destination(s: &AppState, route: &str, dest: &str) -> ApiResult<String> {
    let mut tx = store::begin(&s.db).await?;
    let d = store::routes::find_destination(&mut *tx, route, dest)
        .await?
        .ok_or(ApiError::NotFound("Destination"))?;
    store::routes::delete_destination(&mut *tx, &d.guid).await?;
    tx.commit().await?;
    Ok(d.app_guid)
}

/// Change a destination's protocol; the destination as it is now. The caller resyncs its app.
pub async fn set_destination_protocol(
    s: &AppState,
    route: &str,
    dest: &str,
    protocol: &str,
) -> ApiResult<Destination> {
    let mut d = store::routes::find_destination(&s.db.pool, route, dest)
        .await?
        .ok_or(ApiError::NotFound("Destination"))?;
    let now = now_ms();
    store::routes::set_destination_protocol(&s.db.pool, &d.guid, protocol, now).await?;
    d.protocol = protocol.to_owned();
    d.updated_at = now;
    Ok(d)
}

/// The apps with a destination on the route: those to resync after a change of it.
pub async fn apps_of(s: &AppState, route: &str) -> ApiResult<Vec<String>> {
    store::routes::apps_of(&s.db.pool, route).await
}

/// Remove a route with its destinations and its route service binding. The caller resyncs the
/// apps it had ([`apps_of`] before).
pub async fn delete_route(s: &AppState, route: &str) -> ApiResult<()> {
    let mut tx = store::begin(&s.db).await?;
    if let Some(b) = store::route_bindings::of_route(&mut *tx, route).await? {
        store::route_bindings::delete(&mut tx, &b.guid).await?;
    }
    store::routes::delete_destinations(&mut *tx, route).await?;
    store::routes::delete(&mut *tx, route).await?;
    tx.commit().await?;
    Ok(())
}

/// Delete every route of the space that leads nowhere (CC's `unmapped=true`); how many.
pub async fn delete_unmapped(s: &AppState, space: &str) -> ApiResult<usize> {
    let routes = store::routes::unmapped_of_space(&s.db.pool, space).await?;
    for r in &routes {
        delete_route(s, r).await?;
    }
    Ok(routes.len())
}

/// The routes of an app's process, as the scheduler and router take them; a route bound to a
/// route service carries the bound instance's current `route_service_url`.
pub async fn lrp_routes(
    s: &AppState,
    app: &str,
    process_type: &str,
) -> ApiResult<Vec<wire::lrp::Route>> {
    let routes = store::routes::of_process(&s.db.pool, app, process_type).await?;
    Ok(routes
        .into_iter()
        .map(|r| {
            let fqdn =
                if r.host.is_empty() { r.domain } else { format!("{}.{}", r.host, r.domain) };
            wire::lrp::Route {
                uri: format!("{fqdn}{}", r.path),
                port: u16::try_from(r.port).unwrap_or(8080),
                protocol: Some(r.protocol).filter(|p| !p.is_empty()),
                loadbalancing: Some(r.loadbalancing).filter(|l| !l.is_empty()),
                route_service_url: Some(r.route_service_url).filter(|u| !u.is_empty()),
            }
        })
        .collect())
}

/// Bind a route to a route service instance: CC's two errors when the route has a binding.
/// The caller resyncs the route's apps.
pub async fn bind_route_service(
    s: &AppState,
    route: &str,
    instance: &str,
) -> ApiResult<RouteBinding> {
    let taken = |existing: RouteBinding| {
        if existing.instance_guid == instance {
            ApiError::RouteAlreadyBound
        } else {
            ApiError::Unprocessable("A route may only be bound to a single service instance".into())
        }
    };
    if let Some(existing) = store::route_bindings::of_route(&s.db.pool, route).await? {
        return Err(taken(existing));
    }
    let now = now_ms();
    let b = RouteBinding {
        guid: new_guid(),
        route_guid: route.to_owned(),
        instance_guid: instance.to_owned(),
        created_at: now,
        updated_at: now,
    };
    if store::route_bindings::insert(&s.db.pool, &b).await? {
        return Ok(b);
    }
    // Another request bound the route in between.
    match store::route_bindings::of_route(&s.db.pool, route).await? {
        Some(existing) => Err(taken(existing)),
        None => Err(ApiError::Internal("database: a route binding vanished".into())),
    }
}

/// Remove a route service binding; the apps of its route, to resync.
pub async fn unbind_route_service(s: &AppState, b: &RouteBinding) -> ApiResult<Vec<String>> {
    let mut tx = store::begin(&s.db).await?;
    store::route_bindings::delete(&mut tx, &b.guid).await?;
    let apps = store::routes::apps_of(&mut *tx, &b.route_guid).await?;
    tx.commit().await?;
    Ok(apps)
}

/// The apps of every route bound to `instance`: those to resync after its `route_service_url`
/// changed (an app once per route).
pub async fn apps_behind_instance(s: &AppState, instance: &str) -> ApiResult<Vec<String>> {
    let mut apps = Vec::new();
    for b in store::route_bindings::of_instance(&s.db.pool, instance).await? {
        apps.extend(store::routes::apps_of(&s.db.pool, &b.route_guid).await?);
    }
    Ok(apps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_paths_are_checked() {
        assert!(check_host("my-app").is_ok());
        assert!(check_host("*").is_ok());
        assert!(check_host("-bad").is_err());
        assert!(check_host("a_b").is_err());
        assert!(check_path("").is_ok());
        assert!(check_path("/api").is_ok());
        assert!(check_path("/").is_err());
        assert!(check_path("api").is_err());
        assert!(check_path("/a?b").is_err());
    }
}
