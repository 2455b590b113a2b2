//! Deployments and revisions (docs/api.md "Deployments and revisions"): `/v3/deployments`
//! with CC's filters, `actions/cancel` and `actions/continue`; `/v3/revisions` and an app's
//! `revisions` and `revisions/deployed`. The rollout itself is
//! [`crate::domain::deployments`].

use std::collections::BTreeMap;

use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use wire::v3::deployment::{
    DeploymentOptions, DeploymentRelationships, DeploymentStatus, NewDeployment, NewProcess,
    RevisionRef, StatusDetails,
};
use wire::v3::revision::{RevisionEnv, RevisionProcess, RevisionRelationships};
use wire::v3::{self, Guid, Link, Metadata, Page, ToOne};

use crate::access::{Caller, Need};
use crate::domain::deployments::{self, Request};
use crate::domain::events::Actor;
use crate::error::{ApiError, ApiResult};
use crate::http::extract::CfJson;
use crate::http::list::List;
use crate::http::util::{created, links, ts};
use crate::store;
use crate::store::deployments::Deployment;
use crate::store::revisions::Revision;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v3/deployments", get(list).post(create))
        .route("/v3/deployments/{guid}", get(show).patch(update))
        .route("/v3/deployments/{guid}/actions/cancel", post(cancel))
        .route("/v3/deployments/{guid}/actions/continue", post(resume))
        .route("/v3/apps/{guid}/revisions", get(app_revisions))
        .route("/v3/apps/{guid}/revisions/deployed", get(deployed_revisions))
        .route("/v3/revisions/{guid}", get(show_revision).patch(update_revision))
        .route("/v3/revisions/{guid}/environment_variables", get(revision_env))
}

impl Deployment {
    pub fn present(&self, s: &AppState, revision: Option<&Revision>) -> v3::Deployment {
        let o = &self.options;
        let canary = (self.strategy == "canary").then(|| v3::deployment::Canary {
            steps: o
                .canary_steps
                .iter()
                .map(|&instance_weight| v3::deployment::CanaryStep { instance_weight })
                .collect(),
        });
        let some_ts = |ms: i64| (ms > 0).then(|| ts(ms));
        v3::Deployment {
            guid: self.guid.clone(),
            created_at: ts(self.created_at),
            updated_at: ts(self.updated_at),
            state: self.reason.legacy_state().to_owned(),
            status: DeploymentStatus {
                value: self.reason.value(),
                reason: self.reason,
                details: StatusDetails {
                    last_successful_healthcheck: some_ts(self.last_healthy),
                    last_status_change: some_ts(self.last_status_change),
                    error: (!self.error.is_empty()).then(|| self.error.clone()),
                },
            },
            strategy: self.strategy.clone(),
            options: DeploymentOptions {
                max_in_flight: Some(o.max_in_flight),
                web_instances: o.web_instances,
                memory_in_mb: o.memory_in_mb,
                disk_in_mb: o.disk_in_mb,
                log_rate_limit_in_bytes_per_second: o.log_rate,
                canary,
            },
            droplet: Some(Guid::new(&self.droplet_guid)),
            previous_droplet: (!self.previous_droplet_guid.is_empty())
                .then(|| Guid::new(&self.previous_droplet_guid)),
            new_processes: vec![NewProcess { guid: self.process_guid.clone(), kind: "web".into() }],
            revision: revision.map(|r| RevisionRef { guid: r.guid.clone(), version: r.version }),
            relationships: DeploymentRelationships { app: ToOne::of(&self.app_guid) },
            metadata: Metadata::default(),
            links: links([
                ("self", Link::new(format!("{}/deployments/{}", s.v3(), self.guid))),
                ("app", Link::new(format!("{}/apps/{}", s.v3(), self.app_guid))),
            ]),
        }
    }
}

impl Revision {
    pub fn present(&self, s: &AppState, deployable: bool) -> v3::Revision {
        let base = format!("{}/revisions/{}", s.v3(), self.guid);
        v3::Revision {
            guid: self.guid.clone(),
            version: self.version,
            droplet: Guid::new(&self.droplet_guid),
            processes: self
                .processes
                .iter()
                .map(|(k, c)| (k.clone(), RevisionProcess { command: c.clone() }))
                .collect(),
            sidecars: vec![],
            description: self.description.clone(),
            deployable,
            relationships: RevisionRelationships { app: ToOne::of(&self.app_guid) },
            created_at: ts(self.created_at),
            updated_at: ts(self.updated_at),
            metadata: Metadata::default(),
            links: links([
                ("self", Link::new(base.clone())),
                ("app", Link::new(format!("{}/apps/{}", s.v3(), self.app_guid))),
                ("environment_variables", Link::new(format!("{base}/environment_variables"))),
            ]),
        }
    }
}

