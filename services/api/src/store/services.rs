//! The `service_instances` and `service_bindings` tables: user-provided service instances
//! (credentials and tags as JSON text) and their bindings to apps. Labels and annotations of
//! both live in `resource_metadata` and go with them.

use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::AnyConnection;
use sqlx::Row as _;

use super::{decode, json_col, to_json, unique_or, Exec, Select, Window};
use crate::error::{ApiError, ApiResult};

#[derive(Debug, Clone)]
pub struct Instance {
    pub guid: String,
    pub name: String,
    pub space_guid: String,
    pub credentials: Value,
    pub tags: Vec<String>,
    pub syslog_drain_url: String,
    pub route_service_url: String,
    /// `user-provided` or `managed`.
    pub kind: String,
    /// Managed instances: the plan, the parameters given, the broker's dashboard.
    pub plan_guid: String,
    pub parameters: Value,
    pub dashboard_url: String,
    /// Managed instances: the plan's `maintenance_info` it was made or last upgraded with
    /// (`{}`: none).
    pub maintenance_info: Value,
    /// The last operation of a managed instance (empty type: none).
    pub op: Operation,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The last operation of a managed instance or binding: `type` (create, update, delete),
/// `state` (initial, in progress, succeeded, failed), what the broker said, the broker's
/// operation to poll with, and when it last changed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Operation {
    pub kind: String,
    pub state: String,
    pub description: String,
    pub broker_operation: String,
    pub updated_at: i64,
}

impl Instance {
    pub fn managed(&self) -> bool {
        self.kind == "managed"
    }

    fn from_row(r: &AnyRow) -> ApiResult<Self> {
        Ok(Self {
            guid: r.try_get("guid")?,
            name: r.try_get("name")?,
            space_guid: r.try_get("space_guid")?,
            credentials: json_col(r, "service_instances", "credentials")?,
            tags: json_col(r, "service_instances", "tags")?,
            syslog_drain_url: r.try_get("syslog_drain_url")?,
            route_service_url: r.try_get("route_service_url")?,
            kind: r.try_get("kind")?,
            plan_guid: r.try_get("plan_guid")?,
            parameters: json_col(r, "service_instances", "parameters")?,
            dashboard_url: r.try_get("dashboard_url")?,
            maintenance_info: json_col(r, "service_instances", "maintenance_info")?,
            op: Operation {
                kind: r.try_get("op_type")?,
                state: r.try_get("op_state")?,
                description: r.try_get("op_description")?,
                broker_operation: r.try_get("op_broker")?,
                updated_at: r.try_get("op_updated_at")?,
            },
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
        })
    }
}

/// A binding of an instance to an app (a "service credential binding" of type `app`) or a
/// service key (type `key`, no app).
#[derive(Debug, Clone)]
pub struct Binding {
    pub guid: String,
    /// `app` or `key`.
    pub kind: String,
    /// Empty when the binding has no name.
    pub name: String,
    /// Empty for a key.
    pub app_guid: String,
    pub instance_guid: String,
    /// The broker's credentials (managed instances); `None`: the instance's.
    pub credentials: Option<Value>,
    pub parameters: Value,
    pub op: Operation,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Binding {
    fn from_row(r: &AnyRow) -> ApiResult<Self> {
        Ok(Self {
            guid: r.try_get("guid")?,
            kind: r.try_get("kind")?,
            name: r.try_get("name")?,
            app_guid: r.try_get("app_guid")?,
            instance_guid: r.try_get("instance_guid")?,
            credentials: {
                let raw: String = r.try_get("credentials")?;
                if raw.is_empty() {
                    None
                } else {
                    Some(json_col(r, "service_bindings", "credentials")?)
                }
            },
            parameters: json_col(r, "service_bindings", "parameters")?,
            op: Operation {
                kind: r.try_get("op_type")?,
                state: r.try_get("op_state")?,
                description: r.try_get("op_description")?,
                broker_operation: String::new(),
                updated_at: r.try_get("updated_at")?,
            },
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
        })
    }
}

/// An app's binding with its instance, for `VCAP_SERVICES`.
#[derive(Debug, Clone)]
pub struct BoundInstance {
    pub binding_guid: String,
    /// Empty when the binding has no name.
    pub binding_name: String,
    /// The broker's credentials for the binding (managed instances).
    pub credentials: Option<Value>,
    pub instance: Instance,
}

/// A binding whose instance has a syslog drain URL, with the names the drain's HOSTNAME is
/// made of.
#[derive(Debug, Clone)]
pub struct DrainBinding {
    pub binding_guid: String,
    pub app_guid: String,
    pub url: String,
    pub app_name: String,
    pub space_name: String,
    pub org_name: String,
}

pub async fn find<'e>(ex: impl Exec<'e>, guid: &str) -> ApiResult<Option<Instance>> {
    let row = sqlx::query("SELECT * FROM service_instances WHERE guid = $1")
        .bind(guid)
        .fetch_optional(ex)
        .await?;
    row.as_ref().map(Instance::from_row).transpose()
}

