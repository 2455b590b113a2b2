//! The `service_brokers`, `service_offerings`, `service_plans` and `service_plan_orgs`
//! tables: brokers with the offerings and plans their catalogs hold, and which orgs see a
//! plan of `organization` visibility.

use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::AnyConnection;
use sqlx::Row as _;

use super::{decode, json_col, to_json, unique_or, Exec};
use crate::error::{ApiError, ApiResult};

#[derive(Debug, Clone)]
pub struct Broker {
    pub guid: String,
    pub name: String,
    pub url: String,
    pub username: String,
    pub password: String,
    /// Empty for a global broker.
    pub space_guid: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Broker {
    fn from_row(r: &AnyRow) -> ApiResult<Self> {
        Ok(Self {
            guid: r.try_get("guid")?,
            name: r.try_get("name")?,
            url: r.try_get("url")?,
            username: r.try_get("username")?,
            password: r.try_get("password")?,
            space_guid: r.try_get("space_guid")?,
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
        })
    }
}

#[derive(Debug, Clone)]
pub struct Offering {
    pub guid: String,
    pub broker_guid: String,
    pub catalog_id: String,
    pub name: String,
    pub description: String,
    pub bindable: bool,
    pub plan_updateable: bool,
    pub instances_retrievable: bool,
    pub bindings_retrievable: bool,
    pub shareable: bool,
    pub tags: Vec<String>,
    pub requires: Vec<String>,
    pub extra: Value,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Offering {
    fn from_row(r: &AnyRow) -> ApiResult<Self> {
        const T: &str = "service_offerings";
        Ok(Self {
            guid: r.try_get("guid")?,
            broker_guid: r.try_get("broker_guid")?,
            catalog_id: r.try_get("catalog_id")?,
            name: r.try_get("name")?,
            description: r.try_get("description")?,
            bindable: r.try_get::<i64, _>("bindable")? != 0,
            plan_updateable: r.try_get::<i64, _>("plan_updateable")? != 0,
            instances_retrievable: r.try_get::<i64, _>("instances_retrievable")? != 0,
            bindings_retrievable: r.try_get::<i64, _>("bindings_retrievable")? != 0,
            shareable: r.try_get::<i64, _>("shareable")? != 0,
            tags: json_col(r, T, "tags")?,
            requires: json_col(r, T, "requires")?,
            extra: json_col(r, T, "extra")?,
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
        })
    }
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub guid: String,
    pub offering_guid: String,
    pub catalog_id: String,
    pub name: String,
    pub description: String,
    pub free: bool,
    pub bindable: bool,
    pub plan_updateable: bool,
    pub extra: Value,
    /// `admin`, `public`, `organization` or `space`.
    pub visibility: String,
    /// In the broker's catalog (false: kept only for the instances that use it).
    pub active: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Plan {
    fn from_row(r: &AnyRow) -> ApiResult<Self> {
        Ok(Self {
            guid: r.try_get("guid")?,
            offering_guid: r.try_get("offering_guid")?,
            catalog_id: r.try_get("catalog_id")?,
            name: r.try_get("name")?,
            description: r.try_get("description")?,
            free: r.try_get::<i64, _>("free")? != 0,
            bindable: r.try_get::<i64, _>("bindable")? != 0,
            plan_updateable: r.try_get::<i64, _>("plan_updateable")? != 0,
            extra: json_col(r, "service_plans", "extra")?,
            visibility: r.try_get("visibility")?,
            active: r.try_get::<i64, _>("active")? != 0,
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
        })
    }
}

pub async fn find_broker<'e>(ex: impl Exec<'e>, guid: &str) -> ApiResult<Option<Broker>> {
    let row = sqlx::query("SELECT * FROM service_brokers WHERE guid = $1")
        .bind(guid)
        .fetch_optional(ex)
        .await?;
    row.as_ref().map(Broker::from_row).transpose()
}

/// Every broker, by name.
pub async fn all_brokers<'e>(ex: impl Exec<'e>) -> ApiResult<Vec<Broker>> {
    let rows = sqlx::query("SELECT * FROM service_brokers ORDER BY name").fetch_all(ex).await?;
    decode(&rows, Broker::from_row)
}

/// A new broker; `taken()` when its name is in use.
pub async fn insert_broker<'e>(
    ex: impl Exec<'e>,
    b: &Broker,
    taken: impl FnOnce() -> ApiError,
) -> ApiResult<()> {
    let res = sqlx::query(
        "INSERT INTO service_brokers (guid, name, url, username, password, space_guid, \
         created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&b.guid)
    .bind(&b.name)
    .bind(&b.url)
    .bind(&b.username)
    .bind(&b.password)
    .bind(&b.space_guid)
    .bind(b.created_at)
    .bind(b.updated_at)
    .execute(ex)
    .await;
    unique_or(res, taken).map(|_| ())
}

/// Write a broker's name, URL and credentials back; `taken()` when the name is in use.
pub async fn update_broker<'e>(
    ex: impl Exec<'e>,
    b: &Broker,
    taken: impl FnOnce() -> ApiError,
) -> ApiResult<()> {
    let res = sqlx::query(
        "UPDATE service_brokers SET name = $1, url = $2, username = $3, password = $4, \
         updated_at = $5 WHERE guid = $6",
    )
    .bind(&b.name)
    .bind(&b.url)
    .bind(&b.username)
    .bind(&b.password)
    .bind(b.updated_at)
    .bind(&b.guid)
    .execute(ex)
    .await;
    unique_or(res, taken).map(|_| ())
}