async fn present(s: &AppState, d: &Deployment) -> ApiResult<v3::Deployment> {
    let rev = store::revisions::find(&s.db.pool, &d.revision_guid).await?;
    Ok(d.present(s, rev.as_ref()))
}

async fn create(
    State(s): State<AppState>,
    c: Caller,
    CfJson(req): CfJson<NewDeployment>,
) -> ApiResult<Response> {
    let app_guid = req.relationships.app.guid().unwrap_or_default().to_owned();
    if app_guid.is_empty() {
        return Err(ApiError::Unprocessable("Relationships app is required".into()));
    }
    let mut app = crate::http::apps::require(&s, &c, &app_guid, Need::AppManager).await.map_err(
        |e| match e {
            ApiError::NotFound(_) => ApiError::Unprocessable(
                "Unable to use app. Ensure that the app exists and you have access to it.".into(),
            ),
            e => e,
        },
    )?;
    let request = Request {
        droplet: req.droplet.map(|d| d.guid),
        revision: req.revision.map(|r| r.guid),
        strategy: req.strategy,
        options: req.options.unwrap_or_default(),
    };
    let d = deployments::create(&s, &mut app, request, &Actor::of(&c)).await?;
    Ok(created(present(&s, &d).await?))
}

/// The deployment, if the caller may see its app (404 "Deployment" otherwise) and has `need`.
async fn require(s: &AppState, c: &Caller, guid: &str, need: Need) -> ApiResult<Deployment> {
    let d = store::deployments::find(&s.db.pool, guid)
        .await?
        .ok_or(ApiError::NotFound("Deployment"))?;
    crate::http::apps::require(s, c, &d.app_guid, need).await.map_err(|e| match e {
        ApiError::NotFound(_) => ApiError::NotFound("Deployment"),
        e => e,
    })?;
    Ok(d)
}

