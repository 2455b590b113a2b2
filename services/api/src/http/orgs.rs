//! Organizations: create (admins; any user while `user_org_creation` is on), list and get (members), update
//! (org managers), delete as a job that removes every space, app and route inside.

use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use wire::v3::org::OrganizationRelationships;
use wire::v3::{self, Link, Metadata, Page, ToOne};

use crate::access::Caller;
use crate::domain::events::{self, Actor, Target};
use crate::domain::feature_flags::{self as flags, Flag};
use crate::error::{ApiError, ApiResult};
use crate::http::extract::CfJson;
use crate::http::list::List;
use crate::http::util::{check_name, created, links, ts};
use crate::store::{self, new_guid, now_ms};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v3/organizations", get(list).post(create))
        .route("/v3/organizations/{guid}", get(show).patch(update).delete(delete))
        .route("/v3/organizations/{guid}/domains/default", get(default_domain))
}

use crate::store::orgs::Org;

impl Org {
    pub fn present(&self, s: &AppState) -> v3::Organization {
        let base = format!("{}/organizations/{}", s.v3(), self.guid);
        v3::Organization {
            guid: self.guid.clone(),
            created_at: ts(self.created_at),
            updated_at: ts(self.updated_at),
            name: self.name.clone(),
            suspended: self.suspended,
            relationships: OrganizationRelationships { quota: ToOne::always(&self.quota_guid) },
            metadata: Metadata::default(),
            links: links([
                ("self", Link::new(base.clone())),
                ("domains", Link::new(format!("{base}/domains"))),
                ("default_domain", Link::new(format!("{base}/domains/default"))),
                ("quota", Link::new(format!("{}/organization_quotas/{}", s.v3(), self.quota_guid))),
            ]),
        }
    }
}

/// The org if the caller may read it, else 404.
pub async fn readable(s: &AppState, c: &Caller, guid: &str) -> ApiResult<Org> {
    match store::orgs::find(&s.db.pool, guid).await? {
        Some(o) if c.org_readable(&o.guid).await? => Ok(o),
        _ => Err(ApiError::NotFound("Organization")),
    }
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

async fn create(
    State(s): State<AppState>,
    c: Caller,
    CfJson(req): CfJson<CreateOrg>,
) -> ApiResult<Response> {
    // Admins, or any user while `user_org_creation` is on (then its manager and user).
    let by_user = !c.admin();
    if by_user && (c.claims.user_id.is_none() || !flags::enabled(&s, Flag::UserOrgCreation).await?)
    {
        return Err(ApiError::NotAuthorized);
    }
    check_name(&req.name, "Organization")?;
    let now = now_ms();
    let org = Org {
        guid: new_guid(),
        name: req.name,
        suspended: req.suspended,
        quota_guid: store::orgs::DEFAULT_QUOTA.into(),
        created_at: now,
        updated_at: now,
    };
    let mut tx = store::begin(&s.db).await?;
    store::orgs::insert(&mut *tx, &org).await?;
    if by_user {
        for kind in ["organization_manager", "organization_user"] {
            let role = store::roles::Role {
                guid: new_guid(),
                kind: kind.into(),
                user_guid: c.guid().to_owned(),
                org_guid: org.guid.clone(),
                space_guid: String::new(),
                created_at: now,
                updated_at: now,
            };
            store::roles::insert(&mut *tx, &role, || ApiError::Internal("role taken".into()))
                .await?;
        }
    }
    tx.commit().await?;
    let t = Target {
        guid: &org.guid,
        kind: "organization",
        name: &org.name,
        org: &org.guid,
        ..Default::default()
    };
    events::record(&s, "audit.organization.create", &Actor::of(&c), &t, json!({})).await;
    Ok(created(org.present(&s)))
}

async fn list(
    State(s): State<AppState>,
    c: Caller,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Page<v3::Organization>>> {
    const FILTERS: [&str; 3] = ["names", "guids", "label_selector"];
    let list =
        List::parse(&s, q.as_deref(), "organizations", "organizations", &FILTERS, &["name"])?
            .filter("names", "name")
            .filter("guids", "guid")
            .visible("guid", &c.visible_orgs().await?);
    let orgs = list.fetch(async |sel, w| store::orgs::page(&s.db, sel, w).await).await?;
    Ok(Json(orgs.present(|o| o.present(&s))))
}

async fn show(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Json<v3::Organization>> {
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
    CfJson(req): CfJson<UpdateOrg>,
) -> ApiResult<Json<v3::Organization>> {
    let mut org = readable(&s, &c, &guid).await?;
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
    store::orgs::update(&s.db.pool, &org).await?;
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
    let work = async move { crate::domain::deletion::delete_org(&s2, &org, &actor).await };
    let job =
        crate::domain::jobs::spawn(&s, "organization.delete", "organizations", &guid, work).await?;
    Ok(crate::http::jobs::accepted(&s, &job))
}

async fn default_domain(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Json<v3::Domain>> {
    let org = readable(&s, &c, &guid).await?;
    let d = crate::store::domains::default_for(&s.db.pool, &org.guid)
        .await?
        .ok_or(ApiError::NotFound("Domain"))?;
    Ok(Json(d.present(&s)))
}