/// A broker with its offerings, plans and their visibilities (several statements: pass
/// `&mut tx`).
pub async fn delete_broker_rows(conn: &mut AnyConnection, guid: &str) -> ApiResult<()> {
    const OFFERINGS: &str = "SELECT guid FROM service_offerings WHERE broker_guid = $1";
    for sql in [
        format!(
            "DELETE FROM service_plan_orgs WHERE plan_guid IN \
             (SELECT guid FROM service_plans WHERE offering_guid IN ({OFFERINGS}))"
        ),
        format!("DELETE FROM resource_metadata WHERE resource_guid IN (SELECT guid FROM service_plans WHERE offering_guid IN ({OFFERINGS}))"),
        format!("DELETE FROM service_plans WHERE offering_guid IN ({OFFERINGS})"),
        format!("DELETE FROM resource_metadata WHERE resource_guid IN ({OFFERINGS})"),
        "DELETE FROM service_offerings WHERE broker_guid = $1".to_owned(),
        "DELETE FROM resource_metadata WHERE resource_guid = $1".to_owned(),
        "DELETE FROM service_brokers WHERE guid = $1".to_owned(),
    ] {
        sqlx::query(&sql).bind(guid).execute(&mut *conn).await?;
    }
    Ok(())
}

/// How many service instances use a plan of the broker.
pub async fn instances_of_broker<'e>(ex: impl Exec<'e>, guid: &str) -> ApiResult<i64> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n FROM service_instances si \
         JOIN service_plans p ON p.guid = si.plan_guid \
         JOIN service_offerings o ON o.guid = p.offering_guid WHERE o.broker_guid = $1",
    )
    .bind(guid)
    .fetch_one(ex)
    .await?;
    Ok(row.try_get("n")?)
}

pub async fn find_offering<'e>(ex: impl Exec<'e>, guid: &str) -> ApiResult<Option<Offering>> {
    let row = sqlx::query("SELECT * FROM service_offerings WHERE guid = $1")
        .bind(guid)
        .fetch_optional(ex)
        .await?;
    row.as_ref().map(Offering::from_row).transpose()
}

/// Every offering, by name then guid.
pub async fn all_offerings<'e>(ex: impl Exec<'e>) -> ApiResult<Vec<Offering>> {
    let rows =
        sqlx::query("SELECT * FROM service_offerings ORDER BY name, guid").fetch_all(ex).await?;
    decode(&rows, Offering::from_row)
}

pub async fn find_plan<'e>(ex: impl Exec<'e>, guid: &str) -> ApiResult<Option<Plan>> {
    let row = sqlx::query("SELECT * FROM service_plans WHERE guid = $1")
        .bind(guid)
        .fetch_optional(ex)
        .await?;
    row.as_ref().map(Plan::from_row).transpose()
}

/// Every plan, by name then guid.
pub async fn all_plans<'e>(ex: impl Exec<'e>) -> ApiResult<Vec<Plan>> {
    let rows = sqlx::query("SELECT * FROM service_plans ORDER BY name, guid").fetch_all(ex).await?;
    decode(&rows, Plan::from_row)
}

/// Every `(plan, org)` of `organization` visibilities.
pub async fn all_plan_orgs<'e>(ex: impl Exec<'e>) -> ApiResult<Vec<(String, String)>> {
    let rows = sqlx::query("SELECT plan_guid, org_guid FROM service_plan_orgs ORDER BY org_guid")
        .fetch_all(ex)
        .await?;
    decode(&rows, |r| Ok((r.try_get("plan_guid")?, r.try_get("org_guid")?)))
}