async fn show(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Json<v3::Deployment>> {
    let d = require(&s, &c, &guid, Need::Read).await?;
    Ok(Json(present(&s, &d).await?))
}

/// Only `metadata` changes (the metadata layer stores it).
async fn update(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
    CfJson(_): CfJson<serde_json::Value>,
) -> ApiResult<Json<v3::Deployment>> {
    let d = require(&s, &c, &guid, Need::AppManager).await?;
    Ok(Json(present(&s, &d).await?))
}

async fn cancel(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Json<v3::Deployment>> {
    let d = require(&s, &c, &guid, Need::AppManager).await?;
    let d = deployments::cancel(&s, &d, &Actor::of(&c)).await?;
    Ok(Json(present(&s, &d).await?))
}

async fn resume(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Json<v3::Deployment>> {
    let d = require(&s, &c, &guid, Need::AppManager).await?;
    let d = deployments::resume(&s, &d).await?;
    Ok(Json(present(&s, &d).await?))
}

async fn list(
    State(s): State<AppState>,
    c: Caller,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Page<v3::Deployment>>> {
    const FILTERS: [&str; 6] =
        ["app_guids", "states", "status_reasons", "status_values", "guids", "label_selector"];
    let table = crate::http::list::Table::with("deployments", store::deployments::select());
    let list = List::parse(&s, q.as_deref(), "deployments", table, &FILTERS, &["updated_at"])?;
    // `states` is the older spelling of the status: DEPLOYING, DEPLOYED, CANCELING, CANCELED.
    let reasons_of_states: Option<Vec<String>> = list.query().filter("states").map(|states| {
        wire::v3::DeploymentReason::ALL
            .iter()
            .filter(|r| states.iter().any(|st| st == r.legacy_state()))
            .map(|r| r.as_str().to_owned())
            .collect()
    });
    let mut list = list
        .join("JOIN apps a ON a.guid = deployments.app_guid")
        .filter("app_guids", "deployments.app_guid")
        .filter("guids", "deployments.guid")
        .filter("status_values", "deployments.status_value")
        .filter("status_reasons", "deployments.status_reason")
        .visible("a.space_guid", &c.visible_spaces().await?);
    if let Some(reasons) = reasons_of_states {
        list.select().any("deployments.status_reason", &reasons);
    }
    let rows = list.fetch(async |sel, w| sel.page_of(&s.db, w, Deployment::from_row).await).await?;
    let mut revs = BTreeMap::new();
    for d in rows.rows() {
        if let Some(r) = store::revisions::find(&s.db.pool, &d.revision_guid).await? {
            revs.insert(r.guid.clone(), r);
        }
    }
    Ok(Json(rows.present(|d| d.present(&s, revs.get(&d.revision_guid)))))
}

async fn present_revision(s: &AppState, r: &Revision) -> ApiResult<v3::Revision> {
    Ok(r.present(s, crate::domain::revisions::deployable(&s.db.pool, r).await?))
}

async fn app_revisions(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Page<v3::Revision>>> {
    let app = crate::http::apps::require(&s, &c, &guid, Need::Read).await?;
    let path = format!("apps/{guid}/revisions");
    let table = crate::http::list::Table::with("revisions", store::revisions::select());
    let mut list =
        List::parse(&s, q.as_deref(), &path, table, &["versions", "label_selector"], &[])?
            .filter("versions", "CAST(revisions.version AS TEXT)");
    list.select().eq("revisions.app_guid", &app.guid);
    let rows = list.fetch(async |sel, w| sel.page_of(&s.db, w, Revision::from_row).await).await?;
    Ok(Json(rows.present_async(async |r| present_revision(&s, &r).await).await?))
}

/// The revisions whose instances run: the newest, and while a deployment is active the one
/// it replaces.
async fn deployed_revisions(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Page<v3::Revision>>> {
    let app = crate::http::apps::require(&s, &c, &guid, Need::Read).await?;
    let query = crate::http::list::Query::parse(
        &s,
        q.as_deref(),
        &format!("apps/{guid}/revisions/deployed"),
        &[],
        &[],
    )?;
    let mut revs = Vec::new();
    if app.state == wire::v3::AppState::Started {
        if let Some(d) = store::deployments::active_of_app(&s.db.pool, &app.guid).await? {
            if let Some(r) = store::revisions::find(&s.db.pool, &d.previous_revision_guid).await? {
                revs.push(r);
            }
        }
        if let Some(r) = store::revisions::latest(&s.db.pool, &app.guid).await? {
            if !revs.contains(&r) {
                revs.push(r);
            }
        }
    }
    let mut out = Vec::with_capacity(revs.len());
    for r in &revs {
        out.push(present_revision(&s, r).await?);
    }
    Ok(Json(query.page(out.len() as i64, out)))
}

async fn require_revision(s: &AppState, c: &Caller, guid: &str, need: Need) -> ApiResult<Revision> {
    let r =
        store::revisions::find(&s.db.pool, guid).await?.ok_or(ApiError::NotFound("Revision"))?;
    crate::http::apps::require(s, c, &r.app_guid, need).await.map_err(|e| match e {
        ApiError::NotFound(_) => ApiError::NotFound("Revision"),
        e => e,
    })?;
    Ok(r)
}

async fn show_revision(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Json<v3::Revision>> {
    let r = require_revision(&s, &c, &guid, Need::Read).await?;
    Ok(Json(present_revision(&s, &r).await?))
}

/// Only `metadata` changes (the metadata layer stores it).
async fn update_revision(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
    CfJson(_): CfJson<serde_json::Value>,
) -> ApiResult<Json<v3::Revision>> {
    let r = require_revision(&s, &c, &guid, Need::AppManager).await?;
    Ok(Json(present_revision(&s, &r).await?))
}

/// The revision's environment: secrets, so only for those who may read the app's.
async fn revision_env(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Json<RevisionEnv>> {
    let r = require_revision(&s, &c, &guid, Need::Read).await?;
    let (_, space) = crate::http::apps::require_with_space(&s, &c, &r.app_guid, Need::Read).await?;
    if !c.secrets_readable(&space.guid).await? {
        return Err(ApiError::NotAuthorized);
    }
    let base = format!("{}/revisions/{}", s.v3(), r.guid);
    Ok(Json(RevisionEnv {
        var: r.env.clone(),
        links: links([
            ("self", Link::new(format!("{base}/environment_variables"))),
            ("revision", Link::new(base)),
        ]),
    }))
}
