//! The `service_route_bindings` table: a route bound to a service instance that has a
//! `route_service_url` (at most one binding per route). Labels and annotations of a binding
//! live in `resource_metadata` and go with it.

use sqlx::any::AnyRow;
use sqlx::AnyConnection;
use sqlx::Row as _;

use super::{decode, is_unique_violation, Exec, Select, Window};
use crate::error::ApiResult;

#[derive(Debug, Clone)]
pub struct RouteBinding {
    pub guid: String,
    pub route_guid: String,
    pub instance_guid: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl RouteBinding {
    fn from_row(r: &AnyRow) -> ApiResult<Self> {
        Ok(Self {
            guid: r.try_get("guid")?,
            route_guid: r.try_get("route_guid")?,
            instance_guid: r.try_get("service_instance_guid")?,
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
        })
    }
}

pub async fn find<'e>(ex: impl Exec<'e>, guid: &str) -> ApiResult<Option<RouteBinding>> {
    let row = sqlx::query("SELECT * FROM service_route_bindings WHERE guid = $1")
        .bind(guid)
        .fetch_optional(ex)
        .await?;
    row.as_ref().map(RouteBinding::from_row).transpose()
}

/// The binding of a route, if it has one.
pub async fn of_route<'e>(ex: impl Exec<'e>, route: &str) -> ApiResult<Option<RouteBinding>> {
    let row = sqlx::query("SELECT * FROM service_route_bindings WHERE route_guid = $1")
        .bind(route)
        .fetch_optional(ex)
        .await?;
    row.as_ref().map(RouteBinding::from_row).transpose()
}

/// The bindings of an instance in the order they were made.
pub async fn of_instance<'e>(ex: impl Exec<'e>, instance: &str) -> ApiResult<Vec<RouteBinding>> {
    let rows = sqlx::query(
        "SELECT * FROM service_route_bindings WHERE service_instance_guid = $1 \
         ORDER BY created_at, guid",
    )
    .bind(instance)
    .fetch_all(ex)
    .await?;
    decode(&rows, RouteBinding::from_row)
}

/// A list of bindings joined with their instances (`si`), filters named
/// `service_route_bindings.<column>` or `si.<column>`.
pub fn select() -> Select {
    Select::from("service_route_bindings")
        .join("JOIN service_instances si ON si.guid = service_route_bindings.service_instance_guid")
}

/// One page of a list of bindings.
pub async fn page(
    db: &kit::db::Db,
    sel: &Select,
    window: &Window,
) -> ApiResult<(i64, Vec<RouteBinding>)> {
    sel.page_of(db, window, RouteBinding::from_row).await
}

/// A new binding; `false` when the route is bound already.
pub async fn insert<'e>(ex: impl Exec<'e>, b: &RouteBinding) -> ApiResult<bool> {
    let res = sqlx::query(
        "INSERT INTO service_route_bindings (guid, route_guid, service_instance_guid, \
         created_at, updated_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&b.guid)
    .bind(&b.route_guid)
    .bind(&b.instance_guid)
    .bind(b.created_at)
    .bind(b.updated_at)
    .execute(ex)
    .await;
    match res {
        Err(e) if is_unique_violation(&e) => Ok(false),
        r => r.map(|_| true).map_err(Into::into),
    }
}

pub async fn set_updated_at<'e>(ex: impl Exec<'e>, guid: &str, updated_at: i64) -> ApiResult<()> {
    sqlx::query("UPDATE service_route_bindings SET updated_at = $1 WHERE guid = $2")
        .bind(updated_at)
        .bind(guid)
        .execute(ex)
        .await?;
    Ok(())
}

/// A binding with its labels and annotations (two statements: pass `&mut tx`).
pub async fn delete(conn: &mut AnyConnection, guid: &str) -> ApiResult<()> {
    sqlx::query("DELETE FROM resource_metadata WHERE resource_guid = $1")
        .bind(guid)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM service_route_bindings WHERE guid = $1")
        .bind(guid)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