/// Insert or update an offering found in a catalog (matched on broker and catalog id); the
/// guid it has.
pub async fn upsert_offering(conn: &mut AnyConnection, o: &Offering) -> ApiResult<String> {
    let existing = sqlx::query(
        "SELECT guid FROM service_offerings WHERE broker_guid = $1 AND catalog_id = $2",
    )
    .bind(&o.broker_guid)
    .bind(&o.catalog_id)
    .fetch_optional(&mut *conn)
    .await?;
    let guid = match existing {
        Some(r) => r.try_get::<String, _>("guid")?,
        None => {
            sqlx::query(
                "INSERT INTO service_offerings (guid, broker_guid, catalog_id, name, created_at, \
                 updated_at) VALUES ($1, $2, $3, $4, $5, $5)",
            )
            .bind(&o.guid)
            .bind(&o.broker_guid)
            .bind(&o.catalog_id)
            .bind(&o.name)
            .bind(o.created_at)
            .execute(&mut *conn)
            .await?;
            o.guid.clone()
        }
    };
    sqlx::query(
        "UPDATE service_offerings SET name = $1, description = $2, bindable = $3, \
         plan_updateable = $4, instances_retrievable = $5, bindings_retrievable = $6, \
         shareable = $7, tags = $8, requires = $9, extra = $10, updated_at = $11 WHERE guid = $12",
    )
    .bind(&o.name)
    .bind(&o.description)
    .bind(i64::from(o.bindable))
    .bind(i64::from(o.plan_updateable))
    .bind(i64::from(o.instances_retrievable))
    .bind(i64::from(o.bindings_retrievable))
    .bind(i64::from(o.shareable))
    .bind(to_json(&o.tags))
    .bind(to_json(&o.requires))
    .bind(to_json(&o.extra))
    .bind(o.updated_at)
    .bind(&guid)
    .execute(&mut *conn)
    .await?;
    Ok(guid)
}

/// Insert or update a plan found in a catalog (matched on offering and catalog id; a new
/// plan gets `p.visibility`, an existing one keeps its own); the guid it has.
pub async fn upsert_plan(conn: &mut AnyConnection, p: &Plan) -> ApiResult<String> {
    let existing =
        sqlx::query("SELECT guid FROM service_plans WHERE offering_guid = $1 AND catalog_id = $2")
            .bind(&p.offering_guid)
            .bind(&p.catalog_id)
            .fetch_optional(&mut *conn)
            .await?;
    let guid = match existing {
        Some(r) => r.try_get::<String, _>("guid")?,
        None => {
            sqlx::query(
                "INSERT INTO service_plans (guid, offering_guid, catalog_id, name, visibility, \
                 created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6)",
            )
            .bind(&p.guid)
            .bind(&p.offering_guid)
            .bind(&p.catalog_id)
            .bind(&p.name)
            .bind(&p.visibility)
            .bind(p.created_at)
            .execute(&mut *conn)
            .await?;
            p.guid.clone()
        }
    };
    sqlx::query(
        "UPDATE service_plans SET name = $1, description = $2, free = $3, bindable = $4, \
         plan_updateable = $5, extra = $6, updated_at = $7, active = 1 WHERE guid = $8",
    )
    .bind(&p.name)
    .bind(&p.description)
    .bind(i64::from(p.free))
    .bind(i64::from(p.bindable))
    .bind(i64::from(p.plan_updateable))
    .bind(to_json(&p.extra))
    .bind(p.updated_at)
    .bind(&guid)
    .execute(&mut *conn)
    .await?;
    Ok(guid)
}

/// Remove the broker's plans and offerings not in `keep` that no instance uses; those that
/// instances still use stay, no longer active (several statements: pass `&mut tx`).
pub async fn prune(
    conn: &mut AnyConnection,
    broker: &str,
    keep_offerings: &[String],
    keep_plans: &[String],
    now: i64,
) -> ApiResult<()> {
    let plans = sqlx::query(
        "SELECT p.guid, (SELECT COUNT(*) FROM service_instances si WHERE si.plan_guid = p.guid) \
         AS used FROM service_plans p JOIN service_offerings o ON o.guid = p.offering_guid \
         WHERE o.broker_guid = $1",
    )
    .bind(broker)
    .fetch_all(&mut *conn)
    .await?;
    for r in plans {
        let guid: String = r.try_get("guid")?;
        if keep_plans.contains(&guid) {
            continue;
        }
        if r.try_get::<i64, _>("used")? > 0 {
            sqlx::query(
                "UPDATE service_plans SET active = 0, updated_at = $1 WHERE guid = $2 AND active = 1",
            )
            .bind(now)
            .bind(&guid)
            .execute(&mut *conn)
            .await?;
        } else {
            delete_plan_rows(&mut *conn, &guid).await?;
        }
    }
    let offerings = sqlx::query(
        "SELECT o.guid FROM service_offerings o WHERE o.broker_guid = $1 AND NOT EXISTS \
         (SELECT 1 FROM service_plans p WHERE p.offering_guid = o.guid)",
    )
    .bind(broker)
    .fetch_all(&mut *conn)
    .await?;
    for r in offerings {
        let guid: String = r.try_get("guid")?;
        if !keep_offerings.contains(&guid) {
            delete_offering_rows(&mut *conn, &guid).await?;
        }
    }
    Ok(())
}