/// Every service instance, oldest first.
pub async fn all_instances<'e>(ex: impl Exec<'e>) -> ApiResult<Vec<Instance>> {
    let rows =
        sqlx::query("SELECT * FROM service_instances ORDER BY created_at").fetch_all(ex).await?;
    rows.iter().map(Instance::from_row).collect()
}

/// The instance named `name` in a space.
pub async fn find_in_space<'e>(
    ex: impl Exec<'e>,
    space: &str,
    name: &str,
) -> ApiResult<Option<Instance>> {
    let row = sqlx::query("SELECT * FROM service_instances WHERE space_guid = $1 AND name = $2")
        .bind(space)
        .bind(name)
        .fetch_optional(ex)
        .await?;
    row.as_ref().map(Instance::from_row).transpose()
}

/// The bindings of an app to managed instances.
pub async fn managed_bindings_of_app<'e>(ex: impl Exec<'e>, app: &str) -> ApiResult<Vec<Binding>> {
    let rows = sqlx::query(
        "SELECT b.* FROM service_bindings b JOIN service_instances si \
         ON si.guid = b.instance_guid WHERE b.app_guid = $1 AND si.kind = 'managed' \
         ORDER BY b.created_at, b.guid",
    )
    .bind(app)
    .fetch_all(ex)
    .await?;
    decode(&rows, Binding::from_row)
}

/// The managed instances of a space.
pub async fn managed_of_space<'e>(ex: impl Exec<'e>, space: &str) -> ApiResult<Vec<Instance>> {
    let rows = sqlx::query(
        "SELECT * FROM service_instances WHERE space_guid = $1 AND kind = 'managed' \
         ORDER BY created_at, guid",
    )
    .bind(space)
    .fetch_all(ex)
    .await?;
    decode(&rows, Instance::from_row)
}

/// Whether an app is bound to an instance.
pub async fn app_bound<'e>(ex: impl Exec<'e>, app: &str, instance: &str) -> ApiResult<bool> {
    let row = sqlx::query(
        "SELECT guid FROM service_bindings WHERE app_guid = $1 AND instance_guid = $2 \
         AND kind = 'app'",
    )
    .bind(app)
    .bind(instance)
    .fetch_optional(ex)
    .await?;
    Ok(row.is_some())
}

/// The instances with one of `guids`, in no particular order.
pub async fn find_all(db: &kit::db::Db, guids: &[String]) -> ApiResult<Vec<Instance>> {
    if guids.is_empty() {
        return Ok(Vec::new());
    }
    let mut sel = Select::from("service_instances");
    sel.any("guid", guids);
    decode(&sel.all_unordered(db).await?, Instance::from_row)
}

/// A list of instances, filters named `service_instances.<column>`.
pub fn select() -> Select {
    Select::from("service_instances")
}

/// Only instances of one of `spaces` or shared into one of them.
pub fn in_spaces_or_shared(sel: &mut Select, spaces: &[String]) {
    sel.any_or_sub(
        "service_instances.space_guid",
        "service_instances.guid",
        "SELECT instance_guid FROM service_instance_shares WHERE space_guid IN ({})",
        spaces,
    );
}

