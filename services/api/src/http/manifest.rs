//! Manifests (docs/api.md): `apply_manifest` (what the cf CLI pushes through), `manifest_diff`,
//! and the generated manifest of an app. Validation and find-or-create of each app happen
//! before the 202; processes, routes and env are applied in the job
//! ([`crate::domain::manifest`]).

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use manifest::{AppManifest, DiffOp, Manifest, ManifestError};
use serde::Serialize;

use crate::access::{Caller, Need};
use crate::domain::apps::NewApp;
use crate::domain::events::Actor;
use crate::error::{ApiError, ApiResult};
use crate::store::{self, apps::App};
use crate::AppState;

const MAX_MANIFEST_BYTES: usize = 1 << 20;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v3/spaces/{guid}/actions/apply_manifest", post(apply))
        .route("/v3/spaces/{guid}/manifest_diff", post(diff))
}

fn parse(raw: &Bytes) -> ApiResult<Manifest> {
    if raw.len() > MAX_MANIFEST_BYTES {
        return Err(ApiError::BadRequest(
            "Manifest size is too large. The maximum supported size is 1MB.".into(),
        ));
    }
    let text = std::str::from_utf8(raw)
        .map_err(|_| ApiError::BadRequest("Manifest is not valid UTF-8".into()))?;
    let m = manifest::parse(text).map_err(|e| match e {
        ManifestError::Syntax(d) => ApiError::Parse(d),
        ManifestError::Anchors => {
            ApiError::BadRequest("Manifest does not support Anchors and Aliases".into())
        }
        other => ApiError::Unprocessable(other.to_string()),
    })?;
    if m.applications.is_empty() {
        return Err(ApiError::Unprocessable(
            "Applications must have at least 1 application".into(),
        ));
    }
    if let Err(errors) = m.validate() {
        return Err(ApiError::UnprocessableMany(
            errors.into_iter().map(|e| e.to_string()).collect(),
        ));
    }
    Ok(m)
}

async fn apply(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
    raw: Bytes,
) -> ApiResult<Response> {
    let space = crate::http::spaces::require(&s, &c, &guid, Need::Developer).await?;
    let m = parse(&raw)?;
    let actor = Actor::of(&c);
    let mut apps = Vec::new();
    for am in &m.applications {
        let app = match store::apps::find_by_name(&s.db.pool, &space.guid, &am.name).await? {
            Some(a) => a,
            None => {
                let buildpacks = am.requested_buildpacks().unwrap_or_default();
                crate::domain::staging::check_names(&s, &buildpacks).await?;
                let new = NewApp {
                    name: am.name.clone(),
                    lifecycle_type: am.lifecycle_type().to_owned(),
                    buildpacks,
                    stack: am.stack.clone().unwrap_or_default(),
                    env: BTreeMap::new(),
                };
                crate::http::util::check_name(&new.name, "App")?;
                crate::domain::apps::create_app(&s, &space, new, &actor).await?
            }
        };
        apps.push((app, am.clone()));
    }
    let job = Box::pin(crate::domain::manifest::spawn_apply(&s, space, apps, actor)).await?;
    Ok(crate::http::jobs::accepted(&s, &job))
}

/// The answer of `manifest_diff`: the operations turning the current manifest into the
/// pushed one (no v3 resource: CC answers this document only here).
#[derive(Serialize)]
struct ManifestDiff {
    diff: Vec<DiffOp>,
}

async fn diff(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
    raw: Bytes,
) -> ApiResult<Response> {
    let space = crate::http::spaces::require(&s, &c, &guid, Need::Developer).await?;
    let desired = parse(&raw)?;
    let mut current = Manifest::default();
    for am in &desired.applications {
        if let Some(app) = store::apps::find_by_name(&s.db.pool, &space.guid, &am.name).await? {
            current.applications.push(app_manifest(&s, &app).await?);
        }
    }
    let ops = manifest::diff(&current, &desired);
    Ok(crate::http::util::created(ManifestDiff { diff: ops }))
}

/// The app as a manifest entry (sizes in CF's units, routes as URLs).
pub async fn app_manifest(s: &AppState, app: &App) -> ApiResult<AppManifest> {
    let mut am = AppManifest { name: app.name.clone(), ..AppManifest::default() };
    if !app.buildpacks.is_empty() {
        am.buildpacks = Some(app.buildpacks.clone());
    }
    am.stack = Some(app.stack.clone());
    if !app.env.is_empty() {
        am.env = Some(
            app.env
                .iter()
                .map(|(k, v)| (k.clone(), serde_yaml::Value::String(v.clone())))
                .collect(),
        );
    }
    let mut routes = Vec::new();
    if let Some(web) = store::processes::find_by_type(&s.db.pool, &app.guid, "web").await? {
        for r in crate::domain::routing::lrp_routes(s, &app.guid, &web.kind).await? {
            routes.push(manifest::RouteEntry {
                route: r.uri,
                protocol: r.protocol,
                ..Default::default()
            });
        }
    }
    if routes.is_empty() {
        am.no_route = Some(true);
    } else {
        am.routes = Some(routes);
    }
    let mut procs = Vec::new();
    for p in store::processes::of_app(&s.db.pool, &app.guid).await? {
        let mut pm =
            manifest::ProcessManifest { process_type: p.kind.clone(), ..Default::default() };
        pm.instances = Some(p.instances);
        pm.memory = Some(manifest::format_mb(u64::try_from(p.memory_mb).unwrap_or(0)));
        pm.disk_quota = Some(manifest::format_mb(u64::try_from(p.disk_mb).unwrap_or(0)));
        pm.log_rate_limit_per_second = Some(manifest::format_log_rate(p.log_rate));
        pm.command = p.command.clone().map(Some);
        pm.health.health_check_type = Some(p.health.kind.clone());
        pm.health.health_check_http_endpoint = p.health.endpoint.clone();
        pm.health.health_check_invocation_timeout = p.health.invocation_timeout;
        pm.health.timeout = p.health.timeout;
        procs.push(pm);
    }
    am.processes = Some(procs);
    Ok(am)
}

/// `GET /v3/apps/:guid/manifest`.
pub async fn generate(s: &AppState, app: &App) -> ApiResult<String> {
    let m = Manifest { applications: vec![app_manifest(s, app).await?], ..Manifest::default() };
    m.to_yaml().map_err(|e| ApiError::Internal(e.to_string()))
}