/// A plan with its visibilities, labels and annotations (several statements: pass `&mut tx`).
pub async fn delete_plan_rows(conn: &mut AnyConnection, guid: &str) -> ApiResult<()> {
    for sql in [
        "DELETE FROM service_plan_orgs WHERE plan_guid = $1",
        "DELETE FROM resource_metadata WHERE resource_guid = $1",
        "DELETE FROM service_plans WHERE guid = $1",
    ] {
        sqlx::query(sql).bind(guid).execute(&mut *conn).await?;
    }
    Ok(())
}

/// An offering with its plans, their visibilities, labels and annotations (its plans' instances
/// must be gone first; several statements: pass `&mut tx`).
pub async fn delete_offering_rows(conn: &mut AnyConnection, guid: &str) -> ApiResult<()> {
    let plans = sqlx::query("SELECT guid FROM service_plans WHERE offering_guid = $1")
        .bind(guid)
        .fetch_all(&mut *conn)
        .await?;
    for r in plans {
        let plan: String = r.try_get("guid")?;
        delete_plan_rows(&mut *conn, &plan).await?;
    }
    for sql in [
        "DELETE FROM resource_metadata WHERE resource_guid = $1",
        "DELETE FROM service_offerings WHERE guid = $1",
    ] {
        sqlx::query(sql).bind(guid).execute(&mut *conn).await?;
    }
    Ok(())
}

/// The guids of the service instances of a plan.
pub async fn instances_of_plan<'e>(ex: impl Exec<'e>, plan: &str) -> ApiResult<Vec<String>> {
    let rows = sqlx::query("SELECT guid FROM service_instances WHERE plan_guid = $1 ORDER BY guid")
        .bind(plan)
        .fetch_all(ex)
        .await?;
    decode(&rows, |r| Ok(r.try_get("guid")?))
}

/// The guids of the service instances of an offering's plans.
pub async fn instances_of_offering<'e>(
    ex: impl Exec<'e>,
    offering: &str,
) -> ApiResult<Vec<String>> {
    let rows = sqlx::query(
        "SELECT si.guid FROM service_instances si JOIN service_plans p ON p.guid = si.plan_guid \
         WHERE p.offering_guid = $1 ORDER BY si.guid",
    )
    .bind(offering)
    .fetch_all(ex)
    .await?;
    decode(&rows, |r| Ok(r.try_get("guid")?))
}

/// Set a plan's visibility; with `orgs`, add them (after removing the others when
/// `replace`). Without, the plan's org list is cleared (several statements: pass `&mut tx`).
pub async fn set_visibility(
    conn: &mut AnyConnection,
    plan: &str,
    visibility: &str,
    orgs: &[String],
    replace: bool,
    now: i64,
) -> ApiResult<()> {
    if replace || visibility != "organization" {
        sqlx::query("DELETE FROM service_plan_orgs WHERE plan_guid = $1")
            .bind(plan)
            .execute(&mut *conn)
            .await?;
    }
    for org in orgs {
        sqlx::query(
            "INSERT INTO service_plan_orgs (plan_guid, org_guid) SELECT $1, $2 WHERE NOT EXISTS \
             (SELECT 1 FROM service_plan_orgs WHERE plan_guid = $1 AND org_guid = $2)",
        )
        .bind(plan)
        .bind(org)
        .execute(&mut *conn)
        .await?;
    }
    sqlx::query("UPDATE service_plans SET visibility = $1, updated_at = $2 WHERE guid = $3")
        .bind(visibility)
        .bind(now)
        .bind(plan)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Take one org off a plan's `organization` visibility.
pub async fn remove_plan_org<'e>(ex: impl Exec<'e>, plan: &str, org: &str) -> ApiResult<bool> {
    let res = sqlx::query("DELETE FROM service_plan_orgs WHERE plan_guid = $1 AND org_guid = $2")
        .bind(plan)
        .bind(org)
        .execute(ex)
        .await?;
    Ok(res.rows_affected() > 0)
}