/// The spaces an instance is shared into, in the order they were added.
pub async fn shared_spaces<'e>(ex: impl Exec<'e>, instance: &str) -> ApiResult<Vec<String>> {
    let rows = sqlx::query(
        "SELECT space_guid FROM service_instance_shares WHERE instance_guid = $1 \
         ORDER BY created_at, space_guid",
    )
    .bind(instance)
    .fetch_all(ex)
    .await?;
    decode(&rows, |r| Ok(r.try_get("space_guid")?))
}

/// Share an instance into a space (nothing when it is already).
pub async fn share<'e>(ex: impl Exec<'e>, instance: &str, space: &str, now: i64) -> ApiResult<()> {
    sqlx::query(
        "INSERT INTO service_instance_shares (instance_guid, space_guid, created_at) \
         SELECT $1, $2, $3 WHERE NOT EXISTS (SELECT 1 FROM service_instance_shares \
         WHERE instance_guid = $1 AND space_guid = $2)",
    )
    .bind(instance)
    .bind(space)
    .bind(now)
    .execute(ex)
    .await?;
    Ok(())
}

/// Stop sharing an instance into a space; whether it was.
pub async fn unshare<'e>(ex: impl Exec<'e>, instance: &str, space: &str) -> ApiResult<bool> {
    let res = sqlx::query(
        "DELETE FROM service_instance_shares WHERE instance_guid = $1 AND space_guid = $2",
    )
    .bind(instance)
    .bind(space)
    .execute(ex)
    .await?;
    Ok(res.rows_affected() > 0)
}

/// Every share into a space (its deletion).
pub async fn unshare_space<'e>(ex: impl Exec<'e>, space: &str) -> ApiResult<()> {
    sqlx::query("DELETE FROM service_instance_shares WHERE space_guid = $1")
        .bind(space)
        .execute(ex)
        .await?;
    Ok(())
}

/// The bindings of a space's apps to managed instances (of any space).
pub async fn managed_bindings_of_space_apps<'e>(
    ex: impl Exec<'e>,
    space: &str,
) -> ApiResult<Vec<Binding>> {
    let rows = sqlx::query(
        "SELECT b.* FROM service_bindings b JOIN service_instances si \
         ON si.guid = b.instance_guid JOIN apps ap ON ap.guid = b.app_guid \
         WHERE ap.space_guid = $1 AND si.kind = 'managed' ORDER BY b.created_at, b.guid",
    )
    .bind(space)
    .fetch_all(ex)
    .await?;
    decode(&rows, Binding::from_row)
}

/// Only instances of spaces in one of `orgs`.
pub fn in_orgs(sel: Select, orgs: &[String]) -> Select {
    let mut sel = sel.join("JOIN spaces sp ON sp.guid = service_instances.space_guid");
    sel.any("sp.org_guid", orgs);
    sel
}

/// One page of a list of instances.
pub async fn page(
    db: &kit::db::Db,
    sel: &Select,
    window: &Window,
) -> ApiResult<(i64, Vec<Instance>)> {
    sel.page_of(db, window, Instance::from_row).await
}

/// A new instance; `taken()` when its name is in use in the space.
pub async fn insert<'e>(
    ex: impl Exec<'e>,
    i: &Instance,
    taken: impl FnOnce() -> ApiError,
) -> ApiResult<()> {
    let res = sqlx::query(
        "INSERT INTO service_instances (guid, name, space_guid, credentials, tags, \
         syslog_drain_url, route_service_url, created_at, updated_at, kind, plan_guid, \
         parameters, dashboard_url, op_type, op_state, op_description, op_broker, op_updated_at, \
         maintenance_info) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, \
         $19)",
    )
    .bind(&i.guid)
    .bind(&i.name)
    .bind(&i.space_guid)
    .bind(to_json(&i.credentials))
    .bind(to_json(&i.tags))
    .bind(&i.syslog_drain_url)
    .bind(&i.route_service_url)
    .bind(i.created_at)
    .bind(i.updated_at)
    .bind(&i.kind)
    .bind(&i.plan_guid)
    .bind(to_json(&i.parameters))
    .bind(&i.dashboard_url)
    .bind(&i.op.kind)
    .bind(&i.op.state)
    .bind(&i.op.description)
    .bind(&i.op.broker_operation)
    .bind(i.op.updated_at)
    .bind(to_json(&i.maintenance_info))
    .execute(ex)
    .await;
    unique_or(res, taken).map(|_| ())
}

