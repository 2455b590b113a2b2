//! Organizations (contracts/ccapi.md §4.3): create (admins), list and get (members), update
//! (org managers), delete as a job that removes every space, app and route inside.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use sqlx::any::AnyRow;
use sqlx::Row as _;

use crate::access::Caller;
use crate::error::{ApiError, ApiResult};
use crate::http::events::{self, Actor, Target};
use crate::http::extract::body;
use crate::http::paging::ListQuery;
use crate::http::util::{check_name, link, metadata, ts};
use crate::store::Select;
use crate::store::{is_unique_violation, new_guid, now_ms};
use crate::AppState;

pub const DEFAULT_QUOTA: &str = "default";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v3/organizations", get(list).post(create))
        .route("/v3/organizations/{guid}", get(show).patch(update).delete(delete))
        .route("/v3/organizations/{guid}/domains/default", get(default_domain))
}

pub struct Org {
    pub guid: String,
    pub name: String,
    pub suspended: bool,
    pub quota_guid: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Org {
    fn from_row(r: &AnyRow) -> ApiResult<Self> {
        Ok(Self {
            guid: r.try_get("guid")?,
            name: r.try_get("name")?,
            suspended: r.try_get::<i64, _>("suspended")? != 0,
            quota_guid: r.try_get("quota_guid")?,
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
        })
    }

    pub fn present(&self, s: &AppState) -> Value {
        let base = format!("{}/organizations/{}", s.v3(), self.guid);
        json!({
            "guid": self.guid, "created_at": ts(self.created_at), "updated_at": ts(self.updated_at),
            "name": self.name, "suspended": self.suspended,
            "relationships": {"quota": {"data": {"guid": self.quota_guid}}},
            "metadata": metadata(),
            "links": {
                "self": link(base.clone()), "domains": link(format!("{base}/domains")),
                "default_domain": link(format!("{base}/domains/default")),
                "quota": link(format!("{}/organization_quotas/{}", s.v3(), self.quota_guid)),
            },
        })
    }
}

/// The org, if it exists (no access check).
pub async fn find(s: &AppState, guid: &str) -> ApiResult<Option<Org>> {
    let row = sqlx::query("SELECT * FROM organizations WHERE guid = $1")
        .bind(guid)
        .fetch_optional(&s.db.pool)
        .await?;
    row.as_ref().map(Org::from_row).transpose()
}

/// The org if the caller may read it, else 404.
pub async fn readable(s: &AppState, c: &Caller, guid: &str) -> ApiResult<Org> {
    match find(s, guid).await? {
        Some(o) if c.org_readable(&o.guid).await? => Ok(o),
        _ => Err(ApiError::NotFound("Organization")),
    }
}

/// Make sure the default quota exists (unlimited).
pub async fn ensure_default_quota(db: &kit::db::Db) -> Result<(), sqlx::Error> {
    let now = now_ms();
    let exists = sqlx::query("SELECT guid FROM org_quotas WHERE guid = $1")
        .bind(DEFAULT_QUOTA)
        .fetch_optional(&db.pool)
        .await?;
    if exists.is_none() {
        let res = sqlx::query(
            "INSERT INTO org_quotas (guid, name, created_at, updated_at) VALUES ($1, $1, $2, $2)",
        )
        .bind(DEFAULT_QUOTA)
        .bind(now)
        .execute(&db.pool)
        .await;
        if let Err(e) = res {
            if !is_unique_violation(&e) {
                return Err(e);
            }
        }
    }
    Ok(())
}

#[derive(Deserialize)]
struct CreateOrg {
    name: String,
    #[serde(default)]
    suspended: bool,
    #[serde(default)]
    #[allow(dead_code)]
    metadata: Option<Value>,
}

async fn create(State(s): State<AppState>, c: Caller, raw: Bytes) -> ApiResult<Response> {
    if !c.admin() {
        return Err(ApiError::NotAuthorized);
    }
    let req: CreateOrg = body(&raw)?;
    check_name(&req.name, "Organization")?;
    let now = now_ms();
    let org = Org {
        guid: new_guid(),
        name: req.name,
        suspended: req.suspended,
        quota_guid: DEFAULT_QUOTA.into(),
        created_at: now,
        updated_at: now,
    };
    let res = sqlx::query(
        "INSERT INTO organizations (guid, name, suspended, quota_guid, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $5)",
    )
    .bind(&org.guid)
    .bind(&org.name)
    .bind(i64::from(org.suspended))
    .bind(&org.quota_guid)
    .bind(now)
    .execute(&s.db.pool)
    .await;
    match res {
        Err(e) if is_unique_violation(&e) => {
            return Err(ApiError::Unprocessable(format!(
                "Organization '{}' already exists.",
                org.name
            )))
        }
        r => r?,
    };
    let t = Target {
        guid: &org.guid,
        kind: "organization",
        name: &org.name,
        org: &org.guid,
        ..Default::default()
    };
    events::record(&s, "audit.organization.create", &Actor::of(&c), &t, json!({})).await;
    Ok((StatusCode::CREATED, Json(org.present(&s))).into_response())
}

async fn list(
    State(s): State<AppState>,
    c: Caller,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Value>> {
    let q = ListQuery::parse(q.as_deref(), &["names", "guids", "label_selector"], &["name"])?;
    let mut sel = Select::from("organizations");
    crate::http::metadata::select(&mut sel, &q, "organizations.guid")?;
    sel.filter(q.filter("names"), "name").filter(q.filter("guids"), "guid");
    sel.visible("guid", &c.visible_orgs().await?);
    let (total, rows) = sel.page(&s.db, &q.window()).await?;
    let items = rows
        .iter()
        .map(|r| Org::from_row(r).map(|o| o.present(&s)))
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(Json(q.envelope(&format!("{}/organizations", s.v3()), total, items)))
}

async fn show(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(readable(&s, &c, &guid).await?.present(&s)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateOrg {
    name: Option<String>,
    suspended: Option<bool>,
    #[allow(dead_code)]
    metadata: Option<Value>,
}

async fn update(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
    raw: Bytes,
) -> ApiResult<Json<Value>> {
    let mut org = readable(&s, &c, &guid).await?;
    let req: UpdateOrg = body(&raw)?;
    if !c.org_manager(&org.guid).await? || (req.suspended.is_some() && !c.admin()) {
        return Err(ApiError::NotAuthorized);
    }
    if let Some(n) = req.name {
        check_name(&n, "Organization")?;
        org.name = n;
    }
    if let Some(x) = req.suspended {
        org.suspended = x;
    }
    org.updated_at = now_ms();
    let res = sqlx::query(
        "UPDATE organizations SET name = $1, suspended = $2, updated_at = $3 WHERE guid = $4",
    )
    .bind(&org.name)
    .bind(i64::from(org.suspended))
    .bind(org.updated_at)
    .bind(&org.guid)
    .execute(&s.db.pool)
    .await;
    match res {
        Err(e) if is_unique_violation(&e) => {
            return Err(ApiError::Unprocessable(format!(
                "Organization '{}' already exists.",
                org.name
            )))
        }
        r => r?,
    };
    let t = Target {
        guid: &org.guid,
        kind: "organization",
        name: &org.name,
        org: &org.guid,
        ..Default::default()
    };
    events::record(&s, "audit.organization.update", &Actor::of(&c), &t, json!({})).await;
    Ok(Json(org.present(&s)))
}

async fn delete(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Response> {
    let org = readable(&s, &c, &guid).await?;
    if !c.admin() {
        return Err(ApiError::NotAuthorized);
    }
    let actor = Actor::of(&c);
    let s2 = s.clone();
    let work = async move { delete_org(&s2, &org, &actor).await };
    let job =
        crate::domain::jobs::spawn(&s, "organization.delete", "organizations", &guid, work).await?;
    Ok(crate::http::jobs::accepted(&s, &job))
}

async fn delete_org(s: &AppState, org: &Org, actor: &Actor) -> ApiResult<()> {
    let spaces = sqlx::query("SELECT guid FROM spaces WHERE org_guid = $1")
        .bind(&org.guid)
        .fetch_all(&s.db.pool)
        .await?;
    for r in spaces {
        let space: String = r.try_get("guid")?;
        crate::http::spaces::delete_contents(s, &space, actor).await?;
        sqlx::query("DELETE FROM spaces WHERE guid = $1").bind(&space).execute(&s.db.pool).await?;
    }
    sqlx::query("DELETE FROM roles WHERE org_guid = $1")
        .bind(&org.guid)
        .execute(&s.db.pool)
        .await?;
    sqlx::query("DELETE FROM domains WHERE org_guid = $1")
        .bind(&org.guid)
        .execute(&s.db.pool)
        .await?;
    sqlx::query("DELETE FROM organizations WHERE guid = $1")
        .bind(&org.guid)
        .execute(&s.db.pool)
        .await?;
    let t = Target { guid: &org.guid, kind: "organization", name: &org.name, ..Default::default() };
    events::record(s, "audit.organization.delete-request", actor, &t, json!({})).await;
    Ok(())
}

async fn default_domain(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Json<Value>> {
    let org = readable(&s, &c, &guid).await?;
    let d = crate::http::domains::default_for(&s, &org.guid)
        .await?
        .ok_or(ApiError::NotFound("Domain"))?;
    Ok(Json(d.present(&s)))
}
