//! Spaces: created and deleted by org managers, renamed by space
//! managers, seen by their members; deleting one is a job that removes its apps and routes.

use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use wire::v3::space::SpaceRelationships;
use wire::v3::{self, Included, Link, Metadata, Page, ToOne};

use crate::access::{Caller, Need};
use crate::domain::events::{self, Actor};
use crate::error::{ApiError, ApiResult};
use crate::http::extract::CfJson;
use crate::http::list::List;
use crate::http::util::{check_name, created, links, rel_guid, ts};
use crate::store::{self, new_guid, now_ms};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v3/spaces", get(list).post(create))
        .route("/v3/spaces/{guid}", get(show).patch(update).delete(delete))
}

use crate::store::spaces::Space;

impl Space {
    pub fn present(&self, s: &AppState) -> v3::Space {
        let base = format!("{}/spaces/{}", s.v3(), self.guid);
        v3::Space {
            guid: self.guid.clone(),
            created_at: ts(self.created_at),
            updated_at: ts(self.updated_at),
            name: self.name.clone(),
            suspended: false,
            relationships: SpaceRelationships {
                organization: ToOne::of(&self.org_guid),
                quota: ToOne::of(&self.quota_guid),
            },
            metadata: Metadata::default(),
            links: links([
                ("self", Link::new(base.clone())),
                ("features", Link::new(format!("{base}/features"))),
                ("organization", Link::new(format!("{}/organizations/{}", s.v3(), self.org_guid))),
                (
                    "apply_manifest",
                    Link::with_method(format!("{base}/actions/apply_manifest"), "POST"),
                ),
            ]),
        }
    }
}

/// The space when the caller may read it and has `need` in it; 404 when not readable.
pub async fn require(s: &AppState, c: &Caller, guid: &str, need: Need) -> ApiResult<Space> {
    let space = store::spaces::find(&s.db.pool, guid).await?.ok_or(ApiError::NotFound("Space"))?;
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

async fn create(
    State(s): State<AppState>,
    c: Caller,
    CfJson(req): CfJson<CreateSpace>,
) -> ApiResult<Response> {
    check_name(&req.name, "Space")?;
    let org_guid = rel_guid(&json!({"relationships": req.relationships}), "organization")?;
    let org =
        match store::orgs::find(&s.db.pool, &org_guid).await? {
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
    store::spaces::insert(&s.db.pool, &space).await?;
    let t = space.target(&space.guid, "space", &space.name);
    events::record(&s, "audit.space.create", &Actor::of(&c), &t, json!({})).await;
    Ok(created(space.present(&s)))
}

async fn list(
    State(s): State<AppState>,
    c: Caller,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Page<v3::Space>>> {
    const FILTERS: [&str; 5] =
        ["names", "guids", "organization_guids", "label_selector", "include"];
    // Members see the spaces they have roles in; org members see the org's spaces list only
    // through their own roles, as in CF.
    let visible = if c.global_reader() { None } else { c.visible_spaces().await? };
    let list = List::parse(&s, q.as_deref(), "spaces", "spaces", &FILTERS, &["name"])?
        .filter("names", "name")
        .filter("guids", "guid")
        .filter("organization_guids", "org_guid")
        .visible("guid", &visible);
    let spaces = list.fetch(async |sel, w| store::spaces::page(&s.db, sel, w).await).await?;
    let spaces = spaces.include(async |spaces, inc| include_orgs(&s, spaces, inc).await).await?;
    Ok(Json(spaces.present(|sp| sp.present(&s))))
}

/// `include=organization`: the spaces' orgs, each once.
async fn include_orgs(
    s: &AppState,
    spaces: &[Space],
    inc: &[String],
) -> ApiResult<Option<Included>> {
    if !inc.iter().any(|x| x == "organization") {
        return Ok(None);
    }
    let mut orgs: Vec<v3::Organization> = Vec::new();
    for sp in spaces {
        if orgs.iter().any(|o| o.guid == sp.org_guid) {
            continue;
        }
        if let Some(o) = store::orgs::find(&s.db.pool, &sp.org_guid).await? {
            orgs.push(o.present(s));
        }
    }
    Ok(Some(Included { organizations: Some(orgs), ..Included::default() }))
}

async fn show(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Json<v3::Space>> {
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
    CfJson(req): CfJson<UpdateSpace>,
) -> ApiResult<Json<v3::Space>> {
    let mut space = require(&s, &c, &guid, Need::SpaceManager).await?;
    if let Some(n) = req.name {
        check_name(&n, "Space")?;
        space.name = n;
    }
    space.updated_at = now_ms();
    store::spaces::rename(&s.db.pool, &space).await?;
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
    let work = async move { crate::domain::deletion::delete_space(&s2, &space, &actor).await };
    let job = crate::domain::jobs::spawn(&s, "space.delete", "spaces", &guid, work).await?;
    Ok(crate::http::jobs::accepted(&s, &job))
}