/// Set a managed instance's last operation.
pub async fn set_operation<'e>(ex: impl Exec<'e>, guid: &str, op: &Operation) -> ApiResult<()> {
    sqlx::query(
        "UPDATE service_instances SET op_type = $1, op_state = $2, op_description = $3, \
         op_broker = $4, op_updated_at = $5 WHERE guid = $6",
    )
    .bind(&op.kind)
    .bind(&op.state)
    .bind(&op.description)
    .bind(&op.broker_operation)
    .bind(op.updated_at)
    .bind(guid)
    .execute(ex)
    .await?;
    Ok(())
}

/// Managed instances whose operation is in progress with no job running it (its api stopped
/// or died) and unchanged since before `before` (ms): an operation being started has its job
/// within moments.
pub async fn orphaned<'e>(ex: impl Exec<'e>, before: i64) -> ApiResult<Vec<Instance>> {
    let rows = sqlx::query(
        "SELECT * FROM service_instances i WHERE kind = 'managed' AND op_state = 'in progress' \
         AND op_updated_at < $1 AND NOT EXISTS (SELECT 1 FROM jobs j \
         WHERE j.resource_guid = i.guid AND j.state = 'PROCESSING') ORDER BY created_at, guid",
    )
    .bind(before)
    .fetch_all(ex)
    .await?;
    decode(&rows, Instance::from_row)
}

/// Take an orphaned instance's operation over: true for the one api whose update finds it
/// as it was read (`seen`: its `op_updated_at`), so two apis never both take it.
pub async fn take_over<'e>(ex: impl Exec<'e>, guid: &str, seen: i64, now: i64) -> ApiResult<bool> {
    let res = sqlx::query(
        "UPDATE service_instances SET op_updated_at = $1 \
         WHERE guid = $2 AND op_state = 'in progress' AND op_updated_at = $3",
    )
    .bind(now)
    .bind(guid)
    .bind(seen)
    .execute(ex)
    .await?;
    Ok(res.rows_affected() == 1)
}

/// Fail the bindings in progress with no job running them (their api stopped or died),
/// unchanged since before `before` (ms).
pub async fn fail_orphaned_bindings<'e>(
    ex: impl Exec<'e>,
    description: &str,
    now: i64,
    before: i64,
) -> ApiResult<u64> {
    let res = sqlx::query(
        "UPDATE service_bindings SET op_state = 'failed', op_description = $1, updated_at = $2 \
         WHERE op_state = 'in progress' AND updated_at < $3 AND NOT EXISTS (SELECT 1 FROM jobs \
         WHERE jobs.resource_guid = service_bindings.guid AND jobs.state = 'PROCESSING')",
    )
    .bind(description)
    .bind(now)
    .bind(before)
    .execute(ex)
    .await?;
    Ok(res.rows_affected())
}

/// What the broker holds of a managed instance: its plan, parameters, dashboard and
/// `maintenance_info`.
#[derive(Debug, Clone, Copy)]
pub struct Managed<'a> {
    pub plan: &'a str,
    pub parameters: &'a Value,
    pub dashboard_url: &'a str,
    pub maintenance_info: &'a Value,
}

/// Set a managed instance's plan, parameters, dashboard and `maintenance_info`.
pub async fn set_managed<'e>(
    ex: impl Exec<'e>,
    guid: &str,
    m: Managed<'_>,
    now: i64,
) -> ApiResult<()> {
    sqlx::query(
        "UPDATE service_instances SET plan_guid = $1, parameters = $2, dashboard_url = $3, \
         maintenance_info = $4, updated_at = $5 WHERE guid = $6",
    )
    .bind(m.plan)
    .bind(to_json(m.parameters))
    .bind(m.dashboard_url)
    .bind(to_json(m.maintenance_info))
    .bind(now)
    .bind(guid)
    .execute(ex)
    .await?;
    Ok(())
}

