//! Spaces (contracts/ccapi.md §4.4): created and deleted by org managers, renamed by space
//! managers, seen by their members; deleting one is a job that removes its apps and routes.

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

use crate::access::{Caller, Need};
use crate::error::{ApiError, ApiResult};
use crate::http::events::{self, Actor, Target};
use crate::http::extract::body;
use crate::http::paging::ListQuery;
use crate::http::util::{check_name, link, link_method, metadata, rel_guid, to_one, ts};
use crate::store::Select;
use crate::store::{is_unique_violation, new_guid, now_ms};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v3/spaces", get(list).post(create))
        .route("/v3/spaces/{guid}", get(show).patch(update).delete(delete))
}

#[derive(Debug, Clone)]
pub struct Space {
    pub guid: String,
    pub name: String,
    pub org_guid: String,
    pub quota_guid: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Space {
    fn from_row(r: &AnyRow) -> ApiResult<Self> {
        Ok(Self {
            guid: r.try_get("guid")?,
            name: r.try_get("name")?,
            org_guid: r.try_get("org_guid")?,
            quota_guid: r.try_get("quota_guid")?,
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
        })
    }

    pub fn present(&self, s: &AppState) -> Value {
        let base = format!("{}/spaces/{}", s.v3(), self.guid);
        json!({
            "guid": self.guid, "created_at": ts(self.created_at), "updated_at": ts(self.updated_at),
            "name": self.name, "suspended": false,
            "relationships": {"organization": to_one(&self.org_guid), "quota": to_one(&self.quota_guid)},
            "metadata": metadata(),
            "links": {
                "self": link(base.clone()),
                "features": link(format!("{base}/features")),
                "organization": link(format!("{}/organizations/{}", s.v3(), self.org_guid)),
                "apply_manifest": link_method(format!("{base}/actions/apply_manifest"), "POST"),
            },
        })
    }

    /// Audit target for events inside this space.
    pub fn target<'a>(&'a self, guid: &'a str, kind: &'a str, name: &'a str) -> Target<'a> {
        Target { guid, kind, name, space: &self.guid, org: &self.org_guid }
    }
}

pub async fn find(s: &AppState, guid: &str) -> ApiResult<Option<Space>> {
    let row = sqlx::query("SELECT * FROM spaces WHERE guid = $1")
        .bind(guid)
        .fetch_optional(&s.db.pool)
        .await?;
    row.as_ref().map(Space::from_row).transpose()
}

/// The space when the caller may read it and has `need` in it; 404 when not readable.
pub async fn require(s: &AppState, c: &Caller, guid: &str, need: Need) -> ApiResult<Space> {
    let space = find(s, guid).await?.ok_or(ApiError::NotFound("Space"))?;
    c.require_space(&space.guid, &space.org_guid, "Space", need).await?;
    Ok(space)
}

#[derive(Deserialize)]
struct CreateSpace {
    name: String,
    relationships: Value,
    #[allow(dead_code)]
    #[serde(default)]
    metadata: Option<Value>,
}

async fn create(State(s): State<AppState>, c: Caller, raw: Bytes) -> ApiResult<Response> {
    let req: CreateSpace = body(&raw)?;
    check_name(&req.name, "Space")?;
    let org_guid = rel_guid(&json!({"relationships": req.relationships}), "organization")?;
    let org = crate::http::orgs::find(&s, &org_guid).await?;
    let org =
        match org {
            Some(o) if c.org_readable(&o.guid).await? => o,
            _ => return Err(ApiError::Unprocessable(
                "Invalid organization. Ensure the organization exists and you have access to it."
                    .into(),
            )),
        };
    if !c.org_manager(&org.guid).await? {
        return Err(ApiError::NotAuthorized);
    }
    let now = now_ms();
    let space = Space {
        guid: new_guid(),
        name: req.name,
        org_guid: org.guid,
        quota_guid: String::new(),
        created_at: now,
        updated_at: now,
    };
    let res = sqlx::query(
        "INSERT INTO spaces (guid, name, org_guid, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)",
    )
    .bind(&space.guid)
    .bind(&space.name)
    .bind(&space.org_guid)
    .bind(now)
    .execute(&s.db.pool)
    .await;
    match res {
        Err(e) if is_unique_violation(&e) => {
            return Err(ApiError::Unprocessable("Name must be unique per organization".into()))
        }
        r => r?,
    };
    let t = space.target(&space.guid, "space", &space.name);
    events::record(&s, "audit.space.create", &Actor::of(&c), &t, json!({})).await;
    Ok((StatusCode::CREATED, Json(space.present(&s))).into_response())
}

async fn list(
    State(s): State<AppState>,
    c: Caller,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Value>> {
    let q = ListQuery::parse(
        q.as_deref(),
        &["names", "guids", "organization_guids", "label_selector", "include"],
        &["name"],
    )?;
    let mut sel = Select::from("spaces");
    crate::http::metadata::select(&mut sel, &q, "spaces.guid")?;
    sel.filter(q.filter("names"), "name")
        .filter(q.filter("guids"), "guid")
        .filter(q.filter("organization_guids"), "org_guid");
    if !c.global_reader() {
        // Members see the spaces they have roles in; org members see the org's spaces list
        // only through their own roles, as in CF.
        sel.visible("guid", &c.visible_spaces().await?);
    }
    let (total, rows) = sel.page(&s.db, &q.window()).await?;
    let spaces = rows.iter().map(Space::from_row).collect::<ApiResult<Vec<_>>>()?;
    let items: Vec<Value> = spaces.iter().map(|sp| sp.present(&s)).collect();
    let mut env = q.envelope(&format!("{}/spaces", s.v3()), total, items);
    if q.filter("include").is_some_and(|i| i.iter().any(|x| x == "organization")) {
        let mut orgs = Vec::new();
        for sp in &spaces {
            if let Some(o) = crate::http::orgs::find(&s, &sp.org_guid).await? {
                if !orgs.iter().any(|v: &Value| v["guid"] == o.guid.as_str()) {
                    orgs.push(o.present(&s));
                }
            }
        }
        env["included"] = json!({ "organizations": orgs });
    }
    Ok(Json(env))
}

async fn show(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(require(&s, &c, &guid, Need::Read).await?.present(&s)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateSpace {
    name: Option<String>,
    #[allow(dead_code)]
    metadata: Option<Value>,
}

async fn update(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
    raw: Bytes,
) -> ApiResult<Json<Value>> {
    let mut space = require(&s, &c, &guid, Need::SpaceManager).await?;
    let req: UpdateSpace = body(&raw)?;
    if let Some(n) = req.name {
        check_name(&n, "Space")?;
        space.name = n;
    }
    space.updated_at = now_ms();
    let res = sqlx::query("UPDATE spaces SET name = $1, updated_at = $2 WHERE guid = $3")
        .bind(&space.name)
        .bind(space.updated_at)
        .bind(&space.guid)
        .execute(&s.db.pool)
        .await;
    match res {
        Err(e) if is_unique_violation(&e) => {
            return Err(ApiError::Unprocessable("Name must be unique per organization".into()))
        }
        r => r?,
    };
    let t = space.target(&space.guid, "space", &space.name);
    events::record(&s, "audit.space.update", &Actor::of(&c), &t, json!({})).await;
    Ok(Json(space.present(&s)))
}

async fn delete(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Response> {
    let space = require(&s, &c, &guid, Need::OrgManager).await?;
    let actor = Actor::of(&c);
    let s2 = s.clone();
    let work = async move {
        {
            delete_contents(&s2, &space.guid, &actor).await?;
            sqlx::query("DELETE FROM roles WHERE space_guid = $1")
                .bind(&space.guid)
                .execute(&s2.db.pool)
                .await?;
            sqlx::query("DELETE FROM spaces WHERE guid = $1")
                .bind(&space.guid)
                .execute(&s2.db.pool)
                .await?;
            let t = space.target(&space.guid, "space", &space.name);
            events::record(&s2, "audit.space.delete-request", &actor, &t, json!({})).await;
            Ok(())
        }
    };
    let job = crate::domain::jobs::spawn(&s, "space.delete", "spaces", &guid, work).await?;
    Ok(crate::http::jobs::accepted(&s, &job))
}

/// Remove every app (stopping its instances), service instance (with its bindings to routes)
/// and route of a space.
pub async fn delete_contents(s: &AppState, space: &str, actor: &Actor) -> ApiResult<()> {
    let apps = sqlx::query("SELECT guid FROM apps WHERE space_guid = $1")
        .bind(space)
        .fetch_all(&s.db.pool)
        .await?;
    for r in apps {
        let guid: String = r.try_get("guid")?;
        crate::http::apps::delete_app(s, &guid, actor).await?;
    }
    crate::http::services::delete_in_space(s, space, actor).await?;
    sqlx::query("DELETE FROM route_destinations WHERE route_guid IN (SELECT guid FROM routes WHERE space_guid = $1)")
        .bind(space)
        .execute(&s.db.pool)
        .await?;
    sqlx::query("DELETE FROM routes WHERE space_guid = $1").bind(space).execute(&s.db.pool).await?;
    Ok(())
}
