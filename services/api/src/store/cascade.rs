//! What a space or an org holds, read and removed across table families, for the one
//! transaction of a deletion (see `domain::deletion`). Removing rows here does nothing else:
//! instances, blobs and events are the domain's business, after the commit.

use sqlx::AnyConnection;
use sqlx::Row as _;

use super::Exec;
use crate::error::ApiResult;

async fn guids<'e>(ex: impl Exec<'e>, sql: &str, key: &str) -> ApiResult<Vec<String>> {
    let rows = sqlx::query(sql).bind(key).fetch_all(ex).await?;
    rows.iter().map(|r| Ok(r.try_get("guid")?)).collect()
}

/// `(guid, name)` of a space's apps.
pub async fn apps_of_space<'e>(ex: impl Exec<'e>, space: &str) -> ApiResult<Vec<(String, String)>> {
    let rows =
        sqlx::query("SELECT guid, name FROM apps WHERE space_guid = $1 ORDER BY created_at, guid")
            .bind(space)
            .fetch_all(ex)
            .await?;
    rows.iter().map(|r| Ok((r.try_get("guid")?, r.try_get("name")?))).collect()
}

pub async fn package_guids_of_app<'e>(ex: impl Exec<'e>, app: &str) -> ApiResult<Vec<String>> {
    guids(ex, "SELECT guid FROM packages WHERE app_guid = $1", app).await
}

pub async fn droplet_guids_of_app<'e>(ex: impl Exec<'e>, app: &str) -> ApiResult<Vec<String>> {
    guids(ex, "SELECT guid FROM droplets WHERE app_guid = $1", app).await
}

/// `(binding guid, route guid, instance guid)` of the route bindings of a space's service
/// instances.
pub async fn route_bindings_of_space<'e>(
    ex: impl Exec<'e>,
    space: &str,
) -> ApiResult<Vec<(String, String, String)>> {
    let rows = sqlx::query(
        "SELECT b.guid, b.route_guid, b.service_instance_guid AS instance_guid FROM service_route_bindings b \
         JOIN service_instances i ON i.guid = b.service_instance_guid WHERE i.space_guid = $1",
    )
    .bind(space)
    .fetch_all(ex)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("guid")?, r.try_get("route_guid")?, r.try_get("instance_guid")?)))
        .collect()
}

/// Apps outside `space` with a destination on one of its routes (they lose those routes).
pub async fn apps_routed_into_space<'e>(ex: impl Exec<'e>, space: &str) -> ApiResult<Vec<String>> {
    guids(
        ex,
        "SELECT DISTINCT d.app_guid AS guid FROM route_destinations d \
         JOIN routes r ON r.guid = d.route_guid JOIN apps a ON a.guid = d.app_guid \
         WHERE r.space_guid = $1 AND a.space_guid <> r.space_guid",
        space,
    )
    .await
}

/// Guids of an org's spaces.
pub async fn spaces_of_org<'e>(ex: impl Exec<'e>, org: &str) -> ApiResult<Vec<String>> {
    guids(ex, "SELECT guid FROM spaces WHERE org_guid = $1 ORDER BY created_at, guid", org).await
}

async fn run(c: &mut AnyConnection, sql: &str, key: &str) -> ApiResult<()> {
    sqlx::query(sql).bind(key).execute(&mut *c).await?;
    Ok(())
}

/// An app's rows: its bindings, destinations, deployments, revisions, processes, packages,
/// builds, droplets, labels and the app itself.
pub async fn delete_app(c: &mut AnyConnection, app: &str) -> ApiResult<()> {
    run(
        c,
        "DELETE FROM resource_metadata WHERE resource_guid IN \
         (SELECT guid FROM service_bindings WHERE app_guid = $1)",
        app,
    )
    .await?;
    run(
        c,
        "DELETE FROM resource_metadata WHERE resource_guid IN \
         (SELECT guid FROM deployments WHERE app_guid = $1 UNION SELECT guid FROM revisions WHERE app_guid = $1 \
         UNION SELECT guid FROM tasks WHERE app_guid = $1)",
        app,
    )
    .await?;
    for table in [
        "service_bindings",
        "route_destinations",
        "deployments",
        "revisions",
        "tasks",
        "processes",
        "packages",
        "builds",
        "droplets",
    ] {
        run(c, &format!("DELETE FROM {table} WHERE app_guid = $1"), app).await?;
    }
    run(c, "DELETE FROM resource_metadata WHERE resource_guid = $1", app).await?;
    run(c, "DELETE FROM apps WHERE guid = $1", app).await
}

/// Everything in a space and the space itself: apps (each as [`delete_app`]), service
/// instances with their bindings and route bindings, routes with their destinations, roles.
pub async fn delete_space(c: &mut AnyConnection, space: &str) -> ApiResult<()> {
    for (app, _) in apps_of_space(&mut *c, space).await? {
        delete_app(c, &app).await?;
    }
    let of_instances = "SELECT guid FROM service_instances WHERE space_guid = $1";
    let of_bindings =
        format!("SELECT guid FROM service_bindings WHERE instance_guid IN ({of_instances})");
    let of_route_bindings = format!(
        "SELECT guid FROM service_route_bindings WHERE service_instance_guid IN ({of_instances})"
    );
    let of_routes = "SELECT guid FROM routes WHERE space_guid = $1";
    for sql in [
        format!("DELETE FROM resource_metadata WHERE resource_guid IN ({of_route_bindings})"),
        format!(
            "DELETE FROM service_route_bindings WHERE service_instance_guid IN ({of_instances})"
        ),
        format!("DELETE FROM service_route_bindings WHERE route_guid IN ({of_routes})"),
        format!("DELETE FROM resource_metadata WHERE resource_guid IN ({of_bindings})"),
        format!("DELETE FROM service_bindings WHERE instance_guid IN ({of_instances})"),
        format!("DELETE FROM resource_metadata WHERE resource_guid IN ({of_instances})"),
        "DELETE FROM service_instances WHERE space_guid = $1".to_owned(),
        format!("DELETE FROM route_destinations WHERE route_guid IN ({of_routes})"),
        format!("DELETE FROM resource_metadata WHERE resource_guid IN ({of_routes})"),
        "DELETE FROM routes WHERE space_guid = $1".to_owned(),
        "DELETE FROM roles WHERE space_guid = $1".to_owned(),
        "DELETE FROM resource_metadata WHERE resource_guid = $1".to_owned(),
        "DELETE FROM spaces WHERE guid = $1".to_owned(),
    ] {
        run(c, &sql, space).await?;
    }
    Ok(())
}

/// An org with every space in it (each as [`delete_space`]), its roles and private domains.
pub async fn delete_org(c: &mut AnyConnection, org: &str) -> ApiResult<()> {
    for space in spaces_of_org(&mut *c, org).await? {
        delete_space(c, &space).await?;
    }
    for sql in [
        "DELETE FROM roles WHERE org_guid = $1",
        "DELETE FROM domain_shares WHERE org_guid = $1",
        "DELETE FROM domain_shares WHERE domain_guid IN (SELECT guid FROM domains WHERE org_guid = $1)",
        "DELETE FROM domains WHERE org_guid = $1",
        "DELETE FROM resource_metadata WHERE resource_guid = $1",
        "DELETE FROM organizations WHERE guid = $1",
    ] {
        run(c, sql, org).await?;
    }
    Ok(())
}