/// Set a binding's credentials and last operation.
pub async fn settle_binding<'e>(
    ex: impl Exec<'e>,
    guid: &str,
    credentials: Option<&Value>,
    op: &Operation,
) -> ApiResult<()> {
    sqlx::query(
        "UPDATE service_bindings SET credentials = $1, op_type = $2, op_state = $3, \
         op_description = $4, updated_at = $5 WHERE guid = $6",
    )
    .bind(credentials.map(to_json).unwrap_or_default())
    .bind(&op.kind)
    .bind(&op.state)
    .bind(&op.description)
    .bind(op.updated_at)
    .bind(guid)
    .execute(ex)
    .await?;
    Ok(())
}

/// The bindings (apps and keys) of an instance.
pub async fn bindings_of<'e>(ex: impl Exec<'e>, instance: &str) -> ApiResult<Vec<Binding>> {
    let rows = sqlx::query(
        "SELECT * FROM service_bindings WHERE instance_guid = $1 ORDER BY created_at, guid",
    )
    .bind(instance)
    .fetch_all(ex)
    .await?;
    decode(&rows, Binding::from_row)
}

/// Write an instance's fields back; `taken()` when its new name is in use in the space.
pub async fn update<'e>(
    ex: impl Exec<'e>,
    i: &Instance,
    taken: impl FnOnce() -> ApiError,
) -> ApiResult<()> {
    let res = sqlx::query(
        "UPDATE service_instances SET name = $1, credentials = $2, tags = $3, \
         syslog_drain_url = $4, route_service_url = $5, updated_at = $6 WHERE guid = $7",
    )
    .bind(&i.name)
    .bind(to_json(&i.credentials))
    .bind(to_json(&i.tags))
    .bind(&i.syslog_drain_url)
    .bind(&i.route_service_url)
    .bind(i.updated_at)
    .bind(&i.guid)
    .execute(ex)
    .await;
    unique_or(res, taken).map(|_| ())
}

/// An instance with its bindings to routes and apps, and the labels and annotations of all
/// of them (several statements: pass `&mut tx`).
pub async fn delete_instance_rows(conn: &mut AnyConnection, guid: &str) -> ApiResult<()> {
    const ROUTE_BINDINGS: &str =
        "SELECT guid FROM service_route_bindings WHERE service_instance_guid = $1";
    const BINDINGS: &str = "SELECT guid FROM service_bindings WHERE instance_guid = $1";
    for sql in [
        format!("DELETE FROM resource_metadata WHERE resource_guid IN ({ROUTE_BINDINGS})"),
        "DELETE FROM service_route_bindings WHERE service_instance_guid = $1".to_owned(),
        format!("DELETE FROM resource_metadata WHERE resource_guid IN ({BINDINGS})"),
        "DELETE FROM service_bindings WHERE instance_guid = $1".to_owned(),
        "DELETE FROM service_instance_shares WHERE instance_guid = $1".to_owned(),
        "DELETE FROM resource_metadata WHERE resource_guid = $1".to_owned(),
        "DELETE FROM service_instances WHERE guid = $1".to_owned(),
    ] {
        sqlx::query(&sql).bind(guid).execute(&mut *conn).await?;
    }
    Ok(())
}

pub async fn find_binding<'e>(ex: impl Exec<'e>, guid: &str) -> ApiResult<Option<Binding>> {
    let row = sqlx::query("SELECT * FROM service_bindings WHERE guid = $1")
        .bind(guid)
        .fetch_optional(ex)
        .await?;
    row.as_ref().map(Binding::from_row).transpose()
}

/// A list of bindings joined with their instances (`si`) and apps (`ap`), filters named
/// `service_bindings.<column>`, `si.<column>` or `ap.<column>`.
pub fn select_bindings() -> Select {
    Select::from("service_bindings")
        .join("JOIN service_instances si ON si.guid = service_bindings.instance_guid")
        .join("LEFT JOIN apps ap ON ap.guid = service_bindings.app_guid")
}

/// One page of a list of bindings.
pub async fn page_bindings(
    db: &kit::db::Db,
    sel: &Select,
    window: &Window,
) -> ApiResult<(i64, Vec<Binding>)> {
    sel.page_of(db, window, Binding::from_row).await
}

/// A new binding; `taken()` when the app is bound to the instance already.
pub async fn insert_binding<'e>(
    ex: impl Exec<'e>,
    b: &Binding,
    taken: impl FnOnce() -> ApiError,
) -> ApiResult<()> {
    let res = sqlx::query(
        "INSERT INTO service_bindings (guid, name, app_guid, instance_guid, created_at, \
         updated_at, kind, credentials, parameters, op_type, op_state, op_description) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(&b.guid)
    .bind(&b.name)
    .bind(&b.app_guid)
    .bind(&b.instance_guid)
    .bind(b.created_at)
    .bind(b.updated_at)
    .bind(&b.kind)
    .bind(b.credentials.as_ref().map(to_json).unwrap_or_default())
    .bind(to_json(&b.parameters))
    .bind(&b.op.kind)
    .bind(&b.op.state)
    .bind(&b.op.description)
    .execute(ex)
    .await;
    unique_or(res, taken).map(|_| ())
}

/// A binding with its labels and annotations (two statements: pass `&mut tx`).
pub async fn delete_binding(conn: &mut AnyConnection, guid: &str) -> ApiResult<()> {
    sqlx::query("DELETE FROM resource_metadata WHERE resource_guid = $1")
        .bind(guid)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM service_bindings WHERE guid = $1")
        .bind(guid)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// An app's bindings with their instances, in the order they were made.
pub async fn bound_to_app<'e>(ex: impl Exec<'e>, app: &str) -> ApiResult<Vec<BoundInstance>> {
    let rows = sqlx::query(
        "SELECT b.guid AS binding_guid, b.name AS binding_name, \
         b.credentials AS binding_credentials, si.* FROM service_bindings b \
         JOIN service_instances si ON si.guid = b.instance_guid WHERE b.app_guid = $1 \
         AND b.kind = 'app' AND b.op_state = 'succeeded' ORDER BY b.created_at, b.guid",
    )
    .bind(app)
    .fetch_all(ex)
    .await?;
    decode(&rows, |r| {
        Ok(BoundInstance {
            binding_guid: r.try_get("binding_guid")?,
            binding_name: r.try_get("binding_name")?,
            credentials: {
                let raw: String = r.try_get("binding_credentials")?;
                if raw.is_empty() {
                    None
                } else {
                    Some(json_col(r, "service_bindings", "binding_credentials")?)
                }
            },
            instance: Instance::from_row(r)?,
        })
    })
}

/// Every binding whose instance has a syslog drain URL, by binding guid.
pub async fn drain_bindings<'e>(ex: impl Exec<'e>) -> ApiResult<Vec<DrainBinding>> {
    let rows = sqlx::query(
        "SELECT b.guid AS binding_guid, b.app_guid, si.syslog_drain_url, ap.name AS app_name, \
         sp.name AS space_name, o.name AS org_name FROM service_bindings b \
         JOIN service_instances si ON si.guid = b.instance_guid \
         JOIN apps ap ON ap.guid = b.app_guid \
         JOIN spaces sp ON sp.guid = ap.space_guid \
         JOIN organizations o ON o.guid = sp.org_guid \
         WHERE si.syslog_drain_url <> '' ORDER BY b.guid",
    )
    .fetch_all(ex)
    .await?;
    decode(&rows, |r| {
        Ok(DrainBinding {
            binding_guid: r.try_get("binding_guid")?,
            app_guid: r.try_get("app_guid")?,
            url: r.try_get("syslog_drain_url")?,
            app_name: r.try_get("app_name")?,
            space_name: r.try_get("space_name")?,
            org_name: r.try_get("org_name")?,
        })
    })
}
